//! Route extras checked on the decoded routes a sidecar is sent: mirroring and CORS.

use envoy_types::pb::envoy::config::route::v3::{Route, RouteConfiguration, route};
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy;
use prost::Message;

use super::super::sidecar;
use super::super::tests::{decode, proxy, view};
use super::CORS_FILTER;

const MESH: &str = r#"
apiVersion: v1
kind: Service
metadata: { name: web, namespace: prod }
spec: { clusterIP: 10.0.0.1, ports: [{ name: http, port: 80 }] }
---
apiVersion: v1
kind: Service
metadata: { name: shadow, namespace: prod }
spec: { clusterIP: 10.0.0.2, ports: [{ name: http, port: 8080 }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: prod }
spec:
  hosts: [web]
  http:
  - name: half
    match: [{ uri: { prefix: /half } }]
    mirror: { host: shadow }
    mirrorPercentage: { value: 12.5 }
    mirrors:
    - { destination: { host: shadow, subset: v2 }, percentage: { value: 0 } }
    - { destination: { host: shadow, port: { number: 8080 } } }
    route: [{ destination: { host: web } }]
  - name: legacy
    match: [{ uri: { prefix: /legacy } }]
    mirror: { host: shadow }
    mirrorPercent: 30
    route: [{ destination: { host: web } }]
  - name: zero
    match: [{ uri: { prefix: /off } }]
    mirror: { host: shadow }
    mirrorPercentage: { value: 0 }
    route: [{ destination: { host: web } }]
  - name: cors
    corsPolicy:
      allowOrigins: [{ exact: https://a.example.com }, { prefix: https://b. }, { regex: ".*\\.c\\.example\\.com" }]
      allowMethods: [GET, POST]
      allowHeaders: [x-a, x-b]
      exposeHeaders: [x-c]
      maxAge: 24h
      allowCredentials: true
      unmatchedPreflights: IGNORE
    redirect: { uri: /moved }
"#;

fn routes() -> Vec<Route> {
    let g = sidecar(&proxy("prod", &[]), &view(MESH));
    let rc: RouteConfiguration = decode(&g.routes, "80");
    rc.virtual_hosts
        .into_iter()
        .find(|vh| vh.domains.iter().any(|d| d == "web.prod.svc.cluster.local"))
        .expect("web")
        .routes
}

fn mirrors(r: &Route) -> Vec<(String, u32, i32)> {
    let Some(route::Action::Route(a)) = &r.action else {
        panic!("{r:?}")
    };
    a.request_mirror_policies
        .iter()
        .map(|m| {
            assert_eq!(m.trace_sampled.map(|b| b.value), Some(false));
            let p = m
                .runtime_fraction
                .as_ref()
                .and_then(|f| f.default_value)
                .expect("a share");
            (m.cluster.clone(), p.numerator, p.denominator)
        })
        .collect()
}

#[test]
fn mirrors_get_their_share_and_zero_means_none() {
    let r = routes();
    let shadow = "outbound|8080||shadow.prod.svc.cluster.local".to_string();
    // 12.5% in millionths; a 0% `mirrors` entry is left out; an entry without a share
    // mirrors everything.
    assert_eq!(
        mirrors(&r[0]),
        [(shadow.clone(), 125_000, 2), (shadow.clone(), 100, 0)]
    );
    assert_eq!(mirrors(&r[1]), [(shadow, 30, 0)]);
    assert!(mirrors(&r[2]).is_empty());
}

#[test]
fn cors_policies_go_to_the_cors_filter_even_on_redirects() {
    let r = routes();
    let any = r[3]
        .typed_per_filter_config
        .get(CORS_FILTER)
        .expect("per-route CORS");
    let c = CorsPolicy::decode(any.value.as_slice()).expect("decodes");
    assert_eq!(c.allow_origin_string_match.len(), 3);
    assert_eq!(
        (
            c.allow_methods.as_str(),
            c.allow_headers.as_str(),
            c.expose_headers.as_str(),
            c.max_age.as_str()
        ),
        ("GET,POST", "x-a,x-b", "x-c", "86400")
    );
    assert_eq!(c.allow_credentials.map(|b| b.value), Some(true));
    assert_eq!(
        c.forward_not_matching_preflights.map(|b| b.value),
        Some(false)
    );
    assert!(matches!(r[3].action, Some(route::Action::Redirect(_))));
}

/// Two ServiceEntries whose hosts differ only in case: Envoy compares domains without case
/// and refuses a route table that repeats one, so the second adds no domain (a fuzz find).
#[test]
fn hosts_differing_only_in_case_share_no_domain() {
    let mesh = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: lower, namespace: default }
spec:
  hosts: [nobody.example.com]
  resolution: DNS
  ports: [{ number: 80, name: http, protocol: HTTP }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: upper, namespace: default }
spec:
  hosts: [nobody.examplE.com]
  resolution: DNS
  ports: [{ number: 80, name: http, protocol: HTTP }]
"#;
    let g = sidecar(&proxy("default", &[]), &view(mesh));
    let rc: RouteConfiguration = decode(&g.routes, "80");
    assert!(
        rc.virtual_hosts.iter().all(|vh| !vh.domains.is_empty()),
        "a virtual host without domains is refused: {rc:?}"
    );
    let mut seen = std::collections::BTreeSet::new();
    for d in rc.virtual_hosts.iter().flat_map(|vh| &vh.domains) {
        assert!(seen.insert(d.to_ascii_lowercase()), "{d} repeated: {rc:?}");
    }
    assert!(seen.contains("nobody.example.com"));
}
