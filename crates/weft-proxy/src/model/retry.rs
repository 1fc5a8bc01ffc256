//! Route retry policies (`envoy.config.route.v3.RetryPolicy`): which upstream outcomes are
//! retried (`retry_on`), how many times, the per-try timeout, the jittered exponential
//! back-off between tries, and whether hosts already tried are avoided (`previous_hosts`).

use super::matcher::HeaderMatcher;
use super::{ConvertError, Result, duration, timeout, type_name};
use envoy_types::pb::envoy::config::route::v3::RetryPolicy as PbRetryPolicy;
use envoy_types::pb::envoy::config::route::v3::retry_policy::retry_host_predicate::ConfigType;
use std::time::Duration;
use weft_yaml::FieldPath;

pub const PREVIOUS_HOSTS: &str =
    "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate";
const PREVIOUS_HOSTS_NAME: &str = "envoy.retry_host_predicates.previous_hosts";

/// The `retry_on` conditions, as bits (Envoy's `RetryPolicy::RETRY_ON_*`).
pub mod on {
    pub const FIVE_XX: u32 = 1 << 0;
    pub const GATEWAY_ERROR: u32 = 1 << 1;
    pub const CONNECT_FAILURE: u32 = 1 << 2;
    pub const RETRIABLE_4XX: u32 = 1 << 3;
    pub const REFUSED_STREAM: u32 = 1 << 4;
    pub const GRPC_CANCELLED: u32 = 1 << 5;
    pub const GRPC_DEADLINE_EXCEEDED: u32 = 1 << 6;
    pub const GRPC_RESOURCE_EXHAUSTED: u32 = 1 << 7;
    pub const GRPC_UNAVAILABLE: u32 = 1 << 8;
    pub const RETRIABLE_STATUS_CODES: u32 = 1 << 9;
    pub const RESET: u32 = 1 << 10;
    pub const RETRIABLE_HEADERS: u32 = 1 << 11;
    pub const ENVOY_RATE_LIMITED: u32 = 1 << 12;
    pub const GRPC_INTERNAL: u32 = 1 << 13;
    pub const HTTP3_POST_CONNECT_FAILURE: u32 = 1 << 14;
    pub const RESET_BEFORE_REQUEST: u32 = 1 << 15;
    pub const ANY_GRPC: u32 = GRPC_CANCELLED
        | GRPC_DEADLINE_EXCEEDED
        | GRPC_RESOURCE_EXHAUSTED
        | GRPC_UNAVAILABLE
        | GRPC_INTERNAL;
}

/// `retry_on` as Envoy parses a route's policy: HTTP and gRPC conditions in one list,
/// commas between them, whitespace trimmed; unknown words are ignored, as Envoy ignores them.
pub fn parse_retry_on(s: &str) -> u32 {
    s.split(',')
        .map(str::trim)
        .map(|w| match w {
            "5xx" => on::FIVE_XX,
            "gateway-error" => on::GATEWAY_ERROR,
            "connect-failure" => on::CONNECT_FAILURE,
            "envoy-ratelimited" => on::ENVOY_RATE_LIMITED,
            "retriable-4xx" => on::RETRIABLE_4XX,
            "refused-stream" => on::REFUSED_STREAM,
            "retriable-status-codes" => on::RETRIABLE_STATUS_CODES,
            "retriable-headers" => on::RETRIABLE_HEADERS,
            "reset" => on::RESET,
            "reset-before-request" => on::RESET_BEFORE_REQUEST,
            "http3-post-connect-failure" => on::HTTP3_POST_CONNECT_FAILURE,
            "cancelled" => on::GRPC_CANCELLED,
            "deadline-exceeded" => on::GRPC_DEADLINE_EXCEEDED,
            "resource-exhausted" => on::GRPC_RESOURCE_EXHAUSTED,
            "unavailable" => on::GRPC_UNAVAILABLE,
            "internal" => on::GRPC_INTERNAL,
            _ => 0,
        })
        .fold(0, |a, b| a | b)
}

/// Envoy's default back-off base (the `upstream.base_retry_backoff_ms` runtime default).
pub const DEFAULT_BASE_INTERVAL: Duration = Duration::from_millis(25);

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub retry_on: u32,
    pub num_retries: u32,
    /// `None`: no per-try timeout.
    pub per_try_timeout: Option<Duration>,
    /// The `previous_hosts` predicate: a retry avoids the hosts already tried.
    pub previous_hosts: bool,
    /// How many extra host picks a predicate may ask for (Envoy's default is 1).
    pub host_selection_attempts: u32,
    pub retriable_status_codes: Vec<u16>,
    pub retriable_headers: Vec<HeaderMatcher>,
    /// When set, only requests matching one of these are retried.
    pub retriable_request_headers: Vec<HeaderMatcher>,
    pub base_interval: Duration,
    pub max_interval: Duration,
}

