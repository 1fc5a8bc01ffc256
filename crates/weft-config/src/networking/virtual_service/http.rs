//! The HTTP half of `virtual_service.proto`: HTTP routes, their matches and the actions a
//! route can take (forward, redirect, respond directly, rewrite, retry, inject faults,
//! mirror, CORS).

use super::{Delegate, Destination, Headers, Percent, StringMatch};
use crate::types::{Duration, is_default};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Match conditions and actions for HTTP/1.1, HTTP/2 and gRPC traffic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HTTPRoute {
    /// Name for debugging and access logs (joined with the match's name).
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Match conditions: OR of the blocks, AND of the conditions inside one block.
    #[serde(rename = "match", skip_serializing_if = "Vec::is_empty")]
    pub r#match: Vec<HTTPMatchRequest>,
    /// Weighted destinations requests are forwarded to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<HTTPRouteDestination>,
    /// Answer with an HTTP redirect instead of forwarding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect: Option<HTTPRedirect>,
    /// Answer with a fixed response instead of forwarding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct_response: Option<HTTPDirectResponse>,
    /// Hand routing over to another (delegate) VirtualService; only without route/redirect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delegate: Option<Delegate>,
    /// Rewrite the URI and/or authority before forwarding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<HTTPRewrite>,
    /// Timeout for the whole request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Retry policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<HTTPRetry>,
    /// Client-side fault injection (delays and aborts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<HTTPFaultInjection>,
    /// A destination that receives a copy of the traffic (responses are ignored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<Destination>,
    /// Several mirror destinations, each with its own percentage; excludes `mirror`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<HTTPMirrorPolicy>,
    /// Deprecated integer share of traffic to mirror; use `mirrorPercentage`.
    #[serde(
        rename = "mirrorPercent",
        alias = "mirror_percent",
        skip_serializing_if = "Option::is_none"
    )]
    pub mirror_percent: Option<u32>,
    /// Share of traffic sent to `mirror` (default 100%).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror_percentage: Option<Percent>,
    /// Cross-Origin Resource Sharing policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors_policy: Option<CorsPolicy>,
    /// Header manipulation for all destinations of this route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Headers>,
}

impl HTTPRoute {
    /// A root route of a delegation chain (has `delegate`).
    pub fn is_delegating(&self) -> bool {
        self.delegate.is_some()
    }

    /// True when the route matches every request (no match blocks).
    pub fn is_catch_all(&self) -> bool {
        self.r#match.is_empty()
    }
}

/// Conditions on an HTTP request; all set conditions must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HTTPMatchRequest {
    /// Name for access logs (joined with the route's name).
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// URI (path) match; an empty prefix is allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<StringMatch>,
    /// URI scheme match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<StringMatch>,
    /// HTTP method match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<StringMatch>,
    /// Authority (Host) match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authority: Option<StringMatch>,
    /// Request header matches by name; an empty match tests presence.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, StringMatch>,
    /// Destination port on the host.
    #[serde(skip_serializing_if = "is_default")]
    pub port: u32,
    /// Labels the client workload must have.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub source_labels: BTreeMap<String, String>,
    /// Gateways the match applies on, overriding the VirtualService's `gateways`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    /// Query parameter matches by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub query_params: BTreeMap<String, StringMatch>,
    /// Match the URI case-insensitively (exact and prefix only).
    #[serde(skip_serializing_if = "is_default")]
    pub ignore_uri_case: bool,
    /// Header matches that must NOT hold.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub without_headers: BTreeMap<String, StringMatch>,
    /// Namespace the client workload must be in.
    #[serde(skip_serializing_if = "is_default")]
    pub source_namespace: String,
    /// Prefix for the statistics Envoy emits for this route.
    #[serde(skip_serializing_if = "is_default")]
    pub stat_prefix: String,
}

/// A weighted HTTP destination with its own header manipulation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HTTPRouteDestination {
    /// The service instances requests are forwarded to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
    /// Relative share of traffic for this destination.
    #[serde(skip_serializing_if = "is_default")]
    pub weight: i32,
    /// Header manipulation applied only for this destination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Headers>,
}

/// How a redirect chooses its port when no explicit `port` is given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RedirectPortSelection {
    /// 80 for http, 443 for https.
    #[default]
    FromProtocolDefault,
    /// The port the request arrived on.
    FromRequestPort,
}

/// Answer a request with a redirect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HTTPRedirect {
    /// Replacement for the URL path (the whole path, ignoring prefix matches).
    #[serde(skip_serializing_if = "is_default")]
    pub uri: String,
    /// Replacement for the authority/host.
    #[serde(skip_serializing_if = "is_default")]
    pub authority: String,
    /// Replacement port (oneof with `derivePort`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Derive the port dynamically (oneof with `port`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub derive_port: Option<RedirectPortSelection>,
    /// Replacement scheme (`http` or `https`).
    #[serde(skip_serializing_if = "is_default")]
    pub scheme: String,
    /// Redirect status code (default 301).
    #[serde(skip_serializing_if = "is_default")]
    pub redirect_code: u32,
}

