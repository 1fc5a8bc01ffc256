//! The HTTP side of the echo: HTTP/1.1 and h2c on one port (hyper-util's auto builder sniffs
//! the h2 preface), with `x-echo-*` request headers steering the answer:
//! `x-echo-status`, `x-echo-delay-ms`, `x-echo-response-header: name=value` (repeatable),
//! `x-echo-body-size`, `x-echo-reflect: a, b` (copy those request headers into the answer as
//! `x-echo-reflect-a`, ..., for answers whose body is not the JSON account, such as gRPC),
//! `x-echo-chunks` (send the body in that many pieces of unknown total
//! length, so HTTP/1.1 carries it chunked). Every answer says which request of its connection
//! it was (`x-echo-connection-request`, from 1) and the client address and port it came
//! from (`x-echo-client-address`, `x-echo-client-port`), so a test can see whether a proxy
//! reuses upstream connections and which source address it binds.
//! An HTTP/1.1 `upgrade` request is answered 101 and its bytes are echoed (see [`upgrade`]).
//!
//! Failing on purpose, for retry tests: the first `x-echo-fail-first: N` requests carrying
//! `x-echo-fail-key: K` — counted across every echo backend of the process, so a retry to
//! another backend sees the same count — fail, the rest are answered normally. A failure is
//! `x-echo-fail-status` (default 503, body `echo failure`), or with
//! `x-echo-fail-grpc-status: G` a trailers-only gRPC answer with that status, or with
//! `x-echo-fail-reset: true` the connection (HTTP/2: the stream) dropped without an answer,
//! or with `x-echo-fail-delay-ms: D` an answer that is only late by D ms. Tests put the port
//! of their proxy in K so runs never share a count. `x-echo-status-of: NAME=STATUS` makes
//! only the backend called NAME answer with STATUS, for outlier detection tests, and
//! `x-echo-delay-of: NAME=MS` delays only it (a slow mirror). Every request answered with an
//! account is also recorded for [`super::EchoServer::recent`].
//!
//! [`upgrade`]: super::upgrade

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::{EchoSeen, MAX_BODY_BYTES, MAX_DELAY_MS, grpc, upgrade};

/// Upper bound for `x-echo-chunks`.
const MAX_CHUNKS: u64 = 4096;

pub(super) type EchoBody = UnsyncBoxBody<Bytes, Infallible>;

pub(super) struct Ctx {
    pub(super) name: String,
    pub(super) served: Arc<AtomicU64>,
    /// The latest requests answered with an account, for tests that cannot see the answer
    /// (a mirrored request's response goes nowhere).
    pub(super) recent: Arc<parking_lot::Mutex<VecDeque<EchoSeen>>>,
}

/// How many accounts [`Ctx::recent`] keeps.
pub(super) const RECENT: usize = 1024;

/// What the echo knows about the connection a request arrived on.
struct Conn {
    requests: AtomicU64,
    client_port: u16,
    client_ip: IpAddr,
}

/// Requests seen so far per `x-echo-fail-key`, across all echo backends of the process.
static FAIL_COUNTS: LazyLock<Mutex<HashMap<String, u64>>> = LazyLock::new(Default::default);

/// How a request chosen to fail fails.
enum Failure {
    Status(StatusCode),
    Grpc(u32),
    Reset,
    Late(Duration),
}

/// Whether this request is one of the first `x-echo-fail-first` with its key, and how it
/// fails then.
fn failure(h: &HeaderMap) -> Result<Option<Failure>, String> {
    let Some(key) = h.get("x-echo-fail-key") else {
        return Ok(None);
    };
    let key = String::from_utf8_lossy(key.as_bytes()).into_owned();
    let first = number(h, "x-echo-fail-first")?.unwrap_or(1);
    let seen = {
        let mut counts = FAIL_COUNTS.lock();
        let n = counts.entry(key).or_default();
        *n += 1;
        *n
    };
    if seen > first {
        return Ok(None);
    }
    if h.get("x-echo-fail-reset").is_some_and(|v| v == "true") {
        return Ok(Some(Failure::Reset));
    }
    if let Some(ms) = number(h, "x-echo-fail-delay-ms")? {
        return Ok(Some(Failure::Late(Duration::from_millis(
            ms.min(MAX_DELAY_MS),
        ))));
    }
    if let Some(g) = number(h, "x-echo-fail-grpc-status")? {
        return Ok(Some(Failure::Grpc(u32::try_from(g).unwrap_or(u32::MAX))));
    }
    let status = number(h, "x-echo-fail-status")?.unwrap_or(503);
    u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .map(|s| Some(Failure::Status(s)))
        .ok_or_else(|| format!("x-echo-fail-status {status} is not a status code"))
}

/// The error a deliberately dropped request returns, which makes hyper drop the
/// connection (HTTP/1.1) or reset the stream (HTTP/2) without answering.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dropped on request (x-echo-fail-reset)")
    }
}

