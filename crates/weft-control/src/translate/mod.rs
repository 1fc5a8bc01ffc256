//! Istio configuration and the registry to Envoy xDS for one proxy, with istiod's names and
//! shapes (see docs/control-plane/istiod-sidecar-xds.md for the reference this follows),
//! limited to extensions stock Envoy ships: Istio's own filters (metadata exchange, stats,
//! ALPN) exist only in istio-proxy builds and would be NACKed by Envoy and Weft alike.

mod cluster;
pub mod credentials;
mod delegate;
mod dependencies;
mod endpoints;
mod gateway;
mod grpc;
mod host_index;
mod inbound;
mod l4_route;
mod listener;
mod locality;
mod names;
mod route;
mod scope;
#[cfg(test)]
mod tests;
pub mod traffic_policy;
mod view;

pub use dependencies::{Fingerprint, fingerprint};
pub use listener::NamedResources;
pub use names::{cluster_name, host_matches, resolve_host};
pub use scope::Scope;
pub use view::{MeshSettings, MeshView, OutboundPolicy};

use envoy_types::pb::google::protobuf::Any;

use crate::node::Proxy;

/// One proxy's resources by xDS type, each resource with its name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Generated {
    pub listeners: Vec<(String, Any)>,
    pub routes: Vec<(String, Any)>,
    pub clusters: Vec<(String, Any)>,
    pub endpoints: Vec<(String, Any)>,
}

impl Generated {
    /// Appends `other`'s resources after this one's, type by type.
    pub fn extend(&mut self, other: Generated) {
        self.listeners.extend(other.listeners);
        self.routes.extend(other.routes);
        self.clusters.extend(other.clusters);
        self.endpoints.extend(other.endpoints);
    }
}

/// Everything a proxy is sent, by the generator its node asks for: [`shared`] then
/// [`own`].
pub fn generate(proxy: &Proxy, view: &MeshView) -> Generated {
    let mut g = shared(proxy, view);
    g.extend(own(proxy, view));
    g
}

/// The part of a proxy's resources that depends only on its [`GroupKey`], so proxies with
/// equal keys can share one computed copy (every proxy of a namespace, typically).
pub fn shared(proxy: &Proxy, view: &MeshView) -> Generated {
    match proxy.generator {
        crate::node::Generator::Envoy => match proxy.proxy_type {
            crate::node::ProxyType::Sidecar => sidecar_outbound(proxy, view),
            crate::node::ProxyType::Router => gateway::generate(proxy, view),
        },
        crate::node::Generator::Grpc => grpc::generate(proxy, view),
    }
}

/// The endpoints of [`shared`] alone, equal to its `endpoints`: after a change that touched
/// only endpoints, the rest of a group's resources stand and only these are recomputed.
pub fn shared_endpoints(proxy: &Proxy, view: &MeshView) -> Vec<(String, Any)> {
    match proxy.generator {
        crate::node::Generator::Envoy => match proxy.proxy_type {
            crate::node::ProxyType::Sidecar => cluster::eds_refs(proxy, view)
                .iter()
                .map(|e| endpoints::load_assignment(e, view))
                .collect(),
            crate::node::ProxyType::Router => gateway::endpoints(proxy, view),
        },
        crate::node::Generator::Grpc => grpc::endpoints(proxy, view),
    }
}

/// The listeners and routes of [`shared`] alone, equal to its own, for sidecars and
/// routers: after a change that left the group's clusters' inputs alone (see
/// [`Fingerprint`]), its clusters and endpoints stand and only these are translated again.
/// `None` for proxyless gRPC, which is translated as a whole.
pub fn shared_listeners(
    proxy: &Proxy,
    view: &MeshView,
) -> Option<(NamedResources, NamedResources)> {
    match (proxy.generator, proxy.proxy_type) {
        (crate::node::Generator::Envoy, crate::node::ProxyType::Sidecar) => {
            Some(listener::outbound(proxy, view))
        }
        (crate::node::Generator::Envoy, crate::node::ProxyType::Router) => {
            Some(gateway::listeners_and_routes(proxy, view))
        }
        _ => None,
    }
}

/// The part that depends on the proxy's own workload: a sidecar's inbound side.
pub fn own(proxy: &Proxy, view: &MeshView) -> Generated {
    match (proxy.generator, proxy.proxy_type) {
        (crate::node::Generator::Envoy, crate::node::ProxyType::Sidecar) => {
            let (listeners, clusters) = inbound::inbound(proxy, view);
            Generated {
                listeners,
                clusters,
                ..Default::default()
            }
        }
        _ => Generated::default(),
    }
}

