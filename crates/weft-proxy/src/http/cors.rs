//! Running the CORS filter on a request, as Envoy's `cors_filter.cc` does: gather the
//! `CorsPolicy` of every route-table level (most specific first), answer an allowed
//! preflight (or a refused one, unless it is to be forwarded) with a local 200, and for any
//! other request from an allowed origin remember the origin so the response can carry
//! `access-control-allow-origin` and friends.

use super::body::{Body, ResponseBody};
use super::fault::Place;
use crate::model::cors::CorsPolicy;
use crate::model::hcm::CorsFilter;
use crate::model::route_action::Action;
use crate::stats_struct;
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

stats_struct!(
    /// `http.<stat_prefix>.cors.*`, named as Envoy names them.
    CorsStats {
        counters: [origin_valid, origin_invalid],
        gauges: [],
    }
);

static ALLOW_PRIVATE_NETWORK: HeaderName =
    HeaderName::from_static("access-control-allow-private-network");
static REQUEST_PRIVATE_NETWORK: HeaderName =
    HeaderName::from_static("access-control-request-private-network");

/// The policies that apply, most specific level first (route, virtual host, route table).
struct Policies<'a>([Option<&'a CorsPolicy>; 3]);

impl<'a> Policies<'a> {
    fn of(f: &CorsFilter, place: &Place<'a>) -> Self {
        Policies([
            place
                .route
                .and_then(|r| r.per_filter.cors(&f.name))
                .map(|p| &**p),
            place
                .vhost
                .and_then(|v| v.per_filter.cors(&f.name))
                .map(|p| &**p),
            place
                .table
                .and_then(|t| t.per_filter.cors(&f.name))
                .map(|p| &**p),
        ])
    }

    fn iter(&self) -> impl Iterator<Item = &'a CorsPolicy> + '_ {
        self.0.iter().flatten().copied()
    }

    /// The most specific level decides whether the filter is on.
    fn first(&self) -> Option<&'a CorsPolicy> {
        self.iter().next()
    }

    fn pick<T>(&self, f: impl Fn(&'a CorsPolicy) -> Option<T>) -> Option<T> {
        self.iter().find_map(f)
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        let Some(p) = self.iter().find(|p| !p.allow_origins.is_empty()) else {
            return false;
        };
        p.allow_origins
            .iter()
            .any(|m| m.matches("*") || m.matches(origin))
    }

    fn allow_credentials(&self) -> bool {
        self.pick(|p| p.allow_credentials).unwrap_or(false)
    }
}

/// What the filter does to the response of a request it let through.
#[derive(Debug, Clone, PartialEq)]
pub struct Latched {
    origin: HeaderValue,
    credentials: bool,
    expose: Option<HeaderValue>,
}

impl Latched {
    /// Envoy's `encodeHeaders`: every response of the stream, the upstream's or a later
    /// local reply, gets these.
    pub fn apply(&self, h: &mut HeaderMap) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, self.origin.clone());
        if self.credentials {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(e) = &self.expose {
            h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, e.clone());
        }
    }
}

pub enum Outcome {
    /// Go on; `Some` when the response is to carry the CORS headers.
    Continue(Option<Latched>),
    /// The preflight's answer; `Some` when it too is to carry the CORS headers (Envoy's
    /// filter sees its own answer on the way out).
    Reply(Box<Response<ResponseBody>>, Option<Latched>),
}

/// Whether the filter could act on this request: some level has a policy and the request
/// names an origin. Cheap, so requests without CORS pay nothing more.
pub fn concerns(f: &CorsFilter, place: &Place<'_>, headers: &HeaderMap) -> bool {
    // Direct responses and redirects have no route entry, and Envoy's filter skips them.
    place
        .route
        .is_some_and(|r| matches!(r.action, Action::Forward(_)))
        && headers.get(header::ORIGIN).is_some_and(|o| !o.is_empty())
        && Policies::of(f, place).first().is_some()
}

pub fn run(
    f: &CorsFilter,
    stats: Option<&CorsStats>,
    place: &Place<'_>,
    method: &str,
    headers: &HeaderMap,
) -> Outcome {
    decide(&Policies::of(f, place), stats, method, headers)
}

fn decide(
    policies: &Policies<'_>,
    stats: Option<&CorsStats>,
    method: &str,
    headers: &HeaderMap,
) -> Outcome {
    let Some(first) = policies.first() else {
        return Outcome::Continue(None);
    };
    let enabled = first.enabled();
    if !enabled && !first.shadow_enabled() {
        return Outcome::Continue(None);
    }
    let Some(origin) = headers.get(header::ORIGIN).filter(|o| !o.is_empty()) else {
        return Outcome::Continue(None);
    };
    // An origin that is not text matches nothing (Envoy compares the raw bytes, which no
    // configured matcher can equal unless it is "*").
    let allowed = policies.origin_allowed(origin.to_str().unwrap_or("\u{fffd}"));
    if let Some(s) = stats {
        if allowed {
            s.origin_valid.inc();
        } else {
            s.origin_invalid.inc();
        }
    }
    if !enabled {
        return Outcome::Continue(None);
    }
    let latched = allowed.then(|| Latched {
        origin: origin.clone(),
        credentials: policies.allow_credentials(),
        expose: policies.pick(|p| p.expose_headers.clone()),
    });
    let request_method = headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .filter(|m| !m.is_empty());
    let (true, Some(request_method)) = (method == "OPTIONS", request_method) else {
        return Outcome::Continue(latched);
    };
    let forward = policies
        .pick(|p| p.forward_not_matching_preflights)
        .unwrap_or(true);
    if !allowed && forward {
        return Outcome::Continue(None);
    }
    let resp = preflight(policies, allowed.then_some(origin), request_method, headers);
    Outcome::Reply(Box::new(resp), latched)
}

