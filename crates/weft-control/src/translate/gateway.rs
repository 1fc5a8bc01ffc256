//! Routers (Istio's gateways) as istiod builds them (pilot/pkg/networking/core/gateway.go):
//! the Gateways whose selector matches the proxy's labels, from every namespace, are merged
//! by port (model.mergeGateways); each port becomes a listener `BIND_PORT` that binds.
//! HTTP servers share one connection manager whose RDS config `http.PORT` holds a virtual
//! host per host a bound VirtualService and a server have in common; TCP servers and TLS
//! PASSTHROUGH servers get tcp_proxy chains from the VirtualServices' `tcp` and `tls` rules,
//! the latter matched on SNI. Clusters are every service the gateway's namespace can see.
//! TLS termination (SIMPLE, MUTUAL, ...) and AUTO_PASSTHROUGH are not built: such servers
//! are skipped with a warning.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, FilterChainMatch, Listener, ListenerFilter, filter, listener_filter,
};
use envoy_types::pb::envoy::config::route::v3::{
    Route, RouteConfiguration, VirtualHost, route, route_action, route_match, virtual_host,
};
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::{
    ForwardClientCertDetails, SetCurrentClientCertDetails,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use envoy_types::pb::google::protobuf::{Any, BoolValue, UInt32Value};
use envoy_types::util::pack_any;
use weft_config::networking::gateway::{Protocol, Server, ServerTLSSettingsTLSmode as TlsMode};
use weft_config::networking::virtual_service::{MESH_GATEWAY, RouteDestination, VirtualService};

use super::Generated;
use super::cluster::{PASSTHROUGH, duration, outbound};
use super::endpoints::{load_assignment, socket_address};
use super::listener::outbound_hcm;
use super::names::resolve_host;
use super::route::{Binding, destination_cluster, is_catch_all, virtual_service_routes};
use super::view::{MeshView, Named};
use crate::node::Proxy;
use crate::registry::selects;

const HCM: &str = "envoy.filters.network.http_connection_manager";
const TCP_PROXY: &str = "envoy.filters.network.tcp_proxy";
const TLS_INSPECTOR: &str = "envoy.filters.listener.tls_inspector";
/// istiod's name for the wildcard a gateway listener binds (getWildcardsAndLocalHost).
const WILDCARD: &str = "0.0.0.0";
/// defaultGatewayTransportSocketConnectTimeout, set on every gateway filter chain.
const TRANSPORT_SOCKET_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Everything a router is sent.
pub fn generate(proxy: &Proxy, view: &MeshView) -> Generated {
    let ports = merge(proxy, view);
    let mut listeners: Vec<(String, Listener)> = Vec::new();
    let mut routes = Vec::new();
    // SNI hosts already given a chain, per listener port (istiod's tlsHostsByPort).
    let mut sni_taken: BTreeMap<u16, BTreeMap<String, String>> = BTreeMap::new();
    for port in &ports {
        let bind = if port.bind.is_empty() {
            WILDCARD
        } else {
            &port.bind
        };
        let name = format!("{bind}_{}", port.number);
        let chains = if Protocol::parse(&port.protocol).is_http() {
            routes.push(pack_route(route_config(proxy, view, port)));
            vec![http_chain(&name, &port.route_name)]
        } else {
            port.servers
                .iter()
                .flat_map(|s| {
                    let taken = sni_taken.entry(port.number).or_default();
                    tcp_chains(proxy, view, s, port.number, taken)
                })
                .collect()
        };
        match listeners.iter_mut().find(|(n, _)| *n == name) {
            Some((_, l)) => l.filter_chains.extend(chains),
            None => {
                let address = if port.bind.is_empty() {
                    &view.mesh.capture_bind
                } else {
                    &port.bind
                };
                listeners.push((
                    name.clone(),
                    Listener {
                        name,
                        address: Some(socket_address(address, port.number)),
                        filter_chains: chains,
                        traffic_direction: TrafficDirection::Outbound as i32,
                        ..Default::default()
                    },
                ));
            }
        }
    }
    let listeners = listeners
        .into_iter()
        .filter(|(name, l)| {
            // istiod omits a listener left without chains ("must have more than 0 chains").
            if l.filter_chains.is_empty() {
                tracing::warn!(listener = %name, node = %proxy.id, "gateway listener has no filter chain; omitted");
            }
            !l.filter_chains.is_empty()
        })
        .map(|(name, mut l)| {
            if l.filter_chains.iter().any(|c| {
                c.filter_chain_match
                    .as_ref()
                    .is_some_and(|m| !m.server_names.is_empty())
            }) {
                l.listener_filters = vec![tls_inspector()];
            }
            (name, pack_any(l))
        })
        .collect();

    // Gateways have no original-destination listener, so no PassthroughCluster; Sidecar
    // resources do not scope them (DefaultSidecarScopeForGateway): every service visible
    // from the gateway's namespace gets its clusters.
    let unscoped;
    let cluster_view = if view.sidecars.is_empty() {
        view
    } else {
        unscoped = MeshView {
            sidecars: Vec::new(),
            ..view.clone()
        };
        &unscoped
    };
    let built: Vec<_> = outbound(proxy, cluster_view)
        .into_iter()
        .filter(|b| b.name != PASSTHROUGH)
        .collect();
    let endpoints = built
        .iter()
        .filter_map(|b| b.eds.as_ref().map(|e| load_assignment(e, view)))
        .collect();
    Generated {
        listeners,
        routes,
        clusters: built.into_iter().map(|b| (b.name, b.body)).collect(),
        endpoints,
    }
}

/// One Gateway server as merged: its owner (`namespace/name`), hosts with `./` and `*/`
/// resolved (sanitizeServerHostNamespace).
struct GatewayServer<'a> {
    gateway: String,
    server: &'a Server,
    hosts: Vec<String>,
}

