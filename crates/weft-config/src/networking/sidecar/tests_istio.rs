//! Parity with Istio: TestValidateSidecar of pkg/config/validation/validation_test.go,
//! translated to JSON.

use super::Sidecar;
use crate::validate::istio_table::Want::*;
use crate::validate::istio_table::table;
use serde_json::{Value, json};

fn all_hosts() -> Value {
    json!([{"hosts": ["*/*"]}])
}

fn port(protocol: &str, number: u64, name: &str) -> Value {
    json!({"protocol": protocol, "number": number, "name": name})
}

fn egress_on(port: Value, hosts: &[&str], bind: &str) -> Value {
    let mut l = json!({"port": port, "hosts": hosts});
    if !bind.is_empty() {
        l["bind"] = json!(bind);
    }
    l
}

/// One ingress listener with the given endpoint (and no egress).
fn ingress(port: Value, endpoint: &str) -> Value {
    json!({"ingress": [{"port": port, "defaultEndpoint": endpoint}]})
}

/// One ingress listener with the given endpoint, plus the default `*/*` egress.
fn ingress_egress(port: Value, endpoint: &str) -> Value {
    json!({"ingress": [{"port": port, "defaultEndpoint": endpoint}], "egress": all_hosts()})
}

/// A TCP ingress listener on :90 terminating TLS with the given settings.
fn ingress_tls(endpoint: &str, tls: Value) -> Value {
    json!({"ingress": [{"port": port("tcp", 90, "foo"), "defaultEndpoint": endpoint, "tls": tls}]})
}

fn egress_proxy(mode: Option<&str>, proxy: Value) -> Value {
    let mut otp = json!({"egressProxy": proxy});
    if let Some(m) = mode {
        otp["mode"] = json!(m);
    }
    json!({"outboundTrafficPolicy": otp, "egress": all_hosts()})
}

fn http_pool() -> Value {
    json!({"http": {"http1MaxPendingRequests": 1024, "http2MaxRequests": 1024,
        "maxRequestsPerConnection": 1024, "maxRetries": 1024}})
}

