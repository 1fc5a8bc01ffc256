//! TCP and TLS routes checked on the decoded listeners a sidecar is sent.

use envoy_types::pb::envoy::config::listener::v3::{FilterChain, Listener, filter};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use prost::Message;

use super::super::sidecar;
use super::super::tests::{decode, proxy, view};

const MESH: &str = r#"
apiVersion: v1
kind: Service
metadata: { name: db, namespace: prod }
spec: { clusterIP: 10.0.0.5, ports: [{ name: tcp, port: 5432 }] }
---
apiVersion: v1
kind: Service
metadata: { name: api, namespace: prod }
spec: { clusterIP: 10.0.0.6, ports: [{ name: https, port: 443 }] }
---
apiVersion: v1
kind: Service
metadata: { name: cache, namespace: prod }
spec: { clusterIP: 10.0.0.7, ports: [{ name: tcp, port: 6379 }] }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: db, namespace: prod }
spec:
  host: db
  trafficPolicy:
    connectionPool: { tcp: { idleTimeout: 300s, maxConnectionDuration: 1h } }
    loadBalancer: { consistentHash: { useSourceIp: true } }
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 }, trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: db, namespace: prod }
spec:
  hosts: [db]
  tcp:
  - match: [{ destinationSubnets: [10.0.0.0/24], port: 5432 }]
    route: [{ destination: { host: db, subset: v2 } }]
  - match: [{ sourceLabels: { app: batch } }]
    route:
    - { destination: { host: db, subset: v1 }, weight: 70 }
    - { destination: { host: db, subset: v2 }, weight: 30 }
  - route: [{ destination: { host: db, subset: v1 } }]
  - route: [{ destination: { host: db, subset: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: prod }
spec:
  hosts: [api]
  tls:
  - match: [{ sniHosts: [api.prod.svc.cluster.local], sourceLabels: { app: web } }]
    route: [{ destination: { host: api } }]
  - match: [{ sniHosts: [api.prod.svc.cluster.local] }, { sniHosts: [legacy.example.com], port: 8443 }]
    route: [{ destination: { host: cache, port: { number: 6379 } } }]
"#;

fn listener(app: &str, name: &str) -> Listener {
    decode(
        &sidecar(&proxy("prod", &[("app", app)]), &view(MESH)).listeners,
        name,
    )
}

fn tcp(c: &FilterChain) -> TcpProxy {
    let Some(filter::ConfigType::TypedConfig(any)) = &c.filters[0].config_type else {
        panic!("typed config")
    };
    TcpProxy::decode(any.value.as_slice()).expect("tcp_proxy")
}

fn target(c: &FilterChain) -> String {
    match tcp(c).cluster_specifier {
        Some(tcp_proxy::ClusterSpecifier::Cluster(c)) => c,
        Some(tcp_proxy::ClusterSpecifier::WeightedClusters(w)) => w
            .clusters
            .iter()
            .map(|c| format!("{}={}", c.name, c.weight))
            .collect::<Vec<_>>()
            .join(","),
        None => panic!("no cluster"),
    }
}

fn subnets(c: &FilterChain) -> Vec<String> {
    c.filter_chain_match
        .iter()
        .flat_map(|m| &m.prefix_ranges)
        .map(|r| {
            format!(
                "{}/{}",
                r.address_prefix,
                r.prefix_len.map_or(0, |l| l.value)
            )
        })
        .collect()
}

#[test]
fn tcp_routes_become_filter_chains_up_to_the_first_that_takes_everything() {
    let l = listener("web", "10.0.0.5_5432");
    let chains: Vec<(Vec<String>, String)> = l
        .filter_chains
        .iter()
        .map(|c| (subnets(c), target(c)))
        .collect();
    assert_eq!(
        chains,
        [
            (
                vec!["10.0.0.0/24".to_string()],
                "outbound|5432|v2|db.prod.svc.cluster.local".to_string()
            ),
            // The batch-only route does not apply to web; the next one takes the rest, and
            // the route after it (and the service's default) are unreachable.
            (
                vec![],
                "outbound|5432|v1|db.prod.svc.cluster.local".to_string()
            ),
        ]
    );
    let v2 = tcp(&l.filter_chains[0]);
    assert_eq!(v2.idle_timeout.map(|d| d.seconds), Some(300));
    assert_eq!(
        v2.max_downstream_connection_duration.map(|d| d.seconds),
        Some(3600)
    );
    assert!(v2.hash_policy.is_empty(), "v2 balances round robin");
    assert_eq!(tcp(&l.filter_chains[1]).hash_policy.len(), 1, "source IP");
    assert!(l.listener_filters.is_empty());

    let batch = listener("batch", "10.0.0.5_5432");
    assert_eq!(
        target(&batch.filter_chains[1]),
        "outbound|5432|v1|db.prod.svc.cluster.local=70,outbound|5432|v2|db.prod.svc.cluster.local=30"
    );
    assert_eq!(tcp(&batch.filter_chains[1]).stat_prefix, "db.prod");
    assert_eq!(batch.filter_chains.len(), 2);
}

#[test]
fn tls_routes_match_by_sni_and_replace_the_default() {
    let l = listener("web", "10.0.0.6_443");
    let chains: Vec<(Vec<String>, String)> = l
        .filter_chains
        .iter()
        .map(|c| {
            (
                c.filter_chain_match
                    .clone()
                    .unwrap_or_default()
                    .server_names,
                target(c),
            )
        })
        .collect();
    // The second route's first match repeats an SNI already routed for web; its second
    // match is for another port.
    assert_eq!(
        chains,
        [(
            vec!["api.prod.svc.cluster.local".to_string()],
            "outbound|443||api.prod.svc.cluster.local".to_string()
        )]
    );
    assert_eq!(
        l.listener_filters[0].name,
        "envoy.filters.listener.tls_inspector"
    );
    let other = listener("other", "10.0.0.6_443");
    assert_eq!(
        target(&other.filter_chains[0]),
        "outbound|6379||cache.prod.svc.cluster.local"
    );
}

#[test]
fn without_a_route_the_service_takes_every_connection() {
    let l = listener("web", "10.0.0.7_6379");
    assert_eq!(l.filter_chains.len(), 1);
    assert!(l.filter_chains[0].filter_chain_match.is_none());
    assert_eq!(
        target(&l.filter_chains[0]),
        "outbound|6379||cache.prod.svc.cluster.local"
    );
}

const EXTERNAL: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: openai, namespace: prod }
spec:
  hosts: [api.openai.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{ number: 443, name: https, protocol: HTTPS }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: payments, namespace: prod }
spec:
  hosts: [pay.example.com, "*.pay.example.com"]
  location: MESH_EXTERNAL
  resolution: NONE
  ports: [{ number: 443, name: tls, protocol: TLS }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: db-a, namespace: prod }
spec:
  hosts: [a.db.example.com]
  resolution: DNS
  ports: [{ number: 3306, name: tcp, protocol: TCP }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: db-b, namespace: prod }
spec:
  hosts: [b.db.example.com]
  resolution: DNS
  ports: [{ number: 3306, name: tcp, protocol: TCP }]
"#;

#[test]
fn services_without_an_address_share_the_ports_wildcard_listener() {
    let g = sidecar(&proxy("prod", &[("app", "web")]), &view(EXTERNAL));
    let tls: Listener = decode(&g.listeners, "0.0.0.0_443");
    let by_sni: Vec<(Vec<String>, String)> = tls
        .filter_chains
        .iter()
        .map(|c| {
            (
                c.filter_chain_match.clone().expect("a match").server_names,
                target(c),
            )
        })
        .collect();
    assert_eq!(
        by_sni,
        [
            (
                vec!["*.pay.example.com".to_string()],
                "outbound|443||*.pay.example.com".to_string()
            ),
            (
                vec!["api.openai.com".to_string()],
                "outbound|443||api.openai.com".to_string()
            ),
            (
                vec!["pay.example.com".to_string()],
                "outbound|443||pay.example.com".to_string()
            ),
        ]
    );
    assert_eq!(
        tls.listener_filters[0].name,
        "envoy.filters.listener.tls_inspector"
    );
    // Unknown SNI goes where the outbound traffic policy says.
    assert_eq!(
        target(tls.default_filter_chain.as_ref().expect("fallthrough")),
        "PassthroughCluster"
    );
    // A TCP port cannot tell two address-less services apart: the first keeps it.
    let tcp: Listener = decode(&g.listeners, "0.0.0.0_3306");
    assert_eq!(tcp.filter_chains.len(), 1);
    assert_eq!(
        target(&tcp.filter_chains[0]),
        "outbound|3306||a.db.example.com"
    );
}
