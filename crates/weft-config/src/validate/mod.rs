//! Istio's semantic validation (the rules its validating webhook enforces), run on typed
//! resources after they have loaded. Rules report through a [`Validator`], which tracks the
//! field path so every finding names exactly where it applies.

#[cfg(test)]
pub(crate) mod istio_table;
pub mod rules;

use crate::diag::{Code, Finding, Severity};
use crate::path::{FieldPath, Segment};

/// Implemented by every resource spec (and the message types inside it).
pub trait Validate {
    fn validate(&self, v: &mut Validator);
}

impl<T: Validate> Validate for Option<T> {
    fn validate(&self, v: &mut Validator) {
        if let Some(t) = self {
            t.validate(v);
        }
    }
}

/// Collects findings while walking a resource.
#[derive(Debug)]
pub struct Validator {
    path: FieldPath,
    namespace: String,
    findings: Vec<Finding>,
}

impl Validator {
    /// `namespace` is the object's namespace (after defaulting); short host names resolve
    /// relative to it.
    pub fn new(namespace: impl Into<String>) -> Self {
        Validator {
            path: FieldPath::root(),
            namespace: namespace.into(),
            findings: Vec::new(),
        }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn path(&self) -> &FieldPath {
        &self.path
    }

    pub fn into_findings(self) -> Vec<Finding> {
        self.findings
    }

    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// True if anything at or below the current path was reported as an error.
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(Finding::is_error)
    }

    fn scoped<R>(&mut self, seg: Segment, f: impl FnOnce(&mut Self) -> R) -> R {
        self.path.push(seg);
        let r = f(self);
        self.path.pop();
        r
    }

    /// Runs `f` one field deeper (`name` in its serialized, camelCase form).
    pub fn field<R>(&mut self, name: &str, f: impl FnOnce(&mut Self) -> R) -> R {
        self.scoped(Segment::Field(name.to_string()), f)
    }

    /// Runs `f` on list element `i`.
    pub fn index<R>(&mut self, i: usize, f: impl FnOnce(&mut Self) -> R) -> R {
        self.scoped(Segment::Index(i), f)
    }

    /// Runs `f` on the entry `key` of a free-form map.
    pub fn key<R>(&mut self, key: &str, f: impl FnOnce(&mut Self) -> R) -> R {
        self.scoped(Segment::Key(key.to_string()), f)
    }

    /// Validates `value` as field `name`.
    pub fn nested<T: Validate + ?Sized>(&mut self, name: &str, value: &T) {
        self.field(name, |v| value.validate(v));
    }

    /// Validates every element of the list field `name`.
    pub fn each<T: Validate>(&mut self, name: &str, items: &[T]) {
        self.field(name, |v| {
            for (i, item) in items.iter().enumerate() {
                v.index(i, |v| item.validate(v));
            }
        });
    }

    pub fn push(&mut self, mut finding: Finding) {
        if finding.path.is_root() {
            finding.path = self.path.clone();
        }
        self.findings.push(finding);
    }

    fn report(&mut self, severity: Severity, code: Code, msg: String, hint: Option<String>) {
        self.findings.push(Finding {
            severity,
            code,
            message: msg,
            suggestion: hint,
            location: None,
            object: None,
            path: self.path.clone(),
        });
    }

    /// The webhook would reject this value.
    pub fn error(&mut self, msg: impl Into<String>) {
        self.report(Severity::Error, Code::InvalidValue, msg.into(), None);
    }

    /// An error with advice on what was probably meant.
    pub fn error_hint(&mut self, msg: impl Into<String>, hint: impl Into<String>) {
        self.report(
            Severity::Error,
            Code::InvalidValue,
            msg.into(),
            Some(hint.into()),
        );
    }

    /// A required field is missing or empty.
    pub fn missing(&mut self, msg: impl Into<String>) {
        self.report(Severity::Error, Code::MissingField, msg.into(), None);
    }

    /// A required field is missing, with advice on what to write.
    pub fn missing_hint(&mut self, msg: impl Into<String>, hint: impl Into<String>) {
        self.report(
            Severity::Error,
            Code::MissingField,
            msg.into(),
            Some(hint.into()),
        );
    }

    /// Fields set together that may not be.
    pub fn conflict(&mut self, msg: impl Into<String>) {
        self.report(Severity::Error, Code::Conflict, msg.into(), None);
    }

    /// Accepted, but probably not what the author meant.
    pub fn warn(&mut self, msg: impl Into<String>) {
        self.report(Severity::Warning, Code::InvalidValue, msg.into(), None);
    }

    /// A deprecated field or value: accepted with a warning naming the replacement.
    pub fn deprecated(&mut self, msg: impl Into<String>) {
        self.report(Severity::Warning, Code::Deprecated, msg.into(), None);
    }

    /// Reports with full control over severity and code.
    pub fn report_code(&mut self, severity: Severity, code: Code, msg: impl Into<String>) {
        self.report(severity, code, msg.into(), None);
    }
}

/// Validates `value` as a resource spec in `namespace` and returns the findings with paths
/// relative to the spec (used by unit tests; loading prefixes `spec`).
pub fn check<T: Validate + ?Sized>(value: &T, namespace: &str) -> Vec<Finding> {
    let mut v = Validator::new(namespace);
    value.validate(&mut v);
    v.into_findings()
}
