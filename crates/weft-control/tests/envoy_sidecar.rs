//! Real Envoy 1.40 as a sidecar of `weft control`: it connects with an Istio node id and
//! metadata, must ACK every type the control plane translates from a directory of Istio and
//! Kubernetes YAML, and after edits must ACK again — with an endpoint-only change sent as
//! EDS alone and a broken file leaving the last good configuration in place.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use weft_control::control::{Options, start};
use weft_testkit::ads::{AdsProxy, acked_all};
use weft_testkit::proxy::ProxyBinary;
use weft_xds::server::{AdsServer, ServerStatus};
use weft_xds::type_url;

const NODE: &str = "sidecar~127.0.0.1~productpage-v1-0.default~default.svc.cluster.local";
const WAIT: Duration = Duration::from_secs(20);
const TYPES: [&str; 4] = [
    type_url::CLUSTER,
    type_url::CLUSTER_LOAD_ASSIGNMENT,
    type_url::LISTENER,
    type_url::ROUTE_CONFIGURATION,
];

fn bootstrap(ads: SocketAddr) -> String {
    format!(
        r#"node:
  id: {NODE}
  locality: {{ region: r1, zone: z1 }}
  cluster: productpage.default
  metadata:
    NAMESPACE: default
    SERVICE_ACCOUNT: bookinfo-productpage
    INSTANCE_IPS: 127.0.0.1
    LABELS: {{ app: productpage, version: v1 }}
admin:
  address:
    socket_address: {{ address: 127.0.0.1, port_value: 0 }}
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    grpc_services:
    - envoy_grpc: {{ cluster_name: xds-grpc }}
  cds_config: {{ ads: {{}}, resource_api_version: V3 }}
  lds_config: {{ ads: {{}}, resource_api_version: V3 }}
static_resources:
  clusters:
  - name: xds-grpc
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{ http2_protocol_options: {{}} }}
    load_assignment:
      cluster_name: xds-grpc
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{ address: 127.0.0.1, port_value: {} }}
"#,
        ads.port()
    )
}

const SERVICES: &str = r#"
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec:
  clusterIP: 10.0.0.10
  selector: { app: reviews }
  ports:
  - { name: http, port: 9080, targetPort: 9080 }
---
apiVersion: v1
kind: Service
metadata: { name: ratings, namespace: default }
spec:
  clusterIP: 10.0.0.11
  selector: { app: ratings }
  ports:
  - { name: grpc-api, port: 9090 }
  - { name: db, port: 5432 }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: external-api, namespace: default }
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports:
  - { number: 443, name: tls, protocol: TLS }
"#;

fn pods(reviews_v2_ip: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{ name: reviews-v1-0, namespace: default, labels: {{ app: reviews, version: v1, topology.kubernetes.io/region: r1, topology.kubernetes.io/zone: z1 }} }}
spec: {{ containers: [{{ name: app, image: reviews }}] }}
status: {{ phase: Running, podIP: 127.0.0.21 }}
---
apiVersion: v1
kind: Pod
metadata: {{ name: reviews-v2-0, namespace: default, labels: {{ app: reviews, version: v2, topology.kubernetes.io/region: r2, topology.kubernetes.io/zone: z9 }} }}
spec: {{ containers: [{{ name: app, image: reviews }}] }}
status: {{ phase: Running, podIP: {reviews_v2_ip} }}
---
apiVersion: v1
kind: Pod
metadata: {{ name: ratings-0, namespace: default, labels: {{ app: ratings }} }}
spec: {{ containers: [{{ name: app, image: ratings }}] }}
status: {{ phase: Running, podIP: 127.0.0.31 }}
"#
    )
}

fn routing(v2_weight: u32) -> String {
    format!(
        r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{ name: reviews, namespace: default }}
spec:
  host: reviews
  subsets:
  - {{ name: v1, labels: {{ version: v1 }} }}
  - {{ name: v2, labels: {{ version: v2 }} }}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{ name: reviews, namespace: default }}
