//! Typed decoding of positioned nodes with serde, reporting every problem instead of the
//! first. Unknown fields are detected from the field lists serde derive hands to
//! `deserialize_struct`; a value that fails to decode is reported with its path and
//! position, then skipped on a retry, so one document yields all of its errors.

use crate::Problem;
use crate::node::{Node, NodeKind, Pos, Resolved};
use crate::path::{FieldPath, Segment};
use crate::suggest;

mod access;

use access::{MapAccess, SeqAccess};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

/// A problem found while decoding, located at a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub problem: Problem,
    pub message: String,
    pub suggestion: Option<String>,
    pub path: FieldPath,
    pub pos: Pos,
    /// For unknown fields: what the decoder knew, so callers can suggest better.
    pub unknown: Option<UnknownField>,
}

/// Context of an unknown field, for "did you mean" suggestions drawn from the schema.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownField {
    pub key: String,
    pub struct_name: &'static str,
    pub known: &'static [&'static str],
    /// Keys of the value, when it is a mapping (used to recognise a misplaced struct).
    pub value_keys: Vec<String>,
}

/// The error type of the deserializer; carries the location of the innermost node that
/// failed.
#[derive(Debug, Clone)]
pub struct DeError {
    problem: Problem,
    message: String,
    suggestion: Option<String>,
    at: Option<(u32, Pos, FieldPath)>,
}

impl DeError {
    fn new(problem: Problem, message: impl Into<String>) -> Self {
        DeError {
            problem,
            message: message.into(),
            suggestion: None,
            at: None,
        }
    }

    fn hint(mut self, s: impl Into<String>) -> Self {
        self.suggestion = Some(s.into());
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::new(Problem::InvalidValue, msg.to_string())
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::new(
            Problem::MissingField,
            format!("missing required field `{field}`"),
        )
    }
}

/// The path to the node being decoded, kept as a chain of stack frames so that no path is
/// built unless something is reported.
#[derive(Clone, Copy)]
struct Trail<'a> {
    parent: Option<&'a Trail<'a>>,
    seg: Option<Seg<'a>>,
}

#[derive(Clone, Copy)]
enum Seg<'a> {
    Field(&'a str),
    Key(&'a str),
    Index(usize),
}

impl Trail<'_> {
    fn path(&self) -> FieldPath {
        let mut segs = Vec::new();
        let mut t = Some(self);
        while let Some(cur) = t {
            if let Some(s) = cur.seg {
                segs.push(match s {
                    Seg::Field(f) => Segment::Field(f.to_string()),
                    Seg::Key(k) => Segment::Key(k.to_string()),
                    Seg::Index(i) => Segment::Index(i),
                });
            }
            t = cur.parent;
        }
        segs.reverse();
        let mut p = FieldPath::root();
        for s in segs {
            p.push(s);
        }
        p
    }
}

struct Cx {
    poisoned: HashSet<u32>,
    issues: RefCell<Vec<Issue>>,
    /// Whether mapping keys name fields (protobuf messages read as maps) rather than
    /// free-form keys; decides how paths print (`a.b` or `a[b]`).
    keys_are_fields: bool,
}

/// How to name mapping keys in reported paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapKeys {
    /// Keys of free-form maps (`labels[app]`); struct fields are still fields.
    Keys,
    /// Every key is a field (a protobuf message decoded from a map).
    Fields,
}

/// Decodes `root` into `T`, returning the value (unless the root itself is unusable) and
/// every issue found. The base path is prepended to reported paths.
pub fn decode<T: DeserializeOwned>(root: &Node, base: &FieldPath) -> (Option<T>, Vec<Issue>) {
    decode_with(root, base, MapKeys::Keys, |d| T::deserialize(d))
}

