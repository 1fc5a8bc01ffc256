//! One delta stream on the server: remembers which version of each resource the client
//! holds (seeded from `initial_resource_versions` on reconnect) and sends only resources
//! whose version differs, plus removals. Subscription diffs are applied whatever nonce they
//! carry (they cannot be re-derived later); only the ACK/NACK part checks the nonce.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse,
};
use tonic::Status;

use super::delta_set::{self, Coverage, Held, Update};
use super::grpc::Encoded;
use super::status::Nack;
use super::stream::Protocol;
use super::{Snapshot, node_id};
use crate::resource::{Mode, Subscription};
use crate::type_url;

pub(super) struct TypeState {
    wildcard: bool,
    /// The names subscribed to explicitly (a `Subscription::Names`), shared with equal
    /// sets of other streams.
    names: Arc<Subscription>,
    /// What the client holds (see `delta_set`).
    held: Held,
    /// Subscribed names not yet answered (present or absent).
    unanswered: BTreeSet<String>,
    answered: bool,
    sent_version: Option<String>,
    nonce: String,
    /// `wildcard` and `names` as the status shows them.
    subscription: Arc<Subscription>,
}

impl TypeState {
    fn coverage(&self) -> Coverage {
        Coverage {
            wildcard: self.wildcard,
            names: self.names.clone(),
        }
    }
}

type Stream = super::stream::Stream<TypeState>;

impl Protocol for Stream {
    type Request = DeltaDiscoveryRequest;

    fn node(request: &DeltaDiscoveryRequest) -> Option<&Node> {
        request.node.as_ref()
    }

    async fn on_request(
        &mut self,
        request: DeltaDiscoveryRequest,
        snapshot: Option<Arc<Snapshot>>,
    ) -> Result<(), Status> {
        if self.recorder.node().is_none() {
            let node = node_id(request.node.as_ref())?;
            self.recorder.open(node, Mode::Delta);
        }
        let type_url = request.type_url.clone();
        if type_url.is_empty() {
            return Err(Status::invalid_argument("request without type_url"));
        }
        let is_new = !self.types.contains_key(&type_url);
        let shared = self.shared.clone();
        let state = self.types.entry(type_url.clone()).or_insert_with(|| {
            Box::new(TypeState {
                // Legacy wildcard: a first request that subscribes to nothing.
                wildcard: request.resource_names_subscribe.is_empty(),
                names: shared
                    .subscriptions
                    .intern(Subscription::names(Vec::<String>::new())),
                held: Held::Reported(
                    request
                        .initial_resource_versions
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ),
                unanswered: BTreeSet::new(),
                answered: false,
                sent_version: None,
                nonce: String::new(),
                subscription: Arc::new(Subscription::Wildcard),
            })
        });
        let resubscribed = !request.resource_names_subscribe.is_empty()
            || !request.resource_names_unsubscribe.is_empty();
        if resubscribed {
            let mut names = match &*state.names {
                Subscription::Names(names) => names.clone(),
                Subscription::Wildcard => BTreeSet::new(),
            };
            for name in &request.resource_names_subscribe {
                if name == "*" {
                    state.wildcard = true;
                } else if names.insert(name.clone()) {
                    state.unanswered.insert(name.clone());
                }
            }
            for name in &request.resource_names_unsubscribe {
                if name == "*" {
                    state.wildcard = false;
                } else {
                    names.remove(name);
                    state.unanswered.remove(name);
                }
            }
            state.names = shared.subscriptions.intern(Subscription::Names(names));
            if let Held::Reported(versions) = &mut state.held {
                let coverage = Coverage {
                    wildcard: state.wildcard,
                    names: state.names.clone(),
                };
                versions.retain(|name, _| coverage.covers(name));
            }
        }
        if is_new || resubscribed {
            state.subscription = if state.wildcard {
                shared.subscriptions.intern(Subscription::Wildcard)
            } else {
                state.names.clone()
            };
        }
        let subscription = state.subscription.clone();
        if is_new {
            let initial = match &state.held {
                Held::Reported(versions) => versions.clone(),
                Held::Sent { .. } => BTreeMap::new(),
            };
            let names = self
                .shared
                .name_lists
                .intern(request.resource_names_subscribe.clone());
            self.recorder.with_type(&type_url, &subscription, |t| {
                t.first_request_names = names;
                t.initial_resource_versions = initial;
            });
        } else {
            self.recorder.with_type(&type_url, &subscription, |_| {});
        }
        if !request.response_nonce.is_empty() {
            self.record_reply(&type_url, &subscription, &request);
        }
        if (is_new || resubscribed)
            && let Some(snapshot) = snapshot
        {
            self.push(&type_url, &snapshot).await;
        }
        Ok(())
    }

