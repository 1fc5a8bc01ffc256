//! The client's delta stream (`DeltaAggregatedResources`): subscriptions travel as
//! subscribe/unsubscribe diffs, a reconnect announces what the client already holds
//! (`initial_resource_versions`) so the server sends only what changed, and responses carry
//! only added, updated and removed resources, applied onto the set the client keeps.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse,
};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::Streaming;

use super::sotw::NACK_CODE;
use super::state::Driver;
use super::stream::{Client, Protocol};
use crate::resource::{Resource, Subscription, resource_name};
use crate::type_url;

/// The delta variant of the stream.
pub(super) struct Delta;

impl Protocol for Delta {
    type Request = DeltaDiscoveryRequest;
    type Response = DeltaDiscoveryResponse;
    type Sent = Subscription;

    async fn open(
        client: &mut Client,
        requests: UnboundedReceiverStream<DeltaDiscoveryRequest>,
    ) -> Result<Streaming<DeltaDiscoveryResponse>, tonic::Status> {
        match client {
            Client::Aggregated(c) => c.delta_aggregated_resources(requests).await,
            Client::Secrets(c) => c.delta_secrets(requests).await,
        }
        .map(|r| r.into_inner())
    }

    /// Sends the subscribe/unsubscribe diff for every type whose subscription differs from what
    /// this stream last asked for; a type's first request also lists what the client holds.
    fn send_subscriptions(
        driver: &Driver,
        sent: &mut BTreeMap<String, Subscription>,
        node: &mut Option<Node>,
        tx: &mpsc::UnboundedSender<DeltaDiscoveryRequest>,
    ) {
        let star = || vec!["*".to_string()];
        for type_url in type_url::sorted(driver.types.keys().map(String::as_str)) {
            let state = &driver.types[type_url];
            let previous = sent.get(type_url);
            if previous == Some(&state.subscription) {
                continue;
            }
            let (subscribe, unsubscribe) = match (previous, &state.subscription) {
                // Legacy wildcard (nothing listed on the first request), understood everywhere.
                (None, Subscription::Wildcard) => (Vec::new(), Vec::new()),
                (None, Subscription::Names(names)) if names.is_empty() => continue,
                (None, Subscription::Names(names)) => (names.iter().cloned().collect(), Vec::new()),
                (Some(Subscription::Wildcard), Subscription::Names(names)) => {
                    (names.iter().cloned().collect(), star())
                }
                (Some(Subscription::Names(old)), Subscription::Wildcard) => {
                    (star(), old.iter().cloned().collect())
                }
                (Some(Subscription::Names(old)), Subscription::Names(new)) => (
                    new.difference(old).cloned().collect(),
                    old.difference(new).cloned().collect(),
                ),
                (Some(Subscription::Wildcard), Subscription::Wildcard) => continue,
            };
            let initial_resource_versions = if previous.is_none() {
                state
                    .resources
                    .iter()
                    .map(|(name, r)| (name.clone(), r.version.clone()))
                    .collect()
            } else {
                Default::default()
            };
            let request = DeltaDiscoveryRequest {
                node: node.take(),
                type_url: type_url.to_string(),
                resource_names_subscribe: subscribe,
                resource_names_unsubscribe: unsubscribe,
                initial_resource_versions,
                ..Default::default()
            };
            sent.insert(type_url.to_string(), state.subscription.clone());
            let _ = tx.send(request);
        }
    }

    fn on_response(
        driver: &mut Driver,
        sent: &BTreeMap<String, Subscription>,
        response: DeltaDiscoveryResponse,
    ) -> Option<DeltaDiscoveryRequest> {
        let type_url = response.type_url.clone();
        if !sent.contains_key(&type_url) {
            tracing::debug!(%type_url, "ignoring delta response for a type never requested");
            return None;
        }
        let next = next_set(driver, &response);
        let result = driver.offer(
            &type_url,
            &response.system_version_info,
            &response.nonce,
            next,
        );
        let error_detail = result.err().map(|message| RpcStatus {
            code: NACK_CODE,
            message,
            details: Vec::new(),
        });
        Some(DeltaDiscoveryRequest {
            type_url,
            response_nonce: response.nonce,
            error_detail,
            ..Default::default()
        })
    }
}

/// The held set with this response's additions, updates and removals applied.
fn next_set(
    driver: &Driver,
    response: &DeltaDiscoveryResponse,
) -> Result<BTreeMap<String, Arc<Resource>>, String> {
    let type_url = response.type_url.as_str();
    let state = &driver.types[type_url];
    let mut next = state.resources.clone();
    let mut seen = BTreeSet::new();
    for wire in &response.resources {
        // A resource without a body refreshes a TTL; what we hold stays.
        let Some(body) = wire.resource.clone() else {
            continue;
        };
        let name = if !wire.name.is_empty() {
            wire.name.clone()
        } else if let Some(n) = wire.resource_name.as_ref().filter(|n| !n.name.is_empty()) {
            n.name.clone()
        } else {
            resource_name(&body).map_err(|e| e.to_string())?
        };
        if body.type_url != type_url {
            return Err(format!(
                "resource {name:?} has type {} in a {type_url} response",
                body.type_url
            ));
        }
        if !seen.insert(name.clone()) {
            return Err(format!("duplicate resource {name:?} in response"));
        }
        if !state.subscription.includes(&name) {
            continue;
        }
        next.insert(
            name.clone(),
            Arc::new(Resource {
                name,
                version: wire.version.clone(),
                body,
            }),
        );
    }
    let removed = response
        .removed_resources
        .iter()
        .chain(response.removed_resource_names.iter().map(|r| &r.name));
    for name in removed {
        next.remove(name);
    }
    Ok(next)
}
