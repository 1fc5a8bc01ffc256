//! `istio.mesh.v1alpha1.ProxyConfig`: the settings of one Envoy proxy (sidecar or gateway),
//! given mesh-wide as `meshConfig.defaultConfig` or per pod in the `proxy.istio.io/config`
//! annotation.

#![allow(clippy::upper_case_acronyms)]

mod headers;
mod tracing;
mod validate;

#[cfg(test)]
mod tests;

pub use headers::*;
pub use tracing::*;

use crate::networking::destination_rule::{ClientTLSSettings, TcpKeepalive};
use crate::networking::workload_group::ReadinessProbe;
use crate::types::{Duration, is_default};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a proxy authenticates to the control plane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuthenticationPolicy {
    /// Plain-text connection to the control plane.
    #[default]
    #[serde(rename = "NONE")]
    None,
    /// Mutual TLS to the control plane (Istio's default).
    #[serde(rename = "MUTUAL_TLS")]
    MutualTls,
    /// Take the parent scope's policy; not valid at mesh level.
    #[serde(rename = "INHERIT")]
    Inherit,
}

/// Naming scheme for the Envoy `service_cluster`, which tracing spans use as service name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TracingServiceName {
    /// The `app` label and the namespace (`istio-proxy` without an `app` label).
    #[default]
    AppLabelAndNamespace,
    /// The workload's canonical name only.
    CanonicalNameOnly,
    /// The workload's canonical name and namespace.
    CanonicalNameAndNamespace,
}

/// How inbound traffic is redirected to Envoy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InboundInterceptionMode {
    /// iptables `REDIRECT` (loses the original source address); the default.
    #[default]
    #[serde(rename = "REDIRECT")]
    Redirect,
    /// iptables `TPROXY`, which keeps source and destination addresses.
    #[serde(rename = "TPROXY")]
    Tproxy,
    /// No redirection at all.
    #[serde(rename = "NONE")]
    None,
}

/// How the `x-forwarded-client-cert` (XFCC) header is handled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ForwardClientCertDetails {
    /// Not set: the proxy kind's default applies.
    #[default]
    Undefined,
    /// Never send XFCC to the next hop.
    Sanitize,
    /// Forward XFCC as received when the client connection is mTLS.
    ForwardOnly,
    /// Append the client certificate to XFCC on mTLS (sidecar default).
    AppendForward,
    /// Replace XFCC with the client certificate on mTLS (gateway default).
    SanitizeSet,
    /// Always forward XFCC, whatever the client connection.
    AlwaysForwardOnly,
}

/// Settings for one Envoy proxy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ProxyConfig {
    /// Directory where the agent writes the generated Envoy configuration.
    #[serde(skip_serializing_if = "is_default")]
    pub config_path: String,
    /// Path to the Envoy binary.
    #[serde(skip_serializing_if = "is_default")]
    pub binary_path: String,
    /// Fixed Envoy `service_cluster` name (oneof `cluster_name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_cluster: Option<String>,
    /// Scheme deriving the `service_cluster` per workload (oneof `cluster_name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracing_service_name: Option<TracingServiceName>,
    /// How long Envoy drains connections on hot restart (whole seconds, default 45s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_duration: Option<Duration>,
    /// Address (`host:port`) of the xDS server.
    #[serde(skip_serializing_if = "is_default")]
    pub discovery_address: String,
    /// Deprecated and unused xDS polling interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery_refresh_delay: Option<Duration>,
    /// Deprecated Zipkin address; use `tracing.zipkin`.
    #[serde(skip_serializing_if = "is_default")]
    pub zipkin_address: String,
    /// `host:port` of a statsd UDP listener.
    #[serde(skip_serializing_if = "is_default")]
    pub statsd_udp_address: String,
    /// Deprecated metrics service address; use `envoyMetricsService`.
    #[serde(skip_serializing_if = "is_default")]
    pub envoy_metrics_service_address: String,
    /// Envoy admin port (default 15000).
    #[serde(skip_serializing_if = "is_default")]
    pub proxy_admin_port: i32,
    /// Deprecated and unused availability zone.
    #[serde(skip_serializing_if = "is_default")]
    pub availability_zone: String,
    /// How the proxy authenticates to the control plane (default `MUTUAL_TLS`).
    #[serde(skip_serializing_if = "is_default")]
    pub control_plane_auth_policy: AuthenticationPolicy,
    /// Custom Envoy configuration file, for proxies in front of control-plane components.
    #[serde(skip_serializing_if = "is_default")]
    pub custom_config_file: String,
    /// Maximum length of the name field in Envoy metrics (default 189).
    #[serde(skip_serializing_if = "is_default")]
    pub stat_name_length: i32,
    /// Envoy worker threads; unset derives it from CPU, 0 uses every core.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<i32>,
    /// Path to a custom Envoy bootstrap template.
    #[serde(skip_serializing_if = "is_default")]
    pub proxy_bootstrap_template_path: String,
    /// How inbound traffic is redirected to Envoy.
    #[serde(skip_serializing_if = "is_default")]
    pub interception_mode: InboundInterceptionMode,
    /// Tracer used by the proxy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracing: Option<Tracing>,
    /// Deprecated secret discovery settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sds: Option<SDS>,
    /// gRPC access log service the proxy sends access logs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envoy_access_log_service: Option<RemoteService>,
    /// Envoy metrics service the proxy sends metrics to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envoy_metrics_service: Option<RemoteService>,
    /// Extra environment variables for the proxy; `ISTIO_META_*` ones reach the xDS server.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub proxy_metadata: BTreeMap<String, String>,
    /// Envoy runtime values set at bootstrap.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub runtime_values: BTreeMap<String, String>,
    /// Port of the agent's status/readiness server (default 15020).
    #[serde(skip_serializing_if = "is_default")]
    pub status_port: i32,
    /// Deprecated extra tags extracted from Istio telemetry; no longer needed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_stat_tags: Vec<String>,
    /// Where a gateway sits relative to trusted proxies and clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_topology: Option<Topology>,
    /// How long the agent lets connections drain on shutdown (default 5s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub termination_drain_duration: Option<Duration>,
    /// Mesh identifier used to label telemetry.
    #[serde(skip_serializing_if = "is_default")]
    pub mesh_id: String,
    /// Readiness probe for VM workloads (same schema as WorkloadGroup's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<ReadinessProbe>,
    /// Extra Envoy stats to create or suppress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_stats_matcher: Option<ProxyStatsMatcher>,
    /// Delay application start until the proxy is ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_application_until_proxy_starts: Option<bool>,
    /// Extra root certificates (PEM) trusted for workload-to-workload traffic.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ca_certificates_pem: Vec<String>,
    /// Proxy image variant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ProxyImage>,
    /// Hardware private key provider for TLS handshakes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key_provider: Option<PrivateKeyProvider>,
    /// Which headers the proxy adds or modifies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_headers: Option<ProxyHeaders>,
    /// How often Envoy flushes file buffers such as access logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_flush_interval: Option<Duration>,
    /// Buffer size in KiB above which Envoy flushes files early.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_flush_min_size_kb: Option<u32>,
    /// Whether the Prometheus stats endpoint compresses responses (default on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats_compression: Option<bool>,
}

