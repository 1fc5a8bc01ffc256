//! Traffic policies checked on the decoded clusters and routes a sidecar is sent: each
//! level of a DestinationRule merged as istiod merges it, and each setting in the field
//! istiod puts it in.

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::route::v3::{
    RouteAction, RouteConfiguration, retry_policy::RetryHostPredicate, route, route_action,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    HttpProtocolOptions, http_protocol_options,
};
use prost::Message;

use super::super::sidecar;
use super::super::tests::{decode, proxy, view};
use super::*;

const MESH: &str = r#"
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: prod }
spec:
  clusterIP: 10.0.0.1
  ports: [{ name: http, port: 9080 }, { name: grpc, port: 9090 }]
---
apiVersion: v1
kind: Service
metadata: { name: db, namespace: prod }
spec: { clusterIP: 10.0.0.2, ports: [{ name: tcp, port: 5432 }] }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: prod }
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp: { maxConnections: 100, connectTimeout: 30ms, tcpKeepalive: { time: 7200s, interval: 75s } }
      http:
        http1MaxPendingRequests: 10
        http2MaxRequests: 1000
        maxRequestsPerConnection: 10
        maxRetries: 3
        idleTimeout: 30s
        maxConcurrentStreams: 50
    outlierDetection: { consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50 }
    loadBalancer: { simple: ROUND_ROBIN }
    portLevelSettings:
    - port: { number: 9090 }
      loadBalancer: { consistentHash: { httpHeaderName: x-user } }
  subsets:
  - { name: v1, labels: { version: v1 } }
  - name: v2
    labels: { version: v2 }
    trafficPolicy:
      loadBalancer: { simple: RANDOM }
      outlierDetection:
        consecutiveGatewayErrors: 3
        minHealthPercent: 20
        splitExternalLocalOriginErrors: true
        consecutiveLocalOriginFailures: 2
  - name: v3
    labels: { version: v3 }
    trafficPolicy:
      portLevelSettings:
      - port: { number: 9080 }
        connectionPool: { http: { h2UpgradePolicy: UPGRADE } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: db, namespace: prod }
spec:
  host: db.prod.svc.cluster.local
  trafficPolicy: { loadBalancer: { simple: PASSTHROUGH } }
"#;

fn clusters() -> Vec<(String, envoy_types::pb::google::protobuf::Any)> {
    sidecar(&proxy("prod", &[]), &view(MESH)).clusters
}

fn cluster(name: &str) -> Cluster {
    decode(&clusters(), name)
}

fn http_options(c: &Cluster) -> Option<HttpProtocolOptions> {
    c.typed_extension_protocol_options
        .get("envoy.extensions.upstreams.http.v3.HttpProtocolOptions")
        .map(|a| HttpProtocolOptions::decode(a.value.as_slice()).expect("decodes"))
}

fn is_http2(o: &HttpProtocolOptions) -> bool {
    use http_protocol_options::explicit_http_config::ProtocolConfig;
    matches!(
        &o.upstream_protocol_options,
        Some(http_protocol_options::UpstreamProtocolOptions::ExplicitHttpConfig(e))
            if matches!(e.protocol_config, Some(ProtocolConfig::Http2ProtocolOptions(_)))
    )
}

fn limits(c: &Cluster) -> [u32; 4] {
    let t = &c
        .circuit_breakers
        .as_ref()
        .expect("circuit breakers")
        .thresholds[0];
    assert!(t.track_remaining);
    [
        t.max_connections,
        t.max_pending_requests,
        t.max_requests,
        t.max_retries,
    ]
    .map(|v| v.expect("set").value)
}

fn ms(c: &Cluster) -> i64 {
    let t = c.connect_timeout.expect("connect timeout");
    t.seconds * 1000 + i64::from(t.nanos / 1_000_000)
}

const MAX: u32 = u32::MAX;

