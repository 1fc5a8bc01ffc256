//! Route tables (`RouteConfiguration`): virtual hosts chosen by domain in Envoy's order
//! (exact, longest `*suffix`, longest `prefix*`, then `*`), routes tried in order against
//! the path, headers, query and gRPC-ness of a request, and header mutations per level.
//! A virtual host's `require_tls` is checked before its routes, as Envoy's
//! `VirtualHostImpl::getRouteFromEntries` does.

use super::cors::{CORS_POLICY, CorsPolicy};
use super::fault::{FAULT, FaultConfig};
use super::header_ops::HeaderOps;
use super::matcher::{FullRegex, HeaderMatcher, Pseudo, QueryMatcher};
use super::retry::RetryPolicy;
use super::route_action::{Action, DEFAULT_MAX_DIRECT_BODY, Direct, Forward, Redirect};
use super::{ConvertError, Result, type_name, unpack};
use envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use envoy_types::pb::envoy::config::route::v3::{
    Route as PbRoute, RouteConfiguration, RouteMatch as PbRouteMatch, VirtualHost as PbVirtualHost,
    route::Action as PbAction, route_match::PathSpecifier, virtual_host::TlsRequirementType,
};
use envoy_types::pb::envoy::r#type::v3::fractional_percent::DenominatorType;
use envoy_types::pb::google::protobuf::Any;
use http::HeaderMap;
use http::header::HeaderName;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use weft_yaml::FieldPath;

/// `typed_per_filter_config` at one level: the overrides for HTTP filters, by the filter's
/// name in the connection manager's chain (the fault filter's, and the CORS filter's
/// `CorsPolicy`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PerFilter {
    faults: Vec<(String, Arc<FaultConfig>)>,
    cors: Vec<(String, Arc<CorsPolicy>)>,
}

