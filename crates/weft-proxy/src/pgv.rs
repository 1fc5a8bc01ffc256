//! Envoy's protoc-gen-validate rules (`(validate.rules)`, `(validate.required)`), read from
//! the descriptors and applied to a decoded message — the checks Envoy makes after parsing
//! (a port above 65535, an empty cluster name, a missing required oneof), with the path of
//! the offending field as written in the document.

use prost_reflect::{
    DynamicMessage, ExtensionDescriptor, FieldDescriptor, Kind, MapKey, ReflectMessage, Value,
};
use weft_yaml::{FieldPath, Node};

/// One broken rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub path: FieldPath,
    pub message: String,
}

struct Extensions {
    rules: Option<ExtensionDescriptor>,
    required: Option<ExtensionDescriptor>,
}

/// The rule extensions of the pool a message comes from (the served set or the full one).
fn extensions(pool: &prost_reflect::DescriptorPool) -> Extensions {
    Extensions {
        rules: pool.get_extension_by_name("validate.rules"),
        required: pool.get_extension_by_name("validate.required"),
    }
}

/// Checks `msg` (decoded from `node`) and everything inside it.
pub fn check(msg: &DynamicMessage, node: Option<&Node>) -> Vec<Violation> {
    let mut out = Vec::new();
    check_message(msg, node, &FieldPath::root(), &mut out);
    out
}

/// A sub-message of the rules, if set (`uint32`, `string`, `repeated`, …).
fn sub(rules: &DynamicMessage, name: &str) -> Option<DynamicMessage> {
    let f = rules.descriptor().get_field_by_name(name)?;
    if !rules.has_field(&f) {
        return None;
    }
    match rules.get_field(&f).into_owned() {
        Value::Message(m) => Some(m),
        _ => None,
    }
}

/// A rule value, if set.
fn rule(rules: &DynamicMessage, name: &str) -> Option<Value> {
    let f = rules.descriptor().get_field_by_name(name)?;
    rules
        .has_field(&f)
        .then(|| rules.get_field(&f).into_owned())
}

fn field_rules(field: &FieldDescriptor) -> Option<DynamicMessage> {
    let ext = extensions(field.parent_pool()).rules?;
    let ext = &ext;
    let opts = field.options();
    if !opts.has_extension(ext) {
        return None;
    }
    match opts.get_extension(ext).into_owned() {
        Value::Message(m) => Some(m),
        _ => None,
    }
}

/// The key under which `field` is written in `node` (snake_case or camelCase).
fn written_key<'n>(node: Option<&'n Node>, field: &FieldDescriptor) -> (String, Option<&'n Node>) {
    for key in [field.name(), field.json_name()] {
        if let Some(n) = node.and_then(|n| n.get(key)) {
            return (key.to_string(), Some(n));
        }
    }
    (field.name().to_string(), None)
}

fn check_message(
    msg: &DynamicMessage,
    node: Option<&Node>,
    path: &FieldPath,
    out: &mut Vec<Violation>,
) {
    let desc = msg.descriptor();
    if let Some(req) = extensions(desc.parent_pool()).required.as_ref() {
        for oneof in desc.oneofs().filter(|o| !o.is_synthetic()) {
            let opts = oneof.options();
            let required =
                opts.has_extension(req) && matches!(*opts.get_extension(req), Value::Bool(true));
            if required && !oneof.fields().any(|f| msg.has_field(&f)) {
                let names: Vec<String> = oneof.fields().map(|f| f.name().to_string()).collect();
                out.push(Violation {
                    path: path.clone(),
                    message: format!("one of {} is required", names.join(", ")),
                });
            }
        }
    }
    for field in desc.fields() {
        let (key, child) = written_key(node, &field);
        let fpath = path.field(&key);
        let present = msg.has_field(&field);
        // Rules on a oneof member apply only to the member that is set.
        if !present && field.containing_oneof().is_some_and(|o| !o.is_synthetic()) {
            continue;
        }
        let rules = field_rules(&field);
        if let Some(r) = &rules
            && let Some(m) = sub(r, "message")
        {
            if matches!(rule(&m, "required"), Some(Value::Bool(true))) && !present {
                out.push(Violation {
                    path: fpath.clone(),
                    message: format!("`{}` is required", field.name()),
                });
            }
            if matches!(rule(&m, "skip"), Some(Value::Bool(true))) {
                continue;
            }
        }
        let value = msg.get_field(&field);
        match value.as_ref() {
            Value::List(items) => {
                if let Some(rep) = rules.as_ref().and_then(|r| sub(r, "repeated")) {
                    check_count(
                        &rep,
                        "min_items",
                        "max_items",
                        items.len(),
                        "items",
                        &fpath,
                        out,
                    );
                    let item_rules = sub(&rep, "items");
                    for (i, item) in items.iter().enumerate() {
                        let ipath = fpath.index(i);
                        if let Some(ir) = &item_rules {
                            check_scalar(ir, item, &field, &ipath, out);
                        }
                    }
                }
                for (i, item) in items.iter().enumerate() {
                    if let Value::Message(m) = item {
                        let n = child.and_then(|c| c.as_seq()).and_then(|s| s.get(i));
                        check_nested(m, n, &fpath.index(i), out);
                    }
                }
            }
            Value::Map(entries) => {
                if let Some(mr) = rules.as_ref().and_then(|r| sub(r, "map")) {
                    check_count(
                        &mr,
                        "min_pairs",
                        "max_pairs",
                        entries.len(),
                        "entries",
                        &fpath,
                        out,
                    );
                }
                for (k, v) in entries {
                    if let Value::Message(m) = v {
                        let key = match k {
                            MapKey::String(s) => s.clone(),
                            other => format!("{other:?}"),
                        };
                        let n = child.and_then(|c| c.get(&key));
                        check_nested(m, n, &fpath.key(&key), out);
                    }
                }
            }
            Value::Message(m) if present => {
                if let Some(r) = &rules
                    && let Some(d) = sub(r, "duration")
                {
                    check_duration(&d, m, &fpath, out);
                }
                check_nested(m, child, &fpath, out);
            }
            Value::Message(_) => {}
            scalar => {
                if let Some(r) = &rules {
                    check_scalar(r, scalar, &field, &fpath, out);
                }
            }
        }
    }
}

