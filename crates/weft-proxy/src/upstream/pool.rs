//! Upstream connection pools, one per cluster per worker. HTTP/1.1 connections are reused
//! one request at a time (returned to the pool when the response body ends); HTTP/2 has one
//! multiplexed connection per host. The proxy drives hyper's connection types directly so
//! that requests keep their own `Host` / `:authority` while going to the endpoint chosen by
//! the load balancer.
//!
//! The cluster's circuit breakers are enforced here, where Envoy's pools enforce them: a
//! request that finds no ready connection is *pending* (limited by `max_pending_requests`)
//! until one connects or is handed back; a new connection is only opened while the cluster
//! is under `max_connections`, unless this pool has none to the host at all; and a request
//! is only attached to a connection while the cluster is under `max_requests`. Past a limit
//! the request fails with [`UpstreamError::Overflow`].
//!
//! A connection older than the cluster's `max_connection_duration` is drained as Envoy
//! drains it: it takes no new request, and closes once its requests are done.

use super::cluster::ClusterStats;
use super::connector::{ConnectError, Connector};
use super::endpoints::Host;
use super::resources::{Count, Held, Resources};
use super::tls::AlpnFallback;
use crate::http::body::Body;
use crate::model::cluster::H2Settings;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Why an upstream request failed, in the terms Envoy's responses use.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("{0}")]
    Connect(#[from] ConnectError),
    /// The connection closed or reset before response headers arrived.
    #[error("{0}")]
    Reset(hyper::Error),
    /// A circuit breaker refused the request (pending requests or active requests).
    #[error("overflow")]
    Overflow,
}

/// Envoy's stream reset reasons, as its 503 bodies name them and retry policies test them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetReason {
    ConnectionTimeout,
    RemoteConnectionFailure,
    ConnectionTermination,
    RemoteReset,
    RemoteRefusedStreamReset,
    LocalReset,
    Overflow,
}

impl ResetReason {
    pub fn text(self) -> &'static str {
        match self {
            ResetReason::ConnectionTimeout => "connection timeout",
            ResetReason::RemoteConnectionFailure => "remote connection failure",
            ResetReason::ConnectionTermination => "connection termination",
            ResetReason::RemoteReset => "remote reset",
            ResetReason::RemoteRefusedStreamReset => "remote refused stream reset",
            ResetReason::LocalReset => "local reset",
            ResetReason::Overflow => "overflow",
        }
    }

    pub fn is_connect_failure(self) -> bool {
        matches!(
            self,
            ResetReason::ConnectionTimeout | ResetReason::RemoteConnectionFailure
        )
    }
}

impl UpstreamError {
    pub fn reset_reason(&self) -> ResetReason {
        match self {
            UpstreamError::Connect(ConnectError::Timeout) => ResetReason::ConnectionTimeout,
            UpstreamError::Connect(_) => ResetReason::RemoteConnectionFailure,
            UpstreamError::Overflow => ResetReason::Overflow,
            UpstreamError::Reset(e) => {
                // An HTTP/2 stream reset by the peer is a remote reset; a connection that
                // went away under the stream is a termination.
                let h2 = std::error::Error::source(e).and_then(|s| s.downcast_ref::<h2::Error>());
                match h2 {
                    Some(h) if h.is_reset() && h.is_remote() => {
                        if h.reason() == Some(h2::Reason::REFUSED_STREAM) {
                            ResetReason::RemoteRefusedStreamReset
                        } else {
                            ResetReason::RemoteReset
                        }
                    }
                    _ => ResetReason::ConnectionTermination,
                }
            }
        }
    }
}

/// What attaching a request to a connection needs: the cluster's counts and statistics,
/// and the host (absent for ORIGINAL_DST clusters).
pub struct Attach<'a> {
    pub resources: &'a Arc<Resources>,
    pub stats: &'a Arc<ClusterStats>,
    pub host: Option<&'a Arc<Host>>,
}

/// A request attached to an upstream connection: it counts against `max_requests` and as
/// active on its cluster and host until dropped (when its response has been read or
/// abandoned).
pub struct ActiveRequest {
    _slot: Held,
    stats: Arc<ClusterStats>,
    host: Option<Arc<Host>>,
}

