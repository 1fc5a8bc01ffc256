//! Running the proxy: the main thread applies the bootstrap's static resources, starts the
//! ADS client and the admin listener, and runs `--concurrency` worker threads that accept
//! and serve connections. SIGTERM (or `/quitquitquit`) drains: listeners stop accepting,
//! open connections are asked to finish their requests, and the process exits when they
//! have or the drain time is over.

use crate::bootstrap_check;
use crate::config::snapshot::{Shared, Snapshot};
use crate::config::store::Store;
use crate::model::cluster::Discovery;
use crate::model::tls::SecretSource;
use crate::sds::SdsClients;
use crate::stats::{Kind, Registry, Sample};
use crate::upstream::tls::AlpnFallback;
use crate::xds::Handler;
use crate::{admin, listener, worker};
use arc_swap::ArcSwap;
use envoy_types::pb::envoy::config::bootstrap::v3::Bootstrap;
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use weft_xds::client::{ClientConfig, Target, XdsClient};
use weft_xds::{Mode, type_url};

/// Sets and reads the log level for `/logging`; supplied by the binary, which owns logging.
pub trait LogControl: Send + Sync {
    fn set(&self, level: &str) -> Result<(), String>;
    fn get(&self) -> String;
}

pub struct Options {
    pub config_path: String,
    pub concurrency: usize,
    pub admin_address_path: Option<PathBuf>,
    /// How long draining may take before the process exits anyway.
    pub drain_time: Duration,
    pub log: Option<Arc<dyn LogControl>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    PreInitializing,
    Initializing,
    Live,
    Draining,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::PreInitializing => "PRE_INITIALIZING",
            State::Initializing => "INITIALIZING",
            State::Live => "LIVE",
            State::Draining => "DRAINING",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{}", .0.join("\n"))]
    Config(Vec<String>),
    #[error("admin listener: {0}")]
    Admin(std::io::Error),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("ADS client: {0}")]
    Xds(String),
}

crate::stats_struct!(
    /// `server.*`.
    ServerStats {
        counters: [],
        gauges: [live, concurrency, uptime, state, total_connections],
    }
);

pub struct Server {
    pub store: Arc<Mutex<Store>>,
    pub shared: Shared,
    pub registry: Arc<Registry>,
    pub bootstrap: Bootstrap,
    pub started: SystemTime,
    state: AtomicU8,
    /// Cancelled to stop accepting and wind down connections.
    pub drain: CancellationToken,
    /// Cancelled to exit.
    pub quit: CancellationToken,
    pub options: Options,
    pub xds: OnceLock<XdsClient>,
    /// The streams to secret agents (SDS over the bootstrap's `sds-grpc`).
    pub sds: SdsClients,
    server_stats: Arc<ServerStats>,
}

impl Server {
    pub fn state(&self) -> State {
        match self.state.load(Ordering::Relaxed) {
            1 => State::Live,
            2 => State::Draining,
            3 => State::Initializing,
            _ => State::PreInitializing,
        }
    }

    fn set_state(&self, s: State) {
        let code = match s {
            State::PreInitializing => 0,
            State::Live => 1,
            State::Draining => 2,
            State::Initializing => 3,
        };
        self.state.store(code, Ordering::Relaxed);
        self.server_stats.state.set(match s {
            State::Live => 0,
            State::Draining => 1,
            State::PreInitializing | State::Initializing => 2,
        });
        self.server_stats.live.set(i64::from(s == State::Live));
    }

    /// Stops every listener at once — the sockets close, so new connections are refused
    /// rather than left waiting — and asks open connections to finish and close.
    pub fn drain_listeners(&self) {
        for l in self.shared.load().listeners.values() {
            if let Some(sock) = &l.socket {
                // shutdown(2) on a listening socket makes Linux stop listening for every
                // descriptor that shares it (each worker holds one).
                let _ = socket2::SockRef::from(sock.as_ref()).shutdown(std::net::Shutdown::Read);
            }
        }
        self.drain.cancel();
    }

    pub fn log_level(&self) -> String {
        self.options
            .log
            .as_ref()
            .map_or_else(|| "info".to_string(), |l| l.get())
    }

