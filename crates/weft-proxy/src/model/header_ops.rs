//! Header additions and removals (`request_headers_to_add`, `response_headers_to_remove`, …)
//! at weighted-cluster, route, virtual-host and route-configuration level, with Envoy's
//! append actions, `keep_empty_value`, and the header formatter's `%COMMAND%` values.

use super::{ConvertError, Result};
use envoy_types::pb::envoy::config::core::v3::{
    HeaderValueOption, header_value_option::HeaderAppendAction,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::net::SocketAddr;
use weft_yaml::FieldPath;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Append {
    AppendOrAdd,
    AddIfAbsent,
    OverwriteOrAdd,
    OverwriteIfExists,
}

/// One piece of a header value template.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    DownstreamRemote { port: bool },
    DownstreamLocal { port: bool },
    DownstreamLocalPort,
    UpstreamRemote,
    Protocol,
    Hostname,
    RequestHeader(HeaderName),
}

/// What `%COMMAND%`s read; filled by the HTTP pipeline.
pub struct FormatContext<'a> {
    pub downstream_remote: SocketAddr,
    pub downstream_local: SocketAddr,
    pub upstream: Option<SocketAddr>,
    pub protocol: &'a str,
    pub request_headers: Option<&'a HeaderMap>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HeaderAdd {
    pub name: HeaderName,
    value: Vec<Piece>,
    pub append: Append,
    keep_empty: bool,
}

/// All mutations of one level, in the order Envoy applies them: removals, then additions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeaderOps {
    pub remove: Vec<HeaderName>,
    pub add: Vec<HeaderAdd>,
}

impl HeaderOps {
    pub fn new(
        add: &[HeaderValueOption],
        remove: &[String],
        add_path: &FieldPath,
        remove_path: &FieldPath,
    ) -> Result<Self> {
        let remove = remove
            .iter()
            .enumerate()
            .map(|(i, n)| header_name(n, &remove_path.index(i)))
            .collect::<Result<_>>()?;
        let add = add
            .iter()
            .enumerate()
            .map(|(i, o)| HeaderAdd::new(o, &add_path.index(i)))
            .collect::<Result<_>>()?;
        Ok(HeaderOps { remove, add })
    }

    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.add.is_empty()
    }

    /// Whether a value reads request headers (`%REQ(...)%`).
    pub fn reads_request_headers(&self) -> bool {
        self.add
            .iter()
            .any(|a| a.value.iter().any(|p| matches!(p, Piece::RequestHeader(_))))
    }

    pub fn apply(&self, headers: &mut HeaderMap, ctx: &FormatContext<'_>) {
        for name in &self.remove {
            headers.remove(name);
        }
        for add in &self.add {
            add.apply(headers, ctx);
        }
    }
}

fn header_name(name: &str, path: &FieldPath) -> Result<HeaderName> {
    HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
        .map_err(|_| ConvertError::new(path, format!("`{name}` is not a valid header name")))
}

impl HeaderAdd {
    fn new(o: &HeaderValueOption, path: &FieldPath) -> Result<Self> {
        let Some(h) = &o.header else {
            return Err(ConvertError::new(&path.field("header"), "is required"));
        };
        let name = header_name(&h.key, &path.field("header").field("key"))?;
        if name.as_str().starts_with(':') || name == http::header::HOST {
            return Err(ConvertError::new(
                &path.field("header").field("key"),
                format!("`{}` cannot be set through header mutations", h.key),
            ));
        }
        let text = if h.raw_value.is_empty() {
            h.value.clone()
        } else {
            String::from_utf8(h.raw_value.clone()).map_err(|_| {
                ConvertError::new(
                    &path.field("header").field("raw_value"),
                    "must be valid UTF-8",
                )
            })?
        };
        let value = parse_template(&text, &path.field("header").field("value"))?;
        let append = match o.append {
            Some(b) if !b.value => Append::OverwriteOrAdd,
            Some(_) => Append::AppendOrAdd,
            None => match HeaderAppendAction::try_from(o.append_action) {
                Ok(HeaderAppendAction::AppendIfExistsOrAdd) => Append::AppendOrAdd,
                Ok(HeaderAppendAction::AddIfAbsent) => Append::AddIfAbsent,
                Ok(HeaderAppendAction::OverwriteIfExistsOrAdd) => Append::OverwriteOrAdd,
                Ok(HeaderAppendAction::OverwriteIfExists) => Append::OverwriteIfExists,
                Err(_) => {
                    return Err(ConvertError::new(
                        &path.field("append_action"),
                        format!("unknown append action {}", o.append_action),
                    ));
                }
            },
        };
        Ok(HeaderAdd {
            name,
            value,
            append,
            keep_empty: o.keep_empty_value,
        })
    }

    fn apply(&self, headers: &mut HeaderMap, ctx: &FormatContext<'_>) {
        let exists = headers.contains_key(&self.name);
        match self.append {
            Append::AddIfAbsent if exists => return,
            Append::OverwriteIfExists if !exists => return,
            _ => {}
        }
        let text = render(&self.value, ctx);
        if text.is_empty() && !self.keep_empty {
            return;
        }
        let Ok(value) = HeaderValue::from_str(&text) else {
            return;
        };
        match self.append {
            Append::AppendOrAdd => {
                headers.append(self.name.clone(), value);
            }
            _ => {
                headers.insert(self.name.clone(), value);
            }
        }
    }
}

