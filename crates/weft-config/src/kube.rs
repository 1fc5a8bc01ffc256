//! Validation of the Kubernetes kinds a mesh reads (Service, Endpoints, EndpointSlice,
//! Namespace, Pod, Deployment, Secret, ConfigMap): the API server's rules for the fields the
//! mesh depends on, so a registry described in YAML is as valid as one read from a cluster.

use crate::validate::{Validator, rules};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Endpoints, Namespace, Pod, PodSpec, Secret, Service,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::{BTreeMap, HashSet};

/// IANA service names (`targetPort: http`): at most 15 lowercase alphanumerics and '-',
/// with at least one letter, no leading/trailing/double '-'.
fn is_iana_svc_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && s.bytes().any(|c| c.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

fn protocol(v: &mut Validator, p: Option<&str>) {
    if let Some(p) = p
        && !matches!(p, "TCP" | "UDP" | "SCTP")
    {
        v.field("protocol", |v| {
            v.error_hint(
                format!("unsupported protocol {p:?}: must be TCP, UDP or SCTP"),
                "the application protocol goes in the port name (http-…, grpc-…) or appProtocol",
            )
        });
    }
}

fn port_number(v: &mut Validator, field: &str, n: i32) {
    v.field(field, |v| {
        if !(1..=65535).contains(&n) {
            v.error(format!("port {n} must be in the range 1..65535"));
        }
    });
}

fn int_or_name_port(v: &mut Validator, field: &str, p: &IntOrString) {
    match p {
        IntOrString::Int(n) => port_number(v, field, *n),
        IntOrString::String(s) => v.field(field, |v| {
            if !is_iana_svc_name(s) {
                v.error(format!(
                    "invalid port name {s:?}: must be at most 15 lowercase letters, digits and '-', with at least one letter"
                ));
            }
        }),
    }
}

pub fn validate_service(svc: &Service, v: &mut Validator) {
    let Some(spec) = &svc.spec else { return };
    v.field("spec", |v| {
        let ports = spec.ports.as_deref().unwrap_or_default();
        let ty = spec.type_.as_deref().unwrap_or("ClusterIP");
        if !matches!(ty, "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName") {
            v.field("type", |v| {
                v.error(format!(
                    "unsupported service type {ty:?}: must be ClusterIP, NodePort, LoadBalancer or ExternalName"
                ))
            });
        }
        if ty == "ExternalName" {
            match spec.external_name.as_deref() {
                Some(n) if !n.is_empty() => v.field("externalName", |v| rules::fqdn(v, n)),
                _ => v.field("externalName", |v| {
                    v.missing("externalName is required for type ExternalName")
                }),
            }
        } else if ports.is_empty() && spec.cluster_ip.as_deref() != Some("None") {
            v.field("ports", |v| v.missing("a Service needs at least one port"));
        }
        if let Some(sel) = &spec.selector {
            v.field("selector", |v| rules::labels(v, sel));
        }
        let mut names = HashSet::new();
        let mut seen = HashSet::new();
        v.field("ports", |v| {
            for (i, p) in ports.iter().enumerate() {
                v.index(i, |v| {
                    port_number(v, "port", p.port);
                    protocol(v, p.protocol.as_deref());
                    match p.name.as_deref() {
                        Some(n) if !n.is_empty() => {
                            if !rules::is_k8s_dns1123_label(n) {
                                v.field("name", |v| {
                                    v.error(format!("invalid port name {n:?}: must be a DNS-1123 label"))
                                });
                            }
                            if !names.insert(n.to_string()) {
                                v.field("name", |v| v.error(format!("duplicate port name {n:?}")));
                            }
                        }
                        _ if ports.len() > 1 => v.field("name", |v| {
                            v.missing("port name is required when a Service has more than one port")
                        }),
                        _ => {}
                    }
                    let key = (p.port, p.protocol.clone().unwrap_or_else(|| "TCP".into()));
                    if !seen.insert(key) {
                        v.field("port", |v| {
                            v.error(format!("duplicate port {} for the same protocol", p.port))
                        });
                    }
                    if let Some(t) = &p.target_port {
                        int_or_name_port(v, "targetPort", t);
                    }
                    if let Some(np) = p.node_port
                        && np != 0 {
                            port_number(v, "nodePort", np);
                        }
                });
            }
        });
    });
}

pub fn validate_endpoints(ep: &Endpoints, v: &mut Validator) {
    v.field("subsets", |v| {
        for (i, s) in ep.subsets.iter().flatten().enumerate() {
            v.index(i, |v| {
                for field in ["addresses", "notReadyAddresses"] {
                    let list = if field == "addresses" {
                        &s.addresses
                    } else {
                        &s.not_ready_addresses
                    };
                    v.field(field, |v| {
                        for (j, a) in list.iter().flatten().enumerate() {
                            v.index(j, |v| v.field("ip", |v| rules::ip(v, &a.ip)));
                        }
                    });
                }
                v.field("ports", |v| {
                    for (j, p) in s.ports.iter().flatten().enumerate() {
                        v.index(j, |v| {
                            port_number(v, "port", p.port);
                            protocol(v, p.protocol.as_deref());
                        });
                    }
                });
            });
        }
    });
}

pub fn validate_endpoint_slice(es: &EndpointSlice, v: &mut Validator) {
    let ty = es.address_type.as_str();
    if !matches!(ty, "IPv4" | "IPv6" | "FQDN") {
        v.field("addressType", |v| {
            v.error(format!(
                "unsupported addressType {ty:?}: must be IPv4, IPv6 or FQDN"
            ))
        });
    }
    v.field("endpoints", |v| {
        for (i, e) in es.endpoints.iter().flatten().enumerate() {
            v.index(i, |v| {
                v.field("addresses", |v| {
                    if e.addresses.is_empty() {
                        v.missing("an endpoint needs at least one address");
                    }
                    for (j, a) in e.addresses.iter().enumerate() {
                        v.index(j, |v| match ty {
                            "IPv4" if a.parse::<std::net::Ipv4Addr>().is_err() => {
                                v.error(format!("{a:?} is not an IPv4 address"))
                            }
                            "IPv6" if a.parse::<std::net::Ipv6Addr>().is_err() => {
                                v.error(format!("{a:?} is not an IPv6 address"))
                            }
                            "FQDN" => rules::fqdn(v, a),
                            _ => {}
                        });
                    }
                });
            });
        }
    });
    v.field("ports", |v| {
        for (i, p) in es.ports.iter().flatten().enumerate() {
            v.index(i, |v| {
                if let Some(n) = p.port {
                    port_number(v, "port", n);
                }
                protocol(v, p.protocol.as_deref());
            });
        }
    });
}

/// Namespace labels and annotations are checked with every object's metadata (see
/// `annotations`); a Namespace has no other rules the mesh depends on.
pub fn validate_namespace(_ns: &Namespace, _v: &mut Validator) {}

fn validate_container(c: &Container, v: &mut Validator) {
    if c.name.is_empty() {
        v.field("name", |v| v.missing("container name is required"));
    } else if !rules::is_k8s_dns1123_label(&c.name) {
        v.field("name", |v| {
            v.error(format!(
                "invalid container name {:?}: must be a DNS-1123 label",
                c.name
            ))
        });
    }
    if c.image.as_deref().is_none_or(str::is_empty) {
        v.field("image", |v| {
            v.missing_hint(
                "container image is required",
                "set the image to run, e.g. `image: registry.example/app:1.0`",
            )
        });
    }
    v.field("ports", |v| {
        for (i, p) in c.ports.iter().flatten().enumerate() {
            v.index(i, |v| {
                port_number(v, "containerPort", p.container_port);
                protocol(v, p.protocol.as_deref());
                if let Some(n) = &p.name
                    && !is_iana_svc_name(n) {
                        v.field("name", |v| {
                            v.error(format!("invalid port name {n:?}: must be an IANA service name (at most 15 characters)"))
                        });
                    }
            });
        }
    });
}

fn validate_pod_spec(spec: &PodSpec, v: &mut Validator) {
    v.field("containers", |v| {
        if spec.containers.is_empty() {
            v.missing("a Pod needs at least one container");
        }
        let mut names = HashSet::new();
        for (i, c) in spec.containers.iter().enumerate() {
            v.index(i, |v| {
                validate_container(c, v);
                if !c.name.is_empty() && !names.insert(c.name.clone()) {
                    v.field("name", |v| {
                        v.error(format!("duplicate container name {:?}", c.name))
                    });
                }
            });
        }
    });
    v.field("initContainers", |v| {
        for (i, c) in spec.init_containers.iter().flatten().enumerate() {
            v.index(i, |v| validate_container(c, v));
        }
    });
}

pub fn validate_pod(pod: &Pod, v: &mut Validator) {
    match &pod.spec {
        Some(spec) => v.field("spec", |v| validate_pod_spec(spec, v)),
        None => v.field("spec", |v| v.missing("a Pod needs a spec with containers")),
    }
}

pub fn validate_deployment(d: &Deployment, v: &mut Validator) {
    let spec = &d.spec;
    v.field("spec", |v| {
        let selector: BTreeMap<String, String> =
            spec.selector.match_labels.clone().unwrap_or_default();
        if selector.is_empty()
            && spec
                .selector
                .match_expressions
                .as_ref()
                .is_none_or(Vec::is_empty)
        {
            v.field("selector", |v| v.missing("a Deployment needs a selector"));
        }
        let tpl_labels = spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        for (k, val) in &selector {
            if tpl_labels.get(k) != Some(val) {
                v.field("template", |v| {
                    v.field("metadata", |v| {
                        v.field("labels", |v| {
                            v.error(format!(
                                "selector {k}={val} does not match the template's labels"
                            ))
                        })
                    })
                });
            }
        }
        if let Some(meta) = &spec.template.metadata {
            v.field("template", |v| {
                v.field("metadata", |v| {
                    crate::annotations::check_metadata(
                        v,
                        "Pod",
                        meta.labels.as_ref(),
                        meta.annotations.as_ref(),
                    )
                })
            });
        }
        v.field("template", |v| match &spec.template.spec {
            Some(ps) => v.field("spec", |v| validate_pod_spec(ps, v)),
            None => v.field("spec", |v| v.missing("the pod template needs a spec")),
        });
    });
}

pub fn validate_secret(s: &Secret, v: &mut Validator) {
    for (field, keys) in [
        (
            "data",
            s.data
                .as_ref()
                .map(|d| d.keys().cloned().collect::<Vec<_>>()),
        ),
        (
            "stringData",
            s.string_data.as_ref().map(|d| d.keys().cloned().collect()),
        ),
    ] {
        v.field(field, |v| {
            for k in keys.iter().flatten() {
                if !is_config_key(k) {
                    v.key(k, |v| {
                        v.error(format!(
                            "invalid key {k:?}: keys are letters, digits, '-', '_' and '.'"
                        ))
                    });
                }
            }
        });
    }
}

pub fn validate_config_map(cm: &ConfigMap, v: &mut Validator) {
    v.field("data", |v| {
        for k in cm.data.iter().flat_map(|d| d.keys()) {
            if !is_config_key(k) {
                v.key(k, |v| {
                    v.error(format!(
                        "invalid key {k:?}: keys are letters, digits, '-', '_' and '.'"
                    ))
                });
            }
        }
    });
}

fn is_config_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 253
        && k.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
}
