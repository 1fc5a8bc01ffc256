//! `istio.type.v1beta1` selectors shared by policy resources: which workloads a resource
//! applies to, by labels or by a Gateway API reference.

use crate::types::is_default;
use crate::validate::{Validate, Validator, rules};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Selects workloads by labels; an empty selector selects every workload in the namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WorkloadSelector {
    /// Labels a workload must carry (all of them) to be selected.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
}

impl Validate for WorkloadSelector {
    fn validate(&self, v: &mut Validator) {
        v.field("matchLabels", |v| {
            for k in self.match_labels.keys() {
                if k.is_empty() {
                    v.error("empty key is not supported in selector");
                }
                if k.contains('*') {
                    v.key(k, |v| v.error("wildcard is not supported in selector"));
                }
            }
            rules::labels(v, &self.match_labels);
        });
    }
}

/// A reference to a Kubernetes Gateway API object a policy attaches to (`targetRef`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PolicyTargetReference {
    /// API group of the target, e.g. `gateway.networking.k8s.io`; empty for core.
    #[serde(skip_serializing_if = "is_default")]
    pub group: String,
    /// Kind of the target, e.g. `Gateway` or `Service`.
    #[serde(skip_serializing_if = "is_default")]
    pub kind: String,
    /// Name of the target.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Namespace of the target; must equal the policy's own namespace when set.
    #[serde(skip_serializing_if = "is_default")]
    pub namespace: String,
}

impl Validate for PolicyTargetReference {
    fn validate(&self, v: &mut Validator) {
        if self.kind.is_empty() {
            v.field("kind", |v| v.missing("targetRef kind must be set"));
        }
        if self.name.is_empty() {
            v.field("name", |v| v.missing("targetRef name must be set"));
        }
        if !self.namespace.is_empty() && self.namespace != v.namespace() {
            let ns = v.namespace().to_string();
            v.field("namespace", |v| {
                v.error(format!(
                    "targetRef namespace {:?} must equal the policy's namespace {ns:?}",
                    self.namespace
                ))
            });
        }
    }
}
