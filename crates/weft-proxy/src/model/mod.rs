//! The proxy's own runtime model. Every xDS resource (and every static resource of a
//! bootstrap) is converted here, once, before anything serves with it: the hot path reads
//! only these compact types, and a resource that cannot be converted is rejected whole with
//! a [`ConvertError`] naming the field, so the caller can NACK it and keep the last good one.

// Envoy still accepts its deprecated fields (`append`, `exact_match`, cluster-level protocol
// options), so the converters must read them too.
#![allow(deprecated)]

pub mod cluster;
pub mod cors;
pub mod endpoint;
pub mod fault;
pub mod hash_policy;
pub mod hcm;
pub mod header_ops;
pub mod listener;
pub mod matcher;
pub mod mirror;
pub mod outlier;
pub mod retry;
pub mod route;
pub mod route_action;
pub mod support;
pub mod tcp_proxy;
pub mod tls;

use prost::Message;
use std::fmt;
use std::time::Duration;
use weft_yaml::FieldPath;

/// Why one resource was not accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ConvertError {
    /// Where inside the resource (`filter_chains[0].filters[0].typed_config.route_config`).
    pub path: FieldPath,
    pub message: String,
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_root() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl ConvertError {
    pub fn new(path: &FieldPath, message: impl Into<String>) -> Self {
        ConvertError {
            path: path.clone(),
            message: message.into(),
        }
    }

    /// The same error seen from a message one level up (`field` was where it happened).
    pub fn under(mut self, outer: &FieldPath) -> Self {
        self.path = outer.join(&self.path);
        self
    }
}

pub type Result<T> = std::result::Result<T, ConvertError>;

/// A protobuf `Duration` as a std one; negative values are errors (Envoy's PGV rules reject
/// them for every duration the proxy reads).
pub fn duration(
    d: &envoy_types::pb::google::protobuf::Duration,
    path: &FieldPath,
) -> Result<Duration> {
    if d.seconds < 0 || d.nanos < 0 {
        return Err(ConvertError::new(path, "must not be negative"));
    }
    Ok(Duration::new(d.seconds as u64, d.nanos as u32))
}

/// An optional duration where zero means "disabled", as most Envoy timeouts do.
pub fn timeout(
    d: Option<&envoy_types::pb::google::protobuf::Duration>,
    path: &FieldPath,
) -> Result<Option<Duration>> {
    match d {
        None => Ok(None),
        Some(d) => {
            let d = duration(d, path)?;
            Ok((!d.is_zero()).then_some(d))
        }
    }
}

/// Unpacks an `Any` of the expected type.
pub fn unpack<M: Message + Default>(
    any: &envoy_types::pb::google::protobuf::Any,
    expected: &str,
    path: &FieldPath,
) -> Result<M> {
    let url = any.type_url.rsplit('/').next().unwrap_or_default();
    if url != expected {
        return Err(ConvertError::new(
            path,
            format!("expected type {expected}, got {}", any.type_url),
        ));
    }
    M::decode(any.value.as_slice())
        .map_err(|e| ConvertError::new(path, format!("cannot decode {expected}: {e}")))
}

/// The type name of an `Any` (`envoy.extensions.filters.http.router.v3.Router`).
pub fn type_name(any: &envoy_types::pb::google::protobuf::Any) -> &str {
    any.type_url.rsplit('/').next().unwrap_or_default()
}
