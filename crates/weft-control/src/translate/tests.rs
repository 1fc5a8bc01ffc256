//! Translation checked on decoded output: what a proxy is sent for a small mesh read from
//! YAML, including Sidecar scoping and the outbound traffic policy.

use std::net::IpAddr;

use envoy_types::pb::envoy::config::listener::v3::{Listener, filter};
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use envoy_types::pb::google::protobuf::Any;
use prost::Message;

use super::*;
use crate::node::{Generator, ProxyType};
use crate::registry::Registry;

pub(super) fn view(yaml: &str) -> MeshView {
    let mut loader = weft_config::Loader::new();
    loader.load_str("mesh.yaml", yaml);
    let result = loader.finish();
    assert!(!result.has_errors(), "{:?}", result.findings);
    let refs: Vec<&weft_config::Resource> = result.resources.iter().map(|l| &l.resource).collect();
    let registry = Registry::build(&refs, &[], "cluster.local");
    MeshView::new(&refs, registry, MeshSettings::default())
}

pub(super) fn proxy(namespace: &str, labels: &[(&str, &str)]) -> Proxy {
    Proxy {
        id: format!("sidecar~10.1.0.9~app-0.{namespace}~{namespace}.svc.cluster.local"),
        proxy_type: ProxyType::Sidecar,
        generator: Generator::Envoy,
        workload_name: "app-0".into(),
        namespace: namespace.into(),
        ips: vec!["10.1.0.9".parse::<IpAddr>().unwrap()],
        dns_domain: format!("{namespace}.svc.cluster.local"),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        service_account: "default".into(),
        cluster_id: String::new(),
        istio_version: String::new(),
        locality: String::new(),
    }
}

pub(super) fn names(v: &[(String, Any)]) -> Vec<&str> {
    v.iter().map(|(n, _)| n.as_str()).collect()
}

pub(super) fn decode<M: Message + Default>(v: &[(String, Any)], name: &str) -> M {
    let any = &v
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .1;
    M::decode(any.value.as_slice()).expect("decodes")
}

const SERVICES: &str = r#"
apiVersion: v1
kind: Service
metadata: { name: web, namespace: prod }
spec: { clusterIP: 10.0.0.1, ports: [{ name: http, port: 80 }] }
---
apiVersion: v1
kind: Service
metadata: { name: db, namespace: other }
spec: { clusterIP: 10.0.0.2, ports: [{ name: http, port: 80 }] }
---
apiVersion: v1
kind: Service
metadata: { name: telemetry, namespace: istio-system }
spec: { clusterIP: 10.0.0.3, ports: [{ name: http, port: 80 }] }
"#;

fn catch_all_of(g: &Generated) -> String {
    let l: Listener = decode(&g.listeners, "virtualOutbound");
    let chain = l
        .filter_chains
        .iter()
        .find(|c| c.name == "virtualOutbound-catchall-tcp")
        .expect("catch-all chain");
    let Some(filter::ConfigType::TypedConfig(any)) = &chain.filters[0].config_type else {
        panic!("typed config")
    };
    let tcp = TcpProxy::decode(any.value.as_slice()).expect("tcp_proxy");
    match tcp.cluster_specifier {
        Some(tcp_proxy::ClusterSpecifier::Cluster(c)) => c,
        other => panic!("{other:?}"),
    }
}

#[test]
fn without_a_sidecar_every_exported_service_is_visible_and_unknown_traffic_passes() {
    let g = sidecar(&proxy("prod", &[]), &view(SERVICES));
    assert_eq!(
        names(&g.clusters),
        [
            "outbound|80||db.other.svc.cluster.local",
            "outbound|80||telemetry.istio-system.svc.cluster.local",
            "outbound|80||web.prod.svc.cluster.local",
            "BlackHoleCluster",
            "PassthroughCluster",
            "InboundPassthroughClusterIpv4",
        ]
    );
    assert_eq!(catch_all_of(&g), "PassthroughCluster");
}

