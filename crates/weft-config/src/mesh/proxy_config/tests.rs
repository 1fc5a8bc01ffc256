//! Tests: Istio's accepted and rejected cases for these rules, and serde round trips.

use super::validate::check_proxy_address;
use super::*;
use crate::diag::{Code, Severity};
use crate::validate::check;
use serde_json::json;

fn proxy(v: serde_json::Value) -> ProxyConfig {
    serde_json::from_value(v).expect("valid ProxyConfig JSON")
}

/// `(path, severity)` of every finding.
fn found(v: serde_json::Value) -> Vec<(String, Severity)> {
    check(&proxy(v), "default")
        .into_iter()
        .map(|f| (f.path.to_string(), f.severity))
        .collect()
}

fn errors_at(v: serde_json::Value) -> Vec<String> {
    check(&proxy(v), "default")
        .into_iter()
        .filter(|f| f.is_error())
        .map(|f| f.path.to_string())
        .collect()
}

#[test]
fn seeds_are_clean() {
    for v in [
        json!({"proxyStatsMatcher": {"inclusionRegexps": [".*_cx_.*", ".*_rq_.*"]}}),
        json!({"holdApplicationUntilProxyStarts": true, "proxyStatsMatcher": {"exclusionRegexps": [".*_bucket"]}}),
    ] {
        assert_eq!(found(v), vec![]);
    }
}

#[test]
fn istio_defaults_are_valid() {
    // Istio's DefaultProxyConfig, written out.
    let v = json!({
        "configPath": "./etc/istio/proxy",
        "serviceCluster": "istio-proxy",
        "drainDuration": "45s",
        "terminationDrainDuration": "5s",
        "proxyAdminPort": 15000,
        "concurrency": 2,
        "controlPlaneAuthPolicy": "MUTUAL_TLS",
        "discoveryAddress": "istiod.istio-system.svc:15012",
        "tracing": {"zipkin": {"address": "zipkin.istio-system:9411"}},
        "binaryPath": "/usr/local/bin/envoy",
        "statNameLength": 189,
        "statusPort": 15020
    });
    assert_eq!(found(v), vec![]);
}

#[test]
fn stats_matcher_regexes_must_compile() {
    let v = json!({"proxyStatsMatcher": {"inclusionRegexps": ["ok.*", "(unclosed"], "exclusionRegexps": ["x(?=y)"]}});
    assert_eq!(
        errors_at(v),
        vec![
            "proxyStatsMatcher.inclusionRegexps[1]",
            "proxyStatsMatcher.exclusionRegexps[0]"
        ]
    );
}

#[test]
fn addresses() {
    assert!(check_proxy_address("istiod.istio-system.svc:15012").is_ok());
    assert!(check_proxy_address("10.0.0.1:80").is_ok());
    assert!(check_proxy_address("[::1]:8080").is_ok());
    assert!(check_proxy_address("istiod").is_err());
    assert!(check_proxy_address("istiod:0").is_err());
    assert!(check_proxy_address("istiod:port").is_err());
    assert!(check_proxy_address("bad_host:80").is_err());
    assert!(check_proxy_address("a:b:80").is_err());
    assert!(check_proxy_address(":80").is_err());
    let v = json!({
        "discoveryAddress": "istiod",
        "statsdUdpAddress": "statsd:99999",
        "envoyMetricsService": {"address": "ms:1"},
        "envoyAccessLogService": {"address": "als"}
    });
    assert_eq!(
        errors_at(v),
        vec![
            "discoveryAddress",
            "statsdUdpAddress",
            "envoyAccessLogService.address"
        ]
    );
}

#[test]
fn drain_duration_precision() {
    assert_eq!(
        errors_at(json!({"drainDuration": "45s"})),
        Vec::<String>::new()
    );
    assert_eq!(
        errors_at(json!({"drainDuration": "1.5s"})),
        vec!["drainDuration"]
    );
    assert_eq!(
        errors_at(json!({"drainDuration": "0s"})),
        vec!["drainDuration"]
    );
    assert_eq!(
        errors_at(json!({"drainDuration": "1500us"})),
        vec!["drainDuration"]
    );
}

#[test]
fn ports_zero_means_default() {
    assert_eq!(
        errors_at(json!({"proxyAdminPort": 0, "statusPort": 0})),
        Vec::<String>::new()
    );
    assert_eq!(
        errors_at(json!({"proxyAdminPort": -1, "statusPort": 70000})),
        vec!["proxyAdminPort", "statusPort"]
    );
}

