//! weft-xds's client against weft-xds's server over real gRPC on loopback, in both protocol
//! variants: ACK, NACK with error_detail seen by the server, subscription changes, and a
//! server restart the client recovers from; and the same client on SDS's own service over a
//! Unix socket, as a proxy reaches its secret agent.

mod support;

use std::sync::Arc;

use support::*;
use weft_xds::client::{ClientConfig, Target, XdsClient};
use weft_xds::envoy_types::pb::envoy::config::core::v3::DataSource;
use weft_xds::envoy_types::pb::envoy::config::core::v3::data_source::Specifier;
use weft_xds::envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    GenericSecret, Secret, secret,
};
use weft_xds::envoy_types::pb::google::protobuf::Any;
use weft_xds::envoy_types::util::pack_any;
use weft_xds::server::{AdsServer, Snapshot, type_status};
use weft_xds::{Mode, Subscription, type_url};

fn client(endpoint: String, node_id: &str, mode: Mode, handler: RecordingHandler) -> XdsClient {
    let mut config = ClientConfig::new(endpoint, node(node_id), mode);
    // Fast reconnects keep the restart test short; the pacing itself is unit-tested.
    config.backoff_base = std::time::Duration::from_millis(50);
    config.backoff_max = std::time::Duration::from_millis(400);
    XdsClient::spawn(config, Arc::new(handler)).expect("valid endpoint")
}

fn snapshot_v1() -> anyhow::Result<Snapshot> {
    Ok(Snapshot::new("v1")
        .with(cluster("a", "1"))?
        .with(cluster("b", "1"))?
        .with(load_assignment("a"))?
        .with(load_assignment("b"))?
        .with(listener("l1", "1"))?)
}

async fn ack_nack_and_subscriptions(mode: Mode) -> anyhow::Result<()> {
    let node_id = format!("{mode:?}-node");
    let server = AdsServer::new();
    server.set_snapshot(snapshot_v1()?);
    let running = Running::start(&server, None).await?;
    let (handler, mut seen) = RecordingHandler::new("bad");
    let client = client(running.endpoint(), &node_id, mode, handler);

    // Wildcard CDS and LDS at start; Envoy's order puts CDS first.
    let cds = next_seen(&mut seen, type_url::CLUSTER).await;
    assert_eq!(
        (cds.version.as_str(), &cds.names, &cds.changed),
        ("v1", &names(["a", "b"]), &names(["a", "b"]))
    );
    let lds = next_seen(&mut seen, type_url::LISTENER).await;
    assert_eq!(lds.names, names(["l1"]));
    server
        .wait_for_ack(&node_id, type_url::CLUSTER, "v1", WAIT)
        .await?;
    let status = server
        .wait_for_ack(&node_id, type_url::LISTENER, "v1", WAIT)
        .await?;
    assert_eq!(status.nodes[&node_id].mode, mode);
    assert_eq!(
        type_status(&status, &node_id, type_url::CLUSTER)
            .unwrap()
            .subscription,
        Subscription::Wildcard.into()
    );

    // A named subscription gets exactly the named resource.
    client.subscribe(type_url::CLUSTER_LOAD_ASSIGNMENT, names(["a"]));
    let eds = next_seen(&mut seen, type_url::CLUSTER_LOAD_ASSIGNMENT).await;
    assert_eq!(eds.names, names(["a"]));
    let status = server
        .wait_for_ack(&node_id, type_url::CLUSTER_LOAD_ASSIGNMENT, "v1", WAIT)
        .await?;
    assert_eq!(
        type_status(&status, &node_id, type_url::CLUSTER_LOAD_ASSIGNMENT)
            .unwrap()
            .subscription,
        Subscription::names(["a"]).into()
    );

    // Changing it swaps the resource; the server sees the new names.
    client.subscribe(type_url::CLUSTER_LOAD_ASSIGNMENT, names(["b"]));
    let eds = next_seen(&mut seen, type_url::CLUSTER_LOAD_ASSIGNMENT).await;
    assert_eq!((&eds.names, &eds.changed), (&names(["b"]), &names(["b"])));
    server
        .wait_for("EDS subscription to b", WAIT, |s| {
            type_status(s, &node_id, type_url::CLUSTER_LOAD_ASSIGNMENT)
                .is_some_and(|t| *t.subscription == Subscription::names(["b"]))
        })
        .await?;

    // v2: cluster a changes, and a listener the handler rejects appears.
    server.set_snapshot(
        Snapshot::new("v2")
            .with(cluster("a", "2"))?
            .with(cluster("b", "1"))?
            .with(load_assignment("a"))?
            .with(load_assignment("b"))?
            .with(listener("l1", "1"))?
            .with(listener("bad", "2"))?,
    );
    let cds = next_seen(&mut seen, type_url::CLUSTER).await;
    assert_eq!((cds.version.as_str(), &cds.changed), ("v2", &names(["a"])));
    let lds = next_seen(&mut seen, type_url::LISTENER).await;
    assert!(!lds.accepted);
    let nack = server
        .wait_for_nack(&node_id, type_url::LISTENER, WAIT)
        .await?;
    assert_eq!(nack.code, 13, "INTERNAL, as Envoy sends");
    assert_eq!(nack.message, "resource bad rejected by the test handler");
    assert_eq!(nack.rejected_version, "v2");
    if mode == Mode::StateOfTheWorld {
        assert_eq!(
            nack.version_info, "v1",
            "a NACK names the version still in use"
        );
    }
    server
        .wait_for_ack(&node_id, type_url::CLUSTER, "v2", WAIT)
        .await?;
    let client_status = client.status();
    let lds_status = &client_status.types[type_url::LISTENER];
    assert_eq!(lds_status.accepted_version, "v1");
    assert_eq!(
        lds_status.last_error.as_deref(),
        Some("resource bad rejected by the test handler")
    );
    assert_eq!(lds_status.resources, 1, "the rejected set was not kept");

    // v3: the bad listener and cluster b go away; both are accepted.
    server.set_snapshot(
        Snapshot::new("v3")
            .with(cluster("a", "2"))?
            .with(load_assignment("b"))?
            .with(listener("l1", "1"))?,
    );
    let cds = next_seen(&mut seen, type_url::CLUSTER).await;
    assert_eq!((&cds.names, &cds.removed), (&names(["a"]), &names(["b"])));
    let lds = next_seen(&mut seen, type_url::LISTENER).await;
    assert!(lds.accepted);
    assert_eq!(lds.names, names(["l1"]));
    server
        .wait_for_ack(&node_id, type_url::LISTENER, "v3", WAIT)
        .await?;
    let client_status = client.status();
    assert!(client_status.connected);
    assert_eq!(client_status.types[type_url::LISTENER].last_error, None);
    assert_eq!(client_status.types[type_url::LISTENER].nacks, 1);

    client.shutdown();
    server
        .wait_for("the client's stream to end", WAIT, |s| {
            s.nodes.get(&node_id).is_some_and(|n| !n.connected)
        })
        .await?;
    running.stop().await
}

