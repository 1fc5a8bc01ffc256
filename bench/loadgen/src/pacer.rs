//! The open-loop clock: request i is due at start + i/rate whatever happened to earlier
//! requests, and the latency of a request is counted from that due time (so a stalled
//! proxy is charged for every request it delayed: no coordinated omission). Runs on its
//! own OS thread because tokio's timer wheel rounds to whole milliseconds, which at
//! 1000 req/s would add up to a full period of fake latency; here a short sleep plus a
//! final spin keeps the send within microseconds of its due time, and the lateness that
//! remains is measured and reported next to the results.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use crate::histogram::Histogram;

/// The last stretch before a due time is spun, not slept: Linux oversleeps by the timer
/// slack (see `request_exact_timers`) plus a wake-up time of ~20 µs in a VM.
const SPIN: Duration = Duration::from_micros(40);

#[derive(Clone, Copy, Debug)]
pub struct Scheduled {
    pub due: Instant,
    /// Warm-up requests are sent the same way but not recorded.
    pub measured: bool,
}

#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    pub start: Instant,
    pub rate: f64,
    pub warmup: u64,
    pub measured: u64,
}

impl Schedule {
    pub fn due(&self, index: u64) -> Instant {
        // Computed from the index, not accumulated, so rounding never drifts the rate.
        self.start + Duration::from_nanos((index as f64 * 1e9 / self.rate) as u64)
    }

    pub fn end(&self) -> Instant {
        self.due(self.warmup + self.measured)
    }
}

/// Asks the kernel for exact timer expiry (default slack is 50 µs) on the calling thread,
/// which threads spawned afterwards inherit: call it before spawning the pacer. Without
/// the permission the pacer still works, later; its measured lateness then shows it.
pub fn request_exact_timers() {
    let _ = std::fs::write("/proc/self/timerslack_ns", "1");
}

fn wait_until(due: Instant) {
    loop {
        let now = Instant::now();
        if now >= due {
            return;
        }
        let left = due - now;
        if left > SPIN {
            std::thread::sleep(left - SPIN);
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Sends every scheduled request to `queue` at its due time. `at_measure_start` runs once,
/// between the last warm-up send and the first measured due time (the CPU baseline).
/// Returns the lateness of measured sends (ns) and what `at_measure_start` returned.
pub fn run<T>(
    schedule: &Schedule,
    queue: &UnboundedSender<Scheduled>,
    at_measure_start: impl FnOnce() -> T,
) -> (Histogram, Option<T>) {
    let mut lateness = Histogram::default();
    let mut at_measure_start = Some(at_measure_start);
    let mut baseline = None;
    for index in 0..schedule.warmup + schedule.measured {
        let measured = index >= schedule.warmup;
        if measured && let Some(sample) = at_measure_start.take() {
            baseline = Some(sample());
        }
        let due = schedule.due(index);
        wait_until(due);
        let sent = Instant::now();
        if queue.send(Scheduled { due, measured }).is_err() {
            break;
        }
        if measured {
            lateness.record(u64::try_from((sent - due).as_nanos()).unwrap_or(u64::MAX));
        }
    }
    (lateness, baseline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_follow_the_rate_without_drift() {
        let start = Instant::now();
        let schedule = Schedule {
            start,
            rate: 3000.0,
            warmup: 0,
            measured: 3000,
        };
        assert_eq!(schedule.due(0), start);
        assert_eq!(schedule.end() - start, Duration::from_secs(1));
        assert_eq!(schedule.due(3) - start, Duration::from_millis(1));
    }

    #[test]
    fn sends_everything_in_order_and_samples_once_at_the_boundary() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let schedule = Schedule {
            start: Instant::now(),
            rate: 20_000.0,
            warmup: 5,
            measured: 20,
        };
        let mut calls = 0;
        let (lateness, baseline) = run(&schedule, &tx, || {
            calls += 1;
            "sampled"
        });
        assert_eq!(calls, 1);
        assert_eq!(baseline, Some("sampled"));
        assert_eq!(lateness.summary().count, 20);
        let mut seen = Vec::new();
        while let Ok(job) = rx.try_recv() {
            seen.push(job);
        }
        assert_eq!(seen.len(), 25);
        assert!(seen.windows(2).all(|w| w[0].due < w[1].due));
        assert_eq!(seen.iter().filter(|job| job.measured).count(), 20);
        assert!(!seen[4].measured && seen[5].measured);
    }
}
