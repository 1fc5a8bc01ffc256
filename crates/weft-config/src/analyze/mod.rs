//! Cross-resource analysis, as `istioctl analyze` does it: findings that no single resource
//! shows (a route to a subset no DestinationRule defines, a Gateway that does not exist,
//! a provider MeshConfig lacks, the same object twice). They are warnings: each resource is
//! valid on its own.

mod providers;
mod routing;

use crate::diag::{Code, Finding, Severity};
use crate::load::Loaded;
use crate::path::FieldPath;
use std::collections::HashMap;

pub use providers::mesh_configs;

/// The DNS suffix of in-cluster service names.
pub const CLUSTER_DOMAIN: &str = "svc.cluster.local";

/// Resolves a destination host as Istio does: a name without dots is a Kubernetes service
/// in the referring object's namespace.
pub fn resolve_host(host: &str, namespace: &str) -> String {
    if host.contains('.') || host == "*" {
        host.to_string()
    } else {
        format!("{host}.{namespace}.{CLUSTER_DOMAIN}")
    }
}

/// Whether `pattern` (possibly `*.suffix`) covers `host`.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(suffix) => host.ends_with(suffix),
        None => pattern == host,
    }
}

/// Runs every cross-resource check.
pub fn analyze(loaded: &[Loaded]) -> Vec<Finding> {
    let mut out = Vec::new();
    duplicates(loaded, &mut out);
    routing::analyze(loaded, &mut out);
    providers::provider_refs(loaded, &mut out);
    out
}

fn duplicates(loaded: &[Loaded], out: &mut Vec<Finding>) {
    let mut seen: HashMap<(String, Option<String>, String), &Loaded> = HashMap::new();
    for l in loaded {
        let r = l.resource.object_ref();
        if r.name.is_empty() {
            continue;
        }
        let key = (r.kind.clone(), r.namespace.clone(), r.name.clone());
        if let Some(first) = seen.get(&key) {
            let at = first.locate(&FieldPath::root());
            out.push(
                l.place(
                    Finding::new(
                        Severity::Warning,
                        Code::Duplicate,
                        format!("{r} is defined more than once; the last definition wins"),
                    )
                    .with_suggestion(format!("first defined at {at}"))
                    .at(FieldPath::parse("metadata.name")),
                ),
            );
        } else {
            seen.insert(key, l);
        }
    }
}
