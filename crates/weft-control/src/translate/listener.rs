//! A sidecar's outbound listeners as istiod builds them: `virtualOutbound` on 15001 hands
//! captured connections (use_original_dst) to per-port listeners that do not bind —
//! `0.0.0.0_PORT` for HTTP ports (RDS route named after the port), `VIP_PORT` for TCP ports
//! (tcp_proxy to the service's cluster, or as its VirtualService's tcp/tls routes say) and
//! for undeclared protocols (sniffed: HTTP when it looks like HTTP, TCP otherwise),
//! `0.0.0.0_PORT` by SNI for TLS services without an address — and whatever matches
//! nothing goes to the catch-all.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, FilterChainMatch, Listener, ListenerFilter, filter, listener_filter,
};
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::Cors;
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::listener::http_inspector::v3::HttpInspector;
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use envoy_types::pb::google::protobuf::{Any, BoolValue, Duration as PbDuration, UInt32Value};
use envoy_types::util::pack_any;

use super::cluster::{BLACKHOLE, PASSTHROUGH, ads};
use super::endpoints::socket_address;
use super::names::cluster_name;
use super::route::{CORS_FILTER, FAULT_FILTER, pack, port_routes, service_routes};
use super::view::{MeshView, OutboundPolicy};
use crate::node::Proxy;
use crate::registry::Protocol;

const HCM: &str = "envoy.filters.network.http_connection_manager";
const TCP_PROXY: &str = "envoy.filters.network.tcp_proxy";
const VIRTUAL_OUTBOUND: &str = "virtualOutbound";

fn tcp_proxy(cluster: &str) -> Filter {
    Filter {
        name: TCP_PROXY.into(),
        config_type: Some(filter::ConfigType::TypedConfig(pack_any(TcpProxy {
            stat_prefix: cluster.to_string(),
            cluster_specifier: Some(tcp_proxy::ClusterSpecifier::Cluster(cluster.to_string())),
            ..Default::default()
        }))),
    }
}

fn catch_all_cluster(policy: OutboundPolicy) -> &'static str {
    match policy {
        OutboundPolicy::AllowAny => PASSTHROUGH,
        OutboundPolicy::RegistryOnly => BLACKHOLE,
    }
}

fn http_filter(name: &str, config: Any) -> HttpFilter {
    HttpFilter {
        name: name.into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(config)),
        ..Default::default()
    }
}

