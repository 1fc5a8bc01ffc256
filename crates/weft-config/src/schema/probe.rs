//! The probe: a serde `Deserializer` that, instead of reading data, walks a type's
//! `Deserialize` impl and records every struct, field, list, map and enum it is asked for.

use super::{Schema, Shape, StructShape};
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;

#[derive(Default)]
struct State {
    structs: Vec<StructShape>,
    by_key: HashMap<(&'static str, usize), usize>,
    stack: Vec<usize>,
    /// Shape of the value explored last; each explore call sets it before returning.
    last: Option<Shape>,
    /// (struct index, field) pairs that failed to explore and are skipped.
    skip: HashSet<(usize, &'static str)>,
    /// Structs whose every field has been explored.
    complete: HashSet<usize>,
}

#[derive(Default)]
struct Explorer {
    state: RefCell<State>,
}

#[derive(Debug)]
enum ProbeError {
    /// A field failed and was marked to skip; restart.
    Skip,
    Other(String),
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::Skip => f.write_str("field skipped"),
            ProbeError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ProbeError {}

impl de::Error for ProbeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ProbeError::Other(msg.to_string())
    }
}

struct Probe<'a> {
    ex: &'a Explorer,
}

impl Probe<'_> {
    fn set(&self, s: Shape) {
        self.ex.state.borrow_mut().last = Some(s);
    }

    fn take(&self) -> Shape {
        self.ex
            .state
            .borrow_mut()
            .last
            .take()
            .unwrap_or(Shape::Leaf("any"))
    }
}

