//! Tests: Istio's accepted and rejected cases for these rules, and serde round trips.

use super::validate::validate_extension_providers;
use super::*;
use crate::diag::{Code, Severity};
use crate::validate::Validator;
use serde_json::json;

fn providers(v: serde_json::Value) -> Vec<ExtensionProvider> {
    serde_json::from_value(v).expect("valid provider list")
}

/// `(path, severity, code)` of every finding.
fn found(v: serde_json::Value) -> Vec<(String, Severity, Code)> {
    let mut val = Validator::new("istio-system");
    validate_extension_providers(&mut val, &providers(v));
    val.into_findings()
        .into_iter()
        .map(|f| (f.path.to_string(), f.severity, f.code))
        .collect()
}

fn paths(v: serde_json::Value) -> Vec<String> {
    found(v).into_iter().map(|f| f.0).collect()
}

const NONE: Vec<String> = Vec::new();

#[test]
fn istio_docs_examples_are_valid() {
    let v = json!([
        {"name": "my-ext-authz", "envoyExtAuthzHttp": {
            "service": "my-ext-authz.foo.svc.cluster.local", "port": 8000,
            "pathPrefix": "/check", "statusOnError": "503",
            "includeRequestHeadersInCheck": ["x-ext-authz"], "timeout": "10s"}},
        {"name": "grpc-authz", "envoyExtAuthzGrpc": {"service": "bar/authz.example.com", "port": 9000}},
        {"name": "otel-tracing", "opentelemetry": {
            "port": 443, "service": "my.olly-backend.com",
            "http": {"path": "/api/otlp/traces", "timeout": "10s", "headers": [{"name": "my-custom-header", "value": "some value"}]},
            "resourceDetectors": {"environment": {}}}},
        {"name": "dt", "opentelemetry": {
            "port": 443, "service": "abc.live.dynatrace.com",
            "dynatraceSampler": {"tenant": "abc", "clusterId": 123}}},
        {"name": "zipkin", "zipkin": {"service": "zipkin.istio-system.svc.cluster.local", "port": 9411,
            "traceContextOption": "USE_B3_WITH_W3C_PROPAGATION", "timeout": "5s",
            "headers": [{"name": "authorization", "envName": "ZIPKIN_TOKEN"}]}},
        {"name": "sw", "skywalking": {"service": "tracing.istio-system.svc.cluster.local", "port": 11800}},
        {"name": "dd", "datadog": {"service": "10.0.0.1", "port": 8126}},
        {"name": "log", "envoyFileAccessLog": {"path": "/dev/stdout", "logFormat": {"labels": {}}}},
        {"name": "otel-als", "envoyOtelAls": {"service": "otel.istio-system.svc.cluster.local", "port": 4317}},
        {"name": "http-als", "envoyHttpAls": {"service": "*/als.example.com", "port": 9000}},
        {"name": "tcp-als", "envoyTcpAls": {"service": "als.example.com", "port": 9000}},
        {"name": "prometheus", "prometheus": {}},
        {"name": "stackdriver", "stackdriver": {"maxTagLength": 256}}
    ]);
    assert_eq!(found(v), vec![]);
}

#[test]
fn names_must_be_unique_and_set() {
    let v = json!([
        {"name": "a", "prometheus": {}},
        {"name": "a", "prometheus": {}},
        {"prometheus": {}}
    ]);
    assert_eq!(
        paths(v),
        vec!["extensionProviders[1].name", "extensionProviders[2].name"]
    );
}

#[test]
fn provider_is_required_and_single() {
    assert_eq!(
        found(json!([{"name": "a"}])),
        vec![(
            "extensionProviders[0]".into(),
            Severity::Warning,
            Code::InvalidValue
        )]
    );
    assert_eq!(
        found(json!([{"name": "a", "prometheus": {}, "stackdriver": {}}])),
        vec![(
            "extensionProviders[0]".into(),
            Severity::Error,
            Code::Conflict
        )]
    );
}

