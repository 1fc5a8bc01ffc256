//! Traffic through a sidecar configured only by `weft control`, with Istio's capture, run
//! on real Envoy 1.40 and on `weft proxy` alike: inside a private network namespace
//! iptables sends the app's connections for the mesh's addresses to the proxy's 15001
//! (sparing the proxy's own group 1337), the proxy gets its listeners, routes, clusters
//! and endpoints over ADS from an in-process control plane reading a directory of
//! Kubernetes and Istio YAML, and requests to the service's ClusterIP must go where the
//! VirtualService says: a header match to v2, an 80/20 split otherwise, an injected abort,
//! a TCP service's connections by the tcp route for the client's labels, and an HTTP
//! service's requests by its DestinationRule's consistent hash.
//! Then an edit of the split must take effect without a restart. The inbound side is
//! checked the same way on 15006.
//!
//! Needs root (network namespaces, iptables), like proxy_capture.
//! Run both proxies: `cargo test -p weft --test mesh_capture`
//! Only one:         `WEFT_CONFORMANCE_ONLY=envoy|weft cargo test -p weft --test mesh_capture`

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use weft_control::control::{Options, start};
use weft_testkit::ads::AdsProxy;
use weft_testkit::netns::{Backend, Capture, GroupProxy, NetNs, PROXY_GID};
use weft_testkit::{EchoSeen, Error, HttpRequest, ProxyBinary, client, conformance};
use weft_xds::server::AdsServer;
use weft_xds::type_url;

const NODE: &str = "sidecar~10.99.0.2~productpage-v1-0.default~default.svc.cluster.local";
const VIP: &str = "10.99.0.10:9080";
const WAIT: Duration = Duration::from_secs(20);
/// Requests for the split; with p = 0.2 the count of v2 answers has a standard deviation of
/// 8, and the check allows 5 of them either way (a false failure about once in 3 million).
const SPLIT_REQUESTS: u32 = 400;
const SPLIT_TOLERANCE: u32 = 40;

/// The client's sidecar (productpage at 10.99.0.2).
fn bootstrap(ads: SocketAddr) -> String {
    bootstrap_for(NODE, "10.99.0.2", "{ app: productpage, version: v1 }", ads)
}

fn bootstrap_for(node: &str, ip: &str, labels: &str, ads: SocketAddr) -> String {
    format!(
        r#"node:
  id: {node}
  cluster: mesh.default
  metadata:
    NAMESPACE: default
    INSTANCE_IPS: {ip}
    LABELS: {labels}
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

/// The reviews Service at 10.99.0.10:9080 with one pod per version, both on 10.99.0.3 (one
/// port each), described by EndpointSlices whose targetRefs give the pods' labels.
const REGISTRY: &str = r#"
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec:
  clusterIP: 10.99.0.10
  selector: { app: reviews }
  ports: [{ name: http, port: 9080 }]
---
apiVersion: v1
kind: Pod
metadata: { name: reviews-v1-0, namespace: default, labels: { app: reviews, version: v1 } }
spec: { containers: [{ name: app, image: reviews }] }
---
apiVersion: v1
kind: Pod
metadata: { name: reviews-v2-0, namespace: default, labels: { app: reviews, version: v2 } }
spec: { containers: [{ name: app, image: reviews }] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: reviews-v1, namespace: default, labels: { kubernetes.io/service-name: reviews } }
addressType: IPv4
ports: [{ name: http, port: 8081 }]
endpoints:
- addresses: [10.99.0.3]
  targetRef: { kind: Pod, name: reviews-v1-0, namespace: default }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: reviews-v2, namespace: default, labels: { kubernetes.io/service-name: reviews } }
addressType: IPv4
ports: [{ name: http, port: 8082 }]
endpoints:
- addresses: [10.99.0.3]
  targetRef: { kind: Pod, name: reviews-v2-0, namespace: default }
---
apiVersion: v1
kind: Service
metadata: { name: ledger, namespace: default }
spec:
  clusterIP: 10.99.0.11
  selector: { app: ledger }
  ports: [{ name: tcp, port: 7000 }]
---
apiVersion: v1
kind: Pod
metadata: { name: ledger-v1-0, namespace: default, labels: { app: ledger, version: v1 } }
spec: { containers: [{ name: app, image: ledger }] }
---
apiVersion: v1
kind: Pod
metadata: { name: ledger-v2-0, namespace: default, labels: { app: ledger, version: v2 } }
spec: { containers: [{ name: app, image: ledger }] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: ledger-v1, namespace: default, labels: { kubernetes.io/service-name: ledger } }
addressType: IPv4
ports: [{ name: tcp, port: 8083 }]
endpoints:
- addresses: [10.99.0.3]
  targetRef: { kind: Pod, name: ledger-v1-0, namespace: default }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: ledger-v2, namespace: default, labels: { kubernetes.io/service-name: ledger } }
