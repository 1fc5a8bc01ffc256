//! The proxy's secret agent — what istio-agent is to Envoy: it serves SDS on a Unix socket
//! (the bootstrap's `sds-grpc` cluster) and answers each secret a proxy asks for: the
//! workload's own certificate, which it gets from the control plane's CA by CSR and renews
//! at half its life (see `ca_client`), or from files; and the files a DestinationRule
//! names (see `secrets`), read again so a changed one reaches the proxy without a restart
//! or a push from the control plane. `weft agent` runs it beside Envoy.

pub mod ca_client;
pub mod secrets;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use envoy_types::util::pack_any;
use tokio::net::UnixListener;
use weft_xds::resource::Subscription;
use weft_xds::server::{AdsServer, Interest, Snapshot};
use weft_xds::type_url;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot listen on {path}: {reason}")]
    Listen { path: PathBuf, reason: String },
}

/// How the agent runs.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// The SDS socket (Istio's `./var/run/secrets/workload-spiffe-uds/socket`).
    pub socket: PathBuf,
    /// Where the workload's `cert-chain.pem`, `key.pem` and `root-cert.pem` are, when its
    /// certificate does not come from the CA.
    pub certs_dir: Option<PathBuf>,
    /// The control plane's CA, which issues the workload's certificate.
    pub ca: Option<ca_client::CaSource>,
    /// How often the files are read again.
    pub refresh: Duration,
}

/// A running agent: the SDS server (whose status shows each proxy's ACKs and NACKs).
#[derive(Clone, Debug)]
pub struct Agent {
    pub server: AdsServer,
}

/// Binds the socket (replacing a stale one) and returns the agent with the future that
/// serves it until `shutdown`.
pub fn start(
    options: AgentOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(Agent, impl Future<Output = ()>), AgentError> {
    let listen = |e: std::io::Error| AgentError::Listen {
        path: options.socket.clone(),
        reason: e.to_string(),
    };
    if let Some(parent) = options.socket.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(listen)?;
    }
    remove_stale_socket(&options.socket).map_err(listen)?;
    let listener = UnixListener::bind(&options.socket).map_err(listen)?;
    let server = AdsServer::tracking_interest();
    let agent = Agent {
        server: server.clone(),
    };
    let run = async move {
        let accept = {
            let server = server.clone();
            async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => {
                            let server = server.clone();
                            tokio::spawn(async move { server.serve_connection(stream).await });
                        }
                        Err(e) => {
                            tracing::warn!("SDS socket accept: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }
        };
        let (issued_tx, issued) = tokio::sync::watch::channel(None);
        let renew = async {
            match &options.ca {
                Some(ca) => keep_issued(ca, issued_tx).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown => {}
            () = accept => {}
            () = renew => {}
            () = keep_loaded(&server, &options, issued) => {}
        }
        server.close_streams();
        let _ = std::fs::remove_file(&options.socket);
    };
    Ok((agent, run))
}

/// A socket file left by an agent that did not clean up goes; anything else at the path
/// is an error rather than something to delete.
fn remove_stale_socket(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "the path exists and is not a socket",
        )),
        Err(_) => Ok(()),
    }
}

/// Every secret name an open stream asks for.
fn wanted(interest: &Interest) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for types in interest.values() {
        match types.get(type_url::SECRET).map(|s| &**s) {
            Some(Subscription::Names(n)) => names.extend(n.iter().cloned()),
            // No proxy asks an agent for every secret; the workload's own are what it has.
            Some(Subscription::Wildcard) => {
                names.extend(["default".to_string(), "ROOTCA".to_string()]);
            }
            None => {}
        }
    }
    names
}

/// Loads what the proxies ask for whenever they ask for more and every `refresh`, and
/// serves a new snapshot when anything read differs. A secret that cannot be loaded is
/// left out (the proxy keeps waiting for it, or keeps the copy it has) and its error is
/// logged once until it changes.
async fn keep_loaded(
    server: &AdsServer,
    options: &AgentOptions,
    mut issued: tokio::sync::watch::Receiver<Option<ca_client::Issued>>,
) {
    let Some(mut interest) = server.watch_interest() else {
        return;
    };
    let mut served: BTreeMap<String, Secret> = BTreeMap::new();
    let mut errors: BTreeMap<String, String> = BTreeMap::new();
    let mut version = 0u64;
    loop {
        let names = wanted(&interest.borrow_and_update());
        let current = issued.borrow_and_update().clone();
        let own = match (&current, &options.certs_dir) {
            (Some(i), _) => secrets::Own::Issued(i),
            (None, Some(dir)) if options.ca.is_none() => secrets::Own::Dir(dir),
            _ => secrets::Own::None,
        };
        let mut next = BTreeMap::new();
        for name in names {
            match secrets::load(&name, own) {
                Ok(secret) => {
                    if errors.remove(&name).is_some() {
                        tracing::info!(secret = %name, "secret loaded");
                    }
                    next.insert(name, secret);
                }
                Err(e) => {
                    let text = e.to_string();
                    if errors.get(&name) != Some(&text) {
                        tracing::warn!("{text}");
                        errors.insert(name.clone(), text);
                    }
                    // The last good copy keeps serving.
                    if let Some(old) = served.get(&name) {
                        next.insert(name, old.clone());
                    }
                }
            }
        }
        if version == 0 || next != served {
            version += 1;
            let mut snapshot = Snapshot::new(version.to_string());
            for secret in next.values() {
                snapshot.insert_named(secret.name.clone(), pack_any(secret.clone()));
            }
            server.set_snapshot(snapshot);
            served = next;
        }
        tokio::select! {
            changed = interest.changed() => if changed.is_err() { return },
            changed = issued.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(options.refresh) => {}
        }
    }
}

/// Keeps a certificate from the CA: the first as soon as the CA answers, then a new one
/// (for a new key) at half the current one's remaining life. Failures are retried with a
/// backoff from one second to a minute; the current certificate serves meanwhile.
async fn keep_issued(
    ca: &ca_client::CaSource,
    tx: tokio::sync::watch::Sender<Option<ca_client::Issued>>,
) {
    const FIRST_RETRY: Duration = Duration::from_secs(1);
    const LAST_RETRY: Duration = Duration::from_secs(60);
    let mut retry = FIRST_RETRY;
    loop {
        let wait = match ca.issue().await {
            Ok(issued) => {
                retry = FIRST_RETRY;
                let left = issued
                    .not_after
                    .duration_since(std::time::SystemTime::now())
                    .unwrap_or_default();
                tracing::info!(valid_for = ?left, "workload certificate issued");
                tx.send_replace(Some(issued));
                left / 2
            }
            Err(e) => {
                tracing::warn!("workload certificate: {e}; asking again in {retry:?}");
                let wait = retry;
                retry = (retry * 2).min(LAST_RETRY);
                wait
            }
        };
        tokio::time::sleep(wait).await;
    }
}