#[test]
fn istio_validate_sidecar() {
    let mut cases = vec![
        // empty ingress and egress
        ("empty ingress and egress", json!({}), Error),
        // default
        ("default", json!({"egress": all_hosts()}), Valid),
        // workload selector without labels
        (
            "workload selector without labels",
            json!({"egress": all_hosts(), "workloadSelector": {}}),
            Warning,
        ),
        // import local namespace with wildcard
        (
            "import local namespace with wildcard",
            json!({"egress": [{"hosts": ["./*"]}]}),
            Valid,
        ),
        // import local namespace with fqdn
        (
            "import local namespace with fqdn",
            json!({"egress": [{"hosts": ["./foo.com"]}]}),
            Valid,
        ),
        // import nothing
        (
            "import nothing",
            json!({"egress": [{"hosts": ["~/*"]}]}),
            Valid,
        ),
        // bad egress host 1
        (
            "bad egress host 1",
            json!({"egress": [{"hosts": ["*"]}]}),
            Error,
        ),
        // bad egress host 2
        (
            "bad egress host 2",
            json!({"egress": [{"hosts": ["/"]}]}),
            Error,
        ),
        // empty egress host
        (
            "empty egress host",
            json!({"egress": [{"hosts": []}]}),
            Error,
        ),
        // multiple wildcard egress
        (
            "multiple wildcard egress",
            json!({"egress": [{"hosts": ["*/foo.com"]}, {"hosts": ["ns1/bar.com"]}]}),
            Error,
        ),
        // wildcard egress not in end
        (
            "wildcard egress not in end",
            json!({"egress": [{"hosts": ["*/foo.com"]},
                egress_on(port("http", 8080, "h8080"), &["ns1/bar.com"], "")]}),
            Error,
        ),
        // invalid Port
        (
            "invalid Port",
            json!({"egress": [egress_on(port("http1", 1000000, ""), &["ns1/bar.com"], "")]}),
            Error,
        ),
        // Port without name
        (
            "Port without name",
            json!({"egress": [{"port": {"protocol": "http", "number": 8080}, "hosts": ["ns1/bar.com"]}]}),
            Valid,
        ),
        // UDS bind in outbound
        (
            "UDS bind in outbound",
            json!({"egress": [egress_on(port("http", 0, "uds"), &["ns1/bar.com"], "unix:///@foo/bar/com")]}),
            Valid,
        ),
        // UDS bind in inbound
        (
            "UDS bind in inbound",
            json!({"ingress": [{"port": port("http", 0, "uds"), "bind": "unix:///@foo/bar/com",
                "defaultEndpoint": "127.0.0.1:9999"}]}),
            Error,
        ),
        // UDS bind in outbound 2
        (
            "UDS bind in outbound 2",
            json!({"egress": [egress_on(port("http", 0, "uds"), &["ns1/bar.com"], "unix:///foo/bar/com")]}),
            Valid,
        ),
        // invalid bind
        (
            "invalid bind",
            json!({"egress": [egress_on(port("http", 0, "uds"), &["ns1/bar.com"], "foobar:///@foo/bar/com")]}),
            Error,
        ),
        // invalid capture mode with uds bind
        (
            "invalid capture mode with uds bind",
            json!({"egress": [{"port": port("http", 0, "uds"), "hosts": ["ns1/bar.com"],
                "bind": "unix:///@foo/bar/com", "captureMode": "IPTABLES"}]}),
            Error,
        ),
        // duplicate UDS bind
        (
            "duplicate UDS bind",
            json!({"egress": [
                egress_on(port("http", 0, "uds"), &["ns1/bar.com"], "unix:///@foo/bar/com"),
                egress_on(port("http", 0, "uds"), &["ns1/bar.com"], "unix:///@foo/bar/com")]}),
            Error,
        ),
        // duplicate ports
        (
            "duplicate ports",
            json!({"egress": [egress_on(port("http", 90, "foo"), &["ns1/bar.com"], ""),
                egress_on(port("tcp", 90, "tcp"), &["ns2/bar.com"], "")]}),
            Error,
        ),
        // ingress without port
        (
            "ingress without port",
            json!({"ingress": [{"defaultEndpoint": "127.0.0.1:110"}], "egress": all_hosts()}),
            Error,
        ),
        // ingress without port and with IPv6 endpoint
        (
            "ingress without port and with IPv6 endpoint",
            json!({"ingress": [{"defaultEndpoint": "[::1]:110"}], "egress": all_hosts()}),
            Error,
        ),
    ];
    for (name, ep) in [
        ("ingress with duplicate ports", "127.0.0.1:110"),
        (
            "ingress with duplicate ports and IPv6 endpoint",
            "[::1]:110",
        ),
    ] {
        // ingress with duplicate ports / ingress with duplicate ports and IPv6 endpoint
        cases.push((
            name,
            json!({"ingress": [
                {"port": port("http", 90, "foo"), "defaultEndpoint": ep},
                {"port": port("tcp", 90, "bar"), "defaultEndpoint": ep}], "egress": all_hosts()}),
            Error,
        ));
    }
    cases.extend(vec![
        // ingress without default endpoint
        (
            "ingress without default endpoint",
            json!({"ingress": [{"port": port("http", 90, "foo")}], "egress": all_hosts()}),
            Valid,
        ),
        // ingress with invalid default endpoint in IPv4
        (
            "ingress with invalid default endpoint in IPv4",
            ingress(port("http", 90, "foo"), "1.1.1.1:90"),
            Error,
        ),
        // ingress with invalid default endpoint in IPv6
        (
            "ingress with invalid default endpoint in IPv6",
            ingress(port("http", 90, "foo"), "[1:1:1:1:1:1:1:1]:90"),
            Error,
        ),
        // ingress with invalid default endpoint uds
        (
            "ingress with invalid default endpoint uds",
            ingress_egress(port("http", 90, "foo"), "unix:///"),
            Error,
        ),
        // ingress with invalid default endpoint port in IPv4
        (
            "ingress with invalid default endpoint port in IPv4",
            ingress_egress(port("http", 90, "foo"), "127.0.0.1:hi"),
            Error,
        ),
        // ingress with invalid default endpoint port in IPv6
        (
            "ingress with invalid default endpoint port in IPv6",
            ingress_egress(port("http", 90, "foo"), "[::1]:hi"),
            Error,
        ),
        // valid ingress and egress in IPv4
        (
            "valid ingress and egress in IPv4",
            ingress_egress(port("http", 90, "foo"), "127.0.0.1:9999"),
            Valid,
        ),
        // valid ingress and egress in IPv6
        (
            "valid ingress and egress in IPv6",
            ingress_egress(port("http", 90, "foo"), "[::1]:9999"),
            Valid,
        ),
        // valid ingress and empty egress in IPv4
        (
            "valid ingress and empty egress in IPv4",
            ingress(port("http", 90, "foo"), "127.0.0.1:9999"),
            Valid,
        ),
        // valid ingress and empty egress in IPv6
        (
            "valid ingress and empty egress in IPv6",
            ingress(port("http", 90, "foo"), "[::1]:9999"),
            Valid,
        ),
        // empty
        ("empty", json!({}), Error),
        // just outbound traffic policy
        (
            "just outbound traffic policy",
            json!({"outboundTrafficPolicy": {"mode": "ALLOW_ANY"}}),
            Valid,
        ),
        // empty protocol in IPv4
        (
            "empty protocol in IPv4",
            ingress_egress(json!({"number": 90, "name": "foo"}), "127.0.0.1:9999"),
            Valid,
        ),
        // empty protocol in IPv6
        (
            "empty protocol in IPv6",
            ingress_egress(json!({"number": 90, "name": "foo"}), "[::1]:9999"),
            Valid,
        ),
        // ALLOW_ANY sidecar egress policy with no egress proxy
        (
            "ALLOW_ANY sidecar egress policy with no egress proxy",
            json!({"outboundTrafficPolicy": {"mode": "ALLOW_ANY"}, "egress": all_hosts()}),
            Valid,
        ),
        // sidecar egress proxy with RESGISTRY_ONLY(default)
        (
            "sidecar egress proxy with RESGISTRY_ONLY(default)",
            egress_proxy(
                None,
                json!({"host": "foo.bar", "subset": "shiny", "port": {"number": 5000}}),
            ),
            Error,
        ),
        // sidecar egress proxy with ALLOW_ANY
        (
            "sidecar egress proxy with ALLOW_ANY",
            egress_proxy(
                Some("ALLOW_ANY"),
                json!({"host": "foo.bar", "subset": "shiny", "port": {"number": 5000}}),
            ),
            Valid,
        ),
        // sidecar egress proxy with ALLOW_ANY, service hostname invalid fqdn
        (
            "sidecar egress proxy with ALLOW_ANY, service hostname invalid fqdn",
            egress_proxy(
                Some("ALLOW_ANY"),
                json!({"host": "foobar*123", "subset": "shiny", "port": {"number": 5000}}),
            ),
            Error,
        ),
        // sidecar egress proxy(without Port) with ALLOW_ANY
        (
            "sidecar egress proxy(without Port) with ALLOW_ANY",
            egress_proxy(
                Some("ALLOW_ANY"),
                json!({"host": "foo.bar", "subset": "shiny"}),
            ),
            Error,
        ),
        // sidecar egress only one wildcarded
        (
            "sidecar egress only one wildcarded",
            json!({"egress": [{"hosts": ["*/*", "test/a.com"]}]}),
            Warning,
        ),
        // sidecar egress wildcarded ns
        (
            "sidecar egress wildcarded ns",
            json!({"egress": [{"hosts": ["*/b.com", "test/a.com"]}]}),
            Valid,
        ),
        // sidecar egress duplicated with wildcarded same namespace
        (
            "sidecar egress duplicated with wildcarded same namespace",
            json!({"egress": [{"hosts": ["test/*", "test/a.com"]}]}),
            Warning,
        ),
        // invalid partial wildcard
        (
            "invalid partial wildcard",
            json!({"egress": [{"hosts": ["test/*a.com"]}]}),
            Error,
        ),
        // sidecar egress duplicated with wildcarded same namespace .
        // (Istio's object lives in namespace "bar" and lists "bar/a.com"; ours is in "default")
        (
            "sidecar egress duplicated with wildcarded same namespace .",
            json!({"egress": [{"hosts": ["./*", "default/a.com"]}]}),
            Warning,
        ),
    ]);
    for (suffix, ep) in [("IPv4", "127.0.0.1:9999"), ("IPv6", "[::1]:9999")] {
        let http = |mode: &str| {
            json!({"ingress": [{"port": port("http", 90, "foo"), "defaultEndpoint": ep,
                "tls": {"mode": mode}}]})
        };
        let tls_cases: Vec<(&str, Value)> = vec![
            // ingress tls mode set to ISTIO_MUTUAL in IPv4 / IPv6
            ("ingress tls mode set to ISTIO_MUTUAL", http("ISTIO_MUTUAL")),
            // ingress tls mode set to ISTIO_AUTO_PASSTHROUGH in IPv4 / IPv6
            (
                "ingress tls mode set to ISTIO_AUTO_PASSTHROUGH",
                http("AUTO_PASSTHROUGH"),
            ),
            // ingress tls invalid protocol in IPv4 / IPv6
            (
                "ingress tls invalid protocol",
                ingress_tls(ep, json!({"mode": "SIMPLE"})),
            ),
            // ingress tls httpRedirect is not supported in IPv4 / IPv6
            (
                "ingress tls httpRedirect is not supported",
                ingress_tls(ep, json!({"mode": "SIMPLE", "httpsRedirect": true})),
            ),
            // ingress tls SAN entries are not supported in IPv4 / IPv6
            (
                "ingress tls SAN entries are not supported",
                ingress_tls(
                    ep,
                    json!({"mode": "SIMPLE", "subjectAltNames": ["httpbin.com"]}),
                ),
            ),
            // ingress tls credentialName is not supported in IPv4 / IPv6
            (
                "ingress tls credentialName is not supported",
                ingress_tls(
                    ep,
                    json!({"mode": "SIMPLE", "credentialName": "secret-name"}),
                ),
            ),
            // ingress tls credentialNames is not supported in IPv4 / IPv6
            (
                "ingress tls credentialNames is not supported",
                ingress_tls(
                    ep,
                    json!({"mode": "SIMPLE", "credentialNames": ["secret-name"]}),
                ),
            ),
            // ingress tls tlsCertificates is not supported in IPv4 / IPv6
            (
                "ingress tls tlsCertificates is not supported",
                ingress_tls(
                    ep,
                    json!({"mode": "SIMPLE", "tlsCertificates": [
                    {"serverCertificate": "/etc/istio/ingress-certs/tls.crt",
                     "privateKey": "/etc/istio/ingress-certs/tls.key"},
                    {"serverCertificate": "/etc/istio/ingress-certs/tls2.crt",
                     "privateKey": "/etc/istio/ingress-certs/tls2.key"}]}),
                ),
            ),
        ];
        for (name, spec) in tls_cases {
            let name: &'static str = Box::leak(format!("{name} in {suffix}").into_boxed_str());
            cases.push((name, spec, Error));
        }
    }
    cases.extend(vec![
        // valid inbound connection pool
        (
            "valid inbound connection pool",
            json!({"inboundConnectionPool": http_pool()}),
            Valid,
        ),
        // valid port-level connection pool with top level default
        (
            "valid port-level connection pool with top level default",
            json!({"ingress": [{"port": port("http", 90, "foo"), "connectionPool": http_pool()}],
                "inboundConnectionPool": http_pool()}),
            Valid,
        ),
        // valid port-level connection pool without a top level default
        (
            "valid port-level connection pool without a top level default",
            json!({"ingress": [{"port": port("http", 90, "foo"), "connectionPool": http_pool()}]}),
            Valid,
        ),
        // warn http connection settings on tcp port
        (
            "warn http connection settings on tcp port",
            json!({"ingress": [{"port": port("tcp", 90, "foo"), "connectionPool": http_pool()}]}),
            Warning,
        ),
        // invalid top level connection pool
        (
            "invalid top level connection pool",
            json!({"inboundConnectionPool": {}}),
            Error,
        ),
        // invalid port-level connection pool
        (
            "invalid port-level connection pool",
            json!({"ingress": [{"port": port("tcp", 90, "foo"), "connectionPool": {}}]}),
            Error,
        ),
    ]);
    table::<Sidecar>(cases);
}
