//! Pushing: the control plane's state (served configuration, registry, connected
//! proxies) and how a change reaches proxies. Changes are debounced (a quiet period,
//! bounded by a maximum delay), every proxy's resources are recomputed from one
//! consistent view, and a proxy is sent only the types whose content changed for it — an
//! endpoint change goes out as EDS alone.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::Node;
use parking_lot::Mutex;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use weft_xds::server::{Layer, Snapshot, SnapshotReceiver, SnapshotSource};
use weft_xds::type_url;

use crate::metrics::Metrics;
use crate::node::Proxy;
use crate::registry::{PodInfo, Registry, Workload, split_pods};
use crate::translate::{self, Generated, GroupKey, MeshSettings, MeshView};

/// The four types, in the order snapshots are assembled.
const TYPES: [&str; 4] = [
    type_url::LISTENER,
    type_url::ROUTE_CONFIGURATION,
    type_url::CLUSTER,
    type_url::CLUSTER_LOAD_ASSIGNMENT,
];

/// A generated set split by type, in [`TYPES`] order.
fn by_type(g: &Generated) -> [&Vec<(String, envoy_types::pb::google::protobuf::Any)>; 4] {
    [&g.listeners, &g.routes, &g.clusters, &g.endpoints]
}

/// What every proxy of one [`GroupKey`] shares within one push: per type, one [`Layer`]
/// all their snapshots point to, with its content digest.
struct GroupOut {
    layers: [(Arc<Layer>, u64); 4],
    /// A proxy of the group, to recompute its endpoints from.
    proxy: Proxy,
    /// What its resources were computed from (`translate::fingerprint`); `None` when that
    /// is not tracked, and any change translates the group again.
    inputs: Option<translate::Fingerprint>,
    /// How the last push arrived at these layers.
    made: Made,
}

/// How a push arrived at a group's layers, cheapest last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Made {
    /// Everything translated.
    Translated,
    /// Listeners and routes translated, clusters kept; endpoints as below.
    Listeners,
    /// Listeners, routes and clusters kept, endpoints recomputed.
    Endpoints,
    /// Everything kept.
    Kept,
}

impl GroupOut {
    /// Groups whose resources of a type are equal (every namespace sees the same endpoints,
    /// typically) get the same layer from `seen`, so it is held and encoded once; a layer
    /// equal to one of the previous view (`earlier`) is that one, so what proxies and
    /// streams still hold of it is not a second copy, and streams see it unchanged.
    fn new(
        proxy: &Proxy,
        generated: Generated,
        inputs: Option<translate::Fingerprint>,
        seen: &mut HashMap<u64, Arc<Layer>>,
        earlier: &HashMap<u64, Arc<Layer>>,
    ) -> Self {
        let digests = by_type(&generated).map(|entries| digest(entries));
        let Generated {
            listeners,
            routes,
            clusters,
            endpoints,
        } = generated;
        let mut i = 0;
        let layers = [listeners, routes, clusters, endpoints].map(|entries| {
            let d = digests[i];
            i += 1;
            (shared_layer(d, entries, None, seen, earlier), d)
        });
        Self {
            layers,
            proxy: proxy.clone(),
            inputs,
            made: Made::Translated,
        }
    }

    /// This group after a change that left its clusters' inputs alone: its clusters stand,
    /// and so do its listeners and routes unless `listeners` replaces them (with the
    /// fingerprint they were translated under), and its endpoints unless `new_endpoints`
    /// (the registry's changed), which recomputes them from `view`.
    fn refreshed(
        &self,
        view: &MeshView,
        listeners: Option<(Generated, translate::Fingerprint)>,
        new_endpoints: bool,
        seen: &mut HashMap<u64, Arc<Layer>>,
        earlier: &HashMap<u64, Arc<Layer>>,
    ) -> Self {
        let mut layers = self.layers.clone();
        let mut inputs = self.inputs;
        let mut made = Made::Kept;
        if let Some((generated, fingerprint)) = listeners {
            let Generated {
                listeners, routes, ..
            } = generated;
            for (i, entries) in [(0, listeners), (1, routes)] {
                let d = digest(&entries);
                let previous = Some(&*self.layers[i].0);
                layers[i] = (shared_layer(d, entries, previous, seen, earlier), d);
            }
            inputs = Some(fingerprint);
            made = Made::Listeners;
        }
        for (layer, d) in &layers[..3] {
            seen.entry(*d).or_insert_with(|| layer.clone());
        }
        if new_endpoints {
            let endpoints = translate::shared_endpoints(&self.proxy, view);
            let d = digest(&endpoints);
            let previous = Some(&*self.layers[3].0);
            layers[3] = (shared_layer(d, endpoints, previous, seen, earlier), d);
            if made == Made::Kept {
                made = Made::Endpoints;
            }
        } else {
            let (layer, d) = &layers[3];
            seen.entry(*d).or_insert_with(|| layer.clone());
        }
        Self {
            layers,
            proxy: self.proxy.clone(),
            inputs,
            made,
        }
    }

    /// The group's resources, by type in name order.
    fn generated(&self) -> Generated {
        let [l, r, c, e] = self.layers.each_ref().map(|(layer, _)| {
            layer
                .iter()
                .map(|(name, entry)| (name.clone(), entry.body()))
                .collect::<Vec<_>>()
        });
        Generated {
            listeners: l,
            routes: r,
            clusters: c,
            endpoints: e,
        }
    }
}

/// The layer of content digest `d`: one the view already has (`seen`), else the previous
/// view's (`earlier`), else built from `entries`, keeping what it shares with `previous`
/// (the layer it replaces); recorded in `seen` for the next group.
fn shared_layer(
    d: u64,
    entries: Vec<(String, envoy_types::pb::google::protobuf::Any)>,
    previous: Option<&Layer>,
    seen: &mut HashMap<u64, Arc<Layer>>,
    earlier: &HashMap<u64, Arc<Layer>>,
) -> Arc<Layer> {
    seen.entry(d)
        .or_insert_with(|| {
            earlier
                .get(&d)
                .cloned()
                .unwrap_or_else(|| Arc::new(Layer::sealed_over(entries, previous)))
        })
        .clone()
}

