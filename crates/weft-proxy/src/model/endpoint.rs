//! Endpoints (`ClusterLoadAssignment`, inline or from EDS): addresses with their weight,
//! health, priority and locality, and the assignment's `policy` (overprovisioning factor,
//! weighted priority health), which decides how load spills from one priority to the next.

use super::{ConvertError, Result};
use envoy_types::pb::envoy::config::core::v3::{
    Address, HealthStatus, address::Address as AddressKind, socket_address::PortSpecifier,
    socket_address::Protocol,
};
use envoy_types::pb::envoy::config::endpoint::v3::{ClusterLoadAssignment, lb_endpoint};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use weft_yaml::FieldPath;

/// A socket address as written: an IP, or a name that DNS clusters resolve.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    pub fn ip(&self) -> Option<SocketAddr> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host.parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, self.port))
    }
}

/// A TCP `Address` (pipes and internal addresses are not supported).
pub fn host_port(a: &Address, path: &FieldPath) -> Result<HostPort> {
    match &a.address {
        Some(AddressKind::SocketAddress(s)) => {
            let sp = path.field("socket_address");
            if s.protocol != Protocol::Tcp as i32 {
                return Err(ConvertError::new(
                    &sp.field("protocol"),
                    "only TCP is supported by weft-proxy",
                ));
            }
            if !s.resolver_name.is_empty() {
                return Err(ConvertError::new(
                    &sp.field("resolver_name"),
                    "custom resolvers are not supported by weft-proxy",
                ));
            }
            let port = match &s.port_specifier {
                Some(PortSpecifier::PortValue(p)) => u16::try_from(*p).map_err(|_| {
                    ConvertError::new(&sp.field("port_value"), "must be at most 65535")
                })?,
                Some(PortSpecifier::NamedPort(_)) => {
                    return Err(ConvertError::new(
                        &sp.field("named_port"),
                        "named ports are not supported by weft-proxy",
                    ));
                }
                None => 0,
            };
            if s.address.is_empty() {
                return Err(ConvertError::new(&sp.field("address"), "must not be empty"));
            }
            Ok(HostPort {
                host: s.address.clone(),
                port,
            })
        }
        Some(AddressKind::Pipe(_)) => Err(ConvertError::new(
            &path.field("pipe"),
            "unix socket addresses are not supported by weft-proxy",
        )),
        Some(AddressKind::EnvoyInternalAddress(_)) => Err(ConvertError::new(
            &path.field("envoy_internal_address"),
            "internal addresses are not supported by weft-proxy",
        )),
        None => Err(ConvertError::new(path, "socket_address is required")),
    }
}

/// The Unix socket a STATIC cluster's one endpoint names (an Envoy `pipe`), when its
/// endpoints are pipes at all. Only config sources dial such a cluster (an Istio bootstrap's
/// `sds-grpc`), so exactly one pipe endpoint is taken, and pipes are not mixed with IPs.
pub fn pipe(cla: &ClusterLoadAssignment, path: &FieldPath) -> Result<Option<PathBuf>> {
    let mut pipes = Vec::new();
    let mut others = 0;
    for (i, loc) in cla.endpoints.iter().enumerate() {
        for (j, lb) in loc.lb_endpoints.iter().enumerate() {
            let address = match &lb.host_identifier {
                Some(lb_endpoint::HostIdentifier::Endpoint(e)) => e.address.as_ref(),
                _ => None,
            };
            match address.and_then(|a| a.address.as_ref()) {
                Some(AddressKind::Pipe(p)) => {
                    let at = path
                        .field("endpoints")
                        .index(i)
                        .field("lb_endpoints")
                        .index(j)
                        .field("endpoint")
                        .field("address")
                        .field("pipe");
                    if p.path.is_empty() {
                        return Err(ConvertError::new(&at.field("path"), "must not be empty"));
                    }
                    if p.path.starts_with('@') {
                        return Err(ConvertError::new(
                            &at.field("path"),
                            "abstract sockets are not supported by weft-proxy",
                        ));
                    }
                    pipes.push((at, PathBuf::from(&p.path)));
                }
                _ => others += 1,
            }
        }
    }
    match (pipes.len(), others) {
        (0, _) => Ok(None),
        (1, 0) => Ok(pipes.pop().map(|(_, p)| p)),
        _ => Err(ConvertError::new(
            &pipes[0].0,
            "a cluster with a pipe address must have exactly one endpoint in weft-proxy",
        )),
    }
}

