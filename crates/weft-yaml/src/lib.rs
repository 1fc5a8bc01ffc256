//! Positioned YAML and JSON, shared by every crate that reads configuration files (Istio
//! resources in `weft-config`, Envoy bootstraps in the proxy): text parses into nodes that
//! remember their line and column, and a serde decoder turns them into typed values while
//! reporting every problem — unknown field, wrong type, bad value — with its field path.

pub mod de;
pub mod node;
pub mod path;
pub mod suggest;
pub mod yaml;

pub use de::{DeError, Deser, Issue, MapKeys, UnknownField, decode, decode_with};
pub use node::{Node, NodeKind, Pos, Resolved};
pub use path::{FieldPath, Segment};

/// What kind of problem a decoding [`Issue`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Problem {
    /// The text does not parse.
    Syntax,
    /// A field the type does not have.
    UnknownField,
    /// A value of the wrong type or form.
    InvalidType,
    /// A value the type rejects.
    InvalidValue,
    /// A required field is absent.
    MissingField,
}

/// Newtype-struct name under which duration types present themselves to deserializers, so
/// a bare number gets the hint "add a unit" and schema probes can name the leaf.
pub const DURATION_NEWTYPE: &str = "weft.Duration";
