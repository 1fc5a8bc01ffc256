//! The TLS half of an upstream connection, for clusters with an `UpstreamTlsContext`: the
//! client configuration built from the cluster's secrets (swapped whole when a secret
//! rotates, so open connections keep theirs and new ones take the new one), the handshake
//! run inside the cluster's connect timeout (Envoy's connect event comes after it), and
//! Envoy's `cluster.<name>.ssl.*` statistics. A cluster whose secrets have not arrived
//! has no configuration yet, and its connections fail the way Envoy's do: "Secret is not
//! supplied by SDS".

use arc_swap::ArcSwapOption;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, CertificateError, ClientConfig, HandshakeKind};

use super::connector::ConnectError;
use crate::stats_struct;
use weft_identity::upstream::{Upstream, client_config};

stats_struct!(
    /// `cluster.<name>.ssl.*`, named as Envoy's `SslStats`.
    SslStats {
        counters: [
            handshake,
            session_reused,
            connection_error,
            fail_verify_error,
            fail_verify_san,
        ],
        gauges: [],
    }
);

/// Envoy's text when a connection needs a secret SDS has not delivered.
pub const NOT_READY: &str = "TLS error: Secret is not supplied by SDS";

/// Which ALPN list a connection offers when the context configures none: Envoy's pools
/// fall back to the protocol they speak; a TCP proxy offers nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlpnFallback {
    Http1,
    Http2,
    None,
}

/// A cluster's TLS settings as connections use them; replaced whole on rotation.
pub struct ClientTls {
    /// What the configurations are built from, kept for per-host SAN checks.
    upstream: Upstream,
    /// The name sent as SNI; `None` sends none.
    sni: Option<ServerName<'static>>,
    /// Offered ALPN as configured, else per [`AlpnFallback`] (index by its order).
    configs: [Arc<ClientConfig>; 3],
    /// `auto_san_validation`: configurations that also require each host's name, built on
    /// first use. Bounded: hosts past the bound share nothing and build per connection.
    by_host: Mutex<HashMap<Arc<str>, [Arc<ClientConfig>; 3]>>,
}

/// Hosts whose configurations a cluster keeps (Envoy keys pools by host the same way).
const MAX_HOST_CONFIGS: usize = 256;

impl ClientTls {
    /// The settings `upstream` describes; `sni` is the context's `sni`.
    pub fn new(upstream: Upstream, sni: Option<&str>) -> Result<Self, String> {
        let sni = match sni.filter(|s| !s.is_empty()) {
            Some(name) => Some(
                ServerName::try_from(name.to_string())
                    .map_err(|e| format!("sni {name:?} is not a valid server name: {e}"))?,
            ),
            None => None,
        };
        Ok(Self {
            configs: variants(upstream.clone())?,
            upstream,
            sni,
            by_host: Mutex::new(HashMap::new()),
        })
    }

    /// What a connection to `addr` that the proxy makes itself (a gRPC config source)
    /// uses: the server name to send and the configuration offering `alpn`.
    pub fn dial(
        &self,
        addr: SocketAddr,
        alpn: AlpnFallback,
    ) -> (ServerName<'static>, Arc<ClientConfig>) {
        (self.server_name(addr), self.configs[alpn as usize].clone())
    }

    /// The context's SNI; without one the peer's address stands in, and rustls then sends
    /// no SNI at all, which is what Envoy does when `sni` is empty.
    fn server_name(&self, addr: SocketAddr) -> ServerName<'static> {
        self.sni
            .clone()
            .unwrap_or(ServerName::IpAddress(addr.ip().into()))
    }

    /// The configuration for one connection: `san_host` also has to be named by the
    /// server's certificate.
    fn config(
        &self,
        alpn: AlpnFallback,
        san_host: Option<&Arc<str>>,
    ) -> Result<Arc<ClientConfig>, String> {
        let Some(host) = san_host else {
            return Ok(self.configs[alpn as usize].clone());
        };
        if let Some(c) = self.by_host.lock().get(host) {
            return Ok(c[alpn as usize].clone());
        }
        let mut upstream = self.upstream.clone();
        upstream.san_override = vec![host.to_string()];
        let built = variants(upstream)?;
        let config = built[alpn as usize].clone();
        let mut cache = self.by_host.lock();
        if cache.len() < MAX_HOST_CONFIGS {
            cache.insert(host.clone(), built);
        }
        Ok(config)
    }
}

