//! `/stats/prometheus`: Envoy's statistics in Prometheus' text format, with the scope's name
//! turned into a label as Envoy's default tag extractors do (`envoy_cluster_upstream_rq_total
//! {envoy_cluster_name="backend"}`).

use crate::stats::{Kind, Sample};
use std::fmt::Write;

/// Scope families whose second component is a name that becomes a label.
const TAGGED: &[(&str, &str)] = &[
    ("cluster.", "envoy_cluster_name"),
    ("http.", "envoy_http_conn_manager_prefix"),
    ("listener.", "envoy_listener_address"),
    ("tcp.", "envoy_tcp_prefix"),
];

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Splits `cluster.backend.upstream_rq_total` into metric and label, knowing the scope names
/// (which may contain dots) from `scopes`.
fn metric<'a>(
    name: &'a str,
    scopes: &[(String, String)],
) -> (String, Option<(&'static str, &'a str)>) {
    for (family, label) in TAGGED {
        if let Some(rest) = name.strip_prefix(family) {
            let scope = scopes
                .iter()
                .filter(|(f, _)| f == family)
                .map(|(_, s)| s.as_str())
                .filter(|s| rest.starts_with(s) && rest[s.len()..].starts_with('.'))
                .max_by_key(|s| s.len());
            if let Some(scope) = scope {
                let stat = &rest[scope.len() + 1..];
                let family_name = family.trim_end_matches('.');
                return (
                    format!("envoy_{family_name}_{}", sanitize(stat)),
                    Some((*label, &name[family.len()..family.len() + scope.len()])),
                );
            }
        }
    }
    (format!("envoy_{}", sanitize(name)), None)
}

/// One metric's samples: its kind, and each value with its label.
type Group<'a> = (Kind, Vec<(Option<(&'static str, &'a str)>, i64)>);

/// `samples` sorted by name; `scopes` are (family prefix, scope name) pairs.
pub fn render(samples: &[Sample], scopes: &[(String, String)]) -> String {
    let mut groups: std::collections::BTreeMap<String, Group<'_>> = Default::default();
    for s in samples {
        let (m, label) = metric(&s.name, scopes);
        groups
            .entry(m)
            .or_insert_with(|| (s.kind, Vec::new()))
            .1
            .push((label, s.value));
    }
    let mut out = String::new();
    for (name, (kind, values)) in groups {
        let t = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(out, "# TYPE {name} {t}");
        for (label, v) in values {
            match label {
                Some((k, val)) => {
                    let _ = writeln!(out, "{name}{{{k}=\"{}\"}} {v}", escape(val));
                }
                None => {
                    let _ = writeln!(out, "{name}{{}} {v}");
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_names_with_dots_become_labels() {
        let scopes = vec![("cluster.".to_string(), "outbound|80||a.b.svc".to_string())];
        let samples = vec![Sample {
            name: "cluster.outbound|80||a.b.svc.upstream_rq_total".into(),
            kind: Kind::Counter,
            value: 7,
        }];
        let text = render(&samples, &scopes);
        assert!(
            text.contains(
                "envoy_cluster_upstream_rq_total{envoy_cluster_name=\"outbound|80||a.b.svc\"} 7"
            ),
            "{text}"
        );
        assert!(
            text.contains("# TYPE envoy_cluster_upstream_rq_total counter"),
            "{text}"
        );
    }
}
