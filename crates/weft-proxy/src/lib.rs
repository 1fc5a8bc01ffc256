//! Weft's data plane. It consumes Envoy xDS v3 resources and bootstrap files — never Istio
//! YAML — converts them into its own runtime model, and serves traffic the way Envoy does.

pub mod admin;
pub mod agent;
pub mod bootstrap;
pub mod bootstrap_check;
pub mod config;
pub mod descriptors;
#[allow(unsafe_code)]
pub mod heap;
pub mod http;
pub mod listener;
pub mod model;
pub mod pgv;
pub mod proto_path;
pub mod proxy;
pub mod sds;
pub mod stats;
pub mod tcp_proxy;
pub mod upstream;
pub mod worker;
pub mod xds;

pub use bootstrap::{ConfigError, parse_bootstrap};
