//! Tests: Istio's accepted and rejected cases for these rules, and serde round trips.

use super::*;
use crate::diag::{Code, Severity};
use crate::validate::check;
use serde_json::json;

fn mesh(v: serde_json::Value) -> MeshConfig {
    serde_json::from_value(v).expect("valid MeshConfig JSON")
}

/// `(path, severity, code)` of every finding.
fn found(v: serde_json::Value) -> Vec<(String, Severity, Code)> {
    check(&mesh(v), "istio-system")
        .into_iter()
        .map(|f| (f.path.to_string(), f.severity, f.code))
        .collect()
}

fn errors_at(v: serde_json::Value) -> Vec<String> {
    found(v)
        .into_iter()
        .filter(|f| f.1 == Severity::Error)
        .map(|f| f.0)
        .collect()
}

fn warnings_at(v: serde_json::Value) -> Vec<String> {
    found(v)
        .into_iter()
        .filter(|f| f.1 == Severity::Warning)
        .map(|f| f.0)
        .collect()
}

const NONE: Vec<String> = Vec::new();

#[test]
fn seeds_are_clean() {
    for v in [
        json!({"accessLogFile": "/dev/stdout", "defaultConfig": {"proxyStatsMatcher": {"inclusionRegexps": [".*_cx_.*", ".*_rq_.*"]}}}),
        json!({"trustDomain": "parallel-ai.cluster.local", "defaultConfig": {"holdApplicationUntilProxyStarts": true, "proxyStatsMatcher": {"exclusionRegexps": [".*_bucket"]}}}),
    ] {
        assert_eq!(found(v), vec![]);
    }
}

#[test]
fn istio_default_mesh_config_is_valid() {
    let v = json!({
        "enableTracing": true,
        "accessLogEncoding": "TEXT",
        "protocolDetectionTimeout": "0s",
        "ingressService": "istio-ingressgateway",
        "ingressControllerMode": "STRICT",
        "ingressClass": "istio",
        "trustDomain": "cluster.local",
        "enableAutoMtls": true,
        "outboundTrafficPolicy": {"mode": "ALLOW_ANY"},
        "localityLbSetting": {"enabled": true},
        "rootNamespace": "istio-system",
        "proxyListenPort": 15001,
        "connectTimeout": "10s",
        "defaultServiceExportTo": ["*"],
        "dnsRefreshRate": "60s",
        "defaultProviders": {},
        "extensionProviders": [
            {"name": "prometheus", "prometheus": {}},
            {"name": "stackdriver", "stackdriver": {}},
            {"name": "envoy", "envoyFileAccessLog": {"path": "/dev/stdout"}}
        ]
    });
    assert_eq!(found(v), vec![]);
}

#[test]
fn listen_port() {
    assert_eq!(errors_at(json!({"proxyListenPort": 0})), NONE);
    assert_eq!(
        errors_at(json!({"proxyListenPort": -1})),
        vec!["proxyListenPort"]
    );
    assert_eq!(
        errors_at(json!({"proxyListenPort": 65536})),
        vec!["proxyListenPort"]
    );
}

#[test]
fn connect_timeout() {
    assert_eq!(errors_at(json!({"connectTimeout": "1ms"})), NONE);
    assert_eq!(errors_at(json!({"connectTimeout": "1h"})), NONE);
    assert_eq!(
        errors_at(json!({"connectTimeout": "0s"})),
        vec!["connectTimeout"]
    );
    assert_eq!(
        errors_at(json!({"connectTimeout": "1500us"})),
        vec!["connectTimeout"]
    );
    assert_eq!(
        errors_at(json!({"connectTimeout": "2h"})),
        vec!["connectTimeout"]
    );
}

#[test]
fn protocol_detection_timeout() {
    assert_eq!(errors_at(json!({"protocolDetectionTimeout": "0s"})), NONE);
    assert_eq!(
        errors_at(json!({"protocolDetectionTimeout": "100ms"})),
        NONE
    );
    assert_eq!(
        errors_at(json!({"protocolDetectionTimeout": "1500us"})),
        vec!["protocolDetectionTimeout"]
    );
}

#[test]
fn trust_domains() {
    assert_eq!(errors_at(json!({"trustDomain": "td.example.com."})), NONE);
    assert_eq!(errors_at(json!({"trustDomain": "Cluster.Local"})), NONE);
    assert_eq!(
        errors_at(json!({"trustDomain": "bad_domain"})),
        vec!["trustDomain"]
    );
    assert_eq!(
        errors_at(json!({"trustDomainAliases": ["td2", "", "a..b"]})),
        vec!["trustDomainAliases[1]", "trustDomainAliases[2]"]
    );
}

#[test]
fn service_settings_hosts() {
    assert_eq!(
        errors_at(
            json!({"serviceSettings": [{"settings": {"clusterLocal": true}, "hosts": ["*.foo.svc.cluster.local", "foo.*.com"]}]})
        ),
        vec!["serviceSettings[0].hosts[1]"]
    );
}

