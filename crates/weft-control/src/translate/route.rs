//! Outbound HTTP routes: the RouteConfiguration named after a port holds one virtual host
//! per service on that port (domains as istiod generates them) plus the catch-all, and a
//! VirtualService's `http` rules become Envoy routes in order (istiod's translateRoute).

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source};
use envoy_types::pb::envoy::config::core::v3::{
    HeaderValue, HeaderValueOption, header_value_option,
};
use envoy_types::pb::envoy::config::route::v3::{
    Decorator, DirectResponseAction, HeaderMatcher, QueryParameterMatcher, RedirectAction,
    RetryPolicy, Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, WeightedCluster,
    header_matcher, query_parameter_matcher, redirect_action, route, route_action, route_match,
    weighted_cluster,
};
use envoy_types::pb::envoy::extensions::filters::common::fault::v3::{FaultDelay, fault_delay};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{
    FaultAbort, HttpFault, fault_abort,
};
use envoy_types::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate;
use envoy_types::pb::envoy::r#type::matcher::v3::{
    RegexMatchAndSubstitute, RegexMatcher, StringMatcher, string_matcher,
};
use envoy_types::pb::envoy::r#type::v3::{FractionalPercent, fractional_percent};
use envoy_types::pb::google::protobuf::{Any, BoolValue, UInt32Value};
use envoy_types::util::pack_any;
use weft_config::networking::virtual_service::{
    HTTPMatchRequest, HTTPRetry, HTTPRoute, HeaderOperations, Headers, StringMatch,
    StringMatchKind, VirtualService,
};

use super::cluster::{BLACKHOLE, PASSTHROUGH, duration};
use super::names::{cluster_name, host_matches, resolve_host};
use super::view::{MeshView, Named, OutboundPolicy};
use crate::node::Proxy;
use crate::registry::Service;

pub const FAULT_FILTER: &str = "envoy.filters.http.fault";
/// istiod's default retry_on (route/retry DefaultPolicy).
const DEFAULT_RETRY_ON: &str =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";

/// The VirtualService (if any) that routes `svc` for this proxy: applies to the mesh,
/// visible in the proxy's namespace, host matching; the proxy's own namespace first.
fn virtual_service<'a>(
    proxy: &Proxy,
    view: &'a MeshView,
    svc: &Service,
) -> Option<&'a Named<VirtualService>> {
    let domain = &view.mesh.domain;
    let scope = super::scope::Scope::of(proxy, view);
    let applies = |vs: &&Named<VirtualService>| {
        vs.spec.applies_to_mesh()
            && !vs.spec.is_delegate()
            && MeshView::exported(&vs.spec.export_to, &vs.namespace, &proxy.namespace)
            && vs.spec.hosts.iter().any(|h| {
                let host = resolve_host(h, &vs.namespace, domain);
                host_matches(&host, &svc.hostname)
                    && scope.imports(&vs.namespace, &host, &proxy.namespace)
            })
    };
    let mut matching: Vec<&Named<VirtualService>> =
        view.virtual_services.iter().filter(applies).collect();
    matching.sort_by_key(|vs| vs.namespace != proxy.namespace);
    matching.into_iter().next()
}

/// The domains a sidecar's virtual host for `svc` answers to (generateVirtualHostDomains):
/// FQDN, the shorter Kubernetes names usable from the proxy's namespace, then the VIPs;
/// with `:port` forms when ports are matched (proxyless gRPC).
pub fn domains(proxy: &Proxy, svc: &Service, port: u16, with_port: bool) -> Vec<String> {
    let mut out = vec![svc.hostname.clone()];
    let suffix = format!(".svc.{}", proxy.mesh_domain());
    if let Some(name_ns) = svc.hostname.strip_suffix(&suffix)
        && let Some((name, ns)) = name_ns.split_once('.')
    {
        if ns == proxy.namespace {
            out.push(name.to_string());
            out.push(format!("{name_ns}.svc"));
            out.push(name_ns.to_string());
        } else {
            out.push(name_ns.to_string());
            out.push(format!("{name_ns}.svc"));
        }
    }
    out.extend(svc.addresses.iter().map(|a| a.to_string()));
    if with_port {
        out = out
            .into_iter()
            .flat_map(|d| [d.clone(), format!("{d}:{port}")])
            .collect();
    }
    out
}

