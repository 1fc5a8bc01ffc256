//! Route tables built from a small structured description (virtual hosts with exact,
//! `*suffix`, `prefix*` and `*` domains, routes matching on path, headers and query), then
//! request heads run through virtual host and route selection as the router does. Small
//! alphabets make domains, paths and values collide often, which is where matching goes
//! wrong. Selection must never panic, and must agree with a naive model of Envoy's rules:
//! the virtual host is the one a linear scan of every domain would pick, an exact domain
//! wins for its own host, and a route whose only condition is its path always takes a
//! request with that path unless an earlier route did.
#![no_main]
// Envoy still accepts the deprecated `exact_match`-style header specifiers, so they are fuzzed.
#![allow(deprecated)]

use arbitrary::Arbitrary;
use envoy_types::pb::envoy::config::route::v3::{
    DirectResponseAction, HeaderMatcher, QueryParameterMatcher, Route, RouteConfiguration,
    RouteMatch, VirtualHost, header_matcher::HeaderMatchSpecifier,
    query_parameter_matcher::QueryParameterMatchSpecifier, route::Action,
    route_match::PathSpecifier,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    RegexMatcher, StringMatcher, string_matcher::MatchPattern,
};
use envoy_types::pb::envoy::r#type::v3::Int64Range;
use envoy_types::pb::google::protobuf::BoolValue;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use weft_proxy::model::matcher::Pseudo;
use weft_proxy::model::route::{RequestView, RouteConfig};
use weft_proxy::model::support::check_message;

const HOST_CHARS: &[u8] = b"ab.-1";
const PATH_CHARS: &[u8] = b"/aB.-%";
const VALUE_CHARS: &[u8] = b"aAb1-,";
const QUERY_CHARS: &[u8] = b"qra=&1";
const REGEX_TOKENS: &[&str] = &[
    "a", "b", "/", ".", "*", "+", "?", "|", "(", ")", "[a-z]", "\\d", "^", "$", "{2}", "(?i)",
    "[^/]", "\\", "B",
];
const HEADER_NAMES: &[&str] = &[
    "x-a",
    "x-b",
    "X-A",
    ":method",
    ":path",
    ":authority",
    "host",
    ":scheme",
    "bad name",
];
const REQUEST_HEADERS: &[&str] = &["x-a", "x-b", "content-type", "host"];
const QUERY_NAMES: &[&str] = &["q", "r", "Q", ""];

/// Bytes mapped onto an alphabet, at most 6 long.
#[derive(Arbitrary, Debug)]
struct Word(Vec<u8>);

impl Word {
    fn text(&self, alphabet: &[u8]) -> String {
        self.0
            .iter()
            .take(6)
            .map(|b| alphabet[*b as usize % alphabet.len()] as char)
            .collect()
    }
}

#[derive(Arbitrary, Debug)]
enum Domain {
    Any,
    Exact(Word, Option<u8>),
    Suffix(Word, Option<u8>),
    Prefix(Word, Option<u8>),
    Upper(Word),
}

fn with_port(w: &Word, port: &Option<u8>) -> String {
    let mut s = w.text(HOST_CHARS);
    if let Some(p) = port {
        s.push_str(&format!(":{}", p % 3 + 79));
    }
    s
}

impl Domain {
    fn text(&self) -> String {
        match self {
            Domain::Any => "*".into(),
            Domain::Exact(w, p) => with_port(w, p),
            Domain::Suffix(w, p) => format!("*{}", with_port(w, p)),
            Domain::Prefix(w, p) => format!("{}*", w.text(HOST_CHARS) + &port_text(p)),
            Domain::Upper(w) => w.text(HOST_CHARS).to_ascii_uppercase(),
        }
    }
}

/// A virtual host's domains; one without any (which the converter rejects, making the whole
/// table useless for matching) gets a name of its own instead.
fn domains(v: &VhostDesc, i: usize) -> Vec<String> {
    let mut out: Vec<String> = v.domains.iter().take(3).map(Domain::text).collect();
    if out.is_empty() {
        out.push(format!("v{i}.only"));
    }
    out
}

fn port_text(p: &Option<u8>) -> String {
    p.map(|p| format!(":{}", p % 3 + 79)).unwrap_or_default()
}

#[derive(Arbitrary, Debug)]
enum PathDesc {
    Prefix(Word),
    Exact(Word),
    Regex(Vec<u8>),
    SeparatedPrefix(Word),
    Slash,
}