impl PerFilter {
    fn new(map: &HashMap<String, Any>, path: &FieldPath) -> Result<Self> {
        let mut out = PerFilter::default();
        for (name, any) in map {
            let p = path.key(name);
            match type_name(any) {
                FAULT => out.faults.push((
                    name.clone(),
                    Arc::new(FaultConfig::new(&unpack(any, FAULT, &p)?, &p)?),
                )),
                CORS_POLICY => out.cors.push((
                    name.clone(),
                    Arc::new(CorsPolicy::new(&unpack(any, CORS_POLICY, &p)?, &p)?),
                )),
                other => {
                    return Err(ConvertError::new(
                        &p,
                        format!(
                            "per-route configuration of type `{other}` is not supported by \
                             weft-proxy (only the fault filter's and the CORS filter's)"
                        ),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// The CORS policy for the filter named `name`.
    pub fn cors(&self, name: &str) -> Option<&Arc<CorsPolicy>> {
        self.cors.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    /// The fault filter override for the filter named `name`.
    pub fn fault(&self, name: &str) -> Option<&Arc<FaultConfig>> {
        self.faults.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum PathMatch {
    Prefix(String),
    Exact(String),
    Regex(FullRegex),
    SeparatedPrefix(String),
}

/// `envoy.config.route.v3.RouteMatch`.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteMatch {
    path: PathMatch,
    case_sensitive: bool,
    headers: Vec<HeaderMatcher>,
    query: Vec<QueryMatcher>,
    grpc: bool,
    /// Matches when a random number below `denominator` is below `numerator`.
    fraction: Option<(u64, u64)>,
}

/// The parts of a request that route matching reads.
pub struct RequestView<'a> {
    /// The path without the query string.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub pseudo: Pseudo<'a>,
}

impl RouteMatch {
    fn new(m: &PbRouteMatch, path: &FieldPath) -> Result<Self> {
        let case_sensitive = m.case_sensitive.is_none_or(|b| b.value);
        let fold = |s: &str| {
            if case_sensitive {
                s.to_string()
            } else {
                s.to_ascii_lowercase()
            }
        };
        let pm = match &m.path_specifier {
            Some(PathSpecifier::Prefix(p)) => PathMatch::Prefix(fold(p)),
            Some(PathSpecifier::Path(p)) => PathMatch::Exact(fold(p)),
            Some(PathSpecifier::SafeRegex(re)) => {
                PathMatch::Regex(FullRegex::new(re, &path.field("safe_regex"))?)
            }
            Some(PathSpecifier::PathSeparatedPrefix(p)) => {
                if p.ends_with('/') || p.contains(['?', '#']) {
                    return Err(ConvertError::new(
                        &path.field("path_separated_prefix"),
                        "must not end with `/` or contain `?` or `#`",
                    ));
                }
                PathMatch::SeparatedPrefix(fold(p))
            }
            Some(PathSpecifier::ConnectMatcher(_)) => {
                return Err(ConvertError::new(
                    &path.field("connect_matcher"),
                    "CONNECT is not supported by weft-proxy",
                ));
            }
            Some(PathSpecifier::PathMatchPolicy(_)) => {
                return Err(ConvertError::new(
                    &path.field("path_match_policy"),
                    "is not supported by weft-proxy",
                ));
            }
            None => {
                return Err(ConvertError::new(
                    path,
                    "one of prefix, path, safe_regex or path_separated_prefix is required",
                ));
            }
        };
        let headers = m
            .headers
            .iter()
            .enumerate()
            .map(|(i, h)| HeaderMatcher::new(h, &path.field("headers").index(i)))
            .collect::<Result<_>>()?;
        let query = m
            .query_parameters
            .iter()
            .enumerate()
            .map(|(i, q)| QueryMatcher::new(q, &path.field("query_parameters").index(i)))
            .collect::<Result<_>>()?;
        Ok(RouteMatch {
            path: pm,
            case_sensitive,
            headers,
            query,
            grpc: m.grpc.is_some(),
            fraction: m.runtime_fraction.as_ref().map(fraction),
        })
    }

    pub fn matches(&self, req: &RequestView<'_>) -> bool {
        let path_ok = match &self.path {
            PathMatch::Regex(re) => re.is_match(req.path),
            PathMatch::Prefix(p) => starts_with(req.path, p, self.case_sensitive),
            PathMatch::Exact(p) => {
                req.path.len() == p.len() && starts_with(req.path, p, self.case_sensitive)
            }
            PathMatch::SeparatedPrefix(p) => {
                starts_with(req.path, p, self.case_sensitive)
                    && matches!(req.path.as_bytes().get(p.len()), None | Some(b'/'))
            }
        };
        if !path_ok {
            return false;
        }
        if self.grpc && !is_grpc(req.headers) {
            return false;
        }
        if !self
            .headers
            .iter()
            .all(|h| h.matches(req.headers, &req.pseudo))
        {
            return false;
        }
        if !self.query.iter().all(|q| q.matches(req.query)) {
            return false;
        }
        match self.fraction {
            Some((num, den)) => fastrand::u64(0..den) < num,
            None => true,
        }
    }

    /// The part of the path this match consumed, for `prefix_rewrite`.
    pub fn matched_prefix_len(&self) -> Option<usize> {
        match &self.path {
            PathMatch::Prefix(p) | PathMatch::SeparatedPrefix(p) | PathMatch::Exact(p) => {
                Some(p.len())
            }
            PathMatch::Regex(_) => None,
        }
    }
}

fn fraction(f: &RuntimeFractionalPercent) -> (u64, u64) {
    let d = f.default_value.unwrap_or_default();
    let den = match DenominatorType::try_from(d.denominator) {
        Ok(DenominatorType::TenThousand) => 10_000,
        Ok(DenominatorType::Million) => 1_000_000,
        _ => 100,
    };
    (u64::from(d.numerator).min(den), den)
}

pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers.get(http::header::CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v == b"application/grpc" || v.starts_with(b"application/grpc+")
    })
}

fn starts_with(path: &str, prefix: &str, case_sensitive: bool) -> bool {
    if case_sensitive {
        path.starts_with(prefix)
    } else {
        path.len() >= prefix.len()
            && path.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    }
}

/// One route: a match and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub name: String,
    pub matcher: RouteMatch,
    pub action: Action,
    pub request_ops: HeaderOps,
    pub response_ops: HeaderOps,
    pub per_filter: PerFilter,
    /// `per_request_buffer_limit_bytes`: caps what is kept of a request body for retries.
    pub buffer_limit: Option<u32>,
}

impl Route {
    fn new(
        r: &PbRoute,
        max_body: usize,
        vhost_retry: Option<&Arc<RetryPolicy>>,
        path: &FieldPath,
    ) -> Result<Self> {
        let Some(m) = &r.r#match else {
            return Err(ConvertError::new(&path.field("match"), "is required"));
        };
        let action = match &r.action {
            Some(PbAction::Route(a)) => {
                let mut f = Forward::new(a, &path.field("route"))?;
                if f.retry.is_none() {
                    f.retry = vhost_retry.cloned();
                }
                Action::Forward(Box::new(f))
            }
            Some(PbAction::Redirect(a)) => {
                Action::Redirect(Box::new(Redirect::new(a, &path.field("redirect"))?))
            }
            Some(PbAction::DirectResponse(a)) => {
                Action::Direct(Direct::new(a, max_body, &path.field("direct_response"))?)
            }
            Some(_) => {
                return Err(ConvertError::new(
                    path,
                    "only route, redirect and direct_response actions are supported by weft-proxy",
                ));
            }
            None => {
                return Err(ConvertError::new(
                    path,
                    "one of route, redirect or direct_response is required",
                ));
            }
        };
        Ok(Route {
            name: r.name.clone(),
            matcher: RouteMatch::new(m, &path.field("match"))?,
            action,
            request_ops: HeaderOps::new(
                &r.request_headers_to_add,
                &r.request_headers_to_remove,
                &path.field("request_headers_to_add"),
                &path.field("request_headers_to_remove"),
            )?,
            response_ops: HeaderOps::new(
                &r.response_headers_to_add,
                &r.response_headers_to_remove,
                &path.field("response_headers_to_add"),
                &path.field("response_headers_to_remove"),
            )?,
            per_filter: PerFilter::new(
                &r.typed_per_filter_config,
                &path.field("typed_per_filter_config"),
            )?,
            buffer_limit: r.per_request_buffer_limit_bytes.map(|v| v.value),
        })
    }
}

/// `VirtualHost.require_tls`: which requests the virtual host answers with a redirect to
/// `https://` instead of routing them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequireTls {
    #[default]
    None,
    /// All but the requests the connection manager judged internal (`x-envoy-internal:
    /// true` after its header sanitising).
    ExternalOnly,
    All,
}

impl RequireTls {
    fn new(value: i32, path: &FieldPath) -> Result<Self> {
        match TlsRequirementType::try_from(value) {
            Ok(TlsRequirementType::None) => Ok(RequireTls::None),
            Ok(TlsRequirementType::ExternalOnly) => Ok(RequireTls::ExternalOnly),
            Ok(TlsRequirementType::All) => Ok(RequireTls::All),
            Err(_) => Err(ConvertError::new(
                path,
                format!("{value} is not a TlsRequirementType"),
            )),
        }
    }
}

/// What a virtual host does with a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Choice<'a> {
    Route(&'a Route),
    /// `require_tls` turned the request away: Envoy's `SslRedirectRoute`, a 301 to the same
    /// host and path over https, with none of the table's header mutations or per-filter
    /// configuration.
    TlsRedirect,
}

static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_ENVOY_INTERNAL: HeaderName = HeaderName::from_static("x-envoy-internal");

/// Envoy keeps repeated values of the headers it knows by name (these two among them) as
/// one value, the non-empty ones joined by `,`; whether that value is `want` exactly.
fn joined_value_is(headers: &HeaderMap, name: &HeaderName, want: &[u8]) -> bool {
    let mut values = headers.get_all(name).iter().filter(|v| !v.is_empty());
    values.next().is_some_and(|v| v.as_bytes() == want) && values.next().is_none()
}

#[derive(Debug, Clone, PartialEq)]
pub struct VirtualHost {
    pub name: String,
    pub require_tls: RequireTls,
    pub routes: Vec<Route>,
    pub request_ops: HeaderOps,
    pub response_ops: HeaderOps,
    pub per_filter: PerFilter,
    /// `x-envoy-attempt-count` goes upstream with every try.
    pub attempt_count_in_request: bool,
    /// `x-envoy-attempt-count` goes back to the client.
    pub attempt_count_in_response: bool,
}

impl VirtualHost {
    fn new(v: &PbVirtualHost, max_body: usize, path: &FieldPath) -> Result<Self> {
        let retry = v
            .retry_policy
            .as_ref()
            .map(|r| RetryPolicy::new(r, &path.field("retry_policy")).map(Arc::new))
            .transpose()?;
        let routes = v
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| Route::new(r, max_body, retry.as_ref(), &path.field("routes").index(i)))
            .collect::<Result<_>>()?;
        Ok(VirtualHost {
            name: v.name.clone(),
            require_tls: RequireTls::new(v.require_tls, &path.field("require_tls"))?,
            routes,
            per_filter: PerFilter::new(
                &v.typed_per_filter_config,
                &path.field("typed_per_filter_config"),
            )?,
            attempt_count_in_request: v.include_request_attempt_count,
            attempt_count_in_response: v.include_attempt_count_in_response,
            request_ops: HeaderOps::new(
                &v.request_headers_to_add,
                &v.request_headers_to_remove,
                &path.field("request_headers_to_add"),
                &path.field("request_headers_to_remove"),
            )?,
            response_ops: HeaderOps::new(
                &v.response_headers_to_add,
                &v.response_headers_to_remove,
                &path.field("response_headers_to_add"),
                &path.field("response_headers_to_remove"),
            )?,
        })
    }

    /// Envoy's `getRouteFromEntries`, on a request the connection manager has already
    /// sanitised. Every downstream connection is plaintext, so only `x-forwarded-proto`
    /// (trusted or overwritten by the connection manager) can say the client used TLS.
    pub fn choose(&self, req: &RequestView<'_>) -> Option<Choice<'_>> {
        // The connection manager adds the header only when it is missing, so a client may
        // leave it empty; Envoy then routes nothing at all, whatever `require_tls` says.
        if req
            .headers
            .get_all(&X_FORWARDED_PROTO)
            .iter()
            .all(|v| v.is_empty())
        {
            return None;
        }
        let tls = joined_value_is(req.headers, &X_FORWARDED_PROTO, b"https");
        let redirect = match self.require_tls {
            RequireTls::None => false,
            RequireTls::All => !tls,
            RequireTls::ExternalOnly => {
                !tls && !joined_value_is(req.headers, &X_ENVOY_INTERNAL, b"true")
            }
        };
        if redirect {
            return Some(Choice::TlsRedirect);
        }
        self.routes
            .iter()
            .find(|r| r.matcher.matches(req))
            .map(Choice::Route)
    }
}

/// Wildcard domains of one length, longest first: (length without `*`, text → vhost).
type Wildcards = Vec<(usize, HashMap<String, usize>)>;

/// A converted `RouteConfiguration`.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteConfig {
    pub name: String,
    pub virtual_hosts: Vec<VirtualHost>,
    exact: HashMap<String, usize>,
    suffixes: Wildcards,
    prefixes: Wildcards,
    default: Option<usize>,
    ignore_port: bool,
    pub request_ops: HeaderOps,
    pub response_ops: HeaderOps,
    pub most_specific_header_mutations_wins: bool,
    /// Envoy checks that named clusters exist for static route tables unless told not to.
    pub validate_clusters: Option<bool>,
    pub per_filter: PerFilter,
}

impl RouteConfig {
    pub fn new(rc: &RouteConfiguration) -> Result<Self> {
        let root = FieldPath::root();
        let max_body = rc
            .max_direct_response_body_size_bytes
            .map_or(DEFAULT_MAX_DIRECT_BODY, |v| v.value as usize);
        let mut exact = HashMap::new();
        let mut suffixes: BTreeMap<usize, HashMap<String, usize>> = BTreeMap::new();
        let mut prefixes: BTreeMap<usize, HashMap<String, usize>> = BTreeMap::new();
        let mut default = None;
        let mut virtual_hosts = Vec::with_capacity(rc.virtual_hosts.len());
        for (i, v) in rc.virtual_hosts.iter().enumerate() {
            let vpath = root.field("virtual_hosts").index(i);
            virtual_hosts.push(VirtualHost::new(v, max_body, &vpath)?);
            if v.domains.is_empty() {
                return Err(ConvertError::new(
                    &vpath.field("domains"),
                    "must not be empty",
                ));
            }
            for (j, d) in v.domains.iter().enumerate() {
                let dpath = vpath.field("domains").index(j);
                let d = d.to_ascii_lowercase();
                let duplicate = || {
                    ConvertError::new(
                        &dpath,
                        format!(
                            "Only unique values for domains are permitted. Duplicate entry of \
                             domain {d} in route {}",
                            rc.name
                        ),
                    )
                };
                if d == "*" {
                    if default.replace(i).is_some() {
                        return Err(ConvertError::new(
                            &dpath,
                            format!(
                                "Only a single wildcard domain is permitted in route {}",
                                rc.name
                            ),
                        ));
                    }
                } else if let Some(rest) = d.strip_prefix('*') {
                    let slot = suffixes.entry(rest.len()).or_default();
                    if slot.insert(rest.to_string(), i).is_some() {
                        return Err(duplicate());
                    }
                } else if let Some(rest) = d.strip_suffix('*') {
                    let slot = prefixes.entry(rest.len()).or_default();
                    if slot.insert(rest.to_string(), i).is_some() {
                        return Err(duplicate());
                    }
                } else if exact.insert(d.clone(), i).is_some() {
                    return Err(duplicate());
                }
            }
        }
        let longest_first = |m: BTreeMap<usize, HashMap<String, usize>>| -> Wildcards {
            m.into_iter().rev().collect()
        };
        Ok(RouteConfig {
            name: rc.name.clone(),
            virtual_hosts,
            exact,
            suffixes: longest_first(suffixes),
            prefixes: longest_first(prefixes),
            default,
            ignore_port: rc.ignore_port_in_host_matching,
            request_ops: HeaderOps::new(
                &rc.request_headers_to_add,
                &rc.request_headers_to_remove,
                &root.field("request_headers_to_add"),
                &root.field("request_headers_to_remove"),
            )?,
            response_ops: HeaderOps::new(
                &rc.response_headers_to_add,
                &rc.response_headers_to_remove,
                &root.field("response_headers_to_add"),
                &root.field("response_headers_to_remove"),
            )?,
            most_specific_header_mutations_wins: rc.most_specific_header_mutations_wins,
            validate_clusters: rc.validate_clusters.map(|b| b.value),
            per_filter: PerFilter::new(
                &rc.typed_per_filter_config,
                &root.field("typed_per_filter_config"),
            )?,
        })
    }

