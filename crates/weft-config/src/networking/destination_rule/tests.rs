use super::*;
use crate::diag::{Code, Finding, Severity};
use crate::validate::check;
use serde_json::{Value, json};

fn dr(j: Value) -> DestinationRule {
    serde_json::from_value(j).expect("DestinationRule should deserialize")
}

fn run(j: Value) -> Vec<Finding> {
    check(&dr(j), "default")
}

fn paths(fs: &[Finding], sev: Severity) -> Vec<String> {
    fs.iter()
        .filter(|f| f.severity == sev)
        .map(|f| f.path.to_string())
        .collect()
}

fn errors(j: Value) -> Vec<String> {
    paths(&run(j), Severity::Error)
}

fn warnings(j: Value) -> Vec<String> {
    paths(&run(j), Severity::Warning)
}

/// A rule for `reviews` with the given traffic policy.
fn tp(policy: Value) -> Value {
    json!({"host": "reviews.prod.svc.cluster.local", "trafficPolicy": policy})
}

fn clean(j: Value) {
    let fs = run(j);
    assert!(fs.is_empty(), "expected no findings, got {fs:#?}");
}

#[test]
fn seed_policies_are_valid() {
    clean(tp(json!({
        "connectionPool": {
            "tcp": {"maxConnections": 100, "connectTimeout": "30ms",
                    "tcpKeepalive": {"time": "7200s", "interval": "75s", "probes": 9}},
            "http": {"h2UpgradePolicy": "UPGRADE", "http1MaxPendingRequests": 10, "http2MaxRequests": 100,
                     "maxRequestsPerConnection": 10, "maxRetries": 3, "idleTimeout": "60s"}
        },
        "outlierDetection": {"consecutive5xxErrors": 7, "consecutiveGatewayErrors": 3, "interval": "5m",
                             "baseEjectionTime": "15m", "maxEjectionPercent": 50, "minHealthPercent": 30},
        "tls": {"mode": "ISTIO_MUTUAL"}
    })));
    clean(tp(
        json!({"connectionPool": {"http": {"useClientProtocol": true}}}),
    ));
    // LEAST_CONN is accepted, with a deprecation warning.
    let fs = run(
        json!({"host": "ratings", "subsets": [{"name": "v1", "labels": {"version": "v1"},
        "trafficPolicy": {"loadBalancer": {"simple": "LEAST_CONN"}}}]}),
    );
    assert_eq!(fs.len(), 1);
    assert_eq!(fs[0].code, Code::Deprecated);
    assert_eq!(
        fs[0].path.to_string(),
        "subsets[0].trafficPolicy.loadBalancer.simple"
    );
}

#[test]
fn round_trips_every_field() {
    let lb = json!({
        "consistentHash": {"httpCookie": {"name": "c", "path": "/", "ttl": "10s",
                                          "attributes": [{"name": "SameSite", "value": "Strict"}, {"name": "Secure"}]},
                           "ringHash": {"minimumRingSize": 1024}, "minimumRingSize": 5},
        "localityLbSetting": {"distribute": [{"from": "us-west/zone1/*", "to": {"us-west/zone1/*": 80, "us-west/zone2/*": 20}}],
                              "failover": [{"from": "us-east", "to": "eu-west"}],
                              "failoverPriority": ["topology.istio.io/network"], "enabled": true},
        "warmupDurationSecs": "60s",
        "warmup": {"duration": "120s", "minimumPercent": 10.0, "aggression": 1.5}
    });
    let pool = json!({
        "tcp": {"maxConnections": 1, "connectTimeout": "1s", "tcpKeepalive": {"probes": 3, "time": "10s", "interval": "5s"},
                "maxConnectionDuration": "3600s", "idleTimeout": "600s"},
        "http": {"http1MaxPendingRequests": 1, "http2MaxRequests": 2, "maxRequestsPerConnection": 3, "maxRetries": 4,
                 "idleTimeout": "30s", "h2UpgradePolicy": "DO_NOT_UPGRADE", "useClientProtocol": true, "maxConcurrentStreams": 5}
    });
    let outlier = json!({"consecutiveErrors": 1, "splitExternalLocalOriginErrors": true, "consecutiveLocalOriginFailures": 2,
                         "consecutiveGatewayErrors": 3, "consecutive5xxErrors": 4, "interval": "10s",
                         "baseEjectionTime": "30s", "maxEjectionPercent": 10, "minHealthPercent": 20});
    let tls = json!({"mode": "MUTUAL", "clientCertificate": "/c", "privateKey": "/k", "caCertificates": "/ca",
                     "credentialName": "cred", "subjectAltNames": ["san"], "sni": "s", "insecureSkipVerify": false, "caCrl": "/crl"});
    let policy = json!({
        "loadBalancer": lb, "connectionPool": pool, "outlierDetection": outlier, "tls": tls,
        "portLevelSettings": [{"port": {"number": 80}, "loadBalancer": {"simple": "ROUND_ROBIN"},
                               "connectionPool": pool, "outlierDetection": outlier, "tls": tls}],
        "tunnel": {"protocol": "POST", "targetHost": "10.0.0.1", "targetPort": 8443},
        "proxyProtocol": {"version": "V2"},
        "retryBudget": {"percent": 20.0, "minRetryConcurrency": 3}
    });
    let j = json!({
        "host": "a.b.svc.cluster.local", "trafficPolicy": policy,
        "subsets": [{"name": "v1", "labels": {"version": "v1"}, "trafficPolicy": {"loadBalancer": {"simple": "LEAST_REQUEST"}}}],
        "exportTo": ["."], "workloadSelector": {"matchLabels": {"app": "a"}}
    });
    let parsed = dr(j.clone());
    let out = serde_json::to_value(&parsed).expect("serialize");
    assert_eq!(out, j, "serialized form must use the proto JSON names");
    assert_eq!(dr(out), parsed);
}