addressType: IPv4
ports: [{ name: tcp, port: 8084 }]
endpoints:
- addresses: [10.99.0.3]
  targetRef: { kind: Pod, name: ledger-v2-0, namespace: default }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ledger, namespace: default }
spec:
  host: ledger
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
---
apiVersion: v1
kind: Service
metadata: { name: ratings, namespace: default }
spec:
  clusterIP: 10.99.0.12
  selector: { app: ratings }
  ports: [{ name: http, port: 9080 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: ratings-1, namespace: default, labels: { kubernetes.io/service-name: ratings } }
addressType: IPv4
ports: [{ name: http, port: 8083 }]
endpoints:
- addresses: [10.99.0.3]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: ratings-2, namespace: default, labels: { kubernetes.io/service-name: ratings } }
addressType: IPv4
ports: [{ name: http, port: 8084 }]
endpoints:
- addresses: [10.99.0.3]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ratings, namespace: default }
spec:
  host: ratings
  trafficPolicy:
    loadBalancer: { consistentHash: { httpHeaderName: x-user } }
    outlierDetection: { consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s }
    connectionPool: { http: { http1MaxPendingRequests: 100, maxRequestsPerConnection: 10 } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ledger, namespace: default }
spec:
  hosts: [ledger]
  tcp:
  - match: [{ sourceLabels: { app: ratings } }]
    route: [{ destination: { host: ledger, subset: v1 } }]
  - match: [{ sourceLabels: { app: productpage } }]
    route: [{ destination: { host: ledger, subset: v2 } }]
"#;

/// The ratings Service (HTTP), hashed by the `x-user` header by its DestinationRule.
const RATINGS: &str = "10.99.0.12:9080";
/// Requests per user: with two backends, a hash that did not hold would send all of them to
/// one backend with probability 2^-19.
const HASHED_REQUESTS: u32 = 20;

/// The ledger Service: plain TCP (its backends happen to speak HTTP, which names them).
const LEDGER: &str = "10.99.0.11:7000";
/// Connections to the ledger; with both versions behind a plain round robin, all of them
/// reaching v2 by chance has probability 2^-20.
const LEDGER_CONNECTIONS: u32 = 20;

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
  - name: teapot
    match: [{{ headers: {{ x-fault: {{ exact: abort }} }} }}]
    fault: {{ abort: {{ httpStatus: 418, percentage: {{ value: 100 }} }} }}
    route: [{{ destination: {{ host: reviews, subset: v1 }} }}]
  - name: canary
    match: [{{ headers: {{ x-canary: {{ exact: "true" }} }} }}]
    route: [{{ destination: {{ host: reviews, subset: v2 }} }}]
  - name: split
    route:
    - {{ destination: {{ host: reviews, subset: v1 }}, weight: {} }}
    - {{ destination: {{ host: reviews, subset: v2 }}, weight: {v2_weight} }}
"#,
        100 - v2_weight
    )
}

fn write(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write config");
    std::fs::rename(&tmp, dir.join(name)).expect("rename config");
}

/// One request to the service address: (status, answering backend).
async fn get(host: &str, headers: &[(&str, &str)]) -> Result<(u16, Option<String>), Error> {
    get_at(VIP, host, headers).await
}

async fn get_at(
    address: &str,
    host: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, Option<String>), Error> {
    let mut req = HttpRequest::get(host, "/reviews/1");
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = client::send(address.parse().expect("address"), &req).await?;
    Ok((
        resp.status.as_u16(),
        EchoSeen::parse(&resp.body).map(|s| s.backend),
    ))
}

async fn split(host: &str) -> Result<BTreeMap<String, u32>, Error> {
    let mut seen = BTreeMap::new();
    for _ in 0..SPLIT_REQUESTS {
        let (status, backend) = get(host, &[]).await?;
        let key = backend.unwrap_or_else(|| format!("status {status}"));
        *seen.entry(key).or_default() += 1;
    }
    Ok(seen)
}

/// Waits (bounded) until `node` has ACKed every type it subscribed to, with no NACK.
async fn all_acked(server: &AdsServer, node: &str) -> Result<(), Error> {
    server
        .wait_for("Envoy to ACK every type", WAIT, |s| {
            s.nodes.get(node).is_some_and(|n| {
                n.types.len() == 4
                    && n.types.values().all(|t| {
                        t.sent_version.is_some()
                            && t.acked_version == t.sent_version
                            && t.last_nack.is_none()
                    })
            })
        })
        .await
        .map(|_| ())
        .map_err(|e| Error::Conformance(e.to_string()))
}

