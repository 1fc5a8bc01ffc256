//! A simulated sidecar's state-of-the-world ADS stream.

use std::collections::BTreeSet;

use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use weft_xds::envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use weft_xds::envoy_types::pb::google::protobuf::Any;

use super::{Kind, Proxy, connect};
use crate::lite;

/// One state-of-the-world stream. A new stream asks again for every type it had, with
/// the versions it last accepted (nonces belong to the old stream).
pub(super) async fn stream(p: &mut Proxy, got_response: &mut bool) -> anyhow::Result<()> {
    let mut client = connect(&p.spec.endpoint).await?;
    let (tx, rx) = mpsc::unbounded_channel::<DiscoveryRequest>();
    let mut node = Some(p.spec.node.clone());
    for kind in Kind::ALL {
        let s = p.state(kind);
        s.nonce.clear();
        let named = matches!(kind, Kind::Eds | Kind::Rds);
        if named && s.names.is_empty() {
            continue;
        }
        tx.send(DiscoveryRequest {
            version_info: s.version.clone(),
            node: node.take(),
            resource_names: s.names.iter().cloned().collect(),
            type_url: kind.type_url().into(),
            ..Default::default()
        })?;
    }
    let mut inbound = client
        .stream_aggregated_resources(UnboundedReceiverStream::new(rx))
        .await?
        .into_inner();
    while let Some(resp) = inbound.message().await? {
        *got_response = true;
        let bytes = resp.encoded_len();
        let Some(kind) = Kind::of(&resp.type_url) else {
            continue;
        };
        // A new cluster or route set asks for its EDS/RDS names before the ACK, as Envoy
        // does while it pauses the EDS/RDS watches during a CDS/LDS update.
        let follow = match kind {
            Kind::Cds => {
                let mut eds = BTreeSet::new();
                for a in &resp.resources {
                    eds.extend(lite::cluster(a)?.1);
                }
                Some((Kind::Eds, eds))
            }
            Kind::Lds => {
                let mut rds = BTreeSet::new();
                for a in &resp.resources {
                    rds.extend(lite::listener(a)?.1);
                }
                Some((Kind::Rds, rds))
            }
            Kind::Eds | Kind::Rds => {
                let named: Vec<(String, &Any)> = resp
                    .resources
                    .iter()
                    .map(|a| Ok((lite::name(a)?, a)))
                    .collect::<anyhow::Result<_>>()?;
                p.take_named(kind, &named)?;
                None
            }
        };
        if let Some((next, names)) = follow
            && p.resubscribe(next, names).is_some()
        {
            let s = p.state(next);
            tx.send(DiscoveryRequest {
                version_info: s.version.clone(),
                resource_names: s.names.iter().cloned().collect(),
                type_url: next.type_url().into(),
                response_nonce: s.nonce.clone(),
                ..Default::default()
            })?;
        }
        let state = p.state(kind);
        state.nonce = resp.nonce.clone();
        let resource_names = match kind {
            Kind::Eds | Kind::Rds => state.names.iter().cloned().collect(),
            Kind::Cds | Kind::Lds => Vec::new(),
        };
        tx.send(DiscoveryRequest {
            version_info: resp.version_info.clone(),
            resource_names,
            type_url: resp.type_url.clone(),
            response_nonce: resp.nonce.clone(),
            ..Default::default()
        })?;
        p.acked(kind, resp.version_info, bytes);
    }
    Ok(())
}
