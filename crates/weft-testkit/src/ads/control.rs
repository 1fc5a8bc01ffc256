//! The in-test control plane: a `weft_xds` [`AdsServer`] serving on a loopback port that
//! outlives the server, so a test can stop it (the proxy sees its stream end and retries)
//! and start a fresh one on the same port, as a restarted control plane would come back.
//! Waits on the server's per-node status are wrapped to the kit's error type.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use weft_xds::server::{AdsServer, Nack, ServerError, ServerStatus, Snapshot, type_status};
use weft_xds::type_url;

use super::WAIT;
use crate::Error;

/// A running [`AdsServer`]; aborted when dropped.
#[derive(Debug)]
pub struct ControlPlane {
    server: AdsServer,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServerError>>,
}

fn timeout(e: weft_xds::server::WaitTimeout) -> Error {
    Error::Conformance(e.to_string())
}

impl ControlPlane {
    /// A new server with no snapshot on a kernel-chosen loopback port.
    pub async fn start() -> Result<Self, Error> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), None).await
    }

    /// A new server (fresh status, no memory of earlier streams) on `addr`, serving
    /// `snapshot` from the first request on.
    pub async fn start_on(addr: SocketAddr, snapshot: Option<Snapshot>) -> Result<Self, Error> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(Error::io(format!("binding the ADS server on {addr}")))?;
        let addr = listener
            .local_addr()
            .map_err(Error::io("reading the ADS server's address"))?;
        let server = AdsServer::new();
        if let Some(s) = snapshot {
            server.set_snapshot(s);
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = server.clone();
        let task = tokio::spawn(async move {
            serving
                .serve(listener, async {
                    // A dropped sender means the plane is gone: stop as well.
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self {
            server,
            addr,
            stop: Some(stop),
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn server(&self) -> &AdsServer {
        &self.server
    }

    /// Pushes `snapshot` to every stream.
    pub fn push(&self, snapshot: Snapshot) {
        self.server.set_snapshot(snapshot);
    }

    pub fn status(&self) -> ServerStatus {
        self.server.status()
    }

    /// Ends every stream and stops serving; waits (bounded) until the listener is closed, so
    /// the port can be bound again.
    pub async fn stop(mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match tokio::time::timeout(WAIT, &mut self.task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(Error::Conformance(format!(
                "ADS server on {}: {e}",
                self.addr
            ))),
            Ok(Err(e)) => Err(Error::Conformance(format!("ADS server task: {e}"))),
            Err(_) => Err(Error::Timeout {
                what: format!("stopping the ADS server on {}", self.addr),
                secs: WAIT.as_secs(),
            }),
        }
    }

    /// Waits until `node` has ACKed `version` of `type_url`.
    pub async fn acked(&self, node: &str, type_url: &str, version: &str) -> Result<(), Error> {
        self.server
            .wait_for_ack(node, type_url, version, WAIT)
            .await
            .map(|_| ())
            .map_err(timeout)
    }

    /// Waits until `node` has NACKed the latest response of `type_url`.
    pub async fn nacked(&self, node: &str, type_url: &str) -> Result<Nack, Error> {
        self.server
            .wait_for_nack(node, type_url, WAIT)
            .await
            .map_err(timeout)
    }

    /// Waits until `node` has caught up with what was pushed: each of `types` it subscribed
    /// to has ACKed the last response it was sent, and each of `at_version` has ACKed
    /// `version`. A delta stream sends a type only when it changed, so only the caller knows
    /// which types must carry the new version; the rest must simply have nothing pending.
    pub async fn settled(
        &self,
        node: &str,
        version: &str,
        at_version: &[&str],
    ) -> Result<ServerStatus, Error> {
        let what = format!(
            "{node} to ACK {version} of {} with nothing else pending",
            at_version
                .iter()
                .map(|t| type_url::short_name(t))
                .collect::<Vec<_>>()
                .join("+")
        );
        self.server
            .wait_for(&what, WAIT, |s| {
                let Some(n) = s.nodes.get(node) else {
                    return false;
                };
                n.connected
                    && n.types
                        .values()
                        .all(|t| t.acked_version.is_some() && t.acked_version == t.sent_version)
                    && at_version.iter().all(|t| {
                        type_status(s, node, t)
                            .is_some_and(|t| t.acked_version.as_deref() == Some(version))
                    })
            })
            .await
            .map_err(timeout)
    }

    /// Waits until `node` subscribes to `name` of `type_url` on its current stream.
    pub async fn subscribed(&self, node: &str, type_url: &str, name: &str) -> Result<(), Error> {
        let what = format!(
            "{node} to subscribe to {} {name}",
            type_url::short_name(type_url)
        );
        self.server
            .wait_for(&what, WAIT, |s| {
                type_status(s, node, type_url).is_some_and(|t| t.subscription.includes(name))
            })
            .await
            .map(|_| ())
            .map_err(timeout)
    }

    /// Waits until `node` no longer subscribes to `name` of `type_url` (it dropped the
    /// resource it needed it for).
    pub async fn unsubscribed(&self, node: &str, type_url: &str, name: &str) -> Result<(), Error> {
        let what = format!(
            "{node} to unsubscribe from {} {name}",
            type_url::short_name(type_url)
        );
        self.server
            .wait_for(&what, WAIT, |s| {
                type_status(s, node, type_url).is_some_and(|t| !t.subscription.includes(name))
            })
            .await
            .map(|_| ())
            .map_err(timeout)
    }

    /// Waits until `node`'s latest stream is open (`true`) or has ended (`false`).
    pub async fn connected(&self, node: &str, connected: bool) -> Result<ServerStatus, Error> {
        let what = format!("{node} connected={connected}");
        self.server
            .wait_for(&what, WAIT, |s| {
                s.nodes.get(node).is_some_and(|n| n.connected == connected)
            })
            .await
            .map_err(timeout)
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether `node` has been sent each of `types` and ACKed it at the version last sent,
/// without ever NACKing it: what a test of a proxy taking a whole configuration waits for.
pub fn acked_all(status: &ServerStatus, node: &str, types: &[&str]) -> bool {
    status.nodes.get(node).is_some_and(|n| {
        types.iter().all(|t| {
            n.types.get(*t).is_some_and(|ts| {
                ts.sent_version.is_some()
                    && ts.acked_version == ts.sent_version
                    && ts.last_nack.is_none()
            })
        })
    })
}
