//! The fault injection filter (`envoy.extensions.filters.http.fault.v3.HTTPFault`): delays
//! and aborts injected before the router, at the connection manager's level or overridden
//! per route, for a fraction of the requests that match its cluster, node and header
//! conditions — or, when the configuration lets them, as the request's own headers ask.

use super::matcher::{HeaderMatcher, Pseudo};
use super::{ConvertError, Result, duration};
use envoy_types::pb::envoy::extensions::filters::common::fault::v3::fault_delay::FaultDelaySecifier;
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{
    HttpFault, fault_abort::ErrorType,
};
use envoy_types::pb::envoy::r#type::v3::FractionalPercent;
use envoy_types::pb::envoy::r#type::v3::fractional_percent::DenominatorType;
use http::{HeaderMap, HeaderName, StatusCode};
use std::time::Duration;
use weft_yaml::FieldPath;

pub const FAULT: &str = "envoy.extensions.filters.http.fault.v3.HTTPFault";

static ABORT_REQUEST: HeaderName = HeaderName::from_static("x-envoy-fault-abort-request");
static ABORT_GRPC_REQUEST: HeaderName = HeaderName::from_static("x-envoy-fault-abort-grpc-request");
static ABORT_PERCENTAGE: HeaderName =
    HeaderName::from_static("x-envoy-fault-abort-request-percentage");
static DELAY_REQUEST: HeaderName = HeaderName::from_static("x-envoy-fault-delay-request");
static DELAY_PERCENTAGE: HeaderName =
    HeaderName::from_static("x-envoy-fault-delay-request-percentage");
pub static DOWNSTREAM_NODE: HeaderName = HeaderName::from_static("x-envoy-downstream-service-node");

/// Envoy's body for an injected abort.
pub const ABORT_BODY: &str = "fault filter abort";

/// A `FractionalPercent`: enabled when a random number modulo the denominator is below
/// the numerator, as Envoy's runtime evaluates it (so a numerator above the denominator
/// always fires, and an unset percentage never does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fraction {
    pub numerator: u32,
    pub denominator: u32,
}

impl Fraction {
    pub fn new(p: Option<&FractionalPercent>) -> Self {
        let p = p.copied().unwrap_or_default();
        Fraction {
            numerator: p.numerator,
            denominator: match DenominatorType::try_from(p.denominator) {
                Ok(DenominatorType::TenThousand) => 10_000,
                Ok(DenominatorType::Million) => 1_000_000,
                _ => 100,
            },
        }
    }

    pub fn roll(self) -> bool {
        fastrand::u64(..) % u64::from(self.denominator) < u64::from(self.numerator)
    }

    /// The header's numerator (first value only, as Envoy reads these untrusted headers),
    /// capped at the configured one; the configured fraction when the header is absent or
    /// not a number.
    fn capped_by(self, headers: &HeaderMap, name: &HeaderName) -> Self {
        match header_number(headers, name).and_then(|n| u32::try_from(n).ok()) {
            Some(n) => Fraction {
                numerator: n.min(self.numerator),
                ..self
            },
            None => self,
        }
    }
}

/// The first value of a header as a non-negative number.
fn header_number(headers: &HeaderMap, name: &HeaderName) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.parse().ok()
}

#[derive(Debug, Clone, PartialEq)]
enum AbortKind {
    Http(StatusCode),
    Grpc(u32),
    /// `x-envoy-fault-abort-request` / `x-envoy-fault-abort-grpc-request` decide.
    Header,
}

#[derive(Debug, Clone, PartialEq)]
struct Abort {
    kind: AbortKind,
    percent: Fraction,
    body: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum DelayKind {
    Fixed(Duration),
    /// `x-envoy-fault-delay-request` (milliseconds) decides.
    Header,
}

#[derive(Debug, Clone, PartialEq)]
struct Delay {
    kind: DelayKind,
    percent: Fraction,
}

/// An abort to answer with: the HTTP status (200 for gRPC-status aborts, as Envoy sends)
/// and the gRPC status when one was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortStatus {
    pub http: StatusCode,
    pub grpc: Option<u32>,
}

/// One converted `HTTPFault` (the filter's own configuration or a per-route override).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    abort: Option<Abort>,
    delay: Option<Delay>,
    headers: Vec<HeaderMatcher>,
    upstream_cluster: Option<String>,
    downstream_nodes: Vec<String>,
    pub max_active_faults: Option<u64>,
}

