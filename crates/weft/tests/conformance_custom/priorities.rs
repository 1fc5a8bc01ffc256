//! Endpoint priorities, locality weighted balancing and slow start, compared between Envoy
//! and Weft: how much of the load each priority takes as hosts are unhealthy, where the
//! hashing balancers send a key, how locality weights split traffic, and that slow start
//! hosts which started together share evenly.

use super::*;
use weft_proxy::upstream::xxhash::xxh64;
use weft_testkit::admin;
use weft_testkit::admin::exposition::text_stats;

/// Requests for each split checked statistically, and the band allowed around the
/// expected share (a wrong priority load, e.g. 100/0 instead of 70/30, is ~13 sigma out).
const N: u64 = 400;
const SIGMAS: f64 = 5.0;
/// Requests for the splits that are exact.
const EXACT: u64 = 50;
/// Keys sent through the hashing balancers.
const KEYS: u64 = 40;

async fn spread(
    addr: std::net::SocketAddr,
    path: &str,
    n: u64,
) -> Result<BTreeMap<String, u64>, Error> {
    let mut by = BTreeMap::new();
    for i in 0..n {
        let resp = client::send(
            addr,
            &HttpRequest::get("example.com", &format!("{path}/{i}")),
        )
        .await?;
        let who = EchoSeen::parse(&resp.body)
            .map(|s| s.backend)
            .unwrap_or_else(|| format!("{}", resp.status));
        *by.entry(who).or_default() += 1;
    }
    Ok(by)
}

fn count(by: &BTreeMap<String, u64>, backend: &str) -> u64 {
    by.get(backend).copied().unwrap_or(0)
}

