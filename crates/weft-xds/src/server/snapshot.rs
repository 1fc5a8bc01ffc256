//! A versioned, immutable set of resources per type: what the server serves. Each resource
//! gets a content version so delta streams send only what changed between snapshots and a
//! reconnecting delta client's `initial_resource_versions` can be honoured.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::Mutex;

use bytes::{Bytes, BytesMut};
use envoy_types::pb::google::protobuf::Any;

use crate::resource::{ResourceError, Subscription, content_version, resource_name};

/// One resource in a snapshot, kept encoded: that is how it is sent, and a decoded copy
/// beside the encoding doubled what a control plane held of every shared layer.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The resource as a `DiscoveryResponse.resources` field (an encoded `Any` after its
    /// field key and length), as state-of-the-world responses carry it; once its layer is
    /// sealed, a slice of the layer's one encoding, which responses send without a copy.
    framed: Bytes,
    /// Where the encoded `Any` starts in `framed`.
    payload_at: usize,
    /// Derived from the content (see [`content_version`]); the per-resource delta version.
    pub version: String,
}

impl Entry {
    fn new(body: &Any) -> Self {
        let len = prost::Message::encoded_len(body);
        let mut framed = BytesMut::with_capacity(embedded_len(RESOURCES_FIELD, len));
        prost::encoding::message::encode(RESOURCES_FIELD, body, &mut framed);
        Self {
            payload_at: framed.len() - len,
            framed: framed.freeze(),
            version: content_version(body),
        }
    }

    /// The encoded `Any`.
    fn payload(&self) -> &[u8] {
        &self.framed[self.payload_at..]
    }

    /// The resource, decoded: a copy, for inspection (debug endpoints, tests) rather than
    /// serving, which sends the encoding as it is.
    pub fn body(&self) -> Any {
        // The bytes are an encoding of an `Any` made above, which always decodes.
        <Any as prost::Message>::decode(self.payload()).unwrap_or_default()
    }
}

/// Resources at least this large (encoded) go out as slices of their layer's encoding;
/// smaller ones are copied together, so a response is a few large parts rather than
/// thousands of small ones.
const SHARED_PART: usize = 4096;

/// A response's resources being assembled: shared slices and one buffer for the rest, in
/// order.
#[derive(Default)]
pub(super) struct Parts {
    parts: Vec<Bytes>,
    rest: BytesMut,
}

impl Parts {
    fn flush(&mut self) {
        if !self.rest.is_empty() {
            self.parts.push(self.rest.split().freeze());
        }
    }

    /// A shared encoding, sent as it is.
    fn shared(&mut self, bytes: Bytes) {
        self.flush();
        self.parts.push(bytes);
    }

    /// One entry as a state-of-the-world resource.
    pub(super) fn sotw(&mut self, entry: &Entry) {
        if entry.framed.len() >= SHARED_PART {
            self.shared(entry.framed.clone());
        } else {
            self.rest.extend_from_slice(&entry.framed);
        }
    }

    /// One entry as a delta resource (with its name and version).
    pub(super) fn delta(&mut self, name: &str, entry: &Entry) {
        if entry.framed.len() >= SHARED_PART {
            delta_head(name, entry, &mut self.rest);
            self.shared(entry.framed.slice(entry.payload_at..));
            delta_tail(name, &mut self.rest);
        } else {
            encode_delta_resource(name, entry, &mut self.rest);
        }
    }

    pub(super) fn finish(mut self) -> Vec<Bytes> {
        self.flush();
        self.parts.retain(|p| !p.is_empty());
        self.parts
    }
}

/// Resources of one type that many snapshots can share (a control plane computes the
/// clusters of a namespace once and hands the same set to every proxy there), so a fleet
/// of per-proxy snapshots costs one copy of each shared set, not one per proxy — and,
/// encoded once for state-of-the-world responses, one encoding of it.
#[derive(Default)]
pub struct Layer {
    entries: BTreeMap<String, Entry>,
    /// Every entry as `DiscoveryResponse.resources` fields, in name order, when the entries
    /// are slices of it (a layer sealed whole).
    sotw: OnceLock<Bytes>,
    /// The same, built for responses when the entries are not one encoding (a layer open
    /// to inserts, or one that kept an earlier layer's entries), while responses hold it.
    sotw_built: Mutex<Weak<Vec<u8>>>,
    /// Every entry as `DeltaDiscoveryResponse.resources` fields, while any response still
    /// holds it: a delta client is sent a whole layer when it (re)connects, so the
    /// encoding is shared by the streams of a sync and gone after it, instead of doubling
    /// what the layer holds for good.
    delta: Mutex<Weak<Vec<u8>>>,
    /// What changed since an earlier layer, by that layer: every stream that last sent the
    /// same earlier layer asks the same question, so it is answered once.
    changes: Mutex<Vec<Changes>>,
}