#[test]
fn services() {
    let v = json!([
        {"name": "a", "envoyExtAuthzGrpc": {"service": "", "port": 9000}},
        {"name": "b", "envoyExtAuthzGrpc": {"service": "ns/short", "port": 9000}},
        {"name": "c", "envoyExtAuthzGrpc": {"service": "/x.example.com", "port": 9000}},
        {"name": "d", "envoyExtAuthzGrpc": {"service": "ns/*x.example.com", "port": 9000}},
        {"name": "e", "envoyExtAuthzGrpc": {"service": "bad_ns!/x.example.com", "port": 9000}},
        {"name": "f", "envoyExtAuthzGrpc": {"service": "bad host", "port": 9000}},
        {"name": "g", "envoyExtAuthzGrpc": {"service": "x.example.com", "port": 70000}}
    ]);
    assert_eq!(
        paths(v),
        vec![
            "extensionProviders[0].envoyExtAuthzGrpc.service",
            "extensionProviders[1].envoyExtAuthzGrpc.service",
            "extensionProviders[2].envoyExtAuthzGrpc.service",
            "extensionProviders[3].envoyExtAuthzGrpc.service",
            "extensionProviders[4].envoyExtAuthzGrpc.service",
            "extensionProviders[5].envoyExtAuthzGrpc.service",
            "extensionProviders[6].envoyExtAuthzGrpc.port"
        ]
    );
}

#[test]
fn ext_authz_http_fields() {
    let v = json!([
        {"name": "a", "envoyExtAuthzHttp": {"service": "a.b", "port": 1, "statusOnError": "abc"}},
        {"name": "b", "envoyExtAuthzHttp": {"service": "a.b", "port": 1, "statusOnError": "999"}},
        {"name": "c", "envoyExtAuthzHttp": {"service": "a.b", "port": 1, "statusOnError": "0"}},
        {"name": "d", "envoyExtAuthzHttp": {"service": "a.b", "port": 1, "pathPrefix": "check"}},
        {"name": "e", "envoyExtAuthzHttp": {"service": "a.b", "port": 1, "pathPrefix": "/a%zz"}},
        {"name": "f", "envoyExtAuthzHttp": {"service": "a.b", "port": 1, "includeHeadersInCheck": ["x"]}}
    ]);
    assert_eq!(
        found(v),
        vec![
            (
                "extensionProviders[0].envoyExtAuthzHttp.statusOnError".into(),
                Severity::Warning,
                Code::InvalidValue
            ),
            (
                "extensionProviders[1].envoyExtAuthzHttp.statusOnError".into(),
                Severity::Warning,
                Code::InvalidValue
            ),
            (
                "extensionProviders[3].envoyExtAuthzHttp.pathPrefix".into(),
                Severity::Warning,
                Code::InvalidValue
            ),
            (
                "extensionProviders[4].envoyExtAuthzHttp.pathPrefix".into(),
                Severity::Warning,
                Code::InvalidValue
            ),
            (
                "extensionProviders[5].envoyExtAuthzHttp.includeHeadersInCheck".into(),
                Severity::Warning,
                Code::Deprecated
            ),
        ]
    );
}

#[test]
fn tracer_specifics() {
    let v = json!([
        {"name": "a", "lightstep": {"service": "ls.example.com", "port": 8080}},
        {"name": "b", "opencensus": {"service": "oc.example.com", "port": 55678}},
        {"name": "c", "opentelemetry": {"service": "o.example.com", "port": 4317, "http": {"path": "/v1/traces"}, "grpc": {}}},
        {"name": "d", "stackdriver": {"debug": true}},
        {"name": "e", "opentelemetry": {"service": "o.example.com", "port": 4317, "grpc": {"initialMetadata": [{"name": "a", "value": "b", "envName": "C"}]}}}
    ]);
    assert_eq!(
        found(v),
        vec![
            (
                "extensionProviders[0].lightstep".into(),
                Severity::Warning,
                Code::Deprecated
            ),
            (
                "extensionProviders[0].lightstep.accessToken".into(),
                Severity::Warning,
                Code::InvalidValue
            ),
            (
                "extensionProviders[1].opencensus".into(),
                Severity::Warning,
                Code::Deprecated
            ),
            (
                "extensionProviders[2].opentelemetry".into(),
                Severity::Warning,
                Code::InvalidValue
            ),
            (
                "extensionProviders[3].stackdriver".into(),
                Severity::Warning,
                Code::Deprecated
            ),
            (
                "extensionProviders[4].opentelemetry.grpc.initialMetadata[0]".into(),
                Severity::Error,
                Code::Conflict
            ),
        ]
    );
    assert_eq!(
        paths(json!([{"name": "ok", "zipkin": {"service": "10.1.2.3", "port": 9411}}])),
        NONE
    );
}

