//! The one HTTP/1.1 client both the probe and the open-loop generator use: a plain hyper
//! connection per TCP socket, so a request costs the proxy exactly one keep-alive request
//! and nothing pools or retries behind the generator's back. `https://` URLs get HTTP/1.1
//! inside TLS, verified against a given CA and server name (no way to skip verification).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpStream, lookup_host};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

/// How to check an `https://` server: the CA its chain must lead to and the DNS name its
/// certificate must carry (default: the URL's host).
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    pub ca_file: Option<PathBuf>,
    pub server_name: Option<String>,
}

/// Where requests go: the socket address, plus the Host header and path to send.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub authority: String,
    pub path: String,
    tls: Option<Tls>,
}

#[derive(Clone)]
struct Tls {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tls({:?})", self.name)
    }
}

impl Target {
    pub async fn parse(url: &str, tls: &TlsOptions) -> Result<Self> {
        let uri: Uri = url.parse().with_context(|| format!("bad URL {url}"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(anyhow!(
                    "only http:// and https:// URLs are supported: {url}"
                ));
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| anyhow!("URL without host: {url}"))?;
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let addr = lookup_host((authority.host(), port))
            .await?
            .next()
            .ok_or_else(|| anyhow!("{} does not resolve", authority.host()))?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        let tls = if https {
            Some(Tls::new(tls, authority.host())?)
        } else {
            None
        };
        Ok(Self {
            addr,
            authority: authority.to_string(),
            path,
            tls,
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

impl Tls {
    fn new(options: &TlsOptions, host: &str) -> Result<Self> {
        let ca_file = options
            .ca_file
            .as_ref()
            .ok_or_else(|| anyhow!("an https:// URL needs --ca-file"))?;
        let pem = std::fs::read_to_string(ca_file)
            .with_context(|| format!("reading {}", ca_file.display()))?;
        let bundle = weft_identity::TrustBundle::from_pem(&pem)
            .with_context(|| format!("CA certificates in {}", ca_file.display()))?;
        let config = weft_identity::tls::dns_client_config(&bundle, &[b"http/1.1"])?;
        let name = options.server_name.as_deref().unwrap_or(host).to_string();
        let name =
            ServerName::try_from(name.clone()).map_err(|_| anyhow!("not a server name: {name}"))?;
        Ok(Self {
            connector: TlsConnector::from(config),
            name,
        })
    }
}

pub type Sender = SendRequest<Empty<Bytes>>;

pub async fn connect(target: &Target) -> Result<Sender> {
    let stream = TcpStream::connect(target.addr)
        .await
        .with_context(|| format!("connect {}", target.addr))?;
    stream.set_nodelay(true)?;
    let Some(tls) = &target.tls else {
        return handshake(TokioIo::new(stream)).await;
    };
    let stream = tls
        .connector
        .connect(tls.name.clone(), stream)
        .await
        .with_context(|| format!("TLS handshake with {} as {:?}", target.addr, tls.name))?;
    handshake(TokioIo::new(stream)).await
}

async fn handshake<I>(io: I) -> Result<Sender>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(io).await?;
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
