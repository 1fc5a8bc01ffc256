//! The `istio.io/dry-run` annotation: an AuthorizationPolicy evaluated but not enforced.
//! Istio accepts it only with a boolean value, only on ALLOW and DENY policies, and
//! rejects it on RequestAuthentication.

use super::authorization_policy::Action;
use crate::object::ObjectMeta;
use crate::validate::Validator;

pub const DRY_RUN: &str = "istio.io/dry-run";

/// Go's `strconv.ParseBool`, which Istio uses to read the annotation.
fn go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn at_annotation(v: &mut Validator, f: impl FnOnce(&mut Validator)) {
    v.field("metadata", |v| {
        v.field("annotations", |v| v.key(DRY_RUN, f))
    });
}

/// Rules for the annotation on an AuthorizationPolicy with `action`.
pub fn check_authorization_policy(v: &mut Validator, meta: &ObjectMeta, action: Action) {
    let Some(value) = meta.annotations.as_ref().and_then(|a| a.get(DRY_RUN)) else {
        return;
    };
    at_annotation(v, |v| {
        if go_bool(value).is_none() {
            v.error_hint(
                format!("invalid {DRY_RUN} value {value:?}: must be a boolean"),
                "use \"true\" or \"false\"",
            );
        } else if !matches!(action, Action::Allow | Action::Deny) {
            v.error(format!(
                "{DRY_RUN} is only supported on ALLOW and DENY policies, not {action}"
            ));
        }
    });
}

/// RequestAuthentication has no dry-run mode.
pub fn check_request_authentication(v: &mut Validator, meta: &ObjectMeta) {
    if meta
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(DRY_RUN))
    {
        at_annotation(v, |v| {
            v.error(format!(
                "{DRY_RUN} is not supported on RequestAuthentication"
            ))
        });
    }
}
