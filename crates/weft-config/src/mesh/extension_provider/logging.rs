//! Access logging extension providers: file, gRPC access log service (HTTP and TCP) and
//! OpenTelemetry logs.

use crate::types::{Struct, is_default};
use serde::{Deserialize, Serialize};

/// Envoy access log written to a local file or standard stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EnvoyFileAccessLogProvider {
    /// File to write to (default `/dev/stdout`).
    #[serde(skip_serializing_if = "is_default")]
    pub path: String,
    /// Log line format; Envoy's default when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<EnvoyFileAccessLogProviderLogFormat>,
}

/// Format of a file access log: text or JSON labels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EnvoyFileAccessLogProviderLogFormat {
    /// Text format with Envoy command operators (oneof `log_format`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// JSON object of command operators (oneof `log_format`); `{}` is Envoy's default JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Struct>,
    /// Leave out fields whose value is empty.
    #[serde(skip_serializing_if = "is_default")]
    pub omit_empty_values: bool,
}

/// Envoy gRPC access log service for HTTP traffic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EnvoyHttpGrpcV3LogProvider {
    /// `[<namespace>/]<hostname>` of the access log service.
    #[serde(skip_serializing_if = "is_default")]
    pub service: String,
    /// Port of the service.
    #[serde(skip_serializing_if = "is_default")]
    pub port: u32,
    /// Friendly name of the log.
    #[serde(skip_serializing_if = "is_default")]
    pub log_name: String,
    /// Extra filter state objects to log.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filter_state_objects_to_log: Vec<String>,
    /// Extra request headers to log.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub additional_request_headers_to_log: Vec<String>,
    /// Extra response headers to log.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub additional_response_headers_to_log: Vec<String>,
    /// Extra response trailers to log.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub additional_response_trailers_to_log: Vec<String>,
}

/// Envoy gRPC access log service for TCP traffic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EnvoyTcpGrpcV3LogProvider {
    /// `[<namespace>/]<hostname>` of the access log service.
    #[serde(skip_serializing_if = "is_default")]
    pub service: String,
    /// Port of the service.
    #[serde(skip_serializing_if = "is_default")]
    pub port: u32,
    /// Friendly name of the log.
    #[serde(skip_serializing_if = "is_default")]
    pub log_name: String,
    /// Extra filter state objects to log.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filter_state_objects_to_log: Vec<String>,
}

/// Envoy OpenTelemetry (gRPC) access log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EnvoyOpenTelemetryLogProvider {
    /// `[<namespace>/]<hostname>` of the OpenTelemetry collector.
    #[serde(skip_serializing_if = "is_default")]
    pub service: String,
    /// Port of the collector.
    #[serde(skip_serializing_if = "is_default")]
    pub port: u32,
    /// Friendly name of the log.
    #[serde(skip_serializing_if = "is_default")]
    pub log_name: String,
    /// Body and attributes of each log record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<EnvoyOpenTelemetryLogProviderLogFormat>,
}

/// Format of an OpenTelemetry access log record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EnvoyOpenTelemetryLogProviderLogFormat {
    /// Record body, with Envoy command operators.
    #[serde(skip_serializing_if = "is_default")]
    pub text: String,
    /// Record attributes, with Envoy command operators as values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Struct>,
}
