//! Fault delays measured in time, compared between Envoy and Weft: the delay comes before
//! the route timeout starts, and max_active_faults caps how many requests are held at once.

use super::*;
use tokio::time::Instant;

/// The configured delays (see fault_delay.yaml).
const DELAY: Duration = Duration::from_millis(400);
const LIMITED_DELAY: Duration = Duration::from_millis(1500);
/// Time for the first limited request to be held before the second is sent.
const SETTLE: Duration = Duration::from_millis(300);
/// Timers may fire a little early (Envoy's have millisecond granularity).
const SLACK: Duration = Duration::from_millis(50);

#[test]
pub(crate) fn fault_delay() {
    block_on(custom("fault_delay", async |rig: &Rig| {
        let addr = rig.addr("listener")?;
        let mut out = Vec::new();

        let started = Instant::now();
        let resp = client::send(addr, &HttpRequest::get("example.com", "/delayed")).await?;
        out.push(Outcome::new(
            "held for the delay, then routed with the whole route timeout",
            (resp.status.as_u16(), started.elapsed() + SLACK >= DELAY),
            (200, true),
        ));

        let first = tokio::spawn(async move {
            let started = Instant::now();
            let r = client::send(addr, &HttpRequest::get("example.com", "/limited/1")).await;
            (r, started.elapsed())
        });
        tokio::time::sleep(SETTLE).await;
        let started = Instant::now();
        let second = client::send(addr, &HttpRequest::get("example.com", "/limited/2")).await?;
        let second_took = started.elapsed();
        let (first, first_took) = first
            .await
            .map_err(|e| fail(format!("the first request panicked: {e}")))?;
        let first = first?;
        println!(
            "[{}] limited: first took {first_took:?}, second {second_took:?}",
            rig.kind()
        );
        out.push(Outcome::new(
            "max_active_faults 1: the first is held, the second is not",
            (
                first.status.as_u16(),
                first_took + SLACK >= LIMITED_DELAY,
                second.status.as_u16(),
                second_took < LIMITED_DELAY / 2,
            ),
            (200, true, 200, true),
        ));
        Ok(out)
    }));
}
