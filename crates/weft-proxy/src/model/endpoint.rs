//! Endpoints (`ClusterLoadAssignment`, inline or from EDS): addresses with their weight and
//! health. Only priority 0 is served until priorities and failover arrive with locality
//! load balancing, so higher priorities are rejected rather than mixed in.

use super::{ConvertError, Result};
use envoy_types::pb::envoy::config::core::v3::{
    Address, HealthStatus, address::Address as AddressKind, socket_address::PortSpecifier,
    socket_address::Protocol,
};
use envoy_types::pb::envoy::config::endpoint::v3::{ClusterLoadAssignment, lb_endpoint};
use std::net::{IpAddr, SocketAddr};
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

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint<A> {
    pub address: A,
    pub weight: u32,
    pub healthy: bool,
    /// `endpoint.hostname`, used by `auto_host_rewrite`.
    pub hostname: Option<String>,
}

/// The endpoints of a load assignment; `resolve` says whether hostnames are allowed.
pub fn endpoints(cla: &ClusterLoadAssignment, path: &FieldPath) -> Result<Vec<Endpoint<HostPort>>> {
    let mut out = Vec::new();
    for (i, loc) in cla.endpoints.iter().enumerate() {
        let lpath = path.field("endpoints").index(i);
        if loc.priority != 0 {
            return Err(ConvertError::new(
                &lpath.field("priority"),
                "priorities other than 0 are not supported by weft-proxy yet",
            ));
        }
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
            });
        }
    }
    Ok(out)
}
