//! Outlier detection, Envoy's passive health check: each try's result is charged to its
//! host with a few atomic operations; when a host's run of consecutive errors reaches a
//! threshold, the cluster decides (under its writer lock, off the common path) whether to
//! eject it — ejected hosts are left out of load balancing until their ejection time is up,
//! which the cluster's interval timer checks. The same timer compares the hosts' success
//! rates over the last interval (success rate and failure percentage detectors).

use crate::model::outlier::{OutlierConfig, Statistical};
use crate::stats_struct;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

stats_struct!(
    /// `cluster.<name>.outlier_detection.*`, as Envoy names them.
    OutlierStats {
        counters: [
            ejections_consecutive_5xx,
            ejections_detected_consecutive_5xx,
            // Envoy's degraded-host detection (`detect_degraded_hosts`, refused here).
            ejections_detected_degradation,
            ejections_detected_consecutive_gateway_failure,
            ejections_detected_success_rate,
            ejections_detected_consecutive_local_origin_failure,
            ejections_detected_local_origin_success_rate,
            ejections_detected_failure_percentage,
            ejections_detected_local_origin_failure_percentage,
            ejections_enforced_consecutive_5xx,
            ejections_enforced_consecutive_gateway_failure,
            ejections_enforced_success_rate,
            ejections_enforced_consecutive_local_origin_failure,
            ejections_enforced_local_origin_success_rate,
            ejections_enforced_failure_percentage,
            ejections_enforced_local_origin_failure_percentage,
            ejections_enforced_total,
            ejections_overflow,
            ejections_success_rate,
            ejections_total,
        ],
        gauges: [ejections_active],
    }
);

/// What one try told about its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Response headers with this status.
    Status(u16),
    /// A connection (or stream) to the host was ready for the request.
    Connected,
    /// A TCP proxy's connection was made: for it, the whole exchange went well.
    ConnectedFinal,
    /// The connection failed, or the stream was reset before response headers.
    ConnectFailed,
    /// No response headers within the route or per-try timeout.
    Timeout,
}

/// Which detector fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detector {
    Consecutive5xx,
    ConsecutiveGatewayFailure,
    ConsecutiveLocalOriginFailure,
    SuccessRate,
    SuccessRateLocalOrigin,
    FailurePercentage,
    FailurePercentageLocalOrigin,
}

impl Detector {
    /// The percentage chance that a detection is enforced.
    pub fn enforcing(self, c: &OutlierConfig) -> u32 {
        let s = &c.statistical;
        match self {
            Detector::Consecutive5xx => c.consecutive_5xx.enforcing,
            Detector::ConsecutiveGatewayFailure => c.consecutive_gateway_failure.enforcing,
            Detector::ConsecutiveLocalOriginFailure => c.consecutive_local_origin_failure.enforcing,
            Detector::SuccessRate => s.enforcing_success_rate,
            Detector::SuccessRateLocalOrigin => s.enforcing_local_origin_success_rate,
            Detector::FailurePercentage => s.enforcing_failure_percentage,
            Detector::FailurePercentageLocalOrigin => s.enforcing_failure_percentage_local_origin,
        }
    }

    pub fn count_detected(self, s: &OutlierStats) {
        match self {
            Detector::Consecutive5xx => s.ejections_detected_consecutive_5xx.inc(),
            Detector::ConsecutiveGatewayFailure => {
                s.ejections_detected_consecutive_gateway_failure.inc();
            }
            Detector::ConsecutiveLocalOriginFailure => {
                s.ejections_detected_consecutive_local_origin_failure.inc();
            }
            Detector::SuccessRate => s.ejections_detected_success_rate.inc(),
            Detector::SuccessRateLocalOrigin => {
                s.ejections_detected_local_origin_success_rate.inc();
            }
            Detector::FailurePercentage => s.ejections_detected_failure_percentage.inc(),
            Detector::FailurePercentageLocalOrigin => {
                s.ejections_detected_local_origin_failure_percentage.inc();
            }
        }
    }

