//! IstioOperator `values`: the Helm values passed to Istio's charts
//! (istio/istio operator/pkg/apis/values_types.proto, package `istio.operator.v1alpha1`).
//!
//! istioctl decodes `values` with strict jsonpb: a key the schema lacks (for example
//! `values.global.trustDomain` or `values.istiod`) makes `istioctl install` fail with
//! "unknown field", unless it is moved to `spec.unvalidatedValues`. These types list exactly
//! the schema's fields, so the loader reports such keys the same way.

mod cni;
mod gateways;
mod global;
mod pilot;
mod validate;

#[cfg(test)]
mod tests;

pub use cni::*;
pub use gateways::*;
pub use global::*;
pub use pilot::*;

use crate::mesh::mesh_config::MeshConfig;
use crate::types::{Struct, Value, is_default};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The top level of the Helm values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Values {
    /// The Istio CNI node agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cni: Option<CNIConfig>,
    /// The ingress and egress gateway charts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateways: Option<GatewaysConfig>,
    /// Settings shared by every chart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<GlobalConfig>,
    /// istiod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pilot: Option<PilotConfig>,
    /// The ztunnel chart's values (free-form).
    #[serde(skip_serializing_if = "Value::is_null")]
    pub ztunnel: Value,
    /// Telemetry settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<TelemetryConfig>,
    /// The sidecar injector webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sidecar_injector_webhook: Option<SidecarInjectorConfig>,
    /// Deprecated CNI usage settings; use `pilot.cni`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub istio_cni: Option<CNIUsageConfig>,
    /// Revision of this installation.
    #[serde(skip_serializing_if = "is_default")]
    pub revision: String,
    /// Owner of each resource (set by istioctl).
    #[serde(skip_serializing_if = "is_default")]
    pub owner_name: String,
    /// Mesh configuration (the same as `spec.meshConfig`, which istioctl merges in here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mesh_config: Option<MeshConfig>,
    /// The base chart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseConfig>,
    /// Deprecated remote-istiod settings; use `pilot.istiodRemote` / `istiodRemote.enabled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub istiod_remote: Option<IstiodRemoteConfig>,
    /// Revision tags (one webhook per alias).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub revision_tags: Vec<String>,
    /// The cluster's default revision.
    #[serde(skip_serializing_if = "is_default")]
    pub default_revision: String,
    /// Profile applied (Helm).
    #[serde(skip_serializing_if = "is_default")]
    pub profile: String,
    /// Behave like an older release (`major.minor`).
    #[serde(skip_serializing_if = "is_default")]
    pub compatibility_version: String,
    /// Experimental chart settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experimental: Option<ExperimentalConfig>,
    /// Gateway class defaults (free-form).
    #[serde(skip_serializing_if = "Value::is_null")]
    pub gateway_classes: Value,
}

/// Compute resources of a container, as Helm strings (`100m`, `128Mi`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Resources {
    /// Maximum resources (`cpu`, `memory`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, String>,
    /// Requested resources (`cpu`, `memory`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, String>,
}

/// HorizontalPodAutoscaler utilization target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TargetUtilizationConfig {
    /// Target average utilization in percent.
    #[serde(skip_serializing_if = "is_default")]
    pub target_average_utilization: i32,
}

/// ServiceAccount settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServiceAccount {
    /// ServiceAccount annotations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Struct>,
}

/// Telemetry settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TelemetryConfig {
    /// Whether telemetry is generated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Telemetry v2 settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v2: Option<TelemetryV2Config>,
}

/// Telemetry v2 settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TelemetryV2Config {
    /// Whether telemetry v2 is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Prometheus settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<TelemetryV2PrometheusConfig>,
    /// Stackdriver settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stackdriver: Option<TelemetryV2StackDriverConfig>,
}

/// Telemetry v2 Prometheus settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TelemetryV2PrometheusConfig {
    /// Whether the stats filter is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Telemetry v2 Stackdriver settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TelemetryV2StackDriverConfig {
    /// Whether Stackdriver telemetry is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// The base chart's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct BaseConfig {
    /// Render the CRDs as templates (Helm 2 style).
    #[serde(skip_serializing_if = "Option::is_none", rename = "enableCRDTemplates")]
    pub enable_crd_templates: Option<bool>,
    /// CRDs not to install (requires `enableCRDTemplates`).
    #[serde(skip_serializing_if = "Vec::is_empty", rename = "excludedCRDs")]
    pub excluded_crds: Vec<String>,
    /// URL of the validating webhook.
    #[serde(skip_serializing_if = "is_default", rename = "validationURL")]
    pub validation_url: String,
    /// Install Istio's configuration CRDs.
    #[serde(
        skip_serializing_if = "Option::is_none",
        rename = "enableIstioConfigCRDs"
    )]
    pub enable_istio_config_crds: Option<bool>,
    /// Validate Gateway API resources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validate_gateway: Option<bool>,
    /// CA bundle of the validating webhook.
    #[serde(skip_serializing_if = "is_default", rename = "validationCABundle")]
    pub validation_ca_bundle: String,
}

/// Settings for consuming a remote istiod.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct IstiodRemoteConfig {
    /// URL of the sidecar injector webhook.
    #[serde(skip_serializing_if = "is_default", rename = "injectionURL")]
    pub injection_url: String,
    /// Path of the sidecar injector webhook service.
    #[serde(skip_serializing_if = "is_default")]
    pub injection_path: String,
    /// CA bundle of the injector.
    #[serde(skip_serializing_if = "is_default", rename = "injectionCABundle")]
    pub injection_ca_bundle: String,
    /// This cluster consumes a remote istiod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// This cluster consumes a local istiod that injects sidecars.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled_local_injector_istiod: Option<bool>,
}

/// Experimental chart settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ExperimentalConfig {
    /// Install the ValidatingAdmissionPolicy-based validation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_validation_policy: Option<bool>,
}
