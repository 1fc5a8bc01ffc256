//! LEAST_REQUEST load balancing and the previous_hosts retry predicate, compared between
//! Envoy and Weft: which host takes requests while another is busy, how unequal weights
//! split, and where a retry goes.

use super::*;

/// How long the slow request keeps its host busy; the requests sent meanwhile must all be
/// answered well within it (checked), so this bounds the test, not the proxies.
const SLOW: Duration = Duration::from_secs(6);
/// Time for the slow request to reach its host before the others start.
const SETTLE: Duration = Duration::from_millis(400);
/// Requests sent while one host is busy. With two random choices the idle host takes each
/// with p = 3/4; round robin would give 1/2, 24 standard deviations away at this count.
const BUSY_REQUESTS: u64 = 300;
/// Requests split 3:1 by weight.
const WEIGHTED_REQUESTS: u64 = 400;
const SIGMAS: f64 = 5.0;
/// Retries checked for avoiding the host already tried.
const RETRIES: u64 = 5;

async fn backend_of(addr: std::net::SocketAddr, path: &str) -> Result<String, Error> {
    let resp = client::send(addr, &HttpRequest::get("example.com", path)).await?;
    EchoSeen::parse(&resp.body)
        .map(|s| s.backend)
        .ok_or_else(|| fail(format!("{path}: {} is not an echo", resp.status)))
}

/// Sends `n` requests to `path` while a slow one occupies a host: (the busy host, how many
/// of the `n` went to the other one).
async fn while_busy(
    addr: std::net::SocketAddr,
    path: &str,
    n: u64,
) -> Result<(String, u64), Error> {
    let slow_req = HttpRequest::get("example.com", &format!("{path}/slow"))
        .header("x-echo-delay-ms", &SLOW.as_millis().to_string());
    let started = tokio::time::Instant::now();
    let slow = tokio::spawn(async move { client::send(addr, &slow_req).await });
    tokio::time::sleep(SETTLE).await;
    let mut picks = Vec::new();
    for i in 0..n {
        picks.push(backend_of(addr, &format!("{path}/{i}")).await?);
    }
    if started.elapsed() >= SLOW {
        return Err(fail(format!(
            "{path}: {n} requests took longer than the slow one ({SLOW:?}); nothing measured"
        )));
    }
    let slow = slow
        .await
        .map_err(|e| fail(format!("the slow request panicked: {e}")))??;
    let busy = EchoSeen::parse(&slow.body)
        .map(|s| s.backend)
        .ok_or_else(|| {
            fail(format!(
                "{path}: slow answer {} is not an echo",
                slow.status
            ))
        })?;
    let other = picks.iter().filter(|b| **b != busy).count() as u64;
    Ok((busy, other))
}

#[test]
pub(crate) fn least_request() {
    block_on(custom("least_request", async |rig: &Rig| {
        let addr = rig.addr("listener")?;
        let mut out = Vec::new();

        let (_, other) = while_busy(addr, "/many", 20).await?;
        out.push(Outcome::new(
            "choice_count 50: nothing goes to the busy host",
            other,
            20,
        ));

        let (_, other) = while_busy(addr, "/two", BUSY_REQUESTS).await?;
        let (lo, hi) = stats::binomial_band(BUSY_REQUESTS, 0.75, SIGMAS);
        out.push(Outcome::new(
            "two choices: the idle host takes 3 in 4",
            stats::within_sigma(other, BUSY_REQUESTS, 0.75, SIGMAS),
            true,
        ));
        println!(
            "two choices: {other} of {BUSY_REQUESTS} to the idle host, band [{lo:.1}, {hi:.1}]"
        );

        let mut to_a = 0;
        for i in 0..WEIGHTED_REQUESTS {
            if backend_of(addr, &format!("/weighted/{i}")).await? == "a" {
                to_a += 1;
            }
        }
        println!("weighted: {to_a} of {WEIGHTED_REQUESTS} to a (weight 3 of 4)");
        out.push(Outcome::new(
            "weights 3:1",
            stats::within_sigma(to_a, WEIGHTED_REQUESTS, 0.75, SIGMAS),
            true,
        ));

        let mut avoided = 0;
        for i in 0..RETRIES {
            let before = rig.served();
            let resp = client::send(
                addr,
                &HttpRequest::get("example.com", &format!("/retry/{i}"))
                    .header("x-echo-fail-key", &format!("lr-retry-{}-{i}", addr.port()))
                    .header("x-echo-fail-first", "1"),
            )
            .await?;
            let after = rig.served();
            let each_once = ["a", "b"].iter().all(|b| {
                after.get(*b).copied().unwrap_or(0) == before.get(*b).copied().unwrap_or(0) + 1
            });
            if resp.status == 200 && each_once {
                avoided += 1;
            }
        }
        out.push(Outcome::new(
            "a retry goes to the host not yet tried",
            avoided,
            RETRIES,
        ));
        Ok(out)
    }));
}
