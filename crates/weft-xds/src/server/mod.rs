//! The ADS server: serves the current [`Snapshot`] to every connected client over
//! state-of-the-world or delta streams, pushes each new snapshot to all of them, ignores
//! stale nonces the way Envoy's and Istio's servers do, and records per node and type what
//! was sent, ACKed and NACKed ([`ServerStatus`]) for debug pages and tests.

mod delta;
mod delta_set;
mod grpc;
mod http2;
mod intern;
mod snapshot;
mod sotw;
mod status;
mod stream;
pub mod unary;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::Node;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::sync::watch;
use tonic::Status;

use crate::resource::Subscription;
use intern::Interner;

pub use snapshot::{Entry, Layer, Snapshot};
pub use status::{Interest, Nack, NodeStatus, ServerStatus, TypeStatus};

/// Requests larger than this are refused; a delta reconnect listing every resource it holds
/// is the largest legitimate one.
const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;
/// Responses queued per stream before the stream's task waits for the client to read.
const RESPONSE_QUEUE: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("ADS server transport: {0}")]
    Transport(#[from] std::io::Error),
}

/// A wait on the server's status that ran out of time; carries what was awaited and the
/// status at the deadline, so a failing test says why.
#[derive(Debug, thiserror::Error)]
#[error("timed out after {waited:?} waiting for {what}; status: {status:#?}")]
pub struct WaitTimeout {
    pub what: String,
    pub waited: Duration,
    pub status: ServerStatus,
}

/// What the server knows of a connection's other end, from the transport under HTTP/2.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Peer {
    /// The connection's bytes are private to its two ends (TLS): unary methods, whose
    /// requests carry credentials, are served only on such connections.
    pub confidential: bool,
    /// The identities the peer's certificate proves (its URI SANs, the chain verified by
    /// the TLS layer); empty without a client certificate. A [`SnapshotSource`] decides
    /// what a stream's node may be from them.
    pub identities: Vec<String>,
}

/// The server; clones share snapshot, status and streams.
#[derive(Clone, Debug)]
pub struct AdsServer {
    shared: Arc<Shared>,
}

/// A node's snapshots as a stream sees them: the latest, and a wake-up on each new one.
pub type SnapshotReceiver = watch::Receiver<Option<Arc<Snapshot>>>;

/// Where a stream's snapshots come from once its first request names its node: by default
/// one snapshot for every client ([`AdsServer::set_snapshot`]); a control plane computing
/// each proxy's own view implements this instead ([`AdsServer::with_source`]).
pub trait SnapshotSource: Send + Sync + std::fmt::Debug + 'static {
    /// A node opened stream `stream_id`. An error ends the stream with that status.
    fn connect(&self, node: &Node, stream_id: u64, peer: &Peer)
    -> Result<SnapshotReceiver, Status>;
    /// Stream `stream_id` of the node ended; it may reconnect on another.
    fn disconnect(&self, node_id: &str, stream_id: u64);
}

#[derive(Debug)]
pub(crate) struct Shared {
    /// The one snapshot every client gets when there is no `source`.
    snapshot: watch::Sender<Option<Arc<Snapshot>>>,
    source: Option<Arc<dyn SnapshotSource>>,
    status: Arc<watch::Sender<ServerStatus>>,
    /// Every open stream's subscriptions, when tracked (see `status::Interest`).
    interest: Option<Arc<watch::Sender<status::Interest>>>,
    /// Unary methods by path, served on confidential connections (see `unary`).
    unary: Vec<(String, Arc<dyn unary::Unary>)>,
    /// Bumped to end every open stream (shutdown, tests simulating a restart).
    close: watch::Sender<u64>,
    next_stream: AtomicU64,
    next_nonce: AtomicU64,
    /// Subscriptions and first-request name lists, one copy per distinct value.
    subscriptions: Interner<Subscription>,
    name_lists: Interner<Vec<String>>,
}

impl Shared {
    fn nonce(&self) -> String {
        self.next_nonce.fetch_add(1, Ordering::Relaxed).to_string()
    }