/// Waits (bounded) until Envoy has ACKed route configuration version `after` or later.
async fn routes_acked_after(server: &weft_xds::server::AdsServer, after: u64) -> Result<(), Error> {
    server
        .wait_for("Envoy to ACK the new routes", WAIT, |s| {
            s.nodes.get(NODE).is_some_and(|n| {
                n.types.get(type_url::ROUTE_CONFIGURATION).is_some_and(|t| {
                    t.acks > after && t.acked_version == t.sent_version && t.last_nack.is_none()
                })
            })
        })
        .await
        .map(|_| ())
        .map_err(|e| Error::Conformance(e.to_string()))
}

/// The proxies to run: real Envoy and this build's `weft proxy`, or one of them.
fn peers() -> Vec<ProxyBinary> {
    let only = std::env::var("WEFT_CONFORMANCE_ONLY").ok();
    conformance::peers(only.as_deref(), Path::new(env!("CARGO_BIN_EXE_weft")))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn sidecars_route_captured_traffic_as_the_virtual_service_says() {
    for peer in peers() {
        routes_captured_traffic(&peer);
    }
}

fn routes_captured_traffic(peer: &ProxyBinary) {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "registry.yaml", REGISTRY);
    write(dir.path(), "routing.yaml", &routing(20));
    let proxy_bin = GroupProxy::new(peer, PROXY_GID).expect("group proxy");
    let ns = NetNs::create(&["10.99.0.2/24", "10.99.0.3/24"]).expect("netns");
    ns.capture(&Capture::outbound(&["10.99.0.0/24"]))
        .expect("capture");
    let result = ns.run(|| async {
        let _v1 = Backend::start("reviews-v1", "10.99.0.3:8081".parse().expect("addr")).await?;
        let _v2 = Backend::start("reviews-v2", "10.99.0.3:8082".parse().expect("addr")).await?;
        let _l1 = Backend::start("ledger-v1", "10.99.0.3:8083".parse().expect("addr")).await?;
        let _l2 = Backend::start("ledger-v2", "10.99.0.3:8084".parse().expect("addr")).await?;
        let mut options = Options::new(dir.path(), "127.0.0.1:0".parse().expect("addr"));
        options.scan_interval = Duration::from_millis(50);
        options.debounce.after = Duration::from_millis(20);
        let (running, serve) = start(&options)
            .await
            .map_err(|e| Error::Conformance(e.to_string()))?;
        let serving = tokio::spawn(serve);
        let mut proxy =
            AdsProxy::start(proxy_bin.binary(), &bootstrap(running.xds_address)).await?;
        let outcome = async {
            all_acked(&running.server, NODE).await?;
            proxy.wait_ready().await?;

            // Every name a caller may use reaches the service's virtual host.
            for host in [
                "reviews",
                "reviews.default",
                "reviews.default.svc.cluster.local:9080",
                VIP,
            ] {
                let (status, backend) = get(host, &[("x-canary", "true")]).await?;
                assert_eq!(
                    (status, backend.as_deref()),
                    (200, Some("reviews-v2")),
                    "host {host}"
                );
            }
            let (status, backend) = get("reviews", &[("x-fault", "abort")]).await?;
            assert_eq!(
                (status, backend),
                (418, None),
                "the abort answers before any backend"
            );

            let seen = split("reviews").await?;
            let v2 = seen.get("reviews-v2").copied().unwrap_or(0);
            let v1 = seen.get("reviews-v1").copied().unwrap_or(0);
            assert_eq!(
                v1 + v2,
                SPLIT_REQUESTS,
                "only the two subsets answer: {seen:?}"
            );
            assert!(
                v2.abs_diff(SPLIT_REQUESTS / 5) <= SPLIT_TOLERANCE,
                "80/20 expected: {seen:?}"
            );

            // TCP: the VirtualService's tcp route for this workload's labels (v2), not the
            // one for another workload's, nor a round robin over both versions.
            for _ in 0..LEDGER_CONNECTIONS {
                let (status, backend) = get_at(LEDGER, "ledger", &[]).await?;
                assert_eq!((status, backend.as_deref()), (200, Some("ledger-v2")));
            }

            // The DestinationRule's consistent hash: each user's requests stay on one
            // backend, and the users together reach both.
            let mut reached = std::collections::BTreeSet::new();
            for user in ["alice", "bob", "carol", "dave", "erin", "frank"] {
                let mut seen = std::collections::BTreeSet::new();
                for _ in 0..HASHED_REQUESTS {
                    let (status, backend) = get_at(RATINGS, "ratings", &[("x-user", user)]).await?;
                    assert_eq!(status, 200);
                    seen.insert(backend.unwrap_or_default());
                }
                assert_eq!(seen.len(), 1, "{user} went to {seen:?}");
                reached.extend(seen);
            }
            assert_eq!(reached.len(), 2, "six users all hashed to {reached:?}");

            // Everything to v2 now; the edit reaches Envoy without a restart.
            let acks =
                running.server.status().nodes[NODE].types[type_url::ROUTE_CONFIGURATION].acks;
            write(dir.path(), "routing.yaml", &routing(100));
            routes_acked_after(&running.server, acks).await?;
            let seen = split("reviews").await?;
            assert_eq!(
                seen.get("reviews-v2").copied(),
                Some(SPLIT_REQUESTS),
                "{seen:?}"
            );
            Ok::<_, Error>(())
        }
        .await;
        let outcome = outcome.map_err(|e| {
            Error::Conformance(format!(
                "{}: {e}
proxy log:
{}",
                peer.kind,
                proxy.log_tail()
            ))
        });
        serving.abort();
        outcome
    });
    if let Err(e) = result {
        panic!("{e}\n{}", ns.nat_rules().unwrap_or_default());
    }
}

