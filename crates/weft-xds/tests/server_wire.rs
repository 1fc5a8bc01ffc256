//! The server checked from the wire with a hand-driven gRPC client, so what is (and is not)
//! sent is observed directly: stale nonces, NACK recording, named subsets, delta's
//! send-only-what-changed, and refusing a stream without a node.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use support::*;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::Streaming;
use weft_xds::envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use weft_xds::envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use weft_xds::envoy_types::pb::google::rpc::Status as RpcStatus;
use weft_xds::resource::{content_version, resource_name};
use weft_xds::server::{AdsServer, Snapshot, type_status};
use weft_xds::type_url;

async fn next<T>(inbound: &mut Streaming<T>) -> anyhow::Result<T> {
    tokio::time::timeout(WAIT, inbound.message())
        .await??
        .ok_or_else(|| anyhow::anyhow!("stream ended"))
}

fn sotw_names(response: &DiscoveryResponse) -> BTreeSet<String> {
    response
        .resources
        .iter()
        .map(|r| resource_name(r).expect("named"))
        .collect()
}

fn delta_names(response: &DeltaDiscoveryResponse) -> BTreeSet<String> {
    response.resources.iter().map(|r| r.name.clone()).collect()
}

#[tokio::test]
async fn sotw_ignores_stale_nonces_records_nacks_and_serves_named_subsets() -> anyhow::Result<()> {
    let server = AdsServer::new();
    server.set_snapshot(
        Snapshot::new("v1")
            .with(cluster("a", "1"))?
            .with(cluster("b", "1"))?
            .with(load_assignment("a"))?,
    );
    let running = Running::start(&server, None).await?;
    let mut client = AggregatedDiscoveryServiceClient::connect(running.endpoint()).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    tx.send(DiscoveryRequest {
        node: Some(node("wire-sotw")),
        type_url: type_url::CLUSTER.into(),
        ..Default::default()
    })?;
    let mut inbound = client
        .stream_aggregated_resources(UnboundedReceiverStream::new(rx))
        .await?
        .into_inner();
    let r1 = next(&mut inbound).await?;
    assert_eq!(r1.version_info, "v1");
    assert_eq!(sotw_names(&r1), names(["a", "b"]));

    server.set_snapshot(
        Snapshot::new("v2")
            .with(cluster("a", "2"))?
            .with(cluster("b", "1"))?
            .with(load_assignment("a"))?,
    );
    let r2 = next(&mut inbound).await?;
    assert_eq!(r2.version_info, "v2");
    assert_ne!(r1.nonce, r2.nonce);

    // An ACK of the older response is stale: not recorded, not answered.
    tx.send(DiscoveryRequest {
        version_info: "v1".into(),
        type_url: type_url::CLUSTER.into(),
        response_nonce: r1.nonce.clone(),
        ..Default::default()
    })?;
    let status = server
        .wait_for("a stale nonce", WAIT, |s| {
            type_status(s, "wire-sotw", type_url::CLUSTER).is_some_and(|t| t.stale_nonces == 1)
        })
        .await?;
    assert_eq!(
        type_status(&status, "wire-sotw", type_url::CLUSTER)
            .unwrap()
            .acked_version,
        None
    );

    tx.send(DiscoveryRequest {
        version_info: "v1".into(),
        type_url: type_url::CLUSTER.into(),
        response_nonce: r2.nonce.clone(),
        error_detail: Some(RpcStatus {
            code: 3,
            message: "boom".into(),
            details: Vec::new(),
        }),
        ..Default::default()
    })?;
    let nack = server
        .wait_for_nack("wire-sotw", type_url::CLUSTER, WAIT)
        .await?;
    assert_eq!(
        (
            nack.message.as_str(),
            nack.version_info.as_str(),
            nack.rejected_version.as_str()
        ),
        ("boom", "v1", "v2")
    );

    // Named EDS: only what exists of what was asked.
    tx.send(DiscoveryRequest {
        type_url: type_url::CLUSTER_LOAD_ASSIGNMENT.into(),
        resource_names: vec!["a".into(), "ghost".into()],
        ..Default::default()
    })?;
    let eds = next(&mut inbound).await?;
    assert_eq!(eds.type_url, type_url::CLUSTER_LOAD_ASSIGNMENT);
    assert_eq!(sotw_names(&eds), names(["a"]));

    // Narrowing CDS to b on an ACK of the latest response answers with b only.
    tx.send(DiscoveryRequest {
        version_info: "v2".into(),
        type_url: type_url::CLUSTER.into(),
        resource_names: vec!["b".into()],
        response_nonce: r2.nonce.clone(),
        ..Default::default()
    })?;
    let narrowed = next(&mut inbound).await?;
    assert_eq!(narrowed.type_url, type_url::CLUSTER);
    assert_eq!(sotw_names(&narrowed), names(["b"]));
    let status = server.status();
    let cds = type_status(&status, "wire-sotw", type_url::CLUSTER).unwrap();
    assert_eq!(cds.acked_version.as_deref(), Some("v2"));
    assert!(cds.first_request_names.is_empty());
    drop(tx);
    running.stop().await
}

