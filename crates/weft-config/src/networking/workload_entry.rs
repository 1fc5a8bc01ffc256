//! `WorkloadEntry` (networking.istio.io): a non-Kubernetes workload (VM, bare metal) or an
//! endpoint of a ServiceEntry — its address, named ports, labels and network/locality.
//! The same message is a ServiceEntry endpoint and a WorkloadGroup template, each with its
//! own rules, so the checks take the [`EndpointContext`] they run in.

use crate::networking::gateway::protocol::{UNIX_PREFIX, check_unix_address, is_ip};
use crate::types::is_default;
use crate::validate::{Validate, Validator, rules};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One workload instance: where it is reachable and how it is identified.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WorkloadEntry {
    /// IP address, DNS name (DNS resolution only) or `unix:///path` socket, without port.
    #[serde(skip_serializing_if = "is_default")]
    pub address: String,
    /// Port numbers of this endpoint, keyed by the service port name they implement.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub ports: BTreeMap<String, u32>,
    /// Labels of the workload (matched by selectors, e.g. subsets).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// L3 network the endpoint lives in; endpoints on other networks are reached via gateways.
    #[serde(skip_serializing_if = "is_default")]
    pub network: String,
    /// Failure domain as `region/zone/subzone`, used for locality-aware load balancing.
    #[serde(skip_serializing_if = "is_default")]
    pub locality: String,
    /// Load balancing weight relative to the other endpoints.
    #[serde(skip_serializing_if = "is_default")]
    pub weight: u32,
    /// Service account of the workload's sidecar (its identity).
    #[serde(skip_serializing_if = "is_default")]
    pub service_account: String,
}

