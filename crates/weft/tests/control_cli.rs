//! `weft control`, `weft proxy-status` and `weft proxy-config` end to end through the real
//! binary: the control plane runs on port 0 and writes its xDS and debug addresses to files,
//! ADS clients connect (one ACKs everything, one NACKs clusters), and the two inspection
//! commands must show what the control plane knows — SYNCED everywhere for the first, the
//! NACK and its error for the second, the generated clusters as istioctl's table, and a
//! clear error naming the connected proxies for one that is not.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use weft_control::debug::config_dump::ConfigDump;
use weft_control::debug::syncz::{SyncState, SyncStatus};
use weft_testkit::ads::xds::client::{ClientConfig, Update, XdsClient, XdsHandler};
use weft_testkit::ads::xds::envoy_types::pb::envoy::config::core::v3::Node;
use weft_testkit::ads::xds::type_url;
use weft_testkit::ads::xds::{Mode, Subscription};

const APP: &str = "sidecar~127.0.0.1~productpage-v1-0.default~default.svc.cluster.local";
const NACKER: &str = "sidecar~127.0.0.9~nacker-0.default~default.svc.cluster.local";
const REJECTION: &str =
    "cluster outbound|9080||reviews.default.svc.cluster.local: rejected by the test";
const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);

const MESH: &str = r#"
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec:
  clusterIP: 10.0.0.10
  selector: { app: reviews }
  ports:
  - { name: http, port: 9080 }
---
apiVersion: v1
kind: Pod
metadata: { name: reviews-v1-0, namespace: default, labels: { app: reviews, version: v1 } }
spec: { containers: [{ name: app, image: reviews }] }
status: { phase: Running, podIP: 127.0.0.21 }
---
apiVersion: v1
kind: Pod
metadata: { name: reviews-v2-0, namespace: default, labels: { app: reviews, version: v2 } }
spec: { containers: [{ name: app, image: reviews }] }
status: { phase: Running, podIP: 127.0.0.22 }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: default }
spec:
  host: reviews
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
"#;

/// A scratch directory, removed when the test ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `weft control`, killed (by its own handle) when the test ends.
struct Control(Child);

impl Drop for Control {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn read_address(control: &mut Control, path: &Path) -> SocketAddr {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(addr) = text.trim().parse()
        {
            return addr;
        }
        if let Ok(Some(status)) = control.0.try_wait() {
            panic!("weft control exited with {status} before writing {path:?}");
        }
        assert!(Instant::now() < deadline, "no address in {path:?}");
        std::thread::sleep(POLL);
    }
}

