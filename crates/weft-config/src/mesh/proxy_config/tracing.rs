//! `istio.mesh.v1alpha1.Tracing`: the legacy per-proxy tracer settings
//! (`defaultConfig.tracing`), superseded by extension providers and the Telemetry API but
//! still honored.

use crate::networking::destination_rule::ClientTLSSettings;
use crate::types::is_default;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The tracer a proxy reports spans to, and how spans are sampled and tagged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Tracing {
    /// Zipkin tracer (oneof `tracer`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zipkin: Option<Zipkin>,
    /// Deprecated Lightstep tracer (oneof `tracer`); use OpenTelemetry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lightstep: Option<Lightstep>,
    /// Datadog tracer (oneof `tracer`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datadog: Option<Datadog>,
    /// Stackdriver tracer (oneof `tracer`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stackdriver: Option<Stackdriver>,
    /// OpenCensus agent tracer (oneof `tracer`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_census_agent: Option<OpenCensusAgent>,
    /// Tags added to every span, keyed by tag name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_tags: BTreeMap<String, CustomTag>,
    /// Maximum request path length recorded in the URL tag (default 256).
    #[serde(skip_serializing_if = "is_default")]
    pub max_path_tag_length: u32,
    /// Percentage (0-100) of requests traced when the client did not decide (default 1).
    #[serde(skip_serializing_if = "is_default")]
    pub sampling: f64,
    /// TLS used to reach the tracing backend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_settings: Option<ClientTLSSettings>,
    /// Whether spans carry Istio's own tags (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_istio_tags: Option<bool>,
}

/// Zipkin tracer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Zipkin {
    /// `host:port` of the Zipkin collector; `$(HOST_IP)` is allowed as host.
    #[serde(skip_serializing_if = "is_default")]
    pub address: String,
}

/// Lightstep tracer (deprecated).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Lightstep {
    /// `host:port` of the Lightstep satellite pool.
    #[serde(skip_serializing_if = "is_default")]
    pub address: String,
    /// Lightstep access token.
    #[serde(skip_serializing_if = "is_default")]
    pub access_token: String,
}

/// Datadog tracer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Datadog {
    /// `host:port` of the Datadog agent; `$(HOST_IP)` is allowed as host.
    #[serde(skip_serializing_if = "is_default")]
    pub address: String,
}

/// Stackdriver tracer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Stackdriver {
    /// Print traces to stdout.
    #[serde(skip_serializing_if = "is_default")]
    pub debug: bool,
    /// Maximum attributes per span (default 200).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_number_of_attributes: Option<i64>,
    /// Maximum annotation events per span (default 200).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_number_of_annotations: Option<i64>,
    /// Maximum message events per span (default 200).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_number_of_message_events: Option<i64>,
}

/// Context propagation formats for OpenCensus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TraceContext {
    /// Unspecified; reserved zero value.
    #[default]
    Unspecified,
    /// W3C `traceparent`.
    W3cTraceContext,
    /// gRPC `grpc-trace-bin`.
    GrpcBin,
    /// Google Cloud `X-Cloud-Trace-Context`.
    CloudTraceContext,
    /// Multi-header B3.
    B3,
}

/// OpenCensus agent tracer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OpenCensusAgent {
    /// gRPC address of the agent (`dns://authority/host:port` or `unix:path`).
    #[serde(skip_serializing_if = "is_default")]
    pub address: String,
    /// Propagation formats read and written (default `W3C_TRACE_CONTEXT`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<TraceContext>,
}

/// Where a custom span tag's value comes from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CustomTag {
    /// A fixed value (oneof `type`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub literal: Option<Literal>,
    /// A proxy environment variable (oneof `type`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    /// A request header (oneof `type`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<RequestHeader>,
}

/// A fixed tag value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Literal {
    /// The value.
    #[serde(skip_serializing_if = "is_default")]
    pub value: String,
}

/// A tag value read from the proxy's environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Environment {
    /// Environment variable name.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Value used when the variable is unset; no tag when empty.
    #[serde(skip_serializing_if = "is_default")]
    pub default_value: String,
}

/// A tag value read from a request header.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RequestHeader {
    /// Header name.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Value used when the header is absent; no tag when empty.
    #[serde(skip_serializing_if = "is_default")]
    pub default_value: String,
}
