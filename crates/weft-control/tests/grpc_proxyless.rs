//! A real grpcio client (Python, C-core xDS) configured only by `weft control`: it dials
//! `xds:///echo.default.svc.cluster.local:7070` and `xds:///echo:7070` with a proxyless
//! bootstrap (`GENERATOR: grpc`), and its RPCs must go where the VirtualService says — a
//! header match to v2, an 80/20 split otherwise, an injected abort that never reaches the
//! backend, retries as many as the rule allows — while the client ACKs every LDS, RDS, CDS
//! and EDS response and NACKs none.
//!
//! Needs `.venv` with grpcio and xds-protos (`scripts/install-grpcio.sh`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use weft_control::control::{Options, start};
use weft_xds::server::ServerStatus;
use weft_xds::type_url;

const NODE: &str = "sidecar~127.0.0.1~client-0.default~default.svc.cluster.local";
const TYPES: [&str; 4] = [
    type_url::LISTENER,
    type_url::ROUTE_CONFIGURATION,
    type_url::CLUSTER,
    type_url::CLUSTER_LOAD_ASSIGNMENT,
];
/// The script's own watchdog; the test waits a little longer for its answer.
const SCRIPT_LIFETIME: Duration = Duration::from_secs(120);
const WAIT: Duration = Duration::from_secs(20);
/// RPCs of the 80/20 split. v1's count is Binomial(400, 0.8): mean 320, standard deviation
/// 8; the check allows 4.5 standard deviations either way (±36, i.e. 71%–89%), a false
/// failure about once in 150 000 runs, while an even split (200) or plain round robin over
/// the four endpoints (100) fails it by far.
const SPLIT_RPCS: u64 = 400;
const SPLIT_V1_MEAN: u64 = 320;
const SPLIT_TOLERANCE: u64 = 36;

const SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: default }
spec:
  clusterIP: 10.96.0.70
  selector: { app: echo }
  ports: [{ name: grpc, port: 7070 }]
"#;

const ROUTING: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: echo, namespace: default }
spec:
  host: echo
  trafficPolicy:
    connectionPool: { http: { http2MaxRequests: 1000, idleTimeout: 60s }, tcp: { connectTimeout: 2s } }
    loadBalancer: { simple: LEAST_REQUEST }
  subsets:
  - name: v1
    labels: { version: v1 }
    trafficPolicy:
      outlierDetection: { consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50 }
  - name: v2
    labels: { version: v2 }
    trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: x-user } } }
  - { name: sink, labels: { version: sink } }
  - { name: flaky, labels: { version: flaky } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo, namespace: default }
spec:
  hosts: [echo]
  http:
  - name: fault
    match: [{ headers: { x-fault: { exact: "true" } } }]
    fault: { abort: { httpStatus: 503, percentage: { value: 100 } } }
    route: [{ destination: { host: echo, subset: sink } }]
  - name: sink
    match: [{ headers: { x-sink: { exact: "true" } } }]
    route: [{ destination: { host: echo, subset: sink } }]
  - name: retry-three
    match: [{ headers: { x-retry: { exact: three } } }]
    retries: { attempts: 3, retryOn: unavailable }
    route: [{ destination: { host: echo, subset: flaky } }]
  - name: retry-one
    match: [{ headers: { x-retry: { exact: one } } }]
    retries: { attempts: 1, retryOn: unavailable }
    route: [{ destination: { host: echo, subset: flaky } }]
  - name: canary
    match: [{ headers: { x-canary: { exact: "true" } } }]
    route: [{ destination: { host: echo, subset: v2 } }]
  - name: split
    route:
    - { destination: { host: echo, subset: v1 }, weight: 80 }
    - { destination: { host: echo, subset: v2 }, weight: 20 }
"#;

