//! Echo backends: the upstreams every proxy test points at. The HTTP echo answers with a JSON
//! account of what reached it (so a test sees the request *after* the proxy rewrote it), obeys
//! `x-echo-*` control headers, speaks HTTP/1.1 and h2c on one port, and handles gRPC; the TCP
//! echo sends bytes back. HTTP/1.1 upgrades (WebSocket) are accepted and tunnel bytes back. Each counts what it served so tests can check traffic splits.

pub mod grpc;
mod http;
mod seen;
mod tcp;
pub mod upgrade;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::Error;

pub use seen::EchoSeen;

/// Upper bound for `x-echo-delay-ms`, so a typo cannot park a test forever.
pub const MAX_DELAY_MS: u64 = 60_000;
/// Upper bound for `x-echo-body-size` and for request bodies read.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// A running echo backend on `127.0.0.1:<kernel-chosen port>`; stops when dropped.
#[derive(Debug)]
pub struct EchoServer {
    name: String,
    addr: SocketAddr,
    served: Arc<AtomicU64>,
    recent: Arc<parking_lot::Mutex<std::collections::VecDeque<EchoSeen>>>,
    task: JoinHandle<()>,
}

impl EchoServer {
    /// An HTTP/1.1 + h2c (prior knowledge) echo named `name`.
    pub async fn http(name: &str) -> Result<Self, Error> {
        let listener = bind().await?;
        let served = Arc::new(AtomicU64::new(0));
        let recent = Arc::new(parking_lot::Mutex::new(Default::default()));
        let ctx = Arc::new(http::Ctx {
            name: name.to_string(),
            served: served.clone(),
            recent: recent.clone(),
        });
        let mut server = Self::start(name, listener, served, move |l| http::serve(l, ctx))?;
        server.recent = recent;
        Ok(server)
    }

    /// A raw TCP echo named `name`: every connection gets its bytes back until it closes.
    /// `served` counts connections.
    pub async fn tcp(name: &str) -> Result<Self, Error> {
        let listener = bind().await?;
        let served = Arc::new(AtomicU64::new(0));
        let counter = served.clone();
        Self::start(name, listener, served, move |l| tcp::serve(l, counter))
    }

    fn start<F, Fut>(
        name: &str,
        listener: TcpListener,
        served: Arc<AtomicU64>,
        serve: F,
    ) -> Result<Self, Error>
    where
        F: FnOnce(TcpListener) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let addr = listener
            .local_addr()
            .map_err(Error::io("reading the echo backend's address"))?;
        Ok(Self {
            name: name.to_string(),
            addr,
            served,
            recent: Default::default(),
            task: tokio::spawn(serve(listener)),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// What the latest HTTP requests answered with an account looked like (at most the
    /// last thousand or so), oldest first.
    pub fn recent(&self) -> Vec<EchoSeen> {
        self.recent.lock().iter().cloned().collect()
    }

    /// HTTP requests (or TCP connections) served so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        // The accept loop owns a JoinSet of its connections, so aborting it ends them too.
        self.task.abort();
    }
}

async fn bind() -> Result<TcpListener, Error> {
    TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(Error::io("binding an echo backend on 127.0.0.1:0"))
}
