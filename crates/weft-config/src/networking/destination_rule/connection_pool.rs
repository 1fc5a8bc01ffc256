//! Connection pool (circuit breaker) and outlier detection settings, with Istio's
//! `validateConnectionPool` and `validateOutlierDetection`. Sidecar reuses
//! [`ConnectionPoolSettings`] for inbound pools.

use crate::types::{Duration, is_default};
use crate::validate::{Validate, Validator, rules};
use serde::{Deserialize, Serialize};

/// Connection pool limits for TCP and HTTP upstream connections.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ConnectionPoolSettings {
    /// Settings common to TCP and HTTP connections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TCPSettings>,
    /// HTTP connection pool settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HTTPSettings>,
}

/// TCP connection pool settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TCPSettings {
    /// Maximum HTTP/1 or TCP connections to a destination host.
    #[serde(skip_serializing_if = "is_default")]
    pub max_connections: i32,
    /// TCP connect timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Duration>,
    /// SO_KEEPALIVE settings for upstream sockets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// Maximum lifetime of a connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connection_duration: Option<Duration>,
    /// Idle timeout for TCP connections (default 1h).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
}

/// TCP keepalive probing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TcpKeepalive {
    /// Unanswered probes before the connection is considered dead.
    #[serde(skip_serializing_if = "is_default")]
    pub probes: u32,
    /// Idle time before probes start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<Duration>,
    /// Time between probes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
}

/// Whether HTTP/1.1 upstream connections are upgraded to HTTP/2.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum H2UpgradePolicy {
    /// Use the mesh-wide default.
    #[default]
    Default,
    /// Do not upgrade.
    DoNotUpgrade,
    /// Upgrade to HTTP/2.
    Upgrade,
}

/// HTTP connection pool settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HTTPSettings {
    /// Maximum requests queued while waiting for a connection.
    #[serde(rename = "http1MaxPendingRequests", skip_serializing_if = "is_default")]
    pub http1_max_pending_requests: i32,
    /// Maximum active requests to a destination.
    #[serde(rename = "http2MaxRequests", skip_serializing_if = "is_default")]
    pub http2_max_requests: i32,
    /// Maximum requests per upstream connection (1 disables keep-alive).
    #[serde(skip_serializing_if = "is_default")]
    pub max_requests_per_connection: i32,
    /// Maximum outstanding retries to all hosts of the cluster.
    #[serde(skip_serializing_if = "is_default")]
    pub max_retries: i32,
    /// Idle timeout for upstream pool connections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
    /// HTTP/2 upgrade policy for HTTP/1.1 connections.
    #[serde(rename = "h2UpgradePolicy", skip_serializing_if = "is_default")]
    pub h2_upgrade_policy: H2UpgradePolicy,
    /// Keep the client's HTTP protocol when connecting upstream.
    #[serde(skip_serializing_if = "is_default")]
    pub use_client_protocol: bool,
    /// Maximum concurrent streams per HTTP/2 connection.
    #[serde(skip_serializing_if = "is_default")]
    pub max_concurrent_streams: i32,
}

/// Ejection of hosts that keep failing from the load balancing pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OutlierDetection {
    /// Deprecated; use `consecutiveGatewayErrors` or `consecutive5xxErrors`.
    #[serde(skip_serializing_if = "is_default")]
    pub consecutive_errors: i32,
    /// Count locally originated failures separately from upstream errors.
    #[serde(skip_serializing_if = "is_default")]
    pub split_external_local_origin_errors: bool,
    /// Consecutive local-origin failures before ejection (needs the split above).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consecutive_local_origin_failures: Option<u32>,
    /// Consecutive gateway errors (502, 503, 504) before ejection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consecutive_gateway_errors: Option<u32>,
    /// Consecutive 5xx errors before ejection.
    #[serde(
        rename = "consecutive5xxErrors",
        skip_serializing_if = "Option::is_none"
    )]
    pub consecutive_5xx_errors: Option<u32>,
    /// Time between ejection sweeps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Minimum ejection duration (multiplied by the number of ejections).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_ejection_time: Option<Duration>,
    /// Maximum percentage of hosts that may be ejected.
    #[serde(skip_serializing_if = "is_default")]
    pub max_ejection_percent: i32,
    /// Outlier detection is active only while this percentage of hosts is healthy.
    #[serde(skip_serializing_if = "is_default")]
    pub min_health_percent: i32,
}

