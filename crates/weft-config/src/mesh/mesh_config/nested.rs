//! Messages nested in MeshConfig (and the top-level helpers of config.proto), kept apart from
//! the MeshConfig struct itself to keep each file readable.

use crate::networking::destination_rule::ClientTLSSettings;
use crate::types::{Duration, is_default};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::{Deserialize, Serialize};

/// Outbound policy mode for destinations Istio does not know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboundTrafficPolicyMode {
    /// Only registry services and ServiceEntries are reachable.
    #[default]
    RegistryOnly,
    /// Unknown destinations pass through (Istio's installed default).
    AllowAny,
}

/// How sidecars treat outbound traffic to unknown destinations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OutboundTrafficPolicy {
    /// The policy mode.
    #[serde(skip_serializing_if = "is_default")]
    pub mode: OutboundTrafficPolicyMode,
}

/// Where inbound traffic is delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InboundTrafficPolicyMode {
    /// To the application on the pod IP (transparent).
    #[default]
    Passthrough,
    /// To the application on localhost.
    Localhost,
}

/// Where sidecars deliver inbound traffic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct InboundTrafficPolicy {
    /// The policy mode.
    #[serde(skip_serializing_if = "is_default")]
    pub mode: InboundTrafficPolicyMode,
}

/// A trust anchor: PEM data or a SPIFFE bundle endpoint, optionally scoped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CertificateData {
    /// PEM certificate (oneof `certificate_data`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pem: Option<String>,
    /// SPIFFE bundle endpoint URL (oneof `certificate_data`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spiffe_bundle_url: Option<String>,
    /// Kubernetes signers this anchor is used for; all when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cert_signers: Vec<String>,
    /// Trust domains this anchor is used for; the mesh's when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trust_domains: Vec<String>,
}

/// Settings applied to the services matching `hosts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServiceSettings {
    /// The settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<Settings>,
    /// Hosts (DestinationRule host syntax, wildcards allowed) the settings apply to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

/// Per-service settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Settings {
    /// Keep the service's endpoints local to each cluster.
    #[serde(skip_serializing_if = "is_default")]
    pub cluster_local: bool,
}

/// An external CA that istiod forwards certificate requests to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CA {
    /// `host:port` of the CA implementing the Istio CA gRPC API.
    #[serde(skip_serializing_if = "is_default")]
    pub address: String,
    /// TLS used to reach the CA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_settings: Option<ClientTLSSettings>,
    /// Timeout of forwarded CSR requests (default 10s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<Duration>,
    /// Whether the CA integrates on istiod's side rather than the agent's.
    #[serde(skip_serializing_if = "is_default")]
    pub istiod_side: bool,
}

/// Extension providers used when a Telemetry resource names none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DefaultProviders {
    /// Default tracing provider names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tracing: Vec<String>,
    /// Default metrics provider names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<String>,
    /// Default access logging provider names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub access_logging: Vec<String>,
}

/// URL path normalization levels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NormalizationType {
    /// Istio's default (currently `BASE`).
    #[default]
    Default,
    /// Paths are used as received.
    None,
    /// RFC 3986 normalization (`/a/../b` becomes `/b`).
    Base,
    /// `BASE` plus merging of consecutive slashes.
    MergeSlashes,
    /// `MERGE_SLASHES` plus decoding of `%2F`/`%5C` before merging.
    DecodeAndMergeSlashes,
}

/// How proxies normalize request paths before routing and authorization.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ProxyPathNormalization {
    /// The normalization level.
    #[serde(skip_serializing_if = "is_default")]
    pub normalization: NormalizationType,
}

/// TLS protocol versions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TLSProtocol {
    /// Let Istio choose (TLS 1.2 minimum).
    #[default]
    #[serde(rename = "TLS_AUTO")]
    TlsAuto,
    /// TLS 1.2.
    #[serde(rename = "TLSV1_2")]
    Tlsv12,
    /// TLS 1.3.
    #[serde(rename = "TLSV1_3")]
    Tlsv13,
}

/// TLS parameters for a class of mesh traffic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TLSConfig {
    /// Minimum TLS version.
    #[serde(skip_serializing_if = "is_default")]
    pub min_protocol_version: TLSProtocol,
    /// ECDH curves allowed for key exchange (not supported for mesh mTLS).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ecdh_curves: Vec<String>,
    /// Cipher suites allowed for TLS 1.0-1.2.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cipher_suites: Vec<String>,
}

/// Visibility of matching services across clusters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Scope {
    /// Visible only within the service's own cluster.
    #[default]
    Local,
    /// Visible from every cluster of the mesh.
    Global,
}

/// Marks services (by namespace and service labels) as local or global.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServiceScopeConfigs {
    /// Namespaces whose services match; empty matches every namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Services that match; empty matches every service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub services_selector: Option<LabelSelector>,
    /// Scope given to matching services.
    #[serde(skip_serializing_if = "is_default")]
    pub scope: Scope,
}

/// Kinds of configuration a config source provides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Resource {
    /// Service entries generated by the platform's registry.
    #[default]
    ServiceRegistry,
}

/// A configuration store the control plane reads (`xds://`, `k8s://`, `fs:///`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ConfigSource {
    /// Address of the source.
    #[serde(skip_serializing_if = "is_default")]
    pub address: String,
    /// TLS used to reach the source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_settings: Option<ClientTLSSettings>,
    /// What the source provides.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscribed_resources: Vec<Resource>,
}

/// Deprecated: a DNS certificate istiod provisions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Certificate {
    /// Secret the certificate is stored in; a fixed directory when empty.
    #[serde(skip_serializing_if = "is_default")]
    pub secret_name: String,
    /// DNS names of the certificate.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,
}
