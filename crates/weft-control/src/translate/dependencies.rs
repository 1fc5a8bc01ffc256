//! What a group's shared resources are computed from, as one digest: the queries the
//! sidecar and gRPC translations make of the view — the mesh settings, the Sidecar that
//! scopes the proxy, the services it sees (with a DNS service's inline endpoints), the
//! VirtualService and DestinationRule each of them resolves to, and the service and
//! DestinationRule of every host those VirtualServices route or mirror to — run again on
//! a new view and hashed with their answers. Equal digests mean the translation would
//! read the same answers, so a configuration change that leaves a group's digest alone
//! (a rule for hosts its Sidecar does not import, typically) does not translate it again.
//! A second digest covers only what clusters read, so a change to routing alone
//! translates listeners and routes again and leaves clusters and endpoints standing.
//! Endpoints themselves are not in either: they are recomputed for every group whenever
//! the registry's endpoints change.
//!
//! A router's digest is coarser: every Gateway, every VirtualService bound to some
//! gateway (and every delegate) with the services and rules its routes name, and every
//! service its namespace sees with its rule (gateways are not scoped by Sidecars), so a
//! change to mesh-only routing leaves gateways alone.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::{DefaultHasher, Hash, Hasher};

use weft_config::networking::virtual_service::{Destination, MESH_GATEWAY, VirtualService};

use super::names::resolve_host;
use super::route::virtual_service;
use super::scope::{Scope, applicable};
use super::view::{MeshView, Named};
use crate::node::{Generator, Proxy, ProxyType};
use crate::registry::{Resolution, Service};

/// Content digests of a view's services (with a DNS service's inline endpoints), rules and
/// Sidecars, computed once per view and looked up by the object's address, so a group's
/// fingerprint costs a lookup per object rather than formatting it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Digests(HashMap<usize, u64>);

impl Digests {
    pub fn of(view: &MeshView) -> Self {
        let mut out = HashMap::new();
        for svc in view.registry.services.values() {
            out.insert(address(svc), service_digest(view, svc));
        }
        for vs in &view.virtual_services {
            out.insert(address(vs), content(vs));
        }
        for dr in &view.destination_rules {
            out.insert(address(dr), content(dr));
        }
        for s in &view.sidecars {
            out.insert(address(s), content(s));
        }
        for g in &view.gateways {
            out.insert(address(g), content(g));
        }
        Digests(out)
    }

    /// The digest of `object`, from the table when it is the view's own (a copy of the
    /// view, whose objects live elsewhere, computes it).
    fn get<T>(&self, object: &T, compute: impl FnOnce() -> u64) -> u64 {
        self.0
            .get(&address(object))
            .copied()
            .unwrap_or_else(compute)
    }
}

fn address<T>(object: &T) -> usize {
    std::ptr::from_ref(object) as usize
}

fn content<T: Debug>(object: &T) -> u64 {
    let mut h = DefaultHasher::new();
    format!("{object:?}").hash(&mut h);
    h.finish()
}

/// A service as clusters and listeners read it, with the endpoints a DNS service carries
/// inline in its clusters.
fn service_digest(view: &MeshView, svc: &Service) -> u64 {
    let mut h = DefaultHasher::new();
    if view.reads_accounts || svc.service_accounts.is_empty() {
        format!("{svc:?}").hash(&mut h);
    } else {
        // No rule names them: proxies whose services gain or lose an account as workloads
        // come and go keep their translation.
        let without = Service {
            service_accounts: Vec::new(),
            ..svc.clone()
        };
        format!("{without:?}").hash(&mut h);
    }
    if matches!(svc.resolution, Resolution::Dns | Resolution::DnsRoundRobin) {
        for p in &svc.ports {
            format!("{:?}", view.registry.endpoints_of(&svc.hostname, p.port)).hash(&mut h);
        }
    }
    h.finish()
}

/// What a group's shared resources were computed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    /// Everything the translation reads.
    pub all: u64,
    /// What a sidecar's clusters — and so which endpoints it is sent — are computed from:
    /// the mesh settings, its Sidecar, the services it sees and their DestinationRules. A
    /// change that leaves it alone but not `all` (a VirtualService, typically) changes only
    /// listeners and routes. `None` for proxyless gRPC, whose resources are translated as
    /// one.
    pub clusters: Option<u64>,
}

