//! Istio's checks on the annotations and labels of Kubernetes objects, as `istioctl analyze`
//! (`annotations.K8sAnalyzer`: IST0108 unknown, IST0107 misplaced, IST0135 deprecated,
//! IST0125 invalid) and the sidecar injector (which rejects a pod whose annotation values it
//! cannot use) apply them. A typo in an annotation key is silently ignored by Istio at run
//! time, so these findings are often the only hint the user gets.

mod table;
#[cfg(test)]
mod tests;

pub use table::{ANNOTATIONS, Definition, FeatureStatus, LABELS, annotation, label};

use crate::diag::{Code, Finding, Severity};
use crate::mesh::proxy_config::ProxyConfig;
use crate::path::FieldPath;
use crate::suggest;
use crate::validate::{Validate, Validator};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The kinds whose annotations Istio's analyzer inspects. Pod templates inside workloads
/// are checked as `Pod`; a `Deployment`'s own metadata is checked as `Deployment`, where
/// every pod annotation is misplaced.
pub const ANALYZED_KINDS: &[&str] = &["Namespace", "Service", "Pod", "Deployment"];

const SIDECAR_INJECT: &str = "sidecar.istio.io/inject";

/// Whether `key` is in Istio's annotation domain: its prefix (before `/`) ends with
/// `istio.io`, or it is the `kubernetes.io/ingress.class` annotation Istio documents.
pub fn is_istio_annotation(key: &str) -> bool {
    key == "kubernetes.io/ingress.class" || is_istio_domain(key)
}

fn is_istio_domain(key: &str) -> bool {
    key.split('/')
        .next()
        .is_some_and(|p| p.ends_with("istio.io"))
}

/// Checks the annotations of an object of `kind` (already scoped to the `annotations` map):
/// unknown Istio annotations, deprecated ones, ones that do not belong on `kind`, and values
/// the sidecar injector rejects. Kinds outside [`ANALYZED_KINDS`] are skipped, as in Istio.
pub fn check_annotations(v: &mut Validator, kind: &str, annotations: &BTreeMap<String, String>) {
    check_annotations_with(v, kind, annotations, None);
}

/// [`check_labels`] and [`check_annotations`] on an object's metadata, scoped to `labels`
/// and `annotations`. Knowing both lets the deprecated `sidecar.istio.io/inject`
/// annotation pass quietly when the label replacing it is also set, as Istio does.
pub fn check_metadata(
    v: &mut Validator,
    kind: &str,
    labels: Option<&BTreeMap<String, String>>,
    annotations: Option<&BTreeMap<String, String>>,
) {
    if let Some(l) = labels {
        v.field("labels", |v| check_labels(v, kind, l));
    }
    if let Some(a) = annotations {
        v.field("annotations", |v| {
            check_annotations_with(v, kind, a, labels)
        });
    }
}

fn check_annotations_with(
    v: &mut Validator,
    kind: &str,
    annotations: &BTreeMap<String, String>,
    labels: Option<&BTreeMap<String, String>>,
) {
    if !ANALYZED_KINDS.contains(&kind) {
        return;
    }
    for (key, value) in annotations {
        if !is_istio_annotation(key) {
            continue;
        }
        v.key(key, |v| {
            let Some(def) = annotation(key) else {
                unknown(
                    v,
                    key,
                    "annotation",
                    ANNOTATIONS,
                    label(key).map(|_| "label"),
                );
                return;
            };
            let replaced_by_label =
                key == SIDECAR_INJECT && labels.is_some_and(|l| l.contains_key(SIDECAR_INJECT));
            if def.deprecated && !replaced_by_label {
                v.deprecated(deprecation("annotation", def));
            }
            if def.resources.contains(&"Any") {
                return;
            }
            if !def.applies_to(kind) {
                misplaced(v, def, kind);
                return;
            }
            check_annotation_value(v, key, value);
        });
    }
}

fn deprecation(what: &str, def: &Definition) -> String {
    match def.replacement {
        Some(r) => format!(
            "{what} {:?} is deprecated in favor of {r} and may not work in future Istio versions",
            def.name
        ),
        None => format!(
            "{what} {:?} is deprecated and may not work in future Istio versions",
            def.name
        ),
    }
}

