//! Istio's `ValidateServiceEntry` and the ServiceEntry CRD's CEL rules and limits.

use super::{Resolution, ServiceEntry};
use crate::networking::gateway::protocol::{Protocol, validate_port_name, validate_protocol};
use crate::networking::workload_entry::{EndpointContext, validate_endpoint};
use crate::validate::{Validate, Validator, rules};
use std::collections::{BTreeMap, BTreeSet};

impl Validate for ServiceEntry {
    fn validate(&self, v: &mut Validator) {
        if let Some(sel) = &self.workload_selector {
            v.nested("workloadSelector", sel);
            if sel.labels.is_empty() {
                v.field("workloadSelector", |v| {
                    v.warn("service entry: workload selector specified without labels, will be applied to all services in namespace")
                });
            }
            if !self.endpoints.is_empty() {
                v.field("endpoints", |v| {
                    v.conflict("only one of workloadSelector or endpoints can be set")
                });
            }
        }

        self.validate_hosts(v);
        self.validate_addresses(v);
        let service_ports = self.validate_ports(v);
        self.validate_resolution(v, &service_ports);

        // Plain TCP carries nothing that tells several hosts apart, unless the hosts are
        // ignored altogether (resolution NONE).
        if self.resolution != Resolution::None
            && self.hosts.len() > 1
            && let Some(i) = self.ports.iter().position(|p| {
                let p = Protocol::parse(&p.protocol);
                !p.is_http() && !p.is_tls()
            })
        {
            v.field("ports", |v| {
                v.index(i, |v| {
                    v.field("protocol", |v| {
                        v.error(format!(
                            "multiple hosts provided with non-HTTP, non-TLS port {:?} (protocol {:?}): plain TCP cannot tell the hosts apart",
                            self.ports[i].name, self.ports[i].protocol
                        ))
                    })
                })
            });
        }

        export_to(v, &self.export_to);
        if self.endpoints.len() > 4096 {
            v.field("endpoints", |v| {
                v.error("at most 4096 endpoints may be set")
            });
        }
    }
}

impl ServiceEntry {
    fn validate_hosts(&self, v: &mut Validator) {
        v.field("hosts", |v| {
            if self.hosts.is_empty() {
                v.missing("service entry must have at least one host");
            }
            if self.hosts.len() > 256 {
                v.error(format!(
                    "at most 256 hosts may be set (got {})",
                    self.hosts.len()
                ));
            }
            for (i, host) in self.hosts.iter().enumerate() {
                v.index(i, |v| {
                    if host == "*" {
                        v.error(
                            "hostname cannot be wildcard \"*\": list the hosts the entry is for",
                        );
                        return;
                    }
                    rules::wildcard_domain(v, host);
                    if host.contains('*') && !host.starts_with("*.") {
                        v.warn(format!(
                            "partial wildcard {host:?} is not supported; use a leading \"*.\" label"
                        ));
                    }
                });
            }
        });
    }

    fn validate_addresses(&self, v: &mut Validator) {
        v.field("addresses", |v| {
            if self.addresses.len() > 256 {
                v.error(format!("at most 256 addresses may be set (got {})", self.addresses.len()));
            }
            for (i, addr) in self.addresses.iter().enumerate() {
                v.index(i, |v| {
                    if addr.len() > 64 {
                        v.error("address must be at most 64 characters");
                    }
                    rules::ip_or_cidr(v, addr);
                });
            }
            let cidr = self.addresses.iter().any(|a| a.contains('/'));
            if cidr && !matches!(self.resolution, Resolution::None | Resolution::Static) {
                v.error(format!(
                    "CIDR addresses are allowed only for NONE/STATIC resolution types (resolution is {})",
                    self.resolution.as_str()
                ));
            }
        });
    }

