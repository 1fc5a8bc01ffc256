//! `ProxyConfig.ProxyHeaders`: which HTTP headers the proxy sets, kept apart because the
//! message nests many small toggles.

use super::ForwardClientCertDetails;
use crate::types::is_default;
use serde::{Deserialize, Serialize};

/// Headers the proxy adds to or modifies on HTTP requests and responses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ProxyHeaders {
    /// XFCC handling for inbound sidecar requests (default `APPEND_FORWARD`).
    #[serde(skip_serializing_if = "is_default")]
    pub forwarded_client_cert: ForwardClientCertDetails,
    /// Which client certificate fields go into XFCC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_current_client_cert_details: Option<SetCurrentClientCertDetails>,
    /// The `x-request-id` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestId>,
    /// The `server` response header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<Server>,
    /// The `x-envoy-attempt-count` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_count: Option<AttemptCount>,
    /// Envoy's debug headers such as `x-envoy-upstream-service-time`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envoy_debug_headers: Option<EnvoyDebugHeaders>,
    /// Istio's peer metadata exchange headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_exchange_headers: Option<MetadataExchangeHeaders>,
    /// Keep the original case of HTTP/1.x header names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preserve_http1_header_case: Option<bool>,
}

/// The `server` header.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Server {
    /// Leave the `server` header untouched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Value to set instead of `istio-envoy`.
    #[serde(skip_serializing_if = "is_default")]
    pub value: String,
}

/// The `x-request-id` header.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RequestId {
    /// Do not generate request IDs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// The `x-envoy-attempt-count` header.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AttemptCount {
    /// Do not add the header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// Envoy's `x-envoy-*` debug headers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EnvoyDebugHeaders {
    /// Do not add the headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// When Istio's metadata exchange headers are sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MetadataExchangeMode {
    /// Istio's usual behavior.
    #[default]
    Undefined,
    /// Only towards destinations considered in-mesh (Istio mTLS).
    InMesh,
}

/// Istio's `x-envoy-peer-metadata` headers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MetadataExchangeHeaders {
    /// When the headers are sent.
    #[serde(skip_serializing_if = "is_default")]
    pub mode: MetadataExchangeMode,
}

/// Client certificate fields forwarded in XFCC.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SetCurrentClientCertDetails {
    /// Forward the subject (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<bool>,
    /// Forward the whole URL-encoded PEM certificate (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<bool>,
    /// Forward the whole certificate chain (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<bool>,
    /// Forward DNS SANs (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<bool>,
    /// Forward the URI SAN (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<bool>,
}