fn misplaced(v: &mut Validator, def: &Definition, kind: &str) {
    let allowed = def.resources.join(", ");
    let msg = format!(
        "annotation {:?} can't be applied to {kind}; it applies to {allowed}",
        def.name
    );
    let mut f = Finding::warning(Code::InvalidValue, msg);
    if kind == "Deployment" && def.applies_to("Pod") {
        f = f.with_suggestion("set it on the pod template: spec.template.metadata.annotations");
    }
    v.push(f);
}

/// Reports an unknown key with the closest known one; `other` names the other catalogue
/// ("label"/"annotation") when the key is defined there instead.
fn unknown(
    v: &mut Validator,
    key: &str,
    what: &str,
    known: &'static [Definition],
    other: Option<&str>,
) {
    if let Some(other) = other {
        v.warn(format!(
            "{key:?} is an Istio {other}, not an {what}; Istio ignores it here (move it to metadata.{other}s)"
        ));
        return;
    }
    let mut f = Finding::warning(
        Code::InvalidValue,
        format!("unknown Istio {what} {key:?}; Istio ignores it"),
    );
    if let Some(s) = suggest::closest(key, known.iter().map(|d| d.name)) {
        f = f.with_suggestion(format!("did you mean {s:?}?"));
    }
    v.push(f);
}

/// Checks the value of annotation `name` as the sidecar injector does (an error: injection
/// fails and the pod is rejected), plus warnings for boolean switches whose other values
/// Istio silently reads as "off".
pub fn check_annotation_value(v: &mut Validator, name: &str, value: &str) {
    let short = name.rsplit('/').next().unwrap_or(name);
    let result = match name {
        "sidecar.istio.io/interceptionMode" => match value {
            "REDIRECT" | "TPROXY" | "NONE" => Ok(()),
            _ => Err("interception mode must be REDIRECT, TPROXY or NONE".to_string()),
        },
        "status.sidecar.istio.io/port" => parse_port(value).map(|_| ()),
        "readiness.status.sidecar.istio.io/initialDelaySeconds"
        | "readiness.status.sidecar.istio.io/periodSeconds"
        | "readiness.status.sidecar.istio.io/failureThreshold" => parse_go_uint(value, 32)
            .map(|_| ())
            .ok_or_else(|| "must be a non-negative 32-bit integer".to_string()),
        "traffic.sidecar.istio.io/includeOutboundIPRanges" if value == "*" => Ok(()),
        "traffic.sidecar.istio.io/includeOutboundIPRanges"
        | "traffic.sidecar.istio.io/excludeOutboundIPRanges" => cidr_list(value),
        "traffic.sidecar.istio.io/includeInboundPorts" if value == "*" => Ok(()),
        "traffic.sidecar.istio.io/includeInboundPorts"
        | "traffic.sidecar.istio.io/excludeInboundPorts"
        | "traffic.sidecar.istio.io/excludeOutboundPorts" => port_list(value),
        "prometheus.istio.io/merge-metrics" => parse_go_bool(value)
            .map(|_| ())
            .ok_or_else(|| "must be a boolean (true or false)".to_string()),
        "proxy.istio.io/config" => {
            proxy_config(v, name, value);
            Ok(())
        }
        "sidecar.istio.io/proxyCPU"
        | "sidecar.istio.io/proxyCPULimit"
        | "sidecar.istio.io/proxyMemory"
        | "sidecar.istio.io/proxyMemoryLimit" => check_quantity(value),
        "sidecar.istio.io/rewriteAppHTTPProbers" | "ambient.istio.io/dns-capture" => {
            if parse_go_bool(value).is_none() {
                v.warn(format!(
                    "{short} expects true or false; Istio ignores {value:?} and keeps the default"
                ));
            }
            Ok(())
        }
        "sidecar.istio.io/enableCoreDump"
        | "sidecar.istio.io/nativeSidecar"
        | "ambient.istio.io/bypass-inbound-capture" => {
            if !matches!(value, "true" | "false") {
                v.warn(format!(
                    "{short} expects \"true\" or \"false\"; Istio does not treat {value:?} as true"
                ));
            }
            Ok(())
        }
        SIDECAR_INJECT => {
            let known = ["y", "yes", "true", "on", "n", "no", "false", "off", ""];
            if !known.contains(&value.to_ascii_lowercase().as_str()) {
                v.warn(format!(
                    "inject expects \"true\" or \"false\"; Istio reads {value:?} as false and does not inject"
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    };
    if let Err(e) = result {
        v.error(format!(
            "invalid value {value:?} for annotation {name}: {e}"
        ));
    }
}

/// Go's `strconv.ParseBool`, which Istio uses for boolean annotations.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseUint(s, 10, bits)`: decimal digits only (no sign, no spaces).
fn parse_go_uint(s: &str, bits: u32) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>()
        .ok()
        .filter(|n| bits >= 64 || *n < (1u64 << bits))
}

/// One port as the injector parses it: surrounding spaces allowed, 0-65535.
fn parse_port(s: &str) -> Result<u16, String> {
    parse_go_uint(s.trim(), 16)
        .map(|n| n as u16)
        .ok_or_else(|| format!("{s:?} is not a port number (0-65535)"))
}

/// A comma-separated port list; empty means none.
fn port_list(s: &str) -> Result<(), String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(());
    }
    for p in s.split(',') {
        parse_port(p)?;
    }
    Ok(())
}

/// A comma-separated list of CIDR blocks, parsed like Go's `netip.ParsePrefix`: every
/// entry needs a prefix length and no spaces are allowed. Empty means none.
fn cidr_list(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Ok(());
    }
    for c in s.split(',') {
        parse_prefix(c).map_err(|e| format!("{c:?} is not a CIDR block: {e}"))?;
    }
    Ok(())
}

