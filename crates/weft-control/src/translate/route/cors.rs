//! A VirtualService `corsPolicy` as the CORS filter's per-route configuration, as istiod
//! translates it (TranslateCORSPolicy): origins as string matchers (the deprecated
//! `allowOrigin` as exact ones), the lists joined with commas, `maxAge` in whole seconds,
//! always enabled, and preflights that match no origin forwarded unless `IGNORE`.

use envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy;
use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher};
use envoy_types::pb::envoy::r#type::v3::{FractionalPercent, fractional_percent};
use envoy_types::pb::google::protobuf::BoolValue;
use weft_config::networking::virtual_service::{CorsPolicy as IstioCors, UnmatchedPreflights};

use super::matching::string_matcher;

pub const CORS_FILTER: &str = "envoy.filters.http.cors";

pub(super) fn policy(c: &IstioCors) -> CorsPolicy {
    let origins = if !c.allow_origins.is_empty() {
        c.allow_origins.iter().filter_map(string_matcher).collect()
    } else {
        c.allow_origin
            .iter()
            .map(|o| StringMatcher {
                match_pattern: Some(string_matcher::MatchPattern::Exact(o.clone())),
                ..Default::default()
            })
            .collect()
    };
    CorsPolicy {
        allow_origin_string_match: origins,
        allow_methods: c.allow_methods.join(","),
        allow_headers: c.allow_headers.join(","),
        expose_headers: c.expose_headers.join(","),
        max_age: c
            .max_age
            .as_ref()
            .map(|d| d.as_std().as_secs().to_string())
            .unwrap_or_default(),
        allow_credentials: c.allow_credentials.map(|value| BoolValue { value }),
        filter_enabled: Some(RuntimeFractionalPercent {
            default_value: Some(FractionalPercent {
                numerator: 100,
                denominator: fractional_percent::DenominatorType::Hundred as i32,
            }),
            ..Default::default()
        }),
        forward_not_matching_preflights: Some(BoolValue {
            value: c.unmatched_preflights != UnmatchedPreflights::Ignore,
        }),
        ..Default::default()
    }
}
