//! The ADS client a data plane runs: one stream to the control plane (state-of-the-world or
//! delta, the caller's choice, like Envoy's `api_type`), wildcard and named subscriptions
//! that can change at any time, ACK/NACK decided by the caller's handler, reconnects with
//! Envoy's backoff, and observable per-type state for admin pages.
//!
//! The same client speaks SDS's own service (`SecretDiscoveryService`) to a secret agent on a
//! Unix socket, as Envoy does for the `sds-grpc` cluster of an Istio bootstrap: the messages
//! and the ACK/NACK rules are ADS's, only the gRPC path and the transport differ.
//!
//! Whatever the variant, the handler always sees the complete current set of a type plus
//! what changed in it: the client keeps the set for delta streams too, so the proxy has one
//! code path. An update the handler rejects leaves the set as it was (the last accepted).

mod backoff;
mod delta;
mod sotw;
mod state;
mod stream;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::Node;
use tokio::sync::watch;
use tokio_rustls::rustls::pki_types::ServerName;
use tonic::transport::{Channel, Endpoint};

pub use backoff::{Backoff, ENVOY_BASE, ENVOY_MAX};

use crate::resource::{Mode, Resource, Subscription};
use crate::type_url;
use state::Driver;

/// Receives every response's resources and decides ACK (`Ok`) or NACK (`Err(message)`,
/// sent to the server as `error_detail.message` with code INTERNAL, as Envoy sends it).
///
/// Called on the client's task: convert and validate, hand the result off, return.
pub trait XdsHandler: Send + Sync + 'static {
    fn apply(&self, type_url: &str, update: &Update<'_>) -> Result<(), String>;
}

/// One response's effect on one type, as the handler sees it.
#[derive(Debug)]
pub struct Update<'a> {
    /// `version_info` (state-of-the-world) or `system_version_info` (delta) of the response.
    pub version: &'a str,
    /// The response's nonce.
    pub nonce: &'a str,
    /// Every resource of this type the client holds if this update is accepted. A
    /// resource's `version` is the version at which its current body arrived.
    pub resources: &'a BTreeMap<String, Arc<Resource>>,
    /// Names added, or whose body differs from the one held before.
    pub changed: &'a BTreeSet<String>,
    /// Names held before and gone now.
    pub removed: &'a BTreeSet<String>,
}

/// Where the server listens, and how to reach it.
#[derive(Clone, Debug)]
pub enum Target {
    /// `http://IP:PORT`: plaintext gRPC.
    Http(String),
    /// A Unix socket (an Envoy `pipe` address): plaintext gRPC.
    Unix(PathBuf),
    /// gRPC over TLS to `addr`, as the caller's client configuration says (it offers
    /// `h2`, and checks the server as the cluster's TLS context does); `server_name` is the
    /// SNI, or the address when none is sent.
    Tls {
        addr: std::net::SocketAddr,
        server_name: ServerName<'static>,
        config: Arc<tokio_rustls::rustls::ClientConfig>,
    },
}

impl From<String> for Target {
    fn from(uri: String) -> Self {
        Self::Http(uri)
    }
}

impl From<&str> for Target {
    fn from(uri: &str) -> Self {
        Self::Http(uri.to_string())
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Http(uri) => f.write_str(uri),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
            Self::Tls {
                addr, server_name, ..
            } => write!(f, "tls:{addr} ({})", server_name.to_str()),
        }
    }
}

/// The gRPC service the stream is opened on; both carry the same discovery messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// `AggregatedDiscoveryService`: every type on one stream.
    Aggregated,
    /// `SecretDiscoveryService`: secrets only, as a secret agent serves them.
    Secrets,
}

/// How to reach the control plane and what to ask it for.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub target: Target,
    pub service: Service,
    /// Sent on the first request of every stream.
    pub node: Node,
    pub mode: Mode,
    /// The subscriptions to open with; change them later with [`XdsClient::subscribe`].
    pub subscriptions: BTreeMap<String, Subscription>,
    /// First reconnect interval; Envoy's default is [`ENVOY_BASE`].
    pub backoff_base: Duration,
    /// Reconnect interval cap; Envoy's default is [`ENVOY_MAX`].
    pub backoff_max: Duration,
    pub connect_timeout: Duration,
}

impl ClientConfig {
    /// Envoy's start: wildcard CDS and LDS, named types added as the caller learns names,
    /// Envoy's reconnect backoff.
    pub fn new(target: impl Into<Target>, node: Node, mode: Mode) -> Self {
        let subscriptions = [type_url::CLUSTER, type_url::LISTENER]
            .into_iter()
            .map(|t| (t.to_string(), Subscription::Wildcard))
            .collect();
        Self {
            target: target.into(),
            service: Service::Aggregated,
            node,
            mode,
            subscriptions,
            backoff_base: ENVOY_BASE,
            backoff_max: ENVOY_MAX,
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// A `SecretDiscoveryService` client with nothing subscribed yet: the caller names the
    /// secrets it needs with [`XdsClient::subscribe`] as clusters come to need them.
    pub fn secrets(target: impl Into<Target>, node: Node, mode: Mode) -> Self {
        Self {
            service: Service::Secrets,
            subscriptions: BTreeMap::new(),
            ..Self::new(target, node, mode)
        }
    }
}

/// Observable client state, for admin and debug pages and for tests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientStatus {
    /// A stream is open and its response headers arrived.
    pub connected: bool,
    /// Streams opened since start; grows by one per reconnect.
    pub streams_opened: u64,
    /// Why the last stream ended, if it failed.
    pub last_stream_error: Option<String>,
    pub types: BTreeMap<String, TypeStatus>,
}

/// Per-type client state.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeStatus {
    pub subscription: Subscription,
    /// Version of the last update the handler accepted ("" before the first).
    pub accepted_version: String,
    /// Nonce of the last response received on the current stream.
    pub last_nonce: String,
    /// The message of the last NACK; cleared by the next ACK.
    pub last_error: Option<String>,
    pub resources: usize,
    pub acks: u64,
    pub nacks: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid xDS endpoint {endpoint:?}: {source}")]
    Endpoint {
        endpoint: String,
        source: tonic::transport::Error,
    },
}

