//! What must be the same when Envoy and Weft serve the same request: status, body (or, for an
//! echo answer, what reached the backend), chosen headers, trailers. Values that legitimately
//! differ between two proxies or two runs (dates, ids, timings, product names) are reduced to
//! "present", and framing headers (content-length vs chunked) are left out because they are
//! a transport detail, not behaviour.

use std::collections::{BTreeMap, BTreeSet};

use http::HeaderMap;
use serde::Serialize;

use crate::client::HttpResponse;
use crate::echo::EchoSeen;

/// Headers compared by presence only, wherever they appear.
pub const VALUE_VARIES: &[&str] = &[
    "date",
    "server",
    "x-envoy-upstream-service-time",
    "x-request-id",
];

/// Headers describing message framing, left out of header-name sets.
pub const FRAMING: &[&str] = &[
    "connection",
    "content-length",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
];

/// One header as observed. Shown in reports as `null`, `"<present>"` or the list of values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderObs {
    Absent,
    /// Present; its value is in [`VALUE_VARIES`] and not compared.
    Present,
    Values(Vec<String>),
}

impl HeaderObs {
    fn of(headers: &HeaderMap, name: &str, sel: &Selection) -> Self {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        Self::from_values(name, values, sel)
    }

    fn from_values(name: &str, values: Vec<String>, sel: &Selection) -> Self {
        if values.is_empty() {
            HeaderObs::Absent
        } else if VALUE_VARIES.contains(&name) && !sel.exact.iter().any(|e| e == name) {
            HeaderObs::Present
        } else {
            HeaderObs::Values(values)
        }
    }
}

impl Serialize for HeaderObs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            HeaderObs::Absent => s.serialize_none(),
            HeaderObs::Present => s.serialize_str("<present>"),
            HeaderObs::Values(v) => v.serialize(s),
        }
    }
}

/// What the echo backend reported, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EchoObs {
    pub backend: String,
    pub method: String,
    pub path: String,
    pub version: String,
    pub authority: Option<String>,
    /// Every request header name the backend saw (framing headers aside).
    pub header_names: BTreeSet<String>,
    /// The selected request headers.
    pub headers: BTreeMap<String, HeaderObs>,
    pub body_len: usize,
}

/// A response body, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyObs {
    Empty,
    Echo(EchoObs),
    Text(String),
    /// A body too long to show (or not UTF-8), compared by length and digest.
    Long {
        len: usize,
        head: String,
        fnv1a: String,
    },
}

/// Bodies up to this many bytes are kept as text; longer ones are digested so a failure
/// report stays readable.
pub const TEXT_LIMIT: usize = 512;

/// Which headers to record by value (or presence, for [`VALUE_VARIES`]).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub request_headers: Vec<String>,
    pub response_headers: Vec<String>,
    /// [`VALUE_VARIES`] names compared by value after all, where the configuration pins the
    /// value (e.g. `server` with `server_name` set, a client's preserved `x-request-id`).
    pub exact: Vec<String>,
}

/// The comparable outcome of one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observation {
    pub status: u16,
    pub body: BodyObs,
    /// Every response header name (framing headers aside).
    pub response_header_names: BTreeSet<String>,
    pub response_headers: BTreeMap<String, HeaderObs>,
    pub trailers: BTreeMap<String, HeaderObs>,
}

impl Observation {
    pub fn from_response(resp: &HttpResponse, sel: &Selection) -> Self {
        let body = if resp.body.is_empty() {
            BodyObs::Empty
        } else if let Some(seen) = EchoSeen::parse(&resp.body) {
            BodyObs::Echo(echo_obs(seen, sel))
        } else {
            match std::str::from_utf8(&resp.body) {
                Ok(s) if s.len() <= TEXT_LIMIT => BodyObs::Text(s.to_string()),
                _ => BodyObs::Long {
                    len: resp.body.len(),
                    head: String::from_utf8_lossy(&resp.body[..resp.body.len().min(32)])
                        .into_owned(),
                    fnv1a: format!("{:016x}", fnv1a(&resp.body)),
                },
            }
        };
        let trailers = resp.trailers.as_ref().map_or_else(BTreeMap::new, |t| {
            t.keys()
                .map(|n| (n.as_str().to_string(), HeaderObs::of(t, n.as_str(), sel)))
                .collect()
        });
        Observation {
            status: resp.status.as_u16(),
            body,
            response_header_names: names(resp.headers.keys().map(|n| n.as_str())),
            response_headers: sel
                .response_headers
                .iter()
                .map(|n| (n.clone(), HeaderObs::of(&resp.headers, n, sel)))
                .collect(),
            trailers,
        }
    }

