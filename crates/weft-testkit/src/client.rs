//! A plain HTTP client for tests: one fresh connection per request (so connection reuse in the
//! proxy never hides a difference), HTTP/1.1 or h2c with prior knowledge, whole body and
//! trailers collected, every exchange bounded in time.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Deserialize;
use tokio::net::TcpStream;

use crate::Error;

/// Upper bound for one exchange; a proxy that hangs fails the test instead of wedging it.
pub const EXCHANGE_LIMIT: Duration = Duration::from_secs(30);

/// Which protocol the client speaks to the proxy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpVersion {
    #[default]
    Http1,
    /// HTTP/2 over cleartext with prior knowledge.
    H2c,
}

/// What to send.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// `host` for HTTP/1.1, `:authority` for h2c.
    pub authority: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub version: HttpVersion,
}

impl HttpRequest {
    pub fn get(authority: &str, path: &str) -> Self {
        Self {
            method: Method::GET,
            path: path.to_string(),
            authority: authority.to_string(),
            headers: Vec::new(),
            body: Bytes::new(),
            version: HttpVersion::Http1,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// What came back.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

/// Sends `req` to `addr` on a new connection.
pub async fn send(addr: SocketAddr, req: &HttpRequest) -> Result<HttpResponse, Error> {
    tokio::time::timeout(EXCHANGE_LIMIT, exchange(addr, req))
        .await
        .map_err(|_| Error::Timeout {
            what: format!("{} {} via {addr}", req.method, req.path),
            secs: EXCHANGE_LIMIT.as_secs(),
        })?
}

async fn exchange(addr: SocketAddr, req: &HttpRequest) -> Result<HttpResponse, Error> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(Error::io(format!("connecting to {addr}")))?;
    let io = TokioIo::new(stream);
    let http_err = |source| Error::Http { addr, source };
    let request = build(req)?;
    let resp = match req.version {
        HttpVersion::Http1 => {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(http_err)?;
            tokio::spawn(conn);
            sender.send_request(request).await.map_err(http_err)?
        }
        HttpVersion::H2c => {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(http_err)?;
            tokio::spawn(conn);
            sender.send_request(request).await.map_err(http_err)?
        }
    };
    let (parts, body) = resp.into_parts();
    let collected = body.collect().await.map_err(http_err)?;
    let trailers = collected.trailers().cloned();
    Ok(HttpResponse {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body: collected.to_bytes(),
        trailers,
    })
}

fn build(req: &HttpRequest) -> Result<Request<Full<Bytes>>, Error> {
    let bad = |e: String| Error::Request(e);
    let mut builder = Request::builder().method(req.method.clone());
    builder = match req.version {
        HttpVersion::Http1 => builder
            .uri(req.path.as_str())
            .header("host", req.authority.as_str()),
        HttpVersion::H2c => builder
            .version(Version::HTTP_2)
            .uri(format!("http://{}{}", req.authority, req.path)),
    };
    let mut request = builder
        .body(Full::new(req.body.clone()))
        .map_err(|e| bad(format!("{} {}: {e}", req.authority, req.path)))?;
    for (n, v) in &req.headers {
        let name = HeaderName::from_bytes(n.as_bytes()).map_err(|e| bad(format!("{n:?}: {e}")))?;
        let value = HeaderValue::from_str(v).map_err(|e| bad(format!("{v:?}: {e}")))?;
        request.headers_mut().append(name, value);
    }
    Ok(request)
}

/// What a raw TCP exchange gave back: the bytes read until the peer closed, and the error
/// that ended it if it was not a clean close (a reset, a broken pipe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpExchange {
    pub received: Vec<u8>,
    pub error: Option<std::io::ErrorKind>,
}

/// Connects to `addr`, writes `payload`, half-closes, and reads until the peer closes;
/// bounded by [`EXCHANGE_LIMIT`].
pub async fn tcp_exchange(addr: SocketAddr, payload: &[u8]) -> Result<TcpExchange, Error> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let run = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(Error::io(format!("connecting to {addr}")))?;
        let (mut r, mut w) = stream.split();
        let write = async {
            w.write_all(payload).await?;
            w.shutdown().await
        };
        let mut received = Vec::new();
        // Read while writing: a payload larger than the socket buffers would otherwise stall.
        let (wrote, read) = tokio::join!(write, r.read_to_end(&mut received));
        let error = read.err().or(wrote.err()).map(|e| e.kind());
        Ok(TcpExchange { received, error })
    };
    tokio::time::timeout(EXCHANGE_LIMIT, run)
        .await
        .map_err(|_| Error::Timeout {
            what: format!("TCP exchange with {addr}"),
            secs: EXCHANGE_LIMIT.as_secs(),
        })?
}
