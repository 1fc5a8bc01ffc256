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

    /// Istio's `kube.ConvertProtocol`: UDP by transport, then `appProtocol`, then the port
    /// name up to its first `-`.
    pub fn of_kube_port(
        name: &str,
        transport: Option<&str>,
        app_protocol: Option<&str>,
    ) -> Protocol {
        if transport == Some("UDP") {
            return Protocol::Udp;
        }
        if let Some(app) = app_protocol {
            let p = match app {
                "kubernetes.io/h2c" => Protocol::Http2,
                "kubernetes.io/ws" | "kubernetes.io/wss" => Protocol::Http,
                other => Protocol::parse(other),
            };
            if p != Protocol::Unsupported {
                return p;
            }
        }
        let prefix = name.split('-').next().unwrap_or("");
        match Protocol::parse(prefix) {
            Protocol::Unsupported if name.eq_ignore_ascii_case("grpc-web") => Protocol::GrpcWeb,
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
    pub fn is_http2(self) -> bool {
        matches!(self, Protocol::Http2 | Protocol::Grpc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_protocol_then_name_prefix() {
        assert_eq!(
            Protocol::of_kube_port("http-web", None, None),
            Protocol::Http
        );
        assert_eq!(Protocol::of_kube_port("GRPC", None, None), Protocol::Grpc);
        assert_eq!(
            Protocol::of_kube_port("grpc-web", None, None),
            Protocol::GrpcWeb
        );
        assert_eq!(
            Protocol::of_kube_port("web", None, None),
            Protocol::Unsupported
        );
        assert_eq!(
            Protocol::of_kube_port("", None, Some("http2")),
            Protocol::Http2
        );
        assert_eq!(
            Protocol::of_kube_port("tcp", None, Some("kubernetes.io/h2c")),
            Protocol::Http2
        );
        assert_eq!(
            Protocol::of_kube_port("http", Some("UDP"), None),
            Protocol::Udp
        );
        assert!(Protocol::Grpc.is_http() && Protocol::Grpc.is_http2());
        assert!(!Protocol::Tcp.is_http());
    }
}
