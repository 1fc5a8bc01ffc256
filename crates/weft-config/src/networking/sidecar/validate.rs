//! Istio's `ValidateSidecar` (listeners, binds, capture modes, egress hosts, outbound
//! traffic policy) and `ValidateAlphaWorkloadSelector`, with the CRD's limits.

use super::{
    CaptureMode, IstioEgressListener, IstioIngressListener, OutboundTrafficPolicy,
    OutboundTrafficPolicyMode, Sidecar, SidecarPort, WorkloadSelector,
};
use crate::networking::gateway::ServerTLSSettingsTLSmode;
use crate::networking::gateway::namespace_slash_host;
use crate::networking::gateway::protocol::{
    Protocol, UNIX_PREFIX, is_ip, unix_address, validate_port_name, validate_protocol,
};
use crate::validate::{Validate, Validator, rules};
use std::collections::{BTreeMap, BTreeSet};

impl Validate for WorkloadSelector {
    /// `ValidateAlphaWorkloadSelector`'s errors and the CRD's limits; the "no labels"
    /// warning names the owning kind, so the owner reports it.
    fn validate(&self, v: &mut Validator) {
        v.field("labels", |v| {
            if self.labels.len() > 256 {
                v.error(format!(
                    "at most 256 labels may be set (got {})",
                    self.labels.len()
                ));
            }
            for (key, value) in &self.labels {
                v.key(key, |v| {
                    if key.is_empty() {
                        v.error("empty key is not supported in selector");
                    }
                    if key.contains('*') || value.contains('*') {
                        v.error(format!(
                            "wildcard is not supported in selector: {key:?}={value:?}"
                        ));
                    }
                    if value.len() > 63 {
                        v.error(format!(
                            "label value must be at most 63 characters (got {})",
                            value.len()
                        ));
                    }
                });
            }
        });
    }
}

impl Validate for Sidecar {
    fn validate(&self, v: &mut Validator) {
        if let Some(sel) = &self.workload_selector {
            v.nested("workloadSelector", sel);
            if sel.labels.is_empty() {
                v.field("workloadSelector", |v| {
                    v.warn("sidecar: workload selector specified without labels, will be applied to all workloads in namespace")
                });
            }
        }
        if self.egress.is_empty()
            && self.ingress.is_empty()
            && self.outbound_traffic_policy.is_none()
            && self.inbound_connection_pool.is_none()
        {
            v.missing("sidecar: empty configuration provided: set at least one of ingress, egress, outboundTrafficPolicy or inboundConnectionPool");
            return;
        }

        let mut ports: BTreeMap<u32, usize> = BTreeMap::new();
        v.field("ingress", |v| {
            for (i, listener) in self.ingress.iter().enumerate() {
                v.index(i, |v| ingress_listener(v, listener, i, &mut ports));
            }
        });
        v.nested("inboundConnectionPool", &self.inbound_connection_pool);

        let mut ports: BTreeMap<u32, usize> = BTreeMap::new();
        let mut sockets: BTreeMap<&str, usize> = BTreeMap::new();
        let mut catch_all: Option<usize> = None;
        let last = self.egress.len().saturating_sub(1);
        v.field("egress", |v| {
            for (i, listener) in self.egress.iter().enumerate() {
                v.index(i, |v| {
                    match &listener.port {
                        None => {
                            if let Some(first) = catch_all {
                                v.field("port", |v| {
                                    v.error(format!(
                                        "sidecar: egress can have only one listener with empty port (egress[{first}] already has none)"
                                    ))
                                });
                                return;
                            }
                            catch_all = Some(i);
                            if i != last {
                                v.field("port", |v| {
                                    v.error("sidecar: the egress listener with empty port should be the last listener in the list")
                                });
                            }
                        }
                        Some(port) => {
                            egress_port(v, listener, port);
                            if port.number == 0 {
                                if let Some(first) = sockets.get(listener.bind.as_str()) {
                                    v.field("bind", |v| {
                                        v.error(format!(
                                            "sidecar: unix domain socket values for listeners must be unique ({:?} is also used by egress[{first}])",
                                            listener.bind
                                        ))
                                    });
                                } else {
                                    sockets.insert(&listener.bind, i);
                                }
                            } else if let Some(first) = ports.get(&port.number) {
                                v.field("port", |v| {
                                    v.field("number", |v| {
                                        v.error(format!(
                                            "sidecar: ports on IP bound listeners must be unique ({} is also used by egress[{first}])",
                                            port.number
                                        ))
                                    })
                                });
                            } else {
                                ports.insert(port.number, i);
                            }
                        }
                    }
                    egress_hosts(v, listener);
                });
            }
        });

        v.nested("outboundTrafficPolicy", &self.outbound_traffic_policy);
    }
}

