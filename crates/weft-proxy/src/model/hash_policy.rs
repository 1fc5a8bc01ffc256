//! A route's `hash_policy`: what a request is hashed by for the RING_HASH and MAGLEV
//! balancers (a header, a cookie, the client's IP, a query parameter), combined the way
//! Envoy combines them, so the same request picks the same host on both proxies. A cookie
//! policy with a `ttl` makes one up when the request has none, as Envoy does, and the
//! answer sets it.

use super::{ConvertError, Result, duration};
use crate::upstream::xxhash::xxh64;
use envoy_types::pb::envoy::config::route::v3::route_action::{
    HashPolicy as PbHashPolicy, hash_policy::PolicySpecifier,
};
use http::{HeaderMap, HeaderName, HeaderValue, header};
use std::net::SocketAddr;
use weft_yaml::FieldPath;

#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    Header(HeaderName),
    /// `:authority` (the Host header here).
    Authority,
    Cookie {
        name: String,
        path: String,
        /// Set: a request without the cookie gets one made up (and `Set-Cookie` for it).
        ttl: Option<u64>,
        attributes: Vec<(String, String)>,
    },
    SourceIp,
    QueryParameter(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct HashPolicy {
    pub method: Method,
    /// Once a hash exists after this policy, the rest are skipped.
    pub terminal: bool,
}

impl HashPolicy {
    pub fn new(p: &PbHashPolicy, path: &FieldPath) -> Result<Option<Self>> {
        let method = match &p.policy_specifier {
            Some(PolicySpecifier::Header(h)) => {
                let hp = path.field("header");
                if h.regex_rewrite.is_some() {
                    return Err(ConvertError::new(
                        &hp.field("regex_rewrite"),
                        "is not supported by weft-proxy",
                    ));
                }
                let name = h.header_name.to_ascii_lowercase();
                if name == ":authority" || name == "host" {
                    Method::Authority
                } else {
                    Method::Header(HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                        ConvertError::new(
                            &hp.field("header_name"),
                            format!("`{}` is not a header weft-proxy can hash", h.header_name),
                        )
                    })?)
                }
            }
            Some(PolicySpecifier::Cookie(c)) => {
                let cp = path.field("cookie");
                if c.name.is_empty() {
                    return Err(ConvertError::new(&cp.field("name"), "must not be empty"));
                }
                Method::Cookie {
                    name: c.name.clone(),
                    path: c.path.clone(),
                    ttl: c
                        .ttl
                        .as_ref()
                        .map(|t| duration(t, &cp.field("ttl")).map(|d| d.as_secs()))
                        .transpose()?,
                    attributes: c
                        .attributes
                        .iter()
                        .map(|a| (a.name.clone(), a.value.clone()))
                        .collect(),
                }
            }
            // Envoy adds no method when source_ip is false.
            Some(PolicySpecifier::ConnectionProperties(c)) if !c.source_ip => return Ok(None),
            Some(PolicySpecifier::ConnectionProperties(_)) => Method::SourceIp,
            Some(PolicySpecifier::QueryParameter(q)) => {
                if q.name.is_empty() {
                    return Err(ConvertError::new(
                        &path.field("query_parameter").field("name"),
                        "must not be empty",
                    ));
                }
                Method::QueryParameter(q.name.clone())
            }
            Some(PolicySpecifier::FilterState(_)) => {
                return Err(ConvertError::new(
                    &path.field("filter_state"),
                    "filter state hashing is not supported by weft-proxy",
                ));
            }
            None => {
                return Err(ConvertError::new(
                    path,
                    "one of header, cookie, connection_properties or query_parameter is required",
                ));
            }
        };
        Ok(Some(HashPolicy {
            method,
            terminal: p.terminal,
        }))
    }
}

/// What a request offers to hash.
pub struct Request<'a> {
    pub headers: &'a HeaderMap,
    /// Path and query as received.
    pub path: &'a str,
    pub remote: SocketAddr,
    pub local: SocketAddr,
}

/// A request's hash, and the `Set-Cookie` value for a cookie made up on the way.
#[derive(Debug, Default, PartialEq)]
pub struct Hashed {
    pub hash: Option<u64>,
    pub set_cookie: Option<HeaderValue>,
}

