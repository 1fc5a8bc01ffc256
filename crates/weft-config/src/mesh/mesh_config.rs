//! `istio.mesh.v1alpha1.MeshConfig`: mesh-wide settings, read from the `mesh` key of the
//! `istio` ConfigMap or from `meshConfig` in an IstioOperator / Helm values.
//!
//! Fields use the proto JSON names (`accessLogFile`). Istio's jsonpb decoding also accepts
//! proto names (`access_log_file`) and ignores unknown keys; Weft reports both as unknown
//! fields, which catches typos that Istio would silently drop.

#![allow(clippy::upper_case_acronyms)]

mod nested;
mod validate;

#[cfg(test)]
mod tests;

pub use nested::*;

use super::extension_provider::ExtensionProvider;
use super::proxy_config::ProxyConfig;
use crate::networking::destination_rule::{LocalityLoadBalancerSetting, TcpKeepalive};
use crate::networking::virtual_service::HTTPRetry;
use crate::types::{Duration, is_default};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::{Deserialize, Serialize};

/// Which Ingress resources Istio's ingress controller acts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IngressControllerMode {
    /// Not set (Istio defaults to `STRICT`).
    #[default]
    Unspecified,
    /// The ingress controller is disabled.
    Off,
    /// Ingresses without a class annotation, or with `ingressClass`.
    Default,
    /// Only ingresses annotated with `ingressClass`.
    Strict,
}

/// Legacy authentication policy values (no longer used by any field).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthPolicy {
    /// No authentication.
    #[default]
    None,
    /// Mutual TLS.
    MutualTls,
}

/// Encoding of the proxies' access log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccessLogEncoding {
    /// Plain text lines (the default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Whether HTTP/1.1 connections are upgraded to HTTP/2 by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum H2UpgradePolicy {
    /// Keep HTTP/1.1.
    #[default]
    DoNotUpgrade,
    /// Upgrade to HTTP/2.
    Upgrade,
}

