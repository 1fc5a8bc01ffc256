//! `values.global`: settings every Istio chart reads (hub, tag, mesh identity, proxy
//! injection defaults, multicluster).

use super::Resources;
use crate::types::{Struct, Value, is_default};
use serde::{Deserialize, Serialize};

/// Settings shared by every chart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GlobalConfig {
    /// Deprecated per-architecture scheduling weights; use affinity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<ArchConfig>,
    /// Signers istiod may approve CSRs for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cert_signers: Vec<String>,
    /// Install the validating webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_validation: Option<bool>,
    /// Deprecated default node selector; use `components.<c>.k8s.nodeSelector`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_node_selector: Option<Struct>,
    /// Default PodDisruptionBudget settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_pod_disruption_budget: Option<DefaultPodDisruptionBudgetConfig>,
    /// Deprecated default resources; use `components.<c>.k8s.resources`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_resources: Option<DefaultResourcesConfig>,
    /// Deprecated default tolerations; use `components.<c>.k8s.tolerations`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub default_tolerations: Vec<Struct>,
    /// Image registry of Istio images.
    #[serde(skip_serializing_if = "is_default")]
    pub hub: String,
    /// Image pull policy of Istio images.
    #[serde(skip_serializing_if = "is_default")]
    pub image_pull_policy: String,
    /// Image pull secrets of the control plane's ServiceAccounts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<String>,
    /// Namespace of the control plane.
    #[serde(skip_serializing_if = "is_default")]
    pub istio_namespace: String,
    /// Log in JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_as_json: Option<bool>,
    /// Control plane log levels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging: Option<GlobalLoggingConfig>,
    /// Mesh identifier (defaults to the trust domain).
    #[serde(skip_serializing_if = "is_default", rename = "meshID")]
    pub mesh_id: String,
    /// Mesh networks for split-horizon EDS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mesh_networks: Option<Struct>,
    /// Multicluster settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi_cluster: Option<MultiClusterConfig>,
    /// Network this cluster belongs to.
    #[serde(skip_serializing_if = "is_default")]
    pub network: String,
    /// Extra DNS search domains for injected pods.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        rename = "podDNSSearchNamespaces"
    )]
    pub pod_dns_search_namespaces: Vec<String>,
    /// Do not create the sidecar injector ConfigMap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub omit_sidecar_injector_config_map: Option<bool>,
    /// Let the installer, not istiod, manage webhook configurations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_manage_webhooks: Option<bool>,
    /// Deprecated priority class; use `components.<c>.k8s.priorityClassName`.
    #[serde(skip_serializing_if = "is_default")]
    pub priority_class_name: String,
    /// Sidecar injection defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyConfig>,
    /// The `istio-init` container.
    #[serde(skip_serializing_if = "Option::is_none", rename = "proxy_init")]
    pub proxy_init: Option<ProxyInitConfig>,
    /// Deprecated SDS settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sds: Option<SDSConfig>,
    /// Image tag of Istio images.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub tag: Value,
    /// Image variant (`debug`, `distroless`).
    #[serde(skip_serializing_if = "is_default")]
    pub variant: String,
    /// Legacy per-tracer settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracer: Option<TracerConfig>,
    /// Address of a remote istiod.
    #[serde(skip_serializing_if = "is_default")]
    pub remote_pilot_address: String,
    /// istiod settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub istiod: Option<IstiodConfig>,
    /// Provider of istiod's certificate (`kubernetes`, `istiod`, `custom`, `none`).
    #[serde(skip_serializing_if = "is_default")]
    pub pilot_cert_provider: String,
    /// Deprecated JWT policy; has no effect.
    #[serde(skip_serializing_if = "is_default")]
    pub jwt_policy: String,
    /// Security Token Service settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sts: Option<STSConfig>,
    /// Revision of this control plane.
    #[serde(skip_serializing_if = "is_default")]
    pub revision: String,
    /// Load mTLS certificates from mounted secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount_mtls_certs: Option<bool>,
    /// Address of the CA workloads send CSRs to.
    #[serde(skip_serializing_if = "is_default")]
    pub ca_address: String,
    /// Use an external istiod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_istiod: Option<bool>,
    /// This remote cluster is the config cluster of an external istiod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_cluster: Option<bool>,
    /// Name of the workload CA (e.g. `GkeWorkloadCertificate`).
    #[serde(skip_serializing_if = "is_default")]
    pub ca_name: String,
    /// Platform (`openshift`, `gke`, ...).
    #[serde(skip_serializing_if = "is_default")]
    pub platform: String,
    /// IP families of Services (`IPv4`, `IPv6`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ip_families: Vec<String>,
    /// IP family policy of Services.
    #[serde(skip_serializing_if = "is_default")]
    pub ip_family_policy: String,
    /// Waypoint proxy settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waypoint: Option<WaypointConfig>,
    /// Name of istiod's root certificate ConfigMap.
    #[serde(skip_serializing_if = "is_default")]
    pub trust_bundle_name: String,
    /// Redirect traffic with native nftables instead of iptables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub native_nftables: Option<bool>,
    /// Default NetworkPolicy settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<NetworkPolicyConfig>,
    /// Which resources this installation owns.
    #[serde(skip_serializing_if = "is_default")]
    pub resource_scope: ResourceScope,
    /// agentgateway settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agentgateway: Option<Agentgateway>,
    /// Install the istio-reader RBAC used by multicluster remote secrets.
    #[serde(skip_serializing_if = "Option::is_none", rename = "enableReaderRBAC")]
    pub enable_reader_rbac: Option<bool>,
}

