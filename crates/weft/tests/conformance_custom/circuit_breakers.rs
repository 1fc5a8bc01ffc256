//! Cluster circuit breakers under concurrent requests (max_requests, max_connections with
//! max_pending_requests, max_retries), compared between Envoy and Weft.

use super::*;

/// How long the first request keeps its slot, and how long the test waits before sending
/// the next one so that the first is surely attached: bounds, not timing assertions.
const SLOW_MS: &str = "2000";
const SETTLE: Duration = Duration::from_millis(400);

const OVERFLOW: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: overflow";

/// Status, body (or the answering backend for an echo), `x-envoy-overloaded`.
type Answer = (u16, String, Option<String>);

fn answer(resp: &weft_testkit::HttpResponse) -> Answer {
    let body = match EchoSeen::parse(&resp.body) {
        Some(seen) => format!("echo from {}", seen.backend),
        None => String::from_utf8_lossy(&resp.body).into_owned(),
    };
    let overloaded = resp
        .headers
        .get("x-envoy-overloaded")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    (resp.status.as_u16(), body, overloaded)
}

fn ok() -> Answer {
    (200, "echo from a".to_string(), None)
}

fn overflow() -> Answer {
    (503, OVERFLOW.to_string(), Some("true".to_string()))
}

fn slow(path: &str) -> HttpRequest {
    HttpRequest::get("example.com", path).header("x-echo-delay-ms", SLOW_MS)
}

async fn background(
    addr: std::net::SocketAddr,
    req: HttpRequest,
) -> tokio::task::JoinHandle<Result<weft_testkit::HttpResponse, Error>> {
    tokio::spawn(async move { client::send(addr, &req).await })
}

async fn joined(
    h: tokio::task::JoinHandle<Result<weft_testkit::HttpResponse, Error>>,
) -> Result<weft_testkit::HttpResponse, Error> {
    h.await
        .map_err(|e| fail(format!("a background request panicked: {e}")))?
}

#[test]
pub(crate) fn circuit_breakers() {
    block_on(custom("circuit_breakers", async |rig: &Rig| {
        let addr = rig.addr("listener")?;
        let mut out = Vec::new();

        // max_requests 1: a second request while the first is active overflows.
        let first = background(addr, slow("/max-requests/1")).await;
        tokio::time::sleep(SETTLE).await;
        let second =
            client::send(addr, &HttpRequest::get("example.com", "/max-requests/2")).await?;
        let first = joined(first).await?;
        let third = client::send(addr, &HttpRequest::get("example.com", "/max-requests/3")).await?;
        out.push(Outcome::new(
            "max_requests 1: active, overflow, free again",
            (answer(&first), answer(&second), answer(&third)),
            (ok(), overflow(), ok()),
        ));

        // max_connections 1, max_pending_requests 1: the second waits for the one
        // connection (and is its second request), the third overflows at once.
        let first = background(addr, slow("/pending/1")).await;
        tokio::time::sleep(SETTLE).await;
        let second = background(addr, HttpRequest::get("example.com", "/pending/2")).await;
        tokio::time::sleep(SETTLE).await;
        let third = client::send(addr, &HttpRequest::get("example.com", "/pending/3")).await?;
        let first = joined(first).await?;
        let second = joined(second).await?;
        let reused = second
            .headers
            .get("x-echo-connection-request")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        out.push(Outcome::new(
            "max_connections 1 + max_pending_requests 1",
            (answer(&first), answer(&second), reused, answer(&third)),
            (ok(), ok(), Some("2".to_string()), overflow()),
        ));

        // max_retries 0: the policy would retry the 503, the circuit breaker says no.
        let before = rig.backend("a")?.served();
        let key = format!("cb-retry-{}", addr.port());
        let resp = client::send(
            addr,
            &HttpRequest::get("example.com", "/retries")
                .header("x-echo-fail-key", &key)
                .header("x-echo-fail-first", "1"),
        )
        .await?;
        let attempts = resp
            .headers
            .get("x-envoy-attempt-count")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        out.push(Outcome::new(
            "max_retries 0 refuses the retry",
            (answer(&resp), attempts, rig.backend("a")?.served() - before),
            (
                (503, "echo failure".to_string(), None),
                Some("1".to_string()),
                1,
            ),
        ));

        // Istio's thresholds change nothing for a plain request.
        let resp = client::send(addr, &HttpRequest::get("example.com", "/istio")).await?;
        out.push(Outcome::new("Istio's thresholds", answer(&resp), ok()));
        Ok(out)
    }));
}
