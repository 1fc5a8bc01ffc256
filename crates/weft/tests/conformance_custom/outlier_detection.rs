//! Outlier detection compared between Envoy and Weft: a host answering 503 is ejected after
//! its third in a row and comes back after its ejection time; the ejection cap and the
//! panic threshold; the `outlier_detection.*` statistics.

use super::*;
use weft_testkit::admin;
use weft_testkit::admin::exposition::text_stats;

/// Requests whose backend is checked after an ejection (all must avoid the ejected host).
const AFTER: u64 = 10;
/// Time for an ejection of `base_ejection_time: 1s` to end and the 1 s interval to notice:
/// a bound to wait, not an expectation of when it happens.
const RETURN_WAIT: Duration = Duration::from_millis(2600);

/// Makes host `a` of `path`'s round-robin cluster answer 503 until it has failed three
/// times in a row (round robin alternates, so six requests at most; the bound is twice
/// that). Returns how many 503s came back. Requests stop at the third, since where round
/// robin starts again after the host set changes is not fixed.
async fn fail_a(addr: std::net::SocketAddr, path: &str) -> Result<u64, Error> {
    let mut failed = 0;
    for i in 0..12 {
        let resp = client::send(
            addr,
            &HttpRequest::get("example.com", &format!("{path}/fail/{i}"))
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
    Ok(failed)
}

/// The backends of `n` plain requests, counted.
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
            .unwrap_or_else(|| format!("{} {}", resp.status, String::from_utf8_lossy(&resp.body)));
        *by.entry(who).or_default() += 1;
    }
    Ok(by)
}

async fn stats(rig: &Rig) -> Result<BTreeMap<String, String>, Error> {
    let resp = admin::get(rig.proxy().admin(), "/stats").await?;
    Ok(text_stats(&String::from_utf8_lossy(&resp.body)))
}

/// The named statistics of `cluster` (`outlier_detection.` ones and a few others).
fn pick(all: &BTreeMap<String, String>, cluster: &str, names: &[&str]) -> BTreeMap<String, String> {
    names
        .iter()
        .map(|n| {
            let key = format!("cluster.{cluster}.{n}");
            let v = all.get(&key).cloned().unwrap_or_else(|| "absent".into());
            (n.to_string(), v)
        })
        .collect()
}

