//! The debug server (istiod's 15014) of an in-process control plane, read over HTTP while
//! real Envoy 1.40 is connected: `/ready`, `/debug/syncz` (SYNCED for every type once Envoy
//! ACKed), `/metrics` (promtool accepts it; counters match what the ADS server did), and
//! `/debug/config_dump` (the clusters, listeners, routes and endpoints generated for
//! Envoy). Then a hand-driven ADS client that NACKs every listener response must show up as
//! NACK with its error text, counted in `pilot_total_xds_rejects`, and a client whose node
//! id is not Istio's must be counted in `pilot_xds_push_errors`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::Node;
use weft_control::control::{Options, start};
use weft_control::debug::UnknownProxy;
use weft_control::debug::config_dump::ConfigDump;
use weft_control::debug::syncz::{SyncState, SyncStatus};
use weft_testkit::admin::{self, exposition, promtool};
use weft_testkit::ads::AdsProxy;
use weft_testkit::proxy::ProxyBinary;
use weft_xds::Mode;
use weft_xds::client::{ClientConfig, Update, XdsClient, XdsHandler};
use weft_xds::server::{AdsServer, ServerStatus};
use weft_xds::type_url;

const NODE: &str = "sidecar~127.0.0.1~productpage-v1-0.default~default.svc.cluster.local";
const NACKER: &str = "sidecar~127.0.0.9~nacker-0.default~default.svc.cluster.local";
const REJECTION: &str = "Error adding/updating listener(s) 0.0.0.0_9080: rejected by the test";
const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);
const TYPES: [&str; 4] = [
    type_url::CLUSTER,
    type_url::CLUSTER_LOAD_ASSIGNMENT,
    type_url::LISTENER,
    type_url::ROUTE_CONFIGURATION,
];
/// The only promtool finding allowed: istiod's counter names have no `_total`, and weft
/// keeps istiod's names so dashboards and alerts carry over.
const ISTIO_NAMING_LINT: &str = "counter metrics should have \"_total\" suffix";

fn bootstrap(ads: SocketAddr) -> String {
    format!(
        r#"node:
  id: {NODE}
  cluster: productpage.default
  metadata:
    NAMESPACE: default
    ISTIO_VERSION: 1.28.0
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

fn mesh(reviews_ip: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Service
metadata: {{ name: reviews, namespace: default }}
spec:
  clusterIP: 10.0.0.10
  selector: {{ app: reviews }}
  ports:
  - {{ name: http, port: 9080, targetPort: 9080 }}
---
apiVersion: v1
kind: Service
metadata: {{ name: ratings, namespace: default }}
spec:
  clusterIP: 10.0.0.11
  selector: {{ app: ratings }}
  ports:
  - {{ name: grpc-api, port: 9090 }}
---
apiVersion: v1
kind: Pod
metadata: {{ name: reviews-v1-0, namespace: default, labels: {{ app: reviews, version: v1 }} }}
spec: {{ containers: [{{ name: app, image: reviews }}] }}
status: {{ phase: Running, podIP: {reviews_ip} }}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{ name: reviews, namespace: default }}
spec:
  host: reviews
  subsets:
  - {{ name: v1, labels: {{ version: v1 }} }}
"#
    )
}

fn write(dir: &Path, name: &str, text: &str) {
    // Written aside and renamed, so a scan never reads half a file.
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write config");
    std::fs::rename(&tmp, dir.join(name)).expect("rename config");
}

fn all_acked(s: &ServerStatus) -> bool {
    s.nodes.get(NODE).is_some_and(|n| {
        TYPES.iter().all(|t| {
            n.types
                .get(*t)
                .is_some_and(|ts| ts.sent_version.is_some() && ts.acked_version == ts.sent_version)
        })
    })
}

async fn get(debug: SocketAddr, path: &str) -> (u16, String) {
    admin::status_and_body(
        &admin::get(debug, path)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}")),
    )
}

async fn syncz(debug: SocketAddr) -> Vec<SyncStatus> {
    let (code, body) = get(debug, "/debug/syncz").await;
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("syncz is not JSON ({e}): {body}"))
}

async fn metrics(debug: SocketAddr) -> (String, Vec<exposition::Sample>) {
    let (code, body) = get(debug, "/metrics").await;
    assert_eq!(code, 200, "{body}");
    let samples = exposition::prometheus_samples(&body).expect("samples parse");
    (body, samples)
}