macro_rules! leaf {
    ($($method:ident $visit:ident $val:expr, $name:expr;)*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
            self.set(Shape::Leaf($name));
            v.$visit($val)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = ProbeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        self.set(Shape::Leaf("any"));
        v.visit_unit()
    }

    leaf! {
        deserialize_bool visit_bool false, "boolean";
        deserialize_i8 visit_i8 0, "integer";
        deserialize_i16 visit_i16 0, "integer";
        deserialize_i32 visit_i32 0, "integer";
        deserialize_i64 visit_i64 0, "integer";
        deserialize_u8 visit_u8 0, "integer";
        deserialize_u16 visit_u16 0, "integer";
        deserialize_u32 visit_u32 0, "integer";
        deserialize_u64 visit_u64 0, "integer";
        deserialize_f32 visit_f32 0.0, "number";
        deserialize_f64 visit_f64 0.0, "number";
        deserialize_char visit_char 'a', "string";
        deserialize_str visit_str "", "string";
        deserialize_string visit_str "", "string";
        deserialize_bytes visit_str "", "string";
        deserialize_byte_buf visit_str "", "string";
        deserialize_identifier visit_str "", "string";
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        v.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        self.set(Shape::Leaf("any"));
        v.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, ProbeError> {
        self.deserialize_unit(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, ProbeError> {
        if name == crate::types::DURATION_TYPE {
            self.set(Shape::Leaf("duration"));
            // The dummy value is not a valid duration; the caller skips this field.
            return v.visit_newtype_struct("1s".into_deserializer());
        }
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        v.visit_seq(OneElement {
            probe: Probe { ex: self.ex },
            done: false,
            shape: None,
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, ProbeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        v: V,
    ) -> Result<V::Value, ProbeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        v.visit_map(OneEntry {
            probe: Probe { ex: self.ex },
            state: 0,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, ProbeError> {
        let key = (name, fields.as_ptr() as usize);
        let (idx, recursive) = {
            let mut st = self.ex.state.borrow_mut();
            match st.by_key.get(&key).copied() {
                Some(i) => (i, st.stack.contains(&i) || st.complete.contains(&i)),
                None => {
                    let i = st.structs.len();
                    st.structs.push(StructShape {
                        name,
                        fields: Vec::new(),
                    });
                    st.by_key.insert(key, i);
                    (i, false)
                }
            }
        };
        if recursive {
            // Already explored (or being explored): reuse it; visiting an empty map yields
            // the default value without descending again.
            self.set(Shape::Struct(idx));
            return v.visit_map(NoEntries);
        }
        self.ex.state.borrow_mut().stack.push(idx);
        let progress = RefCell::new(Progress::default());
        let r = v.visit_map(StructFields {
            probe: Probe { ex: self.ex },
            idx,
            fields,
            i: 0,
            progress: &progress,
        });
        let mut st = self.ex.state.borrow_mut();
        st.stack.pop();
        st.last = Some(Shape::Struct(idx));
        match r {
            Ok(v) => {
                st.complete.insert(idx);
                Ok(v)
            }
            // The type's own visitor rejected what it was given after the field decoded
            // (an alias seen as a duplicate key, an `apiVersion` that must equal a constant):
            // skip the key it choked on and try again. Its shape is already recorded.
            Err(ProbeError::Other(msg)) => {
                let p = progress.into_inner();
                if let Some(alias) = p.pending {
                    // A key rejected before its value was asked for is an alias of a field
                    // already seen: it is accepted input, so keep it among the fields.
                    let fields = &mut st.structs[idx].fields;
                    if !fields.iter().any(|(n, _)| *n == alias) {
                        fields.push((alias, Shape::Leaf("any")));
                    }
                }
                match p.pending.or(p.last_done) {
                    Some(f) => {
                        st.skip.insert((idx, f));
                        Err(ProbeError::Skip)
                    }
                    None => Err(ProbeError::Other(msg)),
                }
            }
            Err(e) => Err(e),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, ProbeError> {
        self.set(Shape::Enum(variants));
        match variants.first() {
            Some(first) => v.visit_enum((*first).into_deserializer()),
            None => Err(ProbeError::Other("empty enum".into())),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        v.visit_unit()
    }
}

struct OneElement<'a> {
    probe: Probe<'a>,
    done: bool,
    shape: Option<Shape>,
}

impl<'de> de::SeqAccess<'de> for OneElement<'_> {
    type Error = ProbeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ProbeError> {
        if self.done {
            let inner = self.shape.take().unwrap_or(Shape::Leaf("any"));
            self.probe.set(Shape::Seq(Box::new(inner)));
            return Ok(None);
        }
        self.done = true;
        let r = seed.deserialize(Probe { ex: self.probe.ex });
        self.shape = Some(self.probe.take());
        if r.is_err() {
            let inner = self.shape.take().unwrap_or(Shape::Leaf("any"));
            self.probe.set(Shape::Seq(Box::new(inner)));
        }
        r.map(Some)
    }
}

struct OneEntry<'a> {
    probe: Probe<'a>,
    state: u8,
}

impl<'de> de::MapAccess<'de> for OneEntry<'_> {
    type Error = ProbeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ProbeError> {
        if self.state > 0 {
            return Ok(None);
        }
        self.state = 1;
        seed.deserialize(KeyProbe).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ProbeError> {
        let r = seed.deserialize(Probe { ex: self.probe.ex });
        let inner = self.probe.take();
        self.probe.set(Shape::Map(Box::new(inner)));
        r
    }
}

/// Map keys in the probe: a string for string keys, zero for numeric ones.
struct KeyProbe;

impl<'de> de::Deserializer<'de> for KeyProbe {
    type Error = ProbeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        v.visit_str("key")
    }

    fn deserialize_u32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        v.visit_u32(1)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        v.visit_u16(1)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        v.visit_i32(1)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        v.visit_u64(1)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i64 u8 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

struct NoEntries;

impl<'de> de::MapAccess<'de> for NoEntries {
    type Error = ProbeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        _: K,
    ) -> Result<Option<K::Value>, ProbeError> {
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, _: V) -> Result<V::Value, ProbeError> {
        Err(ProbeError::Other("no value".into()))
    }
}

struct StructFields<'a> {
    probe: Probe<'a>,
    idx: usize,
    fields: &'static [&'static str],
    i: usize,
    progress: &'a RefCell<Progress>,
}

/// Which key a struct visit is at, so a failure raised by the type's visitor can be
/// pinned on a field.
#[derive(Default)]
struct Progress {
    /// Key handed out whose value has not been requested yet.
    pending: Option<&'static str>,
    /// Last field whose value decoded.
    last_done: Option<&'static str>,
}

impl<'de> de::MapAccess<'de> for StructFields<'_> {
    type Error = ProbeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ProbeError> {
        while let Some(f) = self.fields.get(self.i) {
            self.i += 1;
            let skip = {
                let st = self.probe.ex.state.borrow();
                st.skip.contains(&(self.idx, *f))
            };
            if skip {
                continue;
            }
            self.progress.borrow_mut().pending = Some(f);
            return seed.deserialize((*f).into_deserializer()).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ProbeError> {
        let field = self.progress.borrow_mut().pending.take().unwrap_or("");
        let r = seed.deserialize(Probe { ex: self.probe.ex });
        let shape = self.probe.take();
        let mut st = self.probe.ex.state.borrow_mut();
        let s = &mut st.structs[self.idx];
        match s.fields.iter_mut().find(|(n, _)| *n == field) {
            Some(slot) => slot.1 = shape,
            None => s.fields.push((field, shape)),
        }
        match r {
            Ok(v) => {
                self.progress.borrow_mut().last_done = Some(field);
                Ok(v)
            }
            // Already recorded deeper down: only the innermost failing field is skipped.
            Err(ProbeError::Skip) => Err(ProbeError::Skip),
            Err(ProbeError::Other(_)) => {
                st.skip.insert((self.idx, field));
                Err(ProbeError::Skip)
            }
        }
    }
}

/// Explores `T`. Fields whose exploration failed (a leaf type rejecting the probe's dummy
/// value) are recorded and skipped on the next pass.
pub(super) fn explore<T: DeserializeOwned>() -> Schema {
    let ex = Explorer::default();
    for _ in 0..100_000 {
        ex.state.borrow_mut().stack.clear();
        match T::deserialize(Probe { ex: &ex }) {
            Ok(_) => break,
            Err(ProbeError::Skip) => continue,
            Err(ProbeError::Other(_)) => break,
        }
    }
    let st = ex.state.into_inner();
    Schema {
        root: st.last.unwrap_or(Shape::Leaf("any")),
        structs: st.structs,
    }
}
