//! Secrets in the store and the clusters that use them. Secrets are kept per source (a
//! bootstrap's static ones, ADS, or an agent's SDS stream), as Envoy keeps them apart even
//! under one name. A TLS cluster warms like Envoy's: until each of its secrets arrived or
//! its `initial_fetch_timeout` passed (`0s`: without limit). When a secret arrives or
//! rotates, every cluster naming it gets a new client configuration; open connections keep
//! the one they were made with.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use weft_yaml::FieldPath;

use super::store::{Accepted, ClusterEntry, Rejected, Store, describe};
use crate::model::support;
use crate::model::tls::{SecretMaterial, SecretRef, SecretSource, Unresolved};
use crate::upstream::cluster::Cluster;
use crate::upstream::tls::ClientTls;

/// Every accepted secret, by source then name.
pub type Secrets = BTreeMap<SecretSource, BTreeMap<String, Accepted<SecretMaterial, Secret>>>;

/// What the configuration asks of each source that is not static.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WantedSecrets {
    /// Names asked for on the ADS stream.
    pub ads: BTreeSet<String>,
    /// Names asked of each agent, by its static cluster.
    pub agents: BTreeMap<String, BTreeSet<String>>,
}

impl Store {
    /// Secrets from `source`: `updates` added or replaced, `removed` deleted. A secret that
    /// does not parse is rejected with its reason while the rest apply, and every cluster
    /// that names a changed secret takes it for its new connections.
    pub fn apply_secrets(
        &mut self,
        source: SecretSource,
        updates: Vec<Secret>,
        removed: &[String],
        version: &str,
    ) -> Result<(), Rejected> {
        let is_static = source == SecretSource::Static;
        let mut errors = Vec::new();
        let mut changed = BTreeSet::new();
        let held = self.secrets.entry(source.clone()).or_default();
        for name in removed {
            if held.remove(name).is_some() {
                changed.insert(name.clone());
            }
        }
        for s in updates {
            let unsupported = support::check_message(&s);
            if !unsupported.is_empty() {
                errors.push(describe("secret", &s.name, &unsupported));
                continue;
            }
            match SecretMaterial::new(&s, &FieldPath::root()) {
                Ok(material) => {
                    changed.insert(s.name.clone());
                    held.insert(
                        s.name.clone(),
                        Accepted::new(Arc::new(material), s, version, is_static),
                    );
                }
                Err(e) => errors.push(describe("secret", &s.name, &[e])),
            }
        }
        let users: Vec<Arc<Cluster>> = self
            .clusters
            .values()
            .chain(self.warming_clusters.values())
            .filter(|e| secret_refs(e).any(|r| r.source == source && changed.contains(&r.name)))
            .map(|e| e.cluster.clone())
            .collect();
        for cluster in users {
            self.refresh_tls(&cluster);
        }
        self.finish(errors)
    }

    fn secret(&self, r: &SecretRef) -> Option<&Accepted<SecretMaterial, Secret>> {
        self.secrets.get(&r.source).and_then(|m| m.get(&r.name))
    }

    /// Builds `cluster`'s client configuration from the secrets at hand, or leaves it
    /// without one (its connections then fail as Envoy's do) until they are all there.
    pub fn refresh_tls(&self, cluster: &Cluster) {
        let (Some(model), Some(slot)) = (&cluster.config.tls, &cluster.connector.tls) else {
            return;
        };
        let name = &cluster.config.name;
        let resolved = model.resolve(|r| self.secret(r).map(|a| a.config.clone()));
        let built = match resolved {
            Ok(upstream) => ClientTls::new(upstream, model.sni.as_deref()),
            Err(Unresolved::Missing(_)) => {
                slot.set(None);
                return;
            }
            Err(e @ Unresolved::Invalid { .. }) => Err(e.to_string()),
        };
        match built {
            Ok(tls) => slot.set(Some(Arc::new(tls))),
            Err(error) => {
                tracing::warn!(cluster = %name, %error, "cannot build the cluster's TLS client");
                slot.set(None);
            }
        }
    }

    /// Errors of a cluster's secret references that Envoy refuses when the cluster is
    /// created: a static secret that does not exist, an agent that is not a static
    /// cluster. `batch` holds the static clusters arriving with it.
    pub fn check_secret_refs(
        &self,
        cluster: &Cluster,
        batch: &BTreeSet<String>,
    ) -> Result<(), String> {
        let Some(model) = &cluster.config.tls else {
            return Ok(());
        };
        for r in model.secrets() {
            match &r.source {
                SecretSource::Static if self.secret(r).is_none() => {
                    return Err(format!("Unknown static secret: {}", r.name));
                }
                SecretSource::Grpc { cluster: agent } => {
                    let is_static = self
                        .clusters
                        .get(agent)
                        .or(self.warming_clusters.get(agent))
                        .is_some_and(|e| e.is_static)
                        || batch.contains(agent);
                    if !is_static {
                        return Err(format!(
                            "secret '{}': unknown static cluster '{agent}' (an SDS config \
                             source must name a static cluster)",
                            r.name
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether every secret of a warming cluster has arrived or waited out its timeout.
    pub(super) fn secrets_settled(&self, e: &ClusterEntry, now: SystemTime) -> bool {
        let waited = now.duration_since(e.updated).unwrap_or_default();
        secret_refs(e).all(|r| {
            self.secret(r).is_some() || r.initial_fetch_timeout.is_some_and(|t| waited >= t)
        })
    }

    /// The secrets the clusters name, per source to ask.
    pub fn wanted_secrets(&self) -> WantedSecrets {
        let mut wanted = WantedSecrets::default();
        for e in self.clusters.values().chain(self.warming_clusters.values()) {
            for r in secret_refs(e) {
                match &r.source {
                    SecretSource::Static => {}
                    SecretSource::Ads => {
                        wanted.ads.insert(r.name.clone());
                    }
                    SecretSource::Grpc { cluster } => {
                        wanted
                            .agents
                            .entry(cluster.clone())
                            .or_default()
                            .insert(r.name.clone());
                    }
                }
            }
        }
        wanted
    }

    /// Secrets a cluster waits for that have not arrived (`dynamic_warming_secrets`).
    pub fn warming_secrets(&self) -> BTreeSet<&SecretRef> {
        self.clusters
            .values()
            .chain(self.warming_clusters.values())
            .flat_map(secret_refs)
            .filter(|r| r.source != SecretSource::Static && self.secret(r).is_none())
            .collect()
    }
}

fn secret_refs(e: &ClusterEntry) -> impl Iterator<Item = &SecretRef> {
    e.cluster
        .config
        .tls
        .as_ref()
        .into_iter()
        .flat_map(|m| m.secrets())
}