/// One Pod (for its labels) and one EndpointSlice per backend: all listen on 127.0.0.1,
/// each on its own port, and a slice carries one port for all its endpoints.
fn backend(name: &str, port: u64) -> String {
    format!(
        r#"
---
apiVersion: v1
kind: Pod
metadata: {{ name: echo-{name}, namespace: default, labels: {{ app: echo, version: {name} }} }}
spec: {{ containers: [{{ name: echo, image: echo }}] }}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{ name: echo-{name}, namespace: default, labels: {{ kubernetes.io/service-name: echo }} }}
addressType: IPv4
ports: [{{ name: grpc, port: {port} }}]
endpoints:
- {{ addresses: [127.0.0.1], conditions: {{ ready: true }}, targetRef: {{ kind: Pod, name: echo-{name} }} }}
"#
    )
}

fn python() -> anyhow::Result<PathBuf> {
    let root = weft_testkit::envoy::workspace_root();
    let python = root.join(".venv/bin/python");
    if !python.exists() {
        bail!(
            "{} is missing: run scripts/install-grpcio.sh",
            python.display()
        );
    }
    Ok(python)
}

/// `tests/grpc/proxyless.py`, talked to a JSON line at a time; killed on drop.
struct Script {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    stderr: PathBuf,
}

impl Script {
    fn start(python: &Path, log_dir: &Path) -> anyhow::Result<Self> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/grpc/proxyless.py");
        let stderr = log_dir.join("proxyless.stderr");
        let mut child = Command::new(python)
            .arg(&script)
            .arg("--max-lifetime")
            .arg(SCRIPT_LIFETIME.as_secs().to_string())
            .arg("--split-rpcs")
            .arg(SPLIT_RPCS.to_string())
            // No __pycache__ next to the scripts in the source tree.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr)?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} {}", python.display(), script.display()))?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = child.stdout.take().context("stdout")?;
        Ok(Self {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
            stderr,
        })
    }

    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        text.get(start..).unwrap_or(&text).to_string()
    }

    async fn read(&mut self, what: &str, timeout: Duration) -> anyhow::Result<Value> {
        let line = tokio::time::timeout(timeout, self.lines.next_line()).await;
        match line {
            Ok(Ok(Some(line))) => {
                serde_json::from_str(&line).with_context(|| format!("{what}: not JSON: {line}"))
            }
            Ok(Ok(None)) => bail!(
                "{what}: the script ended ({:?}); stderr:\n{}",
                self.child.try_wait(),
                self.stderr_tail()
            ),
            Ok(Err(e)) => bail!("{what}: reading stdout: {e}"),
            Err(_) => bail!(
                "{what}: nothing after {timeout:?}; stderr:\n{}",
                self.stderr_tail()
            ),
        }
    }

    async fn send(&mut self, value: &Value) -> anyhow::Result<()> {
        self.stdin
            .write_all(format!("{value}\n").as_bytes())
            .await?;
        self.stdin.flush().await?;
        Ok(())
    }
}

/// Every NACK the server records, from any of the node's streams, as it happens (a new
/// stream of the node replaces the status of its previous one).
fn record_nacks(server: &weft_xds::server::AdsServer) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut rx = server.watch_status();
    let out = seen.clone();
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let status = rx.borrow_and_update().clone();
            for (node, n) in &status.nodes {
                for (type_url, t) in &n.types {
                    if let Some(nack) = &t.last_nack {
                        let text = format!(
                            "{node} stream {} {type_url} version {} nonce {}: {}",
                            n.stream_id, nack.rejected_version, nack.nonce, nack.message
                        );
                        let mut out = out.lock();
                        if !out.contains(&text) {
                            out.push(text);
                        }
                    }
                }
            }
        }
    });
    seen
}

/// The node's latest stream ACKed the version last sent of every type and NACKed nothing.
fn all_acked(s: &ServerStatus) -> bool {
    s.nodes.get(NODE).is_some_and(|n| {
        TYPES.iter().all(|t| {
            n.types.get(*t).is_some_and(|ts| {
                ts.sent_version.is_some() && ts.acked_version == ts.sent_version && ts.nacks == 0
            })
        })
    })
}

