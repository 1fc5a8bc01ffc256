//! The scenario file format: one YAML file per scenario holding the bootstrap template (a
//! block string, so the text handed to both proxies is exactly what the file says), the echo
//! backends it needs, and the requests to send with what to expect of each.
//!
//! ```yaml
//! description: why this scenario exists
//! backends: [a, b]          # HTTP echo backends, referenced as {{backend:a}}
//! tcp_backends: [t]         # raw TCP echo backends
//! bootstrap: |
//!   ...Envoy v3 bootstrap with {{admin_port}}, {{listener_port}}, ...
//! cases:
//!   - name: exact host
//!     request: {authority: www.example.com, path: /x, headers: ["x-k: v"], version: h2c}
//!     observe: {request_headers: [x-k], response_headers: [x-r]}
//!     expect: {status: 200, backend: a, path: /x, request_headers: {x-k: v, x-gone: null}}
//! ```
//!
//! Expected header values: a string is the one value, a list is all values in order, `null`
//! means absent and `"<any>"` means present with any value; `{{host_address}}` in one stands
//! for this machine's IPv4 address (see [`crate::host`]). A request's authority, path and
//! header values may name the ports the bootstrap was given (`{{listener_port}}`,
//! `{{port:NAME}}`), e.g. to send `host: example.com:{{listener_port}}`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::{BufMut, Bytes, BytesMut};
use serde::Deserialize;
use weft_yaml::{FieldPath, yaml};

use crate::Error;
use crate::client::{HttpRequest, HttpVersion};
use crate::echo::grpc;
use crate::observation::Selection;

/// The expected-value word for "present, any value".
pub const ANY: &str = "<any>";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub backends: Vec<String>,
    #[serde(default)]
    pub tcp_backends: Vec<String>,
    pub bootstrap: String,
    #[serde(default)]
    pub cases: Vec<Case>,
    #[serde(skip)]
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub request: RequestSpec,
    #[serde(default)]
    pub observe: ObserveSpec,
    #[serde(default)]
    pub expect: Expect,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// Which `{{port:NAME}}` to send to; `listener` is `{{listener_port}}`.
    #[serde(default = "default_listener")]
    pub listener: String,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default = "default_path")]
    pub path: String,
    #[serde(default = "default_authority")]
    pub authority: String,
    /// `"name: value"` lines; a name may repeat.
    #[serde(default)]
    pub headers: Vec<String>,
    #[serde(default)]
    pub body: String,
    /// A body of this many bytes (a repeating pattern) instead of `body`, for sizes a
    /// scenario file should not spell out.
    #[serde(default)]
    pub body_bytes: Option<usize>,
    /// Sent as gRPC: each string one length-prefixed message, `content-type:
    /// application/grpc` and `te: trailers` added, method POST.
    #[serde(default)]
    pub grpc_messages: Option<Vec<String>>,
    #[serde(default)]
    pub version: HttpVersion,
}

fn default_listener() -> String {
    "listener".to_string()
}
fn default_method() -> String {
    "GET".to_string()
}
fn default_path() -> String {
    "/".to_string()
}
fn default_authority() -> String {
    "example.com".to_string()
}

/// Headers to record beyond those named in `expect`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObserveSpec {
    #[serde(default)]
    pub request_headers: Vec<String>,
    #[serde(default)]
    pub response_headers: Vec<String>,
    /// Headers whose value normally varies (`server`, `x-request-id`, ...) to compare by
    /// value in this case, because the configuration pins it.
    #[serde(default)]
    pub exact: Vec<String>,
}

/// What a case must observe on every proxy (on top of both proxies agreeing).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub status: Option<u16>,
    /// Exact response body text (`""` for empty); implies the answer is not an echo.
    pub body: Option<String>,
    /// The echo backend that answered.
    pub backend: Option<String>,
    /// Path+query, method, HTTP version and authority as the backend saw them.
    pub path: Option<String>,
    pub method: Option<String>,
    pub version: Option<String>,
    pub authority: Option<String>,
    /// Length of the request body the backend received.
    pub body_len: Option<usize>,
    #[serde(default)]
    pub request_headers: BTreeMap<String, Option<HeaderExpect>>,
    #[serde(default)]
    pub response_headers: BTreeMap<String, Option<HeaderExpect>>,
    #[serde(default)]
    pub trailers: BTreeMap<String, Option<HeaderExpect>>,
}

/// An expected header: one value (or [`ANY`]) or all values.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum HeaderExpect {
    One(String),
    All(Vec<String>),
}