    /// The virtual host for a `Host`/`:authority` value.
    pub fn select_vhost(&self, host: &str) -> Option<&VirtualHost> {
        let i = self.select_index(host)?;
        self.virtual_hosts.get(i)
    }

    fn select_index(&self, host: &str) -> Option<usize> {
        if self.exact.is_empty() && self.suffixes.is_empty() && self.prefixes.is_empty() {
            return self.default;
        }
        let host = if self.ignore_port {
            strip_any_port(host)
        } else {
            host
        };
        let lowered;
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = host.to_ascii_lowercase();
            lowered.as_str()
        } else {
            host
        };
        if let Some(i) = self.exact.get(host) {
            return Some(*i);
        }
        // A wildcard never matches the empty string: `*.a.com` needs at least one character.
        for (len, map) in &self.suffixes {
            if host.len() > *len
                && let Some(i) = map.get(&host[host.len() - len..])
            {
                return Some(*i);
            }
        }
        for (len, map) in &self.prefixes {
            if host.len() > *len
                && let Some(i) = map.get(&host[..*len])
            {
                return Some(*i);
            }
        }
        self.default
    }

    /// Every cluster a route of this table names.
    pub fn clusters(&self) -> impl Iterator<Item = (&str, FieldPath)> {
        self.virtual_hosts.iter().enumerate().flat_map(|(i, v)| {
            v.routes.iter().enumerate().flat_map(move |(j, r)| {
                let names = match &r.action {
                    Action::Forward(f) => f.clusters(),
                    _ => vec![],
                };
                names.into_iter().map(move |n| {
                    (
                        n,
                        FieldPath::root()
                            .field("virtual_hosts")
                            .index(i)
                            .field("routes")
                            .index(j)
                            .field("route"),
                    )
                })
            })
        })
    }
}

