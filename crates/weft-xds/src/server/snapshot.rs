//! A versioned, immutable set of resources per type: what the server serves. Each resource
//! gets a content version so delta streams send only what changed between snapshots and a
//! reconnecting delta client's `initial_resource_versions` can be honoured.

use std::collections::BTreeMap;

use envoy_types::pb::google::protobuf::Any;

use crate::resource::{ResourceError, content_version, resource_name};

/// One resource in a snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub body: Any,
    /// Derived from the content (see [`content_version`]); the per-resource delta version.
    pub version: String,
}

/// Per type URL, name → resource, plus the version state-of-the-world responses of this
/// snapshot carry: the snapshot's, or a type's own when set, so a server that bumps only
/// the types that changed (an endpoint change is EDS alone) pushes only those.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    version: String,
    type_versions: BTreeMap<String, String>,
    types: BTreeMap<String, BTreeMap<String, Entry>>,
}

impl Snapshot {
    pub fn new(version: impl Into<String>) -> Self {
        Self {
            version: version.into(),
            type_versions: BTreeMap::new(),
            types: BTreeMap::new(),
        }
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// The version responses of `type_url` carry.
    pub fn type_version(&self, type_url: &str) -> &str {
        self.type_versions
            .get(type_url)
            .map_or(self.version.as_str(), String::as_str)
    }

    /// Gives one type its own version (the default is the snapshot's).
    pub fn set_type_version(&mut self, type_url: impl Into<String>, version: impl Into<String>) {
        self.type_versions.insert(type_url.into(), version.into());
    }

    /// Adds (or replaces) a resource under its type URL, named by its message's name field.
    pub fn insert(&mut self, body: Any) -> Result<(), ResourceError> {
        let name = resource_name(&body)?;
        self.insert_named(name, body);
        Ok(())
    }

    /// Adds (or replaces) a resource under an explicit name.
    pub fn insert_named(&mut self, name: impl Into<String>, body: Any) {
        let version = content_version(&body);
        self.types
            .entry(body.type_url.clone())
            .or_default()
            .insert(name.into(), Entry { body, version });
    }

    /// Builder form of [`Snapshot::insert`].
    pub fn with(mut self, body: Any) -> Result<Self, ResourceError> {
        self.insert(body)?;
        Ok(self)
    }

    /// Removes a resource; returns whether it was there.
    pub fn remove(&mut self, type_url: &str, name: &str) -> bool {
        self.types
            .get_mut(type_url)
            .is_some_and(|m| m.remove(name).is_some())
    }

    /// The resources of one type, by name.
    pub fn entries(&self, type_url: &str) -> Option<&BTreeMap<String, Entry>> {
        self.types.get(type_url)
    }

    pub fn get(&self, type_url: &str, name: &str) -> Option<&Any> {
        self.types.get(type_url)?.get(name).map(|e| &e.body)
    }

    /// The type URLs this snapshot holds resources of.
    pub fn type_urls(&self) -> impl Iterator<Item = &str> {
        self.types.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::type_url;
    use envoy_types::pb::envoy::config::cluster::v3::Cluster;
    use envoy_types::util::pack_any;

    #[test]
    fn resources_are_keyed_by_type_and_name_with_content_versions() {
        let a = pack_any(Cluster {
            name: "a".into(),
            ..Default::default()
        });
        let mut s = Snapshot::new("v1").with(a.clone()).unwrap();
        assert_eq!(s.version(), "v1");
        assert_eq!(s.get(type_url::CLUSTER, "a"), Some(&a));
        let v_a = s.entries(type_url::CLUSTER).unwrap()["a"].version.clone();
        assert_eq!(v_a, content_version(&a));
        s.insert_named("alias", a.clone());
        assert_eq!(s.entries(type_url::CLUSTER).unwrap().len(), 2);
        assert!(s.remove(type_url::CLUSTER, "alias"));
        assert!(!s.remove(type_url::CLUSTER, "alias"));
        assert_eq!(s.type_urls().collect::<Vec<_>>(), [type_url::CLUSTER]);
        assert_eq!(s.type_version(type_url::CLUSTER), "v1");
        s.set_type_version(type_url::CLUSTER, "c7");
        assert_eq!(s.type_version(type_url::CLUSTER), "c7");
        assert_eq!(s.type_version(type_url::LISTENER), "v1");
    }
}
