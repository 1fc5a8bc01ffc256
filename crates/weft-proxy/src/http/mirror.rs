//! Request mirroring (Envoy's shadowing): for each of the route's mirror policies that fires,
//! a copy of the request goes to the policy's cluster, fire and forget. Its answer is read
//! and thrown away, and nothing about it — failure, slowness, reset — reaches the main
//! request. The copy is what the main request's first try sends (route headers applied),
//! with `-shadow` on its host, `x-envoy-internal: true` and the proxy's own address appended
//! to `x-forwarded-for`, as Envoy's async client marks the requests it makes.

use super::body::{Body, ResponseBody};
use crate::config::snapshot::Snapshot;
use crate::model::cluster::Discovery;
use crate::model::mirror::{MirrorPolicy, MirrorTarget};
use crate::upstream::cluster::{Cluster, Wire};
use crate::upstream::pool::{Attach, UpstreamError};
use bytes::Bytes;
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Request};
use http_body_util::BodyExt;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

static X_ENVOY_INTERNAL: HeaderName = HeaderName::from_static("x-envoy-internal");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_ENVOY_EXPECTED_TIMEOUT: HeaderName =
    HeaderName::from_static("x-envoy-expected-rq-timeout-ms");

/// One copy to send: the cluster, resolved when the request arrived, and the policy.
pub struct Shadow<'a> {
    pub cluster: Arc<Cluster>,
    pub policy: &'a MirrorPolicy,
}

/// The policies that fire for this request, in order, with their clusters. A cluster named
/// by a missing header, or missing from the configuration, gets no copy (as in Envoy).
pub fn pick<'a>(
    policies: &'a [MirrorPolicy],
    headers: &HeaderMap,
    snapshot: &Snapshot,
) -> Vec<Shadow<'a>> {
    let mut out = Vec::new();
    for policy in policies {
        let name = match &policy.target {
            MirrorTarget::Cluster(c) => Some(c.as_str()),
            MirrorTarget::Header(h) => headers.get(h).and_then(|v| v.to_str().ok()),
        };
        let Some(cluster) = name.and_then(|n| snapshot.clusters.get(n)) else {
            continue;
        };
        if policy.sampled() {
            out.push(Shadow {
                cluster: cluster.clone(),
                policy,
            });
        }
    }
    out
}

/// Reads a mirrored request's whole body, of announced size within `limit` bytes: a body
/// that breaks is a 400, one still arriving after `within` (the request and stream idle
/// timeouts) a 408.
pub async fn read_body(
    body: hyper::body::Incoming,
    limit: usize,
    within: Option<Duration>,
) -> Result<Bytes, http::StatusCode> {
    let read = http_body_util::Limited::new(body, limit).collect();
    let collected = match within {
        Some(t) => tokio::time::timeout(t, read)
            .await
            .map_err(|_| http::StatusCode::REQUEST_TIMEOUT)?,
        None => read.await,
    };
    collected
        .map(|c| c.to_bytes())
        .map_err(|_| http::StatusCode::BAD_REQUEST)
}

/// The address Envoy's async client appends to `x-forwarded-for`: the node's own address
/// (Envoy's `LocalInfo`, the first non-loopback IPv4 address of the host). Found as the
/// source the kernel would pick for a route off the host — a UDP "connect" sends nothing —
/// and loopback when there is none.
fn local_address() -> &'static HeaderValue {
    static ADDR: OnceLock<HeaderValue> = OnceLock::new();
    ADDR.get_or_init(|| {
        let probe = || -> std::io::Result<IpAddr> {
            let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
            s.connect((Ipv4Addr::new(203, 0, 113, 1), 9))?;
            Ok(s.local_addr()?.ip())
        };
        let ip = probe()
            .ok()
            .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        HeaderValue::from_str(&ip.to_string()).expect("an address is a header value")
    })
}