    /// The snapshots for the node a stream's first request names.
    fn connect(
        &self,
        node: Option<&Node>,
        stream_id: u64,
        peer: &Peer,
    ) -> Result<SnapshotReceiver, Status> {
        node_id(node)?;
        match (&self.source, node) {
            (Some(source), Some(node)) => source.connect(node, stream_id, peer),
            _ => Ok(self.snapshot.subscribe()),
        }
    }

    fn disconnect(&self, node_id: &str, stream_id: u64) {
        if let Some(source) = &self.source {
            source.disconnect(node_id, stream_id);
        }
    }
}

impl Default for AdsServer {
    fn default() -> Self {
        Self::new()
    }
}

impl AdsServer {
    /// A server with no snapshot yet: streams open and subscribe, and get their first
    /// responses once [`AdsServer::set_snapshot`] is called.
    pub fn new() -> Self {
        Self::build(None)
    }

    /// A server whose streams take their snapshots from `source`, per node.
    pub fn with_source(source: Arc<dyn SnapshotSource>) -> Self {
        Self::build(Some(source))
    }

    fn build(source: Option<Arc<dyn SnapshotSource>>) -> Self {
        Self {
            shared: Arc::new(Shared {
                snapshot: watch::Sender::new(None),
                source,
                status: Arc::new(watch::Sender::new(ServerStatus::default())),
                interest: None,
                unary: Vec::new(),
                close: watch::Sender::new(0),
                next_stream: AtomicU64::new(1),
                next_nonce: AtomicU64::new(1),
                subscriptions: Interner::default(),
                name_lists: Interner::default(),
            }),
        }
    }

    /// A server serving one snapshot to every client, that also tracks what each open
    /// stream subscribes to ([`AdsServer::watch_interest`]): for servers that load what is
    /// asked for, as a secret agent loads the files its proxies' secrets name.
    pub fn tracking_interest() -> Self {
        let mut server = Self::new();
        if let Some(shared) = Arc::get_mut(&mut server.shared) {
            shared.interest = Some(Arc::new(watch::Sender::new(status::Interest::new())));
        }
        server
    }

    /// Serves unary method `path` (`/package.Service/Method`) with `method` beside ADS, on
    /// confidential connections only. Called while building the server: it panics once
    /// the server has been cloned (a programming error, not a runtime condition).
    pub fn with_unary(mut self, path: &str, method: Arc<dyn unary::Unary>) -> Self {
        Arc::get_mut(&mut self.shared)
            .expect("with_unary is called before the server is cloned")
            .unary
            .push((path.to_string(), method));
        self
    }

    /// Every open stream's subscriptions, as they change; `None` unless the server was
    /// built [`AdsServer::tracking_interest`].
    pub fn watch_interest(&self) -> Option<watch::Receiver<status::Interest>> {
        self.shared.interest.as_ref().map(|i| i.subscribe())
    }

