//! Istio's HTTP route validation (`validateHTTPRoute` in `virtualservice.go`): action
//! conflicts, match requests, header manipulation and weighted destinations. The checks of
//! the individual actions (CORS, faults, redirects, ...) are in `validate_actions`.

use super::validate::{
    destination_and_weight, duration, gateway_names, is_jwt_claim, string_match,
};
use super::{
    HTTPMatchRequest, HTTPRoute, HTTPRouteDestination, HeaderOperations, Headers, StringMatch,
};
use crate::validate::{Validate, Validator, rules};
use std::collections::BTreeMap;

impl Validate for HTTPRoute {
    /// Validates the route as a non-delegate VirtualService would.
    fn validate(&self, v: &mut Validator) {
        self.validate_route(v, false);
    }
}

impl HTTPRoute {
    /// `delegate`: the route belongs to a delegate VirtualService (one without hosts).
    pub(super) fn validate_route(&self, v: &mut Validator, delegate: bool) {
        self.validate_conflicts(v, delegate);
        v.each("match", &self.r#match);
        v.nested("headers", &self.headers);
        v.nested("corsPolicy", &self.cors_policy);
        v.nested("fault", &self.fault);

        if let Some(p) = self.mirror_percent {
            v.field("mirrorPercent", |v| {
                if p > 100 {
                    v.error(format!(
                        "mirror_percent must have a max value of 100 (it has {p})"
                    ));
                }
                v.deprecated("mirrorPercent is deprecated; use mirrorPercentage");
            });
        }
        if let Some(p) = &self.mirror_percentage {
            mirror_percentage(v, "mirrorPercentage", p.value);
        }
        v.nested("mirror", &self.mirror);
        v.each("mirrors", &self.mirrors);
        v.nested("redirect", &self.redirect);
        v.nested("directResponse", &self.direct_response);
        v.nested("retries", &self.retries);
        v.nested("rewrite", &self.rewrite);
        self.validate_authority_rewrite(v);

        v.field("route", |v| {
            let mut total: i64 = 0;
            for (i, r) in self.route.iter().enumerate() {
                v.index(i, |v| r.validate(v));
                total += i64::from(r.weight);
            }
            if self.route.len() > 1 && total == 0 {
                v.error("total destination weight = 0");
            }
        });
        duration(v, "timeout", self.timeout.as_ref());
    }

    fn validate_conflicts(&self, v: &mut Validator, delegate: bool) {
        let name = &self.name;
        if !delegate && self.delegate.is_some() {
            // A root route only delegates.
            if self.redirect.is_some() {
                v.field("redirect", |v| {
                    v.conflict(format!("root HTTP route {name} must not specify redirect"))
                });
            }
            if !self.route.is_empty() {
                v.field("route", |v| {
                    v.conflict(format!("root HTTP route {name} must not specify route"))
                });
            }
            return;
        }
        if delegate && self.delegate.is_some() {
            v.field("delegate", |v| {
                v.error("delegate HTTP route cannot contain delegate")
            });
        }
        let conflict = |v: &mut Validator, field: &str, msg: &str| {
            v.field(field, |v| v.conflict(msg.to_string()));
        };
        if self.redirect.is_some() {
            if !self.route.is_empty() {
                conflict(
                    v,
                    "route",
                    "HTTP route cannot contain both route and redirect",
                );
            }
            if self.fault.is_some() {
                conflict(
                    v,
                    "fault",
                    "HTTP route cannot contain both fault and redirect",
                );
            }
            if self.rewrite.is_some() {
                conflict(
                    v,
                    "rewrite",
                    "HTTP route rule cannot contain both rewrite and redirect",
                );
            }
            if self.direct_response.is_some() {
                conflict(
                    v,
                    "directResponse",
                    "HTTP route rule cannot contain both direct_response and redirect",
                );
            }
        } else if self.direct_response.is_some() {
            if !self.route.is_empty() {
                conflict(
                    v,
                    "route",
                    "HTTP route cannot contain both route and direct_response",
                );
            }
            if self.fault.is_some() {
                conflict(
                    v,
                    "fault",
                    "HTTP route cannot contain both fault and direct_response",
                );
            }
            if self.rewrite.is_some() {
                conflict(
                    v,
                    "rewrite",
                    "HTTP route rule cannot contain both rewrite and direct_response",
                );
            }
        } else if self.route.is_empty() {
            v.field("route", |v| {
                v.missing("HTTP route, redirect or direct_response is required")
            });
        }
        if self.mirror.is_some() && !self.mirrors.is_empty() {
            conflict(
                v,
                "mirrors",
                "HTTP route cannot contain both mirror and mirrors",
            );
        }
    }

    /// The authority may be rewritten in one place only: `rewrite.authority` or one
    /// `:authority`/`host` entry of the request headers.
    fn validate_authority_rewrite(&self, v: &mut Validator) {
        let mut current = self.rewrite.as_ref().map_or("", |r| r.authority.as_str());
        let Some(req) = self.headers.as_ref().and_then(|h| h.request.as_ref()) else {
            return;
        };
        for (op, map) in [("set", &req.set), ("add", &req.add)] {
            for (k, val) in map.iter().filter(|(k, _)| is_authority_header(k)) {
                if !current.is_empty() {
                    v.field("headers", |v| {
                        v.field("request", |v| {
                            v.field(op, |v| {
                                v.key(k, |v| {
                                    v.conflict(format!(
                                        "authority header cannot be set multiple times: have {current:?}, attempting to set {val:?}"
                                    ))
                                })
                            })
                        })
                    });
                    return;
                }
                current = val;
            }
        }
    }
}

pub(super) fn mirror_percentage(v: &mut Validator, field: &str, value: f64) {
    v.field(field, |v| {
        v.field("value", |v| {
            if value > 100.0 {
                v.error(format!(
                    "mirror percentage must have a max value of 100 (it has {value})"
                ));
            }
            if value < 0.0 {
                v.error(format!(
                    "mirror percentage must have a min value of 0 (it has {value})"
                ));
            }
        })
    });
}

impl Validate for HTTPMatchRequest {
    fn validate(&self, v: &mut Validator) {
        v.field("headers", |v| {
            for (name, sm) in &self.headers {
                v.key(name, |v| {
                    header_name_or_jwt_claim(v, name);
                    string_match(v, sm, false);
                });
            }
        });
        v.field("withoutHeaders", |v| {
            for (name, sm) in &self.without_headers {
                v.key(name, |v| {
                    header_name_or_jwt_claim(v, name);
                    // `*` is not a regex here: Istio turns it into a presence match.
                    if sm.regex.as_deref() != Some("*") {
                        string_match(v, sm, false);
                    }
                });
            }
        });
        string_match_field(v, "uri", self.uri.as_ref(), true);
        string_match_field(v, "scheme", self.scheme.as_ref(), false);
        string_match_field(v, "method", self.method.as_ref(), false);
        string_match_field(v, "authority", self.authority.as_ref(), false);
        v.field("queryParams", |v| {
            for (name, sm) in &self.query_params {
                v.key(name, |v| string_match(v, sm, false));
            }
        });
        if self.port != 0 {
            v.field("port", |v| rules::port(v, self.port));
        }
        v.field("sourceLabels", |v| rules::labels(v, &self.source_labels));
        v.field("gateways", |v| gateway_names(v, &self.gateways));
        if !self.source_namespace.is_empty() && !rules::is_dns1123_label(&self.source_namespace) {
            v.field("sourceNamespace", |v| {
                v.error(format!(
                    "sourceNamespace match {} is invalid",
                    self.source_namespace
                ))
            });
        }
    }
}

fn string_match_field(
    v: &mut Validator,
    field: &str,
    sm: Option<&StringMatch>,
    allow_empty_prefix: bool,
) {
    if let Some(sm) = sm {
        v.field(field, |v| string_match(v, sm, allow_empty_prefix));
    }
}

/// HTTP/2 pseudo-headers a match may name (RFC 7540 section 8.1.2.3 and 8.1.2.4).
const PSEUDO_HEADERS: &[&str] = &[":method", ":scheme", ":authority", ":path", ":status"];

/// Istio's `ValidateHTTPHeaderNameOrJwtClaimRoute`: a JWT claim, a pseudo-header, or an
/// RFC 7230 token.
pub(super) fn header_name_or_jwt_claim(v: &mut Validator, name: &str) {
    if name.is_empty() {
        v.error("header name cannot be empty");
    } else if !is_jwt_claim(name) && !PSEUDO_HEADERS.contains(&name) && !is_header_token(name) {
        v.error(format!(
            "header name {name:?} is not a valid header name (an HTTP token: letters, digits and !#$%&'*+-.^_`|~)"
        ));
    }
}

/// Istio's `validHeaderNameRegex`: an RFC 7230 token (`tchar`s only).
pub(super) fn is_header_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_internal_header(name: &str) -> bool {
    name.starts_with(':') || name.eq_ignore_ascii_case("host")
}

fn is_authority_header(name: &str) -> bool {
    name.eq_ignore_ascii_case(":authority") || name.eq_ignore_ascii_case("host")
}

impl Validate for Headers {
    fn validate(&self, v: &mut Validator) {
        if let Some(req) = &self.request {
            v.field("request", |v| header_ops(v, req, true));
        }
        if let Some(resp) = &self.response {
            v.field("response", |v| header_ops(v, resp, false));
        }
    }
}

/// Request `set`/`add` may target the authority (checked separately for duplicates); every
/// other operation may touch neither pseudo-headers nor Host.
fn header_ops(v: &mut Validator, ops: &HeaderOperations, request: bool) {
    for (field, map) in [("add", &ops.add), ("set", &ops.set)] {
        header_map(v, field, map, request);
    }
    v.field("remove", |v| {
        for (i, name) in ops.remove.iter().enumerate() {
            v.index(i, |v| header_op_name(v, name, false));
        }
    });
}

fn header_map(
    v: &mut Validator,
    field: &str,
    map: &BTreeMap<String, String>,
    allow_authority: bool,
) {
    v.field(field, |v| {
        for (name, val) in map {
            v.key(name, |v| {
                header_op_name(v, name, allow_authority);
                header_value(v, val);
            });
        }
    });
}

fn header_op_name(v: &mut Validator, name: &str, allow_authority: bool) {
    if name.is_empty() {
        v.error("header name cannot be empty");
    } else if allow_authority {
        if is_internal_header(name) && !is_authority_header(name) {
            v.error(format!(
                "invalid header {name:?}: header cannot have \":\" prefix"
            ));
        }
    } else if name.eq_ignore_ascii_case("host") {
        v.error(format!("invalid header {name:?}: cannot set Host header"));
    } else if is_internal_header(name) {
        v.error(format!(
            "invalid header {name:?}: header cannot have \":\" prefix"
        ));
    }
}

/// Istio's `ValidateHTTPHeaderValue`: no control characters, and Envoy's `%VAR%` syntax.
fn header_value(v: &mut Validator, val: &str) {
    if val
        .bytes()
        .any(|b| b <= 0x08 || (0x0A..=0x1F).contains(&b) || b == 0x7F)
    {
        v.error(format!(
            "header value configuration {val:?} is invalid (control characters are not allowed)"
        ));
        return;
    }
    if let Err(e) = envoy_header_format(val) {
        v.error(format!("header value configuration: {e}"));
    }
}

/// Port of Envoy's header formatter parser (as Istio's `validateHeaderValue` ports it):
/// `%` starts a variable that must be closed; `%%` is a literal percent.
fn envoy_header_format(val: &str) -> Result<(), String> {
    #[derive(PartialEq)]
    enum S {
        Literal,
        VarName,
        ExpectArray,
        ExpectString,
        InString,
        ExpectDelimOrEnd,
        ExpectArgsEnd,
        ExpectVarEnd,
    }
    let b = val.as_bytes();
    let mut state = S::Literal;
    let mut pos = 0;
    while pos < b.len() {
        let ch = b[pos];
        let has_next = pos + 1 < b.len();
        match state {
            S::Literal => {
                if ch == b'%' {
                    if !has_next {
                        return Err("invalid header configuration. Un-escaped %".into());
                    }
                    if b[pos + 1] == b'%' {
                        pos += 1;
                    } else {
                        state = S::VarName;
                    }
                }
            }
            S::VarName => {
                if ch == b'%' {
                    state = S::Literal;
                } else if ch == b'(' {
                    state = S::ExpectArray;
                }
            }
            S::ExpectArray => {
                if ch == b'[' {
                    state = S::ExpectString;
                } else if ch != b' ' {
                    state = S::InString;
                }
            }
            S::ExpectDelimOrEnd => match ch {
                b',' => state = S::ExpectString,
                b']' => state = S::ExpectArgsEnd,
                b' ' => {}
                _ => {
                    return Err(
                        "invalid header configuration. Expecting ',', ']', or whitespace".into(),
                    );
                }
            },
            S::ExpectString => {
                if ch == b'"' {
                    state = S::InString;
                } else if ch != b' ' {
                    return Err("invalid header configuration. Expecting '\"'".into());
                }
            }
            S::InString => {
                if ch == b'\\' {
                    if !has_next {
                        return Err(
                            "invalid header configuration. Un-terminated backslash in JSON string"
                                .into(),
                        );
                    }
                    pos += 1;
                } else if ch == b')' {
                    state = S::ExpectVarEnd;
                } else if ch == b'"' {
                    state = S::ExpectDelimOrEnd;
                }
            }
            S::ExpectArgsEnd => {
                if ch == b')' {
                    state = S::ExpectVarEnd;
                } else if ch != b' ' {
                    return Err("invalid header configuration. Expecting ')' or whitespace".into());
                }
            }
            S::ExpectVarEnd => {
                if ch == b'%' {
                    state = S::Literal;
                } else if ch != b' ' {
                    return Err("invalid header configuration. Expecting '%' or whitespace".into());
                }
            }
        }
        pos += 1;
    }
    if state != S::Literal {
        return Err(format!(
            "invalid header configuration. Un-terminated variable expression '{val}'"
        ));
    }
    Ok(())
}

impl Validate for HTTPRouteDestination {
    fn validate(&self, v: &mut Validator) {
        v.nested("headers", &self.headers);
        destination_and_weight(v, self.destination.as_ref(), self.weight);
    }
}
