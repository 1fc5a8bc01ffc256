//! The benchmark's upstream: a hyper HTTP/1.1 server on one thread that answers every
//! request `200 hello`. It is the same process for every participant, costs less per
//! request than any proxy in front of it, and stops on its own after `max_seconds`.
//!
//! With a certificate and key it serves HTTP/1.1 inside TLS instead (rustls, the provider
//! Weft itself uses, no client certificate asked for), for the topology where the proxy
//! originates TLS upstream. Every handshake is logged to stderr (see [`Handshakes`]) so a
//! run can tell how many connections, and how many resumed sessions, a proxy used.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{Response, header};
use http_body_util::Full;
use hyper::rt::{Read, Write};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::HandshakeKind;

pub struct BackendArgs {
    pub listen: SocketAddr,
    pub addr_file: Option<PathBuf>,
    pub body: String,
    pub max_seconds: u64,
    pub tls: Option<TlsFiles>,
}

/// The PEM certificate chain (leaf first) and private key to serve TLS with.
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub async fn run(args: BackendArgs) -> Result<()> {
    // Read before binding, so a bad certificate fails the start instead of every handshake.
    let acceptor = args.tls.as_ref().map(acceptor).transpose()?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("bind {}", args.listen))?;
    let local = listener.local_addr()?;
    if let Some(path) = &args.addr_file {
        // Written whole under a temporary name so a reader never sees half an address.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, local.to_string())?;
        std::fs::rename(&tmp, path)?;
    }
    let body = Bytes::from(args.body);
    let max = Duration::from_secs(args.max_seconds);
    let served = match acceptor {
        None => tokio::time::timeout(max, accept_loop(listener, body)).await,
        Some(acceptor) => {
            tokio::time::timeout(max, accept_loop_tls(listener, body, acceptor)).await
        }
    };
    served.unwrap_or(Ok(()))
}

fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor> {
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    let credentials = weft_identity::Credentials::from_pem(&read(&files.cert)?, &read(&files.key)?)
        .context("the backend's certificate and key")?;
    let config = weft_identity::tls::serving_config(credentials, &[b"http/1.1"])?;
    Ok(TlsAcceptor::from(config))
}

async fn accept_loop(listener: TcpListener, body: Bytes) -> Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(serve(TokioIo::new(stream), body.clone()));
    }
}

async fn accept_loop_tls(listener: TcpListener, body: Bytes, acceptor: TlsAcceptor) -> Result<()> {
    let handshakes = Arc::new(Handshakes::default());
    loop {
        let (stream, peer) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let (acceptor, body, handshakes) = (acceptor.clone(), body.clone(), handshakes.clone());
        tokio::spawn(async move {
            match acceptor.accept(stream).await {
                Ok(tls) => {
                    handshakes.record(peer, tls.get_ref().1);
                    serve(TokioIo::new(tls), body).await;
                }
                Err(error) => eprintln!("tls handshake from {peer} failed: {error}"),
            }
        });
    }
}

/// Answers every request on one connection `200 <body>` until the client closes it.
async fn serve<I: Read + Write + Unpin + Send + 'static>(io: I, body: Bytes) {
    let service = service_fn(move |_request| {
        let mut response = Response::new(Full::new(body.clone()));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/plain"),
        );
        async move { Ok::<_, Infallible>(response) }
    });
    // A client closing mid-request is normal under load; nothing to report.
    let _ = http1::Builder::new().serve_connection(io, service).await;
}

/// Counts of completed TLS handshakes, logged as one line each on stderr —
/// `tls handshake N resumed M peer … version … suite … sni … alpn …` — the first 1000 in
/// full, then every 1000th, so a proxy that reconnects per request cannot flood the log
/// but the last line still carries the running totals.
#[derive(Default)]
struct Handshakes {
    total: AtomicU64,
    resumed: AtomicU64,
}

impl Handshakes {
    fn record(&self, peer: SocketAddr, conn: &tokio_rustls::rustls::ServerConnection) {
        // One thread runs every task, so the two counters never disagree in a line.
        let total = self.total.fetch_add(1, Ordering::Relaxed) + 1;
        let resumed = if conn.handshake_kind() == Some(HandshakeKind::Resumed) {
            self.resumed.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.resumed.load(Ordering::Relaxed)
        };
        if total <= 1000 || total.is_multiple_of(1000) {
            eprintln!(
                "tls handshake {total} resumed {resumed} peer {peer} version {:?} suite {:?} sni {:?} alpn {:?}",
                conn.protocol_version(),
                conn.negotiated_cipher_suite().map(|s| s.suite()),
                conn.server_name(),
                conn.alpn_protocol().map(String::from_utf8_lossy),
            );
        }
    }
}
