//! Tests: Istio's accepted and rejected cases for these rules, and serde round trips.

use super::*;
use crate::diag::{Code, Severity};
use crate::validate::check;
use serde_json::json;

fn values(v: serde_json::Value) -> Values {
    serde_json::from_value(v).expect("valid values JSON")
}

/// `(path, severity, code)` of every finding.
fn found(v: serde_json::Value) -> Vec<(String, Severity, Code)> {
    check(&values(v), "istio-system")
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

const NONE: Vec<String> = Vec::new();

#[test]
fn seed_values() {
    let v = json!({
        "global": {"meshID": "parallel-ai-mesh", "network": "parallel-ai-network", "hub": "gcr.io/istio-release", "tag": "1.20.0",
            "proxy": {"resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "200m", "memory": "256Mi"}}}},
        "pilot": {"resources": {"requests": {"cpu": "500m"}}, "env": {"PILOT_ENABLE_WORKLOAD_ENTRY_CROSS_CLUSTER": true}}
    });
    let vals = values(v.clone());
    assert_eq!(
        vals.global.as_ref().map(|g| g.mesh_id.as_str()),
        Some("parallel-ai-mesh")
    );
    assert_eq!(
        vals.pilot
            .and_then(|p| p.env)
            .and_then(|e| e.get("PILOT_ENABLE_WORKLOAD_ENTRY_CROSS_CLUSTER").cloned()),
        Some(json!(true))
    );
    assert_eq!(
        found(v),
        vec![
            (
                "global.proxy.resources".into(),
                Severity::Warning,
                Code::Deprecated
            ),
            (
                "pilot.resources".into(),
                Severity::Warning,
                Code::Deprecated
            ),
        ]
    );
}

#[test]
fn ip_ranges() {
    let ranges = |inc: &str, exc: &str| {
        errors_at(json!({"global": {"proxy": {"includeIPRanges": inc, "excludeIPRanges": exc}}}))
    };
    assert_eq!(ranges("*", ""), NONE);
    assert_eq!(ranges("10.0.0.0/8,172.16.0.0/12", "fd00::/8"), NONE);
    assert_eq!(
        ranges("10.0.0.1", "10.0.0.0/33,"),
        vec![
            "global.proxy.includeIPRanges",
            "global.proxy.excludeIPRanges",
            "global.proxy.excludeIPRanges"
        ]
    );
}

#[test]
fn inbound_ports() {
    let ports = |inc: &str, exc: &str| {
        errors_at(
            json!({"global": {"proxy": {"includeInboundPorts": inc, "excludeInboundPorts": exc}}}),
        )
    };
    assert_eq!(ports("*", "15020,0"), NONE);
    assert_eq!(
        ports("80,http", "70000"),
        vec![
            "global.proxy.includeInboundPorts",
            "global.proxy.excludeInboundPorts"
        ]
    );
    // istioctl does not check the outbound port lists.
    assert_eq!(
        errors_at(json!({"global": {"proxy": {"excludeOutboundPorts": "x"}}})),
        NONE
    );
}

#[test]
fn ingress_ports_need_root_below_1024() {
    let v = json!({"gateways": {"istio-ingressgateway": {"ingressPorts": [
        {"port": 80, "targetPort": 8080},
        {"port": 15443},
        {"port": 443},
        {"port": 8443, "targetPort": 443},
        {"port": 80, "targetPort": "http"}
    ]}}});
    assert_eq!(
        errors_at(v),
        vec![
            "gateways.istio-ingressgateway.ingressPorts[2]",
            "gateways.istio-ingressgateway.ingressPorts[3]"
        ]
    );
}

#[test]
fn nftables_with_distroless() {
    let f = found(json!({"global": {"nativeNftables": true, "variant": "distroless"}}));
    assert_eq!(
        f,
        vec![(
            "global.nativeNftables".into(),
            Severity::Warning,
            Code::InvalidValue
        )]
    );
    assert_eq!(found(json!({"global": {"nativeNftables": true}})), vec![]);
}

#[test]
fn mesh_config_inside_values() {
    assert_eq!(
        errors_at(
            json!({"meshConfig": {"defaultConfig": {"proxyStatsMatcher": {"inclusionRegexps": ["("]}}}})
        ),
        vec!["meshConfig.defaultConfig.proxyStatsMatcher.inclusionRegexps[0]"]
    );
}

#[test]
fn deprecations() {
    let f = found(json!({
        "istioCni": {"enabled": true},
        "pilot": {"replicaCount": 2, "cni": {"chained": true}},
        "gateways": {"istio-ingressgateway": {"replicaCount": 2}, "istio-egressgateway": {"tolerations": [{}]}},
        "cni": {"logLevel": "debug", "repair": {"createEvents": "x"}},
        "global": {"jwtPolicy": "third-party-jwt", "proxy": {"holdApplicationUntilProxyStarts": true},
            "proxy_init": {"resources": {}}, "sds": {"token": {"aud": "istio-ca"}}}
    }));
    assert!(
        f.iter()
            .all(|x| x.1 == Severity::Warning && x.2 == Code::Deprecated),
        "{f:?}"
    );
    let paths: Vec<&str> = f.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "global.proxy.holdApplicationUntilProxyStarts",
            "global.jwtPolicy",
            "global.sds.token",
            "global.proxy_init.resources",
            "pilot.replicaCount",
            "pilot.cni.chained",
            "cni.logLevel",
            "cni.repair.createEvents",
            "gateways.istio-ingressgateway.replicaCount",
            "gateways.istio-egressgateway.tolerations",
            "istioCni",
        ]
    );
}

#[test]
fn json_names_with_acronyms_and_dashes() {
    let v = values(json!({
        "istioCni": {"enabled": true},
        "gateways": {"istio-ingressgateway": {"loadBalancerIP": "1.2.3.4"}},
        "cni": {"resourceQuotas": {"enabled": true, "pods": 64}, "pspClusterRole": "r"},
        "global": {"meshID": "m", "podDNSSearchNamespaces": ["a"], "proxy_init": {"image": "i"}}
    }));
    assert!(v.istio_cni.is_some());
    let back = serde_json::to_value(&v).expect("serializes");
    assert_eq!(back["istioCni"]["enabled"], true);
    assert_eq!(
        back["gateways"]["istio-ingressgateway"]["loadBalancerIP"],
        "1.2.3.4"
    );
    assert_eq!(back["cni"]["resourceQuotas"]["pods"], 64);
    assert_eq!(back["global"]["podDNSSearchNamespaces"][0], "a");
}

#[test]
fn round_trip() {
    let v: serde_json::Value = serde_json::from_str(
        r#"{
        "cni": {"enabled": true, "hub": "h", "tag": "t", "variant": "distroless", "image": "install-cni", "pullPolicy": "Always",
            "cniBinDir": "/opt/cni/bin", "cniConfDir": "/etc/cni/net.d", "cniConfFileName": "istio.conf", "cniNetnsDir": "/var/run/netns",
            "excludeNamespaces": ["kube-system"], "affinity": {"a": 1}, "env": {"E": "v"}, "daemonSetLabels": {"l": "v"},
            "podAnnotations": {"a": "b"}, "podLabels": {"p": "l"}, "pspClusterRole": "r", "logLevel": "info",
            "logging": {"level": "default:info"},
            "repair": {"enabled": true, "hub": "h", "tag": 1, "image": "i", "labelPods": true, "repairPods": true, "createEvents": "x",
                "deletePods": true, "brokenPodLabelKey": "k", "brokenPodLabelValue": "v", "initContainerName": "istio-validation"},
            "chained": true, "resourceQuotas": {"enabled": true, "pods": 5000}, "resources": {"requests": {"cpu": "100m"}},
            "privileged": true, "seccompProfile": {"type": "RuntimeDefault"},
            "ambient": {"enabled": true, "configDir": "/etc/ambient-config", "dnsCapture": true, "ipv6": true, "reconcileIptablesOnStartup": true},
            "provider": "multus", "rollingMaxUnavailable": "10%", "istioOwnedCNIConfig": true,
            "istioOwnedCNIConfigFileName": "02-istio.conflist", "useAppArmorAnnotation": true},
        "gateways": {
            "istio-egressgateway": {"autoscaleEnabled": true, "autoscaleMax": 5, "autoscaleMin": 1, "memory": {"targetAverageUtilization": 80},
                "cpu": {"targetAverageUtilization": 80}, "customService": false, "enabled": true, "env": {"a": "b"}, "labels": {"app": "e"},
                "name": "istio-egressgateway", "nodeSelector": {}, "podAnnotations": {}, "podAntiAffinityLabelSelector": [{}],
                "podAntiAffinityTermLabelSelector": [{}], "ports": [{"name": "http2", "port": 80, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"}],
                "resources": {"limits": {"cpu": "2"}}, "secretVolumes": [{"name": "c", "secretName": "s", "mountPath": "/etc/c"}],
                "serviceAnnotations": {"a": "b"}, "type": "ClusterIP", "tolerations": [{}], "rollingMaxSurge": 1, "rollingMaxUnavailable": "25%",
                "configVolumes": [{}], "additionalContainers": [{}], "runAsRoot": false, "injectionTemplate": "gateway",
                "serviceAccount": {"annotations": {"a": "b"}}, "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"},
            "enabled": true,
            "istio-ingressgateway": {"autoscaleEnabled": true, "autoscaleMax": 5, "autoscaleMin": 1, "customService": true, "enabled": true,
                "env": {"a": "b"}, "labels": {"app": "i"}, "loadBalancerIP": "1.2.3.4", "loadBalancerSourceRanges": ["0.0.0.0/0"],
                "name": "istio-ingressgateway", "ports": [{"name": "https", "port": 443, "targetPort": 8443}], "replicaCount": 2,
                "resources": {"requests": {"cpu": "1"}}, "secretVolumes": [], "serviceAnnotations": {}, "type": "LoadBalancer",
                "externalTrafficPolicy": "Local", "ingressPorts": [{"port": 8080}], "runAsRoot": true, "injectionTemplate": "gateway",
                "ipFamilies": ["IPv6"], "ipFamilyPolicy": "PreferDualStack"},
            "securityContext": {"runAsUser": 1337},
            "seccompProfile": {"type": "RuntimeDefault"}
        },
        "global": {"arch": {"amd64": 2, "ppc64le": 2, "s390x": 2, "arm64": 2}, "certSigners": ["s"], "configValidation": true,
            "defaultNodeSelector": {"a": "b"}, "defaultPodDisruptionBudget": {"enabled": true},
            "defaultResources": {"requests": {"cpu": "10m", "memory": "20Mi"}}, "defaultTolerations": [{"key": "k"}],
            "hub": "docker.io/istio", "imagePullPolicy": "IfNotPresent", "imagePullSecrets": ["s"], "istioNamespace": "istio-system",
            "logAsJson": true, "logging": {"level": "default:info"}, "meshID": "mesh1", "meshNetworks": {"n1": {}},
            "multiCluster": {"enabled": true, "clusterName": "c1", "globalDomainSuffix": "global", "includeEnvoyFilter": true},
            "network": "net1", "podDNSSearchNamespaces": ["global"], "omitSidecarInjectorConfigMap": true, "operatorManageWebhooks": true,
            "priorityClassName": "p",
            "proxy": {"autoInject": "enabled", "clusterDomain": "cluster.local", "componentLogLevel": "misc:error", "enableCoreDump": true,
                "excludeInboundPorts": "15020", "excludeIPRanges": "10.0.0.0/8", "image": "proxyv2", "includeIPRanges": "*",
                "logLevel": "warning", "outlierLogPath": "/dev/stdout", "privileged": false, "readinessInitialDelaySeconds": 1,
                "readinessPeriodSeconds": 2, "readinessFailureThreshold": 30, "seccompProfile": {}, "startupProbe": {"enabled": true, "failureThreshold": 600},
                "statusPort": 15020, "resources": {"requests": {"cpu": "100m"}}, "tracer": "openCensusAgent", "excludeOutboundPorts": "1",
                "lifecycle": {"preStop": {}}, "holdApplicationUntilProxyStarts": true, "includeInboundPorts": "*", "includeOutboundPorts": "2"},
            "proxy_init": {"image": "proxyv2", "resources": {"limits": {"cpu": "1"}}}, "sds": {"token": {"aud": "istio-ca"}},
            "tag": "1.24.0", "variant": "debug",
            "tracer": {"datadog": {"address": "d:1"}, "lightstep": {"address": "l:1", "accessToken": "t"}, "zipkin": {"address": "z:1"},
                "stackdriver": {"debug": true, "maxNumberOfAttributes": 200, "maxNumberOfAnnotations": 200, "maxNumberOfMessageEvents": 200}},
            "remotePilotAddress": "1.2.3.4", "istiod": {"enableAnalysis": true}, "pilotCertProvider": "istiod", "jwtPolicy": "third-party-jwt",
            "sts": {"servicePort": 15463}, "revision": "canary", "mountMtlsCerts": true, "caAddress": "ca:15012", "externalIstiod": true,
            "configCluster": true, "caName": "GkeWorkloadCertificate", "platform": "openshift", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            "waypoint": {"resources": {"requests": {"cpu": "1"}}, "affinity": {}, "topologySpreadConstraints": [{}], "nodeSelector": {}, "toleration": [{}]},
            "trustBundleName": "istio-ca-root-cert", "nativeNftables": false, "networkPolicy": {"enabled": true}, "resourceScope": "namespace",
            "agentgateway": {"image": "ag"}, "enableReaderRBAC": true},
        "pilot": {"enabled": true, "autoscaleEnabled": true, "autoscaleMin": 1, "autoscaleMax": 5, "autoscaleBehavior": {}, "replicaCount": 1,
            "image": "pilot", "traceSampling": 1.0, "resources": {"requests": {"cpu": "500m"}}, "cpu": {"targetAverageUtilization": 80},
            "nodeSelector": {}, "keepaliveMaxServerConnectionAge": "30m", "deploymentLabels": {"a": "b"}, "podLabels": {"c": "d"},
            "configMap": true, "env": {"PILOT_TRACE_SAMPLING": "1"}, "affinity": {}, "rollingMaxSurge": "100%", "rollingMaxUnavailable": "25%",
            "tolerations": [{}], "podAnnotations": {}, "serviceAnnotations": {}, "serviceAccountAnnotations": {},
            "jwksResolverExtraRootCA": "PEM", "hub": "h", "tag": "t", "variant": "distroless", "seccompProfile": {},
            "topologySpreadConstraints": [{}], "terminationGracePeriodSeconds": 30, "extraContainerArgs": [{}], "volumeMounts": [{}],
            "volumes": [{}], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "memory": {"targetAverageUtilization": 80},
            "cni": {"enabled": true, "chained": true, "provider": "default"}, "taint": {"enabled": true, "namespace": "kube-system", "name": "cni.istio.io/not-ready"},
            "trustedZtunnelNamespace": "kube-system",
            "istiodRemote": {"injectionURL": "https://x", "injectionPath": "/inject", "injectionCABundle": "b", "enabled": false, "enabledLocalInjectorIstiod": true},
            "envVarFrom": [{}], "crlConfigMapName": "crl"},
        "ztunnel": {"resourceName": "ztunnel"},
        "telemetry": {"enabled": true, "v2": {"enabled": true, "prometheus": {"enabled": true}, "stackdriver": {"enabled": false}}},
        "sidecarInjectorWebhook": {"enableNamespacesByDefault": false, "reinvocationPolicy": "IfNeeded", "neverInjectSelector": [{}],
            "alwaysInjectSelector": [{}], "rewriteAppHTTPProbe": true, "injectedAnnotations": {}, "injectionURL": "https://y",
            "templates": {"t": "x"}, "defaultTemplates": ["sidecar"]},
        "istioCni": {"enabled": true},
        "revision": "canary",
        "ownerName": "istioctl",
        "meshConfig": {"accessLogFile": "/dev/stdout"},
        "base": {"enableCRDTemplates": true, "excludedCRDs": ["x"], "validationURL": "https://v", "enableIstioConfigCRDs": true,
            "validateGateway": true, "validationCABundle": "b"},
        "istiodRemote": {"enabled": true},
        "revisionTags": ["prod"],
        "defaultRevision": "canary",
        "profile": "ambient",
        "compatibilityVersion": "1.23",
        "experimental": {"stableValidationPolicy": true},
        "gatewayClasses": {"istio": {}}
    }"#,
    )
    .expect("valid JSON");
    let vals = values(v);
    let back = serde_json::to_value(&vals).expect("serializes");
    assert_eq!(values(back.clone()), vals);
    assert_eq!(back["global"]["meshID"], "mesh1");
    assert_eq!(back["global"]["proxy_init"]["image"], "proxyv2");
    assert_eq!(back["global"]["proxy"]["excludeIPRanges"], "10.0.0.0/8");
    assert_eq!(back["pilot"]["jwksResolverExtraRootCA"], "PEM");
    assert_eq!(back["cni"]["istioOwnedCNIConfig"], true);
    assert_eq!(back["global"]["resourceScope"], "namespace");
}
