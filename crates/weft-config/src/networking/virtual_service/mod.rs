//! `VirtualService` (networking.istio.io v1/v1beta1/v1alpha3): how requests addressed to a
//! set of hosts are matched and routed. The types mirror `virtual_service.proto` field for
//! field so any VirtualService Istio accepts loads here; the rules Istio's webhook enforces
//! (`pkg/config/validation/virtualservice.go` and `validation.go`) live in `validate`.
#![allow(clippy::upper_case_acronyms)]

mod analysis;
mod http;
mod validate;
mod validate_actions;
mod validate_http;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_http;
#[cfg(test)]
mod tests_istio;

pub use http::{
    Abort, CorsPolicy, Delay, HTTPBody, HTTPDirectResponse, HTTPFaultInjection, HTTPMatchRequest,
    HTTPMirrorPolicy, HTTPRedirect, HTTPRetry, HTTPRewrite, HTTPRoute, HTTPRouteDestination,
    RedirectPortSelection, RegexRewrite, UnmatchedPreflights,
};
pub(crate) use validate::{export_to, subset_name};

use crate::types::is_default;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The reserved gateway name that stands for every sidecar in the mesh.
pub const MESH_GATEWAY: &str = "mesh";

/// Routing rules for traffic addressed to `hosts`, applied by the sidecars and/or gateways
/// named in `gateways`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VirtualService {
    /// Destination hosts the rules apply to (DNS names, wildcard prefixes, short names or,
    /// for gateways, IPs); empty only for a delegate VirtualService.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Gateways (`<namespace>/<name>`) and/or `mesh` that apply these rules; empty means `mesh`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    /// Ordered HTTP route rules; the first that matches a request wins.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<HTTPRoute>,
    /// Ordered route rules for unterminated TLS/HTTPS traffic, matched on SNI.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tls: Vec<TLSRoute>,
    /// Ordered route rules for opaque TCP traffic.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tcp: Vec<TCPRoute>,
    /// Namespaces that may see this VirtualService (`.` = own namespace, `*` = all).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub export_to: Vec<String>,
}

impl VirtualService {
    /// The gateways this VirtualService binds to, with Istio's default: an empty list means
    /// the mesh (every sidecar).
    pub fn gateways_or_mesh(&self) -> Vec<&str> {
        if self.gateways.is_empty() {
            vec![MESH_GATEWAY]
        } else {
            self.gateways.iter().map(String::as_str).collect()
        }
    }

    /// A delegate VirtualService has no hosts: it is only reachable through a root
    /// VirtualService's `http[].delegate`.
    pub fn is_delegate(&self) -> bool {
        self.hosts.is_empty()
    }

    /// True if the rules apply to sidecars (no gateways listed, or `mesh` among them).
    pub fn applies_to_mesh(&self) -> bool {
        self.gateways.is_empty() || self.gateways.iter().any(|g| g == MESH_GATEWAY)
    }
}

/// A service (and optionally subset and port) in the registry that traffic is sent to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Destination {
    /// Registry name of the service; short names resolve in the rule's namespace.
    #[serde(skip_serializing_if = "is_default")]
    pub host: String,
    /// Name of a subset declared in a DestinationRule for the host.
    #[serde(skip_serializing_if = "is_default")]
    pub subset: String,
    /// Port on the host; optional when the service exposes a single port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<PortSelector>,
}

impl Destination {
    /// The selected port number, if one was given.
    pub fn port_number(&self) -> Option<u32> {
        self.port.as_ref().map(|p| p.number)
    }
}

/// Selects a port by number.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PortSelector {
    /// A valid port number (1..65535).
    #[serde(skip_serializing_if = "is_default")]
    pub number: u32,
}

/// A percentage as a double, 0.0 to 100.0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Percent {
    /// The percentage value.
    #[serde(skip_serializing_if = "is_default")]
    pub value: f64,
}

/// Names the VirtualService whose HTTP routes a root route delegates to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Delegate {
    /// Name of the delegate VirtualService.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Namespace of the delegate VirtualService; defaults to the root's namespace.
    #[serde(skip_serializing_if = "is_default")]
    pub namespace: String,
}

