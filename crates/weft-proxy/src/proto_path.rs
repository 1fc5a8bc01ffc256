//! Following a field path (`static_resources.clusters[0].type`) through Envoy's message
//! descriptors and the document beside it — `Any` fields take their type from the `@type`
//! written next to them — so an error can say which fields or values were possible.

use crate::descriptors;
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use weft_yaml::{FieldPath, Node, Segment, suggest};

const ANY: &str = "google.protobuf.Any";

fn field(desc: &MessageDescriptor, name: &str) -> Option<FieldDescriptor> {
    desc.get_field_by_name(name)
        .or_else(|| desc.get_field_by_json_name(name))
}

/// The message that holds the last segment of `path`, starting from `root_desc` at `root`.
pub fn parent_message(
    root_desc: &MessageDescriptor,
    root: &Node,
    path: &FieldPath,
) -> Option<MessageDescriptor> {
    let (_, parents) = path.0.split_last()?;
    let mut desc = root_desc.clone();
    let mut node = root;
    // Set when the previous segment was a map field: the next segment is a map key.
    let mut map_value: Option<MessageDescriptor> = None;
    for seg in parents {
        match seg {
            Segment::Index(i) => node = node.as_seq()?.get(*i)?,
            Segment::Field(name) | Segment::Key(name) => {
                node = node.get(name)?;
                if let Some(v) = map_value.take() {
                    desc = v;
                    continue;
                }
                let f = field(&desc, name)?;
                let Kind::Message(m) = f.kind() else {
                    return None;
                };
                if f.is_map() {
                    match m.map_entry_value_field().kind() {
                        Kind::Message(v) => map_value = Some(v),
                        _ => return None,
                    }
                } else if m.full_name() == ANY {
                    let url = node.get_str("@type")?;
                    desc = descriptors::message(url.rsplit('/').next()?)?;
                } else {
                    desc = m;
                }
            }
        }
    }
    Some(desc)
}

/// "did you mean …?" for an unknown field name in `desc`.
pub fn suggest_field(desc: &MessageDescriptor, unknown: &str) -> Option<String> {
    let names: Vec<String> = desc.fields().map(|f| f.name().to_string()).collect();
    suggest::closest(unknown, names.iter().map(String::as_str))
        .map(|n| format!("did you mean `{n}`?"))
}

/// "did you mean …?" (or the list of values) for a bad enum value of field `name`.
pub fn suggest_enum_value(desc: &MessageDescriptor, name: &str, value: &str) -> Option<String> {
    let f = field(desc, name)?;
    let Kind::Enum(e) = f.kind() else { return None };
    let values: Vec<String> = e.values().map(|v| v.name().to_string()).collect();
    Some(
        match suggest::closest(value, values.iter().map(String::as_str)) {
            Some(v) => format!("did you mean `{v}`?"),
            None => format!("one of {}", values.join(", ")),
        },
    )
}

/// What a scalar field expects, for messages about values of the wrong form.
pub fn expected_type(desc: &MessageDescriptor, name: &str) -> Option<String> {
    let f = field(desc, name)?;
    let what = match f.kind() {
        Kind::Double => "double",
        Kind::Float => "float",
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => "int32",
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => "int64",
        Kind::Uint32 | Kind::Fixed32 => "uint32",
        Kind::Uint64 | Kind::Fixed64 => "uint64",
        Kind::Bool => "bool",
        Kind::String => "string",
        Kind::Bytes => "base64 bytes",
        Kind::Message(_) | Kind::Enum(_) => return None,
    };
    Some(format!("expected {what}"))
}