/// The copy's head, from the main request's first try.
/// The copy runs under the route's whole timeout (not a per-try one), and says so.
fn shadow_parts(
    p: &http::request::Parts,
    policy: &MirrorPolicy,
    timeout: Option<Duration>,
) -> http::request::Parts {
    let (mut out, ()) = Request::new(()).into_parts();
    out.method = p.method.clone();
    out.uri = p.uri.clone();
    out.version = p.version;
    out.headers = p.headers.clone();
    let host = out.headers.get(header::HOST).cloned().or_else(|| {
        out.uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    if let Some(h) = host.and_then(|h| policy.host_for(&h)) {
        out.headers.insert(header::HOST, h);
    }
    if let Some(t) = timeout
        && out.headers.contains_key(&X_ENVOY_EXPECTED_TIMEOUT)
    {
        out.headers.insert(
            X_ENVOY_EXPECTED_TIMEOUT.clone(),
            HeaderValue::from(t.as_millis() as u64),
        );
    }
    out.headers
        .insert(X_ENVOY_INTERNAL.clone(), HeaderValue::from_static("true"));
    append_xff(&mut out.headers, local_address());
    out
}

/// Envoy's `appendXff`: one `x-forwarded-for`, with `,addr` added to what it held (no
/// space, unlike the connection manager's own append).
fn append_xff(h: &mut HeaderMap, addr: &HeaderValue) {
    let joined = match h.get(&X_FORWARDED_FOR) {
        Some(old) if !old.is_empty() => {
            let mut v = Vec::with_capacity(old.len() + 1 + addr.len());
            v.extend_from_slice(old.as_bytes());
            v.push(b',');
            v.extend_from_slice(addr.as_bytes());
            HeaderValue::from_bytes(&v).unwrap_or_else(|_| addr.clone())
        }
        _ => addr.clone(),
    };
    h.insert(X_FORWARDED_FOR.clone(), joined);
}

/// Sends the copy in the background. `timeout` is the route's (Envoy gives the shadow the
/// main request's global timeout); `body` the whole request body.
pub fn spawn(
    shadow: Shadow<'_>,
    main: &http::request::Parts,
    body: Option<Bytes>,
    timeout: Option<Duration>,
) {
    let parts = shadow_parts(main, shadow.policy, timeout);
    let cluster = shadow.cluster;
    tokio::spawn(async move {
        let send = send(&cluster, parts, body);
        match timeout {
            Some(t) => {
                if tokio::time::timeout(t, send).await.is_err() {
                    cluster.stats.upstream_rq_timeout.inc();
                }
            }
            None => send.await,
        }
    });
}

async fn send(cluster: &Arc<Cluster>, parts: http::request::Parts, body: Option<Bytes>) {
    // ORIGINAL_DST needs the downstream connection's destination, which a copy does not have.
    if matches!(cluster.config.discovery, Discovery::OriginalDst) {
        return;
    }
    let set = cluster.endpoints.load();
    let Some(host) = set.pick(None).cloned() else {
        cluster.stats.upstream_cx_none_healthy.inc();
        return;
    };
    let wire = cluster.wire(parts.version);
    let Ok(parts) = super::router::retarget(parts, wire) else {
        return;
    };
    // A copy's host is the shadow's (`…-shadow`), as Envoy's async client sends it.
    let key = super::auto_sni::pool_key(
        cluster.config.auto_sni.as_ref(),
        host.addr,
        &parts.headers,
        &parts.uri,
        None,
    );
    let req = Request::from_parts(parts, body.map_or(Body::Empty, Body::full));
    let attach = Attach {
        resources: &cluster.resources,
        stats: &cluster.stats,
        host: Some(&host),
    };
    let pool = cluster.pool();
    let sent = match wire {
        Wire::Http1 => pool.send_h1(key, req, &attach).await,
        Wire::Http2 => pool.send_h2(key, req, &attach).await,
    };
    match sent {
        Ok((resp, lease, active)) => {
            cluster.stats.count_status(resp.status().as_u16());
            cluster.stats.upstream_rq_completed.inc();
            let (_, incoming) = resp.into_parts();
            let mut rb = ResponseBody::new(Body::Incoming(incoming));
            rb.lease = lease;
            rb.active = Some(active);
            // Read to the end so the connection can serve again; the answer goes nowhere.
            let _ = rb.collect().await;
        }
        Err(UpstreamError::Reset(_)) => cluster.stats.upstream_rq_rx_reset.inc(),
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::mirror::ShadowHost;

    #[test]
    fn copies_are_marked_as_envoys_async_client_marks_them() {
        let policy = MirrorPolicy {
            target: MirrorTarget::Cluster("s".into()),
            fraction: None,
            host: ShadowHost::Suffix,
        };
        let (mut p, ()) = Request::new(()).into_parts();
        p.headers
            .insert(header::HOST, HeaderValue::from_static("svc:8080"));
        p.headers
            .insert(&X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.9"));
        p.headers
            .insert(&X_ENVOY_EXPECTED_TIMEOUT, HeaderValue::from_static("250"));
        let s = shadow_parts(&p, &policy, Some(Duration::from_secs(15)));
        assert_eq!(s.headers[&X_ENVOY_EXPECTED_TIMEOUT], "15000");
        assert_eq!(s.headers[header::HOST], "svc-shadow:8080");
        assert_eq!(s.headers[&X_ENVOY_INTERNAL], "true");
        let xff = s.headers[&X_FORWARDED_FOR].to_str().unwrap();
        assert_eq!(
            xff,
            format!("10.0.0.9,{}", local_address().to_str().unwrap())
        );
        // The main request is left as it was.
        assert_eq!(p.headers[header::HOST], "svc:8080");
    }

    #[test]
    fn xff_is_started_when_absent() {
        let mut h = HeaderMap::new();
        append_xff(&mut h, &HeaderValue::from_static("192.0.2.2"));
        assert_eq!(h[&X_FORWARDED_FOR], "192.0.2.2");
    }

    #[test]
    fn the_local_address_is_an_address() {
        let a = local_address().to_str().unwrap();
        assert!(a.parse::<IpAddr>().is_ok(), "{a}");
    }
}