fn preflight(
    policies: &Policies<'_>,
    origin: Option<&HeaderValue>,
    request_method: &HeaderValue,
    headers: &HeaderMap,
) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::new(Body::Empty));
    let h = resp.headers_mut();
    if let Some(o) = origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o.clone());
    }
    if policies.allow_credentials() {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    if let Some(m) = policies.pick(|p| p.allow_methods.clone()) {
        let v = if m == "*" { request_method.clone() } else { m };
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
    }
    if let Some(a) = policies.pick(|p| p.allow_headers.clone()) {
        // "*" reflects what the preflight asks for (nothing, when it asks for nothing).
        let v = if a == "*" {
            headers
                .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
                .cloned()
                .unwrap_or_else(|| HeaderValue::from_static(""))
        } else {
            a
        };
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
    }
    if let Some(m) = policies.pick(|p| p.max_age.clone()) {
        h.insert(header::ACCESS_CONTROL_MAX_AGE, m);
    }
    if policies.pick(|p| p.allow_private_network_access) == Some(true)
        && headers
            .get(&REQUEST_PRIVATE_NETWORK)
            .is_some_and(|v| v == "true")
    {
        h.insert(
            ALLOW_PRIVATE_NETWORK.clone(),
            HeaderValue::from_static("true"),
        );
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    *resp.status_mut() = StatusCode::OK;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::matcher::StringMatcher;

    fn policy() -> CorsPolicy {
        CorsPolicy {
            allow_origins: vec![StringMatcher::exact("https://ok.example")],
            allow_methods: Some(HeaderValue::from_static("GET, PUT")),
            allow_headers: Some(HeaderValue::from_static("*")),
            max_age: Some(HeaderValue::from_static("600")),
            expose_headers: Some(HeaderValue::from_static("x-a")),
            allow_credentials: Some(true),
            ..Default::default()
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn decide(levels: [Option<&CorsPolicy>; 3], method: &str, h: &HeaderMap) -> Outcome {
        let stats = CorsStats::default();
        let out = super::decide(&Policies(levels), Some(&stats), method, h);
        assert_eq!(stats.origin_valid.get() + stats.origin_invalid.get(), 1);
        out
    }

    #[test]
    fn allowed_preflights_are_answered_with_the_policy() {
        let p = policy();
        let h = headers(&[
            ("origin", "https://ok.example"),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "x-b"),
        ]);
        let Outcome::Reply(r, _) = decide([Some(&p), None, None], "OPTIONS", &h) else {
            panic!("not answered");
        };
        let g = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_string());
        assert_eq!(r.status(), 200);
        assert_eq!(
            g("access-control-allow-origin").unwrap(),
            "https://ok.example"
        );
        assert_eq!(g("access-control-allow-methods").unwrap(), "GET, PUT");
        assert_eq!(g("access-control-allow-headers").unwrap(), "x-b");
        assert_eq!(g("access-control-max-age").unwrap(), "600");
        assert_eq!(g("access-control-allow-credentials").unwrap(), "true");
        // The filter's response side adds these on the way out.
        assert_eq!(g("access-control-expose-headers"), None);
    }

    #[test]
    fn refused_preflights_are_forwarded_unless_told_otherwise() {
        let mut p = policy();
        let h = headers(&[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "PUT"),
        ]);
        assert!(matches!(
            decide([Some(&p), None, None], "OPTIONS", &h),
            Outcome::Continue(None)
        ));
        p.forward_not_matching_preflights = Some(false);
        let Outcome::Reply(r, _) = decide([Some(&p), None, None], "OPTIONS", &h) else {
            panic!("not answered");
        };
        assert!(r.headers().get("access-control-allow-origin").is_none());
        assert_eq!(r.headers()["access-control-allow-methods"], "GET, PUT");
    }

    #[test]
    fn fields_come_from_the_most_specific_level_that_sets_them() {
        let route = CorsPolicy {
            allow_origins: vec![],
            allow_methods: Some(HeaderValue::from_static("POST")),
            allow_credentials: Some(false),
            ..Default::default()
        };
        let vhost = policy();
        let h = headers(&[
            ("origin", "https://ok.example"),
            ("access-control-request-method", "POST"),
        ]);
        let Outcome::Reply(r, _) = decide([Some(&route), Some(&vhost), None], "OPTIONS", &h) else {
            panic!("not answered");
        };
        assert_eq!(r.headers()["access-control-allow-methods"], "POST");
        assert!(
            r.headers()
                .get("access-control-allow-credentials")
                .is_none()
        );
        assert_eq!(
            r.headers()["access-control-allow-origin"],
            "https://ok.example"
        );
    }

    #[test]
    fn actual_requests_latch_the_origin_and_star_matches_all() {
        let p = CorsPolicy {
            allow_origins: vec![StringMatcher::exact("*")],
            ..policy()
        };
        let h = headers(&[("origin", "https://any.example")]);
        let Outcome::Continue(Some(l)) = decide([None, Some(&p), None], "GET", &h) else {
            panic!("not latched");
        };
        let mut out = HeaderMap::new();
        l.apply(&mut out);
        assert_eq!(out["access-control-allow-origin"], "https://any.example");
        assert_eq!(out["access-control-allow-credentials"], "true");
        assert_eq!(out["access-control-expose-headers"], "x-a");
    }
}
