//! ClusterLoadAssignments as istiod builds them: endpoints grouped by locality (sorted by
//! its `region/zone/subzone` label), each locality weighted by the sum of its endpoints'
//! weights — which proxyless gRPC requires, as it drops unweighted localities — and
//! unhealthy endpoints left out.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::{
    Address, HealthStatus, Locality, SocketAddress, address, socket_address,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::google::protobuf::{Any, UInt32Value};
use envoy_types::util::pack_any;

use super::cluster::EdsRef;
use super::view::MeshView;
use crate::registry::selects;

pub fn socket_address(ip: &str, port: u16) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(port))),
            ..Default::default()
        })),
    }
}

fn locality(label: &str) -> Locality {
    let mut parts = label.splitn(3, '/');
    Locality {
        region: parts.next().unwrap_or("").to_string(),
        zone: parts.next().unwrap_or("").to_string(),
        sub_zone: parts.next().unwrap_or("").to_string(),
    }
}

pub fn load_assignment(eds: &EdsRef, view: &MeshView) -> (String, Any) {
    let mut by_locality: BTreeMap<&str, Vec<LbEndpoint>> = BTreeMap::new();
    let mut weights: BTreeMap<&str, u32> = BTreeMap::new();
    for ep in view.registry.endpoints_of(&eds.hostname, eds.port) {
        // A DNS name is for the proxy's resolver (STRICT_DNS/LOGICAL_DNS clusters carry
        // such endpoints inline); EDS addresses must be IPs.
        if !ep.healthy || ep.hostname.is_some() || !selects(&eds.labels, &ep.labels) {
            continue;
        }
        let weight = ep.weight.max(1);
        *weights.entry(&ep.locality).or_default() += weight;
        by_locality
            .entry(&ep.locality)
            .or_default()
            .push(LbEndpoint {
                host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                    address: Some(socket_address(&ep.address.to_string(), ep.port)),
                    ..Default::default()
                })),
                health_status: HealthStatus::Healthy as i32,
                load_balancing_weight: Some(UInt32Value { value: weight }),
                ..Default::default()
            });
    }
    let endpoints = by_locality
        .into_iter()
        .map(|(label, lb_endpoints)| LocalityLbEndpoints {
            locality: Some(locality(label)),
            lb_endpoints,
            load_balancing_weight: Some(UInt32Value {
                value: weights[label],
            }),
            ..Default::default()
        })
        .collect();
    (
        eds.cluster.clone(),
        pack_any(ClusterLoadAssignment {
            cluster_name: eds.cluster.clone(),
            endpoints,
            ..Default::default()
        }),
    )
}