impl FaultConfig {
    pub fn new(f: &HttpFault, path: &FieldPath) -> Result<Self> {
        if f.response_rate_limit.is_some() {
            return Err(ConvertError::new(
                &path.field("response_rate_limit"),
                "response rate limiting is not supported by weft-proxy",
            ));
        }
        let abort = f
            .abort
            .as_ref()
            .map(|a| -> Result<Abort> {
                let p = path.field("abort");
                let kind = match a.error_type {
                    Some(ErrorType::HttpStatus(s)) => AbortKind::Http(
                        u16::try_from(s)
                            .ok()
                            .filter(|s| (200..600).contains(s))
                            .and_then(|s| StatusCode::from_u16(s).ok())
                            .ok_or_else(|| {
                                ConvertError::new(
                                    &p.field("http_status"),
                                    format!("must be in [200, 600) (is {s})"),
                                )
                            })?,
                    ),
                    Some(ErrorType::GrpcStatus(s)) => AbortKind::Grpc(s),
                    Some(ErrorType::HeaderAbort(_)) => AbortKind::Header,
                    None => {
                        return Err(ConvertError::new(
                            &p,
                            "one of http_status, grpc_status or header_abort is required",
                        ));
                    }
                };
                Ok(Abort {
                    kind,
                    percent: Fraction::new(a.percentage.as_ref()),
                    body: (!a.response_body.is_empty()).then(|| a.response_body.clone()),
                })
            })
            .transpose()?;
        let delay = f
            .delay
            .as_ref()
            .map(|d| -> Result<Delay> {
                let p = path.field("delay");
                let kind = match &d.fault_delay_secifier {
                    Some(FaultDelaySecifier::FixedDelay(fd)) => {
                        let fd = duration(fd, &p.field("fixed_delay"))?;
                        if fd.is_zero() {
                            return Err(ConvertError::new(
                                &p.field("fixed_delay"),
                                "must be greater than 0s",
                            ));
                        }
                        DelayKind::Fixed(fd)
                    }
                    Some(FaultDelaySecifier::HeaderDelay(_)) => DelayKind::Header,
                    None => {
                        return Err(ConvertError::new(
                            &p,
                            "one of fixed_delay or header_delay is required",
                        ));
                    }
                };
                Ok(Delay {
                    kind,
                    percent: Fraction::new(d.percentage.as_ref()),
                })
            })
            .transpose()?;
        let headers = f
            .headers
            .iter()
            .enumerate()
            .map(|(i, h)| HeaderMatcher::new(h, &path.field("headers").index(i)))
            .collect::<Result<_>>()?;
        Ok(FaultConfig {
            abort,
            delay,
            headers,
            upstream_cluster: (!f.upstream_cluster.is_empty()).then(|| f.upstream_cluster.clone()),
            downstream_nodes: f.downstream_nodes.clone(),
            max_active_faults: f.max_active_faults.map(|v| u64::from(v.value)),
        })
    }

    /// Whether nothing could ever be injected (the empty filter Istio installs).
    pub fn is_inert(&self) -> bool {
        self.abort.is_none() && self.delay.is_none()
    }

    /// Whether the request is one the faults apply to: bound for `upstream_cluster` (when
    /// set), from one of `downstream_nodes` (when set), and matching every header matcher.
    pub fn applies(&self, cluster: Option<&str>, headers: &HeaderMap, pseudo: &Pseudo<'_>) -> bool {
        if let Some(want) = &self.upstream_cluster
            && cluster != Some(want.as_str())
        {
            return false;
        }
        if !self.downstream_nodes.is_empty() {
            let node = headers.get(&DOWNSTREAM_NODE).and_then(|v| v.to_str().ok());
            if !node.is_some_and(|n| self.downstream_nodes.iter().any(|d| d == n)) {
                return false;
            }
        }
        self.headers.iter().all(|m| m.matches(headers, pseudo))
    }

    /// The delay to inject into this request, if any (a fresh random draw each call).
    pub fn delay_for(&self, headers: &HeaderMap) -> Option<Duration> {
        let d = self.delay.as_ref()?;
        let percent = match d.kind {
            DelayKind::Fixed(_) => d.percent,
            DelayKind::Header => d.percent.capped_by(headers, &DELAY_PERCENTAGE),
        };
        if !percent.roll() {
            return None;
        }
        let delay = match d.kind {
            DelayKind::Fixed(t) => t,
            DelayKind::Header => Duration::from_millis(header_number(headers, &DELAY_REQUEST)?),
        };
        // Envoy delays only by whole, non-zero milliseconds.
        (delay.as_millis() > 0).then(|| Duration::from_millis(delay.as_millis() as u64))
    }

