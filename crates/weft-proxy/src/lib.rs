//! Weft's data plane. It consumes Envoy xDS v3 resources and bootstrap files — never Istio
//! YAML — converts them into its own runtime model, and serves traffic the way Envoy does.
//! This first layer reads Envoy configuration exactly as Envoy does.

pub mod bootstrap;
pub mod descriptors;
pub mod model;
pub mod pgv;
pub mod proto_path;

pub use bootstrap::{ConfigError, parse_bootstrap};
