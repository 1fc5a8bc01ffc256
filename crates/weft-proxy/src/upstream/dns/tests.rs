//! DNS clusters against a name server run in the test (UDP on 127.0.0.1, a port picked at
//! run time), so that answers, their TTLs and their changes are the test's to choose.

use super::{Resolution, Resolver, Schedule, TtlResolver, spawn_with};
use crate::model::cluster::{ClusterConfig, DnsFamily};
use crate::upstream::cluster::{Cluster, ClusterStats};
use envoy_types::pb::envoy::config::cluster::v3::{
    Cluster as PbCluster, cluster::ClusterDiscoveryType, cluster::DiscoveryType,
    cluster::DnsLookupFamily,
};
use envoy_types::pb::envoy::config::core::v3::{
    Address, SocketAddress, address, socket_address::PortSpecifier,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint as PbEndpoint, LbEndpoint, LocalityLbEndpoints,
    lb_endpoint::HostIdentifier,
};
use hickory_resolver::proto::op::{Message, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, CNAME};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::UdpSocket;

/// What the test name server answers.
#[derive(Default)]
struct Zone {
    /// Name (lower case, with the final dot) to its IPv4 addresses and their TTL.
    a: HashMap<String, (Vec<Ipv4Addr>, u32)>,
    /// Name to the name it is an alias of, and the CNAME's TTL.
    cname: HashMap<String, (String, u32)>,
    /// Answer every query with SERVFAIL.
    servfail: bool,
}

/// A name server that answers A queries from its [`Zone`], AAAA queries for known names with
/// no record (NODATA), and unknown names with NXDOMAIN.
struct TestDns {
    addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    queries: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestDns {
    async fn start() -> TestDns {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = socket.local_addr().expect("local addr");
        let zone = Arc::new(Mutex::new(Zone::default()));
        let queries = Arc::new(AtomicUsize::new(0));
        let (z, q) = (zone.clone(), queries.clone());
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(request) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                q.fetch_add(1, Ordering::SeqCst);
                let response = answer(&request, &z.lock());
                let bytes = response.to_vec().expect("encode response");
                let _ = socket.send_to(&bytes, peer).await;
            }
        });
        TestDns {
            addr,
            zone,
            queries,
            task,
        }
    }

    fn set_a(&self, name: &str, ips: &[Ipv4Addr], ttl: u32) {
        self.zone
            .lock()
            .a
            .insert(name.to_string(), (ips.to_vec(), ttl));
    }

    fn resolver(&self) -> TtlResolver {
        TtlResolver::with_name_server(self.addr, None)
    }
}

fn answer(request: &Message, zone: &Zone) -> Message {
    let mut response = Message::response(request.metadata.id, OpCode::Query);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.metadata.authoritative = true;
    let Some(query) = request.queries.first() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return response;
    };
    response.add_query(query.clone());
    if zone.servfail {
        response.metadata.response_code = ResponseCode::ServFail;
        return response;
    }
    let mut name = query.name().to_lowercase().to_string();
    if let Some((target, ttl)) = zone.cname.get(&name) {
        let target_name = Name::from_str(target).expect("cname target");
        response.add_answer(Record::from_rdata(
            query.name().clone(),
            *ttl,
            RData::CNAME(CNAME(target_name)),
        ));
        name = target.clone();
    }
    let Some((ips, ttl)) = zone.a.get(&name) else {
        response.metadata.response_code = ResponseCode::NXDomain;
        return response;
    };
    if query.query_type() == RecordType::A {
        let owner = Name::from_str(&name).expect("owner name");
        for ip in ips {
            response.add_answer(Record::from_rdata(
                owner.clone(),
                *ttl,
                RData::A(A::from(*ip)),
            ));
        }
    }
    response
}