impl std::error::Error for Dropped {}

pub(super) async fn serve(listener: TcpListener, ctx: Arc<Ctx>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let ctx = ctx.clone();
                let conn = Arc::new(Conn {
                    requests: AtomicU64::new(0),
                    client_port: peer.port(),
                    client_ip: peer.ip(),
                });
                conns.spawn(async move {
                    let svc = service_fn(move |req| handle(req, ctx.clone(), conn.clone()));
                    // A connection error is the peer's business (e.g. a proxy resetting a
                    // timed-out request); the next connection is unaffected.
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                        .await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn handle(
    req: Request<Incoming>,
    ctx: Arc<Ctx>,
    conn: Arc<Conn>,
) -> Result<Response<EchoBody>, Dropped> {
    ctx.served.fetch_add(1, Ordering::Relaxed);
    let nth = conn.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let reflected = reflect(req.headers());
    let mut resp = match failure(req.headers()) {
        Ok(None) => answer(req, &ctx).await,
        Ok(Some(Failure::Reset)) => return Err(Dropped),
        Ok(Some(Failure::Late(d))) => {
            tokio::time::sleep(d).await;
            answer(req, &ctx).await
        }
        // The request is read in full first, so the proxy always sees a complete exchange.
        Ok(Some(Failure::Status(s))) => {
            let _ = Limited::new(req.into_body(), MAX_BODY_BYTES)
                .collect()
                .await;
            plain(s, "echo failure".to_string())
        }
        Ok(Some(Failure::Grpc(g))) => {
            let _ = Limited::new(req.into_body(), MAX_BODY_BYTES)
                .collect()
                .await;
            let mut resp = Response::new(Full::new(Bytes::new()).boxed_unsync());
            resp.headers_mut()
                .insert("content-type", HeaderValue::from_static("application/grpc"));
            resp.headers_mut()
                .insert("grpc-status", HeaderValue::from(g));
            resp
        }
        Err(e) => plain(StatusCode::BAD_REQUEST, e),
    };
    for (name, value) in reflected {
        resp.headers_mut().append(name, value);
    }
    resp.headers_mut()
        .insert("x-echo-connection-request", HeaderValue::from(nth));
    resp.headers_mut()
        .insert("x-echo-client-port", HeaderValue::from(conn.client_port));
    if let Ok(ip) = HeaderValue::from_str(&conn.client_ip.to_string()) {
        resp.headers_mut().insert("x-echo-client-address", ip);
    }
    Ok(resp)
}

async fn answer(req: Request<Incoming>, ctx: &Ctx) -> Response<EchoBody> {
    if upgrade::is_upgrade(&req) {
        return upgrade::accept(req, &ctx.name);
    }
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            return plain(StatusCode::BAD_REQUEST, format!("reading the body: {e}"));
        }
    };
    match number(&parts.headers, "x-echo-delay-ms") {
        Ok(Some(ms)) => tokio::time::sleep(Duration::from_millis(ms.min(MAX_DELAY_MS))).await,
        Ok(None) => {}
        Err(e) => return plain(StatusCode::BAD_REQUEST, e),
    }
    match delay_of(&ctx.name, &parts.headers) {
        Ok(Some(ms)) => tokio::time::sleep(Duration::from_millis(ms.min(MAX_DELAY_MS))).await,
        Ok(None) => {}
        Err(e) => return plain(StatusCode::BAD_REQUEST, e),
    }
    if grpc::is_grpc(&parts.method, &parts.headers) {
        return grpc::respond(&ctx.name, &parts.headers, &body);
    }
    {
        let mut recent = ctx.recent.lock();
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(seen_of(&ctx.name, &parts, body.len()));
    }
    respond(&ctx.name, &parts, body.len()).unwrap_or_else(|e| plain(StatusCode::BAD_REQUEST, e))
}

fn seen_of(name: &str, parts: &http::request::Parts, body_len: usize) -> EchoSeen {
    EchoSeen {
        backend: name.to_string(),
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.to_string()),
        version: format!("{:?}", parts.version),
        authority: parts.uri.authority().map(|a| a.to_string()).or_else(|| {
            parts
                .headers
                .get("host")
                .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        }),
        headers: all_headers(&parts.headers),
        body_len,
    }
}

/// `x-echo-delay-of: NAME=MS` (repeatable): a delay for this backend only (so a mirrored
/// copy can be slow while the main request is not).
fn delay_of(name: &str, h: &HeaderMap) -> Result<Option<u64>, String> {
    for v in h.get_all("x-echo-delay-of") {
        let v = v
            .to_str()
            .map_err(|_| "x-echo-delay-of is not text".to_string())?;
        let (who, ms) = v
            .split_once('=')
            .ok_or_else(|| format!("x-echo-delay-of {v:?} is not NAME=MS"))?;
        if who.trim() == name {
            return ms
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("x-echo-delay-of {v:?}: not a number"));
        }
    }
    Ok(None)
}