#[test]
fn the_top_level_policy_sets_pools_outlier_detection_and_balancing() {
    let c = cluster("outbound|9080||reviews.prod.svc.cluster.local");
    assert_eq!(c.lb_policy, cluster::LbPolicy::RoundRobin as i32);
    assert_eq!(limits(&c), [100, 10, 1000, 3]);
    assert_eq!(ms(&c), 30);
    let ka = c
        .upstream_connection_options
        .and_then(|o| o.tcp_keepalive)
        .expect("keepalive");
    assert_eq!(
        (
            ka.keepalive_probes,
            ka.keepalive_time.map(|v| v.value),
            ka.keepalive_interval.map(|v| v.value)
        ),
        (None, Some(7200), Some(75))
    );
    let o = http_options(&c).expect("upstream HTTP options");
    // An HTTP/1.1 port: Envoy needs a protocol named, and max_concurrent_streams only
    // applies to HTTP/2 upstreams.
    assert!(!is_http2(&o));
    assert!(o.upstream_protocol_options.is_some());
    let common = o.common_http_protocol_options.expect("common options");
    assert_eq!(common.idle_timeout.map(|d| d.seconds), Some(30));
    assert_eq!(
        common.max_requests_per_connection.map(|v| v.value),
        Some(10)
    );
    let od = c.outlier_detection.expect("outlier detection");
    assert_eq!(od.consecutive_5xx.map(|v| v.value), Some(5));
    assert_eq!(od.enforcing_consecutive_5xx.map(|v| v.value), Some(100));
    assert_eq!(od.enforcing_success_rate.map(|v| v.value), Some(0));
    assert_eq!(od.consecutive_gateway_failure, None);
    assert_eq!(od.interval.map(|d| d.seconds), Some(10));
    assert_eq!(od.base_ejection_time.map(|d| d.seconds), Some(30));
    assert_eq!(od.max_ejection_percent.map(|v| v.value), Some(50));
    // Panic mode off: minHealthPercent unset is 0.
    let panic = c.common_lb_config.and_then(|l| l.healthy_panic_threshold);
    assert_eq!(panic.map(|p| p.value), Some(0.0));
}

#[test]
fn port_level_settings_replace_the_whole_top_level_policy() {
    let c = cluster("outbound|9090||reviews.prod.svc.cluster.local");
    assert_eq!(c.lb_policy, cluster::LbPolicy::RingHash as i32);
    let Some(cluster::LbConfig::RingHashLbConfig(r)) = &c.lb_config else {
        panic!("ring hash config: {:?}", c.lb_config)
    };
    assert_eq!(r.minimum_ring_size.map(|v| v.value), Some(1024));
    // Pool and outlier detection are not inherited from the top level.
    assert_eq!(limits(&c), [MAX; 4]);
    assert_eq!(ms(&c), 10_000);
    assert!(c.outlier_detection.is_none());
    assert!(c.upstream_connection_options.is_none());
    let o = http_options(&c).expect("gRPC port options");
    assert!(is_http2(&o));
    assert!(o.common_http_protocol_options.is_none());
    // A subset without a policy takes the rule's policy for its port.
    let v1 = cluster("outbound|9090|v1|reviews.prod.svc.cluster.local");
    assert_eq!(v1.lb_policy, cluster::LbPolicy::RingHash as i32);
}

#[test]
fn a_subset_policy_overrides_the_parts_it_sets() {
    let c = cluster("outbound|9080|v2|reviews.prod.svc.cluster.local");
    assert_eq!(c.lb_policy, cluster::LbPolicy::Random as i32);
    assert_eq!(limits(&c), [100, 10, 1000, 3], "pool from the top level");
    let od = c.outlier_detection.expect("the subset's outlier detection");
    assert_eq!(od.consecutive_5xx, None);
    assert_eq!(od.consecutive_gateway_failure.map(|v| v.value), Some(3));
    assert_eq!(
        od.enforcing_consecutive_gateway_failure.map(|v| v.value),
        Some(100)
    );
    assert!(od.split_external_local_origin_errors);
    assert_eq!(
        od.consecutive_local_origin_failure.map(|v| v.value),
        Some(2)
    );
    assert_eq!(
        od.enforcing_consecutive_local_origin_failure
            .map(|v| v.value),
        Some(100)
    );
    assert_eq!(
        od.enforcing_local_origin_success_rate.map(|v| v.value),
        Some(0)
    );
    let panic = c.common_lb_config.and_then(|l| l.healthy_panic_threshold);
    assert_eq!(panic.map(|p| p.value), Some(20.0));

    // A subset's port-level settings replace everything for that port: only the HTTP/2
    // upgrade is left, on an HTTP/1.1 port.
    let v3 = cluster("outbound|9080|v3|reviews.prod.svc.cluster.local");
    assert_eq!(v3.lb_policy, cluster::LbPolicy::LeastRequest as i32);
    assert_eq!(limits(&v3), [MAX; 4]);
    assert!(v3.outlier_detection.is_none());
    assert!(is_http2(&http_options(&v3).expect("upgraded")));
}

#[test]
fn passthrough_balancing_sends_to_the_original_destination() {
    let all = clusters();
    let c: Cluster = decode(&all, "outbound|5432||db.prod.svc.cluster.local");
    assert_eq!(
        c.cluster_discovery_type,
        Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::OriginalDst as i32
        ))
    );
    assert_eq!(c.lb_policy, cluster::LbPolicy::ClusterProvided as i32);
    assert!(c.eds_cluster_config.is_none());
    let g = sidecar(&proxy("prod", &[]), &view(MESH));
    assert!(
        !g.endpoints
            .iter()
            .any(|(n, _)| n == "outbound|5432||db.prod.svc.cluster.local"),
        "no EDS for an ORIGINAL_DST cluster"
    );
}