fn expect(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const OD: &[&str] = &[
    "outlier_detection.ejections_active",
    "outlier_detection.ejections_enforced_total",
    "outlier_detection.ejections_detected_consecutive_5xx",
    "outlier_detection.ejections_enforced_consecutive_5xx",
    "outlier_detection.ejections_detected_consecutive_gateway_failure",
    "outlier_detection.ejections_overflow",
    "outlier_detection.ejections_total",
    "outlier_detection.ejections_consecutive_5xx",
    "outlier_detection.ejections_detected_success_rate",
    "outlier_detection.ejections_enforced_consecutive_local_origin_failure",
    "membership_healthy",
];

#[test]
pub(crate) fn outlier_detection() {
    block_on(custom("outlier_detection", async |rig: &Rig| {
        let addr = rig.addr("listener")?;
        let mut out = Vec::new();

        // Ejected after three 503s in a row; everything goes to b while a is out.
        out.push(Outcome::new(
            "ejecting: a fails three times",
            fail_a(addr, "/ejecting").await?,
            3,
        ));
        out.push(Outcome::new(
            "ejecting: a is not picked while ejected",
            spread(addr, "/ejecting", AFTER).await?,
            BTreeMap::from([("b".to_string(), AFTER)]),
        ));
        let all = stats(rig).await?;
        out.push(Outcome::new(
            "ejecting: statistics while ejected",
            pick(&all, "ejecting", OD),
            expect(&[
                ("outlier_detection.ejections_active", "1"),
                ("outlier_detection.ejections_enforced_total", "1"),
                ("outlier_detection.ejections_detected_consecutive_5xx", "1"),
                ("outlier_detection.ejections_enforced_consecutive_5xx", "1"),
                (
                    "outlier_detection.ejections_detected_consecutive_gateway_failure",
                    "0",
                ),
                ("outlier_detection.ejections_overflow", "0"),
                ("outlier_detection.ejections_total", "1"),
                ("outlier_detection.ejections_consecutive_5xx", "1"),
                ("outlier_detection.ejections_detected_success_rate", "0"),
                (
                    "outlier_detection.ejections_enforced_consecutive_local_origin_failure",
                    "0",
                ),
                ("membership_healthy", "1"),
            ]),
        ));
        tokio::time::sleep(RETURN_WAIT).await;
        let back = spread(addr, "/ejecting", AFTER).await?;
        out.push(Outcome::new(
            "ejecting: a serves again after its ejection time",
            back,
            BTreeMap::from([("a".to_string(), AFTER / 2), ("b".to_string(), AFTER / 2)]),
        ));
        let all = stats(rig).await?;
        out.push(Outcome::new(
            "ejecting: back, no ejection active",
            pick(
                &all,
                "ejecting",
                &["outlier_detection.ejections_active", "membership_healthy"],
            ),
            expect(&[
                ("outlier_detection.ejections_active", "0"),
                ("membership_healthy", "2"),
            ]),
        ));

        // Envoy's default cap of 10% does not allow ejecting one host of two.
        out.push(Outcome::new(
            "capped: a fails three times",
            fail_a(addr, "/capped").await?,
            3,
        ));
        out.push(Outcome::new(
            "capped: the detection overflowed, a still serves",
            spread(addr, "/capped", AFTER).await?,
            BTreeMap::from([("a".to_string(), AFTER / 2), ("b".to_string(), AFTER / 2)]),
        ));
        let all = stats(rig).await?;
        out.push(Outcome::new(
            "capped: statistics",
            pick(&all, "capped", OD),
            expect(&[
                ("outlier_detection.ejections_active", "0"),
                ("outlier_detection.ejections_enforced_total", "0"),
                ("outlier_detection.ejections_detected_consecutive_5xx", "1"),
                ("outlier_detection.ejections_enforced_consecutive_5xx", "0"),
                (
                    "outlier_detection.ejections_detected_consecutive_gateway_failure",
                    "0",
                ),
                ("outlier_detection.ejections_overflow", "1"),
                ("outlier_detection.ejections_total", "0"),
                ("outlier_detection.ejections_consecutive_5xx", "1"),
                ("outlier_detection.ejections_detected_success_rate", "0"),
                (
                    "outlier_detection.ejections_enforced_consecutive_local_origin_failure",
                    "0",
                ),
                ("membership_healthy", "2"),
            ]),
        ));

        // One healthy host of two is below a 60% panic threshold: both keep serving.
        out.push(Outcome::new(
            "panicky: a fails three times",
            fail_a(addr, "/panicky").await?,
            3,
        ));
        let all_before = stats(rig).await?;
        out.push(Outcome::new(
            "panicky: in panic, the ejected host still serves",
            spread(addr, "/panicky", AFTER).await?,
            BTreeMap::from([("a".to_string(), AFTER / 2), ("b".to_string(), AFTER / 2)]),
        ));
        let all = stats(rig).await?;
        let panics = |s: &BTreeMap<String, String>| {
            s.get("cluster.panicky.lb_healthy_panic")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        out.push(Outcome::new(
            "panicky: every pick in panic is counted",
            panics(&all) - panics(&all_before),
            AFTER,
        ));
        out.push(Outcome::new(
            "panicky: statistics",
            pick(
                &all,
                "panicky",
                &["outlier_detection.ejections_active", "membership_healthy"],
            ),
            expect(&[
                ("outlier_detection.ejections_active", "1"),
                ("membership_healthy", "1"),
            ]),
        ));
        // A host refusing connections: three 503s of the proxy's own, alternating with a.
        let first = spread(addr, "/refusing", 6).await?;
        out.push(Outcome::new(
            "refusing: three refused connections",
            first.get("a").copied(),
            Some(3),
        ));
        out.push(Outcome::new(
            "refusing: the refusing host is ejected",
            spread(addr, "/refusing", AFTER).await?,
            BTreeMap::from([("a".to_string(), AFTER)]),
        ));
        let all = stats(rig).await?;
        out.push(Outcome::new(
            "refusing: statistics",
            pick(&all, "refusing", OD),
            expect(&[
                ("outlier_detection.ejections_active", "1"),
                ("outlier_detection.ejections_enforced_total", "1"),
                ("outlier_detection.ejections_detected_consecutive_5xx", "1"),
                ("outlier_detection.ejections_enforced_consecutive_5xx", "1"),
                (
                    "outlier_detection.ejections_detected_consecutive_gateway_failure",
                    "1",
                ),
                ("outlier_detection.ejections_overflow", "0"),
                ("outlier_detection.ejections_total", "1"),
                ("outlier_detection.ejections_consecutive_5xx", "1"),
                ("outlier_detection.ejections_detected_success_rate", "0"),
                (
                    "outlier_detection.ejections_enforced_consecutive_local_origin_failure",
                    "0",
                ),
                ("membership_healthy", "1"),
            ]),
        ));

        // Split: refused connections are local-origin failures (two eject), not 5xx.
        let first = spread(addr, "/split", 4).await?;
        out.push(Outcome::new(
            "split: two refused connections",
            first.get("a").copied(),
            Some(2),
        ));
        out.push(Outcome::new(
            "split: the refusing host is ejected",
            spread(addr, "/split", AFTER).await?,
            BTreeMap::from([("a".to_string(), AFTER)]),
        ));
        let all = stats(rig).await?;
        out.push(Outcome::new(
            "split: statistics",
            pick(
                &all,
                "split",
                &[
                    "outlier_detection.ejections_active",
                    "outlier_detection.ejections_enforced_total",
                    "outlier_detection.ejections_detected_consecutive_5xx",
                    "outlier_detection.ejections_detected_consecutive_local_origin_failure",
                    "outlier_detection.ejections_enforced_consecutive_local_origin_failure",
                    "outlier_detection.ejections_total",
                ],
            ),
            expect(&[
                ("outlier_detection.ejections_active", "1"),
                ("outlier_detection.ejections_enforced_total", "1"),
                ("outlier_detection.ejections_detected_consecutive_5xx", "0"),
                (
                    "outlier_detection.ejections_detected_consecutive_local_origin_failure",
                    "1",
                ),
                (
                    "outlier_detection.ejections_enforced_consecutive_local_origin_failure",
                    "1",
                ),
                ("outlier_detection.ejections_total", "0"),
            ]),
        ));
        // gRPC: a trailers-only answer counts by its grpc-status.
        let grpc = |key: &str, status: &str| {
            let mut r = HttpRequest::get("example.com", "/grpc.Od/Call")
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .header("x-echo-fail-key", &format!("od-{key}-{}", addr.port()))
                .header("x-echo-fail-first", "2")
                .header("x-echo-fail-grpc-status", status);
            r.method = "POST".parse().expect("a method");
            r.version = weft_testkit::HttpVersion::H2c;
            r.body = weft_testkit::grpc::frame(b"hi");
            r
        };
        let grpc_answer = |resp: &weft_testkit::HttpResponse| {
            let g = resp
                .headers
                .get("grpc-status")
                .or_else(|| resp.trailers.as_ref().and_then(|t| t.get("grpc-status")))
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            (resp.status.as_u16(), g)
        };
        let detected = async || -> Result<String, Error> {
            Ok(stats(rig)
                .await?
                .get("cluster.grpc.outlier_detection.ejections_detected_consecutive_5xx")
                .cloned()
                .unwrap_or_else(|| "absent".into()))
        };
        for _ in 0..2 {
            client::send(addr, &grpc("invalid", "3")).await?;
        }
        out.push(Outcome::new(
            "grpc: INVALID_ARGUMENT is no 5xx",
            detected().await?,
            "0".to_string(),
        ));
        for _ in 0..2 {
            client::send(addr, &grpc("unavailable", "14")).await?;
        }
        out.push(Outcome::new(
            "grpc: UNAVAILABLE twice ejects the host",
            detected().await?,
            "1".to_string(),
        ));
        let resp = client::send(addr, &grpc("after", "0")).await?;
        out.push(Outcome::new(
            "grpc: with its only host ejected and panic off, no healthy upstream",
            grpc_answer(&resp),
            (200, Some("14".to_string())),
        ));
        Ok(out)
    }));
}