/// The outbound HTTP connection manager: routes by RDS; fault, CORS, then the router
/// (istiod's order; the first two act only where a route configures them).
pub fn outbound_hcm(stat_prefix: String, route_config_name: String) -> HttpConnectionManager {
    HttpConnectionManager {
        stat_prefix,
        codec_type: http_connection_manager::CodecType::Auto as i32,
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(ads()),
            route_config_name,
        })),
        http_filters: vec![
            http_filter(FAULT_FILTER, pack_any(HttpFault::default())),
            http_filter(CORS_FILTER, pack_any(Cors::default())),
            http_filter("envoy.filters.http.router", pack_any(Router::default())),
        ],
        use_remote_address: Some(BoolValue { value: false }),
        normalize_path: Some(BoolValue { value: true }),
        stream_idle_timeout: Some(PbDuration::default()),
        upgrade_configs: vec![http_connection_manager::UpgradeConfig {
            upgrade_type: "websocket".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn hcm_filter(hcm: HttpConnectionManager) -> Filter {
    Filter {
        name: HCM.into(),
        config_type: Some(filter::ConfigType::TypedConfig(pack_any(hcm))),
    }
}

fn http_chain_match() -> FilterChainMatch {
    FilterChainMatch {
        transport_protocol: "raw_buffer".into(),
        application_protocols: vec!["http/1.1".into(), "h2c".into()],
        ..Default::default()
    }
}

fn tls_inspector() -> ListenerFilter {
    ListenerFilter {
        name: "envoy.filters.listener.tls_inspector".into(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(pack_any(
            TlsInspector::default(),
        ))),
        ..Default::default()
    }
}

fn inspectors() -> Vec<ListenerFilter> {
    vec![
        tls_inspector(),
        ListenerFilter {
            name: "envoy.filters.listener.http_inspector".into(),
            config_type: Some(listener_filter::ConfigType::TypedConfig(pack_any(
                HttpInspector::default(),
            ))),
            ..Default::default()
        },
    ]
}

fn virtual_listener(name: &str, address: &str, port: u16) -> Listener {
    Listener {
        name: name.to_string(),
        address: Some(socket_address(address, port)),
        bind_to_port: Some(BoolValue { value: false }),
        traffic_direction: TrafficDirection::Outbound as i32,
        listener_filters_timeout: Some(PbDuration::default()),
        continue_on_listener_filters_timeout: true,
        ..Default::default()
    }
}

/// Named resources of one xDS type.
pub type NamedResources = Vec<(String, Any)>;

/// Listeners and the route configurations they name.
pub fn outbound(proxy: &Proxy, view: &MeshView) -> (NamedResources, NamedResources) {
    let mut listeners: BTreeMap<String, Listener> = BTreeMap::new();
    let mut routes: Vec<(String, Any)> = Vec::new();
    let scope = super::scope::Scope::of(proxy, view);
    let catch_all = catch_all_cluster(scope.outbound_policy);
    let reserved = [
        view.mesh.outbound_port,
        view.mesh.inbound_port,
        15021,
        15090,
    ];
    for svc in view.visible_services(proxy, &scope) {
        for sp in &svc.ports {
            if reserved.contains(&sp.port) || sp.protocol == Protocol::Udp {
                continue;
            }
            if sp.protocol.is_http() {
                let name = format!("0.0.0.0_{}", sp.port);
                if listeners.contains_key(&name) {
                    continue;
                }
                let mut l = virtual_listener(&name, "0.0.0.0", sp.port);
                l.filter_chains = vec![FilterChain {
                    filter_chain_match: Some(http_chain_match()),
                    filters: vec![hcm_filter(outbound_hcm(
                        format!("outbound_{name}"),
                        sp.port.to_string(),
                    ))],
                    ..Default::default()
                }];
                l.default_filter_chain = Some(FilterChain {
                    name: "PassthroughFilterChain".into(),
                    filter_chain_match: Some(FilterChainMatch::default()),
                    filters: vec![tcp_proxy(catch_all)],
                    ..Default::default()
                });
                l.listener_filters = inspectors();
                listeners.insert(name, l);
                routes.push(pack(port_routes(proxy, view, sp.port)));
                continue;
            }
            // TCP and sniffed ports bind the service address. A TCP or TLS service without
            // one (a DNS ServiceEntry, typically) shares the port's wildcard listener: by
            // SNI for TLS, the first service alone for TCP. Headless Kubernetes services
            // reach the catch-all.
            let Some(vip) = svc.addresses.first() else {
                let headless = svc.origin == crate::registry::Origin::Kubernetes
                    && svc.resolution == crate::registry::Resolution::Passthrough;
                if sp.protocol != Protocol::Unsupported && !headless {
                    wildcard_l4(&mut listeners, proxy, view, svc, sp, catch_all);
                }
                continue;
            };
            let name = format!("{vip}_{}", sp.port);
            if listeners.contains_key(&name) {
                continue;
            }
            let cluster = cluster_name(sp.port, "", &svc.hostname);
            let mut l = virtual_listener(&name, &vip.to_string(), sp.port);
            if sp.protocol == Protocol::Unsupported {
                let route_name = format!("{}:{}", svc.hostname, sp.port);
                l.filter_chains = vec![FilterChain {
                    filter_chain_match: Some(http_chain_match()),
                    filters: vec![hcm_filter(outbound_hcm(
                        format!("outbound_{name}"),
                        route_name.clone(),
                    ))],
                    ..Default::default()
                }];
                l.default_filter_chain = Some(FilterChain {
                    filter_chain_match: Some(FilterChainMatch::default()),
                    filters: vec![tcp_proxy(&cluster)],
                    ..Default::default()
                });
                l.listener_filters = inspectors();
                routes.push(pack(
                    envoy_types::pb::envoy::config::route::v3::RouteConfiguration {
                        name: route_name.clone(),
                        virtual_hosts: vec![
                            envoy_types::pb::envoy::config::route::v3::VirtualHost {
                                name: route_name,
                                domains: vec!["*".into()],
                                routes: service_routes(proxy, view, svc, sp.port),
                                include_request_attempt_count: true,
                                ..Default::default()
                            },
                        ],
                        validate_clusters: Some(BoolValue { value: false }),
                        max_direct_response_body_size_bytes: Some(UInt32Value { value: 1_048_576 }),
                        ..Default::default()
                    },
                ));
            } else {
                let (chains, by_sni) = super::l4_route::chains(proxy, view, svc, sp, false);
                l.filter_chains = chains;
                if by_sni {
                    l.listener_filters = vec![tls_inspector()];
                }
            }
            listeners.insert(name, l);
        }
    }
    let mut out: Vec<(String, Any)> = listeners
        .into_iter()
        .map(|(n, l)| (n, pack_any(l)))
        .collect();
    out.push((
        VIRTUAL_OUTBOUND.into(),
        pack_any(virtual_outbound(view, catch_all)),
    ));
    (out, routes)
}

/// Adds a VIP-less TCP or TLS service port to the port's wildcard listener `0.0.0.0_PORT`
/// (what the proxy's port matches no service address for): a TLS service adds its SNI
/// chains to those already there, a TCP one takes the listener if it is still free (as
/// istiod, which keeps the first and reports a conflict); what matches no chain goes to
/// the catch-all.
fn wildcard_l4(
    listeners: &mut BTreeMap<String, Listener>,
    proxy: &Proxy,
    view: &MeshView,
    svc: &crate::registry::Service,
    sp: &crate::registry::ServicePort,
    catch_all: &str,
) {
    let name = format!("0.0.0.0_{}", sp.port);
    let (chains, by_sni) = super::l4_route::chains(proxy, view, svc, sp, true);
    match listeners.get_mut(&name) {
        None => {
            let mut l = virtual_listener(&name, "0.0.0.0", sp.port);
            l.filter_chains = chains;
            if by_sni {
                l.listener_filters = vec![tls_inspector()];
            }
            l.default_filter_chain = Some(FilterChain {
                name: "PassthroughFilterChain".into(),
                filter_chain_match: Some(FilterChainMatch::default()),
                filters: vec![tcp_proxy(catch_all)],
                ..Default::default()
            });
            listeners.insert(name, l);
        }
        // Only SNI chains can share a listener, and only with other SNI chains whose
        // matches differ.
        Some(l) if by_sni && chains.iter().all(|c| c.filter_chain_match.is_some()) => {
            let sni_only = |l: &Listener| {
                l.filter_chains.iter().all(|c| {
                    c.filter_chain_match
                        .as_ref()
                        .is_some_and(|m| !m.server_names.is_empty())
                })
            };
            if !sni_only(l) {
                return;
            }
            for c in chains {
                if !l
                    .filter_chains
                    .iter()
                    .any(|o| o.filter_chain_match == c.filter_chain_match)
                {
                    l.filter_chains.push(c);
                }
            }
        }
        Some(_) => {}
    }
}

fn virtual_outbound(view: &MeshView, catch_all: &str) -> Listener {
    Listener {
        name: VIRTUAL_OUTBOUND.into(),
        address: Some(socket_address(
            &view.mesh.capture_bind,
            view.mesh.outbound_port,
        )),
        use_original_dst: Some(BoolValue { value: true }),
        traffic_direction: TrafficDirection::Outbound as i32,
        filter_chains: vec![
            FilterChain {
                name: "virtualOutbound-blackhole".into(),
                filter_chain_match: Some(FilterChainMatch {
                    destination_port: Some(UInt32Value {
                        value: u32::from(view.mesh.outbound_port),
                    }),
                    ..Default::default()
                }),
                filters: vec![tcp_proxy(BLACKHOLE)],
                ..Default::default()
            },
            FilterChain {
                name: "virtualOutbound-catchall-tcp".into(),
                filters: vec![tcp_proxy(catch_all)],
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}
