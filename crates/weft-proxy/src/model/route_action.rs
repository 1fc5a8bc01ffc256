//! What a matched route does: forward to a cluster (fixed, from a header, or a weighted
//! split) with its rewrites and timeouts, answer with a redirect, or answer directly.

use super::hash_policy::HashPolicy;
use super::header_ops::HeaderOps;
use super::matcher::FullRegex;
use super::mirror::MirrorPolicy;
use super::retry::RetryPolicy;
use super::{ConvertError, Result, timeout};
use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source::Specifier};
use envoy_types::pb::envoy::config::route::v3::{
    DirectResponseAction, RedirectAction, RouteAction, WeightedCluster,
    redirect_action::{PathRewriteSpecifier, RedirectResponseCode, SchemeRewriteSpecifier},
    route_action::{ClusterSpecifier, HostRewriteSpecifier},
    weighted_cluster::cluster_weight::HostRewriteSpecifier as WeightedHostRewrite,
};
use envoy_types::pb::envoy::r#type::matcher::v3::RegexMatchAndSubstitute;
use http::{HeaderName, HeaderValue, StatusCode};
use std::sync::Arc;
use std::time::Duration;
use weft_yaml::FieldPath;

/// Envoy's default route timeout when `timeout` is not set.
pub const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Forward(Box<Forward>),
    Redirect(Box<Redirect>),
    Direct(Direct),
}

#[derive(Debug, Clone, PartialEq)]
pub struct WeightedTarget {
    pub cluster: String,
    pub weight: u32,
    pub request_ops: HeaderOps,
    pub response_ops: HeaderOps,
    pub host_rewrite: Option<HeaderValue>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Cluster(String),
    Header(HeaderName),
    Weighted {
        targets: Vec<WeightedTarget>,
        total: u64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum HostRewrite {
    Keep,
    Literal(HeaderValue),
    /// The chosen upstream host's hostname (DNS clusters, or an endpoint's `hostname`).
    Auto,
    Header(HeaderName),
}

/// A regex substitution in Envoy's form (`\1` back-references), held in the regex crate's.
#[derive(Debug, Clone, PartialEq)]
pub struct Substitution {
    pub pattern: FullRegex,
    pub replacement: String,
}

impl Substitution {
    pub fn new(m: &RegexMatchAndSubstitute, path: &FieldPath) -> Result<Self> {
        let Some(pattern) = &m.pattern else {
            return Err(ConvertError::new(&path.field("pattern"), "is required"));
        };
        let pattern = FullRegex::new(pattern, &path.field("pattern"))?;
        // RE2 writes groups as `\1`; the regex crate as `${1}`; a literal `$` must be doubled.
        let mut replacement = String::new();
        let mut chars = m.substitution.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '$' => replacement.push_str("$$"),
                '\\' => match chars.peek() {
                    Some(d) if d.is_ascii_digit() => {
                        replacement.push_str(&format!("${{{d}}}"));
                        chars.next();
                    }
                    Some('\\') => {
                        replacement.push('\\');
                        chars.next();
                    }
                    _ => {
                        return Err(ConvertError::new(
                            &path.field("substitution"),
                            "a `\\` must be followed by a group number or another `\\`",
                        ));
                    }
                },
                c => replacement.push(c),
            }
        }
        Ok(Substitution {
            pattern,
            replacement,
        })
    }

