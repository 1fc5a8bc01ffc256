//! DestinationRule `tls` end to end, Envoy 1.40 beside `weft proxy`: an ingress gateway of
//! `weft control` takes its secrets from Weft's agent (`weft_proxy::agent`, on the
//! bootstrap's `sds-grpc` socket, as Envoy takes them from istio-agent) — its own
//! certificate issued by `weft control`'s CA for the agent's join token, or read from
//! file-mounted certificates — and originates TLS as each rule says: ISTIO_MUTUAL with its
//! workload certificate to a backend that checks the gateway's SPIFFE ID, SIMPLE to a
//! backend known by a DNS name and trusted through a `caCertificates` file, MUTUAL with a
//! `clientCertificate` file, auto SNI with the request's host as the SAN checked, and
//! `insecureSkipVerify`; a backend whose certificate names another service account than the
//! registry's, or another host, is refused. The proxy starts before its agent and waits
//! for its secrets. The backends report the client's identity, SNI and ALPN, and each
//! proxy's observations must be equal.
//!
//! Run both proxies: `cargo test -p weft --test proxy_upstream_tls`
//! Only Envoy (checks the scenario): `WEFT_CONFORMANCE_ONLY=envoy cargo test …`

use std::path::Path;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use weft_control::control::{Options, start};
use weft_identity::ca::{self, WORKLOAD_TTL};
use weft_identity::tls::{server_config, serving_config, spiffe_ids};
use weft_identity::{Ca, Credentials, Peers, SpiffeId, TrustBundle};
use weft_proxy::agent::ca_client::CaSource;
use weft_proxy::agent::{AgentOptions, secrets};
use weft_testkit::ads::{AdsProxy, IstioNode, acked_all, istio_bootstrap, with_sds, with_xds_tls};
use weft_testkit::{HttpRequest, ProxyBinary, client, conformance};

const WAIT: Duration = Duration::from_secs(30);

/// A workload certificate for `sa` in `ns`, with its key (PEM).
fn workload(ca: &Ca, ns: &str, sa: &str) -> (SpiffeId, String, String) {
    let id = SpiffeId::workload("cluster.local", ns, sa).expect("an id");
    let (key, csr) = ca::key_and_request().expect("a key");
    let issued = ca
        .sign(&csr, &id, WORKLOAD_TTL, SystemTime::now())
        .expect("signed");
    (id, issued.chain_pem, key)
}

/// What every backend offers as ALPN, so the protocol a proxy offers shows.
const BACKEND_ALPN: &[&[u8]] = &[b"istio", b"http/1.1", b"h2"];

/// Serves TLS on `listener` until aborted: each request is answered 200 with the SPIFFE
/// IDs the client's certificate names (`anonymous` without one), the SNI it sent and the
/// ALPN protocol agreed.
fn backend(listener: TcpListener, acceptor: TlsAcceptor) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(Ok(mut tls)) = tokio::time::timeout(WAIT, acceptor.accept(tcp)).await else {
                    return;
                };
                let session = tls.get_ref().1;
                let sni = session.server_name().unwrap_or("-").to_string();
                let alpn = session
                    .alpn_protocol()
                    .map_or("-".to_string(), |p| String::from_utf8_lossy(p).into_owned());
                let peer = session
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| {
                        spiffe_ids(c)
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_else(|| "anonymous".into());
                let peer = format!("{peer} sni={sni} alpn={alpn}");
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if tls.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{peer}",
                    peer.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    })
}

/// `pem` as the body of a YAML block scalar.
fn indent(pem: &str) -> String {
    pem.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write");
}

/// A Service with one pod at 127.0.0.1:`port` running as `sa`.
fn service(name: &str, port: u16, sa: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Service
metadata: {{ name: {name}, namespace: default }}
spec:
  selector: {{ app: {name} }}
  ports: [{{ name: http, port: 80, targetPort: {port} }}]
---
apiVersion: v1
kind: Pod
metadata: {{ name: {name}-0, namespace: default, labels: {{ app: {name} }} }}
spec: {{ serviceAccountName: {sa}, containers: [{{ name: app, image: {name} }}] }}
status: {{ phase: Running, podIP: 127.0.0.1 }}
---"#
    )
}