    async fn on_snapshot(&mut self, snapshot: &Arc<Snapshot>) {
        // A type at an unchanged version has unchanged content: what the client holds is
        // this snapshot's as well, and the older one need not be kept alive for it.
        for (t, state) in &mut self.types {
            if let Held::Sent { snapshot: held, .. } = &mut state.held
                && state.sent_version.as_deref() == Some(snapshot.type_version(t))
            {
                *held = snapshot.clone();
            }
        }
        let pending: Vec<String> = type_url::sorted(self.types.keys().map(String::as_str))
            .into_iter()
            .filter(|t| self.types[*t].sent_version.as_deref() != Some(snapshot.type_version(t)))
            .map(str::to_string)
            .collect();
        for type_url in pending {
            self.push(&type_url, snapshot).await;
        }
    }
}

impl Stream {
    fn record_reply(
        &self,
        type_url: &str,
        subscription: &Arc<Subscription>,
        request: &DeltaDiscoveryRequest,
    ) {
        let state = &self.types[type_url];
        if state.nonce != request.response_nonce {
            self.recorder
                .with_type(type_url, subscription, |t| t.stale_nonces += 1);
            return;
        }
        let version = state.sent_version.clone().unwrap_or_default();
        match &request.error_detail {
            Some(error) => {
                tracing::warn!(node = ?self.recorder.node(), %type_url, message = %error.message, "delta NACK");
                let nack = Nack {
                    version_info: String::new(),
                    rejected_version: version,
                    nonce: request.response_nonce.clone(),
                    code: error.code,
                    message: error.message.clone(),
                };
                self.recorder.with_type(type_url, subscription, |t| {
                    t.nacks += 1;
                    t.last_nack = Some(nack);
                });
            }
            None => self.recorder.with_type(type_url, subscription, |t| {
                t.acks += 1;
                t.acked_version = Some(version);
                t.acked_nonce = request.response_nonce.clone();
            }),
        }
    }

    /// Sends what the client lacks of this type: resources whose version differs from what
    /// it holds, removals of what it holds and the snapshot lacks, and for newly subscribed
    /// names the snapshot lacks, a removal saying they do not exist. Nothing to say means
    /// no response, except the first answer to a type, which Envoy's init waits for.
    async fn push(&mut self, type_url: &str, snapshot: &Arc<Snapshot>) {
        let Some(state) = self.types.get_mut(type_url) else {
            return;
        };
        let coverage = state.coverage();
        let Update { parts, mut removed } =
            delta_set::update(snapshot, type_url, &coverage, &state.held);
        for name in &state.unanswered {
            if !snapshot.contains(type_url, name) && !removed.contains(name) {
                removed.push(name.clone());
            }
        }
        state.unanswered.clear();
        state.held = Held::Sent {
            snapshot: snapshot.clone(),
            coverage,
        };
        state.sent_version = Some(snapshot.type_version(type_url).to_string());
        if parts.is_empty() && removed.is_empty() && state.answered {
            return;
        }
        state.answered = true;
        let nonce = self.shared.nonce();
        state.nonce = nonce.clone();
        let subscription = state.subscription.clone();
        let head = DeltaDiscoveryResponse {
            system_version_info: snapshot.type_version(type_url).to_string(),
            type_url: type_url.to_string(),
            removed_resources: removed,
            nonce: nonce.clone(),
            ..Default::default()
        };
        self.recorder.with_type(type_url, &subscription, |t| {
            t.sent_version = Some(snapshot.type_version(type_url).to_string());
            t.sent_nonce = nonce;
            t.responses += 1;
        });
        if self
            .tx
            .send(Ok(Encoded::from_parts(&head, parts)))
            .await
            .is_err()
        {
            self.gone = true;
        }
    }
}
