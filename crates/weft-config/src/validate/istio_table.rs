//! The harness for Istio's own validation test tables (`tests_istio.rs` of each kind): every
//! case of a table runs, and one failure lists every case whose outcome differs from Istio's.

use super::{Validate, check};
use crate::diag::{Finding, Severity};
use serde_json::Value;

/// Istio's expected outcome for one table case.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Want {
    /// Accepted: no error (and no warning, where Istio's harness checks warnings).
    Valid,
    /// Rejected: at least one error.
    Error,
    /// Accepted with a warning: at least one warning and no error.
    Warning,
}

/// Whether `findings` are the outcome `want` (see [`run`] for `warnings_checked`).
pub(crate) fn verdict(findings: &[Finding], want: Want, warnings_checked: bool) -> bool {
    let err = findings.iter().any(|f| f.severity == Severity::Error);
    let warn = findings.iter().any(|f| f.severity == Severity::Warning);
    match want {
        Want::Valid => !(err || (warnings_checked && warn)),
        Want::Error => err,
        Want::Warning => warn && !err,
    }
}

/// Runs `cases` (name, input, outcome) against `T` in `namespace`. `warnings_checked` is
/// whether Istio's harness for this table also requires valid cases to carry no warning;
/// `wrap` places each input where the rule runs (e.g. a route inside a VirtualService).
pub(crate) fn run<T>(
    cases: Vec<(&str, Value, Want)>,
    namespace: &str,
    warnings_checked: bool,
    wrap: impl Fn(Value) -> Value,
) where
    T: serde::de::DeserializeOwned + Validate,
{
    let mut differ = Vec::new();
    for (name, input, want) in cases {
        let value: T = match serde_json::from_value(wrap(input)) {
            Ok(v) => v,
            Err(e) => {
                differ.push(format!("{name}: does not deserialize: {e}"));
                continue;
            }
        };
        let fs = check(&value, namespace);
        if !verdict(&fs, want, warnings_checked) {
            let got: Vec<String> = fs
                .iter()
                .map(|f| format!("{} {}: {}", f.severity, f.path, f.message))
                .collect();
            differ.push(format!("{name}: want {want:?}, got {got:?}"));
        }
    }
    assert!(
        differ.is_empty(),
        "{} case(s) differ from Istio:\n{}",
        differ.len(),
        differ.join("\n")
    );
}

/// A table whose Go harness checks warnings too, in namespace `default`.
pub(crate) fn table<T>(cases: Vec<(&str, Value, Want)>)
where
    T: serde::de::DeserializeOwned + Validate,
{
    run::<T>(cases, "default", true, |v| v);
}

/// A table whose Go harness only looks at the error, so a valid case may warn.
pub(crate) fn table_errors_only<T>(cases: Vec<(&str, Value, Want)>)
where
    T: serde::de::DeserializeOwned + Validate,
{
    run::<T>(cases, "default", false, |v| v);
}
