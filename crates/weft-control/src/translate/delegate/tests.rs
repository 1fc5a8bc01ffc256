//! Delegation checked on the routes a sidecar is sent.

use envoy_types::pb::envoy::config::route::v3::{
    RouteConfiguration, route, route_action, route_match,
};

use super::super::sidecar;
use super::super::tests::{decode, proxy, view};

const MESH: &str = r#"
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: prod }
spec: { clusterIP: 10.0.0.1, ports: [{ name: http, port: 9080 }] }
---
apiVersion: v1
kind: Service
metadata: { name: backend, namespace: team }
spec: { clusterIP: 10.0.0.2, ports: [{ name: http, port: 9080 }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: prod }
spec:
  hosts: [reviews]
  http:
  - name: api
    match: [{ uri: { prefix: /api } }]
    delegate: { name: reviews-api, namespace: team }
    timeout: 5s
  - name: private
    match: [{ uri: { prefix: /private } }]
    delegate: { name: hidden, namespace: team }
  - name: gone
    match: [{ uri: { prefix: /gone } }]
    delegate: { name: nowhere }
  - name: rest
    route: [{ destination: { host: reviews } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews-api, namespace: team }
spec:
  http:
  - name: v2
    match: [{ uri: { prefix: /api/v2 }, headers: { x-team: { exact: a } } }]
    route: [{ destination: { host: reviews.prod.svc.cluster.local, subset: v2 } }]
    timeout: 1s
  - name: outside
    match: [{ uri: { prefix: /other } }]
    route: [{ destination: { host: backend } }]
  - name: all
    route: [{ destination: { host: backend } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: hidden, namespace: team }
spec:
  exportTo: ["."]
  http:
  - route: [{ destination: { host: backend } }]
"#;

#[test]
fn delegate_routes_replace_the_root_route_narrowed_by_its_match() {
    let g = sidecar(&proxy("prod", &[]), &view(MESH));
    let rc: RouteConfiguration = decode(&g.routes, "9080");
    let vh = rc
        .virtual_hosts
        .iter()
        .find(|vh| {
            vh.domains
                .iter()
                .any(|d| d == "reviews.prod.svc.cluster.local")
        })
        .expect("reviews virtual host");
    let routes: Vec<(String, String, String, i64)> = vh
        .routes
        .iter()
        .map(|r| {
            let m = r.r#match.clone().unwrap_or_default();
            let path = match m.path_specifier {
                Some(route_match::PathSpecifier::Prefix(p)) => p,
                other => format!("{other:?}"),
            };
            let Some(route::Action::Route(a)) = &r.action else {
                panic!("{r:?}")
            };
            let Some(route_action::ClusterSpecifier::Cluster(c)) = &a.cluster_specifier else {
                panic!("{a:?}")
            };
            let timeout = a.timeout.map_or(-1, |t| t.seconds);
            (r.name.clone(), path, c.clone(), timeout)
        })
        .collect();
    assert_eq!(
        routes,
        [
            // The delegate's own timeout wins; its header match is kept.
            (
                "api-v2".to_string(),
                "/api/v2".to_string(),
                "outbound|9080|v2|reviews.prod.svc.cluster.local".to_string(),
                1
            ),
            // /other is outside /api: dropped. A match-less delegate route takes the root's
            // match and timeout; its short host is the delegate's namespace's.
            (
                "api-all".to_string(),
                "/api".to_string(),
                "outbound|9080||backend.team.svc.cluster.local".to_string(),
                5
            ),
            // A delegate exported only to its own namespace, or missing, removes the route.
            (
                "rest".to_string(),
                "/".to_string(),
                "outbound|9080||reviews.prod.svc.cluster.local".to_string(),
                0
            ),
        ]
    );
    let headers = &vh.routes[0].r#match.as_ref().expect("match").headers;
    assert_eq!(headers.len(), 1);
    assert_eq!(headers[0].name, "x-team");
}
