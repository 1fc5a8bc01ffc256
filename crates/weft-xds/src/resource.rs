//! What both ends of an ADS stream agree on: a named, versioned resource, a subscription
//! (wildcard or named), the two protocol variants, and how a resource's name and content
//! version are derived from its bytes when the wire does not carry them.

use std::collections::BTreeSet;

use envoy_types::pb::envoy::service::discovery::v3::Resource as WireResource;
use envoy_types::pb::google::protobuf::Any;
use prost::Message;

use crate::type_url;

/// One xDS resource as the transport sees it: an opaque `Any` with a name and a version.
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    /// The resource name (`Listener.name`, `ClusterLoadAssignment.cluster_name`, …).
    pub name: String,
    /// Delta: the per-resource version the server sent. State-of-the-world has no
    /// per-resource version on the wire, so this is the response's `version_info`.
    pub version: String,
    /// The resource itself; `type_url` says which message `value` encodes.
    pub body: Any,
}

/// Which resources of one type a client asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Subscription {
    /// Everything the server has of this type (Envoy does this for LDS and CDS).
    Wildcard,
    /// Exactly these names (EDS, RDS, SDS); may be empty.
    Names(BTreeSet<String>),
}

impl Subscription {
    /// Whether a resource called `name` falls under this subscription.
    pub fn includes(&self, name: &str) -> bool {
        match self {
            Subscription::Wildcard => true,
            Subscription::Names(names) => names.contains(name),
        }
    }

    /// A named subscription from anything that yields names.
    pub fn names<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Subscription::Names(names.into_iter().map(Into::into).collect())
    }
}

/// The two ADS protocol variants; Envoy's `ApiConfigSource.api_type` `GRPC` and `DELTA_GRPC`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `StreamAggregatedResources`: every response carries the whole (subscribed) set.
    StateOfTheWorld,
    /// `DeltaAggregatedResources`: responses carry only changed and removed resources.
    Delta,
}

/// Why a resource could not be understood at the transport level.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResourceError {
    #[error("resource of type {type_url} does not decode: {reason}")]
    Undecodable { type_url: String, reason: String },
    #[error("resource of type {type_url} has an empty name")]
    EmptyName { type_url: String },
    #[error("wrapped resource {name:?} carries no body")]
    EmptyWrapper { name: String },
}

/// Field 1 of every resource type this crate knows (Listener, RouteConfiguration, Cluster,
/// Secret: `name`; ClusterLoadAssignment: `cluster_name`) is the resource's name; decoding
/// only that field keeps the transport free of per-type knowledge.
#[derive(Clone, PartialEq, Message)]
struct NameField {
    #[prost(string, tag = "1")]
    name: String,
}

/// The name of a resource, read from the first field of its message.
pub fn resource_name(body: &Any) -> Result<String, ResourceError> {
    let field =
        NameField::decode(body.value.as_slice()).map_err(|e| ResourceError::Undecodable {
            type_url: body.type_url.clone(),
            reason: e.to_string(),
        })?;
    if field.name.is_empty() {
        return Err(ResourceError::EmptyName {
            type_url: body.type_url.clone(),
        });
    }
    Ok(field.name)
}

/// A state-of-the-world response entry as (name, bare resource): unwraps the discovery
/// `Resource` wrapper when the server used it, otherwise reads the name from the message.
pub fn sotw_entry(body: Any) -> Result<(String, Any), ResourceError> {
    if body.type_url != type_url::RESOURCE_WRAPPER {
        let name = resource_name(&body)?;
        return Ok((name, body));
    }
    let wrapper =
        WireResource::decode(body.value.as_slice()).map_err(|e| ResourceError::Undecodable {
            type_url: body.type_url.clone(),
            reason: e.to_string(),
        })?;
    let inner = wrapper
        .resource
        .ok_or_else(|| ResourceError::EmptyWrapper {
            name: wrapper.name.clone(),
        })?;
    let name = if wrapper.name.is_empty() {
        resource_name(&inner)?
    } else {
        wrapper.name
    };
    Ok((name, inner))
}

/// A version derived from the resource's content (FNV-1a over type URL and bytes), stable
/// across processes so a restarted server recognises what a delta client already holds.
pub fn content_version(body: &Any) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for byte in body
        .type_url
        .as_bytes()
        .iter()
        .chain(std::iter::once(&0u8))
        .chain(body.value.iter())
    {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(PRIME);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
    use envoy_types::pb::envoy::config::listener::v3::Listener;
    use envoy_types::util::pack_any;

    #[test]
    fn names_come_from_field_one_of_each_type() {
        let listener = pack_any(Listener {
            name: "http".into(),
            stat_prefix: "s".into(),
            ..Default::default()
        });
        assert_eq!(resource_name(&listener).unwrap(), "http");
        let cla = pack_any(ClusterLoadAssignment {
            cluster_name: "backend".into(),
            ..Default::default()
        });
        assert_eq!(resource_name(&cla).unwrap(), "backend");
        let unnamed = pack_any(Listener::default());
        assert!(matches!(
            resource_name(&unnamed),
            Err(ResourceError::EmptyName { .. })
        ));
        let garbage = Any {
            type_url: type_url::LISTENER.into(),
            value: vec![0x0a, 0x05, b'a'],
        };
        assert!(matches!(
            resource_name(&garbage),
            Err(ResourceError::Undecodable { .. })
        ));
    }

    #[test]
    fn sotw_entries_unwrap_the_discovery_resource_wrapper() {
        let inner = pack_any(Listener {
            name: "inner".into(),
            ..Default::default()
        });
        let wrapped = pack_any(WireResource {
            name: "outer".into(),
            resource: Some(inner.clone()),
            ..Default::default()
        });
        assert_eq!(
            sotw_entry(wrapped).unwrap(),
            ("outer".into(), inner.clone())
        );
        assert_eq!(sotw_entry(inner.clone()).unwrap(), ("inner".into(), inner));
        let empty = pack_any(WireResource {
            name: "x".into(),
            ..Default::default()
        });
        assert!(matches!(
            sotw_entry(empty),
            Err(ResourceError::EmptyWrapper { .. })
        ));
    }

    #[test]
    fn content_versions_follow_content() {
        let a = pack_any(Listener {
            name: "a".into(),
            ..Default::default()
        });
        let b = pack_any(Listener {
            name: "b".into(),
            ..Default::default()
        });
        assert_eq!(content_version(&a), content_version(&a.clone()));
        assert_ne!(content_version(&a), content_version(&b));
        assert_eq!(content_version(&a).len(), 16);
    }
}
