use super::*;
use crate::diag::Severity;
use crate::validate::check;
use serde_json::{Value, json};

fn run(spec: Value) -> Vec<(String, Severity, String)> {
    let sc: Sidecar = serde_json::from_value(spec).expect("decodes");
    check(&sc, "default")
        .into_iter()
        .map(|f| (f.path.to_string(), f.severity, f.message))
        .collect()
}

#[track_caller]
fn assert_finding(spec: Value, path: &str, sev: Severity, needle: &str) {
    let got = run(spec);
    assert!(
        got.iter()
            .any(|(p, s, m)| p == path && *s == sev && m.contains(needle)),
        "expected {sev:?} at {path} containing {needle:?}, got {got:#?}"
    );
}

#[track_caller]
fn assert_clean(spec: Value) {
    assert_eq!(run(spec), vec![]);
}

fn egress(listeners: Value) -> Value {
    json!({"egress": listeners})
}

fn ingress(listener: Value) -> Value {
    json!({"ingress": [listener]})
}

#[test]
fn round_trip() {
    let value = json!({
        "workloadSelector": {"labels": {"app": "ratings"}},
        "ingress": [{
            "port": {"number": 9080, "protocol": "HTTPS", "name": "somename", "targetPort": 1},
            "bind": "0.0.0.0",
            "captureMode": "IPTABLES",
            "defaultEndpoint": "unix:///var/run/someuds.sock",
            "tls": {"mode": "SIMPLE", "serverCertificate": "/c", "privateKey": "/k"},
            "connectionPool": {"tcp": {"maxConnections": 5}}
        }],
        "egress": [{
            "port": {"number": 0, "protocol": "HTTP", "name": "uds"},
            "bind": "unix:///var/run/egress.sock",
            "captureMode": "NONE",
            "hosts": ["*/*"]
        }],
        "inboundConnectionPool": {"tcp": {"maxConnections": 10}},
        "outboundTrafficPolicy": {"mode": "ALLOW_ANY",
                                  "egressProxy": {"host": "proxy.example.com", "subset": "v1", "port": {"number": 3128}}}
    });
    let sc: Sidecar = serde_json::from_value(value.clone()).expect("decodes");
    assert_eq!(sc.ingress[0].capture_mode, CaptureMode::Iptables);
    assert_eq!(sc.egress[0].capture_mode, CaptureMode::None);
    let out = serde_json::to_value(&sc).expect("serializes");
    assert_eq!(out["outboundTrafficPolicy"]["mode"], "ALLOW_ANY");
    assert_eq!(
        out["ingress"][0]["defaultEndpoint"],
        "unix:///var/run/someuds.sock"
    );
    assert_eq!(out["ingress"][0]["port"]["targetPort"], 1);
    assert_eq!(out["egress"][0]["captureMode"], "NONE");
    let back: Sidecar = serde_json::from_value(out).expect("decodes");
    assert_eq!(back, sc);
    assert_eq!(
        serde_json::to_value(Sidecar::default()).ok(),
        Some(json!({}))
    );
}

