//! Connection-level limits and timeouts (request timeout, idle, duration, requests per
//! connection) observed on the raw HTTP/1.1 wire, compared between Envoy and Weft.

use super::*;

/// How long a test waits for a proxy to close a connection it should close after 0.5 s;
/// a bound on the wait, not a timing assertion.
pub(crate) const CLOSE_WAIT: Duration = Duration::from_secs(20);

/// How a raw exchange went: status, body text, whether the response said connection close.
type Answer = (u16, String, bool);

pub(crate) fn answer(resp: &RawResponse) -> Answer {
    (
        resp.status,
        String::from_utf8_lossy(&resp.body).into_owned(),
        resp.closes(),
    )
}

/// Whether the proxy closed the connection without sending anything more.
pub(crate) fn quiet_close(closed: &Closed) -> &'static str {
    if closed.trailing.is_empty() {
        "closed"
    } else {
        "closed after sending more"
    }
}

async fn get_on(w: &mut Wire, path: &str) -> Result<RawResponse, Error> {
    w.send(wire::head("GET", path, "example.com", &[])).await?;
    w.response(false).await
}

#[test]
pub(crate) fn connection_limits() {
    block_on(custom("connection_limits", async |rig: &Rig| {
        let mut out = Vec::new();
        // Opened first and used again last: a connection without limits outlives the others.
        let mut control = Wire::connect(rig.addr("listener")?).await?;
        let first = get_on(&mut control, "/control/1").await?;

        let mut w = Wire::connect(rig.addr("request_timeout")?).await?;
        w.send(wire::head(
            "POST",
            "/slow-body",
            "example.com",
            &[("content-length", "10")],
        ))
        .await?;
        w.send("abc").await?;
        let resp = w.response(false).await?;
        out.push(Outcome::new(
            "request_timeout answers a stalled body",
            answer(&resp),
            (408, "request timeout".to_string(), true),
        ));

        let mut w = Wire::connect(rig.addr("idle")?).await?;
        let resp = get_on(&mut w, "/idle").await?;
        let closed = w.closed(CLOSE_WAIT).await?;
        out.push(Outcome::new(
            "idle_timeout closes an idle connection",
            (answer(&resp).0, resp.closes(), quiet_close(&closed)),
            (200, false, "closed"),
        ));

        let mut w = Wire::connect(rig.addr("duration")?).await?;
        let resp = get_on(&mut w, "/duration").await?;
        let closed = w.closed(CLOSE_WAIT).await?;
        out.push(Outcome::new(
            "max_connection_duration closes the connection",
            (answer(&resp).0, resp.closes(), quiet_close(&closed)),
            (200, false, "closed"),
        ));

        let mut w = Wire::connect(rig.addr("max_requests")?).await?;
        let one = get_on(&mut w, "/max/1").await?;
        let two = get_on(&mut w, "/max/2").await?;
        let closed = w.closed(CLOSE_WAIT).await?;
        out.push(Outcome::new(
            "max_requests_per_connection 2",
            (
                one.status,
                one.closes(),
                two.status,
                two.closes(),
                quiet_close(&closed),
            ),
            (200, false, 200, true, "closed"),
        ));

        let second = get_on(&mut control, "/control/2").await?;
        out.push(Outcome::new(
            "a connection without limits stays usable",
            (first.status, second.status, second.closes()),
            (200, 200, false),
        ));
        Ok(out)
    }));
}
