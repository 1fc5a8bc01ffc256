//! `RouteAction.request_mirror_policies`: where a route sends fire-and-forget copies of its
//! requests (Envoy's shadowing), how often, and what the copy's host becomes. Kept apart from
//! the route action because the copies share nothing with the main request's fate.

use super::fault::Fraction;
use super::{ConvertError, Result};
use envoy_types::pb::envoy::config::route::v3::route_action::RequestMirrorPolicy;
use envoy_types::pb::envoy::r#type::v3::FractionalPercent;
use http::{HeaderName, HeaderValue};
use weft_yaml::FieldPath;

/// Which cluster a copy goes to.
#[derive(Debug, Clone, PartialEq)]
pub enum MirrorTarget {
    Cluster(String),
    /// The first value of this request header names it; no copy when it is absent.
    Header(HeaderName),
}

/// What the copy's `Host`/`:authority` becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum ShadowHost {
    /// `host` → `host-shadow` (before any port), Envoy's default.
    Suffix,
    /// As the main request's.
    Keep,
    Literal(HeaderValue),
}

#[derive(Debug, Clone, PartialEq)]
pub struct MirrorPolicy {
    pub target: MirrorTarget,
    /// `None`: every request is copied (no `runtime_fraction`).
    pub fraction: Option<Fraction>,
    pub host: ShadowHost,
}

impl MirrorPolicy {
    pub fn new(p: &RequestMirrorPolicy, path: &FieldPath) -> Result<Self> {
        let target = match (p.cluster.is_empty(), p.cluster_header.is_empty()) {
            (false, true) => MirrorTarget::Cluster(p.cluster.clone()),
            (true, false) => MirrorTarget::Header(
                HeaderName::from_bytes(p.cluster_header.to_ascii_lowercase().as_bytes()).map_err(
                    |_| {
                        ConvertError::new(
                            &path.field("cluster_header"),
                            format!("`{}` is not a valid header name", p.cluster_header),
                        )
                    },
                )?,
            ),
            (false, false) => {
                return Err(ConvertError::new(
                    path,
                    "only one of cluster and cluster_header can be specified",
                ));
            }
            (true, true) => {
                return Err(ConvertError::new(
                    path,
                    "exactly one of cluster and cluster_header is required",
                ));
            }
        };
        if !p.request_headers_mutations.is_empty() {
            return Err(ConvertError::new(
                &path.field("request_headers_mutations"),
                "is not supported by weft-proxy",
            ));
        }
        let host = if !p.host_rewrite_literal.is_empty() {
            ShadowHost::Literal(HeaderValue::from_str(&p.host_rewrite_literal).map_err(|_| {
                ConvertError::new(
                    &path.field("host_rewrite_literal"),
                    "is not a valid header value",
                )
            })?)
        } else if p.disable_shadow_host_suffix_append {
            ShadowHost::Keep
        } else {
            ShadowHost::Suffix
        };
        // The runtime key names an override in Envoy's runtime layers; with none (as in
        // weft-proxy) the default value applies.
        let fraction = p.runtime_fraction.as_ref().map(|f| {
            let d: FractionalPercent = f.default_value.unwrap_or_default();
            Fraction::new(Some(&d))
        });
        Ok(MirrorPolicy {
            target,
            fraction,
            host,
        })
    }

    /// Whether this request gets a copy (Envoy's `featureEnabled`: a random number modulo
    /// the denominator below the numerator).
    pub fn sampled(&self) -> bool {
        self.fraction.is_none_or(|f| f.roll())
    }

    /// The copy's host for the main request's `host`.
    pub fn host_for(&self, host: &HeaderValue) -> Option<HeaderValue> {
        match &self.host {
            ShadowHost::Keep => None,
            ShadowHost::Literal(h) => Some(h.clone()),
            ShadowHost::Suffix => {
                let h = host.to_str().ok()?;
                let shadowed = match port_start(h) {
                    Some(i) => format!("{}-shadow{}", &h[..i], &h[i..]),
                    None => format!("{h}-shadow"),
                };
                HeaderValue::from_str(&shadowed).ok()
            }
        }
    }
}

