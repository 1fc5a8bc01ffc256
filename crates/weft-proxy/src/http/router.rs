//! The router: picks the virtual host and route for a request, then answers directly,
//! redirects, or forwards to an endpoint of the chosen cluster — rewriting path and host,
//! applying header mutations in Envoy's order, enforcing the route timeout, and turning
//! upstream failures into Envoy's responses and response flags.

use super::body::{Body, Replay, ResponseBody, StreamGuard};
use super::forwarding::{self, X_REQUEST_ID};
use super::local_reply::reply;
use super::retry::{Decision, RetryState};
use super::timers::{Activity, BodyTimer, Deadlines, Expired};
use super::{ConnCtx, cors, fault, mirror, upgrade};
use crate::model::cluster::Discovery;
use crate::model::hash_policy;
use crate::model::hcm::{HttpFilter, RouteSource};
use crate::model::header_ops::{FormatContext, HeaderOps};
use crate::model::matcher::Pseudo;
use crate::model::route::{Choice, RequestView, Route, RouteConfig, VirtualHost, is_grpc};
use crate::model::route_action::{
    Action, Forward, HostRewrite, PathRedirect, Redirect, Target, WeightedTarget,
};
use crate::upstream::cluster::{Cluster, Wire};
use crate::upstream::endpoints::Host;
use crate::upstream::outlier::Outcome;
use crate::upstream::pool::{ActiveRequest, Attach, ResetReason, UpstreamError};
use bytes::Bytes;
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use hyper::body::Incoming;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

static X_ENVOY_ORIGINAL_PATH: HeaderName = HeaderName::from_static("x-envoy-original-path");
static X_ENVOY_ORIGINAL_HOST: HeaderName = HeaderName::from_static("x-envoy-original-host");
static X_ENVOY_EXPECTED_TIMEOUT: HeaderName =
    HeaderName::from_static("x-envoy-expected-rq-timeout-ms");
static X_ENVOY_UPSTREAM_TIME: HeaderName = HeaderName::from_static("x-envoy-upstream-service-time");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// Envoy's response flags, as they appear in access logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    NoRoute,
    NoClusterFound,
    NoHealthyUpstream,
    UpstreamConnectionFailure,
    UpstreamConnectionTermination,
    UpstreamRequestTimeout,
    StreamIdleTimeout,
    DurationTimeout,
    FaultInjected,
    DelayInjected,
    UpstreamOverflow,
    UpstreamRetryLimitExceeded,
    UpstreamRemoteReset,
}

impl Flag {
    pub fn short(self) -> &'static str {
        match self {
            Flag::NoRoute => "NR",
            Flag::NoClusterFound => "NC",
            Flag::NoHealthyUpstream => "UH",
            Flag::UpstreamConnectionFailure => "UF",
            Flag::UpstreamConnectionTermination => "UC",
            Flag::UpstreamRequestTimeout => "UT",
            Flag::StreamIdleTimeout => "SI",
            Flag::DurationTimeout => "DT",
            Flag::FaultInjected => "FI",
            Flag::DelayInjected => "DI",
            Flag::UpstreamOverflow => "UO",
            Flag::UpstreamRetryLimitExceeded => "URX",
            Flag::UpstreamRemoteReset => "UR",
        }
    }
}

/// What one request needs to remember while it is handled.
struct Exchange<'a> {
    ctx: &'a Arc<ConnCtx>,
    /// When the request's headers arrived: the request timeout counts from here.
    start: Instant,
    grpc: bool,
    head: bool,
    request_id: Option<HeaderValue>,
    flag: Option<Flag>,
    /// Close the connection after this response (it went out before the request was done).
    close: bool,
    /// The gRPC status of a local reply, when it is not the one its HTTP status maps to.
    grpc_status: Option<u32>,
    /// The tries so far, when the virtual host reports them (`x-envoy-attempt-count` on
    /// the response).
    attempts: Option<u32>,
    /// What the CORS filter adds to the response, once it let the request through.
    cors: Option<cors::Latched>,
    /// A filter answered with a reply of its own making (not a local reply), which the
    /// route's response headers do not touch.
    bare_reply: bool,
}

