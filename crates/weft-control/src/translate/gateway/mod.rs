//! Routers (Istio's gateways) as istiod builds them (pilot/pkg/networking/core/gateway.go):
//! the Gateways whose selector matches the proxy's labels, from every namespace, are merged
//! by port (model.mergeGateways); each port becomes a listener `BIND_PORT` that binds.
//! HTTP servers share one connection manager whose RDS config `http.PORT` holds a virtual
//! host per host a bound VirtualService and a server have in common; TCP servers and TLS
//! PASSTHROUGH servers get tcp_proxy chains from the VirtualServices' `tcp` and `tls` rules,
//! the latter matched on SNI. Clusters are every service the gateway's namespace can see.
//! TLS termination (SIMPLE, MUTUAL, ...) and AUTO_PASSTHROUGH are not built: such servers
//! are skipped with a warning.

mod hosts;
mod listeners;
mod routes;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::util::pack_any;
use weft_config::networking::gateway::{Protocol, Server, ServerTLSSettingsTLSmode as TlsMode};
use weft_config::networking::virtual_service::{MESH_GATEWAY, VirtualService};

use super::Generated;
use super::cluster::{PASSTHROUGH, outbound};
use super::endpoints::{load_assignment, socket_address};
use super::listener::NamedResources;
use super::view::{MeshView, Named};
use crate::node::Proxy;
use crate::registry::selects;
use listeners::{http_chain, tcp_chains, tls_inspector};
use routes::{pack_route, route_config};

/// istiod's name for the wildcard a gateway listener binds (getWildcardsAndLocalHost).
const WILDCARD: &str = "0.0.0.0";

/// Everything a router is sent.
pub fn generate(proxy: &Proxy, view: &MeshView) -> Generated {
    let (listeners, routes) = listeners_and_routes(proxy, view);
    let built = clusters(proxy, view);
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

/// A router's listeners and routes, without its clusters.
pub fn listeners_and_routes(proxy: &Proxy, view: &MeshView) -> (NamedResources, NamedResources) {
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
    (listeners, routes)
}

/// A router's clusters. Gateways have no original-destination listener, so no
/// PassthroughCluster; Sidecar resources do not scope them (DefaultSidecarScopeForGateway):
/// every service visible from the gateway's namespace gets its clusters.
fn clusters(proxy: &Proxy, view: &MeshView) -> Vec<super::cluster::Built> {
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
    outbound(proxy, cluster_view)
        .into_iter()
        .filter(|b| b.name != PASSTHROUGH)
        .collect()
}

/// The endpoints [`generate`] sends a router.
pub fn endpoints(
    proxy: &Proxy,
    view: &MeshView,
) -> Vec<(String, envoy_types::pb::google::protobuf::Any)> {
    clusters(proxy, view)
        .iter()
        .filter_map(|b| b.eds.as_ref().map(|e| load_assignment(e, view)))
        .collect()
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
            // An explicit wildcard bind is the default one: the same listener, so servers
            // bound either way merge (two unmatched chains on one listener are refused).
            let bind = if server.bind == WILDCARD {
                String::new()
            } else {
                server.bind.clone()
            };
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
