//! One simulated Envoy sidecar: an ADS stream (state-of-the-world or delta) that subscribes
//! the way Envoy does — CDS and LDS wildcard, then EDS for every EDS cluster CDS brought
//! and RDS for every route name in LDS's connection managers — and ACKs every response.
//! A stream that fails or cannot open is retried with Envoy's jittered backoff.
//!
//! The fleet's own client rather than weft-xds's: it sees each response's wire size, and
//! it keeps names and hashes instead of resource bodies, so a thousand of them fit in one
//! process without the fleet's memory and CPU disturbing what is measured.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tonic::transport::Endpoint;
use weft_xds::envoy_types::pb::envoy::config::core::v3::Node;
use weft_xds::envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use weft_xds::envoy_types::pb::google::protobuf::Any;
use weft_xds::type_url;

use crate::lite;

mod delta;
mod sotw;

/// The four types a sidecar holds, in the order the report lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Cds,
    Eds,
    Lds,
    Rds,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Cds, Kind::Eds, Kind::Lds, Kind::Rds];

    pub fn of(type_url: &str) -> Option<Kind> {
        match type_url {
            type_url::CLUSTER => Some(Kind::Cds),
            type_url::CLUSTER_LOAD_ASSIGNMENT => Some(Kind::Eds),
            type_url::LISTENER => Some(Kind::Lds),
            type_url::ROUTE_CONFIGURATION => Some(Kind::Rds),
            _ => None,
        }
    }

    pub fn type_url(self) -> &'static str {
        match self {
            Kind::Cds => type_url::CLUSTER,
            Kind::Eds => type_url::CLUSTER_LOAD_ASSIGNMENT,
            Kind::Lds => type_url::LISTENER,
            Kind::Rds => type_url::ROUTE_CONFIGURATION,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::Cds => "CDS",
            Kind::Eds => "EDS",
            Kind::Lds => "LDS",
            Kind::Rds => "RDS",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// What a scenario waits for in one resource's new content.
#[derive(Clone, Debug)]
pub enum Check {
    /// The ClusterLoadAssignment lists this IP.
    Endpoint { ip: String },
    /// The route configuration gives `cluster` this weight in `vhost`'s split.
    Weight {
        vhost: String,
        cluster: String,
        weight: u32,
    },
}

/// A scenario's expectation: resources of one type, by name, and what each must show.
#[derive(Clone, Debug)]
pub struct Probe {
    pub id: u64,
    pub kind: Kind,
    pub targets: BTreeMap<String, Check>,
}

#[derive(Debug)]
pub enum Event {
    /// A response was received, decoded and ACKed (NACKs are never sent).
    Acked {
        proxy: usize,
        kind: Kind,
        version: String,
        bytes: usize,
        at: Instant,
    },
    /// Every type ACKed and every EDS/RDS name asked for arrived: the proxy is in sync.
    Synced { proxy: usize, at: Instant },
    /// Every target of the probe this proxy subscribes to shows the expected content.
    ProbeDone {
        proxy: usize,
        probe: u64,
        at: Instant,
    },
    /// A stream ended (or never opened); the proxy reconnects after Envoy's backoff.
    StreamEnded { proxy: usize, error: String },
}

/// What the driver may read of a proxy while it runs: its current named subscriptions.
#[derive(Debug, Default)]
pub struct Subscriptions {
    eds: watch::Sender<Arc<BTreeSet<String>>>,
    rds: watch::Sender<Arc<BTreeSet<String>>>,
}

impl Subscriptions {
    fn slot(&self, kind: Kind) -> &watch::Sender<Arc<BTreeSet<String>>> {
        if kind == Kind::Eds {
            &self.eds
        } else {
            &self.rds
        }
    }

    pub fn of(&self, kind: Kind) -> Arc<BTreeSet<String>> {
        self.slot(kind).borrow().clone()
    }

    fn set(&self, kind: Kind, names: &BTreeSet<String>) {
        self.slot(kind).send_replace(Arc::new(names.clone()));
    }
}

pub struct ProxySpec {
    pub index: usize,
    pub node: Node,
    pub endpoint: String,
    pub delta: bool,
    pub events: mpsc::UnboundedSender<Event>,
    pub probe: watch::Receiver<Option<Arc<Probe>>>,
    pub subscriptions: Arc<Subscriptions>,
}

fn hash(name: &str) -> u64 {
    let mut h = DefaultHasher::new();
    name.hash(&mut h);
    h.finish()
}

#[derive(Default)]
struct TypeState {
    version: String,
    nonce: String,
    acked: bool,
    /// EDS/RDS: the names asked for.
    names: BTreeSet<String>,
    /// EDS/RDS: hashes of the names received (a hash each keeps a fleet's memory small).
    held: HashSet<u64>,
}

/// Progress on the current probe.
#[derive(Default)]
struct ProbeState {
    id: u64,
    pending: Option<BTreeSet<String>>,
    done: bool,
}

/// Everything one stream knows; shared by both protocol variants.
struct Proxy {
    spec: ProxySpec,
    types: [TypeState; 4],
    /// Delta only: the set each wildcard type holds (SotW responses carry it whole).
    clusters: BTreeMap<String, Option<String>>,
    listeners: BTreeMap<String, Vec<String>>,
    synced: bool,
    probe: ProbeState,
}

impl Proxy {
    fn new(spec: ProxySpec) -> Self {
        Self {
            spec,
            types: Default::default(),
            clusters: BTreeMap::new(),
            listeners: BTreeMap::new(),
            synced: false,
            probe: ProbeState::default(),
        }
    }

    fn state(&mut self, kind: Kind) -> &mut TypeState {
        &mut self.types[kind.index()]
    }

    /// Takes in the resources of a named type (EDS/RDS): held names, and the probe.
    fn take_named(&mut self, kind: Kind, resources: &[(String, &Any)]) -> anyhow::Result<()> {
        let probe = self.spec.probe.borrow().clone();
        let probe = probe.filter(|p| p.kind == kind);
        if let Some(p) = &probe
            && p.id != self.probe.id
        {
            let names = &self.types[kind.index()].names;
            let pending: BTreeSet<String> = p
                .targets
                .keys()
                .filter(|n| names.contains(*n))
                .cloned()
                .collect();
            self.probe = ProbeState {
                id: p.id,
                done: pending.is_empty(),
                pending: Some(pending),
            };
        }
        let state = &mut self.types[kind.index()];
        for (name, body) in resources {
            state.held.insert(hash(name));
            let (Some(p), Some(pending)) = (&probe, self.probe.pending.as_mut()) else {
                continue;
            };
            if !pending.contains(name) {
                continue;
            }
            let ok = match &p.targets[name] {
                Check::Endpoint { ip } => lite::has_endpoint(body, ip)?,
                Check::Weight {
                    vhost,
                    cluster,
                    weight,
                } => lite::split_weight(body, vhost, cluster)? == Some(*weight),
            };
            if ok {
                pending.remove(name);
            }
        }
        Ok(())
    }

    /// After an ACK: reports sync and probe completion, once each.
    fn after_ack(&mut self, at: Instant) {
        if !self.synced
            && Kind::ALL.iter().all(|k| self.types[k.index()].acked)
            && [Kind::Eds, Kind::Rds].iter().all(|k| {
                let s = &self.types[k.index()];
                s.names.iter().all(|n| s.held.contains(&hash(n)))
            })
        {
            self.synced = true;
            let _ = self.spec.events.send(Event::Synced {
                proxy: self.spec.index,
                at,
            });
        }
        if !self.probe.done && self.probe.pending.as_ref().is_some_and(|p| p.is_empty()) {
            self.probe.done = true;
            let _ = self.spec.events.send(Event::ProbeDone {
                proxy: self.spec.index,
                probe: self.probe.id,
                at,
            });
        }
    }

    fn acked(&mut self, kind: Kind, version: String, bytes: usize) {
        let at = Instant::now();
        let state = self.state(kind);
        state.acked = true;
        state.version = version.clone();
        let _ = self.spec.events.send(Event::Acked {
            proxy: self.spec.index,
            kind,
            version,
            bytes,
            at,
        });
        self.after_ack(at);
    }

    /// A new name set for EDS or RDS; returns (added, removed) when it changed.
    fn resubscribe(
        &mut self,
        kind: Kind,
        names: BTreeSet<String>,
    ) -> Option<(Vec<String>, Vec<String>)> {
        let state = &mut self.types[kind.index()];
        if state.names == names {
            return None;
        }
        let added = names.difference(&state.names).cloned().collect();
        let removed = state.names.difference(&names).cloned().collect();
        let keep: HashSet<u64> = names.iter().map(|n| hash(n)).collect();
        state.held.retain(|h| keep.contains(h));
        state.names = names;
        self.spec
            .subscriptions
            .set(kind, &self.types[kind.index()].names);
        Some((added, removed))
    }
}

async fn connect(
    endpoint: &str,
) -> anyhow::Result<AggregatedDiscoveryServiceClient<tonic::transport::Channel>> {
    // Istio's bootstrap gives the xds-grpc cluster a 1 s connect timeout; Envoy's HTTP/2
    // defaults give its gRPC clients 256 MiB stream and connection windows, so a large
    // push is not paced by window updates.
    let channel = Endpoint::from_shared(endpoint.to_string())?
        .connect_timeout(Duration::from_secs(1))
        .tcp_nodelay(true)
        .initial_stream_window_size(Some(256 << 20))
        .initial_connection_window_size(Some(256 << 20))
        .connect()
        .await?;
    Ok(AggregatedDiscoveryServiceClient::new(channel).max_decoding_message_size(usize::MAX))
}

/// Envoy's reconnect pacing for ADS: fully jittered exponential backoff from 500 ms up to
/// 30 s, reset once a stream has carried a response.
struct Backoff {
    interval_ms: u64,
    rng: crate::mesh::Rng,
}

impl Backoff {
    const BASE_MS: u64 = 500;
    const MAX_MS: u64 = 30_000;

    fn next_delay(&mut self) -> Duration {
        let delay = self.rng.next() % self.interval_ms.max(1);
        self.interval_ms = (self.interval_ms * 2).min(Self::MAX_MS);
        Duration::from_millis(delay)
    }
}

/// Runs one proxy, reconnecting like Envoy, until the task is aborted.
pub async fn run(spec: ProxySpec) {
    let mut backoff = Backoff {
        interval_ms: Backoff::BASE_MS,
        rng: crate::mesh::Rng::new(spec.index as u64),
    };
    let mut p = Proxy::new(spec);
    loop {
        let mut got_response = false;
        let result = if p.spec.delta {
            delta::stream(&mut p, &mut got_response).await
        } else {
            sotw::stream(&mut p, &mut got_response).await
        };
        let error = match result {
            Ok(()) => "the control plane closed the stream".to_string(),
            Err(e) => format!("{e:#}"),
        };
        let _ = p.spec.events.send(Event::StreamEnded {
            proxy: p.spec.index,
            error,
        });
        if got_response {
            backoff.interval_ms = Backoff::BASE_MS;
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}
