//! The CORS filter's configuration: the empty filter (`envoy.extensions.filters.http.cors.v3.Cors`)
//! and the per-route / per-virtual-host `CorsPolicy` that says which origins may call and
//! what the preflight answer carries. Each field is kept as "unset" when absent, because the
//! filter takes every field from the most specific level that sets it.

use super::fault::Fraction;
use super::matcher::StringMatcher;
use super::{ConvertError, Result};
use envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy as PbCorsPolicy;
use http::HeaderValue;
use weft_yaml::FieldPath;

pub const CORS: &str = "envoy.extensions.filters.http.cors.v3.Cors";
pub const CORS_POLICY: &str = "envoy.extensions.filters.http.cors.v3.CorsPolicy";

/// One level's `CorsPolicy`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CorsPolicy {
    pub allow_origins: Vec<StringMatcher>,
    pub allow_methods: Option<HeaderValue>,
    pub allow_headers: Option<HeaderValue>,
    pub expose_headers: Option<HeaderValue>,
    pub max_age: Option<HeaderValue>,
    pub allow_credentials: Option<bool>,
    pub allow_private_network_access: Option<bool>,
    pub forward_not_matching_preflights: Option<bool>,
    /// `None`: enabled (Envoy's default when `filter_enabled` is unset).
    pub filter_enabled: Option<Fraction>,
    /// `None`: off.
    pub shadow_enabled: Option<Fraction>,
}

fn text(s: &str, path: &FieldPath) -> Result<Option<HeaderValue>> {
    if s.is_empty() {
        return Ok(None);
    }
    HeaderValue::from_str(s)
        .map(Some)
        .map_err(|_| ConvertError::new(path, "is not a valid header value"))
}

fn fraction(f: Option<&RuntimeFractionalPercent>) -> Option<Fraction> {
    // Runtime keys name overrides in Envoy's runtime layers; with none, the default applies.
    f.map(|f| Fraction::new(f.default_value.as_ref()))
}

impl CorsPolicy {
    pub fn new(p: &PbCorsPolicy, path: &FieldPath) -> Result<Self> {
        let origins = path.field("allow_origin_string_match");
        Ok(CorsPolicy {
            allow_origins: p
                .allow_origin_string_match
                .iter()
                .enumerate()
                .map(|(i, m)| StringMatcher::new(m, &origins.index(i)))
                .collect::<Result<_>>()?,
            allow_methods: text(&p.allow_methods, &path.field("allow_methods"))?,
            allow_headers: text(&p.allow_headers, &path.field("allow_headers"))?,
            expose_headers: text(&p.expose_headers, &path.field("expose_headers"))?,
            max_age: text(&p.max_age, &path.field("max_age"))?,
            allow_credentials: p.allow_credentials.map(|b| b.value),
            allow_private_network_access: p.allow_private_network_access.map(|b| b.value),
            forward_not_matching_preflights: p.forward_not_matching_preflights.map(|b| b.value),
            filter_enabled: fraction(p.filter_enabled.as_ref()),
            shadow_enabled: fraction(p.shadow_enabled.as_ref()),
        })
    }

    /// Whether the filter acts on this request (rolled per request, as Envoy's runtime does).
    pub fn enabled(&self) -> bool {
        self.filter_enabled.is_none_or(|f| f.roll())
    }

    pub fn shadow_enabled(&self) -> bool {
        self.shadow_enabled.is_some_and(|f| f.roll())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::r#type::matcher::v3::{
        StringMatcher as PbStringMatcher, string_matcher::MatchPattern,
    };

    #[test]
    fn empty_fields_stay_unset() {
        let p = CorsPolicy::new(
            &PbCorsPolicy {
                allow_origin_string_match: vec![PbStringMatcher {
                    match_pattern: Some(MatchPattern::Prefix("https://a".into())),
                    ignore_case: false,
                }],
                allow_methods: "GET, POST".into(),
                max_age: "60".into(),
                allow_credentials: Some(envoy_types::pb::google::protobuf::BoolValue {
                    value: true,
                }),
                ..Default::default()
            },
            &FieldPath::root(),
        )
        .unwrap();
        assert_eq!(p.allow_methods.unwrap(), "GET, POST");
        assert_eq!(p.allow_headers, None);
        assert_eq!(p.max_age.unwrap(), "60");
        assert_eq!(p.allow_credentials, Some(true));
        assert_eq!(p.forward_not_matching_preflights, None);
        assert!(p.allow_origins[0].matches("https://a.example"));
        assert!(p.filter_enabled.is_none() && p.shadow_enabled.is_none());
    }

    #[test]
    fn bad_matchers_are_named() {
        let e = CorsPolicy::new(
            &PbCorsPolicy {
                allow_origin_string_match: vec![Default::default(), Default::default()],
                ..Default::default()
            },
            &FieldPath::root(),
        )
        .unwrap_err();
        assert_eq!(e.path.to_string(), "allow_origin_string_match[0]");
    }
}