impl GatewayServer<'_> {
    fn https_redirect(&self) -> bool {
        self.server.tls.as_ref().is_some_and(|t| t.https_redirect)
    }
}

/// The servers one listener port serves (model.ServerPort with its MergedServers).
struct MergedPort<'a> {
    number: u16,
    /// The protocol of the first server, as written: it decides HTTP or TCP.
    protocol: String,
    bind: String,
    route_name: String,
    servers: Vec<GatewayServer<'a>>,
}

/// `./host` is the Gateway's namespace, `*/host` any namespace (plain `host`).
fn sanitize(hosts: &[String], namespace: &str) -> Vec<String> {
    let mut out = Vec::with_capacity(hosts.len());
    for h in hosts {
        match h.split_once('/') {
            Some((".", host)) => out.push(format!("{namespace}/{host}")),
            Some(("*", "*")) => return vec!["*".into()],
            Some(("*", host)) => out.push(host.to_string()),
            _ => out.push(h.clone()),
        }
    }
    out
}

/// gatewayRDSRouteName for the servers built here: `http.PORT[.BIND]`, none for TCP.
fn rds_name(protocol: Protocol, port: u16, bind: &str) -> String {
    if !protocol.is_http() {
        return String::new();
    }
    if bind.is_empty() {
        format!("http.{port}")
    } else {
        format!("http.{port}.{bind}")
    }
}

/// Whether this server is built; warns about those needing TLS termination or SNI-DNAT.
fn supported(gateway: &str, server: &Server, protocol: Protocol) -> bool {
    let port = server.port.as_ref().map_or(0, |p| p.number);
    let Some(tls) = &server.tls else {
        return true;
    };
    if protocol.is_http() {
        // An HTTP server's `tls` only asks for an HTTPS redirect.
        return true;
    }
    match tls.mode {
        TlsMode::Passthrough => true,
        mode => {
            tracing::warn!(
                gateway,
                server = %server.name,
                port,
                hosts = ?server.hosts,
                "gateway server with TLS mode {} is not supported (only PASSTHROUGH); skipped",
                mode.as_str()
            );
            false
        }
    }
}

/// istiod's canMergeProtocols(new, existing).
fn can_merge(new: Protocol, existing: Protocol) -> bool {
    (new.is_http() || new == existing) && existing.is_http()
}

