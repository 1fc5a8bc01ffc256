//! `values.gateways`: the legacy ingress and egress gateway charts.

use super::{Resources, ServiceAccount, TargetUtilizationConfig};
use crate::types::{Struct, Value, is_default};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The gateway charts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GatewaysConfig {
    /// The egress gateway.
    #[serde(
        skip_serializing_if = "Option::is_none",
        rename = "istio-egressgateway"
    )]
    pub istio_egressgateway: Option<EgressGatewayConfig>,
    /// Whether any gateway is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The ingress gateway.
    #[serde(
        skip_serializing_if = "Option::is_none",
        rename = "istio-ingressgateway"
    )]
    pub istio_ingressgateway: Option<IngressGatewayConfig>,
    /// Pod security context of gateways.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub security_context: Value,
    /// Seccomp profile of gateways.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub seccomp_profile: Value,
}

/// The egress gateway chart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EgressGatewayConfig {
    /// Install a HorizontalPodAutoscaler.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoscale_enabled: Option<bool>,
    /// HPA maximum replicas.
    #[serde(skip_serializing_if = "is_default")]
    pub autoscale_max: u32,
    /// HPA minimum replicas.
    #[serde(skip_serializing_if = "is_default")]
    pub autoscale_min: u32,
    /// Deprecated HPA memory target; use `components.egressGateways[].k8s.hpaSpec`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<TargetUtilizationConfig>,
    /// Deprecated HPA CPU target; use `components.egressGateways[].k8s.hpaSpec`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<TargetUtilizationConfig>,
    /// Use a custom Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_service: Option<bool>,
    /// Whether the egress gateway is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Proxy environment variables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<Struct>,
    /// Pod labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Deployment and Service name.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Deprecated node selector; use `components.egressGateways[].k8s.nodeSelector`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<Struct>,
    /// Deprecated pod annotations; use `components.egressGateways[].k8s.podAnnotations`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_annotations: Option<Struct>,
    /// Deprecated hard anti-affinity terms; use `k8s.affinity`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pod_anti_affinity_label_selector: Vec<Struct>,
    /// Deprecated soft anti-affinity terms; use `k8s.affinity`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pod_anti_affinity_term_label_selector: Vec<Struct>,
    /// Service ports.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortsConfig>,
    /// Deprecated resources; use `components.egressGateways[].k8s.resources`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Secrets mounted into the gateway.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secret_volumes: Vec<SecretVolume>,
    /// Service annotations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_annotations: Option<Struct>,
    /// Service type.
    #[serde(skip_serializing_if = "is_default", rename = "type")]
    pub r#type: String,
    /// Deprecated tolerations; use `components.egressGateways[].k8s.tolerations`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Struct>,
    /// Deprecated rolling update surge; use `k8s.strategy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolling_max_surge: Option<IntOrString>,
    /// Deprecated rolling update unavailability; use `k8s.strategy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolling_max_unavailable: Option<IntOrString>,
    /// Extra config volumes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config_volumes: Vec<Struct>,
    /// Extra containers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub additional_containers: Vec<Struct>,
    /// Run as root (needed to bind ports below 1024).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_as_root: Option<bool>,
    /// Injection template used for the gateway.
    #[serde(skip_serializing_if = "is_default")]
    pub injection_template: String,
    /// ServiceAccount settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<ServiceAccount>,
    /// IP families of the Service.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ip_families: Vec<String>,
    /// IP family policy of the Service.
    #[serde(skip_serializing_if = "is_default")]
    pub ip_family_policy: String,
}

/// The ingress gateway chart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct IngressGatewayConfig {
    /// Install a HorizontalPodAutoscaler.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoscale_enabled: Option<bool>,
    /// HPA maximum replicas.
    #[serde(skip_serializing_if = "is_default")]
    pub autoscale_max: u32,
    /// HPA minimum replicas.
    #[serde(skip_serializing_if = "is_default")]
    pub autoscale_min: u32,
    /// Deprecated HPA memory target; use `components.ingressGateways[].k8s.hpaSpec`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<TargetUtilizationConfig>,
    /// Deprecated HPA CPU target; use `components.ingressGateways[].k8s.hpaSpec`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<TargetUtilizationConfig>,
    /// Use a custom Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_service: Option<bool>,
    /// Whether the ingress gateway is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Proxy environment variables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<Struct>,
    /// Pod labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Load balancer IP of the Service.
    #[serde(skip_serializing_if = "is_default", rename = "loadBalancerIP")]
    pub load_balancer_ip: String,
    /// Source ranges allowed through the load balancer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub load_balancer_source_ranges: Vec<String>,
    /// Deployment and Service name.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Deprecated node selector; use `components.ingressGateways[].k8s.nodeSelector`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<Struct>,
    /// Deprecated pod annotations; use `components.ingressGateways[].k8s.podAnnotations`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_annotations: Option<Struct>,
    /// Deprecated hard anti-affinity terms; use `k8s.affinity`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pod_anti_affinity_label_selector: Vec<Struct>,
    /// Deprecated soft anti-affinity terms; use `k8s.affinity`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pod_anti_affinity_term_label_selector: Vec<Struct>,
    /// Service ports.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortsConfig>,
    /// Deprecated replicas; use `components.ingressGateways[].k8s.replicaCount`.
    #[serde(skip_serializing_if = "is_default")]
    pub replica_count: u32,
    /// Deprecated resources; use `components.ingressGateways[].k8s.resources`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Struct>,
    /// Secrets mounted into the gateway.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secret_volumes: Vec<SecretVolume>,
    /// Service annotations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_annotations: Option<Struct>,
    /// Service type.
    #[serde(skip_serializing_if = "is_default", rename = "type")]
    pub r#type: String,
    /// Deprecated rolling update surge; use `k8s.strategy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolling_max_surge: Option<IntOrString>,
    /// Deprecated rolling update unavailability; use `k8s.strategy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolling_max_unavailable: Option<IntOrString>,
    /// Service external traffic policy.
    #[serde(skip_serializing_if = "is_default")]
    pub external_traffic_policy: String,
    /// Deprecated tolerations; use `components.ingressGateways[].k8s.tolerations`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Struct>,
    /// Extra ingress ports (free-form `port`/`targetPort`/`name`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ingress_ports: Vec<Struct>,
    /// Extra containers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub additional_containers: Vec<Struct>,
    /// Extra config volumes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config_volumes: Vec<Struct>,
    /// Run as root (needed to bind ports below 1024).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_as_root: Option<bool>,
    /// Injection template used for the gateway.
    #[serde(skip_serializing_if = "is_default")]
    pub injection_template: String,
    /// ServiceAccount settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<ServiceAccount>,
    /// IP families of the Service.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ip_families: Vec<String>,
    /// IP family policy of the Service.
    #[serde(skip_serializing_if = "is_default")]
    pub ip_family_policy: String,
}

/// A gateway Service port.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PortsConfig {
    /// Port name.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Service port.
    #[serde(skip_serializing_if = "is_default")]
    pub port: i32,
    /// Node port.
    #[serde(skip_serializing_if = "is_default")]
    pub node_port: i32,
    /// Container port.
    #[serde(skip_serializing_if = "is_default")]
    pub target_port: i32,
    /// Protocol.
    #[serde(skip_serializing_if = "is_default")]
    pub protocol: String,
}

/// A secret mounted into a gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SecretVolume {
    /// Mount path.
    #[serde(skip_serializing_if = "is_default")]
    pub mount_path: String,
    /// Volume name.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Secret name.
    #[serde(skip_serializing_if = "is_default")]
    pub secret_name: String,
}
