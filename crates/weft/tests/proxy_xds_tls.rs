//! Envoy 1.40 and `weft proxy` fetching their configuration from `weft control` over TLS
//! (Istio's 15012): each trusts the mesh root the control plane made in its CA directory,
//! checks the certificate's name as Istio's proxies check istiod's, presents its workload
//! certificate, and ACKs every type. A proxy without a certificate, or whose certificate
//! is of another namespace than the node it claims to be, is refused, as istiod refuses
//! them, and logs the control plane's answer.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use weft_control::control::{Options, start};
use weft_identity::ca::ROOT_CERT_FILE;
use weft_testkit::ads::{AdsProxy, IstioNode, acked_all, istio_bootstrap, with_xds_tls};
use weft_testkit::conformance;
use weft_testkit::proxy::{ProxyBinary, ProxyKind};
use weft_xds::server::ServerStatus;
use weft_xds::type_url;

const NODE: &str = "sidecar~127.0.0.1~productpage-v1-0.default~default.svc.cluster.local";
const WAIT: Duration = Duration::from_secs(20);

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
metadata: { name: reviews-v1-0, namespace: default, labels: { app: reviews } }
spec: { containers: [{ name: app, image: reviews }] }
status: { phase: Running, podIP: 127.0.0.21 }
"#;

/// A sidecar of `default` whose xDS cluster speaks TLS to `ads`, trusting `root`,
/// expecting istiod's name and presenting `client`.
fn bootstrap(ads: SocketAddr, root: &Path, client: Option<(&Path, &Path)>) -> String {
    let node = IstioNode {
        kind: "sidecar",
        pod: "productpage-v1-0".into(),
        namespace: "default".into(),
        ip: "127.0.0.1".into(),
        labels: "{ app: productpage }".into(),
    };
    assert_eq!(node.id(), NODE);
    with_xds_tls(
        &istio_bootstrap(&node, ads.port()),
        root,
        "istiod.istio-system.svc",
        client,
    )
}

/// Issues a certificate for service account `sa` of `ns` from the CA in `ca_dir`, and
/// writes its chain and key into `dir`; returns their paths.
fn workload_files(
    ca_dir: &Path,
    dir: &Path,
    ns: &str,
    sa: &str,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let ca = weft_identity::Ca::load_or_create(ca_dir, "cluster.local")?;
    let id = weft_identity::SpiffeId::workload("cluster.local", ns, sa)?;
    let (key, csr) = weft_identity::ca::key_and_request()?;
    let issued = ca.sign(
        &csr,
        &id,
        weft_identity::ca::WORKLOAD_TTL,
        SystemTime::now(),
    )?;
    let (chain_path, key_path) = (
        dir.join(format!("{ns}-{sa}.pem")),
        dir.join(format!("{ns}-{sa}.key")),
    );
    std::fs::write(&chain_path, issued.chain_pem)?;
    std::fs::write(&key_path, key)?;
    Ok((chain_path, key_path))
}

fn all_acked(s: &ServerStatus) -> bool {
    acked_all(
        s,
        NODE,
        &[
            type_url::CLUSTER,
            type_url::CLUSTER_LOAD_ASSIGNMENT,
            type_url::LISTENER,
            type_url::ROUTE_CONFIGURATION,
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_proxy_acks_everything_fetched_over_tls() -> anyhow::Result<()> {
    let only = std::env::var("WEFT_CONFORMANCE_ONLY").ok();
    for binary in conformance::peers(only.as_deref(), Path::new(env!("CARGO_BIN_EXE_weft")))? {
        fetches_over_tls(&binary).await?;
    }
    Ok(())
}

async fn fetches_over_tls(binary: &ProxyBinary) -> anyhow::Result<()> {
    let config = tempfile::tempdir()?;
    std::fs::write(config.path().join("mesh.yaml"), MESH)?;
    let ca_dir = tempfile::tempdir()?;
    let mut options = Options::new(config.path(), "127.0.0.1:0".parse()?);
    options.xds_tls_address = Some("127.0.0.1:0".parse()?);
    options.ca_dir = Some(ca_dir.path().to_path_buf());
    options.mesh.capture_bind = "127.0.0.1".into();
    options.mesh.outbound_port = weft_testkit::ports::free_port()?;
    options.mesh.inbound_port = weft_testkit::ports::free_port()?;
    let (running, serve) = start(&options).await?;
    let serving = tokio::spawn(serve);
    let tls = running.xds_tls_address.expect("TLS address bound");
    assert_ne!(tls, running.xds_address);

    let root = ca_dir.path().join(ROOT_CERT_FILE);
    let files = tempfile::tempdir()?;
    // Refused: no certificate, then the certificate of another namespace. Envoy logs the
    // control plane's answer.
    let stranger = workload_files(ca_dir.path(), files.path(), "other", "default")?;
    // gRPC status and message as each proxy logs them: Envoy percent-encodes the message.
    let (no_certificate, other_namespace) = match binary.kind {
        ProxyKind::Envoy => (
            "closed: 16, xDS%20over%20TLS%20needs%20a%20client%20certificate",
            "closed: 7, no%20identities%20(spiffe://cluster.local/ns/other/sa/default)%20matched%20default/default",
        ),
        ProxyKind::Weft => (
            "16 (Unauthenticated): xDS over TLS needs a client certificate",
            "7 (PermissionDenied): no identities (spiffe://cluster.local/ns/other/sa/default) matched default/default",
        ),
    };
    for (client, answer) in [
        (None, no_certificate),
        (
            Some((stranger.0.as_path(), stranger.1.as_path())),
            other_namespace,
        ),
    ] {
        let proxy = AdsProxy::start(binary, &bootstrap(tls, &root, client)).await?;
        let deadline = tokio::time::Instant::now() + WAIT;
        while !proxy.log_tail().contains(answer) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} was not told {answer:?}:\n{}",
                binary.kind,
                proxy.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(!running.server.status().nodes.contains_key(NODE));
    }

    let own = workload_files(ca_dir.path(), files.path(), "default", "default")?;
    let client = Some((own.0.as_path(), own.1.as_path()));
    let proxy = AdsProxy::start(binary, &bootstrap(tls, &root, client)).await?;
    running
        .server
        .wait_for("the proxy to ACK every type over TLS", WAIT, all_acked)
        .await
        .map_err(|e| anyhow::anyhow!("{} {e}\n{}", binary.kind, proxy.log_tail()))?;
    drop(proxy);
    serving.abort();
    Ok(())
}
