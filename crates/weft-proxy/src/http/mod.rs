//! The HTTP connection manager: serving HTTP/1.1 and HTTP/2 connections, and the router that
//! sends each request where its route says.

pub mod auto_sni;
pub mod body;
pub mod cors;
pub mod fault;
pub mod forwarding;
pub mod local_reply;
pub mod mirror;
pub mod retry;
pub mod router;
pub mod server;
pub mod timers;
pub mod upgrade;

use crate::config::snapshot::Shared;
use crate::model::hcm::HcmConfig;
use crate::stats_struct;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use tokio::time::Instant;

stats_struct!(
    /// `http.<stat_prefix>.*`, named as Envoy names them.
    HttpStats {
        counters: [
            downstream_cx_total,
            downstream_cx_http1_total,
            downstream_cx_http2_total,
            downstream_cx_idle_timeout,
            downstream_cx_max_duration_reached,
            downstream_cx_max_requests_reached,
            downstream_rq_total,
            downstream_rq_http1_total,
            downstream_rq_http2_total,
            downstream_rq_1xx,
            downstream_rq_2xx,
            downstream_rq_3xx,
            downstream_rq_4xx,
            downstream_rq_5xx,
            downstream_rq_timeout,
            downstream_rq_idle_timeout,
            downstream_rq_max_duration_reached,
            downstream_rq_ws_on_non_ws_route,
            no_route,
            no_cluster,
            rq_direct_response,
            rq_redirect,
        ],
        gauges: [downstream_cx_active, downstream_rq_active],
    }
);

impl HttpStats {
    pub fn count_status(&self, status: u16) {
        match status / 100 {
            1 => self.downstream_rq_1xx.inc(),
            2 => self.downstream_rq_2xx.inc(),
            3 => self.downstream_rq_3xx.inc(),
            4 => self.downstream_rq_4xx.inc(),
            _ => self.downstream_rq_5xx.inc(),
        }
    }
}

/// Per-connection bookkeeping read by the connection's timers without any notification on
/// the request path: a count of open streams and when the last one ended.
pub struct ConnTracker {
    started: Instant,
    active: AtomicUsize,
    /// Milliseconds after `started` when the connection last became idle.
    idle_since_ms: AtomicU64,
    requests: AtomicU32,
}

impl ConnTracker {
    pub fn new() -> Self {
        ConnTracker {
            started: Instant::now(),
            active: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            requests: AtomicU32::new(0),
        }
    }

    /// A stream began; returns how many the connection has seen, this one included.
    pub fn stream_started(&self) -> u32 {
        self.active.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn stream_ended(&self) {
        if self.active.fetch_sub(1, Ordering::Relaxed) == 1 {
            let ms = self.started.elapsed().as_millis() as u64;
            self.idle_since_ms.store(ms, Ordering::Relaxed);
        }
    }

    pub fn is_idle(&self) -> bool {
        self.active.load(Ordering::Relaxed) == 0
    }

    /// When the connection became idle (meaningful while [`Self::is_idle`]).
    pub fn idle_since(&self) -> Instant {
        self.started + std::time::Duration::from_millis(self.idle_since_ms.load(Ordering::Relaxed))
    }
}

impl Default for ConnTracker {
    fn default() -> Self {
        Self::new()
    }
}

/// What the router knows about the connection a request came on.
pub struct ConnCtx {
    pub hcm: Arc<HcmConfig>,
    pub stats: Arc<HttpStats>,
    /// The fault filter's statistics, when the chain has one.
    pub fault_stats: Option<Arc<fault::FaultStats>>,
    pub shared: Shared,
    pub remote: SocketAddr,
    /// The local address, or the original destination when the connection was redirected.
    pub local: SocketAddr,
    pub original_dst: Option<SocketAddr>,
    pub tracker: ConnTracker,
    /// Set when the connection must close after the current response.
    pub closing: std::sync::atomic::AtomicBool,
    pub shutdown: tokio::sync::Notify,
}