fn weft(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run weft")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// ACKs everything, or NACKs clusters when told to.
#[derive(Debug)]
struct Handler {
    reject_clusters: bool,
}

impl XdsHandler for Handler {
    fn apply(&self, type_url: &str, _: &Update<'_>) -> Result<(), String> {
        if self.reject_clusters && type_url == type_url::CLUSTER {
            Err(REJECTION.to_string())
        } else {
            Ok(())
        }
    }
}

fn connect(ads: SocketAddr, id: &str, ip: &str, reject_clusters: bool) -> XdsClient {
    let labels = BTreeMap::from([("app".to_string(), "client".to_string())]);
    let node = Node {
        id: id.to_string(),
        metadata: Some(weft_control::node::metadata(
            "default",
            &labels,
            "client",
            &[ip.parse().expect("ip")],
        )),
        ..Default::default()
    };
    let mut config = ClientConfig::new(format!("http://{ads}"), node, Mode::StateOfTheWorld);
    if !reject_clusters {
        // Like Envoy once it knows the names: endpoints and routes too.
        config.subscriptions.insert(
            type_url::CLUSTER_LOAD_ASSIGNMENT.into(),
            Subscription::Wildcard,
        );
        config
            .subscriptions
            .insert(type_url::ROUTE_CONFIGURATION.into(), Subscription::Wildcard);
    }
    XdsClient::spawn(config, Arc::new(Handler { reject_clusters })).expect("client starts")
}

/// `weft proxy-status -o json` until `done` holds for its entries.
fn status_until(debug: &str, what: &str, done: impl Fn(&[SyncStatus]) -> bool) -> Vec<SyncStatus> {
    let deadline = Instant::now() + WAIT;
    loop {
        let out = weft(&["proxy-status", "--control-address", debug, "-o", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let entries: Vec<SyncStatus> = serde_json::from_slice(&out.stdout).expect("syncz JSON");
        if done(&entries) {
            return entries;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {entries:#?}"
        );
        std::thread::sleep(POLL);
    }
}

fn synced(entries: &[SyncStatus], id: &str) -> bool {
    entries.iter().any(|e| {
        e.proxy == id
            && ["CDS", "LDS", "EDS", "RDS"]
                .iter()
                .all(|t| e.xds.get(*t).is_some_and(|s| s.status == SyncState::Synced))
    })
}

/// A table's rows as cells (columns are at least three spaces apart).
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|l| {
            l.split("   ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        })
        .collect()
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

#[test]
fn proxy_status_and_proxy_config_read_a_running_control_plane() {
    let dir =
        Scratch(std::env::temp_dir().join(format!("weft-control-cli-{}", std::process::id())));
    let config = dir.0.join("config");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::write(config.join("mesh.yaml"), MESH).expect("write mesh");
    let xds_path: PathBuf = dir.0.join("xds.address");
    let debug_path: PathBuf = dir.0.join("debug.address");
    let child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["control", "--config-dir"])
        .arg(&config)
        .args(["--xds-address", "127.0.0.1:0", "--xds-address-path"])
        .arg(&xds_path)
        .args(["--debug-address", "127.0.0.1:0", "--debug-address-path"])
        .arg(&debug_path)
        .args(["--debounce-after-ms", "20", "-l", "warn"])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn weft control");
    let mut control = Control(child);
    let ads = read_address(&mut control, &xds_path);
    let debug = read_address(&mut control, &debug_path).to_string();

    // No proxy yet: the header alone.
    let out = weft(&["proxy-status", "--control-address", &debug]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "NAME   CDS   LDS   EDS   RDS   VERSION\n"
    );

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = runtime.enter();
    let app = connect(ads, APP, "127.0.0.1", false);
    status_until(&debug, "the app to be SYNCED", |e| synced(e, APP));

    let nacker = connect(ads, NACKER, "127.0.0.9", true);
    let entries = status_until(&debug, "the NACK", |entries| {
        entries
            .iter()
            .any(|e| e.proxy == NACKER && e.xds["CDS"].status == SyncState::Nack)
    });
    let cds_version = entries
        .iter()
        .find(|e| e.proxy == NACKER)
        .and_then(|e| e.xds["CDS"].sent_version.clone())
        .expect("a CDS version was sent");
    // The nacker's arrival must not have disturbed the app.
    status_until(&debug, "the app to stay SYNCED", |e| synced(e, APP));

    let out = weft(&["proxy-status", "--control-address", &debug]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    // Rows in node id order; the NACK's error under its proxy's row.
    assert_eq!(
        rows(&table)[..3],
        [
            row(&["NAME", "CDS", "LDS", "EDS", "RDS", "VERSION"]),
            row(&[
                "productpage-v1-0.default",
                "SYNCED",
                "SYNCED",
                "SYNCED",
                "SYNCED",
                "-"
            ]),
            row(&[
                "nacker-0.default",
                "NACK",
                "SYNCED",
                "NOT SENT",
                "NOT SENT",
                "-"
            ]),
        ],
        "{table}"
    );
    assert_eq!(
        lines[3],
        format!("    CDS NACK of version {cds_version}: {REJECTION}"),
        "{table}"
    );

    // The app's clusters as istioctl lays them out, by POD.NAMESPACE and by full id.
    let out = weft(&[
        "proxy-config",
        "clusters",
        "productpage-v1-0.default",
        "--control-address",
        &debug,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let clusters = text(&out.stdout);
    let table = rows(&clusters);
    assert_eq!(
        table[0],
        row(&["SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE"])
    );
    for expected in [
        [
            "reviews.default.svc.cluster.local",
            "9080",
            "-",
            "outbound",
            "EDS",
        ],
        [
            "reviews.default.svc.cluster.local",
            "9080",
            "v1",
            "outbound",
            "EDS",
        ],
        [
            "reviews.default.svc.cluster.local",
            "9080",
            "v2",
            "outbound",
            "EDS",
        ],
        ["BlackHoleCluster", "-", "-", "-", "STATIC"],
        ["PassthroughCluster", "-", "-", "-", "ORIGINAL_DST"],
    ] {
        assert!(
            table.contains(&row(&expected)),
            "{expected:?} in\n{clusters}"
        );
    }
    let by_id = weft(&["proxy-config", "cluster", APP, "--control-address", &debug]);
    assert_eq!(text(&by_id.stdout), clusters);

    let out = weft(&[
        "proxy-config",
        "endpoints",
        "productpage-v1-0.default",
        "--control-address",
        &debug,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let endpoints = rows(&text(&out.stdout));
    assert_eq!(endpoints[0], row(&["CLUSTER", "ENDPOINTS", "ADDRESSES"]));
    assert!(
        endpoints.contains(&row(&[
            "outbound|9080||reviews.default.svc.cluster.local",
            "2",
            "127.0.0.21:9080,127.0.0.22:9080"
        ])),
        "{endpoints:?}"
    );

    let out = weft(&[
        "proxy-config",
        "all",
        "productpage-v1-0.default",
        "-o",
        "json",
        "--control-address",
        &debug,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let dump: ConfigDump = serde_json::from_slice(&out.stdout).expect("config dump JSON");
    assert_eq!(dump.proxy.id, APP);
    assert_eq!(dump.clusters().len(), table.len() - 1);

    // A proxy that is not connected: exit 1, naming those that are.
    let out = weft(&[
        "proxy-config",
        "clusters",
        "ghost-0.default",
        "--control-address",
        &debug,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        format!(
            "weft proxy-config: proxy \"ghost-0.default\" is not connected to this control \
             plane; connected proxies: {APP}, {NACKER}\n"
        )
    );

    // Nothing listening: exit 1 with the address.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .to_string();
    let out = weft(&["proxy-status", "--control-address", &closed]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(&closed), "{}", text(&out.stderr));

    app.shutdown();
    nacker.shutdown();
}

/// `weft describe` explains a service from a config directory and fails clearly for an
/// unknown one.
#[test]
fn describe_explains_a_service_and_names_the_known_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("mesh.yaml"),
        r#"
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec: { clusterIP: 10.0.0.10, ports: [{ name: http, port: 9080 }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http: [{ timeout: 2s, route: [{ destination: { host: reviews } }] }]
"#,
    )
    .expect("write");
    let run = |service: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["describe", service, "--config-dir"])
            .arg(dir.path())
            .output()
            .expect("run weft describe")
    };
    let ok = run("reviews");
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        text.contains("Service: reviews.default.svc.cluster.local"),
        "{text}"
    );
    assert!(
        text.contains("http[0]: when always → reviews.default.svc.cluster.local; timeout 2s"),
        "{text}"
    );
    let missing = run("ratings");
    assert_eq!(missing.status.code(), Some(1));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("no service \"ratings\" in namespace \"default\"; services there: reviews"),
        "{err}"
    );
}
