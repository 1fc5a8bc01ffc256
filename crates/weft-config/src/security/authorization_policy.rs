//! `security.istio.io` AuthorizationPolicy: which requests a workload accepts (ALLOW),
//! refuses (DENY), marks for auditing (AUDIT) or hands to an external authorizer (CUSTOM).
//! The types mirror `security/v1beta1/authorization_policy.proto` field for field so any
//! policy Istio accepts loads here; `validate` holds Istio's webhook rules for it.
#![allow(clippy::upper_case_acronyms)]

mod condition;
pub(crate) mod targeting;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_istio;
mod validate;

use crate::selector::{PolicyTargetReference, WorkloadSelector};
use crate::types::is_default;
use serde::{Deserialize, Serialize};

/// Access control for the selected workloads: a list of rules and what to do when one matches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AuthorizationPolicy {
    /// Workloads (by label) the policy applies to; unset means every workload in the namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<WorkloadSelector>,
    /// A single Gateway API resource the policy attaches to instead of a selector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<PolicyTargetReference>,
    /// Resources (Gateway, Service, ServiceEntry, GatewayClass) the policy attaches to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub target_refs: Vec<PolicyTargetReference>,
    /// Rules matched against each request; a request matches when any one rule matches.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    /// What to do with a matching request; ALLOW when unset.
    #[serde(skip_serializing_if = "is_default")]
    pub action: Action,
    /// The external authorizer (from MeshConfig `extensionProviders`) a CUSTOM policy delegates to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<ExtensionProvider>,
}

/// The operation an AuthorizationPolicy performs on requests that match its rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Action {
    /// Allow only requests that match a rule (requests matching no ALLOW policy are denied
    /// once any ALLOW policy selects the workload).
    #[default]
    Allow,
    /// Deny requests that match any rule.
    Deny,
    /// Mark matching requests for auditing by a telemetry plugin; does not affect the decision.
    Audit,
    /// Let the named extension provider decide for matching requests, before DENY and ALLOW.
    Custom,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Action::Allow => "ALLOW",
            Action::Deny => "DENY",
            Action::Audit => "AUDIT",
            Action::Custom => "CUSTOM",
        })
    }
}

/// Names the MeshConfig extension provider that handles a CUSTOM policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ExtensionProvider {
    /// Name of an entry in MeshConfig `extensionProviders`.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
}

/// Matches requests from any listed source, performing any listed operation, when every
/// condition holds; an empty rule matches every request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Rule {
    /// Sources of the request (any one must match); unset allows any source.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<RuleFrom>,
    /// Operations the request performs (any one must match); unset allows any operation.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<RuleTo>,
    /// Additional attribute conditions that must all hold.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<Condition>,
}

/// `Rule.From`: one entry of a rule's `from` list. (Named `RuleFrom` because `From` would
/// shadow the prelude trait.)
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RuleFrom {
    /// The source identities to match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

/// `Rule.To`: one entry of a rule's `to` list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RuleTo {
    /// The request operation to match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
}

/// Source identities of a request; every field that is set must match (fields are ANDed,
/// values within a field are ORed). Values support exact, `prefix*`, `*suffix` and `*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Source {
    /// Peer identities from the mTLS certificate, `<trust domain>/ns/<namespace>/sa/<account>`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<String>,
    /// Peer identities that must not match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_principals: Vec<String>,
    /// Request identities from a validated JWT, `<iss>/<sub>`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub request_principals: Vec<String>,
    /// Request identities that must not match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_request_principals: Vec<String>,
    /// Namespaces of the peer, from the mTLS certificate.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Peer namespaces that must not match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_namespaces: Vec<String>,
    /// Kubernetes service accounts of the peer, `account` or `namespace/account` (no wildcards).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub service_accounts: Vec<String>,
    /// Peer service accounts that must not match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_service_accounts: Vec<String>,
    /// Source IPs or CIDR blocks of the connection's IP packets.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ip_blocks: Vec<String>,
    /// Source IPs or CIDR blocks that must not match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_ip_blocks: Vec<String>,
    /// Original client IPs or CIDR blocks, from X-Forwarded-For or the PROXY protocol.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remote_ip_blocks: Vec<String>,
    /// Original client IPs or CIDR blocks that must not match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_remote_ip_blocks: Vec<String>,
}

/// What a request does; every field that is set must match (fields are ANDed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Operation {
    /// HTTP hosts (Host/:authority), matched case-insensitively. HTTP only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// HTTP hosts that must not match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_hosts: Vec<String>,
    /// Destination ports of the connection, as decimal strings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    /// Destination ports that must not match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_ports: Vec<String>,
    /// HTTP methods (always `POST` for gRPC). HTTP only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// HTTP methods that must not match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_methods: Vec<String>,
    /// Normalized HTTP paths (`/package.Service/Method` for gRPC); `{*}`/`{**}` templates allowed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// HTTP paths that must not match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_paths: Vec<String>,
}

/// An extra condition on a request attribute (`request.headers[x]`, `source.ip`, ...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Condition {
    /// The Istio attribute name, e.g. `request.auth.claims[iss]`.
    #[serde(skip_serializing_if = "is_default")]
    pub key: String,
    /// Values of which the attribute must match one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// Values the attribute must match none of.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_values: Vec<String>,
}