    pub fn set_log_level(&self, level: &str) -> Result<(), String> {
        match &self.options.log {
            Some(l) => l.set(level),
            None => Err("logging is not adjustable in this process".into()),
        }
    }

    pub fn samples(&self) -> Vec<Sample> {
        let uptime = SystemTime::now()
            .duration_since(self.started)
            .unwrap_or_default();
        self.server_stats.uptime.set(uptime.as_secs() as i64);
        let mut samples = self.registry.samples();
        let store = self.store.lock();
        let gauges = [
            ("cluster_manager.active_clusters", store.clusters.len()),
            (
                "cluster_manager.warming_clusters",
                store.warming_clusters.len(),
            ),
            (
                "listener_manager.total_listeners_active",
                store.listeners.len(),
            ),
            (
                "listener_manager.total_listeners_warming",
                store.warming_listeners.len(),
            ),
        ];
        for (name, v) in gauges {
            samples.push(Sample {
                name: name.into(),
                kind: Kind::Gauge,
                value: v as i64,
            });
        }
        if let Some(x) = self.xds.get() {
            for (t, s) in x.status().types {
                let short = match t.as_str() {
                    type_url::LISTENER => "listener_manager.lds",
                    type_url::CLUSTER => "cluster_manager.cds",
                    type_url::ROUTE_CONFIGURATION => "http.rds",
                    type_url::CLUSTER_LOAD_ASSIGNMENT => "cluster_manager.eds",
                    _ => "sds",
                };
                samples.push(Sample {
                    name: format!("{short}.update_success"),
                    kind: Kind::Counter,
                    value: s.acks as i64,
                });
                samples.push(Sample {
                    name: format!("{short}.update_rejected"),
                    kind: Kind::Counter,
                    value: s.nacks as i64,
                });
            }
        }
        samples.sort_by(|a, b| a.name.cmp(&b.name));
        samples
    }

    pub fn info(&self) -> serde_json::Value {
        let uptime = SystemTime::now()
            .duration_since(self.started)
            .unwrap_or_default()
            .as_secs();
        let node = self.bootstrap.node.as_ref();
        serde_json::json!({
            "version": format!("weft-proxy/{}", env!("CARGO_PKG_VERSION")),
            "state": self.state().name(),
            "hot_restart_version": "disabled",
            "command_line_options": {
                "config_path": self.options.config_path,
                "concurrency": self.options.concurrency,
                "drain_time": format!("{}s", self.options.drain_time.as_secs()),
            },
            "node": node.map(admin::config_dump::to_json),
            "uptime_current_epoch": format!("{uptime}s"),
            "uptime_all_epochs": format!("{uptime}s"),
        })
    }
}

