//! MeshConfig embedded in the `istio` ConfigMap (`data.mesh`), where istiod reads it from.
//! The YAML inside the block scalar is parsed with positions mapped back onto the
//! ConfigMap's file, so findings point at the real line and column.

use crate::de::{self, Issue};
use crate::diag::{Finding, Location};
use crate::mesh::mesh_config::MeshConfig;
use crate::node::{Node, NodeKind, Pos};
use crate::path::FieldPath;
use crate::validate::Validate;
use crate::yaml;

/// A MeshConfig read from inside another object.
#[derive(Debug, Clone)]
pub struct EmbeddedMesh {
    pub config: MeshConfig,
    node: Node,
    /// Where the embedded text sits in the file: added to the embedded node positions.
    line_offset: u32,
    column_offset: u32,
    /// Where the embedded text sits in the object (`data[mesh]`).
    pub path: FieldPath,
}

/// Whether a ConfigMap is istiod's mesh configuration: `istio`, or `istio-<revision>`.
pub fn is_mesh_config_map(name: &str) -> bool {
    name == "istio"
        || name
            .strip_prefix("istio-")
            .is_some_and(|r| !r.is_empty() && !r.contains('.'))
}

impl EmbeddedMesh {
    fn pos(&self, p: Pos) -> Pos {
        Pos {
            line: p.line + self.line_offset,
            column: p.column + self.column_offset,
        }
    }

    /// Validates the embedded MeshConfig; findings carry paths relative to the object and
    /// positions in the object's file.
    pub fn validate(&self, file: &str) -> Vec<Finding> {
        let mut v = crate::validate::Validator::new("");
        self.config.validate(&mut v);
        v.into_findings()
            .into_iter()
            .map(|mut f| {
                let at = self.pos(self.node.locate(&f.path));
                f.location = Some(Location::new(file, at));
                f.path = self.path.join(&f.path);
                f
            })
            .collect()
    }
}

/// Reads `data.mesh` of a ConfigMap node. `source` is the whole file, used to find the
/// block scalar's indentation. Returns the config (if it decoded) and decode issues with
/// positions already mapped onto the file.
pub fn read(
    object: &Node,
    source: &str,
    next_id: &mut u32,
) -> Option<(Option<EmbeddedMesh>, Vec<Issue>)> {
    let value = object.get("data")?.get("mesh")?;
    let NodeKind::Scalar { text, .. } = &value.kind else {
        return None;
    };
    let path = FieldPath::root().field("data").key("mesh");
    // A literal block scalar (`mesh: |`) keeps its lines: the scalar's node starts at its
    // first content line, so embedded line N is file line (start + N - 1), shifted right by
    // the block's indentation. Other styles fold lines, so findings point at the value.
    let lines: Vec<&str> = source.lines().collect();
    let header = (value.pos.line as usize)
        .checked_sub(2)
        .and_then(|i| lines.get(i))
        .and_then(|l| l.rsplit_once(':'))
        .map(|(_, rest)| rest.trim_start());
    let exact = header.is_some_and(|h| h.starts_with('|'));
    let (line_offset, column_offset) = (value.pos.line - 1, value.pos.column - 1);
    let parsed = yaml::parse(text, next_id);
    let mut issues: Vec<Issue> = parsed
        .errors
        .into_iter()
        .map(|e| Issue {
            problem: weft_yaml::Problem::Syntax,
            message: format!("YAML syntax error in data.mesh: {}", e.message),
            suggestion: None,
            path: path.clone(),
            pos: if exact {
                Pos {
                    line: e.pos.line + line_offset,
                    column: e.pos.column + column_offset,
                }
            } else {
                value.pos
            },
            unknown: None,
        })
        .collect();
    let Some(root) = parsed.documents.into_iter().find_map(|d| d.root) else {
        return Some((None, issues));
    };
    let (config, decode_issues) = de::decode::<MeshConfig>(&root, &path);
    for mut i in decode_issues {
        i.pos = if exact {
            Pos {
                line: i.pos.line + line_offset,
                column: i.pos.column + column_offset,
            }
        } else {
            value.pos
        };
        issues.push(i);
    }
    let (line_offset, column_offset) = if exact {
        (line_offset, column_offset)
    } else {
        (0, 0)
    };
    let embedded = config.map(|config| EmbeddedMesh {
        config,
        node: if exact { root } else { value.clone() },
        line_offset,
        column_offset,
        path,
    });
    Some((embedded, issues))
}