fn string_matcher(m: &StringMatch) -> Option<StringMatcher> {
    let pattern = match m.kind()? {
        StringMatchKind::Exact(s) => string_matcher::MatchPattern::Exact(s.to_string()),
        StringMatchKind::Prefix(s) => string_matcher::MatchPattern::Prefix(s.to_string()),
        StringMatchKind::Regex(s) => string_matcher::MatchPattern::SafeRegex(RegexMatcher {
            regex: s.to_string(),
            ..Default::default()
        }),
    };
    Some(StringMatcher {
        match_pattern: Some(pattern),
        ..Default::default()
    })
}

fn header_matcher(name: &str, m: &StringMatch, invert: bool) -> HeaderMatcher {
    let present = m.kind().is_none() || m.regex.as_deref() == Some("*");
    HeaderMatcher {
        name: name.to_string(),
        header_match_specifier: Some(if present {
            header_matcher::HeaderMatchSpecifier::PresentMatch(true)
        } else {
            header_matcher::HeaderMatchSpecifier::StringMatch(string_matcher(m).expect("set"))
        }),
        invert_match: invert,
        treat_missing_header_as_empty: invert && !present,
    }
}

/// istiod's TranslateRouteMatch.
fn route_match(m: Option<&HTTPMatchRequest>) -> RouteMatch {
    let Some(m) = m else {
        return RouteMatch {
            path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
            ..Default::default()
        };
    };
    let path = match m.uri.as_ref().and_then(StringMatch::kind) {
        Some(StringMatchKind::Exact(s)) => route_match::PathSpecifier::Path(s.to_string()),
        Some(StringMatchKind::Prefix(s)) => route_match::PathSpecifier::Prefix(s.to_string()),
        Some(StringMatchKind::Regex(s)) => route_match::PathSpecifier::SafeRegex(RegexMatcher {
            regex: s.to_string(),
            ..Default::default()
        }),
        None => route_match::PathSpecifier::Prefix("/".into()),
    };
    let mut headers: Vec<HeaderMatcher> = m
        .headers
        .iter()
        .map(|(k, v)| header_matcher(k, v, false))
        .chain(
            m.without_headers
                .iter()
                .map(|(k, v)| header_matcher(k, v, true)),
        )
        .collect();
    headers.sort_by(|a, b| a.name.cmp(&b.name));
    for (name, value) in [
        (":method", &m.method),
        (":authority", &m.authority),
        (":scheme", &m.scheme),
    ] {
        if let Some(v) = value {
            headers.push(header_matcher(name, v, false));
        }
    }
    let query_parameters = m
        .query_params
        .iter()
        .map(|(k, v)| QueryParameterMatcher {
            name: k.clone(),
            query_parameter_match_specifier: Some(match string_matcher(v) {
                Some(s) => query_parameter_matcher::QueryParameterMatchSpecifier::StringMatch(s),
                None => query_parameter_matcher::QueryParameterMatchSpecifier::PresentMatch(true),
            }),
        })
        .collect();
    RouteMatch {
        path_specifier: Some(path),
        case_sensitive: Some(BoolValue {
            value: !m.ignore_uri_case,
        }),
        headers,
        query_parameters,
        ..Default::default()
    }
}

/// Who a VirtualService's HTTP routes are built for: the mesh's sidecars, or the gateway
/// `namespace/name` a router serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Binding<'a> {
    Mesh,
    Gateway(&'a str),
}

/// Whether this match applies to this proxy and listener port (sourceMatchHTTP). For a
/// gateway it is istiod's rule exactly: match-level `gateways` (resolved against the
/// VirtualService's namespace), when given, decide alone; otherwise source labels and
/// namespace must fit the gateway's workload.
fn match_applies(
    m: &HTTPMatchRequest,
    proxy: &Proxy,
    port: u16,
    vs_namespace: &str,
    binding: Binding,
) -> bool {
    let source = || {
        m.source_labels
            .iter()
            .all(|(k, v)| proxy.labels.get(k) == Some(v))
            && (m.source_namespace.is_empty() || m.source_namespace == proxy.namespace)
    };
    if m.port != 0 && m.port != u32::from(port) {
        return false;
    }
    match binding {
        Binding::Mesh => {
            source() && (m.gateways.is_empty() || m.gateways.iter().any(|g| g == "mesh"))
        }
        Binding::Gateway(gateway) if !m.gateways.is_empty() => m
            .gateways
            .iter()
            .any(|g| super::gateway::resolve_gateway_name(g, vs_namespace) == gateway),
        Binding::Gateway(_) => source(),
    }
}

