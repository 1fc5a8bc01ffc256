//! Weft's configuration model: the Istio and Kubernetes resources a mesh reads, loaded from
//! YAML or JSON with source positions, decoded into typed values, and validated with
//! Istio's own rules. Knows nothing of xDS or sockets.

pub mod analyze;
pub mod annotations;
pub mod diag;
pub mod embedded;
pub mod kinds;
pub mod kube;
pub mod load;
pub mod mesh;
pub mod networking;
pub mod object;
pub mod operator;
pub mod schema;
pub mod security;
pub mod selector;
pub mod telemetry;
pub mod types;
pub mod validate;

pub use diag::{Code, Finding, Location, ObjectRef, Severity};
pub use kinds::Resource;
pub use load::{LoadError, LoadResult, Loaded, Loader};
pub use path::{FieldPath, Segment};
/// Positioned YAML and the decoder live in `weft-yaml`; re-exported under their old paths.
pub use weft_yaml::{de, node, path, suggest, yaml};

/// Validates every loaded resource and runs cross-resource analysis, adding the findings to
/// `result` and ordering all findings by file, line and column.
pub fn validate_all(result: &mut LoadResult) {
    for l in &result.resources {
        for f in l.resource.validate() {
            result.findings.push(l.place(f));
        }
        if let Some(mesh) = &l.embedded_mesh {
            for mut f in mesh.validate(&l.file) {
                f.object = Some(l.resource.object_ref());
                result.findings.push(f);
            }
        }
    }
    result.findings.extend(analyze::analyze(&result.resources));
    result.findings.sort_by(|a, b| {
        let key = |f: &Finding| {
            f.location
                .as_ref()
                .map(|l| (l.file.clone(), l.line, l.column))
        };
        key(a).cmp(&key(b))
    });
}

/// Loads `paths` (files, directories or `-`) and validates everything.
pub fn load_and_validate(paths: &[String]) -> Result<LoadResult, LoadError> {
    let mut loader = Loader::new();
    for p in paths {
        loader.load_path(p)?;
    }
    let mut result = loader.finish();
    validate_all(&mut result);
    Ok(result)
}