pub async fn handle(mut req: Request<Incoming>, ctx: Arc<ConnCtx>) -> Response<ResponseBody> {
    let n = ctx.tracker.stream_started();
    ctx.stats.downstream_rq_total.inc();
    ctx.stats.downstream_rq_active.inc();
    let h2 = req.version() == Version::HTTP_2;
    if h2 {
        ctx.stats.downstream_rq_http2_total.inc();
    } else {
        ctx.stats.downstream_rq_http1_total.inc();
    }
    // The codec is only known once the first request has been read (AUTO sniffs it).
    if n == 1 {
        if h2 {
            ctx.stats.downstream_cx_http2_total.inc();
        } else {
            ctx.stats.downstream_cx_http1_total.inc();
        }
    }
    if ctx
        .hcm
        .max_requests_per_connection
        .is_some_and(|max| n >= max)
    {
        ctx.stats.downstream_cx_max_requests_reached.inc();
        ctx.closing
            .store(true, std::sync::atomic::Ordering::Relaxed);
        ctx.shutdown.notify_one();
    }
    let upgrade_kind = upgrade::requested(&req);
    forwarding::mutate_request(req.headers_mut(), &ctx, upgrade_kind.is_some());
    let version = req.version();
    let mut ex = Exchange {
        ctx: &ctx,
        start: Instant::now(),
        grpc: is_grpc(req.headers()),
        head: req.method() == http::Method::HEAD,
        // Only kept when the response will carry it.
        request_id: ctx
            .hcm
            .always_set_request_id_in_response
            .then(|| req.headers().get(&X_REQUEST_ID).cloned())
            .flatten(),
        flag: None,
        close: false,
        grpc_status: None,
        attempts: None,
        cors: None,
        bare_reply: false,
    };
    let mut resp = route_and_forward(req, &mut ex, upgrade_kind).await;
    if let Some(c) = &ex.cors {
        c.apply(resp.headers_mut());
    }
    // The downstream speaks its own protocol whatever the upstream answered with.
    *resp.version_mut() = version;
    let status = resp.status().as_u16();
    ctx.stats.count_status(status);
    forwarding::mutate_response(resp.headers_mut(), &ctx, ex.request_id.as_ref());
    if ex.close {
        ctx.closing
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
    if ctx.closing.load(std::sync::atomic::Ordering::Relaxed) && resp.version() != Version::HTTP_2 {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let tracked = ctx.clone();
    resp.body_mut().guard = Some(StreamGuard::new(tracked));
    if let Some(flag) = ex.flag {
        tracing::debug!(flag = flag.short(), status, "local reply");
    }
    resp
}

fn host_of(req: &Request<Incoming>) -> Option<&str> {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
}

/// Envoy's `strip_matching_host_port` / `strip_any_host_port`, applied to the request.
fn strip_host_port(req: &mut Request<Incoming>, ctx: &ConnCtx) {
    if !(ctx.hcm.strip_any_host_port || ctx.hcm.strip_matching_host_port) {
        return;
    }
    let Some(host) = host_of(req) else { return };
    let stripped = crate::model::route::strip_port(host);
    if stripped.len() == host.len() {
        return;
    }
    let port = &host[stripped.len() + 1..];
    let strip = ctx.hcm.strip_any_host_port || port == ctx.local.port().to_string();
    if strip && let Ok(v) = HeaderValue::from_str(stripped) {
        req.headers_mut().insert(header::HOST, v);
    }
}

async fn route_and_forward(
    mut req: Request<Incoming>,
    ex: &mut Exchange<'_>,
    upgrade_kind: Option<String>,
) -> Response<ResponseBody> {
    let ctx = ex.ctx;
    // An authority that is not visible ASCII cannot name a virtual host: Envoy answers 400.
    if req
        .headers()
        .get(header::HOST)
        .is_some_and(|h| h.to_str().is_err())
    {
        return reply(StatusCode::BAD_REQUEST, None, ex.grpc, ex.head);
    }
    strip_host_port(&mut req, ctx);
    if ctx.hcm.normalize_path || ctx.hcm.merge_slashes {
        normalize(&mut req, ctx.hcm.normalize_path, ctx.hcm.merge_slashes);
    }
    let snapshot = ctx.shared.load();
    let table: Option<Arc<RouteConfig>> = match &ctx.hcm.routes {
        RouteSource::Inline(rc) => Some(rc.clone()),
        RouteSource::Rds(name) => snapshot.routes.get(name).cloned(),
    };
    // Cheap clones (reference-counted buffers), so the request can be changed while the
    // original host and path stay at hand for rewrites and redirects.
    let host_value = req.headers().get(header::HOST).cloned().or_else(|| {
        req.uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    let host = host_value
        .as_ref()
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let uri = req.uri().clone();
    let path = uri.path();
    let query = uri.query();
    let pseudo = Pseudo {
        method: req.method().as_str(),
        path: uri.path_and_query().map_or("/", |p| p.as_str()),
        authority: host,
        scheme: "http",
    };
    let choice = table.as_ref().and_then(|t| {
        let vh = t.select_vhost(host)?;
        let view = RequestView {
            path,
            query,
            headers: req.headers(),
            pseudo: Pseudo { ..pseudo },
        };
        Some((vh, vh.choose(&view)?))
    });
    let tls_redirect = matches!(choice, Some((_, Choice::TlsRedirect)));
    let selected = match choice {
        Some((vh, Choice::Route(route))) => Some((vh, route)),
        _ => None,
    };
    // The connection manager refuses an upgrade the route does not allow before any filter
    // runs. Direct responses, redirects and TLS redirects have no route entry, so only the
    // manager's own list counts for them; with no route at all, nothing is checked.
    if let Some(kind) = &upgrade_kind {
        let allowed = match selected.map(|(_, r)| &r.action) {
            Some(Action::Forward(f)) => ctx.hcm.upgrade_allowed(kind, &f.upgrades),
            Some(_) => ctx.hcm.upgrade_allowed(kind, &[]),
            None => !tls_redirect || ctx.hcm.upgrade_allowed(kind, &[]),
        };
        if !allowed {
            ctx.stats.downstream_rq_ws_on_non_ws_route.inc();
            ex.close = true;
            return reply(StatusCode::FORBIDDEN, None, ex.grpc, ex.head);
        }
    }
    // A weighted split is decided with the route, so filters see the cluster the router
    // will use.
    let weighted = selected.and_then(|(_, route)| match &route.action {
        Action::Forward(f) => match &f.target {
            Target::Weighted { targets, total } => Some(pick_weighted(targets, *total)),
            _ => None,
        },
        _ => None,
    });
    if ctx.hcm.has_filters() {
        let place = fault::Place {
            // Envoy's TLS redirect route carries no per-filter configuration at any level.
            table: table.as_deref().filter(|_| !tls_redirect),
            vhost: selected.map(|(v, _)| v),
            route: selected.map(|(_, r)| r),
            cluster: selected.and_then(|(_, r)| match &r.action {
                Action::Forward(f) => match &f.target {
                    Target::Cluster(c) => Some(c.as_str()),
                    Target::Header(h) => req.headers().get(h).and_then(|v| v.to_str().ok()),
                    Target::Weighted { .. } => weighted.map(|w| w.cluster.as_str()),
                },
                _ => None,
            }),
        };
        let concerned = ctx.hcm.filters.iter().any(|f| match f {
            HttpFilter::Fault(fault_filter) => {
                fault::concerns(fault_filter, &place, req.headers(), &pseudo)
            }
            HttpFilter::Cors(c) => cors::concerns(c, &place, req.headers()),
            HttpFilter::Router(_) => false,
        });
        // Boxed: only requests a filter acts on pay for the larger future.
        if concerned
            && let Some(mut resp) = Box::pin(run_filters(ex, &place, req.headers(), &pseudo)).await
        {
            // Envoy finishes a filter's local reply with the route's response headers.
            if let (false, Some(table), Some((vhost, route))) =
                (ex.bare_reply, table.as_deref(), selected)
            {
                let levels = Levels {
                    table,
                    vhost,
                    route,
                    weighted,
                };
                levels.response_ops(resp.headers_mut(), ctx, req.headers());
            }
            return resp;
        }
    }
    if tls_redirect {
        // The router answers it as a direct response: no header mutations of any level, and
        // gRPC-shaped for a gRPC request like any local reply.
        ctx.stats.rq_direct_response.inc();
        let mut resp = reply(StatusCode::MOVED_PERMANENTLY, None, ex.grpc, ex.head);
        if let Ok(loc) = HeaderValue::from_str(&format!("https://{host}{}", pseudo.path)) {
            resp.headers_mut().insert(header::LOCATION, loc);
        }
        return resp;
    }
    let (Some(table), Some((vhost, route))) = (table.as_ref(), selected) else {
        ctx.stats.no_route.inc();
        ex.flag = Some(Flag::NoRoute);
        return reply(StatusCode::NOT_FOUND, None, ex.grpc, ex.head);
    };
    let levels = Levels {
        table,
        vhost,
        route,
        weighted,
    };
    match &route.action {
        Action::Direct(d) => {
            // Envoy's router hands a direct response to the local reply, so a gRPC request
            // gets it gRPC-shaped: 200 with grpc-status mapped from the status (a 200 too),
            // and the body, unless HEAD, as a percent-encoded grpc-message.
            ctx.stats.rq_direct_response.inc();
            let mut resp = reply(d.status, d.body.clone(), ex.grpc, ex.head);
            // RFC 7231 section 7.1.2: Envoy points a 201 or 3xx back at the request's own URI
            // (its redirect URI with nothing rewritten), before the route's headers, which
            // may append to it or replace it.
            if d.status == StatusCode::CREATED || d.status.is_redirection() {
                let here = Redirect {
                    scheme: None,
                    host: None,
                    port: None,
                    path: PathRedirect::Keep,
                    status: d.status,
                    strip_query: false,
                };
                if let Ok(loc) = HeaderValue::from_str(&location(&here, &req, path, query, route)) {
                    resp.headers_mut().insert(header::LOCATION, loc);
                }
            }
            levels.response_ops(resp.headers_mut(), ctx, req.headers());
            resp
        }
        Action::Redirect(r) => {
            // Envoy's router answers a redirect as one more direct response (its
            // `rq_redirect` stays 0), through the local reply, so gRPC-shaped for gRPC.
            ctx.stats.rq_direct_response.inc();
            let mut resp = reply(r.status, None, ex.grpc, ex.head);
            if let Ok(loc) = HeaderValue::from_str(&location(r, &req, path, query, route)) {
                resp.headers_mut().insert(header::LOCATION, loc);
            }
            levels.response_ops(resp.headers_mut(), ctx, req.headers());
            resp
        }
        Action::Forward(f) => {
            // Boxed: the forwarding state is most of a request's future, and hyper moves the
            // future around; one allocation is cheaper than copying kilobytes.
            Box::pin(forward(
                req,
                ex,
                f,
                levels,
                &snapshot,
                path,
                query,
                upgrade_kind,
            ))
            .await
        }
    }
}

/// The HTTP filters before the router, in order; `Some` when one of them answered.
async fn run_filters(
    ex: &mut Exchange<'_>,
    place: &fault::Place<'_>,
    headers: &HeaderMap,
    pseudo: &Pseudo<'_>,
) -> Option<Response<ResponseBody>> {
    let ctx = ex.ctx;
    for f in &ctx.hcm.filters {
        match f {
            HttpFilter::Fault(fault_filter) => {
                let stats = ctx.fault_stats.as_deref()?;
                match fault::run(fault_filter, stats, place, headers, pseudo).await {
                    fault::Outcome::Continue { delayed } => {
                        if delayed {
                            ex.flag = Some(Flag::DelayInjected);
                        }
                    }
                    fault::Outcome::Abort { status, body } => {
                        ex.flag = Some(Flag::FaultInjected);
                        return Some(fault::abort_reply(status, body, ex.grpc, ex.head));
                    }
                }
            }
            HttpFilter::Cors(c) => match cors::run(c, None, place, pseudo.method, headers) {
                cors::Outcome::Continue(latched) => ex.cors = latched,
                cors::Outcome::Reply(resp, latched) => {
                    ex.cors = latched;
                    ex.bare_reply = true;
                    return Some(*resp);
                }
            },
            HttpFilter::Router(_) => return None,
        }
    }
    None
}

/// The route's levels, for header mutations in Envoy's order.
struct Levels<'a> {
    table: &'a RouteConfig,
    vhost: &'a VirtualHost,
    route: &'a Route,
    weighted: Option<&'a WeightedTarget>,
}

impl Levels<'_> {
    /// Most specific first, so that the least specific level's overwrite wins — unless
    /// `most_specific_header_mutations_wins` reverses it.
    fn ordered<'s>(
        &'s self,
        pick: impl Fn(Level<'s>) -> &'s HeaderOps,
    ) -> [Option<&'s HeaderOps>; 4] {
        let mut v = [
            self.weighted.map(|w| pick(Level::Weighted(w))),
            Some(pick(Level::Route(self.route))),
            Some(pick(Level::VirtualHost(self.vhost))),
            Some(pick(Level::Table(self.table))),
        ];
        if self.table.most_specific_header_mutations_wins {
            v.reverse();
        }
        v
    }

    fn request_ops(
        &self,
        h: &mut HeaderMap,
        ctx: &ConnCtx,
        upstream: Option<std::net::SocketAddr>,
    ) {
        let levels = self.ordered(|l| l.request());
        let active = || levels.iter().flatten().filter(|o| !o.is_empty());
        if active().next().is_none() {
            return;
        }
        // `%REQ(...)%` reads the request as it was before this round of mutations.
        let before = active()
            .any(|o| o.reads_request_headers())
            .then(|| h.clone());
        let fc = format_ctx(ctx, upstream, before.as_ref());
        for ops in active() {
            ops.apply(h, &fc);
        }
    }

    fn response_ops(&self, h: &mut HeaderMap, ctx: &ConnCtx, req_headers: &HeaderMap) {
        let levels = self.ordered(|l| l.response());
        let fc = format_ctx(ctx, None, Some(req_headers));
        for ops in levels.iter().flatten().filter(|o| !o.is_empty()) {
            ops.apply(h, &fc);
        }
    }
}

enum Level<'a> {
    Weighted(&'a WeightedTarget),
    Route(&'a Route),
    VirtualHost(&'a VirtualHost),
    Table(&'a RouteConfig),
}

impl<'a> Level<'a> {
    fn request(self) -> &'a HeaderOps {
        match self {
            Level::Weighted(w) => &w.request_ops,
            Level::Route(r) => &r.request_ops,
            Level::VirtualHost(v) => &v.request_ops,
            Level::Table(t) => &t.request_ops,
        }
    }
    fn response(self) -> &'a HeaderOps {
        match self {
            Level::Weighted(w) => &w.response_ops,
            Level::Route(r) => &r.response_ops,
            Level::VirtualHost(v) => &v.response_ops,
            Level::Table(t) => &t.response_ops,
        }
    }
}

fn format_ctx<'a>(
    ctx: &ConnCtx,
    upstream: Option<std::net::SocketAddr>,
    headers: Option<&'a HeaderMap>,
) -> FormatContext<'a> {
    FormatContext {
        downstream_remote: ctx.remote,
        downstream_local: ctx.local,
        upstream,
        protocol: "HTTP/1.1",
        request_headers: headers,
    }
}

/// `normalize_path` as Envoy does it (RFC 3986: percent-encoded unreserved characters
/// decoded, dot segments removed) and, if asked, `merge_slashes`.
fn normalize(req: &mut Request<Incoming>, dots: bool, slashes: bool) {
    // `Uri` keeps no fragment, so path and query are all routing sees.
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let mut p = if dots {
        decode_unreserved(&path)
    } else {
        path.clone()
    };
    if slashes {
        let mut merged = String::with_capacity(p.len());
        for c in p.chars() {
            if c == '/' && merged.ends_with('/') {
                continue;
            }
            merged.push(c);
        }
        p = merged;
    }
    if dots {
        p = remove_dot_segments(&p);
    }
    if p != path {
        set_path(req.uri_mut(), &p, query.as_deref());
    }
}

/// `%41` → `A` for the unreserved characters (ALPHA, DIGIT, `-`, `.`, `_`, `~`); every
/// other escape, `%2F` included, stays as written.
fn decode_unreserved(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|c| (*c as char).to_digit(16)),
                b.get(i + 2).and_then(|c| (*c as char).to_digit(16)),
            )
        {
            let c = (h * 16 + l) as u8;
            if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                out.push(c as char);
            } else {
                out.push_str(&path[i..i + 3]);
            }
            i += 3;
            continue;
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