#[test]
fn locality_lb_setting() {
    let lb = |v: serde_json::Value| errors_at(json!({"localityLbSetting": v}));
    assert_eq!(
        lb(json!({"distribute": [{"from": "a/b/*", "to": {"a/b/c": 80, "a/b/d": 20}}]})),
        NONE
    );
    assert_eq!(
        lb(
            json!({"distribute": [{"from": "a", "to": {"b": 100}}], "failover": [{"from": "a", "to": "b"}]})
        ),
        vec!["localityLbSetting"]
    );
    assert_eq!(
        lb(json!({"distribute": [{"from": "a", "to": {"b": 50}}]})),
        vec!["localityLbSetting.distribute[0].to"]
    );
    assert_eq!(
        lb(json!({"distribute": [{"from": "a", "to": {"b": 0, "c": 100}}]})),
        vec!["localityLbSetting.distribute[0].to"]
    );
    assert_eq!(
        lb(json!({"distribute": [{"from": "a/*/c", "to": {"b": 100}}]})),
        vec!["localityLbSetting.distribute"]
    );
    assert_eq!(
        lb(
            json!({"distribute": [{"from": "a", "to": {"b": 100}}, {"from": "a/z", "to": {"b": 100}}]})
        ),
        vec!["localityLbSetting.distribute"]
    );
    assert_eq!(
        lb(json!({"failover": [{"from": "a", "to": "a"}, {"from": "a/b", "to": "c*"}]})),
        vec![
            "localityLbSetting.failover[0]",
            "localityLbSetting.failover[1]",
            "localityLbSetting.failover[1]"
        ]
    );
    assert_eq!(
        lb(
            json!({"failover": [{"from": "a", "to": "b"}], "failoverPriority": ["topology.kubernetes.io/zone"]})
        ),
        vec!["localityLbSetting.failoverPriority"]
    );
    // MeshConfig passes an outlier detection to the check, so failover alone never warns.
    assert_eq!(
        warnings_at(json!({"localityLbSetting": {"failover": [{"from": "a", "to": "b"}]}})),
        NONE
    );
}

#[test]
fn tls_settings() {
    assert_eq!(
        errors_at(json!({"meshMTLS": {"ecdhCurves": ["P-256"]}})),
        vec!["meshMTLS.ecdhCurves"]
    );
    let f = found(
        json!({"tlsDefaults": {"ecdhCurves": ["P-256", "P-256", "P-999", "X25519MLKEM768"]}}),
    );
    assert_eq!(
        f,
        vec![
            (
                "tlsDefaults.ecdhCurves".into(),
                Severity::Warning,
                Code::InvalidValue
            ),
            (
                "tlsDefaults.ecdhCurves".into(),
                Severity::Warning,
                Code::InvalidValue
            )
        ]
    );
}

#[test]
fn ca_certificates_oneof() {
    let f = found(
        json!({"caCertificates": [{"pem": "x", "spiffeBundleUrl": "https://b"}, {"pem": "y", "trustDomains": ["td"]}]}),
    );
    assert_eq!(
        f,
        vec![("caCertificates[0]".into(), Severity::Error, Code::Conflict)]
    );
}