fn value(samples: &[exposition::Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    exposition::prometheus_value(samples, name, labels)
        .unwrap_or_else(|| panic!("{name}{labels:?} not exposed"))
}

/// Polls `/metrics` until `done` holds (the counters follow the ADS server's status).
async fn metrics_until(
    debug: SocketAddr,
    what: &str,
    done: impl Fn(&[exposition::Sample]) -> bool,
) -> (String, Vec<exposition::Sample>) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (text, samples) = metrics(debug).await;
        if done(&samples) {
            return (text, samples);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}:\n{text}"
        );
        tokio::time::sleep(POLL).await;
    }
}

fn short(type_url: &str) -> String {
    type_url::short_name(type_url).to_ascii_lowercase()
}

/// Responses sent for `type_url` over every node's stream.
fn responses(status: &ServerStatus, type_url: &str) -> f64 {
    status
        .nodes
        .values()
        .filter_map(|n| n.types.get(type_url))
        .map(|t| t.responses as f64)
        .sum()
}

/// ACKs clusters and rejects listeners, as Envoy would a listener it cannot build.
#[derive(Debug)]
struct RejectListeners;

impl XdsHandler for RejectListeners {
    fn apply(&self, type_url: &str, _: &Update<'_>) -> Result<(), String> {
        if type_url == type_url::LISTENER {
            Err(REJECTION.to_string())
        } else {
            Ok(())
        }
    }
}

fn client(ads: SocketAddr, id: &str) -> XdsClient {
    let mut node = Node {
        id: id.to_string(),
        ..Default::default()
    };
    let labels = BTreeMap::from([("app".to_string(), "nacker".to_string())]);
    let ip = "127.0.0.9".parse().expect("ip");
    node.metadata = Some(weft_control::node::metadata(
        "default",
        &labels,
        "nacker",
        &[ip],
    ));
    let config = ClientConfig::new(format!("http://{ads}"), node, Mode::StateOfTheWorld);
    XdsClient::spawn(config, Arc::new(RejectListeners)).expect("client starts")
}

