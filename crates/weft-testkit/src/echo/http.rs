//! The HTTP side of the echo: HTTP/1.1 and h2c on one port (hyper-util's auto builder sniffs
//! the h2 preface), with `x-echo-*` request headers steering the answer:
//! `x-echo-status`, `x-echo-delay-ms`, `x-echo-response-header: name=value` (repeatable),
//! `x-echo-body-size`, `x-echo-reflect: a, b` (copy those request headers into the answer as
//! `x-echo-reflect-a`, ..., for answers whose body is not the JSON account, such as gRPC),
//! `x-echo-chunks` (send the body in that many pieces of unknown total
//! length, so HTTP/1.1 carries it chunked). Every answer says which request of its connection
//! it was (`x-echo-connection-request`, from 1) and the client port it came from
//! (`x-echo-client-port`), so a test can see whether a proxy reuses upstream connections.
//! An HTTP/1.1 `upgrade` request is answered 101 and its bytes are echoed (see [`upgrade`]).
//!
//! [`upgrade`]: super::upgrade

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
}

/// What the echo knows about the connection a request arrived on.
struct Conn {
    requests: AtomicU64,
    client_port: u16,
}

pub(super) async fn serve(listener: TcpListener, ctx: Arc<Ctx>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let ctx = ctx.clone();
                let conn = Arc::new(Conn { requests: AtomicU64::new(0), client_port: peer.port() });
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
) -> Result<Response<EchoBody>, Infallible> {
    ctx.served.fetch_add(1, Ordering::Relaxed);
    let nth = conn.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let reflected = reflect(req.headers());
    let mut resp = answer(req, &ctx).await;
    for (name, value) in reflected {
        resp.headers_mut().append(name, value);
    }
    resp.headers_mut()
        .insert("x-echo-connection-request", HeaderValue::from(nth));
    resp.headers_mut()
        .insert("x-echo-client-port", HeaderValue::from(conn.client_port));
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
    if grpc::is_grpc(&parts.method, &parts.headers) {
        return grpc::respond(&ctx.name, &parts.headers, &body);
    }
    respond(&ctx.name, &parts, body.len()).unwrap_or_else(|e| plain(StatusCode::BAD_REQUEST, e))
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
            let seen = EchoSeen {
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
            };
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