/// istiod's retry policy: its default unless the rule sets retries; `attempts: 0` none.
fn retry_policy(retries: Option<&HTTPRetry>) -> Option<RetryPolicy> {
    let mut policy = RetryPolicy {
        retry_on: DEFAULT_RETRY_ON.into(),
        num_retries: Some(UInt32Value { value: 2 }),
        retry_host_predicate: vec![envoy_types::pb::envoy::config::route::v3::retry_policy::RetryHostPredicate {
            name: "envoy.retry_host_predicates.previous_hosts".into(),
            config_type: Some(
                envoy_types::pb::envoy::config::route::v3::retry_policy::retry_host_predicate::ConfigType::TypedConfig(
                    pack_any(PreviousHostsPredicate::default()),
                ),
            ),
        }],
        host_selection_retry_max_attempts: 5,
        retriable_status_codes: vec![503],
        ..Default::default()
    };
    let Some(r) = retries else {
        return Some(policy);
    };
    if r.attempts <= 0 {
        return None;
    }
    policy.num_retries = Some(UInt32Value {
        value: u32::try_from(r.attempts).unwrap_or(0),
    });
    if !r.retry_on.is_empty() {
        let (codes, names): (Vec<&str>, Vec<&str>) = r
            .retry_on_policies()
            .partition(|p| p.parse::<u32>().is_ok());
        let mut on: Vec<&str> = names;
        if !codes.is_empty() && !on.contains(&"retriable-status-codes") {
            on.push("retriable-status-codes");
        }
        policy.retry_on = on.join(",");
        policy.retriable_status_codes = codes.iter().filter_map(|c| c.parse().ok()).collect();
    }
    if let Some(t) = &r.per_try_timeout {
        policy.per_try_timeout = Some(duration(t.as_std()));
    }
    if r.retry_ignore_previous_hosts == Some(false) {
        policy.retry_host_predicate.clear();
    }
    if let Some(b) = &r.backoff {
        policy.retry_back_off = Some(
            envoy_types::pb::envoy::config::route::v3::retry_policy::RetryBackOff {
                base_interval: Some(duration(b.as_std())),
                ..Default::default()
            },
        );
    }
    Some(policy)
}

fn header_options(ops: &HeaderOperations) -> (Vec<HeaderValueOption>, Vec<String>) {
    let option = |k: &String, v: &String, action: header_value_option::HeaderAppendAction| {
        HeaderValueOption {
            header: Some(HeaderValue {
                key: k.clone(),
                value: v.clone(),
                ..Default::default()
            }),
            append_action: action as i32,
            ..Default::default()
        }
    };
    let mut add: Vec<HeaderValueOption> = ops
        .set
        .iter()
        .map(|(k, v)| {
            option(
                k,
                v,
                header_value_option::HeaderAppendAction::OverwriteIfExistsOrAdd,
            )
        })
        .collect();
    add.extend(ops.add.iter().map(|(k, v)| {
        option(
            k,
            v,
            header_value_option::HeaderAppendAction::AppendIfExistsOrAdd,
        )
    }));
    (add, ops.remove.clone())
}

fn percent(p: Option<f64>, legacy: i32) -> FractionalPercent {
    // Istio sends percentages as parts per million so fractions survive (value × 10⁴).
    let value = p.unwrap_or(f64::from(legacy));
    FractionalPercent {
        numerator: (value * 10_000.0).round().clamp(0.0, 1_000_000.0) as u32,
        denominator: fractional_percent::DenominatorType::Million as i32,
    }
}

fn fault(f: &weft_config::networking::virtual_service::HTTPFaultInjection) -> HttpFault {
    let mut out = HttpFault::default();
    if let Some(d) = &f.delay
        && let Some(fixed) = &d.fixed_delay
    {
        out.delay = Some(FaultDelay {
            fault_delay_secifier: Some(fault_delay::FaultDelaySecifier::FixedDelay(duration(
                fixed.as_std(),
            ))),
            percentage: Some(percent(d.percentage.as_ref().map(|p| p.value), d.percent)),
        });
    }
    if let Some(a) = &f.abort {
        let error_type = if let Some(code) = a.http_status {
            Some(fault_abort::ErrorType::HttpStatus(
                u32::try_from(code).unwrap_or(500),
            ))
        } else {
            a.grpc_status
                .as_deref()
                .and_then(grpc_code)
                .map(fault_abort::ErrorType::GrpcStatus)
        };
        out.abort = Some(FaultAbort {
            error_type,
            percentage: Some(percent(a.percentage.as_ref().map(|p| p.value), 100)),
            ..Default::default()
        });
    }
    out
}