impl ActiveRequest {
    fn attach(a: &Attach<'_>) -> Result<Self, UpstreamError> {
        if !a.resources.default.requests.can_create() {
            a.stats.upstream_rq_pending_overflow.inc();
            return Err(UpstreamError::Overflow);
        }
        a.stats.upstream_rq_total.inc();
        a.stats.upstream_rq_active.inc();
        if let Some(h) = a.host {
            h.rq_total.inc();
            h.rq_active.inc();
        }
        Ok(ActiveRequest {
            _slot: Held::take(a.resources, Count::Request),
            stats: a.stats.clone(),
            host: a.host.cloned(),
        })
    }
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        self.stats.upstream_rq_active.dec();
        if let Some(h) = &self.host {
            h.rq_active.dec();
        }
    }
}

/// A request waiting for a connection.
struct Pending {
    _slot: Held,
    stats: Arc<ClusterStats>,
}

impl Pending {
    fn new(a: &Attach<'_>) -> Result<Self, UpstreamError> {
        if !a.resources.default.pending.can_create() {
            a.stats.upstream_rq_pending_overflow.inc();
            return Err(UpstreamError::Overflow);
        }
        a.stats.upstream_rq_pending_total.inc();
        a.stats.upstream_rq_pending_active.inc();
        Ok(Pending {
            _slot: Held::take(a.resources, Count::Pending),
            stats: a.stats.clone(),
        })
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.stats.upstream_rq_pending_active.dec();
    }
}

struct IdleH1 {
    sender: http1::SendRequest<Body>,
    since: Instant,
    served: u32,
    drain: Drain,
}

/// Set when a connection reached `max_connection_duration`: it takes no new request.
type Drain = Arc<AtomicBool>;

/// What a request waiting for an HTTP/1.1 connection is woken with.
enum Wake {
    /// A connection handed back by a finished request.
    Ready(IdleH1),
    /// A connection closed: there may be room to open one now.
    Closed,
}

/// Which connections requests may share: those to one address and, on clusters whose SNI
/// is each request's host (`auto_sni`), under one host, as Envoy keys its pools by the
/// transport socket options too.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolKey {
    pub addr: SocketAddr,
    pub host: Option<Arc<str>>,
}

impl From<SocketAddr> for PoolKey {
    fn from(addr: SocketAddr) -> Self {
        PoolKey { addr, host: None }
    }
}

/// One host's HTTP/1.1 connections in this pool.
#[derive(Default)]
struct H1Host {
    idle: Vec<IdleH1>,
    /// Requests waiting for a connection, oldest first.
    waiters: VecDeque<oneshot::Sender<Wake>>,
    /// Connections open or opening (idle, busy or connecting).
    open: usize,
}

pub struct Pool {
    connector: Connector,
    idle_timeout: Option<Duration>,
    max_duration: Option<Duration>,
    max_requests: Option<u32>,
    h2_settings: H2Settings,
    h1: Mutex<HashMap<PoolKey, H1Host>>,
    h2: Mutex<HashMap<PoolKey, (http2::SendRequest<Body>, Drain)>>,
}

/// An HTTP/1.1 connection lent out for one request; [`Pool::give_back`] returns it.
pub struct Lease {
    pool: Arc<Pool>,
    key: PoolKey,
    sender: http1::SendRequest<Body>,
    served: u32,
    drain: Drain,
}

/// A response, the HTTP/1.1 connection it came on (to give back once the body is read), and
/// the request's claim on the cluster's active requests.
pub type Sent = (http::Response<Incoming>, Option<Lease>, ActiveRequest);

impl Pool {
    pub fn new(
        connector: Connector,
        idle_timeout: Option<Duration>,
        max_duration: Option<Duration>,
        max_requests: Option<u32>,
        h2_settings: H2Settings,
    ) -> Self {
        Pool {
            connector,
            idle_timeout,
            max_duration,
            max_requests,
            h2_settings,
            h1: Mutex::new(HashMap::new()),
            h2: Mutex::new(HashMap::new()),
        }
    }

