//! One state-of-the-world stream on the server: every response carries the whole subscribed
//! set of a type at the snapshot's version. A request answering an older nonce than the
//! last one sent is ignored outright (its full name list will come again with the ACK of
//! the newer response), as Envoy's and Istio's servers do.

use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use tonic::Status;

use super::grpc::Encoded;
use super::status::Nack;
use super::stream::Protocol;
use super::{Snapshot, node_id};
use crate::resource::{Mode, Subscription};
use crate::type_url;

pub(super) struct TypeState {
    subscription: Arc<Subscription>,
    sent_version: Option<String>,
    nonce: String,
    /// The snapshot and subscription the client's copy of this type reflects.
    sent: Option<(Arc<Snapshot>, Arc<Subscription>)>,
}

type Stream = super::stream::Stream<TypeState>;

impl Protocol for Stream {
    type Request = DiscoveryRequest;

    fn node(request: &DiscoveryRequest) -> Option<&Node> {
        request.node.as_ref()
    }

    async fn on_request(
        &mut self,
        request: DiscoveryRequest,
        snapshot: Option<Arc<Snapshot>>,
    ) -> Result<(), Status> {
        if self.recorder.node().is_none() {
            let node = node_id(request.node.as_ref())?;
            self.recorder.open(node, Mode::StateOfTheWorld);
        }
        let type_url = request.type_url.clone();
        if type_url.is_empty() {
            return Err(Status::invalid_argument("request without type_url"));
        }
        let existing = self.types.get(&type_url);
        // An ACK repeats the names of the request before it: recognised without building a
        // second set of them. Otherwise the stream, its status and every other stream
        // asking alike share one copy.
        let requested = match existing {
            Some(s) if asks_for(&request.resource_names, &s.subscription) => s.subscription.clone(),
            _ => self.shared.subscriptions.intern(requested_subscription(
                &request.resource_names,
                existing.map(|s| &*s.subscription),
            )),
        };
        if !request.response_nonce.is_empty() {
            let Some(state) = existing else {
                // A nonce for a type this stream never answered: from another stream.
                self.recorder
                    .with_type(&type_url, &requested, |t| t.stale_nonces += 1);
                return Ok(());
            };
            if state.nonce != request.response_nonce {
                self.recorder
                    .with_type(&type_url, &state.subscription, |t| t.stale_nonces += 1);
                return Ok(());
            }
            let rejected_version = state.sent_version.clone().unwrap_or_default();
            match &request.error_detail {
                Some(error) => {
                    tracing::warn!(node = ?self.recorder.node(), %type_url, message = %error.message, "NACK");
                    let nack = Nack {
                        version_info: request.version_info.clone(),
                        rejected_version,
                        nonce: request.response_nonce.clone(),
                        code: error.code,
                        message: error.message.clone(),
                    };
                    self.recorder
                        .with_type(&type_url, &state.subscription, |t| {
                            t.nacks += 1;
                            t.last_nack = Some(nack);
                        });
                }
                None => {
                    self.recorder
                        .with_type(&type_url, &state.subscription, |t| {
                            t.acks += 1;
                            t.acked_version = Some(request.version_info.clone());
                            t.acked_nonce = request.response_nonce.clone();
                        });
                }
            }
        }
        let respond = match self.types.get_mut(&type_url) {
            None => {
                let names = self.shared.name_lists.intern(request.resource_names);
                self.recorder.with_type(&type_url, &requested, |t| {
                    t.first_request_names = names;
                });
                self.types.insert(
                    type_url.clone(),
                    Box::new(TypeState {
                        subscription: requested,
                        sent_version: None,
                        nonce: String::new(),
                        sent: None,
                    }),
                );
                true
            }
            Some(state) => {
                // A request without a nonce asks afresh; a changed name list asks for more
                // or fewer resources. A bare ACK or NACK needs no answer.
                let changed = !Arc::ptr_eq(&state.subscription, &requested);
                state.subscription = requested.clone();
                if changed {
                    self.recorder.with_type(&type_url, &requested, |_| {});
                }
                changed || request.response_nonce.is_empty()
            }
        };
        if respond && let Some(snapshot) = snapshot {
            self.push(&type_url, &snapshot, true).await;
        }
        Ok(())
    }

    /// Pushes every subscribed type, in Envoy's order, that has not seen this version.
    async fn on_snapshot(&mut self, snapshot: &Arc<Snapshot>) {
        // A type at an unchanged version has unchanged content: the client's copy reflects
        // this snapshot as well, and the older one need not be kept alive for it.
        for (t, state) in &mut self.types {
            if let Some((sent, _)) = &mut state.sent
                && state.sent_version.as_deref() == Some(snapshot.type_version(t))
            {
                *sent = snapshot.clone();
            }
        }
        let pending: Vec<String> = type_url::sorted(self.types.keys().map(String::as_str))
            .into_iter()
            .filter(|t| self.types[*t].sent_version.as_deref() != Some(snapshot.type_version(t)))
            .map(str::to_string)
            .collect();
        for type_url in pending {
            self.push(&type_url, snapshot, false).await;
        }
    }
}

