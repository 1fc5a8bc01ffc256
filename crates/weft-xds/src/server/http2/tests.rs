//! The HTTP/2 server driven frame by frame from a raw socket, for what gRPC clients rarely
//! do but may: tiny windows, window changes mid-stream, several streams at once, padding,
//! CONTINUATION, resets, pings, protocol errors, and shutdown.

use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::util::pack_any;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use super::frame::{self, Head, Reason};
use super::hpack;
use crate::server::{AdsServer, ServerError, Snapshot};
use crate::type_url;

/// Bounded waits, so a broken server fails a test instead of hanging it.
const WAIT: Duration = Duration::from_secs(20);
const SOTW: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";

struct Server {
    server: AdsServer,
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ServerError>>,
}

impl Server {
    /// Serves a snapshot of `clusters` clusters of about 2 KB each.
    async fn start(clusters: usize) -> Self {
        let server = AdsServer::new();
        let mut snapshot = Snapshot::new("v1");
        for i in 0..clusters {
            snapshot = snapshot
                .with(pack_any(Cluster {
                    name: format!("cluster-{i}"),
                    alt_stat_name: "x".repeat(2000),
                    ..Default::default()
                }))
                .unwrap();
        }
        server.set_snapshot(snapshot);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = server.clone();
        let task = tokio::spawn(async move {
            serving
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await
        });
        Self {
            server,
            addr,
            stop: Some(stop),
            task,
        }
    }
}

/// Whatever carries a connection: a socket, or an in-memory pipe.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

struct Client {
    io: Box<dyn Io>,
    hpack: hpack::Decoder,
}

impl Client {
    /// Connects and exchanges prefaces; `settings` are the client's.
    async fn connect(server: &Server, settings: &[(u16, u32)]) -> Self {
        let io = TcpStream::connect(server.addr).await.unwrap();
        Self::over(Box::new(io), settings).await
    }

    /// Exchanges prefaces over `io`.
    async fn over(mut io: Box<dyn Io>, settings: &[(u16, u32)]) -> Self {
        io.write_all(frame::PREFACE).await.unwrap();
        let mut client = Self {
            io,
            hpack: hpack::Decoder::new(4096),
        };
        let mut payload = Vec::new();
        for (id, value) in settings {
            payload.extend_from_slice(&id.to_be_bytes());
            payload.extend_from_slice(&value.to_be_bytes());
        }
        client.send(frame::SETTINGS, 0, 0, &payload).await;
        // The server's SETTINGS and connection WINDOW_UPDATE, then its ACK of ours.
        let (head, payload) = client.frame().await;
        assert_eq!((head.kind, head.flags), (frame::SETTINGS, 0));
        assert!(
            payload
                .chunks(6)
                .any(|s| s == [0, 4, 0, 0x10, 0, 0].as_slice()),
            "INITIAL_WINDOW_SIZE 1 MiB in {payload:?}"
        );
        let (head, _) = client.frame().await;
        assert_eq!((head.kind, head.stream), (frame::WINDOW_UPDATE, 0));
        let (head, _) = client.frame().await;
        assert_eq!((head.kind, head.flags), (frame::SETTINGS, frame::ACK));
        client.send(frame::SETTINGS, frame::ACK, 0, &[]).await;
        client
    }

    async fn send(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let mut bytes = Vec::new();
        Head::new(kind, flags, stream, payload.len()).put(&mut bytes);
        bytes.extend_from_slice(payload);
        self.io.write_all(&bytes).await.unwrap();
    }

    /// The next frame, or `None` at the end of the connection.
    async fn next_frame(&mut self) -> Option<(Head, Vec<u8>)> {
        tokio::time::timeout(WAIT, async {
            let mut head = [0u8; frame::HEAD_LEN];
            match self.io.read_exact(&mut head).await {
                Ok(_) => {}
                Err(_) => return None,
            }
            let head = Head::parse(&head);
            let mut payload = vec![0; head.len as usize];
            self.io.read_exact(&mut payload).await.ok()?;
            Some((head, payload))
        })
        .await
        .expect("a frame or the end in time")
    }

    async fn frame(&mut self) -> (Head, Vec<u8>) {
        self.next_frame().await.expect("a frame")
    }

