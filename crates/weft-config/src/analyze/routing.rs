//! Routing references, as Istio's analyzers check them: subsets a route names must be
//! defined (IST0101), gateways must exist and serve the VirtualService's hosts (IST0101,
//! IST0132), destination hosts must exist where the registry is described (IST0101), and
//! two VirtualServices must not both claim a host for the mesh (IST0109).

use super::{CLUSTER_DOMAIN, host_matches, resolve_host};
use crate::diag::{Code, Finding};
use crate::kinds::Resource;
use crate::load::Loaded;
use crate::networking::gateway::Gateway;
use crate::networking::virtual_service::{Destination, VirtualService};
use crate::path::FieldPath;
use std::collections::{BTreeMap, HashMap, HashSet};

/// What the loaded configuration defines, for lookups.
struct Index<'a> {
    /// (DestinationRule host, resolved; its subset names)
    subsets: Vec<(String, Vec<&'a str>)>,
    gateways: HashMap<(&'a str, &'a str), &'a Gateway>,
    /// FQDNs of loaded Kubernetes Services.
    services: HashSet<String>,
    /// Namespaces with at least one Service loaded: their registry is described, so a
    /// missing service there is a finding rather than an unknown.
    described: HashSet<&'a str>,
    /// Hosts (possibly wildcards) of loaded ServiceEntries.
    entry_hosts: Vec<&'a str>,
}

impl<'a> Index<'a> {
    fn new(loaded: &'a [Loaded]) -> Self {
        let mut idx = Index {
            subsets: Vec::new(),
            gateways: HashMap::new(),
            services: HashSet::new(),
            described: HashSet::new(),
            entry_hosts: Vec::new(),
        };
        for l in loaded {
            let ns = l.resource.namespace().unwrap_or_default();
            match &l.resource {
                Resource::DestinationRule(dr) => idx.subsets.push((
                    resolve_host(&dr.spec.host, ns),
                    dr.spec.subsets.iter().map(|s| s.name.as_str()).collect(),
                )),
                Resource::Gateway(g) => {
                    idx.gateways.insert((ns, l.resource.name()), &g.spec);
                }
                Resource::Service(_) => {
                    idx.services
                        .insert(format!("{}.{ns}.{CLUSTER_DOMAIN}", l.resource.name()));
                    idx.described.insert(ns);
                }
                Resource::ServiceEntry(se) => {
                    idx.entry_hosts
                        .extend(se.spec.hosts.iter().map(String::as_str));
                }
                _ => {}
            }
        }
        idx
    }

    /// Whether `fqdn`, a cluster-local name in a described namespace, names nothing loaded.
    fn missing_service(&self, fqdn: &str) -> bool {
        let Some(rest) = fqdn.strip_suffix(&format!(".{CLUSTER_DOMAIN}")) else {
            return false;
        };
        let Some((_, ns)) = rest.rsplit_once('.') else {
            return false;
        };
        self.described.contains(ns)
            && !self.services.contains(fqdn)
            && !self.entry_hosts.iter().any(|h| host_matches(h, fqdn))
    }
}

pub(super) fn analyze(loaded: &[Loaded], out: &mut Vec<Finding>) {
    let idx = Index::new(loaded);
    for l in loaded {
        let Resource::VirtualService(vs) = &l.resource else {
            continue;
        };
        let ns = l.resource.namespace().unwrap_or_default();
        check_gateways(l, &vs.spec, ns, &idx, out);
        for (path, d) in destinations(&vs.spec) {
            check_destination(l, ns, &path, d, &idx, out);
        }
    }
    conflicting_mesh_hosts(loaded, out);
}

fn check_destination(
    l: &Loaded,
    ns: &str,
    path: &FieldPath,
    d: &Destination,
    idx: &Index<'_>,
    out: &mut Vec<Finding>,
) {
    if d.host.is_empty() {
        return;
    }
    let host = resolve_host(&d.host, ns);
    if idx.missing_service(&host) {
        out.push(
            l.place(
                Finding::warning(
                    Code::ReferenceNotFound,
                    format!("host {host} is not a loaded Service or ServiceEntry host"),
                )
                .with_suggestion("requests routed here fail with 503 (no healthy upstream)")
                .at(path.field("host")),
            ),
        );
    }
    if d.subset.is_empty() {
        return;
    }
    let rules: Vec<&(String, Vec<&str>)> = idx
        .subsets
        .iter()
        .filter(|(h, _)| host_matches(h, &host))
        .collect();
    if rules.iter().any(|(_, s)| s.contains(&d.subset.as_str())) {
        return;
    }
    let defined: Vec<&str> = rules.iter().flat_map(|(_, s)| s.iter().copied()).collect();
    let why = if rules.is_empty() {
        format!("no DestinationRule for host {host} is loaded")
    } else {
        format!(
            "the DestinationRule for {host} defines subsets [{}]",
            defined.join(", ")
        )
    };
    let mut f = Finding::warning(
        Code::ReferenceNotFound,
        format!("subset {:?} of host {host} is not defined: {why}", d.subset),
    )
    .at(path.field("subset"));
    if let Some(close) = crate::suggest::closest(&d.subset, defined.iter().copied()) {
        f = f.with_suggestion(format!("did you mean subset {close:?}?"));
    } else if rules.is_empty() {
        f = f.with_suggestion(format!(
            "add a DestinationRule for {host} with subset {:?} (requests to an undefined subset fail with 503)",
            d.subset
        ));
    }
    out.push(l.place(f));
}

/// Whether two host patterns can match a common name (`*` and `*.suffix` wildcards).
fn hosts_intersect(a: &str, b: &str) -> bool {
    a == b || host_matches(a, b) || host_matches(b, a)
}