#[tokio::test]
async fn sotw_ack_nack_and_subscription_changes() -> anyhow::Result<()> {
    ack_nack_and_subscriptions(Mode::StateOfTheWorld).await
}

#[tokio::test]
async fn delta_ack_nack_and_subscription_changes() -> anyhow::Result<()> {
    ack_nack_and_subscriptions(Mode::Delta).await
}

async fn server_restart(mode: Mode) -> anyhow::Result<()> {
    let node_id = format!("{mode:?}-restart");
    let first = AdsServer::new();
    first.set_snapshot(snapshot_v1()?);
    let running = Running::start(&first, None).await?;
    let addr = running.addr;
    let (handler, mut seen) = RecordingHandler::new("bad");
    let client = client(running.endpoint(), &node_id, mode, handler);
    client.subscribe(type_url::CLUSTER_LOAD_ASSIGNMENT, names(["a"]));
    first
        .wait_for_ack(&node_id, type_url::CLUSTER_LOAD_ASSIGNMENT, "v1", WAIT)
        .await?;
    let cds = next_seen(&mut seen, type_url::CLUSTER).await;
    assert_eq!(cds.names, names(["a", "b"]));

    running.stop().await?;
    let mut status = client.watch_status();
    tokio::time::timeout(WAIT, status.wait_for(|s| !s.connected)).await??;

    // A new server process on the same address, with cluster b gone and c added.
    let second = AdsServer::new();
    second.set_snapshot(
        Snapshot::new("v2")
            .with(cluster("a", "1"))?
            .with(cluster("c", "1"))?
            .with(load_assignment("a"))?
            .with(listener("l1", "1"))?,
    );
    let running = Running::start(&second, Some(addr)).await?;
    second
        .wait_for_ack(&node_id, type_url::CLUSTER, "v2", WAIT)
        .await?;
    // Delta answers a type's first request even when the client already holds it all.
    let status = second
        .wait_for_ack(&node_id, type_url::CLUSTER_LOAD_ASSIGNMENT, "v2", WAIT)
        .await?;
    let cds = next_seen(&mut seen, type_url::CLUSTER).await;
    assert_eq!(cds.version, "v2");
    assert_eq!(cds.names, names(["a", "c"]));
    assert_eq!((&cds.changed, &cds.removed), (&names(["c"]), &names(["b"])));
    let eds = type_status(&status, &node_id, type_url::CLUSTER_LOAD_ASSIGNMENT)
        .expect("EDS re-subscribed after the restart");
    assert_eq!(*eds.subscription, Subscription::names(["a"]));
    let cds_status = type_status(&status, &node_id, type_url::CLUSTER).unwrap();
    match mode {
        Mode::StateOfTheWorld => {
            assert!(cds_status.initial_resource_versions.is_empty());
        }
        Mode::Delta => {
            // The reconnecting client said what it held, so only what changed was sent.
            assert_eq!(
                cds_status
                    .initial_resource_versions
                    .keys()
                    .cloned()
                    .collect::<std::collections::BTreeSet<_>>(),
                names(["a", "b"])
            );
            assert!(eds.initial_resource_versions.contains_key("a"));
        }
    }
    let client_status = client.status();
    assert!(client_status.connected);
    assert_eq!(client_status.streams_opened, 2);
    assert_eq!(
        client_status.types[type_url::CLUSTER].accepted_version,
        "v2"
    );
    running.stop().await
}

