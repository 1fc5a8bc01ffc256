use super::*;
use crate::diag::{Code, Finding, Severity};
use crate::path::FieldPath;
use std::collections::{BTreeMap, HashSet};

fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn annotations(kind: &str, entries: &[(&str, &str)]) -> Vec<Finding> {
    let mut v = Validator::new("default");
    check_annotations(&mut v, kind, &map(entries));
    v.into_findings()
}

fn labels(kind: &str, entries: &[(&str, &str)]) -> Vec<Finding> {
    let mut v = Validator::new("default");
    check_labels(&mut v, kind, &map(entries));
    v.into_findings()
}

fn pod(key: &str, value: &str) -> Vec<Finding> {
    annotations("Pod", &[(key, value)])
}

fn only(findings: &[Finding], severity: Severity, code: Code, key: &str) -> Finding {
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = findings[0].clone();
    assert_eq!((f.severity, f.code), (severity, code), "{f:#?}");
    assert_eq!(f.path, FieldPath::root().key(key));
    f
}

fn error(findings: &[Finding], key: &str) -> Finding {
    only(findings, Severity::Error, Code::InvalidValue, key)
}

fn warning(findings: &[Finding], key: &str) -> Finding {
    only(findings, Severity::Warning, Code::InvalidValue, key)
}

