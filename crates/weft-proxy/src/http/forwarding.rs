//! What the connection manager does to every request and response before and after routing,
//! as Envoy does: hop-by-hop headers dropped, `x-forwarded-for` / `x-forwarded-proto` /
//! `x-request-id` / `via` set, client-certificate headers sanitised, and the `server` header.

use super::ConnCtx;
use crate::model::hcm::{ForwardClientCert, ServerHeader};
use crate::model::listener::Cidr;
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue};
use std::net::IpAddr;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_ENVOY_INTERNAL: HeaderName = HeaderName::from_static("x-envoy-internal");
pub static XFCC: HeaderName = HeaderName::from_static("x-forwarded-client-cert");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Headers the router reads and removes; a client may not pass them upstream.
const ROUTER_CONTROL: &[&str] = &[
    "x-envoy-retry-on",
    "x-envoy-retry-grpc-on",
    "x-envoy-max-retries",
    "x-envoy-upstream-rq-timeout-ms",
    "x-envoy-upstream-rq-per-try-timeout-ms",
    "x-envoy-hedge-on-per-try-timeout",
    "x-envoy-retriable-status-codes",
    "x-envoy-retriable-header-names",
    "x-envoy-upstream-rq-timeout-alt-response",
    "x-envoy-expected-rq-timeout-ms",
];

/// Removes `Connection`, the headers it names, and the other hop-by-hop headers. `keep`
/// is the upgrade being forwarded (its `upgrade` and `connection: upgrade` stay).
pub fn strip_hop_by_hop(h: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().to_ascii_lowercase().as_bytes()).ok())
        .filter(|n| *n != header::TE && !(keep_upgrade && *n == header::UPGRADE))
        .collect();
    for n in named {
        h.remove(n);
    }
    h.remove(header::CONNECTION);
    h.remove(&KEEP_ALIVE);
    h.remove(&PROXY_CONNECTION);
    h.remove(header::TRANSFER_ENCODING);
    if keep_upgrade {
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        h.remove(header::UPGRADE);
    }
    // Only `te: trailers` may cross a proxy.
    if let Some(te) = h.get(header::TE)
        && !te.as_bytes().eq_ignore_ascii_case(b"trailers")
    {
        h.remove(header::TE);
    }
}

fn is_internal(ip: IpAddr, cidrs: Option<&[Cidr]>) -> bool {
    if let Some(cidrs) = cidrs {
        return cidrs.iter().any(|c| c.contains(ip));
    }
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| v4.is_private() || v4.is_loopback())
        }
    }
}

/// A random UUID v4, as Envoy's default request ID extension makes.
pub fn new_request_id() -> HeaderValue {
    let mut b: [u8; 16] = fastrand::u128(..).to_le_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = [0u8; 36];
    let mut j = 0;
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s[j] = b'-';
            j += 1;
        }
        s[j] = HEX[(byte >> 4) as usize];
        s[j + 1] = HEX[(byte & 0xf) as usize];
        j += 2;
    }
    HeaderValue::from_bytes(&s).expect("hex and dashes")
}

/// The connection manager's request mutations. Returns whether the request is internal.
pub fn mutate_request(h: &mut HeaderMap, ctx: &ConnCtx, upgrade: bool) -> bool {
    let hcm = &ctx.hcm;
    strip_hop_by_hop(h, upgrade);
    for name in ROUTER_CONTROL {
        h.remove(*name);
    }
    h.remove(header::EXPECT);
    let remote = ctx.remote.ip();
    let internal = if hcm.use_remote_address {
        let internal = is_internal(remote, hcm.internal_cidrs.as_deref());
        if !hcm.skip_xff_append {
            append_xff(h, remote);
        }
        h.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
        if internal {
            h.insert(X_ENVOY_INTERNAL.clone(), HeaderValue::from_static("true"));
        } else {
            h.remove(&X_ENVOY_INTERNAL);
        }
        internal
    } else {
        if !h.contains_key(&X_FORWARDED_PROTO) {
            h.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
        }
        h.contains_key(&X_ENVOY_INTERNAL)
    };
    if hcm.generate_request_id {
        let external = hcm.use_remote_address && !internal;
        let replace =
            !h.contains_key(&X_REQUEST_ID) || (external && !hcm.preserve_external_request_id);
        if replace {
            h.insert(X_REQUEST_ID.clone(), new_request_id());
        }
    }
    // Plaintext connections carry no client certificate: only the forwarding modes that
    // trust a downstream XFCC keep it.
    match hcm.forward_client_cert {
        ForwardClientCert::Sanitize | ForwardClientCert::SanitizeSet => {
            h.remove(&XFCC);
        }
        ForwardClientCert::AlwaysForwardOnly => {}
        ForwardClientCert::ForwardOnly | ForwardClientCert::AppendForward => {
            h.remove(&XFCC);
        }
    }
    if let Some(via) = &hcm.via {
        h.append(header::VIA, via.clone());
    }
    internal
}

fn append_xff(h: &mut HeaderMap, ip: IpAddr) {
    let ip = ip.to_string();
    let value = match h.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(existing) if !existing.is_empty() => format!("{existing},{ip}"),
        _ => ip,
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        h.insert(X_FORWARDED_FOR.clone(), v);
    }
}

/// The connection manager's response mutations.
pub fn mutate_response(h: &mut HeaderMap, ctx: &ConnCtx, request_id: Option<&HeaderValue>) {
    let hcm = &ctx.hcm;
    match hcm.server_header {
        ServerHeader::Overwrite => {
            h.insert(header::SERVER, hcm.server_name.clone());
        }
        ServerHeader::AppendIfAbsent => {
            if !h.contains_key(header::SERVER) {
                h.insert(header::SERVER, hcm.server_name.clone());
            }
        }
        ServerHeader::PassThrough => {}
    }
    if let Some(via) = &hcm.via {
        h.append(header::VIA, via.clone());
    }
    if hcm.always_set_request_id_in_response
        && let Some(id) = request_id
    {
        h.insert(X_REQUEST_ID.clone(), id.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uuid_v4() {
        let id = new_request_id();
        let s = id.to_str().expect("ascii");
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"), "{s}");
        assert_ne!(new_request_id(), id);
    }

    #[test]
    fn hop_by_hop_headers_and_the_ones_connection_names_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["te", "x-kept"]);
    }
}
