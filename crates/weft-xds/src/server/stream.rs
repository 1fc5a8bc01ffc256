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
    pub types: BTreeMap<String, T>,
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

pub(super) async fn run<T>(
    shared: Arc<Shared>,
    stream_id: u64,
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
        recorder: Recorder::new(shared.status.clone(), stream_id),
        shared,
        tx,
        types: BTreeMap::new(),
        gone: false,
    };
    while !stream.gone {
        tokio::select! {
            message = inbound.message() => match message {
                Ok(Some(request)) => {
                    if snapshots.is_none() {
                        match stream.shared.connect(Stream::<T>::node(&request), stream_id) {
                            Ok(rx) => snapshots = Some(rx),
                            Err(status) => {
                                let _ = stream.tx.send(Err(status)).await;
                                break;
                            }
                        }
                    }
                    // Not marked seen: a snapshot that arrived meanwhile must still reach
                    // the other types through `changed()` below.
                    let snapshot = snapshots.as_ref().and_then(|rx| rx.borrow().clone());
                    if let Err(status) = stream.on_request(request, snapshot).await {
                        let _ = stream.tx.send(Err(status)).await;
                        break;
                    }
                }
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
            } => {
                let Some(rx) = snapshots.as_mut().filter(|_| changed.is_ok()) else {
                    break;
                };
                let snapshot = rx.borrow_and_update().clone();
                if let Some(snapshot) = snapshot {
                    stream.on_snapshot(&snapshot).await;
                }
            }
            _ = close.changed() => break,
        }
    }
    stream.recorder.close();
    if snapshots.is_some()
        && let Some(node) = stream.recorder.node()
    {
        stream.shared.disconnect(node, stream_id);
    }
}
