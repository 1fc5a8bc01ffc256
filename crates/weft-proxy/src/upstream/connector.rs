//! Opening upstream connections: connect timeout, `TCP_NODELAY`, keepalive, the source
//! address (`upstream_bind_config`), the TLS handshake of clusters with a TLS transport
//! socket (inside the same timeout), and the cluster's connection statistics and circuit
//! breaker count (a connection holds its slot from the connect until it closes). The error
//! says whether the connect was refused, timed out or failed its handshake, because Envoy's
//! 503 body and response flags differ between them.

use super::cluster::ClusterStats;
use super::resources::{Count, Held, Resources};
use super::tls::{AlpnFallback, NOT_READY, TlsSlot};
use crate::model::cluster::TcpKeepalive;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::rt::TokioIo;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connection timeout")]
    Timeout,
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The handshake failed; the text is the transport failure reason.
    #[error("{0}")]
    Tls(String),
    /// The cluster's secrets have not arrived.
    #[error("{NOT_READY}")]
    NotReady,
}

/// strerror(3)'s wording, which Envoy prints, without Rust's " (os error N)" suffix.
pub fn os_error_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[derive(Clone)]
pub struct Connector {
    pub connect_timeout: Duration,
    pub keepalive: Option<TcpKeepalive>,
    pub stats: Arc<ClusterStats>,
    pub resources: Arc<Resources>,
    /// Source addresses to bind, from `upstream_bind_config`.
    pub source: Arc<[SocketAddr]>,
    /// Present when the cluster's transport socket is TLS.
    pub tls: Option<Arc<TlsSlot>>,
}

impl Connector {
    /// The source address for `dst`: the first of its IP family, else the first (which then
    /// fails to bind, as in Envoy).
    fn source_for(&self, dst: SocketAddr) -> Option<SocketAddr> {
        self.source
            .iter()
            .find(|s| s.is_ipv4() == dst.is_ipv4())
            .or(self.source.first())
            .copied()
    }

    /// A connection to `addr`, through TLS when the cluster says so, offering `alpn` when
    /// the TLS context names no protocols; `host` is the request's host on clusters with
    /// `auto_sni`.
    pub async fn connect(
        &self,
        addr: SocketAddr,
        alpn: AlpnFallback,
        host: Option<&str>,
    ) -> Result<Counted, ConnectError> {
        self.stats.upstream_cx_total.inc();
        let tls = match &self.tls {
            Some(slot) => match slot.ready() {
                Ok(current) => Some((slot, current)),
                Err(e) => {
                    self.stats.upstream_cx_connect_fail.inc();
                    return Err(e);
                }
            },
            None => None,
        };
        let slot = Held::take(&self.resources, Count::Connection);
        let tcp = async {
            let socket = if addr.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            socket.set_nodelay(true)?;
            if let Some(src) = self.source_for(addr) {
                socket.bind(src)?;
            }
            if let Some(k) = &self.keepalive {
                let mut ka = socket2::TcpKeepalive::new();
                if let Some(t) = k.time {
                    ka = ka.with_time(t);
                }
                if let Some(i) = k.interval {
                    ka = ka.with_interval(i);
                }
                if let Some(p) = k.probes {
                    ka = ka.with_retries(p);
                }
                socket2::SockRef::from(&socket).set_tcp_keepalive(&ka)?;
            }
            socket.connect(addr).await
        };
        let attempt = async {
            let tcp = tcp.await?;
            Ok::<_, ConnectError>(match &tls {
                Some((slot, current)) => {
                    let stream = slot.handshake(current, tcp, addr, alpn, host).await?;
                    Io::Tls(Box::new(TokioIo::new(stream)))
                }
                None => Io::Plain(TokioIo::new(tcp)),
            })
        };
        match tokio::time::timeout(self.connect_timeout, attempt).await {
            Ok(Ok(io)) => {
                self.stats.upstream_cx_active.inc();
                Ok(Counted {
                    io,
                    stats: self.stats.clone(),
                    _slot: slot,
                })
            }
            Ok(Err(e)) => {
                self.stats.upstream_cx_connect_fail.inc();
                Err(e)
            }
            Err(_) => {
                self.stats.upstream_cx_connect_fail.inc();
                self.stats.upstream_cx_connect_timeout.inc();
                Err(ConnectError::Timeout)
            }
        }
    }
}

/// An upstream connection that keeps `upstream_cx_active` (and the circuit breaker's count
/// of connections) right when it closes.
pub struct Counted {
    io: Io,
    stats: Arc<ClusterStats>,
    _slot: Held,
}

enum Io {
    Plain(TokioIo<TcpStream>),
    // Boxed: a TLS stream's buffers are a kilobyte, which plaintext connections need not carry.
    Tls(Box<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>>),
}

/// Runs `$body` with `$io` bound to whichever stream the connection is.
macro_rules! either {
    ($self:ident, |$io:ident| $body:expr) => {
        match &mut $self.io {
            Io::Plain($io) => $body,
            Io::Tls(boxed) => {
                let $io = boxed.as_mut();
                $body
            }
        }
    };
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.stats.upstream_cx_active.dec();
        self.stats.upstream_cx_destroy.inc();
    }
}

impl Read for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        either!(self, |io| Pin::new(io).poll_read(cx, buf))
    }
}

impl Write for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        either!(self, |io| Pin::new(io).poll_write(cx, buf))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        either!(self, |io| Pin::new(io).poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        either!(self, |io| Pin::new(io).poll_shutdown(cx))
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(io) => io.is_write_vectored(),
            Io::Tls(io) => io.is_write_vectored(),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        either!(self, |io| Pin::new(io).poll_write_vectored(cx, bufs))
    }
}
