//! Istio's VirtualService validation (`ValidateVirtualService` and the TLS/TCP route checks
//! of `pkg/config/validation`), plus the small rules it shares with the HTTP checks and with
//! DestinationRule. HTTP route rules are in `validate_http`.

use super::{
    Destination, L4MatchAttributes, MESH_GATEWAY, Percent, RouteDestination, StringMatch,
    StringMatchKind, TCPRoute, TLSMatchAttributes, TLSRoute, VirtualService,
};
use crate::types::Duration;
use crate::validate::{Validate, Validator, rules};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Envoy's RE2 program-size limit, approximated by length as Istio does.
const MAX_REGEX_LEN: usize = 1024;

impl Validate for VirtualService {
    fn validate(&self, v: &mut Validator) {
        let delegate = self.hosts.is_empty();
        if delegate {
            if !self.gateways.is_empty() {
                v.field("gateways", |v| {
                    v.error("delegate virtual service must have no gateways specified")
                });
            }
            if !self.tls.is_empty() {
                v.field("tls", |v| {
                    v.error("delegate virtual service must have no tls route specified")
                });
            }
            if !self.tcp.is_empty() {
                v.field("tcp", |v| {
                    v.error("delegate virtual service must have no tcp route specified")
                });
            }
        }

        let applies_to_gateway = if self.gateways.is_empty() {
            false
        } else {
            v.field("gateways", |v| gateway_names(v, &self.gateways));
            is_gateway(self)
        };
        let applies_to_mesh = !applies_to_gateway;

        if !applies_to_gateway {
            self.reject_jwt_claim_routing(v);
        }
        self.validate_hosts(v, applies_to_gateway, applies_to_mesh);

        if self.http.is_empty() && self.tcp.is_empty() && self.tls.is_empty() {
            v.missing("http, tcp or tls must be provided in virtual service");
        }
        v.field("http", |v| {
            for (i, route) in self.http.iter().enumerate() {
                v.index(i, |v| route.validate_route(v, delegate));
            }
        });
        v.field("tls", |v| {
            for (i, route) in self.tls.iter().enumerate() {
                v.index(i, |v| route.validate_in(v, self));
            }
        });
        v.each("tcp", &self.tcp);
        export_to(v, &self.export_to, false);
        super::analysis::unreachable_rules(self, v);
    }
}

impl VirtualService {
    /// JWT claim routing (`@request.auth.claims.*` header keys) only works on gateways.
    fn reject_jwt_claim_routing(&self, v: &mut Validator) {
        let gateways = format!("[{}]", self.gateways.join(" "));
        v.field("http", |v| {
            for (i, route) in self.http.iter().enumerate() {
                v.index(i, |v| {
                    v.field("match", |v| {
                        for (j, m) in route.r#match.iter().enumerate() {
                            v.index(j, |v| {
                                for (field, map) in
                                    [("headers", &m.headers), ("withoutHeaders", &m.without_headers)]
                                {
                                    v.field(field, |v| {
                                        for key in map.keys().filter(|k| is_jwt_claim(k)) {
                                            v.key(key, |v| v.error(format!(
                                                "JWT claim based routing (key: {key}) is only supported for gateway, found no gateways: {gateways}"
                                            )));
                                        }
                                    });
                                }
                            });
                        }
                    });
                });
            }
        });
    }

    fn validate_hosts(&self, v: &mut Validator, applies_to_gateway: bool, applies_to_mesh: bool) {
        let sni = self
            .tls
            .iter()
            .any(|t| t.r#match.iter().any(|m| !m.sni_hosts.is_empty()));
        let mut all_valid = true;
        v.field("hosts", |v| {
            for (i, host) in self.hosts.iter().enumerate() {
                v.index(i, |v| {
                    let res = if applies_to_gateway {
                        check_wildcard_domain_for_gateway(sni, host)
                    } else {
                        rules::check_wildcard_domain(host)
                    };
                    match res {
                        Err(e) if !is_ip(host) => {
                            v.error(e);
                            all_valid = false;
                        }
                        Ok(()) if applies_to_mesh && host == "*" => {
                            v.error("wildcard host * is not allowed for virtual services bound to the mesh gateway");
                            all_valid = false;
                        }
                        _ => {}
                    }
                });
            }
            // Duplicates include wildcard overlaps: `*.foo.com` and `*.com` collide.
            if all_valid {
                for (i, a) in self.hosts.iter().enumerate() {
                    for (j, b) in self.hosts.iter().enumerate().skip(i + 1) {
                        if host_matches(a, b) {
                            v.index(j, |v| {
                                v.error(format!("duplicate hosts in virtual service: {a} & {b}"))
                            });
                        }
                    }
                }
            }
        });
    }
}

