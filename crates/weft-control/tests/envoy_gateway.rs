//! Real Envoy 1.40 as an ingress gateway of `weft control`: it connects as a `router` with
//! the labels of Istio's ingress gateway, gets listeners from the Gateway that selects it
//! (not from one that does not), and must ACK everything. Requests by Host reach what the
//! VirtualServices bound to that Gateway say — wildcard hosts, header matches and a
//! destination in another namespace included — a host nobody routes gets 404, a rule or
//! VirtualService meant for the mesh alone changes nothing, and opaque TCP and TLS
//! PASSTHROUGH (by SNI) servers forward to their backends.
//!
//! Plain loopback: the gateway binds real ports (picked free at run time) on 127.0.0.1.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use prost::Message;
use weft_control::control::{Options, start};
use weft_testkit::ads::AdsProxy;
use weft_testkit::netns::Backend;
use weft_testkit::{EchoSeen, EchoServer, Error, HttpRequest, ProxyBinary, client, tls_hello};
use weft_xds::server::AdsServer;

const NODE: &str = "router~127.0.0.1~ingress-0.istio-system~istio-system.svc.cluster.local";
const WAIT: Duration = Duration::from_secs(20);

fn bootstrap(ads: SocketAddr) -> String {
    format!(
        r#"node:
  id: {NODE}
  cluster: istio-ingressgateway.istio-system
  metadata:
    NAMESPACE: istio-system
    INSTANCE_IPS: 127.0.0.1
    LABELS: {{ istio: ingressgateway, app: istio-ingressgateway }}
admin:
  address:
    socket_address: {{ address: 127.0.0.1, port_value: 0 }}
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    grpc_services:
    - envoy_grpc: {{ cluster_name: xds-grpc }}
  cds_config: {{ ads: {{}}, resource_api_version: V3 }}
  lds_config: {{ ads: {{}}, resource_api_version: V3 }}
static_resources:
  clusters:
  - name: xds-grpc
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{ http2_protocol_options: {{}} }}
    load_assignment:
      cluster_name: xds-grpc
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{ address: 127.0.0.1, port_value: {} }}
"#,
        ads.port()
    )
}

/// Ports the gateway listens on and where the backends are.
struct Ports {
    http: u16,
    tls: u16,
    tcp: u16,
    https_terminated: u16,
    egress: u16,
    productpage: u16,
    catalog: u16,
    vault: u16,
    ledger: u16,
}

/// Four services, each with one pod on loopback: productpage (HTTP, default), catalog
/// (HTTP, namespace shop, at 127.0.0.2), vault (TLS) and ledger (TCP).
fn registry(p: &Ports) -> String {
    let service = |name: &str, ns: &str, ip: &str, port: &str, target: u16| {
        format!(
            r#"
apiVersion: v1
kind: Service
metadata: {{ name: {name}, namespace: {ns} }}
spec:
  selector: {{ app: {name} }}
  ports: [{port}]
---
apiVersion: v1
kind: Pod
metadata: {{ name: {name}-0, namespace: {ns}, labels: {{ app: {name} }} }}
spec: {{ containers: [{{ name: app, image: {name} }}] }}
status: {{ phase: Running, podIP: {ip} }}
---"#,
            port = port.replace("TARGET", &target.to_string())
        )
    };
    [
        service(
            "productpage",
            "default",
            "127.0.0.1",
            "{ name: http, port: 9080, targetPort: TARGET }",
            p.productpage,
        ),
        service(
            "catalog",
            "shop",
            "127.0.0.2",
            "{ name: http, port: 8000, targetPort: TARGET }",
            p.catalog,
        ),
        service(
            "vault",
            "default",
            "127.0.0.1",
            "{ name: tls, port: 443, targetPort: TARGET }",
            p.vault,
        ),
        service(
            "ledger",
            "default",
            "127.0.0.1",
            "{ name: tcp, port: 5432, targetPort: TARGET }",
            p.ledger,
        ),
    ]
    .concat()
}

fn gateways(p: &Ports) -> String {
    format!(
        r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{ name: bookinfo-gateway, namespace: default }}
spec:
  selector: {{ istio: ingressgateway }}
  servers:
  - port: {{ number: {http}, name: http, protocol: HTTP }}
    hosts: [bookinfo.example.com, "*.shop.example.com"]
  - port: {{ number: {tls}, name: tls, protocol: TLS }}
    tls: {{ mode: PASSTHROUGH }}
    hosts: [vault.example.com]
  - port: {{ number: {tcp}, name: tcp, protocol: TCP }}
    hosts: [ledger.example.com]
  - port: {{ number: {https}, name: https, protocol: HTTPS }}
    tls: {{ mode: SIMPLE, credentialName: bookinfo-cert }}
    hosts: [bookinfo.example.com]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{ name: egress, namespace: istio-system }}
spec:
  selector: {{ istio: egressgateway }}
  servers:
  - port: {{ number: {egress}, name: http, protocol: HTTP }}
    hosts: ["*"]
"#,
        http = p.http,
        tls = p.tls,
        tcp = p.tcp,
        https = p.https_terminated,
        egress = p.egress,
    )
}