    /// The echo part, if the body was an echo answer.
    pub fn echo(&self) -> Option<&EchoObs> {
        match &self.body {
            BodyObs::Echo(e) => Some(e),
            _ => None,
        }
    }

    /// One-line JSON, for logs.
    pub fn compact(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{self:?} ({e})"))
    }

    /// Pretty JSON, for failure messages.
    pub fn pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{self:?} ({e})"))
    }
}

fn echo_obs(seen: EchoSeen, sel: &Selection) -> EchoObs {
    let headers = sel
        .request_headers
        .iter()
        .map(|n| {
            let values = seen.headers.get(n).cloned().unwrap_or_default();
            (n.clone(), HeaderObs::from_values(n, values, sel))
        })
        .collect();
    EchoObs {
        header_names: names(seen.headers.keys().map(String::as_str)),
        backend: seen.backend,
        method: seen.method,
        path: seen.path,
        version: seen.version,
        authority: seen.authority,
        headers,
        body_len: seen.body_len,
    }
}

/// FNV-1a, 64 bit: enough to tell two bodies apart in a test, with no dependency.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
    it.filter(|n| !FRAMING.contains(n))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{StatusCode, Version};

    fn response(headers: &[(&str, &str)], body: &str) -> HttpResponse {
        let mut h = HeaderMap::new();
        for (n, v) in headers {
            h.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        HttpResponse {
            status: StatusCode::OK,
            version: Version::HTTP_11,
            headers: h,
            body: Bytes::from(body.to_string()),
            trailers: None,
        }
    }

    #[test]
    fn varying_headers_compare_by_presence_and_framing_is_ignored() {
        let sel = Selection {
            request_headers: vec![],
            response_headers: vec!["date".into(), "x-a".into(), "x-missing".into()],
            exact: vec![],
        };
        let a = Observation::from_response(
            &response(
                &[
                    ("date", "Mon"),
                    ("x-a", "1"),
                    ("x-a", "2"),
                    ("content-length", "2"),
                ],
                "hi",
            ),
            &sel,
        );
        let b = Observation::from_response(
            &response(
                &[
                    ("date", "Tue"),
                    ("x-a", "1"),
                    ("x-a", "2"),
                    ("transfer-encoding", "chunked"),
                ],
                "hi",
            ),
            &sel,
        );
        assert_eq!(a, b);
        assert_eq!(
            a.response_headers["x-a"],
            HeaderObs::Values(vec!["1".into(), "2".into()])
        );
        assert_eq!(a.response_headers["x-missing"], HeaderObs::Absent);
        let c = Observation::from_response(&response(&[("date", "Tue"), ("x-a", "1")], "hi"), &sel);
        assert_ne!(a, c);
    }

    #[test]
    fn long_bodies_are_digested() {
        let sel = Selection::default();
        let a = Observation::from_response(&response(&[], &"x".repeat(2000)), &sel);
        let b = Observation::from_response(&response(&[], &format!("{}y", "x".repeat(1999))), &sel);
        assert!(matches!(a.body, BodyObs::Long { len: 2000, .. }), "{a:?}");
        assert_ne!(a, b);
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn echo_bodies_become_echo_observations() {
        let body = r#"{"backend":"a","method":"GET","path":"/p?q=1","version":"HTTP/1.1","authority":"h","headers":{"x-request-id":["abc"],"x-k":["v"]},"body_len":0}"#;
        let sel = Selection {
            request_headers: vec!["x-request-id".into(), "x-k".into()],
            response_headers: vec![],
            exact: vec![],
        };
        let o = Observation::from_response(&response(&[], body), &sel);
        let e = o.echo().expect("echo body");
        assert_eq!(e.backend, "a");
        assert_eq!(e.path, "/p?q=1");
        assert_eq!(e.headers["x-request-id"], HeaderObs::Present);
        assert_eq!(e.headers["x-k"], HeaderObs::Values(vec!["v".into()]));
    }
}