/// agentgateway settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Agentgateway {
    /// agentgateway image.
    #[serde(skip_serializing_if = "is_default")]
    pub image: String,
}

/// Which resources an installation owns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceScope {
    /// Not set.
    #[default]
    Undefined,
    /// Cluster- and namespace-scoped resources.
    All,
    /// Only cluster-scoped resources.
    Cluster,
    /// Only namespace-scoped resources.
    Namespace,
}

/// Deprecated scheduling weights per CPU architecture (0 never ... 3 most preferred).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ArchConfig {
    /// Weight for amd64.
    #[serde(skip_serializing_if = "is_default")]
    pub amd64: u32,
    /// Weight for ppc64le.
    #[serde(skip_serializing_if = "is_default")]
    pub ppc64le: u32,
    /// Weight for s390x.
    #[serde(skip_serializing_if = "is_default")]
    pub s390x: u32,
    /// Weight for arm64.
    #[serde(skip_serializing_if = "is_default")]
    pub arm64: u32,
}

/// Default PodDisruptionBudget settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DefaultPodDisruptionBudgetConfig {
    /// Create a PDB with `minAvailable: 1` per Deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Deprecated default resources.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DefaultResourcesConfig {
    /// Default requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<ResourcesRequestsConfig>,
}

/// Resource requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ResourcesRequestsConfig {
    /// CPU request.
    #[serde(skip_serializing_if = "is_default")]
    pub cpu: String,
    /// Memory request.
    #[serde(skip_serializing_if = "is_default")]
    pub memory: String,
}

/// Control plane log levels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GlobalLoggingConfig {
    /// `<scope>:<level>,...`, e.g. `default:info`.
    #[serde(skip_serializing_if = "is_default")]
    pub level: String,
}

/// Multicluster settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MultiClusterConfig {
    /// Connect clusters through their ingress gateways.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Name of this cluster (needed for injection).
    #[serde(skip_serializing_if = "is_default")]
    pub cluster_name: String,
    /// Suffix of global service names.
    #[serde(skip_serializing_if = "is_default")]
    pub global_domain_suffix: String,
    /// Install the EnvoyFilter translating the global suffix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_envoy_filter: Option<bool>,
}

/// Sidecar injection defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ProxyConfig {
    /// Injector policy (`enabled` or `disabled`).
    #[serde(skip_serializing_if = "is_default")]
    pub auto_inject: String,
    /// Cluster DNS domain (default `cluster.local`).
    #[serde(skip_serializing_if = "is_default")]
    pub cluster_domain: String,
    /// Per-component Envoy log levels (default `misc:error`).
    #[serde(skip_serializing_if = "is_default")]
    pub component_log_level: String,
    /// Deprecated: enable core dumps in sidecars.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_core_dump: Option<bool>,
    /// Inbound ports not captured (comma-separated).
    #[serde(skip_serializing_if = "is_default")]
    pub exclude_inbound_ports: String,
    /// Outbound IP ranges not captured (comma-separated CIDRs).
    #[serde(skip_serializing_if = "is_default", rename = "excludeIPRanges")]
    pub exclude_ip_ranges: String,
    /// Proxy image (default `proxyv2`).
    #[serde(skip_serializing_if = "is_default")]
    pub image: String,
    /// Outbound IP ranges captured (comma-separated CIDRs or `*`).
    #[serde(skip_serializing_if = "is_default", rename = "includeIPRanges")]
    pub include_ip_ranges: String,
    /// Envoy log level (default `warning`).
    #[serde(skip_serializing_if = "is_default")]
    pub log_level: String,
    /// File Envoy writes outlier detection events to.
    #[serde(skip_serializing_if = "is_default")]
    pub outlier_log_path: String,
    /// Run the proxy privileged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// Readiness probe initial delay (seconds).
    #[serde(skip_serializing_if = "is_default")]
    pub readiness_initial_delay_seconds: u32,
    /// Readiness probe period (seconds).
    #[serde(skip_serializing_if = "is_default")]
    pub readiness_period_seconds: u32,
    /// Readiness probe failure threshold.
    #[serde(skip_serializing_if = "is_default")]
    pub readiness_failure_threshold: u32,
    /// Seccomp profile of the proxy containers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seccomp_profile: Option<Struct>,
    /// Startup probe of the proxy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startup_probe: Option<StartupProbe>,
    /// Agent status port (default 15020).
    #[serde(skip_serializing_if = "is_default")]
    pub status_port: u32,
    /// Deprecated proxy resources; Istio's schema marks this field deprecated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Legacy tracer selection.
    #[serde(skip_serializing_if = "is_default")]
    pub tracer: Tracer,
    /// Outbound ports not captured (comma-separated).
    #[serde(skip_serializing_if = "is_default")]
    pub exclude_outbound_ports: String,
    /// Lifecycle hooks of the proxy container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Struct>,
    /// Deprecated; use `meshConfig.defaultConfig.holdApplicationUntilProxyStarts`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_application_until_proxy_starts: Option<bool>,
    /// Inbound ports captured (comma-separated or `*`).
    #[serde(skip_serializing_if = "is_default")]
    pub include_inbound_ports: String,
    /// Outbound ports always captured (comma-separated).
    #[serde(skip_serializing_if = "is_default")]
    pub include_outbound_ports: String,
}