    pub fn count_enforced(self, s: &OutlierStats) {
        s.ejections_enforced_total.inc();
        match self {
            Detector::Consecutive5xx => s.ejections_enforced_consecutive_5xx.inc(),
            Detector::ConsecutiveGatewayFailure => {
                s.ejections_enforced_consecutive_gateway_failure.inc();
            }
            Detector::ConsecutiveLocalOriginFailure => {
                s.ejections_enforced_consecutive_local_origin_failure.inc();
            }
            Detector::SuccessRate => s.ejections_enforced_success_rate.inc(),
            Detector::SuccessRateLocalOrigin => {
                s.ejections_enforced_local_origin_success_rate.inc();
            }
            Detector::FailurePercentage => s.ejections_enforced_failure_percentage.inc(),
            Detector::FailurePercentageLocalOrigin => {
                s.ejections_enforced_local_origin_failure_percentage.inc();
            }
        }
    }
}

/// Requests and successes over one interval.
#[derive(Debug, Default)]
struct Bucket {
    total: AtomicU64,
    success: AtomicU64,
}

/// Envoy's success-rate accumulator: requests count into the current bucket; each interval
/// the buckets swap, and the one just filled is what the detectors read.
#[derive(Debug, Default)]
struct SuccessRate {
    buckets: [Bucket; 2],
    current: AtomicUsize,
}

impl SuccessRate {
    fn count(&self, success: bool) {
        let b = &self.buckets[self.current.load(Ordering::Relaxed) & 1];
        b.total.fetch_add(1, Ordering::Relaxed);
        if success {
            b.success.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn swap(&self) {
        let next = (self.current.load(Ordering::Relaxed) + 1) & 1;
        self.buckets[next].total.store(0, Ordering::Relaxed);
        self.buckets[next].success.store(0, Ordering::Relaxed);
        self.current.store(next, Ordering::Relaxed);
    }

    /// The last interval's success rate (a percentage) and request count, if it had any.
    fn last(&self) -> Option<(f64, u64)> {
        let b = &self.buckets[(self.current.load(Ordering::Relaxed) + 1) & 1];
        let total = b.total.load(Ordering::Relaxed);
        (total > 0).then(|| {
            (
                b.success.load(Ordering::Relaxed) as f64 * 100.0 / total as f64,
                total,
            )
        })
    }
}

/// Which results a success rate is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// HTTP statuses (with local-origin errors as 503/504 unless split off).
    External,
    /// Connection failures and timeouts, when split off.
    Local,
}

impl Origin {
    fn detectors(self) -> (Detector, Detector) {
        match self {
            Origin::External => (Detector::SuccessRate, Detector::FailurePercentage),
            Origin::Local => (
                Detector::SuccessRateLocalOrigin,
                Detector::FailurePercentageLocalOrigin,
            ),
        }
    }
}

/// Envoy's statistical detection over the hosts not ejected (`rates`: each one's last
/// success rate and volume): the hosts below the mean by more than the stdev factor, then
/// those failing at least the failure-percentage threshold, in that order, each with the
/// detector that found it.
pub fn statistical_outliers<H: Clone>(
    s: &Statistical,
    total_hosts: usize,
    rates: &[(H, Option<(f64, u64)>)],
    origin: Origin,
) -> Vec<(H, Detector)> {
    let mut out = Vec::new();
    let hosts = total_hosts as u64;
    if hosts < s.success_rate_minimum_hosts && hosts < s.failure_percentage_minimum_hosts {
        return out;
    }
    let mut sr_hosts = Vec::new();
    let mut fp_hosts = Vec::new();
    for (h, rate) in rates {
        let Some((rate, volume)) = *rate else {
            continue;
        };
        if volume >= s.success_rate_request_volume {
            sr_hosts.push((h.clone(), rate));
        }
        if volume >= s.failure_percentage_request_volume {
            fp_hosts.push((h.clone(), rate));
        }
    }
    let (sr, fp) = origin.detectors();
    if !sr_hosts.is_empty() && sr_hosts.len() as u64 >= s.success_rate_minimum_hosts {
        let n = sr_hosts.len() as f64;
        let mean = sr_hosts.iter().map(|(_, r)| r).sum::<f64>() / n;
        let variance = sr_hosts
            .iter()
            .map(|(_, r)| (r - mean).powi(2))
            .sum::<f64>()
            / n;
        let threshold = mean - (s.success_rate_stdev_factor as f64 / 1000.0) * variance.sqrt();
        out.extend(
            sr_hosts
                .iter()
                .filter(|(_, r)| *r < threshold)
                .map(|(h, _)| (h.clone(), sr)),
        );
    }
    if !fp_hosts.is_empty() && fp_hosts.len() as u64 >= s.failure_percentage_minimum_hosts {
        out.extend(
            fp_hosts
                .iter()
                .filter(|(_, r)| 100.0 - r >= s.failure_percentage_threshold as f64)
                .map(|(h, _)| (h.clone(), fp)),
        );
    }
    out
}

/// Envoy's 5xx codes that are gateway errors.
fn is_gateway_error(status: u16) -> bool {
    matches!(status, 502..=504)
}

/// Ejection bookkeeping, touched only when a host is ejected or checked for return.
#[derive(Debug, Default)]
struct Times {
    /// Multiplies the base ejection time; grows with each ejection, shrinks with each
    /// interval spent healthy after a return.
    backoff: u32,
    last_ejection: Option<Instant>,
    last_unejection: Option<Instant>,
    jitter: Duration,
}

/// One host's outlier state.
#[derive(Debug, Default)]
pub struct HostOutlier {
    consecutive_5xx: AtomicU32,
    consecutive_gateway: AtomicU32,
    consecutive_local: AtomicU32,
    external: SuccessRate,
    local: SuccessRate,
    ejected: AtomicBool,
    times: Mutex<Times>,
}

/// Detectors fired by one result (at most two: a 503 can complete both runs).
pub type Fired = [Option<Detector>; 2];

impl HostOutlier {
    pub fn is_ejected(&self) -> bool {
        self.ejected.load(Ordering::Relaxed)
    }