fn routing(p: &Ports) -> String {
    format!(
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{ name: bookinfo, namespace: default }}
spec:
  hosts: [bookinfo.example.com]
  gateways: [bookinfo-gateway]
  http:
  - match: [{{ uri: {{ prefix: /productpage }} }}]
    route: [{{ destination: {{ host: productpage }} }}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{ name: shop, namespace: shop }}
spec:
  hosts: ["*.shop.example.com"]
  gateways: [default/bookinfo-gateway, mesh]
  http:
  - name: mesh-only
    match: [{{ headers: {{ x-mesh-only: {{ exact: "1" }} }}, gateways: [mesh] }}]
    route: [{{ destination: {{ host: catalog }} }}]
  - name: catalog
    match: [{{ headers: {{ x-shop: {{ exact: catalog }} }} }}]
    route: [{{ destination: {{ host: catalog }} }}]
  - name: front
    route: [{{ destination: {{ host: productpage.default.svc.cluster.local }} }}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{ name: bookinfo-mesh, namespace: default }}
spec:
  hosts: [bookinfo.example.com, unknown.example.com]
  http:
  - route: [{{ destination: {{ host: catalog.shop.svc.cluster.local }} }}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{ name: vault, namespace: default }}
spec:
  hosts: [vault.example.com]
  gateways: [bookinfo-gateway]
  tls:
  - match: [{{ sniHosts: [vault.example.com] }}]
    route: [{{ destination: {{ host: vault, port: {{ number: 443 }} }} }}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{ name: ledger, namespace: default }}
spec:
  hosts: [ledger.example.com]
  gateways: [bookinfo-gateway]
  tcp:
  - match: [{{ port: {tcp} }}]
    route: [{{ destination: {{ host: ledger, port: {{ number: 5432 }} }} }}]
"#,
        tcp = p.tcp
    )
}

fn write(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write config");
    std::fs::rename(&tmp, dir.join(name)).expect("rename config");
}

/// Waits (bounded) until the gateway has ACKed every type, none NACKed.
async fn all_acked(server: &AdsServer) -> Result<(), Error> {
    server
        .wait_for("Envoy to ACK every type", WAIT, |s| {
            s.nodes.get(NODE).is_some_and(|n| {
                n.types.len() == 4
                    && n.types.values().all(|t| {
                        t.sent_version.is_some()
                            && t.acked_version == t.sent_version
                            && t.last_nack.is_none()
                    })
            })
        })
        .await
        .map(|_| ())
        .map_err(|e| Error::Conformance(e.to_string()))
}

/// One request through the gateway: (status, answering backend).
async fn get(
    port: u16,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, Option<String>), Error> {
    let mut req = HttpRequest::get(host, path);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = client::send(weft_testkit::ports::loopback(port), &req).await?;
    Ok((
        resp.status.as_u16(),
        EchoSeen::parse(&resp.body).map(|s| s.backend),
    ))
}

