//! The echo backends and client end to end on loopback, so a conformance failure can be
//! trusted to be the proxy's and not the kit's: both HTTP versions on one port, every
//! `x-echo-*` control, gRPC framing and trailers, the TCP echo, and the served counters.

use bytes::{BufMut, BytesMut};
use http::Method;
use weft_testkit::client::{self, HttpRequest, HttpVersion};
use weft_testkit::echo::grpc;
use weft_testkit::{EchoSeen, EchoServer, ProxyBinary, ProxyProcess, ports};

#[tokio::test]
async fn http1_and_h2c_share_a_port_and_report_what_arrived() {
    let echo = EchoServer::http("alpha").await.unwrap();
    for (version, want) in [
        (HttpVersion::Http1, "HTTP/1.1"),
        (HttpVersion::H2c, "HTTP/2.0"),
    ] {
        let mut req = HttpRequest::get("svc.example:81", "/a/b?c=d")
            .header("x-multi", "one")
            .header("x-multi", "two");
        req.version = version;
        req.method = Method::POST;
        req.body = bytes::Bytes::from_static(b"12345");
        let resp = client::send(echo.addr(), &req).await.unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.headers["x-echo-backend"], "alpha");
        let seen = EchoSeen::parse(&resp.body).expect("echo JSON");
        assert_eq!(seen.backend, "alpha");
        assert_eq!(seen.method, "POST");
        assert_eq!(seen.path, "/a/b?c=d");
        assert_eq!(seen.version, want);
        assert_eq!(seen.authority.as_deref(), Some("svc.example:81"));
        assert_eq!(seen.headers["x-multi"], vec!["one", "two"]);
        assert_eq!(seen.body_len, 5);
    }
    assert_eq!(echo.served(), 2);
}

#[tokio::test]
async fn controls_set_status_headers_body_and_delay() {
    let echo = EchoServer::http("beta").await.unwrap();
    let req = HttpRequest::get("h", "/")
        .header("x-echo-status", "503")
        .header("x-echo-response-header", "x-a=1")
        .header("x-echo-response-header", "x-a=2")
        .header("x-echo-body-size", "70000")
        .header("x-echo-delay-ms", "20");
    let resp = client::send(echo.addr(), &req).await.unwrap();
    assert_eq!(resp.status, 503);
    let xa: Vec<_> = resp.headers.get_all("x-a").iter().collect();
    assert_eq!(xa, ["1", "2"]);
    assert_eq!(resp.body.len(), 70000);
    assert!(resp.body.iter().all(|b| *b == b'x'));

    let bad = client::send(
        echo.addr(),
        &HttpRequest::get("h", "/").header("x-echo-status", "abc"),
    )
    .await
    .unwrap();
    assert_eq!(bad.status, 400);
    assert!(String::from_utf8_lossy(&bad.body).contains("x-echo-status"));
}

#[tokio::test]
async fn grpc_messages_come_back_with_trailers() {
    let echo = EchoServer::http("g").await.unwrap();
    let mut body = BytesMut::new();
    body.put(grpc::frame(b"ping"));
    body.put(grpc::frame(b"pong!"));
    let mut req = HttpRequest::get("g", "/pkg.Svc/Call")
        .header("content-type", "application/grpc")
        .header("x-echo-grpc-status", "5")
        .header("x-echo-grpc-message", "not found");
    req.method = Method::POST;
    req.version = HttpVersion::H2c;
    req.body = body.freeze();
    let resp = client::send(echo.addr(), &req).await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.headers["content-type"], "application/grpc");
    assert_eq!(grpc::unframe(&resp.body).unwrap(), vec!["ping", "pong!"]);
    let trailers = resp.trailers.expect("trailers");
    assert_eq!(trailers["grpc-status"], "5");
    assert_eq!(trailers["grpc-message"], "not found");

    req.headers.retain(|(n, _)| !n.starts_with("x-echo-grpc"));
    req.body = bytes::Bytes::from_static(b"\0\0\0");
    let resp = client::send(echo.addr(), &req).await.unwrap();
    assert_eq!(resp.trailers.expect("trailers")["grpc-status"], "13");
}

#[tokio::test]
async fn tcp_echo_returns_every_byte_and_counts_connections() {
    let echo = EchoServer::tcp("t").await.unwrap();
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let got = client::tcp_exchange(echo.addr(), &payload).await.unwrap();
    assert_eq!(got.received, payload);
    assert_eq!(got.error, None);
    assert_eq!(echo.served(), 1);
}

#[tokio::test]
async fn a_proxy_that_exits_is_reported_with_its_output() {
    let Some(false_bin) = ["/bin/false", "/usr/bin/false"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
    else {
        panic!("no `false` binary on this machine");
    };
    let admin = ports::loopback(ports::free_port().unwrap());
    let err = ProxyProcess::start(&ProxyBinary::weft(false_bin), "admin: {}", admin)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("exited before it was ready"), "{text}");
}

#[tokio::test]
async fn raw_wire_sees_connection_counts_chunks_reflection_and_upgrades() {
    use weft_testkit::echo::upgrade::websocket_accept;
    use weft_testkit::wire::{self, Wire};
    let echo = EchoServer::http("w").await.unwrap();
    let mut w = Wire::connect(echo.addr()).await.unwrap();
    let port = w.local_addr().unwrap().port().to_string();
    let first = wire::head("GET", "/1", "h", &[("x-echo-reflect", "x-k"), ("x-k", "v")]);
    let second = wire::head(
        "GET",
        "/2",
        "h",
        &[("x-echo-body-size", "1000"), ("x-echo-chunks", "3")],
    );
    w.send(format!("{first}{second}")).await.unwrap();
    let a = w.response(false).await.unwrap();
    assert_eq!(a.header("x-echo-connection-request"), Some("1"));
    assert_eq!(a.header("x-echo-client-port"), Some(port.as_str()));
    assert_eq!(a.header("x-echo-reflect-x-k"), Some("v"));
    let b = w.response(false).await.unwrap();
    assert_eq!(b.header("x-echo-connection-request"), Some("2"));
    assert!(b.chunked);
    assert_eq!(b.body, vec![b'x'; 1000]);

    w.send(wire::head(
        "POST",
        "/c",
        "h",
        &[("transfer-encoding", "chunked")],
    ))
    .await
    .unwrap();
    w.send(wire::chunked(b"0123456789", 3)).await.unwrap();
    let c = w.response(false).await.unwrap();
    assert_eq!(EchoSeen::parse(&c.body).unwrap().body_len, 10);

    let mut u = Wire::connect(echo.addr()).await.unwrap();
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    u.send(wire::head(
        "GET",
        "/ws",
        "h",
        &[
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", key),
        ],
    ))
    .await
    .unwrap();
    let up = u.response(false).await.unwrap();
    assert_eq!(up.status, 101);
    assert_eq!(
        up.header("sec-websocket-accept").map(str::to_string),
        Some(websocket_accept(key.as_bytes()))
    );
    u.send("tunnelled").await.unwrap();
    assert_eq!(u.bytes(9).await.unwrap(), b"tunnelled");
    u.finish().await.unwrap();
    let closed = u.closed(std::time::Duration::from_secs(10)).await.unwrap();
    assert!(
        closed.trailing.is_empty() && closed.error.is_none(),
        "{closed:?}"
    );
}
