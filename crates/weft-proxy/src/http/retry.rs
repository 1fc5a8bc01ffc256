//! One request's retry state, as Envoy's router keeps it: whether an upstream answer or
//! reset is worth another try (`retry_on`), how many tries remain, the cluster's retry
//! circuit breaker (a retry holds a slot from when it is scheduled until its outcome is
//! known), the jittered back-off, and the hosts already tried.

use crate::model::matcher::Pseudo;
use crate::model::retry::{Backoff, RetryPolicy, on};
use crate::upstream::cluster::ClusterStats;
use crate::upstream::pool::ResetReason;
use crate::upstream::resources::{Count, Held, Resources};
use http::{HeaderMap, HeaderName};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

static X_ENVOY_RATELIMITED: HeaderName = HeaderName::from_static("x-envoy-ratelimited");
static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// What to do after a try that could be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Not a retriable outcome: it stands.
    No,
    /// Try again after this back-off.
    Retry(Duration),
    /// Retriable, but `max_retries` retries are already in flight (flag UO).
    Overflow,
    /// Retriable, but no retries remain (flag URX).
    LimitExceeded,
}

pub struct RetryState<'a> {
    policy: &'a RetryPolicy,
    retry_on: u32,
    remaining: u32,
    backoff: Backoff,
    /// Hosts tried so far, kept only for the `previous_hosts` predicate.
    tried: Vec<SocketAddr>,
    /// The retry in flight's slot in the cluster's `max_retries`.
    slot: Option<Held>,
}

impl<'a> RetryState<'a> {
    /// The state for a request, or `None` when the policy retries nothing (no conditions,
    /// or `retriable_request_headers` that the request does not match).
    pub fn new(policy: &'a RetryPolicy, headers: &HeaderMap, pseudo: &Pseudo<'_>) -> Option<Self> {
        if policy.retry_on == 0 {
            return None;
        }
        if !policy.retriable_request_headers.is_empty()
            && !policy
                .retriable_request_headers
                .iter()
                .any(|m| m.matches(headers, pseudo))
        {
            return None;
        }
        Some(RetryState {
            policy,
            retry_on: policy.retry_on,
            remaining: policy.num_retries,
            backoff: Backoff::new(policy),
            tried: Vec::new(),
            slot: None,
        })
    }

    fn has(&self, bits: u32) -> bool {
        self.retry_on & bits != 0
    }

    /// A try went to `addr`.
    pub fn attempted(&mut self, addr: SocketAddr) {
        if self.policy.previous_hosts {
            self.tried.push(addr);
        }
    }

    /// The hosts a retry should avoid, and how many extra picks it may make to do so.
    pub fn avoid(&self) -> Option<(&[SocketAddr], u32)> {
        self.policy
            .previous_hosts
            .then_some((self.tried.as_slice(), self.policy.host_selection_attempts))
    }

