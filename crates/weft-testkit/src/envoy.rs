//! Where the real Envoy comes from: `WEFT_ENVOY` if set, else the project's `.venv/bin/envoy`,
//! installed on first use by `scripts/install-envoy.sh` so a fresh machine needs no manual
//! step. Resolved once per test process, because parallel tests must not race the installer.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::Error;

/// The workspace root (this crate lives in `crates/weft-testkit`).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .and_then(Path::parent)
        .map_or_else(|| here.to_path_buf(), Path::to_path_buf)
}

/// The Envoy binary to run, installing it if needed.
pub fn envoy_binary() -> Result<PathBuf, Error> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            locate(
                std::env::var_os("WEFT_ENVOY").map(PathBuf::from),
                &workspace_root(),
            )
        })
        .clone()
        .map_err(Error::EnvoyMissing)
}

fn locate(from_env: Option<PathBuf>, root: &Path) -> Result<PathBuf, String> {
    if let Some(p) = from_env {
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("WEFT_ENVOY={} is not a file", p.display()))
        };
    }
    let venv = root.join(".venv/bin/envoy");
    if venv.is_file() {
        return Ok(venv);
    }
    let script = root.join("scripts/install-envoy.sh");
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(root)
        .output()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let printed = String::from_utf8_lossy(&out.stdout);
    let path = PathBuf::from(printed.lines().last().unwrap_or_default().trim());
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} printed {printed:?}, which is not a file",
            script.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_env_override_that_is_not_a_file_is_an_error() {
        let err = locate(Some(PathBuf::from("/nonexistent/envoy")), Path::new("/")).unwrap_err();
        assert!(err.contains("WEFT_ENVOY"), "{err}");
    }

    #[test]
    fn workspace_root_holds_the_installer() {
        assert!(workspace_root().join("scripts/install-envoy.sh").is_file());
    }
}
