//! Structure-aware mutation of an encoded Envoy resource. Byte-level mutations of protobuf
//! mostly break length prefixes, so they rarely reach a converter with a new value in a deep
//! field (a `server_names` entry inside a filter chain match, a route inside an HCM `Any`).
//! This decodes the message through the proxy's own descriptors, walks to a random field —
//! through `Any` values too — changes it to an edge-case value, and encodes it again.

use prost::Message;
use prost_reflect::{DynamicMessage, Kind, MessageDescriptor, ReflectMessage, Value};
use weft_proxy::descriptors;

/// Strings that sit on the edges converters check: empty, wildcards, non-ASCII, addresses,
/// header-formatter syntax, separators.
const STRINGS: &[&str] = &[
    "",
    "*",
    "*.",
    "*.a.com",
    "a.*",
    "é",
    "é.com",
    "/",
    "//",
    "/a/",
    "?",
    "#",
    "%",
    "%%",
    "%REQ(x)%",
    "%HOSTNAME%",
    "127.0.0.1",
    "::1",
    "[::1]",
    "0.0.0.0",
    "256.0.0.1",
    "localhost",
    "a:80",
    "x-a",
    ":path",
    "host",
    "Bad Name",
    "(",
    "a{99999}",
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
    "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
    "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
];

const INTS: &[i64] = &[
    0,
    1,
    -1,
    2,
    99,
    100,
    200,
    599,
    600,
    1024,
    65535,
    65536,
    i32::MAX as i64,
    i32::MIN as i64,
    u32::MAX as i64,
    i64::MAX,
    i64::MIN,
];

/// A small deterministic generator, so that libFuzzer's seed reproduces a mutation.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// The message type of resource kind `kind` (the fuzz target's first byte, modulo 5).
pub fn type_of(kind: u8) -> &'static str {
    match kind % 5 {
        0 => "envoy.config.listener.v3.Listener",
        1 => "envoy.config.route.v3.RouteConfiguration",
        2 => "envoy.config.cluster.v3.Cluster",
        3 => "envoy.config.endpoint.v3.ClusterLoadAssignment",
        _ => "envoy.extensions.transport_sockets.tls.v3.Secret",
    }
}

/// Mutates `data[..size]` (type byte + protobuf) in place; `None` when it does not decode
/// or the result would not fit `max_size`.
pub fn mutate(data: &mut [u8], size: usize, max_size: usize, seed: u32) -> Option<usize> {
    let (&kind, body) = data[..size].split_first()?;
    let desc = descriptors::message(type_of(kind))?;
    let mut msg = DynamicMessage::decode(desc, body).ok()?;
    let mut rng = Rng(u64::from(seed) | 1 << 40);
    // A few edits at once reach combinations (two domains equal, a port and an address).
    for _ in 0..=rng.below(3) {
        edit(&mut msg, &mut rng, 0);
    }
    let out = msg.encode_to_vec();
    if out.len() + 1 > max_size {
        return None;
    }
    data[1..=out.len()].copy_from_slice(&out);
    Some(out.len() + 1)
}

/// Descends into a set message field with some probability, otherwise edits a field here.
fn edit(msg: &mut DynamicMessage, rng: &mut Rng, depth: usize) {
    let desc = msg.descriptor();
    if desc.full_name() == "google.protobuf.Any" && depth < 12 {
        return edit_any(msg, rng, depth);
    }
    let set: Vec<_> = msg
        .fields()
        .filter(|(f, _)| matches!(f.kind(), Kind::Message(_)) && !f.is_map())
        .map(|(f, _)| f)
        .collect();
    if !set.is_empty() && depth < 12 && rng.below(3) != 0 {
        let f = &set[rng.below(set.len())];
        match msg.get_field_mut(f) {
            Value::Message(m) => return edit(m, rng, depth + 1),
            Value::List(items) if !items.is_empty() => {
                let i = rng.below(items.len());
                if let Value::Message(m) = &mut items[i] {
                    return edit(m, rng, depth + 1);
                }
            }
            _ => {}
        }
    }
    let fields: Vec<_> = desc.fields().filter(|f| !f.is_map()).collect();
    if fields.is_empty() {
        return;
    }
    let f = &fields[rng.below(fields.len())];
    if f.is_list() {
        let fresh = value_for(&f.kind(), None, rng, depth);
        let Value::List(items) = msg.get_field_mut(f) else {
            return;
        };
        match rng.below(3) {
            0 if !items.is_empty() => {
                items.remove(rng.below(items.len()));
            }
            1 if !items.is_empty() => {
                let i = rng.below(items.len());
                items.push(items[i].clone());
            }
            _ => items.push(fresh),
        }
        return;
    }
    if rng.below(8) == 0 {
        msg.clear_field(f);
        return;
    }
    let current = msg.has_field(f).then(|| msg.get_field(f).into_owned());
    msg.set_field(f, value_for(&f.kind(), current, rng, depth));
}

/// An `Any`: change its type, or decode its value by its type and edit inside.
fn edit_any(msg: &mut DynamicMessage, rng: &mut Rng, depth: usize) {
    let url = match msg.get_field_by_name("type_url").as_deref() {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let inner: Option<MessageDescriptor> =
        descriptors::message(url.rsplit('/').next().unwrap_or_default());
    let (Some(inner), true) = (inner, rng.below(6) != 0) else {
        let i = rng.below(STRINGS.len());
        msg.set_field_by_name("type_url", Value::String(STRINGS[i].into()));
        return;
    };
    let bytes = match msg.get_field_by_name("value").as_deref() {
        Some(Value::Bytes(b)) => b.clone(),
        _ => Default::default(),
    };
    let Ok(mut m) = DynamicMessage::decode(inner, bytes) else {
        return;
    };
    edit(&mut m, rng, depth + 1);
    msg.set_field_by_name("value", Value::Bytes(m.encode_to_vec().into()));
}

fn value_for(kind: &Kind, current: Option<Value>, rng: &mut Rng, depth: usize) -> Value {
    let int = INTS[rng.below(INTS.len())];
    match kind {
        Kind::Bool => Value::Bool(!matches!(current, Some(Value::Bool(true)))),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(int as i32),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(int),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(int as u32),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(int as u64),
        Kind::Float => Value::F32(int as f32),
        Kind::Double => Value::F64(int as f64),
        Kind::Enum(e) => {
            let values: Vec<i32> = e.values().map(|v| v.number()).collect();
            Value::EnumNumber(match rng.below(4) {
                0 => int as i32,
                _ => values[rng.below(values.len())],
            })
        }
        Kind::String => {
            let s = STRINGS[rng.below(STRINGS.len())];
            match (current, rng.below(3)) {
                // Grow the existing text, so collisions with other fields' values happen.
                (Some(Value::String(c)), 0) => Value::String(format!("{c}{s}")),
                _ => Value::String(s.into()),
            }
        }
        Kind::Bytes => Value::Bytes(STRINGS[rng.below(STRINGS.len())].as_bytes().to_vec().into()),
        // A fresh message gets one field at once: an empty one rarely adds coverage, so it
        // would not stay in the corpus long enough to be filled in later.
        Kind::Message(m) => {
            let mut fresh = DynamicMessage::new(m.clone());
            if depth < 12 {
                edit(&mut fresh, rng, depth + 1);
            }
            Value::Message(fresh)
        }
    }
}
