//! `security.istio.io` PeerAuthentication: whether the selected workloads accept plaintext,
//! mutual TLS or both, for the whole workload or per port. Types follow
//! `security/v1beta1/peer_authentication.proto`; validation follows Istio's
//! `ValidatePeerAuthentication` and the CRD's CEL rules.
#![allow(clippy::upper_case_acronyms)]

#[cfg(test)]
mod tests_istio;

use crate::networking::gateway::ServerTLSSettings;
use crate::security::authorization_policy::targeting::workload_selector;
use crate::selector::WorkloadSelector;
use crate::types::is_default;
use crate::validate::{Validate, Validator, rules};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How traffic to the selected workloads is authenticated at the transport layer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PeerAuthentication {
    /// Workloads (by label) the policy applies to; unset means the whole namespace (or the
    /// mesh, in the root namespace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<WorkloadSelector>,
    /// Mutual TLS settings for the workload; unset inherits from the parent policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtls: Option<MutualTLS>,
    /// Per-port mutual TLS settings, keyed by port number; only allowed with a selector.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub port_level_mtls: BTreeMap<u32, MutualTLS>,
    /// Per-port server TLS settings, keyed by port number (not in Istio's documentation).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub port_level_tls: BTreeMap<u32, ServerTLSSettings>,
}

/// Mutual TLS settings of a workload or port.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MutualTLS {
    /// The mTLS mode; UNSET inherits from the parent policy.
    #[serde(skip_serializing_if = "is_default")]
    pub mode: Mode,
}

/// `PeerAuthentication.MutualTLS.Mode`: which connections a workload accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Mode {
    /// Inherit from the parent policy; PERMISSIVE if there is none.
    #[default]
    Unset,
    /// Plaintext only: connections are not tunneled through mTLS.
    Disable,
    /// Both plaintext and mTLS connections are accepted.
    Permissive,
    /// Only mTLS connections (client certificate required) are accepted.
    Strict,
}

impl Validate for PeerAuthentication {
    fn validate(&self, v: &mut Validator) {
        workload_selector(v, &self.selector);
        let has_labels = self
            .selector
            .as_ref()
            .is_some_and(|s| !s.match_labels.is_empty());
        if !self.port_level_mtls.is_empty() && !has_labels {
            v.field("portLevelMtls", |v| {
                v.error(
                    "portLevelMtls requires a selector with matchLabels: a mesh- or \
                     namespace-wide PeerAuthentication cannot have port level mTLS",
                )
            });
        }
        for (name, ports) in [
            (
                "portLevelMtls",
                self.port_level_mtls.keys().collect::<Vec<_>>(),
            ),
            ("portLevelTls", self.port_level_tls.keys().collect()),
        ] {
            v.field(name, |v| {
                for port in ports {
                    v.key(&port.to_string(), |v| rules::port(v, *port));
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{Finding, Severity};
    use crate::validate::check;
    use serde_json::{Value, json};

    fn run(spec: Value) -> Vec<Finding> {
        let p: PeerAuthentication = serde_json::from_value(spec).expect("spec deserializes");
        check(&p, "default")
    }

    fn summary(f: &[Finding]) -> Vec<(String, Severity)> {
        f.iter().map(|f| (f.path.to_string(), f.severity)).collect()
    }

    #[test]
    fn seed_strict_is_clean() {
        let f = run(json!({"mtls": {"mode": "STRICT"}}));
        assert!(f.is_empty(), "{f:#?}");
    }

    #[test]
    fn istio_valid_testdata() {
        let f = run(json!({
            "selector": {"matchLabels": {"foo": "bar"}},
            "mtls": {"mode": "PERMISSIVE"},
            "portLevelMtls": {"80": {"mode": "STRICT"}}
        }));
        assert!(f.is_empty(), "{f:#?}");
        // "Weird but valid": Istio accepts it with a warning.
        let f = run(json!({"selector": {}}));
        assert_eq!(
            summary(&f),
            vec![("selector".to_string(), Severity::Warning)]
        );
    }

    #[test]
    fn istio_invalid_testdata() {
        // Unknown modes and non-numeric ports fail to deserialize, as in Istio.
        assert!(
            serde_json::from_value::<PeerAuthentication>(json!({"mtls": {"mode": "BLAH"}}))
                .is_err()
        );
        assert!(
            serde_json::from_value::<PeerAuthentication>(json!({
                "selector": {"matchLabels": {"foo": "bar"}},
                "portLevelMtls": {"acd": {"mode": "STRICT"}}
            }))
            .is_err()
        );

        let f = run(json!({"portLevelMtls": {"80": {"mode": "STRICT"}}}));
        assert_eq!(
            summary(&f),
            vec![("portLevelMtls".to_string(), Severity::Error)]
        );
        let f = run(json!({"selector": {}, "portLevelMtls": {"80": {"mode": "STRICT"}}}));
        assert_eq!(
            summary(&f),
            vec![
                ("selector".to_string(), Severity::Warning),
                ("portLevelMtls".to_string(), Severity::Error)
            ]
        );

        let f = run(json!({
            "selector": {"matchLabels": {"foo": "bar"}},
            "portLevelMtls": {"0": {"mode": "STRICT"}, "42949672": {"mode": "STRICT"}, "8080": {}}
        }));
        assert_eq!(
            summary(&f),
            vec![
                ("portLevelMtls[0]".to_string(), Severity::Error),
                ("portLevelMtls[42949672]".to_string(), Severity::Error)
            ]
        );
    }

    #[test]
    fn port_level_tls_ports_are_checked() {
        let f = run(json!({
            "selector": {"matchLabels": {"foo": "bar"}},
            "portLevelTls": {"70000": {}, "8443": {}}
        }));
        assert_eq!(
            summary(&f),
            vec![("portLevelTls[70000]".to_string(), Severity::Error)]
        );
    }

    #[test]
    fn round_trips_through_json() {
        let full = json!({
            "selector": {"matchLabels": {"app": "finance"}},
            "mtls": {"mode": "STRICT"},
            "portLevelMtls": {"8080": {"mode": "DISABLE"}, "9090": {"mode": "PERMISSIVE"}},
            "portLevelTls": {"8443": {}}
        });
        let p: PeerAuthentication = serde_json::from_value(full.clone()).expect("deserializes");
        assert_eq!(
            p.port_level_mtls.get(&8080).map(|m| m.mode),
            Some(Mode::Disable)
        );
        let back = serde_json::to_value(&p).expect("serializes");
        assert_eq!(back, full);
        assert_eq!(
            serde_json::from_value::<PeerAuthentication>(back).ok(),
            Some(p)
        );
        assert_eq!(
            serde_json::to_value(PeerAuthentication::default()).ok(),
            Some(json!({}))
        );
    }
}
