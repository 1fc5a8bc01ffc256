//! What a VirtualService rule adds to a route besides where it goes: retries, fault
//! injection and header edits, each with istiod's defaults, apart from the routing itself.

use envoy_types::pb::envoy::config::core::v3::{
    HeaderValue, HeaderValueOption, header_value_option,
};
use envoy_types::pb::envoy::config::route::v3::{RetryPolicy, Route};
use envoy_types::pb::envoy::extensions::filters::common::fault::v3::{FaultDelay, fault_delay};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{
    FaultAbort, HttpFault, fault_abort,
};
use envoy_types::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate;
use envoy_types::pb::envoy::r#type::v3::{FractionalPercent, fractional_percent};
use envoy_types::pb::google::protobuf::UInt32Value;
use envoy_types::util::pack_any;
use weft_config::networking::virtual_service::{HTTPRetry, HeaderOperations, Headers};

use crate::translate::cluster::duration;

/// istiod's default retry_on (route/retry DefaultPolicy).
const DEFAULT_RETRY_ON: &str =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";

fn previous_hosts()
-> Vec<envoy_types::pb::envoy::config::route::v3::retry_policy::RetryHostPredicate> {
    vec![envoy_types::pb::envoy::config::route::v3::retry_policy::RetryHostPredicate {
        name: "envoy.retry_host_predicates.previous_hosts".into(),
        config_type: Some(
            envoy_types::pb::envoy::config::route::v3::retry_policy::retry_host_predicate::ConfigType::TypedConfig(
                pack_any(PreviousHostsPredicate::default()),
            ),
        ),
    }]
}

/// istiod's retry policy (ConvertPolicy): its default unless the rule sets retries;
/// `attempts: 0` none. Retries go to other hosts than those tried, except on a route that
/// hashes consistently, whose retries stay with the hashed host unless the rule says
/// `retryIgnorePreviousHosts: true`.
pub(super) fn retry_policy(
    retries: Option<&HTTPRetry>,
    consistent_hash: bool,
) -> Option<RetryPolicy> {
    let mut policy = RetryPolicy {
        retry_on: DEFAULT_RETRY_ON.into(),
        num_retries: Some(UInt32Value { value: 2 }),
        retry_host_predicate: if consistent_hash {
            Vec::new()
        } else {
            previous_hosts()
        },
        host_selection_retry_max_attempts: 5,
        retriable_status_codes: vec![503],
        ..Default::default()
    };
    let Some(r) = retries else {
        return Some(policy);
    };
    if r.attempts <= 0 {
        return None;
    }
    policy.num_retries = Some(UInt32Value {
        value: u32::try_from(r.attempts).unwrap_or(0),
    });
    if !r.retry_on.is_empty() {
        let (codes, names): (Vec<&str>, Vec<&str>) = r
            .retry_on_policies()
            .partition(|p| p.parse::<u32>().is_ok());
        let mut on: Vec<&str> = names;
        if !codes.is_empty() && !on.contains(&"retriable-status-codes") {
            on.push("retriable-status-codes");
        }
        policy.retry_on = on.join(",");
        policy.retriable_status_codes = codes.iter().filter_map(|c| c.parse().ok()).collect();
    }
    if let Some(t) = &r.per_try_timeout {
        policy.per_try_timeout = Some(duration(t.as_std()));
    }
    match r.retry_ignore_previous_hosts {
        Some(true) => policy.retry_host_predicate = previous_hosts(),
        Some(false) => policy.retry_host_predicate.clear(),
        None => {}
    }
    if let Some(b) = &r.backoff {
        policy.retry_back_off = Some(
            envoy_types::pb::envoy::config::route::v3::retry_policy::RetryBackOff {
                base_interval: Some(duration(b.as_std())),
                ..Default::default()
            },
        );
    }
    Some(policy)
}

pub(super) fn header_options(ops: &HeaderOperations) -> (Vec<HeaderValueOption>, Vec<String>) {
    let option = |k: &String, v: &String, action: header_value_option::HeaderAppendAction| {
        HeaderValueOption {
            header: Some(HeaderValue {
                key: k.clone(),
                value: v.clone(),
                ..Default::default()
            }),
            append_action: action as i32,
            ..Default::default()
        }
    };
    let mut add: Vec<HeaderValueOption> = ops
        .set
        .iter()
        .map(|(k, v)| {
            option(
                k,
                v,
                header_value_option::HeaderAppendAction::OverwriteIfExistsOrAdd,
            )
        })
        .collect();
    add.extend(ops.add.iter().map(|(k, v)| {
        option(
            k,
            v,
            header_value_option::HeaderAppendAction::AppendIfExistsOrAdd,
        )
    }));
    (add, ops.remove.clone())
}

fn percent(p: Option<f64>, legacy: i32) -> FractionalPercent {
    // Istio sends percentages as parts per million so fractions survive (value × 10⁴).
    let value = p.unwrap_or(f64::from(legacy));
    FractionalPercent {
        numerator: (value * 10_000.0).round().clamp(0.0, 1_000_000.0) as u32,
        denominator: fractional_percent::DenominatorType::Million as i32,
    }
}

pub(super) fn fault(f: &weft_config::networking::virtual_service::HTTPFaultInjection) -> HttpFault {
    let mut out = HttpFault::default();
    if let Some(d) = &f.delay
        && let Some(fixed) = &d.fixed_delay
    {
        out.delay = Some(FaultDelay {
            fault_delay_secifier: Some(fault_delay::FaultDelaySecifier::FixedDelay(duration(
                fixed.as_std(),
            ))),
            percentage: Some(percent(d.percentage.as_ref().map(|p| p.value), d.percent)),
        });
    }
    if let Some(a) = &f.abort {
        let error_type = if let Some(code) = a.http_status {
            Some(fault_abort::ErrorType::HttpStatus(
                u32::try_from(code).unwrap_or(500),
            ))
        } else {
            a.grpc_status
                .as_deref()
                .and_then(grpc_code)
                .map(fault_abort::ErrorType::GrpcStatus)
        };
        out.abort = Some(FaultAbort {
            error_type,
            percentage: Some(percent(a.percentage.as_ref().map(|p| p.value), 100)),
            ..Default::default()
        });
    }
    out
}

/// gRPC status names (as Istio accepts them in `abort.grpcStatus`) to codes.
fn grpc_code(name: &str) -> Option<u32> {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES
        .iter()
        .position(|n| *n == name)
        .and_then(|i| u32::try_from(i).ok())
        .or_else(|| name.parse().ok())
}

pub(super) fn apply_headers(r: &mut Route, h: &Headers) {
    if let Some(req) = &h.request {
        let (add, remove) = header_options(req);
        r.request_headers_to_add.extend(add);
        r.request_headers_to_remove.extend(remove);
    }
    if let Some(resp) = &h.response {
        let (add, remove) = header_options(resp);
        r.response_headers_to_add.extend(add);
        r.response_headers_to_remove.extend(remove);
    }
}
