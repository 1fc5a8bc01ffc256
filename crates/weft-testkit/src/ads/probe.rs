//! Whether a listener serves, seen from a client: refused, accepted but silent, closed
//! without an answer, or answered (with the comparable [`Observation`]). A warming or
//! removed listener must not answer; which of the first three a proxy shows is recorded
//! but not required, since both are "not serving" and depend on when a socket is bound.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use super::{POLL, POLLS, WAIT};
use crate::Error;
use crate::client::{self, HttpRequest};
use crate::observation::{Observation, Selection};

/// How long a probe waits for an answer on an accepted connection before calling the
/// listener silent. A serving proxy answers a loopback request in milliseconds.
pub const SILENCE: Duration = Duration::from_millis(500);

/// What one probe saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reach {
    /// The connection was refused: nothing listens.
    Refused,
    /// Connected, but no answer within [`SILENCE`]: bound, nobody accepting or serving.
    Silent,
    /// Connected, then closed or reset without an answer.
    Closed(String),
    Answered(Box<Observation>),
}

impl Reach {
    pub fn serving(&self) -> bool {
        matches!(self, Reach::Answered(_))
    }

    pub fn observation(&self) -> Option<&Observation> {
        match self {
            Reach::Answered(o) => Some(o.as_ref()),
            _ => None,
        }
    }

    /// The backend an echo answer came from.
    pub fn backend(&self) -> Option<&str> {
        self.observation()
            .and_then(Observation::echo)
            .map(|e| e.backend.as_str())
    }
}

/// Sends `req` to `addr` once on a new connection.
pub async fn probe(addr: SocketAddr, req: &HttpRequest) -> Reach {
    match tokio::time::timeout(SILENCE, client::send(addr, req)).await {
        Err(_) => Reach::Silent,
        Ok(Ok(resp)) => Reach::Answered(Box::new(Observation::from_response(
            &resp,
            &Selection::default(),
        ))),
        Ok(Err(Error::Io { source, .. })) if source.kind() == ErrorKind::ConnectionRefused => {
            Reach::Refused
        }
        Ok(Err(e)) => Reach::Closed(e.to_string()),
    }
}

/// Probes (bounded in count and time) until `done` holds for what a probe saw; returns it.
pub async fn wait_reach(
    addr: SocketAddr,
    req: &HttpRequest,
    what: &str,
    done: impl Fn(&Reach) -> bool,
) -> Result<Reach, Error> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut last = None;
    for _ in 0..POLLS {
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        let reach = probe(addr, req).await;
        if done(&reach) {
            return Ok(reach);
        }
        last = Some(reach);
        tokio::time::sleep(POLL).await;
    }
    Err(Error::Conformance(format!(
        "{addr} never showed {what} within {POLLS} probes or {WAIT:?}; last: {last:?}"
    )))
}