    /// Charges one result; returns the detectors whose run just reached its threshold
    /// (exactly reached, as Envoy compares, so a longer run fires once).
    pub fn record(&self, c: &OutlierConfig, outcome: Outcome) -> Fired {
        match (outcome, c.split_local_origin) {
            (Outcome::Status(s), _) => self.http(c, s),
            (Outcome::Connected, false) => [None, None],
            (Outcome::ConnectedFinal, false) => self.http(c, 200),
            (Outcome::ConnectFailed, false) => self.http(c, 503),
            (Outcome::Timeout, false) => self.http(c, 504),
            (Outcome::Connected | Outcome::ConnectedFinal, true) => {
                self.local.count(true);
                self.consecutive_local.store(0, Ordering::Relaxed);
                [None, None]
            }
            (Outcome::ConnectFailed | Outcome::Timeout, true) => {
                self.local.count(false);
                let n = self.consecutive_local.fetch_add(1, Ordering::Relaxed) + 1;
                [
                    (n == c.consecutive_local_origin_failure.threshold)
                        .then_some(Detector::ConsecutiveLocalOriginFailure),
                    None,
                ]
            }
        }
    }

    fn http(&self, c: &OutlierConfig, status: u16) -> Fired {
        let failed = (500..600).contains(&status);
        self.external.count(!failed);
        if !failed {
            self.consecutive_5xx.store(0, Ordering::Relaxed);
            self.consecutive_gateway.store(0, Ordering::Relaxed);
            return [None, None];
        }
        let gateway = if is_gateway_error(status) {
            let n = self.consecutive_gateway.fetch_add(1, Ordering::Relaxed) + 1;
            (n == c.consecutive_gateway_failure.threshold)
                .then_some(Detector::ConsecutiveGatewayFailure)
        } else {
            self.consecutive_gateway.store(0, Ordering::Relaxed);
            None
        };
        let n = self.consecutive_5xx.fetch_add(1, Ordering::Relaxed) + 1;
        let five = (n == c.consecutive_5xx.threshold).then_some(Detector::Consecutive5xx);
        [gateway, five]
    }

    /// Starts a new run for `d` (after a detection was handled).
    pub fn reset(&self, d: Detector) {
        let counter = match d {
            Detector::Consecutive5xx => &self.consecutive_5xx,
            Detector::ConsecutiveGatewayFailure => &self.consecutive_gateway,
            Detector::ConsecutiveLocalOriginFailure => &self.consecutive_local,
            _ => return,
        };
        counter.store(0, Ordering::Relaxed);
    }

