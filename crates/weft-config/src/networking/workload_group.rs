//! `WorkloadGroup` (networking.istio.io): a template from which Istio creates a
//! `WorkloadEntry` for each VM that registers itself, plus the readiness probe the
//! VM's proxy runs against the application.
#![allow(clippy::upper_case_acronyms)]

use crate::networking::workload_entry::{EndpointContext, WorkloadEntry, validate_endpoint};
use crate::types::is_default;
use crate::validate::{Validate, Validator, rules};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A group of workload instances sharing one template and health check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WorkloadGroup {
    /// Labels and annotations copied onto every generated `WorkloadEntry`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMeta>,
    /// The `WorkloadEntry` generated entries start from; address and ports are filled in on registration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<WorkloadEntry>,
    /// How the proxy decides the application is ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<ReadinessProbe>,
}

/// `WorkloadGroup.ObjectMeta`: the metadata given to generated entries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Labels for the generated entries.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations for the generated entries.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The readiness check the proxy runs; exactly one of the check methods is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ReadinessProbe {
    /// Seconds after start before the first probe.
    #[serde(skip_serializing_if = "is_default")]
    pub initial_delay_seconds: i32,
    /// Seconds after which a probe attempt times out.
    #[serde(skip_serializing_if = "is_default")]
    pub timeout_seconds: i32,
    /// Seconds between probes.
    #[serde(skip_serializing_if = "is_default")]
    pub period_seconds: i32,
    /// Consecutive successes needed to become ready after a failure.
    #[serde(skip_serializing_if = "is_default")]
    pub success_threshold: i32,
    /// Consecutive failures needed to become not ready after a success.
    #[serde(skip_serializing_if = "is_default")]
    pub failure_threshold: i32,
    /// Probe with an HTTP GET; ready on a 2xx/3xx answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HTTPHealthCheckConfig>,
    /// Probe by opening a TCP connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TCPHealthCheckConfig>,
    /// Probe by running a command; ready when it exits 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecHealthCheckConfig>,
    /// Probe with the gRPC health checking protocol.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcHealthCheckConfig>,
}

/// An HTTP GET readiness check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HTTPHealthCheckConfig {
    /// Request path.
    #[serde(skip_serializing_if = "is_default")]
    pub path: String,
    /// Port to connect to.
    #[serde(skip_serializing_if = "is_default")]
    pub port: u32,
    /// Host to connect to; defaults to the workload's address.
    #[serde(skip_serializing_if = "is_default")]
    pub host: String,
    /// `HTTP` or `HTTPS`; defaults to HTTP.
    #[serde(skip_serializing_if = "is_default")]
    pub scheme: String,
    /// Extra request headers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub http_headers: Vec<HTTPHeader>,
}

/// A header sent with an HTTP readiness check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HTTPHeader {
    /// Header name (letters, digits and `-`).
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Header value.
    #[serde(skip_serializing_if = "is_default")]
    pub value: String,
}

/// A TCP connect readiness check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TCPHealthCheckConfig {
    /// Host to connect to; defaults to the workload's address.
    #[serde(skip_serializing_if = "is_default")]
    pub host: String,
    /// Port to connect to.
    #[serde(skip_serializing_if = "is_default")]
    pub port: u32,
}

/// A command readiness check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ExecHealthCheckConfig {
    /// Command and arguments to run (not through a shell).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
}

/// A gRPC health-checking-protocol readiness check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GrpcHealthCheckConfig {
    /// Port of the gRPC health service.
    #[serde(skip_serializing_if = "is_default")]
    pub port: u32,
    /// Service name to ask about; empty asks about the server as a whole.
    #[serde(skip_serializing_if = "is_default")]
    pub service: String,
}

impl Validate for WorkloadGroup {
    /// `ValidateWorkloadGroup` and the CRD's rules. The template deliberately skips the
    /// WorkloadEntry rules that need an address, which registration fills in.
    fn validate(&self, v: &mut Validator) {
        match &self.template {
            None => v.field("template", |v| v.missing("template is required")),
            Some(t) => v.field("template", |v| {
                validate_endpoint(t, v, EndpointContext::Template)
            }),
        }
        if let Some(meta) = &self.metadata {
            v.field("metadata", |v| {
                v.field("labels", |v| rules::labels(v, &meta.labels));
                for (field, len) in [
                    ("labels", meta.labels.len()),
                    ("annotations", meta.annotations.len()),
                ] {
                    if len > 256 {
                        v.field(field, |v| {
                            v.error(format!("at most 256 {field} may be set (got {len})"))
                        });
                    }
                }
            });
        }
        v.nested("probe", &self.probe);
    }
}

