//! Istio's own test tables for AuthorizationPolicy, ported to prove parity:
//! `TestValidateAuthorizationPolicy` (pkg/config/validation/validation_test.go, run there in
//! namespace "namespace"), and `TestValidateCondition` / `TestCheckValidPathTemplate`
//! (pkg/config/security/security_test.go), the value checks the policy applies.

use super::AuthorizationPolicy;
use serde_json::{Value, json};

use crate::validate::check;
use crate::validate::istio_table::{Want, run};
use Want::{Error, Valid, Warning};

/// Istio runs this table in namespace "namespace".
const NS: &str = "namespace";

fn assert_case(name: &str, spec: Value, want: Want) {
    run::<AuthorizationPolicy>(vec![(name, spec, want)], NS, true, |v| v);
}

/// The from/to pair Istio's targetRef cases share: a TCP-safe DENY rule.
fn principal_port_rule() -> Value {
    json!([{
        "from": [{"source": {"principals": ["temp"]}}],
        "to": [{"operation": {"ports": ["8080"], "methods": ["GET", "DELETE"]}}]
    }])
}

fn gateway(extra: Value) -> Value {
    let mut r = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "foo"});
    if let (Some(r), Some(e)) = (r.as_object_mut(), extra.as_object()) {
        r.extend(e.clone());
    }
    r
}

fn httpbin() -> Value {
    json!({"matchLabels": {"app": "httpbin"}})
}

#[test]
fn validate_authorization_policy_basics() {
    let cases = [
        (
            "good",
            json!({
                "selector": {"matchLabels": {"app": "httpbin", "version": "v1"}},
                "rules": [{
                    "from": [{"source": {"principals": ["sa1"]}}, {"source": {"principals": ["sa2"]}}],
                    "to": [{"operation": {"methods": ["GET"]}}, {"operation": {"methods": ["POST"]}}],
                    "when": [
                        {"key": "source.ip", "values": ["1.2.3.4", "5.6.7.0/24"]},
                        {"key": "request.headers[:authority]", "values": ["v1", "v2"]}
                    ]
                }]
            }),
            Valid,
        ),
        (
            "good serviceAccounts",
            json!({
                "selector": {"matchLabels": {"app": "httpbin", "version": "v1"}},
                "rules": [{"from": [
                    {"source": {"serviceAccounts": ["ns1/sa1", "ns2/sa2"]}},
                    {"source": {"principals": ["sa2"]}}
                ]}]
            }),
            Valid,
        ),
        (
            "serviceAccounts and namespaces",
            json!({
                "selector": {"matchLabels": {"app": "httpbin", "version": "v1"}},
                "rules": [{"from": [{"source": {"serviceAccounts": ["ns1/sa1", "ns2/sa2"], "namespaces": ["ns"]}}]}]
            }),
            Error,
        ),
        (
            "custom-good",
            json!({"action": "CUSTOM", "provider": {"name": "my-custom-authz"}, "rules": [{}]}),
            Valid,
        ),
        (
            "custom-empty-provider",
            json!({"action": "CUSTOM", "provider": {"name": ""}, "rules": [{}]}),
            Error,
        ),
        (
            "custom-nil-provider",
            json!({"action": "CUSTOM", "rules": [{}]}),
            Error,
        ),
        (
            "custom-invalid-rule",
            json!({
                "action": "CUSTOM",
                "provider": {"name": "my-custom-authz"},
                "rules": [{
                    "from": [{"source": {
                        "namespaces": ["ns"], "notNamespaces": ["ns"],
                        "principals": ["id"], "notPrincipals": ["id"],
                        "requestPrincipals": ["req"], "notRequestPrincipals": ["req"]
                    }}],
                    "when": [
                        {"key": "source.namespace", "values": ["source.namespace1"], "notValues": ["source.namespace2"]},
                        {"key": "source.principal", "values": ["source.principal1"], "notValues": ["source.principal2"]},
                        {"key": "request.auth.claims[a]", "values": ["claims1"], "notValues": ["claims2"]}
                    ]
                }]
            }),
            Error,
        ),
        (
            "provider-wrong-action",
            json!({"action": "ALLOW", "provider": {"name": ""}, "rules": [{}]}),
            Error,
        ),
        ("allow-rules-nil", json!({"action": "ALLOW"}), Valid),
        ("deny-rules-nil", json!({"action": "DENY"}), Error),
        (
            "selector-empty-value",
            json!({"selector": {"matchLabels": {"app": "", "version": "v1"}}}),
            Valid,
        ),
        (
            "selector-empty-key",
            json!({"selector": {"matchLabels": {"app": "httpbin", "": "v1"}}}),
            Error,
        ),
        ("selector-empty-labels", json!({"selector": {}}), Warning),
        (
            "selector-wildcard-value",
            json!({"selector": {"matchLabels": {"app": "httpbin-*"}}}),
            Error,
        ),
        (
            "selector-wildcard-key",
            json!({"selector": {"matchLabels": {"app-*": "httpbin"}}}),
            Error,
        ),
    ];
    for (name, spec, want) in cases {
        assert_case(name, spec, want);
    }
}

