//! Serving one downstream connection with the connection manager's codec (HTTP/1.1, HTTP/2
//! or either, detected), and its connection-level limits: idle timeout, maximum duration,
//! maximum requests, and draining — each ends the connection gracefully (`Connection:
//! close` or GOAWAY) so in-flight requests finish.

use super::body::BoxError;
use super::{ConnCtx, ConnTracker, router};
use crate::config::snapshot::{HttpChainStats, Shared};
use crate::model::hcm::{Codec, HcmConfig};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

pub struct Conn {
    pub remote: SocketAddr,
    pub local: SocketAddr,
    pub original_dst: Option<SocketAddr>,
}

pub async fn serve<IO>(
    io: IO,
    conn: Conn,
    hcm: Arc<HcmConfig>,
    chain_stats: HttpChainStats,
    shared: Shared,
    drain: CancellationToken,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let HttpChainStats {
        http: stats,
        fault: fault_stats,
    } = chain_stats;
    stats.downstream_cx_total.inc();
    stats.downstream_cx_active.inc();
    let ctx = Arc::new(ConnCtx {
        hcm: hcm.clone(),
        stats: stats.clone(),
        fault_stats,
        shared,
        remote: conn.remote,
        local: conn.local,
        original_dst: conn.original_dst,
        tracker: ConnTracker::new(),
        closing: Default::default(),
        shutdown: Default::default(),
    });
    let svc_ctx = ctx.clone();
    let svc = service_fn(move |req| {
        let ctx = svc_ctx.clone();
        async move { Ok::<_, Infallible>(router::handle(req, ctx).await) }
    });
    let io = TokioIo::new(io);
    let header_bytes = (hcm.max_request_headers_kb as usize) * 1024;
    let mut b = auto::Builder::new(TokioExecutor::new());
    b = match hcm.codec {
        Codec::Http1 => b.http1_only(),
        Codec::Http2 => b.http2_only(),
        Codec::Auto => b,
    };
    b.http1()
        .timer(TokioTimer::new())
        .max_buf_size(header_bytes.max(8192))
        .header_read_timeout(hcm.request_headers_timeout);
    if let Some(n) = hcm.max_headers_count {
        b.http1().max_headers(n as usize);
    }
    let mut h2 = b.http2();
    h2.timer(TokioTimer::new())
        .max_header_list_size(header_bytes as u32)
        .initial_stream_window_size(hcm.h2.initial_stream_window_size)
        .initial_connection_window_size(hcm.h2.initial_connection_window_size)
        .keep_alive_interval(hcm.h2.keepalive_interval);
    if let Some(n) = hcm.h2.max_concurrent_streams {
        h2.max_concurrent_streams(n);
    }
    if let Some(t) = hcm.h2.keepalive_timeout {
        h2.keep_alive_timeout(t);
    }
    let conn = b.serve_connection_with_upgrades(io, svc);
    drive(conn, &ctx, &drain).await;
    stats.downstream_cx_active.dec();
}

/// Runs the connection to completion, asking it to wind down when a limit is hit.
async fn drive<I, S, B>(
    conn: auto::UpgradeableConnection<'_, I, S, TokioExecutor>,
    ctx: &ConnCtx,
    drain: &CancellationToken,
) where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>
        + hyper::service::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<B>,
            Error = <S as hyper::service::HttpService<hyper::body::Incoming>>::Error,
            Future = <S as hyper::service::HttpService<hyper::body::Incoming>>::Future,
        >,
    <S as hyper::service::HttpService<hyper::body::Incoming>>::Error: Into<BoxError>,
    <S as hyper::service::HttpService<hyper::body::Incoming>>::Future: 'static,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    TokioExecutor: hyper_util::server::conn::auto::HttpServerConnExec<
            <S as hyper::service::HttpService<hyper::body::Incoming>>::Future,
            B,
        >,
{
    let mut conn = pin!(conn);
    let hcm = &ctx.hcm;
    let deadline = hcm
        .max_connection_duration
        .map(|d| tokio::time::Instant::now() + d);
    let mut shutting_down = false;
    loop {
        let idle = async {
            let Some(t) = hcm.idle_timeout else {
                return std::future::pending().await;
            };
            loop {
                let wake = if ctx.tracker.is_idle() {
                    ctx.tracker.idle_since() + t
                } else {
                    tokio::time::Instant::now() + t
                };
                tokio::time::sleep_until(wake).await;
                if ctx.tracker.is_idle()
                    && ctx.tracker.idle_since() + t <= tokio::time::Instant::now()
                {
                    return;
                }
            }
        };
        let max_duration = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = idle, if !shutting_down => {
                ctx.stats.downstream_cx_idle_timeout.inc();
            }
            _ = max_duration, if !shutting_down => {
                ctx.stats.downstream_cx_max_duration_reached.inc();
            }
            _ = ctx.shutdown.notified(), if !shutting_down => {}
            _ = drain.cancelled(), if !shutting_down => {}
        }
        shutting_down = true;
        conn.as_mut().graceful_shutdown();
    }
}
