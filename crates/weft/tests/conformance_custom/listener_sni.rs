//! Filter chain selection by SNI through `tls_inspector`, with a handcrafted ClientHello,
//! compared between Envoy and Weft.

use super::*;

/// Which TCP backends accepted a connection for `payload`, and whether the bytes came back.
/// The client does not half-close until the echo is back: a FIN racing the proxy's upstream
/// connect would test the proxy's half-close handling instead of chain selection.
async fn tcp_route(
    rig: &Rig,
    listener: &str,
    payload: &[u8],
) -> Result<(Vec<String>, &'static str), Error> {
    let before = rig.served();
    let mut w = Wire::connect(rig.addr(listener)?).await?;
    w.send(payload).await?;
    let got = w.up_to(payload.len()).await?;
    let reached: Vec<String> = rig
        .served()
        .into_iter()
        .filter(|(n, count)| before.get(n) != Some(count))
        .map(|(n, _)| n)
        .collect();
    // With no chain, a proxy may close with the client's bytes unread, which makes the kernel
    // reset instead of FIN; either way the connection ended without data.
    let how = if got.trailing == payload {
        "echoed"
    } else if got.trailing.is_empty() {
        "closed without data"
    } else {
        "partly echoed"
    };
    Ok((reached, how))
}

/// (case, listener, bytes the client sends, backends that must accept, how it ends)
type SniCase = (
    &'static str,
    &'static str,
    Vec<u8>,
    &'static [&'static str],
    &'static str,
);

#[test]
pub(crate) fn listener_sni() {
    let hello = |sni: Option<&str>, alpn: &[&str]| tls_hello::client_hello(sni, alpn);
    let h1 = wire::head("GET", "/", "example.com", &[]).into_bytes();
    let cases: Vec<SniCase> = vec![
        (
            "exact server name a",
            "listener",
            hello(Some("a.example.com"), &[]),
            &["a"],
            "echoed",
        ),
        (
            "exact server name b",
            "listener",
            hello(Some("b.example.com"), &[]),
            &["b"],
            "echoed",
        ),
        (
            "wildcard server name",
            "listener",
            hello(Some("c.example.com"), &[]),
            &["wild"],
            "echoed",
        ),
        (
            "wildcard is one label deep only",
            "listener",
            hello(Some("x.c.example.com"), &[]),
            &["wild"],
            "echoed",
        ),
        (
            "unknown server name: no chain",
            "listener",
            hello(Some("other.org"), &[]),
            &[],
            "closed without data",
        ),
        (
            "no server name: no chain",
            "listener",
            hello(None, &[]),
            &[],
            "closed without data",
        ),
        (
            "plain bytes: no chain",
            "listener",
            b"not tls at all\r\n".to_vec(),
            &[],
            "closed without data",
        ),
        (
            "tls with h2 ALPN",
            "transport",
            hello(Some("a.example.com"), &["h2", "http/1.1"]),
            &["b"],
            "echoed",
        ),
        (
            "tls without h2",
            "transport",
            hello(Some("a.example.com"), &["http/1.1"]),
            &["a"],
            "echoed",
        ),
        (
            "tls without ALPN",
            "transport",
            hello(None, &[]),
            &["a"],
            "echoed",
        ),
        (
            "raw_buffer",
            "transport",
            b"plain bytes, not a ClientHello".to_vec(),
            &["raw"],
            "echoed",
        ),
        (
            "matching server name beats the default chain",
            "fallback",
            hello(Some("a.example.com"), &[]),
            &["a"],
            "echoed",
        ),
        (
            "default_filter_chain",
            "fallback",
            hello(Some("z.example.org"), &[]),
            &["fallback"],
            "echoed",
        ),
        (
            "plain bytes take the default chain",
            "fallback",
            b"hello".to_vec(),
            &["fallback"],
            "echoed",
        ),
        (
            "no chain for an HTTP request",
            "nomatch_http",
            h1,
            &[],
            "closed without data",
        ),
    ];
    block_on(custom("listener_sni", async |rig: &Rig| {
        let mut out = Vec::new();
        for (case, listener, payload, backends, how) in &cases {
            let (reached, got) = tcp_route(rig, listener, payload).await?;
            let want: Vec<String> = backends.iter().map(|b| b.to_string()).collect();
            out.push(Outcome::new(*case, (reached, got), (want, *how)));
        }
        Ok(out)
    }));
}
