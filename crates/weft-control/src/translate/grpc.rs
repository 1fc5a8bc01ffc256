//! Proxyless gRPC clients (istiod's grpcgen): a client dialling `xds:///HOST:PORT` asks LDS
//! for exactly `HOST:PORT`, so every HTTP-ish service port gets an API listener under each
//! name a client may dial (FQDN and the short names valid from its namespace), pointing by
//! RDS at `outbound|PORT||FQDN`; routes are the sidecar's VirtualService translation, and
//! clusters are the sidecar's EDS clusters minus what gRPC's xDS parser rejects.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{address, socket_address};
use envoy_types::pb::envoy::config::endpoint::v3::{ClusterLoadAssignment, lb_endpoint};
use envoy_types::pb::envoy::config::listener::v3::{ApiListener, Listener};
use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, VirtualHost};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use envoy_types::pb::google::protobuf::{Any, UInt32Value};
use envoy_types::util::pack_any;
use prost::Message;

use super::Generated;
use super::cluster::{ads, outbound};
use super::endpoints::{load_assignment, socket_address};
use super::names::cluster_name;
use super::route::{FAULT_FILTER, domains, service_routes};
use super::view::MeshView;
use crate::node::Proxy;
use crate::registry::{Protocol, Resolution, Service};

const ROUTER_FILTER: &str = "envoy.filters.http.router";

/// Ports a gRPC client can call: declared HTTP/HTTP2/gRPC, or undeclared (sniffed by a
/// sidecar; a gRPC client speaks HTTP/2 regardless).
fn callable(protocol: Protocol) -> bool {
    protocol.is_http() || protocol == Protocol::Unsupported
}

/// The clusters a gRPC client is offered: those balanced over EDS, decoded.
fn eds_clusters(proxy: &Proxy, view: &MeshView) -> Vec<(super::cluster::Built, Cluster)> {
    outbound(proxy, view)
        .into_iter()
        .filter(|b| b.eds.is_some())
        .filter_map(|b| {
            let c = Cluster::decode(b.body.value.as_slice()).ok()?;
            Some((b, c))
        })
        .collect()
}

fn assignment(eds: &super::cluster::EdsRef, view: &MeshView) -> (String, Any) {
    let (name, cla) = load_assignment(eds, view);
    (name, without_duplicates(cla))
}

/// The endpoints [`generate`] sends a gRPC client.
pub fn endpoints(proxy: &Proxy, view: &MeshView) -> Vec<(String, Any)> {
    eds_clusters(proxy, view)
        .iter()
        .filter_map(|(b, _)| b.eds.as_ref().map(|e| assignment(e, view)))
        .collect()
}

/// Everything a proxyless gRPC client is sent. Only services balanced over EDS are offered:
/// gRPC has no ORIGINAL_DST, and DNS-resolved hosts would need LOGICAL_DNS clusters.
pub fn generate(proxy: &Proxy, view: &MeshView) -> Generated {
    let scope = super::scope::Scope::of(proxy, view);
    // FQDN listeners first, so a short name never shadows another service's FQDN.
    let mut by_fqdn: BTreeMap<String, Any> = BTreeMap::new();
    let mut by_short_name: BTreeMap<String, Any> = BTreeMap::new();
    let mut routes: BTreeMap<String, Any> = BTreeMap::new();
    for svc in view.visible_services(proxy, &scope) {
        if svc.resolution != Resolution::ClientSideLb {
            continue;
        }
        for sp in svc.ports.iter().filter(|p| callable(p.protocol)) {
            let route_name = cluster_name(sp.port, "", &svc.hostname);
            for host in client_names(proxy, svc, sp.port) {
                let name = format!("{host}:{}", sp.port);
                let map = if host == svc.hostname {
                    &mut by_fqdn
                } else {
                    &mut by_short_name
                };
                map.entry(name.clone())
                    .or_insert_with(|| pack_any(listener(name, svc, sp.port, &route_name)));
            }
            if routes.contains_key(&route_name) {
                // The same host defined in another namespace: one cluster, one route.
                continue;
            }
            let rc = RouteConfiguration {
                name: route_name.clone(),
                virtual_hosts: vec![VirtualHost {
                    name: format!("{}:{}", svc.hostname, sp.port),
                    domains: domains(proxy, svc, sp.port, true),
                    routes: service_routes(proxy, view, svc, sp.port)
                        .into_iter()
                        .map(for_grpc_route)
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            };
            routes.insert(route_name, pack_any(rc));
        }
    }
    for (name, l) in by_short_name {
        by_fqdn.entry(name).or_insert(l);
    }
    let mut clusters = Vec::new();
    let mut endpoints = Vec::new();
    for (built, c) in eds_clusters(proxy, view) {
        if let Some(eds) = &built.eds {
            endpoints.push(assignment(eds, view));
        }
        clusters.push((built.name, pack_any(for_grpc(c))));
    }
    Generated {
        listeners: by_fqdn.into_iter().collect(),
        routes: routes.into_iter().collect(),
        clusters,
        endpoints,
    }
}

/// The hosts a client may dial `svc` by from its namespace: the FQDN and the Kubernetes
/// short names (the virtual host's domains without the VIPs; istiod's grpcgen looks the
/// requested host up as a service name, never as an address).
fn client_names(proxy: &Proxy, svc: &Service, port: u16) -> Vec<String> {
    domains(proxy, svc, port, false)
        .into_iter()
        .filter(|d| d.parse::<IpAddr>().is_err())
        .collect()
}

fn http_filter(name: &str, config: Any) -> HttpFilter {
    HttpFilter {
        name: name.into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(config)),
        ..Default::default()
    }
}

/// grpcgen's client listener: the service address (tolerated, informative) and an API
/// listener whose connection manager takes its routes over ADS; the empty fault filter is
/// what per-route fault overrides attach to, and gRPC requires the router last.
fn listener(name: String, svc: &Service, port: u16, route_config_name: &str) -> Listener {
    let hcm = HttpConnectionManager {
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(ads()),
            route_config_name: route_config_name.to_string(),
        })),
        http_filters: vec![
            http_filter(FAULT_FILTER, pack_any(HttpFault::default())),
            http_filter(ROUTER_FILTER, pack_any(Router::default())),
        ],
        ..Default::default()
    };
    Listener {
        name,
        address: svc
            .addresses
            .first()
            .map(|vip| socket_address(&vip.to_string(), port)),
        api_listener: Some(ApiListener {
            api_listener: Some(pack_any(hcm)),
        }),
        ..Default::default()
    }
}