fn ingress_listener(
    v: &mut Validator,
    l: &IstioIngressListener,
    index: usize,
    ports: &mut BTreeMap<u32, usize>,
) {
    let Some(port) = &l.port else {
        v.field("port", |v| {
            v.missing("sidecar: port is required for ingress listeners")
        });
        return;
    };
    v.field("port", |v| {
        if port.target_port > 0 {
            v.field("targetPort", |v| v.error("targetPort has no impact on Sidecars; remove it"));
        }
        if !port.name.is_empty() {
            v.field("name", |v| validate_port_name(v, &port.name));
        }
        v.field("protocol", |v| validate_protocol(v, &port.protocol));
        v.field("number", |v| {
            rules::port(v, port.number);
            if let Some(first) = ports.get(&port.number) {
                v.error(format!(
                    "sidecar: ports on IP bound listeners must be unique ({} is also used by ingress[{first}])",
                    port.number
                ));
            } else {
                ports.insert(port.number, index);
            }
        });
    });
    if !l.bind.is_empty() && !is_ip(&l.bind) {
        v.field("bind", |v| {
            v.error(format!(
                "bind {:?} must be an IP address for ingress listeners",
                l.bind
            ))
        });
    }
    if !l.default_endpoint.is_empty() {
        v.field("defaultEndpoint", |v| {
            default_endpoint(v, &l.default_endpoint)
        });
    }
    if let Some(tls) = &l.tls {
        v.field("tls", |v| {
            let unsupported = [
                ("subjectAltNames", !tls.subject_alt_names.is_empty(), "subjectAltNames is not supported in ingress tls"),
                ("httpsRedirect", tls.https_redirect, "httpsRedirect is not supported"),
                ("credentialName", !tls.credential_name.is_empty(), "credentialName is not currently supported"),
                ("credentialNames", !tls.credential_names.is_empty(), "credentialNames is not currently supported"),
                ("tlsCertificates", !tls.tls_certificates.is_empty(), "tlsCertificates is not currently supported"),
            ];
            for (field, set, msg) in unsupported {
                if set {
                    v.field(field, |v| v.error(format!("sidecar: {msg}")));
                }
            }
            if matches!(
                tls.mode,
                ServerTLSSettingsTLSmode::IstioMutual | ServerTLSSettingsTLSmode::AutoPassthrough
            ) {
                v.field("mode", |v| {
                    v.error(format!(
                        "configuration is invalid: cannot set mode to {} in sidecar ingress tls",
                        tls.mode.as_str()
                    ))
                });
            }
            if !Protocol::parse(&port.protocol).is_tls() {
                v.error(format!(
                    "sidecar ingress listener cannot have TLS settings for non HTTPS/TLS ports (protocol {:?})",
                    port.protocol
                ));
            }
            tls.validate(v);
        });
    }
    v.nested("connectionPool", &l.connection_pool);
    if let Some(pool) = &l.connection_pool
        && pool.http.is_some()
        && !Protocol::parse(&port.protocol).is_http()
    {
        v.field("connectionPool", |v| {
            v.field("http", |v| {
                v.warn(format!(
                    "sidecar: HTTP connection pool settings are configured for port {} ({:?}) but its protocol is not HTTP ({:?}); only TCP settings will apply",
                    port.number, port.name, port.protocol
                ))
            })
        });
    }
}

/// `defaultEndpoint`: `unix:///path`, or `host:port` with a loopback/any host.
fn default_endpoint(v: &mut Validator, ep: &str) {
    if ep.starts_with(UNIX_PREFIX) {
        unix_address(v, ep);
        return;
    }
    let (host, port) = match split_host_port(ep) {
        Ok(hp) => hp,
        Err(e) => {
            v.error(format!("defaultEndpoint {ep:?}: {e}"));
            return;
        }
    };
    if !matches!(host, "" | "127.0.0.1" | "0.0.0.0" | "::1" | "::") {
        v.error(format!(
            "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:<port>, [::]:<port>, unix://filepath or unset (got {ep:?})"
        ));
    }
    match port.parse::<i64>() {
        Ok(n) if (1..=65535).contains(&n) => {}
        Ok(n) => v.error(format!(
            "defaultEndpoint port {n} must be in the range 1..65535"
        )),
        Err(_) => v.error(format!(
            "sidecar: defaultEndpoint port ({port}) is not a number"
        )),
    }
}