fn parse_prefix(s: &str) -> Result<(), &'static str> {
    let Some((addr, bits)) = s.rsplit_once('/') else {
        return Err("missing the /prefix length");
    };
    let ip: IpAddr = addr.parse().map_err(|_| "not an IP address")?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if bits.len() > 1 && bits.starts_with('0') {
        return Err("prefix length has a leading zero");
    }
    match parse_go_uint(bits, 8) {
        Some(n) if n <= max => Ok(()),
        _ => Err("bad prefix length"),
    }
}

/// A Kubernetes resource quantity (`100m`, `128Mi`, `1.5`, `2e3`): the injected container's
/// resources come from these annotations, and a malformed one fails injection.
fn check_quantity(s: &str) -> Result<(), String> {
    if s.trim().starts_with('-') && is_quantity(s.trim().trim_start_matches('-')) {
        // Parses, but the API server rejects negative container resources.
        Err("must not be negative".to_string())
    } else if is_quantity(s) {
        Ok(())
    } else {
        Err("must be a Kubernetes quantity such as 100m, 0.5, 128Mi or 1G".to_string())
    }
}

fn is_quantity(s: &str) -> bool {
    // Kubernetes trims the JSON string before parsing.
    let s = s.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    let digits_end = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    let mut parts = number.split('.');
    let whole = parts.next().unwrap_or("");
    let frac = parts.next().unwrap_or("");
    if parts.next().is_some() || whole.len() + frac.len() == 0 {
        return false;
    }
    match suffix {
        "" | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E" => true,
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => true,
        _ => suffix
            .strip_prefix(['e', 'E'])
            .map(|e| e.strip_prefix(['+', '-']).unwrap_or(e))
            .is_some_and(|e| !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())),
    }
}

/// `proxy.istio.io/config`: YAML merged over the mesh's ProxyConfig, then validated as
/// ProxyConfig; unknown fields and invalid values fail injection.
fn proxy_config(v: &mut Validator, name: &str, value: &str) {
    if value.trim().is_empty() {
        return;
    }
    let mut ids = 0;
    let parsed = crate::yaml::parse(value, &mut ids);
    let prefix = format!("invalid value for annotation {name}");
    if let Some(e) = parsed.errors.first() {
        v.error(format!(
            "{prefix}: YAML syntax error at line {}: {}",
            e.pos.line, e.message
        ));
        return;
    }
    let Some(root) = parsed.documents.into_iter().find_map(|d| d.root) else {
        return;
    };
    if root.as_map().is_none() {
        v.error(format!(
            "{prefix}: expected a mapping of ProxyConfig fields, found {}",
            root.describe()
        ));
        return;
    }
    let (config, issues) = crate::de::decode::<ProxyConfig>(&root, &FieldPath::root());
    for i in issues {
        let mut f = Finding::error(
            i.problem.into(),
            format!("{prefix}: {}", at(&i.path, &i.message)),
        );
        f.suggestion = i.suggestion;
        v.push(f);
    }
    let Some(config) = config else { return };
    let mut inner = Validator::new(v.namespace());
    config.validate(&mut inner);
    for f in inner.into_findings() {
        let msg = format!("{prefix}: {}", at(&f.path, &f.message));
        let mut out = Finding::new(f.severity, f.code, msg);
        out.suggestion = f.suggestion;
        v.push(out);
    }
}