fn duration(v: &mut Validator, field: &str, d: Option<&Duration>) {
    if let Some(d) = d {
        v.field(field, |v| rules::duration(v, d));
    }
}

fn non_negative(v: &mut Validator, field: &str, value: i32, what: &str) {
    if value < 0 {
        v.field(field, |v| {
            v.error(format!("{what} must be non-negative (got {value})"))
        });
    }
}

impl Validate for ConnectionPoolSettings {
    fn validate(&self, v: &mut Validator) {
        if self.http.is_none() && self.tcp.is_none() {
            v.missing("connection pool must have at least one field (tcp or http)");
            return;
        }
        v.nested("http", &self.http);
        v.nested("tcp", &self.tcp);
    }
}

impl Validate for HTTPSettings {
    fn validate(&self, v: &mut Validator) {
        non_negative(
            v,
            "http1MaxPendingRequests",
            self.http1_max_pending_requests,
            "http1 max pending requests",
        );
        non_negative(
            v,
            "http2MaxRequests",
            self.http2_max_requests,
            "http2 max requests",
        );
        non_negative(
            v,
            "maxRequestsPerConnection",
            self.max_requests_per_connection,
            "max requests per connection",
        );
        non_negative(v, "maxRetries", self.max_retries, "max retries");
        duration(v, "idleTimeout", self.idle_timeout.as_ref());
        if self.h2_upgrade_policy == H2UpgradePolicy::Upgrade && self.use_client_protocol {
            v.field("useClientProtocol", |v| {
                v.conflict("use client protocol must not be true when H2UpgradePolicy is UPGRADE")
            });
        }
        non_negative(
            v,
            "maxConcurrentStreams",
            self.max_concurrent_streams,
            "max concurrent streams",
        );
    }
}

impl Validate for TCPSettings {
    fn validate(&self, v: &mut Validator) {
        non_negative(v, "maxConnections", self.max_connections, "max connections");
        duration(v, "connectTimeout", self.connect_timeout.as_ref());
        duration(
            v,
            "maxConnectionDuration",
            self.max_connection_duration.as_ref(),
        );
        // Istio accepts `0s` here: a zero TCP idle timeout disables it (istio/istio#55409).
        let idle = self.idle_timeout.as_ref().filter(|d| !d.as_std().is_zero());
        duration(v, "idleTimeout", idle);
        if let Some(ka) = &self.tcp_keepalive {
            v.field("tcpKeepalive", |v| {
                duration(v, "time", ka.time.as_ref());
                duration(v, "interval", ka.interval.as_ref());
            });
        }
    }
}

impl Validate for OutlierDetection {
    fn validate(&self, v: &mut Validator) {
        duration(v, "baseEjectionTime", self.base_ejection_time.as_ref());
        if self.consecutive_errors != 0 {
            v.field("consecutiveErrors", |v| {
                v.deprecated("outlier detection consecutiveErrors is deprecated; use consecutiveGatewayErrors or consecutive5xxErrors")
            });
        }
        if !self.split_external_local_origin_errors
            && self.consecutive_local_origin_failures.unwrap_or(0) > 0
        {
            v.field("consecutiveLocalOriginFailures", |v| {
                v.error_hint(
                    "outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false",
                    "set splitExternalLocalOriginErrors: true",
                )
            });
        }
        duration(v, "interval", self.interval.as_ref());
        for (field, value) in [
            ("maxEjectionPercent", self.max_ejection_percent),
            ("minHealthPercent", self.min_health_percent),
        ] {
            if !(0..=100).contains(&value) {
                v.field(field, |v| {
                    v.error(format!("percentage {value} is not in range 0..100"))
                });
            }
        }
    }
}
