//! `when` conditions: the attribute keys Istio's authorization supports and how each key's
//! values are checked (Istio's `security.ValidateAttribute`).

use super::Condition;
use super::validate::{each_value, ip_blocks, ports, service_accounts, string_matches};
use crate::validate::{Validate, Validator};

/// How the values of a condition key are checked.
enum ValueKind {
    /// Strings matched exactly / by prefix / suffix / presence.
    Text,
    /// IP addresses or CIDR blocks.
    Ip,
    /// Port numbers.
    Port,
    /// `account` or `namespace/account`.
    ServiceAccount,
}

/// Classifies a condition key the way Istio does; `Err` is Istio's rejection message.
fn classify(key: &str) -> Result<ValueKind, String> {
    // Map-valued attributes must name the entry: `request.headers[x-user]`.
    let map_key = |key: &str| {
        let open = key.find('[');
        match open {
            Some(o) if o > 0 && key.ends_with(']') && o + 2 < key.len() => Ok(ValueKind::Text),
            _ => Err(format!("bad key {key:?}: should have the format a[b]")),
        }
    };
    match key {
        k if k.starts_with("request.headers") => map_key(k),
        k if k.starts_with("request.experimental.inline.headers") => map_key(k),
        "source.ip" | "remote.ip" | "destination.ip" => Ok(ValueKind::Ip),
        "source.serviceAccount" => Ok(ValueKind::ServiceAccount),
        "source.namespace"
        | "source.principal"
        | "request.auth.principal"
        | "request.auth.audiences"
        | "request.auth.presenter"
        | "connection.sni" => Ok(ValueKind::Text),
        k if k.starts_with("request.auth.claims") => map_key(k),
        "destination.port" => Ok(ValueKind::Port),
        k if k.starts_with("experimental.envoy.filters.") => map_key(k),
        "destination.namespace" => Err(format!(
            "attribute {key} is replaced by the metadata.namespace (the policy's own namespace)"
        )),
        k if k.starts_with("destination.labels") => Err(format!(
            "attribute {key} is replaced by the workload selector"
        )),
        "destination.name" | "destination.user" => Err(format!(
            "deprecated attribute {key}: only supported in v1alpha1"
        )),
        _ => Err(format!(
            "unknown attribute {key:?}; supported keys are request.headers[<name>], source.ip, \
             remote.ip, source.namespace, source.serviceAccount, source.principal, \
             request.auth.principal, request.auth.audiences, request.auth.presenter, \
             request.auth.claims[<name>], destination.ip, destination.port, connection.sni and \
             experimental.envoy.filters.*[<name>]"
        )),
    }
}

impl Validate for Condition {
    fn validate(&self, v: &mut Validator) {
        if self.key.is_empty() {
            v.field("key", |v| v.missing("`key` must not be empty"));
            return;
        }
        if self.values.is_empty() && self.not_values.is_empty() {
            v.missing(format!(
                "at least one of `values` or `notValues` must be set for key {}",
                self.key
            ));
            return;
        }
        let kind = match classify(&self.key) {
            Ok(kind) => Some(kind),
            Err(e) => {
                v.field("key", |v| v.error(e));
                None
            }
        };
        for (name, list) in [("values", &self.values), ("notValues", &self.not_values)] {
            v.field(name, |v| match kind {
                Some(ValueKind::Text) => string_matches(v, list),
                Some(ValueKind::Ip) => ip_blocks(v, list),
                Some(ValueKind::Port) => ports(v, list),
                Some(ValueKind::ServiceAccount) => service_accounts(v, list),
                None => each_value(v, list, |_, _| {}),
            });
        }
    }
}