#[test]
fn istio_testdata_warmup() {
    for w in [
        json!({"duration": "300s"}),
        json!({"duration": "300s", "minimumPercent": 5.0}),
        json!({"duration": "300s", "minimumPercent": 5.0, "aggression": 5.0}),
    ] {
        clean(tp(json!({"loadBalancer": {"warmup": w}})));
    }
    let w = |w: Value| errors(tp(json!({"loadBalancer": {"warmup": w}})));
    assert_eq!(
        w(json!({"duration": "300s", "minimumPercent": 150.0})),
        ["trafficPolicy.loadBalancer.warmup.minimumPercent"]
    );
    assert_eq!(
        w(json!({"minimumPercent": 5.0})),
        ["trafficPolicy.loadBalancer.warmup.duration"]
    );
    assert_eq!(
        w(json!({"duration": "300s", "aggression": -0.1})),
        ["trafficPolicy.loadBalancer.warmup.aggression"]
    );
}

#[test]
fn host_subsets_and_export() {
    assert_eq!(errors(json!({"host": ""})), ["host"]);
    assert_eq!(errors(json!({"host": "foo..com"})), ["host"]);
    clean(json!({"host": "*.example.com"}));
    let e = errors(
        json!({"host": "a", "subsets": [{"name": "v1"}, {"name": "v1"}, {"name": "V_2", "labels": {"-x": "y"}}]}),
    );
    assert_eq!(
        e,
        [
            "subsets[1].name",
            "subsets[2].name",
            "subsets[2].labels[-x]"
        ]
    );
    assert_eq!(
        errors(json!({"host": "a", "subsets": [{"labels": {"a": "b"}}]})),
        ["subsets[0].name"]
    );
    assert_eq!(
        errors(json!({"host": "a", "exportTo": ["*", "ns"]})),
        ["exportTo"]
    );
    let sel = json!({"matchLabels": {"app": "a"}});
    assert_eq!(
        errors(json!({"host": "a", "workloadSelector": sel, "exportTo": ["*"]})),
        ["exportTo"]
    );
    assert_eq!(
        errors(json!({"host": "a", "workloadSelector": sel, "exportTo": [".", "other"]})),
        ["exportTo"]
    );
    clean(json!({"host": "a", "workloadSelector": sel, "exportTo": ["."]}));
    assert_eq!(
        warnings(json!({"host": "a", "workloadSelector": {}})),
        ["workloadSelector"]
    );
}

#[test]
fn traffic_policy_shape() {
    assert_eq!(errors(tp(json!({}))), ["trafficPolicy"]);
    clean(tp(json!({"retryBudget": {"percent": 25.0}})));
    assert_eq!(
        errors(tp(json!({"retryBudget": {"percent": 150.0}}))),
        ["trafficPolicy.retryBudget.percent"]
    );
    let e = errors(tp(
        json!({"tunnel": {"targetHost": "a.com", "targetPort": 80}, "proxyProtocol": {"version": "V1"}}),
    ));
    assert_eq!(e, ["trafficPolicy.proxyProtocol"]);
    clean(tp(json!({"proxyProtocol": {}})));
    let e = errors(tp(
        json!({"tunnel": {"protocol": "GET", "targetHost": "not valid", "targetPort": 0}}),
    ));
    assert_eq!(
        e,
        [
            "trafficPolicy.tunnel.protocol",
            "trafficPolicy.tunnel.targetHost",
            "trafficPolicy.tunnel.targetPort"
        ]
    );
    let e = errors(tp(
        json!({"portLevelSettings": [{"tls": {"mode": "SIMPLE"}}, {"port": {"number": 80}}]}),
    ));
    assert_eq!(
        e,
        [
            "trafficPolicy.portLevelSettings[0].port",
            "trafficPolicy.portLevelSettings[1]"
        ]
    );
}

