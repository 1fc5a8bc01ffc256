//! A simulated sidecar's delta ADS stream.

use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use weft_xds::envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use weft_xds::envoy_types::pb::google::protobuf::Any;

use super::{Kind, Proxy, connect, hash};
use crate::lite;

/// One delta stream. A new stream subscribes afresh to everything (wildcard CDS/LDS, the
/// EDS/RDS names held), so the server sends every resource again.
pub(super) async fn stream(p: &mut Proxy, got_response: &mut bool) -> anyhow::Result<()> {
    let mut client = connect(&p.spec.endpoint).await?;
    let (tx, rx) = mpsc::unbounded_channel::<DeltaDiscoveryRequest>();
    p.clusters.clear();
    p.listeners.clear();
    let mut node = Some(p.spec.node.clone());
    for kind in Kind::ALL {
        let s = p.state(kind);
        let named = matches!(kind, Kind::Eds | Kind::Rds);
        if named && s.names.is_empty() {
            continue;
        }
        // CDS/LDS: legacy wildcard, a first request that subscribes to nothing.
        tx.send(DeltaDiscoveryRequest {
            node: node.take(),
            type_url: kind.type_url().into(),
            resource_names_subscribe: s.names.iter().cloned().collect(),
            ..Default::default()
        })?;
    }
    let mut inbound = client
        .delta_aggregated_resources(UnboundedReceiverStream::new(rx))
        .await?
        .into_inner();
    while let Some(resp) = inbound.message().await? {
        *got_response = true;
        let bytes = resp.encoded_len();
        let Some(kind) = Kind::of(&resp.type_url) else {
            continue;
        };
        let mut named: Vec<(String, &Any)> = Vec::with_capacity(resp.resources.len());
        for r in &resp.resources {
            let Some(body) = &r.resource else { continue };
            let name = if r.name.is_empty() {
                lite::name(body)?
            } else {
                r.name.clone()
            };
            named.push((name, body));
        }
        let removed = &resp.removed_resources;
        let follow = match kind {
            Kind::Cds => {
                for (name, body) in &named {
                    p.clusters.insert(name.clone(), lite::cluster(body)?.1);
                }
                for name in removed {
                    p.clusters.remove(name);
                }
                let eds = p.clusters.values().flatten().cloned().collect();
                Some((Kind::Eds, eds))
            }
            Kind::Lds => {
                for (_, body) in &named {
                    let (name, routes) = lite::listener(body)?;
                    p.listeners.insert(name, routes);
                }
                for name in removed {
                    p.listeners.remove(name);
                }
                let rds = p.listeners.values().flatten().cloned().collect();
                Some((Kind::Rds, rds))
            }
            Kind::Eds | Kind::Rds => {
                p.take_named(kind, &named)?;
                let state = p.state(kind);
                for name in removed {
                    state.held.remove(&hash(name));
                }
                None
            }
        };
        if let Some((next, names)) = follow
            && let Some((subscribe, unsubscribe)) = p.resubscribe(next, names)
        {
            tx.send(DeltaDiscoveryRequest {
                type_url: next.type_url().into(),
                resource_names_subscribe: subscribe,
                resource_names_unsubscribe: unsubscribe,
                ..Default::default()
            })?;
        }
        p.state(kind).nonce = resp.nonce.clone();
        tx.send(DeltaDiscoveryRequest {
            type_url: resp.type_url.clone(),
            response_nonce: resp.nonce.clone(),
            ..Default::default()
        })?;
        let version = if resp.system_version_info.is_empty() {
            resp.nonce
        } else {
            resp.system_version_info
        };
        p.acked(kind, version, bytes);
    }
    Ok(())
}