/// Envoy's `ignore_port_in_host_matching`: everything after the last `:` goes, whatever it
/// is (IPv6 literals keep their brackets).
fn strip_any_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.rfind("]:") {
            Some(i) => &host[..=i],
            None => host,
        };
    }
    match host.rfind(':') {
        Some(i) => &host[..i],
        None => host,
    }
}

/// `host:port` → `host` (IPv6 literals keep their brackets).
pub fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.rfind("]:") {
            Some(i) => &host[..=i],
            None => host,
        };
    }
    match host.rfind(':') {
        Some(i) if host[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &host[..i],
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vhost(name: &str, domains: &[&str]) -> PbVirtualHost {
        PbVirtualHost {
            name: name.into(),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            ..Default::default()
        }
    }

    fn table(vhosts: Vec<PbVirtualHost>) -> RouteConfig {
        RouteConfig::new(&RouteConfiguration {
            name: "t".into(),
            virtual_hosts: vhosts,
            ..Default::default()
        })
        .expect("valid")
    }

    #[test]
    fn domains_are_searched_in_envoys_order() {
        let t = table(vec![
            vhost("exact", &["www.foo.com"]),
            vhost("suffix", &["*.foo.com"]),
            vhost("longer-suffix", &["*-bar.foo.com"]),
            vhost("prefix", &["foo.*"]),
            vhost("any", &["*"]),
            vhost("port", &["api.io:8080"]),
        ]);
        let pick = |h: &str| t.select_vhost(h).map(|v| v.name.as_str());
        assert_eq!(pick("WWW.foo.com"), Some("exact"));
        assert_eq!(pick("a.foo.com"), Some("suffix"));
        assert_eq!(pick("baz-bar.foo.com"), Some("longer-suffix"));
        assert_eq!(
            pick(".foo.com"),
            Some("any"),
            "a wildcard needs a character"
        );
        assert_eq!(pick("foo.org"), Some("prefix"));
        assert_eq!(pick("api.io:8080"), Some("port"));
        assert_eq!(pick("api.io"), Some("any"));
        assert_eq!(pick("www.foo.com:80"), Some("any"));
    }

    #[test]
    fn cors_policies_are_kept_per_filter_name_and_other_types_refused() {
        use envoy_types::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy as Pb;
        let any = |type_url: &str, value: Vec<u8>| Any {
            type_url: format!("type.googleapis.com/{type_url}"),
            value,
        };
        let policy = Pb {
            allow_methods: "GET".into(),
            ..Default::default()
        };
        let mut v = vhost("v", &["*"]);
        v.typed_per_filter_config.insert(
            "envoy.filters.http.cors".into(),
            any(CORS_POLICY, prost::Message::encode_to_vec(&policy)),
        );
        let t = table(vec![v]);
        let got = t.virtual_hosts[0]
            .per_filter
            .cors("envoy.filters.http.cors")
            .expect("kept");
        assert_eq!(got.allow_methods.as_ref().unwrap(), "GET");
        assert!(t.virtual_hosts[0].per_filter.cors("other").is_none());

        let mut v = vhost("v", &["*"]);
        v.typed_per_filter_config.insert(
            "x".into(),
            any("envoy.extensions.filters.http.cors.v3.Cors", vec![]),
        );
        let err = RouteConfig::new(&RouteConfiguration {
            name: "t".into(),
            virtual_hosts: vec![v],
            ..Default::default()
        })
        .expect_err("a filter's own config is not a per-route one");
        assert_eq!(
            err.path.to_string(),
            "virtual_hosts[0].typed_per_filter_config[x]"
        );
    }

    #[test]
    fn duplicate_domains_and_two_stars_are_rejected() {
        let err = RouteConfig::new(&RouteConfiguration {
            name: "t".into(),
            virtual_hosts: vec![vhost("a", &["x.com"]), vhost("b", &["X.com"])],
            ..Default::default()
        })
        .expect_err("duplicate");
        assert_eq!(err.path.to_string(), "virtual_hosts[1].domains[0]");
        assert!(
            err.message.contains("Duplicate entry of domain x.com"),
            "{err}"
        );
    }

    #[test]
    fn separated_prefix_needs_a_boundary() {
        let m = RouteMatch::new(
            &PbRouteMatch {
                path_specifier: Some(PathSpecifier::PathSeparatedPrefix("/api".into())),
                ..Default::default()
            },
            &FieldPath::root(),
        )
        .expect("valid");
        let h = HeaderMap::new();
        let view = |p| RequestView {
            path: p,
            query: None,
            headers: &h,
            pseudo: Pseudo {
                method: "GET",
                path: p,
                authority: "a",
                scheme: "http",
            },
        };
        assert!(m.matches(&view("/api")));
        assert!(m.matches(&view("/api/v1")));
        assert!(!m.matches(&view("/apiv1")));
    }
}

#[cfg(test)]
mod require_tls_tests {
    use super::*;
    use envoy_types::pb::envoy::config::route::v3::{RouteAction, route_action::ClusterSpecifier};

    fn to_cluster(prefix: &str) -> PbRoute {
        PbRoute {
            r#match: Some(PbRouteMatch {
                path_specifier: Some(PathSpecifier::Prefix(prefix.into())),
                ..Default::default()
            }),
            action: Some(PbAction::Route(RouteAction {
                cluster_specifier: Some(ClusterSpecifier::Cluster("c".into())),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn vhost(name: &str, require_tls: TlsRequirementType) -> PbVirtualHost {
        PbVirtualHost {
            name: name.into(),
            domains: vec![format!("{name}.example.com")],
            require_tls: require_tls as i32,
            routes: vec![to_cluster("/app")],
            ..Default::default()
        }
    }

    fn config() -> RouteConfiguration {
        RouteConfiguration {
            name: "t".into(),
            virtual_hosts: vec![
                vhost("none", TlsRequirementType::None),
                vhost("ext", TlsRequirementType::ExternalOnly),
                vhost("all", TlsRequirementType::All),
            ],
            ..Default::default()
        }
    }

    /// What `host`'s virtual host does with `path` and `headers`: the route's name is not
    /// set, so a route is reported by its match prefix length.
    fn choose(t: &RouteConfig, host: &str, path: &str, headers: &[(&str, &str)]) -> String {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                http::HeaderValue::from_str(v).expect("value"),
            );
        }
        let view = RequestView {
            path,
            query: None,
            headers: &h,
            pseudo: Pseudo {
                method: "GET",
                path,
                authority: host,
                scheme: "http",
            },
        };
        let vh = t.select_vhost(host).expect("a virtual host");
        match vh.choose(&view) {
            None => "none".into(),
            Some(Choice::TlsRedirect) => "redirect".into(),
            Some(Choice::Route(r)) => format!("route {:?}", r.matcher.matched_prefix_len()),
        }
    }

    #[test]
    fn require_tls_is_supported_and_converted() {
        let rc = config();
        assert!(
            super::super::support::check_message(&rc).is_empty(),
            "require_tls must pass the supported-field walk"
        );
        let t = RouteConfig::new(&rc).expect("valid");
        let levels: Vec<_> = t.virtual_hosts.iter().map(|v| v.require_tls).collect();
        assert_eq!(
            levels,
            [RequireTls::None, RequireTls::ExternalOnly, RequireTls::All]
        );
    }

    #[test]
    fn an_undefined_requirement_is_rejected_at_its_field() {
        let mut rc = config();
        rc.virtual_hosts[2].require_tls = 7;
        let err = RouteConfig::new(&rc).expect_err("undefined enum value");
        assert_eq!(err.path.to_string(), "virtual_hosts[2].require_tls");
    }

    #[test]
    fn the_requirement_is_checked_before_the_routes() {
        let t = RouteConfig::new(&config()).expect("valid");
        let http = [("x-forwarded-proto", "http")];
        let https = [("x-forwarded-proto", "https")];
        let route = "route Some(4)";
        assert_eq!(choose(&t, "none.example.com", "/app", &http), route);
        assert_eq!(choose(&t, "none.example.com", "/other", &http), "none");
        assert_eq!(choose(&t, "all.example.com", "/app", &http), "redirect");
        assert_eq!(
            choose(&t, "all.example.com", "/other", &http),
            "redirect",
            "a path no route matches is redirected too"
        );
        assert_eq!(choose(&t, "all.example.com", "/app", &https), route);
        assert_eq!(choose(&t, "ext.example.com", "/app", &http), "redirect");
        assert_eq!(choose(&t, "ext.example.com", "/app", &https), route);
        let internal = [("x-forwarded-proto", "http"), ("x-envoy-internal", "true")];
        assert_eq!(choose(&t, "ext.example.com", "/app", &internal), route);
        assert_eq!(
            choose(&t, "all.example.com", "/app", &internal),
            "redirect",
            "ALL redirects internal requests too"
        );
        let not_true = [("x-forwarded-proto", "http"), ("x-envoy-internal", "TRUE")];
        assert_eq!(choose(&t, "ext.example.com", "/app", &not_true), "redirect");
    }

    #[test]
    fn forwarded_proto_is_read_as_envoy_joins_it() {
        let t = RouteConfig::new(&config()).expect("valid");
        let proto = |values: &[&'static str]| -> Vec<(&'static str, &'static str)> {
            values.iter().map(|v| ("x-forwarded-proto", *v)).collect()
        };
        let all = |values: &[&'static str]| choose(&t, "all.example.com", "/app", &proto(values));
        assert_eq!(all(&["HTTPS"]), "redirect", "compared case-sensitively");
        assert_eq!(
            all(&["https", "https"]),
            "redirect",
            "joined: `https,https`"
        );
        assert_eq!(all(&["http", "https"]), "redirect");
        assert_eq!(
            all(&["", "https"]),
            "route Some(4)",
            "empty values are skipped"
        );
        assert_eq!(all(&[""]), "none", "an empty header routes nothing");
        assert_eq!(all(&[]), "none");
        assert_eq!(
            choose(&t, "none.example.com", "/app", &proto(&["", ""])),
            "none",
            "whatever the requirement"
        );
    }
}

#[cfg(test)]
mod port_tests {
    use super::*;

    #[test]
    fn ignoring_the_port_cuts_at_the_last_colon_as_envoy_does() {
        assert_eq!(strip_any_port("host:abc"), "host");
        assert_eq!(strip_any_port("host:80:90"), "host:80");
        assert_eq!(strip_any_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("host:abc"), "host:abc");
    }
}
