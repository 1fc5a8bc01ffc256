//! A sidecar's inbound side as istiod builds it in plaintext (no mTLS yet): `virtualInbound`
//! on 15006 restores each captured connection's destination and picks a filter chain by its
//! port — one per port the workload serves for a service (`inbound|PORT||` clusters,
//! ORIGINAL_DST and sourced from 127.0.0.6 so the capture lets them through) — with
//! passthrough chains for ports no service declares and a blackhole for 15006 itself.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{
    BindConfig, SocketAddress, TrafficDirection, socket_address,
};
use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, FilterChainMatch, Listener, ListenerFilter,
    ListenerFilterChainMatchPredicate, filter, listener_filter,
    listener_filter_chain_match_predicate,
};
use envoy_types::pb::envoy::config::route::v3::{
    RouteConfiguration, VirtualHost, route, route_action,
};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::listener::http_inspector::v3::HttpInspector;
use envoy_types::pb::envoy::extensions::filters::listener::original_dst::v3::OriginalDst;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, http_connection_manager, http_filter,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use envoy_types::pb::envoy::r#type::v3::Int32Range;
use envoy_types::pb::google::protobuf::{Any, BoolValue, Duration as PbDuration, UInt32Value};
use envoy_types::util::pack_any;

use super::cluster::{BLACKHOLE, default_circuit_breakers, downstream_protocol_options, duration};
use super::endpoints::socket_address;
use super::listener::NamedResources;
use super::route::{FAULT_FILTER, default_route};
use super::view::MeshView;
use crate::node::Proxy;
use crate::registry::Protocol;

/// Istio 1.20–1.22's name for the IPv4 inbound passthrough cluster.
pub const INBOUND_PASSTHROUGH: &str = "InboundPassthroughClusterIpv4";
/// The source address inbound connections to the app come from, which Istio's capture
/// rules recognise as the proxy's own.
const INBOUND_SOURCE: &str = "127.0.0.6";

/// One port the workload serves: its target port, protocol and the service it serves.
struct ServedPort {
    protocol: Protocol,
    hostname: String,
    service_port: u16,
    /// Where its connections go; `None` for the original destination.
    endpoint: Option<(String, u16)>,
    /// A Sidecar's connection pool for it (`ingress[].connectionPool`, else
    /// `inboundConnectionPool`).
    pool: Option<weft_config::networking::destination_rule::ConnectionPoolSettings>,
    /// A Sidecar ingress listener with `captureMode: NONE`: its own bound listener at this
    /// address instead of a chain of the capture listener.
    bind: Option<String>,
}

/// The ports a Sidecar's `ingress` listeners declare, in place of those of the workload's
/// services (istiod's inbound chains and clusters from the sidecar scope): each port's
/// `defaultEndpoint` is `127.0.0.1:PORT` (the app on localhost), `0.0.0.0:PORT` (the
/// workload's own address) or absent (the original destination).
fn ingress_ports(
    proxy: &Proxy,
    view: &MeshView,
    sidecar: &weft_config::networking::sidecar::Sidecar,
) -> BTreeMap<u16, ServedPort> {
    use weft_config::networking::sidecar::CaptureMode;
    let mut out = BTreeMap::new();
    for ingress in &sidecar.ingress {
        let Some(port) = ingress.port.as_ref() else {
            continue;
        };
        let Ok(number) = u16::try_from(port.number) else {
            continue;
        };
        let endpoint = ingress
            .default_endpoint
            .rsplit_once(':')
            .and_then(|(host, p)| Some((host, p.parse::<u16>().ok()?)))
            .and_then(|(host, p)| {
                let address = match host {
                    "127.0.0.1" | "[::1]" => host.trim_matches(['[', ']']).to_string(),
                    "0.0.0.0" | "[::]" => proxy.ips.first()?.to_string(),
                    _ => return None,
                };
                Some((address, p))
            });
        let hostname = served_ports(proxy, view)
            .values()
            .find(|s| s.service_port == number)
            .map_or_else(String::new, |s| s.hostname.clone());
        let bind = (ingress.capture_mode == CaptureMode::None).then(|| {
            if ingress.bind.is_empty() {
                proxy
                    .ips
                    .first()
                    .map_or_else(|| "0.0.0.0".to_string(), ToString::to_string)
            } else {
                ingress.bind.clone()
            }
        });
        out.entry(number).or_insert(ServedPort {
            protocol: Protocol::parse(&port.protocol),
            hostname,
            service_port: number,
            endpoint,
            pool: ingress
                .connection_pool
                .clone()
                .or_else(|| sidecar.inbound_connection_pool.clone()),
            bind,
        });
    }
    out
}

