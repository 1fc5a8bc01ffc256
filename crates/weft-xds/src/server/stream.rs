//! The part of an ADS stream both protocols share: reading requests, following snapshot
//! changes, and closing on request. What a request or a new snapshot means is the
//! protocol's (state of the world in `sotw`, incremental in `delta`).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::Node;
use tokio::sync::mpsc;
use tonic::Status;

use super::grpc::{Outgoing, Requests};
use super::status::Recorder;
use super::{Shared, Snapshot};

/// One client's stream: `T` is the per-type state.
pub(super) struct Stream<T> {
    pub shared: Arc<Shared>,
    pub recorder: Recorder,
    pub tx: mpsc::Sender<Outgoing>,
    /// Boxed: a map's node has room for eleven entries, and a stream has four.
    pub types: BTreeMap<String, Box<T>>,
    /// The client stopped reading; end the stream.
    pub gone: bool,
}

/// What a protocol does with a request and with a new snapshot.
pub(super) trait Protocol {
    type Request: prost::Message + Default + Send + 'static;

    /// The node a request names (the first request on a stream must).
    fn node(request: &Self::Request) -> Option<&Node>;

    fn on_request(
        &mut self,
        request: Self::Request,
        snapshot: Option<Arc<Snapshot>>,
    ) -> impl Future<Output = Result<(), Status>> + Send;

    fn on_snapshot(&mut self, snapshot: &Arc<Snapshot>) -> impl Future<Output = ()> + Send;
}

/// What a stream's task does next.
enum Next<R> {
    Request(Box<R>),
    /// The node's snapshot changed (to none while it has yet to be computed).
    Snapshot(Option<Arc<Snapshot>>),
}

pub(super) async fn run<T>(
    shared: Arc<Shared>,
    stream_id: u64,
    peer: Arc<super::Peer>,
    mut inbound: Requests<<Stream<T> as Protocol>::Request>,
    tx: mpsc::Sender<Outgoing>,
) where
    Stream<T>: Protocol + Send,
{
    // Known once the first request names the node.
    let mut snapshots: Option<super::SnapshotReceiver> = None;
    let mut close = shared.close.subscribe();
    close.borrow_and_update();
    let mut stream = Stream {
        recorder: Recorder::new(shared.status.clone(), shared.interest.clone(), stream_id),
        shared,
        tx,
        types: BTreeMap::new(),
        gone: false,
    };
    while !stream.gone {
        // What comes next is decided without awaiting anything else, and the work it sets
        // off is boxed: held across an await, a request or that work would be part of this
        // task for the stream's whole life, and a thousand idle sidecars would each hold it.
        let next = tokio::select! {
            message = inbound.message() => match message {
                Ok(Some(request)) => Next::Request(Box::new(request)),
                Ok(None) => break,
                Err(status) => {
                    tracing::debug!(node = ?stream.recorder.node(), %status, "ADS stream failed");
                    break;
                }
            },
            changed = async {
                match snapshots.as_mut() {
                    Some(rx) => rx.changed().await,
                    None => std::future::pending().await,
                }
            } => match snapshots.as_mut().filter(|_| changed.is_ok()) {
                Some(rx) => Next::Snapshot(rx.borrow_and_update().clone()),
                None => break,
            },
            _ = close.changed() => break,
        };
        match next {
            Next::Request(request) => {
                if !Box::pin(stream.request(*request, &mut snapshots, stream_id, &peer)).await {
                    break;
                }
            }
            Next::Snapshot(Some(snapshot)) => Box::pin(stream.on_snapshot(&snapshot)).await,
            Next::Snapshot(None) => {}
        }
    }
    stream.recorder.close();
    if snapshots.is_some()
        && let Some(node) = stream.recorder.node()
    {
        stream.shared.disconnect(node, stream_id);
    }
}

impl<T> Stream<T>
where
    Stream<T>: Protocol + Send,
{
    /// Handles one request, connecting the node on the first; `false` ends the stream.
    async fn request(
        &mut self,
        request: <Self as Protocol>::Request,
        snapshots: &mut Option<super::SnapshotReceiver>,
        stream_id: u64,
        peer: &super::Peer,
    ) -> bool {
        if snapshots.is_none() {
            match self.shared.connect(Self::node(&request), stream_id, peer) {
                Ok(rx) => *snapshots = Some(rx),
                Err(status) => {
                    let _ = self.tx.send(Err(status)).await;
                    return false;
                }
            }
        }
        // Not marked seen: a snapshot that arrived meanwhile must still reach the other
        // types through `changed()` in `run`.
        let snapshot = snapshots.as_ref().and_then(|rx| rx.borrow().clone());
        if let Err(status) = self.on_request(request, snapshot).await {
            let _ = self.tx.send(Err(status)).await;
            return false;
        }
        true
    }
}
