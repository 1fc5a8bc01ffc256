//! Parity with Istio: TestValidateServiceEntries of pkg/config/validation/validation_test.go,
//! translated to JSON.

use super::ServiceEntry;
use crate::validate::istio_table::Want::*;
use crate::validate::istio_table::table;
use serde_json::{Value, json};

fn two_http() -> Value {
    json!([{"number": 80, "protocol": "http", "name": "http-valid1"},
        {"number": 8080, "protocol": "http", "name": "http-valid2"}])
}

fn one_http() -> Value {
    json!([{"number": 80, "protocol": "http", "name": "http-valid1"}])
}

fn uds() -> Value {
    json!([{"number": 6553, "protocol": "grpc", "name": "grpc-service1"}])
}

#[test]
fn istio_validate_service_entries() {
    table::<ServiceEntry>(vec![
        // discovery type DNS
        (
            "discovery type DNS",
            json!({"hosts": ["*.google.com"], "ports": two_http(), "resolution": "DNS", "endpoints": [
                {"address": "lon.google.com", "ports": {"http-valid1": 8080}},
                {"address": "in.google.com", "ports": {"http-valid2": 9080}}]}),
            Valid,
        ),
        // discovery type DNS Round Robin
        (
            "discovery type DNS Round Robin",
            json!({"hosts": ["*.istio.io"], "ports": two_http(), "resolution": "DNS_ROUND_ROBIN",
                "endpoints": [{"address": "api-v1.istio.io", "ports": {"http-valid1": 8080}}]}),
            Valid,
        ),
        // discovery type DNS, label tlsMode: istio
        (
            "discovery type DNS, label tlsMode: istio",
            json!({"hosts": ["*.google.com"], "ports": two_http(), "resolution": "DNS", "endpoints": [
                {"address": "lon.google.com", "ports": {"http-valid1": 8080},
                 "labels": {"security.istio.io/tlsMode": "istio"}},
                {"address": "in.google.com", "ports": {"http-valid2": 9080},
                 "labels": {"security.istio.io/tlsMode": "istio"}}]}),
            Valid,
        ),
        // discovery type DNS, one host set with IP address and https port
        (
            "discovery type DNS, one host set with IP address and https port",
            json!({"hosts": ["httpbin.org"], "addresses": ["10.10.10.10"], "resolution": "DNS",
                "ports": [{"number": 80, "protocol": "http", "name": "http-valid1"},
                    {"number": 8080, "protocol": "http", "name": "http-valid2"},
                    {"number": 443, "protocol": "https", "name": "https"}]}),
            Valid,
        ),
        // discovery type DNS, multi hosts set with IP address and https port
        (
            "discovery type DNS, multi hosts set with IP address and https port",
            json!({"hosts": ["httpbin.org", "wikipedia.org"], "addresses": ["10.10.10.10"],
                "resolution": "DNS",
                "ports": [{"number": 80, "protocol": "http", "name": "http-valid1"},
                    {"number": 8080, "protocol": "http", "name": "http-valid2"},
                    {"number": 443, "protocol": "https", "name": "https"}]}),
            Warning,
        ),
        // discovery type DNS, IP address set
        (
            "discovery type DNS, IP address set",
            json!({"hosts": ["*.google.com"], "addresses": ["10.10.10.10"], "ports": two_http(),
                "resolution": "DNS", "endpoints": [
                {"address": "lon.google.com", "ports": {"http-valid1": 8080}},
                {"address": "in.google.com", "ports": {"http-valid2": 9080}}]}),
            Valid,
        ),
        // discovery type DNS, IP in endpoints
        (
            "discovery type DNS, IP in endpoints",
            json!({"hosts": ["*.google.com"], "ports": two_http(), "resolution": "DNS", "endpoints": [
                {"address": "1.1.1.1", "ports": {"http-valid1": 8080}},
                {"address": "in.google.com", "ports": {"http-valid2": 9080}}]}),
            Valid,
        ),
        // empty hosts
        (
            "empty hosts",
            json!({"ports": one_http(), "resolution": "DNS",
                "endpoints": [{"address": "in.google.com", "ports": {"http-valid2": 9080}}]}),
            Error,
        ),
        // bad hosts
        (
            "bad hosts",
            json!({"hosts": ["-"], "ports": one_http(), "resolution": "DNS",
                "endpoints": [{"address": "in.google.com", "ports": {"http-valid2": 9080}}]}),
            Error,
        ),
        // full wildcard host
        (
            "full wildcard host",
            json!({"hosts": ["foo.com", "*"], "ports": one_http(), "resolution": "DNS",
                "endpoints": [{"address": "in.google.com", "ports": {"http-valid2": 9080}}]}),
            Error,
        ),
        // short name host
        (
            "short name host",
            json!({"hosts": ["foo", "bar.com"], "ports": one_http(), "resolution": "DNS",
                "endpoints": [{"address": "in.google.com", "ports": {"http-valid1": 9080}}]}),
            Valid,
        ),
        // undefined endpoint port
        (
            "undefined endpoint port",
            json!({"hosts": ["google.com"], "resolution": "DNS",
                "ports": [{"number": 80, "protocol": "http", "name": "http-valid1"},
                    {"number": 80, "protocol": "http", "name": "http-valid2"}],
                "endpoints": [{"address": "lon.google.com", "ports": {"http-valid1": 8080}},
                    {"address": "in.google.com", "ports": {"http-dne": 9080}}]}),
            Error,
        ),
        // discovery type DNS, non-FQDN endpoint
        (
            "discovery type DNS, non-FQDN endpoint",
            json!({"hosts": ["*.google.com"], "ports": two_http(), "resolution": "DNS", "endpoints": [
                {"address": "*.lon.google.com", "ports": {"http-valid1": 8080}},
                {"address": "in.google.com", "ports": {"http-dne": 9080}}]}),
            Error,
        ),
        // discovery type DNS, non-FQDN host
        (
            "discovery type DNS, non-FQDN host",
            json!({"hosts": ["*.google.com"], "ports": two_http(), "resolution": "DNS"}),
            Error,
        ),
        // discovery type DNS, no endpoints
        (
            "discovery type DNS, no endpoints",
            json!({"hosts": ["google.com"], "ports": two_http(), "resolution": "DNS"}),
            Valid,
        ),
        // discovery type DNS, unix endpoint
        (
            "discovery type DNS, unix endpoint",
            json!({"hosts": ["*.google.com"], "ports": one_http(), "resolution": "DNS",
                "endpoints": [{"address": "unix:///lon/google/com"}]}),
            Error,
        ),
        // discovery type none
        (
            "discovery type none",
            json!({"hosts": ["google.com"], "ports": two_http(), "resolution": "NONE"}),
            Valid,
        ),
        // discovery type none, endpoints provided
        (
            "discovery type none, endpoints provided",
            json!({"hosts": ["google.com"], "ports": two_http(), "resolution": "NONE",
                "endpoints": [{"address": "lon.google.com", "ports": {"http-valid1": 8080}}]}),
            Error,
        ),
        // discovery type none, cidr addresses
        (
            "discovery type none, cidr addresses",
            json!({"hosts": ["google.com"], "addresses": ["172.1.2.16/16"], "ports": two_http(),
                "resolution": "NONE"}),
            Valid,
        ),
        // discovery type static, cidr addresses with endpoints
        (
            "discovery type static, cidr addresses with endpoints",
            json!({"hosts": ["google.com"], "addresses": ["172.1.2.16/16"], "ports": two_http(),
                "resolution": "STATIC", "endpoints": [
                {"address": "1.1.1.1", "ports": {"http-valid1": 8080}},
                {"address": "2.2.2.2", "ports": {"http-valid2": 9080}}]}),
            Valid,
        ),
        // discovery type static
        (
            "discovery type static",
            json!({"hosts": ["google.com"], "addresses": ["172.1.2.16"], "ports": two_http(),
                "resolution": "STATIC", "endpoints": [
                {"address": "1.1.1.1", "ports": {"http-valid1": 8080}},
                {"address": "2.2.2.2", "ports": {"http-valid2": 9080}}]}),
            Valid,
        ),
        // discovery type static, FQDN in endpoints
        (
            "discovery type static, FQDN in endpoints",
            json!({"hosts": ["google.com"], "addresses": ["172.1.2.16"], "ports": two_http(),
                "resolution": "STATIC", "endpoints": [
                {"address": "google.com", "ports": {"http-valid1": 8080}},
                {"address": "2.2.2.2", "ports": {"http-valid2": 9080}}]}),
            Error,
        ),
        // discovery type static, missing endpoints
        (
            "discovery type static, missing endpoints",
            json!({"hosts": ["google.com"], "addresses": ["172.1.2.16"], "ports": two_http(),
                "resolution": "STATIC"}),
            Valid,
        ),
        // discovery type static, bad endpoint port name
        (
            "discovery type static, bad endpoint port name",
            json!({"hosts": ["google.com"], "addresses": ["172.1.2.16"], "ports": two_http(),
                "resolution": "STATIC", "endpoints": [
                {"address": "1.1.1.1", "ports": {"http-valid1": 8080}},
                {"address": "2.2.2.2", "ports": {"http-dne": 9080}}]}),
            Error,
        ),
        // discovery type none, conflicting port names
        (
            "discovery type none, conflicting port names",
            json!({"hosts": ["google.com"], "resolution": "NONE",
                "ports": [{"number": 80, "protocol": "http", "name": "http-conflict"},
                    {"number": 8080, "protocol": "http", "name": "http-conflict"}]}),
            Error,
        ),
        // discovery type none, conflicting port numbers
        (
            "discovery type none, conflicting port numbers",
            json!({"hosts": ["google.com"], "resolution": "NONE",
                "ports": [{"number": 80, "protocol": "http", "name": "http-conflict1"},
                    {"number": 80, "protocol": "http", "name": "http-conflict2"}]}),
            Error,
        ),
        // unix socket
        (
            "unix socket",
            json!({"hosts": ["uds.cluster.local"], "ports": uds(), "resolution": "STATIC",
                "endpoints": [{"address": "unix:///path/to/socket"}]}),
            Valid,
        ),
        // unix socket, relative path
        (
            "unix socket, relative path",
            json!({"hosts": ["uds.cluster.local"], "ports": uds(), "resolution": "STATIC",
                "endpoints": [{"address": "unix://./relative/path.sock"}]}),
            Error,
        ),
        // unix socket, endpoint ports
        (
            "unix socket, endpoint ports",
            json!({"hosts": ["uds.cluster.local"], "ports": uds(), "resolution": "STATIC",
                "endpoints": [{"address": "unix:///path/to/socket", "ports": {"grpc-service1": 6553}}]}),
            Error,
        ),
        // unix socket, multiple service ports
        (
            "unix socket, multiple service ports",
            json!({"hosts": ["uds.cluster.local"], "resolution": "STATIC",
                "ports": [{"number": 6553, "protocol": "grpc", "name": "grpc-service1"},
                    {"number": 80, "protocol": "http", "name": "http-service2"}],
                "endpoints": [{"address": "unix:///path/to/socket"}]}),
            Error,
        ),
        // empty protocol
        (
            "empty protocol",
            json!({"hosts": ["google.com"], "addresses": ["172.1.2.16/16"], "resolution": "NONE",
                "ports": [{"number": 80, "protocol": "http", "name": "http-valid1"},
                    {"number": 8080, "name": "http-valid2"}]}),
            Valid,
        ),
        // selector
        (
            "selector",
            json!({"hosts": ["google.com"], "workloadSelector": {"labels": {"foo": "bar"}},
                "ports": one_http()}),
            Warning,
        ),
        // workload selector without labels
        (
            "workload selector without labels",
            json!({"hosts": ["google.com"], "ports": two_http(), "workloadSelector": {}}),
            Warning,
        ),
        // selector and endpoints
        (
            "selector and endpoints",
            json!({"hosts": ["google.com"], "workloadSelector": {"labels": {"foo": "bar"}},
                "ports": one_http(), "endpoints": [{"address": "1.1.1.1"}]}),
            Error,
        ),
        // selector and resolution NONE
        (
            "selector and resolution NONE",
            json!({"hosts": ["google.com"], "workloadSelector": {"labels": {"foo": "bar"}},
                "ports": one_http(), "resolution": "NONE"}),
            Warning,
        ),
        // selector and resolution DNS
        (
            "selector and resolution DNS",
            json!({"hosts": ["google.com"], "workloadSelector": {"labels": {"foo": "bar"}},
                "ports": one_http(), "resolution": "DNS"}),
            Valid,
        ),
        // bad selector key
        (
            "bad selector key",
            json!({"hosts": ["google.com"], "workloadSelector": {"labels": {"": "bar"}},
                "ports": one_http()}),
            Error,
        ),
        // repeat target port
        (
            "repeat target port",
            json!({"hosts": ["google.com"], "resolution": "DNS",
                "ports": [{"number": 80, "protocol": "http", "name": "http-valid1", "targetPort": 80},
                    {"number": 81, "protocol": "http", "name": "http-valid2", "targetPort": 80}]}),
            Valid,
        ),
        // valid target port
        (
            "valid target port",
            json!({"hosts": ["google.com"], "resolution": "DNS",
                "ports": [{"number": 80, "protocol": "http", "name": "http-valid1", "targetPort": 81}]}),
            Valid,
        ),
        // invalid target port
        (
            "invalid target port",
            json!({"hosts": ["google.com"], "resolution": "DNS",
                "ports": [{"number": 80, "protocol": "http", "name": "http-valid1", "targetPort": 65536}]}),
            Error,
        ),
        // warn target port
        (
            "warn target port",
            json!({"hosts": ["google.com"], "workloadSelector": {"labels": {"key": "bar"}},
                "ports": [{"number": 80, "protocol": "http", "name": "http-valid1", "targetPort": 1234}]}),
            Warning,
        ),
        // valid endpoint port
        (
            "valid endpoint port",
            json!({"hosts": ["google.com"], "resolution": "STATIC",
                "ports": [{"number": 80, "protocol": "http", "name": "http-valid1", "targetPort": 81}],
                "endpoints": [{"address": "1.1.1.1", "ports": {"http-valid1": 8081}}]}),
            Valid,
        ),
        // invalid endpoint port
        (
            "invalid endpoint port",
            json!({"hosts": ["google.com"], "resolution": "STATIC",
                "ports": [{"number": 80, "protocol": "http", "name": "http-valid1", "targetPort": 81}],
                "endpoints": [{"address": "1.1.1.1", "ports": {"http-valid1": 65536}}]}),
            Error,
        ),
        // protocol unset for addresses empty
        (
            "protocol unset for addresses empty",
            json!({"hosts": ["google.com"], "addresses": [], "resolution": "NONE",
                "ports": [{"number": 80, "protocol": "http", "name": "http-valid1"},
                    {"number": 8080, "name": "http-valid2"}]}),
            Warning,
        ),
        // protocol is TCP for addresses empty
        (
            "protocol is TCP for addresses empty",
            json!({"hosts": ["google.com"], "addresses": [], "resolution": "NONE",
                "ports": [{"number": 80, "protocol": "http", "name": "http-valid1"},
                    {"number": 81, "protocol": "TCP", "name": "tcp-valid1"}]}),
            Warning,
        ),
        // dns round robin with more than one endpoint
        (
            "dns round robin with more than one endpoint",
            json!({"hosts": ["google.com"], "addresses": [], "resolution": "DNS_ROUND_ROBIN",
                "ports": [{"number": 8081, "protocol": "http", "name": "http-valid1"}],
                "endpoints": [{"address": "api-v1.istio.io", "ports": {"http-valid1": 8081}},
                    {"address": "1.1.1.2", "ports": {"http-valid1": 8081}}]}),
            Error,
        ),
        // dns round robin with 0 endpoints
        (
            "dns round robin with 0 endpoints",
            json!({"hosts": ["google.com"], "addresses": [], "resolution": "DNS_ROUND_ROBIN",
                "ports": [{"number": 8081, "protocol": "http", "name": "http-valid1"}],
                "endpoints": []}),
            Valid,
        ),
        // partial wildcard hosts
        (
            "partial wildcard hosts",
            json!({"hosts": ["*.nytimes.com", "*washingtonpost.com"], "addresses": [],
                "resolution": "NONE", "endpoints": [],
                "ports": [{"number": 443, "protocol": "HTTPS", "name": "https-nytimes"}]}),
            Warning,
        ),
        // network set with no address on endpoint
        (
            "network set with no address on endpoint",
            json!({"hosts": ["www.example.com"], "addresses": [], "resolution": "STATIC",
                "ports": [{"number": 443, "protocol": "HTTPS", "name": "https-example"}],
                "endpoints": [{"network": "cluster-1"}]}),
            Warning,
        ),
    ]);
}