async fn wait_synced(server: &AdsServer, what: &str) -> ServerStatus {
    server
        .wait_for(what, WAIT, all_acked)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_pages_follow_envoy_and_a_nacking_client() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    write(dir.path(), "mesh.yaml", &mesh("127.0.0.21"));
    let mut options = Options::new(dir.path(), "127.0.0.1:0".parse()?);
    options.debug_address = Some("127.0.0.1:0".parse()?);
    options.mesh.capture_bind = "127.0.0.1".into();
    options.mesh.outbound_port = weft_testkit::ports::free_port()?;
    options.mesh.inbound_port = weft_testkit::ports::free_port()?;
    options.scan_interval = Duration::from_millis(50);
    options.debounce.after = Duration::from_millis(20);
    let (running, serve) = start(&options).await?;
    let serving = tokio::spawn(serve);
    let debug = running.debug_address.expect("debug server asked for");
    let server = &running.server;

    // Ready as soon as the first push was computed, before any proxy connects.
    assert_eq!(get(debug, "/ready").await, (200, "ready\n".to_string()));
    assert!(syncz(debug).await.is_empty());
    let (_, before) = metrics(debug).await;
    assert_eq!(value(&before, "pilot_xds", &[]), 0.0);
    assert_eq!(value(&before, "pilot_services", &[]), 2.0);

    let envoy = AdsProxy::start(&ProxyBinary::envoy()?, &bootstrap(running.xds_address)).await?;
    let status = wait_synced(server, "Envoy to ACK every type").await;

    // syncz: one entry, every type SYNCED at the version the server sent.
    let entries = syncz(debug).await;
    assert_eq!(entries.len(), 1, "{entries:#?}");
    let envoy_sync = &entries[0];
    assert_eq!(
        (
            envoy_sync.proxy.as_str(),
            envoy_sync.proxy_type.as_str(),
            envoy_sync.istio_version.as_str(),
            envoy_sync.mode.as_str()
        ),
        (NODE, "sidecar", "1.28.0", "sotw")
    );
    for t in TYPES {
        let short = type_url::short_name(t);
        let sync = &envoy_sync.xds[short];
        let sent = &status.nodes[NODE].types[t];
        assert_eq!(sync.type_url, t);
        assert_eq!(sync.status, SyncState::Synced, "{short}: {sync:#?}");
        assert_eq!(sync.sent_version, sent.sent_version, "{short}");
        assert_eq!(sync.acked_version, sync.sent_version, "{short}");
        assert_eq!(sync.sent_nonce.as_deref(), Some(sent.sent_nonce.as_str()));
        assert_eq!(sync.error, None);
    }

    // /metrics: promtool parses it, only istiod's naming is linted, and the counters are
    // what the server did.
    let (text, samples) = metrics_until(debug, "pushes to match the server", |s| {
        let status = server.status();
        TYPES.iter().all(|t| {
            exposition::prometheus_value(s, "pilot_xds_pushes", &[("type", &short(t))])
                == Some(responses(&status, t))
        })
    })
    .await;
    let verdict = promtool::check_metrics(&text)?;
    assert!(verdict.parsed(), "promtool: {verdict:?}\n{text}");
    assert_eq!(
        verdict.lint_kinds(),
        BTreeSet::from([ISTIO_NAMING_LINT.to_string()]),
        "{verdict:?}\n{text}"
    );
    assert_eq!(
        verdict.lint[ISTIO_NAMING_LINT],
        BTreeSet::from(
            [
                "pilot_total_xds_rejects",
                "pilot_xds_push_errors",
                "pilot_xds_pushes"
            ]
            .map(String::from)
        )
    );
    assert_eq!(value(&samples, "pilot_xds", &[]), 1.0);
    assert_eq!(value(&samples, "pilot_services", &[]), 2.0);
    for t in TYPES {
        assert!(value(&samples, "pilot_xds_pushes", &[("type", &short(t))]) >= 1.0);
        assert_eq!(
            value(&samples, "pilot_total_xds_rejects", &[("type", &short(t))]),
            0.0
        );
    }
    assert_eq!(value(&samples, "pilot_xds_push_errors", &[]), 0.0);

    // config_dump: what was generated for Envoy, by full id and by POD.NAMESPACE.
    let (code, body) = get(
        debug,
        &format!("/debug/config_dump?proxyID={}", admin::query_escape(NODE)),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let dump: ConfigDump = serde_json::from_str(&body)?;
    let (code, by_short_name) =
        get(debug, "/debug/config_dump?proxyID=productpage-v1-0.default").await;
    assert_eq!(code, 200, "{by_short_name}");
    assert_eq!(serde_json::from_str::<ConfigDump>(&by_short_name)?, dump);
    assert_eq!(dump.proxy.id, NODE);
    let names = |v: Vec<&str>| v.into_iter().map(String::from).collect::<Vec<_>>();
    assert_eq!(
        dump.clusters()
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>(),
        // The namespace's shared clusters in name order (as they are sent), then the
        // proxy's own inbound ones.
        names(vec![
            "BlackHoleCluster",
            "PassthroughCluster",
            "outbound|9080|v1|reviews.default.svc.cluster.local",
            "outbound|9080||reviews.default.svc.cluster.local",
            "outbound|9090||ratings.default.svc.cluster.local",
            "InboundPassthroughClusterIpv4",
        ])
    );
    let cds_version = status.nodes[NODE].types[type_url::CLUSTER]
        .sent_version
        .clone();
    for c in dump.clusters() {
        assert_eq!(Some(&c.version_info), cds_version.as_ref(), "{}", c.name);
        assert_eq!(c.type_url, type_url::CLUSTER);
        assert!(c.decode_error.is_none() && !c.encoded.is_empty(), "{c:?}");
    }
    let reviews_v1 = &dump.clusters()[2];
    let summary = reviews_v1.summary.as_ref().expect("decoded");
    assert_eq!(
        (summary.kind.as_str(), summary.eds_service_name.as_deref()),
        (
            "EDS",
            Some("outbound|9080|v1|reviews.default.svc.cluster.local")
        )
    );
    let outbound = dump
        .listeners()
        .iter()
        .find(|l| l.name == "virtualOutbound")
        .and_then(|l| l.summary.clone())
        .expect("virtualOutbound");
    assert_eq!(
        (outbound.address.as_str(), outbound.port),
        ("127.0.0.1", u32::from(options.mesh.outbound_port))
    );
    let endpoints = dump
        .endpoints()
        .iter()
        .find(|e| e.name == "outbound|9080|v1|reviews.default.svc.cluster.local")
        .and_then(|e| e.summary.clone())
        .expect("reviews v1 endpoints");
    assert_eq!(
        endpoints
            .endpoints
            .iter()
            .map(|e| e.address.as_str())
            .collect::<Vec<_>>(),
        ["127.0.0.21:9080"]
    );
    assert!(dump.routes().iter().any(|r| r.name == "9080"));

    let (code, body) = get(debug, "/debug/config_dump?proxyID=nobody.default").await;
    assert_eq!(code, 404, "{body}");
    let unknown: UnknownProxy = serde_json::from_str(&body)?;
    assert_eq!(unknown.connected, [NODE]);
    assert!(
        unknown.error.contains("nobody.default"),
        "{}",
        unknown.error
    );

    // An endpoint moves: EDS goes out, Envoy ACKs, and the convergence time is recorded.
    let converged = value(&samples, "pilot_proxy_convergence_time_count", &[]);
    let eds_before = responses(&status, type_url::CLUSTER_LOAD_ASSIGNMENT);
    write(dir.path(), "mesh.yaml", &mesh("127.0.0.22"));
    server
        .wait_for("the EDS update to be ACKed", WAIT, |s| {
            all_acked(s) && responses(s, type_url::CLUSTER_LOAD_ASSIGNMENT) > eds_before
        })
        .await?;
    let (_, samples) = metrics_until(debug, "a convergence observation", |s| {
        exposition::prometheus_value(s, "pilot_proxy_convergence_time_count", &[])
            .is_some_and(|n| n > converged)
    })
    .await;
    let seconds = value(&samples, "pilot_proxy_convergence_time_sum", &[]);
    assert!(seconds > 0.0 && seconds < WAIT.as_secs_f64(), "{seconds}");

    // A client that NACKs listeners.
    let nacker = client(running.xds_address, NACKER);
    let nack = server
        .wait_for_nack(NACKER, type_url::LISTENER, WAIT)
        .await?;
    assert_eq!(nack.message, REJECTION);
    let entries = syncz(debug).await;
    let nacked = entries
        .iter()
        .find(|e| e.proxy == NACKER)
        .unwrap_or_else(|| panic!("{NACKER} in {entries:#?}"));
    assert_eq!(nacked.xds["LDS"].status, SyncState::Nack);
    assert_eq!(nacked.xds["LDS"].error.as_deref(), Some(REJECTION));
    assert_eq!(nacked.xds["LDS"].acked_version, None);
    assert_eq!(nacked.xds["CDS"].status, SyncState::Synced);
    // It never asked for endpoints or routes.
    assert_eq!(nacked.xds["EDS"].status, SyncState::NotSent);
    assert_eq!(nacked.xds["RDS"].status, SyncState::NotSent);
    let (_, samples) = metrics_until(debug, "the NACK to be counted", |s| {
        exposition::prometheus_value(s, "pilot_total_xds_rejects", &[("type", "lds")]) == Some(1.0)
    })
    .await;
    assert_eq!(value(&samples, "pilot_xds", &[]), 2.0);
    for t in ["cds", "eds", "rds"] {
        assert_eq!(
            value(&samples, "pilot_total_xds_rejects", &[("type", t)]),
            0.0
        );
    }
    // Envoy is untouched by the other client.
    let envoy_sync = syncz(debug).await.into_iter().find(|e| e.proxy == NODE);
    assert!(
        envoy_sync.is_some_and(|e| e.xds.values().all(|t| t.status == SyncState::Synced)),
        "Envoy lost sync"
    );
    nacker.shutdown();

    // A node id that is not Istio's: the stream is refused and counted.
    let refused = client(running.xds_address, "envoy-without-istio-id");
    metrics_until(debug, "a refused stream to be counted", |s| {
        exposition::prometheus_value(s, "pilot_xds_push_errors", &[]).is_some_and(|n| n >= 1.0)
    })
    .await;
    refused.shutdown();
    assert!(
        syncz(debug)
            .await
            .iter()
            .all(|e| e.proxy != "envoy-without-istio-id")
    );

    drop(envoy);
    serving.abort();
    Ok(())
}
