//! Port protocol names and address forms as Istio parses them (`pkg/config/protocol`,
//! `ValidateUnixAddress`, `ValidatePortName`), shared by Gateway, Sidecar, ServiceEntry
//! and WorkloadEntry so all four accept exactly the same spellings.

use crate::validate::{Validator, rules};
use std::net::IpAddr;

/// The protocols Istio recognises on a port; anything else parses as `Unsupported`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `GRPC`: gRPC over HTTP/2.
    Grpc,
    /// `GRPC-WEB`: gRPC-Web over HTTP.
    GrpcWeb,
    /// `HTTP`: HTTP/1.1.
    Http,
    /// `HTTP_PROXY`: a generic outbound proxy port (Sidecar egress listeners).
    HttpProxy,
    /// `HTTP2`: HTTP/2.
    Http2,
    /// `HTTPS`: HTTP over TLS.
    Https,
    /// `TCP`: opaque TCP.
    Tcp,
    /// `TLS`: TLS with SNI, routed without terminating it.
    Tls,
    /// `UDP` (not proxied).
    Udp,
    /// `MONGO`: MongoDB wire protocol.
    Mongo,
    /// `REDIS`: Redis protocol.
    Redis,
    /// `MYSQL`: MySQL protocol.
    Mysql,
    /// Anything Istio does not recognise (including the empty string).
    Unsupported,
}

/// The accepted spellings, for error messages.
pub const SUPPORTED_PROTOCOLS: &str =
    "HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, HTTP_PROXY, TCP, TLS, UDP, MONGO, REDIS, MYSQL";

impl Protocol {
    /// Istio's `protocol.Parse`: case-insensitive; unknown (and empty) names are unsupported.
    pub fn parse(s: &str) -> Protocol {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "grpc" => Protocol::Grpc,
            "grpc-web" => Protocol::GrpcWeb,
            "http" => Protocol::Http,
            "http_proxy" => Protocol::HttpProxy,
            "http2" => Protocol::Http2,
            "https" => Protocol::Https,
            "tls" => Protocol::Tls,
            "mongo" => Protocol::Mongo,
            "redis" => Protocol::Redis,
            "mysql" => Protocol::Mysql,
            _ => Protocol::Unsupported,
        }
    }

    /// Carried over HTTP (so HTTP routing applies).
    pub fn is_http(self) -> bool {
        matches!(
            self,
            Protocol::Http
                | Protocol::Http2
                | Protocol::HttpProxy
                | Protocol::Grpc
                | Protocol::GrpcWeb
        )
    }

    /// Opaque TCP as far as the proxy's routing is concerned.
    pub fn is_tcp(self) -> bool {
        matches!(
            self,
            Protocol::Tcp
                | Protocol::Https
                | Protocol::Tls
                | Protocol::Mongo
                | Protocol::Redis
                | Protocol::Mysql
        )
    }

    /// Runs on top of TLS (routable by SNI).
    pub fn is_tls(self) -> bool {
        matches!(self, Protocol::Https | Protocol::Tls)
    }
}

/// Istio's `ValidateProtocol`: empty means "sniff", anything else must parse.
pub(crate) fn validate_protocol(v: &mut Validator, protocol: &str) {
    if !protocol.is_empty() && Protocol::parse(protocol) == Protocol::Unsupported {
        v.error(format!(
            "unsupported protocol {protocol:?}; expected one of {SUPPORTED_PROTOCOLS} (case-insensitive)"
        ));
    }
}

/// Istio's `ValidatePortName`: a DNS-1123 label (letters, digits, `-`; at most 63).
pub(crate) fn validate_port_name(v: &mut Validator, name: &str) {
    if !rules::is_dns1123_label(name) {
        v.error(format!(
            "invalid port name {name:?}: must be a DNS-1123 label (letters, digits and '-', at most 63 characters)"
        ));
    }
}

/// Marks an address as a Unix domain socket.
pub(crate) const UNIX_PREFIX: &str = "unix://";

/// Istio's `ValidateUnixAddress` on the part after `unix://`: an abstract socket (`@name`)
/// or an absolute path that does not name a directory.
pub(crate) fn check_unix_address(addr: &str) -> Result<(), String> {
    if addr.is_empty() {
        return Err("unix address must not be empty".into());
    }
    if addr.starts_with('@') {
        return Ok(());
    }
    if !addr.starts_with('/') || addr.ends_with('/') {
        return Err(format!(
            "unix address {addr:?} must be an absolute path to a file (unix:///path/to/socket) or an abstract socket (unix://@name)"
        ));
    }
    Ok(())
}

/// Reports a bad `unix://...` address (`full` includes the prefix).
pub(crate) fn unix_address(v: &mut Validator, full: &str) {
    if let Err(e) = check_unix_address(full.strip_prefix(UNIX_PREFIX).unwrap_or(full)) {
        v.error(e);
    }
}

/// A plain IPv4 or IPv6 address.
pub(crate) fn is_ip(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
}

/// Number of errors reported so far; rules that only run "if the port was valid" compare it.
pub(crate) fn error_count(v: &Validator) -> usize {
    v.findings().iter().filter(|f| f.is_error()).count()
}
