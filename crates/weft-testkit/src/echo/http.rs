//! The HTTP side of the echo: HTTP/1.1 and h2c on one port (hyper-util's auto builder sniffs
//! the h2 preface), with `x-echo-*` request headers steering the answer:
//! `x-echo-status`, `x-echo-delay-ms`, `x-echo-response-header: name=value` (repeatable),
//! `x-echo-body-size`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::{EchoSeen, MAX_BODY_BYTES, MAX_DELAY_MS, grpc};

pub(super) type EchoBody = UnsyncBoxBody<Bytes, Infallible>;

pub(super) struct Ctx {
    pub(super) name: String,
    pub(super) served: Arc<AtomicU64>,
}

pub(super) async fn serve(listener: TcpListener, ctx: Arc<Ctx>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let ctx = ctx.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req| handle(req, ctx.clone()));
                    // A connection error is the peer's business (e.g. a proxy resetting a
                    // timed-out request); the next connection is unaffected.
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn handle(req: Request<Incoming>, ctx: Arc<Ctx>) -> Result<Response<EchoBody>, Infallible> {
    ctx.served.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            return Ok(plain(
                StatusCode::BAD_REQUEST,
                format!("reading the body: {e}"),
            ));
        }
    };
    match number(&parts.headers, "x-echo-delay-ms") {
        Ok(Some(ms)) => tokio::time::sleep(Duration::from_millis(ms.min(MAX_DELAY_MS))).await,
        Ok(None) => {}
        Err(e) => return Ok(plain(StatusCode::BAD_REQUEST, e)),
    }
    if grpc::is_grpc(&parts.method, &parts.headers) {
        return Ok(grpc::respond(&ctx.name, &parts.headers, &body));
    }
    Ok(
        respond(&ctx.name, &parts, body.len())
            .unwrap_or_else(|e| plain(StatusCode::BAD_REQUEST, e)),
    )
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
    let mut resp = Response::new(Full::new(body).boxed_unsync());
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    Ok(resp)
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
