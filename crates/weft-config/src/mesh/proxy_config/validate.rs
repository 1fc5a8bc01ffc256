//! Istio's `ValidateMeshConfigProxyConfig` (pkg/config/validation/agent/validation.go).
//!
//! Istio validates the proxy config after merging it over its defaults, so a field left
//! unset (zero) takes Istio's default and is never reported; only values the user wrote
//! are checked.

use super::{
    AuthenticationPolicy, CustomTag, PrivateKeyProvider, ProxyConfig, ProxyStatsMatcher, Tracing,
};
use crate::types::Duration;
use crate::validate::{Validate, Validator, rules};
use serde_json::Value;
use std::net::IpAddr;

/// Go's `net.SplitHostPort`, with its error texts.
fn split_host_port(addr: &str) -> Result<(&str, &str), &'static str> {
    let Some(colon) = addr.rfind(':') else {
        return Err("missing port in address");
    };
    let (host, skip_open, skip_close) = if addr.starts_with('[') {
        let Some(end) = addr.find(']') else {
            return Err("missing ']' in address");
        };
        if end + 1 == addr.len() {
            return Err("missing port in address");
        }
        if end + 1 != colon {
            return Err(if addr.as_bytes()[end + 1] == b':' {
                "too many colons in address"
            } else {
                "missing port in address"
            });
        }
        (&addr[1..end], 1, end + 1)
    } else {
        let host = &addr[..colon];
        if host.contains(':') {
            return Err("too many colons in address");
        }
        (host, 0, 0)
    };
    if addr[skip_open..].contains('[') {
        return Err("unexpected '[' in address");
    }
    if addr[skip_close..].contains(']') {
        return Err("unexpected ']' in address");
    }
    Ok((host, &addr[colon + 1..]))
}

/// Istio's `ValidateProxyAddress`: `host:port` with a valid port and an FQDN or IP host.
pub(super) fn check_proxy_address(addr: &str) -> Result<(), String> {
    let (host, port) =
        split_host_port(addr).map_err(|e| format!("unable to split {addr:?}: {e}"))?;
    // Like Go's Atoi, Rust's parse accepts one leading sign.
    let Ok(num) = port.parse::<i64>() else {
        return Err(format!("port ({port}) is not a number"));
    };
    if !(1..=65535).contains(&num) {
        return Err(format!("port number {num} must be in the range 1..65535"));
    }
    if rules::check_fqdn(host).is_err() && host.parse::<IpAddr>().is_err() {
        return Err(format!("{host:?} is not a valid hostname or an IP address"));
    }
    Ok(())
}

fn proxy_address(v: &mut Validator, field: &str, addr: &str, what: &str) {
    if let Err(e) = check_proxy_address(addr) {
        v.field(field, |v| v.error(format!("invalid {what} {addr:?}: {e}")));
    }
}

/// Istio's `ValidateDrainDuration`: at least 1ms, whole milliseconds, then whole seconds.
fn drain_duration(v: &mut Validator, d: &Duration) {
    let std = d.as_std();
    if std < std::time::Duration::from_millis(1) || !std.subsec_nanos().is_multiple_of(1_000_000) {
        rules::duration(v, d);
    } else if std.subsec_nanos() != 0 {
        v.error(format!(
            "drain time only supports durations to seconds precision (got {d})"
        ));
    }
}

/// A port field whose zero value means "use Istio's default".
fn optional_port(v: &mut Validator, field: &str, port: i32, what: &str) {
    if port == 0 {
        return;
    }
    v.field(field, |v| {
        if port < 0 {
            v.error(format!(
                "invalid {what}: port number {port} must be in the range 1..65535"
            ));
        } else {
            rules::port(v, port.unsigned_abs());
        }
    });
}