fn default_route(routes: &RouteConfiguration, domain: &str) -> RouteAction {
    let vh = routes
        .virtual_hosts
        .iter()
        .find(|vh| vh.domains.iter().any(|d| d == domain))
        .unwrap_or_else(|| panic!("no virtual host for {domain}"));
    match &vh.routes[0].action {
        Some(route::Action::Route(a)) => a.clone(),
        other => panic!("{other:?}"),
    }
}

fn header_hash(a: &RouteAction) -> Vec<String> {
    a.hash_policy
        .iter()
        .map(|h| match &h.policy_specifier {
            Some(route_action::hash_policy::PolicySpecifier::Header(h)) => h.header_name.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn predicates(a: &RouteAction) -> Vec<RetryHostPredicate> {
    a.retry_policy
        .clone()
        .expect("retries")
        .retry_host_predicate
}

#[test]
fn a_consistent_hash_becomes_the_routes_hash_policy() {
    let g = sidecar(&proxy("prod", &[]), &view(MESH));
    let on_9090: RouteConfiguration = decode(&g.routes, "9090");
    let a = default_route(&on_9090, "reviews.prod.svc.cluster.local");
    assert_eq!(header_hash(&a), ["x-user"]);
    // Without a VirtualService retries still avoid the hosts already tried (istiod).
    assert_eq!(predicates(&a).len(), 1);
    let on_9080: RouteConfiguration = decode(&g.routes, "9080");
    assert!(
        default_route(&on_9080, "reviews.prod.svc.cluster.local")
            .hash_policy
            .is_empty()
    );

    // A VirtualService destination naming the port hashes by that port's policy, and its
    // retries stay with the hashed host.
    let with_vs = format!(
        "{MESH}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{ name: reviews, namespace: prod }}
spec:
  hosts: [reviews]
  http:
  - match: [{{ headers: {{ canary: {{ exact: \"1\" }} }} }}]
    route:
    - {{ destination: {{ host: reviews, subset: v1, port: {{ number: 9090 }} }} }}
  - route:
    - {{ destination: {{ host: reviews, subset: v1 }}, weight: 50 }}
    - {{ destination: {{ host: reviews, subset: v2 }}, weight: 50 }}
"
    );
    let g = sidecar(&proxy("prod", &[]), &view(&with_vs));
    let on_9090: RouteConfiguration = decode(&g.routes, "9090");
    let vh = on_9090
        .virtual_hosts
        .iter()
        .find(|vh| {
            vh.domains
                .iter()
                .any(|d| d == "reviews.prod.svc.cluster.local")
        })
        .expect("virtual host");
    let action = |i: usize| match &vh.routes[i].action {
        Some(route::Action::Route(a)) => a.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(header_hash(&action(0)), ["x-user"]);
    assert!(predicates(&action(0)).is_empty());
    // Destinations without a port do not look at port-level settings.
    assert!(action(1).hash_policy.is_empty());
    assert_eq!(predicates(&action(1)).len(), 1);
}

#[test]
fn merging_follows_istio_level_by_level() {
    let v = view(MESH);
    let dr = &v
        .destination_rules
        .iter()
        .find(|d| d.name == "reviews")
        .expect("rule")
        .spec;
    let top = Policy::of(Some(dr), "", 9080);
    assert!(top.connection_pool.is_some() && top.outlier_detection.is_some());
    let port = Policy::of(Some(dr), "", 9090);
    assert!(port.connection_pool.is_none() && port.outlier_detection.is_none());
    assert!(port.load_balancer.is_some());
    // Unknown subsets and rules without a policy fall back to defaults quietly.
    assert_eq!(Policy::of(Some(dr), "v9", 9080), top);
    assert_eq!(Policy::of(None, "", 9080), Policy::default());
    assert_eq!(
        route_hash(dr, "v2", Some(9090)).and_then(|h| h.http_header_name.as_deref()),
        Some("x-user"),
        "a subset without its own hash takes the rule's port-level one"
    );
}

#[test]
fn the_endpoints_alone_are_those_of_the_eds_clusters() {
    use super::super::cluster::{eds_refs, outbound};
    let v = view(MESH);
    let p = proxy("prod", &[]);
    let from_clusters: Vec<_> = outbound(&p, &v).into_iter().filter_map(|b| b.eds).collect();
    assert_eq!(eds_refs(&p, &v), from_clusters);
    assert!(
        !from_clusters
            .iter()
            .any(|e| e.cluster == "outbound|5432||db.prod.svc.cluster.local"),
        "PASSTHROUGH balancing has no EDS"
    );
}