/// The server side: Envoy as the sidecar of the reviews pods (10.99.0.3), with inbound
/// capture of 10.99.0.3 to 15006. A request for a port the workload serves for the Service
/// takes that port's chain (an HTTP connection manager to `inbound|PORT||`, which rewrites
/// `server` to istio-envoy); a port no Service declares is passed through, still as HTTP.
#[test]
fn sidecars_serve_captured_inbound_traffic_by_port() {
    for peer in peers() {
        serves_inbound(&peer);
    }
}

fn serves_inbound(peer: &ProxyBinary) {
    const SERVER_NODE: &str = "sidecar~10.99.0.3~reviews-v1-0.default~default.svc.cluster.local";
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "registry.yaml", REGISTRY);
    let proxy_bin = GroupProxy::new(peer, PROXY_GID).expect("group proxy");
    let ns = NetNs::create(&["10.99.0.2/24", "10.99.0.3/24"]).expect("netns");
    ns.capture(&Capture {
        redirect_port: 15006,
        proxy_gid: PROXY_GID,
        destinations: vec!["10.99.0.3/32".into()],
    })
    .expect("capture");
    let result = ns.run(|| async {
        let _v1 = Backend::start("reviews-v1", "10.99.0.3:8081".parse().expect("addr")).await?;
        let _other = Backend::start("app-7000", "10.99.0.3:7000".parse().expect("addr")).await?;
        let mut options = Options::new(dir.path(), "127.0.0.1:0".parse().expect("addr"));
        options.scan_interval = Duration::from_millis(50);
        let (running, serve) = start(&options)
            .await
            .map_err(|e| Error::Conformance(e.to_string()))?;
        let serving = tokio::spawn(serve);
        let node_bootstrap = bootstrap_for(
            SERVER_NODE,
            "10.99.0.3",
            "{ app: reviews, version: v1 }",
            running.xds_address,
        );
        let mut proxy = AdsProxy::start(proxy_bin.binary(), &node_bootstrap).await?;
        let outcome = async {
            all_acked(&running.server, SERVER_NODE).await?;
            proxy.wait_ready().await?;
            for (dial, backend) in [
                ("10.99.0.3:8081", "reviews-v1"),
                ("10.99.0.3:7000", "app-7000"),
            ] {
                let req = HttpRequest::get(dial, "/inbound");
                let resp = client::send(dial.parse().expect("address"), &req).await?;
                let seen = EchoSeen::parse(&resp.body).map(|s| s.backend);
                assert_eq!(
                    (resp.status.as_u16(), seen.as_deref()),
                    (200, Some(backend)),
                    "{dial}"
                );
                assert_eq!(
                    resp.headers.get("server").and_then(|v| v.to_str().ok()),
                    Some("istio-envoy"),
                    "{dial} went through the inbound HTTP connection manager"
                );
            }
            Ok::<_, Error>(())
        }
        .await;
        let outcome = outcome.map_err(|e| {
            Error::Conformance(format!(
                "{}: {e}
proxy log:
{}",
                peer.kind,
                proxy.log_tail()
            ))
        });
        serving.abort();
        outcome
    });
    if let Err(e) = result {
        panic!("{e}\n{}", ns.nat_rules().unwrap_or_default());
    }
}
