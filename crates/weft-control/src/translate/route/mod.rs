//! Outbound HTTP routes: the RouteConfiguration named after a port holds one virtual host
//! per service on that port (domains as istiod generates them) plus the catch-all, and a
//! VirtualService's `http` rules become Envoy routes in order (istiod's translateRoute).

mod cors;
mod matching;
mod mirror;
mod policy;

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source};
use envoy_types::pb::envoy::config::route::v3::{
    Decorator, DirectResponseAction, RedirectAction, Route, RouteAction, RouteConfiguration,
    VirtualHost, WeightedCluster, redirect_action, route, route_action, weighted_cluster,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{RegexMatchAndSubstitute, RegexMatcher};
use envoy_types::pb::google::protobuf::{Any, BoolValue, UInt32Value};
use envoy_types::util::pack_any;
use route_action::HashPolicy;
use weft_config::networking::virtual_service::{HTTPMatchRequest, HTTPRoute, VirtualService};

use super::cluster::{PASSTHROUGH, duration};
use super::names::{cluster_name, host_matches, resolve_host};
use super::traffic_policy::{hash_policy, route_hash};
use super::view::{MeshView, Named, OutboundPolicy};
use crate::node::Proxy;
use crate::registry::Service;
use matching::{match_applies, route_match};
use policy::{apply_headers, fault, header_options, retry_policy};

pub(super) use matching::is_catch_all;

pub const FAULT_FILTER: &str = "envoy.filters.http.fault";
pub use cors::CORS_FILTER;

/// The VirtualService (if any) that routes `svc` for this proxy: applies to the mesh,
/// visible in the proxy's namespace, host matching; the proxy's own namespace first.
pub(super) fn virtual_service<'a>(
    proxy: &Proxy,
    view: &'a MeshView,
    svc: &Service,
) -> Option<&'a Named<VirtualService>> {
    let scope = super::scope::Scope::of(proxy, view);
    let applies = |i: &usize| {
        let vs = &view.virtual_services[*i];
        vs.spec.applies_to_mesh()
            && !vs.spec.is_delegate()
            && MeshView::exported(&vs.spec.export_to, &vs.namespace, &proxy.namespace)
            && view.vs_hosts.hosts(*i).iter().any(|host| {
                host_matches(host, &svc.hostname)
                    && scope.imports(&vs.namespace, host, &proxy.namespace)
            })
    };
    let mut matching: Vec<&Named<VirtualService>> = view
        .vs_hosts
        .matching(&svc.hostname)
        .into_iter()
        .filter(applies)
        .map(|i| &view.virtual_services[i])
        .collect();
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

/// Who a VirtualService's HTTP routes are built for: the mesh's sidecars, or the gateway
/// `namespace/name` a router serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Binding<'a> {
    Mesh,
    Gateway(&'a str),
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

/// The route `hash_policy` for a destination: from the DestinationRule the proxy sees for
/// its host, if that hashes consistently (istiod's hashForHTTPDestination).
fn destination_hash(
    proxy: &Proxy,
    view: &MeshView,
    d: &weft_config::networking::virtual_service::Destination,
    namespace: &str,
) -> Option<HashPolicy> {
    let host = resolve_host(&d.host, namespace, &view.mesh.domain);
    let host_namespace = view
        .registry
        .lookup(&host, namespace)
        .map_or("", |s| s.namespace.as_str());
    let dr = view.destination_rule(&host, &proxy.namespace, host_namespace)?;
    let port = d.port_number().and_then(|p| u16::try_from(p).ok());
    hash_policy(route_hash(&dr.spec, &d.subset, port)?)
}

fn translate(
    proxy: &Proxy,
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
    // Whatever the route does, as istiod: a fault or CORS policy applies to redirects and
    // direct responses too.
    if let Some(f) = &rule.fault {
        r.typed_per_filter_config
            .insert(FAULT_FILTER.into(), pack_any(fault(f)));
    }
    if let Some(c) = &rule.cors_policy {
        r.typed_per_filter_config
            .insert(CORS_FILTER.into(), pack_any(cors::policy(c)));
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
    let destinations: Vec<_> = rule
        .route
        .iter()
        .filter(|d| rule.route.len() == 1 || d.weight > 0)
        .filter_map(|d| Some((d, d.destination.as_ref()?)))
        .collect();
    let hash_policy: Vec<HashPolicy> = destinations
        .iter()
        .filter_map(|(_, dest)| destination_hash(proxy, view, dest, &vs.namespace))
        .collect();
    let mut action = RouteAction {
        timeout: Some(duration(timeout)),
        retry_policy: retry_policy(
            rule.retries.as_ref(),
            rule.route.len() == 1 && !hash_policy.is_empty(),
        ),
        max_stream_duration: Some(route_action::MaxStreamDuration {
            grpc_timeout_header_max: Some(duration(timeout)),
            ..Default::default()
        }),
        hash_policy,
        ..Default::default()
    };
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
    action.request_mirror_policies = mirror::policies(rule, view, &vs.namespace, port);
    r.action = Some(route::Action::Route(action));
    r
}

/// The routes of one service's virtual host on `port`.
pub fn service_routes(proxy: &Proxy, view: &MeshView, svc: &Service, port: u16) -> Vec<Route> {
    let operation = format!("{}:{port}/*", svc.hostname);
    let Some(vs) = virtual_service(proxy, view, svc) else {
        let mut route = default_route(&cluster_name(port, "", &svc.hostname), &operation);
        // Without a VirtualService a rule's consistent hash still applies, port-level first
        // (istiod's hashForService); retries keep avoiding previous hosts.
        if let Some(hash) = view
            .destination_rule(&svc.hostname, &proxy.namespace, &svc.namespace)
            .and_then(|dr| route_hash(&dr.spec, "", Some(port)))
            .and_then(hash_policy)
            && let Some(route::Action::Route(action)) = &mut route.action
        {
            action.hash_policy = vec![hash];
        }
        return vec![route];
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
            routes.push(translate(proxy, rule, None, vs, view, port, operation));
            break;
        }
        for m in &rule.r#match {
            if !match_applies(m, proxy, port, &vs.namespace, binding) {
                continue;
            }
            let r = translate(proxy, rule, Some(m), vs, view, port, operation);
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

/// istiod's route when no VirtualService applies.
pub(super) fn default_route(cluster: &str, operation: &str) -> Route {
    Route {
        name: "default".into(),
        r#match: Some(route_match(None)),
        action: Some(route::Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.to_string())),
            timeout: Some(duration(std::time::Duration::ZERO)),
            retry_policy: retry_policy(None, false),
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
        // Envoy compares domains without case (and refuses a table that repeats one), so a
        // host differing from an earlier one only in case adds nothing.
        let domains: Vec<String> = domains(proxy, svc, port, false)
            .into_iter()
            .filter(|d| used.insert(d.to_ascii_lowercase()))
            .collect();
        // Every name it had already belongs to another: Envoy would send it nothing.
        if domains.is_empty() {
            continue;
        }
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

#[cfg(test)]
mod tests;