#[test]
fn seed_pod_resources_are_clean() {
    let f = annotations(
        "Pod",
        &[
            ("sidecar.istio.io/proxyCPU", "100m"),
            ("sidecar.istio.io/proxyMemory", "128Mi"),
            ("sidecar.istio.io/proxyCPULimit", "200m"),
            ("sidecar.istio.io/proxyMemoryLimit", "256Mi"),
        ],
    );
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn typo_warns_with_suggestion() {
    let f = pod("sidecar.istio.io/proxyCPUs", "100m");
    let w = warning(&f, "sidecar.istio.io/proxyCPUs");
    assert!(
        w.message.contains("unknown Istio annotation"),
        "{}",
        w.message
    );
    assert_eq!(
        w.suggestion.as_deref(),
        Some("did you mean \"sidecar.istio.io/proxyCPU\"?")
    );
    let w = warning(
        &pod("sidecar.istio.io/interceptonMode", "REDIRECT"),
        "sidecar.istio.io/interceptonMode",
    );
    assert!(w.suggestion.unwrap().contains("interceptionMode"));
    // Nothing close: still reported, without a guess.
    let w = warning(&pod("foo.istio.io/bar", "x"), "foo.istio.io/bar");
    assert_eq!(w.suggestion, None);
}

#[test]
fn non_istio_annotations_are_ignored() {
    let f = annotations(
        "Pod",
        &[
            ("kubectl.kubernetes.io/last-applied-configuration", "{}"),
            ("example.com/proxyCPU", "lots"),
            ("istio.io.example.com/x", "y"),
            ("prometheus.io/scrape", "true"),
        ],
    );
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn deprecated_annotations() {
    let f = pod("sidecar.istio.io/inject", "true");
    let d = only(
        &f,
        Severity::Warning,
        Code::Deprecated,
        "sidecar.istio.io/inject",
    );
    assert!(d.message.contains("the \"sidecar.istio.io/inject\" label"));
    let f = pod("traffic.sidecar.istio.io/kubevirtInterfaces", "net1");
    let d = only(
        &f,
        Severity::Warning,
        Code::Deprecated,
        "traffic.sidecar.istio.io/kubevirtInterfaces",
    );
    assert!(d.message.contains("istio.io/reroute-virtual-interfaces"));
    // A deprecated annotation without a replacement still says so.
    let f = annotations(
        "Service",
        &[("alpha.istio.io/kubernetes-serviceaccounts", "sa")],
    );
    assert_eq!(f[0].code, Code::Deprecated);
}

#[test]
fn deprecated_inject_annotation_is_quiet_next_to_the_label() {
    let l = map(&[("sidecar.istio.io/inject", "true")]);
    let a = map(&[("sidecar.istio.io/inject", "true")]);
    let mut v = Validator::new("default");
    check_metadata(&mut v, "Pod", Some(&l), Some(&a));
    assert!(v.findings().is_empty(), "{:#?}", v.findings());
    // Without the label, check_metadata scopes the deprecation to `annotations`.
    let mut v = Validator::new("default");
    check_metadata(&mut v, "Pod", None, Some(&a));
    let f = v.into_findings();
    assert_eq!(f.len(), 1);
    assert_eq!(
        f[0].path,
        FieldPath::root()
            .field("annotations")
            .key("sidecar.istio.io/inject")
    );
}

#[test]
fn misplaced_annotations() {
    let w = warning(
        &pod("networking.istio.io/exportTo", "."),
        "networking.istio.io/exportTo",
    );
    assert!(
        w.message
            .contains("can't be applied to Pod; it applies to Service"),
        "{}",
        w.message
    );
    // Pod annotations on the Deployment itself: point at the template.
    let f = annotations("Deployment", &[("sidecar.istio.io/proxyCPU", "bogus")]);
    let w = warning(&f, "sidecar.istio.io/proxyCPU");
    assert!(w.suggestion.unwrap().contains("spec.template.metadata"));
    // Istio analyzes ingress.class like its own annotations.
    let f = annotations("Service", &[("kubernetes.io/ingress.class", "istio")]);
    warning(&f, "kubernetes.io/ingress.class");
    // `Any` fits every kind.
    let f = annotations(
        "Service",
        &[("galley.istio.io/analyze-suppress", "IST0108")],
    );
    assert!(f.is_empty());
    let f = annotations(
        "Namespace",
        &[("topology.istio.io/controlPlaneClusters", "*")],
    );
    assert!(f.is_empty());
}

#[test]
fn only_istios_analyzed_kinds() {
    for kind in ["AuthorizationPolicy", "Gateway", "StatefulSet"] {
        assert!(annotations(kind, &[("sidecar.istio.io/proxyCPUs", "1")]).is_empty());
    }
    assert_eq!(ANALYZED_KINDS.len(), 4);
}

#[test]
fn annotation_that_is_a_label() {
    let w = warning(
        &pod("istio.io/dataplane-mode", "ambient"),
        "istio.io/dataplane-mode",
    );
    assert!(w.message.contains("is an Istio label"), "{}", w.message);
}

#[test]
fn interception_mode() {
    for ok in ["REDIRECT", "TPROXY", "NONE"] {
        assert!(pod("sidecar.istio.io/interceptionMode", ok).is_empty());
    }
    let e = error(
        &pod("sidecar.istio.io/interceptionMode", "FOO"),
        "sidecar.istio.io/interceptionMode",
    );
    assert!(e.message.contains("REDIRECT, TPROXY or NONE"));
    error(
        &pod("sidecar.istio.io/interceptionMode", "redirect"),
        "sidecar.istio.io/interceptionMode",
    );
}

#[test]
fn ports_and_integers() {
    let k = "status.sidecar.istio.io/port";
    for ok in ["15020", "0", " 15021 ", "65535"] {
        assert!(pod(k, ok).is_empty(), "{ok}");
    }
    for bad in ["abc", "65536", "-1", "+1", ""] {
        error(&pod(k, bad), k);
    }
    let k = "readiness.status.sidecar.istio.io/periodSeconds";
    assert!(pod(k, "10").is_empty());
    for bad in ["-1", "+1", " 10", "4294967296", "1.5"] {
        error(&pod(k, bad), k);
    }
    for k in [
        "traffic.sidecar.istio.io/excludeInboundPorts",
        "traffic.sidecar.istio.io/excludeOutboundPorts",
        "traffic.sidecar.istio.io/includeInboundPorts",
    ] {
        for ok in ["", "80", "80,443", " 80, 443 "] {
            assert!(pod(k, ok).is_empty(), "{k}={ok}");
        }
        for bad in ["80,x", "80,", "70000"] {
            error(&pod(k, bad), k);
        }
    }
    assert!(pod("traffic.sidecar.istio.io/includeInboundPorts", "*").is_empty());
    error(
        &pod("traffic.sidecar.istio.io/excludeInboundPorts", "*"),
        "traffic.sidecar.istio.io/excludeInboundPorts",
    );
}

#[test]
fn ip_ranges() {
    let inc = "traffic.sidecar.istio.io/includeOutboundIPRanges";
    let exc = "traffic.sidecar.istio.io/excludeOutboundIPRanges";
    for k in [inc, exc] {
        for ok in [
            "",
            "10.0.0.0/8",
            "10.0.0.0/8,192.168.0.0/16",
            "fd00::/8",
            "1.2.3.4/32",
        ] {
            assert!(pod(k, ok).is_empty(), "{k}={ok}");
        }
        // Go's netip.ParsePrefix: no bare IPs, no spaces, no leading zeros, in range.
        for bad in [
            "10.0.0.1",
            "10.0.0.0/8, 192.168.0.0/16",
            "10.0.0.0/08",
            "10.0.0.0/33",
            "10.0.0.0/8,",
            "foo/8",
        ] {
            error(&pod(k, bad), k);
        }
    }
    assert!(pod(inc, "*").is_empty());
    error(&pod(exc, "*"), exc);
}

#[test]
fn booleans() {
    let k = "prometheus.istio.io/merge-metrics";
    for ok in ["true", "false", "True", "1", "F"] {
        assert!(pod(k, ok).is_empty(), "{ok}");
    }
    error(&pod(k, "yes"), k);
    // Switches Istio reads leniently: warnings, not errors.
    let k = "sidecar.istio.io/nativeSidecar";
    assert!(pod(k, "true").is_empty());
    warning(&pod(k, "yes"), k);
    let k = "sidecar.istio.io/rewriteAppHTTPProbers";
    assert!(pod(k, "False").is_empty());
    warning(&pod(k, "nope"), k);
}

#[test]
fn quantities() {
    let k = "sidecar.istio.io/proxyCPU";
    for ok in [
        "100m", "1", "0.5", ".5", "2e3", "1E", "+1", "128Mi", "1Gi", "1k", " 100m",
    ] {
        assert!(pod(k, ok).is_empty(), "{ok}");
    }
    for bad in ["", "m", "100mb", "1.2.3", "1ki", "1 Gi", "-1", "1e", "lots"] {
        error(&pod(k, bad), k);
    }
}

#[test]
fn proxy_config_annotation() {
    let k = "proxy.istio.io/config";
    assert!(pod(k, "concurrency: 2\nholdApplicationUntilProxyStarts: true\n").is_empty());
    assert!(pod(k, "{}").is_empty());
    // Unknown field: Istio's strict YAML merge fails.
    let e = only(
        &pod(k, "concurency: 2\n"),
        Severity::Error,
        Code::UnknownField,
        k,
    );
    assert!(
        e.message
            .starts_with("invalid value for annotation proxy.istio.io/config")
    );
    // Wrong type.
    let f = pod(k, "concurrency: lots\n");
    assert!(f.iter().any(Finding::is_error), "{f:#?}");
    // ProxyConfig's own rules apply to what the annotation sets.
    let f = pod(k, "proxyAdminPort: 70000\n");
    let e = error(&f, k);
    assert!(e.message.contains("proxyAdminPort"), "{}", e.message);
    error(&pod(k, "just a string"), k);
    error(&pod(k, "a: [1"), k);
}

#[test]
fn seed_labels_are_clean() {
    let f = labels(
        "Pod",
        &[
            ("app", "reviews"),
            ("istio.io/rev", "canary"),
            ("sidecar.istio.io/inject", "true"),
            ("topology.istio.io/network", "network1"),
            ("service.istio.io/canonical-name", "reviews"),
            ("service.istio.io/canonical-revision", "v1"),
            ("istio.io/dataplane-mode", "ambient"),
        ],
    );
    assert!(f.is_empty(), "{f:#?}");
    let f = labels("Namespace", &[("istio-injection", "enabled")]);
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn label_typos_and_values() {
    let w = warning(
        &labels("Pod", &[("sidecar.istio.io/injct", "true")]),
        "sidecar.istio.io/injct",
    );
    assert_eq!(
        w.suggestion.as_deref(),
        Some("did you mean \"sidecar.istio.io/inject\"?")
    );
    warning(
        &labels("Pod", &[("sidecar.istio.io/inject", "yes")]),
        "sidecar.istio.io/inject",
    );
    let w = warning(
        &labels("Namespace", &[("istio.io/dataplane-mode", "Ambient")]),
        "istio.io/dataplane-mode",
    );
    assert_eq!(w.suggestion.as_deref(), Some("did you mean \"ambient\"?"));
    let w = warning(
        &labels("Namespace", &[("istio-injection", "true")]),
        "istio-injection",
    );
    assert_eq!(w.suggestion.as_deref(), Some("did you mean \"enabled\"?"));
    let w = warning(
        &labels("Pod", &[("istio-injection", "enabled")]),
        "istio-injection",
    );
    assert!(w.message.contains("only has an effect on a Namespace"));
    warning(
        &labels("Service", &[("networking.istio.io/gatewayPort", "x")]),
        "networking.istio.io/gatewayPort",
    );
    let w = warning(
        &labels("Pod", &[("sidecar.istio.io/proxyCPU", "100m")]),
        "sidecar.istio.io/proxyCPU",
    );
    assert!(w.message.contains("is an Istio annotation"));
    let f = labels("Pod", &[("security.istio.io/tlsMode", "istio")]);
    only(
        &f,
        Severity::Warning,
        Code::Deprecated,
        "security.istio.io/tlsMode",
    );
}

#[test]
fn catalogue_is_consistent() {
    for (what, table) in [("annotation", ANNOTATIONS), ("label", LABELS)] {
        let mut seen = HashSet::new();
        for d in table {
            assert!(seen.insert(d.name), "duplicate {what} {}", d.name);
            assert!(!d.resources.is_empty(), "{}", d.name);
            assert!(
                is_istio_annotation(d.name) || d.name.starts_with("gateway.networking.k8s.io/"),
                "{}",
                d.name
            );
            assert!(d.replacement.is_none() || d.deprecated, "{}", d.name);
        }
    }
    assert_eq!(ANNOTATIONS.len(), 67);
    assert_eq!(LABELS.len(), 23);
    let cpu = annotation("sidecar.istio.io/proxyCPU").unwrap();
    assert_eq!(cpu.status, FeatureStatus::Alpha);
    assert!(cpu.applies_to("Pod") && !cpu.applies_to("Service"));
    assert!(
        label("topology.istio.io/network")
            .unwrap()
            .applies_to("Service")
    );
}
