//! Field paths such as `spec.http[0].route[1].weight`: how every finding names the place
//! in a resource it is about, and how that place is found again in the source text.

use std::fmt;

/// One step into a resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// A schema field (`spec`, `trafficPolicy`).
    Field(String),
    /// A key of a free-form map (`labels[app]`, `headers["x-user"]`).
    Key(String),
    /// A list element.
    Index(usize),
}

/// A path from the resource root to a field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(pub Vec<Segment>);

impl FieldPath {
    pub fn root() -> Self {
        FieldPath(Vec::new())
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn push(&mut self, s: Segment) {
        self.0.push(s);
    }

    pub fn pop(&mut self) {
        self.0.pop();
    }

    pub fn field(&self, name: &str) -> Self {
        let mut p = self.clone();
        p.push(Segment::Field(name.to_string()));
        p
    }

    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.push(Segment::Index(i));
        p
    }

    pub fn key(&self, k: &str) -> Self {
        let mut p = self.clone();
        p.push(Segment::Key(k.to_string()));
        p
    }

    /// `self` followed by `rest` (a path inside a document placed at `self`).
    pub fn join(&self, rest: &FieldPath) -> Self {
        let mut p = self.clone();
        p.0.extend(rest.0.iter().cloned());
        p
    }

    /// Parses the display form back (`spec.http[0].match[1].headers["x-user"]`); used by
    /// tests and by callers that name paths literally.
    pub fn parse(s: &str) -> Self {
        let mut out = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                rest = r;
                continue;
            }
            if let Some(r) = rest.strip_prefix("[\"") {
                let end = r.find("\"]").unwrap_or(r.len());
                out.push(Segment::Key(r[..end].to_string()));
                rest = r.get(end + 2..).unwrap_or("");
            } else if let Some(r) = rest.strip_prefix('[') {
                let end = r.find(']').unwrap_or(r.len());
                let inner = &r[..end];
                out.push(match inner.parse() {
                    Ok(i) => Segment::Index(i),
                    Err(_) => Segment::Key(inner.to_string()),
                });
                rest = r.get(end + 1..).unwrap_or("");
            } else {
                let end = rest.find(['.', '[']).unwrap_or(rest.len());
                out.push(Segment::Field(rest[..end].to_string()));
                rest = &rest[end..];
            }
        }
        FieldPath(out)
    }

    /// The path with list indices erased (`spec.http[].route[]`), for schema lookups.
    pub fn schema_shape(&self) -> String {
        let mut s = String::new();
        for seg in &self.0 {
            match seg {
                Segment::Field(f) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(f);
                }
                Segment::Key(_) => s.push_str("[*]"),
                Segment::Index(_) => s.push_str("[]"),
            }
        }
        s
    }
}

fn plain_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '/')
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Field(name) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(name)?;
                }
                Segment::Key(k) if plain_key(k) => write!(f, "[{k}]")?,
                Segment::Key(k) => write!(f, "[{k:?}]")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_agree() {
        let p = FieldPath::root()
            .field("spec")
            .field("http")
            .index(0)
            .field("match")
            .index(1)
            .field("headers")
            .key("user-agent");
        assert_eq!(p.to_string(), "spec.http[0].match[1].headers[user-agent]");
        assert_eq!(FieldPath::parse(&p.to_string()), p);
        let q = FieldPath::root().field("data").key("root-cert.pem");
        assert_eq!(q.to_string(), "data[\"root-cert.pem\"]");
        assert_eq!(FieldPath::parse(&q.to_string()), q);
        assert_eq!(p.schema_shape(), "spec.http[].match[].headers[*]");
    }
}
