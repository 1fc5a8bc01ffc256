//! Istio's extension provider validation (pkg/config/validation/agent/extensionprovider.go).
//!
//! `ValidateMeshConfig` only logs these problems ("can be ignored if the given extension
//! provider is not used") and accepts the mesh config, so they are warnings here. Setting
//! two providers in one entry is different: jsonpb rejects it while decoding, so it is an
//! error.

use super::{
    EnvoyExternalAuthorizationGrpcProvider, EnvoyExternalAuthorizationHttpProvider,
    ExtensionProvider, HttpHeader,
};
use crate::validate::{Validator, rules};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Codes of Envoy's `envoy.type.v3.StatusCode` enum, which `statusOnError` must name.
const ENVOY_STATUS_CODES: &[u32] = &[
    0, 100, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307,
    308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417,
    421, 422, 423, 424, 426, 428, 429, 431, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
];

/// Validates `extensionProviders` (field name included).
pub(crate) fn validate_extension_providers(v: &mut Validator, providers: &[ExtensionProvider]) {
    let mut names = BTreeSet::new();
    v.field("extensionProviders", |v| {
        for (i, p) in providers.iter().enumerate() {
            v.index(i, |v| {
                if p.name.is_empty() {
                    v.field("name", |v| {
                        v.warn(
                            "empty extension provider name; policies cannot refer to this provider",
                        )
                    });
                } else if !names.insert(p.name.as_str()) {
                    v.field("name", |v| {
                        v.warn(format!("duplicate extension provider name {:?}", p.name))
                    });
                }
                provider(v, p);
            });
        }
    });
}

fn provider(v: &mut Validator, p: &ExtensionProvider) {
    let n = rules::oneof(
        v,
        &[
            ("envoyExtAuthzHttp", p.envoy_ext_authz_http.is_some()),
            ("envoyExtAuthzGrpc", p.envoy_ext_authz_grpc.is_some()),
            ("zipkin", p.zipkin.is_some()),
            ("lightstep", p.lightstep.is_some()),
            ("datadog", p.datadog.is_some()),
            ("stackdriver", p.stackdriver.is_some()),
            ("opencensus", p.opencensus.is_some()),
            ("skywalking", p.skywalking.is_some()),
            ("opentelemetry", p.opentelemetry.is_some()),
            ("prometheus", p.prometheus.is_some()),
            ("envoyFileAccessLog", p.envoy_file_access_log.is_some()),
            ("envoyHttpAls", p.envoy_http_als.is_some()),
            ("envoyTcpAls", p.envoy_tcp_als.is_some()),
            ("envoyOtelAls", p.envoy_otel_als.is_some()),
        ],
    );
    if n == 0 {
        v.warn(format!(
            "invalid extension provider {:?}: no provider is configured (set e.g. envoyExtAuthzHttp, opentelemetry or envoyFileAccessLog)",
            p.name
        ));
    }
    if let Some(c) = &p.envoy_ext_authz_http {
        v.field("envoyExtAuthzHttp", |v| ext_authz_http(v, c));
    }
    if let Some(c) = &p.envoy_ext_authz_grpc {
        v.field("envoyExtAuthzGrpc", |v| ext_authz_grpc(v, c));
    }
    let endpoints = [
        ("zipkin", p.zipkin.as_ref().map(|c| (&c.service, c.port))),
        (
            "lightstep",
            p.lightstep.as_ref().map(|c| (&c.service, c.port)),
        ),
        ("datadog", p.datadog.as_ref().map(|c| (&c.service, c.port))),
        (
            "opencensus",
            p.opencensus.as_ref().map(|c| (&c.service, c.port)),
        ),
        (
            "skywalking",
            p.skywalking.as_ref().map(|c| (&c.service, c.port)),
        ),
        (
            "opentelemetry",
            p.opentelemetry.as_ref().map(|c| (&c.service, c.port)),
        ),
        (
            "envoyHttpAls",
            p.envoy_http_als.as_ref().map(|c| (&c.service, c.port)),
        ),
        (
            "envoyTcpAls",
            p.envoy_tcp_als.as_ref().map(|c| (&c.service, c.port)),
        ),
        (
            "envoyOtelAls",
            p.envoy_otel_als.as_ref().map(|c| (&c.service, c.port)),
        ),
    ];
    for (field, endpoint) in endpoints {
        if let Some((service, port)) = endpoint {
            v.field(field, |v| service_and_port(v, service, port));
        }
    }
    if let Some(z) = &p.zipkin {
        v.field("zipkin", |v| headers(v, "headers", &z.headers));
    }
    if let Some(ls) = &p.lightstep {
        v.field("lightstep", |v| {
            v.deprecated("the lightstep provider is deprecated; use opentelemetry");
            if ls.access_token.is_empty() {
                v.field("accessToken", |v| v.warn("access token is required"));
            }
        });
    }
    if p.opencensus.is_some() {
        v.field("opencensus", |v| {
            v.deprecated("the opencensus provider is deprecated (Envoy removed OpenCensus); use opentelemetry")
        });
    }
    if let Some(sd) = &p.stackdriver
        && (sd.debug
            || sd.max_number_of_attributes.is_some()
            || sd.max_number_of_annotations.is_some()
            || sd.max_number_of_message_events.is_some())
    {
        v.field("stackdriver", |v| {
            v.deprecated(
                "stackdriver debug and maxNumberOf* settings are deprecated and have no effect",
            )
        });
    }
    if let Some(otel) = &p.opentelemetry {
        v.field("opentelemetry", |v| {
            if otel.grpc.is_some() && otel.http.is_some() {
                v.warn("OpenTelemetryTracingProvider cannot specify both grpc and http");
            }
            if let Some(h) = &otel.http {
                v.field("http", |v| headers(v, "headers", &h.headers));
            }
            if let Some(g) = &otel.grpc {
                v.field("grpc", |v| {
                    headers(v, "initialMetadata", &g.initial_metadata)
                });
            }
            if let Some(api) = otel
                .dynatrace_sampler
                .as_ref()
                .and_then(|d| d.http_service.as_ref())
                && let Some(h) = &api.http
            {
                v.field("dynatraceSampler", |v| {
                    v.field("httpService", |v| {
                        v.field("http", |v| headers(v, "headers", &h.headers))
                    })
                });
            }
        });
    }
}