/// gRPC status names (as Istio accepts them in `abort.grpcStatus`) to codes.
fn grpc_code(name: &str) -> Option<u32> {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES
        .iter()
        .position(|n| *n == name)
        .and_then(|i| u32::try_from(i).ok())
        .or_else(|| name.parse().ok())
}

/// The cluster a destination names, seen from a rule in `namespace` on listener `port`.
pub(super) fn destination_cluster(
    view: &MeshView,
    d: &weft_config::networking::virtual_service::Destination,
    namespace: &str,
    port: u16,
) -> String {
    let host = resolve_host(&d.host, namespace, &view.mesh.domain);
    let port = d
        .port_number()
        .and_then(|p| u16::try_from(p).ok())
        .or_else(|| {
            let svc = view.registry.lookup(&host, namespace)?;
            (svc.ports.len() == 1).then(|| svc.ports[0].port)
        })
        .unwrap_or(port);
    cluster_name(port, &d.subset, &host)
}

fn translate(
    rule: &HTTPRoute,
    m: Option<&HTTPMatchRequest>,
    vs: &Named<VirtualService>,
    view: &MeshView,
    port: u16,
    operation: &str,
) -> Route {
    let mut r = Route {
        name: match m.filter(|m| !m.name.is_empty()) {
            Some(m) if !rule.name.is_empty() => format!("{}.{}", rule.name, m.name),
            Some(m) => m.name.clone(),
            None => rule.name.clone(),
        },
        r#match: Some(route_match(m)),
        decorator: Some(Decorator {
            operation: operation.to_string(),
            ..Default::default()
        }),
        ..Default::default()
    };
    if let Some(h) = &rule.headers {
        apply_headers(&mut r, h);
    }
    if let Some(redirect) = &rule.redirect {
        let mut action = RedirectAction {
            response_code: match redirect.redirect_code {
                302 => redirect_action::RedirectResponseCode::Found,
                303 => redirect_action::RedirectResponseCode::SeeOther,
                307 => redirect_action::RedirectResponseCode::TemporaryRedirect,
                308 => redirect_action::RedirectResponseCode::PermanentRedirect,
                _ => redirect_action::RedirectResponseCode::MovedPermanently,
            } as i32,
            host_redirect: redirect.authority.clone(),
            port_redirect: redirect.port.unwrap_or(0),
            ..Default::default()
        };
        if !redirect.uri.is_empty() {
            action.path_rewrite_specifier = Some(
                redirect_action::PathRewriteSpecifier::PathRedirect(redirect.uri.clone()),
            );
        }
        if !redirect.scheme.is_empty() {
            action.scheme_rewrite_specifier = Some(
                redirect_action::SchemeRewriteSpecifier::SchemeRedirect(redirect.scheme.clone()),
            );
        }
        r.action = Some(route::Action::Redirect(action));
        return r;
    }
    if let Some(dr) = &rule.direct_response {
        r.action = Some(route::Action::DirectResponse(DirectResponseAction {
            status: dr.status,
            body: dr
                .body
                .as_ref()
                .and_then(|b| b.string.clone())
                .map(|s| DataSource {
                    specifier: Some(data_source::Specifier::InlineString(s)),
                    ..Default::default()
                }),
            ..Default::default()
        }));
        return r;
    }
    let timeout = rule
        .timeout
        .as_ref()
        .map(|t| t.as_std())
        .unwrap_or_default();
    let mut action = RouteAction {
        timeout: Some(duration(timeout)),
        retry_policy: retry_policy(rule.retries.as_ref()),
        max_stream_duration: Some(route_action::MaxStreamDuration {
            grpc_timeout_header_max: Some(duration(timeout)),
            ..Default::default()
        }),
        ..Default::default()
    };
    let destinations: Vec<_> = rule
        .route
        .iter()
        .filter(|d| rule.route.len() == 1 || d.weight > 0)
        .filter_map(|d| Some((d, d.destination.as_ref()?)))
        .collect();
    if let [(only, dest)] = destinations[..] {
        action.cluster_specifier = Some(route_action::ClusterSpecifier::Cluster(
            destination_cluster(view, dest, &vs.namespace, port),
        ));
        if let Some(h) = &only.headers {
            apply_headers(&mut r, h);
        }
    } else {
        action.cluster_specifier = Some(route_action::ClusterSpecifier::WeightedClusters(
            WeightedCluster {
                clusters: destinations
                    .iter()
                    .map(|(d, dest)| {
                        let (add, remove) = d
                            .headers
                            .as_ref()
                            .and_then(|h| h.request.as_ref())
                            .map(header_options)
                            .unwrap_or_default();
                        weighted_cluster::ClusterWeight {
                            name: destination_cluster(view, dest, &vs.namespace, port),
                            weight: Some(UInt32Value {
                                value: u32::try_from(d.weight).unwrap_or(0),
                            }),
                            request_headers_to_add: add,
                            request_headers_to_remove: remove,
                            ..Default::default()
                        }
                    })
                    .collect(),
                ..Default::default()
            },
        ));
    }
    if let Some(rw) = &rule.rewrite {
        if !rw.uri.is_empty() {
            action.prefix_rewrite = rw.uri.clone();
        }
        if let Some(rr) = &rw.uri_regex_rewrite {
            action.regex_rewrite = Some(RegexMatchAndSubstitute {
                pattern: Some(RegexMatcher {
                    regex: rr.r#match.clone(),
                    ..Default::default()
                }),
                substitution: rr.rewrite.clone(),
            });
        }
        if !rw.authority.is_empty() {
            action.host_rewrite_specifier = Some(
                route_action::HostRewriteSpecifier::HostRewriteLiteral(rw.authority.clone()),
            );
        }
    }
    if let Some(f) = &rule.fault {
        r.typed_per_filter_config
            .insert(FAULT_FILTER.into(), pack_any(fault(f)));
    }
    r.action = Some(route::Action::Route(action));
    r
}