impl TLSRoute {
    /// TLS routes are checked against the VirtualService's hosts and gateways (SNI hosts
    /// must fall within the hosts).
    pub(super) fn validate_in(&self, v: &mut Validator, vs: &VirtualService) {
        v.field("match", |v| {
            if self.r#match.is_empty() {
                v.missing("TLS route must have at least one match condition");
            }
            for (i, m) in self.r#match.iter().enumerate() {
                v.index(i, |v| m.validate_in(v, vs));
            }
        });
        if self.route.is_empty() {
            v.field("route", |v| v.missing("TLS route is required"));
        }
        route_destinations(v, &self.route);
    }
}

impl TLSMatchAttributes {
    fn validate_in(&self, v: &mut Validator, vs: &VirtualService) {
        v.field("sniHosts", |v| {
            if self.sni_hosts.is_empty() {
                v.missing("TLS match must have at least one SNI host");
            }
            for (i, sni) in self.sni_hosts.iter().enumerate() {
                v.index(i, |v| sni_host(v, sni, vs));
            }
        });
        subnets(v, &self.destination_subnets);
        if self.port != 0 {
            v.field("port", |v| rules::port(v, self.port));
        }
        v.field("sourceLabels", |v| rules::labels(v, &self.source_labels));
        v.field("gateways", |v| gateway_names(v, &self.gateways));
    }
}

fn sni_host(v: &mut Validator, sni: &str, vs: &VirtualService) {
    let res = if is_gateway(vs) {
        check_wildcard_domain_for_gateway(true, sni)
    } else {
        rules::check_wildcard_domain(sni)
    };
    if let Err(e) = res {
        if is_ip(sni) {
            v.warn(format!(
                "using an IP address ({sni:?}) goes against SNI spec and most clients do not support this"
            ));
        } else {
            v.error(e);
        }
        return;
    }
    if !vs.hosts.iter().any(|h| host_subset_of(sni, h)) {
        v.error(format!(
            "SNI host {sni:?} is not a compatible subset of any of the virtual service hosts: [{}]",
            vs.hosts.join(", ")
        ));
    }
}

