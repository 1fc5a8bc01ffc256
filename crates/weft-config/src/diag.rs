//! Findings: what validation and analysis report, with enough context (file:line:column,
//! `Kind namespace/name`, field path) that a user can fix the YAML without guessing.

use crate::path::FieldPath;
use serde::Serialize;
use std::fmt;

/// Istio distinguishes errors (the webhook rejects the resource) from warnings (accepted,
/// but probably not what the author meant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// A stable identifier for the kind of finding, so scripts can filter on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// The YAML/JSON text itself does not parse.
    Syntax,
    /// The document is not a Kubernetes object (no apiVersion/kind, not a mapping).
    NotAnObject,
    /// apiVersion/kind that Weft does not know.
    UnknownKind,
    /// A field the schema does not have.
    UnknownField,
    /// A value of the wrong type or form for its field.
    InvalidType,
    /// A value the field's rules reject.
    InvalidValue,
    /// A field that must be set is missing or empty.
    MissingField,
    /// Fields that may not be set together.
    Conflict,
    /// A deprecated field or value.
    Deprecated,
    /// The same object defined twice.
    Duplicate,
    /// A reference to something that the loaded configuration does not define.
    ReferenceNotFound,
    /// I/O problems reading input.
    Io,
}

impl From<weft_yaml::Problem> for Code {
    fn from(p: weft_yaml::Problem) -> Self {
        match p {
            weft_yaml::Problem::Syntax => Code::Syntax,
            weft_yaml::Problem::UnknownField => Code::UnknownField,
            weft_yaml::Problem::InvalidType => Code::InvalidType,
            weft_yaml::Problem::InvalidValue => Code::InvalidValue,
            weft_yaml::Problem::MissingField => Code::MissingField,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self).ok();
        f.write_str(s.as_ref().and_then(|v| v.as_str()).unwrap_or("?"))
    }
}

/// Where in the input a finding points: 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl Location {
    pub fn new(file: &str, pos: weft_yaml::Pos) -> Self {
        Location {
            file: file.to_string(),
            line: pos.line as usize,
            column: pos.column as usize,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// `Kind namespace/name` of the object a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectRef {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// One thing validation or analysis has to say.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub code: Code,
    pub message: String,
    /// "did you mean …?" and similar advice, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectRef>,
    #[serde(
        serialize_with = "path_as_string",
        skip_serializing_if = "FieldPath::is_root"
    )]
    pub path: FieldPath,
}

fn path_as_string<S: serde::Serializer>(p: &FieldPath, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(p)
}

impl Finding {
    pub fn new(severity: Severity, code: Code, message: impl Into<String>) -> Self {
        Finding {
            severity,
            code,
            message: message.into(),
            suggestion: None,
            location: None,
            object: None,
            path: FieldPath::root(),
        }
    }

    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Finding::new(Severity::Error, code, message)
    }

    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        Finding::new(Severity::Warning, code, message)
    }

    pub fn with_suggestion(mut self, s: impl Into<String>) -> Self {
        self.suggestion = Some(s.into());
        self
    }

    pub fn at(mut self, path: FieldPath) -> Self {
        self.path = path;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Finding {
    /// `file:line:col: error[unknown-field]: Kind ns/name: spec.x: message (did you mean …?)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.location {
            write!(f, "{loc}: ")?;
        }
        write!(f, "{}[{}]: ", self.severity, self.code)?;
        if let Some(obj) = &self.object {
            write!(f, "{obj}: ")?;
        }
        if !self.path.is_root() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(s) = &self.suggestion {
            write!(f, " ({s})")?;
        }
        Ok(())
    }
}
