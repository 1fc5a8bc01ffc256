//! `install.istio.io/v1alpha1` IstioOperator: the installation spec `istioctl install` reads
//! (istio/istio operator/pkg/apis/types.go). Its `meshConfig` is the mesh's MeshConfig and
//! its `values` are the Helm values, both typed here so typos are caught.
//!
//! istioctl decodes the spec with unknown fields disallowed, and `values` with strict jsonpb,
//! so an unknown key anywhere but `meshConfig` and `unvalidatedValues` is an error there too.

mod components;
mod validate;

#[cfg(test)]
mod tests;

pub use components::*;

use super::values::Values;
use crate::mesh::mesh_config::MeshConfig;
use crate::types::{Value, is_default};
use serde::{Deserialize, Serialize};

/// The desired installed state of Istio: a customization of a profile's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct IstioOperatorSpec {
    /// Profile to start from (`default`, `demo`, `minimal`, `ambient`, ... or a file path).
    #[serde(skip_serializing_if = "is_default")]
    pub profile: String,
    /// Local path of the install package (charts and profiles).
    #[serde(skip_serializing_if = "is_default")]
    pub install_package_path: String,
    /// Root of the image paths, e.g. `docker.io/istio`.
    #[serde(skip_serializing_if = "is_default")]
    pub hub: String,
    /// Image tag, e.g. `1.24.0`; a number is accepted and used as written.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub tag: Value,
    /// Namespace the control plane is installed into.
    #[serde(skip_serializing_if = "is_default")]
    pub namespace: String,
    /// Revision this installation belongs to (a DNS-1123 label).
    #[serde(skip_serializing_if = "is_default")]
    pub revision: String,
    /// Behave like an older release (`major.minor`, e.g. `1.23`).
    #[serde(skip_serializing_if = "is_default")]
    pub compatibility_version: String,
    /// Mesh configuration used by the control plane.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mesh_config: Option<MeshConfig>,
    /// Components to install and their Kubernetes settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components: Option<IstioComponentSpec>,
    /// Helm values passed to the charts (validated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<Values>,
    /// Helm values passed through without validation (for custom templates).
    #[serde(skip_serializing_if = "Value::is_null")]
    pub unvalidated_values: Value,
}