    /// Replaces every match, as RE2's `GlobalReplace` does.
    pub fn apply(&self, input: &str) -> String {
        self.pattern
            .unanchored
            .replace_all(input, self.replacement.as_str())
            .into_owned()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Forward {
    pub target: Target,
    pub not_found_status: StatusCode,
    pub prefix_rewrite: Option<String>,
    pub regex_rewrite: Option<Substitution>,
    pub host_rewrite: HostRewrite,
    pub append_x_forwarded_host: bool,
    /// `None`: no timeout (`timeout: 0s`).
    pub timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub max_stream_duration: Option<Duration>,
    /// The route uses Envoy's stream-duration model (`max_stream_duration` is set), which
    /// turns the route timeout off.
    pub max_stream_duration_set: bool,
    /// `Some(None)`: honour `grpc-timeout` without a cap; `Some(Some(d))`: capped at `d`.
    pub grpc_timeout_max: Option<Option<Duration>>,
    /// Per-route `upgrade_configs` overriding the connection manager's.
    pub upgrades: Vec<(String, bool)>,
    /// The route's retry policy, else its virtual host's.
    pub retry: Option<Arc<RetryPolicy>>,
    /// What the hashing balancers hash the request by (empty: a random hash).
    pub hash_policy: Vec<HashPolicy>,
    /// `request_mirror_policies`: where copies of the request go.
    pub mirrors: Vec<MirrorPolicy>,
}

impl Forward {
    pub fn new(a: &RouteAction, path: &FieldPath) -> Result<Self> {
        let target = match &a.cluster_specifier {
            Some(ClusterSpecifier::Cluster(c)) => {
                if c.is_empty() {
                    return Err(ConvertError::new(
                        &path.field("cluster"),
                        "must not be empty",
                    ));
                }
                Target::Cluster(c.clone())
            }
            Some(ClusterSpecifier::ClusterHeader(h)) => Target::Header(
                HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()).map_err(|_| {
                    ConvertError::new(
                        &path.field("cluster_header"),
                        format!("`{h}` is not a valid header name"),
                    )
                })?,
            ),
            Some(ClusterSpecifier::WeightedClusters(w)) => {
                weighted(w, &path.field("weighted_clusters"))?
            }
            _ => {
                return Err(ConvertError::new(
                    path,
                    "one of cluster, cluster_header or weighted_clusters is required",
                ));
            }
        };
        let not_found_status = match a.cluster_not_found_response_code {
            0 => StatusCode::SERVICE_UNAVAILABLE,
            1 => StatusCode::NOT_FOUND,
            2 => StatusCode::INTERNAL_SERVER_ERROR,
            n => {
                return Err(ConvertError::new(
                    &path.field("cluster_not_found_response_code"),
                    format!("unknown code {n}"),
                ));
            }
        };
        let host_rewrite = match &a.host_rewrite_specifier {
            None => HostRewrite::Keep,
            Some(HostRewriteSpecifier::HostRewriteLiteral(h)) => {
                HostRewrite::Literal(HeaderValue::from_str(h).map_err(|_| {
                    ConvertError::new(&path.field("host_rewrite_literal"), "invalid host")
                })?)
            }
            Some(HostRewriteSpecifier::AutoHostRewrite(b)) => {
                if b.value {
                    HostRewrite::Auto
                } else {
                    HostRewrite::Keep
                }
            }
            Some(HostRewriteSpecifier::HostRewriteHeader(h)) => HostRewrite::Header(
                HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()).map_err(|_| {
                    ConvertError::new(&path.field("host_rewrite_header"), "invalid header name")
                })?,
            ),
            Some(_) => {
                return Err(ConvertError::new(
                    &path.field("host_rewrite_path_regex"),
                    "is not supported by weft-proxy",
                ));
            }
        };
        let route_timeout = match &a.timeout {
            None => Some(DEFAULT_ROUTE_TIMEOUT),
            Some(t) => timeout(Some(t), &path.field("timeout"))?,
        };
        let (max_stream_duration, grpc_timeout_max) = match &a.max_stream_duration {
            None => (None, None),
            Some(m) => {
                let p = path.field("max_stream_duration");
                let msd = timeout(
                    m.max_stream_duration.as_ref(),
                    &p.field("max_stream_duration"),
                )?;
                let grpc = match &m.grpc_timeout_header_max {
                    None => None,
                    Some(d) => Some(timeout(Some(d), &p.field("grpc_timeout_header_max"))?),
                };
                if m.grpc_timeout_header_offset.is_some() {
                    return Err(ConvertError::new(
                        &p.field("grpc_timeout_header_offset"),
                        "is not supported by weft-proxy",
                    ));
                }
                (msd, grpc)
            }
        };
        let upgrades = a
            .upgrade_configs
            .iter()
            .enumerate()
            .map(|(i, u)| {
                if u.connect_config.is_some() {
                    return Err(ConvertError::new(
                        &path
                            .field("upgrade_configs")
                            .index(i)
                            .field("connect_config"),
                        "CONNECT is not supported by weft-proxy",
                    ));
                }
                Ok((
                    u.upgrade_type.to_ascii_lowercase(),
                    u.enabled.is_none_or(|b| b.value),
                ))
            })
            .collect::<Result<_>>()?;
        Ok(Forward {
            target,
            not_found_status,
            prefix_rewrite: (!a.prefix_rewrite.is_empty()).then(|| a.prefix_rewrite.clone()),
            regex_rewrite: a
                .regex_rewrite
                .as_ref()
                .map(|r| Substitution::new(r, &path.field("regex_rewrite")))
                .transpose()?,
            host_rewrite,
            append_x_forwarded_host: a.append_x_forwarded_host,
            timeout: route_timeout,
            idle_timeout: timeout(a.idle_timeout.as_ref(), &path.field("idle_timeout"))?,
            max_stream_duration,
            max_stream_duration_set: a.max_stream_duration.is_some(),
            grpc_timeout_max,
            upgrades,
            hash_policy: a
                .hash_policy
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    HashPolicy::new(p, &path.field("hash_policy").index(i)).transpose()
                })
                .collect::<Result<_>>()?,
            retry: a
                .retry_policy
                .as_ref()
                .map(|r| RetryPolicy::new(r, &path.field("retry_policy")).map(Arc::new))
                .transpose()?,
            mirrors: a
                .request_mirror_policies
                .iter()
                .enumerate()
                .map(|(i, p)| MirrorPolicy::new(p, &path.field("request_mirror_policies").index(i)))
                .collect::<Result<_>>()?,
        })
    }

    /// Every cluster name this action can send to (`None` for names read from a header).
    pub fn clusters(&self) -> Vec<&str> {
        let mut out = match &self.target {
            Target::Cluster(c) => vec![c.as_str()],
            Target::Header(_) => vec![],
            Target::Weighted { targets, .. } => {
                targets.iter().map(|t| t.cluster.as_str()).collect()
            }
        };
        // Envoy validates the shadow clusters of a route like its own.
        out.extend(self.mirrors.iter().filter_map(|m| match &m.target {
            super::mirror::MirrorTarget::Cluster(c) => Some(c.as_str()),
            super::mirror::MirrorTarget::Header(_) => None,
        }));
        out
    }
}

