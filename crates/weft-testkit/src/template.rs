//! Bootstrap templates: a scenario's bootstrap is Envoy YAML with `{{...}}` placeholders for
//! the things only known at run time (ports), so exactly the same rendered text can be handed
//! to Envoy and to `weft proxy`.
//!
//! Placeholders: `{{admin_port}}`, `{{listener_port}}` (same as `{{port:listener}}`),
//! `{{port:NAME}}` (a fresh free port per NAME), `{{backend:NAME}}` (the port of the echo
//! backend NAME) and `{{closed_port}}` (a port with nothing listening, for connect failures).

use std::collections::BTreeMap;

use crate::{Error, ports};

/// A rendered bootstrap and the ports its placeholders were given.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub text: String,
    pub admin_port: u16,
    /// Named ports (`listener`, `port:NAME` names, `closed`).
    pub ports: BTreeMap<String, u16>,
}

impl Rendered {
    /// The port a `{{port:NAME}}` (or `{{listener_port}}` for `listener`) placeholder got.
    pub fn port(&self, name: &str) -> Result<u16, Error> {
        self.ports.get(name).copied().ok_or_else(|| {
            Error::Template(format!(
                "the bootstrap has no {{{{port:{name}}}}} placeholder (ports: {:?})",
                self.ports.keys().collect::<Vec<_>>()
            ))
        })
    }
}

impl Rendered {
    /// `text` with its `{{listener_port}}` and `{{port:NAME}}` placeholders replaced by the
    /// ports this rendering gave them, so a request can name a port the bootstrap holds.
    pub fn fill(&self, text: &str) -> Result<String, Error> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| {
                Error::Template(format!("unterminated placeholder near {:?}", trunc(after)))
            })?;
            let key = after[..end].trim();
            let name = match key.split_once(':') {
                None if key == "listener_port" => "listener",
                Some(("port", name)) => name,
                _ => {
                    return Err(Error::Template(format!(
                        "{{{{{key}}}}} cannot be used in a request"
                    )));
                }
            };
            out.push_str(&self.port(name)?.to_string());
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// Replaces every placeholder in `template`; `backends` maps echo backend names to ports.
/// Unknown or unterminated placeholders are errors so a typo cannot reach a proxy.
pub fn render(template: &str, backends: &BTreeMap<String, u16>) -> Result<Rendered, Error> {
    let admin_port = ports::free_port()?;
    let mut named: BTreeMap<String, u16> = BTreeMap::new();
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| {
            Error::Template(format!("unterminated placeholder near {:?}", trunc(after)))
        })?;
        let key = after[..end].trim();
        let port = match key.split_once(':') {
            None if key == "admin_port" => admin_port,
            None if key == "listener_port" => named_port(&mut named, "listener")?,
            None if key == "closed_port" => named_port(&mut named, "closed")?,
            Some(("port", name)) if !name.is_empty() => named_port(&mut named, name)?,
            Some(("backend", name)) => *backends.get(name).ok_or_else(|| {
                Error::Template(format!(
                    "{{{{backend:{name}}}}} names no backend (have {:?})",
                    backends.keys().collect::<Vec<_>>()
                ))
            })?,
            _ => {
                return Err(Error::Template(format!(
                    "unknown placeholder {{{{{key}}}}}"
                )));
            }
        };
        out.push_str(&port.to_string());
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(Rendered {
        text: out,
        admin_port,
        ports: named,
    })
}

fn named_port(named: &mut BTreeMap<String, u16>, name: &str) -> Result<u16, Error> {
    if let Some(p) = named.get(name) {
        return Ok(*p);
    }
    let p = ports::free_port()?;
    named.insert(name.to_string(), p);
    Ok(p)
}

fn trunc(s: &str) -> &str {
    s.char_indices().nth(40).map_or(s, |(i, _)| &s[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_consistently() {
        let backends = BTreeMap::from([("a".to_string(), 4242u16)]);
        let r = render(
            "admin: {{admin_port}} l: {{listener_port}} again: {{ port:listener }} b: {{backend:a}} x: {{port:x}}",
            &backends,
        )
        .unwrap();
        let l = r.port("listener").unwrap();
        let x = r.port("x").unwrap();
        assert_eq!(
            r.text,
            format!("admin: {} l: {l} again: {l} b: 4242 x: {x}", r.admin_port)
        );
        assert_ne!(l, x);
    }

    #[test]
    fn requests_can_name_the_rendered_ports() {
        let r = render("l: {{listener_port}} x: {{port:x}}", &BTreeMap::new()).unwrap();
        let l = r.port("listener").unwrap();
        assert_eq!(
            r.fill("h:{{listener_port}}/{{ port:x }}").unwrap(),
            format!("h:{l}/{}", r.port("x").unwrap())
        );
        assert!(r.fill("{{port:nope}}").is_err());
        assert!(r.fill("{{admin_port}}").is_err());
        assert_eq!(r.fill("plain").unwrap(), "plain");
    }

    #[test]
    fn unknown_and_unterminated_placeholders_fail() {
        let none = BTreeMap::new();
        assert!(render("{{backend:zz}}", &none).is_err());
        assert!(render("{{what}}", &none).is_err());
        assert!(render("port: {{admin_port", &none).is_err());
    }
}
