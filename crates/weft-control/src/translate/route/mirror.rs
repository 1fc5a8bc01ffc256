//! Traffic mirroring as istiod translates it: `mirror` (with `mirrorPercentage`, or the
//! older integer `mirrorPercent`; 100% when neither is set, none when one is 0) and each
//! `mirrors` entry become request mirror policies on the route, to the mirrored
//! destination's cluster, never sampled for tracing.

use envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use envoy_types::pb::envoy::config::route::v3::route_action::RequestMirrorPolicy;
use envoy_types::pb::envoy::r#type::v3::{FractionalPercent, fractional_percent};
use envoy_types::pb::google::protobuf::BoolValue;
use weft_config::networking::virtual_service::{Destination, HTTPRoute, Percent};

use super::destination_cluster;
use crate::translate::view::MeshView;

/// The route's mirror policies, in istiod's order (`mirror` first, then `mirrors`).
pub(super) fn policies(
    rule: &HTTPRoute,
    view: &MeshView,
    namespace: &str,
    port: u16,
) -> Vec<RequestMirrorPolicy> {
    let mut out = Vec::new();
    if let Some(d) = &rule.mirror {
        let share = match (&rule.mirror_percentage, rule.mirror_percent) {
            (Some(p), _) => percentage(p),
            (None, Some(p)) => (p > 0).then(|| hundredths(p)),
            (None, None) => Some(hundredths(100)),
        };
        if let Some(share) = share {
            out.push(policy(view, d, namespace, port, share));
        }
    }
    for m in &rule.mirrors {
        let Some(d) = &m.destination else {
            continue;
        };
        let share = match &m.percentage {
            Some(p) => percentage(p),
            None => Some(hundredths(100)),
        };
        if let Some(share) = share {
            out.push(policy(view, d, namespace, port, share));
        }
    }
    out
}

fn policy(
    view: &MeshView,
    d: &Destination,
    namespace: &str,
    port: u16,
    share: FractionalPercent,
) -> RequestMirrorPolicy {
    RequestMirrorPolicy {
        cluster: destination_cluster(view, d, namespace, port),
        runtime_fraction: Some(RuntimeFractionalPercent {
            default_value: Some(share),
            ..Default::default()
        }),
        trace_sampled: Some(BoolValue { value: false }),
        ..Default::default()
    }
}

/// A `Percent` (0–100 with fractions) in millionths; 0 mirrors nothing.
fn percentage(p: &Percent) -> Option<FractionalPercent> {
    // In range by validation (0..=100), so the cast cannot truncate.
    (p.value > 0.0).then_some(FractionalPercent {
        numerator: (p.value * 10_000.0) as u32,
        denominator: fractional_percent::DenominatorType::Million as i32,
    })
}

fn hundredths(p: u32) -> FractionalPercent {
    FractionalPercent {
        numerator: p,
        denominator: fractional_percent::DenominatorType::Hundred as i32,
    }
}
