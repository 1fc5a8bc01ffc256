//! `DestinationRule` (networking.istio.io v1/v1beta1/v1alpha3): policies applied to traffic
//! for a service after routing — load balancing, connection pools, outlier detection, TLS
//! origination, tunnelling — and the named subsets routes refer to. Types mirror
//! `destination_rule.proto`; the webhook's rules (`ValidateDestinationRule` and friends in
//! Istio's `pkg/config/validation`) are implemented next to each message. Sidecar and
//! MeshConfig reuse the pool, load balancer, locality and client TLS messages from here.
#![allow(clippy::upper_case_acronyms)]

mod connection_pool;
mod load_balancer;
mod tls;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_istio;

pub use connection_pool::{
    ConnectionPoolSettings, H2UpgradePolicy, HTTPSettings, OutlierDetection, TCPSettings,
    TcpKeepalive,
};
pub use load_balancer::{
    Attribute, ConsistentHashLB, Distribute, Failover, HTTPCookie, LoadBalancerSettings,
    LocalityLoadBalancerSetting, MagLev, RingHash, SimpleLB, WarmupConfiguration,
};
pub use tls::{ClientTLSSettings, TLSmode};

use crate::networking::virtual_service::{PortSelector, export_to, subset_name};
use crate::selector::WorkloadSelector;
use crate::types::is_default;
use crate::validate::{Validate, Validator, rules};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The CRD's `maxItems` for `portLevelSettings`.
const MAX_PORT_LEVEL_SETTINGS: usize = 4096;

/// Policies for traffic to one service (`host`), optionally per subset and per port.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DestinationRule {
    /// Service the rule applies to (registry name, short name, or wildcard).
    #[serde(skip_serializing_if = "is_default")]
    pub host: String,
    /// Policies for all traffic to the host (subsets and ports may override).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_policy: Option<TrafficPolicy>,
    /// Named groups of endpoints (e.g. versions) selected by labels.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subsets: Vec<Subset>,
    /// Namespaces that may see this rule (`.` = own namespace, `*` = all).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub export_to: Vec<String>,
    /// Restricts the rule to the selected workloads in the rule's namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload_selector: Option<WorkloadSelector>,
}

impl DestinationRule {
    /// The subset with this name, if declared.
    pub fn subset(&self, name: &str) -> Option<&Subset> {
        self.subsets.iter().find(|s| s.name == name)
    }
}

/// Load balancing, connection pool, outlier detection and TLS policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TrafficPolicy {
    /// Load balancing algorithm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerSettings>,
    /// Connection pool limits (circuit breaking).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_pool: Option<ConnectionPoolSettings>,
    /// Ejection of unhealthy hosts from the pool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
    /// TLS settings for connections to the upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTLSSettings>,
    /// Overrides for specific ports; these replace (not merge with) the policy above.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub port_level_settings: Vec<PortTrafficPolicy>,
    /// Tunnel TCP to the host over another protocol (HTTP CONNECT or POST).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<TunnelSettings>,
    /// Send a PROXY protocol header on upstream connections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<ProxyProtocol>,
    /// Limit on concurrent retries relative to active requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_budget: Option<RetryBudget>,
}

/// Traffic policy for one port of the destination.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PortTrafficPolicy {
    /// The destination port this policy applies to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<PortSelector>,
    /// Load balancing algorithm for the port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerSettings>,
    /// Connection pool limits for the port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_pool: Option<ConnectionPoolSettings>,
    /// Outlier detection for the port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
    /// TLS settings for the port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTLSSettings>,
}

/// Tunnelling of the downstream TCP connection to the destination.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TunnelSettings {
    /// `CONNECT` (default) or `POST`.
    #[serde(skip_serializing_if = "is_default")]
    pub protocol: String,
    /// Host (FQDN or IP) the connection is tunnelled to.
    #[serde(skip_serializing_if = "is_default")]
    pub target_host: String,
    /// Port the connection is tunnelled to.
    #[serde(skip_serializing_if = "is_default")]
    pub target_port: u32,
}

/// Upstream PROXY protocol settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ProxyProtocol {
    /// PROXY protocol version.
    #[serde(skip_serializing_if = "is_default")]
    pub version: ProxyProtocolVersion,
}

/// PROXY protocol version (proto enum `ProxyProtocol.VERSION`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProxyProtocolVersion {
    /// Human-readable header, version 1.
    #[default]
    V1,
    /// Binary header, version 2.
    V2,
}

/// Limit on concurrent retries, as a share of active requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RetryBudget {
    /// Concurrent retries allowed, as a percentage (0-100) of active plus pending requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// Retries always allowed regardless of the percentage.
    #[serde(skip_serializing_if = "is_default")]
    pub min_retry_concurrency: u32,
}

/// A named group of a service's endpoints, selected by labels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Subset {
    /// Subset name, referenced by route destinations.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Endpoint labels that select the subset's members.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Policies for this subset; they replace the rule-level policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_policy: Option<TrafficPolicy>,
}