/// Whether a Gateway server host (`[namespace/]host`) admits host `h` of a VirtualService
/// in `vs_ns`, for a Gateway in `gw_ns`.
fn server_admits(server_host: &str, h: &str, vs_ns: &str, gw_ns: &str) -> bool {
    let (scope, pattern) = server_host.split_once('/').unwrap_or(("*", server_host));
    let ns_ok = match scope {
        "*" => true,
        "." => vs_ns == gw_ns,
        ns => ns == vs_ns,
    };
    ns_ok && hosts_intersect(pattern, h)
}

fn check_gateways(
    l: &Loaded,
    vs: &VirtualService,
    ns: &str,
    idx: &Index<'_>,
    out: &mut Vec<Finding>,
) {
    for (i, g) in vs.gateways.iter().enumerate() {
        if g == "mesh" {
            continue;
        }
        let (gns, gname) = g.split_once('/').unwrap_or((ns, g.as_str()));
        let path = FieldPath::parse("spec.gateways").index(i);
        let Some(gw) = idx.gateways.get(&(gns, gname)) else {
            out.push(
                l.place(
                    Finding::warning(
                        Code::ReferenceNotFound,
                        format!("gateway {gns}/{gname} is not defined by any loaded Gateway"),
                    )
                    .at(path),
                ),
            );
            continue;
        };
        for (j, h) in vs.hosts.iter().enumerate() {
            let admitted = gw
                .servers
                .iter()
                .flat_map(|s| s.hosts.iter())
                .any(|sh| server_admits(sh, h, ns, gns));
            if !admitted {
                out.push(l.place(
                    Finding::warning(
                        Code::ReferenceNotFound,
                        format!(
                            "host {h:?} is not served by gateway {gns}/{gname}: none of its servers' hosts match it"
                        ),
                    )
                    .with_suggestion(format!(
                        "add {h:?} (or a wildcard covering it) to a server's hosts in Gateway {gns}/{gname}"
                    ))
                    .at(FieldPath::parse("spec.hosts").index(j)),
                ));
            }
        }
    }
}

/// Two VirtualServices bound to the mesh that define the same host: Istio uses one of them
/// and ignores the other's routes.
fn conflicting_mesh_hosts(loaded: &[Loaded], out: &mut Vec<Finding>) {
    let mut by_host: BTreeMap<String, Vec<(&Loaded, usize)>> = BTreeMap::new();
    for l in loaded {
        let Resource::VirtualService(vs) = &l.resource else {
            continue;
        };
        if !vs.spec.gateways.is_empty() && !vs.spec.gateways.iter().any(|g| g == "mesh") {
            continue;
        }
        let ns = l.resource.namespace().unwrap_or_default();
        for (i, h) in vs.spec.hosts.iter().enumerate() {
            by_host.entry(resolve_host(h, ns)).or_default().push((l, i));
        }
    }
    for (host, users) in by_host {
        // The same object loaded twice is a duplicate (reported as such), not a conflict.
        let mut names: Vec<String> = users
            .iter()
            .map(|(l, _)| {
                let r = l.resource.object_ref();
                format!("{}/{}", r.namespace.unwrap_or_default(), r.name)
            })
            .collect();
        names.sort();
        names.dedup();
        if names.len() < 2 {
            continue;
        }
        for (l, i) in users {
            out.push(l.place(
                Finding::warning(
                    Code::Conflict,
                    format!(
                        "VirtualServices {} all define host {host} for the mesh; only one of them takes effect",
                        names.join(", ")
                    ),
                )
                .with_suggestion("merge them into one VirtualService")
                .at(FieldPath::parse("spec.hosts").index(i)),
            ));
        }
    }
}

/// Every destination in a VirtualService with its path.
fn destinations(vs: &VirtualService) -> Vec<(FieldPath, &Destination)> {
    let spec = FieldPath::parse("spec");
    let mut out = Vec::new();
    for (i, r) in vs.http.iter().enumerate() {
        let p = spec.field("http").index(i);
        for (j, d) in r.route.iter().enumerate() {
            if let Some(dest) = &d.destination {
                out.push((p.field("route").index(j).field("destination"), dest));
            }
        }
        if let Some(m) = &r.mirror {
            out.push((p.field("mirror"), m));
        }
        for (j, m) in r.mirrors.iter().enumerate() {
            if let Some(dest) = &m.destination {
                out.push((p.field("mirrors").index(j).field("destination"), dest));
            }
        }
    }
    for (name, routes) in [
        ("tcp", vs.tcp.iter().map(|r| &r.route).collect::<Vec<_>>()),
        ("tls", vs.tls.iter().map(|r| &r.route).collect()),
    ] {
        for (i, route) in routes.into_iter().enumerate() {
            for (j, d) in route.iter().enumerate() {
                if let Some(dest) = &d.destination {
                    out.push((
                        spec.field(name)
                            .index(i)
                            .field("route")
                            .index(j)
                            .field("destination"),
                        dest,
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_server_hosts() {
        assert!(server_admits("*", "a.example.com", "x", "y"));
        assert!(server_admits("*.example.com", "a.example.com", "x", "y"));
        assert!(server_admits("x/*.example.com", "a.example.com", "x", "y"));
        assert!(!server_admits("z/*.example.com", "a.example.com", "x", "y"));
        assert!(server_admits("./a.example.com", "a.example.com", "y", "y"));
        assert!(!server_admits("./a.example.com", "a.example.com", "x", "y"));
        assert!(!server_admits("b.example.com", "a.example.com", "x", "y"));
        assert!(server_admits("b.example.com", "*.example.com", "x", "y"));
    }
}