/// Where `:port` begins in a host (Envoy's `HeaderUtility::getPortStart`: after the last
/// colon, unless that colon is inside an IPv6 literal's brackets).
fn port_start(h: &str) -> Option<usize> {
    let i = h.rfind(':')?;
    if h.ends_with(']') {
        return None;
    }
    if h.starts_with('[') && !h[..i].ends_with(']') {
        return None;
    }
    // A bare IPv6 address without brackets has no port.
    if h[..i].contains(':') && !h.starts_with('[') {
        return None;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent;

    fn policy(p: RequestMirrorPolicy) -> Result<MirrorPolicy> {
        MirrorPolicy::new(&p, &FieldPath::root())
    }

    #[test]
    fn hosts_get_the_shadow_suffix_before_the_port() {
        let p = policy(RequestMirrorPolicy {
            cluster: "s".into(),
            ..Default::default()
        })
        .unwrap();
        let h = |s: &'static str| p.host_for(&HeaderValue::from_static(s)).unwrap();
        assert_eq!(h("example.com"), "example.com-shadow");
        assert_eq!(h("example.com:8080"), "example.com-shadow:8080");
        assert_eq!(h("[::1]:80"), "[::1]-shadow:80");
        assert_eq!(h("[::1]"), "[::1]-shadow");
    }

    #[test]
    fn suffix_can_be_turned_off_or_replaced() {
        let keep = policy(RequestMirrorPolicy {
            cluster: "s".into(),
            disable_shadow_host_suffix_append: true,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(keep.host_for(&HeaderValue::from_static("a")), None);
        let lit = policy(RequestMirrorPolicy {
            cluster: "s".into(),
            host_rewrite_literal: "b.example".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            lit.host_for(&HeaderValue::from_static("a")).unwrap(),
            "b.example"
        );
    }

    #[test]
    fn fractions_sample_and_absent_means_always() {
        let always = policy(RequestMirrorPolicy {
            cluster: "s".into(),
            ..Default::default()
        })
        .unwrap();
        assert!((0..100).all(|_| always.sampled()));
        let never = policy(RequestMirrorPolicy {
            cluster: "s".into(),
            runtime_fraction: Some(RuntimeFractionalPercent {
                default_value: Some(FractionalPercent {
                    numerator: 0,
                    denominator: 2,
                }),
                runtime_key: String::new(),
            }),
            ..Default::default()
        })
        .unwrap();
        assert!((0..100).all(|_| !never.sampled()));
    }

    #[test]
    fn shadow_clusters_are_validated_with_the_routes() {
        use crate::model::route_action::Forward;
        use envoy_types::pb::envoy::config::route::v3::RouteAction;
        use envoy_types::pb::envoy::config::route::v3::route_action::ClusterSpecifier;
        let f = Forward::new(
            &RouteAction {
                cluster_specifier: Some(ClusterSpecifier::Cluster("main".into())),
                request_mirror_policies: vec![
                    RequestMirrorPolicy {
                        cluster: "shadow".into(),
                        ..Default::default()
                    },
                    RequestMirrorPolicy {
                        cluster_header: "x-shadow".into(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
            &FieldPath::root(),
        )
        .unwrap();
        assert_eq!(f.clusters(), vec!["main", "shadow"]);
        assert_eq!(f.mirrors.len(), 2);
    }

    #[test]
    fn targets_must_be_exactly_one_and_mutations_are_refused() {
        assert!(policy(RequestMirrorPolicy::default()).is_err());
        assert!(
            policy(RequestMirrorPolicy {
                cluster: "a".into(),
                cluster_header: "x-c".into(),
                ..Default::default()
            })
            .is_err()
        );
        let h = policy(RequestMirrorPolicy {
            cluster_header: "X-Shadow".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            h.target,
            MirrorTarget::Header(HeaderName::from_static("x-shadow"))
        );
        let e = policy(RequestMirrorPolicy {
            cluster: "a".into(),
            request_headers_mutations: vec![Default::default()],
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.path.to_string(), "request_headers_mutations");
    }
}
