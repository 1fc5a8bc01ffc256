//! Request mirroring: what the shadow backends received, compared between Envoy and Weft.
//! The shadow's answers go nowhere, so the test reads the echo backends' records of what
//! reached them, waiting (boundedly) for the fire-and-forget copies to land.

use super::*;

/// Requests sent through the 25% route. With 200 tries the count is binomial(200, 0.25):
/// mean 50, sigma ~6.1; the band below is over 5 sigma wide each way, while 0%, 50% or 100%
/// (or a MILLION denominator read as HUNDRED, which would always fire) fall far outside.
const QUARTER_REQUESTS: usize = 200;
const QUARTER_BAND: std::ops::RangeInclusive<usize> = 19..=81;
/// Requests through the 0% route.
const NONE_REQUESTS: usize = 50;

/// Waits until `backend` has recorded at least `n` requests whose path starts with
/// `prefix` (checking every 10 ms, at most 300 times), and returns those it has.
async fn landed(rig: &Rig, backend: &str, prefix: &str, n: usize) -> Result<Vec<EchoSeen>, Error> {
    let b = rig.backend(backend)?;
    let matching = || -> Vec<EchoSeen> {
        b.recent()
            .into_iter()
            .filter(|s| s.path.starts_with(prefix))
            .collect()
    };
    for _ in 0..300 {
        let got = matching();
        if got.len() >= n {
            return Ok(got);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(matching())
}

/// The headers of a copy that do not vary between runs (the request id is compared with the
/// main request's separately; the proxy's own address depends on the host).
fn stable(seen: &EchoSeen) -> BTreeMap<String, Vec<String>> {
    seen.headers
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "x-request-id" | "x-forwarded-for"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<String>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
        .collect()
}

async fn echo(addr: std::net::SocketAddr, req: &HttpRequest) -> Result<EchoSeen, Error> {
    let resp = client::send(addr, req).await?;
    EchoSeen::parse(&resp.body).ok_or_else(|| {
        fail(format!(
            "{} {}: {} is not an echo",
            req.method, req.path, resp.status
        ))
    })
}

#[test]
fn request_mirroring() {
    block_on(custom("request_mirroring", async |rig: &Rig| {
        let addr = rig.addr("listener")?;
        let mut out = Vec::new();

        // A POST: one copy with -shadow on the host, the same request id and the body.
        let mut req = HttpRequest::get("example.com", "/all/1")
            .header("x-custom", "c")
            .header("x-forwarded-for", "10.1.2.3");
        req.method = "POST".parse().expect("a method");
        req.body = (&b"hello mirror"[..]).into();
        let main = echo(addr, &req).await?;
        let shadow = landed(rig, "shadow", "/all/1", 1).await?;
        out.push(Outcome::new(
            "client gets the main answer",
            (main.backend.clone(), main.body_len),
            ("main".to_string(), 12),
        ));
        let s = shadow.first();
        out.push(Outcome::new(
            "shadow got one copy with the body",
            (
                shadow.len(),
                s.map(|s| s.method.clone()),
                s.and_then(|s| s.authority.clone()),
                s.map(|s| s.body_len),
            ),
            (
                1,
                Some("POST".to_string()),
                Some("example.com-shadow".to_string()),
                Some(12),
            ),
        ));
        out.push(Outcome::new(
            "the copy carries the request id",
            s.and_then(|s| s.headers.get("x-request-id").cloned())
                == main.headers.get("x-request-id").cloned()
                && main.headers.contains_key("x-request-id"),
            true,
        ));
        out.push(Outcome::new(
            "the copy's headers",
            s.map(stable),
            Some(headers(&[
                ("content-length", "12"),
                ("host", "example.com-shadow"),
                ("x-custom", "c"),
                ("x-envoy-expected-rq-timeout-ms", "15000"),
                ("x-envoy-internal", "true"),
                ("x-forwarded-proto", "http"),
            ])),
        ));
        // Envoy's async client appends the node's address (the host's, so it differs between
        // machines but not between the proxies on one).
        let xff = s
            .and_then(|s| s.headers.get("x-forwarded-for"))
            .and_then(|v| v.first())
            .cloned()
            .unwrap_or_default();
        let hops: Vec<&str> = xff.split(',').collect();
        out.push(Outcome::new(
            "the copy's x-forwarded-for gains the proxy's address",
            (
                hops.len(),
                hops.first().map(|h| h.to_string()),
                hops.get(1)
                    .and_then(|h| h.parse::<std::net::IpAddr>().ok())
                    .is_some(),
                main.headers.get("x-forwarded-for").cloned(),
            ),
            (
                2,
                Some("10.1.2.3".to_string()),
                true,
                Some(vec!["10.1.2.3".to_string()]),
            ),
        ));
        if let Some(addr) = hops.get(1) {
            println!("[{}] the copy's added hop: {addr}", rig.kind());
        }

        // Over HTTP/2 the copy goes out in the cluster's protocol, body and all.
        let mut req = HttpRequest::get("example.com", "/all/h2");
        req.method = "PUT".parse().expect("a method");
        req.body = (&b"12345"[..]).into();
        req.version = weft_testkit::client::HttpVersion::H2c;
        let main = echo(addr, &req).await?;
        let h2 = landed(rig, "shadow", "/all/h2", 1).await?;
        out.push(Outcome::new(
            "an HTTP/2 request is copied",
            (
                main.version.clone(),
                h2.iter()
                    .map(|s| {
                        (
                            s.method.clone(),
                            s.version.clone(),
                            s.authority.clone(),
                            s.body_len,
                        )
                    })
                    .collect::<Vec<_>>(),
            ),
            (
                "HTTP/1.1".to_string(),
                vec![(
                    "PUT".to_string(),
                    "HTTP/1.1".to_string(),
                    Some("example.com-shadow".to_string()),
                    5,
                )],
            ),
        ));

        // A retried route: the copy is not retried, and Envoy gives it the route's whole
        // timeout (the main try announces its per-try timeout).
        let main = echo(
            addr,
            &HttpRequest::get("attempts.example", "/tries")
                .header("x-echo-status-of", "shadow=503"),
        )
        .await?;
        // Waits for a second copy that must never come (bounded: three seconds).
        let tries = landed(rig, "shadow", "/tries", 2).await?;
        let hdr = |s: &EchoSeen, k: &str| s.headers.get(k).cloned().unwrap_or_default();
        out.push(Outcome::new(
            "a retried route's copy",
            (
                hdr(&main, "x-envoy-expected-rq-timeout-ms"),
                hdr(&main, "x-envoy-attempt-count"),
                tries
                    .iter()
                    .map(|s| {
                        (
                            hdr(s, "x-envoy-expected-rq-timeout-ms"),
                            hdr(s, "x-envoy-attempt-count"),
                        )
                    })
                    .collect::<Vec<_>>(),
            ),
            (
                vec!["3000".to_string()],
                vec!["1".to_string()],
                vec![(vec!["15000".to_string()], vec!["1".to_string()])],
            ),
        ));

        // No runtime_fraction: every request; a port stays after the suffix.
        echo(addr, &HttpRequest::get("example.com:8080", "/plain")).await?;
        let plain = landed(rig, "shadow", "/plain", 1).await?;
        out.push(Outcome::new(
            "without a fraction every request is copied, port kept",
            plain
                .iter()
                .map(|s| s.authority.clone())
                .collect::<Vec<_>>(),
            vec![Some("example.com-shadow:8080".to_string())],
        ));

        echo(addr, &HttpRequest::get("example.com", "/nosuffix")).await?;
        let nosuffix = landed(rig, "shadow", "/nosuffix", 1).await?;
        out.push(Outcome::new(
            "disable_shadow_host_suffix_append keeps the host",
            nosuffix
                .iter()
                .map(|s| s.authority.clone())
                .collect::<Vec<_>>(),
            vec![Some("example.com".to_string())],
        ));

        // Several policies: one copy each.
        echo(addr, &HttpRequest::get("example.com", "/two")).await?;
        let two = (
            landed(rig, "shadow", "/two", 1).await?.len(),
            landed(rig, "other", "/two", 1).await?.len(),
            landed(rig, "main", "/two", 1).await?.len(),
        );
        out.push(Outcome::new("two policies, two copies", two, (1, 1, 1)));

        // The copy's cluster named by a request header; none without it.
        echo(
            addr,
            &HttpRequest::get("example.com", "/byheader/1").header("x-mirror-to", "other"),
        )
        .await?;
        echo(addr, &HttpRequest::get("example.com", "/byheader/2")).await?;
        echo(
            addr,
            &HttpRequest::get("example.com", "/byheader/3").header("x-mirror-to", "nonesuch"),
        )
        .await?;
        let by_header = landed(rig, "other", "/byheader", 3).await?;
        out.push(Outcome::new(
            "cluster_header picks the shadow cluster",
            by_header.iter().map(|s| s.path.clone()).collect::<Vec<_>>(),
            vec!["/byheader/1".to_string()],
        ));

        // host_rewrite_literal replaces the host (no suffix).
        echo(addr, &HttpRequest::get("example.com", "/literal")).await?;
        let literal = landed(rig, "shadow", "/literal", 1).await?;
        out.push(Outcome::new(
            "host_rewrite_literal sets the copy's host",
            literal
                .iter()
                .map(|s| s.authority.clone())
                .collect::<Vec<_>>(),
            vec![Some("literal.example".to_string())],
        ));

        // Route rewrites and headers apply to the copy too.
        let main = echo(addr, &HttpRequest::get("example.com", "/headers/x")).await?;
        let rewritten = landed(rig, "shadow", "/rewritten", 1).await?;
        let r = rewritten.first();
        out.push(Outcome::new(
            "the copy is the rewritten request",
            (
                main.path.clone(),
                r.map(|s| s.path.clone()),
                r.and_then(|s| s.headers.get("x-route-added").cloned()),
                r.and_then(|s| s.headers.get("x-envoy-original-path").cloned()),
            ),
            (
                "/rewritten/x".to_string(),
                Some("/rewritten/x".to_string()),
                Some(vec!["yes".to_string()]),
                Some(vec!["/headers/x".to_string()]),
            ),
        ));

        // A shadow that fails or is slow changes nothing for the client.
        let dead = echo(addr, &HttpRequest::get("example.com", "/dead")).await?;
        out.push(Outcome::new(
            "a shadow that cannot connect is ignored",
            dead.backend.clone(),
            "main".to_string(),
        ));
        let failing = client::send(
            addr,
            &HttpRequest::get("example.com", "/all/failing")
                .header("x-echo-status-of", "shadow=503"),
        )
        .await?;
        out.push(Outcome::new(
            "a failing shadow does not change the answer",
            failing.status.as_u16(),
            200,
        ));
        // The shadow answers two seconds late; the client's answer must come first (the
        // echo records a request once its delay is over, so no record yet means the client
        // did not wait for the shadow).
        let slow = client::send(
            addr,
            &HttpRequest::get("example.com", "/all/slow").header("x-echo-delay-of", "shadow=2000"),
        )
        .await?;
        let early = rig
            .backend("shadow")?
            .recent()
            .iter()
            .any(|s| s.path == "/all/slow");
        let slow_seen = EchoSeen::parse(&slow.body);
        out.push(Outcome::new(
            "a slow shadow does not hold the answer back",
            (slow.status.as_u16(), slow_seen.map(|s| s.backend), early),
            (200, Some("main".to_string()), false),
        ));
        out.push(Outcome::new(
            "the slow copy still lands",
            landed(rig, "shadow", "/all/slow", 1).await?.len(),
            1,
        ));

        // The main cluster has no host: the answer is the 503, and (as in Envoy, which
        // shadows once the main request has a host to go to) no copy is made.
        let nohost = client::send(addr, &HttpRequest::get("example.com", "/nohost")).await?;
        let copies = landed(rig, "shadow", "/nohost", 1).await?.len();
        out.push(Outcome::new(
            "no copy when the main cluster has no host",
            (nohost.status.as_u16(), copies),
            (503, 0),
        ));

        // 0%: never.
        for i in 0..NONE_REQUESTS {
            echo(
                addr,
                &HttpRequest::get("example.com", &format!("/none/{i}")),
            )
            .await?;
        }
        // The copies of every earlier request have landed (checked above), and a copy is
        // sent before the main request's answer; give stragglers the same grace anyway.
        tokio::time::sleep(Duration::from_millis(200)).await;
        out.push(Outcome::new(
            "0% copies nothing",
            rig.backend("shadow")?
                .recent()
                .iter()
                .filter(|s| s.path.starts_with("/none"))
                .count(),
            0,
        ));

        // 25% of MILLION.
        for i in 0..QUARTER_REQUESTS {
            echo(
                addr,
                &HttpRequest::get("example.com", &format!("/quarter/{i}")),
            )
            .await?;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let quarter = rig
            .backend("shadow")?
            .recent()
            .iter()
            .filter(|s| s.path.starts_with("/quarter"))
            .count();
        out.push(Outcome::new(
            "25% copies about a quarter",
            QUARTER_BAND.contains(&quarter),
            true,
        ));

        // The shadow clusters' own statistics count the copies.
        let resp = weft_testkit::admin::get(rig.proxy().admin(), "/stats").await?;
        let all = weft_testkit::admin::exposition::text_stats(&String::from_utf8_lossy(&resp.body));
        let stat = |k: &str| all.get(k).cloned().unwrap_or_else(|| "absent".into());
        let served = rig.backend("shadow")?.served().to_string();
        out.push(Outcome::new(
            "shadow cluster statistics",
            (
                stat("cluster.shadow.upstream_rq_total") == served,
                stat("cluster.shadow.upstream_rq_completed") == served,
                // The copy answered 503 on purpose, and the retried route's.
                stat("cluster.shadow.upstream_rq_5xx"),
                // The "/two" copy and the one cluster_header chose.
                stat("cluster.other.upstream_rq_total"),
                stat("cluster.other.upstream_rq_2xx"),
                stat("cluster.dead.upstream_cx_connect_fail"),
            ),
            (
                true,
                true,
                "2".to_string(),
                "2".to_string(),
                "2".to_string(),
                "1".to_string(),
            ),
        ));
        Ok(out)
    }));
}