impl Validate for ReadinessProbe {
    /// `validateReadinessProbe` plus the CRD's oneOf and per-field limits.
    fn validate(&self, v: &mut Validator) {
        for (field, value) in [
            ("periodSeconds", self.period_seconds),
            ("initialDelaySeconds", self.initial_delay_seconds),
            ("timeoutSeconds", self.timeout_seconds),
            ("successThreshold", self.success_threshold),
            ("failureThreshold", self.failure_threshold),
        ] {
            if value < 0 {
                v.field(field, |v| {
                    v.error(format!("{field} must be non-negative (got {value})"))
                });
            }
        }
        let set = rules::oneof(
            v,
            &[
                ("httpGet", self.http_get.is_some()),
                ("tcpSocket", self.tcp_socket.is_some()),
                ("exec", self.exec.is_some()),
                ("grpc", self.grpc.is_some()),
            ],
        );
        if set == 0 {
            v.missing("probe must set one of httpGet, tcpSocket or exec");
        }
        if let Some(h) = &self.http_get {
            v.field("httpGet", |v| {
                v.field("port", |v| rules::port(v, h.port));
                if !matches!(h.scheme.as_str(), "" | "HTTP" | "HTTPS") {
                    v.field("scheme", |v| {
                        v.error(format!(
                            "httpGet.scheme must be \"HTTP\" or \"HTTPS\" (got {:?})",
                            h.scheme
                        ))
                    });
                }
                v.field("httpHeaders", |v| {
                    for (i, header) in h.http_headers.iter().enumerate() {
                        v.index(i, |v| {
                            v.field("name", |v| probe_header_name(v, &header.name))
                        });
                    }
                });
            });
        }
        if let Some(t) = &self.tcp_socket {
            v.field("tcpSocket", |v| v.field("port", |v| rules::port(v, t.port)));
        }
        if let Some(e) = &self.exec {
            v.field("exec", |v| {
                if e.command.is_empty() {
                    v.field("command", |v| v.missing("exec.command is required"));
                }
                v.field("command", |v| {
                    for (i, arg) in e.command.iter().enumerate() {
                        if arg.is_empty() {
                            v.index(i, |v| v.error("command arguments must not be empty"));
                        }
                    }
                });
            });
        }
        if let Some(g) = &self.grpc {
            v.field("grpc", |v| {
                // Istio's validating webhook has no case for gRPC probes and rejects them.
                v.error("grpc readiness probes are rejected by Istio's validation (unknown health check method); use httpGet, tcpSocket or exec");
                v.field("port", |v| rules::port(v, g.port));
            });
        }
    }
}

