//! Envoy-vs-Weft conformance over ADS: an in-test `weft_xds` ADS server feeds real Envoy 1.40
//! and `weft proxy`, each booted from the same bootstrap (nothing but the `xds` cluster and
//! `dynamic_resources` over ADS), in state-of-the-world and delta modes. Every scenario
//! states what Envoy does (so it fails if the scenario is wrong) and records a transcript
//! of observations that must be equal between the proxies.
//!
//! Run both proxies:            `cargo test -p weft --test proxy_ads`
//! Only Envoy (checks the scenarios themselves):
//!                              `WEFT_CONFORMANCE_ONLY=envoy cargo test -p weft --test proxy_ads`
//! Only Weft:                   `WEFT_CONFORMANCE_ONLY=weft cargo test -p weft --test proxy_ads`
//! See each proxy's transcript: add `-- --nocapture`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use weft_testkit::ads::resources::{
    eds_cluster, endpoints, listener_with_unknown_filter, rds_listener, routes,
    routes_with_bad_regex, snapshot,
};
use weft_testkit::ads::xds::envoy_types::pb::google::protobuf::Any;
use weft_testkit::ads::xds::server::AdsServer;
use weft_testkit::ads::xds::server::{ServerStatus, type_status};
use weft_testkit::ads::xds::type_url::{
    CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION, short_name,
};
use weft_testkit::ads::{
    AdsMode, AdsProxy, AdsRig, Reach, Transcript, bootstrap, pause, probe, run_peers, wait_reach,
    with_xds_pipe,
};
use weft_testkit::{Error, HttpRequest, ProxyBinary, block_on, conformance};

mod ads;
use ads::update_under_load;

const LISTENER_NAME: &str = "http";
const SECOND_LISTENER: &str = "extra";
const ROUTES: &str = "routes";
const SVC_A: &str = "svc-a";
const SVC_B: &str = "svc-b";
/// The four types every scenario serves, in Envoy's order.
const ALL: [&str; 4] = [
    CLUSTER,
    CLUSTER_LOAD_ASSIGNMENT,
    LISTENER,
    ROUTE_CONFIGURATION,
];

fn peers() -> Result<Vec<ProxyBinary>, Error> {
    let only = std::env::var("WEFT_CONFORMANCE_ONLY").ok();
    conformance::peers(only.as_deref(), Path::new(env!("CARGO_BIN_EXE_weft")))
}

fn fail(message: impl Into<String>) -> Error {
    Error::Conformance(message.into())
}