/// The Gateways that select this proxy, merged by port as model.mergeGateways does: HTTP
/// servers on one port share it, TLS servers on one port are told apart by SNI (so their
/// hosts must differ), anything else on a taken port is dropped with a warning.
fn merge<'a>(proxy: &Proxy, view: &'a MeshView) -> Vec<MergedPort<'a>> {
    let mut ports: Vec<MergedPort<'a>> = Vec::new();
    let mut seen: BTreeSet<u16> = BTreeSet::new();
    // Port -> (protocol, bind) of its plaintext server.
    let mut plaintext: BTreeMap<u16, (String, String)> = BTreeMap::new();
    // Port -> host -> bind of TLS servers (CheckDuplicates).
    let mut tls_hosts: BTreeMap<u16, BTreeMap<String, String>> = BTreeMap::new();
    let mut tls_binds: BTreeMap<u16, BTreeSet<String>> = BTreeMap::new();
    let mut route_names: BTreeSet<String> = BTreeSet::new();
    let selected = view
        .gateways
        .iter()
        .filter(|g| selects(&g.spec.selector, &proxy.labels));
    for gw in selected {
        let gateway = format!("{}/{}", gw.namespace, gw.name);
        for server in &gw.spec.servers {
            let Some(p) = &server.port else { continue };
            let Some(number) = u16::try_from(p.number).ok().filter(|n| *n != 0) else {
                continue;
            };
            let protocol = Protocol::parse(&p.protocol);
            if !supported(&gateway, server, protocol) {
                continue;
            }
            let hosts = sanitize(&server.hosts, &gw.namespace);
            let bind = server.bind.clone();
            let route_name = rds_name(protocol, number, &bind);
            let skip = |why: &str| {
                tracing::warn!(gateway = %gateway, port = number, hosts = ?server.hosts, "skipping gateway server: {why}");
            };
            if server.tls.is_some() {
                let known = tls_hosts.entry(number).or_default();
                let duplicates: Vec<&String> = hosts
                    .iter()
                    .filter(|h| known.get(*h) == Some(&bind))
                    .collect();
                if !duplicates.is_empty() {
                    skip(&format!("duplicate TLS hosts {duplicates:?}"));
                    continue;
                }
                for h in &hosts {
                    known.insert(h.clone(), bind.clone());
                }
            }
            let entry = GatewayServer {
                gateway: gateway.clone(),
                server,
                hosts,
            };
            let key = |m: &MergedPort, proto: &str, bind: &str| {
                m.number == number && m.protocol == proto && m.bind == bind
            };
            if !seen.insert(number) {
                if let Some((current, current_bind)) = plaintext.get(&number) {
                    let same_bind = *current_bind == bind;
                    if same_bind && !can_merge(protocol, Protocol::parse(current)) {
                        skip(&format!("conflicts with the {current} server on this port"));
                        continue;
                    }
                    if same_bind && route_name.is_empty() {
                        skip("a TCP server cannot share a port");
                        continue;
                    }
                    let (proto, b) = if same_bind {
                        (current.clone(), current_bind.clone())
                    } else {
                        (p.protocol.clone(), bind.clone())
                    };
                    match ports.iter_mut().find(|m| key(m, &proto, &b)) {
                        Some(m) => m.servers.push(entry),
                        None => ports.push(MergedPort {
                            number,
                            protocol: proto,
                            bind: b,
                            route_name,
                            servers: vec![entry],
                        }),
                    }
                } else {
                    if protocol.is_http() && !route_names.insert(route_name.clone()) {
                        skip("its route name is taken on this TLS port");
                        continue;
                    }
                    let new_bind = tls_binds.entry(number).or_default().insert(bind.clone());
                    if server.tls.is_none() && !new_bind {
                        skip("a server without TLS on a TLS port");
                        continue;
                    }
                    match ports.iter_mut().find(|m| key(m, &p.protocol, &bind)) {
                        Some(m) => m.servers.push(entry),
                        None => ports.push(MergedPort {
                            number,
                            protocol: p.protocol.clone(),
                            bind,
                            route_name,
                            servers: vec![entry],
                        }),
                    }
                }
                continue;
            }
            let is_tls_server = server.tls.is_some() && !protocol.is_http();
            if !is_tls_server {
                plaintext.insert(number, (p.protocol.clone(), bind.clone()));
            }
            if protocol.is_http() {
                route_names.insert(route_name.clone());
            }
            ports.push(MergedPort {
                number,
                protocol: p.protocol.clone(),
                bind,
                route_name,
                servers: vec![entry],
            });
        }
    }
    ports
}

/// Resolves a VirtualService's gateway reference against its namespace as istiod does
/// (resolveGatewayName): `name` and `./name` are in that namespace, `ns/name` is taken as
/// written, the legacy `name.ns.svc...` form becomes `ns/name`; `mesh` stays `mesh`.
pub(super) fn resolve_gateway_name(name: &str, namespace: &str) -> String {
    if name == MESH_GATEWAY {
        return name.to_string();
    }
    match name.split_once('/') {
        Some((".", rest)) => format!("{namespace}/{rest}"),
        Some(_) => name.to_string(),
        None => match name.split_once('.') {
            None => format!("{namespace}/{name}"),
            Some((short, rest)) => {
                let ns = rest.split('.').next().unwrap_or(rest);
                format!("{ns}/{short}")
            }
        },
    }
}

/// host.Name.SubsetOf: `n` is covered by `o`.
fn subset_of(n: &str, o: &str) -> bool {
    match (n.strip_prefix('*'), o.strip_prefix('*')) {
        (Some(ns), Some(os)) => n.len() >= o.len() && ns.ends_with(os),
        (Some(_), None) => false,
        (None, Some(os)) => n.ends_with(os),
        (None, None) => n == o,
    }
}

