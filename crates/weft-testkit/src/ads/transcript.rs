//! The ordered record of what one proxy showed in one ADS scenario: each step's label and
//! value (an observation, a readiness answer, a subscription) in the order the scenario
//! took them. Steps must be equal between Envoy and Weft; notes (error texts, which kind of
//! "not serving" was seen) are reported but never compared, since the wording is a
//! proxy's own.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::{Error, ProxyKind};

/// One proxy's steps and notes.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    steps: Vec<(String, Value)>,
    notes: Vec<(String, String)>,
}

impl Transcript {
    /// A compared step.
    pub fn record(&mut self, label: &str, value: impl Serialize) {
        let value = serde_json::to_value(value)
            .unwrap_or_else(|e| Value::String(format!("(unserialisable: {e})")));
        self.steps.push((label.to_string(), value));
    }

    /// A reported, uncompared detail.
    pub fn note(&mut self, label: &str, text: impl Into<String>) {
        self.notes.push((label.to_string(), text.into()));
    }

    pub fn steps(&self) -> &[(String, Value)] {
        &self.steps
    }

    pub fn notes(&self) -> &[(String, String)] {
        &self.notes
    }

    /// One line per step and note.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (label, value) in &self.steps {
            let _ = writeln!(out, "  {label}: {value}");
        }
        for (label, text) in &self.notes {
            let _ = writeln!(out, "  (note) {label}: {text:?}");
        }
        out
    }
}

/// One proxy's run of a scenario: its transcript and how the run ended.
#[derive(Debug)]
pub struct Run {
    pub kind: ProxyKind,
    pub transcript: Transcript,
    pub result: Result<(), Error>,
}

/// `Ok(summary)` when every run passed and all transcripts agree step by step; otherwise
/// `Err` listing each failed run and each step where two proxies differ.
pub fn compare(scenario: &str, runs: &[Run]) -> Result<String, Error> {
    let mut failures = Vec::new();
    let mut summary = String::new();
    for run in runs {
        let _ = write!(
            summary,
            "[{}] {scenario}:\n{}",
            run.kind,
            run.transcript.render()
        );
        if let Err(e) = &run.result {
            failures.push(format!("[{}] {scenario} failed: {e}", run.kind));
        }
    }
    if let [first, rest @ ..] = runs {
        for other in rest {
            let (a, b) = (first.transcript.steps(), other.transcript.steps());
            for i in 0..a.len().max(b.len()) {
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) if x == y => {}
                    (Some((la, va)), Some((lb, vb))) => failures.push(format!(
                        "step {i}: {} and {} differ\n  {}: {la}: {va}\n  {}: {lb}: {vb}",
                        first.kind, other.kind, first.kind, other.kind
                    )),
                    // A run that failed earlier has fewer steps; its error says why.
                    _ if first.result.is_err() || other.result.is_err() => break,
                    (x, y) => failures.push(format!(
                        "step {i}: {} has {x:?}, {} has {y:?}",
                        first.kind, other.kind
                    )),
                }
            }
        }
    }
    if failures.is_empty() {
        Ok(summary)
    } else {
        Err(Error::Conformance(format!(
            "{}\n\ntranscripts:\n{summary}",
            failures.join("\n\n")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kind: ProxyKind, steps: &[(&str, i32)], result: Result<(), Error>) -> Run {
        let mut transcript = Transcript::default();
        for (l, v) in steps {
            transcript.record(l, v);
        }
        transcript.note("detail", format!("{kind} words"));
        Run {
            kind,
            transcript,
            result,
        }
    }

    #[test]
    fn equal_steps_pass_and_notes_are_not_compared() {
        let runs = [
            run(ProxyKind::Envoy, &[("a", 1), ("b", 2)], Ok(())),
            run(ProxyKind::Weft, &[("a", 1), ("b", 2)], Ok(())),
        ];
        let summary = compare("s", &runs).unwrap();
        assert!(summary.contains("envoy words") && summary.contains("weft words"));
    }

    #[test]
    fn a_differing_step_or_a_failed_run_fails() {
        let runs = [
            run(ProxyKind::Envoy, &[("a", 1), ("b", 2)], Ok(())),
            run(ProxyKind::Weft, &[("a", 1), ("b", 3)], Ok(())),
        ];
        let err = compare("s", &runs).unwrap_err().to_string();
        assert!(err.contains("step 1: envoy and weft differ"), "{err}");
        let runs = [
            run(ProxyKind::Envoy, &[("a", 1), ("b", 2)], Ok(())),
            run(
                ProxyKind::Weft,
                &[("a", 1)],
                Err(Error::Conformance("boom".into())),
            ),
        ];
        let err = compare("s", &runs).unwrap_err().to_string();
        assert!(err.contains("[weft] s failed: boom"), "{err}");
        assert!(!err.contains("step 1"), "{err}");
        let runs = [
            run(ProxyKind::Envoy, &[("a", 1), ("b", 2)], Ok(())),
            run(ProxyKind::Weft, &[("a", 1)], Ok(())),
        ];
        assert!(compare("s", &runs).is_err());
    }
}