/// Where the gateway's agent gets the gateway's own certificate.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Own {
    /// From `weft control`'s CA on its TLS port, by CSR with a join token.
    FromCa,
    /// From files in Istio's file-mounted names.
    FromFiles,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_origination_with_a_certificate_from_the_ca() -> anyhow::Result<()> {
    on_each_proxy(Own::FromCa).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_origination_with_file_mounted_certificates() -> anyhow::Result<()> {
    on_each_proxy(Own::FromFiles).await
}

/// Runs the scenario on each proxy and compares what they showed.
async fn on_each_proxy(own: Own) -> anyhow::Result<()> {
    let only = std::env::var("WEFT_CONFORMANCE_ONLY").ok();
    let peers = conformance::peers(only.as_deref(), Path::new(env!("CARGO_BIN_EXE_weft")))?;
    let mut seen: Vec<(String, Vec<String>)> = Vec::new();
    for binary in &peers {
        let transcript = originates_tls(binary, own).await?;
        println!("---- {} ----\n{}", binary.kind, transcript.join("\n"));
        seen.push((binary.kind.to_string(), transcript));
    }
    if let [(a, first), rest @ ..] = seen.as_slice() {
        for (b, other) in rest {
            assert_eq!(first, other, "{a} and {b} differ");
        }
    }
    Ok(())
}

/// `cluster.<service's cluster>.ssl.fail_verify_san`, as the proxy counts it.
async fn fail_verify_san(proxy: &AdsProxy, service: &str) -> anyhow::Result<u64> {
    let path = format!("/stats?filter={service}.*ssl.fail_verify_san");
    let stats = weft_testkit::admin::get(proxy.admin(), &path).await?;
    let stats =
        weft_testkit::admin::exposition::text_stats(&weft_testkit::admin::body_text(&stats));
    Ok(stats
        .iter()
        .find(|(k, _)| k.ends_with("ssl.fail_verify_san"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0))
}

async fn originates_tls(binary: &ProxyBinary, own: Own) -> anyhow::Result<Vec<String>> {
    let mut transcript = Vec::new();
    let tmp = tempfile::tempdir()?;
    let (config, certs, files, ca_dir) = (
        tmp.path().join("config"),
        tmp.path().join("certs"),
        tmp.path().join("files"),
        tmp.path().join("ca"),
    );
    for d in [&config, &certs, &files] {
        std::fs::create_dir_all(d)?;
    }
    // The mesh CA, in the directory `weft control` will load it from.
    let ca = Ca::load_or_create(&ca_dir, "cluster.local")?;
    let bundle = TrustBundle::from_pem(ca.cert_pem())?;

    // The gateway's own identity: issued here into Istio's file-mounted names, or by the
    // control plane to the agent (the service account its join token names).
    let gateway_id = SpiffeId::workload("cluster.local", "istio-system", "default")?;
    if own == Own::FromFiles {
        let (_, chain, key) = workload(&ca, "istio-system", "default");
        write(&certs, secrets::CERT_CHAIN_FILE, &chain);
        write(&certs, secrets::KEY_FILE, &key);
        write(&certs, secrets::ROOT_CERT_FILE, ca.cert_pem());
    }
    // Files the SIMPLE and MUTUAL rules name.
    write(&files, "ca.pem", ca.cert_pem());
    let (partner_id, partner_chain, partner_key) = workload(&ca, "default", "partner");
    write(&files, "client.pem", &partner_chain);
    write(&files, "client-key.pem", &partner_key);

    // Backends: reviews (mutual TLS, accepts the gateway), bank (server-only TLS under a
    // DNS name), ledger (mutual TLS, accepts the partner certificate), impostor (presents
    // reviews' identity while the registry says it runs as `impostor`).
    let (_, chain, key) = workload(&ca, "default", "bookinfo-reviews");
    let reviews_creds = Credentials::from_pem(&chain, &key)?;
    let reviews = TcpListener::bind("127.0.0.1:0").await?;
    let impostor = TcpListener::bind("127.0.0.1:0").await?;
    let bank = TcpListener::bind("127.0.0.1:0").await?;
    let ledger = TcpListener::bind("127.0.0.1:0").await?;
    let shop = TcpListener::bind("127.0.0.1:0").await?;
    let legacy = TcpListener::bind("127.0.0.1:0").await?;
    let vault = TcpListener::bind("127.0.0.1:0").await?;
    let archive = TcpListener::bind("127.0.0.1:0").await?;
    let ports = [
        &reviews, &impostor, &bank, &ledger, &shop, &legacy, &vault, &archive,
    ]
    .map(|l| l.local_addr().expect("bound").port());
    let mutual = |peer: &SpiffeId| -> anyhow::Result<TlsAcceptor> {
        Ok(TlsAcceptor::from(server_config(
            &bundle,
            reviews_creds.clone(),
            Peers::OneOf(vec![peer.clone()]),
            BACKEND_ALPN,
        )?))
    };
    let (bank_chain, bank_key) = {
        let (issued, key) = ca.serving(&["bank.internal"], WORKLOAD_TTL, SystemTime::now())?;
        (issued.chain_pem, key)
    };
    let serving = |ca: &Ca, name: &str| -> anyhow::Result<TlsAcceptor> {
        let (issued, key) = ca.serving(&[name], WORKLOAD_TTL, SystemTime::now())?;
        Ok(TlsAcceptor::from(serving_config(
            Credentials::from_pem(&issued.chain_pem, &key)?,
            BACKEND_ALPN,
        )?))
    };
    // A server no configured root vouches for, reached with `insecureSkipVerify`.
    let stranger = Ca::generate("elsewhere.local")?;
    let (_, ledger_chain, ledger_key) = workload(&ca, "default", "ledger");
    let ledger_creds = Credentials::from_pem(&ledger_chain, &ledger_key)?;
    let servers = [
        backend(reviews, mutual(&gateway_id)?),
        backend(impostor, mutual(&gateway_id)?),
        backend(
            bank,
            TlsAcceptor::from(serving_config(
                Credentials::from_pem(&bank_chain, &bank_key)?,
                BACKEND_ALPN,
            )?),
        ),
        backend(
            ledger,
            TlsAcceptor::from(server_config(
                &bundle,
                ledger_creds,
                Peers::TrustDomain("cluster.local".into()),
                BACKEND_ALPN,
            )?),
        ),
        backend(shop, serving(&ca, "shop.example.com")?),
        backend(legacy, serving(&stranger, "legacy.internal")?),
        backend(vault, mutual(&gateway_id)?),
        backend(archive, {
            let (_, chain, key) = workload(&ca, "default", "archive");
            TlsAcceptor::from(server_config(
                &bundle,
                Credentials::from_pem(&chain, &key)?,
                Peers::TrustDomain("cluster.local".into()),
                BACKEND_ALPN,
            )?)
        }),
    ];

    let http_port = weft_testkit::ports::free_port()?;
    let tcp_port = weft_testkit::ports::free_port()?;
    let f = |name: &str| files.join(name).display().to_string();
    let mesh = [
        service("reviews", ports[0], "bookinfo-reviews"),
        service("impostor", ports[1], "impostor"),
        service("bank", ports[2], "bank"),
        service("ledger", ports[3], "ledger"),
        service("shop", ports[4], "shop"),
        service("legacy", ports[5], "legacy"),
        // A TCP service behind the gateway's TCP server: `tcp_proxy` over ISTIO_MUTUAL.
        service("vault", ports[6], "bookinfo-reviews").replace("name: http, port: 80", "name: tcp, port: 9000"),
        service("archive", ports[7], "archive"),
        // The gateway's namespace holds the credential its rule for `archive` names; it is
        // served over ADS to the gateway alone, on the TLS port.
        format!(
            "
apiVersion: v1
kind: Secret
metadata: {{ name: partner-credential, namespace: istio-system }}
type: kubernetes.io/tls
stringData:
  tls.crt: |
{}
  tls.key: |
{}
  ca.crt: |
{}
---",
            indent(&partner_chain),
            indent(&partner_key),
            indent(ca.cert_pem())
        ),
        format!(
            r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{ name: edge, namespace: istio-system }}
spec:
  selector: {{ istio: ingressgateway }}
  servers:
  - port: {{ number: {http_port}, name: http, protocol: HTTP }}
    hosts: ["*.example.com"]
  - port: {{ number: {tcp_port}, name: tcp, protocol: TCP }}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{ name: vault, namespace: default }}
spec:
  hosts: ["*"]
  gateways: [istio-system/edge]
  tcp:
  - match: [{{ port: {tcp_port} }}]
    route: [{{ destination: {{ host: vault, port: {{ number: 9000 }} }} }}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{ name: edge, namespace: default }}
spec:
  hosts: ["*.example.com"]
  gateways: [istio-system/edge]
  http:
  - match: [{{ authority: {{ prefix: reviews. }} }}]
    route: [{{ destination: {{ host: reviews }} }}]
  - match: [{{ authority: {{ prefix: impostor. }} }}]
    route: [{{ destination: {{ host: impostor }} }}]
  - match: [{{ authority: {{ prefix: bank. }} }}]
    route: [{{ destination: {{ host: bank }} }}]
  - match: [{{ authority: {{ prefix: shop. }} }}]
    route: [{{ destination: {{ host: shop }} }}]
  - match: [{{ authority: {{ prefix: legacy. }} }}]
    route: [{{ destination: {{ host: legacy }} }}]
  - match: [{{ authority: {{ prefix: archive. }} }}]
    route: [{{ destination: {{ host: archive }} }}]
  - route: [{{ destination: {{ host: ledger }} }}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{ name: mesh-mtls, namespace: default }}
spec:
  host: "*.default.svc.cluster.local"
  trafficPolicy: {{ tls: {{ mode: ISTIO_MUTUAL }} }}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{ name: bank, namespace: default }}
spec:
  host: bank
  trafficPolicy:
    tls: {{ mode: SIMPLE, caCertificates: {ca}, sni: bank.internal, subjectAltNames: [bank.internal] }}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{ name: shop, namespace: default }}
spec:
  host: shop
  trafficPolicy:
    tls: {{ mode: SIMPLE, caCertificates: {ca} }}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{ name: archive, namespace: default }}
