//! One error type for the kit, so helpers compose with `?` in tests and a failure names what
//! went wrong (which proxy, which placeholder, which scenario) instead of a bare io error.

use std::path::PathBuf;

/// Everything a testkit helper can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP exchange with {addr} failed: {source}")]
    Http {
        addr: std::net::SocketAddr,
        #[source]
        source: hyper::Error,
    },
    #[error("bad request spec: {0}")]
    Request(String),
    #[error("{what} did not finish within {secs} s")]
    Timeout { what: String, secs: u64 },
    #[error("could not find or install Envoy ({0})")]
    EnvoyMissing(String),
    #[error("{kind} exited before it was ready ({status}); log tail:\n{log_tail}")]
    ProxyExited {
        kind: String,
        status: String,
        log_tail: String,
    },
    #[error(
        "{kind} never answered 200 on http://{admin}/ready; last: {last}; log tail:\n{log_tail}"
    )]
    ProxyNotReady {
        kind: String,
        admin: std::net::SocketAddr,
        last: String,
        log_tail: String,
    },
    #[error("bootstrap template: {0}")]
    Template(String),
    #[error("scenario {path}: {message}")]
    Scenario { path: PathBuf, message: String },
    #[error("{0}")]
    Conformance(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}
