//! A cluster's `outlier_detection`: the consecutive-error detectors (consecutive 5xx,
//! consecutive gateway failure, consecutive local-origin failure), the statistical ones run
//! every interval (success rate, failure percentage), the ejection timing and the cap on
//! how much of a cluster may be ejected, all with Envoy's defaults. Extension monitors are
//! refused.

use super::{ConvertError, Result, duration};
use envoy_types::pb::envoy::config::cluster::v3::OutlierDetection;
use envoy_types::pb::google::protobuf::UInt32Value;
use std::time::Duration;
use weft_yaml::FieldPath;

/// One consecutive-error detector: how many errors in a row trigger it, and the percentage
/// chance that a detection is enforced (the host actually ejected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consecutive {
    pub threshold: u32,
    pub enforcing: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutlierConfig {
    /// How often ejected hosts are checked for return.
    pub interval: Duration,
    pub base_ejection_time: Duration,
    pub max_ejection_time: Duration,
    pub max_ejection_time_jitter: Duration,
    pub max_ejection_percent: u32,
    pub always_eject_one_host: bool,
    pub consecutive_5xx: Consecutive,
    pub consecutive_gateway_failure: Consecutive,
    /// Connection failures and timeouts are counted on their own instead of as 503/504.
    pub split_local_origin: bool,
    pub consecutive_local_origin_failure: Consecutive,
    pub statistical: Statistical,
}

/// The detectors run over each interval's success rates.
#[derive(Debug, Clone, PartialEq)]
pub struct Statistical {
    pub success_rate_minimum_hosts: u64,
    pub success_rate_request_volume: u64,
    /// Thousandths: 1900 ejects below the mean minus 1.9 standard deviations.
    pub success_rate_stdev_factor: u64,
    pub enforcing_success_rate: u32,
    pub enforcing_local_origin_success_rate: u32,
    /// A host failing at least this percentage of its requests is an outlier.
    pub failure_percentage_threshold: u64,
    pub failure_percentage_minimum_hosts: u64,
    pub failure_percentage_request_volume: u64,
    pub enforcing_failure_percentage: u32,
    pub enforcing_failure_percentage_local_origin: u32,
}

const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
const DEFAULT_BASE_EJECTION: Duration = Duration::from_secs(30);
const DEFAULT_MAX_EJECTION: Duration = Duration::from_secs(300);

impl OutlierConfig {
    pub fn new(od: &OutlierDetection, path: &FieldPath) -> Result<Self> {
        let n = |v: Option<UInt32Value>, default: u32| v.map_or(default, |v| v.value);
        let pct = |v: Option<UInt32Value>, default: u32, name: &str| -> Result<u32> {
            let v = n(v, default);
            if v > 100 {
                return Err(ConvertError::new(
                    &path.field(name),
                    format!("must be at most 100 (is {v})"),
                ));
            }
            Ok(v)
        };
        refuse_unless(
            od.monitors.is_empty(),
            path,
            "monitors",
            "outlier detection extension monitors are not supported by weft-proxy",
        )?;
        let big = |v: Option<UInt32Value>, default: u64| v.map_or(default, |v| u64::from(v.value));
        let statistical = Statistical {
            success_rate_minimum_hosts: big(od.success_rate_minimum_hosts, 5),
            success_rate_request_volume: big(od.success_rate_request_volume, 100),
            success_rate_stdev_factor: big(od.success_rate_stdev_factor, 1900),
            enforcing_success_rate: pct(od.enforcing_success_rate, 100, "enforcing_success_rate")?,
            enforcing_local_origin_success_rate: pct(
                od.enforcing_local_origin_success_rate,
                100,
                "enforcing_local_origin_success_rate",
            )?,
            failure_percentage_threshold: u64::from(pct(
                od.failure_percentage_threshold,
                85,
                "failure_percentage_threshold",
            )?),
            failure_percentage_minimum_hosts: big(od.failure_percentage_minimum_hosts, 5),
            failure_percentage_request_volume: big(od.failure_percentage_request_volume, 50),
            enforcing_failure_percentage: pct(
                od.enforcing_failure_percentage,
                0,
                "enforcing_failure_percentage",
            )?,
            enforcing_failure_percentage_local_origin: pct(
                od.enforcing_failure_percentage_local_origin,
                0,
                "enforcing_failure_percentage_local_origin",
            )?,
        };
        let split_local_origin = od.split_external_local_origin_errors;

        let dur = |d: &Option<envoy_types::pb::google::protobuf::Duration>,
                   name: &str,
                   default: Duration|
         -> Result<Duration> {
            match d {
                None => Ok(default),
                Some(d) => duration(d, &path.field(name)),
            }
        };
        let interval = dur(&od.interval, "interval", DEFAULT_INTERVAL)?;
        if interval.is_zero() {
            return Err(ConvertError::new(
                &path.field("interval"),
                "must be greater than 0s",
            ));
        }
        let base_ejection_time = dur(
            &od.base_ejection_time,
            "base_ejection_time",
            DEFAULT_BASE_EJECTION,
        )?;
        if base_ejection_time.is_zero() {
            return Err(ConvertError::new(
                &path.field("base_ejection_time"),
                "must be greater than 0s",
            ));
        }
        let max_ejection_time = dur(
            &od.max_ejection_time,
            "max_ejection_time",
            DEFAULT_MAX_EJECTION.max(base_ejection_time),
        )?;
        if max_ejection_time < base_ejection_time {
            return Err(ConvertError::new(
                &path.field("max_ejection_time"),
                "outlier detector's max_ejection_time cannot be smaller than \
                 base_ejection_time",
            ));
        }
        Ok(OutlierConfig {
            interval,
            base_ejection_time,
            max_ejection_time,
            max_ejection_time_jitter: dur(
                &od.max_ejection_time_jitter,
                "max_ejection_time_jitter",
                Duration::ZERO,
            )?,
            max_ejection_percent: pct(od.max_ejection_percent, 10, "max_ejection_percent")?,
            always_eject_one_host: od.always_eject_one_host.is_some_and(|v| v.value),
            consecutive_5xx: Consecutive {
                threshold: n(od.consecutive_5xx, 5),
                enforcing: pct(
                    od.enforcing_consecutive_5xx,
                    100,
                    "enforcing_consecutive_5xx",
                )?,
            },
            consecutive_gateway_failure: Consecutive {
                threshold: n(od.consecutive_gateway_failure, 5),
                enforcing: pct(
                    od.enforcing_consecutive_gateway_failure,
                    0,
                    "enforcing_consecutive_gateway_failure",
                )?,
            },
            split_local_origin,
            consecutive_local_origin_failure: Consecutive {
                threshold: n(od.consecutive_local_origin_failure, 5),
                enforcing: pct(
                    od.enforcing_consecutive_local_origin_failure,
                    100,
                    "enforcing_consecutive_local_origin_failure",
                )?,
            },
            statistical,
        })
    }
}

