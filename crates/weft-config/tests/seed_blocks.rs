//! Shared by the seed tests: the YAML blocks of ../shared/seeds, kept as committed fixtures
//! so the tests run anywhere, and checked against the seeds whenever they are present.

use std::path::{Path, PathBuf};

pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seeds")
}

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seeds")
}

/// ```yaml fenced blocks of one markdown text.
fn yaml_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        let t = line.trim_start();
        match &mut cur {
            None if t.starts_with("```yaml") || t.starts_with("```yml") => {
                cur = Some(String::new())
            }
            Some(block) if t.starts_with("```") => {
                out.push(std::mem::take(block));
                cur = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    out
}

/// (fixture name, text) for every block of every seed, from the seeds directory.
pub fn extract_from_seeds() -> Option<Vec<(String, String)>> {
    let dir = seeds_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let stem = f.file_stem()?.to_string_lossy().to_string();
        let text = std::fs::read_to_string(&f).ok()?;
        for (i, b) in yaml_blocks(&text).into_iter().enumerate() {
            out.push((format!("{stem}-b{i:02}.yaml"), b));
        }
    }
    Some(out)
}

/// The committed fixtures, in name order.
pub fn fixtures() -> Vec<(String, String)> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir())
        .expect("fixture dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let t = std::fs::read_to_string(fixture_dir().join(&n)).expect("read fixture");
            (n, t)
        })
        .collect()
}