/// A sidecar EDS cluster as gRPC accepts it: gRPC balances by ROUND_ROBIN or RING_HASH
/// only (it NACKs the sidecar's LEAST_REQUEST, RANDOM and MAGLEV, so those become round
/// robin as istiod's gRPC generator does; a consistent hash stays a ring), ignores slow
/// start, and always speaks HTTP/2, so Envoy's upstream protocol options mean nothing to
/// it. Circuit breakers and outlier detection are gRPC features and stay.
fn for_grpc(mut c: Cluster) -> Cluster {
    if c.lb_policy != cluster::LbPolicy::RingHash as i32 {
        c.lb_policy = cluster::LbPolicy::RoundRobin as i32;
        c.lb_config = None;
    }
    c.typed_extension_protocol_options.clear();
    c
}

/// A route as gRPC takes it: gRPC has no CORS filter (and NACKs per-route configuration
/// of filters it does not know) and does not mirror, so both are left out, as istiod's
/// gRPC generator never sets them.
fn for_grpc_route(
    mut r: envoy_types::pb::envoy::config::route::v3::Route,
) -> envoy_types::pb::envoy::config::route::v3::Route {
    r.typed_per_filter_config.remove(super::route::CORS_FILTER);
    if let Some(envoy_types::pb::envoy::config::route::v3::route::Action::Route(a)) = &mut r.action
    {
        a.request_mirror_policies.clear();
    }
    r
}

/// gRPC NACKs a ClusterLoadAssignment listing one address twice (Envoy does not), which
/// overlapping EndpointSlices or a host defined in two namespaces can produce: later
/// repeats are dropped and locality weights summed again.
fn without_duplicates(any: Any) -> Any {
    let Ok(mut cla) = ClusterLoadAssignment::decode(any.value.as_slice()) else {
        return any;
    };
    let mut seen = BTreeSet::new();
    let mut dropped = false;
    for locality in &mut cla.endpoints {
        let before = locality.lb_endpoints.len();
        locality
            .lb_endpoints
            .retain(|e| seen.insert(endpoint_key(e)));
        if locality.lb_endpoints.len() != before {
            dropped = true;
            let weight = locality
                .lb_endpoints
                .iter()
                .map(|e| e.load_balancing_weight.map_or(1, |w| w.value))
                .fold(0u32, u32::saturating_add);
            locality.load_balancing_weight = Some(UInt32Value { value: weight });
        }
    }
    if !dropped {
        return any;
    }
    cla.endpoints.retain(|l| !l.lb_endpoints.is_empty());
    pack_any(cla)
}

fn endpoint_key(
    e: &envoy_types::pb::envoy::config::endpoint::v3::LbEndpoint,
) -> Option<(String, u32)> {
    let Some(lb_endpoint::HostIdentifier::Endpoint(ep)) = &e.host_identifier else {
        return None;
    };
    let Some(address::Address::SocketAddress(sa)) = ep.address.as_ref()?.address.as_ref() else {
        return None;
    };
    let Some(socket_address::PortSpecifier::PortValue(port)) = sa.port_specifier else {
        return None;
    };
    Some((sa.address.clone(), port))
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::core::v3::Node;

    use super::*;
    use crate::registry::Registry;
    use crate::translate::MeshSettings;

    const MESH: &str = r#"
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: default }
spec:
  clusterIP: 10.0.0.7
  ports:
  - { name: grpc, port: 7070 }
  - { name: tcp-db, port: 5432 }
  - { name: web, port: 8080 }
