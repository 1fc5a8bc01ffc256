//! `ServiceEntry` (networking.istio.io): adds services to Istio's registry — external APIs,
//! VMs, or extra names for in-mesh services — with their ports, addresses, how endpoints
//! are discovered (`resolution`) and who may see them (`exportTo`).

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_istio;
mod validate;

use crate::networking::sidecar::WorkloadSelector;
use crate::networking::workload_entry::WorkloadEntry;
use crate::types::is_default;
use serde::{Deserialize, Serialize};

/// A service added to the mesh's registry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServiceEntry {
    /// Host names of the service (FQDNs, optionally with a leading `*.` wildcard).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Virtual IPs or CIDR blocks of the service (CIDRs only with NONE/STATIC resolution).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// Ports of the service; names must be unique and are what endpoints' `ports` refer to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ServicePort>,
    /// Whether the service is outside the mesh (no mTLS) or part of it.
    #[serde(skip_serializing_if = "is_default")]
    pub location: Location,
    /// How the service's endpoints are found.
    #[serde(skip_serializing_if = "is_default")]
    pub resolution: Resolution,
    /// Static endpoints of the service (mutually exclusive with `workloadSelector`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<WorkloadEntry>,
    /// Selects Pods and WorkloadEntries in the namespace as endpoints (MESH_INTERNAL only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload_selector: Option<WorkloadSelector>,
    /// Namespaces the service is visible to: `.`, `*`, `~` or namespace names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub export_to: Vec<String>,
    /// Subject alternative names the service's certificates must carry (secure naming).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<String>,
}

/// A port of a ServiceEntry service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServicePort {
    /// Port number clients connect to (1..65535).
    #[serde(skip_serializing_if = "is_default")]
    pub number: u32,
    /// Protocol on the port (HTTP, HTTPS, GRPC, HTTP2, MONGO, TCP, TLS, ...); empty means sniffed.
    #[serde(skip_serializing_if = "is_default")]
    pub protocol: String,
    /// Name of the port, referenced by endpoints.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Port on the endpoints traffic is sent to, when it differs from `number`.
    #[serde(skip_serializing_if = "is_default")]
    pub target_port: u32,
}

/// `ServiceEntry.Location`: whether the service is inside or outside the mesh.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Location {
    /// Outside the mesh: no sidecar, so no mutual TLS towards it.
    #[default]
    MeshExternal,
    /// Part of the mesh (e.g. VMs with sidecars).
    MeshInternal,
}

/// `ServiceEntry.Resolution`: how endpoints are discovered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Resolution {
    /// Forward to the destination IP the client connected to.
    #[default]
    None,
    /// Use the IPs listed in `endpoints` (or selected by `workloadSelector`).
    Static,
    /// Resolve hosts (or endpoint addresses) via DNS asynchronously, using all returned IPs.
    Dns,
    /// Resolve via DNS and use only the first IP returned, reconnecting lazily.
    DnsRoundRobin,
}

impl Resolution {
    /// The proto name, as users write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::None => "NONE",
            Resolution::Static => "STATIC",
            Resolution::Dns => "DNS",
            Resolution::DnsRoundRobin => "DNS_ROUND_ROBIN",
        }
    }
}