#[test]
fn cluster_name_oneof() {
    assert_eq!(
        errors_at(json!({"serviceCluster": ""})),
        vec!["serviceCluster"]
    );
    let f = check(
        &proxy(json!({"serviceCluster": "a", "tracingServiceName": "CANONICAL_NAME_ONLY"})),
        "default",
    );
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].code, Code::Conflict);
}

#[test]
fn control_plane_auth_policy() {
    assert_eq!(
        errors_at(json!({"controlPlaneAuthPolicy": "INHERIT"})),
        vec!["controlPlaneAuthPolicy"]
    );
    assert_eq!(
        errors_at(json!({"controlPlaneAuthPolicy": "NONE"})),
        Vec::<String>::new()
    );
}

#[test]
fn tracers() {
    // $(HOST_IP) is substituted before the address is checked.
    assert_eq!(
        errors_at(json!({"tracing": {"datadog": {"address": "$(HOST_IP):8126"}}})),
        Vec::<String>::new()
    );
    assert_eq!(
        errors_at(json!({"tracing": {"zipkin": {}}})),
        vec!["tracing.zipkin.address"]
    );
    let f = found(json!({"tracing": {"lightstep": {"address": "ls:8080"}}}));
    assert!(f.contains(&("tracing.lightstep".into(), Severity::Warning)));
    assert!(f.contains(&("tracing.lightstep.accessToken".into(), Severity::Error)));
    let f = check(
        &proxy(json!({"tracing": {"zipkin": {"address": "z:1"}, "datadog": {"address": "d:1"}}})),
        "default",
    );
    assert_eq!(f[0].code, Code::Conflict);
    assert_eq!(f[0].path.to_string(), "tracing");
}

#[test]
fn tracing_tls() {
    assert_eq!(
        errors_at(json!({"tracing": {"tlsSettings": {"mode": "MUTUAL"}}})),
        vec![
            "tracing.tlsSettings.clientCertificate",
            "tracing.tlsSettings.privateKey"
        ]
    );
    assert_eq!(
        errors_at(
            json!({"tracing": {"tlsSettings": {"mode": "SIMPLE", "credentialName": "c", "caCertificates": "/x"}}})
        ),
        vec!["tracing.tlsSettings"]
    );
    assert_eq!(
        errors_at(
            json!({"tracing": {"tlsSettings": {"mode": "SIMPLE", "insecureSkipVerify": true, "caCertificates": "/x"}}})
        ),
        vec!["tracing.tlsSettings"]
    );
    assert_eq!(
        errors_at(json!({"tracing": {"tlsSettings": {"mode": "ISTIO_MUTUAL"}}})),
        Vec::<String>::new()
    );
}

#[test]
fn custom_tags() {
    let f = found(json!({"tracing": {"customTags": {"t": {}}}}));
    assert_eq!(f, vec![("tracing.customTags[t]".into(), Severity::Warning)]);
    let f = check(
        &proxy(
            json!({"tracing": {"customTags": {"t": {"literal": {"value": "v"}, "header": {"name": "h"}}}}}),
        ),
        "default",
    );
    assert_eq!(f[0].code, Code::Conflict);
}

#[test]
fn private_key_provider() {
    assert_eq!(
        errors_at(json!({"privateKeyProvider": {}})),
        vec!["privateKeyProvider"]
    );
    assert_eq!(
        errors_at(json!({"privateKeyProvider": {"cryptomb": {}}})),
        vec!["privateKeyProvider.cryptomb.pollDelay"]
    );
    assert_eq!(
        errors_at(json!({"privateKeyProvider": {"qat": {"pollDelay": "0s"}}})),
        vec!["privateKeyProvider.qat.pollDelay"]
    );
    assert_eq!(
        errors_at(json!({"privateKeyProvider": {"qat": {"pollDelay": "10ms", "fallback": true}}})),
        Vec::<String>::new()
    );
}