---
apiVersion: v1
kind: Endpoints
metadata: { name: echo, namespace: default }
subsets:
- addresses: [{ ip: 10.1.0.1 }]
  ports: [{ name: grpc, port: 7070 }, { name: tcp-db, port: 5432 }, { name: web, port: 8080 }]
- addresses: [{ ip: 10.1.0.1 }]
  ports: [{ name: grpc, port: 7070 }]
---
apiVersion: v1
kind: Service
metadata: { name: other, namespace: prod }
spec:
  clusterIP: 10.0.0.8
  ports: [{ name: http, port: 80 }]
---
apiVersion: v1
kind: Service
metadata: { name: headless, namespace: default }
spec:
  clusterIP: None
  ports: [{ name: grpc, port: 9000 }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: dns, namespace: default }
spec:
  hosts: [api.example.com]
  resolution: DNS
  ports: [{ number: 443, name: grpc, protocol: GRPC }]
"#;

    fn generated() -> Generated {
        let mut loader = weft_config::Loader::new();
        loader.load_str("mesh.yaml", MESH);
        let result = loader.finish();
        assert!(!result.has_errors(), "{:?}", result.findings);
        let refs: Vec<&weft_config::Resource> =
            result.resources.iter().map(|l| &l.resource).collect();
        let registry = Registry::build(&refs, &[], "cluster.local");
        let view = MeshView::new(&refs, registry, MeshSettings::default());
        let node = Node {
            id: "sidecar~10.1.0.9~client-0.default~default.svc.cluster.local".into(),
            ..Default::default()
        };
        generate(&Proxy::from_node(&node).expect("a sidecar id"), &view)
    }

    fn names(v: &[(String, Any)]) -> Vec<&str> {
        v.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn listeners_under_every_name_a_client_dials() {
        let g = generated();
        assert_eq!(
            names(&g.listeners),
            [
                "echo.default.svc.cluster.local:7070",
                "echo.default.svc.cluster.local:8080",
                "echo.default.svc:7070",
                "echo.default.svc:8080",
                "echo.default:7070",
                "echo.default:8080",
                "echo:7070",
                "echo:8080",
                "other.prod.svc.cluster.local:80",
                "other.prod.svc:80",
                "other.prod:80",
            ],
            "TCP ports, headless and DNS services are not offered; no VIP names"
        );
        let any = &g.listeners[6].1;
        let l = Listener::decode(any.value.as_slice()).expect("a Listener");
        let api = l.api_listener.and_then(|a| a.api_listener).expect("api");
        let hcm = HttpConnectionManager::decode(api.value.as_slice()).expect("an HCM");
        let Some(http_connection_manager::RouteSpecifier::Rds(rds)) = hcm.route_specifier else {
            panic!("rds")
        };
        assert_eq!(
            rds.route_config_name,
            "outbound|7070||echo.default.svc.cluster.local"
        );
        let filters: Vec<&str> = hcm.http_filters.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(filters, [FAULT_FILTER, ROUTER_FILTER]);

        assert_eq!(
            names(&g.routes),
            [
                "outbound|7070||echo.default.svc.cluster.local",
                "outbound|8080||echo.default.svc.cluster.local",
                "outbound|80||other.prod.svc.cluster.local",
            ]
        );
        let rc = RouteConfiguration::decode(g.routes[0].1.value.as_slice()).expect("routes");
        assert!(rc.virtual_hosts[0].domains.iter().any(|d| d == "echo:7070"));
    }

    #[test]
    fn round_robin_eds_clusters_without_duplicate_endpoints() {
        let g = generated();
        assert_eq!(
            names(&g.clusters),
            [
                "outbound|7070||echo.default.svc.cluster.local",
                "outbound|5432||echo.default.svc.cluster.local",
                "outbound|8080||echo.default.svc.cluster.local",
                "outbound|80||other.prod.svc.cluster.local",
            ]
        );
        for (_, any) in &g.clusters {
            let c = Cluster::decode(any.value.as_slice()).expect("a Cluster");
            assert_eq!(c.lb_policy, cluster::LbPolicy::RoundRobin as i32);
            assert_eq!(
                c.cluster_discovery_type,
                Some(cluster::ClusterDiscoveryType::Type(
                    cluster::DiscoveryType::Eds as i32
                ))
            );
            assert!(c.typed_extension_protocol_options.is_empty());
        }
        // The Endpoints object lists 10.1.0.1:7070 twice.
        let cla = ClusterLoadAssignment::decode(g.endpoints[0].1.value.as_slice()).expect("cla");
        let eps: Vec<_> = cla
            .endpoints
            .iter()
            .flat_map(|l| l.lb_endpoints.iter().map(endpoint_key))
            .collect();
        assert_eq!(eps, [Some(("10.1.0.1".to_string(), 7070))]);
        assert_eq!(
            cla.endpoints[0].load_balancing_weight,
            Some(UInt32Value { value: 1 })
        );
    }
}
