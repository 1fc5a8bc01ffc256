//! A positioned document tree: YAML and JSON parse into `Node`s that remember their line and
//! column, so typed decoding and validation can point at the exact place in the file.

use std::fmt;

/// 1-based line and column of a node's first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// How a scalar was written; decides whether `1` is a number or text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Unquoted: resolved by the YAML rules Kubernetes uses (so `yes`, `1`, `~` are not text).
    Plain,
    /// Quoted or block scalar: always text.
    Quoted,
}

/// A scalar's value after YAML resolution, as Kubernetes' YAML→JSON conversion sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Resolved<'a> {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a str),
}

impl Resolved<'_> {
    /// What kind of value this is, for error messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Resolved::Null => "null",
            Resolved::Bool(_) => "a boolean",
            Resolved::Int(_) => "an integer",
            Resolved::Float(_) => "a number",
            Resolved::Str(_) => "a string",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Scalar {
        text: String,
        style: Style,
    },
    Seq(Vec<Node>),
    /// Entries in source order; keys are nodes so they keep their positions.
    Map(Vec<(Node, Node)>),
}

/// One value in a document. `id` is unique within a load and identifies the node when
/// decoding needs to skip it after an error.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: u32,
    pub pos: Pos,
    pub kind: NodeKind,
}

impl Node {
    pub fn scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The scalar's resolved value; `None` for collections.
    pub fn resolved(&self) -> Option<Resolved<'_>> {
        match &self.kind {
            NodeKind::Scalar {
                text,
                style: Style::Quoted,
            } => Some(Resolved::Str(text)),
            NodeKind::Scalar {
                text,
                style: Style::Plain,
            } => Some(resolve_plain(text)),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.resolved(), Some(Resolved::Null))
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The value of map key `key`, if this is a map that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.scalar() == Some(key))
            .map(|(_, v)| v)
    }

    /// A string-valued map entry (`apiVersion`, `kind`, `metadata.name`).
    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self.get(key)?.resolved()? {
            Resolved::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Describes the node's shape for "expected X, found Y" messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            NodeKind::Map(_) => "a mapping",
            NodeKind::Seq(_) => "a list",
            NodeKind::Scalar { .. } => self.resolved().map_or("a scalar", |r| r.describe()),
        }
    }

    /// Where `path` is written: a scalar's value, or the key that introduces a mapping or
    /// list (`spec:` rather than its first entry). A path that does not exist (a missing
    /// field) points at the key of its deepest existing ancestor.
    pub fn locate(&self, path: &crate::FieldPath) -> Pos {
        use crate::Segment;
        let mut node = self;
        let mut key_pos: Option<Pos> = None;
        for seg in &path.0 {
            let next = match seg {
                Segment::Field(k) | Segment::Key(k) => node
                    .as_map()
                    .and_then(|m| m.iter().find(|(key, _)| key.scalar() == Some(k.as_str())))
                    .map(|(key, v)| (Some(key.pos), v)),
                Segment::Index(i) => node.as_seq().and_then(|s| s.get(*i)).map(|v| (None, v)),
            };
            match next {
                Some((kp, n)) => {
                    key_pos = kp;
                    node = n;
                }
                None => return key_pos.unwrap_or(node.pos),
            }
        }
        match (&node.kind, key_pos) {
            (NodeKind::Scalar { .. }, _) | (_, None) => node.pos,
            (_, Some(kp)) => kp,
        }
    }

    /// Visits this node and every node below it.
    pub fn walk(&self, f: &mut impl FnMut(&Node)) {
        f(self);
        match &self.kind {
            NodeKind::Scalar { .. } => {}
            NodeKind::Seq(items) => items.iter().for_each(|n| n.walk(f)),
            NodeKind::Map(entries) => entries.iter().for_each(|(k, v)| {
                k.walk(f);
                v.walk(f);
            }),
        }
    }
}

/// Resolves an unquoted scalar the way sigs.k8s.io/yaml (go-yaml v2, YAML 1.1 rules) does
/// when Kubernetes converts YAML to JSON: `yes`/`on` are booleans, `0x1F` is an integer.
pub fn resolve_plain(s: &str) -> Resolved<'_> {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Resolved::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Resolved::Bool(false);
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        _ => {}
    }
    let first = s.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return Resolved::Str(s);
    }
    if let Some(i) = parse_int(s) {
        return Resolved::Int(i);
    }
    if is_yaml_float(s)
        && let Ok(f) = s.replace('_', "").parse::<f64>()
    {
        return Resolved::Float(f);
    }
    Resolved::Str(s)
}

fn parse_int(s: &str) -> Option<i128> {
    let (neg, body) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let clean = body.replace('_', "");
    if clean.is_empty() {
        return None;
    }
    let v = if let Some(h) = clean.strip_prefix("0x") {
        i128::from_str_radix(h, 16).ok()?
    } else if let Some(b) = clean.strip_prefix("0b") {
        i128::from_str_radix(b, 2).ok()?
    } else if let Some(o) = clean.strip_prefix("0o") {
        i128::from_str_radix(o, 8).ok()?
    } else if clean.len() > 1 && clean.starts_with('0') {
        // YAML 1.1 octal (`0755`).
        i128::from_str_radix(&clean[1..], 8).ok()?
    } else if clean.bytes().all(|c| c.is_ascii_digit()) {
        clean.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

fn is_yaml_float(s: &str) -> bool {
    // [-+]?([0-9][0-9_]*)?\.[0-9.]*([eE][-+][0-9]+)?  plus the JSON form 1e3.
    let b = s.trim_start_matches(['-', '+']);
    let mut seen_digit = false;
    let mut seen_dot = false;
    let mut seen_exp = false;
    let mut prev = b' ';
    for c in b.bytes() {
        match c {
            b'0'..=b'9' => seen_digit = true,
            b'_' if !seen_exp => {}
            b'.' if !seen_exp && !seen_dot => seen_dot = true,
            b'e' | b'E' if seen_digit && !seen_exp => seen_exp = true,
            b'-' | b'+' if matches!(prev, b'e' | b'E') => {}
            _ => return false,
        }
        prev = c;
    }
    seen_digit && (seen_dot || seen_exp) && !matches!(prev, b'e' | b'E' | b'-' | b'+')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_kubernetes() {
        assert_eq!(resolve_plain("yes"), Resolved::Bool(true));
        assert_eq!(resolve_plain("Off"), Resolved::Bool(false));
        assert_eq!(resolve_plain("~"), Resolved::Null);
        assert_eq!(resolve_plain("100"), Resolved::Int(100));
        assert_eq!(resolve_plain("-3"), Resolved::Int(-3));
        assert_eq!(resolve_plain("0x1F"), Resolved::Int(31));
        assert_eq!(resolve_plain("0755"), Resolved::Int(493));
        assert_eq!(resolve_plain("1.5"), Resolved::Float(1.5));
        assert_eq!(resolve_plain("1e3"), Resolved::Float(1000.0));
        assert_eq!(resolve_plain("30s"), Resolved::Str("30s"));
        assert_eq!(resolve_plain("1.20.0"), Resolved::Str("1.20.0"));
        assert_eq!(resolve_plain("5xx"), Resolved::Str("5xx"));
        assert_eq!(resolve_plain("-"), Resolved::Str("-"));
        assert_eq!(resolve_plain("."), Resolved::Str("."));
        assert_eq!(resolve_plain("10.0.0.1"), Resolved::Str("10.0.0.1"));
    }
}