/// RFC 3986 section 5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing = false;
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => trailing = i == last,
            ".." => {
                out.pop();
                trailing = i == last;
            }
            s => {
                out.push(s);
                trailing = false;
            }
        }
    }
    let mut n = String::with_capacity(path.len());
    for s in &out {
        n.push('/');
        n.push_str(s);
    }
    if trailing || n.is_empty() {
        n.push('/');
    }
    n
}

fn set_path(uri: &mut Uri, path: &str, query: Option<&str>) {
    let pq = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    let mut parts = std::mem::take(uri).into_parts();
    parts.path_and_query = pq.parse().ok();
    if let Ok(u) = Uri::from_parts(parts) {
        *uri = u;
    }
}

fn location(
    r: &Redirect,
    req: &Request<Incoming>,
    path: &str,
    query: Option<&str>,
    route: &Route,
) -> String {
    let forwarded_proto = req
        .headers()
        .get(&forwarding::X_FORWARDED_PROTO)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("http");
    let scheme = r.scheme.as_deref().unwrap_or(forwarded_proto);
    let original_host = host_of(req).unwrap_or_default();
    let host = match &r.host {
        Some(h) => h.clone(),
        None => {
            // Envoy keeps the request's port unless the redirect changes it, or the scheme
            // changes and the port was that scheme's default.
            let bare = crate::model::route::strip_port(original_host);
            if bare.len() < original_host.len() {
                let port = &original_host[bare.len()..];
                let mut remove = r.port.is_some();
                if scheme != forwarded_proto {
                    remove |= forwarded_proto == "https" && port == ":443";
                    remove |= forwarded_proto == "http" && port == ":80";
                }
                if remove {
                    bare.to_string()
                } else {
                    original_host.to_string()
                }
            } else {
                original_host.to_string()
            }
        }
    };
    let port = match r.port {
        Some(p) => format!(":{p}"),
        None => String::new(),
    };
    let (new_path, new_query) = match &r.path {
        PathRedirect::Keep => (path.to_string(), query.map(str::to_string)),
        PathRedirect::Path(p) => match p.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (p.clone(), query.map(str::to_string)),
        },
        PathRedirect::Prefix(prefix) => {
            let len = route
                .matcher
                .matched_prefix_len()
                .unwrap_or(0)
                .min(path.len());
            (
                format!("{prefix}{}", &path[len..]),
                query.map(str::to_string),
            )
        }
        PathRedirect::Regex(sub) => (sub.apply(path), query.map(str::to_string)),
    };
    let query = if r.strip_query { None } else { new_query };
    match query {
        Some(q) => format!("{scheme}://{host}{port}{new_path}?{q}"),
        None => format!("{scheme}://{host}{port}{new_path}"),
    }
}

