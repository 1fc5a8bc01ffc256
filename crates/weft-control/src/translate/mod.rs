//! Istio configuration and the registry to Envoy xDS for one proxy, with istiod's names and
//! shapes (see docs/control-plane/istiod-sidecar-xds.md for the reference this follows),
//! limited to extensions stock Envoy ships: Istio's own filters (metadata exchange, stats,
//! ALPN) exist only in istio-proxy builds and would be NACKed by Envoy and Weft alike.

mod cluster;
mod endpoints;
mod listener;
mod names;
mod route;
mod view;

pub use names::{cluster_name, resolve_host};
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

/// Everything a sidecar (or a proxyless gRPC client, which asks for a subset of the same
/// names) is sent.
pub fn sidecar(proxy: &Proxy, view: &MeshView) -> Generated {
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