impl Validate for DestinationRule {
    fn validate(&self, v: &mut Validator) {
        v.field("host", |v| {
            if self.host.is_empty() {
                v.missing("host is required");
            } else {
                rules::wildcard_domain(v, &self.host);
            }
        });
        v.nested("trafficPolicy", &self.traffic_policy);
        v.field("subsets", |v| {
            let mut names = BTreeSet::new();
            for (i, s) in self.subsets.iter().enumerate() {
                v.index(i, |v| {
                    if !names.insert(s.name.as_str()) {
                        v.field("name", |v| {
                            v.error(format!("duplicate subset names: {}", s.name))
                        });
                    }
                    s.validate(v);
                });
            }
        });
        export_to(v, &self.export_to, self.workload_selector.is_some());
        if let Some(sel) = &self.workload_selector {
            v.field("workloadSelector", |v| {
                sel.validate(v);
                if sel.match_labels.is_empty() {
                    v.warn("workload selector specified without labels: the rule applies to every workload in the namespace");
                }
            });
        }
    }
}

impl Validate for Subset {
    fn validate(&self, v: &mut Validator) {
        v.field("name", |v| subset_name(v, &self.name));
        v.field("labels", |v| rules::labels(v, &self.labels));
        v.nested("trafficPolicy", &self.traffic_policy);
    }
}

impl Validate for TrafficPolicy {
    fn validate(&self, v: &mut Validator) {
        // Istio predates retryBudget in this check; a retry budget alone is a real policy.
        if self.outlier_detection.is_none()
            && self.connection_pool.is_none()
            && self.load_balancer.is_none()
            && self.tls.is_none()
            && self.port_level_settings.is_empty()
            && self.tunnel.is_none()
            && self.proxy_protocol.is_none()
            && self.retry_budget.is_none()
        {
            v.missing("traffic policy must have at least one field");
            return;
        }
        if self.tunnel.is_some() && self.proxy_protocol.is_some() {
            v.field("proxyProtocol", |v| {
                v.conflict("tunnel and proxyProtocol must not be set together")
            });
            return;
        }
        v.nested("outlierDetection", &self.outlier_detection);
        v.nested("connectionPool", &self.connection_pool);
        if let Some(lb) = &self.load_balancer {
            v.field("loadBalancer", |v| {
                lb.validate_with_outlier(v, self.outlier_detection.is_some())
            });
        }
        v.nested("tls", &self.tls);
        v.field("portLevelSettings", |v| {
            if self.port_level_settings.len() > MAX_PORT_LEVEL_SETTINGS {
                v.error(format!(
                    "at most {MAX_PORT_LEVEL_SETTINGS} port level settings are allowed (got {})",
                    self.port_level_settings.len()
                ));
            }
            for (i, p) in self.port_level_settings.iter().enumerate() {
                v.index(i, |v| p.validate(v));
            }
        });
        v.nested("tunnel", &self.tunnel);
        v.nested("retryBudget", &self.retry_budget);
    }
}

impl Validate for PortTrafficPolicy {
    fn validate(&self, v: &mut Validator) {
        if self.port.is_none() {
            v.field("port", |v| {
                v.missing("portTrafficPolicy must have valid port")
            });
        }
        if self.outlier_detection.is_none()
            && self.connection_pool.is_none()
            && self.load_balancer.is_none()
            && self.tls.is_none()
        {
            v.missing("port traffic policy must have at least one field");
            return;
        }
        v.nested("outlierDetection", &self.outlier_detection);
        v.nested("connectionPool", &self.connection_pool);
        if let Some(lb) = &self.load_balancer {
            v.field("loadBalancer", |v| {
                lb.validate_with_outlier(v, self.outlier_detection.is_some())
            });
        }
        v.nested("tls", &self.tls);
    }
}

impl Validate for TunnelSettings {
    fn validate(&self, v: &mut Validator) {
        if !matches!(self.protocol.as_str(), "" | "CONNECT" | "POST") {
            v.field("protocol", |v| {
                v.error(format!(
                    "tunnel protocol must be \"CONNECT\" or \"POST\" (got {:?})",
                    self.protocol
                ))
            });
        }
        v.field("targetHost", |v| {
            if let Err(e) = rules::check_fqdn(&self.target_host)
                && self.target_host.parse::<std::net::IpAddr>().is_err()
            {
                v.error(format!(
                    "tunnel target host must be valid FQDN or IP address: {e}; {:?} is not a valid IP",
                    self.target_host
                ));
            }
        });
        if self.target_port == 0 || self.target_port > 65535 {
            v.field("targetPort", |v| {
                v.error(format!(
                    "tunnel target port is invalid: port number {} must be in the range 1..65535",
                    self.target_port
                ))
            });
        }
    }
}

impl Validate for RetryBudget {
    fn validate(&self, v: &mut Validator) {
        if let Some(p) = self.percent
            && (p.is_nan() || !(0.0..=100.0).contains(&p))
        {
            v.field("percent", |v| {
                v.error(format!(
                    "retry budget percent {p} must be between 0 and 100"
                ))
            });
        }
    }
}
