//! Readers for the three shapes Envoy's `/stats` comes in (text `name: value` lines,
//! `?format=json`, and `/stats/prometheus`), so tests compare values by name instead of
//! diffing bodies whose order and extra entries legitimately differ between proxies.

use std::collections::BTreeMap;

use crate::Error;

/// `/stats` text: every `name: value` line, value kept as text (histogram lines hold
/// percentiles, not numbers).
pub fn text_stats(body: &str) -> BTreeMap<String, String> {
    body.lines()
        .filter_map(|line| line.split_once(": "))
        .map(|(name, value)| (name.to_string(), value.trim().to_string()))
        .collect()
}

/// `/stats?format=json`: the `{"name", "value"}` entries of the `stats` array; entries without
/// a name (Envoy's `{"histograms": ...}`) are skipped.
pub fn json_stats(body: &[u8]) -> Result<BTreeMap<String, serde_json::Value>, Error> {
    let doc: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        Error::Conformance(format!(
            "/stats?format=json is not JSON ({e}): {}",
            String::from_utf8_lossy(body)
        ))
    })?;
    let entries = doc.get("stats").and_then(|s| s.as_array()).ok_or_else(|| {
        Error::Conformance(format!("/stats?format=json has no stats array: {doc}"))
    })?;
    Ok(entries
        .iter()
        .filter_map(|e| {
            let name = e.get("name")?.as_str()?;
            Some((name.to_string(), e.get("value")?.clone()))
        })
        .collect())
}

/// One sample of a Prometheus text exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample line of a Prometheus text exposition; comment lines are skipped, and a line
/// that does not parse is an error naming it.
pub fn prometheus_samples(text: &str) -> Result<Vec<Sample>, Error> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            sample(l).ok_or_else(|| Error::Conformance(format!("bad Prometheus sample line {l:?}")))
        })
        .collect()
}

/// The value of `name` with exactly the label set `labels`, if exposed once; `None` if absent.
pub fn prometheus_value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples
        .iter()
        .find(|s| s.name == name && s.labels == want)
        .map(|s| s.value)
}

fn sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, tail) = label_set(after)?;
        labels = parsed;
        rest = tail;
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// Parses `k="v",...}` (the opening brace already consumed), honouring `\\`, `\"` and `\n`
/// escapes; returns the labels and what follows the closing brace.
fn label_set(mut s: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    loop {
        s = s.trim_start_matches([',', ' ']);
        if let Some(tail) = s.strip_prefix('}') {
            return Some((labels, tail));
        }
        let (key, after) = s.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.trim().to_string(), value);
        s = &after[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_stats_keep_counters_and_histograms() {
        let m = text_stats("a.b: 3\nc.d: P0(1,1) P50(2,2)\nno colon here\n");
        assert_eq!(m.get("a.b").map(String::as_str), Some("3"));
        assert_eq!(m.get("c.d").map(String::as_str), Some("P0(1,1) P50(2,2)"));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn json_stats_skip_histograms() {
        let m = json_stats(br#"{"stats":[{"name":"x","value":2},{"histograms":{}}]}"#).unwrap();
        assert_eq!(m.get("x"), Some(&serde_json::json!(2)));
        assert_eq!(m.len(), 1);
        assert!(json_stats(b"{}").is_err());
    }

    #[test]
    fn prometheus_labels_must_match_exactly() {
        let text = "# TYPE m counter\nm{a=\"1\",b=\"x\\\"y\"} 5\nm{a=\"1\"} 7\nplain 2.5\nh_bucket{le=\"+Inf\"} 3\n";
        let s = prometheus_samples(text).unwrap();
        assert_eq!(prometheus_value(&s, "m", &[("a", "1")]), Some(7.0));
        assert_eq!(
            prometheus_value(&s, "m", &[("a", "1"), ("b", "x\"y")]),
            Some(5.0)
        );
        assert_eq!(prometheus_value(&s, "plain", &[]), Some(2.5));
        assert_eq!(prometheus_value(&s, "m", &[("a", "2")]), None);
        assert!(prometheus_samples("m{a=\"1\" 3").is_err());
    }
}
