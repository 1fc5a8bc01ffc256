//! Envoy-vs-Weft conformance for the data plane: every scenario under `tests/conformance/`
//! is an Envoy v3 bootstrap template plus requests; the same rendered bootstrap is run by real
//! Envoy 1.40 and by `weft proxy`, and each request must give the same [`Observation`] on
//! both, and meet the expectations the scenario states (so both being wrong the same way
//! still fails).
//!
//! Run both proxies:            `cargo test -p weft --test proxy_conformance`
//! Only Envoy (checks the scenarios themselves):
//!                              `WEFT_CONFORMANCE_ONLY=envoy cargo test -p weft --test proxy_conformance`
//! Only Weft:                   `WEFT_CONFORMANCE_ONLY=weft cargo test -p weft --test proxy_conformance`
//!
//! Envoy comes from `WEFT_ENVOY`, else `.venv/bin/envoy` (installed by
//! `scripts/install-envoy.sh` on first use).
//!
//! [`Observation`]: weft_testkit::Observation

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use weft_testkit::conformance::{self, Outcome, Rig, Scenario};
use weft_testkit::echo::upgrade::websocket_accept;
use weft_testkit::wire::{self, Closed, RawResponse, Wire};
use weft_testkit::{EchoSeen, Error, HttpRequest, ProxyBinary, block_on, client, stats, tls_hello};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

fn peers() -> Result<Vec<ProxyBinary>, Error> {
    let only = std::env::var("WEFT_CONFORMANCE_ONLY").ok();
    conformance::peers(only.as_deref(), Path::new(env!("CARGO_BIN_EXE_weft")))
}

async fn run(name: &str) -> Result<(), Error> {
    let scenario = Scenario::load(&dir(), name)?;
    if scenario.cases.is_empty() {
        return Err(Error::Conformance(format!(
            "{name}: a data-driven scenario needs cases"
        )));
    }
    conformance::check(&scenario, &peers()?).await
}

/// One test per data-driven scenario file, named after it.
macro_rules! data_driven {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                block_on(run(stringify!($name)));
            }
        )*
        const DATA_DRIVEN: &[&str] = &[$(stringify!($name)),*];
    };
}

data_driven!(
    basic_proxying,
    cluster_header,
    connect_failure,
    cors,
    forwarding_headers,
    direct_response,
    direct_response_location,
    dns_clusters,
    fault_injection,
    grpc,
    grpc_local_reply,
    grpc_timeout,
    header_mutation,
    host_port,
    http1_bodies,
    http2,
    listener_match,
    no_healthy_upstream,
    no_route,
    path_normalization,
    redirects,
    require_tls,
    retries,
    rewrites,
    route_match_headers,
    route_match_path,
    route_match_query,
    route_timeout,
    server_header,
    stream_timeouts,
    upstream_bind,
    upstream_protocol,
    vhost_selection,
);

/// Scenario files driven by the hand-written tests below instead of their `cases`.
const CUSTOM: &[&str] = &[
    "circuit_breakers",
    "connection_limits",
    "fault_delay",
    "hash_balancing",
    "http1_wire",
    "least_request",
    "listener_sni",
    "outlier_detection",
    "outlier_statistical",
    "priorities",
    "request_id",
    "request_mirroring",
    "tcp_proxy",
    "upstream_max_duration",
    "websocket",
    "weighted_clusters",
];

fn fail(message: String) -> Error {
    Error::Conformance(message)
}

/// Requests sent through the 25/75 split, and how many standard deviations of the binomial
/// count are tolerated: a wrong split (e.g. swapped weights, 300 vs 100) is ~23 sigma out,
/// while a right one leaves the band about once in two million runs.
const SPLIT_REQUESTS: u64 = 400;
const SPLIT_SIGMAS: f64 = 5.0;
/// Requests sent to the route where cluster `a` has weight 0.
const ZERO_WEIGHT_REQUESTS: u64 = 50;

#[test]
fn weighted_clusters() {
    block_on(async {
        let scenario = Scenario::load(&dir(), "weighted_clusters")?;
        let mut failures = Vec::new();
        let mut summaries = Vec::new();
        for binary in peers()? {
            let rig = Rig::start(&scenario, &binary).await?;
            let kind = rig.kind();
            let addr = rig.addr("listener")?;
            let mut by_backend = BTreeMap::<String, u64>::new();
            for i in 0..SPLIT_REQUESTS {
                let resp = client::send(
                    addr,
                    &HttpRequest::get("example.com", &format!("/split/{i}")),
                )
                .await?;
                let seen = EchoSeen::parse(&resp.body).ok_or_else(|| {
                    fail(format!(
                        "[{kind}] request {i}: {} {:?} is not an echo",
                        resp.status, resp.body
                    ))
                })?;
                let picked = seen.headers.get("x-picked").cloned().unwrap_or_default();
                if picked != vec![seen.backend.clone()] {
                    failures.push(format!(
                        "[{kind}] request {i} reached {} with x-picked {picked:?}",
                        seen.backend
                    ));
                }
                *by_backend.entry(seen.backend).or_default() += 1;
            }
            let a = by_backend.get("a").copied().unwrap_or(0);
            let b = by_backend.get("b").copied().unwrap_or(0);
            let (lo, hi) = stats::binomial_band(SPLIT_REQUESTS, 0.25, SPLIT_SIGMAS);
            if a + b != SPLIT_REQUESTS
                || !stats::within_sigma(a, SPLIT_REQUESTS, 0.25, SPLIT_SIGMAS)
            {
                failures.push(format!(
                    "[{kind}] 25/75 split gave {by_backend:?}; a must be in [{lo:.1}, {hi:.1}]"
                ));
            }
            if rig.backend("a")?.served() != a || rig.backend("b")?.served() != b {
                failures.push(format!(
                    "[{kind}] backends counted a={} b={}, responses said {by_backend:?}",
                    rig.backend("a")?.served(),
                    rig.backend("b")?.served()
                ));
            }
            for i in 0..ZERO_WEIGHT_REQUESTS {
                let resp = client::send(
                    addr,
                    &HttpRequest::get("example.com", &format!("/zero/{i}")),
                )
                .await?;
                match EchoSeen::parse(&resp.body) {
                    Some(seen) if seen.backend == "b" => {}
                    other => failures.push(format!(
                        "[{kind}] /zero/{i}: weight-0 route gave {} {other:?}",
                        resp.status
                    )),
                }
            }
            summaries.push(format!("{kind}: {by_backend:?}"));
            if !failures.is_empty() {
                failures.push(format!("[{kind}] log tail:\n{}", rig.proxy().log_tail()));
                break;
            }
        }
        println!("splits: {}", summaries.join("; "));
        if failures.is_empty() {
            Ok(())
        } else {
            Err(fail(failures.join("\n")))
        }
    });
}

