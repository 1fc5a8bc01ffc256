//! `weft describe`: explains, for one service, what the control plane makes of it — the
//! registry entry and its endpoints per subset, the DestinationRule and VirtualService that
//! apply to sidecars and why those (Istio's lookup order), rules that exist but are not
//! applied, Sidecars that hide it, and the security policies selecting its workloads.
//! It reads the same view translation reads, so what it says is what proxies get.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use weft_config::Resource;
use weft_config::networking::virtual_service::{
    HTTPMatchRequest, HTTPRoute, StringMatch, StringMatchKind,
};

use crate::registry::{Endpoint, Service, selects};
use crate::translate::traffic_policy::{self, Policy};
use crate::translate::{MeshView, resolve_host};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DescribeError {
    #[error("no service {name:?} in namespace {namespace:?}; services there: {known}")]
    NotFound {
        name: String,
        namespace: String,
        known: String,
    },
}

fn string_match(m: &StringMatch) -> String {
    match m.kind() {
        Some(StringMatchKind::Exact(s)) => format!("= {s:?}"),
        Some(StringMatchKind::Prefix(s)) => format!("starts with {s:?}"),
        Some(StringMatchKind::Regex(s)) => format!("matches /{s}/"),
        None => "present".to_string(),
    }
}

fn conditions(m: &HTTPMatchRequest) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(uri) = &m.uri {
        out.push(format!(
            "path {}{}",
            string_match(uri),
            if m.ignore_uri_case { " (any case)" } else { "" }
        ));
    }
    for (k, v) in &m.headers {
        out.push(format!("header {k} {}", string_match(v)));
    }
    for (k, v) in &m.without_headers {
        out.push(format!("header {k} not {}", string_match(v)));
    }
    for (k, v) in &m.query_params {
        out.push(format!("query {k} {}", string_match(v)));
    }
    for (name, v) in [
        ("method", &m.method),
        ("authority", &m.authority),
        ("scheme", &m.scheme),
    ] {
        if let Some(v) = v {
            out.push(format!("{name} {}", string_match(v)));
        }
    }
    if m.port != 0 {
        out.push(format!("port {}", m.port));
    }
    if !m.source_labels.is_empty() {
        out.push(format!("from workloads {}", labels(&m.source_labels)));
    }
    if !m.source_namespace.is_empty() {
        out.push(format!("from namespace {}", m.source_namespace));
    }
    out
}

