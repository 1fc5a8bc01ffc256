//! `Sidecar` (networking.istio.io): narrows what a workload's proxy listens on and which
//! services it can reach — ingress listeners, egress listeners with their imported
//! hosts, inbound connection limits and the outbound traffic policy. Also home of the
//! label-only `WorkloadSelector` that Sidecar and ServiceEntry share.
#![allow(clippy::upper_case_acronyms)]

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_istio;
mod validate;

use crate::networking::destination_rule::ConnectionPoolSettings;
use crate::networking::gateway::ServerTLSSettings;
use crate::networking::virtual_service::Destination;
use crate::types::is_default;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Scopes the configuration of the sidecar proxies of the selected workloads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Sidecar {
    /// Workloads this Sidecar applies to; all workloads of the namespace when omitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload_selector: Option<WorkloadSelector>,
    /// Listeners for inbound traffic to the workload.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<IstioIngressListener>,
    /// Listeners for outbound traffic and the services each one can reach.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<IstioEgressListener>,
    /// Connection limits for inbound traffic on all ports without their own `connectionPool`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbound_connection_pool: Option<ConnectionPoolSettings>,
    /// What happens to outbound traffic to destinations unknown to the registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound_traffic_policy: Option<OutboundTrafficPolicy>,
}

/// An inbound listener of the sidecar.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct IstioIngressListener {
    /// The port the listener accepts traffic on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<SidecarPort>,
    /// IP address the listener binds to.
    #[serde(skip_serializing_if = "is_default")]
    pub bind: String,
    /// How traffic reaches the listener (iptables capture or not).
    #[serde(skip_serializing_if = "is_default")]
    pub capture_mode: CaptureMode,
    /// Where accepted traffic goes: `127.0.0.1:PORT`, `0.0.0.0:PORT`, `[::1]:PORT`, `[::]:PORT` or `unix:///path`.
    #[serde(skip_serializing_if = "is_default")]
    pub default_endpoint: String,
    /// TLS termination of traffic from outside the mesh on this port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTLSSettings>,
    /// Connection limits for this port, overriding `inboundConnectionPool`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_pool: Option<ConnectionPoolSettings>,
}

/// An outbound listener of the sidecar and the hosts reachable through it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct IstioEgressListener {
    /// The port of the listener; omitted for the catch-all listener, 0 for unix sockets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<SidecarPort>,
    /// IP address or `unix://` socket the listener binds to.
    #[serde(skip_serializing_if = "is_default")]
    pub bind: String,
    /// How traffic reaches the listener (iptables capture or not).
    #[serde(skip_serializing_if = "is_default")]
    pub capture_mode: CaptureMode,
    /// Services exposed on this listener, as `namespace/dnsName` (`./*`, `istio-system/*`, `*/foo.com`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

/// Selects workloads by their labels (the networking API's selector, keyed `labels`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WorkloadSelector {
    /// Labels a workload must carry (all of them) to be selected.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// The sidecar's policy for outbound traffic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OutboundTrafficPolicy {
    /// Whether traffic to unknown destinations is allowed or dropped.
    #[serde(skip_serializing_if = "is_default")]
    pub mode: OutboundTrafficPolicyMode,
    /// Service that traffic to unknown destinations is sent to (ALLOW_ANY only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress_proxy: Option<Destination>,
}

/// A port of a sidecar listener.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SidecarPort {
    /// Port number (1..65535; 0 for egress listeners bound to a unix socket).
    #[serde(skip_serializing_if = "is_default")]
    pub number: u32,
    /// Protocol on the port; empty means detected automatically.
    #[serde(skip_serializing_if = "is_default")]
    pub protocol: String,
    /// Name of the port.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Deprecated and without effect on sidecars; Istio rejects it when set.
    #[serde(skip_serializing_if = "is_default")]
    pub target_port: u32,
}

/// `OutboundTrafficPolicy.Mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboundTrafficPolicyMode {
    /// Only destinations in the service registry are reachable.
    #[default]
    RegistryOnly,
    /// Unknown destinations are passed through (or sent to the egress proxy).
    AllowAny,
}

/// How traffic to a listener is captured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CaptureMode {
    /// Whatever the environment captures by default.
    #[default]
    Default,
    /// Redirect with iptables.
    Iptables,
    /// No capture: the application talks to the listener explicitly.
    None,
}
