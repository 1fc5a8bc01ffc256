//! Unit tests of router generation, kept out of the modules so each stays readable.

use envoy_types::pb::envoy::config::listener::v3::{FilterChain, Listener, filter};
use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, route, route_action};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use envoy_types::pb::google::protobuf::Any;
use prost::Message;

use super::hosts::{hosts_for_namespace, intersection};
use super::{generate, resolve_gateway_name, sanitize};
use crate::node::{Generator, Proxy, ProxyType};
use crate::registry::Registry;
use crate::translate::route::is_catch_all;
use crate::translate::{Generated, MeshSettings, MeshView};

fn view(yaml: &str) -> MeshView {
    let mut loader = weft_config::Loader::new();
    loader.load_str("mesh.yaml", yaml);
    let result = loader.finish();
    assert!(!result.has_errors(), "{:?}", result.findings);
    let refs: Vec<&weft_config::Resource> = result.resources.iter().map(|l| &l.resource).collect();
    let registry = Registry::build(&refs, &[], "cluster.local");
    MeshView::new(&refs, registry, MeshSettings::default())
}

fn router() -> Proxy {
    Proxy {
        id: "router~10.1.0.5~ingress-0.istio-system~istio-system.svc.cluster.local".into(),
        proxy_type: ProxyType::Router,
        generator: Generator::Envoy,
        workload_name: "ingress-0".into(),
        namespace: "istio-system".into(),
        ips: vec!["10.1.0.5".parse().unwrap()],
        dns_domain: "istio-system.svc.cluster.local".into(),
        labels: [("istio".to_string(), "ingressgateway".to_string())].into(),
        service_account: String::new(),
        cluster_id: String::new(),
        istio_version: String::new(),
        locality: String::new(),
    }
}

fn names(v: &[(String, Any)]) -> Vec<&str> {
    v.iter().map(|(n, _)| n.as_str()).collect()
}

fn decode<M: Message + Default>(v: &[(String, Any)], name: &str) -> M {
    let any = &v
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", names(v)))
        .1;
    M::decode(any.value.as_slice()).expect("decodes")
}

const SERVICES: &str = r#"
apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  clusterIP: 10.0.0.10
  ports: [{ name: http, port: 8080 }]
---
apiVersion: v1
kind: Service
metadata: { name: db, namespace: data }
spec:
  clusterIP: 10.0.0.11
  ports: [{ name: tcp, port: 5432 }, { name: tls, port: 5433 }]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: istio-system }
spec:
  egress: [{ hosts: ["./*"] }]
---
"#;

fn generated(yaml: &str) -> Generated {
    generate(&router(), &view(&format!("{SERVICES}{yaml}")))
}

#[test]
fn names_resolve_as_istiod_resolves_them() {
    assert_eq!(resolve_gateway_name("gw", "prod"), "prod/gw");
    assert_eq!(resolve_gateway_name("./gw", "prod"), "prod/gw");
    assert_eq!(resolve_gateway_name("edge/gw", "prod"), "edge/gw");
    assert_eq!(
        resolve_gateway_name("gw.edge.svc.cluster.local", "prod"),
        "edge/gw"
    );
    assert_eq!(resolve_gateway_name("gw.edge", "prod"), "edge/gw");
    assert_eq!(resolve_gateway_name("mesh", "prod"), "mesh");
    let s = |v: &[&str]| v.iter().map(|h| h.to_string()).collect::<Vec<_>>();
    assert_eq!(
        intersection(&s(&["*.example.com", "a.org"]), &s(&["x.example.com", "*"])),
        s(&["x.example.com", "*.example.com", "a.org"])
    );
    assert_eq!(
        intersection(
            &s(&["*.example.com"]),
            &s(&["*.b.example.com", "example.com"])
        ),
        s(&["*.b.example.com"])
    );
    assert_eq!(
        hosts_for_namespace(&s(&["prod/a.com", "b.com", "other/c.com"]), "prod"),
        s(&["a.com", "b.com"])
    );
    assert_eq!(
        sanitize(&s(&["./a.com", "*/b.com", "c.com"]), "gw-ns"),
        s(&["gw-ns/a.com", "b.com", "c.com"])
    );
    assert_eq!(sanitize(&s(&["a.com", "*/*"]), "gw-ns"), s(&["*"]));
}

#[test]
fn http_servers_share_a_port_and_virtual_hosts_follow_bound_virtual_services() {
    let g = generated(
        r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: public, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers:
  - port: { number: 80, name: http, protocol: HTTP }
    hosts: ["*.example.com", "default/api.internal"]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: other, namespace: team }
spec:
  selector: { istio: ingressgateway }
  servers:
  - port: { number: 80, name: http2, protocol: HTTP2 }
    hosts: [team.example.org]
    tls: { httpsRedirect: true }
  - port: { number: 80, name: tcp, protocol: TCP }
    hosts: [conflict.example.org]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: elsewhere, namespace: default }
