//! What the client remembers across streams: per type, the subscription, the accepted
//! resource set and version, the nonce, and the counters admin pages show. Both protocol
//! variants feed responses through [`Driver::offer`], so ACK/NACK bookkeeping is shared.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::watch;

use super::{ClientConfig, ClientStatus, TypeStatus, Update, XdsHandler};
use crate::resource::{Resource, Subscription};

pub(super) struct Driver {
    pub config: ClientConfig,
    handler: Arc<dyn XdsHandler>,
    pub desired: watch::Receiver<BTreeMap<String, Subscription>>,
    pub shutdown: watch::Receiver<bool>,
    status: watch::Sender<ClientStatus>,
    pub types: BTreeMap<String, TypeState>,
}

pub(super) struct TypeState {
    pub subscription: Subscription,
    pub resources: BTreeMap<String, Arc<Resource>>,
    pub accepted_version: String,
    pub nonce: String,
    last_error: Option<String>,
    acks: u64,
    nacks: u64,
}

/// How and why one stream ended.
pub(super) struct StreamEnd {
    pub shutdown: bool,
    pub got_response: bool,
    pub error: Option<String>,
}

impl StreamEnd {
    pub fn shutdown() -> Self {
        Self {
            shutdown: true,
            got_response: false,
            error: None,
        }
    }

    pub fn failed(error: impl Into<String>, got_response: bool) -> Self {
        Self {
            shutdown: false,
            got_response,
            error: Some(error.into()),
        }
    }
}

/// Resolves once shutdown was requested or every client handle is gone.
pub(super) async fn stop_requested(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

impl Driver {
    pub fn new(
        config: ClientConfig,
        handler: Arc<dyn XdsHandler>,
        desired: watch::Receiver<BTreeMap<String, Subscription>>,
        shutdown: watch::Receiver<bool>,
        status: watch::Sender<ClientStatus>,
    ) -> Self {
        Self {
            config,
            handler,
            desired,
            shutdown,
            status,
            types: BTreeMap::new(),
        }
    }

    pub async fn stopped(&mut self) {
        stop_requested(&mut self.shutdown).await;
    }

    /// Takes the caller's latest subscriptions. Resources a narrowed subscription no
    /// longer covers are dropped: the caller unsubscribed from them, so it already knows.
    pub fn sync_desired(&mut self) {
        let desired = self.desired.borrow_and_update().clone();
        for (type_url, subscription) in desired {
            let state = self.types.entry(type_url).or_insert_with(|| TypeState {
                subscription: subscription.clone(),
                resources: BTreeMap::new(),
                accepted_version: String::new(),
                nonce: String::new(),
                last_error: None,
                acks: 0,
                nacks: 0,
            });
            if state.subscription != subscription {
                state
                    .resources
                    .retain(|name, _| subscription.includes(name));
                state.subscription = subscription;
            }
        }
        self.publish();
    }

    /// A new stream starts: nonces belong to the old one.
    pub fn begin_stream(&mut self) {
        for state in self.types.values_mut() {
            state.nonce.clear();
        }
        self.status.send_modify(|s| s.streams_opened += 1);
    }

    pub fn set_connected(&mut self) {
        self.status.send_modify(|s| {
            s.connected = true;
            s.last_stream_error = None;
        });
    }

    pub fn set_disconnected(&mut self, error: Option<String>) {
        self.status.send_modify(|s| {
            s.connected = false;
            if error.is_some() {
                s.last_stream_error = error;
            }
        });
    }

    /// Offers the would-be set of `type_url` after a response to the handler and commits it
    /// if accepted. `Err` carries the NACK message.
    pub fn offer(
        &mut self,
        type_url: &str,
        version: &str,
        nonce: &str,
        next: Result<BTreeMap<String, Arc<Resource>>, String>,
    ) -> Result<(), String> {
        let Some(state) = self.types.get_mut(type_url) else {
            return Err(format!("no subscription for {type_url}"));
        };
        state.nonce = nonce.to_string();
        let result = next.and_then(|next| {
            let changed: BTreeSet<String> = next
                .iter()
                .filter(|(name, r)| {
                    state
                        .resources
                        .get(*name)
                        .is_none_or(|old| old.body != r.body)
                })
                .map(|(name, _)| name.clone())
                .collect();
            let removed: BTreeSet<String> = state
                .resources
                .keys()
                .filter(|name| !next.contains_key(*name))
                .cloned()
                .collect();
            let update = Update {
                version,
                nonce,
                resources: &next,
                changed: &changed,
                removed: &removed,
            };
            self.handler.apply(type_url, &update)?;
            state.resources = next;
            Ok(())
        });
        match &result {
            Ok(()) => {
                state.accepted_version = version.to_string();
                state.last_error = None;
                state.acks += 1;
            }
            Err(message) => {
                tracing::warn!(type_url, version, %message, "rejecting xDS update");
                state.last_error = Some(message.clone());
                state.nacks += 1;
            }
        }
        self.publish();
        result
    }

    fn publish(&self) {
        let types = self
            .types
            .iter()
            .map(|(type_url, s)| {
                (
                    type_url.clone(),
                    TypeStatus {
                        subscription: s.subscription.clone(),
                        accepted_version: s.accepted_version.clone(),
                        last_nonce: s.nonce.clone(),
                        last_error: s.last_error.clone(),
                        resources: s.resources.len(),
                        acks: s.acks,
                        nacks: s.nacks,
                    },
                )
            })
            .collect();
        self.status.send_modify(|s| s.types = types);
    }
}