/// Debounce settings (istiod's PILOT_DEBOUNCE_AFTER / PILOT_DEBOUNCE_MAX).
#[derive(Clone, Copy, Debug)]
pub struct Debounce {
    pub after: Duration,
    pub max: Duration,
}

impl Default for Debounce {
    fn default() -> Self {
        Self {
            after: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

/// A connected proxy.
struct Connected {
    proxy: Proxy,
    streams: BTreeSet<u64>,
    /// When its last stream ended; removed from the registry after the grace period.
    gone_since: Option<Instant>,
    tx: watch::Sender<Option<Arc<Snapshot>>>,
    /// Per type: content digest and the version it was sent under.
    versions: BTreeMap<&'static str, (u64, String)>,
    /// Its group's share of what it was last sent (its own part is in the snapshot).
    group: Option<Arc<GroupOut>>,
    /// Its stream's client certificate proved the namespace it claims, so it may read that
    /// namespace's credentials (`kubernetes://` secrets).
    verified: bool,
}

impl Connected {
    /// The version `type_url` is sent under: the one it last had while its content digest
    /// stays `digest`, else this push's (and `changed` is set).
    fn version(
        &mut self,
        type_url: &'static str,
        digest: u64,
        push: u64,
        changed: &mut bool,
    ) -> String {
        match self.versions.get(type_url) {
            Some((old, v)) if *old == digest => v.clone(),
            _ => {
                *changed = true;
                let v = push.to_string();
                self.versions.insert(type_url, (digest, v.clone()));
                v
            }
        }
    }

    fn generated(&self) -> Generated {
        let mut g = self
            .group
            .as_ref()
            .map(|g| g.generated())
            .unwrap_or_default();
        if let Some(snapshot) = self.tx.borrow().as_ref() {
            let own = |t: &str| -> Vec<(String, envoy_types::pb::google::protobuf::Any)> {
                snapshot
                    .own(t)
                    .map(|(name, e)| (name.clone(), e.body()))
                    .collect()
            };
            g.extend(Generated {
                listeners: own(type_url::LISTENER),
                routes: own(type_url::ROUTE_CONFIGURATION),
                clusters: own(type_url::CLUSTER),
                endpoints: own(type_url::CLUSTER_LOAD_ASSIGNMENT),
            });
        }
        g
    }
}

struct State {
    /// The served resources, as the config store's per-file lists (shared, not copied).
    resources: Vec<Arc<Vec<weft_config::Resource>>>,
    /// The served Pods, likewise.
    pods: Vec<Arc<Vec<PodInfo>>>,
    /// The flags' settings with the directory's MeshConfig applied.
    mesh: MeshSettings,
    view: Arc<MeshView>,
    /// Label keys that can change a proxy's shared resources (see `translate::label_keys`).
    label_keys: Arc<BTreeSet<String>>,
    /// The current view's per-group resources, computed on first use.
    groups: HashMap<GroupKey, Arc<GroupOut>>,
    /// The current view's layers by content digest, shared by groups that compute alike.
    layers: HashMap<u64, Arc<Layer>>,
    /// The previous view's, while a push replaces them (see `GroupOut::new`).
    earlier_layers: HashMap<u64, Arc<Layer>>,
    /// Something other than endpoints changed since the last push (configuration other
    /// than EndpointSlices and Endpoints, Pods, the MeshConfig, connected workloads), so
    /// the groups whose inputs changed are translated afresh; otherwise only endpoints are.
    structure_changed: bool,
    /// Something the registry is built from changed since the last push (its kinds of
    /// configuration, Pods, the mesh's domain, connected workloads); otherwise the next
    /// view shares the current registry.
    registry_stale: bool,
    proxies: BTreeMap<String, Connected>,
}

/// The control plane's shared core: the ADS server's snapshot source.
pub struct ControlPlane {
    state: Mutex<State>,
    /// Settings from flags; a MeshConfig in the directory overrides what it sets.
    base_mesh: MeshSettings,
    debounce: Debounce,
    /// How long a disconnected proxy stays an endpoint (istiod's auto-registration grace).
    grace: Duration,
    changed: Notify,
    /// When the oldest change not yet pushed was noticed (for convergence time).
    pending_since: Mutex<Option<Instant>>,
    push_count: AtomicU64,
    /// Groups translated in full (not endpoints alone), over the control plane's life.
    full_translations: AtomicU64,
    metrics: Metrics,
    /// See `control::Options::release_memory`.
    release_memory: std::sync::OnceLock<fn()>,
}

/// What was last computed and published for one proxy.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    pub proxy: Proxy,
    pub generated: Generated,
    /// Type URL to the version its current content was published under.
    pub versions: BTreeMap<String, String>,
    /// Whether a stream of the proxy is open (it lingers for the grace period after).
    pub connected: bool,
    /// The secrets it is served (its namespace's credentials), as served: debug pages show
    /// only their names, kinds and dates.
    pub secrets: Vec<(String, envoy_types::pb::google::protobuf::Any)>,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane").finish_non_exhaustive()
    }
}

fn digest(entries: &[(String, envoy_types::pb::google::protobuf::Any)]) -> u64 {
    let mut h = DefaultHasher::new();
    for (name, any) in entries {
        name.hash(&mut h);
        any.type_url.hash(&mut h);
        any.value.hash(&mut h);
    }
    h.finish()
}

impl ControlPlane {
    pub fn new(mesh: MeshSettings, debounce: Debounce, grace: Duration) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                resources: Vec::new(),
                pods: Vec::new(),
                mesh: mesh.clone(),
                view: Arc::new(MeshView {
                    mesh: mesh.clone(),
                    ..Default::default()
                }),
                label_keys: Arc::default(),
                groups: HashMap::new(),
                layers: HashMap::new(),
                earlier_layers: HashMap::new(),
                structure_changed: true,
                registry_stale: true,
                proxies: BTreeMap::new(),
            }),
            base_mesh: mesh,
            debounce,
            grace,
            changed: Notify::new(),
            pending_since: Mutex::new(None),
            push_count: AtomicU64::new(0),
            full_translations: AtomicU64::new(0),
            metrics: Metrics::default(),
            release_memory: std::sync::OnceLock::new(),
        })
    }

    /// Replaces the served configuration; the push follows after the debounce.
    pub fn set_resources(&self, resources: Vec<weft_config::Resource>) {
        let (others, pods) = split_pods(resources, &mut crate::registry::LabelSets::default());
        self.set_config(vec![Arc::new(others)], vec![Arc::new(pods)], None);
    }

    /// Replaces the served configuration and the MeshConfig (the `istio` ConfigMap's
    /// `data.mesh`; `None` keeps Istio's defaults under the flags' settings).
    pub fn set_config(
        &self,
        resources: Vec<Arc<Vec<weft_config::Resource>>>,
        pods: Vec<Arc<Vec<PodInfo>>>,
        mesh_config: Option<&weft_config::mesh::mesh_config::MeshConfig>,
    ) {
        let mut mesh = self.base_mesh.clone();
        if let Some(m) = mesh_config {
            mesh.apply(m);
        }
        let mut state = self.state.lock();
        let same_pods = same_lists(&state.pods, &pods);
        if state.mesh != mesh || !same_pods || !only_endpoints_changed(&state.resources, &resources)
        {
            state.structure_changed = true;
        }
        if state.mesh.domain != mesh.domain
            || !same_pods
            || registry_inputs_changed(&state.resources, &resources)
        {
            state.registry_stale = true;
        }
        state.resources = resources;
        state.pods = pods;
        state.mesh = mesh;
        drop(state);
        self.note_change();
    }

    /// Something the next push must reflect happened: the push is scheduled, and the
    /// convergence time of the proxies it updates counts from the first such change.
    fn note_change(&self) {
        self.pending_since.lock().get_or_insert_with(Instant::now);
        self.changed.notify_one();
    }

    /// Sets what gives freed heap memory back after a push (once; later calls are ignored).
    pub fn set_memory_release(&self, release: fn()) {
        let _ = self.release_memory.set(release);
    }

    /// The Prometheus metrics the debug server exposes.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Full pushes so far.
    pub fn push_count(&self) -> u64 {
        self.push_count.load(Ordering::Relaxed)
    }

    /// Proxy groups translated in full so far (an endpoint-only change recomputes only
    /// their endpoints).
    pub fn full_translations(&self) -> u64 {
        self.full_translations.load(Ordering::Relaxed)
    }

    /// The current translation inputs.
    pub fn view(&self) -> Arc<MeshView> {
        self.state.lock().view.clone()
    }

    /// What was last computed for a proxy (for debug pages and `proxy-config`).
    pub fn generated(&self, node_id: &str) -> Option<(Proxy, Generated)> {
        let s = self.state.lock();
        let c = s.proxies.get(node_id)?;
        Some((c.proxy.clone(), c.generated()))
    }

    /// What was last computed and published for a proxy, with the versions per type.
    pub fn proxy_config(&self, node_id: &str) -> Option<ProxyConfig> {
        let s = self.state.lock();
        let c = s.proxies.get(node_id)?;
        Some(ProxyConfig {
            proxy: c.proxy.clone(),
            generated: c.generated(),
            versions: c
                .versions
                .iter()
                .map(|(t, (_, v))| (t.to_string(), v.clone()))
                .collect(),
            connected: !c.streams.is_empty(),
            secrets: c
                .tx
                .borrow()
                .as_ref()
                .map(|snapshot| {
                    snapshot
                        .iter(type_url::SECRET)
                        .map(|(name, e)| (name.clone(), e.body()))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// Every known proxy, connected or within its grace period.
    pub fn proxies(&self) -> Vec<Proxy> {
        let s = self.state.lock();
        s.proxies.values().map(|c| c.proxy.clone()).collect()
    }

    /// Ids of every connected (or recently connected) proxy.
    pub fn proxy_ids(&self) -> Vec<String> {
        self.state.lock().proxies.keys().cloned().collect()
    }

    fn workloads(proxies: &BTreeMap<String, Connected>) -> Vec<Workload> {
        proxies
            .values()
            .map(|c| Workload {
                name: c.proxy.workload_name.clone(),
                namespace: c.proxy.namespace.clone(),
                labels: c.proxy.labels.clone(),
                ips: c.proxy.ips.clone(),
                service_account: c.proxy.service_account.clone(),
            })
            .collect()
    }

    fn rebuild_view(&self, state: &mut State) {
        let refs: Vec<&weft_config::Resource> =
            state.resources.iter().flat_map(|f| f.iter()).collect();
        let stale = std::mem::take(&mut state.registry_stale);
        let endpoints_before = state.view.registry.endpoints_digest();
        let accounts_before = state.view.registry.accounts_digest();
        let kept = (!stale).then(|| state.view.registry.clone());
        // The outgoing view (and registry, unless kept) goes before the next is built: a
        // push holds one of each, not two, at its peak.
        state.view = Arc::new(MeshView {
            mesh: state.mesh.clone(),
            ..Default::default()
        });
        let registry = kept.unwrap_or_else(|| {
            let pods: Vec<&PodInfo> = state.pods.iter().flat_map(|f| f.iter()).collect();
            Arc::new(Registry::build_with_pods(
                &refs,
                &pods,
                &Self::workloads(&state.proxies),
                &state.mesh.domain,
            ))
        });
        let view = MeshView::new(&refs, registry, state.mesh.clone());
        let label_keys = translate::label_keys(&view);
        let same_keys = *state.label_keys == label_keys;
        let endpoints_changed = stale && view.registry.endpoints_digest() != endpoints_before;
        let view_accounts = view.registry.accounts_digest();
        let reads_accounts = view.reads_accounts();
        state.label_keys = Arc::new(label_keys);
        state.view = Arc::new(view);
        state.earlier_layers = std::mem::take(&mut state.layers);
        let groups = std::mem::take(&mut state.groups);
        // Clusters name the identities a service's endpoints run as (Istio mutual TLS), so
        // endpoints that bring or take away a service account change more than EDS.
        let accounts_changed = stale && reads_accounts && view_accounts != accounts_before;
        let structure_changed = std::mem::take(&mut state.structure_changed) || accounts_changed;
        if structure_changed && !same_keys {
            // Proxies group differently now: every group is translated afresh.
            return;
        }
        let State {
            view,
            layers,
            earlier_layers,
            ..
        } = &mut *state;
        // After an endpoint-only change every group stands but for its endpoints. After
        // another, a group whose inputs read the same on the new view stands; one whose
        // clusters' inputs do gets new listeners and routes; the rest are translated on
        // demand. Endpoints are recomputed whenever the registry's changed.
        state.groups = groups
            .into_iter()
            .filter_map(|(key, g)| {
                let listeners = if structure_changed {
                    let now = translate::fingerprint(&g.proxy, view)?;
                    let before = g.inputs?;
                    if now.all == before.all {
                        None
                    } else if now.clusters.is_some() && now.clusters == before.clusters {
                        let (listeners, routes) = translate::shared_listeners(&g.proxy, view)?;
                        let generated = Generated {
                            listeners,
                            routes,
                            ..Default::default()
                        };
                        Some((generated, now))
                    } else {
                        return None;
                    }
                } else {
                    None
                };
                let g = g.refreshed(view, listeners, endpoints_changed, layers, earlier_layers);
                Some((key, Arc::new(g)))
            })
            .collect();
    }

    /// Recomputes one proxy's resources — its group's share computed once per push, its own
    /// part each time — and publishes them if anything changed; says whether it did.
    fn update(
        view: &MeshView,
        label_keys: &BTreeSet<String>,
        cache: &mut GroupCache<'_>,
        c: &mut Connected,
        push: u64,
    ) -> bool {
        let key = GroupKey::of(&c.proxy, label_keys);
        let GroupCache {
            groups,
            layers,
            earlier,
            translations,
        } = cache;
        let group = groups
            .entry(key)
            .or_insert_with(|| {
                translations.fetch_add(1, Ordering::Relaxed);
                Arc::new(GroupOut::new(
                    &c.proxy,
                    translate::shared(&c.proxy, view),
                    translate::fingerprint(&c.proxy, view),
                    layers,
                    earlier,
                ))
            })
            .clone();
        let own = translate::own(&c.proxy, view);
        let own_digests = by_type(&own).map(|entries| digest(entries));
        let Generated {
            listeners,
            routes,
            clusters,
            endpoints,
        } = own;
        let mut changed = c.tx.borrow().is_none();
        let mut snapshot = Snapshot::new(push.to_string());
        for (((type_url, (layer, shared_digest)), own_digest), own_entries) in TYPES
            .iter()
            .zip(&group.layers)
            .zip(own_digests)
            .zip([listeners, routes, clusters, endpoints])
        {
            let mut h = DefaultHasher::new();
            shared_digest.hash(&mut h);
            own_digest.hash(&mut h);
            let version = c.version(type_url, h.finish(), push, &mut changed);
            snapshot.set_type_version(*type_url, version);
            snapshot.add_layer(*type_url, layer.clone());
            for (name, body) in own_entries {
                snapshot.insert_named(name, body);
            }
        }
        if c.verified {
            let served = view.credentials.of_namespace(&c.proxy.namespace);
            let digest = served.map_or(0, |s| s.digest);
            let version = c.version(type_url::SECRET, digest, push, &mut changed);
            snapshot.set_type_version(type_url::SECRET, version);
            for (name, body) in served.into_iter().flat_map(|s| &s.secrets) {
                snapshot.insert_named(name.clone(), body.clone());
            }
        }
        c.group = Some(group);
        if changed {
            c.tx.send_replace(Some(Arc::new(snapshot)));
        }
        changed
    }

    /// Rebuilds the view and recomputes every proxy.
    pub fn push_all(&self) {
        let push = self.push_count.fetch_add(1, Ordering::Relaxed) + 1;
        let since = self.pending_since.lock().take();
        let mut state = self.state.lock();
        let now = Instant::now();
        let grace = self.grace;
        let before = state.proxies.len();
        state
            .proxies
            .retain(|_, c| c.gone_since.is_none_or(|t| now.duration_since(t) < grace));
        if state.proxies.len() != before {
            // Workloads gone from the registry.
            state.structure_changed = true;
            state.registry_stale = true;
        }
        self.rebuild_view(&mut state);
        let view = state.view.clone();
        let label_keys = state.label_keys.clone();
        let State {
            groups,
            layers,
            earlier_layers,
            proxies,
            ..
        } = &mut *state;
        for c in proxies.values_mut() {
            let mut cache = GroupCache {
                groups,
                layers,
                earlier: earlier_layers,
                translations: &self.full_translations,
            };
            if Self::update(&view, &label_keys, &mut cache, c, push)
                && let Some(since) = since
            {
                self.metrics.converged(since.elapsed());
            }
        }
        state.earlier_layers.clear();
        // Proxies that connect before the next push translate on their own.
        state.view.eds_memo.clear();
        let made = |m: Made| state.groups.values().filter(|g| g.made == m).count();
        tracing::debug!(
            push,
            proxies = state.proxies.len(),
            translated = made(Made::Translated),
            listeners_only = made(Made::Listeners),
            endpoints_only = made(Made::Endpoints),
            kept = made(Made::Kept),
            "pushed"
        );
        drop(state);
        if let Some(release) = self.release_memory.get() {
            release();
        }
    }

    /// Waits for changes and pushes them, debounced, until the task is dropped.
    pub async fn run_pushes(self: Arc<Self>) {
        loop {
            self.changed.notified().await;
            let first = Instant::now();
            loop {
                let quiet =
                    tokio::time::timeout(self.debounce.after, self.changed.notified()).await;
                if quiet.is_err() || first.elapsed() >= self.debounce.max {
                    break;
                }
            }
            self.push_all();
        }
    }

    /// Schedules the removal of disconnected proxies once their grace period ends.
    fn schedule_purge(self: &Arc<Self>) {
        let this = Arc::downgrade(self);
        let grace = self.grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if let Some(this) = this.upgrade() {
                this.note_change();
            }
        });
    }
}

/// Where [`ControlPlane::update`] finds and keeps the current view's groups and layers.
struct GroupCache<'a> {
    groups: &'a mut HashMap<GroupKey, Arc<GroupOut>>,
    layers: &'a mut HashMap<u64, Arc<Layer>>,
    earlier: &'a HashMap<u64, Arc<Layer>>,
    /// Counts groups translated in full.
    translations: &'a AtomicU64,
}

/// Whether two lists hold the same shared lists, in order.
fn same_lists<T>(a: &[Arc<T>], b: &[Arc<T>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| Arc::ptr_eq(x, y))
}

/// The files that differ between `old` and `new`, by identity (the store shares an
/// unchanged file's list): those gone and those new or rewritten.
fn changed_files<'a>(
    old: &'a [Arc<Vec<weft_config::Resource>>],
    new: &'a [Arc<Vec<weft_config::Resource>>],
) -> impl Iterator<Item = &'a Arc<Vec<weft_config::Resource>>> {
    let ids = |v: &[Arc<Vec<weft_config::Resource>>]| {
        v.iter()
            .map(|f| Arc::as_ptr(f) as usize)
            .collect::<std::collections::HashSet<_>>()
    };
    let (old_ids, new_ids) = (ids(old), ids(new));
    old.iter()
        .filter(move |f| !new_ids.contains(&(Arc::as_ptr(f) as usize)))
        .chain(
            new.iter()
                .filter(move |f| !old_ids.contains(&(Arc::as_ptr(f) as usize))),
        )
}