#[tokio::test]
async fn sotw_client_recovers_from_a_server_restart() -> anyhow::Result<()> {
    server_restart(Mode::StateOfTheWorld).await
}

#[tokio::test]
async fn delta_client_recovers_from_a_server_restart() -> anyhow::Result<()> {
    server_restart(Mode::Delta).await
}

fn secret(name: &str, tag: &str) -> Any {
    let secret = DataSource {
        specifier: Some(Specifier::InlineString(tag.to_string())),
        ..Default::default()
    };
    pack_any(Secret {
        name: name.to_string(),
        r#type: Some(secret::Type::GenericSecret(GenericSecret {
            secret: Some(secret),
            ..Default::default()
        })),
    })
}

/// A secrets client asks for nothing until told, then gets exactly the named secrets over
/// the Unix socket; a rejected secret is NACKed and the accepted set kept.
async fn secrets_over_unix_socket(mode: Mode) -> anyhow::Result<()> {
    let node_id = format!("{mode:?}-sds");
    let dir = std::env::temp_dir().join(format!("weft-xds-sds-{}-{node_id}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let socket = dir.join("socket");
    let _ = std::fs::remove_file(&socket);
    let listener = tokio::net::UnixListener::bind(&socket)?;
    let server = AdsServer::tracking_interest();
    server.set_snapshot(
        Snapshot::new("v1")
            .with(secret("default", "1"))?
            .with(secret("ROOTCA", "1"))?
            .with(secret("bad", "1"))?,
    );
    let serving = {
        let server = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let server = server.clone();
                tokio::spawn(async move { server.serve_connection(stream).await });
            }
        })
    };
    let (handler, mut seen) = RecordingHandler::new("bad");
    let config = ClientConfig::secrets(Target::Unix(socket.clone()), node(&node_id), mode);
    assert!(config.subscriptions.is_empty());
    let client = XdsClient::spawn(config, Arc::new(handler))?;

    client.subscribe(type_url::SECRET, names(["default", "ROOTCA"]));
    let sds = next_seen(&mut seen, type_url::SECRET).await;
    assert_eq!(
        (sds.version.as_str(), &sds.names, sds.accepted),
        ("v1", &names(["ROOTCA", "default"]), true)
    );
    server
        .wait_for_ack(&node_id, type_url::SECRET, "v1", WAIT)
        .await?;
    assert!(
        !client.status().types.contains_key(type_url::CLUSTER),
        "a secrets client subscribes to nothing else"
    );

    client.subscribe(type_url::SECRET, names(["default", "ROOTCA", "bad"]));
    let sds = next_seen(&mut seen, type_url::SECRET).await;
    assert!(!sds.accepted);
    let nack = server
        .wait_for_nack(&node_id, type_url::SECRET, WAIT)
        .await?;
    assert_eq!(nack.message, "resource bad rejected by the test handler");
    let status = client.status();
    assert_eq!(status.types[type_url::SECRET].resources, 2);
    assert_eq!(status.types[type_url::SECRET].nacks, 1);

    client.shutdown();
    serving.abort();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test]
async fn sotw_secrets_over_a_unix_socket() -> anyhow::Result<()> {
    secrets_over_unix_socket(Mode::StateOfTheWorld).await
}

#[tokio::test]
async fn delta_secrets_over_a_unix_socket() -> anyhow::Result<()> {
    secrets_over_unix_socket(Mode::Delta).await
}
