//! Istio's `ValidateTelemetry` (validateTelemetryTracing/Metrics/AccessLogging and the CEL
//! parse of access log filters), plus the CRD's rules (oneofs, minimum lengths, the
//! reporting interval minimum, the tag override CEL rules).

use super::{
    AccessLogging, CustomTag, MetricsOverrides, Operation, ProviderRef, Telemetry, Tracing,
};
use crate::security::authorization_policy::targeting::validate_targeting;
use crate::types::Duration;
use crate::validate::{Validate, Validator, rules};

impl Validate for Telemetry {
    fn validate(&self, v: &mut Validator) {
        validate_targeting(v, &self.selector, &self.target_ref, &self.target_refs);
        v.field("metrics", |v| {
            for (i, m) in self.metrics.iter().enumerate() {
                v.index(i, |v| {
                    providers(v, &m.providers);
                    v.each("overrides", &m.overrides);
                    if let Some(d) = &m.reporting_interval {
                        v.field("reportingInterval", |v| at_least_1ms(v, d));
                    }
                });
            }
        });
        if self.tracing.len() > 1 {
            v.field("tracing", |v| {
                v.warn(
                    "multiple tracing is not currently supported (Istio merges the entries \
                     in order, later fields overriding earlier ones)",
                )
            });
        }
        v.each("tracing", &self.tracing);
        v.each("accessLogging", &self.access_logging);
    }
}

/// Istio's `validateTelemetryProviders`: every provider reference names a provider.
fn providers(v: &mut Validator, list: &[ProviderRef]) {
    v.field("providers", |v| {
        for (i, p) in list.iter().enumerate() {
            if p.name.is_empty() {
                v.index(i, |v| {
                    v.field("name", |v| v.missing("providers.name may not be empty"))
                });
            }
        }
    });
}

/// The CRD's `duration(self) >= duration('1ms')`.
fn at_least_1ms(v: &mut Validator, d: &Duration) {
    if *d < Duration::from_millis(1) {
        v.error(format!(
            "must be a valid duration greater than 1ms (got {d})"
        ));
    }
}

impl Validate for MetricsOverrides {
    fn validate(&self, v: &mut Validator) {
        if let Some(m) = &self.r#match {
            v.field("match", |v| {
                rules::oneof(
                    v,
                    &[
                        ("metric", m.metric.is_some()),
                        ("customMetric", m.custom_metric.is_some()),
                    ],
                );
                if m.custom_metric.as_deref() == Some("") {
                    v.field("customMetric", |v| v.error("customMetric may not be empty"));
                }
            });
        }
        v.field("tagOverrides", |v| {
            for (name, t) in &self.tag_overrides {
                v.key(name, |v| {
                    if name.is_empty() {
                        v.warn("tagOverrides.name may not be empty");
                    }
                    match t.operation {
                        Operation::Upsert if t.value.is_empty() => v.field("value", |v| {
                            v.missing("tagOverrides.value must be set when operation is UPSERT (the default)")
                        }),
                        Operation::Remove if !t.value.is_empty() => v.field("value", |v| {
                            v.error("tagOverrides.value may only be set when operation is UPSERT")
                        }),
                        _ => {}
                    }
                });
            }
        });
    }
}

impl Validate for Tracing {
    fn validate(&self, v: &mut Validator) {
        if self.providers.len() > 1 {
            v.field("providers", |v| {
                v.warn("multiple providers is not currently supported; only the first is used")
            });
        }
        providers(v, &self.providers);
        if let Some(p) = self.random_sampling_percentage {
            v.field("randomSamplingPercentage", |v| rules::percent(v, p));
        }
        v.field("customTags", |v| {
            for (name, tag) in &self.custom_tags {
                v.key(name, |v| {
                    if name.is_empty() {
                        v.error("tag name may not be empty");
                    }
                    tag.validate(v);
                });
            }
        });
    }
}

impl Validate for CustomTag {
    fn validate(&self, v: &mut Validator) {
        rules::oneof(
            v,
            &[
                ("literal", self.literal.is_some()),
                ("environment", self.environment.is_some()),
                ("header", self.header.is_some()),
            ],
        );
        if let Some(l) = &self.literal
            && l.value.is_empty()
        {
            v.field("literal", |v| {
                v.field("value", |v| v.missing("literal tag value may not be empty"))
            });
        }
        if let Some(e) = &self.environment
            && e.name.is_empty()
        {
            v.field("environment", |v| {
                v.field("name", |v| {
                    v.missing("environment tag name may not be empty")
                })
            });
        }
        if let Some(h) = &self.header
            && h.name.is_empty()
        {
            v.field("header", |v| {
                v.field("name", |v| v.missing("header tag name may not be empty"))
            });
        }
    }
}

impl Validate for AccessLogging {
    fn validate(&self, v: &mut Validator) {
        if let Some(f) = &self.filter {
            v.field("filter", |v| {
                v.field("expression", |v| {
                    if let Err(e) = check_cel_syntax(&f.expression) {
                        v.error(format!("must be a valid CEL expression: {e}"));
                    }
                })
            });
        }
        providers(v, &self.providers);
    }
}

/// A syntax check standing in for Istio's `cel.Parse` of access log filters: the
/// expression must be present, its strings terminated, its brackets balanced, and it may
/// not end in an operator. Type errors (unknown attributes) are not detected, as Istio's
/// parse-only check does not detect them either.
pub(super) fn check_cel_syntax(expr: &str) -> Result<(), String> {
    let trimmed = expr.trim();
    if trimmed.is_empty() {
        return Err("the expression is empty".into());
    }
    let mut stack: Vec<char> = Vec::new();
    let mut chars = trimmed.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' | '\'' => {
                let triple = trimmed[i..].starts_with(&format!("{c}{c}{c}"));
                let raw = i > 0 && matches!(trimmed.as_bytes()[i - 1], b'r' | b'R');
                let close = if triple {
                    format!("{c}{c}{c}")
                } else {
                    c.to_string()
                };
                if triple {
                    chars.next();
                    chars.next();
                }
                let mut closed = false;
                while let Some((j, d)) = chars.next() {
                    if d == '\\' && !raw {
                        chars.next();
                    } else if trimmed[j..].starts_with(&close) {
                        for _ in 1..close.len() {
                            chars.next();
                        }
                        closed = true;
                        break;
                    } else if d == '\n' && !triple {
                        break;
                    }
                }
                if !closed {
                    return Err(format!("unterminated string literal at offset {i}"));
                }
            }
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(open) {
                    return Err(format!("unbalanced {c:?} at offset {i}"));
                }
            }
            _ => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!("unclosed {open:?}"));
    }
    if trimmed.ends_with([
        '&', '|', '!', '+', '-', '*', '/', '%', '<', '>', '=', '?', ':', ',', '.',
    ]) {
        return Err("the expression ends with an operator".into());
    }
    Ok(())
}