/// The configuration per [`AlpnFallback`]: one shared when the context names protocols.
fn variants(upstream: Upstream) -> Result<[Arc<ClientConfig>; 3], String> {
    let config = client_config(upstream).map_err(|e| e.to_string())?;
    let with = |alpn: &[&[u8]]| {
        if !config.alpn_protocols.is_empty() {
            return config.clone();
        }
        let mut c = (*config).clone();
        c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(c)
    };
    Ok([with(&[b"http/1.1"]), with(&[b"h2"]), config.clone()])
}

/// What a TLS cluster's connector holds: the current settings (none until the secrets
/// arrive) and the cluster's `ssl.*` statistics.
pub struct TlsSlot {
    current: ArcSwapOption<ClientTls>,
    pub stats: Arc<SslStats>,
    /// `auto_san_validation`: the request's host must be named by the certificate.
    auto_san: bool,
}

impl TlsSlot {
    pub fn new(stats: Arc<SslStats>, auto_san: bool) -> Self {
        Self {
            current: ArcSwapOption::empty(),
            stats,
            auto_san,
        }
    }

    /// New connections use `tls` from now on (`None`: they fail as not ready).
    pub fn set(&self, tls: Option<Arc<ClientTls>>) {
        self.current.store(tls);
    }

    /// Fails early when the secrets are not there, before a TCP connection is made.
    pub fn ready(&self) -> Result<Arc<ClientTls>, ConnectError> {
        self.current.load_full().ok_or(ConnectError::NotReady)
    }

    /// The handshake over `tcp`, counted as Envoy counts it. `host` is the request's
    /// host on an `auto_sni` cluster: the SNI (unless it is an IP address, which Envoy does
    /// not send) and, with `auto_san_validation`, a name the certificate must have.
    pub async fn handshake(
        &self,
        tls: &ClientTls,
        tcp: TcpStream,
        addr: SocketAddr,
        alpn: AlpnFallback,
        host: Option<&str>,
    ) -> Result<TlsStream<TcpStream>, ConnectError> {
        let name = match host
            .filter(|h| h.parse::<std::net::IpAddr>().is_err())
            .and_then(|h| ServerName::try_from(h.to_string()).ok())
        {
            Some(auto) => auto,
            None => tls.server_name(addr),
        };
        let san_host: Option<Arc<str>> = host.filter(|_| self.auto_san).map(Arc::from);
        let config = tls
            .config(alpn, san_host.as_ref())
            .map_err(ConnectError::Tls)?;
        match TlsConnector::from(config).connect(name, tcp).await {
            Ok(stream) => {
                self.stats.handshake.inc();
                if stream.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed) {
                    self.stats.session_reused.inc();
                }
                Ok(stream)
            }
            Err(e) => {
                let rustls_error = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>());
                match rustls_error {
                    Some(rustls::Error::InvalidCertificate(
                        CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. },
                    )) => self.stats.fail_verify_san.inc(),
                    Some(rustls::Error::InvalidCertificate(_)) => {
                        self.stats.fail_verify_error.inc()
                    }
                    _ => {}
                }
                self.stats.connection_error.inc();
                // In the words of the library that failed it: Envoy's carry BoringSSL's
                // names, which no other TLS library shares.
                let reason = match rustls_error {
                    Some(r) => r.to_string(),
                    None => super::connector::os_error_text(&e),
                };
                Err(ConnectError::Tls(format!("TLS error: {reason}")))
            }
        }
    }
}