/// EDS and RDS responses need not be complete in state of the world (absence is not
/// removal), so a new snapshot sends a client only the assignments that changed, and none
/// when none did; a request still gets the whole subscribed set, and CDS is always whole.
#[tokio::test]
async fn sotw_sends_only_changed_endpoints_on_a_new_snapshot() -> anyhow::Result<()> {
    let server = AdsServer::new();
    let snapshot = |v: &str, c: &str, a: u32, b: u32| -> anyhow::Result<Snapshot> {
        Ok(Snapshot::new(v)
            .with(cluster("c", c))?
            .with(cluster("d", "1"))?
            .with(load_assignment_at("a", a))?
            .with(load_assignment_at("b", b))?
            .with(load_assignment_at("x", 0))?)
    };
    server.set_snapshot(snapshot("v1", "1", 1, 1)?);
    let running = Running::start(&server, None).await?;
    let mut client = AggregatedDiscoveryServiceClient::connect(running.endpoint()).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    tx.send(DiscoveryRequest {
        node: Some(node("wire-sotw-eds")),
        type_url: type_url::CLUSTER.into(),
        ..Default::default()
    })?;
    tx.send(DiscoveryRequest {
        type_url: type_url::CLUSTER_LOAD_ASSIGNMENT.into(),
        resource_names: vec!["a".into(), "b".into()],
        ..Default::default()
    })?;
    let mut inbound = client
        .stream_aggregated_resources(UnboundedReceiverStream::new(rx))
        .await?
        .into_inner();
    let cds = next(&mut inbound).await?;
    assert_eq!(sotw_names(&cds), names(["c", "d"]));
    let eds = next(&mut inbound).await?;
    assert_eq!(sotw_names(&eds), names(["a", "b"]));

    // Cluster c and assignment a change: CDS whole, EDS only a.
    server.set_snapshot(snapshot("v2", "2", 2, 1)?);
    let cds = next(&mut inbound).await?;
    assert_eq!(
        (cds.version_info.as_str(), sotw_names(&cds)),
        ("v2", names(["c", "d"]))
    );
    let eds = next(&mut inbound).await?;
    assert_eq!(
        (eds.version_info.as_str(), sotw_names(&eds)),
        ("v2", names(["a"]))
    );

    // Only a cluster changes: no EDS response at all (the next one seen is v4's).
    server.set_snapshot(snapshot("v3", "3", 2, 1)?);
    let cds = next(&mut inbound).await?;
    assert_eq!(cds.version_info, "v3");
    // An assignment nobody here subscribed to changes: still no EDS response.
    server.set_snapshot(
        Snapshot::new("v3x")
            .with(cluster("c", "3"))?
            .with(cluster("d", "1"))?
            .with(load_assignment_at("a", 2))?
            .with(load_assignment_at("b", 1))?
            .with(load_assignment_at("x", 9))?,
    );
    let cds = next(&mut inbound).await?;
    assert_eq!(cds.version_info, "v3x");
    server.set_snapshot(snapshot("v4", "3", 2, 4)?);
    let cds = next(&mut inbound).await?;
    assert_eq!(cds.version_info, "v4");
    let eds = next(&mut inbound).await?;
    assert_eq!(eds.type_url, type_url::CLUSTER_LOAD_ASSIGNMENT);
    assert_eq!(
        (eds.version_info.as_str(), sotw_names(&eds)),
        ("v4", names(["b"]))
    );

    // Asking again (a changed name list) gets the whole subscribed set.
    tx.send(DiscoveryRequest {
        version_info: "v4".into(),
        type_url: type_url::CLUSTER_LOAD_ASSIGNMENT.into(),
        resource_names: vec!["a".into(), "b".into(), "x".into()],
        response_nonce: eds.nonce.clone(),
        ..Default::default()
    })?;
    let eds = next(&mut inbound).await?;
    assert_eq!(sotw_names(&eds), names(["a", "b", "x"]));
    drop(tx);
    running.stop().await
}