/// A header's `value` and `envName` are a oneof, which jsonpb refuses to see both of.
fn headers(v: &mut Validator, field: &str, hs: &[HttpHeader]) {
    v.field(field, |v| {
        for (i, h) in hs.iter().enumerate() {
            v.index(i, |v| {
                rules::oneof(
                    v,
                    &[
                        ("value", h.value.is_some()),
                        ("envName", h.env_name.is_some()),
                    ],
                );
            });
        }
    });
}

fn service_and_port(v: &mut Validator, service: &str, port: u32) {
    if let Err(e) = check_service(service) {
        v.field("service", |v| v.warn(e));
    }
    if port == 0 || port > 65535 {
        v.field("port", |v| {
            v.warn(format!(
                "invalid service port: port number {port} must be in the range 1..65535"
            ))
        });
    }
}

fn ext_authz_http(v: &mut Validator, c: &EnvoyExternalAuthorizationHttpProvider) {
    service_and_port(v, &c.service, c.port);
    status_on_error(v, &c.status_on_error);
    if !c.path_prefix.is_empty() {
        v.field("pathPrefix", |v| {
            if let Err(e) = check_url_path(&c.path_prefix) {
                v.warn(format!("invalid pathPrefix {}: {e}", c.path_prefix));
            }
            if !c.path_prefix.starts_with('/') {
                v.warn(format!(
                    "pathPrefix should begin with `/` but found {:?}",
                    c.path_prefix
                ));
            }
        });
    }
    if !c.include_headers_in_check.is_empty() {
        v.field("includeHeadersInCheck", |v| {
            v.deprecated("includeHeadersInCheck is deprecated; use includeRequestHeadersInCheck")
        });
    }
}

fn ext_authz_grpc(v: &mut Validator, c: &EnvoyExternalAuthorizationGrpcProvider) {
    service_and_port(v, &c.service, c.port);
    status_on_error(v, &c.status_on_error);
}

fn status_on_error(v: &mut Validator, status: &str) {
    if status.is_empty() {
        return;
    }
    v.field("statusOnError", |v| match status.parse::<i32>() {
        Err(_) => v.warn(format!(
            "invalid statusOnError value {status:?}: not a number"
        )),
        Ok(code) if !u32::try_from(code).is_ok_and(|c| ENVOY_STATUS_CODES.contains(&c)) => {
            v.warn(format!(
                "unsupported statusOnError value {status}: must be an HTTP status code Envoy knows (e.g. 403, 500, 503)"
            ))
        }
        Ok(_) => {}
    });
}

/// What Go's `url.Parse` rejects in a path: control characters and malformed `%` escapes.
fn check_url_path(p: &str) -> Result<(), String> {
    if p.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("invalid control character in URL".into());
    }
    let b = p.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let ok =
                b.len() > i + 2 && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit();
            if !ok {
                let end = (i + 3).min(b.len());
                return Err(format!("invalid URL escape {:?}", &p[i..end]));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// Istio's `validateExtensionProviderService`: `<fqdn>`, an IP, or `<namespace>/<fqdn>`.
fn check_service(service: &str) -> Result<(), String> {
    if service.is_empty() {
        return Err("service must not be empty".into());
    }
    let Some((ns, host)) = service.split_once('/') else {
        if rules::check_fqdn(service).is_err() && service.parse::<IpAddr>().is_err() {
            return Err(format!(
                "invalid service fmt {service}: {service} is not a valid FQDN or IP"
            ));
        }
        return Ok(());
    };
    let mut errs = Vec::new();
    if ns.is_empty() || host.is_empty() {
        errs.push("config namespace and dnsName in host entry cannot be empty".to_string());
    }
    if !matches!(ns, "*" | "." | "~") && !rules::is_dns1123_label(ns) {
        errs.push(format!("invalid namespace value {ns:?}"));
    }
    if host != "*" && !host.contains('.') {
        errs.push("short names (non FQDN) are not allowed".into());
    }
    if let Err(e) = rules::check_wildcard_domain(host)
        && host.parse::<IpAddr>().is_err()
    {
        errs.push(e);
    }
    if host.contains('*') && host.len() != 1 && !host.starts_with("*.") {
        errs.push(format!("partial wildcard {host:?} not allowed"));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!("invalid service {service:?}: {}", errs.join("; ")))
    }
}
