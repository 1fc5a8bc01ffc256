//! The proxy's subscriptions to secret agents: for each static cluster a TLS context names
//! as its SDS `api_config_source` (an Istio bootstrap's `sds-grpc`, a Unix socket), one
//! `SecretDiscoveryService` stream asking for every secret the configuration needs from it.
//! Envoy opens a stream per secret; one per agent asks for the same names, and an agent
//! answers the union of what its streams ask for either way.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use parking_lot::Mutex;
use weft_xds::Mode;
use weft_xds::client::{ClientConfig, Update, XdsClient, XdsHandler};
use weft_xds::type_url;

use crate::config::store::Store;
use crate::model::tls::SecretSource;
use crate::proxy::{Server, grpc_target};

/// One client per agent cluster, started the first time a secret is needed from it.
#[derive(Default)]
pub struct SdsClients {
    clients: Mutex<BTreeMap<String, XdsClient>>,
    /// Why each agent that could not be dialled could not, logged once until it changes.
    failing: Mutex<BTreeMap<String, String>>,
}

impl SdsClients {
    /// Asks each agent for exactly what `wanted` names from it (by cluster), starting
    /// clients as needed. A cluster that cannot be dialled yet is logged, and `false` says
    /// to call again.
    pub fn follow(&self, server: &Server, wanted: &BTreeMap<String, BTreeSet<String>>) -> bool {
        let mut all_started = true;
        let mut clients = self.clients.lock();
        for (cluster, names) in wanted {
            if let Some(client) = clients.get(cluster) {
                client.subscribe(type_url::SECRET, names.clone());
                continue;
            }
            let target = match grpc_target(server, cluster) {
                Ok(t) => t,
                Err(error) => {
                    if self.failing.lock().insert(cluster.clone(), error.clone())
                        != Some(error.clone())
                    {
                        tracing::warn!(%cluster, %error, "cannot reach the SDS cluster");
                    }
                    all_started = false;
                    continue;
                }
            };
            let node = server.bootstrap.node.clone().unwrap_or_default();
            let config = ClientConfig::secrets(target, node, Mode::StateOfTheWorld);
            let handler = Arc::new(Agent {
                store: server.store.clone(),
                cluster: cluster.clone(),
            });
            match XdsClient::spawn(config, handler) {
                Ok(client) => {
                    self.failing.lock().remove(cluster);
                    client.subscribe(type_url::SECRET, names.clone());
                    clients.insert(cluster.clone(), client);
                }
                Err(e) => {
                    tracing::warn!(%cluster, error = %e, "cannot start the SDS client");
                    all_started = false;
                }
            }
        }
        // An agent no secret is wanted from any more is asked for nothing, as Envoy's
        // streams for removed secrets close.
        for (cluster, client) in clients.iter() {
            if !wanted.contains_key(cluster) {
                client.subscribe(type_url::SECRET, BTreeSet::new());
            }
        }
        all_started
    }

    pub fn shutdown(&self) {
        for client in self.clients.lock().values() {
            client.shutdown();
        }
    }
}

/// Applies one agent's secrets to the store, keyed by the agent's cluster.
struct Agent {
    store: Arc<Mutex<Store>>,
    cluster: String,
}

impl XdsHandler for Agent {
    fn apply(&self, type_url: &str, update: &Update<'_>) -> Result<(), String> {
        if type_url != type_url::SECRET {
            return Err(format!(
                "an SDS stream carries secrets only, not {type_url}"
            ));
        }
        let secrets = crate::xds::decode::<Secret>(update)?;
        let removed: Vec<String> = update.removed.iter().cloned().collect();
        let source = SecretSource::Grpc {
            cluster: self.cluster.clone(),
        };
        self.store
            .lock()
            .apply_secrets(source, secrets, &removed, update.version)
            .map_err(|r| r.to_string())
    }
}