impl Validate for TCPRoute {
    fn validate(&self, v: &mut Validator) {
        v.each("match", &self.r#match);
        if self.route.is_empty() {
            v.field("route", |v| v.missing("TCP route is required"));
        }
        route_destinations(v, &self.route);
    }
}

impl Validate for L4MatchAttributes {
    fn validate(&self, v: &mut Validator) {
        subnets(v, &self.destination_subnets);
        if self.port != 0 {
            v.field("port", |v| rules::port(v, self.port));
        }
        v.field("sourceLabels", |v| rules::labels(v, &self.source_labels));
        v.field("gateways", |v| gateway_names(v, &self.gateways));
    }
}

fn subnets(v: &mut Validator, subnets: &[String]) {
    v.field("destinationSubnets", |v| {
        for (i, s) in subnets.iter().enumerate() {
            v.index(i, |v| rules::ip_or_cidr(v, s));
        }
    });
}

/// L4 route destinations: the HTTP rules minus header manipulation.
fn route_destinations(v: &mut Validator, routes: &[RouteDestination]) {
    v.field("route", |v| {
        let mut total: i64 = 0;
        for (i, r) in routes.iter().enumerate() {
            v.index(i, |v| {
                destination_and_weight(v, r.destination.as_ref(), r.weight);
            });
            total += i64::from(r.weight);
        }
        if routes.len() > 1 && total == 0 {
            v.error("total destination weight = 0");
        }
    });
}

/// The checks every weighted destination gets (HTTP or L4).
pub(super) fn destination_and_weight(v: &mut Validator, dest: Option<&Destination>, weight: i32) {
    match dest {
        None => v.field("destination", |v| v.missing("destination is required")),
        Some(d) => v.nested("destination", d),
    }
    if weight < 0 {
        v.field("weight", |v| v.error(format!("weight {weight} < 0")));
    }
}

impl Validate for Destination {
    fn validate(&self, v: &mut Validator) {
        v.field("host", |v| {
            if self.host == "*" {
                v.error(format!("invalid destination host {}", self.host));
            } else {
                rules::wildcard_domain(v, &self.host);
            }
        });
        if !self.subset.is_empty() {
            v.field("subset", |v| subset_name(v, &self.subset));
        }
        if let Some(p) = &self.port {
            v.field("port", |v| v.field("number", |v| rules::port(v, p.number)));
        }
    }
}

/// Istio's `validateSubsetName`: a DNS-1123 label.
pub(crate) fn subset_name(v: &mut Validator, name: &str) {
    if name.is_empty() {
        v.missing("subset name cannot be empty");
    } else if !rules::is_dns1123_label(name) {
        v.error(format!(
            "subset name is invalid: {name:?} (must be a DNS-1123 label: letters, digits and '-', at most 63 characters)"
        ));
    }
}

/// Istio's `validateGatewayNames`: `<namespace>/<name>`, or a legacy bare/FQDN name.
pub(super) fn gateway_names(v: &mut Validator, names: &[String]) {
    for (i, name) in names.iter().enumerate() {
        let stop = v.index(i, |v| match name.split_once('/') {
            None => {
                if let Some((gw, rest)) = name.split_once('.') {
                    let ns = rest.split('.').next().unwrap_or(rest);
                    v.warn(format!(
                        "using legacy gatewayName format {name:?}; prefer the <namespace>/<name> format: \"{ns}/{gw}\""
                    ));
                }
                rules::fqdn(v, name);
                // Istio stops checking the list after the first name without a namespace.
                true
            }
            Some((ns, gw)) => {
                if ns.is_empty() || gw.is_empty() {
                    v.error("config namespace and gateway name cannot be empty");
                }
                if !rules::is_dns1123_label(ns) {
                    v.error(format!("invalid value for namespace: {ns:?}"));
                }
                if !rules::is_dns1123_label(gw) {
                    v.error(format!("invalid value for gateway name: {gw:?}"));
                }
                false
            }
        });
        if stop {
            break;
        }
    }
}

/// Istio's `validateExportTo` for VirtualService/DestinationRule: `.`, `*` or namespace
/// names, without duplicates; `*` alone; a DestinationRule with a workload selector may only
/// export to its own namespace.
pub(crate) fn export_to(v: &mut Validator, entries: &[String], dr_with_selector: bool) {
    if entries.is_empty() {
        return;
    }
    let ns = v.namespace().to_string();
    v.field("exportTo", |v| {
        let mut seen = BTreeSet::new();
        for (i, e) in entries.iter().enumerate() {
            let key = if e == "." { ns.as_str() } else { e.as_str() };
            v.index(i, |v| {
                if seen.contains(key) {
                    if key != e {
                        v.error(format!("duplicate entries in exportTo: . and current namespace {ns}"));
                    } else {
                        v.error(format!("duplicate entries in exportTo for entry {e}"));
                    }
                } else if key == "~" {
                    v.error("exportTo ~ (none) is not allowed for Istio configuration objects");
                } else if key != "*" && !rules::is_dns1123_label(key) {
                    v.error_hint(
                        format!("invalid exportTo entry {e:?}"),
                        "only ., * or a namespace name (DNS-1123 label) is allowed",
                    );
                } else {
                    seen.insert(key.to_string());
                }
            });
        }
        if dr_with_selector && !seen.is_empty() {
            if !seen.contains(&ns) {
                v.error("destination rule with workload selector cannot have exportTo beyond current namespace");
            } else if seen.len() > 1 {
                v.error("destination rule with workload selector cannot have multiple entries in exportTo");
            }
        }
        if seen.contains("*") && entries.len() > 1 {
            v.error("cannot have both public (*) and non-public exportTo values for a resource");
        }
    });
}

/// Istio's `isGateway`: the rules bind to no sidecar (no `mesh` among the gateways; note
/// an empty list also counts, exactly as in Istio's SNI host check).
fn is_gateway(vs: &VirtualService) -> bool {
    !vs.gateways.iter().any(|g| g == MESH_GATEWAY)
}

fn is_ip(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
}

/// Istio's `ValidateWildcardDomainForVirtualServiceBoundToGateway`: like a wildcard domain,
/// but SNI hosts may also be Istio's auto-generated `outbound_.<port>_...` names.
fn check_wildcard_domain_for_gateway(sni: bool, domain: &str) -> Result<(), String> {
    let first = domain.split('.').next().unwrap_or(domain);
    if sni && first == "outbound_" && !domain.is_empty() && domain.len() <= 255 {
        if outbound_name(domain) {
            return Ok(());
        }
        return Err(format!(
            "domain name {domain:?} invalid (label {first:?} invalid)"
        ));
    }
    rules::check_wildcard_domain(domain)
}

/// Go's unanchored `outbound_.([0-8].*).*`: "outbound_", any character, then a digit 0-8.
fn outbound_name(domain: &str) -> bool {
    domain.match_indices("outbound_").any(|(i, m)| {
        let mut rest = domain[i + m.len()..].chars();
        matches!(rest.next(), Some(c) if c != '\n') && matches!(rest.next(), Some('0'..='8'))
    })
}

fn is_wildcarded(h: &str) -> bool {
    h.starts_with('*')
}

/// Istio's `host.Name.Matches`: the two hosts overlap (either covers the other).
pub(super) fn host_matches(a: &str, b: &str) -> bool {
    match (is_wildcarded(a), is_wildcarded(b)) {
        (true, true) => {
            if a.len() < b.len() {
                b[1..].ends_with(&a[1..])
            } else {
                a[1..].ends_with(&b[1..])
            }
        }
        (true, false) => b.ends_with(&a[1..]),
        (false, true) => a.ends_with(&b[1..]),
        (false, false) => a == b,
    }
}

/// Istio's `host.Name.SubsetOf`: every name matched by `a` is matched by `b`.
pub(super) fn host_subset_of(a: &str, b: &str) -> bool {
    match (is_wildcarded(a), is_wildcarded(b)) {
        (true, true) => a.len() >= b.len() && a[1..].ends_with(&b[1..]),
        (true, false) => false,
        (false, true) => a.ends_with(&b[1..]),
        (false, false) => a == b,
    }
}

pub(super) fn is_jwt_claim(name: &str) -> bool {
    const CLAIM: &str = "@request.auth.claims";
    let Some(head) = name.get(..CLAIM.len()) else {
        return false;
    };
    if !head.eq_ignore_ascii_case(CLAIM) {
        return false;
    }
    let rest = &name[CLAIM.len()..];
    (rest.starts_with('.') && rest.len() > 1)
        || (rest.starts_with('[') && rest.ends_with(']') && rest.len() > 2)
}

/// The CRD's oneOf on `StringMatch`, then Istio's `validateStringMatch`: a prefix may not be
/// empty (except for `uri`, which Envoy allows) and a regex must compile.
pub(super) fn string_match(v: &mut Validator, sm: &StringMatch, allow_empty_prefix: bool) {
    rules::oneof(
        v,
        &[
            ("exact", sm.exact.is_some()),
            ("prefix", sm.prefix.is_some()),
            ("regex", sm.regex.is_some()),
        ],
    );
    match sm.kind() {
        Some(StringMatchKind::Prefix("")) if !allow_empty_prefix => {
            v.field("prefix", |v| {
                v.error("prefix string match should not be empty")
            });
        }
        Some(StringMatchKind::Regex(re)) => v.field("regex", |v| {
            if re.is_empty() {
                v.error("regex string match should not be empty");
            } else {
                regex(v, re);
            }
        }),
        _ => {}
    }
}

/// Istio's `validateStringRegexp`: RE2 syntax and at most 1024 characters.
pub(super) fn regex(v: &mut Validator, re: &str) {
    if re.len() > MAX_REGEX_LEN {
        v.error(format!(
            "regex is too large ({} characters), max length allowed is {MAX_REGEX_LEN}",
            re.len()
        ));
        return;
    }
    if let Err(e) = rules::check_re2(re) {
        v.error_hint(
            e,
            "Istio uses RE2 style regex-based match (https://github.com/google/re2/wiki/Syntax)",
        );
    }
}

/// Istio's `validatePercentage`: 0, or between 0.0001 and 100.
pub(super) fn percentage(v: &mut Validator, field: &str, p: Option<&Percent>) {
    if let Some(p) = p {
        let x = p.value;
        if x.is_nan() || !(0.0..=100.0).contains(&x) || (x > 0.0 && x < 0.0001) {
            v.field(field, |v| {
                v.field("value", |v| {
                    v.error(format!(
                        "percentage {x} is neither 0.0, nor in range [0.0001, 100.0]"
                    ))
                })
            });
        }
    }
}

/// Durations the CRD only requires to be at least 1ms (no Go-side precision check).
pub(super) fn min_duration(v: &mut Validator, field: &str, d: Option<&Duration>) {
    if let Some(d) = d
        && d.as_std() < std::time::Duration::from_millis(1)
    {
        v.field(field, |v| {
            v.error(format!(
                "must be a valid duration greater than 1ms (got {d})"
            ))
        });
    }
}

/// Istio's `ValidateDuration` on an optional field.
pub(super) fn duration(v: &mut Validator, field: &str, d: Option<&Duration>) {
    if let Some(d) = d {
        v.field(field, |v| rules::duration(v, d));
    }
}
