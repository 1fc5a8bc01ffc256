//! Reconnect pacing for the ADS stream, the way Envoy paces its own: fully jittered
//! exponential backoff (a uniform delay below an interval that doubles from the base up to
//! the cap), reset once the server has answered, so a fleet of proxies that lost their
//! control plane together does not reconnect in lockstep.

use std::time::Duration;

/// Envoy's `SubscriptionFactory::RetryInitialDelayMs`.
pub const ENVOY_BASE: Duration = Duration::from_millis(500);
/// Envoy's `SubscriptionFactory::RetryMaxDelayMs`.
pub const ENVOY_MAX: Duration = Duration::from_secs(30);

/// Jittered exponential backoff state for one reconnecting stream.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    interval: Duration,
    rng: fastrand::Rng,
}

impl Backoff {
    /// A backoff starting at `base` and never exceeding `max` (raised to `base` if lower).
    pub fn new(base: Duration, max: Duration) -> Self {
        Self::with_rng(base, max, fastrand::Rng::new())
    }

    /// As [`Backoff::new`] with a caller-chosen random source (seeded in tests).
    pub fn with_rng(base: Duration, max: Duration, rng: fastrand::Rng) -> Self {
        let base = base.max(Duration::from_millis(1));
        let max = max.max(base);
        Self {
            base,
            max,
            interval: base,
            rng,
        }
    }

    /// The next delay: uniform in `[0, interval)`, after which the interval doubles.
    pub fn next_delay(&mut self) -> Duration {
        let bound = u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX);
        let delay = Duration::from_millis(self.rng.u64(0..bound.max(1)));
        self.interval = if self.interval < self.max / 2 {
            self.interval * 2
        } else {
            self.max
        };
        delay.min(self.max)
    }

    /// Back to the base interval (called when the server has sent a response).
    pub fn reset(&mut self) {
        self.interval = self.base;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_below_a_doubling_interval_capped_at_max() {
        let mut b = Backoff::with_rng(ENVOY_BASE, ENVOY_MAX, fastrand::Rng::with_seed(7));
        let mut bound = ENVOY_BASE;
        for _ in 0..20 {
            let d = b.next_delay();
            assert!(d < bound, "{d:?} not below {bound:?}");
            bound = if bound < ENVOY_MAX / 2 {
                bound * 2
            } else {
                ENVOY_MAX
            };
        }
        assert_eq!(b.interval, ENVOY_MAX);
        b.reset();
        assert!(b.next_delay() < ENVOY_BASE);
    }

    #[test]
    fn delays_are_spread_not_constant() {
        let mut b = Backoff::with_rng(
            Duration::from_secs(30),
            Duration::from_secs(30),
            fastrand::Rng::with_seed(1),
        );
        let delays: std::collections::BTreeSet<Duration> =
            (0..16).map(|_| b.next_delay()).collect();
        assert!(delays.len() > 8, "jitter too weak: {delays:?}");
    }
}