/// Like [`decode`], for values built by a function of the deserializer rather than a
/// `Deserialize` impl (e.g. a protobuf message described at run time). `f` runs once per
/// attempt, so it must not have side effects.
pub fn decode_with<T>(
    root: &Node,
    base: &FieldPath,
    keys: MapKeys,
    f: impl Fn(Deser<'_>) -> Result<T, DeError>,
) -> (Option<T>, Vec<Issue>) {
    let mut cx = Cx {
        poisoned: HashSet::new(),
        issues: RefCell::new(Vec::new()),
        keys_are_fields: keys == MapKeys::Fields,
    };
    let mut fatal: Vec<Issue> = Vec::new();
    // The base path is only a prefix for reporting.
    let base_segs: Vec<Seg<'_>> = base
        .0
        .iter()
        .map(|s| match s {
            Segment::Field(f) => Seg::Field(f),
            Segment::Key(k) => Seg::Key(k),
            Segment::Index(i) => Seg::Index(*i),
        })
        .collect();
    // Attempts are bounded: each failure poisons one more node.
    for _ in 0..10_000 {
        cx.issues.borrow_mut().clear();
        let result = with_base(&base_segs, |trail| {
            f(Deser {
                node: root,
                cx: &cx,
                trail,
            })
        });
        match result {
            Ok(v) => {
                let mut all = fatal;
                all.append(&mut cx.issues.borrow_mut());
                return (Some(v), all);
            }
            Err(e) => {
                let (id, pos, path) = e.at.clone().unwrap_or((root.id, root.pos, base.clone()));
                fatal.push(Issue {
                    problem: e.problem,
                    message: e.message,
                    suggestion: e.suggestion,
                    path,
                    pos,
                    unknown: None,
                });
                if id == root.id || !cx.poisoned.insert(id) {
                    let mut all = fatal;
                    all.append(&mut cx.issues.borrow_mut());
                    return (None, all);
                }
            }
        }
    }
    (None, fatal)
}

/// Builds the trail for the base path on the stack and runs `f` with it.
fn with_base<R>(segs: &[Seg<'_>], f: impl FnOnce(&Trail<'_>) -> R) -> R {
    fn go<R>(segs: &[Seg<'_>], parent: &Trail<'_>, f: impl FnOnce(&Trail<'_>) -> R) -> R {
        match segs.split_first() {
            None => f(parent),
            Some((s, rest)) => {
                let t = Trail {
                    parent: Some(parent),
                    seg: Some(*s),
                };
                go(rest, &t, f)
            }
        }
    }
    let root = Trail {
        parent: None,
        seg: None,
    };
    go(segs, &root, f)
}

/// The deserializer over one node; handed to [`decode_with`]'s function.
pub struct Deser<'a> {
    node: &'a Node,
    cx: &'a Cx,
    trail: &'a Trail<'a>,
}

impl<'a> Deser<'a> {
    fn locate(&self, mut e: DeError) -> DeError {
        if e.at.is_none() {
            e.at = Some((self.node.id, self.node.pos, self.trail.path()));
        }
        e
    }

    fn type_error(&self, expected: &str) -> DeError {
        let found = self.node.describe();
        let mut e = DeError::new(
            Problem::InvalidType,
            format!("expected {expected}, found {found}"),
        );
        if let NodeKind::Scalar { text, .. } = &self.node.kind {
            e.message = format!("expected {expected}, found {found} `{text}`");
            match self.node.resolved() {
                Some(Resolved::Int(_) | Resolved::Float(_) | Resolved::Bool(_))
                    if expected == "a string" =>
                {
                    e = e.hint(format!(
                        "quote it if it is meant as text: \"{text}\" (YAML reads it as {found})"
                    ));
                }
                Some(Resolved::Str(s))
                    if (expected.contains("integer") || expected == "a number")
                        && s.trim().parse::<f64>().is_ok() =>
                {
                    e = e.hint(format!("remove the quotes: {}", s.trim()));
                }
                Some(Resolved::Str(s)) if expected == "a boolean" => {
                    if matches!(s, "true" | "false") {
                        e = e.hint(format!("remove the quotes: {s}"));
                    }
                }
                _ => {}
            }
        } else if expected == "a list" && matches!(self.node.kind, NodeKind::Map(_)) {
            e = e.hint("write it as a list: put `- ` before the entry");
        }
        self.locate(e)
    }

    fn child(&self, node: &'a Node, trail: &'a Trail<'a>) -> Deser<'a> {
        Deser {
            node,
            cx: self.cx,
            trail,
        }
    }

    fn string(&self) -> Result<&'a str, DeError> {
        match self.node.resolved() {
            Some(Resolved::Str(s)) => Ok(s),
            _ => Err(self.type_error("a string")),
        }
    }

    fn int(&self, ty: &str, min: i128, max: i128) -> Result<i128, DeError> {
        match self.node.resolved() {
            Some(Resolved::Int(i)) if (min..=max).contains(&i) => Ok(i),
            Some(Resolved::Int(i)) => Err(self.locate(DeError::new(
                Problem::InvalidValue,
                format!("{i} is out of range for {ty} ({min}..{max})"),
            ))),
            _ => Err(self.type_error(if min == 0 {
                "a non-negative integer"
            } else {
                "an integer"
            })),
        }
    }

    fn float(&self) -> Result<f64, DeError> {
        match self.node.resolved() {
            Some(Resolved::Int(i)) => Ok(i as f64),
            Some(Resolved::Float(f)) => Ok(f),
            _ => Err(self.type_error("a number")),
        }
    }

    fn record_unknown(
        &self,
        key: &Node,
        value: &Node,
        name: &'static str,
        fields: &'static [&'static str],
    ) {
        let k = key.scalar().unwrap_or_default().to_string();
        let frame = Trail {
            parent: Some(self.trail),
            seg: Some(Seg::Field(&k)),
        };
        // The keys written under the unknown field (for a list, under its items): they
        // tell which message the author had in mind.
        let maps: Vec<&Node> = match &value.kind {
            NodeKind::Seq(items) => items.iter().collect(),
            _ => vec![value],
        };
        let mut value_keys: Vec<String> = Vec::new();
        for m in maps {
            for (k, _) in m.as_map().unwrap_or_default() {
                if let Some(k) = k.scalar()
                    && !value_keys.iter().any(|v| v == k)
                {
                    value_keys.push(k.to_string());
                }
            }
        }
        let suggestion =
            suggest::closest(&k, fields.iter().copied()).map(|s| format!("did you mean `{s}`?"));
        self.cx.issues.borrow_mut().push(Issue {
            problem: Problem::UnknownField,
            message: format!("unknown field `{k}`"),
            suggestion,
            path: frame.path(),
            pos: key.pos,
            unknown: Some(UnknownField {
                key: k.clone(),
                struct_name: name,
                known: fields,
                value_keys,
            }),
        });
    }
}

macro_rules! ints {
    ($($method:ident $visit:ident $ty:ty, $min:expr, $max:expr;)*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
            let i = self.int(stringify!($ty), $min as i128, $max as i128)?;
            v.$visit(i as $ty).map_err(|e| self.locate(e))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Deser<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            NodeKind::Seq(items) => v.visit_seq(SeqAccess {
                de: &self,
                items,
                i: 0,
            }),
            NodeKind::Map(_) => return self.deserialize_map(v),
            NodeKind::Scalar { .. } => match self.node.resolved() {
                Some(Resolved::Null) | None => v.visit_unit(),
                Some(Resolved::Bool(b)) => v.visit_bool(b),
                Some(Resolved::Int(i)) => match i64::try_from(i) {
                    Ok(i) => v.visit_i64(i),
                    Err(_) => match u64::try_from(i) {
                        Ok(u) => v.visit_u64(u),
                        Err(_) => v.visit_f64(i as f64),
                    },
                },
                Some(Resolved::Float(f)) => v.visit_f64(f),
                Some(Resolved::Str(s)) => v.visit_str(s),
            },
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.node.resolved() {
            Some(Resolved::Bool(b)) => v.visit_bool(b).map_err(|e| self.locate(e)),
            _ => Err(self.type_error("a boolean")),
        }
    }

    ints! {
        deserialize_i8 visit_i8 i8, i8::MIN, i8::MAX;
        deserialize_i16 visit_i16 i16, i16::MIN, i16::MAX;
        deserialize_i32 visit_i32 i32, i32::MIN, i32::MAX;
        deserialize_i64 visit_i64 i64, i64::MIN, i64::MAX;
        deserialize_u8 visit_u8 u8, 0, u8::MAX;
        deserialize_u16 visit_u16 u16, 0, u16::MAX;
        deserialize_u32 visit_u32 u32, 0, u32::MAX;
        deserialize_u64 visit_u64 u64, 0, u64::MAX;
    }

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let f = self.float()?;
        v.visit_f32(f as f32).map_err(|e| self.locate(e))
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let f = self.float()?;
        v.visit_f64(f).map_err(|e| self.locate(e))
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let s = self.string()?;
        let mut it = s.chars();
        match (it.next(), it.next()) {
            (Some(c), None) => v.visit_char(c).map_err(|e| self.locate(e)),
            _ => Err(self.type_error("a single character")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let s = self.string()?;
        v.visit_str(s).map_err(|e| self.locate(e))
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            v.visit_none().map_err(|e| self.locate(e))
        } else {
            let node = self.node;
            let trail = self.trail;
            let cx = self.cx;
            v.visit_some(Deser { node, cx, trail })
                .map_err(|e| Deser { node, cx, trail }.locate(e))
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            v.visit_unit().map_err(|e| self.locate(e))
        } else {
            Err(self.type_error("null"))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        if name == crate::DURATION_NEWTYPE
            && let Some(Resolved::Int(i)) = self.node.resolved()
        {
            let e = DeError::new(
                Problem::InvalidType,
                format!("expected a duration such as \"30s\", found the number {i}"),
            );
            return Err(self.locate(e.hint(format!("add a unit: \"{i}s\""))));
        }
        let (node, cx, trail) = (self.node, self.cx, self.trail);
        v.visit_newtype_struct(self)
            .map_err(|e| Deser { node, cx, trail }.locate(e))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Seq(items) => v
                .visit_seq(SeqAccess {
                    de: &self,
                    items,
                    i: 0,
                })
                .map_err(|e| self.locate(e)),
            _ if self.node.is_null() => v
                .visit_seq(SeqAccess {
                    de: &self,
                    items: &[],
                    i: 0,
                })
                .map_err(|e| self.locate(e)),
            _ => Err(self.type_error("a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let entries: &[(Node, Node)] = match &self.node.kind {
            NodeKind::Map(entries) => entries,
            _ if self.node.is_null() => &[],
            _ => return Err(self.type_error("a mapping")),
        };
        let mut access = MapAccess {
            de: &self,
            entries,
            i: 0,
            value: None,
            fields: None,
            frame_key: String::new(),
        };
        let r = v.visit_map(&mut access);
        r.map_err(|e| access.blame_pending_key(e))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        let entries: &[(Node, Node)] = match &self.node.kind {
            NodeKind::Map(entries) => entries,
            _ if self.node.is_null() => &[],
            _ => return Err(self.type_error("a mapping")),
        };
        v.visit_map(MapAccess {
            de: &self,
            entries,
            i: 0,
            value: None,
            fields: Some((name, fields)),
            frame_key: String::new(),
        })
        .map_err(|e| self.locate(e))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        let expected = || {
            let list = variants.join(", ");
            format!("one of {list}")
        };
        match self.node.resolved() {
            Some(Resolved::Str(s)) => {
                if variants.contains(&s) {
                    let d: de::value::StrDeserializer<'_, DeError> = s.into_deserializer();
                    return v.visit_enum(d).map_err(|e| self.locate(e));
                }
                let mut e = DeError::new(
                    Problem::InvalidValue,
                    format!("unknown value `{s}`; expected {}", expected()),
                );
                if let Some(c) = suggest::closest(s, variants.iter().copied()) {
                    e = e.hint(format!("did you mean `{c}`?"));
                }
                Err(self.locate(e))
            }
            _ => Err(self.type_error(&expected())),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_unit()
    }
}

#[cfg(test)]
mod tests;
