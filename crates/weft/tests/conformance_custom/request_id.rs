//! `x-request-id` generation, preservation and echoing, compared between Envoy and Weft.

use super::*;

pub(crate) const CLIENT_REQUEST_ID: &str = "client-request-id-0001";

pub(crate) fn is_uuid(v: &str) -> bool {
    let groups: Vec<&str> = v.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

#[test]
pub(crate) fn request_id() {
    // (case, listener, client sends an id, upstream sees, client gets back)
    use RequestId::{Absent, Client, Generated};
    let table = [
        (
            "generated when absent",
            "listener",
            false,
            Generated,
            Absent,
        ),
        (
            "kept from a trusted client",
            "listener",
            true,
            Client,
            Absent,
        ),
        ("replaced at the edge", "edge", true, Generated, Absent),
        ("generated at the edge", "edge", false, Generated, Absent),
        ("preserved at the edge", "preserve", true, Client, Absent),
        ("not generated when off", "no_id", false, Absent, Absent),
        ("a client id passes when off", "no_id", true, Client, Absent),
        (
            "echoed to the client",
            "respond",
            false,
            Generated,
            Generated,
        ),
        ("the client's echoed back", "respond", true, Client, Client),
    ];
    block_on(custom("request_id", async |rig: &Rig| {
        let mut out = Vec::new();
        for (case, listener, send_id, upstream, response) in &table {
            let mut req = HttpRequest::get("example.com", "/rid");
            if *send_id {
                req = req.header("x-request-id", CLIENT_REQUEST_ID);
            }
            let resp = client::send(rig.addr(listener)?, &req).await?;
            let seen = EchoSeen::parse(&resp.body)
                .ok_or_else(|| fail(format!("{case}: {} is not an echo", resp.status)))?;
            let up = seen.headers.get("x-request-id").and_then(|v| v.first());
            let down = resp
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok());
            let same = down.is_none() || down == up.map(String::as_str);
            out.push(Outcome::new(
                *case,
                (
                    RequestId::of(up.map(String::as_str)),
                    RequestId::of(down),
                    same,
                ),
                (upstream.clone(), response.clone(), true),
            ));
        }
        Ok(out)
    }));
}

/// What kind of x-request-id a side of the exchange carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RequestId {
    Absent,
    /// The value the client sent.
    Client,
    /// A fresh UUID (8-4-4-4-12 hex digits).
    Generated,
    Other(String),
}

impl RequestId {
    fn of(value: Option<&str>) -> Self {
        match value {
            None => RequestId::Absent,
            Some(CLIENT_REQUEST_ID) => RequestId::Client,
            Some(v) if is_uuid(v) => RequestId::Generated,
            Some(v) => RequestId::Other(v.to_string()),
        }
    }
}
