//! Keep-alive load across a configuration push: a few HTTP/1.1 connections, each sending
//! requests one after another, every request tagged with the *epoch* current when it
//! started and when it ended. The test moves the epoch at each step (pushed, ACKed), so it
//! can require "everything sent after the ACK and answered before the next push reached the
//! new backend" without any timing guess.
//! Bounded in requests and time; stops by itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::{POLL, WAIT};
use crate::client::EXCHANGE_LIMIT;
use crate::{EchoSeen, Error};

/// How much load, at most.
#[derive(Debug, Clone, Copy)]
pub struct LoadPlan {
    pub connections: usize,
    /// Requests over all connections, after which every connection stops.
    pub max_requests: u64,
    /// Time after which every connection stops.
    pub max_time: Duration,
    /// Pause after each request on a connection (sets the rate).
    pub pause: Duration,
}

/// One request's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub connection: usize,
    /// The epoch when the request started.
    pub epoch: u32,
    /// The epoch when its answer was complete: a request spanning a step may be served by
    /// either side of it.
    pub end_epoch: u32,
    /// `Ok((status, backend))`, the backend empty if the body was no echo answer;
    /// `Err` for a transport failure.
    pub outcome: Result<(u16, String), String>,
}

#[derive(Debug, Default)]
struct Shared {
    epoch: AtomicU32,
    stop: AtomicBool,
    started: AtomicU64,
    completed: AtomicU64,
    samples: Mutex<Vec<Sample>>,
}

/// Load in progress.
#[derive(Debug)]
pub struct Load {
    shared: Arc<Shared>,
    tasks: JoinSet<()>,
}

impl Load {
    /// Starts `plan.connections` connections to `addr`, each sending `GET path` with
    /// `host: authority`.
    pub fn start(addr: SocketAddr, authority: &str, path: &str, plan: LoadPlan) -> Self {
        let shared = Arc::new(Shared::default());
        let deadline = tokio::time::Instant::now() + plan.max_time;
        let mut tasks = JoinSet::new();
        for connection in 0..plan.connections {
            let worker = Worker {
                shared: shared.clone(),
                addr,
                authority: authority.to_string(),
                path: path.to_string(),
                connection,
                plan,
                deadline,
            };
            tasks.spawn(worker.run());
        }
        Self { shared, tasks }
    }

    /// Requests started from now on carry `epoch`.
    pub fn set_epoch(&self, epoch: u32) {
        self.shared.epoch.store(epoch, Ordering::SeqCst);
    }

    pub fn completed(&self) -> u64 {
        self.shared.completed.load(Ordering::SeqCst)
    }

    /// Waits (bounded) until at least `n` requests have completed in all; `Err` if the load
    /// ends (its own bounds) or [`WAIT`] passes first.
    pub async fn wait_completed(&mut self, n: u64) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.completed() < n {
            if self.tasks.is_empty() || tokio::time::Instant::now() >= deadline {
                return Err(Error::Conformance(format!(
                    "load reached {} of {n} completed requests before it ended or {WAIT:?} passed",
                    self.completed()
                )));
            }
            // Reaps finished workers so an ended load is noticed.
            let _ = tokio::time::timeout(POLL, self.tasks.join_next()).await;
        }
        Ok(())
    }

    /// Stops every connection after its current request and returns all samples.
    pub async fn finish(mut self) -> Vec<Sample> {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Each request is bounded by EXCHANGE_LIMIT, so this ends.
        while self.tasks.join_next().await.is_some() {}
        std::mem::take(&mut *self.shared.samples.lock())
    }
}

struct Worker {
    shared: Arc<Shared>,
    addr: SocketAddr,
    authority: String,
    path: String,
    connection: usize,
    plan: LoadPlan,
    deadline: tokio::time::Instant,
}

impl Worker {
    async fn run(self) {
        let mut sender: Option<SendRequest<Empty<Bytes>>> = None;
        loop {
            if self.shared.stop.load(Ordering::SeqCst)
                || tokio::time::Instant::now() >= self.deadline
                || self.shared.started.fetch_add(1, Ordering::SeqCst) >= self.plan.max_requests
            {
                return;
            }
            let epoch = self.shared.epoch.load(Ordering::SeqCst);
            let outcome = match tokio::time::timeout(EXCHANGE_LIMIT, self.once(&mut sender)).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {EXCHANGE_LIMIT:?}")),
            };
            if outcome.is_err() {
                // A failed connection is not reused; the next request opens a new one.
                sender = None;
            }
            let end_epoch = self.shared.epoch.load(Ordering::SeqCst);
            self.shared.samples.lock().push(Sample {
                connection: self.connection,
                epoch,
                end_epoch,
                outcome,
            });
            self.shared.completed.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.plan.pause).await;
        }
    }

    async fn once(
        &self,
        sender: &mut Option<SendRequest<Empty<Bytes>>>,
    ) -> Result<(u16, String), String> {
        let reusable = match sender {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !reusable {
            *sender = Some(self.connect().await?);
        }
        let Some(s) = sender.as_mut() else {
            return Err("no connection".into());
        };
        let req = Request::get(self.path.as_str())
            .header("host", self.authority.as_str())
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let resp = s.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let backend = EchoSeen::parse(&body)
            .map(|s| s.backend)
            .unwrap_or_default();
        Ok((status, backend))
    }

    async fn connect(&self) -> Result<SendRequest<Empty<Bytes>>, String> {
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connecting to {}: {e}", self.addr))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        Ok(sender)
    }
}
