//! The v3 type URLs of the resources Weft exchanges, and the order Envoy requests them in,
//! so every component names types identically and pushes in a make-before-break order.

/// `envoy.config.listener.v3.Listener` (LDS).
pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
/// `envoy.config.route.v3.RouteConfiguration` (RDS).
pub const ROUTE_CONFIGURATION: &str =
    "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
/// `envoy.config.cluster.v3.Cluster` (CDS).
pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
/// `envoy.config.endpoint.v3.ClusterLoadAssignment` (EDS).
pub const CLUSTER_LOAD_ASSIGNMENT: &str =
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
/// `envoy.extensions.transport_sockets.tls.v3.Secret` (SDS).
pub const SECRET: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
/// The `envoy.service.discovery.v3.Resource` wrapper a state-of-the-world response may use
/// instead of the bare resource (to carry a name, version or TTL).
pub const RESOURCE_WRAPPER: &str = "type.googleapis.com/envoy.service.discovery.v3.Resource";

/// The order Envoy's ADS mux subscribes in and a server should push in: clusters before
/// their endpoints, listeners before their routes, secrets last (they are requested by the
/// clusters and listeners that reference them).
pub const ORDER: [&str; 5] = [
    CLUSTER,
    CLUSTER_LOAD_ASSIGNMENT,
    LISTENER,
    ROUTE_CONFIGURATION,
    SECRET,
];

/// Position of `type_url` in [`ORDER`]; unknown types sort after the known ones.
pub fn order_key(type_url: &str) -> usize {
    ORDER
        .iter()
        .position(|t| *t == type_url)
        .unwrap_or(ORDER.len())
}

/// Sorts type URLs into [`ORDER`], unknown ones last in name order.
pub fn sorted<'a>(types: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = types.into_iter().collect();
    v.sort_by(|a, b| order_key(a).cmp(&order_key(b)).then(a.cmp(b)));
    v
}

/// Whether a state-of-the-world response for this type carries the complete set, so a
/// resource missing from it has been removed. The xDS protocol says so for Listener and
/// Cluster only; for the others a response may carry a subset and absence means nothing.
pub fn sotw_response_is_complete(type_url: &str) -> bool {
    type_url == LISTENER || type_url == CLUSTER
}

/// The short xDS service name used in logs and debug output (`LDS`, `CDS`, …).
pub fn short_name(type_url: &str) -> &str {
    match type_url {
        LISTENER => "LDS",
        ROUTE_CONFIGURATION => "RDS",
        CLUSTER => "CDS",
        CLUSTER_LOAD_ASSIGNMENT => "EDS",
        SECRET => "SDS",
        other => other.rsplit('/').next().unwrap_or(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::cluster::v3::Cluster;
    use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
    use envoy_types::pb::envoy::config::listener::v3::Listener;
    use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
    use envoy_types::pb::envoy::service::discovery::v3::Resource;
    use prost::Name;

    #[test]
    fn constants_match_the_proto_full_names() {
        assert_eq!(LISTENER, Listener::type_url());
        assert_eq!(ROUTE_CONFIGURATION, RouteConfiguration::type_url());
        assert_eq!(CLUSTER, Cluster::type_url());
        assert_eq!(CLUSTER_LOAD_ASSIGNMENT, ClusterLoadAssignment::type_url());
        assert_eq!(SECRET, Secret::type_url());
        assert_eq!(RESOURCE_WRAPPER, Resource::type_url());
    }

    #[test]
    fn sorting_follows_envoys_order_with_unknown_types_last() {
        let got = sorted([
            "type.googleapis.com/x.Unknown",
            SECRET,
            LISTENER,
            CLUSTER_LOAD_ASSIGNMENT,
            ROUTE_CONFIGURATION,
            CLUSTER,
        ]);
        assert_eq!(
            got,
            [
                CLUSTER,
                CLUSTER_LOAD_ASSIGNMENT,
                LISTENER,
                ROUTE_CONFIGURATION,
                SECRET,
                "type.googleapis.com/x.Unknown"
            ]
        );
        assert_eq!(short_name(CLUSTER_LOAD_ASSIGNMENT), "EDS");
        assert_eq!(short_name("type.googleapis.com/x.Unknown"), "x.Unknown");
    }
}