/// The encoding `memo` points to while anything holds it, else a new one from `build`
/// (which `memo` then points to): shared by the responses of one sync, and gone after.
fn while_held(memo: &Mutex<Weak<Vec<u8>>>, build: impl FnOnce() -> BytesMut) -> Bytes {
    let mut held = memo.lock();
    let encoding = held.upgrade().unwrap_or_else(|| {
        let encoding = Arc::new(Vec::from(exact(build())));
        *held = Arc::downgrade(&encoding);
        encoding
    });
    Bytes::from_owner(SharedEncoding(encoding))
}

/// `out`'s bytes without its spare room: every slice of a buffer keeps all of it alive,
/// and one that grew by doubling can be half empty.
fn exact(out: BytesMut) -> Bytes {
    if out.capacity() > out.len() {
        Bytes::copy_from_slice(&out)
    } else {
        out.freeze()
    }
}

/// A layer's built encoding as the owner of the `Bytes` responses send.
struct SharedEncoding(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedEncoding {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// One type's difference between two snapshots (see [`Snapshot::changes_since`]).
pub(super) struct TypeChanges<'a> {
    /// Names whose entry is new or different, with the entry, in name order.
    pub changed: Vec<(String, &'a Entry)>,
    /// Names the earlier snapshot had and this one lacks, in name order.
    pub removed: Vec<String>,
}

/// What changed since the layer the weak reference points to.
type Changes = (Weak<Layer>, Arc<LayerDiff>);

/// Names new or different in a layer, and names gone from it, compared with an earlier one.
#[derive(Debug, Default, PartialEq)]
pub(super) struct LayerDiff {
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

/// How many earlier layers a layer remembers its changes from (streams a push or two
/// behind ask about one of the last few).
const CHANGES_KEPT: usize = 4;

impl Clone for Layer {
    fn clone(&self) -> Self {
        Self {
            entries: self.entries.clone(),
            sotw: self.sotw.clone(),
            sotw_built: Mutex::new(self.sotw_built.lock().clone()),
            delta: Mutex::new(self.delta.lock().clone()),
            changes: Mutex::default(),
        }
    }
}

impl PartialEq for Layer {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl std::fmt::Debug for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layer")
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

/// `DiscoveryResponse.resources` is field 2.
const RESOURCES_FIELD: u32 = 2;

/// A length-delimited field `tag` holding `bytes` as they are (an encoded message).
fn encode_embedded(tag: u32, bytes: &[u8], out: &mut BytesMut) {
    use prost::encoding::{WireType, encode_key, encode_varint};
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn encode_resource(entry: &Entry, out: &mut BytesMut) {
    out.extend_from_slice(&entry.framed);
}

/// A `DeltaDiscoveryResponse.resources` field (also field 2): a discovery `Resource` with
/// the resource's name (field 3), version (field 1) and the resource itself (field 2),
/// written around the entry's encoding rather than by decoding it.
pub(super) fn encode_delta_resource(name: &str, entry: &Entry, out: &mut BytesMut) {
    delta_head(name, entry, out);
    out.extend_from_slice(entry.payload());
    delta_tail(name, out);
}

const DELTA_VERSION: u32 = 1;
const DELTA_RESOURCE: u32 = 2;
const DELTA_NAME: u32 = 3;

/// A delta `Resource` field up to the encoded `Any`: field by field in number order, empty
/// strings left out, as prost writes them.
fn delta_head(name: &str, entry: &Entry, out: &mut BytesMut) {
    use prost::encoding::{WireType, encode_key, encode_varint};
    let any = entry.payload().len();
    let mut len = embedded_len(DELTA_RESOURCE, any);
    if !entry.version.is_empty() {
        len += embedded_len(DELTA_VERSION, entry.version.len());
    }
    if !name.is_empty() {
        len += embedded_len(DELTA_NAME, name.len());
    }
    encode_key(RESOURCES_FIELD, WireType::LengthDelimited, out);
    encode_varint(len as u64, out);
    if !entry.version.is_empty() {
        encode_embedded(DELTA_VERSION, entry.version.as_bytes(), out);
    }
    encode_key(DELTA_RESOURCE, WireType::LengthDelimited, out);
    encode_varint(any as u64, out);
}

/// What follows the `Any` in a delta `Resource` field.
fn delta_tail(name: &str, out: &mut BytesMut) {
    if !name.is_empty() {
        encode_embedded(DELTA_NAME, name.as_bytes(), out);
    }
}

fn embedded_len(tag: u32, len: usize) -> usize {
    prost::encoding::key_len(tag) + prost::encoding::encoded_len_varint(len as u64) + len
}

impl Layer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a resource, named by its message's name field.
    pub fn insert(&mut self, body: Any) -> Result<(), ResourceError> {
        let name = resource_name(&body)?;
        self.insert_named(name, body);
        Ok(())
    }

    /// Adds (or replaces) a resource under an explicit name.
    pub fn insert_named(&mut self, name: impl Into<String>, body: Any) {
        self.entries.insert(name.into(), Entry::new(&body));
        self.sotw = OnceLock::new();
        self.sotw_built = Mutex::default();
        self.delta = Mutex::default();
        self.changes.get_mut().clear();
    }

    /// A complete layer of `entries` (a later one replaces an earlier of the same name),
    /// encoded for state-of-the-world responses at once, its entries slices of that one
    /// encoding: the layer holds each resource once. A later insert makes a separate
    /// encoding again.
    pub fn sealed(entries: impl IntoIterator<Item = (String, Any)>) -> Self {
        Self::sealed_over(entries, None)
    }

    /// [`Layer::sealed`], keeping the entries of `earlier` (the layer this one replaces)
    /// whose encoding is unchanged: an endpoint change re-encodes the few assignments it
    /// touched, not the thousands beside them, and holds the rest once across both layers.
    pub fn sealed_over(
        entries: impl IntoIterator<Item = (String, Any)>,
        earlier: Option<&Layer>,
    ) -> Self {
        let sorted: BTreeMap<String, Any> = entries.into_iter().collect();
        let lens: Vec<usize> = sorted.values().map(prost::Message::encoded_len).collect();
        // A fresh layer is sized exactly; one that keeps entries holds only the changed
        // ones, whose size is known once they are compared.
        let mut out = match earlier {
            None => BytesMut::with_capacity(
                lens.iter()
                    .map(|len| embedded_len(RESOURCES_FIELD, *len))
                    .sum(),
            ),
            Some(_) => BytesMut::new(),
        };
        // Per name: the earlier entry kept, or where its encoding is in `out`.
        let mut spans = Vec::with_capacity(sorted.len());
        for ((name, body), len) in sorted.into_iter().zip(lens) {
            let start = out.len();
            prost::encoding::message::encode(RESOURCES_FIELD, &body, &mut out);
            let kept = earlier
                .and_then(|l| l.entries.get(&name))
                .filter(|e| e.framed[..] == out[start..]);
            if let Some(e) = kept {
                out.truncate(start);
                spans.push((name, Err(e.clone())));
                continue;
            }
            let payload_at = out.len() - start - len;
            spans.push((
                name,
                Ok((start..out.len(), payload_at, content_version(&body))),
            ));
        }
        let whole = spans.iter().all(|(_, span)| span.is_ok());
        let all = exact(out);
        let entries = spans
            .into_iter()
            .map(|(name, span)| {
                let entry = match span {
                    Ok((span, payload_at, version)) => Entry {
                        framed: all.slice(span),
                        payload_at,
                        version,
                    },
                    Err(kept) => kept,
                };
                (name, entry)
            })
            .collect();
        Self {
            entries,
            sotw: if whole {
                OnceLock::from(all)
            } else {
                OnceLock::new()
            },
            ..Self::default()
        }
    }

    /// The whole layer as `DeltaDiscoveryResponse.resources` fields, encoded once for all
    /// the responses that carry all of it at about the same time.
    pub(super) fn delta_encoded(&self) -> Bytes {
        while_held(&self.delta, || {
            let mut out = BytesMut::new();
            for (name, entry) in &self.entries {
                encode_delta_resource(name, entry, &mut out);
            }
            out
        })
    }

    /// Names whose entry is new or different here compared with `earlier`, and names
    /// `earlier` has that this layer lacks.
    pub(super) fn changed_since(&self, earlier: &Arc<Layer>) -> Arc<LayerDiff> {
        let mut memo = self.changes.lock();
        memo.retain(|(w, _)| w.strong_count() > 0);
        if let Some((_, names)) = memo
            .iter()
            .find(|(w, _)| std::ptr::eq(w.as_ptr(), Arc::as_ptr(earlier)))
        {
            return names.clone();
        }
        let names = Arc::new(LayerDiff {
            changed: self
                .entries
                .iter()
                .filter(|(name, e)| {
                    earlier.entries.get(*name).map(|o| &o.version) != Some(&e.version)
                })
                .map(|(name, _)| name.clone())
                .collect(),
            removed: earlier
                .entries
                .keys()
                .filter(|name| !self.entries.contains_key(*name))
                .cloned()
                .collect(),
        });
        if memo.len() >= CHANGES_KEPT {
            memo.remove(0);
        }
        memo.push((Arc::downgrade(earlier), names.clone()));
        names
    }

    /// The whole layer as `DiscoveryResponse.resources` fields, encoded once and shared by
    /// every response that carries all of it.
    fn sotw_encoded(&self) -> Bytes {
        if let Some(all) = self.sotw.get() {
            return all.clone();
        }
        while_held(&self.sotw_built, || {
            let mut out =
                BytesMut::with_capacity(self.entries.values().map(|e| e.framed.len()).sum());
            for entry in self.entries.values() {
                encode_resource(entry, &mut out);
            }
            out
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.entries.iter()
    }
}

/// One type's resources in a snapshot: shared layers plus the snapshot's own entries.
/// Names are expected to be unique across them; where they are not, the snapshot's own
/// entry wins, then the later layer.
#[derive(Clone, Debug, Default, PartialEq)]
struct TypeSet {
    shared: Vec<Arc<Layer>>,
    own: Layer,
}

impl TypeSet {
    fn get(&self, name: &str) -> Option<&Entry> {
        self.own
            .entries
            .get(name)
            .or_else(|| self.shared.iter().rev().find_map(|l| l.entries.get(name)))
    }

    /// Every entry once, in no particular order across layers.
    fn iter(&self) -> impl Iterator<Item = (&String, &Entry)> {
        let own = &self.own.entries;
        let shared = self.shared.iter().enumerate().flat_map(move |(i, layer)| {
            let later = &self.shared[i + 1..];
            layer.entries.iter().filter(move |(name, _)| {
                !own.contains_key(*name) && !later.iter().any(|l| l.entries.contains_key(*name))
            })
        });
        own.iter().chain(shared)
    }
}

/// Per type URL, name → resource, plus the version state-of-the-world responses of this
/// snapshot carry: the snapshot's, or a type's own when set, so a server that bumps only
/// the types that changed (an endpoint change is EDS alone) pushes only those.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    version: String,
    type_versions: BTreeMap<String, String>,
    types: BTreeMap<String, TypeSet>,
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
        self.types
            .entry(body.type_url.clone())
            .or_default()
            .own
            .insert_named(name, body);
    }

    /// Adds a set of `type_url` resources shared with other snapshots.
    pub fn add_layer(&mut self, type_url: impl Into<String>, layer: Arc<Layer>) {
        self.types
            .entry(type_url.into())
            .or_default()
            .shared
            .push(layer);
    }

    /// Builder form of [`Snapshot::insert`].
    pub fn with(mut self, body: Any) -> Result<Self, ResourceError> {
        self.insert(body)?;
        Ok(self)
    }

    /// Removes one of the snapshot's own resources; returns whether it was there.
    pub fn remove(&mut self, type_url: &str, name: &str) -> bool {
        self.types
            .get_mut(type_url)
            .is_some_and(|t| t.own.entries.remove(name).is_some())
    }

    /// The resources of one type, each name once.
    pub fn iter(&self, type_url: &str) -> impl Iterator<Item = (&String, &Entry)> {
        self.types.get(type_url).into_iter().flat_map(TypeSet::iter)
    }

    /// The resources of one type that `subscription` covers, encoded as the `resources`
    /// fields of a state-of-the-world `DiscoveryResponse` (the same set [`Snapshot::iter`]
    /// yields). A shared layer the response carries whole is its one shared encoding, a
    /// large resource a slice of its layer's; the rest is copied into one buffer for this
    /// response.
    pub fn sotw_resources(&self, type_url: &str, subscription: &Subscription) -> Vec<Bytes> {
        self.encode_visible(
            type_url,
            |name, _| subscription.includes(name),
            Layer::sotw_encoded,
            |_, entry, parts| parts.sotw(entry),
        )
    }

    /// The visible resources of one type (each name once, as [`Snapshot::iter`] sees them)
    /// that `sent` picks, encoded: a shared layer all of whose entries are picked as its
    /// one shared encoding (`whole`), the rest one by one (`one`).
    pub(super) fn encode_visible(
        &self,
        type_url: &str,
        sent: impl Fn(&str, &Entry) -> bool,
        whole: fn(&Layer) -> Bytes,
        one: fn(&str, &Entry, &mut Parts),
    ) -> Vec<Bytes> {
        let Some(set) = self.types.get(type_url) else {
            return Vec::new();
        };
        let mut parts = Parts::default();
        for (i, layer) in set.shared.iter().enumerate() {
            let later = &set.shared[i + 1..];
            let picked = |name: &str, e: &Entry| {
                !set.own.entries.contains_key(name)
                    && !later.iter().any(|l| l.entries.contains_key(name))
                    && sent(name, e)
            };
            if !layer.is_empty() && layer.entries.iter().all(|(n, e)| picked(n, e)) {
                parts.shared(whole(layer));
            } else {
                for (name, e) in layer.entries.iter().filter(|(n, e)| picked(n, e)) {
                    one(name, e, &mut parts);
                }
            }
        }
        for (name, e) in &set.own.entries {
            if sent(name, e) {
                one(name, e, &mut parts);
            }
        }
        parts.finish()
    }

    /// The resources of one type that `subscription` covers and that are new or different
    /// compared with `earlier`, encoded as [`Snapshot::sotw_resources`] does: what a
    /// state-of-the-world response of a type whose responses need not be complete (EDS,
    /// RDS) must carry for a client that holds `earlier`. `None` when the two are not
    /// built alike (a different number of shared layers), so only a full set will do.
    pub fn sotw_changes(
        &self,
        earlier: &Snapshot,
        type_url: &str,
        subscription: &Subscription,
    ) -> Option<Vec<Bytes>> {
        let changes = self.changes_since(earlier, type_url)?;
        let mut parts = Parts::default();
        for (_, e) in changes
            .changed
            .iter()
            .filter(|(n, _)| subscription.includes(n))
        {
            parts.sotw(e);
        }
        Some(parts.finish())
    }

    /// What differs in one type from `earlier`, found from the shared layers' memoised
    /// differences and the own entries: `None` when the two are not built alike (a
    /// different number of shared layers).
    pub(super) fn changes_since(
        &self,
        earlier: &Snapshot,
        type_url: &str,
    ) -> Option<TypeChanges<'_>> {
        let empty = TypeSet::default();
        let new_set = self.types.get(type_url);
        let new = new_set.unwrap_or(&empty);
        let old = earlier.types.get(type_url).unwrap_or(&empty);
        if new.shared.len() != old.shared.len() {
            return None;
        }
        let mut changed: BTreeSet<String> = BTreeSet::new();
        let mut removed: BTreeSet<String> = BTreeSet::new();
        for (n, o) in new.shared.iter().zip(&old.shared) {
            if !Arc::ptr_eq(n, o) {
                let diff = n.changed_since(o);
                changed.extend(diff.changed.iter().cloned());
                removed.extend(diff.removed.iter().cloned());
            }
        }
        for (name, e) in &new.own.entries {
            if old.own.entries.get(name).map(|o| &o.version) != Some(&e.version) {
                changed.insert(name.clone());
            }
        }
        // An own entry gone may uncover a shared one of the same name, or be gone for good.
        for name in old.own.entries.keys() {
            if !new.own.entries.contains_key(name) {
                changed.insert(name.clone());
                removed.insert(name.clone());
            }
        }
        Some(TypeChanges {
            changed: changed
                .into_iter()
                .filter_map(|name| {
                    let e = new_set?.get(&name)?;
                    (old.get(&name).map(|o| &o.version) != Some(&e.version)).then_some((name, e))
                })
                .collect(),
            removed: removed
                .into_iter()
                .filter(|n| new.get(n).is_none() && old.get(n).is_some())
                .collect(),
        })
    }

    /// The snapshot's own resources of one type (not those of its shared layers).
    pub fn own(&self, type_url: &str) -> impl Iterator<Item = (&String, &Entry)> {
        self.types
            .get(type_url)
            .into_iter()
            .flat_map(|t| t.own.entries.iter())
    }

    /// How many resources of one type the snapshot holds.
    pub fn count(&self, type_url: &str) -> usize {
        self.iter(type_url).count()
    }

    pub fn contains(&self, type_url: &str, name: &str) -> bool {
        self.entry(type_url, name).is_some()
    }

    pub fn entry(&self, type_url: &str, name: &str) -> Option<&Entry> {
        self.types.get(type_url)?.get(name)
    }

    /// One resource, decoded (see [`Entry::body`]).
    pub fn get(&self, type_url: &str, name: &str) -> Option<Any> {
        self.entry(type_url, name).map(Entry::body)
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
        assert_eq!(s.get(type_url::CLUSTER, "a"), Some(a.clone()));
        let v_a = s.entry(type_url::CLUSTER, "a").unwrap().version.clone();
        assert_eq!(v_a, content_version(&a));
        s.insert_named("alias", a.clone());
        assert_eq!(s.count(type_url::CLUSTER), 2);
        assert!(s.remove(type_url::CLUSTER, "alias"));
        assert!(!s.remove(type_url::CLUSTER, "alias"));
        assert_eq!(s.type_urls().collect::<Vec<_>>(), [type_url::CLUSTER]);
        assert_eq!(s.type_version(type_url::CLUSTER), "v1");
        s.set_type_version(type_url::CLUSTER, "c7");
        assert_eq!(s.type_version(type_url::CLUSTER), "c7");
        assert_eq!(s.type_version(type_url::LISTENER), "v1");
    }

    /// Decodes `sotw_resources` back to (name, body) pairs, sorted by name.
    fn decoded(parts: &[Bytes]) -> Vec<(String, Any)> {
        use envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse;
        use prost::Message;
        let r = DiscoveryResponse::decode(&parts.concat()[..]).expect("decodes");
        let mut out: Vec<(String, Any)> = r
            .resources
            .into_iter()
            .map(|a| (resource_name(&a).expect("named"), a))
            .collect();
        out.sort_by(|x, y| x.0.cmp(&y.0));
        out
    }

    /// A cluster called `n`; `t` varies its content.
    fn named(n: &str, t: u32) -> Any {
        pack_any(Cluster {
            name: n.into(),
            per_connection_buffer_limit_bytes: Some(
                envoy_types::pb::google::protobuf::UInt32Value { value: t },
            ),
            ..Default::default()
        })
    }

    #[test]
    fn sotw_encoding_matches_the_entries_and_shares_whole_layers() {
        let mut whole = Layer::new();
        whole.insert(named("a", 1)).unwrap();
        whole.insert(named("b", 1)).unwrap();
        let whole = Arc::new(whole);
        let mut shadowed = Layer::new();
        shadowed.insert(named("c", 1)).unwrap();
        shadowed.insert(named("d", 1)).unwrap();
        let shadowed = Arc::new(shadowed);
        let mut s = Snapshot::new("v1");
        s.add_layer(type_url::CLUSTER, whole.clone());
        s.add_layer(type_url::CLUSTER, shadowed.clone());
        s.insert(named("d", 2)).unwrap();
        s.insert(named("e", 2)).unwrap();
        let expected = |sub: &Subscription| {
            let mut v: Vec<(String, Any)> = s
                .iter(type_url::CLUSTER)
                .filter(|(n, _)| sub.includes(n))
                .map(|(n, e)| (n.clone(), e.body()))
                .collect();
            v.sort_by(|x, y| x.0.cmp(&y.0));
            v
        };
        for sub in [
            Subscription::Wildcard,
            Subscription::names(["a", "b", "d"]),
            Subscription::names(["b", "c", "e", "zz"]),
            Subscription::names(Vec::<String>::new()),
        ] {
            let parts = s.sotw_resources(type_url::CLUSTER, &sub);
            assert_eq!(decoded(&parts), expected(&sub), "{sub:?}");
        }
        // A layer sent whole is its one shared encoding, not a copy.
        let parts = s.sotw_resources(type_url::CLUSTER, &Subscription::Wildcard);
        assert_eq!(parts[0].as_ptr(), whole.sotw_encoded().as_ptr());
        assert!(
            s.sotw_resources(type_url::LISTENER, &Subscription::Wildcard)
                .is_empty()
        );
    }

    #[test]
    fn a_layer_sealed_over_its_predecessor_keeps_the_unchanged_entries() {
        let layer = |b: u32| {
            [named("a", 1), named("b", b), named("c", 3)]
                .into_iter()
                .map(|b| (resource_name(&b).unwrap(), b))
        };
        let before = Layer::sealed(layer(2));
        let after = Layer::sealed_over(layer(20), Some(&before));
        // The same layer as one sealed afresh, in content and in what responses carry ...
        let fresh = Layer::sealed(layer(20));
        assert_eq!(after, fresh);
        assert_eq!(after.sotw_encoded(), fresh.sotw_encoded());
        assert_eq!(after.delta_encoded(), fresh.delta_encoded());
        // ... holding the unchanged entries as the earlier layer's bytes, the changed one
        // anew.
        let shares = |name: &str| {
            after.entries[name].framed.as_ptr() == before.entries[name].framed.as_ptr()
        };
        assert!(shares("a") && shares("c") && !shares("b"));
        // Its whole encoding, built for responses, is not kept once they are sent.
        assert!(after.sotw.get().is_none());
        assert_eq!(after.sotw_built.lock().strong_count(), 0);
        // Nothing kept: the same as sealing afresh, entries slices of one encoding.
        let unrelated = Layer::sealed_over(layer(2), Some(&Layer::new()));
        assert!(unrelated.sotw.get().is_some());
        assert_eq!(unrelated, before);
    }

    #[test]
    fn a_layers_delta_encoding_is_shared_while_held_and_then_let_go() {
        let layer = Layer::sealed(
            [named("a", 1), named("b", 2)]
                .into_iter()
                .map(|b| (resource_name(&b).unwrap(), b)),
        );
        let first = layer.delta_encoded();
        let second = layer.delta_encoded();
        // Responses of one sync share one encoding ...
        assert_eq!(first.as_ptr(), second.as_ptr());
        let mut expected = BytesMut::new();
        for (name, entry) in layer.iter() {
            encode_delta_resource(name, entry, &mut expected);
        }
        assert_eq!(first, expected);
        // ... which the layer does not keep once they are sent.
        drop((first, second));
        assert_eq!(layer.delta.lock().strong_count(), 0);
        assert_eq!(layer.delta_encoded(), expected);
    }

    #[test]
    fn a_sealed_layer_holds_its_entries_as_slices_of_its_one_encoding() {
        use envoy_types::pb::envoy::service::discovery::v3::Resource as WireResource;
        let bodies = [named("b", 2), named("a", 1), named("c", 300)];
        let mut open = Layer::new();
        for b in &bodies {
            open.insert(b.clone()).unwrap();
        }
        let sealed = Layer::sealed(
            bodies
                .iter()
                .map(|b| (resource_name(b).unwrap(), b.clone())),
        );
        assert_eq!(sealed, open);
        assert_eq!(sealed.sotw_encoded(), open.sotw_encoded());
        let all = sealed.sotw_encoded();
        let range = all.as_ptr() as usize..all.as_ptr() as usize + all.len();
        for ((name, entry), body) in sealed.iter().zip([&bodies[1], &bodies[0], &bodies[2]]) {
            assert_eq!(entry.body(), *body, "{name}");
            assert!(range.contains(&(entry.framed.as_ptr() as usize)), "{name}");
            // The delta form written around the encoding is prost's own.
            let mut ours = BytesMut::new();
            encode_delta_resource(name, entry, &mut ours);
            let mut theirs = BytesMut::new();
            let wire = WireResource {
                name: name.clone(),
                version: entry.version.clone(),
                resource: Some(body.clone()),
                ..Default::default()
            };
            prost::encoding::message::encode(RESOURCES_FIELD, &wire, &mut theirs);
            assert_eq!(ours, theirs, "{name}");
        }
        let mut unnamed = BytesMut::new();
        let mut entry = Entry::new(&Any::default());
        entry.version.clear();
        encode_delta_resource("", &entry, &mut unnamed);
        let mut theirs = BytesMut::new();
        let wire = WireResource {
            resource: Some(Any::default()),
            ..Default::default()
        };
        prost::encoding::message::encode(RESOURCES_FIELD, &wire, &mut theirs);
        assert_eq!(unnamed, theirs);
    }

    #[test]
    fn large_resources_go_out_as_slices_of_their_layer() {
        use envoy_types::pb::envoy::service::discovery::v3::{
            DeltaDiscoveryResponse, Resource as WireResource,
        };
        use prost::Message;
        // One resource above the sharing threshold, two below.
        let big = |t: u32| {
            pack_any(Cluster {
                name: "big".into(),
                alt_stat_name: "x".repeat(SHARED_PART + t as usize),
                ..Default::default()
            })
        };
        let layer = |t: u32| {
            Arc::new(Layer::sealed(
                [big(t), named("a", t), named("c", t)]
                    .into_iter()
                    .map(|b| (resource_name(&b).unwrap(), b)),
            ))
        };
        let (before, after) = (layer(1), layer(2));
        let snapshot = |l: &Arc<Layer>| {
            let mut s = Snapshot::new("v");
            s.add_layer(type_url::CLUSTER, l.clone());
            s
        };
        let (earlier, now) = (snapshot(&before), snapshot(&after));
        let parts = now
            .sotw_changes(&earlier, type_url::CLUSTER, &Subscription::Wildcard)
            .expect("alike");
        assert_eq!(
            decoded(&parts),
            vec![
                ("a".to_string(), named("a", 2)),
                ("big".to_string(), big(2)),
                ("c".to_string(), named("c", 2)),
            ]
        );
        let whole = after.sotw_encoded();
        let inside = |p: &Bytes| {
            (p.as_ptr() as usize)
                .checked_sub(whole.as_ptr() as usize)
                .is_some_and(|at| at + p.len() <= whole.len())
        };
        assert_eq!(parts.len(), 3, "a copied, big shared, c copied");
        assert!(inside(&parts[1]) && !inside(&parts[0]) && !inside(&parts[2]));
        // The delta form of the same: the big resource's `Any` is a slice too.
        let mut delta = Parts::default();
        for (name, entry) in after.iter() {
            delta.delta(name, entry);
        }
        let delta = delta.finish();
        assert!(delta.iter().any(|p| p.len() > SHARED_PART && inside(p)));
        let r = DeltaDiscoveryResponse::decode(&delta.concat()[..]).expect("decodes");
        let expected: Vec<WireResource> = after
            .iter()
            .map(|(name, e)| WireResource {
                name: name.clone(),
                version: e.version.clone(),
                resource: Some(e.body()),
                ..Default::default()
            })
            .collect();
        assert_eq!(r.resources, expected);
    }

    #[test]
    fn changes_since_an_earlier_snapshot_are_computed_once_per_layer_pair() {
        let cla = |n: &str, p: u32| {
            use envoy_types::pb::envoy::config::endpoint::v3::{
                ClusterLoadAssignment, LocalityLbEndpoints,
            };
            pack_any(ClusterLoadAssignment {
                cluster_name: n.into(),
                endpoints: vec![LocalityLbEndpoints {
                    priority: p,
                    ..Default::default()
                }],
                ..Default::default()
            })
        };
        let t = type_url::CLUSTER_LOAD_ASSIGNMENT;
        let layer = |a: u32, b: u32| {
            let mut l = Layer::new();
            l.insert(cla("a", a)).unwrap();
            l.insert(cla("b", b)).unwrap();
            l.insert(cla("s", 1)).unwrap();
            Arc::new(l)
        };
        let (l1, l2) = (layer(1, 1), layer(2, 1));
        let mut earlier = Snapshot::new("1");
        earlier.add_layer(t, l1.clone());
        earlier.insert(cla("z", 1)).unwrap();
        earlier.insert(cla("s", 5)).unwrap();
        let mut now = Snapshot::new("2");
        now.add_layer(t, l2.clone());
        now.insert(cla("z", 2)).unwrap();
        now.insert(cla("y", 1)).unwrap();
        let sent = |sub: &Subscription| {
            let parts = now.sotw_changes(&earlier, t, sub).expect("alike");
            decoded(&parts)
                .into_iter()
                .map(|(n, _)| n)
                .collect::<Vec<_>>()
        };
        // a changed in the layer, z changed and y is new among the own entries, and s
        // is uncovered (its own entry is gone, the layer's differs); b is as it was.
        assert_eq!(sent(&Subscription::Wildcard), ["a", "s", "y", "z"]);
        assert_eq!(sent(&Subscription::names(["b", "z"])), ["z"]);
        assert!(sent(&Subscription::names(["b"])).is_empty());
        let first = l2.changed_since(&l1);
        assert!(Arc::ptr_eq(&first, &l2.changed_since(&l1)));
        assert_eq!(first.changed, ["a"]);
        assert!(first.removed.is_empty());
        assert_eq!(l1.changed_since(&Arc::new(Layer::new())).changed.len(), 3);
        let mut fewer = Layer::new();
        fewer.insert(cla("a", 2)).unwrap();
        assert_eq!(Arc::new(fewer).changed_since(&l2).removed, ["b", "s"]);
        // Built unlike (another layer count): only a full set will do.
        let mut other = Snapshot::new("3");
        other.insert(cla("a", 1)).unwrap();
        assert!(
            other
                .sotw_changes(&earlier, t, &Subscription::Wildcard)
                .is_none()
        );
    }

    #[test]
    fn shared_layers_are_seen_once_with_own_entries_winning() {
        let mut shared = Layer::new();
        shared.insert(named("a", 1)).unwrap();
        shared.insert(named("b", 1)).unwrap();
        let shared = Arc::new(shared);
        let mut later = Layer::new();
        later.insert(named("b", 2)).unwrap();
        let mut s = Snapshot::new("v1");
        s.add_layer(type_url::CLUSTER, shared.clone());
        s.add_layer(type_url::CLUSTER, Arc::new(later));
        s.insert(named("c", 3)).unwrap();
        s.insert(named("a", 4)).unwrap();
        let mut seen: Vec<(String, Any)> = s
            .iter(type_url::CLUSTER)
            .map(|(n, e)| (n.clone(), e.body()))
            .collect();
        seen.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(
            seen,
            [
                ("a".to_string(), named("a", 4)),
                ("b".to_string(), named("b", 2)),
                ("c".to_string(), named("c", 3)),
            ]
        );
        assert_eq!(s.get(type_url::CLUSTER, "b"), Some(named("b", 2)));
        assert!(s.contains(type_url::CLUSTER, "a") && !s.contains(type_url::CLUSTER, "z"));
        // The shared layer itself is untouched and still shared.
        assert_eq!(Arc::strong_count(&shared), 2);
        assert_eq!(shared.len(), 2);
    }
}
