//! Shared by the integration tests: a server runner on loopback, a recording handler, and
//! builders for the Envoy resources the tests serve.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use weft_xds::client::{Update, XdsHandler};
use weft_xds::envoy_types::pb::envoy::config::cluster::v3::Cluster;
use weft_xds::envoy_types::pb::envoy::config::core::v3::Node;
use weft_xds::envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use weft_xds::envoy_types::pb::envoy::config::listener::v3::Listener;
use weft_xds::envoy_types::pb::google::protobuf::Any;
use weft_xds::envoy_types::util::pack_any;
use weft_xds::server::{AdsServer, ServerError};

/// Every bounded wait in these tests gives up after this long.
pub const WAIT: Duration = Duration::from_secs(20);

/// An [`AdsServer`] serving on a loopback port until stopped.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServerError>>,
}

impl Running {
    /// Serves on `addr`, or on a kernel-chosen port when `None`.
    pub async fn start(server: &AdsServer, addr: Option<SocketAddr>) -> anyhow::Result<Self> {
        let listener =
            TcpListener::bind(addr.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap())).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = server.clone();
        let task = tokio::spawn(async move {
            server
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self {
            addr,
            stop: Some(stop),
            task,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving and waits (bounded) for the server to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(WAIT, &mut self.task).await???;
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One update the handler saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub type_url: String,
    pub version: String,
    pub names: BTreeSet<String>,
    pub changed: BTreeSet<String>,
    pub removed: BTreeSet<String>,
    pub accepted: bool,
}

/// Records every update and rejects any set holding a resource named `reject`.
pub struct RecordingHandler {
    pub tx: mpsc::UnboundedSender<Seen>,
    pub reject: String,
}

impl RecordingHandler {
    pub fn new(reject: &str) -> (Self, mpsc::UnboundedReceiver<Seen>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Self {
                tx,
                reject: reject.to_string(),
            },
            rx,
        )
    }
}

impl XdsHandler for RecordingHandler {
    fn apply(&self, type_url: &str, update: &Update<'_>) -> Result<(), String> {
        let accepted = !update.resources.contains_key(&self.reject);
        let _ = self.tx.send(Seen {
            type_url: type_url.to_string(),
            version: update.version.to_string(),
            names: update.resources.keys().cloned().collect(),
            changed: update.changed.clone(),
            removed: update.removed.clone(),
            accepted,
        });
        if accepted {
            Ok(())
        } else {
            Err(format!(
                "resource {} rejected by the test handler",
                self.reject
            ))
        }
    }
}

/// The next update of `type_url` (others are skipped), within [`WAIT`].
pub async fn next_seen(rx: &mut mpsc::UnboundedReceiver<Seen>, type_url: &str) -> Seen {
    let deadline = tokio::time::Instant::now() + WAIT;
    for _ in 0..10_000 {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(seen)) if seen.type_url == type_url => return seen,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("handler dropped while waiting for {type_url}"),
            Err(_) => break,
        }
    }
    panic!("no {type_url} update within {WAIT:?}");
}

pub fn node(id: &str) -> Node {
    Node {
        id: id.to_string(),
        cluster: "weft-xds-tests".to_string(),
        ..Default::default()
    }
}

pub fn names<const N: usize>(names: [&str; N]) -> BTreeSet<String> {
    names.into_iter().map(str::to_string).collect()
}

/// A bare named cluster; `tag` varies its content without changing its name.
pub fn cluster(name: &str, tag: &str) -> Any {
    pack_any(Cluster {
        name: name.to_string(),
        alt_stat_name: tag.to_string(),
        ..Default::default()
    })
}

pub fn load_assignment(name: &str) -> Any {
    pack_any(ClusterLoadAssignment {
        cluster_name: name.to_string(),
        ..Default::default()
    })
}

/// A named assignment; `priority` varies its content without changing its name.
pub fn load_assignment_at(name: &str, priority: u32) -> Any {
    use weft_xds::envoy_types::pb::envoy::config::endpoint::v3::LocalityLbEndpoints;
    pack_any(ClusterLoadAssignment {
        cluster_name: name.to_string(),
        endpoints: vec![LocalityLbEndpoints {
            priority,
            ..Default::default()
        }],
        ..Default::default()
    })
}

pub fn listener(name: &str, tag: &str) -> Any {
    pack_any(Listener {
        name: name.to_string(),
        stat_prefix: tag.to_string(),
        ..Default::default()
    })
}
