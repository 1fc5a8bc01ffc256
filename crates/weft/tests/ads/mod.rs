//! Scenario 3 of `proxy_ads`, on its own because judging load needs the most code: every
//! request of a keep-alive load carries the epochs it started and ended in, so a push's
//! effect is checked per request without guessing how long a proxy takes to apply it.

use std::collections::BTreeMap;
use std::time::Duration;

use weft_testkit::Error;
use weft_testkit::ads::resources::{eds_cluster, endpoints, rds_listener, routes, snapshot};
use weft_testkit::ads::xds::type_url::{CLUSTER_LOAD_ASSIGNMENT, ROUTE_CONFIGURATION};
use weft_testkit::ads::{AdsRig, Load, LoadPlan, Sample, Transcript};

use super::{LISTENER_NAME, ROUTES, SVC_A, SVC_B, answered, expect_backend, fail, serving_v1};

/// Epochs of the update scenario, set on the load as the steps happen.
const BEFORE: u32 = 0;
const V2_PUSHED: u32 = 1;
const V2_ACKED: u32 = 2;
const V3_PUSHED: u32 = 3;
const V3_ACKED: u32 = 4;

/// The backends each epoch allows: one version's in a settled epoch, either side's while a
/// push is in flight.
const ALLOWED: [(u32, &[&str]); 5] = [
    (BEFORE, &["a"]),
    (V2_PUSHED, &["a", "b"]),
    (V2_ACKED, &["b"]),
    (V3_PUSHED, &["b", "c"]),
    (V3_ACKED, &["c"]),
];

/// Requests in each settled phase of the load: about 400 in all, over about two seconds.
const PHASE_REQUESTS: u64 = 100;
const LOAD: LoadPlan = LoadPlan {
    connections: 4,
    max_requests: 2_000,
    max_time: Duration::from_secs(40),
    pause: Duration::from_millis(20),
};

/// Scenario 3: updates under keep-alive load: v2 moves svc-a's endpoint from a to b (EDS
/// only), v3 moves the route to svc-b whose endpoint becomes c (RDS + EDS). No request may
/// fail, and every request sent after a version's ACK (and answered before the next push)
/// must reach that version's backend.
pub async fn update_under_load(rig: &mut AdsRig, t: &mut Transcript) -> Result<(), Error> {
    let node = rig.node.clone();
    let mode = rig.mode;
    let addr = serving_v1(rig, t).await?;
    let (b, c) = (rig.backend_port("b")?, rig.backend_port("c")?);
    let port = rig.listener_port(LISTENER_NAME)?;
    let version = |v: &str, a_on: u16, b_on: u16, route_to: &str| {
        snapshot(
            v,
            [
                eds_cluster(SVC_A),
                eds_cluster(SVC_B),
                endpoints(SVC_A, &[a_on]),
                endpoints(SVC_B, &[b_on]),
                rds_listener(LISTENER_NAME, port, ROUTES),
                routes(ROUTES, &[("/", route_to)]),
            ],
        )
    };
    let mut load = Load::start(addr, "example.com", "/load", LOAD);
    let steps = async {
        load.wait_completed(PHASE_REQUESTS).await?;
        load.set_epoch(V2_PUSHED);
        rig.control()?.push(version("v2", b, b, SVC_A)?);
        rig.control()?
            .settled(&node, "v2", &answered(mode, &[CLUSTER_LOAD_ASSIGNMENT]))
            .await?;
        load.set_epoch(V2_ACKED);
        load.wait_completed(load.completed() + PHASE_REQUESTS)
            .await?;
        load.set_epoch(V3_PUSHED);
        rig.control()?.push(version("v3", b, c, SVC_B)?);
        rig.control()?
            .settled(
                &node,
                "v3",
                &answered(mode, &[CLUSTER_LOAD_ASSIGNMENT, ROUTE_CONFIGURATION]),
            )
            .await?;
        load.set_epoch(V3_ACKED);
        load.wait_completed(load.completed() + 2 * PHASE_REQUESTS)
            .await
    }
    .await;
    let samples = load.finish().await;
    steps?;
    judge(t, &samples)?;
    expect_backend(t, "after the load", addr, "/", "c").await
}

/// Records and checks what the load saw. A request is held to one version only if it
/// started and ended within one epoch; one spanning steps may be served by any version
/// those steps allow.
fn judge(t: &mut Transcript, samples: &[Sample]) -> Result<(), Error> {
    let allowed: BTreeMap<u32, &[&str]> = ALLOWED.into_iter().collect();
    let mut steady: BTreeMap<u32, BTreeMap<String, u64>> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut strays = Vec::new();
    for s in samples {
        match &s.outcome {
            Ok((200, backend)) => {
                let ok = (s.epoch..=s.end_epoch).any(|e| {
                    allowed
                        .get(&e)
                        .is_some_and(|set| set.contains(&backend.as_str()))
                });
                if !ok {
                    strays.push(format!("epochs {}..={}: {backend}", s.epoch, s.end_epoch));
                }
                if s.epoch == s.end_epoch {
                    *steady
                        .entry(s.epoch)
                        .or_default()
                        .entry(backend.clone())
                        .or_default() += 1;
                }
            }
            other => failures.push(format!(
                "connection {} epochs {}..={}: {other:?}",
                s.connection, s.epoch, s.end_epoch
            )),
        }
    }
    t.note(
        "requests within one epoch, by backend",
        format!("{steady:?}"),
    );
    t.record("failed requests under load", failures.len());
    let only = |epoch: u32| -> Vec<String> {
        steady
            .get(&epoch)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    t.record("backends before v2", only(BEFORE));
    t.record("backends after v2's ACK", only(V2_ACKED));
    t.record("backends after v3's ACK", only(V3_ACKED));
    let mut problems = Vec::new();
    if !failures.is_empty() {
        problems.push(format!(
            "{} of {} requests failed; first: {:?}",
            failures.len(),
            samples.len(),
            &failures[..failures.len().min(5)]
        ));
    }
    if !strays.is_empty() {
        problems.push(format!(
            "requests reached a backend no version of their time had: {strays:?}"
        ));
    }
    for (epoch, what) in [
        (BEFORE, "before v2"),
        (V2_ACKED, "after v2's ACK"),
        (V3_ACKED, "after v3's ACK"),
    ] {
        let want: Vec<String> = allowed[&epoch].iter().map(|b| b.to_string()).collect();
        if only(epoch) != want {
            problems.push(format!(
                "{what}: reached {:?}, want only {want:?}",
                steady.get(&epoch)
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(fail(problems.join("\n")))
    }
}
