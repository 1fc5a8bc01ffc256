//! The serde access objects over lists and mappings, and the key deserializer; the
//! struct access is where unknown fields are caught.

use super::{DeError, Deser, Seg, Trail};
use crate::Problem;
use crate::node::Node;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

pub(super) struct SeqAccess<'a, 'b> {
    pub(super) de: &'b Deser<'a>,
    pub(super) items: &'a [Node],
    pub(super) i: usize,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'_, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        while let Some(item) = self.items.get(self.i) {
            let idx = self.i;
            self.i += 1;
            if self.de.cx.poisoned.contains(&item.id) {
                continue;
            }
            let frame = Trail {
                parent: Some(self.de.trail),
                seg: Some(Seg::Index(idx)),
            };
            return seed.deserialize(self.de.child(item, &frame)).map(Some);
        }
        Ok(None)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len().saturating_sub(self.i))
    }
}

/// Walks a mapping. With `fields` set (a struct), unknown keys are reported and skipped and
/// null values are treated as absent, as the Kubernetes API server prunes them.
pub(super) struct MapAccess<'a, 'b> {
    pub(super) de: &'b Deser<'a>,
    pub(super) entries: &'a [(Node, Node)],
    pub(super) i: usize,
    pub(super) value: Option<&'a (Node, Node)>,
    pub(super) fields: Option<(&'static str, &'static [&'static str])>,
    pub(super) frame_key: String,
}

impl MapAccess<'_, '_> {
    /// An error the visitor raised after taking a key but before asking for its value (an
    /// unknown field in a protobuf message) is about that key: locate it there, so only that
    /// entry is skipped on the next attempt.
    pub(super) fn blame_pending_key(&self, e: DeError) -> DeError {
        match self.value {
            Some((key, _)) if e.at.is_none() => {
                let name = key.scalar().unwrap_or_default();
                let seg = if self.fields.is_some() || self.de.cx.keys_are_fields {
                    Seg::Field(name)
                } else {
                    Seg::Key(name)
                };
                let frame = Trail {
                    parent: Some(self.de.trail),
                    seg: Some(seg),
                };
                self.de.child(key, &frame).locate(e)
            }
            _ => self.de.locate(e),
        }
    }
}

impl<'de> de::MapAccess<'de> for MapAccess<'_, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        while let Some(entry) = self.entries.get(self.i) {
            self.i += 1;
            let (k, val) = entry;
            if self.de.cx.poisoned.contains(&val.id) || self.de.cx.poisoned.contains(&k.id) {
                continue;
            }
            let Some(key) = k.scalar() else {
                let d = self.de.child(k, self.de.trail);
                return Err(d.locate(DeError::new(
                    Problem::InvalidType,
                    "mapping keys must be plain strings, not lists or mappings",
                )));
            };
            if let Some((name, fields)) = self.fields {
                if !fields.contains(&key) {
                    self.de.record_unknown(k, val, name, fields);
                    continue;
                }
                if val.is_null() {
                    continue;
                }
            }
            self.value = Some(entry);
            self.frame_key = key.to_string();
            return seed
                .deserialize(KeyDeser { text: key })
                .map(Some)
                .map_err(|e| self.de.child(k, self.de.trail).locate(e));
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((_, val)) = self.value.take() else {
            return Err(DeError::new(
                Problem::InvalidValue,
                "value requested before key",
            ));
        };
        let seg = if self.fields.is_some() || self.de.cx.keys_are_fields {
            Seg::Field(&self.frame_key)
        } else {
            Seg::Key(&self.frame_key)
        };
        let frame = Trail {
            parent: Some(self.de.trail),
            seg: Some(seg),
        };
        seed.deserialize(self.de.child(val, &frame))
    }
}

/// Mapping keys are always strings in Kubernetes' JSON; numeric keys (`portLevelMtls`
/// ports) are parsed from that string.
pub(super) struct KeyDeser<'a> {
    pub(super) text: &'a str,
}

macro_rules! key_parse {
    ($($method:ident $visit:ident $ty:ty;)*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
            match self.text.parse::<$ty>() {
                Ok(n) => v.$visit(n),
                Err(_) => Err(DeError::new(
                    Problem::InvalidType,
                    format!("key `{}` must be {}", self.text, stringify!($ty)),
                )),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for KeyDeser<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_str(self.text)
    }

    key_parse! {
        deserialize_bool visit_bool bool;
        deserialize_i8 visit_i8 i8;
        deserialize_i16 visit_i16 i16;
        deserialize_i32 visit_i32 i32;
        deserialize_i64 visit_i64 i64;
        deserialize_u8 visit_u8 u8;
        deserialize_u16 visit_u16 u16;
        deserialize_u32 visit_u32 u32;
        deserialize_u64 visit_u64 u64;
        deserialize_f32 visit_f32 f32;
        deserialize_f64 visit_f64 f64;
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        if variants.contains(&self.text) {
            let d: de::value::StrDeserializer<'_, DeError> = self.text.into_deserializer();
            v.visit_enum(d)
        } else {
            Err(DeError::new(
                Problem::InvalidValue,
                format!(
                    "unknown key `{}`; expected one of {}",
                    self.text,
                    variants.join(", ")
                ),
            ))
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf option unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}