    /// The abort to answer this request with, if any (a fresh random draw each call).
    pub fn abort_for(&self, headers: &HeaderMap) -> Option<AbortStatus> {
        let a = self.abort.as_ref()?;
        let percent = match a.kind {
            AbortKind::Header => a.percent.capped_by(headers, &ABORT_PERCENTAGE),
            _ => a.percent,
        };
        if !percent.roll() {
            return None;
        }
        match a.kind {
            AbortKind::Http(s) => Some(AbortStatus {
                http: s,
                grpc: None,
            }),
            AbortKind::Grpc(g) => Some(AbortStatus {
                http: StatusCode::OK,
                grpc: Some(g),
            }),
            AbortKind::Header => {
                // An HTTP status in the header wins over a gRPC one; out-of-range statuses
                // are ignored, as Envoy does.
                if let Some(s) = header_number(headers, &ABORT_REQUEST)
                    .filter(|s| (200..600).contains(s))
                    .and_then(|s| StatusCode::from_u16(s as u16).ok())
                {
                    return Some(AbortStatus {
                        http: s,
                        grpc: None,
                    });
                }
                let g = header_number(headers, &ABORT_GRPC_REQUEST)?;
                Some(AbortStatus {
                    http: StatusCode::OK,
                    grpc: Some(u32::try_from(g).ok()?),
                })
            }
        }
    }

    /// The abort response's body.
    pub fn abort_body(&self) -> &str {
        self.abort
            .as_ref()
            .and_then(|a| a.body.as_deref())
            .unwrap_or(ABORT_BODY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::extensions::filters::common::fault::v3::FaultDelay;
    use envoy_types::pb::envoy::extensions::filters::http::fault::v3::FaultAbort;
    use envoy_types::pb::envoy::extensions::filters::http::fault::v3::fault_abort::HeaderAbort;
    use http::HeaderValue;

    fn percent(numerator: u32, denominator: DenominatorType) -> Option<FractionalPercent> {
        Some(FractionalPercent {
            numerator,
            denominator: denominator as i32,
        })
    }

    #[test]
    fn fractions_fire_as_envoys_runtime_does() {
        let all = Fraction::new(percent(1_000_000, DenominatorType::Million).as_ref());
        let none = Fraction::new(percent(0, DenominatorType::Hundred).as_ref());
        let over = Fraction::new(percent(150, DenominatorType::Hundred).as_ref());
        assert!((0..1000).all(|_| all.roll() && over.roll() && !none.roll()));
        assert!(!Fraction::new(None).roll(), "an unset percentage is 0%");
        let half = Fraction::new(percent(5_000, DenominatorType::TenThousand).as_ref());
        let hits = (0..10_000).filter(|_| half.roll()).count();
        // 10 000 draws at p = 0.5: the standard deviation is 50, this is 10 of them.
        assert!((4_500..=5_500).contains(&hits), "{hits}");
    }

    #[test]
    fn header_controlled_faults_follow_the_headers_within_the_configured_percentage() {
        let cfg = FaultConfig::new(
            &HttpFault {
                abort: Some(FaultAbort {
                    percentage: percent(100, DenominatorType::Hundred),
                    error_type: Some(ErrorType::HeaderAbort(HeaderAbort {})),
                    ..Default::default()
                }),
                delay: Some(FaultDelay {
                    percentage: percent(100, DenominatorType::Hundred),
                    fault_delay_secifier: Some(FaultDelaySecifier::HeaderDelay(Default::default())),
                }),
                ..Default::default()
            },
            &FieldPath::root(),
        )
        .expect("valid");
        let mut h = HeaderMap::new();
        assert_eq!(cfg.abort_for(&h), None, "no header, no abort");
        assert_eq!(cfg.delay_for(&h), None);
        h.insert(&ABORT_REQUEST, HeaderValue::from_static("700"));
        h.insert(&ABORT_GRPC_REQUEST, HeaderValue::from_static("14"));
        assert_eq!(
            cfg.abort_for(&h),
            Some(AbortStatus {
                http: StatusCode::OK,
                grpc: Some(14)
            }),
            "an out-of-range HTTP status gives way to the gRPC one"
        );
        h.insert(&ABORT_REQUEST, HeaderValue::from_static("451"));
        assert_eq!(cfg.abort_for(&h).map(|a| a.http.as_u16()), Some(451));
        h.insert(&ABORT_PERCENTAGE, HeaderValue::from_static("0"));
        assert_eq!(
            cfg.abort_for(&h),
            None,
            "the header may lower the percentage"
        );
        h.insert(&DELAY_REQUEST, HeaderValue::from_static("25"));
        assert_eq!(cfg.delay_for(&h), Some(Duration::from_millis(25)));
    }

    #[test]
    fn bad_statuses_and_empty_delays_are_rejected() {
        let err = FaultConfig::new(
            &HttpFault {
                abort: Some(FaultAbort {
                    error_type: Some(ErrorType::HttpStatus(600)),
                    ..Default::default()
                }),
                ..Default::default()
            },
            &FieldPath::root(),
        )
        .expect_err("600 is out of range");
        assert_eq!(err.path.to_string(), "abort.http_status");
        let err = FaultConfig::new(
            &HttpFault {
                delay: Some(FaultDelay::default()),
                ..Default::default()
            },
            &FieldPath::root(),
        )
        .expect_err("a delay needs a kind");
        assert_eq!(err.path.to_string(), "delay");
    }
}
