//! Building blocks for tests of a proxy's admin API and lifecycle (`/stats`, `/config_dump`,
//! `/quitquitquit`, `/drain_listeners`, SIGTERM): a proxy process a test can signal and wait
//! on, admin requests, readers for Envoy's stats formats, promtool's verdict, and bounded
//! polling, so test crates need no runtime of their own.

pub mod config_dump;
pub mod exposition;
pub mod process;
pub mod promtool;
pub mod report;
pub mod stand;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use http::Method;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

pub use process::{CONCURRENCY, ManagedProxy};
pub use report::Report;
pub use stand::Stand;

use crate::Error;
use crate::client::{self, HttpRequest, HttpResponse};

/// Bound for one connection attempt.
const CONNECT_LIMIT: Duration = Duration::from_secs(2);

/// `GET path` on the admin listener.
pub async fn get(admin: SocketAddr, path: &str) -> Result<HttpResponse, Error> {
    client::send(admin, &HttpRequest::get(&admin.to_string(), path)).await
}

/// `POST path` (empty body) on the admin listener.
pub async fn post(admin: SocketAddr, path: &str) -> Result<HttpResponse, Error> {
    let mut req = HttpRequest::get(&admin.to_string(), path);
    req.method = Method::POST;
    client::send(admin, &req).await
}

/// The body as text, for messages and line checks.
pub fn body_text(resp: &HttpResponse) -> String {
    String::from_utf8_lossy(&resp.body).into_owned()
}

/// Status code and body text, the pair most admin checks compare.
pub fn status_and_body(resp: &HttpResponse) -> (u16, String) {
    (resp.status.as_u16(), body_text(resp))
}

/// Percent-encodes a query value the way Go's `url.Values` does (istioctl and pilot-agent
/// send `/stats?filter=` like that), leaving only unreserved characters as they are.
pub fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What one TCP connection attempt got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connect {
    Accepted,
    Refused,
    /// Any other failure, e.g. a reset or a timeout.
    Failed(ErrorKind),
}

/// One connection attempt to `addr`; an accepted connection is closed at once.
pub async fn try_connect(addr: SocketAddr) -> Connect {
    match tokio::time::timeout(CONNECT_LIMIT, TcpStream::connect(addr)).await {
        Ok(Ok(_stream)) => Connect::Accepted,
        Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => Connect::Refused,
        Ok(Err(e)) => Connect::Failed(e.kind()),
        Err(_) => Connect::Failed(ErrorKind::TimedOut),
    }
}

/// Tries to connect at most `tries` times, `pause` apart, until one is refused; returns the
/// last outcome (so `Refused` means the listener went away).
pub async fn wait_refused(addr: SocketAddr, tries: u32, pause: Duration) -> Connect {
    let mut last = Connect::Accepted;
    for _ in 0..tries {
        last = try_connect(addr).await;
        if last == Connect::Refused {
            break;
        }
        tokio::time::sleep(pause).await;
    }
    last
}

/// Runs `probe` at most `tries` times, `pause` apart, until it yields `Some`; `Ok(None)` if it
/// never did.
pub async fn poll<T>(
    tries: u32,
    pause: Duration,
    mut probe: impl AsyncFnMut() -> Result<Option<T>, Error>,
) -> Result<Option<T>, Error> {
    for i in 0..tries {
        if let Some(v) = probe().await? {
            return Ok(Some(v));
        }
        if i + 1 < tries {
            tokio::time::sleep(pause).await;
        }
    }
    Ok(None)
}

/// A request sent in the background, e.g. one that must stay in flight while the proxy is
/// told to shut down.
#[derive(Debug)]
pub struct InFlight(JoinHandle<Result<HttpResponse, Error>>);

impl InFlight {
    /// Sends `req` to `addr` on its own task (bounded like every [`client::send`]).
    pub fn spawn(addr: SocketAddr, req: HttpRequest) -> Self {
        Self(tokio::spawn(async move { client::send(addr, &req).await }))
    }

    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }

    /// Waits for the answer.
    pub async fn finish(self) -> Result<HttpResponse, Error> {
        self.0
            .await
            .map_err(|e| Error::Conformance(format!("the in-flight request task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_escape_keeps_only_unreserved_characters() {
        assert_eq!(
            super::query_escape(r"^a\.b_(x|y)$~"),
            "%5Ea%5C.b_%28x%7Cy%29%24~"
        );
    }
}
