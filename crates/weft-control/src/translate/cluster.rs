//! Outbound clusters as istiod builds them: one per service port
//! (`outbound|PORT||HOST`) and per DestinationRule subset (`outbound|PORT|SUBSET|HOST`),
//! EDS over ADS for registry services, ORIGINAL_DST for headless ones, plus the
//! `BlackHoleCluster` and `PassthroughCluster` the catch-all routes and chains name.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::cluster::v3::{
    CircuitBreakers, Cluster, circuit_breakers, cluster,
};
use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ApiVersion, ConfigSource, Http1ProtocolOptions, Http2ProtocolOptions,
    HttpProtocolOptions as CommonHttpOptions, config_source,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    HttpProtocolOptions, http_protocol_options,
};
use envoy_types::pb::google::protobuf::{Any, Duration as PbDuration, UInt32Value};
use envoy_types::util::pack_any;

use super::names::cluster_name;
use super::view::MeshView;
use crate::node::Proxy;
use crate::registry::{Resolution, Service};

const HTTP_OPTIONS_KEY: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
pub const BLACKHOLE: &str = "BlackHoleCluster";
pub const PASSTHROUGH: &str = "PassthroughCluster";

/// Which endpoints an EDS cluster carries.
#[derive(Clone, Debug, PartialEq)]
pub struct EdsRef {
    pub cluster: String,
    pub hostname: String,
    pub port: u16,
    /// Subset labels; empty for the service-wide cluster.
    pub labels: BTreeMap<String, String>,
}

pub struct Built {
    pub name: String,
    pub body: Any,
    pub eds: Option<EdsRef>,
}

pub fn ads() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        initial_fetch_timeout: Some(PbDuration::default()),
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        ..Default::default()
    }
}

pub fn duration(d: std::time::Duration) -> PbDuration {
    PbDuration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// istiod's getDefaultCircuitBreakerThresholds: every limit at its maximum, so Envoy's
/// own defaults (1024 connections, ...) never throttle mesh traffic.
pub(super) fn default_circuit_breakers() -> CircuitBreakers {
    let max = Some(UInt32Value { value: u32::MAX });
    CircuitBreakers {
        thresholds: vec![circuit_breakers::Thresholds {
            max_connections: max,
            max_pending_requests: max,
            max_requests: max,
            max_retries: max,
            track_remaining: true,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// `typed_extension_protocol_options` asking for HTTP/2 upstream.
pub(super) fn http2_protocol_options() -> std::collections::HashMap<String, Any> {
    protocol_options(http2_explicit())
}

/// `typed_extension_protocol_options` following the downstream protocol.
pub(super) fn downstream_protocol_options() -> std::collections::HashMap<String, Any> {
    protocol_options(downstream_protocol())
}

fn protocol_options(options: HttpProtocolOptions) -> std::collections::HashMap<String, Any> {
    std::iter::once((HTTP_OPTIONS_KEY.to_string(), pack_any(options))).collect()
}

fn http2_explicit() -> HttpProtocolOptions {
    HttpProtocolOptions {
        upstream_protocol_options: Some(http_protocol_options::UpstreamProtocolOptions::ExplicitHttpConfig(
            http_protocol_options::ExplicitHttpConfig {
                protocol_config: Some(
                    http_protocol_options::explicit_http_config::ProtocolConfig::Http2ProtocolOptions(
                        Http2ProtocolOptions::default(),
                    ),
                ),
            },
        )),
        ..Default::default()
    }
}

fn downstream_protocol() -> HttpProtocolOptions {
    HttpProtocolOptions {
        upstream_protocol_options: Some(
            http_protocol_options::UpstreamProtocolOptions::UseDownstreamProtocolConfig(
                http_protocol_options::UseDownstreamHttpConfig {
                    http_protocol_options: Some(Http1ProtocolOptions::default()),
                    http2_protocol_options: Some(Http2ProtocolOptions::default()),
                    ..Default::default()
                },
            ),
        ),
        ..Default::default()
    }
}

fn service_cluster(
    view: &MeshView,
    svc: &Service,
    port: &crate::registry::ServicePort,
    name: String,
) -> Cluster {
    let mut c = Cluster {
        name: name.clone(),
        connect_timeout: Some(duration(view.mesh.connect_timeout)),
        circuit_breakers: Some(default_circuit_breakers()),
        ..Default::default()
    };
    match svc.resolution {
        Resolution::Passthrough => {
            c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::OriginalDst as i32,
            ));
            c.lb_policy = cluster::LbPolicy::ClusterProvided as i32;
        }
        _ => {
            c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::Eds as i32,
            ));
            c.eds_cluster_config = Some(cluster::EdsClusterConfig {
                eds_config: Some(ads()),
                service_name: name,
            });
            c.lb_policy = cluster::LbPolicy::LeastRequest as i32;
        }
    }
    if port.protocol.is_http2() {
        c.typed_extension_protocol_options = protocol_options(http2_explicit());
    } else if port.protocol == crate::registry::Protocol::Unsupported {
        c.typed_extension_protocol_options = protocol_options(downstream_protocol());
    }
    c
}

/// Every outbound cluster the proxy can reach, then the two catch-alls.
pub fn outbound(proxy: &Proxy, view: &MeshView) -> Vec<Built> {
    let mut out = Vec::new();
    for svc in view.registry.visible(&proxy.namespace) {
        let dr = view.destination_rule(&svc.hostname, &proxy.namespace, &svc.namespace);
        for port in &svc.ports {
            if port.protocol == crate::registry::Protocol::Udp {
                continue;
            }
            let mut subsets = vec![(String::new(), BTreeMap::new())];
            if let Some(dr) = dr {
                subsets.extend(
                    dr.spec
                        .subsets
                        .iter()
                        .map(|s| (s.name.clone(), s.labels.clone())),
                );
            }
            for (subset, labels) in subsets {
                let name = cluster_name(port.port, &subset, &svc.hostname);
                let c = service_cluster(view, svc, port, name.clone());
                let eds = c.eds_cluster_config.is_some().then(|| EdsRef {
                    cluster: name.clone(),
                    hostname: svc.hostname.clone(),
                    port: port.port,
                    labels,
                });
                if out.iter().any(|b: &Built| b.name == name) {
                    continue;
                }
                out.push(Built {
                    name,
                    body: pack_any(c),
                    eds,
                });
            }
        }
    }
    out.push(Built {
        name: BLACKHOLE.into(),
        body: pack_any(Cluster {
            name: BLACKHOLE.into(),
            connect_timeout: Some(duration(view.mesh.connect_timeout)),
            cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::Static as i32,
            )),
            ..Default::default()
        }),
        eds: None,
    });
    let mut passthrough_options = downstream_protocol();
    passthrough_options.common_http_protocol_options = Some(CommonHttpOptions {
        idle_timeout: Some(duration(std::time::Duration::from_secs(300))),
        ..Default::default()
    });
    out.push(Built {
        name: PASSTHROUGH.into(),
        body: pack_any(Cluster {
            name: PASSTHROUGH.into(),
            connect_timeout: Some(duration(view.mesh.connect_timeout)),
            cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::OriginalDst as i32,
            )),
            lb_policy: cluster::LbPolicy::ClusterProvided as i32,
            circuit_breakers: Some(default_circuit_breakers()),
            typed_extension_protocol_options: protocol_options(passthrough_options),
            ..Default::default()
        }),
        eds: None,
    });
    out
}