/// The `grpc-timeout` header (`10S`, `200m`, …) as a duration.
fn grpc_timeout(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(&GRPC_TIMEOUT)?.to_str().ok()?;
    let (num, unit) = v.split_at(v.len().checked_sub(1)?);
    // The gRPC spec allows at most eight digits, which also keeps the arithmetic in range.
    if num.is_empty() || num.len() > 8 {
        return None;
    }
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

fn pick_weighted(targets: &[WeightedTarget], total: u64) -> &WeightedTarget {
    let mut r = fastrand::u64(0..total);
    for t in targets {
        if r < u64::from(t.weight) {
            return t;
        }
        r -= u64::from(t.weight);
    }
    &targets[targets.len() - 1]
}

/// The endpoint a try goes to: a host of the cluster, or (ORIGINAL_DST) where the
/// downstream connection was headed.
struct Picked {
    addr: std::net::SocketAddr,
    host: Option<Arc<Host>>,
}

fn pick_host(
    cluster: &Cluster,
    ctx: &ConnCtx,
    avoid: Option<(&[std::net::SocketAddr], u32)>,
    hash: Option<u64>,
) -> Option<Picked> {
    if matches!(cluster.config.discovery, Discovery::OriginalDst) {
        return Some(Picked {
            addr: ctx.original_dst.unwrap_or(ctx.local),
            host: None,
        });
    }
    let set = cluster.endpoints.load();
    let (tried, extra) = avoid.unwrap_or((&[], 0));
    // Counted per pick from the priority the pick came from (Envoy counts a panic pick
    // even when other priorities are healthy); an empty pick still counts a panicking set.
    let Some((h, panic)) = set.pick_checked(tried, extra, hash) else {
        if set.in_panic() {
            cluster.stats.lb_healthy_panic.inc();
        }
        return None;
    };
    if panic {
        cluster.stats.lb_healthy_panic.inc();
    }
    Some(Picked {
        addr: h.addr,
        host: Some(h.clone()),
    })
}

/// The request head every try starts from when a route retries (each try adds its own
/// host-dependent headers, so each needs a copy).
struct Head {
    method: http::Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
}

impl Head {
    fn of(p: &http::request::Parts) -> Self {
        Head {
            method: p.method.clone(),
            uri: p.uri.clone(),
            version: p.version,
            headers: p.headers.clone(),
        }
    }

    fn parts(&self) -> http::request::Parts {
        let (mut p, ()) = Request::new(()).into_parts();
        p.method = self.method.clone();
        p.uri = self.uri.clone();
        p.version = self.version;
        p.headers = self.headers.clone();
        p
    }
}

static X_ENVOY_ATTEMPT_COUNT: HeaderName = HeaderName::from_static("x-envoy-attempt-count");
static X_ENVOY_OVERLOADED: HeaderName = HeaderName::from_static("x-envoy-overloaded");

#[allow(clippy::too_many_arguments)]
async fn forward(
    mut req: Request<Incoming>,
    ex: &mut Exchange<'_>,
    f: &Forward,
    mut levels: Levels<'_>,
    snapshot: &crate::config::snapshot::Snapshot,
    path: &str,
    query: Option<&str>,
    upgrade_kind: Option<String>,
) -> Response<ResponseBody> {
    let ctx = ex.ctx;
    let cluster_name: Option<&str> = match &f.target {
        Target::Cluster(c) => Some(c),
        Target::Header(h) => req.headers().get(h).and_then(|v| v.to_str().ok()),
        Target::Weighted { targets, total } => {
            let t = *levels
                .weighted
                .get_or_insert_with(|| pick_weighted(targets, *total));
            Some(&t.cluster)
        }
    };
    let Some(cluster) = cluster_name.and_then(|n| snapshot.clusters.get(n)).cloned() else {
        ctx.stats.no_cluster.inc();
        ex.flag = Some(Flag::NoClusterFound);
        // A local reply after the route was chosen: the route's response headers apply.
        let mut resp = reply(f.not_found_status, None, ex.grpc, ex.head);
        levels.response_ops(resp.headers_mut(), ctx, req.headers());
        return resp;
    };
    // The hashing balancers pick by the route's hash policy, read before any rewrite.
    let hashed = if cluster.config.balancer.is_hashing() && !f.hash_policy.is_empty() {
        hash_policy::hash(
            &f.hash_policy,
            &hash_policy::Request {
                headers: req.headers(),
                path: req.uri().path_and_query().map_or("/", |p| p.as_str()),
                remote: ctx.remote,
                local: ctx.local,
            },
        )
    } else {
        hash_policy::Hashed::default()
    };
    let Some(mut picked) = pick_host(&cluster, ctx, None, hashed.hash) else {
        return no_healthy_upstream(ex, &levels, &cluster, req.headers());
    };

    // Path rewrites.
    let new_path = if let Some(prefix) = &f.prefix_rewrite {
        let len = levels
            .route
            .matcher
            .matched_prefix_len()
            .unwrap_or(0)
            .min(path.len());
        Some(format!("{prefix}{}", &path[len..]))
    } else {
        f.regex_rewrite.as_ref().map(|sub| sub.apply(path))
    };
    if let Some(p) = new_path {
        if !ctx.hcm.router.suppress_envoy_headers
            && let Some(orig) = req.uri().path_and_query()
            && let Ok(v) = HeaderValue::from_str(orig.as_str())
        {
            req.headers_mut().insert(X_ENVOY_ORIGINAL_PATH.clone(), v);
        }
        set_path(req.uri_mut(), &p, query);
    }

    // Envoy's two timeout models: a route with `max_stream_duration` limits the whole
    // stream (the client's grpc-timeout may set that limit) and has no route timeout;
    // other routes have the route timeout (15 s unless set).
    let timeout = if f.max_stream_duration_set {
        None
    } else {
        f.timeout
    };
    let mut stream_limit = f.max_stream_duration.or(ctx.hcm.max_stream_duration);
    if let Some(max) = f.grpc_timeout_max
        && let Some(t) = grpc_timeout(req.headers())
    {
        let t = match max {
            Some(m) => t.min(m),
            None => t,
        };
        stream_limit = Some(t);
        req.headers_mut().insert(
            GRPC_TIMEOUT.clone(),
            HeaderValue::from_str(&format!("{}m", t.as_millis())).expect("digits"),
        );
    }
    // A per-try timeout no shorter than the route's is ignored, as Envoy ignores it.
    let per_try = f
        .retry
        .as_ref()
        .and_then(|p| p.per_try_timeout)
        .filter(|t| timeout.is_none_or(|g| *t < g));
    // Upgraded streams carry no body to send again, so they are never retried.
    let mut retry = match (&f.retry, &upgrade_kind) {
        (Some(p), None) => {
            let pseudo = Pseudo {
                method: req.method().as_str(),
                path: req.uri().path_and_query().map_or("/", |p| p.as_str()),
                authority: host_of(&req).unwrap_or_default(),
                scheme: "http",
            };
            RetryState::new(p, req.headers(), &pseudo)
        }
        _ => None,
    };
    if let Some(rs) = retry.as_mut() {
        rs.attempted(picked.addr);
    }

    let wire = cluster.wire(req.version());
    let mut downstream_upgrade = upgrade_kind.as_ref().map(|_| hyper::upgrade::on(&mut req));
    let activity = Arc::new(Activity::new(ex.start, req.body().is_end_stream()));
    let (parts, incoming) = req.into_parts();
    let buffer_limit = levels
        .route
        .buffer_limit
        .map_or(ctx.hcm.buffer_limit, |r| r.min(ctx.hcm.buffer_limit));
    // Envoy shadows neither upgrades nor CONNECT.
    let mut shadows = if f.mirrors.is_empty()
        || upgrade_kind.is_some()
        || parts.method == http::Method::CONNECT
    {
        Vec::new()
    } else {
        mirror::pick(&f.mirrors, &parts.headers, snapshot)
    };
    // A mirrored request's body is read whole first, so that every copy and try can send it.
    // Only a body of announced size within the buffer limit is read ahead: a streaming body
    // (a gRPC stream may wait for answers before it ends) must reach the upstream as it
    // comes, so such requests are not copied.
    if !incoming.is_end_stream()
        && incoming
            .size_hint()
            .exact()
            .is_none_or(|n| n > u64::from(buffer_limit))
        && !shadows.is_empty()
    {
        tracing::debug!("request body of unknown or large size: not mirrored");
        shadows.clear();
    }
    let mut buffered: Option<Bytes> = None;
    let incoming = if shadows.is_empty() || incoming.is_end_stream() {
        Some(incoming)
    } else {
        let limit = [
            ctx.hcm.request_timeout,
            f.idle_timeout.or(ctx.hcm.stream_idle_timeout),
        ]
        .into_iter()
        .flatten()
        .min();
        match mirror::read_body(incoming, buffer_limit as usize, limit).await {
            Ok(b) => {
                activity.finish();
                buffered = Some(b);
                None
            }
            Err(status) => {
                ex.close = true;
                return reply(status, None, ex.grpc, ex.head);
            }
        }
    };
    let (replay, mut incoming) = match (retry.as_ref(), incoming) {
        (Some(_), Some(incoming)) => (
            Some(Replay::new(
                incoming,
                buffer_limit as usize,
                activity.clone(),
            )),
            None,
        ),
        (_, incoming) => (None, incoming),
    };
    let head = retry.as_ref().map(|_| Head::of(&parts));
    let mut next_parts = Some(parts);
    let base = Deadlines {
        route: timeout.map(|t| Instant::now() + t),
        per_try: None,
        stream: stream_limit.map(|t| ex.start + t),
        request: ctx.hcm.request_timeout.map(|t| ex.start + t),
        idle: f.idle_timeout.or(ctx.hcm.stream_idle_timeout),
    };
    let started = Instant::now();
    let mut attempt: u32 = 1;
    let count_in_response = levels.vhost.attempt_count_in_response;
    if count_in_response {
        ex.attempts = Some(attempt);
    }
    loop {
        let mut p = match (next_parts.take(), &head) {
            (Some(p), _) => p,
            (None, Some(h)) => h.parts(),
            (None, None) => unreachable!("only retried requests make more than one try"),
        };
        let before_auto_rewrite = prepare_try(
            &mut p,
            ex,
            f,
            &levels,
            &picked,
            attempt,
            per_try.or(timeout),
            base.route,
            started,
        );
        let key = super::auto_sni::pool_key(
            cluster.config.auto_sni.as_ref(),
            picked.addr,
            &p.headers,
            &p.uri,
            before_auto_rewrite.as_ref(),
        );
        if !shadows.is_empty() {
            for shadow in shadows.drain(..) {
                mirror::spawn(shadow, &p, buffered.clone(), timeout);
            }
        }
        let body = match (&replay, incoming.take(), &buffered) {
            (Some(r), _, _) => Body::Replay(r.next_try()),
            (None, Some(i), _) => Body::Tracked(i, activity.clone()),
            (None, None, Some(b)) => Body::full(b.clone()),
            (None, None, None) => Body::Empty,
        };
        let upstream_req = match retarget(p, wire) {
            Ok(parts) => Request::from_parts(parts, body),
            Err(status) => return reply(status, None, ex.grpc, ex.head),
        };
        let deadlines = Deadlines {
            per_try: per_try.map(|t| Instant::now() + t),
            ..base
        };
        let outcome = {
            let attach = Attach {
                resources: &cluster.resources,
                stats: &cluster.stats,
                host: picked.host.as_ref(),
            };
            let pool = cluster.pool();
            let sent = async {
                match wire {
                    Wire::Http1 => pool.send_h1(key, upstream_req, &attach).await,
                    Wire::Http2 => pool.send_h2(key, upstream_req, &attach).await,
                }
            };
            let mut sent = std::pin::pin!(sent);
            loop {
                let wake = deadlines.next(&activity);
                tokio::select! {
                    r = &mut sent => break Ok(r),
                    _ = sleep_until_opt(wake) => {
                        if let Some(e) = deadlines.expired(&activity, Instant::now()) {
                            break Err(e);
                        }
                    }
                }
            }
        };
        let overflowed = || replay.as_ref().is_some_and(|r| r.overflowed());
        if let Some(h) = &picked.host {
            record_outlier(&cluster, h, &outcome, ex.grpc);
        }
        let retry_after = match outcome {
            Ok(Ok((resp, lease, active))) => {
                let decision = match retry.as_mut() {
                    Some(rs) => {
                        let would = rs.would_retry_headers(resp.status().as_u16(), resp.headers())
                            && !overflowed();
                        rs.decide(would, &cluster.resources, &cluster.stats)
                    }
                    None => Decision::No,
                };
                match decision {
                    Decision::Retry(delay) => {
                        // An answer read to its end leaves a reusable connection.
                        if resp.body().is_end_stream()
                            && let Some(lease) = lease
                        {
                            crate::upstream::pool::Pool::give_back(lease);
                        }
                        drop(active);
                        delay
                    }
                    other => {
                        match other {
                            Decision::Overflow => ex.flag = Some(Flag::UpstreamOverflow),
                            Decision::LimitExceeded => {
                                ex.flag = Some(Flag::UpstreamRetryLimitExceeded);
                            }
                            _ => {}
                        }
                        let up = Upstream {
                            lease,
                            active,
                            started,
                            deadlines,
                            request_done: activity.is_done(),
                            set_cookie: hashed.set_cookie,
                        };
                        return deliver(resp, up, ex, &levels, &cluster, &mut downstream_upgrade);
                    }
                }
            }
            Ok(Err(e)) => {
                let reason = e.reset_reason();
                let started_upstream = matches!(e, UpstreamError::Reset(_));
                match retry_reset(&mut retry, reason, started_upstream, overflowed(), &cluster) {
                    Some(delay) => delay,
                    None => return upstream_failure(ex, &levels, &cluster, &e, attempt),
                }
            }
            Err(Expired::PerTry) => {
                cluster.stats.upstream_rq_per_try_timeout.inc();
                match retry_reset(
                    &mut retry,
                    ResetReason::LocalReset,
                    true,
                    overflowed(),
                    &cluster,
                ) {
                    Some(delay) => delay,
                    None => return expired(Expired::PerTry, ex, &levels, &cluster, &activity),
                }
            }
            Err(e) => return expired(e, ex, &levels, &cluster, &activity),
        };
        if let Some(h) = &picked.host {
            h.rq_error.inc();
        }
        if let Err(e) = backoff(retry_after, &base, &activity).await {
            return expired(e, ex, &levels, &cluster, &activity);
        }
        attempt += 1;
        if count_in_response {
            ex.attempts = Some(attempt);
        }
        let avoid = retry.as_ref().and_then(|rs| rs.avoid());
        let Some(next) = pick_host(&cluster, ctx, avoid, hashed.hash) else {
            let headers = head.as_ref().map(|h| &h.headers);
            return no_healthy_upstream(
                ex,
                &levels,
                &cluster,
                headers.unwrap_or(&HeaderMap::new()),
            );
        };
        picked = next;
        if let Some(rs) = retry.as_mut() {
            rs.attempted(picked.addr);
        }
    }
}

/// How one try ended: an answer (with its connection and its claim on the cluster), an
/// upstream failure, or a timer.
type TryOutcome = Result<
    Result<
        (
            Response<Incoming>,
            Option<crate::upstream::pool::Lease>,
            ActiveRequest,
        ),
        UpstreamError,
    >,
    Expired,
>;

/// Charges a try's result to its host's outlier detection as Envoy's router does: the
/// status of response headers (for gRPC, the `grpc-status` they carry, as an HTTP status);
/// a reset or failed connection as a local-origin failure (after a connection that was
/// made); a route or per-try timeout awaiting headers. A request the circuit breakers
/// refused never reached the host, and the downstream's own timers say nothing about it.
fn record_outlier(cluster: &Cluster, host: &Arc<Host>, outcome: &TryOutcome, grpc: bool) {
    if cluster.config.outlier.is_none() {
        return;
    }
    match outcome {
        Ok(Ok((resp, ..))) => {
            cluster.record(host, Outcome::Connected);
            let status = match resp.headers().get("grpc-status") {
                Some(g) if grpc => grpc_to_http(g.as_bytes()),
                _ => resp.status().as_u16(),
            };
            cluster.record(host, Outcome::Status(status));
        }
        Ok(Err(UpstreamError::Overflow)) => {}
        Ok(Err(UpstreamError::Connect(_))) => cluster.record(host, Outcome::ConnectFailed),
        Ok(Err(UpstreamError::Reset(_))) => {
            cluster.record(host, Outcome::Connected);
            cluster.record(host, Outcome::ConnectFailed);
        }
        Err(Expired::Route | Expired::PerTry) => cluster.record(host, Outcome::Timeout),
        Err(_) => {}
    }
}

/// Envoy's `Grpc::Utility::grpcToHttpStatus` (an unknown or unreadable code is 500).
fn grpc_to_http(code: &[u8]) -> u16 {
    let code = std::str::from_utf8(code)
        .ok()
        .and_then(|c| c.trim().parse::<u32>().ok());
    match code {
        Some(0) => 200,
        Some(1) => 499,
        Some(3 | 9 | 11) => 400,
        Some(4) => 504,
        Some(5) => 404,
        Some(6 | 10) => 409,
        Some(7) => 403,
        Some(8) => 429,
        Some(12) => 501,
        Some(14) => 503,
        Some(16) => 401,
        _ => 500,
    }
}

/// The retry decision after a reset (or a per-try timeout): the back-off when the request
/// goes again.
fn retry_reset(
    retry: &mut Option<RetryState<'_>>,
    reason: ResetReason,
    started: bool,
    overflowed: bool,
    cluster: &Cluster,
) -> Option<Duration> {
    let rs = retry.as_mut()?;
    let would = rs.would_retry_reset(reason, started) && !overflowed;
    match rs.decide(would, &cluster.resources, &cluster.stats) {
        Decision::Retry(delay) => Some(delay),
        _ => None,
    }
}

/// Waits out a retry's back-off; the route, stream and request timeouts still run.
async fn backoff(
    delay: Duration,
    deadlines: &Deadlines,
    activity: &Activity,
) -> Result<(), Expired> {
    let until = Instant::now() + delay;
    loop {
        let wake = deadlines.next(activity).map_or(until, |w| w.min(until));
        tokio::time::sleep_until(wake).await;
        if let Some(e) = deadlines.expired(activity, Instant::now()) {
            return Err(e);
        }
        if Instant::now() >= until {
            return Ok(());
        }
    }
}

/// The headers one try adds to the request head: its attempt count, the time it has left,
/// a host rewrite (auto rewrites depend on the host picked), the route's header additions
/// (which may name the upstream address). Returns the host the request had before an
/// `auto_host_rewrite` replaced it, which is what `auto_sni` takes.
#[allow(clippy::too_many_arguments)]
fn prepare_try(
    p: &mut http::request::Parts,
    ex: &Exchange<'_>,
    f: &Forward,
    levels: &Levels<'_>,
    picked: &Picked,
    attempt: u32,
    expected: Option<Duration>,
    route_deadline: Option<Instant>,
    started: Instant,
) -> Option<HeaderValue> {
    let ctx = ex.ctx;
    if levels.vhost.attempt_count_in_request {
        p.headers
            .insert(X_ENVOY_ATTEMPT_COUNT.clone(), HeaderValue::from(attempt));
    }
    // The new host, and whether it is `auto_host_rewrite`'s (which `auto_sni` looks past).
    let (rewritten_host, auto_rewrite): (Option<HeaderValue>, bool) =
        match (&levels.weighted, &f.host_rewrite) {
            (
                Some(WeightedTarget {
                    host_rewrite: Some(h),
                    ..
                }),
                _,
            ) => (Some(h.clone()), false),
            (_, HostRewrite::Keep) => (None, false),
            (_, HostRewrite::Literal(h)) => (Some(h.clone()), false),
            (_, HostRewrite::Auto) => (
                picked
                    .host
                    .as_ref()
                    .and_then(|h| h.hostname.as_deref())
                    .and_then(|h| HeaderValue::from_str(h).ok()),
                true,
            ),
            (_, HostRewrite::Header(name)) => (p.headers.get(name).cloned(), false),
        };
    let mut before_auto_rewrite = None;
    if let Some(h) = rewritten_host {
        let orig = p.headers.get(header::HOST).cloned().or_else(|| {
            p.uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        if auto_rewrite {
            before_auto_rewrite = orig.clone();
        }
        if let Some(v) = orig {
            if f.append_x_forwarded_host {
                p.headers.append(X_FORWARDED_HOST.clone(), v.clone());
            }
            if !ctx.hcm.router.suppress_envoy_headers {
                p.headers.insert(X_ENVOY_ORIGINAL_HOST.clone(), v);
            }
        }
        p.headers.insert(header::HOST, h);
    }
    // What the upstream may take: a retry gets what is left of the route timeout.
    if let Some(t) = expected
        && !ctx.hcm.router.suppress_envoy_headers
    {
        let mut ms = t.as_millis() as u64;
        if attempt > 1
            && let Some(deadline) = route_deadline
        {
            let total = deadline.saturating_duration_since(started).as_millis() as u64;
            let elapsed = started.elapsed().as_millis() as u64;
            ms = if elapsed >= total {
                1
            } else {
                ms.min(total - elapsed)
            };
        }
        p.headers
            .insert(X_ENVOY_EXPECTED_TIMEOUT.clone(), HeaderValue::from(ms));
    }
    levels.request_ops(&mut p.headers, ctx, Some(picked.addr));
    before_auto_rewrite
}

/// What stays with a response from the upstream: its connection, its claim on the cluster,
/// and the timers that still run while its body streams.
struct Upstream {
    lease: Option<crate::upstream::pool::Lease>,
    active: ActiveRequest,
    started: Instant,
    deadlines: Deadlines,
    /// The whole request had been sent when the answer came.
    request_done: bool,
    /// A hash-policy cookie made up for this request.
    set_cookie: Option<HeaderValue>,
}

/// Hands the upstream's response downstream.
fn deliver(
    mut resp: Response<Incoming>,
    up: Upstream,
    ex: &mut Exchange<'_>,
    levels: &Levels<'_>,
    cluster: &Cluster,
    downstream_upgrade: &mut Option<hyper::upgrade::OnUpgrade>,
) -> Response<ResponseBody> {
    let ctx = ex.ctx;
    cluster.stats.count_status(resp.status().as_u16());
    cluster.stats.upstream_rq_completed.inc();
    let upstream_ms = up.started.elapsed().as_millis() as u64;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(down) = downstream_upgrade.take()
    {
        let upgraded = hyper::upgrade::on(&mut resp);
        upgrade::splice(down, upgraded, up.active);
        let (parts, _) = resp.into_parts();
        return Response::from_parts(parts, ResponseBody::new(Body::Empty));
    }
    let h = resp.headers_mut();
    forwarding::strip_hop_by_hop(h, false);
    // Envoy times only complete exchanges: an answer that came before the whole request
    // had been sent carries no service time.
    if !ctx.hcm.router.suppress_envoy_headers && up.request_done {
        h.insert(
            X_ENVOY_UPSTREAM_TIME.clone(),
            HeaderValue::from(upstream_ms),
        );
    }
    if let Some(n) = ex.attempts {
        h.insert(X_ENVOY_ATTEMPT_COUNT.clone(), HeaderValue::from(n));
    }
    if let Some(c) = up.set_cookie {
        h.append(header::SET_COOKIE, c);
    }
    levels.response_ops(resp.headers_mut(), ctx, &HeaderMap::new());
    let (parts, body) = resp.into_parts();
    let mut body = ResponseBody::new(Body::Incoming(body));
    body.lease = up.lease;
    body.active = Some(up.active);
    if !body.body.is_end_stream() {
        let deadline = [
            up.deadlines.route,
            up.deadlines.stream,
            up.deadlines.per_try,
        ]
        .into_iter()
        .flatten()
        .min();
        body.timer = BodyTimer::new(deadline, up.deadlines.idle);
    }
    Response::from_parts(parts, body)
}

/// Envoy's 503 when the cluster has no healthy host.
fn no_healthy_upstream(
    ex: &mut Exchange<'_>,
    levels: &Levels<'_>,
    cluster: &Cluster,
    request_headers: &HeaderMap,
) -> Response<ResponseBody> {
    cluster.stats.upstream_cx_none_healthy.inc();
    ex.flag = Some(Flag::NoHealthyUpstream);
    let mut resp = reply(
        StatusCode::SERVICE_UNAVAILABLE,
        Some(Bytes::from_static(b"no healthy upstream")),
        ex.grpc,
        ex.head,
    );
    if let Some(n) = ex.attempts {
        resp.headers_mut()
            .insert(X_ENVOY_ATTEMPT_COUNT.clone(), HeaderValue::from(n));
    }
    levels.response_ops(resp.headers_mut(), ex.ctx, request_headers);
    resp
}

/// Envoy's 503 for a try that failed before response headers (and was not retried).
fn upstream_failure(
    ex: &mut Exchange<'_>,
    levels: &Levels<'_>,
    cluster: &Cluster,
    e: &UpstreamError,
    attempt: u32,
) -> Response<ResponseBody> {
    let reason = e.reset_reason();
    ex.flag = Some(match reason {
        ResetReason::ConnectionTimeout | ResetReason::RemoteConnectionFailure => {
            Flag::UpstreamConnectionFailure
        }
        ResetReason::Overflow => Flag::UpstreamOverflow,
        ResetReason::RemoteReset | ResetReason::RemoteRefusedStreamReset => {
            cluster.stats.upstream_rq_rx_reset.inc();
            Flag::UpstreamRemoteReset
        }
        _ => {
            cluster.stats.upstream_rq_rx_reset.inc();
            Flag::UpstreamConnectionTermination
        }
    });
    let retried = if attempt > 1 {
        "retried and the latest "
    } else {
        ""
    };
    let body = format!(
        "upstream connect error or disconnect/reset before headers. {retried}reset reason: {}",
        reason.text()
    );
    let mut resp = failure(ex, levels, StatusCode::SERVICE_UNAVAILABLE, &body);
    if reason == ResetReason::Overflow && !ex.ctx.hcm.router.suppress_envoy_headers {
        resp.headers_mut()
            .insert(X_ENVOY_OVERLOADED.clone(), HeaderValue::from_static("true"));
    }
    resp
}

/// The answer when a timer ran out before response headers.
fn expired(
    e: Expired,
    ex: &mut Exchange<'_>,
    levels: &Levels<'_>,
    cluster: &Cluster,
    activity: &Activity,
) -> Response<ResponseBody> {
    let ctx = ex.ctx;
    match e {
        Expired::Route => {
            cluster.stats.upstream_rq_timeout.inc();
            ctx.stats.downstream_rq_timeout.inc();
            ex.flag = Some(Flag::UpstreamRequestTimeout);
            failure(
                ex,
                levels,
                StatusCode::GATEWAY_TIMEOUT,
                "upstream request timeout",
            )
        }
        Expired::PerTry => {
            ex.flag = Some(Flag::UpstreamRequestTimeout);
            failure(
                ex,
                levels,
                StatusCode::GATEWAY_TIMEOUT,
                "upstream request timeout",
            )
        }
        Expired::Request => {
            ctx.stats.downstream_rq_timeout.inc();
            ex.close = true;
            failure(ex, levels, StatusCode::REQUEST_TIMEOUT, "request timeout")
        }
        Expired::Idle => {
            ctx.stats.downstream_rq_idle_timeout.inc();
            ex.flag = Some(Flag::StreamIdleTimeout);
            ex.close |= !activity.is_done();
            failure(ex, levels, StatusCode::GATEWAY_TIMEOUT, "stream timeout")
        }
        Expired::Stream => {
            ctx.stats.downstream_rq_max_duration_reached.inc();
            ex.flag = Some(Flag::DurationTimeout);
            ex.close |= !activity.is_done();
            ex.grpc_status = Some(4);
            failure(
                ex,
                levels,
                StatusCode::GATEWAY_TIMEOUT,
                "downstream duration timeout",
            )
        }
    }
}

/// A failure reply after a route and cluster were chosen: route-level response headers apply.
fn failure(
    ex: &Exchange<'_>,
    levels: &Levels<'_>,
    status: StatusCode,
    body: &str,
) -> Response<ResponseBody> {
    let mut resp = super::local_reply::reply_with_grpc_status(
        status,
        Some(Bytes::copy_from_slice(body.as_bytes())),
        ex.grpc,
        ex.head,
        ex.grpc_status,
    );
    if let Some(n) = ex.attempts {
        resp.headers_mut()
            .insert(X_ENVOY_ATTEMPT_COUNT.clone(), HeaderValue::from(n));
    }
    levels.response_ops(resp.headers_mut(), ex.ctx, &HeaderMap::new());
    resp
}

/// Re-targets a request head for the upstream: origin-form for HTTP/1.1 (with `Host`),
/// absolute-form for HTTP/2 (the host becomes `:authority`).
pub(super) fn retarget(
    mut parts: http::request::Parts,
    wire: Wire,
) -> Result<http::request::Parts, StatusCode> {
    let pq = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    match wire {
        Wire::Http1 => {
            parts.version = Version::HTTP_11;
            // An HTTP/1.1 request already in origin form is sent as it came.
            if parts.uri.authority().is_some() || parts.uri.scheme().is_some() {
                if !parts.headers.contains_key(header::HOST)
                    && let Some(a) = parts.uri.authority()
                    && let Ok(h) = HeaderValue::from_str(a.as_str())
                {
                    parts.headers.insert(header::HOST, h);
                }
                parts.uri = Uri::from(pq);
            }
        }
        Wire::Http2 => {
            parts.version = Version::HTTP_2;
            let authority = match parts.headers.remove(header::HOST) {
                Some(h) => http::uri::Authority::try_from(h.as_bytes())
                    .map_err(|_| StatusCode::BAD_REQUEST)?,
                None => parts
                    .uri
                    .authority()
                    .cloned()
                    .unwrap_or_else(|| http::uri::Authority::from_static("localhost")),
            };
            parts.uri = Uri::builder()
                .scheme("http")
                .authority(authority)
                .path_and_query(pq)
                .build()
                .map_err(|_| StatusCode::BAD_REQUEST)?;
        }
    }
    Ok(parts)
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalize_as_rfc_3986_says() {
        assert_eq!(remove_dot_segments("/a/b/../c"), "/a/c");
        assert_eq!(remove_dot_segments("/a/./b/."), "/a/b/");
        assert_eq!(remove_dot_segments("/../x"), "/x");
        assert_eq!(remove_dot_segments("/a/.."), "/");
        assert_eq!(decode_unreserved("/%7euser/%41%2fb"), "/~user/A%2fb");
        assert_eq!(remove_dot_segments(&decode_unreserved("/a/%2e%2E/c")), "/c");
    }

    #[test]
    fn grpc_timeouts_parse_every_unit() {
        let mut h = HeaderMap::new();
        for (v, d) in [
            ("7S", Duration::from_secs(7)),
            ("250m", Duration::from_millis(250)),
            ("2M", Duration::from_secs(120)),
            ("5u", Duration::from_micros(5)),
        ] {
            h.insert(&GRPC_TIMEOUT, HeaderValue::from_static(v));
            assert_eq!(grpc_timeout(&h), Some(d), "{v}");
        }
        for bad in ["soon", "999999999H", "S"] {
            h.insert(&GRPC_TIMEOUT, HeaderValue::from_static(bad));
            assert_eq!(grpc_timeout(&h), None, "{bad}");
        }
    }
}