/// Istio's `ValidateTLS(namespace="", settings)`, read from the serialized JSON form so it
/// does not depend on the Rust spelling of the networking types.
fn client_tls(v: &mut Validator, settings: &impl serde::Serialize) {
    let Ok(json) = serde_json::to_value(settings) else {
        return;
    };
    let s = |k: &str| json.get(k).and_then(Value::as_str).unwrap_or("");
    let mode = s("mode");
    let credential = s("credentialName");
    let ca = s("caCertificates");
    let sans = json
        .get("subjectAltNames")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let insecure = json
        .get("insecureSkipVerify")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if credential.starts_with("configmap://") {
        v.field("credentialName", |v| {
            v.error(format!(
                "invalid configmap:// credentialName {credential:?}: a mesh-wide setting has no namespace for the ConfigMap to live in"
            ))
        });
    }
    if insecure && mode == "SIMPLE" && (!ca.is_empty() || !credential.is_empty() || sans) {
        v.error("cannot specify caCertificates, credentialName or subjectAltNames when insecureSkipVerify is true");
    }
    if insecure && mode == "MUTUAL" && (!ca.is_empty() || sans) {
        v.error("cannot specify caCertificates or subjectAltNames when insecureSkipVerify is true");
    }
    if (mode == "SIMPLE" || mode == "MUTUAL") && !credential.is_empty() {
        if !s("clientCertificate").is_empty()
            || !ca.is_empty()
            || !s("privateKey").is_empty()
            || !s("caCrl").is_empty()
        {
            v.error("cannot specify clientCertificate, privateKey, caCertificates or caCrl when credentialName is set");
        }
        return;
    }
    if mode == "MUTUAL" {
        if s("clientCertificate").is_empty() {
            v.field("clientCertificate", |v| {
                v.missing("client certificate required for mutual tls")
            });
        }
        if s("privateKey").is_empty() {
            v.field("privateKey", |v| {
                v.missing("private key required for mutual tls")
            });
        }
    }
}

impl Validate for ProxyConfig {
    fn validate(&self, v: &mut Validator) {
        rules::oneof(
            v,
            &[
                ("serviceCluster", self.service_cluster.is_some()),
                ("tracingServiceName", self.tracing_service_name.is_some()),
            ],
        );
        if self.service_cluster.as_deref() == Some("") {
            v.field("serviceCluster", |v| {
                v.missing("service cluster must be specified (or leave serviceCluster out to use the default)")
            });
        }
        if let Some(d) = &self.drain_duration {
            v.field("drainDuration", |v| drain_duration(v, d));
        }
        if !self.discovery_address.is_empty() {
            proxy_address(
                v,
                "discoveryAddress",
                &self.discovery_address,
                "discovery address",
            );
        }
        v.nested("tracing", &self.tracing);
        if !self.statsd_udp_address.is_empty() {
            proxy_address(
                v,
                "statsdUdpAddress",
                &self.statsd_udp_address,
                "statsd udp address",
            );
        }
        if !self.envoy_metrics_service_address.is_empty() {
            proxy_address(
                v,
                "envoyMetricsServiceAddress",
                &self.envoy_metrics_service_address,
                "envoy metrics service address",
            );
            v.field("envoyMetricsServiceAddress", |v| {
                v.deprecated(
                    "envoyMetricsServiceAddress is deprecated; use envoyMetricsService.address",
                )
            });
        }
        if self
            .proxy_metadata
            .contains_key("ISTIO_META_DNS_AUTO_ALLOCATE")
        {
            v.field("proxyMetadata", |v| v.key("ISTIO_META_DNS_AUTO_ALLOCATE", |v| {
                v.deprecated("'ISTIO_META_DNS_AUTO_ALLOCATE' is deprecated; use DNS auto-allocation v2 (see https://istio.io/latest/docs/ops/configuration/traffic-management/dns-proxy/#dns-auto-allocation-v2)")
            }));
        }
        for (field, svc) in [
            ("envoyMetricsService", &self.envoy_metrics_service),
            ("envoyAccessLogService", &self.envoy_access_log_service),
        ] {
            if let Some(svc) = svc.as_ref().filter(|s| !s.address.is_empty()) {
                v.field(field, |v| {
                    proxy_address(v, "address", &svc.address, "service address")
                });
            }
        }
        optional_port(
            v,
            "proxyAdminPort",
            self.proxy_admin_port,
            "proxy admin port",
        );
        if self.control_plane_auth_policy == AuthenticationPolicy::Inherit {
            v.field("controlPlaneAuthPolicy", |v| {
                v.error("invalid authentication policy: INHERIT is not allowed here; use NONE or MUTUAL_TLS")
            });
        }
        optional_port(v, "statusPort", self.status_port, "status port");
        v.nested("privateKeyProvider", &self.private_key_provider);
        v.nested("proxyStatsMatcher", &self.proxy_stats_matcher);
        if self.concurrency.is_some_and(|c| c < 0) {
            v.field("concurrency", |v| {
                v.warn("negative concurrency: Envoy cannot start with a negative worker count; use 0 for all cores or leave it unset")
            });
        }
        if self.stat_name_length < 0 {
            v.field("statNameLength", |v| {
                v.warn(
                    "negative statNameLength has no meaning; leave it unset for the default (189)",
                )
            });
        }
        deprecations(self, v);
    }
}