    /// Envoy's `wouldRetryFromHeaders`.
    pub fn would_retry_headers(&self, status: u16, headers: &HeaderMap) -> bool {
        if headers.contains_key(&X_ENVOY_RATELIMITED) {
            return self.has(on::ENVOY_RATE_LIMITED);
        }
        if self.has(on::FIVE_XX) && (500..600).contains(&status) {
            return true;
        }
        if self.has(on::GATEWAY_ERROR) && matches!(status, 502..=504) {
            return true;
        }
        if self.has(on::RETRIABLE_4XX) && status == 409 {
            return true;
        }
        if self.has(on::RETRIABLE_STATUS_CODES)
            && self.policy.retriable_status_codes.contains(&status)
        {
            return true;
        }
        if self.has(on::RETRIABLE_HEADERS) && !self.policy.retriable_headers.is_empty() {
            let none = Pseudo {
                method: "",
                path: "",
                authority: "",
                scheme: "",
            };
            if self
                .policy
                .retriable_headers
                .iter()
                .any(|m| m.matches(headers, &none))
            {
                return true;
            }
        }
        if self.has(on::ANY_GRPC)
            && let Some(code) = headers
                .get(&GRPC_STATUS)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u32>().ok())
        {
            let bit = match code {
                1 => on::GRPC_CANCELLED,
                4 => on::GRPC_DEADLINE_EXCEEDED,
                8 => on::GRPC_RESOURCE_EXHAUSTED,
                13 => on::GRPC_INTERNAL,
                14 => on::GRPC_UNAVAILABLE,
                _ => 0,
            };
            if self.has(bit) {
                return true;
            }
        }
        false
    }

    /// Envoy's `wouldRetryFromReset`; `started` says whether the request reached the
    /// upstream (for `reset-before-request`).
    pub fn would_retry_reset(&self, reason: ResetReason, started: bool) -> bool {
        if reason == ResetReason::Overflow {
            return false;
        }
        if reason.is_connect_failure() && self.has(on::CONNECT_FAILURE) {
            return true;
        }
        if self.has(on::RESET_BEFORE_REQUEST) && !started {
            return true;
        }
        if self.has(on::RESET | on::FIVE_XX | on::GATEWAY_ERROR) {
            return true;
        }
        self.has(on::REFUSED_STREAM) && reason == ResetReason::RemoteRefusedStreamReset
    }

    /// Envoy's `shouldRetry`: releases the previous retry's slot, then decides.
    pub fn decide(
        &mut self,
        would_retry: bool,
        resources: &Arc<Resources>,
        stats: &ClusterStats,
    ) -> Decision {
        if self.slot.take().is_some() && !would_retry {
            stats.upstream_rq_retry_success.inc();
        }
        if !would_retry {
            return Decision::No;
        }
        if self.remaining == 0 {
            stats.upstream_rq_retry_limit_exceeded.inc();
            return Decision::LimitExceeded;
        }
        self.remaining -= 1;
        if !resources.default.retries.can_create() {
            stats.upstream_rq_retry_overflow.inc();
            return Decision::Overflow;
        }
        self.slot = Some(Held::take(resources, Count::Retry));
        stats.upstream_rq_retry.inc();
        stats.upstream_rq_retry_backoff_exponential.inc();
        Decision::Retry(self.backoff.next_delay())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cluster::{CircuitBreakers, Thresholds};
    use crate::model::retry::{DEFAULT_BASE_INTERVAL, parse_retry_on};
    use http::HeaderValue;

    fn policy(retry_on: &str, codes: &[u16]) -> RetryPolicy {
        RetryPolicy {
            retry_on: parse_retry_on(retry_on),
            num_retries: 2,
            per_try_timeout: None,
            previous_hosts: false,
            host_selection_attempts: 1,
            retriable_status_codes: codes.to_vec(),
            retriable_headers: vec![],
            retriable_request_headers: vec![],
            base_interval: DEFAULT_BASE_INTERVAL,
            max_interval: DEFAULT_BASE_INTERVAL * 10,
        }
    }

    fn state(p: &RetryPolicy) -> RetryState<'_> {
        let pseudo = Pseudo {
            method: "GET",
            path: "/",
            authority: "a",
            scheme: "http",
        };
        RetryState::new(p, &HeaderMap::new(), &pseudo).expect("retries something")
    }

    #[test]
    fn istios_default_policy_retries_what_envoy_retries() {
        let p = policy(
            "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
            &[503],
        );
        let s = state(&p);
        let empty = HeaderMap::new();
        assert!(s.would_retry_headers(503, &empty));
        assert!(!s.would_retry_headers(500, &empty));
        assert!(!s.would_retry_headers(502, &empty));
        let mut grpc = HeaderMap::new();
        grpc.insert(&GRPC_STATUS, HeaderValue::from_static("14"));
        assert!(s.would_retry_headers(200, &grpc));
        grpc.insert(&GRPC_STATUS, HeaderValue::from_static("2"));
        assert!(!s.would_retry_headers(200, &grpc));
        assert!(s.would_retry_reset(ResetReason::RemoteConnectionFailure, false));
        assert!(s.would_retry_reset(ResetReason::RemoteRefusedStreamReset, true));
        assert!(!s.would_retry_reset(ResetReason::ConnectionTermination, true));
        assert!(!s.would_retry_reset(ResetReason::Overflow, false));
    }

    #[test]
    fn five_xx_covers_resets_and_rate_limited_answers_need_their_own_condition() {
        let p = policy("5xx", &[]);
        let s = state(&p);
        assert!(s.would_retry_reset(ResetReason::ConnectionTermination, true));
        assert!(s.would_retry_reset(ResetReason::LocalReset, true));
        let mut h = HeaderMap::new();
        h.insert(&X_ENVOY_RATELIMITED, HeaderValue::from_static("true"));
        assert!(!s.would_retry_headers(503, &h));
        let p = policy("reset-before-request", &[]);
        let s = state(&p);
        assert!(s.would_retry_reset(ResetReason::RemoteConnectionFailure, false));
        assert!(!s.would_retry_reset(ResetReason::ConnectionTermination, true));
    }

    #[test]
    fn retries_are_limited_by_count_and_by_the_circuit_breaker() {
        let p = policy("5xx", &[]);
        let cb = CircuitBreakers {
            default: Thresholds {
                max_retries: 1,
                ..Thresholds::default()
            },
            ..CircuitBreakers::default()
        };
        let resources = Arc::new(Resources::new(&cb));
        let stats = ClusterStats::default();
        let mut a = state(&p);
        let mut b = state(&p);
        assert!(matches!(
            a.decide(true, &resources, &stats),
            Decision::Retry(_)
        ));
        assert_eq!(b.decide(true, &resources, &stats), Decision::Overflow);
        assert!(matches!(
            a.decide(true, &resources, &stats),
            Decision::Retry(_)
        ));
        assert_eq!(a.decide(true, &resources, &stats), Decision::LimitExceeded);
        assert!(resources.default.retries.can_create());
        assert_eq!(stats.upstream_rq_retry.get(), 2);
        assert_eq!(stats.upstream_rq_retry_overflow.get(), 1);
        assert_eq!(stats.upstream_rq_retry_limit_exceeded.get(), 1);
    }
}
