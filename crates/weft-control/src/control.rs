//! `weft control`'s runtime: scans the configuration directory, keeps the control plane's
//! state current, pushes debounced changes and serves ADS — and, when asked, the debug
//! pages and metrics — until shut down.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use weft_xds::server::AdsServer;

use crate::debug::{self, DebugState};
use crate::push::{ControlPlane, Debounce, Source};
use crate::store::{ConfigStore, StoreError};
use crate::translate::MeshSettings;

#[derive(Debug, Clone)]
pub struct Options {
    pub config_dir: PathBuf,
    /// ADS over plaintext gRPC (Istio's 15010).
    pub xds_address: SocketAddr,
    /// ADS over TLS (Istio's 15012), with a certificate from the mesh CA in `ca_dir`.
    pub xds_tls_address: Option<SocketAddr>,
    /// The mesh CA, kept under Istio's plug-in file names (`ca-cert.pem`, `ca-key.pem`,
    /// `root-cert.pem`); a new root is made there when it holds none.
    pub ca_dir: Option<PathBuf>,
    /// The debug pages and metrics (Istio's 15014); none when `None`.
    pub debug_address: Option<SocketAddr>,
    pub mesh: MeshSettings,
    pub debounce: Debounce,
    /// How long a disconnected proxy remains an endpoint.
    pub grace: Duration,
    /// How often the whole directory is re-checked when change notifications are not
    /// available (and as a safety net when they are, at 40 times this).
    pub scan_interval: Duration,
    /// Gives freed heap memory back to the kernel; called after the configuration is loaded
    /// and after each push, whose large short-lived allocations (decoded requests, the
    /// previous view) the allocator would otherwise keep resident. The binary passes the
    /// allocator's trim; the default does nothing.
    pub release_memory: fn(),
}