#[test]
fn connection_pool() {
    let p = |p: Value| errors(tp(json!({"connectionPool": p})));
    assert_eq!(p(json!({})), ["trafficPolicy.connectionPool"]);
    let e = p(
        json!({"http": {"http1MaxPendingRequests": -1, "http2MaxRequests": -1, "maxRequestsPerConnection": -1,
                              "maxRetries": -1, "maxConcurrentStreams": -1}}),
    );
    assert_eq!(e.len(), 5);
    assert_eq!(
        p(json!({"http": {"h2UpgradePolicy": "UPGRADE", "useClientProtocol": true}})),
        ["trafficPolicy.connectionPool.http.useClientProtocol"]
    );
    assert_eq!(
        p(json!({"tcp": {"maxConnections": -1, "connectTimeout": "0s"}})),
        [
            "trafficPolicy.connectionPool.tcp.maxConnections",
            "trafficPolicy.connectionPool.tcp.connectTimeout"
        ]
    );
    assert_eq!(
        p(json!({"tcp": {"tcpKeepalive": {"time": "0.5ms"}}})),
        ["trafficPolicy.connectionPool.tcp.tcpKeepalive.time"]
    );
    assert_eq!(
        p(json!({"http": {"idleTimeout": "1.0005s"}})),
        ["trafficPolicy.connectionPool.http.idleTimeout"]
    );
}

#[test]
fn outlier_detection() {
    let o = |o: Value| run(tp(json!({"outlierDetection": o})));
    let fs = o(json!({"consecutiveErrors": 5}));
    assert_eq!(fs.len(), 1);
    assert_eq!(
        (fs[0].code, fs[0].path.to_string()),
        (
            Code::Deprecated,
            "trafficPolicy.outlierDetection.consecutiveErrors".into()
        )
    );
    assert_eq!(
        paths(
            &o(json!({"consecutiveLocalOriginFailures": 3})),
            Severity::Error
        ),
        ["trafficPolicy.outlierDetection.consecutiveLocalOriginFailures"]
    );
    assert!(
        o(json!({"consecutiveLocalOriginFailures": 3, "splitExternalLocalOriginErrors": true}))
            .is_empty()
    );
    assert_eq!(
        paths(
            &o(json!({"maxEjectionPercent": 101, "minHealthPercent": -1})),
            Severity::Error
        ),
        [
            "trafficPolicy.outlierDetection.maxEjectionPercent",
            "trafficPolicy.outlierDetection.minHealthPercent"
        ]
    );
    assert_eq!(
        paths(&o(json!({"interval": "0s"})), Severity::Error),
        ["trafficPolicy.outlierDetection.interval"]
    );
}

#[test]
fn load_balancer() {
    let l = |l: Value| run(tp(json!({"loadBalancer": l})));
    let e = |l2: Value| paths(&l(l2), Severity::Error);
    assert_eq!(
        e(json!({"simple": "RANDOM", "consistentHash": {"useSourceIp": true}})),
        ["trafficPolicy.loadBalancer"]
    );
    assert_eq!(
        e(json!({"consistentHash": {"httpCookie": {"ttl": "0s"}}})),
        ["trafficPolicy.loadBalancer.consistentHash.httpCookie.name"]
    );
    assert_eq!(
        e(json!({"consistentHash": {"httpHeaderName": "x", "useSourceIp": true}})),
        ["trafficPolicy.loadBalancer.consistentHash"]
    );
    assert_eq!(
        e(
            json!({"consistentHash": {"useSourceIp": true, "ringHash": {}, "maglev": {"tableSize": 65537}}})
        ),
        ["trafficPolicy.loadBalancer.consistentHash"]
    );
    assert!(e(json!({"consistentHash": {"httpQueryParameterName": "q", "maglev": {"tableSize": 65537}}})).is_empty());
    let ml = "trafficPolicy.loadBalancer.consistentHash.maglev.tableSize";
    assert_eq!(
        e(json!({"consistentHash": {"maglev": {"tableSize": 10}}})),
        [ml]
    );
    assert_eq!(e(json!({"consistentHash": {"maglev": {}}})), [ml, ml]);
    assert_eq!(
        e(json!({"consistentHash": {"maglev": {"tableSize": 5000011}}})),
        [ml]
    );
    let fs = l(
        json!({"consistentHash": {"httpHeaderName": "x", "minimumRingSize": 10, "ringHash": {"minimumRingSize": 10}}}),
    );
    assert_eq!(
        paths(&fs, Severity::Error),
        ["trafficPolicy.loadBalancer.consistentHash.minimumRingSize"]
    );
    assert_eq!(
        paths(&fs, Severity::Warning),
        ["trafficPolicy.loadBalancer.consistentHash.minimumRingSize"]
    );
    let fs = l(json!({"warmupDurationSecs": "30s"}));
    assert_eq!((fs.len(), fs[0].code), (1, Code::Deprecated));
}

