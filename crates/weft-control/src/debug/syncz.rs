//! `/debug/syncz`: per connected proxy and xDS type, what was sent, what the proxy ACKed
//! and the verdict istioctl prints — SYNCED, STALE (the latest response not yet ACKed),
//! NACK (with the proxy's error text) or NOT SENT. Read from the ADS server's status.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use weft_xds::server::{NodeStatus, ServerStatus, TypeStatus};
use weft_xds::type_url;

use crate::node::{Proxy, ProxyType};

/// The four types `proxy-status` reports, in its column order.
pub const TYPES: [&str; 4] = [
    type_url::CLUSTER,
    type_url::LISTENER,
    type_url::CLUSTER_LOAD_ASSIGNMENT,
    type_url::ROUTE_CONFIGURATION,
];

/// One proxy's entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncStatus {
    /// `node.id`.
    pub proxy: String,
    /// `sidecar` or `router`; empty when the control plane no longer tracks the proxy.
    #[serde(default)]
    pub proxy_type: String,
    #[serde(default)]
    pub cluster_id: String,
    /// `ISTIO_VERSION` from the node's metadata.
    #[serde(default)]
    pub istio_version: String,
    pub stream_id: u64,
    /// `sotw` or `delta`.
    pub mode: String,
    /// By short name (`CDS`, `LDS`, `EDS`, `RDS`, then any other type the proxy asked for).
    pub xds: BTreeMap<String, TypeSync>,
}

/// One type on one proxy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TypeSync {
    pub type_url: String,
    pub status: SyncState,
    pub sent_version: Option<String>,
    pub sent_nonce: Option<String>,
    /// The version the proxy last ACKed (it keeps serving it after a NACK).
    pub acked_version: Option<String>,
    /// The NACK's message, when `status` is NACK.
    pub error: Option<String>,
    pub responses: u64,
    pub acks: u64,
    pub nacks: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncState {
    #[serde(rename = "SYNCED")]
    Synced,
    #[serde(rename = "STALE")]
    Stale,
    #[serde(rename = "NACK")]
    Nack,
    #[serde(rename = "NOT SENT")]
    NotSent,
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Synced => "SYNCED",
            SyncState::Stale => "STALE",
            SyncState::Nack => "NACK",
            SyncState::NotSent => "NOT SENT",
        }
    }
}

impl std::fmt::Display for SyncState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TypeSync {
    fn not_sent(type_url: &str) -> Self {
        Self {
            type_url: type_url.to_string(),
            status: SyncState::NotSent,
            sent_version: None,
            sent_nonce: None,
            acked_version: None,
            error: None,
            responses: 0,
            acks: 0,
            nacks: 0,
        }
    }

    /// The verdict on one type: SYNCED when the latest response's nonce was ACKed, NACK
    /// when it was NACKed, STALE while it is neither.
    fn of(type_url: &str, t: &TypeStatus) -> Self {
        let nacked = t
            .last_nack
            .as_ref()
            .filter(|n| t.sent_version.is_some() && n.nonce == t.sent_nonce);
        let status = match (&t.sent_version, nacked) {
            (None, _) => SyncState::NotSent,
            (Some(_), Some(_)) => SyncState::Nack,
            (Some(_), None) if !t.sent_nonce.is_empty() && t.acked_nonce == t.sent_nonce => {
                SyncState::Synced
            }
            (Some(_), None) => SyncState::Stale,
        };
        Self {
            type_url: type_url.to_string(),
            status,
            sent_version: t.sent_version.clone(),
            sent_nonce: Some(t.sent_nonce.clone()).filter(|n| !n.is_empty()),
            acked_version: t.acked_version.clone(),
            error: nacked.map(|n| n.message.clone()),
            responses: t.responses,
            acks: t.acks,
            nacks: t.nacks,
        }
    }
}

/// `proxy`'s entry, from its latest stream's status and what the control plane knows.
pub fn entry(id: &str, node: &NodeStatus, proxy: Option<&Proxy>) -> SyncStatus {
    let mut xds = BTreeMap::new();
    for t in TYPES {
        let sync = node
            .types
            .get(t)
            .map_or_else(|| TypeSync::not_sent(t), |s| TypeSync::of(t, s));
        xds.insert(type_url::short_name(t).to_string(), sync);
    }
    for (t, s) in node
        .types
        .iter()
        .filter(|(t, _)| !TYPES.contains(&t.as_str()))
    {
        xds.insert(type_url::short_name(t).to_string(), TypeSync::of(t, s));
    }
    SyncStatus {
        proxy: id.to_string(),
        proxy_type: proxy
            .map(|p| match p.proxy_type {
                ProxyType::Sidecar => "sidecar",
                ProxyType::Router => "router",
            })
            .unwrap_or_default()
            .to_string(),
        cluster_id: proxy.map(|p| p.cluster_id.clone()).unwrap_or_default(),
        istio_version: proxy.map(|p| p.istio_version.clone()).unwrap_or_default(),
        stream_id: node.stream_id,
        mode: match node.mode {
            weft_xds::Mode::StateOfTheWorld => "sotw",
            weft_xds::Mode::Delta => "delta",
        }
        .to_string(),
        xds,
    }
}

/// Every connected proxy's entry, by node id.
pub fn render(status: &ServerStatus, proxies: &[Proxy]) -> Vec<SyncStatus> {
    status
        .nodes
        .iter()
        .filter(|(_, n)| n.connected)
        .map(|(id, n)| entry(id, n, proxies.iter().find(|p| &p.id == id)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_xds::Subscription;
    use weft_xds::server::Nack;

    fn type_status(sent: Option<&str>, acked: Option<&str>, nack: Option<&str>) -> TypeStatus {
        TypeStatus {
            subscription: Subscription::Wildcard.into(),
            first_request_names: Default::default(),
            initial_resource_versions: BTreeMap::new(),
            sent_version: sent.map(str::to_string),
            sent_nonce: if sent.is_some() {
                "7".into()
            } else {
                "".into()
            },
            acked_version: acked.map(str::to_string),
            // The latest response (nonce 7) is ACKed when the ACKed version is the sent one.
            acked_nonce: if acked.is_some() && acked == sent {
                "7".into()
            } else {
                "5".into()
            },
            last_nack: nack.map(|nonce| Nack {
                version_info: acked.unwrap_or_default().to_string(),
                rejected_version: sent.unwrap_or_default().to_string(),
                nonce: nonce.to_string(),
                code: 13,
                message: "bad listener".into(),
            }),
            responses: 1,
            acks: 0,
            nacks: u64::from(nack.is_some()),
            stale_nonces: 0,
        }
    }

    #[test]
    fn verdicts() {
        let of = |t: TypeStatus| TypeSync::of(type_url::LISTENER, &t);
        assert_eq!(of(type_status(None, None, None)).status, SyncState::NotSent);
        assert_eq!(
            of(type_status(Some("2"), Some("2"), None)).status,
            SyncState::Synced
        );
        assert_eq!(
            of(type_status(Some("3"), Some("2"), None)).status,
            SyncState::Stale
        );
        let nacked = of(type_status(Some("3"), Some("2"), Some("7")));
        assert_eq!(nacked.status, SyncState::Nack);
        assert_eq!(nacked.error.as_deref(), Some("bad listener"));
        // A NACK of an older response does not make the latest one rejected.
        let later = of(type_status(Some("4"), Some("4"), Some("6")));
        assert_eq!((later.status, later.error), (SyncState::Synced, None));
    }
}
