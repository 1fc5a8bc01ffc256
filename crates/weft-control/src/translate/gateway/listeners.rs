//! The LDS side of a router: the filter chains of a gateway listener, a connection
//! manager for HTTP servers and tcp_proxy chains (by SNI for TLS passthrough) for the rest.

use std::collections::BTreeMap;
use std::time::Duration;

use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, FilterChainMatch, ListenerFilter, filter, listener_filter,
};
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::{
    ForwardClientCertDetails, SetCurrentClientCertDetails,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use envoy_types::pb::google::protobuf::BoolValue;
use envoy_types::util::pack_any;
use weft_config::networking::virtual_service::{RouteDestination, VirtualService};

use super::hosts::any_host_matches;
use super::{GatewayServer, resolve_gateway_name, virtual_services_for_gateway};
use crate::node::Proxy;
use crate::translate::cluster::duration;
use crate::translate::listener::outbound_hcm;
use crate::translate::route::destination_cluster;
use crate::translate::view::{MeshView, Named};

const HCM: &str = "envoy.filters.network.http_connection_manager";
const TCP_PROXY: &str = "envoy.filters.network.tcp_proxy";
const TLS_INSPECTOR: &str = "envoy.filters.listener.tls_inspector";
/// defaultGatewayTransportSocketConnectTimeout, set on every gateway filter chain.
const TRANSPORT_SOCKET_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// The HTTP servers' chain: a connection manager taking routes `route_name` by RDS, as
/// buildGatewayConnectionManager sets it up (the gateway is the edge: it sets
/// X-Forwarded-For from the peer and sanitises client certificate details).
pub(super) fn http_chain(listener: &str, route_name: &str) -> FilterChain {
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

pub(super) fn tls_inspector() -> ListenerFilter {
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
pub(super) fn tcp_chains(
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