#[tokio::test]
async fn delta_sends_only_what_the_client_lacks() -> anyhow::Result<()> {
    let server = AdsServer::new();
    let a1 = cluster("a", "1");
    server.set_snapshot(
        Snapshot::new("v1")
            .with(a1.clone())?
            .with(cluster("b", "1"))?
            .with(load_assignment("a"))?,
    );
    let running = Running::start(&server, None).await?;
    let mut client = AggregatedDiscoveryServiceClient::connect(running.endpoint()).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    // A reconnecting client that holds a current `a` and an outdated `b`.
    tx.send(DeltaDiscoveryRequest {
        node: Some(node("wire-delta")),
        type_url: type_url::CLUSTER.into(),
        initial_resource_versions: [
            ("a".to_string(), content_version(&a1)),
            ("b".to_string(), "outdated".to_string()),
        ]
        .into_iter()
        .collect(),
        ..Default::default()
    })?;
    let mut inbound = client
        .delta_aggregated_resources(UnboundedReceiverStream::new(rx))
        .await?
        .into_inner();
    let r1 = next(&mut inbound).await?;
    assert_eq!(r1.system_version_info, "v1");
    assert_eq!(delta_names(&r1), names(["b"]));
    assert!(r1.removed_resources.is_empty());
    tx.send(DeltaDiscoveryRequest {
        type_url: type_url::CLUSTER.into(),
        response_nonce: r1.nonce.clone(),
        ..Default::default()
    })?;
    server
        .wait_for_ack("wire-delta", type_url::CLUSTER, "v1", WAIT)
        .await?;

    // v2: a changes, b goes away, the EDS resource is untouched.
    server.set_snapshot(
        Snapshot::new("v2")
            .with(cluster("a", "2"))?
            .with(load_assignment("a"))?,
    );
    let r2 = next(&mut inbound).await?;
    assert_eq!(delta_names(&r2), names(["a"]));
    assert_eq!(r2.removed_resources, ["b"]);

    // A named subscription: what exists is sent, what does not is reported removed.
    tx.send(DeltaDiscoveryRequest {
        type_url: type_url::CLUSTER_LOAD_ASSIGNMENT.into(),
        resource_names_subscribe: vec!["a".into(), "ghost".into()],
        ..Default::default()
    })?;
    let eds = next(&mut inbound).await?;
    assert_eq!(eds.type_url, type_url::CLUSTER_LOAD_ASSIGNMENT);
    assert_eq!(delta_names(&eds), names(["a"]));
    assert_eq!(eds.removed_resources, ["ghost"]);

    // An ACK with a nonce the server never sent for this type is stale.
    tx.send(DeltaDiscoveryRequest {
        type_url: type_url::CLUSTER.into(),
        response_nonce: "not-a-nonce".into(),
        ..Default::default()
    })?;
    let status = server
        .wait_for("a stale delta nonce", WAIT, |s| {
            type_status(s, "wire-delta", type_url::CLUSTER).is_some_and(|t| t.stale_nonces == 1)
        })
        .await?;
    let cds = type_status(&status, "wire-delta", type_url::CLUSTER).unwrap();
    assert_eq!(cds.acked_version.as_deref(), Some("v1"));
    assert_eq!(cds.initial_resource_versions.len(), 2);
    drop(tx);
    running.stop().await
}

#[tokio::test]
async fn a_stream_without_a_node_is_refused() -> anyhow::Result<()> {
    let server = AdsServer::new();
    server.set_snapshot(Snapshot::new("v1").with(cluster("a", "1"))?);
    let running = Running::start(&server, None).await?;
    let mut client = AggregatedDiscoveryServiceClient::connect(running.endpoint()).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    tx.send(DiscoveryRequest {
        type_url: type_url::CLUSTER.into(),
        ..Default::default()
    })?;
    let mut inbound = client
        .stream_aggregated_resources(UnboundedReceiverStream::new(rx))
        .await?
        .into_inner();
    let err = tokio::time::timeout(WAIT, inbound.message())
        .await?
        .expect_err("refused");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("node"), "{}", err.message());
    drop(tx);
    running.stop().await
}