/// The ports this proxy's workload serves, by target port (first service wins a port).
fn served_ports(proxy: &Proxy, view: &MeshView) -> BTreeMap<u16, ServedPort> {
    let mut out = BTreeMap::new();
    for ip in &proxy.ips {
        for (svc, service_port, ep) in view.registry.served_at(*ip) {
            let Some(sp) = svc.port(service_port) else {
                continue;
            };
            if svc.namespace != proxy.namespace || sp.protocol == Protocol::Udp {
                continue;
            }
            out.entry(ep.port).or_insert_with(|| ServedPort {
                protocol: sp.protocol,
                hostname: svc.hostname.clone(),
                service_port,
                endpoint: None,
                pool: None,
                bind: None,
            });
        }
    }
    out
}

fn inbound_name(port: u16) -> String {
    format!("inbound|{port}||")
}

fn original_dst_cluster(name: &str, view: &MeshView, http2: bool) -> Cluster {
    let mut c = Cluster {
        name: name.to_string(),
        connect_timeout: Some(duration(view.mesh.connect_timeout)),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::OriginalDst as i32,
        )),
        lb_policy: cluster::LbPolicy::ClusterProvided as i32,
        circuit_breakers: Some(default_circuit_breakers()),
        upstream_bind_config: Some(BindConfig {
            source_address: Some(SocketAddress {
                address: INBOUND_SOURCE.into(),
                port_specifier: Some(socket_address::PortSpecifier::PortValue(0)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    if http2 {
        c.typed_extension_protocol_options = super::cluster::http2_protocol_options();
    }
    c
}

fn tcp_proxy_filter(cluster: &str) -> Filter {
    Filter {
        name: "envoy.filters.network.tcp_proxy".into(),
        config_type: Some(filter::ConfigType::TypedConfig(pack_any(TcpProxy {
            stat_prefix: cluster.to_string(),
            cluster_specifier: Some(tcp_proxy::ClusterSpecifier::Cluster(cluster.to_string())),
            ..Default::default()
        }))),
    }
}

/// The inbound HTTP connection manager: an inline route to the port's inbound cluster.
fn inbound_hcm(
    stat_prefix: String,
    route_name: String,
    vhost: String,
    cluster: &str,
    operation: String,
) -> Filter {
    let mut route = default_route(cluster, &operation);
    if let Some(route::Action::Route(action)) = &mut route.action {
        // Inbound routes never retry (before 1.24) and carry no gRPC timeout cap.
        action.retry_policy = None;
        action.max_stream_duration = Some(route_action::MaxStreamDuration {
            max_stream_duration: Some(PbDuration::default()),
            grpc_timeout_header_max: Some(PbDuration::default()),
            ..Default::default()
        });
    }
    let hcm = HttpConnectionManager {
        stat_prefix,
        codec_type: http_connection_manager::CodecType::Auto as i32,
        route_specifier: Some(http_connection_manager::RouteSpecifier::RouteConfig(
            RouteConfiguration {
                name: route_name,
                virtual_hosts: vec![VirtualHost {
                    name: vhost,
                    domains: vec!["*".into()],
                    routes: vec![route],
                    ..Default::default()
                }],
                validate_clusters: Some(BoolValue { value: false }),
                ..Default::default()
            },
        )),
        http_filters: vec![
            HttpFilter {
                name: FAULT_FILTER.into(),
                config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(
                    HttpFault::default(),
                ))),
                ..Default::default()
            },
            HttpFilter {
                name: super::route::CORS_FILTER.into(),
                config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(
                    envoy_types::pb::envoy::extensions::filters::http::cors::v3::Cors::default(),
                ))),
                ..Default::default()
            },
            HttpFilter {
                name: "envoy.filters.http.router".into(),
                config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(
                    Router::default(),
                ))),
                ..Default::default()
            },
        ],
        use_remote_address: Some(BoolValue { value: false }),
        normalize_path: Some(BoolValue { value: true }),
        stream_idle_timeout: Some(PbDuration::default()),
        server_name: "istio-envoy".into(),
        upgrade_configs: vec![http_connection_manager::UpgradeConfig {
            upgrade_type: "websocket".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    Filter {
        name: "envoy.filters.network.http_connection_manager".into(),
        config_type: Some(filter::ConfigType::TypedConfig(pack_any(hcm))),
    }
}

/// `filter_disabled` for the http_inspector: the declared ports need no sniffing (and a
/// server-first protocol would wait forever for the client to speak).
fn skip_ports(ports: &[u16]) -> Option<ListenerFilterChainMatchPredicate> {
    let one = |p: u16| ListenerFilterChainMatchPredicate {
        rule: Some(
            listener_filter_chain_match_predicate::Rule::DestinationPortRange(Int32Range {
                start: i32::from(p),
                end: i32::from(p) + 1,
            }),
        ),
    };
    match ports {
        [] => None,
        [p] => Some(one(*p)),
        many => Some(ListenerFilterChainMatchPredicate {
            rule: Some(listener_filter_chain_match_predicate::Rule::OrMatch(
                listener_filter_chain_match_predicate::MatchSet {
                    rules: many.iter().map(|p| one(*p)).collect(),
                },
            )),
        }),
    }
}

/// Inbound listener and clusters for a sidecar (none when it serves no service).
pub fn inbound(proxy: &Proxy, view: &MeshView) -> (NamedResources, NamedResources) {
    let sidecar = super::scope::applicable(proxy, view).map(|s| &s.spec);
    let mut served = match sidecar {
        Some(s) if !s.ingress.is_empty() => ingress_ports(proxy, view, s),
        _ => served_ports(proxy, view),
    };
    // `inboundConnectionPool` covers every port without one of its own.
    if let Some(pool) = sidecar.and_then(|s| s.inbound_connection_pool.as_ref()) {
        for sp in served.values_mut() {
            sp.pool.get_or_insert_with(|| pool.clone());
        }
    }
    let mut own_listeners: Vec<(String, Any)> = Vec::new();
    let mut clusters: Vec<(String, Any)> = Vec::new();
    let raw = || FilterChainMatch {
        transport_protocol: "raw_buffer".into(),
        ..Default::default()
    };
    let mut chains = vec![FilterChain {
        name: "virtualInbound-blackhole".into(),
        filter_chain_match: Some(FilterChainMatch {
            destination_port: Some(UInt32Value {
                value: u32::from(view.mesh.inbound_port),
            }),
            ..Default::default()
        }),
        filters: vec![tcp_proxy_filter(BLACKHOLE)],
        ..Default::default()
    }];
    chains.push(FilterChain {
        name: "virtualInbound-catchall-http".into(),
        filter_chain_match: Some(FilterChainMatch {
            application_protocols: vec!["http/1.1".into(), "h2c".into()],
            ..raw()
        }),
        filters: vec![inbound_hcm(
            INBOUND_PASSTHROUGH.into(),
            INBOUND_PASSTHROUGH.into(),
            "inbound|http|0".into(),
            INBOUND_PASSTHROUGH,
            "inbound|http|0".into(),
        )],
        ..Default::default()
    });
    chains.push(FilterChain {
        name: "virtualInbound".into(),
        filter_chain_match: Some(raw()),
        filters: vec![tcp_proxy_filter(INBOUND_PASSTHROUGH)],
        ..Default::default()
    });
    let mut declared = Vec::new();
    for (port, sp) in &served {
        let cluster = inbound_name(*port);
        let name = format!("0.0.0.0_{port}");
        let filter = if sp.protocol.is_http() || sp.protocol == Protocol::Unsupported {
            inbound_hcm(
                format!("inbound_{name}"),
                cluster.clone(),
                format!("inbound|http|{port}"),
                &cluster,
                format!("{}:{}/*", sp.hostname, sp.service_port),
            )
        } else {
            tcp_proxy_filter(&cluster)
        };
        let mut c = match &sp.endpoint {
            None => original_dst_cluster(&cluster, view, sp.protocol.is_http2()),
            Some((address, target)) => static_cluster(&cluster, view, sp, address, *target),
        };
        if let Some(pool) = &sp.pool {
            super::traffic_policy::apply_inbound_pool(&mut c, pool, &view.mesh);
        }
        clusters.push((cluster.clone(), pack_any(c)));
        if let Some(bind) = &sp.bind {
            let listener = Listener {
                name: format!("{bind}_{port}"),
                address: Some(socket_address(bind, *port)),
                traffic_direction: TrafficDirection::Inbound as i32,
                filter_chains: vec![FilterChain {
                    filters: vec![filter],
                    ..Default::default()
                }],
                ..Default::default()
            };
            own_listeners.push((listener.name.clone(), pack_any(listener)));
            continue;
        }
        if sp.protocol != Protocol::Unsupported {
            declared.push(*port);
        }
        chains.push(FilterChain {
            name,
            filter_chain_match: Some(FilterChainMatch {
                destination_port: Some(UInt32Value {
                    value: u32::from(*port),
                }),
                ..raw()
            }),
            filters: vec![filter],
            ..Default::default()
        });
    }
    let mut passthrough = original_dst_cluster(INBOUND_PASSTHROUGH, view, false);
    passthrough.typed_extension_protocol_options = downstream_protocol_options();
    clusters.push((INBOUND_PASSTHROUGH.into(), pack_any(passthrough)));
    let listener = Listener {
        name: "virtualInbound".into(),
        address: Some(socket_address(
            &view.mesh.capture_bind,
            view.mesh.inbound_port,
        )),
        traffic_direction: TrafficDirection::Inbound as i32,
        listener_filters: vec![
            ListenerFilter {
                name: "envoy.filters.listener.original_dst".into(),
                config_type: Some(listener_filter::ConfigType::TypedConfig(pack_any(
                    OriginalDst::default(),
                ))),
                ..Default::default()
            },
            ListenerFilter {
                name: "envoy.filters.listener.http_inspector".into(),
                config_type: Some(listener_filter::ConfigType::TypedConfig(pack_any(
                    HttpInspector::default(),
                ))),
                filter_disabled: skip_ports(&declared),
            },
        ],
        listener_filters_timeout: Some(PbDuration::default()),
        continue_on_listener_filters_timeout: true,
        filter_chains: chains,
        ..Default::default()
    };
    let mut listeners = vec![("virtualInbound".to_string(), pack_any(listener))];
    listeners.extend(own_listeners);
    (listeners, clusters)
}

/// An inbound cluster with one fixed endpoint (a Sidecar ingress `defaultEndpoint`):
/// connections to the workload's own address leave from 127.0.0.6 like the capture's
/// original-destination ones, so the capture lets them through.
fn static_cluster(
    name: &str,
    view: &MeshView,
    sp: &ServedPort,
    address: &str,
    port: u16,
) -> Cluster {
    use envoy_types::pb::envoy::config::endpoint::v3::{
        ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
    };
    let mut c = original_dst_cluster(name, view, sp.protocol.is_http2());
    c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
        cluster::DiscoveryType::Static as i32,
    ));
    c.lb_policy = cluster::LbPolicy::RoundRobin as i32;
    if address.starts_with("127.") || address == "::1" {
        c.upstream_bind_config = None;
    }
    c.load_assignment = Some(ClusterLoadAssignment {
        cluster_name: name.to_string(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: vec![LbEndpoint {
                host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                    address: Some(socket_address(address, port)),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    });
    c
}