/// What decides a proxy's [`shared`] resources: its kind, namespace and domain, and the
/// labels some selector or `sourceLabels` in the view actually looks at.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupKey {
    generator: crate::node::Generator,
    proxy_type: crate::node::ProxyType,
    namespace: String,
    dns_domain: String,
    labels: Vec<(String, String)>,
}

/// Among [`label_keys`], the mark that endpoints depend on the proxy's locality: some
/// DestinationRule has outlier detection or locality settings (or the mesh distributes).
/// No Kubernetes label can be named so.
pub const LOCALITY_KEY: &str = "\u{0}locality";

impl GroupKey {
    pub fn of(proxy: &Proxy, label_keys: &std::collections::BTreeSet<String>) -> Self {
        let mut labels: Vec<(String, String)> = proxy
            .labels
            .iter()
            .filter(|(k, _)| label_keys.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if label_keys.contains(LOCALITY_KEY) {
            labels.push((LOCALITY_KEY.to_string(), proxy.locality.clone()));
        }
        Self {
            generator: proxy.generator,
            proxy_type: proxy.proxy_type,
            namespace: proxy.namespace.clone(),
            dns_domain: proxy.dns_domain.clone(),
            labels,
        }
    }
}

/// The label keys that can change a proxy's [`shared`] resources: those of Sidecar and
/// Gateway selectors, of VirtualService `sourceLabels` and of locality `failoverPriority`,
/// and [`LOCALITY_KEY`] when the proxy's locality matters.
pub fn label_keys(view: &MeshView) -> std::collections::BTreeSet<String> {
    let mut keys = std::collections::BTreeSet::new();
    for s in &view.sidecars {
        if let Some(w) = &s.spec.workload_selector {
            keys.extend(w.labels.keys().cloned());
        }
    }
    for g in &view.gateways {
        keys.extend(g.spec.selector.keys().cloned());
    }
    // Locality rules read the proxy's locality and its `failoverPriority` labels.
    let mut locality = view
        .mesh
        .locality_lb
        .as_ref()
        .is_some_and(|s| !s.distribute.is_empty());
    let mut settings: Vec<&weft_config::networking::destination_rule::LocalityLoadBalancerSetting> =
        view.mesh.locality_lb.iter().collect();
    for dr in &view.destination_rules {
        let policies = dr.spec.traffic_policy.iter().chain(
            dr.spec
                .subsets
                .iter()
                .filter_map(|s| s.traffic_policy.as_ref()),
        );
        for tp in policies {
            let levels =
                std::iter::once((tp.load_balancer.as_ref(), tp.outlier_detection.is_some())).chain(
                    tp.port_level_settings
                        .iter()
                        .map(|p| (p.load_balancer.as_ref(), p.outlier_detection.is_some())),
                );
            for (lb, outlier) in levels {
                let own = lb.and_then(|lb| lb.locality_lb_setting.as_ref());
                locality |= outlier || own.is_some();
                settings.extend(own);
            }
        }
    }
    if locality {
        keys.insert(LOCALITY_KEY.to_string());
        for s in settings {
            keys.extend(locality::priority_labels(s).map(str::to_string));
        }
    }
    for vs in &view.virtual_services {
        for r in &vs.spec.http {
            for m in &r.r#match {
                keys.extend(m.source_labels.keys().cloned());
            }
        }
        for r in &vs.spec.tcp {
            for m in &r.r#match {
                keys.extend(m.source_labels.keys().cloned());
            }
        }
        for r in &vs.spec.tls {
            for m in &r.r#match {
                keys.extend(m.source_labels.keys().cloned());
            }
        }
    }
    keys
}

/// Everything a sidecar is sent.
pub fn sidecar(proxy: &Proxy, view: &MeshView) -> Generated {
    let mut g = sidecar_outbound(proxy, view);
    g.extend(own(proxy, view));
    g
}

/// A sidecar's outbound side: clusters and endpoints of what it can reach, its capture
/// and per-port listeners, and their routes.
fn sidecar_outbound(proxy: &Proxy, view: &MeshView) -> Generated {
    let clusters = cluster::outbound(proxy, view);
    let endpoints = clusters
        .iter()
        .filter_map(|c| c.eds.as_ref().map(|e| endpoints::load_assignment(e, view)))
        .collect();
    let (listeners, routes) = listener::outbound(proxy, view);
    Generated {
        listeners,
        routes,
        clusters: clusters.into_iter().map(|c| (c.name, c.body)).collect(),
        endpoints,
    }
}
