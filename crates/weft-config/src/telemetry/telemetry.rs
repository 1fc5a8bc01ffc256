//! `telemetry.istio.io` Telemetry: per mesh, namespace or workload, which providers receive
//! traces, metrics and access logs, and how (sampling, custom tags, metric tag overrides,
//! log filters). Types follow `telemetry/v1alpha1/telemetry.proto` (served as v1alpha1 and
//! v1); `validate` holds Istio's `ValidateTelemetry` rules and the CRD's CEL rules.
#![allow(clippy::upper_case_acronyms, clippy::module_inception)]

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_istio;
mod validate;

use crate::selector::{PolicyTargetReference, WorkloadSelector};
use crate::types::{Duration, is_default};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Telemetry configuration for the selected workloads; lower levels (namespace, workload)
/// override the mesh level field by field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Telemetry {
    /// Workloads (by label) the resource applies to; unset means the whole namespace (or
    /// the mesh, in the root namespace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<WorkloadSelector>,
    /// A single Gateway API resource the configuration attaches to instead of a selector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<PolicyTargetReference>,
    /// Resources (Gateway, Service, ServiceEntry, GatewayClass) the configuration attaches to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub target_refs: Vec<PolicyTargetReference>,
    /// Tracing overrides; entries are applied in order, later fields overriding earlier ones.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tracing: Vec<Tracing>,
    /// Metrics overrides, applied in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metrics>,
    /// Access logging overrides, applied in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub access_logging: Vec<AccessLogging>,
}

/// Tracing behavior: provider, sampling rate, span reporting and custom span tags.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Tracing {
    /// Restricts this entry to client and/or server traffic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#match: Option<TracingSelector>,
    /// Tracing providers (MeshConfig extension providers); only the first one is used.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ProviderRef>,
    /// Percentage (0-100) of requests sampled when no upstream sampling decision exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub random_sampling_percentage: Option<f64>,
    /// Stop reporting spans (context propagation and sampling are unaffected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_span_reporting: Option<bool>,
    /// Extra tags added to every span, by tag name; replaces tags set by parent levels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_tags: BTreeMap<String, CustomTag>,
    /// Whether Envoy samples based on the request ID (true by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_request_id_for_trace_sampling: Option<bool>,
    /// Whether spans carry Istio-specific tags (true by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_istio_tags: Option<bool>,
}

/// `Tracing.TracingSelector`: traffic direction a tracing entry applies to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TracingSelector {
    /// Client (outbound), server (inbound) or both.
    #[serde(skip_serializing_if = "is_default")]
    pub mode: WorkloadMode,
}

/// `Tracing.CustomTag`: where a span tag's value comes from (set exactly one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CustomTag {
    /// A fixed value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub literal: Option<Literal>,
    /// The value of an environment variable of the proxy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    /// The value of a request header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<RequestHeader>,
}

/// `Tracing.Literal`: a fixed tag value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Literal {
    /// The tag value.
    #[serde(skip_serializing_if = "is_default")]
    pub value: String,
}

/// `Tracing.Environment`: a tag value read from the proxy's environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Environment {
    /// Environment variable name.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Value used when the variable is not set.
    #[serde(skip_serializing_if = "is_default")]
    pub default_value: String,
}

/// `Tracing.RequestHeader`: a tag value read from a request header.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RequestHeader {
    /// Header name.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Value used when the header is absent.
    #[serde(skip_serializing_if = "is_default")]
    pub default_value: String,
}

/// Names a telemetry provider defined in MeshConfig `extensionProviders`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ProviderRef {
    /// The provider's name.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
}

/// Metrics behavior: providers, per-metric overrides and the reporting interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Metrics {
    /// Metrics providers; unset uses MeshConfig's default metrics providers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ProviderRef>,
    /// Overrides applied in order (put general matches before specific ones).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<MetricsOverrides>,
    /// Interval between metric reports for long-lived (TCP) connections; default 5s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reporting_interval: Option<Duration>,
}

/// Traffic direction relative to the workload: CLIENT is outbound, SERVER inbound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkloadMode {
    /// Both directions.
    #[default]
    ClientAndServer,
    /// Traffic the workload sends.
    Client,
    /// Traffic the workload receives.
    Server,
}

/// Selects the metrics (and direction) a metrics override applies to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MetricSelector {
    /// One of Istio's standard metrics (oneof with `customMetric`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<IstioMetric>,
    /// Any other metric, by name (oneof with `metric`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_metric: Option<String>,
    /// Client and/or server metrics.
    #[serde(skip_serializing_if = "is_default")]
    pub mode: WorkloadMode,
}

/// `MetricSelector.IstioMetric`: Istio's standard metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IstioMetric {
    /// Every standard metric.
    #[default]
    AllMetrics,
    /// `istio_requests_total`.
    RequestCount,
    /// `istio_request_duration_milliseconds`.
    RequestDuration,
    /// `istio_request_bytes`.
    RequestSize,
    /// `istio_response_bytes`.
    ResponseSize,
    /// `istio_tcp_connections_opened_total`.
    TcpOpenedConnections,
    /// `istio_tcp_connections_closed_total`.
    TcpClosedConnections,
    /// `istio_tcp_sent_bytes_total`.
    TcpSentBytes,
    /// `istio_tcp_received_bytes_total`.
    TcpReceivedBytes,
    /// `istio_request_messages_total` (gRPC messages sent by clients).
    GrpcRequestMessages,
    /// `istio_response_messages_total` (gRPC messages sent by servers).
    GrpcResponseMessages,
}

/// Changes to how the selected metrics are generated: disable them or change their tags.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MetricsOverrides {
    /// Which metrics and direction; unset means all metrics in both directions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#match: Option<MetricSelector>,
    /// `true` turns the metrics off; `false` turns them back on after a parent disabled them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Tag (label) changes, by tag name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tag_overrides: BTreeMap<String, TagOverride>,
}

/// `MetricsOverrides.TagOverride`: add, change or remove one metric tag.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TagOverride {
    /// UPSERT (default) sets the tag to `value`; REMOVE drops it.
    #[serde(skip_serializing_if = "is_default")]
    pub operation: Operation,
    /// The tag value: an expression over request attributes (e.g. `request.host`); required
    /// for UPSERT, not allowed for REMOVE.
    #[serde(skip_serializing_if = "is_default")]
    pub value: String,
}

/// `MetricsOverrides.TagOverride.Operation`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Operation {
    /// Insert or update the tag with `value`.
    #[default]
    Upsert,
    /// Leave the tag out of the metric.
    Remove,
}

/// Access logging behavior: providers, on/off and a filter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AccessLogging {
    /// Restricts this entry to client and/or server traffic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#match: Option<LogSelector>,
    /// Logging providers; unset uses MeshConfig's default access logging providers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ProviderRef>,
    /// `true` turns access logging off for these providers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Logs only requests/connections for which the expression holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
}

/// `AccessLogging.LogSelector`: traffic direction an access logging entry applies to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LogSelector {
    /// Client (outbound), server (inbound) or both.
    #[serde(skip_serializing_if = "is_default")]
    pub mode: WorkloadMode,
}

/// `AccessLogging.Filter`: which requests/connections are logged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Filter {
    /// A CEL expression over Envoy attributes, e.g. `response.code >= 400`.
    #[serde(skip_serializing_if = "is_default")]
    pub expression: String,
}
