//! The schemas discovered from the typed resources: every kind explores completely, and the
//! places users most often confuse are where Istio puts them.

use weft_config::kinds::KINDS;

fn sites(kind: &str) -> Vec<String> {
    let info = KINDS.iter().find(|k| k.kind == kind).expect(kind);
    info.schema()
        .sites("")
        .into_iter()
        .map(|s| s.path)
        .collect()
}

#[test]
fn every_kind_has_a_schema_with_its_envelope() {
    for k in KINDS {
        let s: Vec<String> = k.schema().sites("").into_iter().map(|s| s.path).collect();
        for f in [
            "apiVersion",
            "kind",
            "metadata",
            "metadata.name",
            "metadata.labels",
        ] {
            assert!(s.contains(&f.to_string()), "{}: no {f}", k.kind);
        }
    }
}

#[test]
fn fields_are_where_istio_defines_them() {
    let dr = sites("DestinationRule");
    for p in [
        "spec.trafficPolicy.connectionPool.tcp.connectTimeout",
        "spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.time",
        "spec.trafficPolicy.connectionPool.http.h2UpgradePolicy",
        "spec.trafficPolicy.outlierDetection.consecutive5xxErrors",
        "spec.trafficPolicy.loadBalancer.localityLbSetting.failover[].from",
        "spec.subsets[].trafficPolicy.portLevelSettings[].port.number",
    ] {
        assert!(dr.contains(&p.to_string()), "DestinationRule lacks {p}");
    }
    assert!(!dr.contains(&"spec.trafficPolicy.connectionPool.http.connectTimeout".to_string()));
    let vs = sites("VirtualService");
    for p in [
        "spec.http[].match[].headers[*].exact",
        "spec.http[].route[].weight",
        "spec.http[].fault.delay.fixedDelay",
        "spec.http[].retries.perTryTimeout",
        "spec.http[].mirrorPercentage.value",
        "spec.tcp[].route[].destination.port.number",
    ] {
        assert!(vs.contains(&p.to_string()), "VirtualService lacks {p}");
    }
    let pod = sites("Pod");
    assert!(pod.contains(&"spec.containers[].resources.limits".to_string()));
}
