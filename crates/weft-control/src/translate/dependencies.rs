//! What a group's shared resources are computed from, as one digest: the queries the
//! sidecar and gRPC translations make of the view — the mesh settings, the Sidecar that
//! scopes the proxy, the services it sees (with a DNS service's inline endpoints), the
//! VirtualService and DestinationRule each of them resolves to, and the service and
//! DestinationRule of every host those VirtualServices route or mirror to — run again on
//! a new view and hashed with their answers. Equal digests mean the translation would
//! read the same answers, so a configuration change that leaves a group's digest alone
//! (a rule for hosts its Sidecar does not import, typically) does not translate it again.
//! Endpoints are not in it: they are recomputed for every group on every change.
//!
//! Routers are not covered: gateway translation reads every Gateway and bound
//! VirtualService, so a router group is translated again on any change.

use std::hash::{DefaultHasher, Hash, Hasher};

use weft_config::networking::virtual_service::{Destination, VirtualService};

use super::names::resolve_host;
use super::route::virtual_service;
use super::scope::{Scope, applicable};
use super::view::{MeshView, Named};
use crate::node::{Generator, Proxy, ProxyType};
use crate::registry::{Resolution, Service};

/// The digest of everything `shared(proxy, view)` reads; `None` for routers.
pub fn fingerprint(proxy: &Proxy, view: &MeshView) -> Option<u64> {
    if proxy.generator == Generator::Envoy && proxy.proxy_type == ProxyType::Router {
        return None;
    }
    let mut h = DefaultHasher::new();
    format!("{:?}", view.mesh).hash(&mut h);
    match applicable(proxy, view) {
        Some(s) => {
            (&s.namespace, &s.name).hash(&mut h);
            format!("{:?}", s.spec).hash(&mut h);
        }
        None => 0u8.hash(&mut h),
    }
    let scope = Scope::of(proxy, view);
    let mut routed: Vec<&Named<VirtualService>> = Vec::new();
    for svc in view.visible_services(proxy, &scope) {
        service(view, svc, &mut h);
        rule_for(
            view,
            &svc.hostname,
            &proxy.namespace,
            &svc.namespace,
            &mut h,
        );
        match virtual_service(proxy, view, svc) {
            Some(vs) => {
                (&vs.namespace, &vs.name).hash(&mut h);
                format!("{:?}", vs.spec).hash(&mut h);
                if !routed.iter().any(|r| std::ptr::eq(*r, vs)) {
                    routed.push(vs);
                }
            }
            None => 1u8.hash(&mut h),
        }
    }
    // What a route's destinations look up: the service (for its port and namespace) and
    // its DestinationRule (for a consistent hash and TCP settings).
    for vs in routed {
        for d in destinations(&vs.spec) {
            let host = resolve_host(&d.host, &vs.namespace, &view.mesh.domain);
            let found = view.registry.lookup(&host, &vs.namespace);
            match found {
                Some(svc) => service(view, svc, &mut h),
                None => 2u8.hash(&mut h),
            }
            let host_namespace = found.map_or("", |s| s.namespace.as_str());
            rule_for(view, &host, &proxy.namespace, host_namespace, &mut h);
        }
    }
    Some(h.finish())
}

/// A service as clusters and listeners read it, with the endpoints a DNS service carries
/// inline in its clusters.
fn service(view: &MeshView, svc: &Service, h: &mut DefaultHasher) {
    format!("{svc:?}").hash(h);
    if matches!(svc.resolution, Resolution::Dns | Resolution::DnsRoundRobin) {
        for p in &svc.ports {
            format!("{:?}", view.registry.endpoints_of(&svc.hostname, p.port)).hash(h);
        }
    }
}

fn rule_for(
    view: &MeshView,
    host: &str,
    namespace: &str,
    host_namespace: &str,
    h: &mut DefaultHasher,
) {
    match view.destination_rule(host, namespace, host_namespace) {
        Some(dr) => {
            (&dr.namespace, &dr.name).hash(h);
            format!("{:?}", dr.spec).hash(h);
        }
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
