//! What a delta stream sends a client for a new snapshot: the resources whose version
//! differs from what it holds and the names it holds that are gone. What it holds is kept
//! as the snapshot last sent to it (plus what it covered), not as a per-name version list,
//! so a thousand sidecars holding two thousand assignments each cost a thousand pointers;
//! and the difference between two snapshots built from the same shared layers is found
//! from those layers' memoised differences, once for every stream.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use super::Snapshot;
use super::snapshot::{Layer, Parts};
use crate::resource::Subscription;

/// The names a delta subscription covers: everything (wildcard) and/or the listed names.
#[derive(Clone, Debug)]
pub(super) struct Coverage {
    pub wildcard: bool,
    /// Always `Subscription::Names`.
    pub names: Arc<Subscription>,
}

impl Coverage {
    pub fn covers(&self, name: &str) -> bool {
        self.wildcard || self.names.includes(name)
    }

    fn same(&self, other: &Coverage) -> bool {
        self.wildcard == other.wildcard && Arc::ptr_eq(&self.names, &other.names)
    }
}

/// What the client holds of one type.
#[derive(Debug)]
pub(super) enum Held {
    /// Name → version, as a reconnecting client reported it (`initial_resource_versions`).
    Reported(BTreeMap<String, String>),
    /// What `snapshot` had of the type that `coverage` covered, as last sent.
    Sent {
        snapshot: Arc<Snapshot>,
        coverage: Coverage,
    },
}

impl Held {
    fn version<'a>(&'a self, type_url: &str, name: &str) -> Option<&'a str> {
        match self {
            Held::Reported(versions) => versions.get(name).map(String::as_str),
            Held::Sent { snapshot, coverage } => coverage
                .covers(name)
                .then(|| snapshot.entry(type_url, name))
                .flatten()
                .map(|e| e.version.as_str()),
        }
    }
}

/// A response's content: encoded `resources` fields, and `removed_resources`.
#[derive(Debug, Default)]
pub(super) struct Update {
    pub parts: Vec<Bytes>,
    pub removed: Vec<String>,
}

/// What a client holding `held`, with `coverage` now, lacks of `snapshot`'s `type_url`.
pub(super) fn update(
    snapshot: &Snapshot,
    type_url: &str,
    coverage: &Coverage,
    held: &Held,
) -> Update {
    if let Held::Sent {
        snapshot: earlier,
        coverage: held_coverage,
    } = held
        && held_coverage.same(coverage)
        && let Some(update) = incremental(snapshot, earlier, type_url, coverage)
    {
        return update;
    }
    full(snapshot, type_url, coverage, held)
}

/// Compares every covered resource with what is held: a layer sent whole is its one
/// shared encoding.
fn full(snapshot: &Snapshot, type_url: &str, coverage: &Coverage, held: &Held) -> Update {
    let mut update = Update {
        parts: snapshot.encode_visible(
            type_url,
            |name, e| {
                coverage.covers(name) && held.version(type_url, name) != Some(e.version.as_str())
            },
            Layer::delta_encoded,
            |name, entry, parts| parts.delta(name, entry),
        ),
        removed: Vec::new(),
    };
    let gone = |name: &String| coverage.covers(name) && !snapshot.contains(type_url, name);
    update.removed = match held {
        Held::Reported(versions) => versions.keys().filter(|n| gone(n)).cloned().collect(),
        Held::Sent {
            snapshot: earlier,
            coverage: held_coverage,
        } => earlier
            .iter(type_url)
            .map(|(name, _)| name)
            .filter(|n| held_coverage.covers(n) && gone(n))
            .cloned()
            .collect(),
    };
    update
}