/// `x-echo-status-of: NAME=STATUS` (repeatable): the status this backend, and only it,
/// answers with (so one host of a cluster can fail while the others do not).
fn status_of(name: &str, h: &HeaderMap) -> Result<Option<StatusCode>, String> {
    for v in h.get_all("x-echo-status-of") {
        let v = v
            .to_str()
            .map_err(|_| "x-echo-status-of is not text".to_string())?;
        let (who, status) = v
            .split_once('=')
            .ok_or_else(|| format!("x-echo-status-of {v:?} is not NAME=STATUS"))?;
        if who.trim() != name {
            continue;
        }
        return status
            .trim()
            .parse::<u16>()
            .ok()
            .and_then(|n| StatusCode::from_u16(n).ok())
            .map(Some)
            .ok_or_else(|| format!("x-echo-status-of {v:?}: not a status code"));
    }
    Ok(None)
}

fn respond(
    name: &str,
    parts: &http::request::Parts,
    body_len: usize,
) -> Result<Response<EchoBody>, String> {
    let status = match number(&parts.headers, "x-echo-status")? {
        Some(n) => u16::try_from(n)
            .ok()
            .and_then(|n| StatusCode::from_u16(n).ok())
            .ok_or_else(|| format!("x-echo-status {n} is not a status code"))?,
        None => StatusCode::OK,
    };
    let status = status_of(name, &parts.headers)?.unwrap_or(status);
    let mut headers = HeaderMap::new();
    headers.insert("x-echo-backend", value(name)?);
    for v in parts.headers.get_all("x-echo-response-header") {
        let v = v
            .to_str()
            .map_err(|_| "x-echo-response-header is not text".to_string())?;
        let (n, val) = v
            .split_once('=')
            .ok_or_else(|| format!("x-echo-response-header {v:?} is not name=value"))?;
        let n = HeaderName::from_bytes(n.trim().as_bytes()).map_err(|e| format!("{n:?}: {e}"))?;
        headers.append(n, value(val.trim())?);
    }
    let body = match number(&parts.headers, "x-echo-body-size")? {
        Some(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX).min(MAX_BODY_BYTES);
            headers.insert(
                "content-type",
                HeaderValue::from_static("application/octet-stream"),
            );
            Bytes::from(vec![b'x'; n])
        }
        None => {
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            let seen = seen_of(name, parts, body_len);
            Bytes::from(serde_json::to_vec(&seen).map_err(|e| e.to_string())?)
        }
    };
    let body = match number(&parts.headers, "x-echo-chunks")? {
        Some(n) => chunked(body, n),
        None => Full::new(body).boxed_unsync(),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    Ok(resp)
}

/// The request headers `x-echo-reflect` names, renamed `x-echo-reflect-NAME`.
fn reflect(headers: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    let wanted = headers
        .get_all("x-echo-reflect")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty());
    let mut out = Vec::new();
    for name in wanted {
        let Ok(renamed) = HeaderName::from_bytes(format!("x-echo-reflect-{name}").as_bytes())
        else {
            continue;
        };
        for v in headers.get_all(name.as_str()) {
            out.push((renamed.clone(), v.clone()));
        }
    }
    out
}

/// `body` as `pieces` frames (at least one) with no size hint, which makes hyper frame an
/// HTTP/1.1 response with `transfer-encoding: chunked`.
fn chunked(body: Bytes, pieces: u64) -> EchoBody {
    let pieces = usize::try_from(pieces.clamp(1, MAX_CHUNKS)).unwrap_or(1);
    let size = body.len().div_ceil(pieces).max(1);
    let pieces = (0..body.len())
        .step_by(size)
        .map(|at| body.slice(at..(at + size).min(body.len())))
        .collect();
    Pieces(pieces).boxed_unsync()
}

/// A body of known pieces that does not tell its length.
struct Pieces(VecDeque<Bytes>);

impl http_body::Body for Pieces {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

fn all_headers(h: &HeaderMap) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (name, v) in h {
        out.entry(name.as_str().to_string())
            .or_default()
            .push(String::from_utf8_lossy(v.as_bytes()).into_owned());
    }
    out
}

fn number(h: &HeaderMap, name: &str) -> Result<Option<u64>, String> {
    h.get(name)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| format!("{name} must be a number, got {v:?}"))
        })
        .transpose()
}

fn value(s: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(s).map_err(|e| format!("{s:?}: {e}"))
}

pub(super) fn plain(status: StatusCode, text: String) -> Response<EchoBody> {
    let mut resp = Response::new(Full::new(Bytes::from(text)).boxed_unsync());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("text/plain"));
    resp
}