fn refuse_unless(ok: bool, path: &FieldPath, field: &str, why: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(ConvertError::new(&path.field(field), why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::google::protobuf::Duration as PbDuration;

    fn u(v: u32) -> Option<UInt32Value> {
        Some(UInt32Value { value: v })
    }

    /// What istiod emits for `consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 2s`.
    fn istio_like() -> OutlierDetection {
        OutlierDetection {
            consecutive_5xx: u(3),
            enforcing_consecutive_5xx: u(100),
            consecutive_gateway_failure: u(0),
            enforcing_consecutive_gateway_failure: u(0),
            interval: Some(PbDuration {
                seconds: 1,
                nanos: 0,
            }),
            base_ejection_time: Some(PbDuration {
                seconds: 2,
                nanos: 0,
            }),
            max_ejection_percent: u(100),
            enforcing_success_rate: u(0),
            ..Default::default()
        }
    }

    #[test]
    fn istiod_fields_convert_with_envoys_defaults_elsewhere() {
        let c = OutlierConfig::new(&istio_like(), &FieldPath::root()).expect("istio-like");
        assert_eq!(
            c.consecutive_5xx,
            Consecutive {
                threshold: 3,
                enforcing: 100
            }
        );
        assert_eq!(c.interval, Duration::from_secs(1));
        assert_eq!(c.base_ejection_time, Duration::from_secs(2));
        assert_eq!(c.max_ejection_time, DEFAULT_MAX_EJECTION);
        assert_eq!(c.max_ejection_percent, 100);
        assert_eq!(
            c.consecutive_local_origin_failure,
            Consecutive {
                threshold: 5,
                enforcing: 100
            }
        );
    }

    #[test]
    fn statistical_detectors_take_envoys_defaults_and_bad_values_are_named() {
        let mut od = istio_like();
        od.enforcing_success_rate = None;
        let c = OutlierConfig::new(&od, &FieldPath::root()).expect("SR on by default");
        assert_eq!(c.statistical.enforcing_success_rate, 100);
        assert_eq!(c.statistical.success_rate_stdev_factor, 1900);
        assert_eq!(c.statistical.failure_percentage_threshold, 85);
        assert_eq!(c.statistical.enforcing_failure_percentage, 0);
        let mut od = istio_like();
        od.enforcing_failure_percentage = u(101);
        let e = OutlierConfig::new(&od, &FieldPath::root()).expect_err("over 100");
        assert!(
            e.to_string().contains("enforcing_failure_percentage"),
            "{e}"
        );
        let mut od = istio_like();
        od.max_ejection_time = Some(PbDuration {
            seconds: 1,
            nanos: 0,
        });
        let e = OutlierConfig::new(&od, &FieldPath::root()).expect_err("max < base");
        assert!(e.to_string().contains("max_ejection_time"), "{e}");
    }
}
