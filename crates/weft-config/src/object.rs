//! The Kubernetes object envelope (`apiVersion`, `kind`, `metadata`, `spec`) around every
//! Istio resource, and the metadata rules the API server applies to all of them.

use crate::validate::{Validator, rules};
use serde::{Deserialize, Serialize};

/// Kubernetes object metadata, shared with the Kubernetes kinds.
pub type ObjectMeta = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// An Istio custom resource: the envelope plus its typed `spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(bound(deserialize = "S: Deserialize<'de> + Default"))]
pub struct Object<S> {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: S,
    /// Status written by a controller; kept as-is when objects are read back from a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

/// Rules for `metadata` that the API server enforces on every object.
pub fn validate_metadata(
    v: &mut Validator,
    kind: &str,
    meta: &ObjectMeta,
    namespaced: bool,
    name_is_label: bool,
) {
    v.field("metadata", |v| {
        match (&meta.name, &meta.generate_name) {
            (Some(name), _) if !name.is_empty() => v.field("name", |v| {
                let ok = if name_is_label {
                    rules::is_k8s_dns1123_label(name)
                } else {
                    rules::is_dns1123_subdomain(name)
                };
                if !ok {
                    let what = if name_is_label {
                        "a DNS-1123 label (at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit)"
                    } else {
                        "a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)"
                    };
                    v.error_hint(
                        format!("invalid name {name:?}: must be {what}"),
                        format!("try {:?}", suggest_name(name)),
                    );
                }
            }),
            (_, Some(g)) if !g.is_empty() => {}
            _ => v.field("name", |v| {
                v.missing_hint(
                    "metadata.name is required",
                    "name the object: `metadata: {name: my-object}` (or set generateName)",
                )
            }),
        }
        if let Some(ns) = &meta.namespace {
            if !namespaced {
                v.field("namespace", |v| {
                    v.warn("namespace is ignored: this kind is cluster-scoped")
                });
            } else if !rules::is_k8s_dns1123_label(ns) {
                v.field("namespace", |v| {
                    v.error(format!("invalid namespace {ns:?}: must be a DNS-1123 label"))
                });
            }
        }
        if let Some(labels) = &meta.labels {
            v.field("labels", |v| rules::labels(v, labels));
        }
        if let Some(ann) = &meta.annotations {
            v.field("annotations", |v| {
                for k in ann.keys() {
                    if let Err(e) = rules::check_label_key(k) {
                        v.key(k, |v| v.error(e.replace("label key", "annotation key")));
                    }
                }
            });
        }
        crate::annotations::check_metadata(v, kind, meta.labels.as_ref(), meta.annotations.as_ref());
    });
}

fn suggest_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| match c {
            'A'..='Z' => c.to_ascii_lowercase(),
            'a'..='z' | '0'..='9' | '-' | '.' => c,
            _ => '-',
        })
        .collect();
    while out.starts_with(['-', '.']) {
        out.remove(0);
    }
    while out.ends_with(['-', '.']) {
        out.pop();
    }
    out
}