    fn request_block(path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
        let mut block = Vec::new();
        for (name, value) in [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", "weft"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
        .iter()
        .chain(extra)
        {
            hpack::put_literal(&mut block, name.as_bytes(), value.as_bytes());
        }
        block
    }

    async fn open(&mut self, stream: u32, path: &str) {
        let block = Self::request_block(path, &[]);
        self.send(frame::HEADERS, frame::END_HEADERS, stream, &block)
            .await;
    }

    async fn request(&mut self, stream: u32, node: &str) {
        self.request_named(stream, node, type_url::CLUSTER, &[])
            .await;
    }

    async fn request_named(&mut self, stream: u32, node: &str, type_url: &str, names: &[&str]) {
        let request = DiscoveryRequest {
            node: Some(Node {
                id: node.into(),
                ..Default::default()
            }),
            type_url: type_url.into(),
            resource_names: names.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        };
        let mut message = vec![0];
        message.extend_from_slice(&(request.encoded_len() as u32).to_be_bytes());
        request.encode(&mut message).unwrap();
        self.send(frame::DATA, 0, stream, &message).await;
    }

    fn fields(&mut self, block: &[u8]) -> Vec<(String, String)> {
        let mut fields = Vec::new();
        self.hpack
            .decode(block, |n, v| {
                fields.push((
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                ))
            })
            .unwrap();
        fields
    }
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn response(data: &[u8]) -> DiscoveryResponse {
    assert_eq!(data[0], 0);
    let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
    assert_eq!(len, data.len() - 5, "one whole message");
    DiscoveryResponse::decode(&data[5..]).unwrap()
}

#[tokio::test]
async fn pings_are_answered_and_unknown_frames_ignored() {
    let server = Server::start(1).await;
    let mut client = Client::connect(&server, &[]).await;
    client.send(0xee, 0xff, 0, b"whatever").await;
    client.send(frame::PING, 0, 0, b"12345678").await;
    let (head, payload) = client.frame().await;
    assert_eq!((head.kind, head.flags), (frame::PING, frame::ACK));
    assert_eq!(payload, b"12345678");
}

#[tokio::test]
async fn unknown_methods_and_compressed_requests_get_unimplemented() {
    let server = Server::start(1).await;
    let mut client = Client::connect(&server, &[]).await;
    client.open(1, "/some.Service/Method").await;
    let (head, block) = client.frame().await;
    assert_eq!(head.kind, frame::HEADERS);
    assert_eq!(head.flags & frame::END_STREAM, frame::END_STREAM);
    let fields = client.fields(&block);
    assert_eq!(field(&fields, ":status"), Some("200"));
    assert_eq!(field(&fields, "grpc-status"), Some("12"));
    // The request was not ended, so the server tells the client to stop sending it.
    let (head, payload) = client.frame().await;
    assert_eq!((head.kind, head.stream), (frame::RST_STREAM, 1));
    assert_eq!(payload, Reason::NO_ERROR.0.to_be_bytes());

    let block = Client::request_block(SOTW, &[("grpc-encoding", "gzip")]);
    client
        .send(
            frame::HEADERS,
            frame::END_HEADERS | frame::END_STREAM,
            3,
            &block,
        )
        .await;
    let (head, block) = client.frame().await;
    assert_eq!((head.kind, head.stream), (frame::HEADERS, 3));
    assert_eq!(field(&client.fields(&block), "grpc-status"), Some("12"));
}

#[tokio::test]
async fn concurrent_streams_keep_to_small_and_changing_windows() {
    // About 100 KB per response: more than the connection window and many frames.
    let server = Server::start(50).await;
    let mut client = Client::connect(
        &server,
        &[(0x4, 1000), (0x5, 16_384)], // INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE
    )
    .await;
    // Stream 1 opens with padding, priority and a CONTINUATION; stream 3 plainly.
    let block = Client::request_block(SOTW, &[]);
    let (first, rest) = block.split_at(10);
    let mut headers = vec![3]; // pad length
    headers.extend_from_slice(&[0, 0, 0, 0, 16]); // priority: depends on 0, weight 16
    headers.extend_from_slice(first);
    headers.extend_from_slice(&[0, 0, 0]);
    client
        .send(
            frame::HEADERS,
            frame::PADDED | frame::PRIORITY_FLAG,
            1,
            &headers,
        )
        .await;
    client
        .send(frame::CONTINUATION, frame::END_HEADERS, 1, rest)
        .await;
    client.open(3, SOTW).await;
    client.request(1, "node-1").await;
    client.request(3, "node-3").await;

    let mut granted = [1000i64, 1000];
    let mut connection = 65_535i64;
    let mut data = [Vec::new(), Vec::new()];
    let mut headers_seen = [false, false];
    let mut widened = false;
    while data
        .iter()
        .any(|d| d.len() < 5 || response_len(d) > d.len())
    {
        let (head, payload) = client.frame().await;
        let at = (head.stream / 2) as usize;
        match head.kind {
            frame::HEADERS => {
                let fields = client.fields(&payload);
                assert_eq!(field(&fields, ":status"), Some("200"));
                headers_seen[at] = true;
            }
            frame::DATA => {
                assert!(headers_seen[at]);
                assert!(payload.len() <= 16_384);
                data[at].extend_from_slice(&payload);
                connection -= payload.len() as i64;
                // The server never sends beyond the windows it was given.
                assert!(data[at].len() as i64 <= granted[at], "stream window");
                assert!(connection >= 0, "connection window");
                if !widened && data.iter().all(|d| d.len() == 1000) {
                    // Both streams got their share of the first window. Shrink the
                    // initial window (windows go negative), then open up.
                    widened = true;
                    client
                        .send(frame::SETTINGS, 0, 0, &[0, 4, 0, 0, 0, 10])
                        .await;
                    granted = granted.map(|g| g - 990);
                    for (i, stream) in [1u32, 3].into_iter().enumerate() {
                        client
                            .send(frame::WINDOW_UPDATE, 0, stream, &1_000_000u32.to_be_bytes())
                            .await;
                        granted[i] += 1_000_000;
                    }
                    client
                        .send(frame::WINDOW_UPDATE, 0, 0, &1_000_000u32.to_be_bytes())
                        .await;
                    connection += 1_000_000;
                }
            }
            frame::SETTINGS => assert_eq!(head.flags, frame::ACK),
            other => panic!("unexpected frame type {other}"),
        }
    }
    assert!(widened, "each stream was held to its first window");
    for d in &data {
        let r = response(d);
        assert_eq!(r.resources.len(), 50);
        assert_eq!(r.type_url, type_url::CLUSTER);
    }
}

fn response_len(data: &[u8]) -> usize {
    5 + u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize
}

#[tokio::test]
async fn a_reset_stream_ends_its_task_and_the_connection_serves_on() {
    let server = Server::start(1).await;
    let mut client = Client::connect(&server, &[]).await;
    client.open(1, SOTW).await;
    client.request(1, "resetter").await;
    let mut got = Vec::new();
    while got.len() < 5 || got.len() < response_len(&got) {
        let (head, payload) = client.frame().await;
        if head.kind == frame::DATA {
            got.extend_from_slice(&payload);
        }
    }
    client
        .send(frame::RST_STREAM, 0, 1, &Reason(0x8).0.to_be_bytes())
        .await;
    server
        .server
        .wait_for("the reset stream to close", WAIT, |s| {
            s.nodes.get("resetter").is_some_and(|n| !n.connected)
        })
        .await
        .unwrap();
    client.send(frame::PING, 0, 0, b"still on").await;
    let (head, payload) = client.frame().await;
    assert_eq!(
        (head.kind, payload.as_slice()),
        (frame::PING, b"still on".as_slice())
    );
}

#[tokio::test]
async fn protocol_and_compression_errors_end_the_connection_with_goaway() {
    let server = Server::start(1).await;
    for (kind, stream, payload, reason) in [
        (frame::DATA, 0, vec![1, 2], Reason::PROTOCOL_ERROR),
        (frame::HEADERS, 1, vec![0xbf], Reason::COMPRESSION_ERROR),
        (frame::PING, 0, vec![1, 2, 3], Reason::FRAME_SIZE_ERROR),
        (
            frame::HEADERS,
            2,
            Client::request_block(SOTW, &[]),
            Reason::PROTOCOL_ERROR,
        ),
    ] {
        let mut client = Client::connect(&server, &[]).await;
        client
            .send(kind, frame::END_HEADERS, stream, &payload)
            .await;
        let (head, payload) = client.frame().await;
        assert_eq!(head.kind, frame::GOAWAY);
        assert_eq!(
            payload[4..8],
            reason.0.to_be_bytes(),
            "for frame type {kind}"
        );
        assert!(client.next_frame().await.is_none());
    }
}

#[tokio::test]
async fn shutdown_ends_streams_with_ok_and_goaway() {
    let mut server = Server::start(1).await;
    let mut client = Client::connect(&server, &[]).await;
    client.open(1, SOTW).await;
    client.request(1, "stopping").await;
    let mut got = Vec::new();
    while got.len() < 5 || got.len() < response_len(&got) {
        let (head, payload) = client.frame().await;
        if head.kind == frame::DATA {
            got.extend_from_slice(&payload);
        }
    }
    let _ = server.stop.take().unwrap().send(());
    let mut trailers = None;
    let mut goaway = None;
    while let Some((head, payload)) = client.next_frame().await {
        match head.kind {
            frame::HEADERS => trailers = Some((head, client.fields(&payload))),
            frame::GOAWAY => goaway = Some(payload),
            _ => {}
        }
    }
    let (head, fields) = trailers.expect("trailers");
    assert_eq!(head.flags & frame::END_STREAM, frame::END_STREAM);
    assert_eq!(field(&fields, "grpc-status"), Some("0"));
    let goaway = goaway.expect("GOAWAY");
    assert_eq!(goaway[4..8], Reason::NO_ERROR.0.to_be_bytes());
    tokio::time::timeout(WAIT, server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_connection_the_caller_accepted_is_served_alike() {
    // As a TLS stream will be: handed over rather than accepted from a listener.
    let server = Server::start(3).await;
    let (ours, theirs) = tokio::io::duplex(64 << 10);
    let serving = server.server.clone();
    let task = tokio::spawn(async move { serving.serve_connection(theirs).await });
    let mut client = Client::over(Box::new(ours), &[]).await;
    client.open(1, SOTW).await;
    client.request(1, "piped").await;
    let mut got = Vec::new();
    while got.len() < 5 || got.len() < response_len(&got) {
        let (head, payload) = client.frame().await;
        if head.kind == frame::DATA {
            got.extend_from_slice(&payload);
        }
    }
    assert_eq!(response(&got).resources.len(), 3);
    // The client leaving ends the connection's service.
    drop(client);
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn an_idle_connection_task_holds_no_closing_state() {
    // Each connection is a task for its whole life; how it closes (a drain buffer and a
    // timer) is boxed apart from it (1.6 KB inline before).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap());
    let (accepted, _client) = tokio::join!(listener.accept(), client);
    let (socket, _) = accepted.unwrap();
    let server = AdsServer::new();
    let (_closing, closing) = tokio::sync::watch::channel(false);
    let (alive, _all_closed) = tokio::sync::mpsc::channel(1);
    let task = super::serve(
        socket,
        server.shared.clone(),
        std::sync::Arc::new(crate::server::Peer::default()),
        closing,
        alive,
    );
    let size = std::mem::size_of_val(&task);
    assert!(size <= 1024, "connection task: {size} bytes");
}

#[tokio::test]
async fn sds_streams_are_served_and_each_ones_names_tracked() {
    // As Envoy asks an agent: one SDS stream per secret, all from one node.
    use crate::resource::Subscription;
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
    let server = AdsServer::tracking_interest();
    server.set_snapshot(
        Snapshot::new("1")
            .with(pack_any(Secret {
                name: "default".into(),
                ..Default::default()
            }))
            .unwrap(),
    );
    let mut interest = server.watch_interest().expect("tracked");
    let (ours, theirs) = tokio::io::duplex(64 << 10);
    let serving = server.clone();
    tokio::spawn(async move { serving.serve_connection(theirs).await });
    let mut client = Client::over(Box::new(ours), &[]).await;
    let path = "/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets";
    client.open(1, path).await;
    client
        .request_named(1, "envoy", type_url::SECRET, &["default"])
        .await;
    client.open(3, path).await;
    client
        .request_named(3, "envoy", type_url::SECRET, &["file-root:/ca.pem"])
        .await;
    let names = |i: &crate::server::Interest| -> Vec<String> {
        i.values()
            .filter_map(|t| match t.get(type_url::SECRET).map(|s| &**s) {
                Some(Subscription::Names(n)) => Some(n.iter().cloned()),
                _ => None,
            })
            .flatten()
            .collect()
    };
    tokio::time::timeout(WAIT, interest.wait_for(|i| names(i).len() == 2))
        .await
        .unwrap()
        .unwrap();
    // The stream asking for what the snapshot has is answered with it.
    let mut got = Vec::new();
    while got.len() < 5 || got.len() < response_len(&got) {
        let (head, payload) = client.frame().await;
        if head.kind == frame::DATA && head.stream == 1 {
            got.extend_from_slice(&payload);
        }
    }
    let answer = response(&got);
    assert_eq!(answer.type_url, type_url::SECRET);
    assert_eq!(answer.resources.len(), 1);
    // A stream that ends takes its names with it.
    client
        .send(frame::RST_STREAM, 0, 3, &Reason(0x8).0.to_be_bytes())
        .await;
    let left = tokio::time::timeout(WAIT, interest.wait_for(|i| names(i).len() == 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(names(&left), ["default"]);
    // A server that did not ask to track keeps nothing.
    assert!(AdsServer::new().watch_interest().is_none());
}

/// Answers with the request's bytes reversed, then the caller's authorization.
#[derive(Debug)]
struct Mirror;

impl crate::server::unary::Unary for Mirror {
    fn call(
        &self,
        request: bytes::Bytes,
        authorization: Option<String>,
    ) -> crate::server::unary::Reply {
        let mut out: Vec<u8> = request.iter().rev().copied().collect();
        out.extend(authorization.unwrap_or_default().into_bytes());
        Box::pin(std::future::ready(Ok(out.into())))
    }
}

/// A unary call of `Mirror` over a connection that is `confidential` or not: the response's DATA and its trailers.
async fn call_mirror(confidential: bool) -> (Vec<u8>, Vec<(String, String)>) {
    const PATH: &str = "/test.Mirror/Call";
    let server = AdsServer::new().with_unary(PATH, std::sync::Arc::new(Mirror));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = server.clone();
    let task = tokio::spawn(async move {
        serving
            .serve_with(listener, std::future::pending(), move |s| {
                let peer = crate::server::Peer {
                    confidential,
                    identities: Vec::new(),
                };
                std::future::ready(Some((s, peer)))
            })
            .await
    });
    let io = TcpStream::connect(addr).await.unwrap();
    let mut client = Client::over(Box::new(io), &[]).await;
    let block = Client::request_block(PATH, &[("authorization", "Bearer t0k3n")]);
    client
        .send(frame::HEADERS, frame::END_HEADERS, 1, &block)
        .await;
    client
        .send(
            frame::DATA,
            frame::END_STREAM,
            1,
            &[0, 0, 0, 0, 3, b'a', b'b', b'c'],
        )
        .await;
    let mut data = Vec::new();
    let trailers = loop {
        let (head, payload) = client.frame().await;
        match head.kind {
            frame::DATA => data.extend(payload),
            frame::HEADERS if head.flags & frame::END_STREAM != 0 => {
                break client.fields(&payload);
            }
            _ => {}
        }
    };
    task.abort();
    (data, trailers)
}

#[tokio::test]
async fn unary_methods_answer_on_confidential_connections_only() {
    let (data, trailers) = call_mirror(true).await;
    assert_eq!(field(&trailers, "grpc-status"), Some("0"));
    let mut expected = vec![0, 0, 0, 0, 15];
    expected.extend(b"cbaBearer t0k3n");
    assert_eq!(data, expected);

    let (data, trailers) = call_mirror(false).await;
    assert!(data.is_empty());
    assert_eq!(
        field(&trailers, "grpc-status"),
        Some("7"),
        "PERMISSION_DENIED"
    );
    assert!(
        field(&trailers, "grpc-message").is_some_and(|m| m.contains("TLS%20only")),
        "{trailers:?}"
    );
}