/// Whether every file that differs between `old` and `new` holds only EndpointSlices and
/// Endpoints, before and after. Those feed only endpoints: Kubernetes services are EDS or
/// headless, and DNS clusters take theirs from ServiceEntries.
fn only_endpoints_changed(
    old: &[Arc<Vec<weft_config::Resource>>],
    new: &[Arc<Vec<weft_config::Resource>>],
) -> bool {
    use weft_config::Resource;
    changed_files(old, new).all(|f| {
        f.iter()
            .all(|r| matches!(r, Resource::EndpointSlice(_) | Resource::Endpoints(_)))
    })
}

/// Whether some file that differs between `old` and `new` holds a kind the registry reads.
fn registry_inputs_changed(
    old: &[Arc<Vec<weft_config::Resource>>],
    new: &[Arc<Vec<weft_config::Resource>>],
) -> bool {
    changed_files(old, new).any(|f| f.iter().any(Registry::reads))
}

/// The ADS server's view of the control plane.
#[derive(Debug, Clone)]
pub struct Source(pub Arc<ControlPlane>);

impl SnapshotSource for Source {
    fn connect(
        &self,
        node: &Node,
        stream_id: u64,
        peer: &weft_xds::server::Peer,
    ) -> Result<SnapshotReceiver, tonic::Status> {
        let cp = &self.0;
        let proxy = Proxy::from_node(node).map_err(|e| {
            cp.metrics.push_error();
            tracing::warn!(node = %node.id, "refused: {e}");
            tonic::Status::invalid_argument(e.to_string())
        })?;
        if peer.confidential {
            crate::node::authorize(&proxy, &peer.identities).inspect_err(|e| {
                tracing::warn!(node = %node.id, "refused: {}", e.message());
            })?;
        }
        let mut state = cp.state.lock();
        let new_workload = state
            .proxies
            .get(&proxy.id)
            .is_none_or(|c| c.proxy != proxy);
        let entry = state
            .proxies
            .entry(proxy.id.clone())
            .or_insert_with(|| Connected {
                proxy: proxy.clone(),
                streams: BTreeSet::new(),
                gone_since: None,
                tx: watch::Sender::new(None),
                versions: BTreeMap::new(),
                group: None,
                verified: false,
            });
        entry.proxy = proxy.clone();
        // `authorize` above has checked a confidential peer's identity against the node.
        entry.verified = peer.confidential;
        entry.streams.insert(stream_id);
        entry.gone_since = None;
        let rx = entry.tx.subscribe();
        if new_workload {
            // It may be an endpoint of some service (or a ServiceEntry's instance): the next
            // (debounced) push rebuilds the registry and every group once for however many
            // proxies connect meanwhile.
            state.structure_changed = true;
            state.registry_stale = true;
            cp.note_change();
        }
        // Its view right away, from the current one (its group's share is usually computed).
        let view = state.view.clone();
        let label_keys = state.label_keys.clone();
        let push = cp.push_count.load(Ordering::Relaxed);
        let State {
            groups,
            layers,
            earlier_layers,
            proxies,
            ..
        } = &mut *state;
        if let Some(c) = proxies.get_mut(&proxy.id) {
            let mut cache = GroupCache {
                groups,
                layers,
                earlier: earlier_layers,
                translations: &cp.full_translations,
            };
            ControlPlane::update(&view, &label_keys, &mut cache, c, push);
        }
        tracing::info!(node = %proxy.id, stream_id, "proxy connected");
        Ok(rx)
    }