#[test]
fn proto_doc_examples_are_clean() {
    assert_clean(json!({"egress": [{"hosts": ["./*", "istio-system/*"]}]}));
    assert_clean(json!({
        "workloadSelector": {"labels": {"app": "productpage"}},
        "ingress": [{"port": {"number": 9080, "protocol": "HTTP", "name": "somename"},
                     "defaultEndpoint": "unix:///var/run/someuds.sock"}],
        "egress": [
            {"port": {"number": 9080, "protocol": "HTTP", "name": "egresshttp"}, "hosts": ["prod-us1/*"]},
            {"hosts": ["istio-system/*"]}
        ]
    }));
    assert_clean(json!({
        "ingress": [{"port": {"number": 9080, "protocol": "HTTP", "name": "somename"},
                     "defaultEndpoint": "127.0.0.1:8080", "captureMode": "NONE"}],
        "egress": [{"port": {"number": 3306, "protocol": "MYSQL", "name": "egressmysql"},
                    "captureMode": "NONE", "bind": "127.0.0.1", "hosts": ["*/mysql.foo.com"]}]
    }));
    assert_clean(json!({"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}}));
    assert_clean(
        json!({"ingress": [{"port": {"number": 8443, "protocol": "HTTPS", "name": "h"},
                                     "defaultEndpoint": "[::1]:8080",
                                     "tls": {"mode": "SIMPLE", "serverCertificate": "/c", "privateKey": "/k"}}]}),
    );
}

#[test]
fn empty_and_selector() {
    assert_finding(json!({}), "", Severity::Error, "empty configuration");
    assert_finding(
        json!({"workloadSelector": {}, "egress": [{"hosts": ["*/*"]}]}),
        "workloadSelector",
        Severity::Warning,
        "without labels",
    );
    assert_finding(
        json!({"workloadSelector": {"labels": {"app": "a*"}}, "egress": [{"hosts": ["*/*"]}]}),
        "workloadSelector.labels[app]",
        Severity::Error,
        "wildcard",
    );
    assert_finding(
        json!({"workloadSelector": {"labels": {"": "a"}}, "egress": [{"hosts": ["*/*"]}]}),
        "workloadSelector.labels[\"\"]",
        Severity::Error,
        "empty key",
    );
}

#[test]
fn ingress_listeners() {
    assert_finding(
        ingress(json!({})),
        "ingress[0].port",
        Severity::Error,
        "port is required",
    );
    assert_finding(
        ingress(json!({"port": {"number": 0, "protocol": "HTTP"}})),
        "ingress[0].port.number",
        Severity::Error,
        "1..65535",
    );
    assert_finding(
        ingress(json!({"port": {"number": 80, "protocol": "HTTP", "targetPort": 8080}})),
        "ingress[0].port.targetPort",
        Severity::Error,
        "no impact",
    );
    assert_finding(
        ingress(json!({"port": {"number": 80, "protocol": "HTTPX"}})),
        "ingress[0].port.protocol",
        Severity::Error,
        "unsupported protocol",
    );
    assert_finding(
        ingress(json!({"port": {"number": 80, "name": "a_b"}})),
        "ingress[0].port.name",
        Severity::Error,
        "invalid port name",
    );
    assert_finding(
        ingress(json!({"port": {"number": 80}, "bind": "unix:///x.sock"})),
        "ingress[0].bind",
        Severity::Error,
        "IP address",
    );
    assert_finding(
        json!({"ingress": [{"port": {"number": 80}}, {"port": {"number": 80}}]}),
        "ingress[1].port.number",
        Severity::Error,
        "must be unique",
    );
    let ep = |e: &str| {
        ingress(json!({"port": {"number": 80, "protocol": "HTTP"}, "defaultEndpoint": e}))
    };
    for ok in [
        "127.0.0.1:8080",
        ":8080",
        "0.0.0.0:80",
        "[::]:80",
        "unix://@abstract",
    ] {
        assert_clean(ep(ok));
    }
    assert_finding(
        ep("10.0.0.1:8080"),
        "ingress[0].defaultEndpoint",
        Severity::Error,
        "must be of form",
    );
    assert_finding(
        ep("127.0.0.1"),
        "ingress[0].defaultEndpoint",
        Severity::Error,
        "missing port",
    );
    assert_finding(
        ep("127.0.0.1:http"),
        "ingress[0].defaultEndpoint",
        Severity::Error,
        "not a number",
    );
    assert_finding(
        ep("127.0.0.1:70000"),
        "ingress[0].defaultEndpoint",
        Severity::Error,
        "1..65535",
    );
    assert_finding(
        ep("::1:80"),
        "ingress[0].defaultEndpoint",
        Severity::Error,
        "too many colons",
    );
    assert_finding(
        ep("unix://rel.sock"),
        "ingress[0].defaultEndpoint",
        Severity::Error,
        "absolute path",
    );
}

#[test]
fn ingress_tls() {
    let tls = |t: Value| {
        ingress(json!({"port": {"number": 443, "protocol": "HTTPS", "name": "https"}, "tls": t}))
    };
    for (field, value) in [
        ("subjectAltNames", json!(["san"])),
        ("httpsRedirect", json!(true)),
        ("credentialName", json!("c")),
        ("credentialNames", json!(["c"])),
        (
            "tlsCertificates",
            json!([{"serverCertificate": "/c", "privateKey": "/k"}]),
        ),
    ] {
        let mut t = json!({"mode": "SIMPLE", "serverCertificate": "/c", "privateKey": "/k"});
        t[field] = value;
        assert_finding(
            tls(t),
            &format!("ingress[0].tls.{field}"),
            Severity::Error,
            "sidecar:",
        );
    }
    assert_finding(
        tls(json!({"mode": "ISTIO_MUTUAL"})),
        "ingress[0].tls.mode",
        Severity::Error,
        "cannot set mode to ISTIO_MUTUAL",
    );
    assert_finding(
        tls(json!({"mode": "AUTO_PASSTHROUGH"})),
        "ingress[0].tls.mode",
        Severity::Error,
        "AUTO_PASSTHROUGH",
    );
    assert_finding(
        tls(json!({"mode": "SIMPLE"})),
        "ingress[0].tls.serverCertificate",
        Severity::Error,
        "server certificate",
    );
    assert_finding(
        ingress(json!({"port": {"number": 80, "protocol": "HTTP"},
                       "tls": {"mode": "SIMPLE", "serverCertificate": "/c", "privateKey": "/k"}})),
        "ingress[0].tls",
        Severity::Error,
        "non HTTPS/TLS",
    );
}

#[test]
fn connection_pools() {
    assert_finding(
        ingress(
            json!({"port": {"number": 5432, "protocol": "TCP", "name": "pg"},
                       "connectionPool": {"http": {"http2MaxRequests": 10}}}),
        ),
        "ingress[0].connectionPool.http",
        Severity::Warning,
        "only TCP settings will apply",
    );
    assert_clean(ingress(
        json!({"port": {"number": 80, "protocol": "HTTP", "name": "web"},
                                "connectionPool": {"http": {"http2MaxRequests": 10}}}),
    ));
    assert_clean(json!({"inboundConnectionPool": {"http": {"http1MaxPendingRequests": 10}}}));
    let got = run(json!({"inboundConnectionPool": {}}));
    assert!(
        got.iter()
            .any(|(p, s, _)| p.starts_with("inboundConnectionPool") && *s == Severity::Error),
        "{got:#?}"
    );
}

#[test]
fn egress_listeners() {
    assert_finding(
        egress(json!([{"hosts": ["*/*"]}, {"port": {"number": 80}, "hosts": ["*/*"]}])),
        "egress[0].port",
        Severity::Error,
        "should be the last",
    );
    assert_finding(
        egress(json!([{"hosts": ["a/*"]}, {"hosts": ["b/*"]}])),
        "egress[1].port",
        Severity::Error,
        "only one listener with empty port",
    );
    assert_finding(
        egress(json!([{"port": {"number": 80}}])),
        "egress[0].hosts",
        Severity::Error,
        "at least one host",
    );
    assert_finding(
        egress(
            json!([{"port": {"number": 80}, "hosts": ["*/*"]}, {"port": {"number": 80}, "hosts": ["a/*"]}]),
        ),
        "egress[1].port.number",
        Severity::Error,
        "must be unique",
    );
    assert_finding(
        egress(json!([{"port": {"number": 80, "targetPort": 1}, "hosts": ["*/*"]}])),
        "egress[0].port.targetPort",
        Severity::Error,
        "no impact",
    );
    assert_finding(
        egress(json!([{"port": {"number": 80}, "bind": "not-an-ip", "hosts": ["*/*"]}])),
        "egress[0].bind",
        Severity::Error,
        "IP address",
    );
}

#[test]
fn egress_unix_sockets() {
    let uds = |bind: &str, mode: &str| {
        egress(
            json!([{"port": {"number": 0, "protocol": "HTTP", "name": "uds"}, "bind": bind,
                       "captureMode": mode, "hosts": ["*/*"]}]),
        )
    };
    assert_clean(uds("unix:///var/run/a.sock", "DEFAULT"));
    assert_clean(uds("unix://@abstract", "NONE"));
    assert_finding(
        uds("127.0.0.1", "NONE"),
        "egress[0].bind",
        Severity::Error,
        "ports with 0 value",
    );
    assert_finding(
        uds("unix:///var/run/", "NONE"),
        "egress[0].bind",
        Severity::Error,
        "absolute path",
    );
    assert_finding(
        uds("unix:///a.sock", "IPTABLES"),
        "egress[0].captureMode",
        Severity::Error,
        "DEFAULT/NONE",
    );
    assert_finding(
        egress(
            json!([{"port": {"number": 0}, "bind": "unix:///a.sock", "hosts": ["a/*"]},
                      {"port": {"number": 0}, "bind": "unix:///a.sock", "hosts": ["b/*"]}]),
        ),
        "egress[1].bind",
        Severity::Error,
        "must be unique",
    );
}

#[test]
fn egress_hosts() {
    let hosts = |h: Value| egress(json!([{"hosts": h}]));
    assert_clean(hosts(json!([
        "~/*",
        "./foo.example.com",
        "ns1/*.example.com",
        "*/bar.example.com"
    ])));
    assert_finding(
        hosts(json!(["foo.example.com"])),
        "egress[0].hosts[0]",
        Severity::Error,
        "namespace/dnsName",
    );
    assert_finding(
        hosts(json!(["ns/foo"])),
        "egress[0].hosts[0]",
        Severity::Error,
        "short name",
    );
    assert_finding(
        hosts(json!(["Bad_NS/*"])),
        "egress[0].hosts[0]",
        Severity::Error,
        "invalid namespace",
    );
    assert_finding(
        hosts(json!(["ns/1.2.3.4"])),
        "egress[0].hosts[0]",
        Severity::Error,
        "invalid",
    );
    assert_finding(
        hosts(json!(["ns/*foo.com"])),
        "egress[0].hosts[0]",
        Severity::Error,
        "partial wildcard",
    );
    assert_finding(
        hosts(json!(["ns/a.com", "ns/a.com"])),
        "egress[0].hosts[1]",
        Severity::Warning,
        "duplicated",
    );
    assert_finding(
        hosts(json!(["ns/*", "ns/a.com"])),
        "egress[0].hosts[1]",
        Severity::Warning,
        "duplicated",
    );
    assert_finding(
        hosts(json!(["default/a.com", "./*"])),
        "egress[0].hosts[1]",
        Severity::Warning,
        "duplicated",
    );
    assert_finding(
        hosts(json!(["*/*", "ns/a.com"])),
        "egress[0].hosts",
        Severity::Warning,
        "`*/*`",
    );
}

#[test]
fn outbound_traffic_policy() {
    let otp = |p: Value| json!({"outboundTrafficPolicy": p});
    assert_clean(otp(
        json!({"mode": "ALLOW_ANY", "egressProxy": {"host": "proxy.example.com", "port": {"number": 3128}}}),
    ));
    assert_finding(
        otp(json!({"egressProxy": {"host": "proxy.example.com", "port": {"number": 3128}}})),
        "outboundTrafficPolicy.egressProxy",
        Severity::Error,
        "ALLOW_ANY",
    );
    assert_finding(
        otp(
            json!({"mode": "ALLOW_ANY", "egressProxy": {"host": "*.example.com", "port": {"number": 3128}}}),
        ),
        "outboundTrafficPolicy.egressProxy.host",
        Severity::Error,
        "invalid",
    );
    assert_finding(
        otp(json!({"mode": "ALLOW_ANY", "egressProxy": {"host": "proxy.example.com"}})),
        "outboundTrafficPolicy.egressProxy.port",
        Severity::Error,
        "must be set",
    );
    assert_finding(
        otp(
            json!({"mode": "ALLOW_ANY", "egressProxy": {"host": "proxy.example.com", "port": {"number": 0}}}),
        ),
        "outboundTrafficPolicy.egressProxy.port.number",
        Severity::Error,
        "1..65535",
    );
    assert_finding(
        otp(
            json!({"mode": "ALLOW_ANY", "egressProxy": {"host": "proxy.example.com", "subset": "v_1", "port": {"number": 1}}}),
        ),
        "outboundTrafficPolicy.egressProxy.subset",
        Severity::Error,
        "DNS-1123",
    );
}