/// Mesh-wide settings for the Istio service mesh.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MeshConfig {
    /// Port Envoy listens on for captured outbound traffic (default 15001).
    #[serde(skip_serializing_if = "is_default")]
    pub proxy_listen_port: i32,
    /// Port Envoy listens on for captured inbound traffic (default 15006).
    #[serde(skip_serializing_if = "is_default")]
    pub proxy_inbound_listen_port: i32,
    /// Port Envoy listens on for HTTP PROXY requests, when set.
    #[serde(skip_serializing_if = "is_default")]
    pub proxy_http_port: i32,
    /// Upstream connection timeout (at least 1ms, at most 1h; default 10s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Duration>,
    /// How long protocol sniffing waits for client bytes; 0s disables the timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_detection_timeout: Option<Duration>,
    /// TCP keepalive set on upstream sockets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// `kubernetes.io/ingress.class` value Istio's ingress controller handles.
    #[serde(skip_serializing_if = "is_default")]
    pub ingress_class: String,
    /// Kubernetes Service of the ingress controller (default `istio-ingressgateway`).
    #[serde(skip_serializing_if = "is_default")]
    pub ingress_service: String,
    /// Which Ingress resources Istio handles (default `STRICT`).
    #[serde(skip_serializing_if = "is_default")]
    pub ingress_controller_mode: IngressControllerMode,
    /// `istio:` label value selecting the gateway that serves Ingress resources.
    #[serde(skip_serializing_if = "is_default")]
    pub ingress_selector: String,
    /// Generate trace spans and request IDs (default true).
    #[serde(skip_serializing_if = "is_default")]
    pub enable_tracing: bool,
    /// Access log file of the proxies (e.g. `/dev/stdout`); empty disables access logs.
    #[serde(skip_serializing_if = "is_default")]
    pub access_log_file: String,
    /// Access log format; empty uses the proxy's default format.
    #[serde(skip_serializing_if = "is_default")]
    pub access_log_format: String,
    /// Access log encoding (`TEXT` or `JSON`).
    #[serde(skip_serializing_if = "is_default")]
    pub access_log_encoding: AccessLogEncoding,
    /// Enable Envoy's gRPC access log service.
    #[serde(skip_serializing_if = "is_default")]
    pub enable_envoy_access_log_service: bool,
    /// Disable Envoy's listener access logs.
    #[serde(skip_serializing_if = "is_default")]
    pub disable_envoy_listener_log: bool,
    /// Proxy settings applied to every sidecar and gateway (merged field by field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_config: Option<ProxyConfig>,
    /// How sidecars treat outbound traffic to unknown destinations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound_traffic_policy: Option<OutboundTrafficPolicy>,
    /// Where sidecars send inbound traffic (pod IP or localhost).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbound_traffic_policy: Option<InboundTrafficPolicy>,
    /// Configuration sources the control plane reads.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config_sources: Vec<ConfigSource>,
    /// Use mutual TLS automatically where the server accepts it (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_auto_mtls: Option<bool>,
    /// SPIFFE trust domain of the mesh (default `cluster.local`).
    #[serde(skip_serializing_if = "is_default")]
    pub trust_domain: String,
    /// Other trust domains treated as equal to `trustDomain`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trust_domain_aliases: Vec<String>,
    /// Extra root certificates for workload-to-workload traffic.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ca_certificates: Vec<CertificateData>,
    /// Default `exportTo` of services (`*`, `.`, `~` or namespaces).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub default_service_export_to: Vec<String>,
    /// Default `exportTo` of VirtualServices.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub default_virtual_service_export_to: Vec<String>,
    /// Default `exportTo` of DestinationRules.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub default_destination_rule_export_to: Vec<String>,
    /// Administrative root namespace whose configuration applies mesh-wide (default `istio-system`).
    #[serde(skip_serializing_if = "is_default")]
    pub root_namespace: String,
    /// Mesh-wide locality load balancing (distribution or failover).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locality_lb_setting: Option<LocalityLoadBalancerSetting>,
    /// DNS refresh rate of `STRICT_DNS` clusters (default 60s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_refresh_rate: Option<Duration>,
    /// Default HTTP/2 upgrade policy.
    #[serde(skip_serializing_if = "is_default", rename = "h2UpgradePolicy")]
    pub h2_upgrade_policy: H2UpgradePolicy,
    /// Pattern of inbound cluster stat names (e.g. `%SERVICE%`).
    #[serde(skip_serializing_if = "is_default")]
    pub inbound_cluster_stat_name: String,
    /// Pattern of outbound cluster stat names.
    #[serde(skip_serializing_if = "is_default")]
    pub outbound_cluster_stat_name: String,
    /// Deprecated DNS certificate provisioning.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<Certificate>,
    /// Settings for selected services (e.g. cluster-local).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub service_settings: Vec<ServiceSettings>,
    /// Merge application metrics into the agent's Prometheus endpoint (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_prometheus_merge: Option<bool>,
    /// Deprecated client-side certificate verification default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_certificate_at_client: Option<bool>,
    /// External CA istiod forwards workload CSRs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<CA>,
    /// Extension providers (ext_authz, tracers, access loggers, metrics) named by policies.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extension_providers: Vec<ExtensionProvider>,
    /// Providers used when a Telemetry resource names none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_providers: Option<DefaultProviders>,
    /// Namespace selectors limiting what istiod watches (ORed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub discovery_selectors: Vec<LabelSelector>,
    /// URL path normalization applied by proxies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_normalization: Option<ProxyPathNormalization>,
    /// Default HTTP retry policy (everything but `perTryTimeout`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_http_retry_policy: Option<HTTPRetry>,
    /// TLS settings for Istio mutual TLS between workloads.
    #[serde(skip_serializing_if = "Option::is_none", rename = "meshMTLS")]
    pub mesh_mtls: Option<TLSConfig>,
    /// TLS settings for all other (non-`ISTIO_MUTUAL`) TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_defaults: Option<TLSConfig>,
    /// Compliance policy (e.g. `fips-140-2`) restricting TLS versions and ciphers.
    #[serde(skip_serializing_if = "is_default")]
    pub compliance_policy: String,
    /// Selectors marking services local to their cluster or global to the mesh (ambient multicluster).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub service_scope_configs: Vec<ServiceScopeConfigs>,
}
