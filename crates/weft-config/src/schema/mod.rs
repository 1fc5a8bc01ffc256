//! The shape of every resource, discovered from its serde `Deserialize` impl rather than
//! written twice: which fields exist where. It answers "did you mean …?" for a field that
//! exists elsewhere in the same resource (`connectTimeout` lives under
//! `connectionPool.tcp`, not `connectionPool.http`).

mod probe;

use serde::de::DeserializeOwned;

/// The shape of a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// A message with named fields (index into [`Schema::structs`]).
    Struct(usize),
    Seq(Box<Shape>),
    /// A map with free-form string keys.
    Map(Box<Shape>),
    /// A string enum with its allowed values.
    Enum(&'static [&'static str]),
    /// A scalar or free-form value: `string`, `integer`, `number`, `boolean`, `duration`, `any`.
    Leaf(&'static str),
}

/// One message type.
#[derive(Debug, Clone, PartialEq)]
pub struct StructShape {
    pub name: &'static str,
    pub fields: Vec<(&'static str, Shape)>,
}

/// The schema of one root type.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub root: Shape,
    pub structs: Vec<StructShape>,
}

/// A field reachable from the root, with the dotted path to it (`[]` for list elements,
/// `[*]` for map values).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSite {
    pub path: String,
    pub name: &'static str,
    /// The struct holding this field.
    pub parent: usize,
}

impl Schema {
    /// Explores `T`'s `Deserialize` impl.
    pub fn of<T: DeserializeOwned>() -> Schema {
        probe::explore::<T>()
    }

    pub fn struct_shape(&self, i: usize) -> &StructShape {
        &self.structs[i]
    }

    /// Every field site reachable from the root, breadth first, each struct expanded once
    /// per path up to a bounded depth (recursive messages are cut).
    pub fn sites(&self, prefix: &str) -> Vec<FieldSite> {
        let mut out = Vec::new();
        let mut queue: Vec<(String, &Shape, usize)> = vec![(prefix.to_string(), &self.root, 0)];
        while let Some((path, shape, depth)) = queue.pop() {
            if depth > 16 {
                continue;
            }
            match shape {
                Shape::Struct(i) => {
                    for (name, sh) in &self.structs[*i].fields {
                        let p = if path.is_empty() {
                            (*name).to_string()
                        } else {
                            format!("{path}.{name}")
                        };
                        out.push(FieldSite {
                            path: p.clone(),
                            name,
                            parent: *i,
                        });
                        queue.push((p, sh, depth + 1));
                    }
                }
                Shape::Seq(inner) => queue.push((format!("{path}[]"), inner, depth + 1)),
                Shape::Map(inner) => queue.push((format!("{path}[*]"), inner, depth + 1)),
                Shape::Enum(_) | Shape::Leaf(_) => {}
            }
        }
        out
    }

    /// The message a shape holds, looking through lists and maps.
    fn message_of(shape: &Shape) -> Option<usize> {
        match shape {
            Shape::Struct(i) => Some(*i),
            Shape::Seq(inner) | Shape::Map(inner) => Schema::message_of(inner),
            Shape::Enum(_) | Shape::Leaf(_) => None,
        }
    }

    /// How many of `keys` are fields of message `i`.
    fn matching_fields(&self, i: usize, keys: &[String]) -> usize {
        let fields = &self.structs[i].fields;
        keys.iter()
            .filter(|k| fields.iter().any(|(f, _)| f == k))
            .count()
    }

    /// Where an unknown field `key`, written at `shape_path` (as from
    /// [`crate::FieldPath::schema_shape`]) with a value whose keys are `value_keys`, most
    /// likely belongs — as a "did you mean" sentence:
    /// 1. a field of the same name elsewhere in the resource, nearest to where it was written
    ///    (and able to hold a value of that shape);
    /// 2. a sibling message whose fields match the value's keys (`circuitBreaker` written
    ///    with `outlierDetection`'s fields);
    /// 3. a close spelling anywhere in the resource.
    pub fn suggest_placement(
        &self,
        shape_path: &str,
        key: &str,
        value_keys: &[String],
    ) -> Option<String> {
        let parent_shape = shape_path.rsplit_once('.').map_or("", |(p, _)| p);
        let sites = self.sites("");
        let common =
            |a: &str, b: &str| a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
        let fits = |site: &FieldSite| {
            if value_keys.is_empty() {
                return true;
            }
            let field = self.structs[site.parent]
                .fields
                .iter()
                .find(|(n, _)| *n == site.name);
            match field.and_then(|(_, sh)| Schema::message_of(sh)) {
                Some(i) => self.matching_fields(i, value_keys) * 2 >= value_keys.len(),
                None => false,
            }
        };
        let same = sites
            .iter()
            .filter(|s| s.name == key && s.path != shape_path && fits(s))
            .max_by_key(|s| (common(&s.path, shape_path), usize::MAX - s.path.len()));
        if let Some(best) = same {
            return Some(format!(
                "`{key}` is a field of `{}`, not of `{parent_shape}`: did you mean `{}`?",
                best.path.rsplit_once('.').map_or("", |(p, _)| p),
                best.path
            ));
        }
        if !value_keys.is_empty()
            && let Some(parent) = self.struct_at(parent_shape)
        {
            let mut ranked: Vec<(usize, &str)> = self.structs[parent]
                .fields
                .iter()
                .filter_map(|(name, sh)| {
                    let i = Schema::message_of(sh)?;
                    let hits = self.matching_fields(i, value_keys);
                    (hits * 2 >= value_keys.len()).then_some((hits, *name))
                })
                .collect();
            ranked.sort_by_key(|r| std::cmp::Reverse(r.0));
            if let Some(&(top, _)) = ranked.first() {
                let names: Vec<String> = ranked
                    .iter()
                    .take_while(|(h, _)| *h == top)
                    .take(3)
                    .map(|(_, n)| format!("`{n}`"))
                    .collect();
                let n = value_keys.len();
                return Some(if names.len() == 1 {
                    format!(
                        "did you mean {}? It has {top} of the {n} fields written under `{key}`",
                        names[0]
                    )
                } else {
                    format!(
                        "did you mean one of {}? Each has {top} of the {n} fields written under `{key}`",
                        names.join(", ")
                    )
                });
            }
        }
        let close = crate::suggest::closest(key, sites.iter().map(|s| s.name))?;
        let site = sites
            .iter()
            .filter(|s| s.name == close)
            .max_by_key(|s| common(&s.path, shape_path))?;
        Some(format!("did you mean `{}`?", site.path))
    }

    /// The struct index of the message at `shape_path` (as produced by
    /// [`crate::FieldPath::schema_shape`]), if any.
    pub fn struct_at(&self, shape_path: &str) -> Option<usize> {
        let mut shape = &self.root;
        let mut rest = shape_path;
        loop {
            while let Shape::Seq(inner) | Shape::Map(inner) = shape {
                rest = rest
                    .strip_prefix("[]")
                    .or_else(|| rest.strip_prefix("[*]"))
                    .unwrap_or(rest);
                shape = inner;
            }
            rest = rest.strip_prefix('.').unwrap_or(rest);
            if rest.is_empty() {
                return match shape {
                    Shape::Struct(i) => Some(*i),
                    _ => None,
                };
            }
            let Shape::Struct(i) = shape else { return None };
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let (name, tail) = rest.split_at(end);
            shape = &self.structs[*i].fields.iter().find(|(n, _)| *n == name)?.1;
            rest = tail;
        }
    }
}

#[cfg(test)]
mod tests;