// Envoy deprecated the cluster-level DNS fields for the `envoy.clusters.dns` extension, but
// istiod still sends them, and they are what the proxy reads.
#[allow(deprecated)]
fn pb_cluster(kind: DiscoveryType, host: &str, refresh: Duration, respect_ttl: bool) -> PbCluster {
    let address = Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: host.into(),
            port_specifier: Some(PortSpecifier::PortValue(8080)),
            ..Default::default()
        })),
    };
    PbCluster {
        name: "dns".into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(kind as i32)),
        dns_lookup_family: DnsLookupFamily::V4Only as i32,
        respect_dns_ttl: respect_ttl,
        dns_refresh_rate: Some(envoy_types::pb::google::protobuf::Duration {
            seconds: i64::try_from(refresh.as_secs()).expect("refresh"),
            nanos: 0,
        }),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: "dns".into(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![LbEndpoint {
                    host_identifier: Some(HostIdentifier::Endpoint(PbEndpoint {
                        address: Some(address),
                        ..Default::default()
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn live_cluster(pb: PbCluster) -> Arc<Cluster> {
    let config = ClusterConfig::new(&pb).expect("the cluster converts");
    Arc::new(Cluster::new(config, pb, Arc::new(ClusterStats::default())))
}

fn endpoints(c: &Cluster) -> Vec<SocketAddr> {
    c.endpoints.load().hosts.iter().map(|h| h.addr).collect()
}

fn at_8080(ips: &[[u8; 4]]) -> Vec<SocketAddr> {
    ips.iter()
        .map(|ip| SocketAddr::new(IpAddr::from(*ip), 8080))
        .collect()
}

/// Waits until the cluster's endpoints are `want`. The bound only keeps a broken refresh from
/// hanging the test: nothing but the TTL can bring the change about before it.
async fn wait_for_endpoints(c: &Cluster, want: &[SocketAddr]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = endpoints(c);
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cluster's endpoints stayed {got:?}, never became {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn strict_dns_endpoints_come_from_the_answer_and_follow_it_after_its_ttl() {
    let dns = TestDns::start().await;
    dns.set_a("svc.test.", &[Ipv4Addr::new(10, 0, 0, 1)], 1);
    // An hour between refreshes: only the answer's one-second TTL can show the change.
    let cluster = live_cluster(pb_cluster(
        DiscoveryType::StrictDns,
        "svc.test",
        Duration::from_secs(3600),
        true,
    ));
    let warmed = Arc::new(tokio::sync::Notify::new());
    spawn_with(
        &cluster,
        warmed.clone(),
        Resolver::Ttl(Box::new(dns.resolver())),
    );
    warmed.notified().await;
    assert!(cluster.is_warm());
    assert_eq!(endpoints(&cluster), at_8080(&[[10, 0, 0, 1]]));
    assert_eq!(
        cluster.endpoints.load().hosts[0].hostname.as_deref(),
        Some("svc.test")
    );

    dns.set_a(
        "svc.test.",
        &[Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3)],
        1,
    );
    wait_for_endpoints(&cluster, &at_8080(&[[10, 0, 0, 2], [10, 0, 0, 3]])).await;
}

#[tokio::test]
async fn logical_dns_takes_the_first_address_and_follows_the_answer_after_its_ttl() {
    let dns = TestDns::start().await;
    dns.set_a(
        "one.test.",
        &[Ipv4Addr::new(10, 0, 1, 1), Ipv4Addr::new(10, 0, 1, 9)],
        1,
    );
    let cluster = live_cluster(pb_cluster(
        DiscoveryType::LogicalDns,
        "one.test",
        Duration::from_secs(3600),
        true,
    ));
    let warmed = Arc::new(tokio::sync::Notify::new());
    spawn_with(
        &cluster,
        warmed.clone(),
        Resolver::Ttl(Box::new(dns.resolver())),
    );
    warmed.notified().await;
    assert_eq!(endpoints(&cluster), at_8080(&[[10, 0, 1, 1]]));

    dns.set_a("one.test.", &[Ipv4Addr::new(10, 0, 1, 5)], 1);
    wait_for_endpoints(&cluster, &at_8080(&[[10, 0, 1, 5]])).await;
}

#[tokio::test]
async fn the_answer_ttl_is_its_shortest_record_ttl_cnames_included() {
    let dns = TestDns::start().await;
    dns.set_a("target.test.", &[Ipv4Addr::new(10, 0, 2, 1)], 30);
    dns.zone
        .lock()
        .cname
        .insert("alias.test.".into(), ("target.test.".into(), 7));
    let mut r = dns.resolver();
    assert_eq!(
        r.resolve("target.test", DnsFamily::V4Only).await,
        Resolution::Answer {
            addrs: vec![IpAddr::from([10, 0, 2, 1])],
            ttl: Duration::from_secs(30),
        }
    );
    assert_eq!(
        r.resolve("alias.test", DnsFamily::V4Only).await,
        Resolution::Answer {
            addrs: vec![IpAddr::from([10, 0, 2, 1])],
            ttl: Duration::from_secs(7),
        }
    );
}

#[tokio::test]
async fn a_missing_name_is_an_empty_answer_and_servfail_is_a_failure() {
    let dns = TestDns::start().await;
    dns.set_a("v4.test.", &[Ipv4Addr::new(10, 0, 3, 1)], 60);
    let mut r = dns.resolver();
    assert_eq!(
        r.resolve("missing.test", DnsFamily::V4Only).await,
        Resolution::Answer {
            addrs: vec![],
            ttl: Duration::ZERO
        }
    );
    // AUTO asks for IPv6 first; a name with none falls back to IPv4.
    assert_eq!(
        r.resolve("v4.test", DnsFamily::Auto).await,
        Resolution::Answer {
            addrs: vec![IpAddr::from([10, 0, 3, 1])],
            ttl: Duration::from_secs(60),
        }
    );
    // NODATA for the only family asked is an empty answer too.
    assert_eq!(
        r.resolve("v4.test", DnsFamily::V6Only).await,
        Resolution::Answer {
            addrs: vec![],
            ttl: Duration::ZERO
        }
    );
    dns.zone.lock().servfail = true;
    let got = r.resolve("v4.test", DnsFamily::V4Only).await;
    assert!(matches!(got, Resolution::Failed(_)), "{got:?}");
}

#[tokio::test]
async fn hosts_file_and_localhost_answers_carry_no_ttl_and_ask_no_server() {
    let dns = TestDns::start().await;
    let hosts = std::env::temp_dir().join(format!(
        "weft-dns-hosts-{}-{}",
        std::process::id(),
        dns.addr.port()
    ));
    std::fs::write(&hosts, "# test\n10.9.8.7 pinned.test pinned\n").expect("write hosts");
    let mut r = TtlResolver::with_name_server(dns.addr, Some(hosts.clone()));
    let pinned = r.resolve("pinned.test", DnsFamily::V4Only).await;
    let local4 = r.resolve("localhost", DnsFamily::V4Only).await;
    let local6 = r.resolve("localhost", DnsFamily::V6Only).await;
    std::fs::remove_file(&hosts).expect("remove hosts");
    assert_eq!(
        pinned,
        Resolution::Answer {
            addrs: vec![IpAddr::from([10, 9, 8, 7])],
            ttl: Duration::ZERO
        }
    );
    assert_eq!(
        local4,
        Resolution::Answer {
            addrs: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            ttl: Duration::ZERO
        }
    );
    assert_eq!(
        local6,
        Resolution::Answer {
            addrs: vec![IpAddr::V6(Ipv6Addr::LOCALHOST)],
            ttl: Duration::ZERO
        }
    );
    assert_eq!(dns.queries.load(Ordering::SeqCst), 0);
}

#[test]
fn the_next_refresh_follows_envoys_rules() {
    let refresh = Duration::from_secs(5);
    let ip = |last: u8| IpAddr::from([10, 0, 0, last]);
    let answer = |addrs: Vec<IpAddr>, ttl: u64| Resolution::Answer {
        addrs,
        ttl: Duration::from_secs(ttl),
    };
    let strict = Schedule {
        refresh,
        respect_ttl: true,
        logical: false,
    };
    // The TTL wins, whether shorter or longer than the refresh rate.
    assert_eq!(
        strict.settle(answer(vec![ip(1), ip(2), ip(1)], 1)),
        (Some(vec![ip(1), ip(2)]), Duration::from_secs(1))
    );
    assert_eq!(
        strict.settle(answer(vec![ip(1)], 300)),
        (Some(vec![ip(1)]), Duration::from_secs(300))
    );
    // A zero TTL, and an empty answer, fall back to the refresh rate.
    assert_eq!(
        strict.settle(answer(vec![ip(1)], 0)),
        (Some(vec![ip(1)]), refresh)
    );
    assert_eq!(strict.settle(answer(vec![], 30)), (Some(vec![]), refresh));
    // A failure keeps the endpoints and tries again after the refresh rate.
    assert_eq!(
        strict.settle(Resolution::Failed("timeout".into())),
        (None, refresh)
    );
    // Without respect_dns_ttl the TTL does nothing.
    let plain = Schedule {
        respect_ttl: false,
        ..strict
    };
    assert_eq!(
        plain.settle(answer(vec![ip(1)], 1)),
        (Some(vec![ip(1)]), refresh)
    );
    // LOGICAL_DNS takes the first address, and an empty answer is a failure.
    let logical = Schedule {
        logical: true,
        ..strict
    };
    assert_eq!(
        logical.settle(answer(vec![ip(3), ip(4)], 2)),
        (Some(vec![ip(3)]), Duration::from_secs(2))
    );
    assert_eq!(logical.settle(answer(vec![], 2)), (None, refresh));
}