#[test]
fn a_sidecar_narrows_imports_and_can_block_unknown_destinations() {
    let yaml = format!(
        "{SERVICES}---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{ name: default, namespace: istio-system }}
spec:
  egress: [{{ hosts: [\"./*\", \"istio-system/*\"] }}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{ name: locked, namespace: prod }}
spec:
  workloadSelector: {{ labels: {{ app: locked }} }}
  egress: [{{ hosts: [\"./web.prod.svc.cluster.local\"] }}]
  outboundTrafficPolicy: {{ mode: REGISTRY_ONLY }}
"
    );
    let v = view(&yaml);
    // The root namespace's default applies to an ordinary prod proxy.
    let g = sidecar(&proxy("prod", &[("app", "web")]), &v);
    let outbound: Vec<&str> = names(&g.clusters)
        .into_iter()
        .filter(|n| n.starts_with("outbound"))
        .collect();
    assert_eq!(
        outbound,
        [
            "outbound|80||telemetry.istio-system.svc.cluster.local",
            "outbound|80||web.prod.svc.cluster.local",
        ]
    );
    assert_eq!(catch_all_of(&g), "PassthroughCluster");
    // The workload's own Sidecar wins and blocks the rest.
    let g = sidecar(&proxy("prod", &[("app", "locked")]), &v);
    let outbound: Vec<&str> = names(&g.clusters)
        .into_iter()
        .filter(|n| n.starts_with("outbound"))
        .collect();
    assert_eq!(outbound, ["outbound|80||web.prod.svc.cluster.local"]);
    assert_eq!(catch_all_of(&g), "BlackHoleCluster");
    let routes: RouteConfiguration = decode(&g.routes, "80");
    let hosts: Vec<&str> = routes
        .virtual_hosts
        .iter()
        .map(|h| h.name.as_str())
        .collect();
    assert_eq!(hosts, ["web.prod.svc.cluster.local:80", "block_all"]);
}

#[test]
fn proxies_share_a_group_unless_a_selector_tells_their_labels_apart() {
    let plain = view(SERVICES);
    let keys = label_keys(&plain);
    assert!(keys.is_empty());
    let a = proxy("prod", &[("app", "a"), ("version", "v1")]);
    let b = proxy("prod", &[("app", "b")]);
    assert_eq!(GroupKey::of(&a, &keys), GroupKey::of(&b, &keys));
    assert_ne!(
        GroupKey::of(&a, &keys),
        GroupKey::of(&proxy("other", &[]), &keys)
    );
    // Their shared resources are indeed the same.
    assert_eq!(shared(&a, &plain), shared(&b, &plain));

    let selective = view(&format!(
        "{SERVICES}---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{ name: a-only, namespace: prod }}
spec:
  workloadSelector: {{ labels: {{ app: a }} }}
  egress: [{{ hosts: [\"./*\"] }}]
"
    ));
    let keys = label_keys(&selective);
    assert_eq!(keys.iter().collect::<Vec<_>>(), ["app"]);
    assert_ne!(GroupKey::of(&a, &keys), GroupKey::of(&b, &keys));
    assert_ne!(shared(&a, &selective), shared(&b, &selective));
}

/// What a push after an endpoint-only change recomputes must be exactly what a full
/// translation would send, for every kind of proxy.
#[test]
fn endpoints_alone_are_the_endpoints_of_a_full_translation() {
    let v = view(&format!(
        "{SERVICES}---{}",
        r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: web, namespace: prod }
spec:
  host: web
  subsets: [{ name: v1, labels: { version: v1 } }]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: ["*/*"] }]
---
apiVersion: v1
kind: Service
metadata: { name: api, namespace: prod }
spec: { clusterIP: 10.0.0.4, selector: { app: web }, ports: [{ name: grpc, port: 9090 }] }
---
apiVersion: v1
kind: Pod
metadata: { name: web-0, namespace: prod, labels: { app: web, version: v1 } }
spec: { containers: [{ name: app, image: x }] }
status: { phase: Running, podIP: 10.1.0.20 }
"#
    ));
    let sidecar = proxy("default", &[]);
    let router = Proxy {
        proxy_type: ProxyType::Router,
        labels: [("istio".to_string(), "ingressgateway".to_string())].into(),
        namespace: "istio-system".into(),
        ..proxy("istio-system", &[])
    };
    let grpc = Proxy {
        generator: Generator::Grpc,
        ..proxy("default", &[])
    };
    for p in [&sidecar, &router, &grpc] {
        let full = shared(p, &v).endpoints;
        // The api service's assignment lists the pod.
        assert!(
            full.iter()
                .any(|(n, a)| n.contains("api.prod") && a.value.windows(4).any(|w| w == b"10.1")),
            "{:?} {:?}: {:?}",
            p.generator,
            p.proxy_type,
            names(&full)
        );
        assert_eq!(
            shared_endpoints(p, &v),
            full,
            "{:?} {:?}",
            p.generator,
            p.proxy_type
        );
    }
}

#[test]
fn sidecar_ingress_listeners_replace_the_services_inbound_ports() {
    use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
    let yaml = format!(
        "{SERVICES}---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{ name: ratings, namespace: prod }}
spec:
  workloadSelector: {{ labels: {{ app: ratings }} }}
  inboundConnectionPool: {{ tcp: {{ maxConnections: 10 }} }}
  ingress:
  - port: {{ number: 9080, protocol: HTTP, name: http }}
    defaultEndpoint: 127.0.0.1:8080
  - port: {{ number: 9090, protocol: GRPC, name: grpc }}
    defaultEndpoint: 0.0.0.0:9091
    connectionPool: {{ http: {{ http2MaxRequests: 5 }} }}
  - port: {{ number: 7000, protocol: TCP, name: tcp }}
    captureMode: NONE
    bind: 127.0.0.1
    defaultEndpoint: 127.0.0.1:7001
  egress: [{{ hosts: [\"./*\"] }}]
"
    );
    let g = sidecar(&proxy("prod", &[("app", "ratings")]), &view(&yaml));
    let endpoint = |c: &Cluster| {
        let cla = c.load_assignment.as_ref().expect("static endpoints");
        let lb = &cla.endpoints[0].lb_endpoints[0];
        format!("{lb:?}")
    };
    let limits = |c: &Cluster| {
        let t = &c.circuit_breakers.as_ref().expect("breakers").thresholds[0];
        (
            t.max_connections.map(|v| v.value),
            t.max_requests.map(|v| v.value),
        )
    };
    let http: Cluster = decode(&g.clusters, "inbound|9080||");
    assert_eq!(
        http.cluster_discovery_type,
        Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Static as i32
        ))
    );
    assert!(endpoint(&http).contains("127.0.0.1") && endpoint(&http).contains("8080"));
    assert!(
        http.upstream_bind_config.is_none(),
        "localhost needs no 127.0.0.6"
    );
    assert_eq!(limits(&http), (Some(10), Some(u32::MAX)));
    let grpc: Cluster = decode(&g.clusters, "inbound|9090||");
    assert!(endpoint(&grpc).contains("10.1.0.9") && endpoint(&grpc).contains("9091"));
    assert!(grpc.upstream_bind_config.is_some());
    // The port's own pool replaces the Sidecar-wide one.
    assert_eq!(limits(&grpc), (Some(u32::MAX), Some(5)));
    assert!(!grpc.typed_extension_protocol_options.is_empty(), "HTTP/2");

    let inbound: Listener = decode(&g.listeners, "virtualInbound");
    let ports: Vec<u32> = inbound
        .filter_chains
        .iter()
        .filter_map(|c| c.filter_chain_match.as_ref()?.destination_port)
        .map(|p| p.value)
        .collect();
    assert_eq!(ports, [15006, 9080, 9090]);
    let own: Listener = decode(&g.listeners, "127.0.0.1_7000");
    assert_eq!(own.filter_chains.len(), 1);
}