/// The types a push of `changed` types is answered on: a state-of-the-world server resends
/// every type at the new version, a delta server only what changed.
fn answered(mode: AdsMode, changed: &[&'static str]) -> Vec<&'static str> {
    match mode {
        // CDS and LDS responses are complete, so every version is sent; EDS and RDS go out
        // only when what the proxy holds changes.
        AdsMode::Sotw => {
            let more = changed.iter().filter(|t| ![CLUSTER, LISTENER].contains(t));
            [CLUSTER, LISTENER]
                .into_iter()
                .chain(more.copied())
                .collect()
        }
        AdsMode::Delta => changed.to_vec(),
    }
}

fn get(path: &str) -> HttpRequest {
    HttpRequest::get("example.com", path)
}

/// Type short name → subscription, for the types `node` has subscribed to.
fn subscriptions(status: &ServerStatus, node: &str) -> BTreeMap<String, String> {
    status
        .nodes
        .get(node)
        .map(|n| {
            n.types
                .iter()
                .map(|(t, s)| (short_name(t).to_string(), format!("{:?}", s.subscription)))
                .collect()
        })
        .unwrap_or_default()
}

/// Type short name → ACKed version.
fn acked(status: &ServerStatus, node: &str) -> BTreeMap<String, Option<String>> {
    ALL.iter()
        .map(|t| {
            (
                short_name(t).to_string(),
                type_status(status, node, t).and_then(|s| s.acked_version.clone()),
            )
        })
        .collect()
}

/// Probes until `addr` answers from `backend` (the proxy ACKs before its workers serve).
async fn wait_backend(addr: SocketAddr, path: &str, backend: &str) -> Result<Reach, Error> {
    wait_reach(
        addr,
        &get(path),
        &format!("an answer from {backend}"),
        |r| r.backend() == Some(backend),
    )
    .await
}

/// Records `GET path` on `addr`, which must answer 200 from `backend`.
async fn expect_backend(
    t: &mut Transcript,
    label: &str,
    addr: SocketAddr,
    path: &str,
    backend: &str,
) -> Result<(), Error> {
    let reach = probe(addr, &get(path)).await;
    t.record(label, &reach);
    match reach.observation() {
        Some(o) if o.status == 200 && reach.backend() == Some(backend) => Ok(()),
        _ => Err(fail(format!(
            "{label}: GET {path} must reach {backend} with 200, got {reach:?}"
        ))),
    }
}

/// Records readiness: 200's body (`LIVE`) is compared; a not-ready body names an internal
/// initialisation phase whose timing differs between runs, so it is a note.
fn record_ready(t: &mut Transcript, label: &str, ready: &(u16, String)) {
    if ready.0 == 200 {
        t.record(label, ready);
    } else {
        t.record(label, ready.0);
        t.note(label, ready.1.clone());
    }
}

/// Records readiness; it must be `status`.
async fn expect_ready(
    rig: &mut AdsRig,
    t: &mut Transcript,
    label: &str,
    status: u16,
) -> Result<(), Error> {
    let ready = rig.proxy()?.ready().await?;
    record_ready(t, label, &ready);
    if ready.0 != status {
        return Err(fail(format!(
            "{label}: /ready must be {status}, got {ready:?}"
        )));
    }
    Ok(())
}

/// The usual world: clusters `svc-a` (on backend a) and `svc-b` (on b), the listener, and a
/// route table sending everything to `route_to`.
fn world(rig: &mut AdsRig, route_to: &str) -> Result<Vec<Any>, Error> {
    let port = rig.listener_port(LISTENER_NAME)?;
    Ok(vec![
        eds_cluster(SVC_A),
        eds_cluster(SVC_B),
        endpoints(SVC_A, &[rig.backend_port("a")?]),
        endpoints(SVC_B, &[rig.backend_port("b")?]),
        rds_listener(LISTENER_NAME, port, ROUTES),
        routes(ROUTES, &[("/", route_to)]),
    ])
}

/// Pushes `world(svc-a)` as v1, starts the proxy and waits until it serves from backend a.
async fn serving_v1(rig: &mut AdsRig, t: &mut Transcript) -> Result<SocketAddr, Error> {
    let v1 = snapshot("v1", world(rig, SVC_A)?)?;
    rig.control()?.push(v1);
    rig.start_proxy().await?;
    rig.control()?.settled(&rig.node, "v1", &ALL).await?;
    rig.proxy()?.wait_ready().await?;
    let addr = rig.listener_addr(LISTENER_NAME)?;
    wait_backend(addr, "/", "a").await?;
    expect_backend(t, "v1 serves", addr, "/", "a").await?;
    Ok(addr)
}

/// Scenario 1: Everything over ADS: not ready before the first snapshot; after it, every type
/// ACKed, named EDS/RDS subscriptions, ready, and requests routed through RDS to the EDS
/// endpoint.
async fn initial(rig: &mut AdsRig, t: &mut Transcript) -> Result<(), Error> {
    let node = rig.node.clone();
    rig.start_proxy().await?;
    // Wildcard includes every name: this waits for the CDS subscription itself.
    rig.control()?.subscribed(&node, CLUSTER, SVC_A).await?;
    expect_ready(rig, t, "ready with no snapshot", 503).await?;
    let port = rig.listener_port(LISTENER_NAME)?;
    let v1 = snapshot(
        "v1",
        [
            eds_cluster(SVC_A),
            endpoints(SVC_A, &[rig.backend_port("a")?]),
            rds_listener(LISTENER_NAME, port, ROUTES),
            routes(ROUTES, &[("/", SVC_A)]),
        ],
    )?;
    rig.control()?.push(v1);
    let status = rig.control()?.settled(&node, "v1", &ALL).await?;
    t.record("subscriptions", subscriptions(&status, &node));
    t.record("acked", acked(&status, &node));
    let want: BTreeMap<String, String> = [
        ("CDS", "Wildcard"),
        ("EDS", "Names({\"svc-a\"})"),
        ("LDS", "Wildcard"),
        ("RDS", "Names({\"routes\"})"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if subscriptions(&status, &node) != want {
        return Err(fail(format!(
            "subscriptions {:?}, want {want:?}",
            subscriptions(&status, &node)
        )));
    }
    let mode = status.nodes[&node].mode;
    if mode != rig.mode.wire() {
        return Err(fail(format!(
            "the stream is {mode:?}, the bootstrap asked {}",
            rig.mode
        )));
    }
    rig.proxy()?.wait_ready().await?;
    expect_ready(rig, t, "ready after v1", 200).await?;
    let addr = rig.listener_addr(LISTENER_NAME)?;
    wait_backend(addr, "/", "a").await?;
    expect_backend(t, "GET /", addr, "/", "a").await?;
    expect_backend(t, "GET /deep/path?q=1", addr, "/deep/path?q=1", "a").await?;
    Ok(())
}

/// What a proxy shows while warming: readiness, and how the listener answers a client.
/// Envoy keeps a warming listener's socket closed until the server is initialised, so a
/// client is refused at once (rather than left hanging in a backlog): that kind is compared.
/// Which subscriptions are open by then depends on the proxy's internal order (Envoy asks
/// for LDS before or after its clusters warm depending on the variant), so it is a note,
/// and so is the not-ready body when `phase_settled` is false (the initialisation phase
/// may still be moving when the probe lands).
async fn warming_state(
    rig: &mut AdsRig,
    t: &mut Transcript,
    step: &str,
    phase_settled: bool,
) -> Result<(), Error> {
    let status = rig.control()?.status();
    t.note(
        &format!("{step}: subscribed types"),
        format!(
            "{:?}",
            subscriptions(&status, &rig.node)
                .into_keys()
                .collect::<Vec<_>>()
        ),
    );
    let ready = rig.proxy()?.ready().await?;
    if phase_settled {
        t.record(&format!("{step}: ready"), &ready);
    } else {
        record_ready(t, &format!("{step}: ready"), &ready);
    }
    let addr = rig.listener_addr(LISTENER_NAME)?;
    let reach = probe(addr, &get("/")).await;
    t.record(&format!("{step}: listener"), &reach);
    if ready.0 == 503 && !reach.serving() {
        Ok(())
    } else {
        Err(fail(format!(
            "{step}: while warming /ready must be 503 and the listener must not serve; got \
             /ready {ready:?} and {reach:?}"
        )))
    }
}

/// Scenario 2: Warming: CDS and LDS first with EDS and RDS withheld, then EDS, then RDS. Until
/// the route table arrives the proxy is not ready and the listener does not serve; then both.
///
/// The ADS server answers every request, so "withheld" is an answer without the resource;
/// Envoy keeps warming on such an answer in both variants (had it not, the cluster would
/// time out after `initial_fetch_timeout`, 15 s, which the steps here stay well inside).
async fn warming(rig: &mut AdsRig, t: &mut Transcript) -> Result<(), Error> {
    let node = rig.node.clone();
    let mode = rig.mode;
    let port = rig.listener_port(LISTENER_NAME)?;
    let partial = vec![
        eds_cluster(SVC_A),
        rds_listener(LISTENER_NAME, port, ROUTES),
    ];
    rig.control()?.push(snapshot("v1", partial.clone())?);
    rig.start_proxy().await?;
    rig.control()?
        .subscribed(&node, CLUSTER_LOAD_ASSIGNMENT, SVC_A)
        .await?;
    rig.control()?.settled(&node, "v1", &[CLUSTER]).await?;
    warming_state(rig, t, "v1 (no EDS, no RDS)", false).await?;

    let mut with_eds = partial.clone();
    with_eds.push(endpoints(SVC_A, &[rig.backend_port("a")?]));
    rig.control()?.push(snapshot("v2", with_eds.clone())?);
    rig.control()?
        .subscribed(&node, ROUTE_CONFIGURATION, ROUTES)
        .await?;
    rig.control()?
        .settled(&node, "v2", &answered(mode, &[CLUSTER_LOAD_ASSIGNMENT]))
        .await?;
    // Every cluster is warm now (its endpoints arrived) and the listener has asked for its
    // routes, so the server is in its listener-warming phase: the body is compared.
    warming_state(rig, t, "v2 (EDS, no RDS)", true).await?;

    let mut full = with_eds;
    full.push(routes(ROUTES, &[("/", SVC_A)]));
    rig.control()?.push(snapshot("v3", full)?);
    rig.control()?
        .settled(&node, "v3", &answered(mode, &[ROUTE_CONFIGURATION]))
        .await?;
    rig.proxy()?.wait_ready().await?;
    expect_ready(rig, t, "v3: ready", 200).await?;
    let addr = rig.listener_addr(LISTENER_NAME)?;
    wait_backend(addr, "/", "a").await?;
    expect_backend(t, "v3: GET /", addr, "/", "a").await
}

/// Scenario 4: NACKs: a listener with an unknown HTTP filter, then a route table with an
/// invalid regex. Each must be NACKed with an error_detail, the previous version stays ACKed,
/// and the previous configuration keeps answering; a good v4 is taken again.
async fn nack(rig: &mut AdsRig, t: &mut Transcript) -> Result<(), Error> {
    let node = rig.node.clone();
    let mode = rig.mode;
    let addr = serving_v1(rig, t).await?;
    let port = rig.listener_port(LISTENER_NAME)?;
    let good = world(rig, SVC_A)?;
    // Replaces the one resource of `with`'s type (one listener, one route table).
    let replace = |with: Any| -> Vec<Any> {
        let ty = with.type_url.clone();
        good.iter()
            .filter(|r| r.type_url != ty)
            .cloned()
            .chain(std::iter::once(with))
            .collect()
    };

    rig.control()?.push(snapshot(
        "v2",
        replace(listener_with_unknown_filter(LISTENER_NAME, port, ROUTES)),
    )?);
    let n = rig.control()?.nacked(&node, LISTENER).await?;
    if mode == AdsMode::Sotw {
        // CDS is sent whole at every version; EDS and RDS did not change, so are not sent.
        rig.control()?.acked(&node, CLUSTER, "v2").await?;
    }
    t.record(
        "LDS NACK: version_info, rejected, code",
        (&n.version_info, &n.rejected_version, n.code),
    );
    t.record("LDS NACK: error_detail present", !n.message.is_empty());
    t.note("LDS NACK error_detail", n.message.clone());
    let status = rig.control()?.status();
    t.record("acked after the LDS NACK", acked(&status, &node));
    if n.message.is_empty()
        || type_status(&status, &node, LISTENER).and_then(|s| s.acked_version.as_deref())
            != Some("v1")
    {
        return Err(fail(format!(
            "LDS NACK {n:?}: needs an error_detail and LDS must stay at v1"
        )));
    }
    expect_backend(t, "after the LDS NACK", addr, "/", "a").await?;

    rig.control()?.push(snapshot(
        "v3",
        replace(routes_with_bad_regex(ROUTES, SVC_A)),
    )?);
    let n = rig.control()?.nacked(&node, ROUTE_CONFIGURATION).await?;
    for ty in answered(mode, &[LISTENER]) {
        if ty != ROUTE_CONFIGURATION {
            rig.control()?.acked(&node, ty, "v3").await?;
        }
    }
    t.record(
        "RDS NACK: version_info, rejected, code",
        (&n.version_info, &n.rejected_version, n.code),
    );
    t.record("RDS NACK: error_detail present", !n.message.is_empty());
    t.note("RDS NACK error_detail", n.message.clone());
    let status = rig.control()?.status();
    t.record("acked after the RDS NACK", acked(&status, &node));
    // Routes last changed (and were last sent) at v1, in both modes.
    let kept = "v1";
    if n.message.is_empty()
        || type_status(&status, &node, ROUTE_CONFIGURATION).and_then(|s| s.acked_version.as_deref())
            != Some(kept)
    {
        return Err(fail(format!(
            "RDS NACK {n:?}: needs an error_detail and RDS must stay at {kept}"
        )));
    }
    expect_backend(t, "after the RDS NACK", addr, "/", "a").await?;

    let mut v4 = good.clone();
    v4.retain(|r| r.type_url != ROUTE_CONFIGURATION);
    v4.push(routes(ROUTES, &[("/", SVC_B)]));
    rig.control()?.push(snapshot("v4", v4)?);
    rig.control()?
        .settled(&node, "v4", &answered(mode, &[ROUTE_CONFIGURATION]))
        .await?;
    wait_backend(addr, "/", "b").await?;
    expect_backend(t, "v4 after the NACKs", addr, "/", "b").await
}

/// Scenario 5: Removal: a listener dropped from LDS stops accepting while the other keeps
/// serving; a cluster dropped from CDS makes its route answer 503.
async fn removal(rig: &mut AdsRig, t: &mut Transcript) -> Result<(), Error> {
    let node = rig.node.clone();
    let mode = rig.mode;
    let main = rig.listener_port(LISTENER_NAME)?;
    let extra = rig.listener_port(SECOND_LISTENER)?;
    let clusters = vec![
        eds_cluster(SVC_A),
        eds_cluster(SVC_B),
        endpoints(SVC_A, &[rig.backend_port("a")?]),
        endpoints(SVC_B, &[rig.backend_port("b")?]),
    ];
    let table = routes(ROUTES, &[("/b", SVC_B), ("/", SVC_A)]);
    let listener = rds_listener(LISTENER_NAME, main, ROUTES);
    let mut v1 = clusters.clone();
    v1.extend([
        listener.clone(),
        rds_listener(SECOND_LISTENER, extra, ROUTES),
        table.clone(),
    ]);
    rig.control()?.push(snapshot("v1", v1)?);
    rig.start_proxy().await?;
    rig.control()?.settled(&node, "v1", &ALL).await?;
    rig.proxy()?.wait_ready().await?;
    let (main, extra) = (
        rig.listener_addr(LISTENER_NAME)?,
        rig.listener_addr(SECOND_LISTENER)?,
    );
    wait_backend(main, "/", "a").await?;
    wait_backend(extra, "/", "a").await?;
    expect_backend(t, "v1: main listener", main, "/x", "a").await?;
    expect_backend(t, "v1: extra listener", extra, "/x", "a").await?;
    expect_backend(t, "v1: GET /b/x", main, "/b/x", "b").await?;

    let mut v2 = clusters.clone();
    v2.extend([listener.clone(), table.clone()]);
    rig.control()?.push(snapshot("v2", v2)?);
    rig.control()?
        .settled(&node, "v2", &answered(mode, &[LISTENER]))
        .await?;
    let gone = wait_reach(extra, &get("/"), "a removed listener not serving", |r| {
        !r.serving()
    })
    .await?;
    t.record("v2: removed listener serving", gone.serving());
    t.note("v2: removed listener", format!("{gone:?}"));
    expect_backend(t, "v2: main listener", main, "/x", "a").await?;

    let v3 = vec![
        eds_cluster(SVC_A),
        endpoints(SVC_A, &[rig.backend_port("a")?]),
        listener,
        table,
    ];
    rig.control()?.push(snapshot("v3", v3)?);
    rig.control()?
        .settled(&node, "v3", &answered(mode, &[CLUSTER]))
        .await?;
    // Envoy drops the EDS subscription of a removed cluster.
    rig.control()?
        .unsubscribed(&node, CLUSTER_LOAD_ASSIGNMENT, SVC_B)
        .await?;
    let status = rig.control()?.status();
    t.record("v3: subscriptions", subscriptions(&status, &node));
    let answer = wait_reach(main, &get("/b/x"), "503 for the removed cluster", |r| {
        r.observation().is_some_and(|o| o.status == 503)
    })
    .await?;
    t.record("v3: GET /b/x (cluster removed)", &answer);
    expect_backend(t, "v3: GET /x", main, "/x", "a").await
}

/// Requests sent while the control plane is down, spread over about a second.
const OUTAGE_REQUESTS: usize = 10;
const OUTAGE_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// Scenario 6: Reconnect: the control plane stops; the proxy keeps serving; a new server on the
/// same port with the same snapshot gets a new stream with every type ACKed again, and a push
/// over it takes effect.
async fn reconnect(rig: &mut AdsRig, t: &mut Transcript) -> Result<(), Error> {
    let node = rig.node.clone();
    let mode = rig.mode;
    let addr = serving_v1(rig, t).await?;
    let ads = rig.control()?.addr();
    let served = rig.stop_control().await?;
    if probe(ads, &get("/")).await != Reach::Refused {
        return Err(fail(format!(
            "the stopped ADS server at {ads} still accepts"
        )));
    }
    let mut during = BTreeMap::<String, usize>::new();
    for i in 0..OUTAGE_REQUESTS {
        let reach = probe(addr, &get(&format!("/outage/{i}"))).await;
        let key = match (reach.observation(), reach.backend()) {
            (Some(o), Some(b)) => format!("{} from {b}", o.status),
            _ => format!("{reach:?}"),
        };
        *during.entry(key).or_default() += 1;
        pause(OUTAGE_PAUSE).await;
    }
    t.record("answers during the outage", &during);
    expect_ready(rig, t, "ready during the outage", 200).await?;
    if during.get("200 from a") != Some(&OUTAGE_REQUESTS) {
        return Err(fail(format!("during the outage: {during:?}")));
    }

    rig.start_control(served).await?;
    let status = rig.control()?.settled(&node, "v1", &ALL).await?;
    let n = &status.nodes[&node];
    t.record(
        "new server: streams, mode",
        (n.streams, format!("{:?}", n.mode)),
    );
    t.record("new server: subscriptions", subscriptions(&status, &node));
    let held: BTreeMap<String, Vec<String>> = n
        .types
        .iter()
        .map(|(ty, s)| {
            (
                short_name(ty).to_string(),
                s.initial_resource_versions.keys().cloned().collect(),
            )
        })
        .collect();
    t.record("new server: initial_resource_versions names", &held);
    if mode == AdsMode::Delta
        && held
            .get("LDS")
            .is_none_or(|v| v != &[LISTENER_NAME.to_string()])
    {
        return Err(fail(format!(
            "a delta reconnect must tell the server what it holds; got {held:?}"
        )));
    }
    expect_backend(t, "after reconnect", addr, "/", "a").await?;

    let v2 = snapshot("v2", world(rig, SVC_B)?)?;
    rig.control()?.push(v2);
    rig.control()?
        .settled(&node, "v2", &answered(mode, &[ROUTE_CONFIGURATION]))
        .await?;
    wait_backend(addr, "/", "b").await?;
    expect_backend(t, "v2 over the new stream", addr, "/", "b").await
}

/// One test per scenario and mode.
macro_rules! scenarios {
    ($($test:ident => $scenario:ident, $mode:expr;)*) => {
        $(
            #[test]
            fn $test() {
                block_on(async {
                    run_peers(&peers()?, $mode, stringify!($scenario), $scenario).await
                });
            }
        )*
    };
}

scenarios! {
    initial_config_sotw => initial, AdsMode::Sotw;
    initial_config_delta => initial, AdsMode::Delta;
    warming_sotw => warming, AdsMode::Sotw;
    warming_delta => warming, AdsMode::Delta;
    update_under_load_sotw => update_under_load, AdsMode::Sotw;
    update_under_load_delta => update_under_load, AdsMode::Delta;
    nack_sotw => nack, AdsMode::Sotw;
    nack_delta => nack, AdsMode::Delta;
    removal_sotw => removal, AdsMode::Sotw;
    removal_delta => removal, AdsMode::Delta;
    reconnect_sotw => reconnect, AdsMode::Sotw;
    reconnect_delta => reconnect, AdsMode::Delta;
}

/// Both proxies take their configuration from a control plane on a Unix socket (the
/// bootstrap's `xds` cluster has a `pipe` address), as Istio's proxies reach their agent.
#[test]
fn ads_over_a_unix_socket() {
    block_on(async {
        for binary in peers()? {
            for mode in [AdsMode::Sotw, AdsMode::Delta] {
                let node = format!("pipe-{}-{mode}", binary.kind);
                let dir = tempfile::tempdir().map_err(|e| fail(format!("tempdir: {e}")))?;
                let socket = dir.path().join("xds.sock");
                let listener = tokio::net::UnixListener::bind(&socket)
                    .map_err(|e| fail(format!("bind {}: {e}", socket.display())))?;
                let server = AdsServer::new();
                server.set_snapshot(snapshot(
                    "v1",
                    [eds_cluster(SVC_A), endpoints(SVC_A, &[9])],
                )?);
                let serving = {
                    let server = server.clone();
                    tokio::spawn(async move {
                        while let Ok((stream, _)) = listener.accept().await {
                            let server = server.clone();
                            tokio::spawn(async move { server.serve_connection(stream).await });
                        }
                    })
                };
                let bootstrap = with_xds_pipe(&bootstrap(&node, mode, 1), &socket);
                let mut proxy = AdsProxy::start(&binary, &bootstrap).await?;
                let wait = std::time::Duration::from_secs(20);
                for type_url in [CLUSTER, CLUSTER_LOAD_ASSIGNMENT] {
                    server
                        .wait_for_ack(&node, type_url, "v1", wait)
                        .await
                        .map_err(|e| {
                            fail(format!("{} {mode}: {e}\n{}", binary.kind, proxy.log_tail()))
                        })?;
                }
                proxy.wait_ready().await?;
                println!("{} {mode}: ready over {}", binary.kind, socket.display());
                serving.abort();
            }
        }
        Ok::<_, Error>(())
    });
}
