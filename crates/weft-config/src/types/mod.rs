//! Leaf value types shared by every resource: durations, free-form protobuf `Struct`s.

mod duration;

pub use duration::{Duration, DurationError};

/// Newtype-struct name under which [`Duration`] presents itself to deserializers; the
/// schema explorer reports it as the leaf type `duration`.
pub const DURATION_TYPE: &str = weft_yaml::DURATION_NEWTYPE;

/// `google.protobuf.Struct`: an arbitrary JSON object (e.g. `values.pilot.env`).
pub type Struct = serde_json::Map<String, serde_json::Value>;

/// `google.protobuf.Value`: arbitrary JSON.
pub type Value = serde_json::Value;

/// Used by `skip_serializing_if` so serialized resources carry only what was set.
pub fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}