/// The `istio.io/dry-run` cases: Istio checks the annotation inside
/// `ValidateAuthorizationPolicy`, but the annotation is outside the spec that validation
/// sees here, so only the spec part of each case is asserted.
#[test]
fn validate_authorization_policy_dry_run() {
    // dry-run-valid-allow ("true" annotation) and dry-run-valid-deny ("false").
    assert_case("dry-run-valid-allow", json!({"action": "ALLOW"}), Valid);
    assert_case(
        "dry-run-valid-deny",
        json!({"action": "DENY", "rules": [{}]}),
        Valid,
    );
    // dry-run-invalid-value: the annotation is metadata, checked with the whole object
    // (tests/load.rs `dry_run_annotation_follows_istio`); the spec alone is valid.
    assert_case("dry-run-invalid-value", json!({"action": "ALLOW"}), Valid);
    // dry-run-invalid-action-custom: a CUSTOM policy without rules or provider is rejected
    // on its own, whatever the annotation.
    assert_case(
        "dry-run-invalid-action-custom",
        json!({"action": "CUSTOM"}),
        Error,
    );
    // dry-run-invalid-action-audit: checked with the whole object (tests/load.rs
    // `dry_run_annotation_follows_istio`); the spec alone is valid.
    assert_case(
        "dry-run-invalid-action-audit",
        json!({"action": "AUDIT"}),
        Valid,
    );
}

#[test]
fn validate_authorization_policy_target_refs() {
    let cases = [
        (
            "target-ref-good",
            json!({"action": "DENY", "targetRef": gateway(json!({})), "rules": principal_port_rule()}),
            Valid,
        ),
        (
            "target-refs-good",
            json!({"action": "DENY", "targetRefs": [gateway(json!({}))], "rules": principal_port_rule()}),
            Valid,
        ),
        (
            "target-refs-good-service",
            json!({
                "action": "DENY",
                "targetRefs": [{"group": "", "kind": "Service", "name": "foo"}],
                "rules": principal_port_rule()
            }),
            Valid,
        ),
        (
            "target-ref-non-empty-namespace",
            json!({"action": "DENY", "targetRef": gateway(json!({"namespace": "bar"})), "rules": principal_port_rule()}),
            Error,
        ),
        (
            "target-ref-empty-name",
            json!({"action": "DENY", "targetRef": gateway(json!({"name": ""})), "rules": principal_port_rule()}),
            Error,
        ),
        (
            "target-ref-wrong-group",
            json!({"action": "DENY", "targetRef": gateway(json!({"group": "wrong-group"})), "rules": principal_port_rule()}),
            Error,
        ),
        (
            "target-ref-wrong-kind",
            json!({"action": "DENY", "targetRef": gateway(json!({"kind": "wrong-kind"})), "rules": principal_port_rule()}),
            Error,
        ),
        (
            "target-ref-and-selector-cannot-both-be-set",
            json!({
                "action": "DENY", "targetRef": gateway(json!({})), "selector": httpbin(), "rules": principal_port_rule()
            }),
            Error,
        ),
        (
            "target-refs-and-selector-cannot-both-be-set",
            json!({
                "action": "DENY", "targetRefs": [gateway(json!({}))], "selector": httpbin(), "rules": principal_port_rule()
            }),
            Error,
        ),
    ];
    for (name, spec, want) in cases {
        assert_case(name, spec, want);
    }
}

