//! How a VirtualService's HTTP match conditions become Envoy route matchers, and which of
//! them apply to a proxy: kept apart from route assembly so the matching rules istiod
//! shares between sidecars and gateways live in one place.

use envoy_types::pb::envoy::config::route::v3::{
    HeaderMatcher, QueryParameterMatcher, Route, RouteMatch, header_matcher,
    query_parameter_matcher, route_match,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{RegexMatcher, StringMatcher, string_matcher};
use envoy_types::pb::google::protobuf::BoolValue;
use weft_config::networking::virtual_service::{HTTPMatchRequest, StringMatch, StringMatchKind};

use super::Binding;
use crate::node::Proxy;
use crate::translate::gateway::resolve_gateway_name;

pub(super) fn string_matcher(m: &StringMatch) -> Option<StringMatcher> {
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
pub(super) fn route_match(m: Option<&HTTPMatchRequest>) -> RouteMatch {
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

/// Whether this match applies to this proxy and listener port (sourceMatchHTTP). For a
/// gateway it is istiod's rule exactly: match-level `gateways` (resolved against the
/// VirtualService's namespace), when given, decide alone; otherwise source labels and
/// namespace must fit the gateway's workload.
pub(super) fn match_applies(
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
        // istiod's sourceMatchHTTP: a match naming gateways is decided by them alone.
        Binding::Mesh if !m.gateways.is_empty() => m.gateways.iter().any(|g| g == "mesh"),
        Binding::Mesh => source(),
        Binding::Gateway(gateway) if !m.gateways.is_empty() => m
            .gateways
            .iter()
            .any(|g| resolve_gateway_name(g, vs_namespace) == gateway),
        Binding::Gateway(_) => source(),
    }
}

/// istiod's IsCatchAllRoute: a `/` prefix (or `.*` regex) with no header or query match.
pub(in crate::translate) fn is_catch_all(r: &Route) -> bool {
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