/// Istio's `ValidateProbeHeaderName` (Kubernetes' rule): letters, digits and `-` only.
fn probe_header_name(v: &mut Validator, name: &str) {
    if name.is_empty() {
        v.missing("header name cannot be empty");
    } else if !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
        v.error(format!(
            "header name {name:?} is not valid for a probe: only letters, digits and '-' are allowed"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Severity;
    use crate::validate::check;
    use serde_json::json;

    fn run(spec: serde_json::Value) -> Vec<(String, Severity, String)> {
        let wg: WorkloadGroup = serde_json::from_value(spec).expect("decodes");
        check(&wg, "default")
            .into_iter()
            .map(|f| (f.path.to_string(), f.severity, f.message))
            .collect()
    }

    fn assert_one(spec: serde_json::Value, path: &str, sev: Severity, needle: &str) {
        let got = run(spec);
        assert!(
            got.iter()
                .any(|(p, s, m)| p == path && *s == sev && m.contains(needle)),
            "expected {sev:?} at {path} containing {needle:?}, got {got:#?}"
        );
    }

    fn full() -> serde_json::Value {
        json!({
            "metadata": {"labels": {"foo": "bar"}, "annotations": {"foo": "bar"}},
            "probe": {
                "failureThreshold": 2, "initialDelaySeconds": 1, "periodSeconds": 1,
                "successThreshold": 1, "timeoutSeconds": 1,
                "httpGet": {"port": 8080, "host": "bar", "scheme": "HTTPS", "path": "/bar",
                            "httpHeaders": [{"name": "foo", "value": "bar"}]}
            },
            "template": {"serviceAccount": "sa", "network": "net", "labels": {"app": "app"},
                         "ports": {"http": 1}, "weight": 2, "locality": "foo/bar/baz"}
        })
    }

    #[test]
    fn round_trip() {
        let mut wg: WorkloadGroup = serde_json::from_value(full()).expect("decodes");
        let probe = wg.probe.get_or_insert_default();
        probe.tcp_socket = Some(TCPHealthCheckConfig {
            host: "h".into(),
            port: 1,
        });
        probe.exec = Some(ExecHealthCheckConfig {
            command: vec!["true".into()],
        });
        probe.grpc = Some(GrpcHealthCheckConfig {
            port: 2,
            service: "s".into(),
        });
        let value = serde_json::to_value(&wg).expect("serializes");
        assert_eq!(value["probe"]["httpGet"]["httpHeaders"][0]["name"], "foo");
        assert_eq!(value["probe"]["tcpSocket"]["port"], 1);
        let back: WorkloadGroup = serde_json::from_value(value).expect("decodes");
        assert_eq!(back, wg);
    }

    #[test]
    fn istio_valid_testdata() {
        assert_eq!(run(full()), vec![]);
        assert_eq!(
            run(json!({"probe": {"tcpSocket": {"port": 8080}},
                       "template": {"serviceAccount": "sa", "network": "net"}})),
            vec![]
        );
        assert_eq!(run(json!({"template": {}})), vec![]);
    }

    #[test]
    fn istio_invalid_testdata() {
        assert_one(
            json!({"probe": {"tcpSocket": {"port": 65536}}, "template": {"serviceAccount": "sa", "network": "net"}}),
            "probe.tcpSocket.port",
            Severity::Error,
            "1..65535",
        );
        assert_one(
            json!({"probe": {"httpGet": {"httpHeaders": [{"name": "**"}], "port": 80}}, "template": {}}),
            "probe.httpGet.httpHeaders[0].name",
            Severity::Error,
            "not valid for a probe",
        );
        assert_one(
            json!({}),
            "template",
            Severity::Error,
            "template is required",
        );
    }

    #[test]
    fn probe_rules() {
        let probe = |p: serde_json::Value| json!({"template": {}, "probe": p});
        assert_one(
            probe(json!({"periodSeconds": -1, "exec": {"command": ["x"]}})),
            "probe.periodSeconds",
            Severity::Error,
            "non-negative",
        );
        assert_one(probe(json!({})), "probe", Severity::Error, "one of httpGet");
        assert_one(
            probe(json!({"exec": {"command": ["x"]}, "tcpSocket": {"port": 1}})),
            "probe",
            Severity::Error,
            "only one of",
        );
        assert_one(
            probe(json!({"exec": {}})),
            "probe.exec.command",
            Severity::Error,
            "required",
        );
        assert_one(
            probe(json!({"exec": {"command": [""]}})),
            "probe.exec.command[0]",
            Severity::Error,
            "empty",
        );
        assert_one(
            probe(json!({"httpGet": {"port": 80, "scheme": "https"}})),
            "probe.httpGet.scheme",
            Severity::Error,
            "HTTP",
        );
        assert_one(
            probe(json!({"httpGet": {"port": 80, "httpHeaders": [{"name": "a_b"}]}})),
            "probe.httpGet.httpHeaders[0].name",
            Severity::Error,
            "letters",
        );
        assert_one(
            probe(json!({"httpGet": {"port": 80, "httpHeaders": [{"value": "v"}]}})),
            "probe.httpGet.httpHeaders[0].name",
            Severity::Error,
            "empty",
        );
        assert_one(
            probe(json!({"httpGet": {}})),
            "probe.httpGet.port",
            Severity::Error,
            "1..65535",
        );
        assert_one(
            probe(json!({"grpc": {"port": 9000}})),
            "probe.grpc",
            Severity::Error,
            "unknown health check method",
        );
    }

    #[test]
    fn metadata_and_template() {
        assert_one(
            json!({"template": {}, "metadata": {"labels": {"bad key": "v"}}}),
            "metadata.labels[\"bad key\"]",
            Severity::Error,
            "invalid label key",
        );
        assert_one(
            json!({"template": {"address": "unix://rel"}}),
            "template.address",
            Severity::Error,
            "absolute path",
        );
        assert_one(
            json!({"template": {"ports": {"http": 0}}}),
            "template.ports[http]",
            Severity::Error,
            "1..65535",
        );
    }
}