#[test]
fn validate_authorization_policy_from_to() {
    // differs: from-empty / to-empty set `from: []` / `to: []`, a non-nil empty Go slice that
    // Istio rejects ("`from` must not be empty"). Here `[]` loads exactly like an absent list,
    // so the two cannot be told apart and the rule (which matches every request) is accepted.
    assert_case("from-empty", json!({"rules": [{"from": []}]}), Valid);
    assert_case("to-empty", json!({"rules": [{"to": []}]}), Valid);
    let cases = [
        ("source-nil", json!({"rules": [{"from": [{}]}]}), Error),
        (
            "source-empty",
            json!({"rules": [{"from": [{"source": {}}]}]}),
            Error,
        ),
        ("operation-nil", json!({"rules": [{"to": [{}]}]}), Error),
        (
            "operation-empty",
            json!({"rules": [{"to": [{"operation": {}}]}]}),
            Error,
        ),
    ];
    for (name, spec, want) in cases {
        assert_case(name, spec, want);
    }
}

#[test]
fn validate_authorization_policy_empty_values() {
    // "<Field>-empty": a list holding an empty string is rejected for every source field...
    for (field, first) in [
        ("principals", "p1"),
        ("notPrincipals", "p1"),
        ("requestPrincipals", "p1"),
        ("notRequestPrincipals", "p1"),
        ("namespaces", "ns"),
        ("serviceAccounts", "ns/sa"),
        ("notNamespaces", "ns"),
        ("ipBlocks", "1.2.3.4"),
        ("notIpBlocks", "1.2.3.4"),
        ("remoteIpBlocks", "1.2.3.4"),
        ("notRemoteIpBlocks", "1.2.3.4"),
    ] {
        let spec = json!({"rules": [{"from": [{"source": {field: [first, ""]}}]}]});
        assert_case(&format!("{field}-empty"), spec, Error);
    }
    // ...and every operation field.
    for (field, first) in [
        ("hosts", "host"),
        ("notHosts", "host"),
        ("ports", "80"),
        ("notPorts", "80"),
        ("methods", "GET"),
        ("notMethods", "GET"),
        ("paths", "/path"),
        ("notPaths", "/path"),
    ] {
        let spec = json!({"rules": [{"to": [{"operation": {field: [first, ""]}}]}]});
        assert_case(&format!("{field}-empty"), spec, Error);
    }
}

