//! Real Envoy 1.40 (from `scripts/install-envoy.sh`, or `WEFT_ENVOY`) as the client of
//! weft-xds's server, over state-of-the-world and delta ADS: Envoy must ACK every type,
//! serve the pushed listener, NACK a bad update with an error_detail the server records,
//! and keep serving the last good configuration.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use weft_xds::envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use weft_xds::envoy_types::pb::envoy::config::core::v3::{
    Address, AggregatedConfigSource, ApiVersion, ConfigSource, DataSource, SocketAddress, address,
    config_source, data_source, socket_address,
};
use weft_xds::envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use weft_xds::envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, Listener, filter,
};
use weft_xds::envoy_types::pb::envoy::config::route::v3::{
    DirectResponseAction, Route, RouteConfiguration, RouteMatch, VirtualHost, route, route_match,
};
use weft_xds::envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use weft_xds::envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use weft_xds::envoy_types::pb::envoy::r#type::matcher::v3::RegexMatcher;
use weft_xds::envoy_types::pb::google::protobuf::{Any, Duration as PbDuration};
use weft_xds::envoy_types::util::pack_any;
use weft_xds::server::{AdsServer, Nack, NodeStatus, Snapshot, type_status};
use weft_xds::{Subscription, type_url};

const ROUTE_NAME: &str = "local_route";
const CLUSTER_NAME: &str = "backend";
const LISTENER_NAME: &str = "http";

fn envoy_binary() -> PathBuf {
    let path = std::env::var_os("WEFT_ENVOY")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/envoy"));
    assert!(
        path.exists(),
        "real Envoy not found at {}: run scripts/install-envoy.sh (or set WEFT_ENVOY)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A proxy process fed by the ADS server; killed when dropped.
struct Proxy {
    child: Child,
    log: PathBuf,
}

impl Proxy {
    /// Envoy with a bootstrap whose only static resource is the ADS cluster.
    async fn envoy(node: &str, api_type: &str, ads_port: u16) -> anyhow::Result<Self> {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("envoy-ads-{node}"));
        std::fs::create_dir_all(&dir)?;
        let bootstrap = dir.join("bootstrap.yaml");
        std::fs::write(&bootstrap, bootstrap_yaml(node, api_type, ads_port))?;
        let log = dir.join("envoy.log");
        let log_file = std::fs::File::create(&log)?;
        let child = Command::new(envoy_binary())
            .arg("-c")
            .arg(&bootstrap)
            .args([
                "--use-dynamic-base-id",
                "--concurrency",
                "1",
                "-l",
                "warning",
            ])
            .arg("--admin-address-path")
            .arg(dir.join("admin.address"))
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()?;
        Ok(Self { child, log })
    }

    fn log(&mut self) -> String {
        let exited = self.child.try_wait().ok().flatten();
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!("envoy exit: {exited:?}\n{log}")
    }
}

fn bootstrap_yaml(node: &str, api_type: &str, ads_port: u16) -> String {
    format!(
        r#"node:
  id: {node}
  cluster: weft-xds-tests
admin:
  address:
    socket_address: {{ address: 127.0.0.1, port_value: 0 }}
dynamic_resources:
  ads_config:
    api_type: {api_type}
    transport_api_version: V3
    set_node_on_first_message_only: true
    grpc_services:
    - envoy_grpc: {{ cluster_name: xds }}
  cds_config: {{ ads: {{}}, resource_api_version: V3 }}
  lds_config: {{ ads: {{}}, resource_api_version: V3 }}
static_resources:
  clusters:
  - name: xds
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{ http2_protocol_options: {{}} }}
    load_assignment:
      cluster_name: xds
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{ address: 127.0.0.1, port_value: {ads_port} }}
"#
    )
}

fn ads() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        ..Default::default()
    }
}

fn socket(port: u16) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: "127.0.0.1".into(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(port))),
            ..Default::default()
        })),
    }
}

/// An HTTP listener whose routes come over RDS, with the router filter (or `extra_filter`
/// before it).
fn http_listener(port: u16, extra_filter: Option<HttpFilter>) -> Any {
    let mut http_filters: Vec<HttpFilter> = extra_filter.into_iter().collect();
    http_filters.push(HttpFilter {
        name: "envoy.filters.http.router".into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(
            Router::default(),
        ))),
        ..Default::default()
    });
    let hcm = HttpConnectionManager {
        stat_prefix: "ingress".into(),
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(ads()),
            route_config_name: ROUTE_NAME.into(),
        })),
        http_filters,
        ..Default::default()
    };
    pack_any(Listener {
        name: LISTENER_NAME.into(),
        address: Some(socket(port)),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(pack_any(hcm))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    })
}

