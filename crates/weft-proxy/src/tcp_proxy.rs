//! Serving a `tcp_proxy` filter chain: connect to an endpoint of the chosen cluster (with
//! the configured number of attempts), then relay bytes both ways until either side closes,
//! the connection idles out, or it reaches its maximum duration.

use crate::config::snapshot::Shared;
use crate::listener::inspect::Rewind;
use crate::model::cluster::Discovery;
use crate::model::tcp_proxy::TcpProxyConfig;
use crate::stats_struct;
use crate::upstream::outlier::Outcome;
use crate::upstream::xxhash::xxh64;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

stats_struct!(
    /// `tcp.<stat_prefix>.*`, named as Envoy names them.
    TcpStats {
        counters: [
            downstream_cx_total,
            downstream_cx_no_route,
            downstream_cx_rx_bytes_total,
            downstream_cx_tx_bytes_total,
            idle_timeout,
            max_downstream_connection_duration,
        ],
        gauges: [],
    }
);

/// The two ends of a downstream connection that matter to the proxy: the client (for
/// hashing) and where the connection was headed (for ORIGINAL_DST clusters).
pub struct Ends {
    pub remote: SocketAddr,
    pub original_dst: SocketAddr,
}

pub async fn serve(
    mut down: Rewind,
    config: &TcpProxyConfig,
    stats: Arc<TcpStats>,
    shared: &Shared,
    ends: Ends,
) {
    let original_dst = ends.original_dst;
    // Envoy's source-IP hash: XXH64 of the client's address, as for HTTP routes.
    let hash = config
        .hash_source_ip
        .then(|| xxh64(ends.remote.ip().to_string().as_bytes(), 0));
    stats.downstream_cx_total.inc();
    let snapshot = shared.load_full();
    let Some(cluster) = snapshot.clusters.get(config.pick()).cloned() else {
        stats.downstream_cx_no_route.inc();
        return;
    };
    drop(snapshot);
    cluster.stats.upstream_rq_total.inc();
    let mut upstream = None;
    for _ in 0..config.max_connect_attempts {
        let (addr, host) = if matches!(cluster.config.discovery, Discovery::OriginalDst) {
            (original_dst, None)
        } else {
            match cluster.endpoints.load().pick(hash) {
                Some(h) => (h.addr, Some(h.clone())),
                None => {
                    cluster.stats.upstream_cx_none_healthy.inc();
                    return;
                }
            }
        };
        let connected = cluster
            .connector
            .connect(addr, crate::upstream::tls::AlpnFallback::None, None)
            .await;
        // Envoy's TCP proxy charges connection results to outlier detection (a failure
        // counts as a 503 unless local-origin errors are split off).
        if let Some(h) = &host {
            let outcome = match &connected {
                Ok(_) => Outcome::ConnectedFinal,
                Err(_) => Outcome::ConnectFailed,
            };
            cluster.record(h, outcome);
        }
        if let Ok(c) = connected {
            upstream = Some(c);
            break;
        }
    }
    let Some(up) = upstream else { return };
    let mut up = hyper_util::rt::TokioIo::new(up);
    let started = tokio::time::Instant::now();
    let last_ms = AtomicU64::new(0);
    let relay = async {
        let mut counted = Counting {
            inner: &mut down,
            stats: &stats,
            started,
            last_ms: &last_ms,
        };
        let copy = tokio::io::copy_bidirectional(&mut counted, &mut up);
        let Some(t) = config.idle_timeout else {
            let _ = copy.await;
            return;
        };
        tokio::pin!(copy);
        loop {
            let last = started + Duration::from_millis(last_ms.load(Ordering::Relaxed));
            tokio::select! {
                _ = &mut copy => return,
                _ = tokio::time::sleep_until(last + t) => {
                    let last = started + Duration::from_millis(last_ms.load(Ordering::Relaxed));
                    if last + t <= tokio::time::Instant::now() {
                        stats.idle_timeout.inc();
                        return;
                    }
                }
            }
        }
    };
    match config.max_downstream_connection_duration {
        Some(d) => {
            if tokio::time::timeout(d, relay).await.is_err() {
                stats.max_downstream_connection_duration.inc();
            }
        }
        None => relay.await,
    }
}

/// The downstream side of a relay, counting bytes and noting when data last moved.
struct Counting<'a> {
    inner: &'a mut Rewind,
    stats: &'a TcpStats,
    started: tokio::time::Instant,
    last_ms: &'a AtomicU64,
}

impl Counting<'_> {
    fn touch(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }
}

impl AsyncRead for Counting<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut *self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.stats.downstream_cx_rx_bytes_total.add(n as u64);
            self.touch();
        }
        r
    }
}

impl AsyncWrite for Counting<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut *self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.stats.downstream_cx_tx_bytes_total.add(*n as u64);
            self.touch();
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.inner).poll_shutdown(cx)
    }
}
