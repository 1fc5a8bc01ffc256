//! Istio configuration and the registry to Envoy xDS for one proxy, with istiod's names and
//! shapes (see docs/control-plane/istiod-sidecar-xds.md for the reference this follows),
//! limited to extensions stock Envoy ships: Istio's own filters (metadata exchange, stats,
//! ALPN) exist only in istio-proxy builds and would be NACKed by Envoy and Weft alike.

mod cluster;
mod endpoints;
mod gateway;
mod grpc;
mod inbound;
mod listener;
mod names;
mod route;
mod scope;
#[cfg(test)]
mod tests;
mod view;

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

/// Everything a proxy is sent, by the generator its node asks for.
pub fn generate(proxy: &Proxy, view: &MeshView) -> Generated {
    match proxy.generator {
        crate::node::Generator::Envoy => match proxy.proxy_type {
            crate::node::ProxyType::Sidecar => sidecar(proxy, view),
            crate::node::ProxyType::Router => gateway::generate(proxy, view),
        },
        crate::node::Generator::Grpc => grpc::generate(proxy, view),
    }
}

/// Everything a sidecar is sent.
pub fn sidecar(proxy: &Proxy, view: &MeshView) -> Generated {
    let clusters = cluster::outbound(proxy, view);
    let endpoints = clusters
        .iter()
        .filter_map(|c| c.eds.as_ref().map(|e| endpoints::load_assignment(e, view)))
        .collect();
    let (mut listeners, routes) = listener::outbound(proxy, view);
    let (inbound_listeners, inbound_clusters) = inbound::inbound(proxy, view);
    listeners.extend(inbound_listeners);
    let mut clusters: Vec<(String, Any)> = clusters.into_iter().map(|c| (c.name, c.body)).collect();
    clusters.extend(inbound_clusters);
    Generated {
        listeners,
        routes,
        clusters,
        endpoints,
    }
}
