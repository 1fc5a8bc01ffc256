use super::validate::check_cel_syntax;
use super::*;
use crate::diag::{Code, Finding, Severity};
use crate::validate::check;
use serde_json::{Value, json};

fn run(spec: Value) -> Vec<Finding> {
    let t: Telemetry = serde_json::from_value(spec).expect("spec deserializes");
    check(&t, "default")
}

fn summary(f: &[Finding]) -> Vec<(String, Severity)> {
    f.iter().map(|f| (f.path.to_string(), f.severity)).collect()
}

fn only(f: &[Finding], path: &str, sev: Severity) {
    assert_eq!(summary(f), vec![(path.to_string(), sev)], "{f:#?}");
}

#[test]
fn seed_tracing_jaeger_full_sampling_is_clean() {
    let f = run(
        json!({"tracing": [{"providers": [{"name": "jaeger"}], "randomSamplingPercentage": 100}]}),
    );
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn seed_metrics_tag_override_is_clean() {
    // Istio does not validate tag override values beyond UPSERT needing one, so it accepts
    // this value (whether the stats plugin can evaluate it is a runtime matter).
    let f = run(json!({"metrics": [{"overrides": [{
        "match": {"metric": "ALL_METRICS"},
        "tagOverrides": {"request_protocol": {"value": "%{REQUEST_PROTOCOL}"}}
    }]}]}));
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn seed_tracing_split_over_three_entries_has_only_istios_warning() {
    // Istio merges the entries field by field, so this works, but its webhook still warns.
    let f = run(json!({"tracing": [
        {"providers": [{"name": "jaeger"}]},
        {"randomSamplingPercentage": 1.0},
        {"customTags": {"user_id": {"header": {"name": "x-user-id"}}}}
    ]}));
    only(&f, "tracing", Severity::Warning);
}

#[test]
fn istio_valid_testdata() {
    let f = run(json!({
        "metrics": [{
            "providers": [{"name": "prometheus"}],
            "reportingInterval": "5s",
            "overrides": [
                {"tagOverrides": {"request_method": {"value": "request.method"}, "request_host": {"value": "request.host"}},
                 "match": {"customMetric": "foo"}, "disabled": false},
                {"match": {"metric": "GRPC_REQUEST_MESSAGES"}, "disabled": true}
            ]
        }],
        "accessLogging": [{"disabled": false, "filter": {"expression": "true"}, "match": {"mode": "CLIENT"}, "providers": [{"name": "stdout"}]}],
        "tracing": [{
            "providers": [{"name": "otlp"}],
            "match": {"mode": "CLIENT_AND_SERVER"},
            "randomSamplingPercentage": 54.54,
            "useRequestIdForTraceSampling": true,
            "disableSpanReporting": false,
            "customTags": {
                "env": {"environment": {"name": "NAME", "defaultValue": "default"}},
                "header": {"header": {"name": "x-name", "defaultValue": "default name"}},
                "literal": {"literal": {"value": "default literal"}}
            }
        }]
    }));
    assert!(f.is_empty(), "{f:#?}");
    assert!(run(json!({"metrics": [{"overrides": [{"tagOverrides": {"foo": {"operation": "UPSERT", "value": "add"}}}]}]})).is_empty());
    assert!(run(json!({"metrics": [{"overrides": [{"tagOverrides": {"foo": {"operation": "REMOVE"}}}]}]})).is_empty());
}

#[test]
fn istio_invalid_testdata() {
    let f = run(json!({"metrics": [{"providers": [{"name": ""}]}]}));
    only(&f, "metrics[0].providers[0].name", Severity::Error);
    let f = run(json!({"metrics": [{"overrides": [{"match": {"customMetric": ""}}]}]}));
    only(
        &f,
        "metrics[0].overrides[0].match.customMetric",
        Severity::Error,
    );
    let f = run(
        json!({"metrics": [{"overrides": [{"tagOverrides": {"foo": {"operation": "UPSERT"}}}]}]}),
    );
    only(
        &f,
        "metrics[0].overrides[0].tagOverrides[foo].value",
        Severity::Error,
    );
    let f = run(
        json!({"metrics": [{"overrides": [{"tagOverrides": {"foo": {"operation": "REMOVE", "value": "oops"}}}]}]}),
    );
    only(
        &f,
        "metrics[0].overrides[0].tagOverrides[foo].value",
        Severity::Error,
    );
}

#[test]
fn tag_overrides() {
    // UPSERT is the default operation, so a bare override needs a value too.
    let f = run(json!({"metrics": [{"overrides": [{"tagOverrides": {"foo": {}}}]}]}));
    only(
        &f,
        "metrics[0].overrides[0].tagOverrides[foo].value",
        Severity::Error,
    );
    let f = run(json!({"metrics": [{"overrides": [{"tagOverrides": {"": {"value": "x"}}}]}]}));
    assert_eq!(
        summary(&f),
        vec![(
            "metrics[0].overrides[0].tagOverrides[\"\"]".to_string(),
            Severity::Warning
        )],
        "{f:#?}"
    );
}

#[test]
fn metric_selector_is_a_oneof() {
    let f = run(
        json!({"metrics": [{"overrides": [{"match": {"metric": "REQUEST_COUNT", "customMetric": "x"}}]}]}),
    );
    only(&f, "metrics[0].overrides[0].match", Severity::Error);
    assert_eq!(f[0].code, Code::Conflict);
}

#[test]
fn reporting_interval_minimum() {
    let f = run(json!({"metrics": [{"reportingInterval": "0s"}]}));
    only(&f, "metrics[0].reportingInterval", Severity::Error);
    assert!(run(json!({"metrics": [{"reportingInterval": "1ms"}]})).is_empty());
}

#[test]
fn tracing_rules() {
    let f = run(json!({"tracing": [{"providers": [{"name": "a"}, {"name": "b"}]}]}));
    only(&f, "tracing[0].providers", Severity::Warning);
    let f = run(json!({"tracing": [{"providers": [{}]}]}));
    only(&f, "tracing[0].providers[0].name", Severity::Error);
    for bad in [-1.0, 100.5] {
        let f = run(json!({"tracing": [{"randomSamplingPercentage": bad}]}));
        only(&f, "tracing[0].randomSamplingPercentage", Severity::Error);
    }
    assert!(run(json!({"tracing": [{"randomSamplingPercentage": 0}]})).is_empty());
}

#[test]
fn custom_tags() {
    let f = run(json!({"tracing": [{"customTags": {
        "a": {"literal": {}},
        "b": {"environment": {"defaultValue": "x"}},
        "c": {"header": {"name": ""}},
        "d": {"literal": {"value": "v"}, "header": {"name": "h"}},
        "": {"literal": {"value": "v"}},
        "e": {}
    }}]}));
    assert_eq!(
        summary(&f),
        vec![
            ("tracing[0].customTags[\"\"]".to_string(), Severity::Error),
            (
                "tracing[0].customTags[a].literal.value".to_string(),
                Severity::Error
            ),
            (
                "tracing[0].customTags[b].environment.name".to_string(),
                Severity::Error
            ),
            (
                "tracing[0].customTags[c].header.name".to_string(),
                Severity::Error
            ),
            ("tracing[0].customTags[d]".to_string(), Severity::Error),
        ]
    );
}

#[test]
fn access_log_filters_must_be_cel() {
    for bad in [
        "",
        "   ",
        "response.code >= (400",
        "request.host == 'a",
        "a &&",
        "a)",
    ] {
        let f = run(json!({"accessLogging": [{"filter": {"expression": bad}}]}));
        only(&f, "accessLogging[0].filter.expression", Severity::Error);
    }
    let f = run(json!({"accessLogging": [{"filter": {}}]}));
    only(&f, "accessLogging[0].filter.expression", Severity::Error);
    let f = run(json!({"accessLogging": [{"providers": [{"name": ""}]}]}));
    only(&f, "accessLogging[0].providers[0].name", Severity::Error);
    for ok in [
        "response.code >= 400",
        "request.headers['x-debug'] == \"1\" || xds.cluster_name.startsWith('outbound')",
        r#"request.url_path.matches(r"^/api/(v1|v2)\(")"#,
        "'''a ' b''' == x",
        "[1, 2].exists(x, x > 1) && {'a': 1}['a'] == 1",
    ] {
        assert!(check_cel_syntax(ok).is_ok(), "{ok}");
    }
}

#[test]
fn targeting_applies() {
    let f = run(
        json!({"selector": {"matchLabels": {"a": "b"}}, "targetRefs": [{"kind": "Service", "name": "x"}]}),
    );
    only(&f, "", Severity::Error);
    let f = run(json!({"selector": {}}));
    only(&f, "selector", Severity::Warning);
}

#[test]
fn round_trips_through_json() {
    let full = json!({
        "selector": {"matchLabels": {"app": "x"}},
        "targetRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"},
        "targetRefs": [{"kind": "Service", "name": "svc"}],
        "tracing": [{
            "match": {"mode": "SERVER"},
            "providers": [{"name": "otel"}],
            "randomSamplingPercentage": 12.5,
            "disableSpanReporting": true,
            "customTags": {
                "e": {"environment": {"name": "POD", "defaultValue": "p"}},
                "h": {"header": {"name": "x-h", "defaultValue": "d"}},
                "l": {"literal": {"value": "v"}}
            },
            "useRequestIdForTraceSampling": false,
            "enableIstioTags": false
        }],
        "metrics": [{
            "providers": [{"name": "prometheus"}],
            "overrides": [{
                "match": {"metric": "REQUEST_COUNT", "mode": "CLIENT"},
                "disabled": false,
                "tagOverrides": {"a": {"value": "request.host"}, "b": {"operation": "REMOVE"}}
            }, {
                "match": {"customMetric": "my_metric"}
            }],
            "reportingInterval": "10s"
        }],
        "accessLogging": [{
            "match": {"mode": "CLIENT"},
            "providers": [{"name": "envoy"}],
            "disabled": true,
            "filter": {"expression": "response.code >= 400"}
        }]
    });
    let t: Telemetry = serde_json::from_value(full.clone()).expect("deserializes");
    let back = serde_json::to_value(&t).expect("serializes");
    assert_eq!(back, full);
    assert_eq!(serde_json::from_value::<Telemetry>(back).ok(), Some(t));
    assert_eq!(
        serde_json::to_value(Telemetry::default()).ok(),
        Some(json!({}))
    );
}