/// Answer a request with a fixed status and body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HTTPDirectResponse {
    /// Response status code.
    #[serde(skip_serializing_if = "is_default")]
    pub status: u32,
    /// Response body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<HTTPBody>,
}

/// A response body given as text or as base64 bytes (exactly one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HTTPBody {
    /// Body as a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub string: Option<String>,
    /// Body as base64-encoded bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<String>,
}

impl HTTPBody {
    /// Size of the body in bytes (base64 decoded length for `bytes`).
    pub fn len(&self) -> usize {
        if let Some(s) = &self.string {
            s.len()
        } else if let Some(b) = &self.bytes {
            let data = b.trim_end_matches('=').len();
            data * 3 / 4
        } else {
            0
        }
    }

    /// True if neither form carries any content.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Rewrite of the URI and/or authority before forwarding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HTTPRewrite {
    /// Replacement for the matched path prefix (or whole path for exact matches).
    #[serde(skip_serializing_if = "is_default")]
    pub uri: String,
    /// Replacement for the Authority/Host header.
    #[serde(skip_serializing_if = "is_default")]
    pub authority: String,
    /// Regex-based path rewrite; excludes `uri`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri_regex_rewrite: Option<RegexRewrite>,
}

/// Regex match and substitution applied to the path.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RegexRewrite {
    /// RE2 regex selecting the parts of the path to replace.
    #[serde(rename = "match", skip_serializing_if = "is_default")]
    pub r#match: String,
    /// Replacement text; may reference capture groups (`\1`).
    #[serde(skip_serializing_if = "is_default")]
    pub rewrite: String,
}

/// Retry policy for HTTP requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HTTPRetry {
    /// Number of retries; 0 disables retries.
    #[serde(skip_serializing_if = "is_default")]
    pub attempts: i32,
    /// Timeout of each attempt (initial call and retries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<Duration>,
    /// Comma-separated retry conditions (Envoy retry-on policies or status codes).
    #[serde(skip_serializing_if = "is_default")]
    pub retry_on: String,
    /// Whether retries may go to other localities.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_remote_localities: Option<bool>,
    /// Whether retries avoid hosts already tried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_ignore_previous_hosts: Option<bool>,
    /// Minimum time between retry attempts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Duration>,
}

impl HTTPRetry {
    /// The individual `retryOn` conditions, untrimmed as Istio reads them, empty ones skipped.
    pub fn retry_on_policies(&self) -> impl Iterator<Item = &str> {
        self.retry_on.split(',').filter(|s| !s.is_empty())
    }
}

/// What to do with preflight requests whose origin is not allowed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UnmatchedPreflights {
    /// Not set: Envoy's default (forward).
    #[default]
    Unspecified,
    /// Forward them to the upstream.
    Forward,
    /// Answer them without CORS headers instead of forwarding.
    Ignore,
}

/// Cross-Origin Resource Sharing policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CorsPolicy {
    /// Deprecated exact origins; use `allowOrigins`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_origin: Vec<String>,
    /// Origin patterns allowed to make cross-origin requests.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_origins: Vec<StringMatch>,
    /// Methods allowed (`Access-Control-Allow-Methods`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_methods: Vec<String>,
    /// Request headers allowed (`Access-Control-Allow-Headers`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_headers: Vec<String>,
    /// Response headers browsers may read (`Access-Control-Expose-Headers`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    /// How long preflight results may be cached (whole seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<Duration>,
    /// Whether credentials may be sent on the actual request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<bool>,
    /// Handling of preflights that match no allowed origin.
    #[serde(skip_serializing_if = "is_default")]
    pub unmatched_preflights: UnmatchedPreflights,
}

/// Client-side fault injection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HTTPFaultInjection {
    /// Delay requests before forwarding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<Delay>,
    /// Abort requests with an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort: Option<Abort>,
}

/// Injected delay.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Delay {
    /// Deprecated integer percentage of delayed requests; use `percentage`.
    #[serde(skip_serializing_if = "is_default")]
    pub percent: i32,
    /// Fixed delay before forwarding (oneof with `exponentialDelay`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_delay: Option<Duration>,
    /// Exponential delay (not supported by Istio yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exponential_delay: Option<Duration>,
    /// Share of requests delayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentage: Option<Percent>,
}

/// Injected abort.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Abort {
    /// HTTP status returned (oneof error type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<i32>,
    /// gRPC status name returned, e.g. `UNAVAILABLE` (oneof error type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_status: Option<String>,
    /// HTTP/2 error (oneof error type; not supported by Istio yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http2_error: Option<String>,
    /// Share of requests aborted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentage: Option<Percent>,
}

/// One mirror destination with its own share of traffic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HTTPMirrorPolicy {
    /// Where the copy of the traffic goes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
    /// Share of traffic mirrored (default 100%).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentage: Option<Percent>,
}
