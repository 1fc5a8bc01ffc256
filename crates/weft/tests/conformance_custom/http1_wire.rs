//! HTTP/1.1 wire details (chunked bodies, 100-continue, pipelining, upstream keep-alive),
//! compared between Envoy and Weft.

use super::*;

/// The echo's account of a raw response, or why it is not one.
pub(crate) fn echo_of(resp: &RawResponse) -> Result<EchoSeen, Error> {
    EchoSeen::parse(&resp.body).ok_or_else(|| {
        fail(format!(
            "{} {:?} is not an echo",
            resp.status,
            String::from_utf8_lossy(&resp.body)
        ))
    })
}

pub(crate) fn header_of(seen: &EchoSeen, name: &str) -> Option<String> {
    seen.headers.get(name).map(|v| v.join(","))
}

#[test]
pub(crate) fn http1_wire() {
    block_on(custom("http1_wire", async |rig: &Rig| {
        let addr = rig.addr("listener")?;
        let mut out = Vec::new();
        // (request number on its upstream connection, upstream client port) per response.
        let mut upstream = Vec::new();

        let mut w = Wire::connect(addr).await?;
        let body = b"0123456789abcdefghijklmnopqrstuvwxyz";
        w.send(wire::head(
            "POST",
            "/chunked",
            "example.com",
            &[("transfer-encoding", "chunked")],
        ))
        .await?;
        w.send(wire::chunked(body, 4)).await?;
        let resp = w.response(false).await?;
        upstream.push(upstream_conn(&resp));
        let seen = echo_of(&resp)?;
        out.push(Outcome::new(
            "chunked request body",
            (
                resp.status,
                seen.body_len,
                header_of(&seen, "transfer-encoding"),
            ),
            (200, body.len(), Some("chunked".to_string())),
        ));

        let mut w = Wire::connect(addr).await?;
        w.send(wire::head(
            "POST",
            "/expect",
            "example.com",
            &[("expect", "100-continue"), ("content-length", "5")],
        ))
        .await?;
        let interim = w.response(false).await?;
        w.send("hello").await?;
        let resp = w.response(false).await?;
        upstream.push(upstream_conn(&resp));
        let seen = echo_of(&resp)?;
        out.push(Outcome::new(
            "expect 100-continue",
            (
                interim.status,
                resp.status,
                seen.body_len,
                header_of(&seen, "expect"),
            ),
            (100, 200, 5, None),
        ));

        let mut w = Wire::connect(addr).await?;
        let mut burst = String::new();
        for p in ["/pipe/1", "/pipe/2", "/pipe/3"] {
            burst.push_str(&wire::head("GET", p, "example.com", &[]));
        }
        w.send(burst).await?;
        let mut paths = Vec::new();
        for _ in 0..3 {
            let resp = w.response(false).await?;
            upstream.push(upstream_conn(&resp));
            paths.push(echo_of(&resp)?.path);
        }
        out.push(Outcome::new(
            "pipelined requests are answered in order",
            paths,
            vec!["/pipe/1".into(), "/pipe/2".into(), "/pipe/3".into()],
        ));
        // Three client connections, one request after another: one upstream connection
        // carries all five.
        let counts: Vec<String> = upstream.iter().map(|(n, _)| n.clone()).collect();
        let one_connection = upstream.iter().all(|(_, port)| *port == upstream[0].1);
        out.push(Outcome::new(
            "the upstream connection is kept alive and reused",
            (counts, one_connection, rig.backend("a")?.served()),
            (
                ["1", "2", "3", "4", "5"].map(String::from).to_vec(),
                true,
                5,
            ),
        ));
        Ok(out)
    }));
}

/// Which upstream connection answered: the echo's request count on it and its client port.
pub(crate) fn upstream_conn(resp: &RawResponse) -> (String, String) {
    let h = |n| resp.header(n).unwrap_or("none").to_string();
    (h("x-echo-connection-request"), h("x-echo-client-port"))
}