spec:
  host: archive
  trafficPolicy:
    tls:
      mode: MUTUAL
      credentialName: partner-credential
      subjectAltNames: [spiffe://cluster.local/ns/default/sa/archive]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{ name: legacy, namespace: default }}
spec:
  host: legacy
  trafficPolicy:
    tls: {{ mode: SIMPLE, insecureSkipVerify: true }}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{ name: ledger, namespace: default }}
spec:
  host: ledger
  trafficPolicy:
    tls:
      mode: MUTUAL
      clientCertificate: {client}
      privateKey: {client_key}
      caCertificates: {ca}
      subjectAltNames: [spiffe://cluster.local/ns/default/sa/ledger]
"#,
            ca = f("ca.pem"),
            client = f("client.pem"),
            client_key = f("client-key.pem"),
        ),
    ]
    .concat();
    write(&config, "mesh.yaml", &mesh);

    let mut options = Options::new(&config, "127.0.0.1:0".parse()?);
    options.xds_tls_address = Some("127.0.0.1:0".parse()?);
    options.ca_dir = Some(ca_dir.clone());
    let (running, serve) = start(&options).await?;
    let serving = tokio::spawn(serve);

    let ca_source = match own {
        Own::FromFiles => None,
        Own::FromCa => {
            let token = weft_identity::TokenKey::load_or_create(&ca_dir)?.mint(
                "istio-system",
                "default",
                Duration::from_secs(3600),
                SystemTime::now(),
            )?;
            write(tmp.path(), "token", &token);
            Some(CaSource {
                address: running.xds_tls_address.expect("TLS address").to_string(),
                server_name: "istiod.istio-system.svc".into(),
                root_cert: ca_dir.join("root-cert.pem"),
                token_file: tmp.path().join("token"),
                ttl: Duration::ZERO,
            })
        }
    };
    let socket = tmp.path().join("sds/socket");
    let node = IstioNode {
        kind: "router",
        pod: "ingress-0".into(),
        namespace: "istio-system".into(),
        ip: "127.0.0.1".into(),
        labels: "{ istio: ingressgateway }".into(),
    };
    // The gateway fetches its configuration over TLS (15012) with its workload
    // certificate, which is what lets it read its namespace's credentials.
    let xds_client = tmp.path().join("xds-client");
    std::fs::create_dir_all(&xds_client)?;
    let (_, chain, key) = workload(&ca, "istio-system", "default");
    write(&xds_client, "chain.pem", &chain);
    write(&xds_client, "key.pem", &key);
    let bootstrap = with_sds(
        &with_xds_tls(
            &istio_bootstrap(&node, running.xds_tls_address.expect("TLS port").port()),
            &ca_dir.join("root-cert.pem"),
            "istiod.istio-system.svc",
            Some((&xds_client.join("chain.pem"), &xds_client.join("key.pem"))),
        ),
        &socket,
    );
    let id = node.id();

    // The proxy starts before its agent: clusters that wait for `default` and `ROOTCA`
    // without limit (`initial_fetch_timeout: 0s`) keep it from serving.
    let mut proxy = AdsProxy::start(binary, &bootstrap).await?;
    running
        .server
        .wait_for("the gateway to ACK its clusters", WAIT, |s| {
            acked_all(s, &id, &[weft_xds::type_url::CLUSTER])
        })
        .await?;
    let (ready, _) = proxy.ready().await?;
    assert_ne!(ready, 200, "no secrets yet, so not ready");
    let dump = weft_testkit::admin::get(proxy.admin(), "/config_dump").await?;
    let dump = weft_testkit::admin::body_text(&dump);
    let waits_for_default = dump.contains("dynamic_warming_secrets")
        && (dump.contains(r#""name":"default""#) || dump.contains(r#""name": "default""#));
    transcript.push(format!(
        "before the agent: /ready {ready}, waits for secret default: {waits_for_default}"
    ));

    let (agent, agent_run) = weft_proxy::agent::start(
        AgentOptions {
            socket: socket.clone(),
            certs_dir: (own == Own::FromFiles).then(|| certs.clone()),
            ca: ca_source,
            refresh: Duration::from_secs(1),
        },
        std::future::pending(),
    )?;
    let agent_task = tokio::spawn(agent_run);
    let types = [
        weft_xds::type_url::CLUSTER,
        weft_xds::type_url::CLUSTER_LOAD_ASSIGNMENT,
        weft_xds::type_url::LISTENER,
        weft_xds::type_url::ROUTE_CONFIGURATION,
    ];
    running
        .server
        .wait_for("the gateway to ACK every type", WAIT, |s| {
            acked_all(s, &id, &types)
        })
        .await?;
    proxy.wait_ready().await?;

    // The listener and the warmed clusters arrive a moment after the ACK: ask until the
    // answer is the one expected (bounded), and report the last one.
    let ask = |host: &'static str, done: fn(u16, &str) -> bool| async move {
        let req = HttpRequest::get(host, "/");
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (status, body) =
                match client::send(weft_testkit::ports::loopback(http_port), &req).await {
                    Ok(r) => (
                        r.status.as_u16(),
                        String::from_utf8_lossy(&r.body).into_owned(),
                    ),
                    Err(e) => (0, e.to_string()),
                };
            if done(status, &body) || tokio::time::Instant::now() > deadline {
                return (status, body);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let ok = |status: u16, _: &str| status == 200;
    // Served, each as its rule says: what the backend saw (the client's identity, SNI and
    // ALPN), and why that is right.
    let served = [
        (
            "ISTIO_MUTUAL",
            "reviews.example.com",
            format!(
                "{gateway_id} sni=outbound_.80_._.reviews.default.svc.cluster.local alpn=istio"
            ),
            "the gateway's workload certificate, with Istio's SNI and ALPN",
        ),
        (
            "SIMPLE",
            "bank.example.com",
            "anonymous sni=bank.internal alpn=http/1.1".to_string(),
            "the rule's SNI, and HTTP/1.1 offered by the pool",
        ),
        (
            "MUTUAL",
            "ledger.example.com",
            format!("{partner_id} sni=ledger.example.com alpn=http/1.1"),
            "the clientCertificate file; no `sni`, so the request's host",
        ),
        (
            "auto SNI",
            "shop.example.com",
            "anonymous sni=shop.example.com alpn=http/1.1".to_string(),
            "SIMPLE without sni or subjectAltNames: the host is the SNI and the SAN checked",
        ),
        (
            "insecureSkipVerify",
            "legacy.example.com",
            "anonymous sni=legacy.example.com alpn=http/1.1".to_string(),
            "a chain no root vouches for is accepted",
        ),
        (
            "credentialName",
            "archive.example.com",
            format!("{partner_id} sni=archive.example.com alpn=http/1.1"),
            "the certificate and CA of a Kubernetes Secret, over ADS",
        ),
    ];
    for (label, host, expected, why) in &served {
        let (status, body) = ask(host, ok).await;
        assert_eq!(
            (status, body.as_str()),
            (200, expected.as_str()),
            "{label}: {why}\n{}",
            proxy.log_tail()
        );
        transcript.push(format!("{label}: {status} {body}"));
    }
    // The files behind `file-cert:` change: the agent pushes the new certificate and the
    // next connection presents it, with no restart and no push from the control plane.
    let (rotated_id, chain, key) = workload(&ca, "default", "partner-rotated");
    write(&files, "client-key.pem", &key);
    write(&files, "client.pem", &chain);
    let rotated = |_: u16, body: &str| body.contains("partner-rotated");
    let (status, body) = ask("ledger.example.com", rotated).await;
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            format!("{rotated_id} sni=ledger.example.com alpn=http/1.1").as_str()
        ),
        "a rotated clientCertificate reaches new connections"
    );
    transcript.push(format!("MUTUAL after rotation: {status} {body}"));
    let (status, body) = ask("shop.other.example.com", |_, _| true).await;
    assert_eq!(status, 503, "a host the certificate does not name: {body}");
    transcript.push(format!(
        "auto SAN validation, another host: {status} {body}"
    ));
    let tcp = client::send(
        weft_testkit::ports::loopback(tcp_port),
        &HttpRequest::get("vault", "/"),
    )
    .await?;
    let body = String::from_utf8_lossy(&tcp.body).into_owned();
    assert_eq!(
        body,
        format!("{gateway_id} sni=outbound_.9000_._.vault.default.svc.cluster.local alpn=istio"),
        "tcp_proxy originates ISTIO_MUTUAL too"
    );
    transcript.push(format!(
        "tcp_proxy ISTIO_MUTUAL: {} {body}",
        tcp.status.as_u16()
    ));
    // A server of another identity is refused, and the proxy counts why: the SAN check.
    let (status, body) = ask("impostor.example.com", |_, _| true).await;
    assert_eq!(status, 503, "{body}");
    transcript.push(format!("impostor: {status} {body}"));
    for service in ["impostor", "shop"] {
        let refused = fail_verify_san(&proxy, service).await?;
        assert!(refused > 0, "{service}: no SAN failure counted");
        transcript.push(format!(
            "{service} ssl.fail_verify_san counted: {}",
            refused > 0
        ));
    }

    // The agent served each secret the clusters name, and Envoy took them.
    let sds = agent.server.status();
    let secrets = sds
        .nodes
        .get(&node.id())
        .and_then(|n| n.types.get(weft_xds::type_url::SECRET))
        .expect("Envoy asked the agent for secrets");
    assert!(secrets.last_nack.is_none(), "{:?}", secrets.last_nack);
    transcript.push(format!(
        "agent: secrets ACKed, none NACKed: {}",
        secrets.acks > 0 && secrets.last_nack.is_none()
    ));

    drop(proxy);
    for s in servers {
        s.abort();
    }
    serving.abort();
    agent_task.abort();
    Ok(transcript)
}
