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
pub static X_ENVOY_EXTERNAL_ADDRESS: HeaderName =
    HeaderName::from_static("x-envoy-external-address");
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
    // One pass over the names first: most messages carry none of these.
    let any = h.keys().any(|k| {
        k == header::CONNECTION
            || k == KEEP_ALIVE
            || k == PROXY_CONNECTION
            || k == header::TRANSFER_ENCODING
            || k == header::UPGRADE
            || k == header::TE
    });
    if !any {
        if keep_upgrade {
            h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
        return;
    }
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

/// Envoy 1.40 treats no address as internal unless `internal_address_config` lists it.
fn is_internal(ip: IpAddr, cidrs: Option<&[Cidr]>) -> bool {
    cidrs.is_some_and(|c| c.iter().any(|c| c.contains(ip)))
}

/// This machine's first non-loopback IPv4 address, which Envoy appends to
/// `x-forwarded-for` in place of a loopback peer's address.
fn host_address() -> Option<IpAddr> {
    static FOUND: std::sync::OnceLock<Option<IpAddr>> = std::sync::OnceLock::new();
    *FOUND.get_or_init(|| {
        let trie = std::fs::read_to_string("/proc/net/fib_trie").ok()?;
        let mut last: Option<std::net::Ipv4Addr> = None;
        for line in trie.lines().map(str::trim) {
            if let Some(a) = line.strip_prefix("|-- ") {
                last = a.trim().parse().ok();
            } else if line.starts_with("/32 host LOCAL")
                && let Some(a) = last
                && !a.is_loopback()
            {
                return Some(IpAddr::V4(a));
            }
        }
        None
    })
}

/// Headers only a trusted (internal) client may send; removed from external requests.
const INTERNAL_ONLY: &[&str] = &[
    "x-envoy-internal",
    "x-envoy-external-address",
    "x-envoy-decorator-operation",
    "x-envoy-downstream-service-cluster",
    "x-envoy-downstream-service-node",
    "x-envoy-force-trace",
    "x-envoy-ip-tags",
    "x-envoy-upstream-alt-stat-name",
];

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
    if h.keys().any(|k| k.as_str().starts_with("x-envoy-")) {
        for name in ROUTER_CONTROL {
            h.remove(*name);
        }
    }
    if h.contains_key(header::EXPECT) {
        h.remove(header::EXPECT);
    }
    let remote = ctx.remote.ip();
    let internal = if hcm.use_remote_address {
        // The trusted client: the peer itself, or the entry `xff_num_trusted_hops` from the
        // right of the X-Forwarded-For the client sent.
        let hops = hcm.xff_num_trusted_hops as usize;
        let trusted: Option<IpAddr> = if hops == 0 {
            Some(remote)
        } else {
            let xff: Vec<IpAddr> = h
                .get_all(&X_FORWARDED_FOR)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|e| e.trim().parse().ok())
                .collect();
            xff.len().checked_sub(hops).map(|i| xff[i])
        };
        let internal = trusted.is_some_and(|t| is_internal(t, hcm.internal_cidrs.as_deref()));
        if !hcm.skip_xff_append {
            let appended = if remote.is_loopback() {
                host_address().unwrap_or(remote)
            } else {
                remote
            };
            append_xff(h, appended);
        }
        h.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
        if internal {
            h.insert(X_ENVOY_INTERNAL.clone(), HeaderValue::from_static("true"));
        } else {
            for name in INTERNAL_ONLY {
                h.remove(*name);
            }
            if let Some(t) = trusted
                && let Ok(v) = HeaderValue::from_str(&t.to_string())
            {
                h.insert(X_ENVOY_EXTERNAL_ADDRESS.clone(), v);
            }
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
        append_via(h, via);
    }
    internal
}

/// `via` joins an existing value as one comma-separated header, as Envoy writes it.
fn append_via(h: &mut HeaderMap, via: &HeaderValue) {
    let value = match h.get(header::VIA).and_then(|v| v.to_str().ok()) {
        Some(existing) if !existing.is_empty() => {
            HeaderValue::from_str(&format!("{existing}, {}", via.to_str().unwrap_or_default()))
                .unwrap_or_else(|_| via.clone())
        }
        _ => via.clone(),
    };
    h.insert(header::VIA, value);
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
        append_via(h, via);
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
