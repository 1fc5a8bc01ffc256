//! Istio's checks of what an HTTP route does besides forwarding: CORS, fault injection,
//! mirrors, redirects, direct responses, retries and rewrites (`validation.go`).

use super::validate::{duration, min_duration, percentage, regex, string_match};
use super::validate_http::{is_header_token, mirror_percentage};
use super::{
    Abort, CorsPolicy, Delay, HTTPDirectResponse, HTTPFaultInjection, HTTPMirrorPolicy,
    HTTPRedirect, HTTPRetry, HTTPRewrite,
};
use crate::validate::{Validate, Validator, rules};

const KB: usize = 1024;
const MB: usize = 1024 * KB;

/// `x-envoy-retry-on` and `x-envoy-retry-grpc-on` policies Istio accepts in `retryOn`.
const RETRY_ON_POLICIES: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "envoy-ratelimited",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

/// Methods Go's net/http knows, plus the `*` wildcard: Istio's `supportedCORSMethods`.
const HTTP_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*",
];

/// gRPC status names Istio accepts for `fault.abort.grpcStatus`.
const GRPC_STATUSES: &[&str] = &[
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

impl Validate for CorsPolicy {
    fn validate(&self, v: &mut Validator) {
        if !self.allow_origin.is_empty() {
            v.field("allowOrigin", |v| {
                v.deprecated("allowOrigin is deprecated; use allowOrigins")
            });
        }
        v.field("allowOrigins", |v| {
            for (i, o) in self.allow_origins.iter().enumerate() {
                v.index(i, |v| {
                    let pattern = o.exact.as_deref().or(o.prefix.as_deref()).or(o.regex.as_deref());
                    if pattern.unwrap_or("").is_empty() {
                        v.error("'' is not a valid match type for CORS allow origins (set exact, prefix or regex)");
                    } else {
                        string_match(v, o, false);
                    }
                });
            }
        });
        v.field("allowMethods", |v| {
            for (i, m) in self.allow_methods.iter().enumerate() {
                if !HTTP_METHODS.contains(&m.as_str()) {
                    v.index(i, |v| {
                        v.error(format!("{m:?} is not a supported HTTP method"))
                    });
                }
            }
        });
        for (field, names) in [
            ("allowHeaders", &self.allow_headers),
            ("exposeHeaders", &self.expose_headers),
        ] {
            v.field(field, |v| {
                for (i, name) in names.iter().enumerate() {
                    v.index(i, |v| cors_header_name(v, name));
                }
            });
        }
        if let Some(age) = &self.max_age {
            v.field("maxAge", |v| {
                rules::duration(v, age);
                if age.as_std().subsec_nanos() > 0 {
                    v.error("max_age duration is accurate only to seconds precision");
                }
            });
        }
    }
}

fn cors_header_name(v: &mut Validator, name: &str) {
    if name.is_empty() {
        v.error("header name cannot be empty");
    } else if name != "*" && !is_header_token(name) {
        v.error(format!("header name {name:?} is not a valid header name"));
    }
}

impl Validate for HTTPFaultInjection {
    fn validate(&self, v: &mut Validator) {
        if self.abort.is_none() && self.delay.is_none() {
            v.missing("HTTP fault injection must have an abort and/or a delay");
        }
        v.nested("abort", &self.abort);
        v.nested("delay", &self.delay);
    }
}

impl Validate for Abort {
    fn validate(&self, v: &mut Validator) {
        percentage(v, "percentage", self.percentage.as_ref());
        let set = rules::oneof(
            v,
            &[
                ("httpStatus", self.http_status.is_some()),
                ("grpcStatus", self.grpc_status.is_some()),
                ("http2Error", self.http2_error.is_some()),
            ],
        );
        if let Some(s) = &self.grpc_status {
            if !GRPC_STATUSES.contains(&s.as_str()) {
                v.field("grpcStatus", |v| {
                    v.error_hint(
                        format!("gRPC status {s:?} is not supported"),
                        "use a status name such as NOT_FOUND or UNAVAILABLE (see https://github.com/grpc/grpc/blob/master/doc/statuscodes.md)",
                    )
                });
            }
        } else if self.http2_error.is_some() {
            v.field("http2Error", |v| {
                v.error("HTTP/2 abort fault injection not supported yet")
            });
        } else if let Some(s) = self.http_status {
            v.field("httpStatus", |v| http_status(v, i64::from(s)));
        }
        if set == 0 {
            v.warn("abort configured, but error type not set (httpStatus or grpcStatus)");
        }
    }
}

fn http_status(v: &mut Validator, status: i64) {
    if !(200..=600).contains(&status) {
        v.error(format!("HTTP status {status} is not in range 200-599"));
    }
}

impl Validate for Delay {
    fn validate(&self, v: &mut Validator) {
        percentage(v, "percentage", self.percentage.as_ref());
        rules::oneof(
            v,
            &[
                ("fixedDelay", self.fixed_delay.is_some()),
                ("exponentialDelay", self.exponential_delay.is_some()),
            ],
        );
        duration(v, "fixedDelay", self.fixed_delay.as_ref());
        if let Some(d) = &self.exponential_delay {
            v.field("exponentialDelay", |v| {
                rules::duration(v, d);
                v.error("exponentialDelay not supported yet");
            });
        }
        if self.percent != 0 {
            v.field("percent", |v| {
                v.deprecated("delay percent is deprecated; use percentage")
            });
        }
    }
}

impl Validate for HTTPMirrorPolicy {
    fn validate(&self, v: &mut Validator) {
        let Some(dest) = &self.destination else {
            v.field("destination", |v| {
                v.missing("destination is required for mirrors")
            });
            return;
        };
        v.nested("destination", dest);
        if let Some(p) = &self.percentage {
            mirror_percentage(v, "percentage", p.value);
        }
    }
}

impl Validate for HTTPRedirect {
    /// Istio stops at the first problem in a redirect.
    fn validate(&self, v: &mut Validator) {
        if self.uri.is_empty()
            && self.authority.is_empty()
            && self.port.is_none()
            && self.derive_port.is_none()
            && self.scheme.is_empty()
        {
            v.missing("redirect must specify URI, authority, scheme, or port");
            return;
        }
        if rules::oneof(
            v,
            &[
                ("port", self.port.is_some()),
                ("derivePort", self.derive_port.is_some()),
            ],
        ) > 1
        {
            return;
        }
        if self.redirect_code != 0 && !(300..=399).contains(&self.redirect_code) {
            v.field("redirectCode", |v| {
                v.error(format!(
                    "{} is not a valid redirect code, must be 3xx",
                    self.redirect_code
                ))
            });
            return;
        }
        if !self.scheme.is_empty() && self.scheme != "http" && self.scheme != "https" {
            v.field("scheme", |v| {
                v.error(format!(
                    "invalid redirect scheme {:?}, must be \"http\" or \"https\"",
                    self.scheme
                ))
            });
            return;
        }
        if let Some(p) = self.port.filter(|p| *p > 0) {
            v.field("port", |v| rules::port(v, p));
        }
    }
}

impl Validate for HTTPDirectResponse {
    fn validate(&self, v: &mut Validator) {
        if let Some(body) = &self.body {
            v.field("body", |v| {
                rules::oneof(v, &[("string", body.string.is_some()), ("bytes", body.bytes.is_some())]);
                let size = body.len();
                if size > MB {
                    v.error(format!(
                        "large direct_responses may impact control plane performance, must be less than 1MB (got {size} bytes)"
                    ));
                } else if size > 100 * KB {
                    v.warn(format!("large direct_responses may impact control plane performance ({size} bytes)"));
                }
            });
        }
        v.field("status", |v| http_status(v, i64::from(self.status)));
    }
}

impl Validate for HTTPRetry {
    fn validate(&self, v: &mut Validator) {
        if self.attempts < 0 {
            v.field("attempts", |v| v.error("attempts cannot be negative"));
        }
        if self.attempts == 0
            && (self.per_try_timeout.is_some()
                || !self.retry_on.is_empty()
                || self.retry_remote_localities.is_some())
        {
            v.field("attempts", |v| {
                v.error("http retry policy configured when attempts are set to 0 (disabled)")
            });
        }
        duration(v, "perTryTimeout", self.per_try_timeout.as_ref());
        if !self.retry_on.is_empty() {
            v.field("retryOn", |v| {
                for policy in self.retry_on.split(',') {
                    if !is_http_status(policy) && !RETRY_ON_POLICIES.contains(&policy) {
                        v.error_hint(
                            format!("{policy:?} is not a valid retryOn policy"),
                            "use comma-separated Envoy retry conditions (e.g. 5xx,gateway-error,connect-failure,refused-stream) or HTTP status codes, without spaces",
                        );
                    }
                }
            });
        }
        min_duration(v, "backoff", self.backoff.as_ref());
    }
}

/// Go's `http.StatusText(strconv.Atoi(s)) != ""`.
fn is_http_status(s: &str) -> bool {
    let Ok(code) = s.parse::<i64>() else {
        return false;
    };
    matches!(code,
        100..=103 | 200..=208 | 226 | 300..=305 | 307 | 308 | 400..=418 | 421..=426 | 428 | 429
        | 431 | 451 | 500..=508 | 510 | 511)
}

impl Validate for HTTPRewrite {
    /// Istio stops at the first problem in a rewrite.
    fn validate(&self, v: &mut Validator) {
        if !self.uri.is_empty() && self.uri_regex_rewrite.is_some() {
            v.field("uriRegexRewrite", |v| {
                v.conflict("rewrite may only contain one of uri or uriRegexRewrite")
            });
            return;
        }
        if self.uri.is_empty() && self.uri_regex_rewrite.is_none() && self.authority.is_empty() {
            v.missing("rewrite must specify at least one of uri, uriRegexRewrite, or authority");
            return;
        }
        if let Some(rr) = &self.uri_regex_rewrite {
            v.field("uriRegexRewrite", |v| {
                if rr.r#match.is_empty() || rr.rewrite.is_empty() {
                    v.missing(
                        "uriRegexRewrite requires both rewrite and match fields to be specified",
                    );
                } else {
                    v.field("match", |v| regex(v, &rr.r#match));
                }
            });
        }
    }
}
