//! The client's state-of-the-world stream (`StreamAggregatedResources`): every request
//! carries the type's full name list, the last accepted version and the last nonce; every
//! response is offered to the handler as a whole and answered with an ACK or a NACK.

use std::collections::BTreeMap;
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::Streaming;

use super::state::Driver;
use super::stream::{Client, Protocol};
use crate::resource::{Resource, Subscription, sotw_entry};
use crate::type_url;

/// The gRPC code Envoy 1.40 puts in a NACK's `error_detail`: INTERNAL (13), observed on the
/// wire from real Envoy for both protocol variants (see tests/envoy_ads.rs).
pub(super) const NACK_CODE: i32 = 13;

/// What this stream last asked for, per type: the subscription and the exact
/// `resource_names` list that expressed it (ACKs repeat the list).
pub(super) struct Sent {
    subscription: Subscription,
    names: Vec<String>,
}

/// The state-of-the-world variant of the stream.
pub(super) struct Sotw;

impl Protocol for Sotw {
    type Request = DiscoveryRequest;
    type Response = DiscoveryResponse;
    type Sent = Sent;

    async fn open(
        client: &mut Client,
        requests: UnboundedReceiverStream<DiscoveryRequest>,
    ) -> Result<Streaming<DiscoveryResponse>, tonic::Status> {
        match client {
            Client::Aggregated(c) => c.stream_aggregated_resources(requests).await,
            Client::Secrets(c) => c.stream_secrets(requests).await,
        }
        .map(|r| r.into_inner())
    }

    /// Sends a request for every type whose subscription differs from what this stream last
    /// asked for, in Envoy's type order.
    fn send_subscriptions(
        driver: &Driver,
        sent: &mut BTreeMap<String, Sent>,
        node: &mut Option<envoy_types::pb::envoy::config::core::v3::Node>,
        tx: &mpsc::UnboundedSender<DiscoveryRequest>,
    ) {
        for type_url in type_url::sorted(driver.types.keys().map(String::as_str)) {
            let state = &driver.types[type_url];
            let previous = sent.get(type_url);
            if previous.map(|s| &s.subscription) == Some(&state.subscription) {
                continue;
            }
            let names = match &state.subscription {
                // The first request says "wildcard" the legacy way (no names), which every
                // server understands; a later switch needs the explicit "*".
                Subscription::Wildcard if previous.is_none() => Vec::new(),
                Subscription::Wildcard => vec!["*".to_string()],
                Subscription::Names(names) if names.is_empty() && previous.is_none() => continue,
                Subscription::Names(names) => names.iter().cloned().collect(),
            };
            let request = DiscoveryRequest {
                version_info: state.accepted_version.clone(),
                node: node.take(),
                resource_names: names.clone(),
                type_url: type_url.to_string(),
                response_nonce: state.nonce.clone(),
                ..Default::default()
            };
            sent.insert(
                type_url.to_string(),
                Sent {
                    subscription: state.subscription.clone(),
                    names,
                },
            );
            let _ = tx.send(request);
        }
    }

    /// Offers a response to the handler; returns the ACK or NACK to send.
    fn on_response(
        driver: &mut Driver,
        sent: &BTreeMap<String, Sent>,
        response: DiscoveryResponse,
    ) -> Option<DiscoveryRequest> {
        let type_url = response.type_url.clone();
        let Some(names) = sent.get(&type_url).map(|s| s.names.clone()) else {
            // Envoy ignores responses for types it has no watch on; so do we.
            tracing::debug!(%type_url, "ignoring response for a type never requested");
            return None;
        };
        let next = next_set(driver, &response);
        let result = driver.offer(&type_url, &response.version_info, &response.nonce, next);
        let accepted_version = driver.types[&type_url].accepted_version.clone();
        let error_detail = result.err().map(|message| RpcStatus {
            code: NACK_CODE,
            message,
            details: Vec::new(),
        });
        Some(DiscoveryRequest {
            version_info: accepted_version,
            resource_names: names,
            type_url,
            response_nonce: response.nonce,
            error_detail,
            ..Default::default()
        })
    }
}

/// The set the type would hold after this response. Listener and Cluster responses are
/// complete (absence means removal); other types' responses update only what they carry.
fn next_set(
    driver: &Driver,
    response: &DiscoveryResponse,
) -> Result<BTreeMap<String, Arc<Resource>>, String> {
    let type_url = response.type_url.as_str();
    let state = &driver.types[type_url];
    let mut next = if type_url::sotw_response_is_complete(type_url) {
        BTreeMap::new()
    } else {
        state.resources.clone()
    };
    let mut seen = std::collections::BTreeSet::new();
    for any in &response.resources {
        let (name, body) = sotw_entry(any.clone()).map_err(|e| e.to_string())?;
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
        let resource = match state.resources.get(&name) {
            Some(held) if held.body == body => held.clone(),
            _ => Arc::new(Resource {
                name: name.clone(),
                version: response.version_info.clone(),
                body,
            }),
        };
        next.insert(name, resource);
    }
    Ok(next)
}
