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

/// Headers Envoy's connection manager removes from every request it does not judge internal.
const NOT_FOR_EXTERNAL: &[&str] = &[
    "x-envoy-upstream-alt-stat-name",
    "x-envoy-force-trace",
    "x-envoy-ip-tags",
    "x-envoy-original-url",
];

/// Headers it removes, in addition, from edge requests (`use_remote_address` and external):
/// there the client is outside the mesh, so they cannot name a mesh service or operation.
const NOT_FROM_EDGE: &[&str] = &[
    "x-envoy-decorator-operation",
    "x-envoy-downstream-service-cluster",
    "x-envoy-downstream-service-node",
];

/// Envoy keeps `x-forwarded-for` and `x-forwarded-proto` as one value, repeated headers
/// joined with `,`, and every rule below reads and extends that single value.
fn join_repeated(h: &mut HeaderMap, name: &HeaderName) {
    let mut values = h.get_all(name).iter();
    let (Some(first), Some(_)) = (values.next(), values.next()) else {
        return;
    };
    let mut joined = first.as_bytes().to_vec();
    for v in h.get_all(name).iter().skip(1) {
        joined.push(b',');
        joined.extend_from_slice(v.as_bytes());
    }
    if let Ok(v) = HeaderValue::from_bytes(&joined) {
        h.insert(name.clone(), v);
    }
}

/// Envoy's `getLastAddressFromXFF`: the address `skip` entries from the right of
/// `x-forwarded-for`, and whether it is the header's only entry (Envoy's precondition for
/// judging a request internal from it). `None` when the header is missing, has too few
/// entries, or that entry is not a bare IP address.
fn xff_address(h: &HeaderMap, skip: u32) -> Option<(IpAddr, bool)> {
    let mut s = h.get(&X_FORWARDED_FOR)?.as_bytes();
    for _ in 0..skip {
        let comma = s.iter().rposition(|&b| b == b',')?;
        s = &s[..comma];
    }
    let comma = s.iter().rposition(|&b| b == b',');
    // A trailing comma leaves the whole text, which then fails to parse, as in Envoy.
    if let Some(c) = comma
        && c + 1 < s.len()
    {
        s = &s[c + 1..];
    }
    let ip: IpAddr = std::str::from_utf8(s)
        .ok()?
        .trim_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c'])
        .parse()
        .ok()?;
    Some((ip, comma.is_none() && skip == 0))
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

/// The connection manager's request mutations (Envoy's `mutateRequestHeaders`). Returns
/// whether the request is internal.
///
/// Envoy decides "internal" only from addresses it can vouch for: with `use_remote_address`,
/// the peer, and only when the client sent no `x-forwarded-for` (a proxy in front makes the
/// peer say nothing about the client); without it, the sole entry of `x-forwarded-for`
/// (`xff_num_trusted_hops` must be 0). A client's own `x-envoy-internal` never counts.
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
    // Only this proxy may say a request is internal, from addresses it trusts (below).
    h.remove(&X_ENVOY_INTERNAL);
    join_repeated(h, &X_FORWARDED_FOR);
    join_repeated(h, &X_FORWARDED_PROTO);
    let remote = ctx.remote.ip();
    let hops = hcm.xff_num_trusted_hops;
    // The client address Envoy trusts, and whether it may be judged internal.
    let (trusted, checkable) = if hcm.use_remote_address {
        let checkable = !h.contains_key(&X_FORWARDED_FOR);
        // Behind `xff_num_trusted_hops` proxies the client is the entry the nearest of them
        // appended; when they did not, the peer itself.
        let trusted = hops
            .checked_sub(1)
            .and_then(|skip| xff_address(h, skip))
            .map_or(remote, |(ip, _)| ip);
        if !hcm.skip_xff_append {
            let appended = if remote.is_loopback() {
                host_address().unwrap_or(remote)
            } else {
                remote
            };
            append_xff(h, appended);
        }
        // A trusted proxy in front (one that terminated TLS, typically) says which protocol
        // the client used; without one, the client's claim is replaced.
        if hops == 0 || !h.contains_key(&X_FORWARDED_PROTO) {
            h.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
        }
        (Some(trusted), checkable)
    } else {
        match xff_address(h, hops) {
            Some((ip, only)) => (Some(ip), only),
            None => (None, false),
        }
    };
    if !h.contains_key(&X_FORWARDED_PROTO) {
        h.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    }
    let internal =
        checkable && trusted.is_some_and(|t| is_internal(t, hcm.internal_cidrs.as_deref()));
    if internal {
        h.insert(X_ENVOY_INTERNAL.clone(), HeaderValue::from_static("true"));
    } else {
        for name in NOT_FOR_EXTERNAL {
            h.remove(*name);
        }
        if hcm.use_remote_address {
            for name in NOT_FROM_EDGE {
                h.remove(*name);
            }
            // This proxy is the mesh's first hop: it records who the client was.
            if let Ok(v) = HeaderValue::from_str(&trusted.unwrap_or(remote).to_string()) {
                h.insert(X_ENVOY_EXTERNAL_ADDRESS.clone(), v);
            }
        }
    }
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
    let mut value = h
        .get(&X_FORWARDED_FOR)
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    if !value.is_empty() {
        value.push(b',');
    }
    value.extend_from_slice(ip.as_bytes());
    if let Ok(v) = HeaderValue::from_bytes(&value) {
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

    fn xff(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(X_FORWARDED_FOR.clone(), HeaderValue::from_static(v));
        }
        join_repeated(&mut h, &X_FORWARDED_FOR);
        h
    }

    #[test]
    fn xff_address_counts_entries_from_the_right_as_envoy_does() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(xff_address(&xff(&[]), 0), None);
        assert_eq!(
            xff_address(&xff(&["10.0.0.1"]), 0),
            Some((ip("10.0.0.1"), true))
        );
        assert_eq!(xff_address(&xff(&[" ::1 "]), 0), Some((ip("::1"), true)));
        let two = xff(&["1.1.1.1, 2.2.2.2"]);
        assert_eq!(xff_address(&two, 0), Some((ip("2.2.2.2"), false)));
        assert_eq!(xff_address(&two, 1), Some((ip("1.1.1.1"), false)));
        assert_eq!(xff_address(&two, 2), None, "too few entries");
        // Repeated headers are one list; a malformed or port-carrying entry is no address.
        assert_eq!(
            xff_address(&xff(&["1.1.1.1", "2.2.2.2"]), 1),
            Some((ip("1.1.1.1"), false))
        );
        assert_eq!(xff_address(&xff(&["1.1.1.1,"]), 0), None);
        assert_eq!(xff_address(&xff(&["1.1.1.1:80"]), 0), None);
        assert_eq!(xff_address(&xff(&["unknown, 3.3.3.3"]), 1), None);
    }

    #[test]
    fn repeated_values_are_joined_with_a_bare_comma() {
        let h = xff(&["a", "b, c"]);
        let all: Vec<&[u8]> = h
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        assert_eq!(all, [b"a,b, c".as_slice()]);
        let mut h = xff(&["1.2.3.4"]);
        append_xff(&mut h, "5.6.7.8".parse().expect("ip"));
        assert_eq!(h[&X_FORWARDED_FOR], "1.2.3.4,5.6.7.8");
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
