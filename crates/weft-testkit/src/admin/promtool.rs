//! `promtool check metrics` (Debian's `prometheus` package, installed by
//! `scripts/install-test-deps.sh`) as the judge of a `/stats/prometheus` body. promtool exits
//! 1 when the exposition does not parse and 3 when it only has lint findings; Envoy's own
//! output always has lint findings (its counters lack `_total`, nothing has HELP text), so a
//! verdict keeps the findings grouped by kind for a test to compare with Envoy's.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::Error;

/// promtool's exit code for "parsed, but lint found problems".
const LINT_EXIT: i32 = 3;

/// What `promtool check metrics` said about one exposition.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub code: Option<i32>,
    /// The `error while linting: ...` line when the text did not parse.
    pub parse_error: Option<String>,
    /// Lint finding (the text after the metric name) to the metrics it was raised for.
    pub lint: BTreeMap<String, BTreeSet<String>>,
}

impl Verdict {
    /// The exposition parsed; lint findings may remain.
    pub fn parsed(&self) -> bool {
        self.parse_error.is_none() && matches!(self.code, Some(0) | Some(LINT_EXIT))
    }

    /// The distinct kinds of lint finding.
    pub fn lint_kinds(&self) -> BTreeSet<String> {
        self.lint.keys().cloned().collect()
    }
}

/// `WEFT_PROMTOOL` if set, else `promtool` on `PATH`.
pub fn binary() -> Result<PathBuf, Error> {
    if let Some(p) = std::env::var_os("WEFT_PROMTOOL") {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("promtool"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::Conformance(
                "promtool not found on PATH; run scripts/install-test-deps.sh (Debian package \
                 prometheus) or set WEFT_PROMTOOL"
                    .to_string(),
            )
        })
}

/// Runs `promtool check metrics` on `exposition`.
pub fn check_metrics(exposition: &str) -> Result<Verdict, Error> {
    let tool = binary()?;
    let mut child = Command::new(&tool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Error::io(format!("starting {}", tool.display())))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| Error::Conformance("promtool has no stdin pipe".to_string()))?;
    // Written from a second thread: promtool may fill its output pipes before it has read all
    // of a large input.
    let output = std::thread::scope(|scope| {
        let writer = scope.spawn(move || stdin.write_all(exposition.as_bytes()));
        let output = child.wait_with_output();
        (writer.join(), output)
    });
    let (written, output) = output;
    let output = output.map_err(Error::io("waiting for promtool"))?;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(Error::io("writing to promtool")(e)),
        Err(_) => return Err(Error::Conformance("the promtool writer panicked".into())),
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(verdict(output.status.code(), &text))
}

fn verdict(code: Option<i32>, output: &str) -> Verdict {
    let mut parse_error = None;
    let mut lint: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in output.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.starts_with("error while linting") {
            parse_error = Some(line.to_string());
        } else if let Some((metric, finding)) = line.split_once(' ') {
            lint.entry(finding.to_string())
                .or_default()
                .insert(metric.to_string());
        }
    }
    Verdict {
        code,
        parse_error,
        lint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_are_grouped_by_kind() {
        let v = verdict(
            Some(3),
            "a_x no help text\nb_y no help text\nb_y counter metrics should have \"_total\" suffix\n",
        );
        assert!(v.parsed());
        assert_eq!(v.lint["no help text"].len(), 2);
        assert_eq!(v.lint_kinds().len(), 2);
    }

    #[test]
    fn a_parse_error_is_not_parsed() {
        let v = verdict(
            Some(1),
            "error while linting: text format parsing error in line 1\n",
        );
        assert!(!v.parsed());
        assert!(v.parse_error.is_some());
    }
}