fn counts(result: &Value, scenario: &str) -> serde_json::Map<String, Value> {
    result[scenario]["counts"]
        .as_object()
        .cloned()
        .unwrap_or_else(|| panic!("{scenario}: no counts in {result:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcio_follows_virtual_services_served_by_weft() -> anyhow::Result<()> {
    let python = python()?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("config");
    std::fs::create_dir(&config)?;
    let mut script = Script::start(&python, dir.path())?;

    let ports = script.read("backend ports", WAIT).await?;
    let mut registry = SERVICE.to_string();
    for name in ["v1", "v2", "sink", "flaky"] {
        let port = ports["ports"][name]
            .as_u64()
            .with_context(|| format!("no port for {name}: {ports}"))?;
        registry.push_str(&backend(name, port));
    }
    std::fs::write(config.join("registry.yaml"), registry)?;
    std::fs::write(config.join("routing.yaml"), ROUTING)?;

    let mut options = Options::new(&config, "127.0.0.1:0".parse()?);
    options.scan_interval = Duration::from_millis(50);
    options.debounce.after = Duration::from_millis(20);
    let (running, serve) = start(&options).await?;
    let serving = tokio::spawn(serve);
    let nacks = record_nacks(&running.server);

    script
        .send(&json!({ "xds": running.xds_address.to_string(), "node_id": NODE }))
        .await?;
    let result = script
        .read(
            "scenario results",
            SCRIPT_LIFETIME + Duration::from_secs(10),
        )
        .await?;
    eprintln!("proxyless.py: {result:#}");
    if let Some(error) = result.get("error") {
        bail!(
            "no RPC got through ({error}); NACKs seen by the server: {:#?}; the client's \
             view: {:#}; stderr:\n{}",
            nacks.lock(),
            result["csds"],
            script.stderr_tail()
        );
    }

    // The server's side: ACKs for every type on the node's latest stream, no NACK on any.
    let status = running
        .server
        .wait_for("the gRPC node to ACK every type", WAIT, all_acked)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let nacked = nacks.lock().clone();
    assert!(nacked.is_empty(), "the gRPC client NACKed: {nacked:#?}");
    assert!(
        status.nodes[NODE].streams >= 2,
        "one ADS stream per xds:/// target: {:#?}",
        status.nodes[NODE]
    );
    let (_, generated) = running.control.generated(NODE).expect("node known");
    let listeners: Vec<&str> = generated
        .listeners
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        listeners,
        [
            "echo.default.svc.cluster.local:7070",
            "echo.default.svc:7070",
            "echo.default:7070",
            "echo:7070",
        ]
    );

    // The DestinationRule's policies as gRPC takes them (and ACKs, below): LEAST_REQUEST
    // becomes round robin, a consistent hash a ring, outlier detection stays.
    let cluster = |name: &str| {
        use prost::Message;
        let any = &generated
            .clusters
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .1;
        envoy_types::pb::envoy::config::cluster::v3::Cluster::decode(any.value.as_slice())
            .expect("a cluster")
    };
    use envoy_types::pb::envoy::config::cluster::v3::cluster::LbPolicy;
    let all = cluster("outbound|7070||echo.default.svc.cluster.local");
    assert_eq!(all.lb_policy, LbPolicy::RoundRobin as i32);
    assert!(all.circuit_breakers.is_some() && all.outlier_detection.is_none());
    let v1 = cluster("outbound|7070|v1|echo.default.svc.cluster.local");
    let od = v1.outlier_detection.expect("v1's outlier detection");
    assert_eq!(od.consecutive_5xx.map(|v| v.value), Some(5));
    let v2 = cluster("outbound|7070|v2|echo.default.svc.cluster.local");
    assert_eq!(v2.lb_policy, LbPolicy::RingHash as i32);

    // The client's side (its CSDS dump): every resource of both targets ACKED.
    let csds = result["csds"].as_array().context("csds")?;
    let not_acked: Vec<&Value> = csds.iter().filter(|r| r["status"] != "ACKED").collect();
    assert!(not_acked.is_empty(), "not ACKED by grpcio: {not_acked:#?}");
    let acked_names = |type_url: &str| -> Vec<&str> {
        let mut names: Vec<&str> = csds
            .iter()
            .filter(|r| r["type_url"] == type_url)
            .filter_map(|r| r["name"].as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    };
    assert_eq!(
        acked_names(type_url::LISTENER),
        ["echo.default.svc.cluster.local:7070", "echo:7070"]
    );
    assert_eq!(
        acked_names(type_url::ROUTE_CONFIGURATION),
        ["outbound|7070||echo.default.svc.cluster.local"]
    );
    let subsets = [
        "outbound|7070|flaky|echo.default.svc.cluster.local",
        "outbound|7070|sink|echo.default.svc.cluster.local",
        "outbound|7070|v1|echo.default.svc.cluster.local",
        "outbound|7070|v2|echo.default.svc.cluster.local",
    ];
    assert_eq!(acked_names(type_url::CLUSTER), subsets);
    assert_eq!(acked_names(type_url::CLUSTER_LOAD_ASSIGNMENT), subsets);

    // Header match: every RPC to v2, by the FQDN and by the short name.
    assert_eq!(
        counts(&result, "canary"),
        json!({ "v2": 50 }).as_object().cloned().unwrap()
    );
    assert_eq!(
        counts(&result, "short_name"),
        json!({ "v2": 10 }).as_object().cloned().unwrap()
    );

    // The weighted split: only v1 and v2, v1 within the binomial tolerance of 80%.
    let split = counts(&result, "split");
    let v1 = split.get("v1").and_then(Value::as_u64).unwrap_or(0);
    let v2 = split.get("v2").and_then(Value::as_u64).unwrap_or(0);
    assert_eq!(
        v1 + v2,
        SPLIT_RPCS,
        "only v1 and v2 answer the split: {split:?}"
    );
    assert!(
        v1.abs_diff(SPLIT_V1_MEAN) <= SPLIT_TOLERANCE,
        "v1 answered {v1} of {SPLIT_RPCS}, expected {SPLIT_V1_MEAN} ± {SPLIT_TOLERANCE}"
    );

    // Fault: the same subset answers without the header; with it every RPC is aborted by
    // the client's fault filter (503 → UNAVAILABLE) and none reaches the backend.
    assert_eq!(
        counts(&result, "sink"),
        json!({ "sink": 5 }).as_object().cloned().unwrap()
    );
    assert_eq!(
        counts(&result, "fault"),
        json!({ "status:UNAVAILABLE": 20 })
            .as_object()
            .cloned()
            .unwrap(),
        "{:#}",
        result["fault"]
    );
    assert_eq!(result["fault"]["backend_calls"], 0);

    // Retries: the backend fails each request's first two attempts. `attempts: 3` gets the
    // third attempt through; `attempts: 1` (two attempts, fewer than istiod's default policy
    // would allow) does not — so the rule's own count reached the client.
    assert_eq!(result["retry"]["result"], "flaky", "{:#}", result["retry"]);
    assert_eq!(result["retry"]["attempts"], json!([0, 1, 2]));
    assert_eq!(
        result["retry_once"]["result"], "status:UNAVAILABLE",
        "{:#}",
        result["retry_once"]
    );
    assert_eq!(result["retry_once"]["attempts"], json!([0, 1]));

    // What the backends saw adds up: nothing routed anywhere else.
    assert_eq!(
        result["backend_calls"],
        json!({ "v1": v1, "v2": v2 + 50 + 10, "sink": 5, "flaky": 3 + 2 })
    );

    let exit = tokio::time::timeout(WAIT, script.child.wait()).await??;
    assert!(
        exit.success(),
        "proxyless.py: {exit}\n{}",
        script.stderr_tail()
    );
    serving.abort();
    Ok(())
}