    /// Sends over HTTP/1.1; the lease goes back to the pool when the response is consumed.
    pub async fn send_h1(
        self: &Arc<Self>,
        key: PoolKey,
        mut req: http::Request<Body>,
        attach: &Attach<'_>,
    ) -> Result<Sent, UpstreamError> {
        while let Some(mut lease) = self.take_idle(&key) {
            // A connection whose previous response just ended may need a moment to become
            // ready; one that closed meanwhile fails here and the next is tried.
            if lease.sender.ready().await.is_err() {
                continue;
            }
            let active = match ActiveRequest::attach(attach) {
                Ok(a) => a,
                Err(e) => {
                    Pool::give_back(lease);
                    return Err(e);
                }
            };
            match lease.sender.try_send_request(req).await {
                Ok(resp) => {
                    lease.served += 1;
                    return Ok((resp, Some(lease), active));
                }
                // The connection died while idle and the request never left: use a new one.
                Err(mut e) => match e.take_message() {
                    Some(r) if e.error().is_canceled() || e.error().is_closed() => req = r,
                    _ => return Err(UpstreamError::Reset(e.into_error())),
                },
            }
        }
        // No ready connection: the request is pending until it has one.
        let pending = Pending::new(attach)?;
        let lease = loop {
            match self.connect_or_wait(&key, attach).await? {
                Wake::Ready(idle) => {
                    let mut lease = Lease {
                        pool: self.clone(),
                        key: key.clone(),
                        sender: idle.sender,
                        served: idle.served,
                        drain: idle.drain,
                    };
                    if lease.sender.ready().await.is_ok() {
                        break lease;
                    }
                }
                Wake::Closed => {}
            }
        };
        drop(pending);
        let mut lease = lease;
        let active = match ActiveRequest::attach(attach) {
            Ok(a) => a,
            Err(e) => {
                Pool::give_back(lease);
                return Err(e);
            }
        };
        let resp = lease
            .sender
            .send_request(req)
            .await
            .map_err(UpstreamError::Reset)?;
        lease.served += 1;
        Ok((resp, Some(lease), active))
    }

    /// Opens a connection when the circuit breaker allows one (or this pool has none to the
    /// host), else waits for one of this pool's connections to be handed back or to close.
    async fn connect_or_wait(
        self: &Arc<Self>,
        key: &PoolKey,
        attach: &Attach<'_>,
    ) -> Result<Wake, UpstreamError> {
        let rx = {
            let mut h1 = self.h1.lock();
            let host = h1.entry(key.clone()).or_default();
            let can = attach.resources.default.connections.can_create();
            if !can {
                attach.stats.upstream_cx_overflow.inc();
            }
            if can || host.open == 0 {
                host.open += 1;
                None
            } else {
                let (tx, rx) = oneshot::channel();
                host.waiters.push_back(tx);
                Some(rx)
            }
        };
        match rx {
            Some(rx) => Ok(rx.await.unwrap_or(Wake::Closed)),
            None => {
                let (sender, drain) = Box::pin(self.open_h1(key)).await?;
                Ok(Wake::Ready(IdleH1 {
                    sender,
                    since: Instant::now(),
                    served: 0,
                    drain,
                }))
            }
        }
    }

    fn take_idle(self: &Arc<Self>, key: &PoolKey) -> Option<Lease> {
        let mut h1 = self.h1.lock();
        let list = &mut h1.get_mut(key)?.idle;
        let now = Instant::now();
        while let Some(c) = list.pop() {
            let fresh = self
                .idle_timeout
                .is_none_or(|t| now.duration_since(c.since) < t);
            if fresh && !c.sender.is_closed() && !c.drain.load(Ordering::Relaxed) {
                return Some(Lease {
                    pool: self.clone(),
                    key: key.clone(),
                    sender: c.sender,
                    served: c.served,
                    drain: c.drain,
                });
            }
        }
        None
    }

    /// A connection of this pool to `key` closed (or never opened): one waiting request may
    /// now open another.
    fn closed(&self, key: &PoolKey) {
        let mut h1 = self.h1.lock();
        let Some(host) = h1.get_mut(key) else {
            return;
        };
        host.open = host.open.saturating_sub(1);
        while let Some(w) = host.waiters.pop_front() {
            if w.send(Wake::Closed).is_ok() {
                break;
            }
        }
    }