#[test]
fn validate_authorization_policy_values_and_conditions() {
    let cases = [
        (
            "value-empty",
            json!({"rules": [{"when": [{"key": "request.headers[:authority]", "values": ["v1", ""]}]}]}),
            Error,
        ),
        (
            "invalid ip and port in ipBlocks",
            json!({"rules": [{
                "from": [{"source": {"ipBlocks": ["1.2.3.4", "ip1"], "notIpBlocks": ["5.6.7.8", "ip2"]}}],
                "to": [{"operation": {"ports": ["80", "port1"], "notPorts": ["90", "port2"]}}]
            }]}),
            Error,
        ),
        (
            "invalid ip and port in remoteIpBlocks",
            json!({"rules": [{
                "from": [{"source": {"remoteIpBlocks": ["1.2.3.4", "ip1"], "notRemoteIpBlocks": ["5.6.7.8", "ip2"]}}],
                "to": [{"operation": {"ports": ["80", "port1"], "notPorts": ["90", "port2"]}}]
            }]}),
            Error,
        ),
        (
            "condition-key-missing",
            json!({"selector": httpbin(), "rules": [{"when": [{"values": ["v1", "v2"]}]}]}),
            Error,
        ),
        (
            "condition-key-empty",
            json!({"selector": httpbin(), "rules": [{"when": [{"key": "", "values": ["v1", "v2"]}]}]}),
            Error,
        ),
        (
            "condition-value-missing",
            json!({"selector": httpbin(), "rules": [{"when": [{"key": "source.principal"}]}]}),
            Error,
        ),
        (
            "condition-value-invalid",
            json!({"rules": [{"when": [{"key": "source.ip", "values": ["a.b.c.d"]}]}]}),
            Error,
        ),
        (
            "condition-notValue-invalid",
            json!({"rules": [{"when": [{"key": "source.ip", "notValues": ["a.b.c.d"]}]}]}),
            Error,
        ),
        (
            "condition-unknown",
            json!({"selector": httpbin(), "rules": [{"when": [{"key": "key1", "values": ["v1"]}]}]}),
            Error,
        ),
    ];
    for (name, spec, want) in cases {
        assert_case(name, spec, want);
    }
}

#[test]
fn validate_authorization_policy_l7_deny() {
    let deny = |rule: Value| json!({"action": "DENY", "selector": httpbin(), "rules": [rule]});
    let cases = [
        (
            "L7DenyWithFrom",
            deny(json!({"from": [{"source": {"requestPrincipals": ["example.com/sub-1"]}}]})),
            Warning,
        ),
        (
            "L7DenyWithTo",
            deny(json!({"to": [{"operation": {"methods": ["GET", "DELETE"]}}]})),
            Warning,
        ),
        (
            "L7DenyWithFromAndTo",
            deny(json!({
                "from": [{"source": {"principals": ["temp"]}}],
                "to": [{"operation": {"methods": ["GET", "DELETE"]}}]
            })),
            Warning,
        ),
    ];
    for (name, spec, want) in cases {
        assert_case(name, spec, want);
    }
    // L7DenyWithFromAndToWithPort: Istio expects neither error nor warning.
    let p: AuthorizationPolicy =
        serde_json::from_value(deny(principal_port_rule()[0].clone())).expect("spec deserializes");
    let f = check(&p, NS);
    assert!(f.is_empty(), "L7DenyWithFromAndToWithPort: {f:#?}");
}

/// `TestValidateCondition` (security_test.go): `ValidateAttribute(key, values)`, run here as
/// the only condition of an ALLOW rule.
#[test]
fn validate_condition() {
    let cases: &[(&str, &[&str], bool)] = &[
        ("request.headers[:authority]", &["productpage", ""], true),
        (
            "request.experimental.inline.headers[:authority]",
            &["productpage", ""],
            true,
        ),
        ("request.headers[:authority]", &["productpage"], false),
        (
            "request.experimental.inline.headers[:authority]",
            &["productpage"],
            false,
        ),
        ("request.headers[]", &["productpage"], true),
        (
            "request.experimental.inline.headers[]",
            &["productpage"],
            true,
        ),
        ("source.ip", &["1.2.3.4", "5.6.7.0/24"], false),
        ("source.ip", &["a.b.c.d"], true),
        ("remote.ip", &["1.2.3.4", "5.6.7.0/24"], false),
        ("remote.ip", &["a.b.c.d"], true),
        ("source.namespace", &["value"], false),
        ("source.user", &["value"], true),
        ("source.principal", &["value"], false),
        ("source.serviceAccount", &["too/many/slashes"], true),
        ("source.serviceAccount", &["/emptyns"], true),
        ("source.serviceAccount", &["emptysa/"], true),
        ("source.serviceAccount", &["ns/sa"], false),
        ("source.serviceAccount", &["sa"], false),
        ("request.auth.principal", &["value"], false),
        ("request.auth.audiences", &["value"], false),
        ("request.auth.presenter", &["value"], false),
        ("request.auth.claims[id]", &["123"], false),
        ("request.auth.claims[]", &["value"], true),
        ("destination.ip", &["1.2.3.4", "5.6.7.0/24"], false),
        ("destination.ip", &["a.b.c.d"], true),
        ("destination.port", &["80", "90"], false),
        ("destination.port", &["80", "x"], true),
        ("destination.labels[app]", &["value"], true),
        ("destination.name", &["value"], true),
        ("destination.namespace", &["value"], true),
        ("destination.user", &["value"], true),
        ("connection.sni", &["value"], false),
        ("experimental.envoy.filters.a.b[c]", &["value"], false),
        ("experimental.envoy.filters.a.b.x", &["value"], true),
    ];
    for (key, values, want_error) in cases {
        let spec = json!({"rules": [{"when": [{"key": key, "values": values}]}]});
        let want = if *want_error { Error } else { Valid };
        assert_case(&format!("condition {key} {values:?}"), spec, want);
    }
}

