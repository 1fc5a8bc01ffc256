use super::*;
use crate::diag::{Code, Finding, Severity};
use crate::validate::check;
use serde_json::{Value, json};

fn run(spec: Value) -> Vec<Finding> {
    let p: AuthorizationPolicy = serde_json::from_value(spec).expect("spec deserializes");
    check(&p, "default")
}

/// `(path, severity)` of every finding, for compact assertions.
fn summary(f: &[Finding]) -> Vec<(String, Severity)> {
    f.iter().map(|f| (f.path.to_string(), f.severity)).collect()
}

fn has(f: &[Finding], path: &str, sev: Severity) -> bool {
    f.iter()
        .any(|f| f.path.to_string() == path && f.severity == sev)
}

fn only(f: &[Finding], path: &str, sev: Severity) {
    assert_eq!(summary(f), vec![(path.to_string(), sev)], "{f:#?}");
}

#[test]
fn seed_coordinator_policy_is_clean() {
    let f = run(json!({
        "selector": {"matchLabels": {"app": "coordinator"}},
        "rules": [{
            "from": [{"source": {"principals": [
                "cluster.local/ns/tai-system/sa/governor",
                "cluster.local/ns/tai-system/sa/scheduler"
            ]}}],
            "to": [{"operation": {"methods": ["GET", "POST"], "paths": ["/tai.Governor/*"]}}]
        }]
    }));
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn seed_rules_with_only_from_and_only_to_are_clean() {
    let f = run(json!({
        "rules": [
            {"from": [{"source": {"namespaces": ["tai-system"]}}]},
            {"to": [{"operation": {"methods": ["GET"]}}]}
        ]
    }));
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn istio_valid_testdata_full() {
    let f = run(json!({
        "selector": {"matchLabels": {"app": "httpbin"}},
        "rules": [{
            "from": [{"source": {
                "principals": ["principal", "principal-prefix-*", "*-suffix-principal", "*"],
                "requestPrincipals": ["requestPrincipals", "requestPrincipals-prefix-*", "*-suffix-requestPrincipals", "*"],
                "namespaces": ["ns", "ns-prefix-*", "*-ns-suffix", "*"],
                "ipBlocks": ["1.2.3.4", "5.6.0.0/16"],
                "remoteIpBlocks": ["1.2.3.4", "5.6.0.0/16"],
                "notPrincipals": ["not-principal", "not-principal-prefix-*", "*-not-suffix-principal", "*"],
                "notRequestPrincipals": ["not-requestPrincipals", "*"],
                "notNamespaces": ["not-ns", "not-ns-prefix-*", "*-not-ns-suffix", "*"],
                "notIpBlocks": ["9.0.0.1", "9.2.0.0/16"],
                "notRemoteIpBlocks": ["9.0.0.1", "9.2.0.0/16"]
            }}],
            "to": [{"operation": {
                "methods": ["method", "method-prefix-*", "*-suffix-method", "*"],
                "hosts": ["exact.com", "*.suffix.com", "prefix.*", "*"],
                "ports": ["80", "90"],
                "paths": ["/exact", "/prefix/*", "*/suffix", "*", "/path/template/{*}", "/{**}/path/template"],
                "notMethods": ["not-method", "*"],
                "notHosts": ["not-exact.com", "*.not-suffix.com", "not-prefix.*", "*"],
                "notPorts": ["8000", "9000"],
                "notPaths": ["/not-exact", "/not-prefix/*", "*/not-suffix", "*", "/not-path/template/{*}", "/{**}/not-path/template"]
            }}],
            "when": [
                {"key": "request.headers[X-header]", "values": ["header", "header-prefix-*", "*"], "notValues": ["not-header"]},
                {"key": "source.ip", "values": ["10.10.10.10", "192.168.10.0/24"], "notValues": ["90.10.10.10"]},
                {"key": "remote.ip", "values": ["10.10.10.10", "192.168.10.0/24"]},
                {"key": "source.namespace", "values": ["ns", "ns-prefix-*"]},
                {"key": "source.principal", "values": ["principal", "*"]},
                {"key": "request.auth.principal", "values": ["requestPrincipals", "https://example.com/*"]},
                {"key": "request.auth.audiences", "values": ["audiences"]},
                {"key": "request.auth.presenter", "values": ["presenter"]},
                {"key": "request.auth.claims[iss]", "values": ["iss", "iss-prefix-*"]},
                {"key": "request.auth.claims[nested1][nested2]", "values": ["nested"]},
                {"key": "destination.ip", "values": ["10.10.10.10", "192.168.10.0/24"]},
                {"key": "destination.port", "values": ["91", "92"], "notValues": ["9001"]},
                {"key": "connection.sni", "values": ["exact.com", "*.suffix.com", "prefix.*", "*"]},
                {"key": "experimental.envoy.filters.a.b[c]", "values": ["exact", "prefix-*"]},
                {"key": "source.serviceAccount", "values": ["default/productpage", "sleep"]}
            ]
        }]
    }));
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn istio_valid_testdata_service_accounts_split_across_sources() {
    let f = run(json!({"rules": [{"from": [
        {"source": {"serviceAccounts": ["baz/sa", "sa"]}},
        {"source": {"principals": ["bar"]}},
        {"source": {"namespaces": ["bar"]}}
    ]}]}));
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn istio_invalid_testdata_service_accounts_with_namespaces_or_principals() {
    for other in [
        json!({"namespaces": ["bar"]}),
        json!({"principals": ["bar"]}),
    ] {
        let mut src = other.as_object().cloned().unwrap_or_default();
        src.insert("serviceAccounts".into(), json!(["bar/sa"]));
        let f = run(json!({"rules": [{"from": [{"source": src}]}]}));
        only(&f, "rules[0].from[0].source", Severity::Error);
        assert_eq!(f[0].code, Code::Conflict);
    }
}

#[test]
fn allow_nothing_and_allow_all_are_valid() {
    assert!(run(json!({})).is_empty());
    assert!(run(json!({"rules": [{}]})).is_empty());
    assert!(run(json!({"action": "AUDIT", "rules": [{"to": [{"operation": {"paths": ["/user/profile/*"]}}]}]})).is_empty());
}

#[test]
fn custom_requires_provider_and_rules() {
    let f = run(json!({"action": "CUSTOM", "rules": [{}]}));
    only(&f, "provider", Severity::Error);
    assert_eq!(f[0].code, Code::MissingField);

    let f = run(json!({"action": "CUSTOM", "provider": {}, "rules": [{}]}));
    only(&f, "provider.name", Severity::Error);

    let f = run(json!({"action": "CUSTOM", "provider": {"name": "ext-authz"}}));
    only(&f, "rules", Severity::Error);

    let f = run(
        json!({"action": "CUSTOM", "provider": {"name": "ext-authz"},
        "rules": [{"to": [{"operation": {"paths": ["/admin/*"]}}]}]}),
    );
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn provider_requires_custom_action() {
    for action in ["ALLOW", "DENY", "AUDIT"] {
        let f = run(
            json!({"action": action, "provider": {"name": "x"}, "rules": [{"from": [{"source": {"ipBlocks": ["1.2.3.4"]}}]}]}),
        );
        only(&f, "provider", Severity::Error);
        assert_eq!(f[0].code, Code::Conflict);
    }
}

#[test]
fn custom_rejects_identity_attributes() {
    let f = run(json!({
        "action": "CUSTOM", "provider": {"name": "ext"},
        "rules": [{
            "from": [{"source": {"principals": ["a"], "notNamespaces": ["b"], "serviceAccounts": ["c"], "ipBlocks": ["1.2.3.4"]}}],
            "when": [
                {"key": "source.namespace", "values": ["x"]},
                {"key": "request.auth.claims[iss]", "values": ["x"]},
                {"key": "source.ip", "values": ["1.2.3.4"]}
            ]
        }]
    }));
    for p in [
        "rules[0].from[0].source.principals",
        "rules[0].from[0].source.notNamespaces",
        "rules[0].from[0].source.serviceAccounts",
        "rules[0].when[0].key",
        "rules[0].when[1].key",
    ] {
        assert!(has(&f, p, Severity::Error), "{p}: {f:#?}");
    }
    // serviceAccounts together with principals is also a conflict on its own.
    assert!(has(&f, "rules[0].from[0].source", Severity::Error));
    assert!(!has(&f, "rules[0].when[2].key", Severity::Error));
}

#[test]
fn deny_needs_rules() {
    let f = run(json!({"action": "DENY"}));
    only(&f, "rules", Severity::Error);
}

#[test]
fn deny_with_only_http_attributes_warns() {
    // Only HTTP attributes in `to`: TCP traffic would be denied outright.
    let f =
        run(json!({"action": "DENY", "rules": [{"to": [{"operation": {"methods": ["POST"]}}]}]}));
    only(&f, "rules[0]", Severity::Warning);
    // Scoped to a port: fine.
    let f = run(
        json!({"action": "DENY", "rules": [{"to": [{"operation": {"methods": ["POST"], "ports": ["8080"]}}]}]}),
    );
    assert!(f.is_empty(), "{f:#?}");
    // `from` with only JWT principals is HTTP-only too.
    let f = run(
        json!({"action": "DENY", "rules": [{"from": [{"source": {"requestPrincipals": ["*"]}}]}]}),
    );
    only(&f, "rules[0]", Severity::Warning);
    // `from` with mTLS identities works for TCP.
    let f =
        run(json!({"action": "DENY", "rules": [{"from": [{"source": {"namespaces": ["dev"]}}]}]}));
    assert!(f.is_empty(), "{f:#?}");
    // The same rules under ALLOW never warn.
    let f = run(json!({"rules": [{"to": [{"operation": {"methods": ["POST"]}}]}]}));
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn from_and_to_entries_must_not_be_empty() {
    let f = run(json!({"rules": [{"from": [{}], "to": [{}]}]}));
    assert_eq!(
        summary(&f),
        vec![
            ("rules[0].from[0].source".to_string(), Severity::Error),
            ("rules[0].to[0].operation".to_string(), Severity::Error),
        ]
    );
    let f = run(json!({"rules": [{"from": [{"source": {}}], "to": [{"operation": {}}]}]}));
    assert_eq!(
        summary(&f),
        vec![
            ("rules[0].from[0].source".to_string(), Severity::Error),
            ("rules[0].to[0].operation".to_string(), Severity::Error),
        ]
    );
}

#[test]
fn ip_blocks_must_be_ips_or_cidrs() {
    let f = run(json!({"rules": [{"from": [{"source": {
        "ipBlocks": ["1.2.3.4", "10.0.0.0/33"],
        "notIpBlocks": ["not-an-ip"],
        "remoteIpBlocks": ["::1/128", ""],
        "notRemoteIpBlocks": ["1.2.3"]
    }}]}]}));
    assert_eq!(
        summary(&f),
        vec![
            (
                "rules[0].from[0].source.ipBlocks[1]".to_string(),
                Severity::Error
            ),
            (
                "rules[0].from[0].source.notIpBlocks[0]".to_string(),
                Severity::Error
            ),
            (
                "rules[0].from[0].source.remoteIpBlocks[1]".to_string(),
                Severity::Error
            ),
            (
                "rules[0].from[0].source.notRemoteIpBlocks[0]".to_string(),
                Severity::Error
            ),
        ]
    );
}

#[test]
fn empty_values_are_rejected() {
    let f = run(json!({"rules": [{
        "from": [{"source": {"principals": [""], "requestPrincipals": ["a", ""]}}],
        "to": [{"operation": {"hosts": [""], "methods": [""], "paths": [""], "notPorts": [""]}}]
    }]}));
    for p in [
        "rules[0].from[0].source.principals[0]",
        "rules[0].from[0].source.requestPrincipals[1]",
        "rules[0].to[0].operation.hosts[0]",
        "rules[0].to[0].operation.methods[0]",
        "rules[0].to[0].operation.paths[0]",
        "rules[0].to[0].operation.notPorts[0]",
    ] {
        assert!(has(&f, p, Severity::Error), "{p}: {f:#?}");
    }
    assert_eq!(f.len(), 6, "{f:#?}");
}

#[test]
fn ports_are_decimal_strings_up_to_65535() {
    let f = run(json!({"rules": [{"to": [{"operation": {
        "ports": ["80", "65535", "65536", "http", "+80", "-1", "0"]
    }}]}]}));
    assert_eq!(
        summary(&f),
        vec![
            (
                "rules[0].to[0].operation.ports[2]".to_string(),
                Severity::Error
            ),
            (
                "rules[0].to[0].operation.ports[3]".to_string(),
                Severity::Error
            ),
            (
                "rules[0].to[0].operation.ports[4]".to_string(),
                Severity::Error
            ),
            (
                "rules[0].to[0].operation.ports[5]".to_string(),
                Severity::Error
            ),
            (
                "rules[0].to[0].operation.ports[6]".to_string(),
                Severity::Warning
            ),
        ]
    );
}

#[test]
fn wildcard_only_as_prefix_or_suffix() {
    let f = run(json!({"rules": [{
        "from": [{"source": {"principals": ["cluster.local/ns/*/sa/x", "*a*"], "namespaces": ["ns-*", "*-ns"]}}],
        "to": [{"operation": {"paths": ["/api/*/items", "/api/*"], "hosts": ["**"]}}],
        "when": [{"key": "request.headers[x-a]", "values": ["a*b"]}]
    }]}));
    assert_eq!(
        summary(&f),
        vec![
            (
                "rules[0].from[0].source.principals[0]".to_string(),
                Severity::Warning
            ),
            (
                "rules[0].from[0].source.principals[1]".to_string(),
                Severity::Warning
            ),
            (
                "rules[0].to[0].operation.hosts[0]".to_string(),
                Severity::Warning
            ),
            (
                "rules[0].to[0].operation.paths[0]".to_string(),
                Severity::Warning
            ),
            ("rules[0].when[0].values[0]".to_string(), Severity::Warning),
        ]
    );
}

#[test]
fn path_templates() {
    assert!(validate::check_path_template("/foo/{*}/bar/{**}").is_ok());
    assert!(validate::check_path_template("/{**}/path/template").is_ok());
    assert!(validate::check_path_template("/plain/*").is_ok());
    assert!(validate::check_path_template("/{**}/{*}").is_err());
    assert!(validate::check_path_template("/{**}/{**}").is_err());
    assert!(validate::check_path_template("/foo/{bar}").is_err());
    assert!(validate::check_path_template("/foo{*}").is_err());
    assert!(validate::check_path_template("/foo/{*}/b*").is_err());
    assert!(validate::check_path_template("/foo//{*}").is_err());
    let f = run(json!({"rules": [{"to": [{"operation": {"notPaths": ["/{name=*}/x"]}}]}]}));
    only(&f, "rules[0].to[0].operation.notPaths[0]", Severity::Error);
}

#[test]
fn service_account_values() {
    let many: Vec<String> = (0..17).map(|i| format!("sa{i}")).collect();
    let f = run(json!({"rules": [{"from": [{"source": {"serviceAccounts": many}}]}]}));
    only(
        &f,
        "rules[0].from[0].source.serviceAccounts",
        Severity::Error,
    );

    let long = "a".repeat(321);
    let f = run(json!({"rules": [{"from": [{"source": {
        "notServiceAccounts": ["ok", "ns/ok", "*", "a/b/c", "/sa", "ns/", "", long]
    }}]}]}));
    let errs: Vec<String> = f.iter().map(|f| f.path.to_string()).collect();
    assert_eq!(
        errs,
        (2..8)
            .map(|i| format!("rules[0].from[0].source.notServiceAccounts[{i}]"))
            .collect::<Vec<_>>()
    );
}

#[test]
fn condition_keys_and_values() {
    let f = run(json!({"rules": [{"when": [
        {"key": "", "values": ["x"]},
        {"key": "source.ip"},
        {"key": "request.headers", "values": ["x"]},
        {"key": "request.headers[]", "values": ["x"]},
        {"key": "destination.labels[app]", "values": ["x"]},
        {"key": "destination.namespace", "values": ["x"]},
        {"key": "destination.user", "values": ["x"]},
        {"key": "source.user", "notValues": ["x"]},
        {"key": "source.ip", "values": ["nope"], "notValues": ["10.0.0.0/8"]},
        {"key": "destination.port", "notValues": ["99999"]},
        {"key": "source.serviceAccount", "values": ["ns/*"]},
        {"key": "request.auth.claims[groups]", "values": [""]}
    ]}]}));
    assert_eq!(
        summary(&f),
        vec![
            ("rules[0].when[0].key".to_string(), Severity::Error),
            ("rules[0].when[1]".to_string(), Severity::Error),
            ("rules[0].when[2].key".to_string(), Severity::Error),
            ("rules[0].when[3].key".to_string(), Severity::Error),
            ("rules[0].when[4].key".to_string(), Severity::Error),
            ("rules[0].when[5].key".to_string(), Severity::Error),
            ("rules[0].when[6].key".to_string(), Severity::Error),
            ("rules[0].when[7].key".to_string(), Severity::Error),
            ("rules[0].when[8].values[0]".to_string(), Severity::Error),
            ("rules[0].when[9].notValues[0]".to_string(), Severity::Error),
            ("rules[0].when[10].values[0]".to_string(), Severity::Error),
            ("rules[0].when[11].values[0]".to_string(), Severity::Error),
        ]
    );
    assert_eq!(f[1].code, Code::MissingField);
}

#[test]
fn targeting_rules() {
    let f = run(
        json!({"selector": {"matchLabels": {"a": "b"}}, "targetRef": {"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "gw"}}),
    );
    only(&f, "", Severity::Error);
    assert_eq!(f[0].code, Code::Conflict);

    let f = run(json!({"selector": {}}));
    only(&f, "selector", Severity::Warning);

    let f = run(json!({"targetRefs": [
        {"kind": "Service", "name": "a"},
        {"group": "", "kind": "Deployment", "name": "b"},
        {"group": "gateway.networking.k8s.io", "kind": "GatewayClass", "name": "istio-waypoint"},
        {"kind": "Service", "name": "c", "namespace": "default"},
        {"group": "networking.istio.io", "kind": "ServiceEntry", "name": "d"}
    ]}));
    assert_eq!(
        summary(&f),
        vec![
            ("targetRefs[1]".to_string(), Severity::Error),
            ("targetRefs[3].namespace".to_string(), Severity::Error),
        ]
    );

    let refs: Vec<Value> = (0..17)
        .map(|i| json!({"kind": "Service", "name": format!("s{i}")}))
        .collect();
    let f = run(json!({"targetRefs": refs}));
    only(&f, "targetRefs", Severity::Error);
}

#[test]
fn round_trips_through_json() {
    let full = json!({
        "selector": {"matchLabels": {"app": "httpbin"}},
        "targetRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"},
        "targetRefs": [{"kind": "Service", "name": "svc"}],
        "rules": [{
            "from": [{"source": {
                "principals": ["a"], "notPrincipals": ["b"],
                "requestPrincipals": ["c"], "notRequestPrincipals": ["d"],
                "namespaces": ["e"], "notNamespaces": ["f"],
                "serviceAccounts": ["g"], "notServiceAccounts": ["h"],
                "ipBlocks": ["1.2.3.4"], "notIpBlocks": ["5.6.7.8"],
                "remoteIpBlocks": ["10.0.0.0/8"], "notRemoteIpBlocks": ["::1"]
            }}],
            "to": [{"operation": {
                "hosts": ["h"], "notHosts": ["nh"], "ports": ["80"], "notPorts": ["81"],
                "methods": ["GET"], "notMethods": ["PUT"], "paths": ["/p"], "notPaths": ["/np"]
            }}],
            "when": [{"key": "source.ip", "values": ["1.2.3.4"], "notValues": ["5.6.7.8"]}]
        }],
        "action": "CUSTOM",
        "provider": {"name": "ext-authz"}
    });
    let p: AuthorizationPolicy = serde_json::from_value(full.clone()).expect("deserializes");
    let back = serde_json::to_value(&p).expect("serializes");
    assert_eq!(back, full);
    let again: AuthorizationPolicy = serde_json::from_value(back).expect("deserializes again");
    assert_eq!(again, p);
    assert_eq!(
        serde_json::to_value(AuthorizationPolicy::default()).ok(),
        Some(json!({}))
    );
}