    // Opening a connection is the rare path; boxing it keeps the per-request future (which
    // hyper moves around) small. The caller has counted it in `open`.
    async fn open_h1(
        self: &Arc<Self>,
        key: &PoolKey,
    ) -> Result<(http1::SendRequest<Body>, Drain), UpstreamError> {
        let opened = async {
            let io = self
                .connector
                .connect(key.addr, AlpnFallback::Http1, key.host.as_deref())
                .await?;
            http1::Builder::new()
                .handshake(io)
                .await
                .map_err(UpstreamError::Reset)
        };
        match opened.await {
            Ok((sender, conn)) => {
                let pool = self.clone();
                let drain = Drain::default();
                let expiry = self.expiry(drain.clone());
                let key = key.clone();
                tokio::spawn(async move {
                    let conn = conn.with_upgrades();
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = &mut conn => {}
                        () = expiry => {
                            // Idle ones close now; a busy one when its request is done.
                            pool.h1
                                .lock()
                                .entry(key.clone())
                                .or_default()
                                .idle
                                .retain(|c| !c.drain.load(Ordering::Relaxed));
                            let _ = conn.await;
                        }
                    }
                    pool.closed(&key);
                });
                Ok((sender, drain))
            }
            Err(e) => {
                self.closed(key);
                Err(e)
            }
        }
    }

    /// Resolves when a connection opened now reaches `max_connection_duration` (never
    /// without one), marking it drained and counting it as Envoy does.
    fn expiry(&self, drain: Drain) -> impl std::future::Future<Output = ()> + use<> {
        let max = self.max_duration;
        let stats = self.connector.stats.clone();
        async move {
            match max {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
            drain.store(true, Ordering::Relaxed);
            stats.upstream_cx_max_duration_reached.inc();
        }
    }

    async fn open_h2(
        self: &Arc<Self>,
        key: &PoolKey,
    ) -> Result<(http2::SendRequest<Body>, Drain), UpstreamError> {
        let io = self
            .connector
            .connect(key.addr, AlpnFallback::Http2, key.host.as_deref())
            .await?;
        let mut b = http2::Builder::new(TokioExecutor::new());
        b.timer(TokioTimer::new())
            .initial_stream_window_size(self.h2_settings.initial_stream_window_size)
            .initial_connection_window_size(self.h2_settings.initial_connection_window_size)
            .keep_alive_interval(self.h2_settings.keepalive_interval)
            .header_table_size(self.h2_settings.header_table_size);
        if let Some(t) = self.h2_settings.keepalive_timeout {
            b.keep_alive_timeout(t);
        }
        let (sender, conn) = b.handshake(io).await.map_err(UpstreamError::Reset)?;
        let drain = Drain::default();
        let expiry = self.expiry(drain.clone());
        let pool = self.clone();
        let key = key.clone();
        tokio::spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                _ = &mut conn => {}
                () = expiry => {
                    // New streams go to a new connection; this one ends with its last.
                    {
                        let mut h2 = pool.h2.lock();
                        if h2.get(&key).is_some_and(|(_, d)| d.load(Ordering::Relaxed)) {
                            h2.remove(&key);
                        }
                    }
                    let _ = conn.await;
                }
            }
        });
        Ok((sender, drain))
    }

    /// Returns a connection whose response was read to the end: to the oldest request
    /// waiting for one, else to the idle list.
    pub fn give_back(lease: Lease) {
        let Lease {
            pool,
            key,
            sender,
            served,
            drain,
        } = lease;
        if pool.max_requests.is_some_and(|m| served >= m)
            || sender.is_closed()
            || drain.load(Ordering::Relaxed)
        {
            return;
        }
        let mut idle = IdleH1 {
            sender,
            since: Instant::now(),
            served,
            drain,
        };
        let mut h1 = pool.h1.lock();
        let host = h1.entry(key).or_default();
        while let Some(w) = host.waiters.pop_front() {
            match w.send(Wake::Ready(idle)) {
                Ok(()) => return,
                Err(Wake::Ready(back)) => idle = back,
                Err(Wake::Closed) => return,
            }
        }
        host.idle.push(idle);
    }

    /// Sends over HTTP/2 on the host's shared connection (opened on first use, the request
    /// pending meanwhile).
    pub async fn send_h2(
        self: &Arc<Self>,
        key: PoolKey,
        req: http::Request<Body>,
        attach: &Attach<'_>,
    ) -> Result<Sent, UpstreamError> {
        let existing = {
            let mut h2 = self.h2.lock();
            match h2.get(&key) {
                Some((s, drain)) if !s.is_closed() && !drain.load(Ordering::Relaxed) => {
                    Some(s.clone())
                }
                Some(_) => {
                    h2.remove(&key);
                    None
                }
                None => None,
            }
        };
        let mut sender = match existing {
            Some(s) => s,
            None => {
                let pending = Pending::new(attach)?;
                if !attach.resources.default.connections.can_create() {
                    // One connection per host is all HTTP/2 needs, and a pool with none to
                    // the host always opens one, as Envoy's does.
                    attach.stats.upstream_cx_overflow.inc();
                }
                let (sender, drain) = Box::pin(self.open_h2(&key)).await?;
                self.h2.lock().insert(key, (sender.clone(), drain));
                drop(pending);
                sender
            }
        };
        let active = ActiveRequest::attach(attach)?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(UpstreamError::Reset)?;
        Ok((resp, None, active))
    }
}
