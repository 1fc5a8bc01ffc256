//! How a policy picks the workloads it applies to (`selector`, `targetRef`, `targetRefs`),
//! validated the way Istio's `validateOneOfSelectorType`, `validateWorkloadSelector` and
//! `validatePolicyTargetReference(s)` do. Every policy kind with these fields
//! (AuthorizationPolicy, RequestAuthentication, Telemetry) shares these checks; they add to
//! what `crate::selector`'s own `Validate` impls already report.

use crate::selector::{PolicyTargetReference, WorkloadSelector};
use crate::validate::{Validate, Validator, rules};

/// The CRD caps `targetRefs` at this many entries.
const MAX_TARGET_REFS: usize = 16;

/// Group/kind pairs Istio accepts as policy targets (the version is not checked). An empty
/// group and `core` both mean the core API group.
const ALLOWED_TARGETS: [(&str, &str); 4] = [
    ("core", "Service"),
    ("networking.istio.io", "ServiceEntry"),
    ("gateway.networking.k8s.io", "Gateway"),
    ("gateway.networking.k8s.io", "GatewayClass"),
];

/// Validates `selector`, `targetRef` and `targetRefs` of a policy spec and that at most one
/// of them is set.
pub(crate) fn validate_targeting(
    v: &mut Validator,
    selector: &Option<WorkloadSelector>,
    target_ref: &Option<PolicyTargetReference>,
    target_refs: &[PolicyTargetReference],
) {
    rules::oneof(
        v,
        &[
            ("selector", selector.is_some()),
            ("targetRef", target_ref.is_some()),
            ("targetRefs", !target_refs.is_empty()),
        ],
    );
    workload_selector(v, selector);
    if let Some(r) = target_ref {
        v.field("targetRef", |v| target(v, r));
    }
    v.field("targetRefs", |v| {
        if target_refs.len() > MAX_TARGET_REFS {
            v.error(format!(
                "at most {MAX_TARGET_REFS} targetRefs may be set (found {})",
                target_refs.len()
            ));
        }
        for (i, r) in target_refs.iter().enumerate() {
            v.index(i, |v| target(v, r));
        }
    });
}

/// Validates a workload selector; Istio accepts one without labels but warns, because it
/// then selects every workload in the namespace, as if it were absent.
pub(crate) fn workload_selector(v: &mut Validator, selector: &Option<WorkloadSelector>) {
    v.nested("selector", selector);
    if let Some(s) = selector
        && s.match_labels.is_empty()
    {
        v.field("selector", |v| {
            v.warn(
                "workload selector specified without labels; it selects every workload in the \
                 namespace",
            )
        });
    }
}

fn target(v: &mut Validator, r: &PolicyTargetReference) {
    r.validate(v);
    // `PolicyTargetReference::validate` only rejects a namespace different from the policy's
    // own; Istio (and the CRD) reject any namespace at all.
    if !r.namespace.is_empty() && r.namespace == v.namespace() {
        v.field("namespace", |v| {
            v.error(
                "targetRef namespace must not be set; cross namespace referencing is not \
                 supported (the policy's own namespace is implied)",
            )
        });
    }
    if r.kind.is_empty() {
        return;
    }
    let group = if r.group.is_empty() {
        "core"
    } else {
        r.group.as_str()
    };
    if !ALLOWED_TARGETS
        .iter()
        .any(|(g, k)| *g == group && *k == r.kind)
    {
        v.error(format!(
            "targetRef must be to one of Service, networking.istio.io/ServiceEntry, \
             gateway.networking.k8s.io/Gateway or gateway.networking.k8s.io/GatewayClass, \
             but was {}/{}",
            r.group, r.kind
        ));
    }
}
