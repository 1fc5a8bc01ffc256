//! What the server knows about each connected client, per type: what it sent, what was
//! ACKed, the last NACK. Kept in a `watch` channel so debug pages read it without locks and
//! tests can wait for "node X ACKed version V of type T" instead of sleeping.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;

use crate::resource::{Mode, Subscription};

/// Every node the server has seen, by node id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerStatus {
    pub nodes: BTreeMap<String, NodeStatus>,
}

/// One node's latest stream.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeStatus {
    /// Server-wide id of the stream this entry describes (the node's latest).
    pub stream_id: u64,
    pub mode: Mode,
    pub connected: bool,
    /// Streams this node has opened, reconnects included.
    pub streams: u64,
    /// Boxed: a map's node has room for eleven entries, and four types of a thousand
    /// nodes held inline in such nodes were 3 MB, mostly empty.
    pub types: BTreeMap<String, Box<TypeStatus>>,
}

/// One type on one node's stream. Subscriptions and name lists are shared with every
/// stream that holds an equal one (see `intern`): sidecars of a namespace ask alike.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeStatus {
    pub subscription: Arc<Subscription>,
    /// The names the client listed in its first request for this type (state-of-the-world:
    /// `resource_names`; delta: `resource_names_subscribe`).
    pub first_request_names: Arc<Vec<String>>,
    /// Delta: `initial_resource_versions` of the first request (what the client held).
    pub initial_resource_versions: BTreeMap<String, String>,
    /// Version of the last response sent.
    pub sent_version: Option<String>,
    /// Nonce of the last response sent.
    pub sent_nonce: String,
    /// Version the client last ACKed.
    pub acked_version: Option<String>,
    /// Nonce of the response the client last ACKed: equal to `sent_nonce` when the latest
    /// response is ACKed (a resend of the same version has a new nonce).
    pub acked_nonce: String,
    pub last_nack: Option<Nack>,
    pub responses: u64,
    pub acks: u64,
    pub nacks: u64,
    /// Requests ignored because they answered an older response than the last one sent.
    pub stale_nonces: u64,
}

/// A client's rejection of a response.
#[derive(Clone, Debug, PartialEq)]
pub struct Nack {
    /// The version the client says it still runs (state-of-the-world `version_info`).
    pub version_info: String,
    /// Version of the rejected response.
    pub rejected_version: String,
    pub nonce: String,
    pub code: i32,
    pub message: String,
}

impl TypeStatus {
    fn new(subscription: Arc<Subscription>) -> Self {
        Self {
            subscription,
            first_request_names: Arc::default(),
            initial_resource_versions: BTreeMap::new(),
            sent_version: None,
            sent_nonce: String::new(),
            acked_version: None,
            acked_nonce: String::new(),
            last_nack: None,
            responses: 0,
            acks: 0,
            nacks: 0,
            stale_nonces: 0,
        }
    }
}

/// What every open stream subscribes to, by stream id and type URL. The status keeps one
/// stream per node, but a node may hold several at once — Envoy opens one SDS stream per
/// secret it asks an agent for — and a server that loads what is asked for must see all.
pub type Interest = BTreeMap<u64, BTreeMap<String, Arc<Subscription>>>;

/// A stream's handle on the shared status: writes only while the stream is its node's
/// latest, so a lingering old stream cannot overwrite a reconnected one.
pub(super) struct Recorder {
    status: Arc<watch::Sender<ServerStatus>>,
    /// Kept only by servers that asked for it ([`super::AdsServer::tracking_interest`]).
    interest: Option<Arc<watch::Sender<Interest>>>,
    stream_id: u64,
    node: Option<String>,
}

impl Recorder {
    pub fn new(
        status: Arc<watch::Sender<ServerStatus>>,
        interest: Option<Arc<watch::Sender<Interest>>>,
        stream_id: u64,
    ) -> Self {
        Self {
            status,
            interest,
            stream_id,
            node: None,
        }
    }

    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    pub fn open(&mut self, node: String, mode: Mode) {
        let stream_id = self.stream_id;
        self.status.send_modify(|s| {
            let streams = s.nodes.get(&node).map_or(0, |n| n.streams) + 1;
            s.nodes.insert(
                node.clone(),
                NodeStatus {
                    stream_id,
                    mode,
                    connected: true,
                    streams,
                    types: BTreeMap::new(),
                },
            );
        });
        self.node = Some(node);
    }

    /// Applies `f` to the type's entry (created with `subscription` if absent).
    pub fn with_type(
        &self,
        type_url: &str,
        subscription: &Arc<Subscription>,
        f: impl FnOnce(&mut TypeStatus),
    ) {
        if let Some(interest) = &self.interest {
            interest.send_if_modified(|i| {
                let types = i.entry(self.stream_id).or_default();
                match types.get(type_url) {
                    Some(s) if Arc::ptr_eq(s, subscription) || **s == **subscription => false,
                    _ => {
                        types.insert(type_url.to_string(), subscription.clone());
                        true
                    }
                }
            });
        }
        let Some(node) = &self.node else { return };
        self.status.send_modify(|s| {
            if let Some(n) = s
                .nodes
                .get_mut(node)
                .filter(|n| n.stream_id == self.stream_id)
            {
                let t = n
                    .types
                    .entry(type_url.to_string())
                    .or_insert_with(|| Box::new(TypeStatus::new(subscription.clone())));
                if !Arc::ptr_eq(&t.subscription, subscription) {
                    t.subscription = subscription.clone();
                }
                f(t);
            }
        });
    }

    pub fn close(&self) {
        if let Some(interest) = &self.interest {
            interest.send_if_modified(|i| i.remove(&self.stream_id).is_some());
        }
        let Some(node) = &self.node else { return };
        self.status.send_modify(|s| {
            if let Some(n) = s
                .nodes
                .get_mut(node)
                .filter(|n| n.stream_id == self.stream_id)
            {
                n.connected = false;
            }
        });
    }
}