/// Envoy's `HashPolicyImpl::generateHash`: each policy's hash folded into the previous
/// one rotated left by one bit (so two equal policies do not cancel out).
pub fn hash(policies: &[HashPolicy], req: &Request<'_>) -> Hashed {
    let mut out = Hashed::default();
    for p in policies {
        if let Some(new) = one(&p.method, req, &mut out.set_cookie) {
            let old = out.hash.map_or(0, |h| h.rotate_left(1));
            out.hash = Some(old ^ new);
        }
        if p.terminal && out.hash.is_some() {
            break;
        }
    }
    out
}

fn one(m: &Method, req: &Request<'_>, set_cookie: &mut Option<HeaderValue>) -> Option<u64> {
    match m {
        Method::Header(name) => {
            let mut values: Vec<&[u8]> = req
                .headers
                .get_all(name)
                .iter()
                .map(|v| v.as_bytes())
                .collect();
            if values.is_empty() {
                return None;
            }
            // The same hash whatever order repeated headers came in.
            values.sort();
            Some(xxh64(&values.concat(), 0))
        }
        Method::Authority => req
            .headers
            .get(header::HOST)
            .map(|v| xxh64(v.as_bytes(), 0)),
        Method::Cookie {
            name,
            path,
            ttl,
            attributes,
        } => {
            let value = cookie(req.headers, name);
            match (value, ttl) {
                (Some(v), _) if !v.is_empty() => Some(xxh64(v.as_bytes(), 0)),
                (_, Some(ttl)) => {
                    // What Envoy makes up: the hash of the connection's two ends, in hex.
                    let made = format!(
                        "{:016x}",
                        xxh64(format!("{}{}", req.remote, req.local).as_bytes(), 0)
                    );
                    *set_cookie = HeaderValue::from_str(&set_cookie_value(
                        name, &made, path, *ttl, attributes,
                    ))
                    .ok();
                    Some(xxh64(made.as_bytes(), 0))
                }
                _ => None,
            }
        }
        Method::SourceIp => Some(xxh64(req.remote.ip().to_string().as_bytes(), 0)),
        Method::QueryParameter(name) => {
            let query = req.path.split_once('?')?.1;
            let query = query.split_once('#').map_or(query, |(q, _)| q);
            query
                .split('&')
                .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
                .find(|(k, _)| k == name)
                .map(|(_, v)| xxh64(v.as_bytes(), 0))
        }
    }
}

/// The first `name` cookie of the request's `cookie` headers, unquoted (Envoy's
/// `parseCookieValue`).
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    for h in headers.get_all(header::COOKIE) {
        let Ok(h) = h.to_str() else { continue };
        for piece in h.split(';') {
            let Some(eq) = piece.find('=') else { continue };
            let start = piece.find(|c| c != ' ').unwrap_or(0).min(eq);
            if &piece[start..eq] != name {
                continue;
            }
            let v = &piece[eq + 1..];
            let v = if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
                &v[1..v.len() - 1]
            } else {
                v
            };
            return Some(v.to_string());
        }
    }
    None
}

