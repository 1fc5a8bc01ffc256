//! Istio's host-name algebra (its `host` package) for gateways: which server hosts and
//! VirtualService hosts cover each other, and in what order virtual hosts are listed.

use weft_config::networking::virtual_service::VirtualService;

use crate::translate::names::resolve_host;
use crate::translate::view::{MeshView, Named};

/// host.Name.SubsetOf: `n` is covered by `o`.
fn subset_of(n: &str, o: &str) -> bool {
    match (n.strip_prefix('*'), o.strip_prefix('*')) {
        (Some(ns), Some(os)) => n.len() >= o.len() && ns.ends_with(os),
        (Some(_), None) => false,
        (None, Some(os)) => n.ends_with(os),
        (None, None) => n == o,
    }
}

/// host.Name.Matches: either covers the other.
fn matches(a: &str, b: &str) -> bool {
    subset_of(a, b) || subset_of(b, a)
}

/// host.Names.Intersection: for each pair where one covers the other, the narrower one.
pub(super) fn intersection(a: &[String], b: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for x in a {
        for y in b {
            let narrower = if subset_of(x, y) {
                x
            } else if subset_of(y, x) {
                y
            } else {
                continue;
            };
            if !out.contains(narrower) {
                out.push(narrower.clone());
            }
        }
    }
    out
}

/// host.NamesForNamespace: the server hosts a VirtualService in `namespace` may bind.
pub(super) fn hosts_for_namespace(hosts: &[String], namespace: &str) -> Vec<String> {
    hosts
        .iter()
        .filter_map(|h| match h.split_once('/') {
            Some((ns, host)) if ns == namespace || ns == "*" => Some(host.to_string()),
            Some(_) => None,
            None => Some(h.clone()),
        })
        .collect()
}

/// A VirtualService's hosts as istiod stores them: short names made FQDNs.
pub(super) fn vs_hosts(vs: &Named<VirtualService>, view: &MeshView) -> Vec<String> {
    vs.spec
        .hosts
        .iter()
        .map(|h| resolve_host(h, &vs.namespace, &view.mesh.domain))
        .collect()
}

/// pickMatchingGatewayHosts: whether any VirtualService host matches a server host, a
/// `ns/host` server host only for VirtualServices in `ns`.
pub(super) fn any_host_matches(
    server_hosts: &[String],
    vs: &Named<VirtualService>,
    view: &MeshView,
) -> bool {
    let vs_hosts = vs_hosts(vs, view);
    server_hosts.iter().any(|g| {
        let g = match g.split_once('/') {
            Some((ns, host)) if ns == vs.namespace => host,
            Some(_) => return false,
            None => g.as_str(),
        };
        vs_hosts.iter().any(|h| matches(g, h))
    })
}

/// host.Names order: exact names before wildcards, longer first, then alphabetical.
pub(super) fn host_order(a: &str, b: &str) -> std::cmp::Ordering {
    let (wa, wb) = (a.starts_with('*'), b.starts_with('*'));
    wa.cmp(&wb)
        .then(b.len().cmp(&a.len()))
        .then_with(|| a.cmp(b))
}
