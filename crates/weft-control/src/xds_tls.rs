//! ADS over TLS (Istio's 15012): the mesh CA gives the control plane a certificate for the
//! names proxies dial it by, reissued at half its life so a long-running control plane
//! never serves an expired one, and each accepted connection is handed to the ADS server
//! once its handshake is done, with the SPIFFE IDs of the client certificate it presented
//! (checked against the mesh's root), which decide what node it may connect as.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use weft_identity::TrustBundle;
use weft_identity::ca::{Ca, CaError, WORKLOAD_TTL};
use weft_identity::tls::{Credentials, TlsError, serving_config_verifying_clients, spiffe_ids};
use weft_xds::server::AdsServer;

/// The names istiod's xDS certificate carries, which Istio's proxies check.
pub const SERVING_NAMES: [&str; 2] = ["istiod.istio-system.svc", "istio-pilot.istio-system.svc"];

/// Longest a client may take over its handshake before its connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum XdsTlsError {
    #[error("the control plane's xDS certificate: {0}")]
    Issue(#[from] CaError),
    #[error("the control plane's xDS certificate: {0}")]
    Tls(#[from] TlsError),
}

/// The current server configuration, and when its certificate should be replaced.
fn issue(ca: &Ca, now: SystemTime) -> Result<(Arc<ServerConfig>, SystemTime), XdsTlsError> {
    let (issued, key) = ca.serving(&SERVING_NAMES, WORKLOAD_TTL, now)?;
    let config = serving_config_verifying_clients(
        Credentials::from_pem(&issued.chain_pem, &key)?,
        &TrustBundle::from_pem(ca.root_pem())?,
        &[b"h2"],
    )?;
    Ok((config, now + WORKLOAD_TTL / 2))
}

/// Configurations for the listener, the first issued now: a new one replaces it at half
/// its certificate's life for as long as the returned task runs.
pub fn rotating(
    ca: Arc<Ca>,
) -> Result<(watch::Receiver<Arc<ServerConfig>>, impl Future<Output = ()>), XdsTlsError> {
    let (first, mut renew_at) = issue(&ca, SystemTime::now())?;
    let (tx, rx) = watch::channel(first);
    let renewing = async move {
        loop {
            let wait = renew_at
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            tokio::time::sleep(wait).await;
            match issue(&ca, SystemTime::now()) {
                Ok((config, next)) => {
                    tx.send_replace(config);
                    renew_at = next;
                }
                Err(e) => {
                    // The current certificate has half its life left: try again soon.
                    tracing::error!("renewing the xDS certificate: {e}");
                    renew_at = SystemTime::now() + Duration::from_secs(60);
                }
            }
        }
    };
    Ok((rx, renewing))
}

/// Serves ADS on `listener` over TLS, with the configuration `configs` holds when each
/// connection arrives, until dropped.
pub async fn serve(
    listener: TcpListener,
    server: AdsServer,
    configs: watch::Receiver<Arc<ServerConfig>>,
) -> Result<(), weft_xds::server::ServerError> {
    let handshake = move |socket: TcpStream| {
        let acceptor = TlsAcceptor::from(configs.borrow().clone());
        async move {
            let peer = socket.peer_addr().ok();
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
                Ok(Ok(tls)) => {
                    let identities = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| spiffe_ids(c).iter().map(ToString::to_string).collect())
                        .unwrap_or_default();
                    let peer = weft_xds::server::Peer {
                        confidential: true,
                        identities,
                    };
                    Some((tls, peer))
                }
                Ok(Err(e)) => {
                    tracing::debug!(?peer, "xDS TLS handshake: {e}");
                    None
                }
                Err(_) => {
                    tracing::debug!(?peer, "xDS TLS handshake took too long");
                    None
                }
            }
        }
    };
    server
        .serve_with(listener, std::future::pending(), handshake)
        .await
}