impl Scenario {
    /// Reads `dir/NAME.yaml`.
    pub fn load(dir: &Path, name: &str) -> Result<Self, Error> {
        let path = dir.join(format!("{name}.yaml"));
        let fail = |message: String| Error::Scenario {
            path: path.clone(),
            message,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| fail(e.to_string()))?;
        let mut ids = 0;
        let parsed = yaml::parse(&text, &mut ids);
        if let Some(e) = parsed.errors.first() {
            return Err(fail(format!("{}: {}", e.pos, e.message)));
        }
        let root = match parsed.documents.as_slice() {
            [doc] => doc
                .root
                .clone()
                .ok_or_else(|| fail("empty document".to_string()))?,
            docs => {
                return Err(fail(format!(
                    "expected one YAML document, found {}",
                    docs.len()
                )));
            }
        };
        let (scenario, issues) = weft_yaml::decode::<Scenario>(&root, &FieldPath::root());
        if !issues.is_empty() {
            let all: Vec<String> = issues
                .iter()
                .map(|i| format!("{} {}: {}", i.pos, i.path, i.message))
                .collect();
            return Err(fail(all.join("; ")));
        }
        let mut scenario = scenario.ok_or_else(|| fail("did not decode".to_string()))?;
        scenario.path = path;
        Ok(scenario)
    }

    /// Names of all scenario files in `dir` (without `.yaml`), sorted.
    pub fn names_in(dir: &Path) -> Result<Vec<String>, Error> {
        let mut names = Vec::new();
        for entry in
            std::fs::read_dir(dir).map_err(Error::io(format!("listing {}", dir.display())))?
        {
            let path = entry
                .map_err(Error::io("reading a directory entry"))?
                .path();
            if path.extension().is_some_and(|e| e == "yaml")
                && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
            {
                names.push(stem.to_string());
            }
        }
        names.sort();
        Ok(names)
    }
}

impl Case {
    /// The headers to record: those to observe plus those expected.
    pub fn selection(&self) -> Selection {
        let mut request_headers = self.observe.request_headers.clone();
        request_headers.extend(self.expect.request_headers.keys().cloned());
        request_headers.sort();
        request_headers.dedup();
        let mut response_headers = self.observe.response_headers.clone();
        response_headers.extend(self.expect.response_headers.keys().cloned());
        response_headers.sort();
        response_headers.dedup();
        Selection {
            request_headers,
            response_headers,
            exact: self.observe.exact.clone(),
        }
    }
}

impl RequestSpec {
    pub fn to_request(&self) -> Result<HttpRequest, Error> {
        let mut headers = Vec::new();
        for line in &self.headers {
            let (n, v) = line
                .split_once(':')
                .ok_or_else(|| Error::Request(format!("header {line:?} is not \"name: value\"")))?;
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
        let (method, body) = match &self.grpc_messages {
            Some(messages) => {
                headers.push(("content-type".into(), "application/grpc".into()));
                headers.push(("te".into(), "trailers".into()));
                let mut b = BytesMut::new();
                for m in messages {
                    b.put(grpc::frame(m.as_bytes()));
                }
                ("POST".to_string(), b.freeze())
            }
            None => match self.body_bytes {
                Some(n) => (
                    self.method.clone(),
                    (0..n).map(|i| b"0123456789abcdef"[i % 16]).collect(),
                ),
                None => (self.method.clone(), Bytes::from(self.body.clone())),
            },
        };
        Ok(HttpRequest {
            method: method
                .parse()
                .map_err(|e| Error::Request(format!("method {method:?}: {e}")))?,
            path: self.path.clone(),
            authority: self.authority.clone(),
            headers,
            body,
            version: self.version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Scenario, Error> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.yaml"), text).unwrap();
        Scenario::load(dir.path(), "s")
    }

    #[test]
    fn a_scenario_decodes_with_defaults_and_header_expectations() {
        let s = load(
            "bootstrap: |\n  admin: {}\ncases:\n- name: c\n  request: {path: /x, headers: [\"a: b\"]}\n  expect: {status: 404, request_headers: {x-gone: null, x-any: \"<any>\", x-two: [p, q]}}\n",
        )
        .unwrap();
        let case = &s.cases[0];
        assert_eq!(case.request.authority, "example.com");
        assert_eq!(case.request.listener, "listener");
        assert_eq!(case.expect.status, Some(404));
        assert!(case.expect.request_headers["x-gone"].is_none());
        assert!(
            matches!(&case.expect.request_headers["x-two"], Some(HeaderExpect::All(v)) if v.len() == 2)
        );
        let req = case.request.to_request().unwrap();
        assert_eq!(req.headers, vec![("a".to_string(), "b".to_string())]);
        assert_eq!(
            case.selection().request_headers,
            vec!["x-any", "x-gone", "x-two"]
        );
    }

    #[test]
    fn a_misspelt_field_is_rejected_with_its_place() {
        let err =
            load("bootstrap: x\ncases:\n- name: c\n  request: {}\n  expct: {}\n").unwrap_err();
        assert!(err.to_string().contains("expct"), "{err}");
    }
}