#[test]
fn round_trip() {
    let v: serde_json::Value = serde_json::from_str(
        r#"[
        {"name": "http", "envoyExtAuthzHttp": {
            "service": "authz.foo.svc.cluster.local", "port": 8000, "timeout": "10s", "pathPrefix": "/check",
            "failOpen": true, "clearRouteCache": true, "statusOnError": "503",
            "includeHeadersInCheck": ["a"], "includeRequestHeadersInCheck": ["b"],
            "includeAdditionalHeadersInCheck": {"x-k": "v"},
            "includeRequestBodyInCheck": {"maxRequestBytes": 1024, "allowPartialMessage": true, "packAsBytes": true},
            "headersToUpstreamOnAllow": ["c"], "headersToDownstreamOnDeny": ["d"], "headersToDownstreamOnAllow": ["e"]}},
        {"name": "grpc", "envoyExtAuthzGrpc": {"service": "a.b", "port": 9000, "timeout": "1s", "failOpen": true,
            "clearRouteCache": true, "statusOnError": "403", "includeRequestBodyInCheck": {"maxRequestBytes": 10}}},
        {"name": "zipkin", "zipkin": {"service": "z.b", "port": 9411, "maxTagLength": 256, "enable64bitTraceId": true,
            "path": "/api/v2/spans", "traceContextOption": "USE_B3_WITH_W3C_PROPAGATION", "timeout": "5s",
            "headers": [{"name": "a", "value": "b"}, {"name": "c", "envName": "D"}]}},
        {"name": "ls", "lightstep": {"service": "l.b", "port": 1, "accessToken": "t", "maxTagLength": 2}},
        {"name": "dd", "datadog": {"service": "d.b", "port": 1, "maxTagLength": 3}},
        {"name": "sd", "stackdriver": {"debug": true, "maxNumberOfAttributes": 200, "maxNumberOfAnnotations": 200,
            "maxNumberOfMessageEvents": 200, "maxTagLength": 5, "logging": {"labels": {"path": "request.url_path"}}}},
        {"name": "oc", "opencensus": {"service": "o.b", "port": 1, "context": ["B3", "GRPC_BIN"], "maxTagLength": 4}},
        {"name": "sw", "skywalking": {"service": "s.b", "port": 1, "accessToken": "t"}},
        {"name": "otel", "opentelemetry": {"service": "o.b", "port": 4317, "maxTagLength": 6,
            "http": {"path": "/v1/traces", "timeout": "3s", "headers": [{"name": "h", "value": "v"}]},
            "resourceDetectors": {"environment": {}, "dynatrace": {}},
            "dynatraceSampler": {"tenant": "t", "clusterId": 1, "rootSpansPerMinute": 1000,
                "httpService": {"service": "x.live.dynatrace.com", "port": 443, "http": {"path": "/api/v2/samplingConfiguration"}}},
            "serviceAttributeEnrichment": "OTEL_SEMANTIC_CONVENTIONS"}},
        {"name": "otel-grpc", "opentelemetry": {"service": "o.b", "port": 4317, "grpc": {"timeout": "3s", "initialMetadata": [{"name": "a", "value": "b"}]}}},
        {"name": "prom", "prometheus": {}},
        {"name": "file", "envoyFileAccessLog": {"path": "/dev/stdout", "logFormat": {"text": "%START_TIME%\n", "omitEmptyValues": true}}},
        {"name": "file-json", "envoyFileAccessLog": {"logFormat": {"labels": {"status": "%RESPONSE_CODE%"}}}},
        {"name": "hals", "envoyHttpAls": {"service": "a.b", "port": 1, "logName": "l", "filterStateObjectsToLog": ["f"],
            "additionalRequestHeadersToLog": ["a"], "additionalResponseHeadersToLog": ["b"], "additionalResponseTrailersToLog": ["c"]}},
        {"name": "tals", "envoyTcpAls": {"service": "a.b", "port": 1, "logName": "l", "filterStateObjectsToLog": ["f"]}},
        {"name": "oals", "envoyOtelAls": {"service": "a.b", "port": 1, "logName": "l", "logFormat": {"text": "t", "labels": {"a": "b"}}}}
    ]"#,
    )
    .expect("valid JSON");
    let p = providers(v);
    let back = serde_json::to_value(&p).expect("serializes");
    assert_eq!(providers(back.clone()), p);
    assert_eq!(back[2]["zipkin"]["enable64bitTraceId"], true);
    assert_eq!(
        back[8]["opentelemetry"]["serviceAttributeEnrichment"],
        "OTEL_SEMANTIC_CONVENTIONS"
    );
}