#[derive(Arbitrary, Debug)]
enum ValueKind {
    Exact,
    Prefix,
    Suffix,
    Contains,
    Regex,
}

#[derive(Arbitrary, Debug)]
struct StringDesc {
    kind: ValueKind,
    value: Word,
    ignore_case: bool,
}

impl StringDesc {
    fn matcher(&self) -> StringMatcher {
        let v = self.value.text(VALUE_CHARS);
        let pattern = match self.kind {
            ValueKind::Exact => MatchPattern::Exact(v),
            ValueKind::Prefix => MatchPattern::Prefix(v),
            ValueKind::Suffix => MatchPattern::Suffix(v),
            ValueKind::Contains => MatchPattern::Contains(v),
            ValueKind::Regex => MatchPattern::SafeRegex(regex(&v)),
        };
        StringMatcher {
            match_pattern: Some(pattern),
            ignore_case: self.ignore_case,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum HeaderSpec {
    Exact(Word),
    Prefix(Word),
    Suffix(Word),
    Contains(Word),
    Regex(Vec<u8>),
    String(StringDesc),
    Range(i8, i8),
    Present(bool),
    Unset,
}

#[derive(Arbitrary, Debug)]
struct HeaderDesc {
    name: u8,
    spec: HeaderSpec,
    invert: bool,
    missing_as_empty: bool,
}

#[derive(Arbitrary, Debug)]
enum QuerySpec {
    String(StringDesc),
    Present(bool),
    Unset,
}

#[derive(Arbitrary, Debug)]
struct QueryDesc {
    name: u8,
    spec: QuerySpec,
}

#[derive(Arbitrary, Debug)]
struct RouteDesc {
    path: PathDesc,
    case_sensitive: Option<bool>,
    headers: Vec<HeaderDesc>,
    query: Vec<QueryDesc>,
    grpc: bool,
}

#[derive(Arbitrary, Debug)]
struct VhostDesc {
    domains: Vec<Domain>,
    routes: Vec<RouteDesc>,
}

#[derive(Arbitrary, Debug)]
struct RequestDesc {
    host: Word,
    host_port: Option<u8>,
    host_upper: bool,
    path: Word,
    query: Option<Word>,
    post: bool,
    headers: Vec<(u8, Word)>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    vhosts: Vec<VhostDesc>,
    ignore_port: bool,
    requests: Vec<RequestDesc>,
}

fn regex(text: &str) -> RegexMatcher {
    RegexMatcher {
        regex: text.to_string(),
        ..Default::default()
    }
}

fn regex_from(tokens: &[u8]) -> RegexMatcher {
    let text: String = tokens
        .iter()
        .take(8)
        .map(|t| REGEX_TOKENS[*t as usize % REGEX_TOKENS.len()])
        .collect();
    regex(&text)
}

fn pick<'a>(list: &[&'a str], i: u8) -> &'a str {
    list[i as usize % list.len()]
}