#[test]
fn locality() {
    let loc = |l: Value, outlier: bool| {
        let mut p = json!({"loadBalancer": {"localityLbSetting": l}});
        if outlier {
            p["outlierDetection"] = json!({"consecutive5xxErrors": 5});
        }
        run(tp(p))
    };
    let e = |l: Value| paths(&loc(l, true), Severity::Error);
    let base = "trafficPolicy.loadBalancer.localityLbSetting";
    assert!(loc(json!({"distribute": [{"from": "us-west/zone1/*", "to": {"us-west/zone1/*": 80, "us-west/zone2/*": 20}}]}), false).is_empty());
    assert_eq!(
        e(
            json!({"distribute": [{"from": "a", "to": {"a": 100}}], "failover": [{"from": "a", "to": "b"}]})
        ),
        [format!("{base}.failover")]
    );
    assert_eq!(
        e(json!({"distribute": [{"from": "a", "to": {"a": 50, "b": 40}}]})),
        [format!("{base}.distribute[0].to")]
    );
    assert_eq!(
        e(json!({"distribute": [{"from": "a", "to": {"a": 0, "b": 100}}]})),
        [format!("{base}.distribute[0].to[a]")]
    );
    assert_eq!(
        e(json!({"distribute": [{"from": "a", "to": {"a/*": 50, "a/z": 50}}]})),
        [format!("{base}.distribute[0].to")]
    );
    assert_eq!(
        e(json!({"distribute": [{"from": "a/*/b", "to": {"a": 100}}]})),
        [format!("{base}.distribute")]
    );
    assert_eq!(
        e(
            json!({"distribute": [{"from": "a", "to": {"a": 100}}, {"from": "a/z", "to": {"a": 100}}]})
        ),
        [format!("{base}.distribute")]
    );
    assert_eq!(
        e(json!({"failover": [{"from": "us-east", "to": "us-east"}, {"from": "a/b", "to": "c*"}]})),
        [
            format!("{base}.failover[0]"),
            format!("{base}.failover[1]"),
            format!("{base}.failover[1]")
        ]
    );
    assert_eq!(
        e(
            json!({"failover": [{"from": "a", "to": "b"}], "failoverPriority": ["topology.kubernetes.io/zone"]})
        ),
        [format!("{base}.failoverPriority[0]")]
    );
    assert_eq!(
        paths(
            &loc(
                json!({"failoverPriority": ["topology.istio.io/network"]}),
                false
            ),
            Severity::Warning
        ),
        [base]
    );
    assert!(
        loc(
            json!({"failover": [{"from": "us-east", "to": "eu-west"}]}),
            true
        )
        .is_empty()
    );
}

#[test]
fn client_tls() {
    let t = |t: Value| errors(tp(json!({"tls": t})));
    assert_eq!(
        t(json!({"mode": "MUTUAL"})),
        [
            "trafficPolicy.tls.clientCertificate",
            "trafficPolicy.tls.privateKey"
        ]
    );
    assert!(t(json!({"mode": "MUTUAL", "credentialName": "secret"})).is_empty());
    assert_eq!(
        t(json!({"mode": "SIMPLE", "credentialName": "secret", "caCertificates": "/ca"})),
        ["trafficPolicy.tls.credentialName"]
    );
    assert_eq!(
        t(json!({"mode": "SIMPLE", "insecureSkipVerify": true, "subjectAltNames": ["a"]})),
        ["trafficPolicy.tls.insecureSkipVerify"]
    );
    assert_eq!(
        t(
            json!({"mode": "MUTUAL", "insecureSkipVerify": true, "caCertificates": "/ca", "clientCertificate": "/c", "privateKey": "/k"})
        ),
        ["trafficPolicy.tls.insecureSkipVerify"]
    );
    assert!(t(json!({"mode": "SIMPLE", "insecureSkipVerify": true, "sni": "a.com"})).is_empty());
}

#[test]
fn shared_types_validate_standalone() {
    let pool: ConnectionPoolSettings = serde_json::from_value(json!({})).expect("pool");
    assert_eq!(check(&pool, "default").len(), 1);
    let loc: LocalityLoadBalancerSetting =
        serde_json::from_value(json!({"failover": [{"from": "a", "to": "b"}]})).expect("locality");
    assert!(
        check(&loc, "default").is_empty(),
        "mesh-wide locality settings need no outlier detection"
    );
}