fn deprecations(p: &ProxyConfig, v: &mut Validator) {
    if !p.zipkin_address.is_empty() {
        v.field("zipkinAddress", |v| {
            v.deprecated("zipkinAddress is deprecated; use tracing.zipkin.address")
        });
    }
    if p.discovery_refresh_delay.is_some() {
        v.field("discoveryRefreshDelay", |v| {
            v.deprecated("discoveryRefreshDelay is deprecated and has no effect")
        });
    }
    if !p.availability_zone.is_empty() {
        v.field("availabilityZone", |v| {
            v.deprecated("availabilityZone is deprecated and has no effect")
        });
    }
    if p.sds.is_some() {
        v.field("sds", |v| {
            v.deprecated("sds is deprecated and has no effect")
        });
    }
    if !p.extra_stat_tags.is_empty() {
        v.field("extraStatTags", |v| {
            v.deprecated("extraStatTags is deprecated: istio.stats is a native filter and no longer needs it")
        });
    }
}

impl Validate for Tracing {
    fn validate(&self, v: &mut Validator) {
        rules::oneof(
            v,
            &[
                ("zipkin", self.zipkin.is_some()),
                ("lightstep", self.lightstep.is_some()),
                ("datadog", self.datadog.is_some()),
                ("stackdriver", self.stackdriver.is_some()),
                ("openCensusAgent", self.open_census_agent.is_some()),
            ],
        );
        if let Some(ls) = &self.lightstep {
            v.field("lightstep", |v| {
                v.deprecated(
                    "the lightstep tracer is deprecated; use an OpenTelemetry extension provider",
                );
                if ls.address.is_empty() {
                    v.field("address", |v| v.missing("lightstep address is required"));
                }
                proxy_address(v, "address", &ls.address, "lightstep address");
                if ls.access_token.is_empty() {
                    v.field("accessToken", |v| {
                        v.missing("lightstep access token is required")
                    });
                }
            });
        }
        // The agent substitutes the node IP for $(HOST_IP) before use.
        if let Some(z) = &self.zipkin {
            let addr = z.address.replacen("$(HOST_IP)", "127.0.0.1", 1);
            v.field("zipkin", |v| {
                proxy_address(v, "address", &addr, "zipkin address")
            });
        }
        if let Some(d) = &self.datadog {
            let addr = d.address.replacen("$(HOST_IP)", "127.0.0.1", 1);
            v.field("datadog", |v| {
                proxy_address(v, "address", &addr, "datadog address")
            });
        }
        if let Some(tls) = &self.tls_settings {
            v.field("tlsSettings", |v| client_tls(v, tls));
        }
        v.field("customTags", |v| {
            for (name, tag) in &self.custom_tags {
                v.key(name, |v| tag.validate(v));
            }
        });
    }
}

impl Validate for CustomTag {
    fn validate(&self, v: &mut Validator) {
        let n = rules::oneof(
            v,
            &[
                ("literal", self.literal.is_some()),
                ("environment", self.environment.is_some()),
                ("header", self.header.is_some()),
            ],
        );
        if n == 0 {
            v.warn("custom tag sets none of literal, environment or header, so no tag is added");
        }
    }
}

impl Validate for PrivateKeyProvider {
    fn validate(&self, v: &mut Validator) {
        let n = rules::oneof(
            v,
            &[
                ("cryptomb", self.cryptomb.is_some()),
                ("qat", self.qat.is_some()),
            ],
        );
        if n == 0 {
            v.missing(
                "invalid private key provider configuration: one of cryptomb or qat is required",
            );
        }
        let delays = [
            ("cryptomb", self.cryptomb.as_ref().map(|c| &c.poll_delay)),
            ("qat", self.qat.as_ref().map(|q| &q.poll_delay)),
        ];
        for (field, delay) in delays {
            let Some(delay) = delay else { continue };
            v.field(field, |v| {
                v.field("pollDelay", |v| match delay {
                    None => v.missing(format!("invalid private key provider configuration: {field} pollDelay is required")),
                    Some(d) if d.as_std().is_zero() => v.error(format!(
                        "invalid private key provider configuration: {field} pollDelay must be non zero"
                    )),
                    Some(_) => {}
                })
            });
        }
    }
}

impl Validate for ProxyStatsMatcher {
    // Istio passes these to Envoy's stats matcher unchecked; an expression RE2 rejects
    // makes the proxy fail to start, so Weft reports it up front.
    fn validate(&self, v: &mut Validator) {
        for (field, list) in [
            ("inclusionRegexps", &self.inclusion_regexps),
            ("exclusionRegexps", &self.exclusion_regexps),
        ] {
            v.field(field, |v| {
                for (i, re) in list.iter().enumerate() {
                    v.index(i, |v| rules::re2(v, re));
                }
            });
        }
    }
}
