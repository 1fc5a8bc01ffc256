//! Weft's configuration model: the Istio and Kubernetes resources a mesh reads, loaded from
//! YAML or JSON with source positions, decoded into typed values, and validated with
//! Istio's own rules. Knows nothing of xDS or sockets.

pub mod de;
pub mod diag;
pub mod suggest;
pub mod node;
pub mod yaml;
pub mod path;
pub mod types;
pub mod validate;

pub use diag::{Code, Finding, Location, ObjectRef, Severity};
pub use path::{FieldPath, Segment};
pub mod mesh;
pub mod networking;
pub mod operator;
pub mod security;
pub mod selector;
pub mod telemetry;