/// Large enough to need several reads and writes on every hop.
const TCP_PAYLOAD_BYTES: usize = 256 * 1024;

#[test]
fn tcp_proxy() {
    block_on(async {
        let scenario = Scenario::load(&dir(), "tcp_proxy")?;
        let payload: Vec<u8> = (0..TCP_PAYLOAD_BYTES).map(|i| (i % 251) as u8).collect();
        let mut outcomes = Vec::new();
        for binary in peers()? {
            let rig = Rig::start(&scenario, &binary).await?;
            let kind = rig.kind();
            let echoed = client::tcp_exchange(rig.addr("listener")?, &payload).await?;
            let served = rig.backend("t")?.served();
            // Nothing is written here: bytes left unread in the proxy's socket when it closes
            // make the kernel send RST instead of FIN, which would turn a clean close into a
            // timing race.
            let refused = client::tcp_exchange(rig.addr("refused")?, b"").await?;
            // A refused upstream must close the client cleanly (Envoy sends FIN, no RST).
            let outcome = (
                echoed.received == payload,
                echoed.error,
                served,
                refused.clone(),
            );
            let problems: Vec<String> = [
                (echoed.received != payload).then(|| {
                    format!(
                        "echo returned {} of {} bytes (error {:?})",
                        echoed.received.len(),
                        payload.len(),
                        echoed.error
                    )
                }),
                (served != 1).then(|| format!("the TCP echo saw {served} connections, expected 1")),
                (!refused.received.is_empty() || refused.error.is_some()).then(|| {
                    format!("a refused upstream must close cleanly without data, got {refused:?}")
                }),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !problems.is_empty() {
                return Err(fail(format!(
                    "[{kind}] {}\nlog tail:\n{}",
                    problems.join("; "),
                    rig.proxy().log_tail()
                )));
            }
            println!(
                "[{kind}] echoed {} bytes; refused: {refused:?}",
                echoed.received.len()
            );
            outcomes.push((kind, outcome));
        }
        if let [(k1, o1), (k2, o2), ..] = outcomes.as_slice()
            && o1 != o2
        {
            return Err(fail(format!("{k1} and {k2} differ: {o1:?} vs {o2:?}")));
        }
        Ok(())
    });
}

#[test]
fn every_scenario_file_has_a_test() {
    let names = Scenario::names_in(&dir()).unwrap();
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !DATA_DRIVEN.contains(&n.as_str()) && !CUSTOM.contains(&n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "scenario files without a test: {missing:?}"
    );
    for n in DATA_DRIVEN.iter().chain(CUSTOM) {
        assert!(
            names.iter().any(|f| f == n),
            "test {n} has no scenario file"
        );
    }
}

/// Runs a hand-written scenario on every peer (see [`conformance::check_custom`]).
async fn custom(
    name: &str,
    cases: impl AsyncFn(&Rig) -> Result<Vec<Outcome>, Error>,
) -> Result<(), Error> {
    let scenario = Scenario::load(&dir(), name)?;
    conformance::check_custom(&scenario, &peers()?, cases).await
}

#[path = "conformance_custom/request_id.rs"]
mod request_id;

#[path = "conformance_custom/connections.rs"]
mod connections;

#[path = "conformance_custom/http1_wire.rs"]
mod http1_wire;

#[path = "conformance_custom/websocket.rs"]
mod websocket;

#[path = "conformance_custom/listener_sni.rs"]
mod listener_sni;

#[path = "conformance_custom/circuit_breakers.rs"]
mod circuit_breakers;

#[path = "conformance_custom/least_request.rs"]
mod least_request;

#[path = "conformance_custom/fault_delay.rs"]
mod fault_delay;

#[path = "conformance_custom/outlier_detection.rs"]
mod outlier_detection;

#[path = "conformance_custom/hash_balancing.rs"]
mod hash_balancing;

#[path = "conformance_custom/upstream_max_duration.rs"]
mod upstream_max_duration;

#[path = "conformance_custom/outlier_statistical.rs"]
mod outlier_statistical;

#[path = "conformance_custom/request_mirroring.rs"]
mod request_mirroring;

#[path = "conformance_custom/priorities.rs"]
mod priorities;