impl RouteDesc {
    fn build(&self, name: String) -> Route {
        let path = match &self.path {
            PathDesc::Prefix(w) => PathSpecifier::Prefix(w.text(PATH_CHARS)),
            PathDesc::Exact(w) => PathSpecifier::Path(w.text(PATH_CHARS)),
            PathDesc::Regex(t) => PathSpecifier::SafeRegex(regex_from(t)),
            PathDesc::SeparatedPrefix(w) => PathSpecifier::PathSeparatedPrefix(w.text(PATH_CHARS)),
            PathDesc::Slash => PathSpecifier::Prefix("/".into()),
        };
        let headers = self
            .headers
            .iter()
            .take(3)
            .map(|h| HeaderMatcher {
                name: pick(HEADER_NAMES, h.name).into(),
                header_match_specifier: match &h.spec {
                    HeaderSpec::Exact(w) => {
                        Some(HeaderMatchSpecifier::ExactMatch(w.text(VALUE_CHARS)))
                    }
                    HeaderSpec::Prefix(w) => {
                        Some(HeaderMatchSpecifier::PrefixMatch(w.text(VALUE_CHARS)))
                    }
                    HeaderSpec::Suffix(w) => {
                        Some(HeaderMatchSpecifier::SuffixMatch(w.text(VALUE_CHARS)))
                    }
                    HeaderSpec::Contains(w) => {
                        Some(HeaderMatchSpecifier::ContainsMatch(w.text(VALUE_CHARS)))
                    }
                    HeaderSpec::Regex(t) => {
                        Some(HeaderMatchSpecifier::SafeRegexMatch(regex_from(t)))
                    }
                    HeaderSpec::String(s) => Some(HeaderMatchSpecifier::StringMatch(s.matcher())),
                    HeaderSpec::Range(a, b) => Some(HeaderMatchSpecifier::RangeMatch(Int64Range {
                        start: i64::from(*a),
                        end: i64::from(*b),
                    })),
                    HeaderSpec::Present(p) => Some(HeaderMatchSpecifier::PresentMatch(*p)),
                    HeaderSpec::Unset => None,
                },
                invert_match: h.invert,
                treat_missing_header_as_empty: h.missing_as_empty,
            })
            .collect();
        let query_parameters = self
            .query
            .iter()
            .take(2)
            .map(|q| QueryParameterMatcher {
                name: pick(QUERY_NAMES, q.name).into(),
                query_parameter_match_specifier: match &q.spec {
                    QuerySpec::String(s) => {
                        Some(QueryParameterMatchSpecifier::StringMatch(s.matcher()))
                    }
                    QuerySpec::Present(p) => Some(QueryParameterMatchSpecifier::PresentMatch(*p)),
                    QuerySpec::Unset => None,
                },
            })
            .collect();
        Route {
            name,
            r#match: Some(RouteMatch {
                path_specifier: Some(path),
                case_sensitive: self.case_sensitive.map(|value| BoolValue { value }),
                headers,
                query_parameters,
                grpc: self.grpc.then(Default::default),
                ..Default::default()
            }),
            action: Some(Action::DirectResponse(DirectResponseAction {
                status: 200,
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    /// A route with nothing but a path condition, and a request path it must take.
    fn unconditional_path(&self) -> Option<String> {
        if !self.headers.is_empty() || !self.query.is_empty() || self.grpc {
            return None;
        }
        match &self.path {
            PathDesc::Slash => Some("/".into()),
            PathDesc::Prefix(w) | PathDesc::Exact(w) => Some(w.text(PATH_CHARS)),
            PathDesc::SeparatedPrefix(w) => Some(w.text(PATH_CHARS)),
            PathDesc::Regex(_) => None,
        }
    }
}

/// Envoy's `HeaderUtility::getPortStart` as `ignore_port_in_host_matching` uses it: cut at
/// the last `:` unless a `]` follows it (checked against Envoy 1.40: `host:abc` and `host:`
/// both match a `host` domain). The generator only makes numeric ports, where weft-proxy's
/// digits-only stripping agrees.
fn envoy_strip_port(host: &str) -> &str {
    match (host.rfind(':'), host.rfind(']')) {
        (Some(c), b) if b.is_none_or(|b| b < c) => &host[..c],
        _ => host,
    }
}

/// Envoy's virtual host choice by brute force over every domain: exact, then the longest
/// matching `*suffix`, then the longest `prefix*` (a wildcard stands for at least one
/// character), then `*`. Unique domains make each step's answer unique.
fn model_vhost(rc: &RouteConfiguration, host: &str, ignore_port: bool) -> Option<usize> {
    let host = if ignore_port {
        envoy_strip_port(host)
    } else {
        host
    };
    let host = host.to_ascii_lowercase();
    let all = || {
        rc.virtual_hosts
            .iter()
            .enumerate()
            .flat_map(|(i, v)| v.domains.iter().map(move |d| (i, d.to_ascii_lowercase())))
    };
    if let Some((i, _)) = all().find(|(_, d)| *d == host) {
        return Some(i);
    }
    let suffix = all()
        .filter(|(_, d)| d.len() > 1 && d.starts_with('*'))
        .filter(|(_, d)| host.len() > d.len() - 1 && host.ends_with(&d[1..]))
        .max_by_key(|(_, d)| d.len());
    if let Some((i, _)) = suffix {
        return Some(i);
    }
    let prefix = all()
        .filter(|(_, d)| d.len() > 1 && d.ends_with('*') && !d.starts_with('*'))
        .filter(|(_, d)| host.len() > d.len() - 1 && host.starts_with(&d[..d.len() - 1]))
        .max_by_key(|(_, d)| d.len());
    if let Some((i, _)) = prefix {
        return Some(i);
    }
    all().find(|(_, d)| d == "*").map(|(i, _)| i)
}

fuzz_target!(|input: Input| {
    let rc = RouteConfiguration {
        name: "fuzz".into(),
        ignore_port_in_host_matching: input.ignore_port,
        virtual_hosts: input
            .vhosts
            .iter()
            .take(4)
            .enumerate()
            .map(|(i, v)| VirtualHost {
                name: format!("v{i}"),
                domains: domains(v, i),
                routes: v
                    .routes
                    .iter()
                    .take(4)
                    .enumerate()
                    .map(|(j, r)| r.build(format!("r{j}")))
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    assert!(
        check_message(&rc).is_empty(),
        "the generator only uses supported fields"
    );
    let Ok(table) = RouteConfig::new(&rc) else {
        return;
    };
    let vhost_name = |i: Option<usize>| i.map(|i| format!("v{i}"));

    // Every exact domain wins for its own host, in any letter case (unless the port that
    // makes it exact is ignored).
    for (i, v) in rc.virtual_hosts.iter().enumerate() {
        for d in &v.domains {
            if d.starts_with('*')
                || d.ends_with('*')
                || (input.ignore_port && envoy_strip_port(d) != d)
            {
                continue;
            }
            for host in [d.clone(), d.to_ascii_uppercase(), d.to_ascii_lowercase()] {
                let got = table.select_vhost(&host).map(|v| v.name.clone());
                assert_eq!(
                    got,
                    vhost_name(Some(i)),
                    "exact domain {d:?} lost host {host:?}"
                );
            }
        }
    }

    let descs: Vec<&VhostDesc> = input.vhosts.iter().take(4).collect();
    for req in input.requests.iter().take(4) {
        let mut host = req.host.text(HOST_CHARS) + &port_text(&req.host_port);
        if req.host_upper {
            host = host.to_ascii_uppercase();
        }
        let got = table.select_vhost(&host).map(|v| v.name.clone());
        let want = vhost_name(model_vhost(&rc, &host, input.ignore_port));
        assert_eq!(got, want, "host {host:?} in {:?}", rc.virtual_hosts);

        let path = format!("/{}", req.path.text(PATH_CHARS));
        let query = req.query.as_ref().map(|q| q.text(QUERY_CHARS));
        let mut headers = HeaderMap::new();
        for (n, v) in req.headers.iter().take(4) {
            let value = if *n % 5 == 4 {
                "application/grpc".to_string()
            } else {
                v.text(VALUE_CHARS)
            };
            headers.append(
                HeaderName::from_static(pick(REQUEST_HEADERS, *n)),
                HeaderValue::from_str(&value).expect("alphabet is header-safe"),
            );
        }
        let method = if req.post { "POST" } else { "GET" };
        let request = |p: &str| -> Option<String> {
            let full_p = match &query {
                Some(q) => format!("{p}?{q}"),
                None => p.to_string(),
            };
            let vh = table.select_vhost(&host)?;
            let view = RequestView {
                path: p,
                query: query.as_deref(),
                headers: &headers,
                pseudo: Pseudo {
                    method,
                    path: &full_p,
                    authority: &host,
                    scheme: "http",
                },
            };
            vh.select(&view).map(|r| r.name.clone())
        };
        let _ = request(&path);

        // A route with only a path condition takes every request with that path, unless an
        // earlier route of the same virtual host took it first.
        let Some(vi) = model_vhost(&rc, &host, input.ignore_port) else {
            continue;
        };
        for (j, r) in descs[vi].routes.iter().take(4).enumerate() {
            let Some(p) = r.unconditional_path() else {
                continue;
            };
            let mut candidates = vec![p.clone()];
            if matches!(r.path, PathDesc::Prefix(_) | PathDesc::Slash) {
                candidates.push(format!("{p}{path}"));
            }
            if matches!(r.path, PathDesc::SeparatedPrefix(_)) {
                candidates.push(format!("{p}{path}"));
            }
            if r.case_sensitive == Some(false) {
                candidates.push(p.to_ascii_uppercase());
            }
            for c in candidates {
                let got = request(&c);
                let taken = got
                    .as_deref()
                    .and_then(|n| n.strip_prefix('r'))
                    .and_then(|n| n.parse::<usize>().ok());
                assert!(
                    taken.is_some_and(|k| k <= j),
                    "route r{j} ({:?}) did not take path {c:?}: got {got:?}",
                    rc.virtual_hosts[vi].routes[j].r#match
                );
            }
        }
    }
});
