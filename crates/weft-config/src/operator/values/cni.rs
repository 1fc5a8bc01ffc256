//! `values.cni`: the Istio CNI node agent, and `CNIUsageConfig`, which tells istiod's
//! injector whether workloads rely on it.

use super::{GlobalLoggingConfig, Resources};
use crate::types::{Struct, Value, is_default};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};

/// The Istio CNI node agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CNIConfig {
    /// Whether CNI is installed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Image hub.
    #[serde(skip_serializing_if = "is_default")]
    pub hub: String,
    /// Image tag.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub tag: Value,
    /// Image variant (`debug`, `distroless`).
    #[serde(skip_serializing_if = "is_default")]
    pub variant: String,
    /// Image name (a full reference when it contains `/`).
    #[serde(skip_serializing_if = "is_default")]
    pub image: String,
    /// Image pull policy.
    #[serde(skip_serializing_if = "is_default")]
    pub pull_policy: String,
    /// Host directory of CNI binaries.
    #[serde(skip_serializing_if = "is_default")]
    pub cni_bin_dir: String,
    /// Host directory of CNI configuration.
    #[serde(skip_serializing_if = "is_default")]
    pub cni_conf_dir: String,
    /// Name of the CNI configuration file.
    #[serde(skip_serializing_if = "is_default")]
    pub cni_conf_file_name: String,
    /// Host directory of network namespaces.
    #[serde(skip_serializing_if = "is_default")]
    pub cni_netns_dir: String,
    /// Namespaces the plugin ignores.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude_namespaces: Vec<String>,
    /// Affinity of the CNI pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Struct>,
    /// Environment variables of the CNI container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<Struct>,
    /// Labels of the DaemonSet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daemon_set_labels: Option<Struct>,
    /// Deprecated pod annotations; use `components.cni.k8s.podAnnotations`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_annotations: Option<Struct>,
    /// Pod labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_labels: Option<Struct>,
    /// Unused PodSecurityPolicy role.
    #[serde(skip_serializing_if = "is_default")]
    pub psp_cluster_role: String,
    /// Deprecated log level; use `logging.level`.
    #[serde(skip_serializing_if = "is_default")]
    pub log_level: String,
    /// Log levels overriding `global.logging`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging: Option<GlobalLoggingConfig>,
    /// Repair controller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair: Option<CNIRepairConfig>,
    /// Install as a chained plugin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chained: Option<bool>,
    /// ResourceQuota of the CNI namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_quotas: Option<ResourceQuotas>,
    /// Resources of the CNI pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Deprecated and unused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// Seccomp profile of the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seccomp_profile: Option<Struct>,
    /// Ambient mode settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ambient: Option<CNIAmbientConfig>,
    /// CNI provider (`default` or `multus`).
    #[serde(skip_serializing_if = "is_default")]
    pub provider: String,
    /// DaemonSet rolling update unavailability.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolling_max_unavailable: Option<IntOrString>,
    /// Create an Istio-owned CNI configuration file.
    #[serde(
        skip_serializing_if = "Option::is_none",
        rename = "istioOwnedCNIConfig"
    )]
    pub istio_owned_cni_config: Option<bool>,
    /// Name of the Istio-owned CNI configuration file.
    #[serde(
        skip_serializing_if = "is_default",
        rename = "istioOwnedCNIConfigFileName"
    )]
    pub istio_owned_cni_config_file_name: String,
    /// Use the AppArmor annotation instead of the security context field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_app_armor_annotation: Option<bool>,
}

/// Whether workloads use Istio CNI (read by the injector).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CNIUsageConfig {
    /// Workloads rely on Istio CNI instead of an init container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Deprecated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chained: Option<bool>,
    /// CNI provider (`default` or `multus`).
    #[serde(skip_serializing_if = "is_default")]
    pub provider: String,
}

/// Ambient mode settings of the CNI agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CNIAmbientConfig {
    /// Enable ambient redirection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Directory of ambient configuration.
    #[serde(skip_serializing_if = "is_default")]
    pub config_dir: String,
    /// Redirect DNS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_capture: Option<bool>,
    /// Enable IPv6 (unstable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<bool>,
    /// Reconcile iptables rules at startup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconcile_iptables_on_startup: Option<bool>,
}

/// The CNI repair controller.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CNIRepairConfig {
    /// Whether repair is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Image hub.
    #[serde(skip_serializing_if = "is_default")]
    pub hub: String,
    /// Image tag.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub tag: Value,
    /// Image name.
    #[serde(skip_serializing_if = "is_default")]
    pub image: String,
    /// Label broken pods.
    #[serde(skip_serializing_if = "is_default")]
    pub label_pods: bool,
    /// Repair broken pods in place.
    #[serde(skip_serializing_if = "is_default")]
    pub repair_pods: bool,
    /// Deprecated and unused.
    #[serde(skip_serializing_if = "is_default")]
    pub create_events: String,
    /// Delete broken pods.
    #[serde(skip_serializing_if = "is_default")]
    pub delete_pods: bool,
    /// Label key set on broken pods.
    #[serde(skip_serializing_if = "is_default")]
    pub broken_pod_label_key: String,
    /// Label value set on broken pods.
    #[serde(skip_serializing_if = "is_default")]
    pub broken_pod_label_value: String,
    /// Init container checked in repair mode.
    #[serde(skip_serializing_if = "is_default")]
    pub init_container_name: String,
}

/// ResourceQuota of the CNI namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ResourceQuotas {
    /// Create the quota.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Maximum pods in the namespace.
    #[serde(skip_serializing_if = "is_default")]
    pub pods: i64,
}
