//! Arbitrary bytes as an ADS client's side of an HTTP/2 connection, after a valid preface
//! and SETTINGS, fed to weft-xds's own HTTP/2 server through an in-memory pipe: frames,
//! HPACK blocks, flow-control windows and gRPC messages come from the network, so none of
//! them may panic the server or leave it serving a connection whose client has gone.
#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::util::pack_any;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;
use weft_xds::server::{AdsServer, Snapshot};

static RT: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
});

/// What a client sends before its frames (RFC 9113 §3.4): the preface and empty SETTINGS.
const OPENING: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

fuzz_target!(|data: &[u8]| {
    RT.block_on(async {
        // A server per input: the status of nodes the input names does not pile up.
        let server = AdsServer::new();
        let mut snapshot = Snapshot::new("1");
        for name in ["a", "b"] {
            snapshot = snapshot
                .with(pack_any(Cluster {
                    name: name.into(),
                    ..Default::default()
                }))
                .expect("named");
        }
        server.set_snapshot(snapshot);
        let (client, theirs) = tokio::io::duplex(1 << 16);
        let serving = {
            let server = server.clone();
            tokio::spawn(async move { server.serve_connection(theirs).await })
        };
        let (mut rd, mut wr) = tokio::io::split(client);
        let write = async {
            let _ = wr.write_all(OPENING).await;
            let _ = wr.write_all(data).await;
            let _ = wr.shutdown().await;
        };
        let read = async {
            let mut sink = vec![0u8; 16 << 10];
            while let Ok(n) = rd.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        };
        // The server reads all of the input, answers, and closes: the reads end.
        let talked = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(write, read);
        })
        .await;
        assert!(
            talked.is_ok(),
            "the server neither finished the input nor closed"
        );
        drop((rd, wr));
        let finished = tokio::time::timeout(Duration::from_secs(10), serving).await;
        assert!(
            matches!(finished, Ok(Ok(()))),
            "the server kept serving a closed connection, or panicked: {finished:?}"
        );
        server.close_streams();
    });
});