impl RetryPolicy {
    pub fn new(p: &PbRetryPolicy, path: &FieldPath) -> Result<Self> {
        let mut previous_hosts = false;
        for (i, pred) in p.retry_host_predicate.iter().enumerate() {
            let pp = path.field("retry_host_predicate").index(i);
            let known = match &pred.config_type {
                Some(ConfigType::TypedConfig(any)) => type_name(any) == PREVIOUS_HOSTS,
                None => pred.name == PREVIOUS_HOSTS_NAME,
            };
            if !known {
                return Err(ConvertError::new(
                    &pp,
                    format!(
                        "retry host predicate `{}` is not supported by weft-proxy (only \
                         previous_hosts)",
                        pred.name
                    ),
                ));
            }
            previous_hosts = true;
        }
        let (base_interval, max_interval) = match &p.retry_back_off {
            None => (DEFAULT_BASE_INTERVAL, DEFAULT_BASE_INTERVAL * 10),
            Some(b) => {
                let bp = path.field("retry_back_off");
                let Some(base) = &b.base_interval else {
                    return Err(ConvertError::new(&bp.field("base_interval"), "is required"));
                };
                let base = duration(base, &bp.field("base_interval"))?;
                if base.is_zero() {
                    return Err(ConvertError::new(
                        &bp.field("base_interval"),
                        "must be greater than 0s",
                    ));
                }
                // Envoy counts whole milliseconds, at least one.
                let ms = |d: Duration| Duration::from_millis((d.as_millis() as u64).max(1));
                let base = ms(base);
                let max = match &b.max_interval {
                    None => base * 10,
                    Some(m) => {
                        let m = duration(m, &bp.field("max_interval"))?;
                        if m.is_zero() {
                            return Err(ConvertError::new(
                                &bp.field("max_interval"),
                                "must be greater than 0s",
                            ));
                        }
                        let m = ms(m);
                        if m < base {
                            return Err(ConvertError::new(
                                &bp.field("max_interval"),
                                "retry_policy.max_interval must greater than or equal to the \
                                 base_interval",
                            ));
                        }
                        m
                    }
                };
                (base, max)
            }
        };
        let matchers = |list: &[envoy_types::pb::envoy::config::route::v3::HeaderMatcher],
                        field: &str|
         -> Result<Vec<HeaderMatcher>> {
            list.iter()
                .enumerate()
                .map(|(i, h)| HeaderMatcher::new(h, &path.field(field).index(i)))
                .collect()
        };
        let retriable_status_codes = p
            .retriable_status_codes
            .iter()
            .map(|c| u16::try_from(*c).unwrap_or(u16::MAX))
            .collect();
        Ok(RetryPolicy {
            retry_on: parse_retry_on(&p.retry_on),
            num_retries: p.num_retries.map_or(1, |v| v.value),
            per_try_timeout: timeout(p.per_try_timeout.as_ref(), &path.field("per_try_timeout"))?,
            previous_hosts,
            host_selection_attempts: match p.host_selection_retry_max_attempts {
                0 => 1,
                n => u32::try_from(n.max(0)).unwrap_or(u32::MAX),
            },
            retriable_status_codes,
            retriable_headers: matchers(&p.retriable_headers, "retriable_headers")?,
            retriable_request_headers: matchers(
                &p.retriable_request_headers,
                "retriable_request_headers",
            )?,
            base_interval,
            max_interval,
        })
    }
}

/// Envoy's fully jittered exponential back-off: the n-th retry waits a random time below
/// `base · 2^(n-1)`, the bound doubling until it reaches `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: u64,
    max: u64,
}

impl Backoff {
    pub fn new(p: &RetryPolicy) -> Self {
        Backoff {
            next: p.base_interval.as_millis() as u64,
            max: p.max_interval.as_millis() as u64,
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        let bound = self.next.max(1);
        self.next = if self.next < self.max / 2 {
            self.next * 2
        } else {
            self.max
        };
        Duration::from_millis(fastrand::u64(..) % bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_on_takes_http_and_grpc_words_and_ignores_unknown_ones() {
        let bits = parse_retry_on(
            "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
        );
        assert_eq!(
            bits,
            on::CONNECT_FAILURE
                | on::REFUSED_STREAM
                | on::GRPC_UNAVAILABLE
                | on::GRPC_CANCELLED
                | on::RETRIABLE_STATUS_CODES
        );
        assert_eq!(parse_retry_on(" 5xx , nonsense,gateway-error"), 3);
        assert_eq!(parse_retry_on(""), 0);
    }

    #[test]
    fn backoff_bounds_double_up_to_the_maximum() {
        let mut b = Backoff { next: 25, max: 250 };
        let bounds: Vec<u64> = (0..6)
            .map(|_| {
                let bound = b.next;
                assert!(b.next_delay() < Duration::from_millis(bound));
                bound
            })
            .collect();
        assert_eq!(bounds, [25, 50, 100, 200, 250, 250]);
    }
}
