//! Delegate VirtualServices merged into their roots, as istiod does before translating
//! (mergeVirtualServicesIfNeeded): a root's `http` route naming a `delegate` is replaced
//! by the delegate's routes, each with its matches narrowed by the root route's (a
//! delegate match that contradicts every root match drops the route) and the root route's
//! settings filling what the delegate route leaves unset. Delegates (VirtualServices
//! without hosts) are not translated on their own; a delegate that is missing or not
//! exported to the root's namespace removes the root route.

use std::collections::BTreeMap;

use weft_config::networking::virtual_service::{
    Destination, HTTPMatchRequest, HTTPRoute, StringMatch, VirtualService,
};

use super::gateway::resolve_gateway_name;
use super::names::resolve_host;
use super::view::{MeshView, Named};

/// The VirtualServices translation sees: roots with their delegates merged in, other
/// VirtualServices as they are, delegates left out.
pub fn merge(all: Vec<Named<VirtualService>>, domain: &str) -> Vec<Named<VirtualService>> {
    let delegates: BTreeMap<(String, String), &Named<VirtualService>> = all
        .iter()
        .filter(|vs| vs.spec.is_delegate())
        .map(|vs| ((vs.namespace.clone(), vs.name.clone()), vs))
        .collect();
    let mut out = Vec::new();
    for vs in all.iter().filter(|vs| !vs.spec.is_delegate()) {
        if !vs.spec.http.iter().any(HTTPRoute::is_delegating) {
            out.push(vs.clone());
            continue;
        }
        let mut root = vs.clone();
        root.spec.http = Vec::new();
        for route in &vs.spec.http {
            let Some(d) = &route.delegate else {
                root.spec.http.push(route.clone());
                continue;
            };
            let namespace = if d.namespace.is_empty() {
                &vs.namespace
            } else {
                &d.namespace
            };
            let Some(delegate) = delegates.get(&(namespace.clone(), d.name.clone())) else {
                tracing::warn!(
                    "delegate VirtualService {namespace}/{} of {}/{} not found",
                    d.name,
                    vs.namespace,
                    vs.name
                );
                continue;
            };
            if !MeshView::exported(&delegate.spec.export_to, namespace, &vs.namespace) {
                tracing::warn!(
                    "delegate VirtualService {namespace}/{} is not exported to {}",
                    d.name,
                    vs.namespace
                );
                continue;
            }
            for sub in &delegate.spec.http {
                let mut sub = sub.clone();
                own_names(&mut sub, namespace, domain);
                if let Some(merged) = merge_route(route, sub) {
                    root.spec.http.push(merged);
                }
            }
        }
        out.push(root);
    }
    out
}

/// Resolves the delegate's short host and gateway names in its own namespace, which the
/// merged route no longer carries.
fn own_names(r: &mut HTTPRoute, namespace: &str, domain: &str) {
    let fqdn = |d: &mut Destination| d.host = resolve_host(&d.host, namespace, domain);
    for d in r.route.iter_mut().filter_map(|d| d.destination.as_mut()) {
        fqdn(d);
    }
    if let Some(m) = &mut r.mirror {
        fqdn(m);
    }
    for m in r.mirrors.iter_mut().filter_map(|m| m.destination.as_mut()) {
        fqdn(m);
    }
    for m in &mut r.r#match {
        for g in &mut m.gateways {
            *g = resolve_gateway_name(g, namespace);
        }
    }
}

/// istiod's mergeHTTPRoute: `None` when the matches conflict.
fn merge_route(root: &HTTPRoute, mut sub: HTTPRoute) -> Option<HTTPRoute> {
    sub.r#match = merge_matches(&root.r#match, &sub.r#match)?;
    sub.name = joined(&root.name, &sub.name);
    fn inherit<T: Clone>(mine: &mut Option<T>, root: &Option<T>) {
        if mine.is_none() {
            mine.clone_from(root);
        }
    }
    inherit(&mut sub.rewrite, &root.rewrite);
    inherit(&mut sub.direct_response, &root.direct_response);
    inherit(&mut sub.timeout, &root.timeout);
    inherit(&mut sub.retries, &root.retries);
    inherit(&mut sub.fault, &root.fault);
    inherit(&mut sub.mirror, &root.mirror);
    inherit(&mut sub.mirror_percent, &root.mirror_percent);
    inherit(&mut sub.mirror_percentage, &root.mirror_percentage);
    inherit(&mut sub.cors_policy, &root.cors_policy);
    inherit(&mut sub.headers, &root.headers);
    if sub.mirrors.is_empty() {
        sub.mirrors.clone_from(&root.mirrors);
    }
    Some(sub)
}

fn joined(root: &str, sub: &str) -> String {
    match (root.is_empty(), sub.is_empty()) {
        (_, true) => root.to_string(),
        (true, false) => sub.to_string(),
        (false, false) => format!("{root}-{sub}"),
    }
}

