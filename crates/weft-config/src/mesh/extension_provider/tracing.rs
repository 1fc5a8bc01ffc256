//! Tracing extension providers: Zipkin, Lightstep, Datadog, SkyWalking, Stackdriver,
//! OpenCensus and OpenTelemetry (with its resource detectors and samplers).

use super::{GrpcService, HttpHeader, HttpService};
use crate::types::{Duration, is_default};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Trace context headers a Zipkin tracer reads and writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TraceContextOption {
    /// B3 headers only (the default).
    #[default]
    #[serde(rename = "USE_B3")]
    UseB3,
    /// Prefer B3, fall back to W3C `traceparent`, and write both.
    #[serde(rename = "USE_B3_WITH_W3C_PROPAGATION")]
    UseB3WithW3cPropagation,
}

/// Zipkin tracer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ZipkinTracingProvider {
    /// `[<namespace>/]<hostname>` of the Zipkin collector.
    #[serde(skip_serializing_if = "is_default")]
    pub service: String,
    /// Port of the collector.
    #[serde(skip_serializing_if = "is_default")]
    pub port: u32,
    /// Maximum length of the path tag.
    #[serde(skip_serializing_if = "is_default")]
    pub max_tag_length: u32,
    /// Use 64-bit trace IDs instead of 128-bit ones.
    #[serde(skip_serializing_if = "is_default")]
    pub enable_64bit_trace_id: bool,
    /// Collector endpoint path (default `/api/v2/spans`).
    #[serde(skip_serializing_if = "is_default")]
    pub path: String,
    /// Which trace context headers are propagated.
    #[serde(skip_serializing_if = "is_default")]
    pub trace_context_option: TraceContextOption,
    /// Timeout of span export requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Headers added to span export requests.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HttpHeader>,
}

/// Lightstep tracer (deprecated; Istio generates OpenTelemetry configuration for it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LightstepTracingProvider {
    /// `[<namespace>/]<hostname>` of the Lightstep collector.
    #[serde(skip_serializing_if = "is_default")]
    pub service: String,
    /// Port of the collector.
    #[serde(skip_serializing_if = "is_default")]
    pub port: u32,
    /// Lightstep access token.
    #[serde(skip_serializing_if = "is_default")]
    pub access_token: String,
    /// Maximum length of the path tag.
    #[serde(skip_serializing_if = "is_default")]
    pub max_tag_length: u32,
}

/// Datadog tracer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DatadogTracingProvider {
    /// `[<namespace>/]<hostname>` of the Datadog agent.
    #[serde(skip_serializing_if = "is_default")]
    pub service: String,
    /// Port of the agent.
    #[serde(skip_serializing_if = "is_default")]
    pub port: u32,
    /// Maximum length of the path tag.
    #[serde(skip_serializing_if = "is_default")]
    pub max_tag_length: u32,
}

/// Apache SkyWalking tracer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SkyWalkingTracingProvider {
    /// `[<namespace>/]<hostname>` of the SkyWalking receiver.
    #[serde(skip_serializing_if = "is_default")]
    pub service: String,
    /// Port of the receiver.
    #[serde(skip_serializing_if = "is_default")]
    pub port: u32,
    /// SkyWalking OAP access token.
    #[serde(skip_serializing_if = "is_default")]
    pub access_token: String,
}

/// Stackdriver (Google Cloud Operations) provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct StackdriverProvider {
    /// Deprecated: print traces to stdout.
    #[serde(skip_serializing_if = "is_default")]
    pub debug: bool,
    /// Deprecated: maximum attributes per span.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_number_of_attributes: Option<i64>,
    /// Deprecated: maximum annotation events per span.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_number_of_annotations: Option<i64>,
    /// Deprecated: maximum message events per span.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_number_of_message_events: Option<i64>,
    /// Maximum length of the path tag.
    #[serde(skip_serializing_if = "is_default")]
    pub max_tag_length: u32,
    /// Stackdriver logging settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging: Option<Logging>,
}

/// Stackdriver logging settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Logging {
    /// Log entry labels: tag name to CEL expression.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// Context propagation formats of the OpenCensus tracer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TraceContext {
    /// Reserved zero value.
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

/// OpenCensus agent tracer (deprecated; Envoy no longer ships OpenCensus).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OpenCensusAgentTracingProvider {
    /// `[<namespace>/]<hostname>` of the OpenCensus agent.
    #[serde(skip_serializing_if = "is_default")]
    pub service: String,
    /// Port of the agent.
    #[serde(skip_serializing_if = "is_default")]
    pub port: u32,
    /// Propagation formats read and written (default `W3C_TRACE_CONTEXT`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<TraceContext>,
    /// Maximum length of the path tag.
    #[serde(skip_serializing_if = "is_default")]
    pub max_tag_length: u32,
}

/// How the OpenTelemetry tracer derives service attributes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceAttributeEnrichment {
    /// Istio's canonical service name (the default).
    #[default]
    IstioCanonical,
    /// OpenTelemetry's Kubernetes semantic conventions for `service.*` attributes.
    OtelSemanticConventions,
}

/// OpenTelemetry (OTLP) tracer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OpenTelemetryTracingProvider {
    /// `[<namespace>/]<hostname>` of the OTLP endpoint.
    #[serde(skip_serializing_if = "is_default")]
    pub service: String,
    /// Port of the endpoint.
    #[serde(skip_serializing_if = "is_default")]
    pub port: u32,
    /// Maximum length of the path tag.
    #[serde(skip_serializing_if = "is_default")]
    pub max_tag_length: u32,
    /// Export over OTLP/HTTP with these settings (gRPC when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpService>,
    /// Export over OTLP/gRPC with these settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcService>,
    /// Resource detectors adding attributes to the tracer's resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_detectors: Option<ResourceDetectors>,
    /// Dynatrace adaptive sampler (oneof `sampling`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynatrace_sampler: Option<DynatraceSampler>,
    /// How `service.*` resource attributes are derived.
    #[serde(skip_serializing_if = "is_default")]
    pub service_attribute_enrichment: ServiceAttributeEnrichment,
}

/// Dynatrace adaptive traffic management sampler.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DynatraceSampler {
    /// Dynatrace tenant identifier.
    #[serde(skip_serializing_if = "is_default")]
    pub tenant: String,
    /// Dynatrace cluster identifier.
    #[serde(skip_serializing_if = "is_default")]
    pub cluster_id: i32,
    /// Sampled root spans per minute when the API gives no value (default 1000).
    #[serde(skip_serializing_if = "is_default")]
    pub root_spans_per_minute: u32,
    /// Dynatrace API for the sampling configuration; the exporter's HTTP settings when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_service: Option<DynatraceApi>,
}

/// Dynatrace API endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DynatraceApi {
    /// Hostname of the Dynatrace environment.
    #[serde(skip_serializing_if = "is_default")]
    pub service: String,
    /// Port of the environment.
    #[serde(skip_serializing_if = "is_default")]
    pub port: u32,
    /// Path and headers of the sampling configuration request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpService>,
}

/// OpenTelemetry resource detectors.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ResourceDetectors {
    /// Read attributes from `OTEL_RESOURCE_ATTRIBUTES`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvironmentResourceDetector>,
    /// Read Dynatrace enrichment files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynatrace: Option<DynatraceResourceDetector>,
}

/// Environment resource detector (presence enables it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EnvironmentResourceDetector {}

/// Dynatrace resource detector (presence enables it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DynatraceResourceDetector {}
