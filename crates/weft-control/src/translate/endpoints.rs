//! ClusterLoadAssignments as istiod builds them, for EDS and inline in DNS clusters:
//! endpoints grouped by locality (sorted by its `region/zone/subzone` label), each locality
//! weighted by the sum of its endpoints' weights — which proxyless gRPC requires, as it
//! drops unweighted localities — unhealthy endpoints left out, and the proxy's locality
//! rule applied.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::{
    Address, HealthStatus, Locality, SocketAddress, address, socket_address,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint as LbHost, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::google::protobuf::{Any, UInt32Value};
use envoy_types::util::pack_any;

use super::cluster::EdsRef;
use super::locality::{Group, LocalityRule};
use super::view::MeshView;
use crate::registry::{Endpoint, selects};

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

/// A ClusterLoadAssignment of `endpoints` as istiod builds them (buildLocalityLbEndpoints):
/// by locality, sorted by its label, each locality weighted by the sum of its endpoints'
/// weights; then the proxy's locality rule, if any (`labels_known`: the endpoints' labels
/// can decide `failoverPriority`, which istiod does not apply to DNS clusters). EDS
/// endpoints say they are healthy; inline DNS ones say nothing.
pub(super) fn assignment<'a>(
    name: &str,
    endpoints: impl Iterator<Item = &'a Endpoint>,
    eds: bool,
    rule: Option<&LocalityRule>,
) -> ClusterLoadAssignment {
    let mut by_locality: BTreeMap<&str, Group<'a>> = BTreeMap::new();
    for ep in endpoints {
        let weight = ep.weight.max(1);
        let group = by_locality.entry(&ep.locality).or_insert_with(|| Group {
            locality: ep.locality.clone(),
            weight: 0,
            priority: 0,
            endpoints: Vec::new(),
        });
        group.weight = group.weight.saturating_add(weight);
        let address = if eds {
            socket_address(&ep.address.to_string(), ep.port)
        } else {
            socket_address(&ep.host(), ep.port)
        };
        group.endpoints.push((
            LbEndpoint {
                host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(LbHost {
                    address: Some(address),
                    ..Default::default()
                })),
                health_status: if eds { HealthStatus::Healthy as i32 } else { 0 },
                load_balancing_weight: Some(UInt32Value { value: weight }),
                ..Default::default()
            },
            &ep.labels,
        ));
    }
    let mut groups: Vec<Group<'a>> = by_locality.into_values().collect();
    if let Some(rule) = rule {
        super::locality::apply(&mut groups, rule, eds);
    }
    ClusterLoadAssignment {
        cluster_name: name.to_string(),
        endpoints: groups
            .into_iter()
            .map(|g| LocalityLbEndpoints {
                locality: Some(locality(&g.locality)),
                lb_endpoints: g.endpoints.into_iter().map(|(e, _)| e).collect(),
                load_balancing_weight: Some(UInt32Value { value: g.weight }),
                priority: g.priority,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

pub fn load_assignment(eds: &EdsRef, view: &MeshView) -> (String, Any) {
    let compute = || {
        // A DNS name is for the proxy's resolver (STRICT_DNS/LOGICAL_DNS clusters carry such
        // endpoints inline); EDS addresses must be IPs.
        let endpoints = view
            .registry
            .endpoints_of(&eds.hostname, eds.port)
            .into_iter()
            .filter(|ep| ep.healthy && ep.hostname.is_none() && selects(&eds.labels, &ep.labels));
        pack_any(assignment(
            &eds.cluster,
            endpoints,
            true,
            eds.locality.as_ref(),
        ))
    };
    let rule = eds
        .locality
        .as_ref()
        .map(|r| format!("{r:?}"))
        .unwrap_or_default();
    let cla = view
        .eds_memo
        .get_or((&eds.cluster, &eds.labels, rule), compute);
    (eds.cluster.clone(), cla)
}