fn apply_headers(r: &mut Route, h: &Headers) {
    if let Some(req) = &h.request {
        let (add, remove) = header_options(req);
        r.request_headers_to_add.extend(add);
        r.request_headers_to_remove.extend(remove);
    }
    if let Some(resp) = &h.response {
        let (add, remove) = header_options(resp);
        r.response_headers_to_add.extend(add);
        r.response_headers_to_remove.extend(remove);
    }
}

/// The routes of one service's virtual host on `port`.
pub fn service_routes(proxy: &Proxy, view: &MeshView, svc: &Service, port: u16) -> Vec<Route> {
    let operation = format!("{}:{port}/*", svc.hostname);
    let Some(vs) = virtual_service(proxy, view, svc) else {
        return vec![default_route(
            &cluster_name(port, "", &svc.hostname),
            &operation,
        )];
    };
    virtual_service_routes(proxy, view, vs, port, Binding::Mesh, &operation)
}

/// A VirtualService's `http` rules as Envoy routes on `port` for `binding`, in order, up
/// to the first that matches everything (BuildHTTPRoutesForVirtualService).
pub(super) fn virtual_service_routes(
    proxy: &Proxy,
    view: &MeshView,
    vs: &Named<VirtualService>,
    port: u16,
    binding: Binding,
    operation: &str,
) -> Vec<Route> {
    let mut routes = Vec::new();
    'rules: for rule in &vs.spec.http {
        if rule.is_delegating() {
            continue;
        }
        if rule.r#match.is_empty() {
            routes.push(translate(rule, None, vs, view, port, operation));
            break;
        }
        for m in &rule.r#match {
            if !match_applies(m, proxy, port, &vs.namespace, binding) {
                continue;
            }
            let r = translate(rule, Some(m), vs, view, port, operation);
            let catch_all = match binding {
                Binding::Mesh => {
                    m.uri.is_none()
                        && m.headers.is_empty()
                        && m.query_params.is_empty()
                        && m.without_headers.is_empty()
                        && m.method.is_none()
                        && m.authority.is_none()
                        && m.scheme.is_none()
                }
                // Gateways move catch-all routes to the end of a virtual host, so what
                // follows one must be cut here as istiod does (IsCatchAllRoute).
                Binding::Gateway(_) => is_catch_all(&r),
            };
            routes.push(r);
            if catch_all {
                break 'rules;
            }
        }
    }
    routes
}