/// Header manipulation applied to requests forwarded and responses returned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Headers {
    /// Changes applied to the request before it is forwarded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<HeaderOperations>,
    /// Changes applied to the response before it is returned to the caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<HeaderOperations>,
}

/// Set, append and remove operations on headers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HeaderOperations {
    /// Headers to overwrite with the given values.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
    /// Values to append to the headers (creating comma-separated lists).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub add: BTreeMap<String, String>,
    /// Headers to remove.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

/// Matches a string exactly, by prefix, or by RE2 regex (exactly one should be set).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct StringMatch {
    /// Exact string match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    /// Prefix-based match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// RE2-style regex match against the whole value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

/// Which kind of match a [`StringMatch`] holds, with its pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringMatchKind<'a> {
    /// `exact`
    Exact(&'a str),
    /// `prefix`
    Prefix(&'a str),
    /// `regex`
    Regex(&'a str),
}

impl StringMatch {
    /// The match that is set (exact, then prefix, then regex if several are; validation
    /// reports that as a conflict). `None` means an empty match, which Istio treats as
    /// "present" for headers.
    pub fn kind(&self) -> Option<StringMatchKind<'_>> {
        if let Some(s) = &self.exact {
            Some(StringMatchKind::Exact(s))
        } else if let Some(s) = &self.prefix {
            Some(StringMatchKind::Prefix(s))
        } else {
            self.regex.as_deref().map(StringMatchKind::Regex)
        }
    }

    /// The exact value, or "" (Go's `GetExact`).
    pub fn exact_or_empty(&self) -> &str {
        self.exact.as_deref().unwrap_or("")
    }

    /// The prefix value, or "" (Go's `GetPrefix`).
    pub fn prefix_or_empty(&self) -> &str {
        self.prefix.as_deref().unwrap_or("")
    }
}

/// Route rule for unterminated TLS traffic, matched on SNI and connection attributes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TLSRoute {
    /// Match conditions (OR of blocks, AND within one block); at least one is required.
    #[serde(rename = "match", skip_serializing_if = "Vec::is_empty")]
    pub r#match: Vec<TLSMatchAttributes>,
    /// Where matching connections are forwarded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<RouteDestination>,
}

/// Route rule for opaque TCP traffic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TCPRoute {
    /// Match conditions (OR of blocks, AND within one block).
    #[serde(rename = "match", skip_serializing_if = "Vec::is_empty")]
    pub r#match: Vec<L4MatchAttributes>,
    /// Where matching connections are forwarded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<RouteDestination>,
}

/// A weighted L4 destination.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RouteDestination {
    /// The service instances connections are forwarded to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
    /// Relative share of traffic for this destination.
    #[serde(skip_serializing_if = "is_default")]
    pub weight: i32,
}

/// L4 connection match attributes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct L4MatchAttributes {
    /// Destination IPs or CIDR blocks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub destination_subnets: Vec<String>,
    /// Destination port on the host.
    #[serde(skip_serializing_if = "is_default")]
    pub port: u32,
    /// Source IP or CIDR (hidden from Istio's docs, still accepted).
    #[serde(skip_serializing_if = "is_default")]
    pub source_subnet: String,
    /// Labels the client workload must have.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub source_labels: BTreeMap<String, String>,
    /// Gateways the match applies on, overriding the VirtualService's `gateways`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    /// Namespace the client workload must be in.
    #[serde(skip_serializing_if = "is_default")]
    pub source_namespace: String,
}

/// TLS connection match attributes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TLSMatchAttributes {
    /// SNI values to match (wildcard prefixes allowed); must fall within the VS hosts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sni_hosts: Vec<String>,
    /// Destination IPs or CIDR blocks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub destination_subnets: Vec<String>,
    /// Destination port on the host.
    #[serde(skip_serializing_if = "is_default")]
    pub port: u32,
    /// Labels the client workload must have.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub source_labels: BTreeMap<String, String>,
    /// Gateways the match applies on, overriding the VirtualService's `gateways`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    /// Namespace the client workload must be in.
    #[serde(skip_serializing_if = "is_default")]
    pub source_namespace: String,
}