    /// Validates the ports and returns their names, which endpoints' ports must refer to.
    fn validate_ports(&self, v: &mut Validator) -> BTreeSet<String> {
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        let mut numbers: BTreeMap<u32, usize> = BTreeMap::new();
        // With addresses, or with a resolution that gets one auto-allocated (Istio's
        // default), a TCP port has a VIP to listen on; resolution NONE never gets one.
        let has_vip = !self.addresses.is_empty() || self.resolution != Resolution::None;
        v.field("ports", |v| {
            if self.ports.len() > 256 {
                v.error(format!("at most 256 ports may be set (got {})", self.ports.len()));
            }
            for (i, port) in self.ports.iter().enumerate() {
                v.index(i, |v| {
                    v.field("name", |v| {
                        if port.name.is_empty() {
                            v.missing("port name is required");
                        } else {
                            validate_port_name(v, &port.name);
                            if let Some(first) = names.get(port.name.as_str()) {
                                v.error(format!(
                                    "service entry port name {:?} already defined by ports[{first}]",
                                    port.name
                                ));
                            }
                        }
                    });
                    names.entry(&port.name).or_insert(i);
                    v.field("number", |v| {
                        rules::port(v, port.number);
                        if let Some(first) = numbers.get(&port.number) {
                            v.error(format!(
                                "service entry port {} already defined by ports[{first}]",
                                port.number
                            ));
                        }
                    });
                    numbers.entry(port.number).or_insert(i);
                    if port.target_port != 0 {
                        v.field("targetPort", |v| rules::port(v, port.target_port));
                    }
                    v.field("protocol", |v| {
                        validate_protocol(v, &port.protocol);
                        if !has_vip && (port.protocol.is_empty() || port.protocol == "TCP") {
                            v.warn("addresses are required for ports serving TCP (or unset) protocol when IP autoallocation is not used (resolution NONE never auto-allocates)");
                        }
                    });
                });
            }
        });
        self.ports.iter().map(|p| p.name.clone()).collect()
    }

    fn validate_resolution(&self, v: &mut Validator, service_ports: &BTreeSet<String>) {
        let endpoints = |v: &mut Validator, ctx: EndpointContext| {
            v.field("endpoints", |v| {
                for (i, ep) in self.endpoints.iter().enumerate() {
                    v.index(i, |v| validate_endpoint(ep, v, ctx));
                }
            });
        };
        let selector_warning = |v: &mut Validator| {
            if self.workload_selector.is_some() {
                v.field("workloadSelector", |v| {
                    v.warn(format!(
                        "workloadSelector should not be set when resolution mode is {}",
                        self.resolution.as_str()
                    ))
                });
            }
        };
        match self.resolution {
            Resolution::None => {
                if !self.endpoints.is_empty() {
                    v.field("endpoints", |v| {
                        v.error("no endpoints should be provided for resolution type NONE")
                    });
                }
                endpoints(v, EndpointContext::NoResolution);
                selector_warning(v);
            }
            Resolution::Static => endpoints(v, EndpointContext::Static(service_ports)),
            Resolution::Dns | Resolution::DnsRoundRobin => {
                if self.endpoints.is_empty() {
                    v.field("hosts", |v| {
                        for (i, host) in self.hosts.iter().enumerate() {
                            if host != "*" && rules::check_fqdn(host).is_err() {
                                v.index(i, |v| {
                                    v.error(format!(
                                        "hosts must be FQDN if no endpoints are provided for resolution mode {} (got {host:?})",
                                        self.resolution.as_str()
                                    ))
                                });
                            }
                        }
                    });
                }
                if self.resolution == Resolution::DnsRoundRobin && self.endpoints.len() > 1 {
                    v.field("endpoints", |v| {
                        v.error(format!(
                            "there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN (got {})",
                            self.endpoints.len()
                        ))
                    });
                }
                // No workloadSelector warning here: a selector with DNS resolution is a
                // supported way to resolve workload DNS names (istio/istio#50164).
                endpoints(v, EndpointContext::Dns(service_ports));
                let tcp = self
                    .ports
                    .iter()
                    .any(|p| Protocol::parse(&p.protocol).is_tcp());
                if !self.addresses.is_empty() && tcp && self.hosts.len() > 1 {
                    v.field("hosts", |v| {
                        v.warn("service entry can not have more than one host specified simultaneously with address and tcp port")
                    });
                }
            }
        }
    }
}

/// Istio's `validateExportTo` for service entries (which, unlike other kinds, allow `~`).
fn export_to(v: &mut Validator, entries: &[String]) {
    let ns = v.namespace().to_string();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    v.field("exportTo", |v| {
        for (i, e) in entries.iter().enumerate() {
            let key = if e == "." { ns.as_str() } else { e.as_str() };
            v.index(i, |v| {
                if seen.contains(key) {
                    if key != e {
                        v.error(format!(
                            "duplicate entries in exportTo: . and the current namespace {ns:?}"
                        ));
                    } else {
                        v.error(format!("duplicate entries in exportTo for entry {e:?}"));
                    }
                } else if key == "~" || key == "*" || key.is_empty() || rules::is_dns1123_label(key) {
                    seen.insert(key);
                } else {
                    v.error(format!(
                        "invalid exportTo entry {e:?}: only ., *, ~ or a namespace name (DNS-1123 label) are allowed"
                    ));
                }
            });
        }
        if seen.contains("*") && entries.len() > 1 {
            v.error("cannot have both public (*) and non-public exportTo values for a resource");
        }
        if seen.contains("~") && entries.len() > 1 {
            v.error("cannot export service entry to no one (~) and someone");
        }
    });
}