fn labels(l: &BTreeMap<String, String>) -> String {
    l.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn rule_line(i: usize, r: &HTTPRoute, namespace: &str, domain: &str) -> String {
    let name = if r.name.is_empty() {
        String::new()
    } else {
        format!(" {:?}", r.name)
    };
    let when = if r.r#match.is_empty() {
        "always".to_string()
    } else {
        r.r#match
            .iter()
            .map(|m| {
                let c = conditions(m);
                if c.is_empty() {
                    "always".to_string()
                } else {
                    c.join(" and ")
                }
            })
            .collect::<Vec<_>>()
            .join(" | or ")
    };
    let action = if let Some(d) = &r.direct_response {
        format!("answer {} directly", d.status)
    } else if let Some(rd) = &r.redirect {
        format!("redirect to {}{}", rd.authority, rd.uri)
    } else if let Some(d) = &r.delegate {
        format!(
            "delegate to VirtualService {}/{}",
            if d.namespace.is_empty() {
                namespace
            } else {
                &d.namespace
            },
            d.name
        )
    } else {
        let total: i32 = r.route.iter().map(|d| d.weight).sum();
        r.route
            .iter()
            .filter_map(|d| {
                let dest = d.destination.as_ref()?;
                let host = resolve_host(&dest.host, namespace, domain);
                let subset = if dest.subset.is_empty() {
                    String::new()
                } else {
                    format!(" subset {}", dest.subset)
                };
                let port = dest
                    .port_number()
                    .map(|p| format!(":{p}"))
                    .unwrap_or_default();
                let share = if r.route.len() > 1 && total > 0 {
                    format!(" {}%", d.weight)
                } else {
                    String::new()
                };
                Some(format!("{host}{port}{subset}{share}"))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut extras = Vec::new();
    if let Some(t) = &r.timeout {
        extras.push(format!("timeout {:?}", t.as_std()));
    }
    if let Some(rt) = &r.retries {
        extras.push(format!("retries {} on {:?}", rt.attempts, rt.retry_on));
    }
    if let Some(f) = &r.fault {
        if let Some(a) = &f.abort {
            let pct = a.percentage.as_ref().map_or(100.0, |p| p.value);
            let code = a
                .http_status
                .map(|s| s.to_string())
                .or(a.grpc_status.clone())
                .unwrap_or_default();
            extras.push(format!("fault: abort {code} for {pct}%"));
        }
        if let Some(d) = &f.delay {
            let pct = d
                .percentage
                .as_ref()
                .map_or(f64::from(d.percent), |p| p.value);
            extras.push(format!(
                "fault: delay {:?} for {pct}%",
                d.fixed_delay.as_ref().map(|t| t.as_std())
            ));
        }
    }
    if r.mirror.is_some() || !r.mirrors.is_empty() {
        extras.push("mirrored".to_string());
    }
    let extras = if extras.is_empty() {
        String::new()
    } else {
        format!("; {}", extras.join("; "))
    };
    format!("  http[{i}]{name}: when {when} → {action}{extras}")
}

fn endpoints_line(eps: &[&Endpoint]) -> String {
    let healthy = eps.iter().filter(|e| e.healthy).count();
    let mut s = format!("{healthy} healthy endpoint(s)");
    if healthy < eps.len() {
        let _ = write!(s, ", {} not ready", eps.len() - healthy);
    }
    s
}

/// The description of service `name` (short or FQDN) as seen from `namespace`.
pub fn describe(
    view: &MeshView,
    resources: &[&Resource],
    name: &str,
    namespace: &str,
) -> Result<String, DescribeError> {
    let domain = &view.mesh.domain;
    let host = resolve_host(name, namespace, domain);
    let Some(svc) = view.registry.lookup(&host, namespace) else {
        let known = view
            .registry
            .services
            .values()
            .filter(|s| s.namespace == namespace)
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(DescribeError::NotFound {
            name: name.to_string(),
            namespace: namespace.to_string(),
            known: if known.is_empty() {
                "none".into()
            } else {
                known
            },
        });
    };
    let mut out = String::new();
    service_section(&mut out, view, svc);
    destination_rule_section(&mut out, view, svc);
    virtual_service_section(&mut out, view, svc);
    sidecar_section(&mut out, view, svc);
    policy_section(&mut out, view, resources, svc);
    Ok(out)
}

fn service_section(out: &mut String, view: &MeshView, svc: &Service) {
    let _ = writeln!(
        out,
        "Service: {} ({:?} {}/{})",
        svc.hostname, svc.origin, svc.namespace, svc.name
    );
    if !svc.addresses.is_empty() {
        let addrs: Vec<String> = svc.addresses.iter().map(|a| a.to_string()).collect();
        let _ = writeln!(out, "  addresses: {}", addrs.join(", "));
    }
    let _ = writeln!(
        out,
        "  resolution: {:?}{}",
        svc.resolution,
        if svc.mesh_external {
            ", outside the mesh"
        } else {
            ""
        }
    );
    if !svc.export_to.is_empty() {
        let _ = writeln!(out, "  exported to: {}", svc.export_to.join(", "));
    }
    for p in &svc.ports {
        let eps = view.registry.endpoints_of(&svc.hostname, p.port);
        let name = if p.name.is_empty() {
            String::new()
        } else {
            format!(" ({})", p.name)
        };
        let _ = writeln!(
            out,
            "  port {}{name}: {:?}, {}",
            p.port,
            p.protocol,
            endpoints_line(&eps)
        );
    }
}

fn destination_rule_section(out: &mut String, view: &MeshView, svc: &Service) {
    let Some(dr) = view.destination_rule(&svc.hostname, &svc.namespace, &svc.namespace) else {
        let _ = writeln!(
            out,
            "DestinationRule: none (default load balancing; no subsets)"
        );
        return;
    };
    let why = if dr.namespace == svc.namespace {
        "in the service's namespace"
    } else {
        "exported to it from another namespace"
    };
    let _ = writeln!(
        out,
        "DestinationRule: {}/{} (host {:?}; {why})",
        dr.namespace, dr.name, dr.spec.host
    );
    let port = svc.ports.first().map(|p| p.port).unwrap_or(0);
    for s in &dr.spec.subsets {
        let eps: Vec<&Endpoint> = view
            .registry
            .endpoints_of(&svc.hostname, port)
            .into_iter()
            .filter(|e| selects(&s.labels, &e.labels))
            .collect();
        let _ = writeln!(
            out,
            "  subset {} ({}): {}",
            s.name,
            labels(&s.labels),
            endpoints_line(&eps)
        );
    }
    // The policy each of the service's clusters gets, merged as translation merges it.
    for port in &svc.ports {
        let subsets = std::iter::once("").chain(dr.spec.subsets.iter().map(|s| s.name.as_str()));
        for subset in subsets {
            let parts = traffic_policy::describe(&Policy::of(Some(&dr.spec), subset, port.port));
            if parts.is_empty() {
                continue;
            }
            let which = if subset.is_empty() {
                format!("port {}", port.port)
            } else {
                format!("port {} subset {subset}", port.port)
            };
            let _ = writeln!(out, "  traffic policy, {which}: {}", parts.join("; "));
        }
    }
    if let Some(tp) = &dr.spec.traffic_policy {
        for (set, name) in [
            (tp.tunnel.is_some(), "tunnel"),
            (tp.proxy_protocol.is_some(), "proxyProtocol"),
            (tp.retry_budget.is_some(), "retryBudget"),
        ] {
            if set {
                let _ = writeln!(out, "  traffic policy {name}: not applied yet");
            }
        }
    }
}

fn virtual_service_section(out: &mut String, view: &MeshView, svc: &Service) {
    let domain = &view.mesh.domain;
    let matching: Vec<_> = view
        .virtual_services
        .iter()
        .filter(|vs| {
            vs.spec.hosts.iter().any(|h| {
                crate::translate::host_matches(
                    &resolve_host(h, &vs.namespace, domain),
                    &svc.hostname,
                )
            })
        })
        .collect();
    let for_mesh: Vec<_> = matching
        .iter()
        .filter(|vs| vs.spec.applies_to_mesh())
        .collect();
    match for_mesh.first() {
        None => {
            let _ = writeln!(
                out,
                "VirtualService: none for sidecars (requests go to every endpoint, with istiod's default retries)"
            );
        }
        Some(vs) => {
            let exported = if vs.spec.export_to.is_empty() {
                "all namespaces".to_string()
            } else {
                vs.spec.export_to.join(", ")
            };
            let _ = writeln!(
                out,
                "VirtualService: {}/{} (hosts {:?}; applies to sidecars; visible in {exported})",
                vs.namespace, vs.name, vs.spec.hosts
            );
            for (i, r) in vs.spec.http.iter().enumerate() {
                let _ = writeln!(out, "{}", rule_line(i, r, &vs.namespace, domain));
            }
            if vs.spec.http.iter().all(|r| !r.is_catch_all()) && !vs.spec.http.is_empty() {
                let _ = writeln!(out, "  otherwise → no route (404)");
            }
            for other in for_mesh.iter().skip(1) {
                let _ = writeln!(
                    out,
                    "  not applied: {}/{} also names this host; a sidecar takes the first by its own namespace, then namespace/name",
                    other.namespace, other.name
                );
            }
        }
    }
    for vs in matching.iter().filter(|vs| !vs.spec.applies_to_mesh()) {
        let _ = writeln!(
            out,
            "  gateway only: {}/{} (gateways {:?}) does not affect sidecars",
            vs.namespace, vs.name, vs.spec.gateways
        );
    }
}

fn sidecar_section(out: &mut String, view: &MeshView, svc: &Service) {
    for sc in &view.sidecars {
        let imports = sc.spec.egress.is_empty()
            || sc.spec.egress.iter().flat_map(|e| e.hosts.iter()).any(|h| {
                let Some((ns, dns)) = h.split_once('/') else {
                    return false;
                };
                let ns_ok = match ns {
                    "*" => true,
                    "." => sc.namespace == svc.namespace,
                    "~" => false,
                    other => other == svc.namespace,
                };
                ns_ok && crate::translate::host_matches(dns, &svc.hostname)
            });
        if !imports {
            let who = match &sc.spec.workload_selector {
                Some(w) => format!("workloads {} in {}", labels(&w.labels), sc.namespace),
                None if sc.namespace == view.mesh.root_namespace => {
                    "every namespace without its own Sidecar".to_string()
                }
                None => format!("namespace {}", sc.namespace),
            };
            let _ = writeln!(
                out,
                "Hidden by Sidecar {}/{}: proxies of {who} do not import it",
                sc.namespace, sc.name
            );
        }
    }
}

fn policy_section(out: &mut String, view: &MeshView, resources: &[&Resource], svc: &Service) {
    // The labels of the service's workloads, to match policy selectors against.
    let mut workload_labels: Vec<&BTreeMap<String, String>> = Vec::new();
    for p in &svc.ports {
        for e in view.registry.endpoints_of(&svc.hostname, p.port) {
            if !workload_labels.contains(&&*e.labels) {
                workload_labels.push(&e.labels);
            }
        }
    }
    let applies = |ns: Option<&str>, selector: Option<&BTreeMap<String, String>>| {
        let ns = ns.unwrap_or_default();
        let ns_ok = ns == svc.namespace || ns == view.mesh.root_namespace;
        match selector {
            None => ns_ok,
            Some(sel) => ns == svc.namespace && workload_labels.iter().any(|l| selects(sel, l)),
        }
    };
    for r in resources {
        match r {
            Resource::PeerAuthentication(pa) => {
                let sel = pa.spec.selector.as_ref().map(|s| &s.match_labels);
                if applies(r.namespace(), sel) {
                    let mode = pa
                        .spec
                        .mtls
                        .as_ref()
                        .map(|m| format!("{:?}", m.mode))
                        .unwrap_or_else(|| "Unset".into());
                    let _ = writeln!(
                        out,
                        "PeerAuthentication {}/{}: mTLS {mode} (not enforced until identity lands)",
                        r.namespace().unwrap_or_default(),
                        r.name()
                    );
                }
            }
            Resource::AuthorizationPolicy(ap) => {
                let sel = ap.spec.selector.as_ref().map(|s| &s.match_labels);
                if applies(r.namespace(), sel) {
                    let _ = writeln!(
                        out,
                        "AuthorizationPolicy {}/{}: {:?} with {} rule(s) (not enforced until authorization lands)",
                        r.namespace().unwrap_or_default(),
                        r.name(),
                        ap.spec.action,
                        ap.spec.rules.len()
                    );
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use crate::translate::MeshSettings;

    const MESH: &str = r#"
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec: { clusterIP: 10.0.0.10, selector: { app: reviews }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: v1
kind: Pod
metadata: { name: r1, namespace: default, labels: { app: reviews, version: v1 } }
spec: { containers: [{ name: a, image: a }] }
status: { phase: Running, podIP: 10.1.0.1 }
---
apiVersion: v1
kind: Pod
metadata: { name: r2, namespace: default, labels: { app: reviews, version: v2 } }
spec: { containers: [{ name: a, image: a }] }
status: { phase: Running, podIP: 10.1.0.2 }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: default }
spec:
  host: reviews
  trafficPolicy:
    connectionPool: { tcp: { maxConnections: 100 } }
    tls: { mode: ISTIO_MUTUAL }
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 }, trafficPolicy: { loadBalancer: { simple: RANDOM } } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http:
  - name: canary
    match: [{ headers: { x-canary: { exact: "true" } } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
  - route:
    - { destination: { host: reviews, subset: v1 }, weight: 90 }
    - { destination: { host: reviews, subset: v2 }, weight: 10 }
    timeout: 2s
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews-edge, namespace: default }
spec: { hosts: [reviews], gateways: [edge], http: [{ route: [{ destination: { host: reviews } }] }] }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: reviews-viewers, namespace: default }
spec: { selector: { matchLabels: { app: reviews } }, action: ALLOW, rules: [{}] }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: locked, namespace: prod }
spec: { egress: [{ hosts: ["./*"] }] }
"#;

    #[test]
    fn explains_rules_subsets_policies_and_scoping() {
        let mut loader = weft_config::Loader::new();
        loader.load_str("mesh.yaml", MESH);
        let result = loader.finish();
        let refs: Vec<&Resource> = result.resources.iter().map(|l| &l.resource).collect();
        let view = MeshView::new(
            &refs,
            Registry::build(&refs, &[], "cluster.local"),
            MeshSettings::default(),
        );
        let text = describe(&view, &refs, "reviews", "default").unwrap();
        for expected in [
            "Service: reviews.default.svc.cluster.local (Kubernetes default/reviews)",
            "port 9080 (http): Http, 2 healthy endpoint(s)",
            "DestinationRule: default/reviews (host \"reviews\"; in the service's namespace)",
            "subset v1 (version=v1): 1 healthy endpoint(s)",
            "traffic policy, port 9080: connectionPool {\"tcp\":{\"maxConnections\":100}}; tls {\"mode\":\"ISTIO_MUTUAL\"}",
            "traffic policy, port 9080 subset v2: loadBalancer {\"simple\":\"RANDOM\"}; connectionPool",
            "VirtualService: default/reviews",
            "http[0] \"canary\": when header x-canary = \"true\" → reviews.default.svc.cluster.local subset v2",
            "http[1]: when always → reviews.default.svc.cluster.local subset v1 90%, reviews.default.svc.cluster.local subset v2 10%; timeout 2s",
            "gateway only: default/reviews-edge",
            "Hidden by Sidecar prod/locked: proxies of namespace prod do not import it",
            "AuthorizationPolicy default/reviews-viewers: Allow with 1 rule(s)",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        let err = describe(&view, &refs, "ratings", "default").unwrap_err();
        assert!(err.to_string().contains("services there: reviews"), "{err}");
    }
}
