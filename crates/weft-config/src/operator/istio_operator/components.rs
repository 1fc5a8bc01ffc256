//! IstioOperator `components`: which parts of Istio are installed, and the Kubernetes
//! settings of their Deployments and Services (standard Kubernetes types).

use crate::types::{Value, is_default};
use k8s_openapi::api::apps::v1::DeploymentStrategy;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerSpec;
use k8s_openapi::api::core::v1::{
    Affinity, EnvVar, PodSecurityContext, Probe, ResourceRequirements, ServiceSpec, Toleration,
    Volume, VolumeMount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudgetSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The installable components.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct IstioComponentSpec {
    /// CRDs and cluster roles (`base` chart).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseComponentSpec>,
    /// istiod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pilot: Option<ComponentSpec>,
    /// The Istio CNI node agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cni: Option<ComponentSpec>,
    /// The ambient-mode node proxy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ztunnel: Option<ComponentSpec>,
    /// Remote cluster settings for an external control plane.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub istiod_remote: Option<ComponentSpec>,
    /// Ingress gateways to install.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ingress_gateways: Vec<GatewayComponentSpec>,
    /// Egress gateways to install.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub egress_gateways: Vec<GatewayComponentSpec>,
    /// The standalone `gateway` chart (not installed by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<ComponentSpec>,
}

/// The `base` component.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct BaseComponentSpec {
    /// Whether the component is installed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Kubernetes settings of the component's resources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8s: Option<KubernetesResourcesSpec>,
}

/// A component other than `base` and the gateways.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ComponentSpec {
    /// Whether the component is installed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Namespace the component is installed into.
    #[serde(skip_serializing_if = "is_default")]
    pub namespace: String,
    /// Image hub for this component (overrides `spec.hub`).
    #[serde(skip_serializing_if = "is_default")]
    pub hub: String,
    /// Image tag for this component (overrides `spec.tag`).
    #[serde(skip_serializing_if = "Value::is_null")]
    pub tag: Value,
    /// Kubernetes settings of the component's resources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8s: Option<KubernetesResourcesSpec>,
}

/// An ingress or egress gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GatewayComponentSpec {
    /// Whether the gateway is installed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Namespace the gateway is installed into.
    #[serde(skip_serializing_if = "is_default")]
    pub namespace: String,
    /// Image hub for this gateway.
    #[serde(skip_serializing_if = "is_default")]
    pub hub: String,
    /// Image tag for this gateway.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub tag: Value,
    /// Kubernetes settings of the gateway's resources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8s: Option<KubernetesResourcesSpec>,
    /// Name of the gateway Deployment and Service.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Labels of the gateway's pods (what Gateway selectors match).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub label: BTreeMap<String, String>,
}

/// Kubernetes settings applied to a component's Deployment, Service and related objects.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct KubernetesResourcesSpec {
    /// Pod affinity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Extra container environment variables.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// HorizontalPodAutoscaler spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hpa_spec: Option<HorizontalPodAutoscalerSpec>,
    /// Image pull policy (`Always`, `IfNotPresent`, `Never`).
    #[serde(skip_serializing_if = "is_default")]
    pub image_pull_policy: String,
    /// Pod node selector.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// PodDisruptionBudget spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_disruption_budget: Option<PodDisruptionBudgetSpec>,
    /// Pod annotations.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_annotations: BTreeMap<String, String>,
    /// Pod priority class.
    #[serde(skip_serializing_if = "is_default")]
    pub priority_class_name: String,
    /// Container readiness probe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,
    /// Deployment replicas.
    #[serde(skip_serializing_if = "is_default")]
    pub replica_count: u32,
    /// Container resource requests and limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Service spec (type, ports, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceSpec>,
    /// Deployment update strategy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<DeploymentStrategy>,
    /// Pod tolerations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Service annotations.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub service_annotations: BTreeMap<String, String>,
    /// Pod security context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    /// Extra pod volumes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// Extra container volume mounts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    /// Patches applied to the rendered manifests.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overlays: Vec<K8sObjectOverlay>,
}

/// Patches for one rendered Kubernetes object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct K8sObjectOverlay {
    /// API version of the object.
    #[serde(skip_serializing_if = "is_default")]
    pub api_version: String,
    /// Kind of the object.
    #[serde(skip_serializing_if = "is_default")]
    pub kind: String,
    /// Name of the object (its namespace is the component's).
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Patches to apply, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<PathValue>,
}

/// One overlay patch: a path (`a.[key:value].b.[:value]`) and the value to set there.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PathValue {
    /// Path to the node to add, replace or delete.
    #[serde(skip_serializing_if = "is_default")]
    pub path: String,
    /// Value to set; unset deletes the node.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub value: Value,
}