spec:
  selector: { istio: egressgateway }
  servers:
  - port: { number: 81, name: http, protocol: HTTP }
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: default }
spec:
  hosts: [a.example.com, b.example.com, api.internal]
  gateways: [public]
  http:
  - match: [{ uri: { prefix: / } }]
    route: [{ destination: { host: web } }]
  - route: [{ destination: { host: web, port: { number: 9999 } } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: wild, namespace: other }
spec:
  hosts: ["*.example.com", a.example.com, api.internal]
  gateways: [default/public]
  http:
  - match: [{ headers: { x-a: { exact: "1" } }, gateways: [default/public] }]
    route: [{ destination: { host: web.default.svc.cluster.local } }]
  - match: [{ headers: { x-b: { exact: "1" } }, gateways: [mesh] }]
    route: [{ destination: { host: web.default.svc.cluster.local } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: private, namespace: team }
spec:
  hosts: ["*.example.com"]
  gateways: [default/public]
  exportTo: ["."]
  http:
  - route: [{ destination: { host: web.default.svc.cluster.local } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: mesh, namespace: default }
spec:
  hosts: [a.example.com]
  http:
  - route: [{ destination: { host: db.data.svc.cluster.local } }]
"#,
    );
    assert_eq!(names(&g.listeners), ["0.0.0.0_80"]);
    assert_eq!(names(&g.routes), ["http.80"]);
    let l: Listener = decode(&g.listeners, "0.0.0.0_80");
    assert_eq!(l.filter_chains.len(), 1, "HTTP servers share one chain");
    assert!(l.listener_filters.is_empty());
    let rc: RouteConfiguration = decode(&g.routes, "http.80");
    assert!(rc.ignore_port_in_host_matching);
    let hosts: Vec<(&str, Vec<&str>, usize, i32)> = rc
        .virtual_hosts
        .iter()
        .map(|vh| {
            (
                vh.name.as_str(),
                vh.domains.iter().map(String::as_str).collect(),
                vh.routes.len(),
                vh.require_tls,
            )
        })
        .collect();
    // a gets web's routes then wild's gateway-bound one (not its mesh-only match, nor
    // the team-private VirtualService), the catch-all moved last and web's rule after
    // it cut; b and api.internal (`default/` on the server, so only web binds it) have
    // the same routes from the same source and share a host named after the first.
    assert_eq!(
        hosts,
        [
            ("*.example.com:80", vec!["*.example.com"], 1, 0),
            ("a.example.com:80", vec!["a.example.com"], 2, 0),
            (
                "b.example.com:80",
                vec!["b.example.com", "api.internal"],
                1,
                0
            ),
            ("team.example.org:80", vec!["team.example.org"], 0, 2),
        ]
    );
    let a = &rc.virtual_hosts[1];
    assert!(!is_catch_all(&a.routes[0]) && is_catch_all(&a.routes[1]));
    let Some(route::Action::Route(action)) = &a.routes[1].action else {
        panic!("a route")
    };
    assert_eq!(
        action.cluster_specifier,
        Some(route_action::ClusterSpecifier::Cluster(
            "outbound|8080||web.default.svc.cluster.local".into()
        ))
    );
    assert_eq!(
        a.routes[1].decorator.as_ref().map(|d| d.operation.as_str()),
        Some("web.default.svc.cluster.local:8080/*")
    );

    let clusters = names(&g.clusters);
    assert!(
        clusters.contains(&"outbound|5432||db.data.svc.cluster.local"),
        "Sidecars do not scope a gateway: {clusters:?}"
    );
    assert!(clusters.contains(&"BlackHoleCluster"));
    assert!(!clusters.contains(&"PassthroughCluster"));
    assert_eq!(
        names(&g.endpoints),
        [
            "outbound|5432||db.data.svc.cluster.local",
            "outbound|5433||db.data.svc.cluster.local",
            "outbound|8080||web.default.svc.cluster.local",
        ]
    );
}

#[test]
fn a_port_without_virtual_hosts_answers_404_and_tcp_and_passthrough_use_l4_rules() {
    let g = generated(
        r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
  - port: { number: 8080, name: http, protocol: HTTP }
    hosts: [nobody.example.com]
  - port: { number: 5432, name: tcp, protocol: TCP }
    hosts: ["*"]
  - port: { number: 443, name: tls, protocol: TLS }
    tls: { mode: PASSTHROUGH }
    hosts: ["*.db.example.com"]
  - port: { number: 443, name: https, protocol: HTTPS }
    tls: { mode: PASSTHROUGH }
    hosts: [web.example.com]
  - port: { number: 8443, name: https-term, protocol: HTTPS }
    tls: { mode: SIMPLE, credentialName: cert }
    hosts: [web.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: db, namespace: data }
spec:
  hosts: ["*.db.example.com", db.example.net]
  gateways: [istio-system/gw]
  tcp:
  - match: [{ port: 1234 }]
    route: [{ destination: { host: db, port: { number: 1 } } }]
  - route:
    - { destination: { host: db, port: { number: 5432 } }, weight: 80 }
    - { destination: { host: db, port: { number: 5433 } }, weight: 20 }
  tls:
  - match: [{ sniHosts: [a.db.example.com, b.db.example.com] }]
    route: [{ destination: { host: db, port: { number: 5433 } } }]
  - match: [{ sniHosts: [b.db.example.com] }, { sniHosts: [c.db.example.com], gateways: [mesh] }]
    route: [{ destination: { host: db, port: { number: 5432 } } }]
"#,
    );
    assert_eq!(
        names(&g.listeners),
        ["0.0.0.0_8080", "0.0.0.0_5432", "0.0.0.0_443"]
    );
    let rc: RouteConfiguration = decode(&g.routes, "http.8080");
    assert_eq!(rc.virtual_hosts.len(), 1);
    assert_eq!(rc.virtual_hosts[0].name, "blackhole:8080");
    assert_eq!(rc.virtual_hosts[0].domains, ["*"]);
    assert!(rc.virtual_hosts[0].routes.is_empty());

    let tcp_of = |chain: &FilterChain| {
        let Some(filter::ConfigType::TypedConfig(any)) = &chain.filters[0].config_type else {
            panic!("typed")
        };
        TcpProxy::decode(any.value.as_slice()).expect("tcp_proxy")
    };
    let tcp: Listener = decode(&g.listeners, "0.0.0.0_5432");
    assert_eq!(tcp.filter_chains.len(), 1);
    assert!(tcp.filter_chains[0].filter_chain_match.is_none());
    let proxy = tcp_of(&tcp.filter_chains[0]);
    assert_eq!(proxy.stat_prefix, "db.data");
    let Some(tcp_proxy::ClusterSpecifier::WeightedClusters(w)) = proxy.cluster_specifier else {
        panic!("weighted")
    };
    let weights: Vec<(&str, u32)> = w
        .clusters
        .iter()
        .map(|c| (c.name.as_str(), c.weight))
        .collect();
    assert_eq!(
        weights,
        [
            ("outbound|5432||db.data.svc.cluster.local", 80),
            ("outbound|5433||db.data.svc.cluster.local", 20)
        ]
    );

    // One chain per TLS match; b.db.example.com is taken by the first, the mesh-only
    // match is not the gateway's; the HTTPS passthrough server has no route.
    let tls: Listener = decode(&g.listeners, "0.0.0.0_443");
    assert_eq!(tls.listener_filters.len(), 1, "tls_inspector");
    let chains: Vec<(Vec<String>, String)> = tls
        .filter_chains
        .iter()
        .map(|c| {
            let sni = c
                .filter_chain_match
                .as_ref()
                .map(|m| m.server_names.clone())
                .unwrap_or_default();
            (sni, tcp_of(c).stat_prefix)
        })
        .collect();
    assert_eq!(
        chains,
        [(
            vec![
                "a.db.example.com".to_string(),
                "b.db.example.com".to_string()
            ],
            "outbound|5433||db.data.svc.cluster.local".to_string()
        )]
    );
}

/// Found by the `translate` fuzz target: an explicit `bind: 0.0.0.0` and no bind name the
/// same listener, so their HTTP servers must share one chain rather than add a second
/// chain with the same (empty) match, which Envoy and weft-proxy refuse.
#[test]
fn an_explicit_wildcard_bind_merges_with_the_default_one() {
    let g = generated(
        r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
  - port: { number: 8080, name: grpc, protocol: GRPC }
    hosts: ["*/web.default.svc.cluster.local"]
    bind: 0.0.0.0
  - port: { number: 8080, name: http2, protocol: HTTP2 }
    hosts: ["*/db.data.svc.cluster.local"]
"#,
    );
    assert_eq!(names(&g.listeners), ["0.0.0.0_8080"]);
    let l: Listener = decode(&g.listeners, "0.0.0.0_8080");
    assert_eq!(l.filter_chains.len(), 1);
    assert_eq!(names(&g.routes), ["http.8080"]);
}
