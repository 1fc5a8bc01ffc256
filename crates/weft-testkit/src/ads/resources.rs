//! Builders for the xDS resources the ADS scenarios push: EDS clusters, their endpoints, an
//! HTTP listener whose routes come over RDS, route tables mapping path prefixes to clusters,
//! and the deliberately broken variants a proxy must NACK.

use weft_xds::envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use weft_xds::envoy_types::pb::envoy::config::core::v3::{
    Address, AggregatedConfigSource, ApiVersion, ConfigSource, SocketAddress, address,
    config_source, socket_address,
};
use weft_xds::envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use weft_xds::envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, Listener, filter,
};
use weft_xds::envoy_types::pb::envoy::config::route::v3::{
    Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, route, route_action,
    route_match,
};
use weft_xds::envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use weft_xds::envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use weft_xds::envoy_types::pb::envoy::r#type::matcher::v3::RegexMatcher;
use weft_xds::envoy_types::pb::google::protobuf::{Any, Duration as PbDuration};
use weft_xds::envoy_types::util::pack_any;
use weft_xds::server::Snapshot;

use crate::Error;

/// The type URL of a message no proxy has an extension for.
pub const UNKNOWN_FILTER_TYPE: &str = "type.googleapis.com/weft.test.DoesNotExist";
/// A regex RE2 (and Rust's regex) refuses: an unclosed group and class.
pub const BAD_REGEX: &str = "([";

/// `ads: {}` with resource API v3, as every dynamic reference uses.
pub fn ads() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        ..Default::default()
    }
}

fn loopback(port: u16) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: "127.0.0.1".into(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(port))),
            ..Default::default()
        })),
    }
}

/// A cluster whose endpoints come over EDS (ADS), named after itself.
pub fn eds_cluster(name: &str) -> Any {
    pack_any(Cluster {
        name: name.into(),
        connect_timeout: Some(PbDuration {
            seconds: 1,
            nanos: 0,
        }),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Eds as i32,
        )),
        eds_cluster_config: Some(cluster::EdsClusterConfig {
            eds_config: Some(ads()),
            service_name: String::new(),
        }),
        ..Default::default()
    })
}

/// The endpoints of `cluster`: one locality holding a loopback host per port.
pub fn endpoints(cluster: &str, ports: &[u16]) -> Any {
    pack_any(ClusterLoadAssignment {
        cluster_name: cluster.into(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: ports
                .iter()
                .map(|p| LbEndpoint {
                    host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                        address: Some(loopback(*p)),
                        ..Default::default()
                    })),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    })
}

fn router() -> HttpFilter {
    HttpFilter {
        name: "envoy.filters.http.router".into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(
            Router::default(),
        ))),
        ..Default::default()
    }
}

/// An HTTP filter whose typed_config names a message no proxy knows.
pub fn unknown_filter() -> HttpFilter {
    HttpFilter {
        name: "weft.test.unknown".into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(Any {
            type_url: UNKNOWN_FILTER_TYPE.into(),
            value: Vec::new(),
        })),
        ..Default::default()
    }
}

fn listener_with(name: &str, port: u16, route_config: &str, filters: Vec<HttpFilter>) -> Any {
    let hcm = HttpConnectionManager {
        stat_prefix: name.into(),
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(ads()),
            route_config_name: route_config.into(),
        })),
        http_filters: filters,
        ..Default::default()
    };
    pack_any(Listener {
        name: name.into(),
        address: Some(loopback(port)),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(pack_any(hcm))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    })
}

/// An HTTP listener on `127.0.0.1:port` whose HCM takes `route_config` over RDS.
pub fn rds_listener(name: &str, port: u16, route_config: &str) -> Any {
    listener_with(name, port, route_config, vec![router()])
}

/// [`rds_listener`] with [`unknown_filter`] before the router: a listener to NACK.
pub fn listener_with_unknown_filter(name: &str, port: u16, route_config: &str) -> Any {
    listener_with(name, port, route_config, vec![unknown_filter(), router()])
}

fn route_to(path: route_match::PathSpecifier, cluster: &str) -> Route {
    Route {
        r#match: Some(RouteMatch {
            path_specifier: Some(path),
            ..Default::default()
        }),
        action: Some(route::Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.into())),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn route_table(name: &str, routes: Vec<Route>) -> Any {
    pack_any(RouteConfiguration {
        name: name.into(),
        virtual_hosts: vec![VirtualHost {
            name: "all".into(),
            domains: vec!["*".into()],
            routes,
            ..Default::default()
        }],
        ..Default::default()
    })
}

/// A route table of one catch-all virtual host: each `(prefix, cluster)` in order.
pub fn routes(name: &str, prefixes: &[(&str, &str)]) -> Any {
    route_table(
        name,
        prefixes
            .iter()
            .map(|(prefix, cluster)| {
                route_to(
                    route_match::PathSpecifier::Prefix((*prefix).into()),
                    cluster,
                )
            })
            .collect(),
    )
}

/// A route table whose only route matches [`BAD_REGEX`]: a route table to NACK.
pub fn routes_with_bad_regex(name: &str, cluster: &str) -> Any {
    route_table(
        name,
        vec![route_to(
            route_match::PathSpecifier::SafeRegex(RegexMatcher {
                regex: BAD_REGEX.into(),
                ..Default::default()
            }),
            cluster,
        )],
    )
}

/// A snapshot of `version` holding `resources`.
pub fn snapshot(
    version: &str,
    resources: impl IntoIterator<Item = Any>,
) -> Result<Snapshot, Error> {
    let mut s = Snapshot::new(version);
    for r in resources {
        s.insert(r)
            .map_err(|e| Error::Conformance(format!("snapshot {version}: {e}")))?;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_xds::type_url;

    #[test]
    fn resources_are_named_and_typed_for_the_snapshot() {
        let s = snapshot(
            "v1",
            [
                eds_cluster("svc-a"),
                endpoints("svc-a", &[1, 2]),
                rds_listener("http", 3, "routes"),
                routes("routes", &[("/", "svc-a")]),
            ],
        )
        .unwrap();
        for (t, name) in [
            (type_url::CLUSTER, "svc-a"),
            (type_url::CLUSTER_LOAD_ASSIGNMENT, "svc-a"),
            (type_url::LISTENER, "http"),
            (type_url::ROUTE_CONFIGURATION, "routes"),
        ] {
            assert!(s.get(t, name).is_some(), "{t} {name}");
        }
        assert_ne!(
            rds_listener("http", 3, "routes"),
            listener_with_unknown_filter("http", 3, "routes")
        );
    }
}