impl Options {
    pub fn new(config_dir: impl Into<PathBuf>, xds_address: SocketAddr) -> Self {
        Self {
            config_dir: config_dir.into(),
            xds_address,
            xds_tls_address: None,
            ca_dir: None,
            debug_address: None,
            mesh: MeshSettings::default(),
            debounce: Debounce::default(),
            grace: Duration::from_secs(10),
            scan_interval: Duration::from_millis(250),
            release_memory: || {},
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen for xDS on {address}: {source}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen for the debug server on {address}: {source}")]
    DebugBind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Serve(#[from] weft_xds::server::ServerError),
    #[error("xDS over TLS needs the mesh CA: give --ca-dir")]
    NoCa,
    #[error("the CA service: {0}")]
    Tokens(#[from] weft_identity::TokenError),
    #[error("the mesh CA: {0}")]
    Ca(#[from] weft_identity::CaError),
    #[error(transparent)]
    XdsTls(#[from] crate::xds_tls::XdsTlsError),
}

/// A started control plane: its bound address and state.
pub struct Running {
    pub xds_address: SocketAddr,
    /// Where ADS over TLS listens, if it was asked for.
    pub xds_tls_address: Option<SocketAddr>,
    /// Where the debug server listens, if it was asked for.
    pub debug_address: Option<SocketAddr>,
    pub control: Arc<ControlPlane>,
    pub server: AdsServer,
}

/// Loads the directory, binds the xDS port and returns; `serve` then runs until `shutdown`.
pub async fn start(
    options: &Options,
) -> Result<
    (
        Running,
        impl std::future::Future<Output = Result<(), ControlError>> + use<>,
    ),
    ControlError,
> {
    let mut store = ConfigStore::new(&options.config_dir);
    store.scan()?;
    let control = ControlPlane::new(options.mesh.clone(), options.debounce, options.grace);
    control.set_memory_release(options.release_memory);
    control.set_config(
        store.shared_resources(),
        store.shared_pods(),
        store.mesh_config(),
    );
    control.push_all();
    let listener = listen(options.xds_address).map_err(|source| ControlError::Bind {
        address: options.xds_address,
        source,
    })?;
    let xds_address = listener.local_addr().map_err(|source| ControlError::Bind {
        address: options.xds_address,
        source,
    })?;
    let debug_listener = match options.debug_address {
        None => None,
        Some(address) => {
            let bind = |source| ControlError::DebugBind { address, source };
            let listener = TcpListener::bind(address).await.map_err(bind)?;
            let bound = listener.local_addr().map_err(bind)?;
            Some((listener, bound))
        }
    };
    let tls = match options.xds_tls_address {
        None => None,
        Some(address) => {
            let dir = options.ca_dir.as_ref().ok_or(ControlError::NoCa)?;
            let mut mesh = options.mesh.clone();
            if let Some(m) = store.mesh_config() {
                mesh.apply(m);
            }
            let ca = Arc::new(weft_identity::Ca::load_or_create(dir, &mesh.trust_domain)?);
            let tokens = Arc::new(weft_identity::TokenKey::load_or_create(dir)?);
            let (configs, renewing) = crate::xds_tls::rotating(ca.clone())?;
            let bind = |source| ControlError::Bind { address, source };
            let listener = listen(address).map_err(bind)?;
            let bound = listener.local_addr().map_err(bind)?;
            let ca_service = crate::ca_service::CaService {
                ca,
                tokens,
                trust_domain: mesh.trust_domain,
            };
            Some((listener, bound, configs, renewing, ca_service))
        }
    };
    let mut server = AdsServer::with_source(Arc::new(Source(control.clone())));
    if let Some((.., ca_service)) = &tls {
        server = server.with_unary(crate::ca_service::PATH, Arc::new(ca_service.clone()));
    }
    let running = Running {
        xds_tls_address: tls.as_ref().map(|(_, bound, ..)| *bound),
        xds_address,
        debug_address: debug_listener.as_ref().map(|(_, a)| *a),
        control: control.clone(),
        server: server.clone(),
    };
    let interval = options.scan_interval;
    let serve = async move {
        let pushes = tokio::spawn(control.clone().run_pushes());
        let metrics = tokio::spawn({
            let (control, server) = (control.clone(), server.clone());
            async move { control.metrics().follow(server).await }
        });
        let debug = debug_listener.map(|(listener, _)| {
            tokio::spawn(debug::serve(
                listener,
                DebugState {
                    control: control.clone(),
                    server: server.clone(),
                },
            ))
        });
        let scans = tokio::spawn({
            let control = control.clone();
            async move {
                // Change notifications (inotify) make an idle control plane cost nothing:
                // polling every file of a large fleet directory four times a second cost a
                // third of a core. Polling remains the fallback and a slow safety net.
                let (tx, mut changed) = tokio::sync::mpsc::unbounded_channel();
                let watcher =
                    notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                        // Reads (our own scans among them) raise access events; only a change
                        // to what is in the directory calls for a scan.
                        let relevant = event.map_or(true, |e| {
                            matches!(
                                e.kind,
                                notify::EventKind::Create(_)
                                    | notify::EventKind::Modify(_)
                                    | notify::EventKind::Remove(_)
                                    | notify::EventKind::Any
                            )
                        });
                        if relevant {
                            let _ = tx.send(());
                        }
                    })
                    .and_then(|mut w| {
                        notify::Watcher::watch(
                            &mut w,
                            store.dir(),
                            notify::RecursiveMode::Recursive,
                        )?;
                        Ok(w)
                    });
                let poll = match &watcher {
                    Ok(_) => interval * 40,
                    Err(e) => {
                        tracing::warn!(
                            "cannot watch {} for changes ({e}); checking it every {interval:?}",
                            store.dir().display()
                        );
                        interval
                    }
                };
                let mut tick = tokio::time::interval(poll);
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        Some(()) = changed.recv() => {
                            // An editor's save is several events; take them as one.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            while changed.try_recv().is_ok() {}
                        }
                    }
                    match store.scan() {
                        Ok(scan) if scan.changed => {
                            control.set_config(
                                store.shared_resources(),
                                store.shared_pods(),
                                store.mesh_config(),
                            );
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!("{e}"),
                    }
                }
            }
        });
        let tls = tls.map(|(listener, _, configs, renewing, _)| {
            (
                tokio::spawn(crate::xds_tls::serve(listener, server.clone(), configs)),
                tokio::spawn(renewing),
            )
        });
        let result = server.serve(listener, std::future::pending()).await;
        if let Some((accepting, renewing)) = tls {
            accepting.abort();
            renewing.abort();
        }
        pushes.abort();
        scans.abort();
        metrics.abort();
        if let Some(debug) = debug {
            debug.abort();
        }
        Ok(result?)
    };
    Ok((running, serve))
}

/// How many connections may wait to be accepted on the xDS port (the kernel caps it at
/// `net.core.somaxconn`). A restarted control plane is reconnected to by its whole fleet
/// at once; the 128 of `TcpListener::bind` overflowed with a thousand proxies, each
/// dropped SYN costing a proxy its 1 s connect timeout and a backoff.
const XDS_BACKLOG: u32 = 4096;

fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(XDS_BACKLOG)
}
