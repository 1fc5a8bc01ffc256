//! Tests: Istio's accepted and rejected cases for these rules, and serde round trips.

use super::*;
use crate::diag::{Code, Severity};
use crate::validate::check;
use crate::{Loader, validate_all};
use serde_json::json;

fn spec(v: serde_json::Value) -> IstioOperatorSpec {
    serde_json::from_value(v).expect("valid IstioOperator spec JSON")
}

/// `(path, severity, code)` of every finding of a spec.
fn found(v: serde_json::Value) -> Vec<(String, Severity, Code)> {
    check(&spec(v), "istio-system")
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

/// Loads and validates a YAML IstioOperator end to end: `(path, severity, code)`.
fn load(yaml: &str) -> Vec<(String, Severity, Code)> {
    let mut l = Loader::new();
    l.load_str("iop.yaml", yaml);
    let mut r = l.finish();
    assert_eq!(r.resources.len(), 1, "{:?}", r.findings);
    validate_all(&mut r);
    r.findings
        .into_iter()
        .map(|f| (f.path.to_string(), f.severity, f.code))
        .collect()
}

const NONE: Vec<String> = Vec::new();

const SEED_VALUES: &str = "apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata:
  name: control-plane
spec:
  values:
    global:
      meshID: parallel-ai-mesh
      network: parallel-ai-network
      hub: gcr.io/istio-release
      tag: 1.20.0
      proxy:
        resources:
          requests: {cpu: 100m, memory: 128Mi}
          limits: {cpu: 200m, memory: 256Mi}
    pilot:
      resources:
        requests: {cpu: 500m, memory: 2048Mi}
      env:
        PILOT_ENABLE_WORKLOAD_ENTRY_CROSS_CLUSTER: true
  components:
    pilot:
      k8s:
        resources:
          requests: {cpu: 100m, memory: 128Mi}
    ingressGateways:
    - name: istio-ingressgateway
      enabled: true
      k8s:
        service:
          type: LoadBalancer
        resources:
          requests: {cpu: 100m, memory: 128Mi}
          limits: {cpu: 2000m, memory: 1024Mi}
";

#[test]
fn seeds_load_with_only_deprecations() {
    assert_eq!(
        load(SEED_VALUES),
        vec![
            (
                "spec.values.global.proxy.resources".into(),
                Severity::Warning,
                Code::Deprecated
            ),
            (
                "spec.values.pilot.resources".into(),
                Severity::Warning,
                Code::Deprecated
            ),
        ]
    );
    let mesh = "apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: {name: prod-config}
spec:
  meshConfig:
    accessLogFile: /dev/stdout
    trustDomain: parallel-ai.cluster.local
    defaultConfig:
      holdApplicationUntilProxyStarts: true
      proxyStatsMatcher:
        inclusionRegexps: ['.*_cx_.*', '.*_rq_.*']
        exclusionRegexps: ['.*_bucket']
";
    assert_eq!(load(mesh), vec![]);
}

#[test]
fn unknown_values_keys_are_errors_like_istioctl() {
    // istioctl decodes values with strict jsonpb: "unknown field" fails the install.
    let yaml = "apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: {name: x}
spec:
  values:
    global:
      trustDomain: cluster.local
      caAddress: istiod.istio-system.svc:15012
    istiod:
      resources: {requests: {cpu: 500m}}
";
    let f = load(yaml);
    assert!(
        f.contains(&(
            "spec.values.global.trustDomain".into(),
            Severity::Error,
            Code::UnknownField
        )),
        "{f:?}"
    );
    assert!(
        f.contains(&(
            "spec.values.istiod".into(),
            Severity::Error,
            Code::UnknownField
        )),
        "{f:?}"
    );
    // The escape hatch istioctl offers takes anything.
    let ok = "apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: {name: x}
spec:
  unvalidatedValues:
    istiod: {resources: {requests: {cpu: 500m}}}
";
    assert_eq!(load(ok), vec![]);
}

#[test]
fn hub_and_tag() {
    assert_eq!(
        errors_at(json!({"hub": "docker.io/istio", "tag": "1.24.0"})),
        NONE
    );
    assert_eq!(
        errors_at(json!({"hub": "localhost:5000/istio", "tag": 1.2})),
        NONE
    );
    assert_eq!(errors_at(json!({"hub": "Docker.io/Istio"})), vec!["hub"]);
    assert_eq!(
        errors_at(json!({"hub": "bad registry.io/istio"})),
        vec!["hub"]
    );
    assert_eq!(errors_at(json!({"tag": "1.24:0"})), vec!["tag"]);
    assert_eq!(errors_at(json!({"tag": ""})), vec!["tag"]);
    assert_eq!(errors_at(json!({"tag": {"a": 1}})), vec!["tag"]);
}

#[test]
fn revision_must_be_a_label() {
    assert_eq!(errors_at(json!({"revision": "1-24-0"})), NONE);
    assert_eq!(errors_at(json!({"revision": "1.24.0"})), vec!["revision"]);
}

#[test]
fn gateway_names() {
    let v = json!({"components": {
        "ingressGateways": [{"name": "istio-ingressgateway"}, {"name": "Ingress_GW"}],
        "egressGateways": [{"name": ""}, {"name": "egress.gw-1"}]
    }});
    assert_eq!(errors_at(v), vec!["components.ingressGateways[1].name"]);
}

#[test]
fn privileged_gateway_ports() {
    let gw = |ports: serde_json::Value| json!({"components": {"ingressGateways": [{"name": "gw", "k8s": {"service": {"ports": ports}}}]}});
    assert_eq!(
        errors_at(gw(json!([
            {"name": "http", "port": 80, "targetPort": 8080},
            {"name": "status", "port": 15021},
            {"name": "named", "port": 443, "targetPort": "https"}
        ]))),
        NONE
    );
    assert_eq!(
        errors_at(gw(
            json!([{"name": "http", "port": 80}, {"name": "tls", "port": 8443, "targetPort": 443}])
        )),
        vec![
            "components.ingressGateways[0].k8s.service.ports[0]",
            "components.ingressGateways[0].k8s.service.ports[1]"
        ]
    );
    // runAsRoot lifts the restriction for that gateway chart only.
    let mut v = gw(json!([{"name": "http", "port": 80}]));
    v["values"] = json!({"gateways": {"istio-ingressgateway": {"runAsRoot": true}}});
    assert_eq!(errors_at(v), NONE);
}

#[test]
fn autoscaling_and_replicas() {
    let v = json!({"components": {
        "pilot": {"k8s": {"replicaCount": 3}},
        "ingressGateways": [{"name": "gw", "k8s": {"replicaCount": 2}}],
        "egressGateways": [{"name": "eg", "k8s": {"replicaCount": 2}}]
    }, "values": {"gateways": {"istio-egressgateway": {"autoscaleEnabled": false}}}});
    assert_eq!(
        warnings_at(v),
        vec![
            "components.ingressGateways[0].k8s.replicaCount",
            "components.pilot.k8s.replicaCount"
        ]
    );
    let v = json!({"components": {"pilot": {"k8s": {"replicaCount": 3}}},
        "values": {"pilot": {"autoscaleEnabled": false}}});
    assert_eq!(warnings_at(v), NONE);
    assert_eq!(
        warnings_at(json!({"components": {"pilot": {"k8s": {"replicaCount": 1}}}})),
        NONE
    );
}

#[test]
fn mesh_config_is_validated() {
    assert_eq!(
        errors_at(
            json!({"meshConfig": {"trustDomain": "bad_td"}, "values": {"meshConfig": {"connectTimeout": "2h"}}})
        ),
        vec!["meshConfig.trustDomain", "values.meshConfig.connectTimeout"]
    );
}

#[test]
fn round_trip() {
    let v: serde_json::Value = serde_json::from_str(
        r#"{
        "profile": "demo",
        "installPackagePath": "/tmp/istio",
        "hub": "docker.io/istio",
        "tag": "1.24.0",
        "namespace": "istio-system",
        "revision": "canary",
        "compatibilityVersion": "1.23",
        "meshConfig": {"accessLogFile": "/dev/stdout"},
        "components": {
            "base": {"enabled": true, "k8s": {"replicaCount": 1}},
            "pilot": {"enabled": true, "namespace": "istio-system", "hub": "h", "tag": 1.2, "k8s": {
                "affinity": {"nodeAffinity": {}},
                "env": [{"name": "A", "value": "b"}],
                "hpaSpec": {"maxReplicas": 5, "minReplicas": 2},
                "imagePullPolicy": "Always",
                "nodeSelector": {"a": "b"},
                "podDisruptionBudget": {"minAvailable": 1},
                "podAnnotations": {"x": "y"},
                "priorityClassName": "high",
                "readinessProbe": {"periodSeconds": 3},
                "replicaCount": 2,
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                "service": {"type": "ClusterIP", "ports": [{"name": "grpc", "port": 15010}]},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "100%", "maxUnavailable": 0}},
                "tolerations": [{"key": "k", "operator": "Exists"}],
                "serviceAnnotations": {"s": "t"},
                "securityContext": {"runAsNonRoot": true},
                "volumes": [{"name": "v", "emptyDir": {}}],
                "volumeMounts": [{"name": "v", "mountPath": "/v"}],
                "overlays": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "istiod",
                    "patches": [{"path": "spec.template.spec.hostNetwork", "value": true}, {"path": "metadata.labels.x"}]}]
            }},
            "cni": {"enabled": true, "namespace": "kube-system"},
            "ztunnel": {"enabled": false},
            "istiodRemote": {"enabled": false},
            "ingressGateways": [{"name": "istio-ingressgateway", "enabled": true, "namespace": "ingress",
                "label": {"istio": "ingressgateway"}, "hub": "h", "tag": "t", "k8s": {"service": {"type": "LoadBalancer"}}}],
            "egressGateways": [{"name": "istio-egressgateway", "enabled": false}],
            "gateway": {"enabled": false}
        },
        "values": {"global": {"meshID": "m"}},
        "unvalidatedValues": {"custom": {"x": 1}}
    }"#,
    )
    .expect("valid JSON");
    let s = spec(v);
    let back = serde_json::to_value(&s).expect("serializes");
    assert_eq!(spec(back.clone()), s);
    assert_eq!(
        back["components"]["ingressGateways"][0]["label"]["istio"],
        "ingressgateway"
    );
    assert_eq!(back["components"]["pilot"]["tag"], 1.2);
}
