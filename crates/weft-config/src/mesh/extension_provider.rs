//! `MeshConfig.ExtensionProvider`: named integrations (external authorization, tracers,
//! access loggers, metrics) that AuthorizationPolicy `CUSTOM` actions and Telemetry
//! resources refer to by name.

mod logging;
mod tracing;
mod validate;

#[cfg(test)]
mod tests;

pub use logging::*;
pub use tracing::*;
pub(crate) use validate::validate_extension_providers;

use crate::types::{Duration, is_default};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A named extension provider; exactly one provider field must be set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ExtensionProvider {
    /// Unique name that policies use to refer to this provider.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// External authorizer using Envoy's ext_authz HTTP API (oneof `provider`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envoy_ext_authz_http: Option<EnvoyExternalAuthorizationHttpProvider>,
    /// External authorizer using Envoy's ext_authz gRPC API (oneof `provider`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envoy_ext_authz_grpc: Option<EnvoyExternalAuthorizationGrpcProvider>,
    /// Zipkin tracer (oneof `provider`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zipkin: Option<ZipkinTracingProvider>,
    /// Deprecated Lightstep tracer (oneof `provider`); use `opentelemetry`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lightstep: Option<LightstepTracingProvider>,
    /// Datadog tracer (oneof `provider`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datadog: Option<DatadogTracingProvider>,
    /// Stackdriver tracing, logging and metrics (oneof `provider`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stackdriver: Option<StackdriverProvider>,
    /// Deprecated OpenCensus agent tracer (oneof `provider`); use `opentelemetry`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opencensus: Option<OpenCensusAgentTracingProvider>,
    /// Apache SkyWalking tracer (oneof `provider`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skywalking: Option<SkyWalkingTracingProvider>,
    /// OpenTelemetry tracer (oneof `provider`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opentelemetry: Option<OpenTelemetryTracingProvider>,
    /// Prometheus metrics (oneof `provider`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusMetricsProvider>,
    /// Envoy access log written to a file (oneof `provider`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envoy_file_access_log: Option<EnvoyFileAccessLogProvider>,
    /// Envoy gRPC access log service for HTTP traffic (oneof `provider`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envoy_http_als: Option<EnvoyHttpGrpcV3LogProvider>,
    /// Envoy gRPC access log service for TCP traffic (oneof `provider`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envoy_tcp_als: Option<EnvoyTcpGrpcV3LogProvider>,
    /// Envoy OpenTelemetry access log service (oneof `provider`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envoy_otel_als: Option<EnvoyOpenTelemetryLogProvider>,
}

/// How much of the request body is sent to the external authorizer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EnvoyExternalAuthorizationRequestBody {
    /// Maximum body bytes buffered (413 beyond it unless partial messages are allowed).
    #[serde(skip_serializing_if = "is_default")]
    pub max_request_bytes: u32,
    /// Send a partial body instead of failing with 413.
    #[serde(skip_serializing_if = "is_default")]
    pub allow_partial_message: bool,
    /// Send the body as raw bytes (gRPC provider only).
    #[serde(skip_serializing_if = "is_default")]
    pub pack_as_bytes: bool,
}

/// External authorizer reached over HTTP.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EnvoyExternalAuthorizationHttpProvider {
    /// `[<namespace>/]<hostname>` of the authorization service.
    #[serde(skip_serializing_if = "is_default")]
    pub service: String,
    /// Port of the authorization service.
    #[serde(skip_serializing_if = "is_default")]
    pub port: u32,
    /// How long to wait for the authorizer (default 600s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Prefix added to the path of the check request (must start with `/`).
    #[serde(skip_serializing_if = "is_default")]
    pub path_prefix: String,
    /// Allow the request when the authorizer fails or returns 5xx.
    #[serde(skip_serializing_if = "is_default")]
    pub fail_open: bool,
    /// Recompute the route after the authorizer changed headers.
    #[serde(skip_serializing_if = "is_default")]
    pub clear_route_cache: bool,
    /// HTTP status returned when the authorizer is unreachable (default 403).
    #[serde(skip_serializing_if = "is_default")]
    pub status_on_error: String,
    /// Deprecated; use `includeRequestHeadersInCheck`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include_headers_in_check: Vec<String>,
    /// Request headers sent to the authorizer (exact, `prefix*` or `*suffix`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include_request_headers_in_check: Vec<String>,
    /// Fixed headers added to the check request.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub include_additional_headers_in_check: BTreeMap<String, String>,
    /// Send the request body to the authorizer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_request_body_in_check: Option<EnvoyExternalAuthorizationRequestBody>,
    /// Authorizer response headers copied upstream on allow.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers_to_upstream_on_allow: Vec<String>,
    /// Authorizer response headers sent downstream on deny.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers_to_downstream_on_deny: Vec<String>,
    /// Authorizer response headers sent downstream on allow.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers_to_downstream_on_allow: Vec<String>,
}

/// External authorizer reached over gRPC.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EnvoyExternalAuthorizationGrpcProvider {
    /// `[<namespace>/]<hostname>` of the authorization service.
    #[serde(skip_serializing_if = "is_default")]
    pub service: String,
    /// Port of the authorization service.
    #[serde(skip_serializing_if = "is_default")]
    pub port: u32,
    /// How long to wait for the authorizer (default 600s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Allow the request or connection when the authorizer fails.
    #[serde(skip_serializing_if = "is_default")]
    pub fail_open: bool,
    /// Recompute the route after the authorizer changed headers.
    #[serde(skip_serializing_if = "is_default")]
    pub clear_route_cache: bool,
    /// HTTP status returned when the authorizer is unreachable (default 403).
    #[serde(skip_serializing_if = "is_default")]
    pub status_on_error: String,
    /// Send the request body to the authorizer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_request_body_in_check: Option<EnvoyExternalAuthorizationRequestBody>,
}

/// Prometheus metrics provider (no settings).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PrometheusMetricsProvider {}

/// An HTTP endpoint a provider talks to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HttpService {
    /// Path on the service.
    #[serde(skip_serializing_if = "is_default")]
    pub path: String,
    /// Request timeout (default 3s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Headers added to each request.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HttpHeader>,
}

/// A header a provider adds: a literal value or one read from an environment variable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HttpHeader {
    /// Header name.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Literal header value (oneof `header_value`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Environment variable of the proxy holding the value (oneof `header_value`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_name: Option<String>,
}

/// A gRPC endpoint a provider talks to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GrpcService {
    /// Request timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Metadata added to each stream (e.g. authorization headers).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub initial_metadata: Vec<HttpHeader>,
}
