use super::*;
use crate::diag::Severity;
use crate::validate::check;
use serde_json::{Value, json};

fn run(spec: Value) -> Vec<(String, Severity, String)> {
    let gw: Gateway = serde_json::from_value(spec).expect("decodes");
    check(&gw, "default")
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

/// A gateway with one server built from `server` (merged over sane defaults).
fn one(server: Value) -> Value {
    let mut s = json!({"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]});
    if let (Some(base), Some(over)) = (s.as_object_mut(), server.as_object()) {
        for (k, v) in over {
            base.insert(k.clone(), v.clone());
        }
    }
    json!({"selector": {"istio": "ingressgateway"}, "servers": [s]})
}

fn https(tls: Value) -> Value {
    one(json!({"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "tls": tls}))
}

#[test]
fn round_trip() {
    let gw = Gateway {
        selector: [("app".to_string(), "gw".to_string())].into(),
        servers: vec![Server {
            port: Some(Port {
                number: 443,
                protocol: "HTTPS".into(),
                name: "https".into(),
                target_port: 8443,
            }),
            bind: "0.0.0.0".into(),
            hosts: vec!["ns/*.example.com".into()],
            tls: Some(ServerTLSSettings {
                https_redirect: true,
                mode: ServerTLSSettingsTLSmode::OptionalMutual,
                server_certificate: "/c".into(),
                private_key: "/k".into(),
                ca_certificates: "/ca".into(),
                ca_crl: "/crl".into(),
                credential_name: "cred".into(),
                ca_cert_credential_name: "client-ca".into(),
                credential_names: vec!["a".into(), "b".into()],
                tls_certificates: vec![TLSCertificate {
                    server_certificate: "/c2".into(),
                    private_key: "/k2".into(),
                    ca_certificates: "/ca2".into(),
                }],
                subject_alt_names: vec!["san".into()],
                verify_certificate_spki: vec!["spki".into()],
                verify_certificate_hash: vec!["hash".into()],
                min_protocol_version: TLSProtocol::Tlsv12,
                max_protocol_version: TLSProtocol::Tlsv13,
                cipher_suites: vec!["AES128-SHA".into()],
            }),
            default_endpoint: "127.0.0.1:8080".into(),
            name: "srv".into(),
        }],
    };
    let value = serde_json::to_value(&gw).expect("serializes");
    let tls = &value["servers"][0]["tls"];
    assert_eq!(tls["mode"], "OPTIONAL_MUTUAL");
    assert_eq!(tls["minProtocolVersion"], "TLSV1_2");
    assert_eq!(tls["caCrl"], "/crl");
    assert_eq!(tls["verifyCertificateSpki"][0], "spki");
    assert_eq!(value["servers"][0]["port"]["targetPort"], 8443);
    assert_eq!(value["servers"][0]["defaultEndpoint"], "127.0.0.1:8080");
    let back: Gateway = serde_json::from_value(value).expect("decodes");
    assert_eq!(back, gw);
    assert_eq!(
        serde_json::to_value(Gateway::default()).ok(),
        Some(json!({}))
    );
}

#[test]
fn seed_east_west_gateway_is_clean() {
    assert_clean(json!({
        "selector": {"istio": "eastwestgateway"},
        "servers": [{
            "port": {"number": 15443, "name": "tls", "protocol": "TLS"},
            "tls": {"mode": "ISTIO_MUTUAL"},
            "hosts": ["*.local"]
        }]
    }));
}

#[test]
fn proto_doc_example_is_clean() {
    assert_clean(json!({
        "selector": {"app": "my-gateway-controller"},
        "servers": [
            {"port": {"number": 80, "name": "http", "protocol": "HTTP"},
             "hosts": ["uk.bookinfo.com", "eu.bookinfo.com"], "tls": {"httpsRedirect": true}},
            {"port": {"number": 443, "name": "https-443", "protocol": "HTTPS"},
             "hosts": ["uk.bookinfo.com", "eu.bookinfo.com"],
             "tls": {"mode": "SIMPLE", "serverCertificate": "/etc/certs/servercert.pem",
                     "privateKey": "/etc/certs/privatekey.pem"}},
            {"port": {"number": 9443, "name": "https-9443", "protocol": "HTTPS"},
             "hosts": ["bookinfo-namespace/*.bookinfo.com"],
             "tls": {"mode": "SIMPLE", "credentialName": "bookinfo-secret"}},
            {"port": {"number": 9080, "name": "http-wildcard", "protocol": "HTTP"}, "hosts": ["*"]},
            {"port": {"number": 2379, "name": "mongo", "protocol": "MONGO"}, "hosts": ["*"]},
            {"port": {"number": 8080, "name": "grpc-web", "protocol": "grpc-web"}, "hosts": ["ns1/*", "./foo.bar.com", "*/x.y"]},
            {"port": {"number": 8443, "name": "tls-pass", "protocol": "TLS"}, "hosts": ["10.0.0.1"],
             "tls": {"mode": "PASSTHROUGH"}}
        ]
    }));
}

#[test]
fn servers_and_hosts() {
    assert_finding(
        json!({"selector": {}}),
        "servers",
        Severity::Error,
        "at least one server",
    );
    assert_finding(
        one(json!({"hosts": []})),
        "servers[0].hosts",
        Severity::Error,
        "at least one host",
    );
    assert_finding(
        one(json!({"hosts": ["foo"]})),
        "servers[0].hosts[0]",
        Severity::Error,
        "short name",
    );
    assert_finding(
        one(json!({"hosts": ["ns/"]})),
        "servers[0].hosts[0]",
        Severity::Error,
        "cannot be empty",
    );
    assert_finding(
        one(json!({"hosts": ["/foo.com"]})),
        "servers[0].hosts[0]",
        Severity::Error,
        "cannot be empty",
    );
    assert_finding(
        one(json!({"hosts": ["bad_ns/foo.com"]})),
        "servers[0].hosts[0]",
        Severity::Error,
        "invalid namespace",
    );
    assert_finding(
        one(json!({"hosts": ["~/foo.com"]})),
        "servers[0].hosts[0]",
        Severity::Error,
        "invalid namespace",
    );
    assert_finding(
        one(json!({"hosts": ["*foo.com"]})),
        "servers[0].hosts[0]",
        Severity::Error,
        "partial wildcard",
    );
    assert_finding(
        one(json!({"hosts": ["foo.*.com"]})),
        "servers[0].hosts[0]",
        Severity::Error,
        "invalid",
    );
    assert_finding(
        one(json!({"hosts": ["ns/foo.bar_baz.com"]})),
        "servers[0].hosts[0]",
        Severity::Error,
        "invalid",
    );
}

#[test]
fn ports() {
    assert_finding(
        one(json!({"port": null})),
        "servers[0].port",
        Severity::Error,
        "port is required",
    );
    assert_finding(
        one(json!({"port": {"number": 80, "name": "h", "protocol": "HTTP/2"}})),
        "servers[0].port.protocol",
        Severity::Error,
        "invalid protocol",
    );
    assert_finding(
        one(json!({"port": {"number": 80, "name": "h"}})),
        "servers[0].port.protocol",
        Severity::Error,
        "invalid protocol",
    );
    assert_finding(
        one(json!({"port": {"number": 0, "name": "h", "protocol": "HTTP"}})),
        "servers[0].port.number",
        Severity::Error,
        "1..65535",
    );
    assert_finding(
        one(json!({"port": {"number": 70000, "name": "h", "protocol": "HTTP"}})),
        "servers[0].port.number",
        Severity::Error,
        "1..65535",
    );
    assert_finding(
        one(json!({"port": {"number": 80, "name": "h", "protocol": "HTTP", "targetPort": 8080}})),
        "servers[0].port.targetPort",
        Severity::Error,
        "no impact",
    );
    assert_finding(
        one(json!({"port": {"number": 80, "protocol": "HTTP"}})),
        "servers[0].port.name",
        Severity::Error,
        "must be set",
    );
    let dup = json!({"servers": [
        {"port": {"number": 80, "name": "web", "protocol": "HTTP"}, "hosts": ["*"]},
        {"port": {"number": 81, "name": "web", "protocol": "HTTP"}, "hosts": ["*"]}
    ]});
    assert_finding(
        dup,
        "servers[1].port.name",
        Severity::Error,
        "must be unique",
    );
}

#[test]
fn binds() {
    assert_clean(one(json!({"bind": "unix:///var/run/gw.sock",
                            "port": {"number": 0, "name": "uds", "protocol": "HTTP"}})));
    assert_clean(one(json!({"bind": "unix://@abstract",
                            "port": {"number": 0, "name": "uds", "protocol": "HTTP"}})));
    assert_clean(one(json!({"bind": "10.1.2.3"})));
    assert_finding(
        one(json!({"bind": "unix:///var/run/gw.sock"})),
        "servers[0].port.number",
        Severity::Error,
        "must be 0",
    );
    assert_finding(
        one(
            json!({"bind": "unix://relative", "port": {"number": 0, "name": "uds", "protocol": "HTTP"}}),
        ),
        "servers[0].bind",
        Severity::Error,
        "absolute path",
    );
    assert_finding(
        one(json!({"bind": "localhost"})),
        "servers[0].bind",
        Severity::Error,
        "IP address",
    );
}

#[test]
fn tls_versus_protocol() {
    assert_finding(
        one(json!({"port": {"number": 443, "name": "https", "protocol": "HTTPS"}})),
        "servers[0].tls",
        Severity::Error,
        "must have TLS settings",
    );
    assert_finding(
        one(json!({"tls": {"mode": "SIMPLE", "credentialName": "c"}})),
        "servers[0].tls",
        Severity::Error,
        "plain text HTTP",
    );
    assert_finding(
        one(json!({"tls": {"httpsRedirect": true, "privateKey": "/k"}})),
        "servers[0].tls",
        Severity::Error,
        "plain text HTTP",
    );
    assert_clean(one(json!({"tls": {"httpsRedirect": true}})));
    assert_finding(
        one(
            json!({"port": {"number": 27017, "name": "mongo", "protocol": "MONGO"},
                   "tls": {"mode": "SIMPLE", "credentialName": "c"}}),
        ),
        "servers[0].tls",
        Severity::Error,
        "non HTTPS/TLS",
    );
    // Not checked when the port itself is invalid (Istio skips it too).
    let got = run(one(
        json!({"port": {"number": 0, "name": "x", "protocol": "HTTPS"}}),
    ));
    assert!(
        got.iter().all(|(p, _, _)| p != "servers[0].tls"),
        "{got:#?}"
    );
    assert_finding(
        json!({"servers": [{"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["*"],
                            "tls": {"httpsRedirect": true, "mode": "SIMPLE", "credentialName": "c"}}]}),
        "servers[0].tls.httpsRedirect",
        Severity::Warning,
        "only be used with HTTP",
    );
}

#[test]
fn tls_modes() {
    assert_clean(https(json!({"mode": "SIMPLE", "credentialName": "c"})));
    assert_clean(https(json!({"mode": "MUTUAL", "credentialName": "c"})));
    assert_clean(https(
        json!({"mode": "OPTIONAL_MUTUAL", "credentialNames": ["rsa", "ecdsa"]}),
    ));
    assert_clean(https(
        json!({"mode": "MUTUAL", "serverCertificate": "/c", "privateKey": "/k",
                              "caCertificates": "/ca", "caCrl": "/crl"}),
    ));
    assert_clean(https(json!({"mode": "SIMPLE", "tlsCertificates": [
        {"serverCertificate": "/rsa.pem", "privateKey": "/rsa.key"},
        {"serverCertificate": "/ec.pem", "privateKey": "/ec.key"}]})));
    for (field, value) in [
        ("serverCertificate", json!("/c")),
        ("privateKey", json!("/k")),
        ("caCertificates", json!("/ca")),
        ("credentialName", json!("c")),
        ("credentialNames", json!(["c"])),
        ("tlsCertificates", json!([{"serverCertificate": "/c"}])),
    ] {
        assert_finding(
            https(json!({"mode": "ISTIO_MUTUAL", (field): value})),
            &format!("servers[0].tls.{field}"),
            Severity::Error,
            "ISTIO_MUTUAL",
        );
    }
    assert_finding(
        https(json!({"mode": "SIMPLE"})),
        "servers[0].tls.serverCertificate",
        Severity::Error,
        "SIMPLE TLS requires a server certificate",
    );
    assert_finding(
        https(json!({"mode": "SIMPLE"})),
        "servers[0].tls.privateKey",
        Severity::Error,
        "private key",
    );
    assert_finding(
        https(json!({"mode": "MUTUAL", "serverCertificate": "/c", "privateKey": "/k"})),
        "servers[0].tls.caCertificates",
        Severity::Error,
        "client CA bundle",
    );
    assert_finding(
        https(json!({"mode": "OPTIONAL_MUTUAL", "serverCertificate": "/c", "privateKey": "/k"})),
        "servers[0].tls.caCertificates",
        Severity::Error,
        "MUTUAL TLS requires a client CA bundle",
    );
    assert_finding(
        https(json!({"mode": "SIMPLE", "tlsCertificates": [{"serverCertificate": "/c"}]})),
        "servers[0].tls.tlsCertificates[0].privateKey",
        Severity::Error,
        "private key",
    );
    assert_finding(
        https(json!({"mode": "SIMPLE", "tlsCertificates": [{}, {}, {}]})),
        "servers[0].tls.tlsCertificates",
        Severity::Error,
        "at most 2",
    );
    assert_finding(
        https(json!({"mode": "SIMPLE", "credentialNames": ["a", "b", "c"]})),
        "servers[0].tls.credentialNames",
        Severity::Error,
        "at most 2",
    );
    assert_finding(
        https(json!({"mode": "SIMPLE", "credentialName": "a", "credentialNames": ["b"]})),
        "servers[0].tls",
        Severity::Error,
        "only one of",
    );
    assert_finding(
        https(
            json!({"mode": "SIMPLE", "serverCertificate": "/c", "privateKey": "/k", "credentialName": "a"}),
        ),
        "servers[0].tls",
        Severity::Error,
        "only one of",
    );
    assert_finding(
        https(json!({"mode": "PASSTHROUGH", "credentialName": "c"})),
        "servers[0].tls.mode",
        Severity::Warning,
        "does not use certificates",
    );
    assert_finding(
        https(
            json!({"mode": "SIMPLE", "credentialName": "c", "caCrl": "/crl", "serverCertificate": "/c", "privateKey": "/k"}),
        ),
        "servers[0].tls",
        Severity::Error,
        "only one of",
    );
    assert_finding(
        https(
            json!({"mode": "SIMPLE", "serverCertificate": "/c", "privateKey": "/k", "caCrl": "/crl"}),
        ),
        "servers[0].tls.caCrl",
        Severity::Error,
        "SIMPLE",
    );
    assert_finding(
        https(json!({"mode": "AUTO_PASSTHROUGH", "credentialName": "c", "caCrl": "/crl"})),
        "servers[0].tls.caCrl",
        Severity::Error,
        "credentialName",
    );
}

#[test]
fn tls_versions_and_ciphers() {
    let base = |extra: Value| {
        let mut tls = json!({"mode": "SIMPLE", "credentialName": "c"});
        if let (Some(t), Some(e)) = (tls.as_object_mut(), extra.as_object()) {
            t.extend(e.clone());
        }
        https(tls)
    };
    assert_finding(
        base(json!({"minProtocolVersion": "TLSV1_1"})),
        "servers[0].tls.minProtocolVersion",
        Severity::Warning,
        "cipherSuites",
    );
    assert_clean(base(
        json!({"minProtocolVersion": "TLSV1_0", "cipherSuites": ["AES128-SHA"]}),
    ));
    assert_clean(base(
        json!({"cipherSuites": ["ALL", "-DES-CBC3-SHA", "[AES128-SHA|AES256-SHA]"]}),
    ));
    assert_finding(
        base(json!({"cipherSuites": ["NOT-A-CIPHER"]})),
        "servers[0].tls.cipherSuites[0]",
        Severity::Warning,
        "invalid cipher",
    );
    assert_finding(
        base(json!({"cipherSuites": ["AES128-SHA", "AES128-SHA"]})),
        "servers[0].tls.cipherSuites[1]",
        Severity::Warning,
        "duplicate",
    );
}

#[test]
fn protocol_parsing() {
    for (name, p) in [
        ("http", Protocol::Http),
        ("GRPC-Web", Protocol::GrpcWeb),
        ("Mongo", Protocol::Mongo),
        ("http_proxy", Protocol::HttpProxy),
        ("UDP", Protocol::Udp),
        ("MySQL", Protocol::Mysql),
    ] {
        assert_eq!(Protocol::parse(name), p);
    }
    assert_eq!(Protocol::parse(""), Protocol::Unsupported);
    assert_eq!(Protocol::parse("h2c"), Protocol::Unsupported);
    assert!(Protocol::Https.is_tls() && Protocol::Https.is_tcp() && !Protocol::Https.is_http());
    assert!(Protocol::Grpc.is_http() && !Protocol::Udp.is_tcp());
}

/// Istio's `TestValidateTlsOptions` cases: (settings, error substring, warning substring).
#[test]
fn istio_tls_option_cases() {
    let pair = json!([{"serverCertificate": "c1", "privateKey": "k1"}, {"serverCertificate": "c2", "privateKey": "k2"}]);
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({}), "", ""),
        (
            json!({"mode": "SIMPLE", "serverCertificate": "c", "privateKey": "k"}),
            "",
            "",
        ),
        (
            json!({"mode": "SIMPLE", "serverCertificate": "c", "privateKey": "k", "caCertificates": "ca"}),
            "",
            "",
        ),
        (json!({"mode": "SIMPLE", "credentialName": "sds"}), "", ""),
        (
            json!({"mode": "SIMPLE", "serverCertificate": "c", "privateKey": "k", "credentialName": "sds"}),
            "only one of",
            "",
        ),
        (
            json!({"mode": "SIMPLE", "privateKey": "k"}),
            "server certificate",
            "",
        ),
        (
            json!({"mode": "SIMPLE", "serverCertificate": "c"}),
            "private key",
            "",
        ),
        (
            json!({"mode": "SIMPLE", "serverCertificate": "c", "privateKey": "k", "tlsCertificates": pair.clone()}),
            "only one of",
            "",
        ),
        (
            json!({"mode": "SIMPLE", "tlsCertificates": [{"privateKey": "k"}, {"serverCertificate": "c", "privateKey": "k"}]}),
            "server certificate",
            "",
        ),
        (
            json!({"mode": "SIMPLE", "privateKey": "k", "credentialName": "sds"}),
            "",
            "",
        ),
        (
            json!({"mode": "SIMPLE", "serverCertificate": "c", "credentialName": "sds"}),
            "",
            "",
        ),
        (
            json!({"mode": "MUTUAL", "serverCertificate": "c", "privateKey": "k", "caCertificates": "ca"}),
            "",
            "",
        ),
        (
            json!({"mode": "MUTUAL", "caCertificates": "ca", "credentialName": "sds"}),
            "",
            "",
        ),
        (
            json!({"mode": "MUTUAL", "caCertificates": "ca", "credentialName": "sds", "tlsCertificates": [{"serverCertificate": "c", "privateKey": "k"}]}),
            "only one of",
            "",
        ),
        (
            json!({"mode": "MUTUAL", "serverCertificate": "c", "privateKey": "k", "credentialNames": ["s"]}),
            "only one of",
            "",
        ),
        (
            json!({"mode": "MUTUAL", "tlsCertificates": pair.clone(), "credentialNames": ["s"]}),
            "only one of",
            "",
        ),
        (
            json!({"mode": "MUTUAL", "tlsCertificates": [{"serverCertificate": "c", "privateKey": "k"}], "caCertificates": "ca"}),
            "",
            "",
        ),
        (
            json!({"mode": "MUTUAL", "privateKey": "k", "caCertificates": "ca", "credentialName": "sds"}),
            "",
            "",
        ),
        (
            json!({"mode": "MUTUAL", "serverCertificate": "c", "privateKey": "k"}),
            "client CA bundle",
            "",
        ),
        (json!({"mode": "MUTUAL"}), "server certificate", ""),
        (
            json!({"mode": "MUTUAL", "tlsCertificates": pair}),
            "client CA bundle",
            "",
        ),
        (json!({"mode": "OPTIONAL_MUTUAL"}), "private key", ""),
        (
            json!({"mode": "PASSTHROUGH", "credentialName": "sds"}),
            "",
            "PASSTHROUGH mode does not use certificates",
        ),
        (
            json!({"mode": "PASSTHROUGH", "caCrl": "crl"}),
            "",
            "PASSTHROUGH mode does not use certificates",
        ),
        (json!({"mode": "ISTIO_MUTUAL"}), "", ""),
        (
            json!({"mode": "ISTIO_MUTUAL", "privateKey": "k"}),
            "cannot have an associated privateKey",
            "",
        ),
        (
            json!({"mode": "SIMPLE", "credentialName": "sds", "cipherSuites": ["not-a-cipher-suite"]}),
            "",
            "not-a-cipher-suite",
        ),
        (
            json!({"mode": "SIMPLE", "credentialName": "sds", "cipherSuites": ["ECDHE-ECDSA-AES128-SHA"]}),
            "",
            "",
        ),
        (
            json!({"mode": "SIMPLE", "credentialName": "sds", "cipherSuites": ["-ECDHE-ECDSA-AES128-SHA"]}),
            "",
            "",
        ),
        (
            json!({"mode": "SIMPLE", "cipherSuites": ["not-a-cipher-suite"]}),
            "requires a private key",
            "not-a-cipher-suite",
        ),
        (
            json!({"mode": "SIMPLE", "caCrl": "crl"}),
            "CRL is not supported with SIMPLE TLS",
            "",
        ),
        (
            json!({"mode": "SIMPLE", "caCrl": "crl", "credentialName": "credential"}),
            "",
            "",
        ),
        (
            json!({"mode": "MUTUAL", "credentialNames": ["credential1", "credential2"]}),
            "",
            "",
        ),
    ];
    for (tls, err, warn) in cases {
        let settings: ServerTLSSettings = serde_json::from_value(tls.clone()).expect("decodes");
        let got = check(&settings, "default");
        let errors: Vec<&str> = got
            .iter()
            .filter(|f| f.is_error())
            .map(|f| f.message.as_str())
            .collect();
        let warnings: Vec<&str> = got
            .iter()
            .filter(|f| !f.is_error())
            .map(|f| f.message.as_str())
            .collect();
        if err.is_empty() {
            assert!(errors.is_empty(), "{tls}: unexpected errors {errors:?}");
        } else {
            assert!(
                errors.iter().any(|m| m.contains(err)),
                "{tls}: expected {err:?} in {errors:?}"
            );
        }
        if warn.is_empty() {
            assert!(
                warnings.is_empty(),
                "{tls}: unexpected warnings {warnings:?}"
            );
        } else {
            assert!(
                warnings.iter().any(|m| m.contains(warn)),
                "{tls}: expected {warn:?} in {warnings:?}"
            );
        }
    }
}

#[test]
fn ca_cert_credential_name_supplies_the_client_ca() {
    let tls = |mode: &str| -> ServerTLSSettings {
        serde_json::from_value(serde_json::json!({
            "mode": mode,
            "serverCertificate": "/etc/certs/cert.pem",
            "privateKey": "/etc/certs/key.pem",
            "caCertCredentialName": "client-ca",
        }))
        .unwrap()
    };
    assert!(crate::validate::check(&tls("MUTUAL"), "ns").is_empty());
    let simple = crate::validate::check(&tls("SIMPLE"), "ns");
    assert_eq!(simple.len(), 1, "{simple:?}");
    assert_eq!(simple[0].path.to_string(), "caCertCredentialName");
    assert_eq!(simple[0].severity, crate::Severity::Warning);
    let istio = crate::validate::check(&tls("ISTIO_MUTUAL"), "ns");
    assert!(
        istio
            .iter()
            .any(|f| f.path.to_string() == "caCertCredentialName" && f.is_error())
    );
}