/// Recurses into a sub-message, unpacking `google.protobuf.Any` through its `@type`.
fn check_nested(
    m: &DynamicMessage,
    node: Option<&Node>,
    path: &FieldPath,
    out: &mut Vec<Violation>,
) {
    if m.descriptor().full_name() == "google.protobuf.Any" {
        let url = m
            .get_field_by_name("type_url")
            .and_then(|v| v.as_str().map(str::to_string));
        let bytes = m
            .get_field_by_name("value")
            .and_then(|v| v.as_bytes().cloned());
        if let (Some(url), Some(bytes)) = (url, bytes) {
            let name = url.rsplit('/').next().unwrap_or_default();
            if let Some(desc) = m.descriptor().parent_pool().get_message_by_name(name)
                && let Ok(inner) = DynamicMessage::decode(desc, bytes)
            {
                check_message(&inner, node, path, out);
            }
        }
        return;
    }
    check_message(m, node, path, out);
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::U64(n) => Some(*n),
        Value::U32(n) => Some(u64::from(*n)),
        _ => None,
    }
}

fn check_count(
    r: &DynamicMessage,
    min: &str,
    max: &str,
    n: usize,
    what: &str,
    path: &FieldPath,
    out: &mut Vec<Violation>,
) {
    if let Some(lo) = rule(r, min).as_ref().and_then(as_u64)
        && (n as u64) < lo
    {
        out.push(Violation {
            path: path.clone(),
            message: if lo == 1 {
                "must not be empty".to_string()
            } else {
                format!("needs at least {lo} {what} (has {n})")
            },
        });
    }
    if let Some(hi) = rule(r, max).as_ref().and_then(as_u64)
        && (n as u64) > hi
    {
        out.push(Violation {
            path: path.clone(),
            message: format!("allows at most {hi} {what} (has {n})"),
        });
    }
}

/// Numeric comparisons shared by every number type, done in f64 (exact for the integer
/// ranges Envoy's rules use).
fn num(v: &Value) -> Option<f64> {
    Some(match v {
        Value::I32(n) => f64::from(*n),
        Value::I64(n) => *n as f64,
        Value::U32(n) => f64::from(*n),
        Value::U64(n) => *n as f64,
        Value::F32(n) => f64::from(*n),
        Value::F64(n) => *n,
        Value::EnumNumber(n) => f64::from(*n),
        _ => return None,
    })
}

fn check_number(r: &DynamicMessage, x: f64, path: &FieldPath, out: &mut Vec<Violation>) {
    let get = |name: &str| rule(r, name).as_ref().and_then(num);
    if matches!(rule(r, "ignore_empty"), Some(Value::Bool(true))) && x == 0.0 {
        return;
    }
    let mut fail = |m: String| {
        out.push(Violation {
            path: path.clone(),
            message: m,
        })
    };
    match (get("gt"), get("gte"), get("lt"), get("lte")) {
        (Some(gt), _, Some(lt), _) if !(x > gt && x < lt) => fail(format!(
            "must be greater than {gt} and less than {lt} (is {x})"
        )),
        (Some(gt), _, None, Some(lte)) if !(x > gt && x <= lte) => fail(format!(
            "must be greater than {gt} and at most {lte} (is {x})"
        )),
        (None, Some(gte), Some(lt), _) if !(x >= gte && x < lt) => fail(format!(
            "must be at least {gte} and less than {lt} (is {x})"
        )),
        (None, Some(gte), None, Some(lte)) if !(x >= gte && x <= lte) => {
            fail(format!("must be between {gte} and {lte} (is {x})"))
        }
        (Some(gt), _, None, None) if x <= gt => fail(format!("must be greater than {gt} (is {x})")),
        (None, Some(gte), None, None) if x < gte => {
            fail(format!("must be at least {gte} (is {x})"))
        }
        (None, None, Some(lt), _) if x >= lt => fail(format!("must be less than {lt} (is {x})")),
        (None, None, None, Some(lte)) if x > lte => fail(format!("must be at most {lte} (is {x})")),
        _ => {}
    }
    if let Some(c) = get("const")
        && x != c
    {
        fail(format!("must be {c} (is {x})"));
    }
}

