//! Real Envoy fetching its configuration from `weft control` over TLS (Istio's 15012): it
//! trusts the mesh root the control plane made in its CA directory and checks the
//! certificate's name as Istio's proxies check istiod's, and ACKs every type.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use weft_control::control::{Options, start};
use weft_identity::ca::ROOT_CERT_FILE;
use weft_testkit::ads::{AdsProxy, IstioNode, acked_all, istio_bootstrap, with_xds_tls};
use weft_testkit::proxy::ProxyBinary;
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

/// A sidecar of `default` whose xDS cluster speaks TLS to `ads`, trusting `root` and
/// expecting istiod's name.
fn bootstrap(ads: SocketAddr, root: &Path) -> String {
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
    )
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
async fn envoy_acks_everything_fetched_over_tls() -> anyhow::Result<()> {
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
    let envoy = AdsProxy::start(&ProxyBinary::envoy()?, &bootstrap(tls, &root)).await?;
    running
        .server
        .wait_for("Envoy to ACK every type over TLS", WAIT, all_acked)
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", envoy.log_tail()))?;
    drop(envoy);
    serving.abort();
    Ok(())
}

#[tokio::test]
async fn tls_without_a_ca_directory_is_refused_at_start() {
    let config = tempfile::tempdir().unwrap();
    let mut options = Options::new(config.path(), "127.0.0.1:0".parse().unwrap());
    options.xds_tls_address = Some("127.0.0.1:0".parse().unwrap());
    let err = match start(&options).await {
        Ok(_) => panic!("started without a CA"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("--ca-dir"), "{err}");
}
