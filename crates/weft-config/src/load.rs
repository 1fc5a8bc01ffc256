//! Loading: files, directories (recursive), stdin; multi-document YAML and JSON; Kubernetes
//! `List`s. Every document becomes a typed [`Resource`] or a finding that says why not —
//! nothing is silently dropped.

use crate::de::Issue;
use crate::diag::{Code, Finding, Location, ObjectRef, Severity};
use crate::kinds::{self, KindInfo, Resource};
use crate::node::{Node, Pos};
use crate::path::{FieldPath, Segment};
use crate::schema::Schema;
use crate::suggest;
use crate::yaml;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A resource as loaded, with where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub resource: Resource,
    pub file: Arc<str>,
    /// The object's own node (for locating findings by path).
    pub node: Node,
    /// Path prefix inside the document (`items[2]` for List members).
    pub base: FieldPath,
    /// The MeshConfig inside an `istio` ConfigMap's `data.mesh`.
    pub embedded_mesh: Option<Box<crate::embedded::EmbeddedMesh>>,
}

impl Loaded {
    /// Location of `path` (relative to the object) in the source: the deepest node on the
    /// path that exists, so a missing field points at its parent.
    pub fn locate(&self, path: &FieldPath) -> Location {
        Location::new(&self.file, self.node.locate(path))
    }

    /// Attaches location, object and base path to a finding about this object.
    pub fn place(&self, mut f: Finding) -> Finding {
        f.location = Some(self.locate(&f.path));
        f.object = Some(self.resource.object_ref());
        f.path = self.base.join(&f.path);
        f
    }
}

/// The result of loading inputs: resources and findings (decode problems and, after
/// [`crate::validate_all`], validation and analysis).
#[derive(Debug, Default)]
pub struct LoadResult {
    pub resources: Vec<Loaded>,
    pub findings: Vec<Finding>,
}

impl LoadResult {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(Finding::is_error)
    }
}

/// Reading an input failed (exit status 2 territory, not a finding about content).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: not a file or directory")]
    NotFound(String),
}

/// Accumulates documents across inputs.
#[derive(Default)]
pub struct Loader {
    next_id: u32,
    out: LoadResult,
}