/// A TCP `Address` that must be an IP (listeners, STATIC and EDS endpoints).
pub fn socket_addr(a: &Address, path: &FieldPath) -> Result<SocketAddr> {
    let hp = host_port(a, path)?;
    hp.ip().ok_or_else(|| {
        ConvertError::new(
            &path.field("socket_address").field("address"),
            format!(
                "malformed IP address: {} (a hostname needs a STRICT_DNS or LOGICAL_DNS cluster)",
                hp.host
            ),
        )
    })
}

/// The assignment's `policy`, as Envoy applies it to every priority of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Percent: a priority's health is `min(100, factor * healthy / total)`.
    pub overprovisioning_factor: u32,
    /// Health counts hosts' weights rather than hosts.
    pub weighted_priority_health: bool,
}

/// Envoy's default overprovisioning factor (1.4).
pub const DEFAULT_OVERPROVISIONING_FACTOR: u32 = 140;

impl Default for Policy {
    fn default() -> Self {
        Policy {
            overprovisioning_factor: DEFAULT_OVERPROVISIONING_FACTOR,
            weighted_priority_health: false,
        }
    }
}

/// Where an endpoint sits in its assignment: its priority, its locality (the index of its
/// `LocalityLbEndpoints`) and that locality's `load_balancing_weight` (0 when unset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Placement {
    pub priority: u32,
    pub locality: u32,
    pub locality_weight: u32,
    pub policy: Policy,
}

/// Envoy's limit on priorities (`LocalityLbEndpoints.priority` is validated `lte: 128`).
pub const MAX_PRIORITY: u32 = 128;

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint<A> {
    pub address: A,
    pub weight: u32,
    pub healthy: bool,
    /// `endpoint.hostname`, used by `auto_host_rewrite`.
    pub hostname: Option<String>,
    pub placement: Placement,
}

