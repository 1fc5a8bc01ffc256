//! A port's protocol as Istio decides it: Kubernetes `appProtocol` first, then the port
//! name's prefix (`http-web`, `grpc`), else unknown, which sidecars sniff.

/// The protocols the translation distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Http,
    Http2,
    Grpc,
    GrpcWeb,
    Https,
    Tls,
    Tcp,
    Mongo,
    Redis,
    Mysql,
    Udp,
    /// Not declared: detected per connection (Istio's protocol sniffing).
    Unsupported,
}

impl Protocol {
    /// Istio's `protocol.Parse`: case-insensitive names.
    pub fn parse(name: &str) -> Protocol {
        match name.to_ascii_lowercase().as_str() {
            "http" | "http_proxy" => Protocol::Http,
            "http2" => Protocol::Http2,
            "grpc" => Protocol::Grpc,
            "grpc-web" => Protocol::GrpcWeb,
            "https" => Protocol::Https,
            "tls" => Protocol::Tls,
            "tcp" => Protocol::Tcp,
            "mongo" => Protocol::Mongo,
            "redis" => Protocol::Redis,
            "mysql" => Protocol::Mysql,
            "udp" => Protocol::Udp,
            _ => Protocol::Unsupported,
        }
    }

    /// Istio's `kube.ConvertProtocol`: UDP by transport, then `appProtocol` or else the port
    /// name (a `grpc-web` prefix, else the part before the first `-`); what stays unknown
    /// is sniffed, except on the well-known TCP ports of SMTP, DNS, MySQL and MongoDB.
    pub fn of_kube_port(
        port: u16,
        name: &str,
        transport: Option<&str>,
        app_protocol: Option<&str>,
    ) -> Protocol {
        if transport == Some("UDP") {
            return Protocol::Udp;
        }
        let by_app = app_protocol.map(|app| match app {
            "kubernetes.io/h2c" => Protocol::Http2,
            "kubernetes.io/ws" | "kubernetes.io/wss" => Protocol::Http,
            other => Protocol::parse(other),
        });
        let named = match by_app {
            Some(p) if p != Protocol::Unsupported => p,
            _ if name.to_ascii_lowercase().starts_with("grpc-web") => Protocol::GrpcWeb,
            _ => Protocol::parse(name.split('-').next().unwrap_or("")),
        };
        match named {
            Protocol::Unsupported if matches!(port, 25 | 53 | 3306 | 27017) => Protocol::Tcp,
            p => p,
        }
    }

    /// Served by an HTTP connection manager (routes apply).
    pub fn is_http(self) -> bool {
        matches!(
            self,
            Protocol::Http | Protocol::Http2 | Protocol::Grpc | Protocol::GrpcWeb
        )
    }

    /// Upstream connections speak HTTP/2.
    /// Ports whose connections carry TLS the proxy does not terminate (routed by SNI).
    pub fn is_tls(self) -> bool {
        matches!(self, Protocol::Https | Protocol::Tls)
    }

    pub fn is_http2(self) -> bool {
        matches!(self, Protocol::Http2 | Protocol::Grpc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_protocol_then_name_prefix() {
        let p = Protocol::of_kube_port;
        assert_eq!(p(80, "http-web", None, None), Protocol::Http);
        assert_eq!(p(80, "GRPC", None, None), Protocol::Grpc);
        assert_eq!(p(80, "grpc-web-x", None, None), Protocol::GrpcWeb);
        assert_eq!(p(80, "web", None, None), Protocol::Unsupported);
        assert_eq!(p(3306, "db", None, None), Protocol::Tcp);
        assert_eq!(p(80, "", None, Some("http2")), Protocol::Http2);
        assert_eq!(
            p(80, "tcp", None, Some("kubernetes.io/h2c")),
            Protocol::Http2
        );
        assert_eq!(p(80, "http", Some("UDP"), None), Protocol::Udp);
        assert!(Protocol::Grpc.is_http() && Protocol::Grpc.is_http2());
        assert!(!Protocol::Tcp.is_http());
    }
}