#[tokio::test]
async fn streams_opened_before_the_first_snapshot_are_answered_when_it_arrives()
-> anyhow::Result<()> {
    let server = AdsServer::new();
    let running = Running::start(&server, None).await?;
    let mut client = AggregatedDiscoveryServiceClient::connect(running.endpoint()).await?;
    let (sotw_tx, rx) = mpsc::unbounded_channel();
    sotw_tx.send(DiscoveryRequest {
        node: Some(node("early-sotw")),
        type_url: type_url::LISTENER.into(),
        ..Default::default()
    })?;
    let mut sotw = client
        .stream_aggregated_resources(UnboundedReceiverStream::new(rx))
        .await?
        .into_inner();
    let (delta_tx, rx) = mpsc::unbounded_channel();
    delta_tx.send(DeltaDiscoveryRequest {
        node: Some(node("early-delta")),
        type_url: type_url::CLUSTER_LOAD_ASSIGNMENT.into(),
        resource_names_subscribe: vec!["a".into()],
        ..Default::default()
    })?;
    let mut delta = client
        .delta_aggregated_resources(UnboundedReceiverStream::new(rx))
        .await?
        .into_inner();
    for id in ["early-sotw", "early-delta"] {
        server
            .wait_for("the early subscription", WAIT, |s| {
                s.nodes.get(id).is_some_and(|n| !n.types.is_empty())
            })
            .await?;
    }
    assert!(
        server
            .status()
            .nodes
            .values()
            .all(|n| n.types.values().all(|t| t.responses == 0)),
        "nothing is served before there is a snapshot"
    );
    server.set_snapshot(
        Snapshot::new("v1")
            .with(listener("l1", "1"))?
            .with(load_assignment("a"))?,
    );
    let r = next(&mut sotw).await?;
    assert_eq!(
        (r.version_info.as_str(), sotw_names(&r)),
        ("v1", names(["l1"]))
    );
    let r = next(&mut delta).await?;
    assert_eq!(delta_names(&r), names(["a"]));
    drop((sotw_tx, delta_tx));
    running.stop().await
}

/// A source handing each node its own snapshot channel, recording connects and disconnects.
#[derive(Debug, Default)]
struct PerNode {
    channels: parking_lot::Mutex<BTreeMap<String, watch::Sender<Option<Arc<Snapshot>>>>>,
    events: parking_lot::Mutex<Vec<String>>,
}

impl PerNode {
    fn set(&self, node: &str, snapshot: Snapshot) {
        let mut channels = self.channels.lock();
        let tx = channels
            .entry(node.to_string())
            .or_insert_with(|| watch::Sender::new(None));
        tx.send_replace(Some(Arc::new(snapshot)));
    }
}

impl weft_xds::server::SnapshotSource for PerNode {
    fn connect(
        &self,
        node: &weft_xds::envoy_types::pb::envoy::config::core::v3::Node,
        stream_id: u64,
        _peer: &weft_xds::server::Peer,
    ) -> Result<weft_xds::server::SnapshotReceiver, tonic::Status> {
        if node.id == "stranger" {
            return Err(tonic::Status::permission_denied("unknown proxy"));
        }
        self.events
            .lock()
            .push(format!("connect {} {stream_id}", node.id));
        let mut channels = self.channels.lock();
        let tx = channels
            .entry(node.id.clone())
            .or_insert_with(|| watch::Sender::new(None));
        Ok(tx.subscribe())
    }

    fn disconnect(&self, node_id: &str, stream_id: u64) {
        self.events
            .lock()
            .push(format!("disconnect {node_id} {stream_id}"));
    }
}