/// The endpoints of a load assignment; `resolve` says whether hostnames are allowed.
pub fn endpoints(cla: &ClusterLoadAssignment, path: &FieldPath) -> Result<Vec<Endpoint<HostPort>>> {
    let mut out = Vec::new();
    let policy = match &cla.policy {
        None => Policy::default(),
        Some(p) => Policy {
            overprovisioning_factor: match p.overprovisioning_factor {
                None => DEFAULT_OVERPROVISIONING_FACTOR,
                Some(v) if v.value > 0 => v.value,
                Some(_) => {
                    return Err(ConvertError::new(
                        &path.field("policy").field("overprovisioning_factor"),
                        "value must be greater than 0",
                    ));
                }
            },
            weighted_priority_health: p.weighted_priority_health,
        },
    };
    // Envoy groups a priority's hosts by `locality`, so entries naming the same locality
    // are one locality, weighted by the last entry's weight.
    let key = |l: &envoy_types::pb::envoy::config::endpoint::v3::LocalityLbEndpoints| {
        let loc = l.locality.clone().unwrap_or_default();
        (l.priority, loc.region, loc.zone, loc.sub_zone)
    };
    let mut localities: std::collections::HashMap<_, (u32, u32)> = Default::default();
    for (i, loc) in cla.endpoints.iter().enumerate() {
        let weight = loc.load_balancing_weight.map_or(0, |w| w.value);
        localities
            .entry(key(loc))
            .and_modify(|e| e.1 = weight)
            .or_insert((i as u32, weight));
    }
    for (i, loc) in cla.endpoints.iter().enumerate() {
        let lpath = path.field("endpoints").index(i);
        let (locality, locality_weight) = localities[&key(loc)];
        if loc.priority > MAX_PRIORITY {
            return Err(ConvertError::new(
                &lpath.field("priority"),
                format!("value must be less than or equal to {MAX_PRIORITY}"),
            ));
        }
        if loc.load_balancing_weight.is_some_and(|w| w.value == 0) {
            return Err(ConvertError::new(
                &lpath.field("load_balancing_weight"),
                "must be at least 1",
            ));
        }
        let placement = Placement {
            priority: loc.priority,
            locality,
            locality_weight,
            policy,
        };
        if loc.lb_config.is_some() {
            return Err(ConvertError::new(
                &lpath.field("leds_cluster_locality_config"),
                "LEDS is not supported by weft-proxy",
            ));
        }
        for (j, lb) in loc.lb_endpoints.iter().enumerate() {
            let epath = lpath.field("lb_endpoints").index(j);
            let ep = match &lb.host_identifier {
                Some(lb_endpoint::HostIdentifier::Endpoint(e)) => e,
                Some(lb_endpoint::HostIdentifier::EndpointName(_)) => {
                    return Err(ConvertError::new(
                        &epath.field("endpoint_name"),
                        "named endpoints are not supported by weft-proxy",
                    ));
                }
                None => return Err(ConvertError::new(&epath.field("endpoint"), "is required")),
            };
            if !ep.additional_addresses.is_empty() {
                return Err(ConvertError::new(
                    &epath.field("endpoint").field("additional_addresses"),
                    "is not supported by weft-proxy",
                ));
            }
            let Some(addr) = &ep.address else {
                return Err(ConvertError::new(
                    &epath.field("endpoint").field("address"),
                    "is required",
                ));
            };
            let address = host_port(addr, &epath.field("endpoint").field("address"))?;
            let weight = lb.load_balancing_weight.map_or(1, |w| w.value);
            if weight == 0 {
                return Err(ConvertError::new(
                    &epath.field("load_balancing_weight"),
                    "must be at least 1",
                ));
            }
            // DEGRADED hosts serve only when no healthy host is left; with no degraded
            // handling yet, they are treated as unhealthy rather than as healthy.
            let healthy = matches!(
                HealthStatus::try_from(lb.health_status),
                Ok(HealthStatus::Unknown | HealthStatus::Healthy)
            );
            out.push(Endpoint {
                address,
                weight,
                healthy,
                hostname: (!ep.hostname.is_empty()).then(|| ep.hostname.clone()),
                placement,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::core::v3::{Locality, SocketAddress, address};
    use envoy_types::pb::envoy::config::endpoint::v3::{
        Endpoint as PbEndpoint, LbEndpoint, LocalityLbEndpoints, cluster_load_assignment,
    };
    use envoy_types::pb::google::protobuf::UInt32Value;

    fn group(port: u32, priority: u32, zone: &str, weight: Option<u32>) -> LocalityLbEndpoints {
        LocalityLbEndpoints {
            locality: Some(Locality {
                zone: zone.into(),
                ..Default::default()
            }),
            priority,
            load_balancing_weight: weight.map(|value| UInt32Value { value }),
            lb_endpoints: vec![LbEndpoint {
                host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(PbEndpoint {
                    address: Some(Address {
                        address: Some(address::Address::SocketAddress(SocketAddress {
                            address: "127.0.0.1".into(),
                            port_specifier: Some(PortSpecifier::PortValue(port)),
                            ..Default::default()
                        })),
                    }),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn pipe_group(path: &str) -> LocalityLbEndpoints {
        let mut g = group(0, 0, "", None);
        if let Some(lb_endpoint::HostIdentifier::Endpoint(e)) =
            &mut g.lb_endpoints[0].host_identifier
        {
            e.address = Some(Address {
                address: Some(address::Address::Pipe(
                    envoy_types::pb::envoy::config::core::v3::Pipe {
                        path: path.into(),
                        mode: 0,
                    },
                )),
            });
        }
        g
    }

    #[test]
    fn one_pipe_endpoint_is_a_socket_path_and_anything_more_is_refused() {
        let cla = |endpoints| ClusterLoadAssignment {
            endpoints,
            ..Default::default()
        };
        let root = FieldPath::root().field("load_assignment");
        assert_eq!(
            pipe(&cla(vec![group(1, 0, "", None)]), &root).unwrap(),
            None
        );
        assert_eq!(
            pipe(&cla(vec![pipe_group("/run/agent.sock")]), &root).unwrap(),
            Some(PathBuf::from("/run/agent.sock"))
        );
        let mixed = pipe(&cla(vec![group(1, 0, "", None), pipe_group("/a")]), &root)
            .unwrap_err()
            .to_string();
        assert!(
            mixed.contains("load_assignment.endpoints[1].lb_endpoints[0].endpoint.address.pipe")
                && mixed.contains("exactly one endpoint"),
            "{mixed}"
        );
        let two = pipe(&cla(vec![pipe_group("/a"), pipe_group("/b")]), &root).unwrap_err();
        assert!(two.to_string().contains("exactly one endpoint"), "{two}");
        let abstract_socket = pipe(&cla(vec![pipe_group("@agent")]), &root).unwrap_err();
        assert!(
            abstract_socket.to_string().contains("pipe.path")
                && abstract_socket.to_string().contains("abstract"),
            "{abstract_socket}"
        );
        // A pipe is never an address traffic is sent to directly.
        let Some(lb_endpoint::HostIdentifier::Endpoint(e)) =
            &pipe_group("/a").lb_endpoints[0].host_identifier
        else {
            unreachable!()
        };
        let direct = host_port(e.address.as_ref().unwrap(), &root).unwrap_err();
        assert!(direct.to_string().contains("pipe"), "{direct}");
    }

    #[test]
    fn priorities_localities_and_policy_are_kept() {
        let cla = ClusterLoadAssignment {
            endpoints: vec![
                group(1, 0, "z1", Some(2)),
                group(2, 1, "z2", None),
                group(3, 0, "z1", Some(5)),
            ],
            policy: Some(cluster_load_assignment::Policy {
                overprovisioning_factor: Some(UInt32Value { value: 200 }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let eps = endpoints(&cla, &FieldPath::root()).expect("converts");
        let p: Vec<Placement> = eps.iter().map(|e| e.placement).collect();
        assert_eq!((p[0].priority, p[1].priority), (0, 1));
        // The same zone twice in a priority is one locality, with the last weight.
        assert_eq!((p[0].locality, p[0].locality_weight), (0, 5));
        assert_eq!((p[2].locality, p[2].locality_weight), (0, 5));
        assert_eq!(p[1].locality_weight, 0);
        assert_eq!(p[0].policy.overprovisioning_factor, 200);
    }

    #[test]
    fn out_of_range_values_are_refused_by_name() {
        let cla = ClusterLoadAssignment {
            endpoints: vec![group(1, 129, "z", None)],
            ..Default::default()
        };
        let e = endpoints(&cla, &FieldPath::root()).expect_err("priority 129");
        assert!(e.to_string().contains("priority"), "{e}");
        let cla = ClusterLoadAssignment {
            endpoints: vec![group(1, 0, "z", Some(0))],
            ..Default::default()
        };
        let e = endpoints(&cla, &FieldPath::root()).expect_err("weight 0");
        assert!(e.to_string().contains("load_balancing_weight"), "{e}");
        let cla = ClusterLoadAssignment {
            policy: Some(cluster_load_assignment::Policy {
                overprovisioning_factor: Some(UInt32Value { value: 0 }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let e = endpoints(&cla, &FieldPath::root()).expect_err("factor 0");
        assert!(e.to_string().contains("overprovisioning_factor"), "{e}");
    }
}