/// istiod's IsCatchAllRoute: a `/` prefix (or `.*` regex) with no header or query match.
pub(super) fn is_catch_all(r: &Route) -> bool {
    let Some(m) = &r.r#match else { return false };
    let any_path = match &m.path_specifier {
        Some(route_match::PathSpecifier::Prefix(p)) => p == "/",
        Some(route_match::PathSpecifier::PathSeparatedPrefix(p)) => p == "/",
        Some(route_match::PathSpecifier::SafeRegex(r)) => r.regex == ".*",
        _ => false,
    };
    any_path
        && m.headers.is_empty()
        && m.query_parameters.is_empty()
        && m.dynamic_metadata.is_empty()
}

/// istiod's route when no VirtualService applies.
pub(super) fn default_route(cluster: &str, operation: &str) -> Route {
    Route {
        name: "default".into(),
        r#match: Some(route_match(None)),
        action: Some(route::Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.to_string())),
            timeout: Some(duration(std::time::Duration::ZERO)),
            retry_policy: retry_policy(None),
            max_stream_duration: Some(route_action::MaxStreamDuration {
                grpc_timeout_header_max: Some(duration(std::time::Duration::ZERO)),
                ..Default::default()
            }),
            ..Default::default()
        })),
        decorator: Some(Decorator {
            operation: operation.to_string(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The catch-all virtual host for hosts outside the registry.
fn catch_all(policy: OutboundPolicy) -> VirtualHost {
    let (name, action) = match policy {
        OutboundPolicy::AllowAny => (
            "allow_any",
            route::Action::Route(RouteAction {
                cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
                    PASSTHROUGH.into(),
                )),
                timeout: Some(duration(std::time::Duration::ZERO)),
                max_stream_duration: Some(route_action::MaxStreamDuration {
                    grpc_timeout_header_max: Some(duration(std::time::Duration::ZERO)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        ),
        OutboundPolicy::RegistryOnly => (
            "block_all",
            route::Action::DirectResponse(DirectResponseAction {
                status: 502,
                ..Default::default()
            }),
        ),
    };
    let _ = BLACKHOLE;
    VirtualHost {
        name: name.into(),
        domains: vec!["*".into()],
        routes: vec![Route {
            name: name.into(),
            r#match: Some(route_match(None)),
            action: Some(action),
            ..Default::default()
        }],
        include_request_attempt_count: true,
        ..Default::default()
    }
}

/// The RouteConfiguration `PORT` for a sidecar: every visible HTTP service on that port.
pub fn port_routes(proxy: &Proxy, view: &MeshView, port: u16) -> RouteConfiguration {
    let mut hosts: BTreeMap<String, VirtualHost> = BTreeMap::new();
    let mut used = std::collections::BTreeSet::new();
    let scope = super::scope::Scope::of(proxy, view);
    for svc in view.visible_services(proxy, &scope) {
        let Some(sp) = svc.port(port) else { continue };
        if !sp.protocol.is_http() {
            continue;
        }
        let name = format!("{}:{port}", svc.hostname);
        if hosts.contains_key(&name) {
            continue;
        }
        let domains: Vec<String> = domains(proxy, svc, port, false)
            .into_iter()
            .filter(|d| used.insert(d.clone()))
            .collect();
        hosts.insert(
            name.clone(),
            VirtualHost {
                name,
                domains,
                routes: service_routes(proxy, view, svc, port),
                include_request_attempt_count: true,
                ..Default::default()
            },
        );
    }
    let mut virtual_hosts: Vec<VirtualHost> = hosts.into_values().collect();
    virtual_hosts.push(catch_all(scope.outbound_policy));
    RouteConfiguration {
        name: port.to_string(),
        virtual_hosts,
        validate_clusters: Some(BoolValue { value: false }),
        max_direct_response_body_size_bytes: Some(UInt32Value { value: 1_048_576 }),
        ignore_port_in_host_matching: true,
        ..Default::default()
    }
}

pub fn pack(rc: RouteConfiguration) -> (String, Any) {
    (rc.name.clone(), pack_any(rc))
}
