//! The mesh CA's certificates and Weft's SPIFFE checks against real Envoy, both ways:
//! Envoy terminating mutual TLS from a Weft client (and refusing an identity it was not
//! told to accept), and Envoy originating mutual TLS to a Weft server (which learns
//! Envoy's identity from its certificate).

use std::path::Path;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use weft_identity::ca::{self, WORKLOAD_TTL};
use weft_identity::tls::{client_config, server_config, spiffe_ids};
use weft_identity::{Ca, Credentials, Peers, SpiffeId, TrustBundle};
use weft_testkit::ports::{free_port, loopback};
use weft_testkit::proxy::{ProxyBinary, ProxyProcess};

/// Bounded waits, so a broken peer fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(20);

/// Issues a certificate for `sa` and writes it (chain and key) into `dir`.
fn issue(ca: &Ca, dir: &Path, sa: &str) -> (SpiffeId, Credentials) {
    let id = SpiffeId::workload("cluster.local", "default", sa).unwrap();
    let (key, csr) = ca::key_and_request().unwrap();
    let issued = ca.sign(&csr, &id, WORKLOAD_TTL, SystemTime::now()).unwrap();
    std::fs::write(dir.join(format!("{sa}.pem")), &issued.chain_pem).unwrap();
    std::fs::write(dir.join(format!("{sa}.key")), &key).unwrap();
    (id, Credentials::from_pem(&issued.chain_pem, &key).unwrap())
}

/// A `common_tls_context` presenting `own` and accepting `peer`, indented by `indent`.
fn tls_context(dir: &Path, own: &str, peer: &SpiffeId, indent: usize) -> String {
    let dir = dir.display();
    let lines = [
        "common_tls_context:".to_string(),
        "  tls_certificates:".to_string(),
        format!("  - certificate_chain: {{filename: {dir}/{own}.pem}}"),
        format!("    private_key: {{filename: {dir}/{own}.key}}"),
        "  validation_context:".to_string(),
        format!("    trusted_ca: {{filename: {dir}/root.pem}}"),
        "    match_typed_subject_alt_names:".to_string(),
        "    - san_type: URI".to_string(),
        format!("      matcher: {{exact: \"{peer}\"}}"),
    ];
    lines
        .iter()
        .map(|l| format!("\n{}{l}", " ".repeat(indent)))
        .collect()
}

/// An HTTP connection manager sending every request to `action` (a route's action), as
/// a listener's filter list.
fn http_filter(stat_prefix: &str, action: &str) -> String {
    format!(
        r#"
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: {stat_prefix}
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                {action}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}"#
    )
}

/// Envoy: on `mtls_port`, mutual TLS for `client_id` answered directly; on `plain_port`,
/// plain HTTP sent on to `upstream` over mutual TLS that expects `upstream_id`.
fn bootstrap(
    dir: &Path,
    admin: u16,
    mtls_port: u16,
    client_id: &SpiffeId,
    plain_port: u16,
    upstream: u16,
    upstream_id: &SpiffeId,
) -> String {
    let downstream = tls_context(dir, "envoy", client_id, 10);
    let upstream_tls = tls_context(dir, "envoy", upstream_id, 8);
    let answer = http_filter(
        "mtls",
        r#"direct_response: {status: 200, body: {inline_string: "hello from envoy"}}"#,
    );
    let forward = http_filter("plain", "route: {cluster: weft}");
    format!(
        r#"
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
static_resources:
  listeners:
  - name: mtls
    address: {{socket_address: {{address: 127.0.0.1, port_value: {mtls_port}}}}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: true{downstream}
      filters:{answer}
  - name: plain
    address: {{socket_address: {{address: 127.0.0.1, port_value: {plain_port}}}}}
    filter_chains:
    - filters:{forward}
  clusters:
  - name: weft
    connect_timeout: 5s
    load_assignment:
      cluster_name: weft
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {upstream}}}}}}}
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: outbound_.80_._.weft.default.svc.cluster.local{upstream_tls}
"#
    )
}

/// An HTTP/1.1 GET over `io`; the whole response.
async fn get<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut io: S) -> String {
    io.write_all(b"GET / HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = io.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn envoy_and_weft_prove_and_check_mesh_identities_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::generate("cluster.local").unwrap();
    std::fs::write(dir.path().join("root.pem"), ca.cert_pem()).unwrap();
    let bundle = TrustBundle::from_pem(ca.cert_pem()).unwrap();
    let (envoy_id, _) = issue(&ca, dir.path(), "envoy");
    let (page_id, page) = issue(&ca, dir.path(), "productpage");
    let (_, stranger) = issue(&ca, dir.path(), "stranger");
    let (weft_id, weft) = issue(&ca, dir.path(), "weft");

    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_port = upstream.local_addr().unwrap().port();
    let (admin, mtls_port, plain_port) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let config = bootstrap(
        dir.path(),
        admin,
        mtls_port,
        &page_id,
        plain_port,
        upstream_port,
        &weft_id,
    );
    let envoy = ProxyProcess::start(&ProxyBinary::envoy().unwrap(), &config, loopback(admin))
        .await
        .unwrap();

    // Envoy terminates: a Weft client with the identity Envoy accepts is answered ...
    let connect = |own: Credentials, expect: SpiffeId| {
        let connector = TlsConnector::from(
            client_config(
                &bundle,
                Some(own),
                Peers::OneOf(vec![expect]),
                &[b"http/1.1"],
            )
            .unwrap(),
        );
        async move {
            let tcp = TcpStream::connect(loopback(mtls_port)).await.unwrap();
            connector
                .connect("envoy.test".try_into().unwrap(), tcp)
                .await
        }
    };
    let tls = tokio::time::timeout(WAIT, connect(page.clone(), envoy_id.clone()))
        .await
        .unwrap()
        .unwrap();
    let response = tokio::time::timeout(WAIT, get(tls)).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("hello from envoy"), "{response}");
    // ... one with another identity of the same mesh is refused by Envoy ...
    let refused = tokio::time::timeout(WAIT, async {
        match connect(stranger, envoy_id.clone()).await {
            Ok(tls) => get(tls).await,
            Err(e) => format!("handshake: {e}"),
        }
    })
    .await
    .unwrap();
    assert!(!refused.contains("200"), "{refused}");
    // ... and a Weft client expecting another identity refuses Envoy.
    let err = tokio::time::timeout(WAIT, connect(page, page_id.clone()))
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("envoy"), "{err}");

    // Envoy originates: plain HTTP to Envoy reaches a Weft server over mutual TLS, and the
    // server sees Envoy's identity.
    let acceptor = TlsAcceptor::from(
        server_config(&bundle, weft, Peers::OneOf(vec![envoy_id.clone()]), &[]).unwrap(),
    );
    let serving = tokio::spawn(async move {
        let (tcp, _) = upstream.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.unwrap();
        let peer = spiffe_ids(&tls.get_ref().1.peer_certificates().unwrap()[0]);
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            tls.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        let body = "hello from weft";
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        tls.write_all(response.as_bytes()).await.unwrap();
        tls.shutdown().await.unwrap();
        peer
    });
    let tcp = TcpStream::connect(loopback(plain_port)).await.unwrap();
    let response = tokio::time::timeout(WAIT, get(tcp)).await.unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "{response}\n{}",
        envoy.log_tail()
    );
    assert!(response.ends_with("hello from weft"), "{response}");
    let peer = tokio::time::timeout(WAIT, serving).await.unwrap().unwrap();
    assert_eq!(peer, vec![envoy_id]);
}
