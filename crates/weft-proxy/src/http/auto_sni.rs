//! `auto_sni`: on a TLS cluster whose protocol options ask for it, each request's host is the
//! connection's SNI (and, with `auto_san_validation`, a name the certificate must have), as
//! Envoy's router sets it: the `override_auto_sni_header` value when the request has one,
//! else the host after the route's literal, header or weighted rewrite but before
//! `auto_host_rewrite` (which Envoy applies only once a host is picked), without its port.

use std::sync::Arc;

use http::header::HOST;
use http::{HeaderMap, HeaderValue, Uri};

use crate::model::cluster::AutoSni;
use crate::upstream::pool::PoolKey;

/// The pool key of a request to `addr`: with the request's host on `auto_sni` clusters.
pub fn pool_key(
    auto: Option<&AutoSni>,
    addr: std::net::SocketAddr,
    headers: &HeaderMap,
    uri: &Uri,
    before_auto_rewrite: Option<&HeaderValue>,
) -> PoolKey {
    let host = auto.and_then(|a| host(a, headers, uri, before_auto_rewrite));
    PoolKey { addr, host }
}

/// The host `auto` takes from a request; `before_auto_rewrite` is the host the request had
/// before `auto_host_rewrite` replaced it, when it did.
fn host(
    auto: &AutoSni,
    headers: &HeaderMap,
    uri: &Uri,
    before_auto_rewrite: Option<&HeaderValue>,
) -> Option<Arc<str>> {
    let value = auto
        .header
        .as_ref()
        .and_then(|h| headers.get(h))
        .or(before_auto_rewrite)
        .or_else(|| headers.get(HOST))
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))?;
    let name = without_port(value);
    (!name.is_empty()).then(|| Arc::from(name))
}

/// `example.com:8443` → `example.com`, `[::1]:80` → `::1`.
fn without_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderName;

    fn auto(header: Option<&str>) -> AutoSni {
        AutoSni {
            san_validation: false,
            header: header.map(|h| HeaderName::from_bytes(h.as_bytes()).unwrap()),
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn the_host_is_taken_without_its_port_from_the_header_envoy_would_use() {
        let uri: Uri = "/".parse().unwrap();
        let h = headers(&[
            ("host", "api.bank.internal:8443"),
            ("x-sni", "other.internal"),
        ]);
        assert_eq!(
            host(&auto(None), &h, &uri, None).as_deref(),
            Some("api.bank.internal")
        );
        assert_eq!(
            host(&auto(Some("x-sni")), &h, &uri, None).as_deref(),
            Some("other.internal"),
            "the override header wins when present"
        );
        assert_eq!(
            host(&auto(Some("x-absent")), &h, &uri, None).as_deref(),
            Some("api.bank.internal")
        );
        let before = HeaderValue::from_static("before.internal");
        assert_eq!(
            host(&auto(None), &h, &uri, Some(&before)).as_deref(),
            Some("before.internal"),
            "auto_host_rewrite does not change the SNI"
        );
        let h2: Uri = "https://h2.internal:443/x".parse().unwrap();
        assert_eq!(
            host(&auto(None), &HeaderMap::new(), &h2, None).as_deref(),
            Some("h2.internal")
        );
        assert_eq!(without_port("[::1]:80"), "::1");
        assert_eq!(without_port("10.0.0.1"), "10.0.0.1");
    }
}