/// Startup probe of the proxy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct StartupProbe {
    /// Whether the probe is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Failures tolerated before the container is restarted.
    #[serde(skip_serializing_if = "is_default")]
    pub failure_threshold: u32,
}

/// Legacy tracer selection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Tracer {
    /// Zipkin.
    #[default]
    Zipkin,
    /// Lightstep.
    Lightstep,
    /// Datadog.
    Datadog,
    /// Stackdriver.
    Stackdriver,
    /// OpenCensus agent.
    OpenCensusAgent,
    /// No tracer.
    None,
}

/// The `istio-init` container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ProxyInitConfig {
    /// Image of the init container.
    #[serde(skip_serializing_if = "is_default")]
    pub image: String,
    /// Deprecated resources of the init container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
}

/// Deprecated SDS settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SDSConfig {
    /// Deprecated token settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<Struct>,
}

/// Legacy per-tracer settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TracerConfig {
    /// Datadog settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datadog: Option<TracerDatadogConfig>,
    /// Lightstep settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lightstep: Option<TracerLightStepConfig>,
    /// Zipkin settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zipkin: Option<TracerZipkinConfig>,
    /// Stackdriver settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stackdriver: Option<TracerStackdriverConfig>,
}

/// Datadog tracer settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TracerDatadogConfig {
    /// `host:port` of the Datadog agent.
    #[serde(skip_serializing_if = "is_default")]
    pub address: String,
}

/// Lightstep tracer settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TracerLightStepConfig {
    /// `host:port` of the satellite pool.
    #[serde(skip_serializing_if = "is_default")]
    pub address: String,
    /// Access token.
    #[serde(skip_serializing_if = "is_default")]
    pub access_token: String,
}

/// Zipkin tracer settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TracerZipkinConfig {
    /// `host:port` of the Zipkin collector.
    #[serde(skip_serializing_if = "is_default")]
    pub address: String,
}

/// Stackdriver tracer settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TracerStackdriverConfig {
    /// Print traces to stdout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug: Option<bool>,
    /// Maximum attributes per span.
    #[serde(skip_serializing_if = "is_default")]
    pub max_number_of_attributes: u32,
    /// Maximum annotations per span.
    #[serde(skip_serializing_if = "is_default")]
    pub max_number_of_annotations: u32,
    /// Maximum message events per span.
    #[serde(skip_serializing_if = "is_default")]
    pub max_number_of_message_events: u32,
}

/// Security Token Service settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct STSConfig {
    /// Port of the STS server; 0 disables it.
    #[serde(skip_serializing_if = "is_default")]
    pub service_port: u32,
}

/// istiod settings in `global`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct IstiodConfig {
    /// Run configuration analysis in istiod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_analysis: Option<bool>,
}

/// Waypoint proxy settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WaypointConfig {
    /// Resources of waypoint proxies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Affinity of waypoint pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Struct>,
    /// Topology spread constraints of waypoint pods.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<Struct>,
    /// Node selector of waypoint pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<Struct>,
    /// Tolerations of waypoint pods.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub toleration: Vec<Struct>,
}

/// NetworkPolicy settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NetworkPolicyConfig {
    /// Create default NetworkPolicies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}
