use super::*;
use crate::diag::Severity;
use crate::networking::sidecar::WorkloadSelector;
use crate::networking::workload_entry::WorkloadEntry;
use crate::validate::check;
use serde_json::{Value, json};

fn run(spec: Value) -> Vec<(String, Severity, String)> {
    let se: ServiceEntry = serde_json::from_value(spec).expect("decodes");
    check(&se, "default")
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
fn assert_no_errors(spec: Value) -> Vec<(String, Severity, String)> {
    let got = run(spec);
    assert!(
        got.iter().all(|(_, s, _)| *s == Severity::Warning),
        "{got:#?}"
    );
    got
}

#[test]
fn round_trip() {
    let se = ServiceEntry {
        hosts: vec!["api.example.com".into()],
        addresses: vec!["10.0.0.1".into()],
        ports: vec![ServicePort {
            number: 443,
            protocol: "TLS".into(),
            name: "tls".into(),
            target_port: 8443,
        }],
        location: Location::MeshInternal,
        resolution: Resolution::DnsRoundRobin,
        endpoints: vec![WorkloadEntry {
            address: "a.example.com".into(),
            weight: 2,
            ..Default::default()
        }],
        workload_selector: Some(WorkloadSelector {
            labels: [("app".to_string(), "x".to_string())].into(),
        }),
        export_to: vec![".".into()],
        subject_alt_names: vec!["spiffe://td/ns/a/sa/b".into()],
    };
    let value = serde_json::to_value(&se).expect("serializes");
    assert_eq!(value["resolution"], "DNS_ROUND_ROBIN");
    assert_eq!(value["location"], "MESH_INTERNAL");
    assert_eq!(value["workloadSelector"]["labels"]["app"], "x");
    assert_eq!(value["ports"][0]["targetPort"], 8443);
    assert_eq!(value["exportTo"][0], ".");
    assert_eq!(value["subjectAltNames"][0], "spiffe://td/ns/a/sa/b");
    let back: ServiceEntry = serde_json::from_value(value).expect("decodes");
    assert_eq!(back, se);
    assert_eq!(
        serde_json::to_value(ServiceEntry::default()).ok(),
        Some(json!({}))
    );
}

#[test]
fn seed_openai_is_clean() {
    assert_eq!(
        run(json!({
            "hosts": ["api.openai.com"],
            "ports": [{"number": 443, "name": "https", "protocol": "HTTPS"}],
            "location": "MESH_EXTERNAL",
            "resolution": "DNS"
        })),
        vec![]
    );
}

#[test]
fn istio_valid_testdata() {
    // A selector with DNS resolution is fine and no longer warned about (istio/istio#50164).
    let got = assert_no_errors(json!({
        "hosts": ["example.com"], "workloadSelector": {"labels": {"foo": "bar"}},
        "addresses": ["1.2.3.4", "001:db8::"], "exportTo": ["foo", "."], "location": "MESH_EXTERNAL",
        "ports": [{"name": "foo", "protocol": "HTTP", "number": 1234, "targetPort": 2345}],
        "subjectAltNames": ["sa"], "resolution": "DNS"
    }));
    assert!(!got.iter().any(|(p, _, _)| p == "workloadSelector"));
    assert_eq!(
        run(
            json!({"hosts": ["example.com"], "endpoints": [{"address": "sub.example.com"}],
                   "ports": [{"name": "foo", "protocol": "HTTP", "number": 1234, "targetPort": 2345}],
                   "resolution": "DNS"})
        ),
        vec![]
    );
    let got = assert_no_errors(json!({"workloadSelector": {}, "hosts": ["example.com"]}));
    assert!(
        got.iter().any(|(_, _, m)| m.contains("without labels")),
        "{got:#?}"
    );
    let got = assert_no_errors(json!({"hosts": ["*x"]}));
    assert!(
        got.iter()
            .any(|(p, _, m)| p == "hosts[0]" && m.contains("partial wildcard")),
        "{got:#?}"
    );
    assert_eq!(
        run(json!({"hosts": ["example.com"], "addresses": ["1.1.1.1/32"]})),
        vec![]
    );
}

#[test]
fn istio_invalid_testdata() {
    assert_finding(json!({}), "hosts", Severity::Error, "at least one host");
    assert_finding(
        json!({"hosts": ["example.com"], "workloadSelector": {"labels": {"val": "*"}}}),
        "workloadSelector.labels[val]",
        Severity::Error,
        "wildcard",
    );
    assert_finding(
        json!({"hosts": ["example.com"], "workloadSelector": {"labels": {"*": "val"}}, "resolution": "STATIC"}),
        "workloadSelector.labels[\"*\"]",
        Severity::Error,
        "wildcard",
    );
    assert_finding(
        json!({"hosts": ["example.com"], "workloadSelector": {}, "endpoints": [{"address": "1.2.3.4"}]}),
        "endpoints",
        Severity::Error,
        "only one of workloadSelector or endpoints",
    );
    assert_finding(
        json!({"hosts": ["*"]}),
        "hosts[0]",
        Severity::Error,
        "cannot be wildcard",
    );
    assert_finding(
        json!({"hosts": ["foo*"]}),
        "hosts[0]",
        Severity::Error,
        "invalid",
    );
    assert_finding(
        json!({"hosts": ["example.com"], "addresses": ["1.2.3.4/99"]}),
        "addresses[0]",
        Severity::Error,
        "prefix length",
    );
    assert_finding(
        json!({"hosts": ["example.com"], "addresses": ["1.2.3.4/16"], "resolution": "DNS"}),
        "addresses",
        Severity::Error,
        "CIDR addresses are allowed only for NONE/STATIC",
    );
    assert_finding(
        json!({"hosts": ["example.com"], "ports": [{"name": "a", "number": 1}, {"name": "a", "number": 12}]}),
        "ports[1].name",
        Severity::Error,
        "already defined",
    );
    assert_finding(
        json!({"hosts": ["example.com"], "ports": [{"name": "a", "number": 1}, {"name": "b", "number": 1}]}),
        "ports[1].number",
        Severity::Error,
        "already defined",
    );
    assert_finding(
        json!({"hosts": ["example.com"], "ports": [{"name": "a", "number": 99999}]}),
        "ports[0].number",
        Severity::Error,
        "1..65535",
    );
    assert_finding(
        json!({"hosts": ["example.com"], "ports": [{"name": "a", "number": 1, "targetPort": 99999}]}),
        "ports[0].targetPort",
        Severity::Error,
        "1..65535",
    );
    assert_finding(
        json!({"hosts": ["example.com"], "endpoints": [{"address": "1.2.3.4"}], "resolution": "NONE"}),
        "endpoints",
        Severity::Error,
        "resolution type NONE",
    );
    assert_finding(
        json!({"hosts": ["example.com"], "resolution": "DNS_ROUND_ROBIN",
               "endpoints": [{"address": "sub1.example.com"}, {"address": "sub2.example.com"}]}),
        "endpoints",
        Severity::Error,
        "0 or 1 endpoint",
    );
}

#[test]
fn ports_and_protocols() {
    let port = |p: Value| json!({"hosts": ["example.com"], "resolution": "DNS", "ports": [p]});
    assert_finding(
        port(json!({"number": 80, "name": "h", "protocol": "HTTP/1.1"})),
        "ports[0].protocol",
        Severity::Error,
        "unsupported protocol",
    );
    assert_finding(
        port(json!({"number": 80, "name": "bad_name", "protocol": "HTTP"})),
        "ports[0].name",
        Severity::Error,
        "invalid port name",
    );
    assert_finding(
        port(json!({"number": 80, "protocol": "HTTP"})),
        "ports[0].name",
        Severity::Error,
        "required",
    );
    assert_eq!(
        run(port(json!({"number": 80, "name": "h", "protocol": "tcp"}))),
        vec![]
    );
    let none = json!({"hosts": ["example.com"], "ports": [{"number": 5432, "name": "pg", "protocol": "TCP"}]});
    assert_finding(
        none,
        "ports[0].protocol",
        Severity::Warning,
        "addresses are required",
    );
    assert_eq!(
        run(json!({"hosts": ["example.com"], "addresses": ["10.0.0.1"],
                   "ports": [{"number": 5432, "name": "pg"}]})),
        vec![]
    );
}

#[test]
fn resolution_rules() {
    assert_finding(
        json!({"hosts": ["*.example.com"], "resolution": "DNS"}),
        "hosts[0]",
        Severity::Error,
        "must be FQDN",
    );
    assert_eq!(
        run(json!({"hosts": ["*.example.com"], "resolution": "DNS",
                   "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
                   "endpoints": [{"address": "lb.example.com"}]})),
        vec![]
    );
    let static_se = |ep: Value| {
        json!({"hosts": ["example.com"], "resolution": "STATIC",
        "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}], "endpoints": [ep]})
    };
    assert_eq!(
        run(static_se(
            json!({"address": "10.0.0.1", "ports": {"http": 8080}})
        )),
        vec![]
    );
    assert_eq!(
        run(static_se(json!({"address": "unix:///var/run/app.sock"}))),
        vec![]
    );
    assert_finding(
        static_se(json!({"address": "host.example.com"})),
        "endpoints[0].address",
        Severity::Error,
        "not a valid IP",
    );
    assert_finding(
        static_se(json!({"address": "10.0.0.1", "ports": {"grpc": 9000}})),
        "endpoints[0].ports[grpc]",
        Severity::Error,
        "not defined",
    );
    assert_finding(
        static_se(json!({"address": "10.0.0.1", "labels": {"a": "-x"}})),
        "endpoints[0].labels[a]",
        Severity::Error,
        "label value",
    );
    assert_finding(
        static_se(json!({})),
        "endpoints[0].address",
        Severity::Error,
        "address is required",
    );
    assert_finding(
        json!({"hosts": ["example.com"], "resolution": "DNS", "endpoints": [{"address": "unix:///x"}]}),
        "endpoints[0].address",
        Severity::Error,
        "cannot use unix",
    );
    assert_finding(
        json!({"hosts": ["example.com"], "workloadSelector": {"labels": {"app": "a"}}}),
        "workloadSelector",
        Severity::Warning,
        "resolution mode is NONE",
    );
    assert_eq!(
        run(
            json!({"hosts": ["example.com"], "resolution": "STATIC", "workloadSelector": {"labels": {"app": "a"}}})
        ),
        vec![]
    );
}

#[test]
fn multiple_hosts() {
    assert_finding(
        json!({"hosts": ["a.example.com", "b.example.com"], "resolution": "DNS",
               "ports": [{"number": 5432, "name": "pg", "protocol": "TCP"}]}),
        "ports[0].protocol",
        Severity::Error,
        "multiple hosts",
    );
    assert_eq!(
        run(
            json!({"hosts": ["a.example.com", "b.example.com"], "resolution": "NONE", "addresses": ["10.0.0.1"],
                   "ports": [{"number": 5432, "name": "pg", "protocol": "TCP"}]})
        ),
        vec![]
    );
    let got = run(
        json!({"hosts": ["a.example.com", "b.example.com"], "resolution": "DNS", "addresses": ["10.0.0.1"],
                         "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}]}),
    );
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!((got[0].0.as_str(), got[0].1), ("hosts", Severity::Warning));
}

#[test]
fn export_to() {
    let se = |e: Value| json!({"hosts": ["example.com"], "exportTo": e});
    assert_eq!(run(se(json!(["~"]))), vec![]);
    assert_eq!(run(se(json!(["*"]))), vec![]);
    assert_finding(
        se(json!(["default", "."])),
        "exportTo[1]",
        Severity::Error,
        ". and the current namespace",
    );
    assert_finding(
        se(json!([".", "default"])),
        "exportTo[1]",
        Severity::Error,
        "duplicate entries",
    );
    assert_finding(
        se(json!(["a", "a"])),
        "exportTo[1]",
        Severity::Error,
        "duplicate entries",
    );
    assert_finding(
        se(json!(["*", "a"])),
        "exportTo",
        Severity::Error,
        "both public",
    );
    assert_finding(
        se(json!(["~", "a"])),
        "exportTo",
        Severity::Error,
        "no one (~)",
    );
    assert_finding(
        se(json!(["a_b"])),
        "exportTo[0]",
        Severity::Error,
        "invalid exportTo entry",
    );
}