/// host.Name.Matches: either covers the other.
fn matches(a: &str, b: &str) -> bool {
    subset_of(a, b) || subset_of(b, a)
}

/// host.Names.Intersection: for each pair where one covers the other, the narrower one.
fn intersection(a: &[String], b: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for x in a {
        for y in b {
            let narrower = if subset_of(x, y) {
                x
            } else if subset_of(y, x) {
                y
            } else {
                continue;
            };
            if !out.contains(narrower) {
                out.push(narrower.clone());
            }
        }
    }
    out
}

/// host.NamesForNamespace: the server hosts a VirtualService in `namespace` may bind.
fn hosts_for_namespace(hosts: &[String], namespace: &str) -> Vec<String> {
    hosts
        .iter()
        .filter_map(|h| match h.split_once('/') {
            Some((ns, host)) if ns == namespace || ns == "*" => Some(host.to_string()),
            Some(_) => None,
            None => Some(h.clone()),
        })
        .collect()
}

/// A VirtualService's hosts as istiod stores them: short names made FQDNs.
fn vs_hosts(vs: &Named<VirtualService>, view: &MeshView) -> Vec<String> {
    vs.spec
        .hosts
        .iter()
        .map(|h| resolve_host(h, &vs.namespace, &view.mesh.domain))
        .collect()
}

/// pickMatchingGatewayHosts: whether any VirtualService host matches a server host, a
/// `ns/host` server host only for VirtualServices in `ns`.
fn any_host_matches(server_hosts: &[String], vs: &Named<VirtualService>, view: &MeshView) -> bool {
    let vs_hosts = vs_hosts(vs, view);
    server_hosts.iter().any(|g| {
        let g = match g.split_once('/') {
            Some((ns, host)) if ns == vs.namespace => host,
            Some(_) => return false,
            None => g.as_str(),
        };
        vs_hosts.iter().any(|h| matches(g, h))
    })
}

/// Where a VirtualService exported `export_to` from `owner` stands for a gateway in
/// `namespace` (VirtualServicesForGateway): private to it, exported to it, public; `None`
/// when not visible.
fn visibility(export_to: &[String], owner: &str, namespace: &str) -> Option<u8> {
    if export_to.is_empty() || export_to.iter().any(|e| e == "*") {
        Some(2)
    } else if owner == namespace && export_to.iter().any(|e| e == ".") {
        Some(0)
    } else if export_to.iter().any(|e| e == namespace) {
        Some(1)
    } else {
        None
    }
}

/// The VirtualServices bound to `gateway` that a gateway in the proxy's namespace sees,
/// in istiod's order.
fn virtual_services_for_gateway<'a>(
    proxy: &Proxy,
    view: &'a MeshView,
    gateway: &str,
) -> Vec<&'a Named<VirtualService>> {
    let mut out: Vec<(u8, &Named<VirtualService>)> = view
        .virtual_services
        .iter()
        .filter(|vs| {
            !vs.spec.is_delegate()
                && vs
                    .spec
                    .gateways
                    .iter()
                    .any(|g| resolve_gateway_name(g, &vs.namespace) == gateway)
        })
        .filter_map(|vs| {
            visibility(&vs.spec.export_to, &vs.namespace, &proxy.namespace).map(|r| (r, vs))
        })
        .collect();
    out.sort_by_key(|(rank, _)| *rank);
    out.into_iter().map(|(_, vs)| vs).collect()
}

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

/// host.Names order: exact names before wildcards, longer first, then alphabetical.
fn host_order(a: &str, b: &str) -> std::cmp::Ordering {
    let (wa, wb) = (a.starts_with('*'), b.starts_with('*'));
    wa.cmp(&wb)
        .then(b.len().cmp(&a.len()))
        .then_with(|| a.cmp(b))
}

