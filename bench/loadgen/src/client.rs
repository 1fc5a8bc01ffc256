//! The one HTTP/1.1 client both the probe and the open-loop generator use: a plain hyper
//! connection per TCP socket, so a request costs the proxy exactly one keep-alive request
//! and nothing pools or retries behind the generator's back.

use std::net::SocketAddr;

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpStream, lookup_host};

/// Where requests go: the socket address, plus the Host header and path to send.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub authority: String,
    pub path: String,
}

impl Target {
    pub async fn parse(url: &str) -> Result<Self> {
        let uri: Uri = url.parse().with_context(|| format!("bad URL {url}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(anyhow!("only http:// URLs are supported: {url}"));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| anyhow!("URL without host: {url}"))?;
        let port = authority.port_u16().unwrap_or(80);
        let addr = lookup_host((authority.host(), port))
            .await?
            .next()
            .ok_or_else(|| anyhow!("{} does not resolve", authority.host()))?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        Ok(Self {
            addr,
            authority: authority.to_string(),
            path,
        })
    }

    pub fn request(&self) -> Request<Empty<Bytes>> {
        let mut request = Request::new(Empty::new());
        *request.uri_mut() = self.path.parse().unwrap_or_else(|_| Uri::from_static("/"));
        if let Ok(host) = self.authority.parse() {
            request.headers_mut().insert(header::HOST, host);
        }
        request
    }
}

pub type Sender = SendRequest<Empty<Bytes>>;

pub async fn connect(target: &Target) -> Result<Sender> {
    let stream = TcpStream::connect(target.addr)
        .await
        .with_context(|| format!("connect {}", target.addr))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // The connection ends when the sender is dropped or the peer closes; either way
        // the next request on this sender fails and the caller reconnects.
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends one request and reads the whole response body.
pub async fn get(sender: &mut Sender, target: &Target) -> Result<(StatusCode, Bytes)> {
    sender.ready().await?;
    let response = sender.send_request(target.request()).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}
