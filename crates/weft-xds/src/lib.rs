//! Weft's xDS v3 transport, shared by both planes: an ADS client (the proxy's side) and an
//! ADS server (the control plane's side, and the test harness that feeds real Envoy), each
//! speaking state-of-the-world and delta. It knows type URLs, versions, nonces and ACK/NACK;
//! what a Listener or Cluster *means* belongs to its callers, so nothing here knows Istio.

#![forbid(unsafe_code)]

pub mod client;
pub mod resource;
pub mod server;
pub mod type_url;

/// The protobuf types both sides exchange, re-exported so callers build resources with the
/// very same prost/tonic versions this crate speaks.
pub use envoy_types;
pub use resource::{Mode, Resource, ResourceError, Subscription};