    /// Starts a new interval for the success rates.
    pub fn swap_buckets(&self) {
        self.external.swap();
        self.local.swap();
    }

    /// The last interval's success rate and volume of `origin`'s results.
    pub fn last_rate(&self, origin: Origin) -> Option<(f64, u64)> {
        match origin {
            Origin::External => self.external.last(),
            Origin::Local => self.local.last(),
        }
    }

    /// Ejects the host now.
    pub fn eject(&self, c: &OutlierConfig, now: Instant) {
        self.ejected.store(true, Ordering::Relaxed);
        let mut t = self.times.lock();
        t.last_ejection = Some(now);
        let jitter_ms = c.max_ejection_time_jitter.as_millis() as u64;
        t.jitter = Duration::from_millis(fastrand::u64(..=jitter_ms));
        if c.base_ejection_time * t.backoff < c.max_ejection_time + c.base_ejection_time {
            t.backoff += 1;
        }
    }

    /// The interval's first step for this host: returns it if its ejection time is up
    /// (`true` when it came back).
    pub fn tick(&self, c: &OutlierConfig, now: Instant) -> bool {
        let mut t = self.times.lock();
        if self.is_ejected() {
            let ejected_for = t
                .last_ejection
                .map_or(Duration::MAX, |at| now.saturating_duration_since(at));
            let due = (c.base_ejection_time * t.backoff).min(c.max_ejection_time) + t.jitter;
            if due > ejected_for {
                return false;
            }
            self.ejected.store(false, Ordering::Relaxed);
            t.last_unejection = Some(now);
            // A host back from ejection starts its runs afresh.
            self.consecutive_5xx.store(0, Ordering::Relaxed);
            self.consecutive_gateway.store(0, Ordering::Relaxed);
            self.consecutive_local.store(0, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// The interval's last step: a host that has stayed back for a whole interval earns
    /// down its back-off.
    pub fn ease_backoff(&self, c: &OutlierConfig, now: Instant) {
        if self.is_ejected() {
            return;
        }
        let mut t = self.times.lock();
        if let Some(at) = t.last_unejection
            && now.saturating_duration_since(at) >= c.interval
            && t.backoff > 0
        {
            t.backoff -= 1;
        }
    }
}

/// Whether a detection is enforced: `enforcing` is a percentage chance.
pub fn enforced(enforcing: u32) -> bool {
    enforcing >= 100 || (enforcing > 0 && fastrand::u32(..100) < enforcing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::outlier::Consecutive;

    fn statistical() -> Statistical {
        Statistical {
            success_rate_minimum_hosts: 5,
            success_rate_request_volume: 100,
            success_rate_stdev_factor: 1900,
            enforcing_success_rate: 100,
            enforcing_local_origin_success_rate: 100,
            failure_percentage_threshold: 85,
            failure_percentage_minimum_hosts: 5,
            failure_percentage_request_volume: 50,
            enforcing_failure_percentage: 0,
            enforcing_failure_percentage_local_origin: 0,
        }
    }

    fn config(split: bool) -> OutlierConfig {
        OutlierConfig {
            interval: Duration::from_secs(1),
            base_ejection_time: Duration::from_secs(2),
            max_ejection_time: Duration::from_secs(5),
            max_ejection_time_jitter: Duration::ZERO,
            max_ejection_percent: 100,
            always_eject_one_host: false,
            consecutive_5xx: Consecutive {
                threshold: 3,
                enforcing: 100,
            },
            consecutive_gateway_failure: Consecutive {
                threshold: 2,
                enforcing: 100,
            },
            split_local_origin: split,
            consecutive_local_origin_failure: Consecutive {
                threshold: 2,
                enforcing: 100,
            },
            statistical: statistical(),
        }
    }

    #[test]
    fn success_rates_come_from_the_last_interval() {
        let c = config(false);
        let h = HostOutlier::default();
        for s in [200, 200, 200, 503] {
            h.record(&c, Outcome::Status(s));
        }
        assert_eq!(h.last_rate(Origin::External), None);
        h.swap_buckets();
        assert_eq!(h.last_rate(Origin::External), Some((75.0, 4)));
        h.record(&c, Outcome::Status(200));
        h.swap_buckets();
        assert_eq!(h.last_rate(Origin::External), Some((100.0, 1)));
        h.swap_buckets();
        assert_eq!(h.last_rate(Origin::External), None);
    }

    #[test]
    fn statistical_outliers_follow_envoys_arithmetic() {
        let s = statistical();
        // Envoy's own example: rates {50, 100, 100, 100, 100} give a mean of 90, a standard
        // deviation of 20 and a threshold of 90 - 1.9 * 20 = 52, so the first is out.
        let rates: Vec<(usize, Option<(f64, u64)>)> = [50.0, 100.0, 100.0, 100.0, 100.0]
            .iter()
            .enumerate()
            .map(|(i, r)| (i, Some((*r, 100))))
            .collect();
        assert_eq!(
            statistical_outliers(&s, 5, &rates, Origin::External),
            [(0, Detector::SuccessRate)]
        );
        // Too few hosts with enough requests: nothing.
        let mut few = rates.clone();
        few[4].1 = Some((100.0, 99));
        assert_eq!(statistical_outliers(&s, 5, &few, Origin::External), []);
        // A host failing 90% is over the 85% failure-percentage threshold.
        let mut failing = rates.clone();
        failing[0].1 = Some((10.0, 60));
        assert_eq!(
            statistical_outliers(&s, 5, &failing, Origin::Local),
            [(0, Detector::FailurePercentageLocalOrigin)]
        );
    }

    #[test]
    fn runs_fire_once_at_their_threshold_and_a_success_breaks_them() {
        let c = config(false);
        let h = HostOutlier::default();
        assert_eq!(h.record(&c, Outcome::Status(500)), [None, None]);
        assert_eq!(h.record(&c, Outcome::Status(200)), [None, None]);
        assert_eq!(h.record(&c, Outcome::Status(500)), [None, None]);
        assert_eq!(h.record(&c, Outcome::Status(500)), [None, None]);
        assert_eq!(
            h.record(&c, Outcome::Status(500)),
            [None, Some(Detector::Consecutive5xx)]
        );
        // Past the threshold nothing fires again until the run restarts.
        assert_eq!(h.record(&c, Outcome::Status(500)), [None, None]);
    }

    #[test]
    fn local_origin_errors_count_as_503_and_504_unless_split() {
        let c = config(false);
        let h = HostOutlier::default();
        assert_eq!(h.record(&c, Outcome::ConnectFailed), [None, None]);
        assert_eq!(
            h.record(&c, Outcome::Timeout),
            [Some(Detector::ConsecutiveGatewayFailure), None]
        );
        let c = config(true);
        let h = HostOutlier::default();
        assert_eq!(h.record(&c, Outcome::ConnectFailed), [None, None]);
        assert_eq!(h.record(&c, Outcome::Connected), [None, None]);
        assert_eq!(h.record(&c, Outcome::ConnectFailed), [None, None]);
        assert_eq!(
            h.record(&c, Outcome::Timeout),
            [Some(Detector::ConsecutiveLocalOriginFailure), None]
        );
    }

    #[test]
    fn ejection_time_grows_with_each_ejection_up_to_the_maximum() {
        let c = config(false);
        let h = HostOutlier::default();
        let t0 = Instant::now();
        h.eject(&c, t0);
        assert!(!h.tick(&c, t0 + Duration::from_millis(1999)));
        assert!(h.tick(&c, t0 + Duration::from_secs(2)));
        // Ejected again at once: twice the base.
        let t1 = t0 + Duration::from_secs(2);
        h.eject(&c, t1);
        assert!(!h.tick(&c, t1 + Duration::from_millis(3999)));
        assert!(h.tick(&c, t1 + Duration::from_secs(4)));
        // A third time would be 6 s, capped at the 5 s maximum.
        let t2 = t1 + Duration::from_secs(4);
        h.eject(&c, t2);
        assert!(!h.tick(&c, t2 + Duration::from_millis(4999)));
        assert!(h.tick(&c, t2 + Duration::from_secs(5)));
    }
}
