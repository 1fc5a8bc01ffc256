//! The proxy's side of ADS: each response is decoded into prost resources, applied to the
//! store (which converts and warms them), and answered with ACK or — for any rejected
//! resource — NACK with every reason. After each update the proxy re-subscribes to the
//! routes, endpoints and ADS secrets its listeners and clusters now need.

use crate::config::store::Store;
use crate::model::tls::SecretSource;
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use parking_lot::Mutex;
use prost::Message;
use std::sync::{Arc, OnceLock};
use weft_xds::client::{Update, XdsClient, XdsHandler};
use weft_xds::type_url;

pub struct Handler {
    pub store: Arc<Mutex<Store>>,
    /// Set right after the client starts; used to follow the configuration's needs.
    pub client: OnceLock<XdsClient>,
}

pub(crate) fn decode<M: Message + Default>(update: &Update<'_>) -> Result<Vec<M>, String> {
    update
        .changed
        .iter()
        .filter_map(|name| update.resources.get(name))
        .map(|r| {
            M::decode(r.body.value.as_slice())
                .map_err(|e| format!("{}: cannot decode {}: {e}", r.name, r.body.type_url))
        })
        .collect()
}

impl Handler {
    fn follow_needs(&self, store: &Store) {
        if let Some(client) = self.client.get() {
            client.subscribe(type_url::ROUTE_CONFIGURATION, store.wanted_routes());
            client.subscribe(type_url::CLUSTER_LOAD_ASSIGNMENT, store.wanted_endpoints());
            // Secrets named with `ads: {}` (Istio's `credentialName`) come on this stream.
            let ads = store.wanted_secrets().ads;
            if !ads.is_empty() || client.status().types.contains_key(type_url::SECRET) {
                client.subscribe(type_url::SECRET, ads);
            }
        }
    }
}

impl XdsHandler for Handler {
    fn apply(&self, type_url: &str, update: &Update<'_>) -> Result<(), String> {
        let removed: Vec<String> = update.removed.iter().cloned().collect();
        let mut store = self.store.lock();
        let version = update.version;
        let result = match type_url {
            type_url::LISTENER => {
                store.apply_listeners(decode::<Listener>(update)?, &removed, version, false)
            }
            type_url::CLUSTER => {
                store.apply_clusters(decode::<Cluster>(update)?, &removed, version, false)
            }
            type_url::ROUTE_CONFIGURATION => {
                store.apply_routes(decode::<RouteConfiguration>(update)?, &removed, version)
            }
            type_url::CLUSTER_LOAD_ASSIGNMENT => {
                store.apply_endpoints(decode::<ClusterLoadAssignment>(update)?, &removed, version)
            }
            type_url::SECRET => store.apply_secrets(
                SecretSource::Ads,
                decode::<Secret>(update)?,
                &removed,
                version,
            ),
            other => return Err(format!("weft-proxy does not handle type {other}")),
        };
        self.follow_needs(&store);
        result.map_err(|r| r.to_string())
    }
}