/// The digests of everything `shared(proxy, view)` reads.
pub fn fingerprint(proxy: &Proxy, view: &MeshView) -> Option<Fingerprint> {
    if proxy.generator == Generator::Envoy && proxy.proxy_type == ProxyType::Router {
        return Some(router(proxy, view));
    }
    // `c` takes what clusters read, `r` what only listeners and routes do.
    let (mut c, mut r) = (DefaultHasher::new(), DefaultHasher::new());
    format!("{:?}", view.mesh).hash(&mut c);
    let d = &view.digests;
    match applicable(proxy, view) {
        Some(s) => d.get(s, || content(s)).hash(&mut c),
        None => 0u8.hash(&mut c),
    }
    let scope = Scope::of(proxy, view);
    let mut routed: Vec<&Named<VirtualService>> = Vec::new();
    for svc in view.visible_services(proxy, &scope) {
        visible_service(proxy, view, svc, &mut c);
        match virtual_service(proxy, view, svc) {
            Some(vs) => {
                d.get(vs, || content(vs)).hash(&mut r);
                if !routed.iter().any(|known| std::ptr::eq(*known, vs)) {
                    routed.push(vs);
                }
            }
            None => 1u8.hash(&mut r),
        }
    }
    for vs in routed {
        route_targets(proxy, view, vs, &mut r);
    }
    let clusters = c.finish();
    clusters.hash(&mut r);
    Some(Fingerprint {
        all: r.finish(),
        clusters: (proxy.generator == Generator::Envoy).then_some(clusters),
    })
}

/// What a route's destinations look up: the service (for its port and namespace) and its
/// DestinationRule (for a consistent hash and TCP settings).
fn route_targets(
    proxy: &Proxy,
    view: &MeshView,
    vs: &Named<VirtualService>,
    h: &mut DefaultHasher,
) {
    for d in destinations(&vs.spec) {
        let host = resolve_host(&d.host, &vs.namespace, &view.mesh.domain);
        let found = view.registry.lookup(&host, &vs.namespace);
        match found {
            Some(svc) => service(view, svc, h),
            None => 2u8.hash(h),
        }
        let host_namespace = found.map_or("", |s| s.namespace.as_str());
        rule_for(view, &host, &proxy.namespace, host_namespace, h);
    }
}

/// A router's digests (see the module's comment).
fn router(proxy: &Proxy, view: &MeshView) -> Fingerprint {
    let (mut c, mut r) = (DefaultHasher::new(), DefaultHasher::new());
    let d = &view.digests;
    format!("{:?}", view.mesh).hash(&mut c);
    let visible = view
        .registry
        .services
        .values()
        .filter(|s| s.visible_from(&proxy.namespace));
    for svc in visible {
        visible_service(proxy, view, svc, &mut c);
    }
    match applicable(proxy, view) {
        Some(s) => d.get(s, || content(s)).hash(&mut r),
        None => 0u8.hash(&mut r),
    }
    for g in &view.gateways {
        d.get(g, || content(g)).hash(&mut r);
    }
    let bound = view
        .virtual_services
        .iter()
        .filter(|vs| vs.spec.is_delegate() || vs.spec.gateways.iter().any(|g| g != MESH_GATEWAY));
    for vs in bound {
        d.get(vs, || content(vs)).hash(&mut r);
        route_targets(proxy, view, vs, &mut r);
    }
    let clusters = c.finish();
    clusters.hash(&mut r);
    Fingerprint {
        all: r.finish(),
        clusters: Some(clusters),
    }
}

/// A service the proxy sees, and the DestinationRule that applies to it from the proxy's
/// namespace: what its clusters are made from.
fn visible_service(proxy: &Proxy, view: &MeshView, svc: &Service, h: &mut DefaultHasher) {
    service(view, svc, h);
    rule_for(view, &svc.hostname, &proxy.namespace, &svc.namespace, h);
}

fn service(view: &MeshView, svc: &Service, h: &mut DefaultHasher) {
    view.digests.get(svc, || service_digest(view, svc)).hash(h);
}

fn rule_for(
    view: &MeshView,
    host: &str,
    namespace: &str,
    host_namespace: &str,
    h: &mut DefaultHasher,
) {
    match view.destination_rule(host, namespace, host_namespace) {
        Some(dr) => view.digests.get(dr, || content(dr)).hash(h),
        None => 3u8.hash(h),
    }
}

/// Every destination a VirtualService's routes name: HTTP routes and mirrors, TCP and TLS.
fn destinations(vs: &VirtualService) -> impl Iterator<Item = &Destination> {
    let http = vs.http.iter().flat_map(|r| {
        r.route
            .iter()
            .filter_map(|d| d.destination.as_ref())
            .chain(r.mirror.as_ref())
            .chain(r.mirrors.iter().filter_map(|m| m.destination.as_ref()))
    });
    let l4 = vs
        .tcp
        .iter()
        .flat_map(|r| &r.route)
        .chain(vs.tls.iter().flat_map(|r| &r.route))
        .filter_map(|d| d.destination.as_ref());
    http.chain(l4)
}