/// A route table answering every request with `body`; `regex` replaces the prefix match.
fn direct_response_routes(body: &str, regex: Option<&str>) -> Any {
    let path_specifier = match regex {
        Some(regex) => route_match::PathSpecifier::SafeRegex(RegexMatcher {
            regex: regex.into(),
            ..Default::default()
        }),
        None => route_match::PathSpecifier::Prefix("/".into()),
    };
    pack_any(RouteConfiguration {
        name: ROUTE_NAME.into(),
        virtual_hosts: vec![VirtualHost {
            name: "all".into(),
            domains: vec!["*".into()],
            routes: vec![Route {
                r#match: Some(RouteMatch {
                    path_specifier: Some(path_specifier),
                    ..Default::default()
                }),
                action: Some(route::Action::DirectResponse(DirectResponseAction {
                    status: 200,
                    body: Some(DataSource {
                        specifier: Some(data_source::Specifier::InlineString(body.into())),
                        ..Default::default()
                    }),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    })
}

fn eds_cluster() -> Any {
    pack_any(Cluster {
        name: CLUSTER_NAME.into(),
        connect_timeout: Some(PbDuration {
            seconds: 1,
            nanos: 0,
        }),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Eds as i32,
        )),
        eds_cluster_config: Some(cluster::EdsClusterConfig {
            eds_config: Some(ads()),
            service_name: String::new(),
        }),
        ..Default::default()
    })
}

fn endpoints(port: u16) -> Any {
    pack_any(ClusterLoadAssignment {
        cluster_name: CLUSTER_NAME.into(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: vec![LbEndpoint {
                host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                    address: Some(socket(port)),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    })
}

fn snapshot(version: &str, listener: Any, routes: Any) -> anyhow::Result<Snapshot> {
    Ok(Snapshot::new(version)
        .with(eds_cluster())?
        .with(endpoints(9))?
        .with(listener)?
        .with(routes)?)
}

/// `GET /` on the listener: (status, body).
async fn http_get(port: u16) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no HTTP head in {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no status in {head:?}"))?;
    Ok((status, body.to_string()))
}

/// Retries (bounded in count and time) until the listener answers 200 with `body`: Envoy
/// ACKs a listener before its worker has bound the socket.
async fn wait_for_body(port: u16, body: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut last = None;
    for _ in 0..400 {
        match http_get(port).await {
            Ok((200, got)) if got == body => return Ok(()),
            other => last = Some(format!("{other:?}")),
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    anyhow::bail!("listener on {port} never answered {body:?}; last: {last:?}")
}

/// Envoy takes the first snapshot (all four types ACKed, named EDS/RDS subscriptions, the
/// listener answering), then a second good one, then a bad one it must NACK while the
/// second keeps answering. Returns the NACK and the node's final state.
async fn envoy_round_trip(
    node: &str,
    api_type: &str,
    bad: impl FnOnce(u16) -> anyhow::Result<(Snapshot, &'static str)>,
) -> anyhow::Result<(Nack, NodeStatus)> {
    let server = AdsServer::new();
    let running = Running::start(&server, None).await?;
    let port = free_port();
    server.set_snapshot(snapshot(
        "v1",
        http_listener(port, None),
        direct_response_routes("hello v1", None),
    )?);
    let mut envoy = Proxy::envoy(node, api_type, running.addr.port()).await?;
    let result = async {
        for t in type_url::ORDER.iter().take(4) {
            server.wait_for_ack(node, t, "v1", WAIT).await?;
        }
        let status = server.status();
        let sub = |t| type_status(&status, node, t).map(|s| (*s.subscription).clone());
        assert_eq!(sub(type_url::CLUSTER), Some(Subscription::Wildcard));
        assert_eq!(sub(type_url::LISTENER), Some(Subscription::Wildcard));
        assert_eq!(
            sub(type_url::CLUSTER_LOAD_ASSIGNMENT),
            Some(Subscription::names([CLUSTER_NAME]))
        );
        assert_eq!(
            sub(type_url::ROUTE_CONFIGURATION),
            Some(Subscription::names([ROUTE_NAME]))
        );
        for t in type_url::ORDER.iter().take(4) {
            let s = type_status(&status, node, t).unwrap();
            eprintln!(
                "{node}: {} first request names {:?}, {} response(s), {} ACK(s)",
                type_url::short_name(t),
                s.first_request_names,
                s.responses,
                s.acks
            );
        }
        wait_for_body(port, "hello v1").await?;

        server.set_snapshot(snapshot(
            "v2",
            http_listener(port, None),
            direct_response_routes("hello v2", None),
        )?);
        server
            .wait_for_ack(node, type_url::ROUTE_CONFIGURATION, "v2", WAIT)
            .await?;
        wait_for_body(port, "hello v2").await?;

        let (bad_snapshot, nacked_type) = bad(port)?;
        server.set_snapshot(bad_snapshot);
        let nack = server.wait_for_nack(node, nacked_type, WAIT).await?;
        eprintln!("{node}: NACK of {nacked_type}: {nack:?}");
        assert!(!nack.message.is_empty(), "NACK without error_detail");
        assert_eq!(nack.rejected_version, "v3");
        // The last good configuration keeps answering.
        let (status, body) = http_get(port).await?;
        assert_eq!((status, body.as_str()), (200, "hello v2"));
        let node_status = server.status().nodes[node].clone();
        assert!(node_status.connected);
        assert_eq!(node_status.streams, 1, "Envoy never had to reconnect");
        Ok::<_, anyhow::Error>((nack, node_status))
    }
    .await;
    let outcome = result.map_err(|e| anyhow::anyhow!("{e:#}\n{}", envoy.log()))?;
    drop(envoy);
    running.stop().await?;
    Ok(outcome)
}

/// (xDS short name, ACKed version) per type, in Envoy's order.
fn acked(node: &NodeStatus) -> Vec<(&str, &str)> {
    type_url::sorted(node.types.keys().map(String::as_str))
        .into_iter()
        .map(|t| {
            (
                type_url::short_name(t),
                node.types[t].acked_version.as_deref().unwrap_or(""),
            )
        })
        .collect()
}

#[tokio::test]
async fn envoy_sotw_acks_serves_and_nacks_a_bad_listener() -> anyhow::Result<()> {
    let (nack, node) = envoy_round_trip("envoy-sotw", "GRPC", |port| {
        // An HTTP filter whose typed_config names a message Envoy has no extension for.
        let unknown = HttpFilter {
            name: "weft.test.unknown".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(Any {
                type_url: "type.googleapis.com/weft.test.DoesNotExist".into(),
                value: Vec::new(),
            })),
            ..Default::default()
        };
        let snapshot = snapshot(
            "v3",
            http_listener(port, Some(unknown)),
            direct_response_routes("hello v2", None),
        )?;
        Ok((snapshot, type_url::LISTENER))
    })
    .await?;
    // State-of-the-world NACKs name the version still in use.
    assert_eq!(nack.version_info, "v2");
    assert_eq!(nack.code, 13, "Envoy reports NACKs as INTERNAL");
    assert_eq!(
        nack.message,
        "Error adding/updating listener(s) http: Didn't find a registered implementation for \
         'weft.test.unknown' with type URL: 'weft.test.DoesNotExist'\n"
    );
    // CDS got v3 and the listener was refused; EDS and RDS are re-sent only when what the
    // client holds changes (their responses need not be complete), so they stay at the
    // version that last changed them.
    assert_eq!(
        acked(&node),
        [("CDS", "v3"), ("EDS", "v1"), ("LDS", "v2"), ("RDS", "v2")]
    );
    Ok(())
}

#[tokio::test]
async fn envoy_delta_acks_serves_and_nacks_a_bad_route() -> anyhow::Result<()> {
    let (nack, node) = envoy_round_trip("envoy-delta", "DELTA_GRPC", |port| {
        let snapshot = snapshot(
            "v3",
            http_listener(port, None),
            direct_response_routes("hello v3", Some("([")),
        )?;
        Ok((snapshot, type_url::ROUTE_CONFIGURATION))
    })
    .await?;
    assert_eq!(nack.code, 13, "Envoy reports NACKs as INTERNAL");
    // RE2's message alone: Envoy names neither the route table nor the regex.
    assert_eq!(nack.message, "missing ]: [");
    assert_eq!(nack.version_info, "", "delta NACKs carry no version");
    // Only the route table changed after v1, so only it was sent again.
    assert_eq!(
        acked(&node),
        [("CDS", "v1"), ("EDS", "v1"), ("LDS", "v1"), ("RDS", "v2")]
    );
    assert_eq!(node.types[type_url::CLUSTER].responses, 1);
    Ok(())
}
