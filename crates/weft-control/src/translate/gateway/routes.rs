//! The RDS side of a router: one RouteConfiguration per HTTP port, its virtual hosts made
//! from the bound VirtualServices as istiod's buildGatewayHTTPRouteConfig makes them.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::route::v3::{
    Route, RouteConfiguration, VirtualHost, route, route_action, route_match, virtual_host,
};
use envoy_types::pb::google::protobuf::{Any, BoolValue, UInt32Value};
use envoy_types::util::pack_any;

use super::hosts::{host_order, hosts_for_namespace, intersection, vs_hosts};
use super::{MergedPort, virtual_services_for_gateway};
use crate::node::Proxy;
use crate::translate::route::{Binding, is_catch_all, virtual_service_routes};
use crate::translate::view::MeshView;

/// istiod's GetRouteOperation: `HOST:PORT` of the one destination cluster (else the
/// VirtualService's name and the listener port) and the path matched.
fn operation(r: &Route, vs_name: &str, port: u16) -> String {
    let path = match r.r#match.as_ref().and_then(|m| m.path_specifier.as_ref()) {
        Some(route_match::PathSpecifier::Prefix(p)) => format!("{p}*"),
        Some(route_match::PathSpecifier::Path(p)) => p.clone(),
        Some(route_match::PathSpecifier::SafeRegex(re)) => re.regex.clone(),
        _ => "/*".into(),
    };
    if let Some(route::Action::Route(a)) = &r.action
        && let Some(route_action::ClusterSpecifier::Cluster(c)) = &a.cluster_specifier
        && let ["outbound", p, _, host] = c.split('|').collect::<Vec<_>>()[..]
        && let Ok(p) = p.parse::<u16>()
    {
        return format!("{host}:{p}{path}");
    }
    format!("{vs_name}:{port}{path}")
}

/// Where routes came from: the gateway (`namespace/name`) and the VirtualService.
type Source = (String, String);

/// A virtual host being built, with what its routes came from (so hosts with the very same
/// routes can share one, as istiod's collapseDuplicateRoutes does).
struct PendingHost {
    routes: Vec<Route>,
    sources: Vec<Source>,
    require_tls: bool,
}

/// buildGatewayHTTPRouteConfig for the HTTP servers of one port.
pub(super) fn route_config(
    proxy: &Proxy,
    view: &MeshView,
    port: &MergedPort,
) -> RouteConfiguration {
    let mut hosts: BTreeMap<String, PendingHost> = BTreeMap::new();
    // Routes of one VirtualService for one gateway, built once (empty: it has none here).
    let mut built: BTreeMap<Source, Vec<Route>> = BTreeMap::new();
    let number = port.number;
    for s in &port.servers {
        let redirect = s.https_redirect();
        for vs in virtual_services_for_gateway(proxy, view, &s.gateway) {
            let common = intersection(
                &hosts_for_namespace(&s.hosts, &vs.namespace),
                &vs_hosts(vs, view),
            );
            if common.is_empty() {
                continue;
            }
            let source = (s.gateway.clone(), format!("{}/{}", vs.namespace, vs.name));
            let routes = built.entry(source.clone()).or_insert_with(|| {
                let mut routes = virtual_service_routes(
                    proxy,
                    view,
                    vs,
                    number,
                    Binding::Gateway(&s.gateway),
                    "",
                );
                for r in &mut routes {
                    let op = operation(r, &vs.name, number);
                    if let Some(d) = &mut r.decorator {
                        d.operation = op;
                    }
                }
                routes
            });
            if routes.is_empty() {
                continue;
            }
            for host in common {
                let pending = hosts
                    .entry(host.to_lowercase())
                    .or_insert_with(|| PendingHost {
                        routes: Vec::new(),
                        sources: Vec::new(),
                        require_tls: false,
                    });
                pending.routes.extend(routes.iter().cloned());
                pending.sources.push(source.clone());
                pending.require_tls |= redirect;
            }
        }
        if redirect {
            for h in &s.hosts {
                let host = h.rsplit_once('/').map_or(h.as_str(), |(_, h)| h);
                hosts
                    .entry(host.to_lowercase())
                    .or_insert_with(|| PendingHost {
                        routes: Vec::new(),
                        sources: Vec::new(),
                        require_tls: true,
                    })
                    .require_tls = true;
            }
        }
    }
    let virtual_hosts = if hosts.is_empty() {
        // Envoy answers 404 (NR) for every request to a virtual host without routes.
        tracing::warn!(route = %port.route_name, "gateway route config has no virtual hosts; every request gets 404");
        vec![VirtualHost {
            name: format!("blackhole:{number}"),
            domains: vec!["*".into()],
            ..Default::default()
        }]
    } else {
        collapse(hosts, number)
    };
    RouteConfiguration {
        name: port.route_name.clone(),
        virtual_hosts,
        validate_clusters: Some(BoolValue { value: false }),
        ignore_port_in_host_matching: true,
        max_direct_response_body_size_bytes: Some(UInt32Value { value: 1_048_576 }),
        ..Default::default()
    }
}

/// One virtual host per host, hosts whose routes came from the same VirtualServices
/// sharing the first one's (collapseDuplicateRoutes); catch-all routes last in each
/// (SortVHostRoutes); sorted by name (SortVirtualHosts).
fn collapse(hosts: BTreeMap<String, PendingHost>, port: u16) -> Vec<VirtualHost> {
    let mut names: Vec<String> = hosts.keys().cloned().collect();
    names.sort_by(|a, b| host_order(a, b));
    let mut hosts = hosts;
    let mut out: Vec<(Vec<Source>, bool, VirtualHost)> = Vec::new();
    // Envoy compares domains without case and refuses a table that repeats one: of hosts
    // differing only in case, the first in order serves.
    let mut used = std::collections::BTreeSet::new();
    for name in names {
        let Some(p) = hosts.remove(&name) else {
            continue;
        };
        if !used.insert(name.to_ascii_lowercase()) {
            continue;
        }
        if let Some((_, _, vh)) = out
            .iter_mut()
            .find(|(sources, tls, _)| *sources == p.sources && *tls == p.require_tls)
        {
            vh.domains.push(name);
            continue;
        }
        let (catch_all, mut routes): (Vec<Route>, Vec<Route>) =
            p.routes.into_iter().partition(is_catch_all);
        routes.extend(catch_all);
        let vh = VirtualHost {
            name: format!("{name}:{port}"),
            domains: vec![name],
            routes,
            include_request_attempt_count: true,
            require_tls: if p.require_tls {
                virtual_host::TlsRequirementType::All as i32
            } else {
                0
            },
            ..Default::default()
        };
        out.push((p.sources, p.require_tls, vh));
    }
    let mut out: Vec<VirtualHost> = out.into_iter().map(|(_, _, vh)| vh).collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

pub(super) fn pack_route(rc: RouteConfiguration) -> (String, Any) {
    (rc.name.clone(), pack_any(rc))
}
