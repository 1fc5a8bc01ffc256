//! `weft validate`: load configuration, validate it with Istio's rules, print findings.

use crate::cli::{Output, ValidateArgs};
use std::io::Write;
use weft_config::{Severity, load_and_validate};

/// Exit status: no errors (warnings allowed).
pub const EXIT_OK: i32 = 0;
/// Exit status: at least one error.
pub const EXIT_INVALID: i32 = 1;
/// Exit status: usage or I/O problem.
pub const EXIT_USAGE: i32 = 2;

/// Runs the command, writing findings to `out` and the summary or I/O errors to `err`.
pub fn run(args: &ValidateArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let result = match load_and_validate(&args.files) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "weft validate: {e}");
            return EXIT_USAGE;
        }
    };
    let errors = result
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = result.findings.len() - errors;
    let written = match args.output {
        Output::Text => result
            .findings
            .iter()
            .try_for_each(|f| writeln!(out, "{f}")),
        Output::Json => {
            let doc = serde_json::json!({
                "findings": result.findings,
                "summary": {
                    "resources": result.resources.len(),
                    "errors": errors,
                    "warnings": warnings,
                },
            });
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            )
        }
    };
    if let Err(e) = written {
        let _ = writeln!(err, "weft validate: writing output: {e}");
        return EXIT_USAGE;
    }
    let _ = writeln!(
        err,
        "{} resource{} checked: {errors} error{}, {warnings} warning{}",
        result.resources.len(),
        plural(result.resources.len()),
        plural(errors),
        plural(warnings),
    );
    if errors > 0 { EXIT_INVALID } else { EXIT_OK }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