/// Checks a bootstrap the way `weft proxy` would use it, without starting anything.
pub fn check(file: &str, text: &str) -> Result<Bootstrap, Vec<String>> {
    let (bootstrap, root) = crate::bootstrap::parse_bootstrap_located(file, text)
        .map_err(|errs| errs.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let errs = bootstrap_check::check(file, &root, &bootstrap);
    if !errs.is_empty() {
        return Err(errs.iter().map(ToString::to_string).collect());
    }
    Ok(bootstrap)
}

/// Runs the proxy until it is told to quit. Blocks the calling thread.
pub fn run(bootstrap: Bootstrap, options: Options) -> Result<(), StartError> {
    let concurrency = options.concurrency.max(1);
    worker::set_count(concurrency);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    rt.block_on(run_main(bootstrap, options, concurrency))
}

async fn run_main(
    bootstrap: Bootstrap,
    options: Options,
    concurrency: usize,
) -> Result<(), StartError> {
    let registry = Arc::new(Registry::default());
    let shared: Shared = Arc::new(ArcSwap::from_pointee(Snapshot::default()));
    let (gen_tx, gen_rx) = watch::channel(0u64);
    let mut store = Store::new(registry.clone(), shared.clone());
    store.generations = Some(gen_tx);
    let server_stats = registry.scope("server.", ServerStats::default);
    server_stats.concurrency.set(concurrency as i64);
    let server = Arc::new(Server {
        store: Arc::new(Mutex::new(store)),
        shared: shared.clone(),
        registry,
        bootstrap,
        started: SystemTime::now(),
        state: AtomicU8::new(0),
        drain: CancellationToken::new(),
        quit: CancellationToken::new(),
        options,
        xds: OnceLock::new(),
        sds: SdsClients::default(),
        server_stats,
    });
    server.set_state(State::PreInitializing);
    apply_static(&server)?;

    let admin = start_admin(&server).await?;
    // With one worker, the worker runs on this thread beside the admin and xDS tasks, as
    // one event loop: no second thread, no handoff between threads, and every allocation
    // comes from one heap, so memory freed after start-up is reused for connections.
    let workers: Vec<std::thread::JoinHandle<()>> = if concurrency == 1 {
        worker::enter(0);
        tokio::spawn(listener::run_worker(
            shared.clone(),
            gen_rx.clone(),
            server.drain.clone(),
        ));
        Vec::new()
    } else {
        (0..concurrency)
            .map(|i| {
                let shared = shared.clone();
                let rx = gen_rx.clone();
                let drain = server.drain.clone();
                std::thread::Builder::new()
                    .name(format!("weft-worker-{i}"))
                    .spawn(move || {
                        worker::enter(i);
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .expect("worker runtime");
                        rt.block_on(async move {
                            let serving =
                                tokio::spawn(listener::run_worker(shared, rx, drain.clone()));
                            drain.cancelled().await;
                            let _ = serving.await;
                            // Let connections that are finishing their requests run on.
                            while listener::active_connections() > 0 {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        });
                    })
                    .expect("worker thread")
            })
            .collect()
    };

    if let Some(ads) = server
        .bootstrap
        .dynamic_resources
        .as_ref()
        .and_then(|d| d.ads_config.as_ref())
    {
        start_xds(&server, ads)?;
    }
    server.set_state(State::Initializing);
    let republish = server.store.lock().republish.clone();
    let mut ready_tick = tokio::time::interval(Duration::from_millis(50));
    let mut release_tick = tokio::time::interval(Duration::from_secs(5));
    // The store generation whose secret needs the agents were last asked for.
    let mut followed = None;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(StartError::Runtime)?;
    loop {
        tokio::select! {
            _ = ready_tick.tick() => {
                let mut store = server.store.lock();
                // Resources waiting past their fetch timeout are promoted here.
                if store.has_overdue() {
                    store.publish();
                }
                let generation = store.generation();
                if followed != Some(generation) {
                    let wanted = store.wanted_secrets();
                    drop(store);
                    // An agent that cannot be dialled yet is tried again on the next tick.
                    if server.sds.follow(&server, &wanted.agents) {
                        followed = Some(generation);
                    }
                    store = server.store.lock();
                }
                if let Some(x) = server.xds.get()
                    && store.warming_clusters.is_empty()
                {
                    // Envoy asks for listeners once its clusters have warmed.
                    x.subscribe_wildcard(type_url::LISTENER);
                }
                if server.state() == State::Initializing && store.all_warm() && xds_initialized(&server) {
                    store.serving = true;
                    store.publish();
                    server.set_state(State::Live);
                    crate::descriptors::release_now();
                    tracing::info!("all listeners and clusters are warm; serving");
                }
            }
            _ = republish.notified() => server.store.lock().publish(),
            // Decoded descriptors are only needed while configuration changes.
            _ = release_tick.tick() => crate::descriptors::release_idle(),
            _ = sigterm.recv() => {
                tracing::info!("SIGTERM: draining");
                break;
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = server.quit.cancelled() => break,
        }
    }
    server.set_state(State::Draining);
    server.drain_listeners();
    if let Some(x) = server.xds.get() {
        x.shutdown();
    }
    server.sds.shutdown();
    let deadline = tokio::time::Instant::now() + server.options.drain_time;
    while listener::active_connections() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.quit.cancel();
    admin.abort();
    if listener::active_connections() == 0 {
        for w in workers {
            let _ = w.join();
        }
    }
    Ok(())
}

fn xds_initialized(server: &Server) -> bool {
    let Some(x) = server.xds.get() else {
        return true;
    };
    let status = x.status();
    [type_url::CLUSTER, type_url::LISTENER].iter().all(|t| {
        status
            .types
            .get(*t)
            .is_some_and(|s| !s.accepted_version.is_empty() || s.acks > 0)
    })
}

fn apply_static(server: &Server) -> Result<(), StartError> {
    let Some(sr) = server.bootstrap.static_resources.clone() else {
        return Ok(());
    };
    let mut store = server.store.lock();
    let mut errors = Vec::new();
    if let Err(e) = store.apply_secrets(SecretSource::Static, sr.secrets, &[], "") {
        errors.extend(e.0);
    }
    if let Err(e) = store.apply_clusters(sr.clusters, &[], "", true) {
        errors.extend(e.0);
    }
    if let Err(e) = store.apply_listeners(sr.listeners, &[], "", true) {
        errors.extend(e.0);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(StartError::Config(errors))
    }
}

async fn start_admin(server: &Arc<Server>) -> Result<tokio::task::JoinHandle<()>, StartError> {
    let addr: Option<SocketAddr> = server
        .bootstrap
        .admin
        .as_ref()
        .and_then(|a| a.address.as_ref())
        .map(|a| crate::model::endpoint::socket_addr(a, &weft_yaml::FieldPath::root()))
        .transpose()
        .map_err(|e| StartError::Config(vec![format!("admin.address: {e}")]))?;
    let Some(addr) = addr else {
        return Ok(tokio::spawn(async {}));
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(StartError::Admin)?;
    let bound = listener.local_addr().map_err(StartError::Admin)?;
    if let Some(path) = &server.options.admin_address_path {
        std::fs::write(path, bound.to_string()).map_err(StartError::Admin)?;
    }
    tracing::info!(address = %bound, "admin listening");
    Ok(tokio::spawn(admin::serve(listener, server.clone())))
}

/// Where a config source's static cluster is dialled: its Unix socket, or its first host,
/// through TLS when the cluster's transport socket says so (its secrets must be there:
/// static ones are, by the time config sources start).
pub(crate) fn grpc_target(server: &Server, cluster: &str) -> Result<Target, String> {
    let snapshot = server.shared.load();
    let c = snapshot
        .clusters
        .get(cluster)
        .ok_or_else(|| format!("no cluster '{cluster}'"))?;
    if let Discovery::Pipe(path) = &c.config.discovery {
        return Ok(Target::Unix(path.clone()));
    }
    let addr = c
        .endpoints
        .load()
        .hosts
        .first()
        .map(|h| h.addr)
        .ok_or_else(|| format!("the cluster '{cluster}' has no endpoint"))?;
    match &c.connector.tls {
        None => Ok(Target::Http(format!("http://{addr}"))),
        Some(slot) => {
            let tls = slot
                .ready()
                .map_err(|e| format!("the cluster '{cluster}' cannot open TLS connections: {e}"))?;
            let (server_name, config) = tls.dial(addr, AlpnFallback::Http2);
            Ok(Target::Tls {
                addr,
                server_name,
                config,
            })
        }
    }
}

fn start_xds(
    server: &Arc<Server>,
    ads: &envoy_types::pb::envoy::config::core::v3::ApiConfigSource,
) -> Result<(), StartError> {
    use envoy_types::pb::envoy::config::core::v3::api_config_source::ApiType;
    let cluster = bootstrap_check::ads_source(ads, &server.bootstrap)
        .map_err(|e| StartError::Xds(e.to_string()))?;
    let target = grpc_target(server, &cluster).map_err(StartError::Xds)?;
    let mode = if ads.api_type == ApiType::DeltaGrpc as i32 {
        Mode::Delta
    } else {
        Mode::StateOfTheWorld
    };
    let node = server.bootstrap.node.clone().unwrap_or_default();
    let mut config = ClientConfig::new(target, node, mode);
    // Listeners are asked for once the clusters they may need have warmed, as Envoy does.
    config.subscriptions.remove(type_url::LISTENER);
    let handler = Arc::new(Handler {
        store: server.store.clone(),
        client: OnceLock::new(),
    });
    let client =
        XdsClient::spawn(config, handler.clone()).map_err(|e| StartError::Xds(e.to_string()))?;
    let _ = handler.client.set(client.clone());
    let _ = server.xds.set(client);
    Ok(())
}