/// Go's `net.SplitHostPort`: `host:port`, or `[ipv6]:port`.
fn split_host_port(hp: &str) -> Result<(&str, &str), &'static str> {
    let Some(colon) = hp.rfind(':') else {
        return Err("missing port in address");
    };
    let (host, rest_from) = if let Some(inner) = hp.strip_prefix('[') {
        let Some(end) = inner.find(']') else {
            return Err("missing ']' in address");
        };
        let after = end + 2; // index in `hp` just past ']'
        if after == hp.len() {
            return Err("missing port in address");
        }
        if after != colon {
            return Err(if hp.as_bytes()[after] == b':' {
                "too many colons in address"
            } else {
                "missing port in address"
            });
        }
        (&inner[..end], after)
    } else {
        let host = &hp[..colon];
        if host.contains(':') {
            return Err("too many colons in address");
        }
        (host, 0)
    };
    if hp[usize::from(hp.starts_with('['))..].contains('[') {
        return Err("unexpected '[' in address");
    }
    if hp[rest_from..].contains(']') {
        return Err("unexpected ']' in address");
    }
    Ok((host, &hp[colon + 1..]))
}

/// `validateSidecarEgressPortBindAndCaptureMode`.
fn egress_port(v: &mut Validator, l: &IstioEgressListener, port: &SidecarPort) {
    v.field("port", |v| {
        if port.target_port > 0 {
            v.field("targetPort", |v| {
                v.error("targetPort has no impact on Sidecars; remove it")
            });
        }
        if !port.name.is_empty() {
            v.field("name", |v| validate_port_name(v, &port.name));
        }
        v.field("protocol", |v| validate_protocol(v, &port.protocol));
        if port.number != 0 {
            v.field("number", |v| rules::port(v, port.number));
        }
    });
    if port.number == 0 {
        v.field("bind", |v| {
            if l.bind.starts_with(UNIX_PREFIX) {
                unix_address(v, &l.bind);
            } else {
                v.error(format!(
                    "sidecar: ports with 0 value must have a unix domain socket bind address (unix:///path or unix://@name), got {:?}",
                    l.bind
                ));
            }
        });
        if !matches!(l.capture_mode, CaptureMode::Default | CaptureMode::None) {
            v.field("captureMode", |v| {
                v.error(
                    "sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners",
                )
            });
        }
    } else if !l.bind.is_empty() && !is_ip(&l.bind) {
        v.field("bind", |v| {
            v.error(format!(
                "bind {:?} must be an IP address (unix sockets need port number 0)",
                l.bind
            ))
        });
    }
}

/// Egress hosts: `namespace/dnsName` forms, duplicates and `*/*` alongside others.
fn egress_hosts(v: &mut Validator, l: &IstioEgressListener) {
    if l.hosts.is_empty() {
        v.field("hosts", |v| {
            v.missing("sidecar: egress listener must contain at least one host")
        });
        return;
    }
    let own_ns = v.namespace().to_string();
    let mut by_ns: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    v.field("hosts", |v| {
        for (i, host) in l.hosts.iter().enumerate() {
            v.index(i, |v| {
                if let Some((ns, svc)) = host.split_once('/') {
                    let ns = if ns == "." { own_ns.as_str() } else { ns };
                    let svcs = by_ns.entry(ns.to_string()).or_default();
                    let dup = if svc == "*" {
                        !svcs.is_empty()
                    } else {
                        svcs.contains(svc) || svcs.contains("*")
                    };
                    if dup {
                        v.warn(format!(
                            "duplicated egress host {host:?}: it is already covered by another host of this listener"
                        ));
                    }
                    svcs.insert(svc);
                }
                namespace_slash_host(v, host, false);
            });
        }
        let all = by_ns.get("*").is_some_and(|s| s.contains("*"));
        if all && by_ns.len() != 1 {
            v.warn("`*/*` selects all services; no other hosts can be added to this listener");
        }
    });
}

impl Validate for OutboundTrafficPolicy {
    /// `validateSidecarOutboundTrafficPolicy`.
    fn validate(&self, v: &mut Validator) {
        let Some(proxy) = &self.egress_proxy else {
            return;
        };
        v.field("egressProxy", |v| {
            if self.mode != OutboundTrafficPolicyMode::AllowAny {
                v.error("sidecar: egressProxy must be set only with ALLOW_ANY outboundTrafficPolicy mode");
                return;
            }
            v.field("host", |v| rules::fqdn(v, &proxy.host));
            let Some(port) = &proxy.port else {
                v.field("port", |v| v.missing("sidecar: egressProxy port must be set"));
                return;
            };
            if !proxy.subset.is_empty() && !rules::is_dns1123_label(&proxy.subset) {
                v.field("subset", |v| {
                    v.error(format!("subset name {:?} is invalid: must be a DNS-1123 label", proxy.subset))
                });
            }
            v.field("port", |v| v.field("number", |v| rules::port(v, port.number)));
        });
    }
}