    fn disconnect(&self, node_id: &str, stream_id: u64) {
        let mut state = self.0.state.lock();
        if let Some(c) = state.proxies.get_mut(node_id) {
            c.streams.remove(&stream_id);
            if c.streams.is_empty() {
                c.gone_since = Some(Instant::now());
                drop(state);
                self.0.schedule_purge();
                tracing::info!(node = %node_id, stream_id, "proxy disconnected");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
    use prost::Message;
    use weft_xds::server::SnapshotSource;

    fn load(yaml: &str) -> Arc<Vec<weft_config::Resource>> {
        let mut loader = weft_config::Loader::new();
        loader.load_str("mesh.yaml", yaml);
        let result = loader.finish();
        assert!(!result.has_errors(), "{:?}", result.findings);
        Arc::new(result.resources.into_iter().map(|l| l.resource).collect())
    }

    fn slice(ip: &str) -> Arc<Vec<weft_config::Resource>> {
        load(&format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
             metadata: {{ name: web-1, namespace: shop, labels: {{ kubernetes.io/service-name: web }} }}\n\
             addressType: IPv4\nports: [{{ name: http, port: 8080 }}]\n\
             endpoints: [{{ addresses: [\"{ip}\"], conditions: {{ ready: true }} }}]\n"
        ))
    }

    /// A proxy of `kind` (`sidecar`, `router`) and pod `pod` in namespace `shop`.
    fn shop_node(kind: &str, pod: &str) -> Node {
        Node {
            id: format!("{kind}~10.1.0.9~{pod}.shop~shop.svc.cluster.local"),
            metadata: Some(crate::node::metadata(
                "shop",
                &BTreeMap::new(),
                "default",
                &["10.1.0.9".parse().unwrap()],
            )),
            ..Default::default()
        }
    }

    /// A sidecar of namespace `shop` connects; keep the receiver to stay connected.
    fn connect_client(cp: &Arc<ControlPlane>) -> weft_xds::server::SnapshotReceiver {
        Source(cp.clone())
            .connect(
                &shop_node("sidecar", "client-0"),
                1,
                &weft_xds::server::Peer::default(),
            )
            .expect("connects")
    }

    /// The group's layers, by type.
    fn layers(cp: &ControlPlane) -> Vec<[Arc<Layer>; 4]> {
        let s = cp.state.lock();
        s.groups
            .values()
            .map(|g| g.layers.each_ref().map(|(l, _)| l.clone()))
            .collect()
    }

    fn has_endpoint(cp: &ControlPlane, ip: &str) -> bool {
        let s = cp.state.lock();
        let c = s.proxies.values().next().expect("a proxy");
        let snapshot = c.tx.borrow().clone().expect("a snapshot");
        snapshot
            .iter(type_url::CLUSTER_LOAD_ASSIGNMENT)
            .filter(|(n, _)| n.contains("web.shop"))
            .any(|(_, e)| {
                let cla = ClusterLoadAssignment::decode(e.body().value.as_slice()).expect("cla");
                format!("{cla:?}").contains(ip)
            })
    }

    #[test]
    fn an_endpoint_only_change_recomputes_endpoints_alone() {
        let cp = ControlPlane::new(
            MeshSettings::default(),
            Debounce::default(),
            Duration::from_secs(10),
        );
        let services = load(
            "apiVersion: v1\nkind: Service\nmetadata: { name: web, namespace: shop }\n\
             spec: { clusterIP: 10.0.0.10, ports: [{ name: http, port: 80, targetPort: 8080 }] }\n\
             ---\napiVersion: v1\nkind: Service\nmetadata: { name: db, namespace: shop }\n\
             spec: { clusterIP: 10.0.0.11, ports: [{ name: tcp, port: 5432 }] }\n",
        );
        cp.set_config(vec![services.clone(), slice("10.1.0.1")], vec![], None);
        cp.push_all();
        let _rx = connect_client(&cp);
        cp.push_all();
        assert!(has_endpoint(&cp, "10.1.0.1"));
        let before = layers(&cp);
        let translated = cp.full_translations();

        // The slice's file changes: the same listeners, routes and clusters, new endpoints.
        cp.set_config(vec![services.clone(), slice("10.1.0.2")], vec![], None);
        cp.push_all();
        let after = layers(&cp);
        assert_eq!(
            cp.full_translations(),
            translated,
            "only endpoints were recomputed"
        );
        assert_eq!(before.len(), 1);
        for t in 0..3 {
            assert!(
                Arc::ptr_eq(&before[0][t], &after[0][t]),
                "type {t} recomputed"
            );
        }
        assert!(!Arc::ptr_eq(&before[0][3], &after[0][3]));
        assert!(has_endpoint(&cp, "10.1.0.2") && !has_endpoint(&cp, "10.1.0.1"));

        // A service changes: everything is translated afresh (and the clusters differ).
        let services = load(
            "apiVersion: v1\nkind: Service\nmetadata: { name: web, namespace: shop }\n\
             spec: { clusterIP: 10.0.0.10, ports: [{ name: http, port: 80, targetPort: 8080 }] }\n",
        );
        cp.set_config(vec![services, slice("10.1.0.2")], vec![], None);
        cp.push_all();
        let rebuilt = layers(&cp);
        assert_eq!(cp.full_translations(), translated + 1);
        assert!(
            !Arc::ptr_eq(&after[0][2], &rebuilt[0][2]),
            "clusters recomputed"
        );
        assert!(has_endpoint(&cp, "10.1.0.2"));
    }

    /// Credentials go only to proxies whose certificate proved their namespace, only their
    /// namespace's, and a changed Secret pushes them again.
    #[test]
    fn credentials_are_served_to_verified_proxies_of_their_namespace() {
        let cp = ControlPlane::new(
            MeshSettings::default(),
            Debounce::default(),
            Duration::from_secs(10),
        );
        let secrets = |cert: &str| {
            load(&format!(
                "apiVersion: v1\nkind: Secret\nmetadata: {{ name: partner, namespace: shop }}\n\
                 stringData: {{ cert: {cert}, key: k, cacert: ca }}\n---\n\
                 apiVersion: v1\nkind: Secret\nmetadata: {{ name: other, namespace: bank }}\n\
                 stringData: {{ cert: c, key: k }}\n"
            ))
        };
        cp.set_config(vec![secrets("c1")], vec![], None);
        cp.push_all();
        let node = |pod: &str| shop_node("router", pod);
        let source = Source(cp.clone());
        let plain = source
            .connect(&node("plain"), 1, &weft_xds::server::Peer::default())
            .expect("connects");
        let verified_peer = weft_xds::server::Peer {
            confidential: true,
            identities: vec!["spiffe://cluster.local/ns/shop/sa/default".into()],
        };
        let verified = source
            .connect(&node("verified"), 2, &verified_peer)
            .expect("connects");
        let secret_names = |rx: &weft_xds::server::SnapshotReceiver| -> Vec<String> {
            let snapshot = rx.borrow().clone().expect("a snapshot");
            snapshot
                .iter(type_url::SECRET)
                .map(|(n, _)| n.clone())
                .collect()
        };
        assert!(secret_names(&plain).is_empty(), "nothing over plaintext");
        assert_eq!(
            secret_names(&verified),
            ["kubernetes://partner", "kubernetes://partner-cacert"],
            "its own namespace's, not bank's"
        );
        let version = |rx: &weft_xds::server::SnapshotReceiver| {
            rx.borrow()
                .clone()
                .map(|s| s.type_version(type_url::SECRET).to_string())
        };
        let before = version(&verified);
        cp.set_config(vec![secrets("c2")], vec![], None);
        cp.push_all();
        assert_ne!(version(&verified), before, "a changed Secret is pushed");
    }

    #[test]
    fn endpoints_that_change_a_services_accounts_recompute_its_clusters() {
        accounts_change(true);
    }

    #[test]
    fn without_tls_rules_a_services_accounts_change_only_its_endpoints() {
        accounts_change(false);
    }

    /// An endpoint change that brings `web` a service account, with or without a rule
    /// asking for Istio mutual TLS (whose clusters name the accounts).
    fn accounts_change(mutual: bool) {
        let cp = ControlPlane::new(
            MeshSettings::default(),
            Debounce::default(),
            Duration::from_secs(10),
        );
        let tls = if mutual {
            "tls: { mode: ISTIO_MUTUAL }"
        } else {
            "loadBalancer: { simple: RANDOM }"
        };
        let rules = load(&format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{ name: web, namespace: shop }}\n\
             spec: {{ clusterIP: 10.0.0.10, ports: [{{ name: http, port: 80, targetPort: 8080 }}] }}\n\
             ---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
             metadata: {{ name: web, namespace: shop }}\n\
             spec: {{ host: web, trafficPolicy: {{ {tls} }} }}\n",
        ));
        let empty = load(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
             metadata: { name: web-1, namespace: shop, labels: { kubernetes.io/service-name: web } }\n\
             addressType: IPv4\nports: [{ name: http, port: 8080 }]\nendpoints: []\n",
        );
        cp.set_config(vec![rules.clone(), empty], vec![], None);
        cp.push_all();
        let _rx = connect_client(&cp);
        cp.push_all();
        let identity = "spiffe://cluster.local/ns/shop/sa/default";
        let names_identity = |cp: &ControlPlane| {
            let s = cp.state.lock();
            let c = s.proxies.values().next().expect("a proxy");
            let snapshot = c.tx.borrow().clone().expect("a snapshot");
            snapshot.iter(type_url::CLUSTER).any(|(n, e)| {
                n.contains("web.shop") && {
                    let body = &e.body().value;
                    body.windows(identity.len())
                        .any(|w| w == identity.as_bytes())
                }
            })
        };
        assert!(!names_identity(&cp), "no endpoint, no identity");
        let before = layers(&cp);

        // Only the slice changes, but its endpoint brings the service an account.
        cp.set_config(vec![rules, slice("10.1.0.1")], vec![], None);
        cp.push_all();
        let after = layers(&cp);
        assert_eq!(
            !Arc::ptr_eq(&before[0][2], &after[0][2]),
            mutual,
            "clusters recomputed only where they name the accounts"
        );
        assert_eq!(names_identity(&cp), mutual);
        assert!(has_endpoint(&cp, "10.1.0.1"));
    }

    /// The mesh of the incremental-push test: three namespaces, `a` scoped to itself, `b`
    /// to itself and `a`, `c` unscoped; each step below replaces one file.
    const BASE: &[(&str, &str)] = &[
        (
            "services",
            "apiVersion: v1\nkind: Service\nmetadata: { name: web, namespace: a }\n\
             spec: { clusterIP: 10.0.0.1, ports: [{ name: http, port: 80 }] }\n---\n\
             apiVersion: v1\nkind: Service\nmetadata: { name: api, namespace: b }\n\
             spec: { clusterIP: 10.0.0.2, ports: [{ name: http, port: 80 }, { name: tcp, port: 5432 }] }\n---\n\
             apiVersion: v1\nkind: Service\nmetadata: { name: db, namespace: c }\n\
             spec: { clusterIP: 10.0.0.3, ports: [{ name: tcp, port: 5432 }] }\n",
        ),
        (
            "sidecars",
            "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: { name: default, namespace: a }\n\
             spec: { egress: [{ hosts: [\"./*\"] }] }\n---\n\
             apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: { name: default, namespace: b }\n\
             spec: { egress: [{ hosts: [\"./*\", \"a/*\"] }] }\n",
        ),
        ("rules-a", ""),
        ("rules-b", ""),
        ("rules-c", ""),
        ("external", ""),
        (
            "gateway",
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: { name: gw, namespace: c }\n\
             spec: { selector: { istio: ingressgateway }, servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: [\"*\"] }] }\n",
        ),
        ("gateway-routes", ""),
    ];

    /// (file, new content, groups expected to hold other resources: a, b, c and the
    /// gateway in c; and how each is expected to be made, as `translated` writes it).
    const STEPS: &[(&str, &str, [bool; 4], &str)] = &[
        // A rule for a's service: a and b import it, c sees everything.
        (
            "rules-a",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: web, namespace: a }\n\
             spec: { hosts: [web], http: [{ route: [{ destination: { host: web }, weight: 100 }], timeout: 3s }] }\n",
            [true, true, true, false],
            "LLL-",
        ),
        // A rule in c for c's service: only c sees it.
        (
            "rules-c",
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: db, namespace: c }\n\
             spec: { host: db, trafficPolicy: { connectionPool: { tcp: { maxConnections: 7 } } } }\n",
            [false, false, true, true],
            "--TT",
        ),
        // b routes to c's db: b and c change, a does not.
        (
            "rules-b",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: api, namespace: b }\n\
             spec: { hosts: [api], http: [{ route: [{ destination: { host: db.c.svc.cluster.local, port: { number: 5432 } } }] }] }\n",
            [false, true, true, false],
            "-LL-",
        ),
        // c's DestinationRule changes again: b routes to db, so b's routes may hash by it.
        (
            "rules-c",
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: db, namespace: c }\n\
             spec: { host: db, trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: x-user } } } }\n",
            [false, true, true, true],
            "-LTT",
        ),
        // A DNS ServiceEntry exported only to c.
        (
            "external",
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: { name: ext, namespace: c }\n\
             spec: { hosts: [ext.example.com], exportTo: [\".\"], resolution: DNS, ports: [{ number: 443, name: tls, protocol: TLS }] }\n",
            [false, false, true, true],
            "--TT",
        ),
        // a's Sidecar widens to c: only a changes.
        (
            "sidecars",
            "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: { name: default, namespace: a }\n\
             spec: { egress: [{ hosts: [\"./*\", \"c/*\"] }] }\n---\n\
             apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: { name: default, namespace: b }\n\
             spec: { egress: [{ hosts: [\"./*\", \"a/*\"] }] }\n",
            [true, false, false, false],
            "T---",
        ),
        // The rule in a goes away.
        ("rules-a", "", [true, true, true, false], "LLL-"),
        // A VirtualService bound to the gateway: the router's routes alone.
        (
            "gateway-routes",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: edge, namespace: c }\n\
             spec: { hosts: [\"*\"], gateways: [gw], http: [{ route: [{ destination: { host: web.a.svc.cluster.local } }] }] }\n",
            [false, false, false, true],
            "---L",
        ),
        // The Gateway opens another port: its listeners and routes again.
        (
            "gateway",
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: { name: gw, namespace: c }\n\
             spec: { selector: { istio: ingressgateway }, servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: [\"*\"] }, { port: { number: 8080, name: http-alt, protocol: HTTP }, hosts: [\"*\"] }] }\n",
            [false, false, false, true],
            "---L",
        ),
    ];

    fn plane(files: &BTreeMap<&str, String>) -> (Arc<ControlPlane>, Vec<String>) {
        let cp = ControlPlane::new(
            MeshSettings::default(),
            Debounce::default(),
            Duration::from_secs(10),
        );
        cp.set_config(files.values().map(|y| load(y)).collect(), vec![], None);
        cp.push_all();
        let source = Source(cp.clone());
        let mut ids = Vec::new();
        for (i, ns) in ["a", "b", "c"].iter().enumerate() {
            let ip: std::net::IpAddr = format!("10.9.0.{}", i + 1).parse().unwrap();
            let node = Node {
                id: format!("sidecar~{ip}~app-0.{ns}~{ns}.svc.cluster.local"),
                metadata: Some(crate::node::metadata(
                    ns,
                    &BTreeMap::new(),
                    "default",
                    &[ip],
                )),
                ..Default::default()
            };
            // The receiver is not needed: snapshots stay readable in the control plane.
            drop(
                source
                    .connect(&node, i as u64 + 1, &weft_xds::server::Peer::default())
                    .expect("connects"),
            );
            ids.push(node.id);
        }
        // An ingress gateway in c.
        let ip: std::net::IpAddr = "10.9.0.9".parse().unwrap();
        let labels = BTreeMap::from([("istio".to_string(), "ingressgateway".to_string())]);
        let node = Node {
            id: format!("router~{ip}~gw-0.c~c.svc.cluster.local"),
            metadata: Some(crate::node::metadata("c", &labels, "default", &[ip])),
            ..Default::default()
        };
        drop(
            source
                .connect(&node, 9, &weft_xds::server::Peer::default())
                .expect("connects"),
        );
        ids.push(node.id);
        cp.push_all();
        (cp, ids)
    }

    /// Per proxy, how the last push made its group's layers: `T` translated in full, `L`
    /// listeners and routes alone, `-` neither.
    fn translated(cp: &ControlPlane, ids: &[String]) -> String {
        let s = cp.state.lock();
        ids.iter()
            .map(
                |id| match s.proxies[id].group.as_ref().expect("a group").made {
                    Made::Translated => 'T',
                    Made::Listeners => 'L',
                    Made::Endpoints | Made::Kept => '-',
                },
            )
            .collect()
    }

    /// Which groups hold other layers than `before` (translated again, to other content).
    fn retranslated(cp: &ControlPlane, ids: &[String], before: &[[Arc<Layer>; 4]]) -> Vec<bool> {
        let now = group_layers(cp, ids);
        now.iter()
            .zip(before)
            .map(|(n, b)| (0..3).any(|t| !Arc::ptr_eq(&n[t], &b[t])))
            .collect()
    }

    fn group_layers(cp: &ControlPlane, ids: &[String]) -> Vec<[Arc<Layer>; 4]> {
        let s = cp.state.lock();
        ids.iter()
            .map(|id| {
                let g = s.proxies[id].group.as_ref().expect("a group");
                g.layers.each_ref().map(|(l, _)| l.clone())
            })
            .collect()
    }

    #[test]
    fn a_change_translates_only_the_groups_whose_inputs_it_touches() {
        let mut files: BTreeMap<&str, String> =
            BASE.iter().map(|(f, y)| (*f, y.to_string())).collect();
        let (cp, ids) = plane(&files);
        // As the config store keeps them: an unchanged file keeps its list.
        let mut loaded: BTreeMap<&str, Arc<Vec<weft_config::Resource>>> =
            files.iter().map(|(f, y)| (*f, load(y))).collect();
        cp.set_config(loaded.values().cloned().collect(), vec![], None);
        cp.push_all();
        for (step, (file, yaml, expected, how)) in STEPS.iter().enumerate() {
            files.insert(file, yaml.to_string());
            loaded.insert(file, load(yaml));
            let before = group_layers(&cp, &ids);
            let registry = cp.view().registry.clone();
            cp.set_config(loaded.values().cloned().collect(), vec![], None);
            cp.push_all();
            // Only the ServiceEntry file holds what the registry is built from.
            assert_eq!(
                Arc::ptr_eq(&registry, &cp.view().registry),
                *file != "external",
                "step {step} ({file}): registry shared with the previous view"
            );
            // Translated again or not, every proxy has what a fresh control plane computes.
            let (fresh, _) = plane(&files);
            for id in &ids {
                let incremental = cp.generated(id).expect("known").1;
                let full = fresh.generated(id).expect("known").1;
                assert!(
                    incremental == full,
                    "step {step}: {id} differs from a fresh translation"
                );
            }
            assert_eq!(
                retranslated(&cp, &ids, &before),
                expected.to_vec(),
                "step {step} ({file}): groups a, b, c, gateway translated again"
            );
            assert_eq!(
                translated(&cp, &ids),
                *how,
                "step {step} ({file}): how groups a, b, c, gateway were made"
            );
        }
    }
}