async fn panics(rig: &Rig, cluster: &str) -> Result<u64, Error> {
    let resp = admin::get(rig.proxy().admin(), "/stats").await?;
    let all = text_stats(&String::from_utf8_lossy(&resp.body));
    Ok(all
        .get(&format!("cluster.{cluster}.lb_healthy_panic"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// The backend each key reaches through a hashing cluster whose P0 is `a` (and an unhealthy
/// `b`) and P1 is `c`, against what Envoy's `choosePriority` gives for the key's XXH64 with
/// loads 70/30.
async fn keyed(
    addr: std::net::SocketAddr,
    path: &str,
) -> Result<(Vec<String>, Vec<String>), Error> {
    let mut got = Vec::new();
    let mut want = Vec::new();
    for i in 0..KEYS {
        let key = format!("user-{i}");
        let resp = client::send(
            addr,
            &HttpRequest::get("example.com", &format!("{path}/{i}")).header("x-user", &key),
        )
        .await?;
        got.push(
            EchoSeen::parse(&resp.body)
                .map(|s| s.backend)
                .unwrap_or_else(|| format!("{}", resp.status)),
        );
        let p0 = xxh64(key.as_bytes(), 0) % 100 < 70;
        want.push(if p0 { "a" } else { "c" }.to_string());
    }
    Ok((got, want))
}

#[test]
pub(crate) fn priorities() {
    block_on(custom("priorities", async |rig: &Rig| {
        let addr = rig.addr("listener")?;
        let mut out = Vec::new();

        let before = panics(rig, "failover").await?;
        let by = spread(addr, "/failover", N).await?;
        println!("failover: {by:?}");
        out.push(Outcome::new(
            "failover: the unhealthy P0 host gets nothing",
            count(&by, "b"),
            0,
        ));
        out.push(Outcome::new(
            "failover: half a healthy P0 spills 30% to P1",
            (
                count(&by, "a") + count(&by, "c"),
                stats::within_sigma(count(&by, "c"), N, 0.3, SIGMAS),
            ),
            (N, true),
        ));
        out.push(Outcome::new(
            "failover: no panic",
            panics(rig, "failover").await? - before,
            0,
        ));

        out.push(Outcome::new(
            "all_up: a healthy P0 takes everything",
            spread(addr, "/all_up", EXACT).await?,
            BTreeMap::from([("a".to_string(), EXACT)]),
        ));
        out.push(Outcome::new(
            "p0_down: P1 takes everything, round robin within it",
            spread(addr, "/p0_down", EXACT).await?,
            BTreeMap::from([("c".to_string(), EXACT / 2), ("d".to_string(), EXACT / 2)]),
        ));

        let before = panics(rig, "total_panic").await?;
        let by = spread(addr, "/panic", N).await?;
        println!("total panic: {by:?}");
        out.push(Outcome::new(
            "total panic: load by host count (1 of 3 to P0), every host serves",
            (
                stats::within_sigma(count(&by, "a"), N, 0.34, SIGMAS),
                count(&by, "c") > 0 && count(&by, "d") > 0,
                count(&by, "a") + count(&by, "c") + count(&by, "d"),
            ),
            (true, true, N),
        ));
        out.push(Outcome::new(
            "total panic: every pick counted",
            panics(rig, "total_panic").await? - before,
            N,
        ));

        for path in ["/ring", "/maglev"] {
            let (got, want) = keyed(addr, path).await?;
            out.push(Outcome::new(
                format!("{path}: the priority follows the request's hash"),
                got,
                want,
            ));
        }

        let by = spread(addr, "/locality", N).await?;
        println!("locality: {by:?}");
        out.push(Outcome::new(
            "locality weights 1:3",
            (
                count(&by, "a") + count(&by, "b"),
                stats::within_sigma(count(&by, "a"), N, 0.25, SIGMAS),
            ),
            (N, true),
        ));
        out.push(Outcome::new(
            "without locality_weighted_lb_config locality weights are ignored",
            spread(addr, "/unweighted", EXACT).await?,
            BTreeMap::from([("a".to_string(), EXACT / 2), ("b".to_string(), EXACT / 2)]),
        ));

        let by = spread(addr, "/zone_health", N).await?;
        println!("locality health: {by:?}");
        out.push(Outcome::new(
            "a half-healthy locality weighs 0.7 against 1",
            (
                count(&by, "b"),
                count(&by, "a") + count(&by, "c"),
                stats::within_sigma(count(&by, "a"), N, 0.7 / 1.7, SIGMAS),
            ),
            (0, N, true),
        ));

        let by = spread(addr, "/lr_failover", N).await?;
        println!("least request failover: {by:?}");
        out.push(Outcome::new(
            "least request: half a healthy P0 spills 30% to P1",
            (
                count(&by, "b"),
                count(&by, "a") + count(&by, "c"),
                stats::within_sigma(count(&by, "c"), N, 0.3, SIGMAS),
            ),
            (0, N, true),
        ));

        let by = spread(addr, "/overprovisioned", N).await?;
        println!("overprovisioning factor 100: {by:?}");
        out.push(Outcome::new(
            "overprovisioning_factor 100: half a healthy P0 keeps 50%",
            stats::within_sigma(count(&by, "c"), N, 0.5, SIGMAS),
            true,
        ));

        let before = panics(rig, "empty").await?;
        out.push(Outcome::new(
            "empty: no host, 503",
            spread(addr, "/empty", 3).await?,
            BTreeMap::from([("503 Service Unavailable".to_string(), 3)]),
        ));
        out.push(Outcome::new(
            "empty: lb_healthy_panic",
            panics(rig, "empty").await? - before,
            3,
        ));

        // Three 503s in a row from a (b answers normally) eject it.
        let mut failed = 0;
        for i in 0..12 {
            let resp = client::send(
                addr,
                &HttpRequest::get("example.com", &format!("/ejected/fail/{i}"))
                    .header("x-echo-status-of", "a=503"),
            )
            .await?;
            if resp.status == 503 {
                failed += 1;
                if failed == 3 {
                    break;
                }
            }
        }
        out.push(Outcome::new("ejected: a fails three times", failed, 3));
        let by = spread(addr, "/ejected", N).await?;
        println!("ejected: {by:?}");
        out.push(Outcome::new(
            "ejected: the ejected P0 host counts as unhealthy, 30% spill to P1",
            (
                count(&by, "a"),
                count(&by, "b") + count(&by, "c"),
                stats::within_sigma(count(&by, "c"), N, 0.3, SIGMAS),
            ),
            (0, N, true),
        ));

        for path in ["/slow", "/slow_lr"] {
            let by = spread(addr, path, 100).await?;
            println!("{path}: {by:?}");
            out.push(Outcome::new(
                format!("{path}: hosts that started together ramp up together"),
                count(&by, "a") + count(&by, "b") == 100 && count(&by, "a").abs_diff(50) <= 5,
                true,
            ));
        }
        Ok(out)
    }));
}

/// Slow start over EDS: `a` serves alone for `ALONE`, then `b` joins. `b`'s weight starts at
/// the 1% floor of a 30s window while `a`'s is already `ALONE / 30s`, so over the next
/// requests `b` gets a small share (a tenth or so) where round robin alone would give it
/// half. The band is wide enough that only a proxy taking tens of seconds for the requests
/// could leave it.
const ALONE: Duration = Duration::from_secs(4);
const AFTER_JOIN: u64 = 100;
const SLOW_CLUSTER: &str = "svc-slow";
const SLOW_ROUTES: &str = "slow-routes";
const SLOW_LISTENER: &str = "http";

fn slow_cluster() -> weft_testkit::ads::xds::envoy_types::pb::google::protobuf::Any {
    use weft_testkit::ads::resources::ads;
    use weft_testkit::ads::xds::envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
    use weft_testkit::ads::xds::envoy_types::pb::envoy::r#type::v3::Percent;
    use weft_testkit::ads::xds::envoy_types::pb::google::protobuf::Duration as PbDuration;
    weft_testkit::ads::xds::envoy_types::util::pack_any(Cluster {
        name: SLOW_CLUSTER.into(),
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
        lb_config: Some(cluster::LbConfig::RoundRobinLbConfig(
            cluster::RoundRobinLbConfig {
                slow_start_config: Some(cluster::SlowStartConfig {
                    slow_start_window: Some(PbDuration {
                        seconds: 30,
                        nanos: 0,
                    }),
                    aggression: None,
                    min_weight_percent: Some(Percent { value: 1.0 }),
                }),
            },
        )),
        ..Default::default()
    })
}

async fn slow_start_join(
    rig: &mut weft_testkit::ads::AdsRig,
    t: &mut weft_testkit::ads::Transcript,
) -> Result<(), Error> {
    use weft_testkit::ads::resources::{endpoints, rds_listener, routes, snapshot};
    use weft_testkit::ads::xds::type_url::{CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER};
    let node = rig.node.clone();
    let port = rig.listener_port(SLOW_LISTENER)?;
    let (a, b) = (rig.backend_port("a")?, rig.backend_port("b")?);
    let version = |v: &str, ports: &[u16]| {
        snapshot(
            v,
            [
                slow_cluster(),
                endpoints(SLOW_CLUSTER, ports),
                rds_listener(SLOW_LISTENER, port, SLOW_ROUTES),
                routes(SLOW_ROUTES, &[("/", SLOW_CLUSTER)]),
            ],
        )
    };
    rig.control()?.push(version("v1", &[a])?);
    rig.start_proxy().await?;
    rig.control()?.settled(&node, "v1", &[]).await?;
    rig.proxy()?.wait_ready().await?;
    let addr = rig.listener_addr(SLOW_LISTENER)?;
    weft_testkit::ads::wait_reach(
        addr,
        &HttpRequest::get("example.com", "/"),
        "an answer from a",
        |r| r.backend() == Some("a"),
    )
    .await?;
    tokio::time::sleep(ALONE).await;
    rig.control()?.push(version("v2", &[a, b])?);
    let changed = match rig.mode {
        weft_testkit::ads::AdsMode::Sotw => vec![CLUSTER, LISTENER, CLUSTER_LOAD_ASSIGNMENT],
        weft_testkit::ads::AdsMode::Delta => vec![CLUSTER_LOAD_ASSIGNMENT],
    };
    rig.control()?.settled(&node, "v2", &changed).await?;
    // The update is ACKed once applied; wait for b's first answer to be sure of it.
    let mut by = BTreeMap::<String, u64>::new();
    let mut sent = 0;
    while count(&by, "b") == 0 && sent < 10 * AFTER_JOIN {
        by = spread(addr, "/join", 1)
            .await?
            .into_iter()
            .fold(by, |mut m, (k, v)| {
                *m.entry(k).or_default() += v;
                m
            });
        sent += 1;
    }
    let by = spread(addr, "/joined", AFTER_JOIN).await?;
    println!("slow start, after b joined: {by:?} (before b's first answer: {sent} requests)");
    t.record(
        "b joined: every request answered, b gets some but far less than half",
        (
            count(&by, "a") + count(&by, "b") == AFTER_JOIN,
            count(&by, "b") > 0 && count(&by, "b") <= AFTER_JOIN * 3 / 10,
        ),
    );
    t.record("b answered at all", sent < 10 * AFTER_JOIN);
    Ok(())
}

#[test]
pub(crate) fn slow_start_over_eds() {
    block_on(async {
        weft_testkit::ads::run_peers(
            &peers()?,
            weft_testkit::ads::AdsMode::Sotw,
            "slow_start_over_eds",
            slow_start_join,
        )
        .await
    });
}