spec:
  hosts: [reviews]
  http:
  - name: canary-header
    match:
    - headers: {{ x-canary: {{ exact: "true" }} }}
    route:
    - destination: {{ host: reviews, subset: v2 }}
    fault:
      abort: {{ httpStatus: 503, percentage: {{ value: 0.5 }} }}
  - name: split
    route:
    - destination: {{ host: reviews, subset: v1 }}
      weight: {}
    - destination: {{ host: reviews, subset: v2 }}
      weight: {v2_weight}
    timeout: 3s
    retries: {{ attempts: 3, perTryTimeout: 1s, retryOn: "5xx,gateway-error,503" }}
"#,
        100 - v2_weight
    )
}

fn write(dir: &Path, name: &str, text: &str) {
    // Written aside and renamed, so a scan never reads half a file.
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write config");
    std::fs::rename(&tmp, dir.join(name)).expect("rename config");
}

/// Every type ACKed at the version last sent, none NACKed.
fn all_acked(s: &ServerStatus) -> bool {
    acked_all(s, NODE, &TYPES)
}

fn responses(s: &ServerStatus, type_url: &str) -> u64 {
    s.nodes[NODE].types[type_url].responses
}

async fn wait_acked(
    server: &AdsServer,
    what: &str,
    extra: impl Fn(&ServerStatus) -> bool,
) -> ServerStatus {
    server
        .wait_for(what, WAIT, |s| all_acked(s) && extra(s))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_acks_the_translated_mesh_and_its_updates() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    write(dir.path(), "services.yaml", SERVICES);
    write(dir.path(), "pods.yaml", &pods("127.0.0.22"));
    write(dir.path(), "routing.yaml", &routing(20));
    let mut options = Options::new(dir.path(), "127.0.0.1:0".parse()?);
    options.mesh.capture_bind = "127.0.0.1".into();
    options.mesh.outbound_port = weft_testkit::ports::free_port()?;
    options.mesh.inbound_port = weft_testkit::ports::free_port()?;
    options.scan_interval = Duration::from_millis(50);
    options.debounce.after = Duration::from_millis(20);
    let (running, serve) = start(&options).await?;
    let serving = tokio::spawn(serve);
    let envoy = AdsProxy::start(&ProxyBinary::envoy()?, &bootstrap(running.xds_address)).await?;
    let server = &running.server;

    let first = wait_acked(server, "Envoy to ACK every type", |_| true).await;
    let (_, generated) = running.control.generated(NODE).expect("node known");
    let names = |v: &Vec<(String, _)>| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&generated.clusters),
        // The namespace's shared part in name order, then the proxy's own (inbound) part.
        [
            "BlackHoleCluster",
            "PassthroughCluster",
            "outbound|443||api.example.com",
            "outbound|5432||ratings.default.svc.cluster.local",
            "outbound|9080|v1|reviews.default.svc.cluster.local",
            "outbound|9080|v2|reviews.default.svc.cluster.local",
            "outbound|9080||reviews.default.svc.cluster.local",
            "outbound|9090||ratings.default.svc.cluster.local",
            "InboundPassthroughClusterIpv4",
        ]
    );
    assert_eq!(
        names(&generated.listeners),
        [
            "0.0.0.0_443",
            "0.0.0.0_9080",
            "0.0.0.0_9090",
            "10.0.0.11_5432",
            "virtualOutbound",
            "virtualInbound",
        ]
    );
    // 5432 is named `db`: not a protocol, so it is sniffed and gets a route of its own.
    assert_eq!(
        names(&generated.routes),
        ["9080", "9090", "ratings.default.svc.cluster.local:5432"]
    );
    let (_, config_dump) = envoy
        .admin_get("/config_dump?resource=dynamic_active_clusters")
        .await?;
    assert!(
        config_dump.contains("outbound|9080|v2|reviews.default.svc.cluster.local"),
        "{config_dump}"
    );
    // The DNS ServiceEntry is a STRICT_DNS cluster resolving its host.
    assert!(
        config_dump.contains("\"name\": \"outbound|443||api.example.com\"")
            && config_dump.contains("STRICT_DNS")
            && config_dump.contains("\"address\": \"api.example.com\""),
        "{config_dump}"
    );

    // An endpoint moves: EDS alone goes out.
    write(dir.path(), "pods.yaml", &pods("127.0.0.23"));
    let eds_before = responses(&first, type_url::CLUSTER_LOAD_ASSIGNMENT);
    let moved = wait_acked(server, "the EDS update", |s| {
        responses(s, type_url::CLUSTER_LOAD_ASSIGNMENT) > eds_before
    })
    .await;
    for t in [
        type_url::CLUSTER,
        type_url::LISTENER,
        type_url::ROUTE_CONFIGURATION,
    ] {
        assert_eq!(
            responses(&moved, t),
            responses(&first, t),
            "{t} was re-sent for an endpoint change"
        );
    }

    // A routing change: RDS goes out, ACKed.
    write(dir.path(), "routing.yaml", &routing(50));
    let rds_before = responses(&moved, type_url::ROUTE_CONFIGURATION);
    let rerouted = wait_acked(server, "the RDS update", |s| {
        responses(s, type_url::ROUTE_CONFIGURATION) > rds_before
    })
    .await;
    let (_, routes) = envoy
        .admin_get("/config_dump?resource=dynamic_route_configs")
        .await?;
    assert!(routes.contains("\"weight\": 50"), "{routes}");

    // A broken file is rejected; nothing is pushed and the last good routes stay.
    write(
        dir.path(),
        "routing.yaml",
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: reviews }\n\
         spec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: { host: reviews, subset: \"bad subset!\" }\n",
    );
    let pushes = running.control.push_count();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        running.control.push_count(),
        pushes,
        "a rejected file must not cause a push"
    );
    assert_eq!(
        responses(&server.status(), type_url::ROUTE_CONFIGURATION),
        responses(&rerouted, type_url::ROUTE_CONFIGURATION)
    );

    drop(envoy);
    serving.abort();
    Ok(())
}