#[test]
fn selectors() {
    let v = json!({
        "discoverySelectors": [
            {"matchLabels": {"env": "prod"}},
            {"matchExpressions": [{"key": "app", "operator": "In", "values": ["a"]}]},
            {"matchExpressions": [{"key": "app", "operator": "Equals", "values": ["a"]}]},
            {"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["a"]}]},
            {"matchLabels": {"bad key!": "v"}}
        ],
        "serviceScopeConfigs": [
            {"servicesSelector": {"matchExpressions": [{"key": "istio.io/global", "operator": "Exists"}]}, "scope": "GLOBAL"},
            {"namespaceSelector": {"matchExpressions": [{"key": "x", "operator": "In"}]}}
        ]
    });
    assert_eq!(errors_at(v.clone()), NONE);
    assert_eq!(
        warnings_at(v),
        vec![
            "discoverySelectors[2].matchExpressions[0].operator",
            "discoverySelectors[3].matchExpressions[0].values",
            "discoverySelectors[4].matchLabels[\"bad key!\"]",
            "serviceScopeConfigs[1].namespaceSelector.matchExpressions[0].values"
        ]
    );
}

#[test]
fn default_providers_must_exist() {
    let v = json!({
        "extensionProviders": [{"name": "otel", "opentelemetry": {"service": "otel.istio-system.svc.cluster.local", "port": 4317}}],
        "defaultProviders": {"tracing": ["otel"], "metrics": ["prometheus"], "accessLogging": ["envoy", "missing"]}
    });
    assert_eq!(warnings_at(v), vec!["defaultProviders.accessLogging[1]"]);
}

#[test]
fn nested_proxy_config_is_validated() {
    assert_eq!(
        errors_at(json!({"defaultConfig": {"discoveryAddress": "istiod"}})),
        vec!["defaultConfig.discoveryAddress"]
    );
}

#[test]
fn extension_problems_are_warnings() {
    let v = json!({"extensionProviders": [{"name": "a", "zipkin": {"service": "bad_host", "port": 0}}]});
    assert_eq!(errors_at(v.clone()), NONE);
    assert_eq!(
        warnings_at(v),
        vec![
            "extensionProviders[0].zipkin.service",
            "extensionProviders[0].zipkin.port"
        ]
    );
}

#[test]
fn deprecations() {
    let f = found(
        json!({"certificates": [{"secretName": "s", "dnsNames": ["a.b"]}], "verifyCertificateAtClient": true}),
    );
    assert_eq!(
        f,
        vec![
            ("certificates".into(), Severity::Warning, Code::Deprecated),
            (
                "verifyCertificateAtClient".into(),
                Severity::Warning,
                Code::Deprecated
            )
        ]
    );
}

#[test]
fn round_trip() {
    let v: serde_json::Value = serde_json::from_str(
        r#"{
        "proxyListenPort": 15001,
        "proxyInboundListenPort": 15006,
        "proxyHttpPort": 15080,
        "connectTimeout": "10s",
        "protocolDetectionTimeout": "0.100s",
        "tcpKeepalive": {"probes": 3, "time": "7200s", "interval": "75s"},
        "ingressClass": "istio",
        "ingressService": "istio-ingressgateway",
        "ingressControllerMode": "STRICT",
        "ingressSelector": "ingressgateway",
        "enableTracing": true,
        "accessLogFile": "/dev/stdout",
        "accessLogFormat": "%START_TIME%",
        "accessLogEncoding": "JSON",
        "enableEnvoyAccessLogService": true,
        "disableEnvoyListenerLog": true,
        "defaultConfig": {"discoveryAddress": "istiod:15012", "holdApplicationUntilProxyStarts": true},
        "outboundTrafficPolicy": {"mode": "ALLOW_ANY"},
        "inboundTrafficPolicy": {"mode": "LOCALHOST"},
        "configSources": [{"address": "k8s://", "tlsSettings": {"mode": "ISTIO_MUTUAL"}, "subscribedResources": ["SERVICE_REGISTRY"]}],
        "enableAutoMtls": false,
        "trustDomain": "example.com",
        "trustDomainAliases": ["old.example.com"],
        "caCertificates": [{"pem": "PEM", "certSigners": ["s"], "trustDomains": ["td"]}, {"spiffeBundleUrl": "https://b"}],
        "defaultServiceExportTo": ["."],
        "defaultVirtualServiceExportTo": ["*"],
        "defaultDestinationRuleExportTo": ["~"],
        "rootNamespace": "istio-config",
        "localityLbSetting": {"enabled": true, "failover": [{"from": "us", "to": "eu"}]},
        "dnsRefreshRate": "60s",
        "h2UpgradePolicy": "UPGRADE",
        "inboundClusterStatName": "%SERVICE%",
        "outboundClusterStatName": "%SERVICE_FQDN%_%SERVICE_PORT%",
        "certificates": [{"secretName": "s", "dnsNames": ["a.b"]}],
        "serviceSettings": [{"settings": {"clusterLocal": true}, "hosts": ["*.foo.svc.cluster.local"]}],
        "enablePrometheusMerge": false,
        "verifyCertificateAtClient": true,
        "ca": {"address": "ca:8932", "tlsSettings": {"mode": "SIMPLE"}, "requestTimeout": "10s", "istiodSide": true},
        "extensionProviders": [{"name": "prom", "prometheus": {}}],
        "defaultProviders": {"tracing": ["t"], "metrics": ["prom"], "accessLogging": ["envoy"]},
        "discoverySelectors": [{"matchLabels": {"env": "prod"}}],
        "pathNormalization": {"normalization": "MERGE_SLASHES"},
        "defaultHttpRetryPolicy": {"attempts": 3, "retryOn": "5xx"},
        "meshMTLS": {"minProtocolVersion": "TLSV1_3"},
        "tlsDefaults": {"minProtocolVersion": "TLSV1_2", "ecdhCurves": ["P-256"], "cipherSuites": ["ECDHE-RSA-AES128-GCM-SHA256"]},
        "compliancePolicy": "fips-140-2",
        "serviceScopeConfigs": [{"namespaceSelector": {"matchLabels": {"a": "b"}}, "servicesSelector": {"matchLabels": {"c": "d"}}, "scope": "GLOBAL"}]
    }"#,
    )
    .expect("valid JSON");
    let m = mesh(v);
    let back = serde_json::to_value(&m).expect("serializes");
    assert_eq!(mesh(back.clone()), m);
    assert_eq!(back["meshMTLS"]["minProtocolVersion"], "TLSV1_3");
    assert_eq!(back["h2UpgradePolicy"], "UPGRADE");
    assert_eq!(back["serviceScopeConfigs"][0]["scope"], "GLOBAL");
}