/// Where a `WorkloadEntry` message appears; Istio applies different rules to each.
#[derive(Debug, Clone, Copy)]
pub(crate) enum EndpointContext<'a> {
    /// A `WorkloadEntry` resource: IP, FQDN or unix socket.
    Standalone,
    /// A ServiceEntry endpoint with `resolution: STATIC`: IP or unix socket.
    Static(&'a BTreeSet<String>),
    /// A ServiceEntry endpoint with `resolution: DNS`/`DNS_ROUND_ROBIN`: IP or FQDN.
    Dns(&'a BTreeSet<String>),
    /// A ServiceEntry endpoint under `resolution: NONE` (already an error by itself).
    NoResolution,
    /// The template of a WorkloadGroup: address and ports are filled in later.
    Template,
}

impl Validate for WorkloadEntry {
    fn validate(&self, v: &mut Validator) {
        validate_endpoint(self, v, EndpointContext::Standalone);
    }
}

/// Istio's `validateWorkloadEntry` and the ServiceEntry DNS endpoint checks, together with
/// the CRD's CEL rules and size limits on the message, each problem reported once.
pub(crate) fn validate_endpoint(we: &WorkloadEntry, v: &mut Validator, ctx: EndpointContext) {
    use EndpointContext as C;
    limits(we, v);

    let addr = we.address.as_str();
    if addr.is_empty() {
        match ctx {
            C::Template => {}
            _ if we.network.is_empty() => {
                v.field("address", |v| {
                    v.missing("address is required (or set network for an endpoint reached through that network's gateway)")
                });
                return;
            }
            C::Dns(_) => v.field("address", |v| {
                v.error("endpoint address \"\" is not a valid FQDN or an IP address, as DNS resolution requires")
            }),
            C::Standalone | C::Static(_) => v.field("address", |v| {
                v.warn(format!(
                    "address is unset with network {:?}; the endpoint is only reachable through that network's gateway",
                    we.network
                ))
            }),
            C::NoResolution => {}
        }
    }

    let unix = addr.starts_with(UNIX_PREFIX);
    if unix {
        v.field("address", |v| {
            if let Err(e) = check_unix_address(&addr[UNIX_PREFIX.len()..]) {
                v.error(e);
            }
            if let C::Dns(_) = ctx {
                v.error(format!(
                    "endpoint address {addr:?} is not a valid FQDN or an IP address: DNS resolution cannot use unix domain sockets"
                ));
            }
        });
        if !we.ports.is_empty() {
            v.field("ports", |v| {
                v.error(format!("unix endpoint {addr:?} must not include ports"))
            });
        }
        if let C::Static(service_ports) = ctx
            && service_ports.len() != 1
        {
            v.field("address", |v| {
                v.error(format!(
                    "exactly 1 service port is required for unix endpoints (the service entry has {})",
                    service_ports.len()
                ))
            });
        }
    } else if !addr.is_empty() && !is_ip(addr) {
        match ctx {
            C::Static(_) => v.field("address", |v| {
                v.error(format!(
                    "endpoint address {addr:?} is not a valid IP address (resolution STATIC requires IPs; use DNS to resolve host names)"
                ))
            }),
            C::Standalone | C::Dns(_) => {
                if rules::check_fqdn(addr).is_err() {
                    v.field("address", |v| {
                        v.error(format!(
                            "endpoint address {addr:?} is not a valid FQDN or an IP address"
                        ))
                    });
                }
            }
            C::NoResolution | C::Template => {}
        }
    }

    v.field("ports", |v| {
        for (name, port) in &we.ports {
            v.key(name, |v| {
                if let C::Static(sp) | C::Dns(sp) = ctx
                    && !sp.contains(name)
                {
                    v.error(format!(
                        "endpoint port {name:?} ({port}) is not defined by the service entry's ports"
                    ));
                }
                // The CRD's pattern is a DNS label but strictly shorter than 63 characters.
                if !rules::is_dns1123_label(name) || name.len() >= 63 {
                    v.error(format!(
                        "invalid port name {name:?}: must be a DNS-1123 label of at most 62 characters"
                    ));
                }
                rules::port(v, *port);
            });
        }
    });

    if matches!(ctx, C::Standalone | C::Static(_) | C::Dns(_)) {
        v.field("labels", |v| rules::labels(v, &we.labels));
    }
}

/// The CRD's size limits, which the API server enforces wherever the message appears.
fn limits(we: &WorkloadEntry, v: &mut Validator) {
    let max_len = |v: &mut Validator, field: &str, value: &str, max: usize| {
        if value.len() > max {
            v.field(field, |v| {
                v.error(format!(
                    "{field} must be at most {max} characters (got {})",
                    value.len()
                ))
            });
        }
    };
    max_len(v, "address", &we.address, 256);
    max_len(v, "network", &we.network, 2048);
    max_len(v, "locality", &we.locality, 2048);
    max_len(v, "serviceAccount", &we.service_account, 253);
    if we.labels.len() > 256 {
        v.field("labels", |v| v.error("at most 256 labels may be set"));
    }
    if we.ports.len() > 128 {
        v.field("ports", |v| v.error("at most 128 ports may be set"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Severity;
    use crate::validate::check;
    use serde_json::json;

    fn run(spec: serde_json::Value) -> Vec<(String, Severity, String)> {
        let we: WorkloadEntry = serde_json::from_value(spec).expect("decodes");
        check(&we, "default")
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

    #[test]
    fn round_trip() {
        let we = WorkloadEntry {
            address: "1.2.3.4".into(),
            ports: [("http".to_string(), 8080)].into(),
            labels: [("app".to_string(), "vm".to_string())].into(),
            network: "net1".into(),
            locality: "us/east/a".into(),
            weight: 3,
            service_account: "sa".into(),
        };
        let value = serde_json::to_value(&we).expect("serializes");
        assert_eq!(value["serviceAccount"], "sa");
        let back: WorkloadEntry = serde_json::from_value(value).expect("decodes");
        assert_eq!(back, we);
        assert_eq!(
            serde_json::to_value(WorkloadEntry::default()).ok(),
            Some(json!({}))
        );
    }

    #[test]
    fn istio_valid_testdata() {
        for spec in [
            json!({"address": "1.2.3.4", "serviceAccount": "sa", "network": "net",
                   "labels": {"app": "app"}, "ports": {"http": 1}, "weight": 2,
                   "locality": "foo/bar/baz"}),
            json!({"address": "unix://@foo"}),
            json!({"address": "unix:///foo/bar"}),
            json!({"address": "example.com"}),
        ] {
            assert_eq!(run(spec.clone()), vec![], "{spec}");
        }
        // Valid, with Istio's warning.
        assert_one(
            json!({"network": "net"}),
            "address",
            Severity::Warning,
            "address is unset",
        );
    }

    #[test]
    fn istio_invalid_testdata() {
        assert_one(json!({}), "address", Severity::Error, "address is required");
        assert_one(
            json!({"address": "unix:///dir/"}),
            "address",
            Severity::Error,
            "absolute path",
        );
        assert_one(
            json!({"address": "unix://relative"}),
            "address",
            Severity::Error,
            "absolute path",
        );
        assert_one(
            json!({"address": "unix://@foo", "ports": {"http": 80}}),
            "ports",
            Severity::Error,
            "must not include ports",
        );
        assert_one(
            json!({"address": "1.1.1.1", "ports": {"http": 99999}}),
            "ports[http]",
            Severity::Error,
            "1..65535",
        );
        assert_one(
            json!({"address": "1.1.1.1", "ports": {"@": 80}}),
            "ports[\"@\"]",
            Severity::Error,
            "invalid port name",
        );
    }

    #[test]
    fn address_forms_and_labels() {
        assert_one(
            json!({"address": "unix://"}),
            "address",
            Severity::Error,
            "must not be empty",
        );
        assert_one(
            json!({"address": "bad_host.com"}),
            "address",
            Severity::Error,
            "not a valid FQDN",
        );
        assert_one(
            json!({"address": "1.2.3.4", "labels": {"-bad": "x"}}),
            "labels[-bad]",
            Severity::Error,
            "invalid label key",
        );
        let long = "a".repeat(63);
        assert_one(
            json!({"address": "1.2.3.4", "ports": {long.clone(): 80}}),
            &format!("ports[{long}]"),
            Severity::Error,
            "at most 62",
        );
        assert_one(
            json!({"address": "1.2.3.4", "serviceAccount": "s".repeat(254)}),
            "serviceAccount",
            Severity::Error,
            "at most 253",
        );
    }

    #[test]
    fn contexts() {
        let ports: BTreeSet<String> = ["http".to_string()].into();
        let find = |we: serde_json::Value, ctx: EndpointContext| {
            let we: WorkloadEntry = serde_json::from_value(we).expect("decodes");
            let mut v = Validator::new("default");
            validate_endpoint(&we, &mut v, ctx);
            v.into_findings()
        };
        let f = find(
            json!({"address": "example.com"}),
            EndpointContext::Static(&ports),
        );
        assert!(f[0].message.contains("not a valid IP address"), "{f:?}");
        let f = find(
            json!({"address": "example.com", "ports": {"tcp": 1}}),
            EndpointContext::Dns(&ports),
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].message.contains("not defined by the service entry"));
        let f = find(
            json!({"address": "unix:///a"}),
            EndpointContext::Dns(&ports),
        );
        assert!(f[0].message.contains("cannot use unix"), "{f:?}");
        let two: BTreeSet<String> = ["a".to_string(), "b".to_string()].into();
        let f = find(
            json!({"address": "unix:///a"}),
            EndpointContext::Static(&two),
        );
        assert!(f[0].message.contains("exactly 1 service port"), "{f:?}");
        let f = find(json!({"network": "n"}), EndpointContext::Dns(&ports));
        assert!(f[0].is_error(), "{f:?}");
        assert!(find(json!({}), EndpointContext::Template).is_empty());
        assert!(
            find(
                json!({"address": "unix:///a", "ports": {"p": 1}}),
                EndpointContext::Template
            )[0]
            .message
            .contains("must not include ports")
        );
    }
}