/// Handle to a running ADS client; clones share it. The client stops on
/// [`XdsClient::shutdown`] or once every handle is dropped.
#[derive(Clone, Debug)]
pub struct XdsClient {
    inner: Arc<Handles>,
}

#[derive(Debug)]
struct Handles {
    desired: watch::Sender<BTreeMap<String, Subscription>>,
    shutdown: watch::Sender<bool>,
    status: watch::Receiver<ClientStatus>,
}

impl XdsClient {
    /// Starts the client on the current tokio runtime.
    pub fn spawn(config: ClientConfig, handler: Arc<dyn XdsHandler>) -> Result<Self, ClientError> {
        // A Unix socket has no authority; tonic still wants a URI, and this one is what the
        // agent sees as `:authority`.
        let uri = match &config.target {
            Target::Http(uri) => uri.clone(),
            Target::Unix(_) => "http://localhost".to_string(),
            Target::Tls { addr, .. } => format!("http://{addr}"),
        };
        let endpoint = Endpoint::from_shared(uri)
            .map_err(|source| ClientError::Endpoint {
                endpoint: config.target.to_string(),
                source,
            })?
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true);
        let (desired_tx, desired_rx) = watch::channel(config.subscriptions.clone());
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (status_tx, status_rx) = watch::channel(ClientStatus::default());
        let driver = Driver::new(config, handler, desired_rx, shutdown_rx, status_tx);
        tokio::spawn(run(driver, endpoint));
        Ok(Self {
            inner: Arc::new(Handles {
                desired: desired_tx,
                shutdown: shutdown_tx,
                status: status_rx,
            }),
        })
    }

    /// Asks for exactly `names` of `type_url` from now on (empty: none). Sent on the open
    /// stream at once and on every reconnect; rapid changes coalesce into one request.
    pub fn subscribe(&self, type_url: &str, names: BTreeSet<String>) {
        self.set_subscription(type_url, Subscription::Names(names));
    }

    /// Asks for every resource of `type_url`.
    pub fn subscribe_wildcard(&self, type_url: &str) {
        self.set_subscription(type_url, Subscription::Wildcard);
    }

    pub fn set_subscription(&self, type_url: &str, subscription: Subscription) {
        self.inner.desired.send_if_modified(|subs| {
            if subs.get(type_url) == Some(&subscription) {
                return false;
            }
            subs.insert(type_url.to_string(), subscription);
            true
        });
    }

    /// The current state, copied.
    pub fn status(&self) -> ClientStatus {
        self.inner.status.borrow().clone()
    }

    /// A receiver that wakes on every state change.
    pub fn watch_status(&self) -> watch::Receiver<ClientStatus> {
        self.inner.status.clone()
    }

    /// Closes the stream and stops reconnecting.
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }
}

/// The reconnect loop: one stream at a time, backoff between them, reset once a stream
/// has carried a response (as Envoy's `GrpcStream` does).
async fn run(mut driver: Driver, endpoint: Endpoint) {
    let mut backoff = Backoff::new(driver.config.backoff_base, driver.config.backoff_max);
    loop {
        let end = match connect(&endpoint, &driver.config.target).await {
            Ok(channel) => stream_once(&mut driver, channel).await,
            Err(e) => state::StreamEnd::failed(format!("connect: {e}"), false),
        };
        driver.set_disconnected(end.error.clone());
        if end.shutdown {
            return;
        }
        if let Some(error) = &end.error {
            tracing::warn!(target = %driver.config.target, %error, "xDS stream ended");
        }
        if end.got_response {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = driver.stopped() => return,
        }
    }
}

async fn connect(endpoint: &Endpoint, target: &Target) -> Result<Channel, tonic::transport::Error> {
    match target {
        Target::Http(_) => endpoint.connect().await,
        Target::Unix(path) => {
            let path = path.clone();
            let dial = tower::service_fn(move |_: http::Uri| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                }
            });
            endpoint.connect_with_connector(dial).await
        }
        Target::Tls {
            addr,
            server_name,
            config,
        } => {
            let (addr, server_name, config) = (*addr, server_name.clone(), config.clone());
            let dial = tower::service_fn(move |_: http::Uri| {
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let server_name = server_name.clone();
                async move {
                    let tcp = tokio::net::TcpStream::connect(addr).await?;
                    tcp.set_nodelay(true)?;
                    let tls = connector.connect(server_name, tcp).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
                }
            });
            endpoint.connect_with_connector(dial).await
        }
    }
}

async fn stream_once(driver: &mut Driver, channel: Channel) -> state::StreamEnd {
    match driver.config.mode {
        Mode::StateOfTheWorld => stream::run::<sotw::Sotw>(driver, channel).await,
        Mode::Delta => stream::run::<delta::Delta>(driver, channel).await,
    }
}
