//! Outlier detection's success-rate and failure-percentage detectors, compared between
//! Envoy and Weft: which host is ejected after an interval of requests, and the statistics.

use super::*;
use weft_testkit::admin;
use weft_testkit::admin::exposition::text_stats;

/// Requests per host in the burst. Round robin spreads them evenly, so however an interval
/// boundary cuts the burst, one side holds at least half of every host's requests — past
/// the scenario's request volume of 10.
const PER_HOST: u64 = 25;
const HOSTS: u64 = 5;
/// How often, and how many times, the statistics are read while waiting for the interval
/// (1 s) to judge the burst: bounds, not timing expectations.
const POLL: Duration = Duration::from_millis(250);
const POLLS: u32 = 20;

async fn stats(rig: &Rig) -> Result<BTreeMap<String, String>, Error> {
    let resp = admin::get(rig.proxy().admin(), "/stats").await?;
    Ok(text_stats(&String::from_utf8_lossy(&resp.body))
        .into_iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("cluster.rates.outlier_detection.")
                .map(|k| (k.to_string(), v))
        })
        .collect())
}

#[test]
pub(crate) fn outlier_statistical() {
    block_on(custom("outlier_statistical", async |rig: &Rig| {
        let addr = rig.addr("listener")?;
        let mut out = Vec::new();
        let mut failed = 0;
        for i in 0..PER_HOST * HOSTS {
            let resp = client::send(
                addr,
                &HttpRequest::get("example.com", &format!("/burst/{i}"))
                    .header("x-echo-status-of", "a=500"),
            )
            .await?;
            if resp.status == 500 {
                failed += 1;
            }
        }
        out.push(Outcome::new(
            "a answered 500 to its share",
            failed,
            PER_HOST,
        ));
        let mut seen = stats(rig).await?;
        for _ in 0..POLLS {
            if seen
                .get("ejections_detected_success_rate")
                .is_some_and(|v| v != "0")
            {
                break;
            }
            tokio::time::sleep(POLL).await;
            seen = stats(rig).await?;
        }
        let expected: BTreeMap<String, String> = [
            ("ejections_active", "1"),
            ("ejections_detected_success_rate", "1"),
            ("ejections_enforced_success_rate", "1"),
            ("ejections_success_rate", "1"),
            ("ejections_detected_failure_percentage", "1"),
            ("ejections_enforced_failure_percentage", "0"),
            ("ejections_enforced_total", "1"),
            ("ejections_total", "1"),
            ("ejections_overflow", "0"),
            ("ejections_detected_consecutive_5xx", "0"),
            ("ejections_detected_local_origin_success_rate", "0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let picked: BTreeMap<String, String> = expected
            .keys()
            .map(|k| {
                (
                    k.clone(),
                    seen.get(k).cloned().unwrap_or_else(|| "absent".into()),
                )
            })
            .collect();
        out.push(Outcome::new(
            "statistics after the interval",
            picked,
            expected,
        ));
        let mut to_a = 0;
        for i in 0..20 {
            let resp = client::send(
                addr,
                &HttpRequest::get("example.com", &format!("/after/{i}")),
            )
            .await?;
            if EchoSeen::parse(&resp.body).is_some_and(|s| s.backend == "a") {
                to_a += 1;
            }
        }
        out.push(Outcome::new("the outlier takes nothing", to_a, 0));
        out.push(Outcome::new(
            "the scope's statistics",
            seen.keys().cloned().collect::<Vec<_>>(),
            [
                "ejections_active",
                "ejections_consecutive_5xx",
                "ejections_detected_consecutive_5xx",
                "ejections_detected_consecutive_gateway_failure",
                "ejections_detected_consecutive_local_origin_failure",
                "ejections_detected_degradation",
                "ejections_detected_failure_percentage",
                "ejections_detected_local_origin_failure_percentage",
                "ejections_detected_local_origin_success_rate",
                "ejections_detected_success_rate",
                "ejections_enforced_consecutive_5xx",
                "ejections_enforced_consecutive_gateway_failure",
                "ejections_enforced_consecutive_local_origin_failure",
                "ejections_enforced_failure_percentage",
                "ejections_enforced_local_origin_failure_percentage",
                "ejections_enforced_local_origin_success_rate",
                "ejections_enforced_success_rate",
                "ejections_enforced_total",
                "ejections_overflow",
                "ejections_success_rate",
                "ejections_total",
            ]
            .map(String::from)
            .to_vec(),
        ));
        Ok(out)
    }));
}
