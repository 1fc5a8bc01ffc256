//! Istio's own test table for PeerAuthentication, ported to prove parity:
//! `TestValidatePeerAuthentication` (pkg/config/validation/validation_test.go, run there in
//! namespace "bar"; the policy name it varies does not affect the outcome).

use super::PeerAuthentication;
use serde_json::{Value, json};

use crate::validate::istio_table::{Want, run};
use Want::{Error, Valid, Warning};

/// Checks every case and reports all that differ from Istio at once.
fn table(cases: Vec<(&str, Value, Want)>) {
    run::<PeerAuthentication>(cases, "bar", true, |v| v);
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