fn check_scalar(
    r: &DynamicMessage,
    v: &Value,
    field: &FieldDescriptor,
    path: &FieldPath,
    out: &mut Vec<Violation>,
) {
    for kind in [
        "uint32", "uint64", "int32", "int64", "sint32", "sint64", "fixed32", "fixed64", "double",
        "float",
    ] {
        if let (Some(nr), Some(x)) = (sub(r, kind), num(v)) {
            check_number(&nr, x, path, out);
        }
    }
    if let (Some(sr), Value::String(s)) = (sub(r, "string"), v) {
        check_string(&sr, s, path, out);
    }
    if let (Some(er), Value::EnumNumber(n)) = (sub(r, "enum"), v)
        && matches!(rule(&er, "defined_only"), Some(Value::Bool(true)))
        && let Kind::Enum(e) = field.kind()
        && e.get_value(*n).is_none()
    {
        out.push(Violation {
            path: path.clone(),
            message: format!("{n} is not a value of {}", e.name()),
        });
    }
}

fn check_string(r: &DynamicMessage, s: &str, path: &FieldPath, out: &mut Vec<Violation>) {
    if matches!(rule(r, "ignore_empty"), Some(Value::Bool(true))) && s.is_empty() {
        return;
    }
    let chars = s.chars().count() as u64;
    let bytes = s.len() as u64;
    let mut fail = |m: String| {
        out.push(Violation {
            path: path.clone(),
            message: m,
        })
    };
    let n = |name: &str| rule(r, name).as_ref().and_then(as_u64);
    for (min, max, len, unit) in [
        ("min_len", "max_len", chars, "characters"),
        ("min_bytes", "max_bytes", bytes, "bytes"),
    ] {
        if let Some(lo) = n(min)
            && len < lo
        {
            fail(if lo == 1 {
                "must not be empty".to_string()
            } else {
                format!("must be at least {lo} {unit} (is {len})")
            });
        }
        if let Some(hi) = n(max)
            && len > hi
        {
            fail(format!("must be at most {hi} {unit} (is {len})"));
        }
    }
    for (name, test) in [
        (
            "prefix",
            (|s: &str, p: &str| s.starts_with(p)) as fn(&str, &str) -> bool,
        ),
        ("suffix", |s, p| s.ends_with(p)),
        ("contains", |s, p| s.contains(p)),
    ] {
        if let Some(Value::String(p)) = rule(r, name)
            && !test(s, &p)
        {
            fail(format!("must have {name} {p:?}"));
        }
    }
    if let Some(Value::String(p)) = rule(r, "not_contains")
        && s.contains(&p)
    {
        fail(format!("must not contain {p:?}"));
    }
}

fn check_duration(
    r: &DynamicMessage,
    d: &DynamicMessage,
    path: &FieldPath,
    out: &mut Vec<Violation>,
) {
    let secs = |m: &DynamicMessage| {
        let s = m
            .get_field_by_name("seconds")
            .and_then(|v| v.as_i64())
            .unwrap_or(0);
        let n = m
            .get_field_by_name("nanos")
            .and_then(|v| v.as_i32())
            .unwrap_or(0);
        s as f64 + f64::from(n) / 1e9
    };
    let x = secs(d);
    let bound = |name: &str| match rule(r, name) {
        Some(Value::Message(m)) => Some(secs(&m)),
        _ => None,
    };
    let mut fail = |m: String| {
        out.push(Violation {
            path: path.clone(),
            message: m,
        })
    };
    if let Some(gt) = bound("gt")
        && x <= gt
    {
        fail(format!("must be longer than {gt}s (is {x}s)"));
    }
    if let Some(gte) = bound("gte")
        && x < gte
    {
        fail(format!("must be at least {gte}s (is {x}s)"));
    }
    if let Some(lt) = bound("lt")
        && x >= lt
    {
        fail(format!("must be shorter than {lt}s (is {x}s)"));
    }
    if let Some(lte) = bound("lte")
        && x > lte
    {
        fail(format!("must be at most {lte}s (is {x}s)"));
    }
}