fn at(path: &FieldPath, msg: &str) -> String {
    if path.is_root() {
        msg.to_string()
    } else {
        format!("{path}: {msg}")
    }
}

/// Checks the labels of an object of `kind` (already scoped to the `labels` map): unknown
/// keys in Istio's domains, deprecated ones, and values Istio's selectors and controllers
/// only recognise in one spelling (warnings: Istio accepts the object but ignores the
/// label). Istio's analyzer has no label check, so none of these are errors.
pub fn check_labels(v: &mut Validator, kind: &str, labels: &BTreeMap<String, String>) {
    for (key, value) in labels {
        v.key(key, |v| {
            if key == "istio-injection" {
                injection_label(v, kind, value);
                return;
            }
            if !is_istio_domain(key) {
                return;
            }
            let Some(def) = label(key) else {
                unknown(
                    v,
                    key,
                    "label",
                    LABELS,
                    annotation(key).map(|_| "annotation"),
                );
                return;
            };
            if def.deprecated {
                v.deprecated(deprecation("label", def));
            }
            check_label_value(v, key, value);
        });
    }
}

fn injection_label(v: &mut Validator, kind: &str, value: &str) {
    if kind != "Namespace" {
        v.push(
            Finding::warning(
                Code::InvalidValue,
                format!(
                    "the istio-injection label only has an effect on a Namespace, not a {kind}"
                ),
            )
            .with_suggestion("on a pod, use the label sidecar.istio.io/inject: \"true\""),
        );
    } else if !matches!(value, "enabled" | "disabled") {
        let mut f = Finding::warning(
            Code::InvalidValue,
            format!(
                "istio-injection is {value:?}; Istio's injection webhook only matches \"enabled\" (and \"disabled\")"
            ),
        );
        if let Some(s) = suggest::closest(value, ["enabled", "disabled"]) {
            f = f.with_suggestion(format!("did you mean {s:?}?"));
        } else if value.eq_ignore_ascii_case("true") {
            f = f.with_suggestion("did you mean \"enabled\"?");
        }
        v.push(f);
    }
}

fn check_label_value(v: &mut Validator, key: &str, value: &str) {
    let allowed: &[&str] = match key {
        // The injection webhooks select on exactly these values.
        SIDECAR_INJECT => &["true", "false"],
        "istio.io/dataplane-mode" => &["ambient", "none"],
        "istio.io/waypoint-for" => &["service", "workload", "all", "none"],
        "security.istio.io/tlsMode" => &["istio", "disabled"],
        "networking.istio.io/enable-autoallocate-ip" => &["true", "false"],
        "istio.io/ingress-use-waypoint" => {
            if !value.eq_ignore_ascii_case("true") && !value.eq_ignore_ascii_case("false") {
                v.warn(format!(
                    "ingress-use-waypoint expects \"true\" or \"false\"; Istio reads {value:?} as false"
                ));
            }
            return;
        }
        "networking.istio.io/gatewayPort" => {
            if parse_go_uint(value, 16).is_none_or(|p| p == 0) {
                v.warn(format!(
                    "gatewayPort {value:?} is not a port number (1-65535); Istio ignores it and uses 15443"
                ));
            }
            return;
        }
        _ => return,
    };
    if allowed.contains(&value) {
        return;
    }
    let short = key.rsplit('/').next().unwrap_or(key);
    let mut f = Finding::new(
        Severity::Warning,
        Code::InvalidValue,
        format!(
            "{short} is {value:?}; Istio only recognises {}",
            allowed
                .iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    if let Some(s) = suggest::closest(value, allowed.iter().copied()) {
        f = f.with_suggestion(format!("did you mean {s:?}?"));
    }
    v.push(f);
}
