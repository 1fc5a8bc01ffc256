//! Partial decoding of the resources a simulated sidecar must look into: one process plays
//! a thousand proxies, so it reads only the fields Envoy's subscription logic needs (a
//! cluster's EDS name, a listener's RDS names, a route configuration's virtual host names)
//! and decodes a whole message only where a scenario checks its content.

use prost::Message;
use weft_xds::envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use weft_xds::envoy_types::pb::envoy::config::listener::v3::{Listener, filter};
use weft_xds::envoy_types::pb::envoy::config::route::v3::{VirtualHost, route, route_action};
use weft_xds::envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager,
};
use weft_xds::envoy_types::pb::google::protobuf::Any;

/// `Listener.name`, `RouteConfiguration.name`, `ClusterLoadAssignment.cluster_name`: all
/// field 1.
#[derive(Clone, PartialEq, Message)]
struct Named {
    #[prost(string, tag = "1")]
    name: String,
}

/// `Cluster`: name (1), `type` (2, in the discovery-type oneof), `eds_cluster_config` (3).
#[derive(Clone, PartialEq, Message)]
struct ClusterLite {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(int32, optional, tag = "2")]
    kind: Option<i32>,
    #[prost(message, optional, tag = "3")]
    eds: Option<EdsConfigLite>,
}

/// `Cluster.EdsClusterConfig`: `service_name` (2).
#[derive(Clone, PartialEq, Message)]
struct EdsConfigLite {
    #[prost(string, tag = "2")]
    service_name: String,
}

/// `RouteConfiguration`: name (1), virtual hosts (2) left as bytes.
#[derive(Clone, PartialEq, Message)]
struct RouteConfigLite {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(bytes = "vec", repeated, tag = "2")]
    virtual_hosts: Vec<Vec<u8>>,
}

/// `Cluster.DiscoveryType.EDS`.
const EDS: i32 = 3;
const HCM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

pub fn name(any: &Any) -> anyhow::Result<String> {
    Ok(Named::decode(any.value.as_slice())?.name)
}

/// A cluster's name and, for an EDS cluster, the name its endpoints are requested by.
pub fn cluster(any: &Any) -> anyhow::Result<(String, Option<String>)> {
    let c = ClusterLite::decode(any.value.as_slice())?;
    let eds = (c.kind == Some(EDS)).then(|| {
        c.eds
            .map(|e| e.service_name)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| c.name.clone())
    });
    Ok((c.name, eds))
}

/// A listener's name and the RDS route names of every HTTP connection manager in it.
pub fn listener(any: &Any) -> anyhow::Result<(String, Vec<String>)> {
    let l = Listener::decode(any.value.as_slice())?;
    let mut routes = Vec::new();
    for chain in l.filter_chains.iter().chain(l.default_filter_chain.iter()) {
        for f in &chain.filters {
            let Some(filter::ConfigType::TypedConfig(tc)) = &f.config_type else {
                continue;
            };
            if tc.type_url != HCM_TYPE {
                continue;
            }
            let hcm = HttpConnectionManager::decode(tc.value.as_slice())?;
            if let Some(http_connection_manager::RouteSpecifier::Rds(rds)) = hcm.route_specifier {
                routes.push(rds.route_config_name);
            }
        }
    }
    Ok((l.name, routes))
}

/// Whether a ClusterLoadAssignment lists `ip` among its endpoints.
pub fn has_endpoint(any: &Any, ip: &str) -> anyhow::Result<bool> {
    use weft_xds::envoy_types::pb::envoy::config::core::v3::address;
    use weft_xds::envoy_types::pb::envoy::config::endpoint::v3::lb_endpoint;
    let cla = ClusterLoadAssignment::decode(any.value.as_slice())?;
    Ok(cla
        .endpoints
        .iter()
        .flat_map(|l| &l.lb_endpoints)
        .filter_map(|e| match &e.host_identifier {
            Some(lb_endpoint::HostIdentifier::Endpoint(ep)) => ep.address.as_ref(),
            _ => None,
        })
        .any(|a| match &a.address {
            Some(address::Address::SocketAddress(sa)) => sa.address == ip,
            _ => false,
        }))
}

/// The weight the route configuration gives `cluster` in the weighted split of virtual
/// host `vhost` (None when the host or the split is not there).
pub fn split_weight(any: &Any, vhost: &str, cluster: &str) -> anyhow::Result<Option<u32>> {
    let rc = RouteConfigLite::decode(any.value.as_slice())?;
    for raw in &rc.virtual_hosts {
        if Named::decode(raw.as_slice())?.name != vhost {
            continue;
        }
        let vh = VirtualHost::decode(raw.as_slice())?;
        for r in &vh.routes {
            let Some(route::Action::Route(action)) = &r.action else {
                continue;
            };
            let Some(route_action::ClusterSpecifier::WeightedClusters(w)) =
                &action.cluster_specifier
            else {
                continue;
            };
            if let Some(c) = w.clusters.iter().find(|c| c.name == cluster) {
                return Ok(Some(c.weight.as_ref().map_or(0, |w| w.value)));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_xds::envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster as c};
    use weft_xds::envoy_types::pb::envoy::config::route::v3::{
        Route, RouteAction, RouteConfiguration, WeightedCluster, weighted_cluster,
    };
    use weft_xds::envoy_types::pb::google::protobuf::UInt32Value;
    use weft_xds::envoy_types::util::pack_any;

    #[test]
    fn clusters_read_like_full_decoding() {
        let eds = pack_any(Cluster {
            name: "outbound|80||a.ns.svc.cluster.local".into(),
            cluster_discovery_type: Some(c::ClusterDiscoveryType::Type(
                c::DiscoveryType::Eds as i32,
            )),
            eds_cluster_config: Some(c::EdsClusterConfig {
                eds_config: None,
                service_name: "eds-name".into(),
            }),
            ..Default::default()
        });
        assert_eq!(
            cluster(&eds).unwrap(),
            (
                "outbound|80||a.ns.svc.cluster.local".into(),
                Some("eds-name".into())
            )
        );
        let static_ = pack_any(Cluster {
            name: "BlackHoleCluster".into(),
            cluster_discovery_type: Some(c::ClusterDiscoveryType::Type(
                c::DiscoveryType::Static as i32,
            )),
            ..Default::default()
        });
        assert_eq!(
            cluster(&static_).unwrap(),
            ("BlackHoleCluster".into(), None)
        );
    }

    #[test]
    fn split_weights_are_found_by_virtual_host_and_cluster() {
        let split = |w: u32| weighted_cluster::ClusterWeight {
            name: "outbound|80|v2|a".into(),
            weight: Some(UInt32Value { value: w }),
            ..Default::default()
        };
        let rc = pack_any(RouteConfiguration {
            name: "80".into(),
            virtual_hosts: vec![VirtualHost {
                name: "a:80".into(),
                domains: vec!["a".into()],
                routes: vec![Route {
                    action: Some(route::Action::Route(RouteAction {
                        cluster_specifier: Some(route_action::ClusterSpecifier::WeightedClusters(
                            WeightedCluster {
                                clusters: vec![split(30)],
                                ..Default::default()
                            },
                        )),
                        ..Default::default()
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        });
        assert_eq!(name(&rc).unwrap(), "80");
        assert_eq!(
            split_weight(&rc, "a:80", "outbound|80|v2|a").unwrap(),
            Some(30)
        );
        assert_eq!(split_weight(&rc, "b:80", "outbound|80|v2|a").unwrap(), None);
    }
}