fn is_config_file(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

impl Loader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads a file, a directory (recursively: `.yaml`, `.yml`, `.json`, in name order) or
    /// `-` for standard input.
    pub fn load_path(&mut self, path: &str) -> Result<(), LoadError> {
        if path == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|source| LoadError::Io {
                    path: "<stdin>".into(),
                    source,
                })?;
            self.load_str("<stdin>", &text);
            return Ok(());
        }
        let p = Path::new(path);
        let meta = std::fs::metadata(p).map_err(|source| LoadError::Io {
            path: path.to_string(),
            source,
        })?;
        if meta.is_dir() {
            let mut files = Vec::new();
            collect(p, &mut files).map_err(|source| LoadError::Io {
                path: path.to_string(),
                source,
            })?;
            for f in files {
                self.load_file(&f)?;
            }
            Ok(())
        } else if meta.is_file() {
            self.load_file(p)
        } else {
            Err(LoadError::NotFound(path.to_string()))
        }
    }

    fn load_file(&mut self, p: &Path) -> Result<(), LoadError> {
        let name = p.display().to_string();
        let bytes = std::fs::read(p).map_err(|source| LoadError::Io {
            path: name.clone(),
            source,
        })?;
        match String::from_utf8(bytes) {
            Ok(text) => self.load_str(&name, &text),
            Err(e) => self.out.findings.push(Finding {
                location: Some(Location::new(&name, Pos { line: 1, column: 1 })),
                ..Finding::error(
                    Code::Syntax,
                    format!(
                        "file is not UTF-8 text (invalid byte at offset {})",
                        e.utf8_error().valid_up_to()
                    ),
                )
            }),
        }
        Ok(())
    }

    /// Loads YAML or JSON text named `name` (used in locations).
    pub fn load_str(&mut self, name: &str, text: &str) {
        let file: Arc<str> = Arc::from(name);
        let parsed = yaml::parse(text, &mut self.next_id);
        for e in parsed.errors {
            self.out.findings.push(Finding {
                location: Some(Location::new(name, e.pos)),
                ..Finding::error(Code::Syntax, format!("YAML syntax error: {}", e.message))
            });
        }
        for doc in parsed.documents {
            if let Some(root) = doc.root {
                self.load_object(&file, text, root, FieldPath::root());
            }
        }
    }

    pub fn finish(self) -> LoadResult {
        self.out
    }

    fn push(&mut self, f: Finding) {
        self.out.findings.push(f);
    }

    fn load_object(&mut self, file: &Arc<str>, source: &str, node: Node, base: FieldPath) {
        if node.as_map().is_none() {
            let msg = format!(
                "expected a Kubernetes object (a mapping with apiVersion and kind), found {}",
                node.describe()
            );
            let hint = if node.as_seq().is_some() {
                "several objects go in one file separated by `---`, or as `items:` of a `kind: List`"
            } else {
                "a resource starts with `apiVersion:` and `kind:`"
            };
            self.push(Finding {
                location: Some(Location::new(file, node.pos)),
                path: base,
                ..Finding::error(Code::NotAnObject, msg).with_suggestion(hint)
            });
            return;
        }
        let api_version = node.get_str("apiVersion").map(str::to_string);
        let kind = node.get_str("kind").map(str::to_string);
        let name = node
            .get("metadata")
            .and_then(|m| m.get_str("name"))
            .unwrap_or("")
            .to_string();
        let namespace = node
            .get("metadata")
            .and_then(|m| m.get_str("namespace"))
            .map(str::to_string);
        let (Some(api_version), Some(kind)) = (api_version, kind) else {
            let missing: Vec<&str> = ["apiVersion", "kind"]
                .into_iter()
                .filter(|k| node.get_str(k).is_none())
                .collect();
            self.push(Finding {
                location: Some(Location::new(file, node.pos)),
                path: base,
                ..Finding::error(
                    Code::NotAnObject,
                    format!(
                        "not a Kubernetes object: {} missing or not a string",
                        missing.join(" and ")
                    ),
                )
            });
            return;
        };
        let object = ObjectRef {
            kind: kind.clone(),
            namespace,
            name,
        };
        if kind == "List" || (kind.ends_with("List") && node.get("items").is_some()) {
            self.load_list(file, source, node, base, &object);
            return;
        }
        let (group, version) = match api_version.rsplit_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.clone()),
        };
        let Some(info) = self.resolve_kind(file, &node, &base, &object, &group, &version) else {
            return;
        };
        let object = ObjectRef {
            namespace: info.namespaced.then(|| {
                object
                    .namespace
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| kinds::DEFAULT_NAMESPACE.to_string())
            }),
            ..object
        };
        let (resource, issues) = info.decode(&node);
        for issue in issues {
            let f = self.issue_finding(file, &base, &object, info.schema(), issue);
            self.push(f);
        }
        let mut embedded_mesh = None;
        if matches!(resource, Some(Resource::ConfigMap(_)))
            && crate::embedded::is_mesh_config_map(&object.name)
            && let Some((mesh, issues)) = crate::embedded::read(&node, source, &mut self.next_id)
        {
            for issue in issues {
                let f = self.issue_finding(file, &base, &object, mesh_schema(), issue);
                self.push(f);
            }
            embedded_mesh = mesh.map(Box::new);
        }
        match resource {
            Some(resource) => self.out.resources.push(Loaded {
                resource,
                file: file.clone(),
                node,
                base,
                embedded_mesh,
            }),
            None => {
                let msg = format!("{} could not be decoded; it is skipped", object.kind);
                self.push(Finding {
                    location: Some(Location::new(file, node.pos)),
                    object: Some(object),
                    path: base,
                    ..Finding::error(Code::InvalidType, msg)
                })
            }
        }
    }

    fn load_list(
        &mut self,
        file: &Arc<str>,
        source: &str,
        node: Node,
        base: FieldPath,
        object: &ObjectRef,
    ) {
        let Some(items) = node.get("items") else {
            return;
        };
        match items.as_seq() {
            Some(seq) => {
                for (i, item) in seq.iter().enumerate() {
                    let b = base.field("items").index(i);
                    self.load_object(file, source, item.clone(), b);
                }
            }
            None if items.is_null() => {}
            None => self.push(Finding {
                location: Some(Location::new(file, items.pos)),
                object: Some(object.clone()),
                path: base.field("items"),
                ..Finding::error(
                    Code::InvalidType,
                    format!("expected a list of objects, found {}", items.describe()),
                )
            }),
        }
    }

    /// Maps apiVersion/kind to a registered kind, reporting unknown or mismatched ones.
    fn resolve_kind(
        &mut self,
        file: &Arc<str>,
        node: &Node,
        base: &FieldPath,
        object: &ObjectRef,
        group: &str,
        version: &str,
    ) -> Option<&'static KindInfo> {
        let kind = object.kind.as_str();
        let kind_pos = node.get("kind").map_or(node.pos, |n| n.pos);
        let av_pos = node.get("apiVersion").map_or(node.pos, |n| n.pos);
        let report = |this: &mut Self,
                      sev: Severity,
                      code: Code,
                      pos: Pos,
                      field: &str,
                      msg: String,
                      hint: Option<String>| {
            this.push(Finding {
                severity: sev,
                code,
                message: msg,
                suggestion: hint,
                location: Some(Location::new(file, pos)),
                object: Some(object.clone()),
                path: base.field(field),
            });
        };
        if let Some(info) = kinds::find(group, kind) {
            if info.versions.contains(&version) {
                return Some(info);
            }
            let served: Vec<String> = info
                .versions
                .iter()
                .map(|v| kinds::api_version(group, v))
                .collect();
            report(
                self,
                Severity::Error,
                Code::UnknownKind,
                av_pos,
                "apiVersion",
                format!(
                    "{kind} is not served at apiVersion {}",
                    kinds::api_version(group, version)
                ),
                Some(format!("use one of: {}", served.join(", "))),
            );
            return None;
        }
        if let Some(other) = kinds::kind_elsewhere(kind) {
            report(
                self,
                Severity::Error,
                Code::UnknownKind,
                av_pos,
                "apiVersion",
                format!("{kind} is not in API group {group:?}"),
                Some(format!("did you mean apiVersion: {}?", other.api_version())),
            );
            return None;
        }
        for (g, k, why) in kinds::RECOGNISED_UNSUPPORTED {
            if *g == group && (*k == "*" || *k == kind) {
                report(
                    self,
                    Severity::Warning,
                    Code::UnknownKind,
                    kind_pos,
                    "kind",
                    format!("{kind} ({group}) is ignored: {why}"),
                    None,
                );
                return None;
            }
        }
        let same_group = kinds::KINDS
            .iter()
            .filter(|k| k.group == group)
            .map(|k| k.kind);
        let hint = suggest::closest(kind, same_group)
            .or_else(|| suggest::closest(kind, kinds::KINDS.iter().map(|k| k.kind)))
            .map(|k| format!("did you mean {k}?"));
        if kinds::ISTIO_GROUPS.contains(&group) || hint.is_some() {
            report(
                self,
                Severity::Error,
                Code::UnknownKind,
                kind_pos,
                "kind",
                format!(
                    "unknown kind {kind} in {}",
                    kinds::api_version(group, version)
                ),
                hint,
            );
        } else {
            report(
                self,
                Severity::Warning,
                Code::UnknownKind,
                kind_pos,
                "kind",
                format!(
                    "{kind} ({}) is not a kind Weft reads; it is ignored",
                    kinds::api_version(group, version)
                ),
                None,
            );
        }
        None
    }

    fn issue_finding(
        &self,
        file: &Arc<str>,
        base: &FieldPath,
        object: &ObjectRef,
        schema: &Schema,
        issue: Issue,
    ) -> Finding {
        let suggestion = match &issue.unknown {
            Some(u) if issue.suggestion.is_none() => suggest_elsewhere(schema, &issue.path, u),
            _ => issue.suggestion,
        };
        // istiod reads MeshConfig leniently (unknown fields are dropped), so an unknown
        // field there is accepted by Istio: report it, but as the warning it is.
        let in_mesh_config = issue.problem == weft_yaml::Problem::UnknownField
            && issue.path.0.iter().any(|s| {
                matches!(s, Segment::Field(f) if f == "meshConfig")
                    || matches!(s, Segment::Key(k) if k == "mesh")
            });
        let (message, suggestion) = explain_base64(issue.message, suggestion);
        let (severity, message) = if in_mesh_config {
            (Severity::Warning, format!("{message} (istiod ignores it)"))
        } else {
            (Severity::Error, message)
        };
        Finding {
            severity,
            code: issue.problem.into(),
            message,
            suggestion,
            location: Some(Location::new(file, issue.pos)),
            object: Some(object.clone()),
            path: base.join(&issue.path),
        }
    }
}