    /// Replaces the snapshot served to every client and pushes it to every open stream
    /// (not used by streams of a server built [`AdsServer::with_source`]).
    pub fn set_snapshot(&self, snapshot: Snapshot) {
        self.shared.snapshot.send_replace(Some(Arc::new(snapshot)));
    }

    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.shared.snapshot.borrow().clone()
    }

    /// Serves ADS on `listener` (plaintext HTTP/2, see `http2`) until `shutdown`
    /// resolves, then ends every open stream with an OK status, sends each connection
    /// GOAWAY, and returns once all connections are closed.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServerError> {
        self.serve_with(listener, shutdown, |socket| {
            std::future::ready(Some((socket, Peer::default())))
        })
        .await
    }

    /// [`AdsServer::serve`], with each accepted connection first turned by `accept` into
    /// what HTTP/2 is spoken over (a TLS stream, after its handshake) and what is known of
    /// its peer; a connection `accept` turns into `None` is dropped.
    pub async fn serve_with<IO, Accepted>(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
        accept: impl Fn(TcpStream) -> Accepted,
    ) -> Result<(), ServerError>
    where
        Accepted: Future<Output = Option<(IO, Peer)>> + Send + 'static,
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (closing, closing_rx) = watch::channel(false);
        // Each connection's task holds a sender; `recv` ends once all have returned.
        let (alive, mut all_closed) = mpsc::channel::<()>(1);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((socket, _)) => {
                        // Responses are written whole; Nagle would only delay their tails.
                        let _ = socket.set_nodelay(true);
                        let connection = accept(socket);
                        let (shared, closing, alive) =
                            (self.shared.clone(), closing_rx.clone(), alive.clone());
                        tokio::spawn(async move {
                            if let Some((io, peer)) = connection.await {
                                http2::serve(io, shared, Arc::new(peer), closing, alive).await;
                            }
                        });
                    }
                    Err(e) => {
                        // Out of descriptors and the like: connections that close free
                        // some, so wait a moment rather than fail or spin.
                        tracing::warn!("ADS server accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        drop(listener);
        // Connections refuse new streams before the open ones are told to end, so none
        // opens after the close and runs on.
        closing.send_replace(true);
        self.close_streams();
        drop(alive);
        drop(closing_rx);
        let _ = all_closed.recv().await;
        Ok(())
    }

    /// Serves one connection the caller accepted (a TLS stream, an in-memory pipe) as
    /// [`AdsServer::serve`] serves each of its listener's, until the client closes it or
    /// it fails; [`AdsServer::close_streams`] ends its streams.
    pub async fn serve_connection<IO>(&self, io: IO)
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let (_closing, closing) = watch::channel(false);
        let (alive, _all_closed) = mpsc::channel::<()>(1);
        http2::serve(
            io,
            self.shared.clone(),
            Arc::new(Peer::default()),
            closing,
            alive,
        )
        .await;
    }

    /// Ends every open stream (clients see the stream finish and reconnect).
    pub fn close_streams(&self) {
        self.shared.close.send_modify(|g| *g += 1);
    }

    pub fn status(&self) -> ServerStatus {
        self.shared.status.borrow().clone()
    }

    pub fn watch_status(&self) -> watch::Receiver<ServerStatus> {
        self.shared.status.subscribe()
    }

    /// Waits until `done` holds for the status, at most `timeout`.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(&ServerStatus) -> bool,
    ) -> Result<ServerStatus, WaitTimeout> {
        let mut rx = self.shared.status.subscribe();
        let waited = tokio::time::timeout(timeout, async {
            // The sender lives in `self`, so the channel cannot close while we wait.
            rx.wait_for(|s| done(s)).await.map(|s| s.clone()).ok()
        })
        .await;
        match waited {
            Ok(Some(status)) => Ok(status),
            _ => Err(WaitTimeout {
                what: what.to_string(),
                waited: timeout,
                status: self.status(),
            }),
        }
    }

    /// Waits until `node` has ACKed `version` of `type_url`.
    pub async fn wait_for_ack(
        &self,
        node: &str,
        type_url: &str,
        version: &str,
        timeout: Duration,
    ) -> Result<ServerStatus, WaitTimeout> {
        let what = format!("{node} to ACK {type_url} version {version:?}");
        self.wait_for(&what, timeout, |s| {
            type_status(s, node, type_url)
                .is_some_and(|t| t.acked_version.as_deref() == Some(version))
        })
        .await
    }

    /// Waits until `node` has NACKed the latest response of `type_url` sent to it.
    pub async fn wait_for_nack(
        &self,
        node: &str,
        type_url: &str,
        timeout: Duration,
    ) -> Result<Nack, WaitTimeout> {
        let what = format!("{node} to NACK the latest {type_url} response");
        let status = self
            .wait_for(&what, timeout, |s| {
                type_status(s, node, type_url).is_some_and(|t| {
                    t.last_nack
                        .as_ref()
                        .is_some_and(|n| n.nonce == t.sent_nonce)
                })
            })
            .await?;
        let nack = type_status(&status, node, type_url)
            .and_then(|t| t.last_nack.clone())
            .expect("the awaited condition holds");
        Ok(nack)
    }
}

/// The status of one type on one node, if the node has subscribed to it.
pub fn type_status<'a>(
    status: &'a ServerStatus,
    node: &str,
    type_url: &str,
) -> Option<&'a TypeStatus> {
    status.nodes.get(node)?.types.get(type_url).map(|t| &**t)
}

/// The node id of a stream's first request, which must carry the node.
fn node_id(node: Option<&Node>) -> Result<String, Status> {
    match node {
        Some(n) if !n.id.is_empty() => Ok(n.id.clone()),
        _ => Err(Status::invalid_argument(
            "the first request on an ADS stream must carry node.id",
        )),
    }
}
