//! `values.pilot` (istiod) and the other control-plane sections: sidecar injector, legacy
//! ingress and outbound traffic policy settings.

use super::{CNIUsageConfig, IstiodRemoteConfig, Resources, TargetUtilizationConfig};
use crate::types::{Duration, Struct, Value, is_default};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};

/// istiod's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PilotConfig {
    /// Whether istiod is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Install a HorizontalPodAutoscaler (the default profile turns this on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoscale_enabled: Option<bool>,
    /// HPA minimum replicas.
    #[serde(skip_serializing_if = "is_default")]
    pub autoscale_min: u32,
    /// HPA maximum replicas.
    #[serde(skip_serializing_if = "is_default")]
    pub autoscale_max: u32,
    /// HPA scaling behavior.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoscale_behavior: Option<Struct>,
    /// Deprecated replicas; use `components.pilot.k8s.replicaCount`.
    #[serde(skip_serializing_if = "is_default")]
    pub replica_count: u32,
    /// istiod image (name or full reference).
    #[serde(skip_serializing_if = "is_default")]
    pub image: String,
    /// Trace sampling fraction, 0.0 to 1.0.
    #[serde(skip_serializing_if = "is_default")]
    pub trace_sampling: f64,
    /// Deprecated resources; use `components.pilot.k8s.resources`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Deprecated HPA CPU target; use `components.pilot.k8s.hpaSpec`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<TargetUtilizationConfig>,
    /// Deprecated node selector; use `components.pilot.k8s.nodeSelector`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<Struct>,
    /// Maximum lifetime of a proxy's connection to istiod (e.g. `30m`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keepalive_max_server_connection_age: Option<Duration>,
    /// Deployment labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_labels: Option<Struct>,
    /// Pod labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_labels: Option<Struct>,
    /// Generate the mesh ConfigMap from values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_map: Option<bool>,
    /// Environment variables of istiod (feature flags such as `PILOT_*`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<Struct>,
    /// Pod affinity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Struct>,
    /// Deprecated rolling update surge; use `components.pilot.k8s.strategy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolling_max_surge: Option<IntOrString>,
    /// Deprecated rolling update unavailability; use `components.pilot.k8s.strategy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolling_max_unavailable: Option<IntOrString>,
    /// Deprecated tolerations; use `components.pilot.k8s.tolerations`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Struct>,
    /// Deprecated pod annotations; use `components.pilot.k8s.podAnnotations`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_annotations: Option<Struct>,
    /// Service annotations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_annotations: Option<Struct>,
    /// ServiceAccount annotations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account_annotations: Option<Struct>,
    /// Extra root CA (PEM) trusted when fetching JWKS.
    #[serde(skip_serializing_if = "is_default", rename = "jwksResolverExtraRootCA")]
    pub jwks_resolver_extra_root_ca: String,
    /// Image hub of istiod.
    #[serde(skip_serializing_if = "is_default")]
    pub hub: String,
    /// Image tag of istiod.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub tag: Value,
    /// Image variant of istiod.
    #[serde(skip_serializing_if = "is_default")]
    pub variant: String,
    /// Seccomp profile of istiod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seccomp_profile: Option<Struct>,
    /// Topology spread constraints.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<Struct>,
    /// Pod termination grace period (seconds).
    #[serde(skip_serializing_if = "is_default")]
    pub termination_grace_period_seconds: u32,
    /// Extra container arguments.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_container_args: Vec<Struct>,
    /// Extra volume mounts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<Struct>,
    /// Extra volumes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Struct>,
    /// IP families of the Service.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ip_families: Vec<String>,
    /// IP family policy of the Service.
    #[serde(skip_serializing_if = "is_default")]
    pub ip_family_policy: String,
    /// Deprecated HPA memory target; use `components.pilot.k8s.hpaSpec`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<TargetUtilizationConfig>,
    /// Whether workloads use an existing CNI installation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cni: Option<CNIUsageConfig>,
    /// Node untaint controller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taint: Option<PilotTaintControllerConfig>,
    /// Namespace of ztunnels allowed to connect as node proxies.
    #[serde(skip_serializing_if = "is_default")]
    pub trusted_ztunnel_namespace: String,
    /// Settings when istiod runs for a remote cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub istiod_remote: Option<IstiodRemoteConfig>,
    /// Environment variables from ConfigMaps or Secrets.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env_var_from: Vec<Struct>,
    /// Name of the plugged-in CA's CRL ConfigMap.
    #[serde(skip_serializing_if = "is_default")]
    pub crl_config_map_name: String,
}

/// istiod's node untaint controller.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PilotTaintControllerConfig {
    /// Remove the CNI taint from nodes once CNI is ready.
    #[serde(skip_serializing_if = "is_default")]
    pub enabled: bool,
    /// Namespace of the CNI DaemonSet.
    #[serde(skip_serializing_if = "is_default")]
    pub namespace: String,
    /// Taint key the controller removes.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
}

/// Legacy Kubernetes Ingress support.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PilotIngressConfig {
    /// Service type used for ingress.
    #[serde(skip_serializing_if = "is_default")]
    pub ingress_service: String,
    /// Which Ingress resources are handled.
    #[serde(skip_serializing_if = "is_default")]
    pub ingress_controller_mode: IngressControllerMode,
    /// `kubernetes.io/ingress.class` value handled in `STRICT` mode.
    #[serde(skip_serializing_if = "is_default")]
    pub ingress_class: String,
}

/// Modes of the legacy ingress controller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IngressControllerMode {
    /// Not set.
    #[default]
    Unspecified,
    /// Every Ingress, annotated or not.
    Default,
    /// Only Ingresses with the Istio annotation.
    Strict,
    /// No ingress support.
    Off,
}

/// Whether Istio policy applies to istiod.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PilotPolicyConfig {
    /// Whether policy is applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Outbound traffic policy modes (Helm spelling).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Mode {
    /// Unknown destinations pass through.
    #[default]
    AllowAny,
    /// Only known services are reachable.
    RegistryOnly,
}

/// Default outbound traffic policy of sidecars.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OutboundTrafficPolicyConfig {
    /// The policy mode.
    #[serde(skip_serializing_if = "is_default")]
    pub mode: Mode,
}

/// The sidecar injector webhook.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SidecarInjectorConfig {
    /// Inject into every namespace not opted out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_namespaces_by_default: Option<bool>,
    /// Webhook reinvocation policy (`Never`, `IfNeeded`).
    #[serde(skip_serializing_if = "is_default")]
    pub reinvocation_policy: String,
    /// Label selectors of pods never injected.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub never_inject_selector: Vec<Struct>,
    /// Label selectors of pods always injected.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub always_inject_selector: Vec<Struct>,
    /// Rewrite liveness/readiness probes through the agent.
    #[serde(
        skip_serializing_if = "Option::is_none",
        rename = "rewriteAppHTTPProbe"
    )]
    pub rewrite_app_http_probe: Option<bool>,
    /// Annotations added to injected pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub injected_annotations: Option<Struct>,
    /// URL of the injection webhook.
    #[serde(skip_serializing_if = "is_default", rename = "injectionURL")]
    pub injection_url: String,
    /// Custom injection templates by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub templates: Option<Struct>,
    /// Templates applied by default (`sidecar` is implied).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub default_templates: Vec<String>,
}