fn weighted(w: &WeightedCluster, path: &FieldPath) -> Result<Target> {
    if w.clusters.is_empty() {
        return Err(ConvertError::new(
            &path.field("clusters"),
            "must not be empty",
        ));
    }
    let mut targets = Vec::with_capacity(w.clusters.len());
    let mut total: u64 = 0;
    for (i, c) in w.clusters.iter().enumerate() {
        let p = path.field("clusters").index(i);
        if c.name.is_empty() {
            return Err(ConvertError::new(
                &p.field("name"),
                "must not be empty (cluster_header is not supported by weft-proxy)",
            ));
        }
        let weight = c.weight.map_or(0, |w| w.value);
        total += u64::from(weight);
        targets.push(WeightedTarget {
            cluster: c.name.clone(),
            weight,
            request_ops: HeaderOps::new(
                &c.request_headers_to_add,
                &c.request_headers_to_remove,
                &p.field("request_headers_to_add"),
                &p.field("request_headers_to_remove"),
            )?,
            response_ops: HeaderOps::new(
                &c.response_headers_to_add,
                &c.response_headers_to_remove,
                &p.field("response_headers_to_add"),
                &p.field("response_headers_to_remove"),
            )?,
            host_rewrite: match &c.host_rewrite_specifier {
                None => None,
                Some(WeightedHostRewrite::HostRewriteLiteral(h)) => {
                    Some(HeaderValue::from_str(h).map_err(|_| {
                        ConvertError::new(&p.field("host_rewrite_literal"), "invalid host")
                    })?)
                }
            },
        });
    }
    if let Some(t) = w.total_weight
        && u64::from(t.value) != total
    {
        return Err(ConvertError::new(
            &path.field("total_weight"),
            format!(
                "the cluster weights add up to {total}, not the total_weight {}",
                t.value
            ),
        ));
    }
    if total == 0 {
        return Err(ConvertError::new(
            &path.field("clusters"),
            "the sum of the cluster weights must be greater than 0",
        ));
    }
    Ok(Target::Weighted { targets, total })
}