/// Envoy stats to create beyond Istio's defaults (and ones to suppress).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ProxyStatsMatcher {
    /// Stat name prefixes to include.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inclusion_prefixes: Vec<String>,
    /// Stat name suffixes to include.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inclusion_suffixes: Vec<String>,
    /// RE2 regexes of stat names to include.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inclusion_regexps: Vec<String>,
    /// Stat name prefixes to exclude.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclusion_prefixes: Vec<String>,
    /// Stat name suffixes to exclude.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclusion_suffixes: Vec<String>,
    /// RE2 regexes of stat names to exclude.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclusion_regexps: Vec<String>,
}

/// `istio.networking.v1beta1.ProxyImage`: which image variant the proxy runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ProxyImage {
    /// Image variant such as `default`, `debug` or `distroless`.
    #[serde(skip_serializing_if = "is_default")]
    pub image_type: String,
}

/// A remote gRPC service the proxy reports to (access logs, metrics).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RemoteService {
    /// `host:port` of the service.
    #[serde(skip_serializing_if = "is_default")]
    pub address: String,
    /// TLS used to reach the service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_settings: Option<ClientTLSSettings>,
    /// TCP keepalive for the connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_keepalive: Option<TcpKeepalive>,
}

/// Deprecated secret discovery service settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SDS {
    /// Whether SDS is enabled.
    #[serde(skip_serializing_if = "is_default")]
    pub enabled: bool,
    /// Path of the Kubernetes service account JWT.
    #[serde(skip_serializing_if = "is_default")]
    pub k8s_sa_jwt_path: String,
}

/// Where a gateway proxy sits relative to trusted proxies in front of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Topology {
    /// Number of trusted proxies in front of the gateway (picks the client address from XFF).
    #[serde(skip_serializing_if = "is_default")]
    pub num_trusted_proxies: u32,
    /// How the gateway handles the XFCC header.
    #[serde(skip_serializing_if = "is_default")]
    pub forward_client_cert_details: ForwardClientCertDetails,
    /// Enables the PROXY protocol on downstream connections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<ProxyProtocolConfiguration>,
}

/// PROXY protocol settings (presence enables it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ProxyProtocolConfiguration {}

/// Offloads TLS private key operations to hardware.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PrivateKeyProvider {
    /// Intel CryptoMB (AVX-512) provider (oneof `provider`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cryptomb: Option<CryptoMb>,
    /// Intel QAT provider (oneof `provider`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qat: Option<QAT>,
}

/// CryptoMB private key provider settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CryptoMb {
    /// How long to wait before processing a partly filled queue; required, non-zero.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_delay: Option<Duration>,
    /// Fall back to BoringSSL when the hardware is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<bool>,
}

/// QAT private key provider settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct QAT {
    /// How long to wait before polling the accelerator; required, non-zero.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_delay: Option<Duration>,
    /// Fall back to BoringSSL when the hardware is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<bool>,
}