/// istiod's mergeHTTPMatchRequests: every delegate match is combined with each root match
/// it does not contradict, and must find at least one.
fn merge_matches(
    root: &[HTTPMatchRequest],
    sub: &[HTTPMatchRequest],
) -> Option<Vec<HTTPMatchRequest>> {
    if root.is_empty() {
        return Some(sub.to_vec());
    }
    if sub.is_empty() {
        return Some(root.to_vec());
    }
    let mut out = Vec::new();
    for s in sub {
        let before = out.len();
        out.extend(
            root.iter()
                .filter(|r| !conflicts(r, s))
                .map(|r| merge_match(r, s)),
        );
        if out.len() == before {
            return None;
        }
    }
    Some(out)
}

fn merge_match(root: &HTTPMatchRequest, sub: &HTTPMatchRequest) -> HTTPMatchRequest {
    let mut out = sub.clone();
    out.name = joined(&root.name, &sub.name);
    for (mine, theirs) in [
        (&mut out.uri, &root.uri),
        (&mut out.scheme, &root.scheme),
        (&mut out.method, &root.method),
        (&mut out.authority, &root.authority),
    ] {
        if mine.is_none() {
            mine.clone_from(theirs);
        }
    }
    let union = |r: &BTreeMap<String, StringMatch>, s: &BTreeMap<String, StringMatch>| {
        let mut m = r.clone();
        m.extend(s.iter().map(|(k, v)| (k.clone(), v.clone())));
        m
    };
    out.headers = union(&root.headers, &sub.headers);
    out.without_headers = union(&root.without_headers, &sub.without_headers);
    out.query_params = union(&root.query_params, &sub.query_params);
    if out.port == 0 {
        out.port = root.port;
    }
    let mut labels = root.source_labels.clone();
    labels.extend(sub.source_labels.clone());
    out.source_labels = labels;
    if out.source_namespace.is_empty() {
        out.source_namespace.clone_from(&root.source_namespace);
    }
    if out.gateways.is_empty() {
        out.gateways.clone_from(&root.gateways);
    }
    if out.stat_prefix.is_empty() {
        out.stat_prefix.clone_from(&root.stat_prefix);
    }
    out
}

/// istiod's hasConflict: whether the delegate match asks for something the root match
/// excludes (the delegate may only narrow).
fn conflicts(root: &HTTPMatchRequest, leaf: &HTTPMatchRequest) -> bool {
    let pairs = [
        (&root.uri, &leaf.uri),
        (&root.scheme, &leaf.scheme),
        (&root.method, &leaf.method),
        (&root.authority, &leaf.authority),
    ];
    if pairs
        .into_iter()
        .any(|(r, l)| string_conflict(r.as_ref(), l.as_ref()))
    {
        return true;
    }
    let keyed = |r: &BTreeMap<String, StringMatch>, l: &BTreeMap<String, StringMatch>| {
        l.iter().any(|(k, v)| string_conflict(r.get(k), Some(v)))
    };
    if keyed(&root.headers, &leaf.headers)
        || keyed(&root.without_headers, &leaf.without_headers)
        || keyed(&root.query_params, &leaf.query_params)
    {
        return true;
    }
    if root.ignore_uri_case != leaf.ignore_uri_case
        || (root.port > 0 && leaf.port > 0 && root.port != leaf.port)
        || (!root.source_namespace.is_empty() && leaf.source_namespace != root.source_namespace)
    {
        return true;
    }
    if leaf
        .source_labels
        .iter()
        .any(|(k, v)| root.source_labels.get(k).is_some_and(|r| r != v))
    {
        return true;
    }
    !root.gateways.is_empty()
        && !leaf.gateways.is_empty()
        && (root.gateways.len() < leaf.gateways.len()
            || leaf.gateways.iter().any(|g| !root.gateways.contains(g)))
}

/// istiod's stringMatchConflict: a delegate's exact or prefix match must lie inside the
/// root's; regexes only combine with nothing.
fn string_conflict(root: Option<&StringMatch>, leaf: Option<&StringMatch>) -> bool {
    let (Some(root), Some(leaf)) = (root, leaf) else {
        return false;
    };
    fn set(s: &Option<String>) -> Option<&str> {
        s.as_deref().filter(|s| !s.is_empty())
    }
    let any = |m: &StringMatch| set(&m.regex).or(set(&m.prefix)).or(set(&m.exact)).is_some();
    if set(&root.regex).is_some() && any(leaf) {
        return true;
    }
    if set(&leaf.regex).is_some() && any(root) {
        return true;
    }
    if let Some(exact) = set(&root.exact) {
        return set(&leaf.prefix).is_some() || set(&leaf.exact) != Some(exact);
    }
    if let Some(prefix) = set(&root.prefix) {
        if let Some(p) = set(&leaf.prefix) {
            return !p.starts_with(prefix);
        }
        if let Some(e) = set(&leaf.exact) {
            return !e.starts_with(prefix);
        }
    }
    true
}

#[cfg(test)]
mod tests;