#[derive(Debug, Clone, PartialEq)]
pub enum PathRedirect {
    Keep,
    Path(String),
    Prefix(String),
    Regex(Substitution),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Redirect {
    /// `None`: keep the request's scheme.
    pub scheme: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub path: PathRedirect,
    pub status: StatusCode,
    pub strip_query: bool,
}

impl Redirect {
    pub fn new(r: &RedirectAction, path: &FieldPath) -> Result<Self> {
        let scheme = match &r.scheme_rewrite_specifier {
            Some(SchemeRewriteSpecifier::HttpsRedirect(true)) => Some("https".to_string()),
            Some(SchemeRewriteSpecifier::SchemeRedirect(s)) if !s.is_empty() => {
                Some(s.to_ascii_lowercase())
            }
            _ => None,
        };
        let status = match RedirectResponseCode::try_from(r.response_code) {
            Ok(RedirectResponseCode::MovedPermanently) => StatusCode::MOVED_PERMANENTLY,
            Ok(RedirectResponseCode::Found) => StatusCode::FOUND,
            Ok(RedirectResponseCode::SeeOther) => StatusCode::SEE_OTHER,
            Ok(RedirectResponseCode::TemporaryRedirect) => StatusCode::TEMPORARY_REDIRECT,
            Ok(RedirectResponseCode::PermanentRedirect) => StatusCode::PERMANENT_REDIRECT,
            Err(_) => {
                return Err(ConvertError::new(
                    &path.field("response_code"),
                    format!("unknown redirect code {}", r.response_code),
                ));
            }
        };
        let port = match r.port_redirect {
            0 => None,
            p => Some(u16::try_from(p).map_err(|_| {
                ConvertError::new(&path.field("port_redirect"), "must be at most 65535")
            })?),
        };
        let path_redirect = match &r.path_rewrite_specifier {
            None => PathRedirect::Keep,
            Some(PathRewriteSpecifier::PathRedirect(p)) => PathRedirect::Path(p.clone()),
            Some(PathRewriteSpecifier::PrefixRewrite(p)) => PathRedirect::Prefix(p.clone()),
            Some(PathRewriteSpecifier::RegexRewrite(re)) => {
                PathRedirect::Regex(Substitution::new(re, &path.field("regex_rewrite"))?)
            }
            Some(PathRewriteSpecifier::PathRewrite(_)) => {
                return Err(ConvertError::new(
                    &path.field("path_rewrite"),
                    "is not supported by weft-proxy",
                ));
            }
        };
        Ok(Redirect {
            scheme,
            host: (!r.host_redirect.is_empty()).then(|| r.host_redirect.clone()),
            port,
            path: path_redirect,
            status,
            strip_query: r.strip_query,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Direct {
    pub status: StatusCode,
    pub body: Option<bytes::Bytes>,
}

/// Envoy's default `max_direct_response_body_size_bytes`.
pub const DEFAULT_MAX_DIRECT_BODY: usize = 4096;

impl Direct {
    pub fn new(d: &DirectResponseAction, max_body: usize, path: &FieldPath) -> Result<Self> {
        let status = u16::try_from(d.status)
            .ok()
            .filter(|s| (200..600).contains(s))
            .and_then(|s| StatusCode::from_u16(s).ok())
            .ok_or_else(|| {
                ConvertError::new(
                    &path.field("status"),
                    format!("must be in [200, 600) (is {})", d.status),
                )
            })?;
        let body = d
            .body
            .as_ref()
            .map(|b| data_source(b, &path.field("body")))
            .transpose()?;
        if let Some(b) = &body
            && b.len() > max_body
        {
            return Err(ConvertError::new(
                &path.field("body"),
                format!(
                    "response body size is {} bytes; maximum is {max_body}",
                    b.len()
                ),
            ));
        }
        Ok(Direct { status, body })
    }
}

/// The bytes of a `DataSource` (inline, or a file read once at conversion).
pub fn data_source(d: &DataSource, path: &FieldPath) -> Result<bytes::Bytes> {
    match &d.specifier {
        Some(Specifier::InlineString(s)) => Ok(bytes::Bytes::from(s.clone())),
        Some(Specifier::InlineBytes(b)) => Ok(bytes::Bytes::from(b.clone())),
        Some(Specifier::Filename(f)) => std::fs::read(f).map(bytes::Bytes::from).map_err(|e| {
            ConvertError::new(&path.field("filename"), format!("cannot read `{f}`: {e}"))
        }),
        Some(Specifier::EnvironmentVariable(v)) => {
            std::env::var(v).map(bytes::Bytes::from).map_err(|_| {
                ConvertError::new(
                    &path.field("environment_variable"),
                    format!("environment variable `{v}` is not set"),
                )
            })
        }
        None => Err(ConvertError::new(
            path,
            "one of inline_string, inline_bytes, filename or environment_variable is required",
        )),
    }
}