/// `TestCheckValidPathTemplate` (security_test.go), run as `to.operation.paths`.
#[test]
fn check_valid_path_template() {
    let cases: &[(&str, &str, bool)] = &[
        ("valid path template - matchOneTemplate", "/{*}/foo", false),
        (
            "valid path template - matchOneTemplate with trailing slash",
            "/{*}/foo/",
            false,
        ),
        (
            "valid path template - matchAnyTemplate",
            "/foo/{**}/bar",
            false,
        ),
        (
            "valid path template - matchAnyTemplate at end",
            "/foo/bar/{**}",
            false,
        ),
        (
            "matchAnyTemplate with additional chars",
            "/foo/{**}buzz/bar",
            true,
        ),
        ("empty curly braces", "/{*}/foo/{}/bar", true),
        ("matchOneTemplate with `*`", "/foo/{*}/bar/*", true),
        ("matchOneTemplate with `**`", "/foo/{*}/bar/**/buzz", true),
        ("named var: {buzz}", "/foo/{buzz}/bar", true),
        ("only named var: {buzz}", "/{buzz}", true),
        (
            "matchAnyTemplate with named var: {buzz}",
            "/foo/{buzz}/bar/{**}",
            true,
        ),
        (
            "matchAnyTemplate with named var: {buzz=*}",
            "/foo/{buzz=*}/bar/{**}",
            true,
        ),
        (
            "matchAnyTemplate with named var: {buzz=**}",
            "/{*}/foo/{buzz=**}/bar",
            true,
        ),
        (
            "matchAnyTemplate with additional chars at end",
            "/{*}/foo/{**}bar",
            true,
        ),
        (
            "matchOneTemplate with file extension",
            "/{*}/foo/{*}.txt",
            true,
        ),
        (
            "matchOneTemplate with unmatched open curly brace",
            "/{*}/foo/{temp",
            true,
        ),
        (
            "matchOneTemplate with unmatched closed curly brace",
            "/{*}/foo/temp}/bar",
            true,
        ),
        (
            "unmatched closed curly brace and `*`",
            "/{*}/foo/temp}/*",
            true,
        ),
        (
            "matchAnyTemplate is not the last operator",
            "/{**}/foo/temp/{*}/bar",
            true,
        ),
        ("simple multiple matchAnyTemplates", "/{**}/{**}", true),
        (
            "multiple matchAnyTemplates",
            "/{**}/foo/temp/{**}/bar",
            true,
        ),
        ("invalid literal in path template", "/{*}/foo/?abc", true),
    ];
    for (name, path, want_error) in cases {
        let spec = json!({"rules": [{"to": [{"operation": {"paths": [path]}}]}]});
        let want = if *want_error { Error } else { Valid };
        assert_case(name, spec, want);
    }
}