impl Stream {
    /// Sends the type at the snapshot's version. A request gets the whole subscribed set; a
    /// new snapshot gets, for types whose responses need not be complete (EDS, RDS: absence
    /// is not removal), only what differs from what the client holds, and nothing at all
    /// when that is nothing — an endpoint change is a few assignments, not thousands.
    async fn push(&mut self, type_url: &str, snapshot: &Arc<Snapshot>, full: bool) {
        let Some(state) = self.types.get_mut(type_url) else {
            return;
        };
        let incremental = !full && !type_url::sotw_response_is_complete(type_url);
        let changes = match &state.sent {
            Some((earlier, subscription))
                if incremental && Arc::ptr_eq(subscription, &state.subscription) =>
            {
                snapshot.sotw_changes(earlier, type_url, &state.subscription)
            }
            _ => None,
        };
        state.sent = Some((snapshot.clone(), state.subscription.clone()));
        let resources = match changes {
            Some(parts) if parts.is_empty() => {
                // The client's copy is already this version's.
                state.sent_version = Some(snapshot.type_version(type_url).to_string());
                return;
            }
            Some(parts) => parts,
            None => snapshot.sotw_resources(type_url, &state.subscription),
        };
        let nonce = self.shared.nonce();
        let head = DiscoveryResponse {
            version_info: snapshot.type_version(type_url).to_string(),
            type_url: type_url.to_string(),
            nonce: nonce.clone(),
            ..Default::default()
        };
        let response = Encoded::from_parts(&head, resources);
        state.sent_version = Some(snapshot.type_version(type_url).to_string());
        state.nonce = nonce.clone();
        self.recorder.with_type(type_url, &state.subscription, |t| {
            t.sent_version = Some(snapshot.type_version(type_url).to_string());
            t.sent_nonce = nonce;
            t.responses += 1;
        });
        if self.tx.send(Ok(response)).await.is_err() {
            self.gone = true;
        }
    }
}

/// Whether `names` asks for exactly `current` (what [`requested_subscription`] would make
/// of them is equal to it), checked without copying the names. Every ACK of a sidecar
/// repeats its two thousand EDS names, so this runs a thousand times per push: names
/// listed in order (as clients list them) are compared in one pass, others are sorted.
fn asks_for(names: &[String], current: &Subscription) -> bool {
    match current {
        Subscription::Wildcard => names.is_empty() || names.iter().any(|n| n == "*"),
        Subscription::Names(set) => {
            if names.len() < set.len() {
                return false;
            }
            // The set never holds `*` (a request naming it is a wildcard), so a list
            // naming it differs from the set below.
            if names.windows(2).all(|w| w[0] < w[1]) {
                return names.len() == set.len() && names.iter().zip(set).all(|(a, b)| a == b);
            }
            let mut sorted: Vec<&str> = names.iter().map(String::as_str).collect();
            sorted.sort_unstable();
            sorted.dedup();
            sorted.len() == set.len() && sorted.iter().zip(set).all(|(a, b)| *a == b)
        }
    }
}

/// What a request's `resource_names` asks for: `*` or (legacy) an empty list on the first
/// request means everything, and an empty list keeps a legacy wildcard going; otherwise
/// the list is the exact set (an empty list after named requests means none).
fn requested_subscription(names: &[String], current: Option<&Subscription>) -> Subscription {
    if names.iter().any(|n| n == "*") {
        return Subscription::Wildcard;
    }
    if names.is_empty() && matches!(current, None | Some(Subscription::Wildcard)) {
        return Subscription::Wildcard;
    }
    Subscription::names(names.iter().cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_name_list_is_recognised_as_the_current_subscription() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ab = Subscription::names(["a", "b"]);
        for (request, current) in [
            (names(&["b", "a"]), &ab),
            (names(&["a", "b", "a"]), &ab),
            (names(&[]), &Subscription::Wildcard),
            (names(&["*", "x"]), &Subscription::Wildcard),
            (names(&["a"]), &ab),
            (names(&["a", "b", "c"]), &ab),
            (names(&["a", "a"]), &ab),
            (names(&["a", "*"]), &ab),
            (names(&[]), &ab),
            (names(&["a"]), &Subscription::Wildcard),
            (names(&["a", "b"]), &ab),
            (names(&["a", "c"]), &ab),
            (names(&["a", "b", "b"]), &ab),
            (names(&["*", "b"]), &ab),
            (names(&[]), &Subscription::names(Vec::<String>::new())),
        ] {
            // The fast check agrees with building the subscription and comparing.
            assert_eq!(
                asks_for(&request, current),
                requested_subscription(&request, Some(current)) == *current,
                "{request:?} against {current:?}"
            );
        }
    }

    #[test]
    fn wildcard_is_star_or_a_legacy_empty_list() {
        let named = Subscription::names(["a"]);
        assert_eq!(requested_subscription(&[], None), Subscription::Wildcard);
        assert_eq!(
            requested_subscription(&[], Some(&Subscription::Wildcard)),
            Subscription::Wildcard
        );
        assert_eq!(
            requested_subscription(&[], Some(&named)),
            Subscription::names(Vec::<String>::new())
        );
        assert_eq!(
            requested_subscription(&["a".into(), "*".into()], Some(&named)),
            Subscription::Wildcard
        );
        assert_eq!(
            requested_subscription(&["b".into()], Some(&Subscription::Wildcard)),
            Subscription::names(["b"])
        );
    }
}