#[test]
fn warnings_and_deprecations() {
    let f = check(
        &proxy(json!({
            "proxyMetadata": {"ISTIO_META_DNS_AUTO_ALLOCATE": "true"},
            "zipkinAddress": "z:9411",
            "envoyMetricsServiceAddress": "m:1",
            "extraStatTags": ["a"],
            "concurrency": -1,
            "statNameLength": -5
        })),
        "default",
    );
    let got: Vec<(String, Code)> = f.iter().map(|f| (f.path.to_string(), f.code)).collect();
    assert!(f.iter().all(|f| f.severity == Severity::Warning), "{f:?}");
    for (path, code) in [
        ("envoyMetricsServiceAddress", Code::Deprecated),
        (
            "proxyMetadata[ISTIO_META_DNS_AUTO_ALLOCATE]",
            Code::Deprecated,
        ),
        ("concurrency", Code::InvalidValue),
        ("statNameLength", Code::InvalidValue),
        ("zipkinAddress", Code::Deprecated),
        ("extraStatTags", Code::Deprecated),
    ] {
        assert!(got.contains(&(path.to_string(), code)), "{path}: {got:?}");
    }
}

#[test]
fn round_trip() {
    let v: serde_json::Value = serde_json::from_str(
        r#"{
        "configPath": "/etc/istio/proxy",
        "binaryPath": "/usr/local/bin/envoy",
        "serviceCluster": "istio-proxy",
        "drainDuration": "45s",
        "discoveryAddress": "istiod.istio-system.svc:15012",
        "discoveryRefreshDelay": "1s",
        "zipkinAddress": "zipkin:9411",
        "statsdUdpAddress": "statsd:9125",
        "envoyMetricsServiceAddress": "ms:15000",
        "proxyAdminPort": 15000,
        "availabilityZone": "az",
        "controlPlaneAuthPolicy": "MUTUAL_TLS",
        "customConfigFile": "/etc/custom.json",
        "statNameLength": 189,
        "concurrency": 2,
        "proxyBootstrapTemplatePath": "/var/lib/istio/envoy/tmpl.json",
        "interceptionMode": "TPROXY",
        "tracing": {
            "openCensusAgent": {"address": "dns://oc:55678", "context": ["W3C_TRACE_CONTEXT", "B3"]},
            "customTags": {"env": {"environment": {"name": "ENV", "defaultValue": "dev"}}},
            "maxPathTagLength": 100,
            "sampling": 1.5,
            "tlsSettings": {"mode": "ISTIO_MUTUAL"},
            "enableIstioTags": false
        },
        "sds": {"enabled": true, "k8sSaJwtPath": "/var/run/token"},
        "envoyAccessLogService": {"address": "als:9000", "tlsSettings": {"mode": "SIMPLE"}, "tcpKeepalive": {"probes": 3}},
        "envoyMetricsService": {"address": "ms:9000"},
        "proxyMetadata": {"ISTIO_META_DNS_CAPTURE": "true"},
        "runtimeValues": {"re2.max_program_size.error_level": "1024"},
        "statusPort": 15020,
        "extraStatTags": ["tag"],
        "gatewayTopology": {"numTrustedProxies": 2, "forwardClientCertDetails": "SANITIZE_SET", "proxyProtocol": {}},
        "terminationDrainDuration": "5s",
        "meshId": "mesh1",
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
        "proxyStatsMatcher": {
            "inclusionPrefixes": ["a"], "inclusionSuffixes": ["b"], "inclusionRegexps": ["c.*"],
            "exclusionPrefixes": ["d"], "exclusionSuffixes": ["e"], "exclusionRegexps": ["f.*"]
        },
        "holdApplicationUntilProxyStarts": true,
        "caCertificatesPem": ["-----BEGIN CERTIFICATE-----"],
        "image": {"imageType": "distroless"},
        "privateKeyProvider": {"cryptomb": {"pollDelay": "10ms", "fallback": true}},
        "proxyHeaders": {
            "forwardedClientCert": "APPEND_FORWARD",
            "setCurrentClientCertDetails": {"subject": true, "cert": false, "chain": true, "dns": true, "uri": false},
            "requestId": {"disabled": true},
            "server": {"disabled": false, "value": "weft"},
            "attemptCount": {"disabled": true},
            "envoyDebugHeaders": {"disabled": true},
            "metadataExchangeHeaders": {"mode": "IN_MESH"},
            "preserveHttp1HeaderCase": true
        },
        "fileFlushInterval": "1s",
        "fileFlushMinSizeKb": 64,
        "statsCompression": false
    }"#,
    )
    .expect("valid JSON");
    let p = proxy(v);
    let back = serde_json::to_value(&p).expect("serializes");
    assert_eq!(proxy(back.clone()), p);
    assert_eq!(back["meshId"], "mesh1");
    assert_eq!(
        back["gatewayTopology"]["forwardClientCertDetails"],
        "SANITIZE_SET"
    );
    assert_eq!(back["interceptionMode"], "TPROXY");
}