/// Kubernetes `data` values (Secret, ConfigMap `binaryData`) are base64; the decoder's own
/// message ("Invalid symbol 46, offset 16.") does not say so.
fn explain_base64(message: String, suggestion: Option<String>) -> (String, Option<String>) {
    let base64 = [
        "Invalid symbol",
        "Invalid last symbol",
        "Invalid padding",
        "Invalid input length",
    ];
    if base64.iter().any(|p| message.starts_with(p)) {
        (
            format!(
                "not valid base64: {}",
                message.trim_end_matches('.').to_lowercase()
            ),
            Some(
                "values under `data` are base64-encoded; put plain text under `stringData`".into(),
            ),
        )
    } else {
        (message, suggestion)
    }
}

/// Suggests where an unknown field belongs, from the schema of the document it is in.
fn suggest_elsewhere(
    schema: &Schema,
    path: &FieldPath,
    u: &crate::de::UnknownField,
) -> Option<String> {
    // Embedded documents (`data[mesh]…`) are described relative to their own root.
    let shape = path.schema_shape();
    let shape = match shape.strip_prefix("data[*]") {
        Some(rest) => rest.trim_start_matches('.').to_string(),
        None => shape,
    };
    schema.suggest_placement(&shape, &u.key, &u.value_keys)
}

/// The schema of MeshConfig, for suggestions inside embedded mesh configuration.
fn mesh_schema() -> &'static Schema {
    static S: std::sync::OnceLock<Schema> = std::sync::OnceLock::new();
    S.get_or_init(Schema::of::<crate::mesh::mesh_config::MeshConfig>)
}

/// The configuration files under `dir` that [`Loader::load_path`] reads, in its order
/// (recursive, `.yaml`/`.yml`/`.json`, hidden entries skipped).
pub fn config_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    collect(dir, &mut out)?;
    Ok(out)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let hidden = e.file_name().to_string_lossy().starts_with('.');
        if hidden {
            continue;
        }
        if e.file_type()?.is_dir() {
            collect(&p, out)?;
        } else if is_config_file(&p) {
            out.push(p);
        }
    }
    Ok(())
}