/// Envoy's `makeSetCookieValue` (always HttpOnly).
fn set_cookie_value(
    name: &str,
    value: &str,
    path: &str,
    max_age: u64,
    attributes: &[(String, String)],
) -> String {
    let mut out = format!("{name}=\"{value}\"");
    if max_age != 0 {
        out.push_str(&format!("; Max-Age={max_age}"));
    }
    if !path.is_empty() {
        out.push_str(&format!("; Path={path}"));
    }
    for (k, v) in attributes {
        if v.is_empty() {
            out.push_str(&format!("; {k}"));
        } else {
            out.push_str(&format!("; {k}={v}"));
        }
    }
    out.push_str("; HttpOnly");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(headers: &'a HeaderMap, path: &'a str) -> Request<'a> {
        Request {
            headers,
            path,
            remote: "10.0.0.1:5555".parse().expect("addr"),
            local: "10.0.0.2:80".parse().expect("addr"),
        }
    }

    fn policy(method: Method, terminal: bool) -> HashPolicy {
        HashPolicy { method, terminal }
    }

    #[test]
    fn conversion_keeps_what_envoy_uses_and_names_what_it_refuses() {
        use envoy_types::pb::envoy::config::route::v3::route_action::hash_policy::{
            ConnectionProperties, FilterState, Header,
        };
        use envoy_types::pb::envoy::r#type::matcher::v3::RegexMatchAndSubstitute;
        let pb = |spec| PbHashPolicy {
            policy_specifier: Some(spec),
            terminal: true,
        };
        let root = FieldPath::root();
        let p = HashPolicy::new(
            &pb(PolicySpecifier::Header(Header {
                header_name: "X-User".into(),
                regex_rewrite: None,
            })),
            &root,
        )
        .expect("header")
        .expect("a method");
        assert_eq!(p.method, Method::Header(HeaderName::from_static("x-user")));
        assert!(p.terminal);
        // source_ip: false adds nothing, as in Envoy.
        let none = HashPolicy::new(
            &pb(PolicySpecifier::ConnectionProperties(
                ConnectionProperties { source_ip: false },
            )),
            &root,
        )
        .expect("converts");
        assert_eq!(none, None);
        let e = HashPolicy::new(
            &pb(PolicySpecifier::FilterState(FilterState {
                key: "k".into(),
            })),
            &root,
        )
        .expect_err("filter state");
        assert!(e.to_string().contains("filter_state"), "{e}");
        let e = HashPolicy::new(
            &pb(PolicySpecifier::Header(Header {
                header_name: "x".into(),
                regex_rewrite: Some(RegexMatchAndSubstitute::default()),
            })),
            &root,
        )
        .expect_err("regex rewrite");
        assert!(e.to_string().contains("regex_rewrite"), "{e}");
    }

    #[test]
    fn header_values_hash_in_sorted_order() {
        let mut h = HeaderMap::new();
        h.append("x-user", HeaderValue::from_static("b"));
        h.append("x-user", HeaderValue::from_static("a"));
        let p = [policy(
            Method::Header(HeaderName::from_static("x-user")),
            false,
        )];
        assert_eq!(hash(&p, &req(&h, "/")).hash, Some(xxh64(b"ab", 0)));
        assert_eq!(hash(&p, &req(&HeaderMap::new(), "/")).hash, None);
    }

    #[test]
    fn policies_fold_with_a_rotation_and_terminal_stops() {
        let mut h = HeaderMap::new();
        h.insert("x-a", HeaderValue::from_static("1"));
        let a = || policy(Method::Header(HeaderName::from_static("x-a")), false);
        let ip = policy(Method::SourceIp, false);
        let both = hash(&[a(), ip.clone()], &req(&h, "/")).hash;
        let expected = xxh64(b"1", 0).rotate_left(1) ^ xxh64(b"10.0.0.1", 0);
        assert_eq!(both, Some(expected));
        let mut terminal = a();
        terminal.terminal = true;
        assert_eq!(
            hash(&[terminal, ip], &req(&h, "/")).hash,
            Some(xxh64(b"1", 0))
        );
    }

    #[test]
    fn query_parameters_and_cookies_are_read_like_envoy() {
        let q = [policy(Method::QueryParameter("user".into()), false)];
        let h = HeaderMap::new();
        assert_eq!(
            hash(&q, &req(&h, "/p?x=1&user=ann&user=bob")).hash,
            Some(xxh64(b"ann", 0))
        );
        assert_eq!(hash(&q, &req(&h, "/p?user")).hash, Some(xxh64(b"", 0)));
        assert_eq!(hash(&q, &req(&h, "/p")).hash, None);

        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; session=\"xyz\""),
        );
        let c = |ttl| {
            [policy(
                Method::Cookie {
                    name: "session".into(),
                    path: "/".into(),
                    ttl,
                    attributes: Vec::new(),
                },
                false,
            )]
        };
        let got = hash(&c(None), &req(&h, "/"));
        assert_eq!(got.hash, Some(xxh64(b"xyz", 0)));
        assert_eq!(got.set_cookie, None);
        let none = HeaderMap::new();
        assert_eq!(hash(&c(None), &req(&none, "/")).hash, None);
        let made = hash(&c(Some(60)), &req(&none, "/"));
        let value = format!("{:016x}", xxh64(b"10.0.0.1:555510.0.0.2:80", 0));
        assert_eq!(made.hash, Some(xxh64(value.as_bytes(), 0)));
        assert_eq!(
            made.set_cookie.expect("made up").to_str().expect("ascii"),
            format!("session=\"{value}\"; Max-Age=60; Path=/; HttpOnly")
        );
    }
}
