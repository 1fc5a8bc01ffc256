//! Weft's control plane: reads Istio configuration and a service registry, computes each
//! connected proxy's view as Envoy xDS v3 resources (named the way istiod names them), and
//! serves them over ADS to weft-proxy, real Envoy and proxyless gRPC alike.
#![forbid(unsafe_code)]

pub mod ca_service;
pub mod control;
pub mod debug;
pub mod describe;
pub mod metrics;
pub mod node;
pub mod push;
pub mod registry;
pub mod store;
pub mod translate;
pub mod xds_tls;