fn render(pieces: &[Piece], ctx: &FormatContext<'_>) -> String {
    if let [Piece::Text(t)] = pieces {
        return t.clone();
    }
    let mut out = String::new();
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::DownstreamRemote { port: true } => {
                out.push_str(&ctx.downstream_remote.to_string())
            }
            Piece::DownstreamRemote { port: false } => {
                out.push_str(&ctx.downstream_remote.ip().to_string())
            }
            Piece::DownstreamLocal { port: true } => {
                out.push_str(&ctx.downstream_local.to_string())
            }
            Piece::DownstreamLocal { port: false } => {
                out.push_str(&ctx.downstream_local.ip().to_string())
            }
            Piece::DownstreamLocalPort => out.push_str(&ctx.downstream_local.port().to_string()),
            Piece::UpstreamRemote => {
                if let Some(u) = ctx.upstream {
                    out.push_str(&u.to_string());
                }
            }
            Piece::Protocol => out.push_str(ctx.protocol),
            Piece::Hostname => out.push_str(&hostname()),
            Piece::RequestHeader(name) => {
                if let Some(v) = ctx
                    .request_headers
                    .and_then(|h| h.get(name))
                    .and_then(|v| v.to_str().ok())
                {
                    out.push_str(v);
                }
            }
        }
    }
    out
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Splits `a%DOWNSTREAM_REMOTE_ADDRESS%b` into pieces; `%%` is a literal `%`.
fn parse_template(text: &str, path: &FieldPath) -> Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('%') {
        literal.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('%') {
            literal.push('%');
            rest = tail;
            continue;
        }
        let Some(end) = after.find('%') else {
            return Err(ConvertError::new(
                path,
                format!("unterminated `%` command in `{text}` (write `%%` for a literal `%`)"),
            ));
        };
        let command = &after[..end];
        let piece = match command {
            "DOWNSTREAM_REMOTE_ADDRESS" => Piece::DownstreamRemote { port: true },
            "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" => Piece::DownstreamRemote { port: false },
            "DOWNSTREAM_LOCAL_ADDRESS" => Piece::DownstreamLocal { port: true },
            "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT" => Piece::DownstreamLocal { port: false },
            "DOWNSTREAM_LOCAL_PORT" => Piece::DownstreamLocalPort,
            "UPSTREAM_REMOTE_ADDRESS" => Piece::UpstreamRemote,
            "PROTOCOL" => Piece::Protocol,
            "HOSTNAME" => Piece::Hostname,
            c => match c.strip_prefix("REQ(").and_then(|r| r.strip_suffix(')')) {
                Some(h) => Piece::RequestHeader(header_name(h, path)?),
                None => {
                    return Err(ConvertError::new(
                        path,
                        format!(
                            "header formatter command `%{c}%` is not supported by weft-proxy \
                             (supported: DOWNSTREAM_REMOTE_ADDRESS[_WITHOUT_PORT], \
                             DOWNSTREAM_LOCAL_ADDRESS[_WITHOUT_PORT], DOWNSTREAM_LOCAL_PORT, \
                             UPSTREAM_REMOTE_ADDRESS, PROTOCOL, HOSTNAME, REQ(header))"
                        ),
                    ));
                }
            },
        };
        if !literal.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut literal)));
        }
        pieces.push(piece);
        rest = &after[end + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::core::v3::HeaderValue as PbHeaderValue;

    fn ctx() -> FormatContext<'static> {
        FormatContext {
            downstream_remote: "10.0.0.1:5555".parse().expect("addr"),
            downstream_local: "10.0.0.2:80".parse().expect("addr"),
            upstream: None,
            protocol: "HTTP/1.1",
            request_headers: None,
        }
    }

    fn opt(key: &str, value: &str, action: HeaderAppendAction) -> HeaderValueOption {
        HeaderValueOption {
            header: Some(PbHeaderValue {
                key: key.into(),
                value: value.into(),
                raw_value: vec![],
            }),
            append_action: action as i32,
            ..Default::default()
        }
    }

    #[test]
    fn append_actions_behave_as_envoy_documents() {
        let ops = HeaderOps::new(
            &[
                opt("a", "1", HeaderAppendAction::AppendIfExistsOrAdd),
                opt("b", "2", HeaderAppendAction::AddIfAbsent),
                opt("c", "3", HeaderAppendAction::OverwriteIfExistsOrAdd),
                opt("d", "4", HeaderAppendAction::OverwriteIfExists),
            ],
            &["e".into()],
            &FieldPath::root(),
            &FieldPath::root(),
        )
        .expect("valid");
        let mut h = HeaderMap::new();
        for (k, v) in [("a", "0"), ("b", "0"), ("c", "0"), ("e", "0")] {
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        ops.apply(&mut h, &ctx());
        let all = |k: &str| -> Vec<&str> {
            h.get_all(k)
                .iter()
                .map(|v| v.to_str().expect("ascii"))
                .collect()
        };
        assert_eq!(all("a"), ["0", "1"]);
        assert_eq!(all("b"), ["0"]);
        assert_eq!(all("c"), ["3"]);
        assert!(all("d").is_empty());
        assert!(all("e").is_empty());
    }

    #[test]
    fn formatter_commands_render_and_unknown_ones_are_rejected() {
        let pieces = parse_template(
            "ip=%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% 100%%",
            &FieldPath::root(),
        )
        .expect("valid");
        assert_eq!(render(&pieces, &ctx()), "ip=10.0.0.1 100%");
        let err = parse_template("%START_TIME%", &FieldPath::root()).expect_err("unsupported");
        assert!(err.message.contains("START_TIME"), "{err}");
    }
}