/// From the layers' differences, when both snapshots are built alike (as many shared
/// layers); `None` otherwise.
fn incremental(
    snapshot: &Snapshot,
    earlier: &Snapshot,
    type_url: &str,
    coverage: &Coverage,
) -> Option<Update> {
    let changes = snapshot.changes_since(earlier, type_url)?;
    let mut update = Update::default();
    let mut parts = Parts::default();
    for (name, e) in changes.changed.iter().filter(|(n, _)| coverage.covers(n)) {
        parts.delta(name, e);
    }
    update.parts = parts.finish();
    update.removed = changes
        .removed
        .into_iter()
        .filter(|n| coverage.covers(n))
        .collect();
    Some(update)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Layer;
    use crate::type_url;
    use envoy_types::pb::envoy::config::endpoint::v3::{
        ClusterLoadAssignment, LocalityLbEndpoints,
    };
    use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryResponse;
    use envoy_types::util::pack_any;
    use prost::Message;

    const T: &str = type_url::CLUSTER_LOAD_ASSIGNMENT;

    fn cla(n: &str, p: u32) -> envoy_types::pb::google::protobuf::Any {
        pack_any(ClusterLoadAssignment {
            cluster_name: n.into(),
            endpoints: vec![LocalityLbEndpoints {
                priority: p,
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    fn layer(entries: &[(&str, u32)]) -> Arc<Layer> {
        let mut l = Layer::new();
        for (n, p) in entries {
            l.insert(cla(n, *p)).unwrap();
        }
        Arc::new(l)
    }

    fn snapshot(layer: &Arc<Layer>, own: &[(&str, u32)]) -> Arc<Snapshot> {
        let mut s = Snapshot::new("v");
        s.add_layer(T, layer.clone());
        for (n, p) in own {
            s.insert(cla(n, *p)).unwrap();
        }
        Arc::new(s)
    }

    /// (name, priority) of the resources sent, and the removals.
    fn sent(u: &Update) -> (Vec<(String, u32)>, Vec<String>) {
        let r = DeltaDiscoveryResponse::decode(&u.parts.concat()[..]).expect("decodes");
        let mut got: Vec<(String, u32)> = r
            .resources
            .iter()
            .map(|w| {
                let c = ClusterLoadAssignment::decode(
                    w.resource.as_ref().expect("body").value.as_slice(),
                )
                .expect("cla");
                assert_eq!(w.name, c.cluster_name);
                (w.name.clone(), c.endpoints[0].priority)
            })
            .collect();
        got.sort();
        let mut removed = u.removed.clone();
        removed.sort();
        (got, removed)
    }

    fn names(v: &[&str]) -> Arc<Subscription> {
        Arc::new(Subscription::names(v.iter().copied()))
    }

    #[test]
    fn the_layer_path_and_the_full_comparison_agree() {
        let wildcard = Coverage {
            wildcard: true,
            names: names(&[]),
        };
        let l1 = layer(&[("a", 1), ("b", 1), ("c", 1)]);
        let l2 = layer(&[("a", 2), ("b", 1), ("d", 1)]);
        let s1 = snapshot(&l1, &[("z", 1), ("y", 1)]);
        let s2 = snapshot(&l2, &[("z", 2)]);
        // First push: everything, the layer as its shared encoding.
        let first = update(&s1, T, &wildcard, &Held::Reported(BTreeMap::new()));
        assert_eq!(first.parts[0], l1.delta_encoded());
        assert_eq!(sent(&first).0.len(), 5);
        let held = Held::Sent {
            snapshot: s1.clone(),
            coverage: wildcard.clone(),
        };
        let fast = update(&s2, T, &wildcard, &held);
        let expected = (
            vec![
                ("a".to_string(), 2),
                ("d".to_string(), 1),
                ("z".to_string(), 2),
            ],
            vec!["c".to_string(), "y".to_string()],
        );
        assert_eq!(sent(&fast), expected);
        assert_eq!(sent(&full(&s2, T, &wildcard, &held)), expected);
        // Named coverage: only what it names, sent or removed.
        let some = Coverage {
            wildcard: false,
            names: names(&["a", "c", "q"]),
        };
        let held = Held::Sent {
            snapshot: s1.clone(),
            coverage: some.clone(),
        };
        let expected = (vec![("a".to_string(), 2)], vec!["c".to_string()]);
        assert_eq!(sent(&update(&s2, T, &some, &held)), expected);
        assert_eq!(sent(&full(&s2, T, &some, &held)), expected);
        // What a reconnecting client reports is compared by version.
        let v = |s: &Snapshot, n: &str| s.entry(T, n).unwrap().version.clone();
        let reported = Held::Reported(
            [
                ("a".to_string(), v(&s2, "a")),
                ("gone".to_string(), "x".to_string()),
            ]
            .into(),
        );
        let (got, removed) = sent(&update(&s2, T, &wildcard, &reported));
        assert!(!got.iter().any(|(n, _)| n == "a"));
        assert_eq!(got.len(), 3);
        assert_eq!(removed, ["gone"]);
    }
}