/// DestinationRule traffic policies at every level, and a VirtualService hashing by them.
const POLICIES: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: default }
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp: { maxConnections: 100, connectTimeout: 250ms, tcpKeepalive: { probes: 3, time: 600s, interval: 30s } }
      http:
        http1MaxPendingRequests: 10
        http2MaxRequests: 1000
        maxRequestsPerConnection: 10
        maxRetries: 3
        idleTimeout: 30s
    outlierDetection:
      consecutive5xxErrors: 5
      consecutiveGatewayErrors: 2
      interval: 5s
      baseEjectionTime: 1m
      maxEjectionPercent: 50
      minHealthPercent: 25
    loadBalancer: { simple: ROUND_ROBIN, warmupDurationSecs: 30s }
  subsets:
  - name: v1
    labels: { version: v1 }
    trafficPolicy:
      loadBalancer: { consistentHash: { httpCookie: { name: user, path: /, ttl: 60s } } }
  - name: v2
    labels: { version: v2 }
    trafficPolicy:
      loadBalancer: { simple: RANDOM }
      outlierDetection: { splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 4 }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ratings, namespace: default }
spec:
  host: ratings.default.svc.cluster.local
  trafficPolicy:
    connectionPool: { http: { h2UpgradePolicy: UPGRADE, useClientProtocol: false, maxConcurrentStreams: 64 } }
    portLevelSettings:
    - port: { number: 9090 }
      connectionPool: { http: { maxConcurrentStreams: 32 }, tcp: { maxConnectionDuration: 1h } }
      loadBalancer: { consistentHash: { maglev: { tableSize: 1021 }, useSourceIp: true } }
    - port: { number: 5432 }
      loadBalancer: { consistentHash: { ringHash: { minimumRingSize: 2048 }, httpQueryParameterName: shard } }