#[tokio::test]
async fn a_source_serves_each_node_its_own_snapshot_and_only_the_types_that_changed()
-> anyhow::Result<()> {
    let source = Arc::new(PerNode::default());
    let server = AdsServer::with_source(source.clone());
    let mut first = Snapshot::new("1")
        .with(cluster("a", "1"))?
        .with(load_assignment("a"))?;
    first.set_type_version(type_url::CLUSTER, "c1");
    first.set_type_version(type_url::CLUSTER_LOAD_ASSIGNMENT, "e1");
    source.set("one", first);
    source.set("two", Snapshot::new("1").with(cluster("b", "1"))?);
    let running = Running::start(&server, None).await?;
    let mut client = AggregatedDiscoveryServiceClient::connect(running.endpoint()).await?;

    let (tx, rx) = mpsc::unbounded_channel();
    tx.send(DiscoveryRequest {
        node: Some(node("one")),
        type_url: type_url::CLUSTER.into(),
        ..Default::default()
    })?;
    let mut one = client
        .stream_aggregated_resources(UnboundedReceiverStream::new(rx))
        .await?
        .into_inner();
    let cds = next(&mut one).await?;
    assert_eq!(
        (cds.version_info.as_str(), sotw_names(&cds)),
        ("c1", names(["a"]))
    );
    tx.send(DiscoveryRequest {
        type_url: type_url::CLUSTER_LOAD_ASSIGNMENT.into(),
        resource_names: vec!["a".into()],
        ..Default::default()
    })?;
    let eds = next(&mut one).await?;
    assert_eq!(eds.version_info, "e1");
    for (r, v) in [(&cds, "c1"), (&eds, "e1")] {
        tx.send(DiscoveryRequest {
            version_info: v.into(),
            type_url: r.type_url.clone(),
            resource_names: if r.type_url == type_url::CLUSTER {
                vec![]
            } else {
                vec!["a".into()]
            },
            response_nonce: r.nonce.clone(),
            ..Default::default()
        })?;
    }
    server
        .wait_for_ack("one", type_url::CLUSTER_LOAD_ASSIGNMENT, "e1", WAIT)
        .await?;

    // Another node sees its own resources.
    let (tx2, rx2) = mpsc::unbounded_channel();
    tx2.send(DiscoveryRequest {
        node: Some(node("two")),
        type_url: type_url::CLUSTER.into(),
        ..Default::default()
    })?;
    let mut two = client
        .stream_aggregated_resources(UnboundedReceiverStream::new(rx2))
        .await?
        .into_inner();
    assert_eq!(sotw_names(&next(&mut two).await?), names(["b"]));

    // An endpoint-only change: EDS goes out, CDS (same type version) does not.
    let mut second = Snapshot::new("2")
        .with(cluster("a", "1"))?
        .with(load_assignment_at("a", 1))?;
    second.set_type_version(type_url::CLUSTER, "c1");
    second.set_type_version(type_url::CLUSTER_LOAD_ASSIGNMENT, "e2");
    source.set("one", second);
    let pushed = next(&mut one).await?;
    assert_eq!(
        (pushed.type_url.as_str(), pushed.version_info.as_str()),
        (type_url::CLUSTER_LOAD_ASSIGNMENT, "e2")
    );
    let status = server.status();
    assert_eq!(
        type_status(&status, "one", type_url::CLUSTER)
            .unwrap()
            .responses,
        1
    );

    // A node the source refuses gets the source's status.
    let (tx3, rx3) = mpsc::unbounded_channel();
    tx3.send(DiscoveryRequest {
        node: Some(node("stranger")),
        type_url: type_url::CLUSTER.into(),
        ..Default::default()
    })?;
    let mut stranger = client
        .stream_aggregated_resources(UnboundedReceiverStream::new(rx3))
        .await?
        .into_inner();
    let err = tokio::time::timeout(WAIT, stranger.message())
        .await?
        .expect_err("refused");
    assert_eq!(err.code(), tonic::Code::PermissionDenied);

    drop(tx);
    server
        .wait_for("node one to disconnect", WAIT, |s| {
            s.nodes.get("one").is_some_and(|n| !n.connected)
        })
        .await?;
    let events = source.events.lock().clone();
    let stream_one = status.nodes["one"].stream_id;
    assert!(
        events.contains(&format!("connect one {stream_one}")),
        "{events:?}"
    );
    // The source hears of the end right after the status records it.
    tokio::time::timeout(WAIT, async {
        while !source
            .events
            .lock()
            .contains(&format!("disconnect one {stream_one}"))
        {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await?;
    assert!(!source.events.lock().iter().any(|e| e.contains("stranger")));
    drop((tx2, tx3));
    running.stop().await
}
