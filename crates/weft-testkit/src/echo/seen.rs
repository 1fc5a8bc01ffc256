//! The JSON document an HTTP echo answers with: what reached the backend after the proxy
//! did its work. Shared by the server (which writes it) and observations (which read it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What one HTTP echo backend saw of one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EchoSeen {
    /// The backend's name, so a test knows which upstream a request went to.
    pub backend: String,
    pub method: String,
    /// Path and query as received.
    pub path: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// `:authority` for HTTP/2, the `host` header for HTTP/1.
    pub authority: Option<String>,
    /// Every header, lowercased name to its values in arrival order.
    pub headers: BTreeMap<String, Vec<String>>,
    pub body_len: usize,
}

impl EchoSeen {
    /// Parses an echo response body; `None` if it is not one.
    pub fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }
}