/// Writes `payload` and reads until as many bytes came back or the peer closed or reset
/// (bounded).
/// The write side stays open: a FIN right behind the ClientHello would end the connection
/// in Envoy's TLS inspector before it picks a chain.
async fn echo_back(addr: SocketAddr, payload: &[u8]) -> Result<Vec<u8>, Error> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(payload).await?;
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while got.len() < payload.len() {
            let n = match stream.read(&mut buf).await {
                // A connection no chain takes is closed, possibly with a reset.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                r => r?,
            };
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(got)
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .map_err(|_| Error::Conformance(format!("no echo or close from {addr} in 5s")))?
        .map_err(|source| Error::Io {
            context: format!("exchanging with {addr}"),
            source,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_gateway_routes_by_gateway_servers_and_bound_virtual_services() -> anyhow::Result<()>
{
    let productpage = EchoServer::http("productpage").await?;
    let catalog_port = weft_testkit::ports::free_port()?;
    let catalog =
        Backend::start("catalog", SocketAddr::from(([127, 0, 0, 2], catalog_port))).await?;
    let vault = EchoServer::tcp("vault").await?;
    let ledger = EchoServer::tcp("ledger").await?;
    let free = weft_testkit::ports::free_port;
    let p = Ports {
        http: free()?,
        tls: free()?,
        tcp: free()?,
        https_terminated: free()?,
        egress: free()?,
        productpage: productpage.port(),
        catalog: catalog.addr().port(),
        vault: vault.port(),
        ledger: ledger.port(),
    };

    let dir = tempfile::tempdir()?;
    write(dir.path(), "registry.yaml", &registry(&p));
    write(dir.path(), "gateways.yaml", &gateways(&p));
    write(dir.path(), "routing.yaml", &routing(&p));
    let mut options = Options::new(dir.path(), "127.0.0.1:0".parse()?);
    options.mesh.capture_bind = "127.0.0.1".into();
    options.scan_interval = Duration::from_millis(50);
    options.debounce.after = Duration::from_millis(20);
    let (running, serve) = start(&options).await?;
    let serving = tokio::spawn(serve);
    let mut envoy =
        AdsProxy::start(&ProxyBinary::envoy()?, &bootstrap(running.xds_address)).await?;

    let outcome = async {
        all_acked(&running.server).await?;
        envoy.wait_ready().await?;

        // istiod's names: one listener per selected server port (not the egress Gateway's,
        // not the TLS-terminating server's), RDS `http.PORT`, no PassthroughCluster.
        let (_, generated) = running.control.generated(NODE).expect("node known");
        // Sorted: a group's resources are kept (and sent) in name order.
        let names = |v: &[(String, _)]| {
            let mut names = v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
            names.sort();
            names
        };
        let mut expected = [
            format!("0.0.0.0_{}", p.http),
            format!("0.0.0.0_{}", p.tls),
            format!("0.0.0.0_{}", p.tcp),
        ];
        expected.sort();
        assert_eq!(names(&generated.listeners), expected);
        assert_eq!(names(&generated.routes), [format!("http.{}", p.http)]);
        let clusters = names(&generated.clusters);
        for c in [
            "outbound|9080||productpage.default.svc.cluster.local",
            "outbound|8000||catalog.shop.svc.cluster.local",
            "outbound|443||vault.default.svc.cluster.local",
            "outbound|5432||ledger.default.svc.cluster.local",
            "BlackHoleCluster",
        ] {
            assert!(clusters.iter().any(|n| n == c), "{c} missing: {clusters:?}");
        }
        assert!(
            !clusters.iter().any(|n| n == "PassthroughCluster"),
            "{clusters:?}"
        );
        let rc = RouteConfiguration::decode(generated.routes[0].1.value.as_slice())
            .expect("a RouteConfiguration");
        let hosts: Vec<(String, Vec<String>)> = rc
            .virtual_hosts
            .iter()
            .map(|vh| (vh.name.clone(), vh.domains.clone()))
            .collect();
        assert_eq!(
            hosts,
            [
                (
                    format!("*.shop.example.com:{}", p.http),
                    vec!["*.shop.example.com".to_string()]
                ),
                (
                    format!("bookinfo.example.com:{}", p.http),
                    vec!["bookinfo.example.com".to_string()]
                ),
            ],
            "one virtual host per host a server and a bound VirtualService share"
        );

        let http = p.http;
        let host_port = format!("bookinfo.example.com:{http}");
        for (host, path, headers, expected) in [
            (
                "bookinfo.example.com",
                "/productpage",
                &[][..],
                (200, Some("productpage")),
            ),
            (
                host_port.as_str(),
                "/productpage/1",
                &[],
                (200, Some("productpage")),
            ),
            // The mesh-only VirtualService's catch-all for this host must not apply.
            ("bookinfo.example.com", "/reviews", &[], (404, None)),
            (
                "a.shop.example.com",
                "/",
                &[("x-shop", "catalog")],
                (200, Some("catalog")),
            ),
            (
                "x.y.shop.example.com",
                "/items",
                &[("x-shop", "catalog")],
                (200, Some("catalog")),
            ),
            ("a.shop.example.com", "/", &[], (200, Some("productpage"))),
            // A match for `mesh` alone is not the gateway's.
            (
                "a.shop.example.com",
                "/",
                &[("x-mesh-only", "1")],
                (200, Some("productpage")),
            ),
            ("unknown.example.com", "/productpage", &[], (404, None)),
            (
                "shop.example.com",
                "/",
                &[("x-shop", "catalog")],
                (404, None),
            ),
        ] {
            let got = get(http, host, path, headers).await?;
            assert_eq!(
                (got.0, got.1.as_deref()),
                expected,
                "{host}{path} {headers:?}"
            );
        }

        // TLS PASSTHROUGH: the ClientHello picks the chain by SNI and goes on, unread, to
        // the vault echo; an SNI no route names finds no chain.
        let hello = tls_hello::client_hello(Some("vault.example.com"), &[]);
        let tls = weft_testkit::ports::loopback(p.tls);
        let echoed = echo_back(tls, &hello).await?;
        assert_eq!(echoed, hello, "vault echoes the ClientHello");
        assert_eq!(vault.served(), 1);
        let other = tls_hello::client_hello(Some("other.example.com"), &[]);
        let refused = echo_back(tls, &other).await?;
        assert!(refused.is_empty(), "{refused:?}");
        assert_eq!(vault.served(), 1, "no backend for an unknown SNI");

        // Opaque TCP to the ledger.
        let tcp = client::tcp_exchange(weft_testkit::ports::loopback(p.tcp), b"ping").await?;
        assert_eq!(tcp.received, b"ping");
        assert_eq!(ledger.served(), 1);

        // Nothing listens for the TLS-terminating server or the other gateway's port.
        for port in [p.https_terminated, p.egress] {
            assert!(
                tokio::net::TcpStream::connect(weft_testkit::ports::loopback(port))
                    .await
                    .is_err(),
                "port {port} should not be bound"
            );
        }
        Ok::<_, Error>(())
    }
    .await;
    let outcome =
        outcome.map_err(|e| Error::Conformance(format!("{e}\nEnvoy log:\n{}", envoy.log_tail())));
    drop(envoy);
    serving.abort();
    outcome?;
    Ok(())
}