/// buildGatewayHTTPRouteConfig for the HTTP servers of one port.
fn route_config(proxy: &Proxy, view: &MeshView, port: &MergedPort) -> RouteConfiguration {
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
    for name in names {
        let Some(p) = hosts.remove(&name) else {
            continue;
        };
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

fn pack_route(rc: RouteConfiguration) -> (String, Any) {
    (rc.name.clone(), pack_any(rc))
}

/// The HTTP servers' chain: a connection manager taking routes `route_name` by RDS, as
/// buildGatewayConnectionManager sets it up (the gateway is the edge: it sets
/// X-Forwarded-For from the peer and sanitises client certificate details).
fn http_chain(listener: &str, route_name: &str) -> FilterChain {
    let mut hcm = outbound_hcm(format!("outbound_{listener}"), route_name.to_string());
    hcm.use_remote_address = Some(BoolValue { value: true });
    hcm.forward_client_cert_details = ForwardClientCertDetails::SanitizeSet as i32;
    hcm.set_current_client_cert_details = Some(SetCurrentClientCertDetails {
        subject: Some(BoolValue { value: true }),
        cert: true,
        dns: true,
        uri: true,
        ..Default::default()
    });
    FilterChain {
        filters: vec![Filter {
            name: HCM.into(),
            config_type: Some(filter::ConfigType::TypedConfig(pack_any(hcm))),
        }],
        transport_socket_connect_timeout: Some(duration(TRANSPORT_SOCKET_CONNECT_TIMEOUT)),
        ..Default::default()
    }
}

/// A chain matching `sni` (none: any connection), ending in `filter`.
fn tcp_chain(sni: &[String], filter: Filter) -> FilterChain {
    let filter_chain_match = (!sni.is_empty() && !sni.iter().any(|h| h == "*")).then(|| {
        let mut server_names = sni.to_vec();
        server_names.sort();
        FilterChainMatch {
            server_names,
            ..Default::default()
        }
    });
    FilterChain {
        filter_chain_match,
        filters: vec![filter],
        transport_socket_connect_timeout: Some(duration(TRANSPORT_SOCKET_CONNECT_TIMEOUT)),
        ..Default::default()
    }
}

fn tls_inspector() -> ListenerFilter {
    ListenerFilter {
        name: TLS_INSPECTOR.into(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(pack_any(
            TlsInspector::default(),
        ))),
        ..Default::default()
    }
}

/// buildOutboundNetworkFilters: tcp_proxy to one cluster (stat prefix the cluster), or to
/// the weighted ones (stat prefix `NAME.NAMESPACE` of the VirtualService).
fn tcp_proxy(
    view: &MeshView,
    route: &[RouteDestination],
    vs: &Named<VirtualService>,
    port: u16,
) -> Option<Filter> {
    let cluster = |d| destination_cluster(view, d, &vs.namespace, port);
    let proxy = match route {
        [] => return None,
        [only] => {
            let c = cluster(only.destination.as_ref()?);
            TcpProxy {
                stat_prefix: c.clone(),
                cluster_specifier: Some(tcp_proxy::ClusterSpecifier::Cluster(c)),
                ..Default::default()
            }
        }
        several => TcpProxy {
            stat_prefix: format!("{}.{}", vs.name, vs.namespace),
            cluster_specifier: Some(tcp_proxy::ClusterSpecifier::WeightedClusters(
                tcp_proxy::WeightedCluster {
                    clusters: several
                        .iter()
                        .filter(|d| d.weight > 0)
                        .filter_map(|d| {
                            Some(tcp_proxy::weighted_cluster::ClusterWeight {
                                name: cluster(d.destination.as_ref()?),
                                weight: u32::try_from(d.weight).unwrap_or(0),
                                ..Default::default()
                            })
                        })
                        .collect(),
                },
            )),
            ..Default::default()
        },
    };
    Some(Filter {
        name: TCP_PROXY.into(),
        config_type: Some(filter::ConfigType::TypedConfig(pack_any(proxy))),
    })
}

/// l4SingleMatch: the match's port (if any) is the server's, its gateways (if any) name
/// this one.
fn l4_match(port: u32, gateways: &[String], server_port: u16, gateway: &str, vs_ns: &str) -> bool {
    (port == 0 || port == u32::from(server_port))
        && (gateways.is_empty()
            || gateways
                .iter()
                .any(|g| resolve_gateway_name(g, vs_ns) == gateway))
}

/// The chains of one TCP or TLS PASSTHROUGH server (createGatewayTCPFilterChainOpts):
/// opaque TCP takes the first `tcp` rule that matches; passthrough gets a chain per
/// matching `tls` match, on its SNI hosts, unless another chain on the port has them.
fn tcp_chains(
    proxy: &Proxy,
    view: &MeshView,
    s: &GatewayServer,
    port: u16,
    sni_taken: &mut BTreeMap<String, String>,
) -> Vec<FilterChain> {
    let vss = virtual_services_for_gateway(proxy, view, &s.gateway);
    let vss = vss
        .into_iter()
        .filter(|vs| any_host_matches(&s.hosts, vs, view));
    if s.server.tls.is_none() {
        for vs in vss {
            let rule = vs.spec.tcp.iter().find(|r| {
                r.r#match.is_empty()
                    || r.r#match
                        .iter()
                        .any(|m| l4_match(m.port, &m.gateways, port, &s.gateway, &vs.namespace))
            });
            if let Some(filter) = rule.and_then(|r| tcp_proxy(view, &r.route, vs, port)) {
                return vec![tcp_chain(&[], filter)];
            }
        }
        tracing::warn!(gateway = %s.gateway, port, "gateway TCP server has no VirtualService tcp route; no chain");
        return Vec::new();
    }
    let mut chains = Vec::new();
    for vs in vss {
        for rule in &vs.spec.tls {
            for (i, m) in rule.r#match.iter().enumerate() {
                if !l4_match(m.port, &m.gateways, port, &s.gateway, &vs.namespace) {
                    continue;
                }
                let bind = &s.server.bind;
                let duplicates: Vec<&String> = m
                    .sni_hosts
                    .iter()
                    .filter(|h| sni_taken.get(*h) == Some(bind))
                    .collect();
                if !duplicates.is_empty() {
                    tracing::warn!(
                        virtual_service = %vs.name,
                        rule = i,
                        port,
                        gateway = %s.gateway,
                        "skipping TLS route, duplicate SNI hosts {duplicates:?}"
                    );
                    continue;
                }
                for h in &m.sni_hosts {
                    sni_taken.insert(h.clone(), bind.clone());
                }
                if let Some(filter) = tcp_proxy(view, &rule.route, vs, port) {
                    chains.push(tcp_chain(&m.sni_hosts, filter));
                }
            }
        }
    }
    chains
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::listener::v3::Listener;
    use prost::Message;

    use super::*;
    use crate::node::{Generator, ProxyType};
    use crate::registry::Registry;
    use crate::translate::MeshSettings;

    fn view(yaml: &str) -> MeshView {
        let mut loader = weft_config::Loader::new();
        loader.load_str("mesh.yaml", yaml);
        let result = loader.finish();
        assert!(!result.has_errors(), "{:?}", result.findings);
        let refs: Vec<&weft_config::Resource> =
            result.resources.iter().map(|l| &l.resource).collect();
        let registry = Registry::build(&refs, &[], "cluster.local");
        MeshView::new(&refs, registry, MeshSettings::default())
    }

    fn router() -> Proxy {
        Proxy {
            id: "router~10.1.0.5~ingress-0.istio-system~istio-system.svc.cluster.local".into(),
            proxy_type: ProxyType::Router,
            generator: Generator::Envoy,
            workload_name: "ingress-0".into(),
            namespace: "istio-system".into(),
            ips: vec!["10.1.0.5".parse().unwrap()],
            dns_domain: "istio-system.svc.cluster.local".into(),
            labels: [("istio".to_string(), "ingressgateway".to_string())].into(),
            service_account: String::new(),
            cluster_id: String::new(),
            istio_version: String::new(),
        }
    }

    fn names(v: &[(String, Any)]) -> Vec<&str> {
        v.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn decode<M: Message + Default>(v: &[(String, Any)], name: &str) -> M {
        let any = &v
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", names(v)))
            .1;
        M::decode(any.value.as_slice()).expect("decodes")
    }

    const SERVICES: &str = r#"
apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  clusterIP: 10.0.0.10
  ports: [{ name: http, port: 8080 }]
---
apiVersion: v1
kind: Service
metadata: { name: db, namespace: data }
spec:
  clusterIP: 10.0.0.11
  ports: [{ name: tcp, port: 5432 }, { name: tls, port: 5433 }]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: istio-system }
spec:
  egress: [{ hosts: ["./*"] }]
---
"#;

    fn generated(yaml: &str) -> Generated {
        generate(&router(), &view(&format!("{SERVICES}{yaml}")))
    }

    #[test]
    fn names_resolve_as_istiod_resolves_them() {
        assert_eq!(resolve_gateway_name("gw", "prod"), "prod/gw");
        assert_eq!(resolve_gateway_name("./gw", "prod"), "prod/gw");
        assert_eq!(resolve_gateway_name("edge/gw", "prod"), "edge/gw");
        assert_eq!(
            resolve_gateway_name("gw.edge.svc.cluster.local", "prod"),
            "edge/gw"
        );
        assert_eq!(resolve_gateway_name("gw.edge", "prod"), "edge/gw");
        assert_eq!(resolve_gateway_name("mesh", "prod"), "mesh");
        let s = |v: &[&str]| v.iter().map(|h| h.to_string()).collect::<Vec<_>>();
        assert_eq!(
            intersection(&s(&["*.example.com", "a.org"]), &s(&["x.example.com", "*"])),
            s(&["x.example.com", "*.example.com", "a.org"])
        );
        assert_eq!(
            intersection(
                &s(&["*.example.com"]),
                &s(&["*.b.example.com", "example.com"])
            ),
            s(&["*.b.example.com"])
        );
        assert_eq!(
            hosts_for_namespace(&s(&["prod/a.com", "b.com", "other/c.com"]), "prod"),
            s(&["a.com", "b.com"])
        );
        assert_eq!(
            sanitize(&s(&["./a.com", "*/b.com", "c.com"]), "gw-ns"),
            s(&["gw-ns/a.com", "b.com", "c.com"])
        );
        assert_eq!(sanitize(&s(&["a.com", "*/*"]), "gw-ns"), s(&["*"]));
    }

    #[test]
    fn http_servers_share_a_port_and_virtual_hosts_follow_bound_virtual_services() {
        let g = generated(
            r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: public, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers:
  - port: { number: 80, name: http, protocol: HTTP }
    hosts: ["*.example.com", "default/api.internal"]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: other, namespace: team }
spec:
  selector: { istio: ingressgateway }
  servers:
  - port: { number: 80, name: http2, protocol: HTTP2 }
    hosts: [team.example.org]
    tls: { httpsRedirect: true }
  - port: { number: 80, name: tcp, protocol: TCP }
    hosts: [conflict.example.org]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: elsewhere, namespace: default }
spec:
  selector: { istio: egressgateway }
  servers:
  - port: { number: 81, name: http, protocol: HTTP }
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: default }
spec:
  hosts: [a.example.com, b.example.com, api.internal]
  gateways: [public]
  http:
  - match: [{ uri: { prefix: / } }]
    route: [{ destination: { host: web } }]
  - route: [{ destination: { host: web, port: { number: 9999 } } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: wild, namespace: other }
spec:
  hosts: ["*.example.com", a.example.com, api.internal]
  gateways: [default/public]
  http:
  - match: [{ headers: { x-a: { exact: "1" } }, gateways: [default/public] }]
    route: [{ destination: { host: web.default.svc.cluster.local } }]
  - match: [{ headers: { x-b: { exact: "1" } }, gateways: [mesh] }]
    route: [{ destination: { host: web.default.svc.cluster.local } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: private, namespace: team }
spec:
  hosts: ["*.example.com"]
  gateways: [default/public]
  exportTo: ["."]
  http:
  - route: [{ destination: { host: web.default.svc.cluster.local } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: mesh, namespace: default }
spec:
  hosts: [a.example.com]
  http:
  - route: [{ destination: { host: db.data.svc.cluster.local } }]
"#,
        );
        assert_eq!(names(&g.listeners), ["0.0.0.0_80"]);
        assert_eq!(names(&g.routes), ["http.80"]);
        let l: Listener = decode(&g.listeners, "0.0.0.0_80");
        assert_eq!(l.filter_chains.len(), 1, "HTTP servers share one chain");
        assert!(l.listener_filters.is_empty());
        let rc: RouteConfiguration = decode(&g.routes, "http.80");
        assert!(rc.ignore_port_in_host_matching);
        let hosts: Vec<(&str, Vec<&str>, usize, i32)> = rc
            .virtual_hosts
            .iter()
            .map(|vh| {
                (
                    vh.name.as_str(),
                    vh.domains.iter().map(String::as_str).collect(),
                    vh.routes.len(),
                    vh.require_tls,
                )
            })
            .collect();
        // a gets web's routes then wild's gateway-bound one (not its mesh-only match, nor
        // the team-private VirtualService), the catch-all moved last and web's rule after
        // it cut; b and api.internal (`default/` on the server, so only web binds it) have
        // the same routes from the same source and share a host named after the first.
        assert_eq!(
            hosts,
            [
                ("*.example.com:80", vec!["*.example.com"], 1, 0),
                ("a.example.com:80", vec!["a.example.com"], 2, 0),
                (
                    "b.example.com:80",
                    vec!["b.example.com", "api.internal"],
                    1,
                    0
                ),
                ("team.example.org:80", vec!["team.example.org"], 0, 2),
            ]
        );
        let a = &rc.virtual_hosts[1];
        assert!(!is_catch_all(&a.routes[0]) && is_catch_all(&a.routes[1]));
        let Some(route::Action::Route(action)) = &a.routes[1].action else {
            panic!("a route")
        };
        assert_eq!(
            action.cluster_specifier,
            Some(route_action::ClusterSpecifier::Cluster(
                "outbound|8080||web.default.svc.cluster.local".into()
            ))
        );
        assert_eq!(
            a.routes[1].decorator.as_ref().map(|d| d.operation.as_str()),
            Some("web.default.svc.cluster.local:8080/*")
        );

        let clusters = names(&g.clusters);
        assert!(
            clusters.contains(&"outbound|5432||db.data.svc.cluster.local"),
            "Sidecars do not scope a gateway: {clusters:?}"
        );
        assert!(clusters.contains(&"BlackHoleCluster"));
        assert!(!clusters.contains(&"PassthroughCluster"));
        assert_eq!(
            names(&g.endpoints),
            [
                "outbound|5432||db.data.svc.cluster.local",
                "outbound|5433||db.data.svc.cluster.local",
                "outbound|8080||web.default.svc.cluster.local",
            ]
        );
    }

    #[test]
    fn a_port_without_virtual_hosts_answers_404_and_tcp_and_passthrough_use_l4_rules() {
        let g = generated(
            r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
  - port: { number: 8080, name: http, protocol: HTTP }
    hosts: [nobody.example.com]
  - port: { number: 5432, name: tcp, protocol: TCP }
    hosts: ["*"]
  - port: { number: 443, name: tls, protocol: TLS }
    tls: { mode: PASSTHROUGH }
    hosts: ["*.db.example.com"]
  - port: { number: 443, name: https, protocol: HTTPS }
    tls: { mode: PASSTHROUGH }
    hosts: [web.example.com]
  - port: { number: 8443, name: https-term, protocol: HTTPS }
    tls: { mode: SIMPLE, credentialName: cert }
    hosts: [web.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: db, namespace: data }
spec:
  hosts: ["*.db.example.com", db.example.net]
  gateways: [istio-system/gw]
  tcp:
  - match: [{ port: 1234 }]
    route: [{ destination: { host: db, port: { number: 1 } } }]
  - route:
    - { destination: { host: db, port: { number: 5432 } }, weight: 80 }
    - { destination: { host: db, port: { number: 5433 } }, weight: 20 }
  tls:
  - match: [{ sniHosts: [a.db.example.com, b.db.example.com] }]
    route: [{ destination: { host: db, port: { number: 5433 } } }]
  - match: [{ sniHosts: [b.db.example.com] }, { sniHosts: [c.db.example.com], gateways: [mesh] }]
    route: [{ destination: { host: db, port: { number: 5432 } } }]
"#,
        );
        assert_eq!(
            names(&g.listeners),
            ["0.0.0.0_8080", "0.0.0.0_5432", "0.0.0.0_443"]
        );
        let rc: RouteConfiguration = decode(&g.routes, "http.8080");
        assert_eq!(rc.virtual_hosts.len(), 1);
        assert_eq!(rc.virtual_hosts[0].name, "blackhole:8080");
        assert_eq!(rc.virtual_hosts[0].domains, ["*"]);
        assert!(rc.virtual_hosts[0].routes.is_empty());

        let tcp_of = |chain: &FilterChain| {
            let Some(filter::ConfigType::TypedConfig(any)) = &chain.filters[0].config_type else {
                panic!("typed")
            };
            TcpProxy::decode(any.value.as_slice()).expect("tcp_proxy")
        };
        let tcp: Listener = decode(&g.listeners, "0.0.0.0_5432");
        assert_eq!(tcp.filter_chains.len(), 1);
        assert!(tcp.filter_chains[0].filter_chain_match.is_none());
        let proxy = tcp_of(&tcp.filter_chains[0]);
        assert_eq!(proxy.stat_prefix, "db.data");
        let Some(tcp_proxy::ClusterSpecifier::WeightedClusters(w)) = proxy.cluster_specifier else {
            panic!("weighted")
        };
        let weights: Vec<(&str, u32)> = w
            .clusters
            .iter()
            .map(|c| (c.name.as_str(), c.weight))
            .collect();
        assert_eq!(
            weights,
            [
                ("outbound|5432||db.data.svc.cluster.local", 80),
                ("outbound|5433||db.data.svc.cluster.local", 20)
            ]
        );

        // One chain per TLS match; b.db.example.com is taken by the first, the mesh-only
        // match is not the gateway's; the HTTPS passthrough server has no route.
        let tls: Listener = decode(&g.listeners, "0.0.0.0_443");
        assert_eq!(tls.listener_filters.len(), 1, "tls_inspector");
        let chains: Vec<(Vec<String>, String)> = tls
            .filter_chains
            .iter()
            .map(|c| {
                let sni = c
                    .filter_chain_match
                    .as_ref()
                    .map(|m| m.server_names.clone())
                    .unwrap_or_default();
                (sni, tcp_of(c).stat_prefix)
            })
            .collect();
        assert_eq!(
            chains,
            [(
                vec![
                    "a.db.example.com".to_string(),
                    "b.db.example.com".to_string()
                ],
                "outbound|5433||db.data.svc.cluster.local".to_string()
            )]
        );
    }
}