---
apiVersion: v1
kind: Service
metadata: { name: ledger, namespace: default }
spec: { clusterIP: 10.0.0.12, ports: [{ name: tcp, port: 7000 }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ledger, namespace: default }
spec:
  hosts: [ledger]
  tcp:
  - match: [{ destinationSubnets: [10.0.0.12/32], sourceLabels: { app: productpage } }]
    route:
    - { destination: { host: ledger }, weight: 60 }
    - { destination: { host: ratings, port: { number: 9090 } }, weight: 40 }
  - route: [{ destination: { host: ledger } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: external-api, namespace: default }
spec:
  hosts: [api.example.com]
  tls:
  - match: [{ sniHosts: [api.example.com], port: 443 }]
    route: [{ destination: { host: api.example.com, port: { number: 443 } } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http:
  - name: sticky
    match: [{ headers: { x-sticky: { exact: "1" } } }]
    route: [{ destination: { host: reviews, subset: v1 } }]
  - name: team
    match: [{ uri: { prefix: /team } }]
    delegate: { name: reviews-team }
  - name: split
    mirror: { host: ratings, port: { number: 9090 } }
    mirrorPercentage: { value: 25 }
    corsPolicy:
      allowOrigins: [{ exact: https://shop.example.com }]
      allowMethods: [GET]
      maxAge: 1h
    route:
    - { destination: { host: reviews, subset: v1 }, weight: 50 }
    - { destination: { host: reviews, subset: v2 }, weight: 50 }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: productpage, namespace: default }
spec:
  workloadSelector: { labels: { app: productpage } }
  inboundConnectionPool: { tcp: { maxConnections: 64 } }
  ingress:
  - port: { number: 9080, protocol: HTTP, name: http }
    defaultEndpoint: 127.0.0.1:8080
  - port: { number: ADMIN_PORT, protocol: TCP, name: admin }
    captureMode: NONE
    bind: 127.0.0.1
    defaultEndpoint: 127.0.0.1:7071
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews-team, namespace: default }
spec:
  http:
  - name: beta
    match: [{ uri: { prefix: /team/beta } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
"#;

/// One dynamic cluster (or route configuration) out of an Envoy config dump asked for one
/// `resource` list, which lists the entries themselves.
fn dumped<'a>(dump: &'a serde_json::Value, kind: &str, name: &str) -> &'a serde_json::Value {
    dump["configs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| &c[kind])
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in Envoy's config dump: {dump}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_applies_destination_rule_traffic_policies() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    write(dir.path(), "services.yaml", SERVICES);
    write(dir.path(), "pods.yaml", &pods("127.0.0.22"));
    // The uncaptured ingress port is really bound, so it must be free.
    let admin_port = weft_testkit::ports::free_port()?;
    write(
        dir.path(),
        "policies.yaml",
        &POLICIES.replace("ADMIN_PORT", &admin_port.to_string()),
    );
    let mut options = Options::new(dir.path(), "127.0.0.1:0".parse()?);
    options.mesh.capture_bind = "127.0.0.1".into();
    options.mesh.outbound_port = weft_testkit::ports::free_port()?;
    options.mesh.inbound_port = weft_testkit::ports::free_port()?;
    let (running, serve) = start(&options).await?;
    let serving = tokio::spawn(serve);
    let envoy = AdsProxy::start(&ProxyBinary::envoy()?, &bootstrap(running.xds_address)).await?;
    wait_acked(&running.server, "Envoy to ACK the policies", |_| true).await;

    // What Envoy applied, read back from Envoy itself.
    let (_, text) = envoy.admin_get("/clusters").await?;
    let reviews = "outbound|9080||reviews.default.svc.cluster.local";
    for (limit, value) in [
        ("max_connections", 100),
        ("max_pending_requests", 10),
        ("max_requests", 1000),
        ("max_retries", 3),
    ] {
        let line = format!("{reviews}::default_priority::{limit}::{value}\n");
        assert!(text.contains(&line), "no {line:?} in {text}");
    }
    let (_, dump) = envoy
        .admin_get("/config_dump?resource=dynamic_active_clusters")
        .await?;
    let dump: serde_json::Value = serde_json::from_str(&dump)?;
    let c = dumped(&dump, "cluster", reviews);
    assert_eq!(
        c["lb_policy"],
        serde_json::Value::Null,
        "ROUND_ROBIN is the default"
    );
    assert_eq!(c["connect_timeout"], "0.250s");
    assert_eq!(
        c["round_robin_lb_config"]["slow_start_config"]["slow_start_window"],
        "30s"
    );
    let od = &c["outlier_detection"];
    assert_eq!(od["consecutive_5xx"], 5);
    assert_eq!(od["consecutive_gateway_failure"], 2);
    assert_eq!(od["enforcing_consecutive_gateway_failure"], 100);
    assert_eq!(od["enforcing_success_rate"], 0);
    assert_eq!(od["interval"], "5s");
    assert_eq!(od["base_ejection_time"], "60s");
    assert_eq!(od["max_ejection_percent"], 50);
    assert_eq!(
        c["common_lb_config"]["healthy_panic_threshold"]["value"],
        25.0
    );
    let ka = &c["upstream_connection_options"]["tcp_keepalive"];
    assert_eq!(
        (
            &ka["keepalive_probes"],
            &ka["keepalive_time"],
            &ka["keepalive_interval"]
        ),
        (&3.into(), &600.into(), &30.into())
    );
    let common = &c["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
        ["common_http_protocol_options"];
    assert_eq!(
        (
            &common["idle_timeout"],
            &common["max_requests_per_connection"]
        ),
        (&"30s".into(), &10.into())
    );

    let v1 = dumped(
        &dump,
        "cluster",
        "outbound|9080|v1|reviews.default.svc.cluster.local",
    );
    assert_eq!(v1["lb_policy"], "RING_HASH");
    assert_eq!(v1["ring_hash_lb_config"]["minimum_ring_size"], "1024");
    assert_eq!(v1["outlier_detection"]["consecutive_5xx"], 5, "inherited");
    let v2 = dumped(
        &dump,
        "cluster",
        "outbound|9080|v2|reviews.default.svc.cluster.local",
    );
    assert_eq!(v2["lb_policy"], "RANDOM");
    assert_eq!(
        v2["outlier_detection"]["consecutive_local_origin_failure"],
        4
    );
    assert_eq!(
        v2["outlier_detection"]["consecutive_5xx"],
        serde_json::Value::Null,
        "replaced"
    );

    let grpc = dumped(
        &dump,
        "cluster",
        "outbound|9090||ratings.default.svc.cluster.local",
    );
    assert_eq!(grpc["lb_policy"], "MAGLEV");
    assert_eq!(grpc["maglev_lb_config"]["table_size"], "1021");
    let options = &grpc["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    assert_eq!(
        options["explicit_http_config"]["http2_protocol_options"]["max_concurrent_streams"],
        32
    );
    assert_eq!(
        options["common_http_protocol_options"]["max_connection_duration"],
        "3600s"
    );
    let db = dumped(
        &dump,
        "cluster",
        "outbound|5432||ratings.default.svc.cluster.local",
    );
    assert_eq!(db["lb_policy"], "RING_HASH");
    assert_eq!(db["ring_hash_lb_config"]["minimum_ring_size"], "2048");
    // The top level's UPGRADE is replaced by the port's settings on 5432, whose protocol is
    // sniffed: it keeps following the downstream protocol.
    let db_options = &db["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    assert!(
        db_options["use_downstream_protocol_config"].is_object(),
        "{db}"
    );

    let (_, routes) = envoy
        .admin_get("/config_dump?resource=dynamic_route_configs")
        .await?;
    let routes: serde_json::Value = serde_json::from_str(&routes)?;
    let rc = dumped(&routes, "route_config", "9080");
    let vh = rc["virtual_hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|vh| vh["name"] == "reviews.default.svc.cluster.local:9080")
        .expect("reviews virtual host");
    let sticky = &vh["routes"][0]["route"];
    assert_eq!(sticky["hash_policy"][0]["cookie"]["name"], "user");
    assert_eq!(sticky["hash_policy"][0]["cookie"]["ttl"], "60s");
    assert_eq!(
        sticky["retry_policy"]["retry_host_predicate"],
        serde_json::Value::Null,
        "retries stay on the hashed host"
    );
    // The delegate's route, under the root's prefix, sits where the root route was.
    assert_eq!(vh["routes"][1]["name"], "team-beta");
    assert_eq!(vh["routes"][1]["match"]["prefix"], "/team/beta");
    let split = &vh["routes"][2]["route"];
    assert_eq!(
        split["hash_policy"].as_array().map(Vec::len),
        Some(1),
        "v1's hash; v2 has none"
    );
    let mirror = &split["request_mirror_policies"][0];
    assert_eq!(
        mirror["cluster"],
        "outbound|9090||ratings.default.svc.cluster.local"
    );
    assert_eq!(
        mirror["runtime_fraction"]["default_value"]["numerator"],
        250_000
    );
    let cors = &vh["routes"][2]["typed_per_filter_config"]["envoy.filters.http.cors"];
    assert_eq!(cors["allow_methods"], "GET");
    assert_eq!(cors["max_age"], "3600");

    // Outlier detection makes Istio's default locality failover apply: the proxy is in
    // r1/z1, so v1's pod (r1/z1) has priority 0 and v2's (r2) priority 1.
    let (_, eds) = envoy
        .admin_get("/config_dump?resource=dynamic_endpoint_configs&include_eds")
        .await?;
    let eds: serde_json::Value = serde_json::from_str(&eds)?;
    let cla = eds["configs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| &c["endpoint_config"])
        .find(|c| c["cluster_name"] == reviews)
        .unwrap_or_else(|| panic!("no endpoints of {reviews}: {eds}"));
    let priorities: Vec<(String, u64)> = cla["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            (
                l["locality"]["region"].as_str().unwrap_or("").to_string(),
                l["priority"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        priorities,
        [("r1".to_string(), 0), ("r2".to_string(), 1)],
        "{cla}"
    );

    // TCP routes by subnet with a weighted split, then the catch-all route; TLS by SNI on
    // the wildcard listener of an address-less ServiceEntry.
    let (_, listeners) = envoy
        .admin_get("/config_dump?resource=dynamic_listeners")
        .await?;
    let listeners: serde_json::Value = serde_json::from_str(&listeners)?;
    let active = |name: &str| {
        listeners["configs"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["name"] == name)
            .map(|l| l["active_state"]["listener"].clone())
            .unwrap_or_else(|| panic!("no active listener {name}: {listeners}"))
    };
    let ledger = active("10.0.0.12_7000");
    let chains = ledger["filter_chains"].as_array().expect("chains");
    assert_eq!(chains.len(), 2, "{ledger}");
    assert_eq!(
        chains[0]["filter_chain_match"]["prefix_ranges"][0]["address_prefix"],
        "10.0.0.12"
    );
    let split = &chains[0]["filters"][0]["typed_config"]["weighted_clusters"]["clusters"];
    assert_eq!(
        split[1]["name"],
        "outbound|9090||ratings.default.svc.cluster.local"
    );
    assert_eq!(split[1]["weight"], 40);
    // The Sidecar's ingress: a capture chain for 9080 to the app on localhost, and a
    // listener of its own for the uncaptured port.
    let own = active(&format!("127.0.0.1_{admin_port}"));
    assert_eq!(own["address"]["socket_address"]["port_value"], admin_port);
    let inbound = dumped(&dump, "cluster", "inbound|9080||");
    assert_eq!(inbound["type"], "STATIC");
    assert_eq!(
        inbound["circuit_breakers"]["thresholds"][0]["max_connections"],
        64
    );
    let tls = active("0.0.0.0_443");
    assert_eq!(
        tls["filter_chains"][0]["filter_chain_match"]["server_names"][0],
        "api.example.com"
    );
    assert_eq!(
        tls["listener_filters"][0]["name"],
        "envoy.filters.listener.tls_inspector"
    );

    drop(envoy);
    serving.abort();
    Ok(())
}
