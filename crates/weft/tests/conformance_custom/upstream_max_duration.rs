//! Upstream `max_connection_duration`, compared between Envoy and Weft: which upstream
//! connection (the echo's view of the proxy's source port) each request used, and the
//! `upstream_cx_max_duration_reached` count.

use super::*;
use weft_testkit::admin;
use weft_testkit::admin::exposition::text_stats;

/// Longer than the clusters' 1 s `max_connection_duration`: a bound to wait, not a timing
/// expectation.
const PAST_MAX: Duration = Duration::from_millis(1600);

/// Status and the proxy's source port as the echo saw it.
async fn port_of(addr: std::net::SocketAddr, req: &HttpRequest) -> Result<(u16, String), Error> {
    let resp = client::send(addr, req).await?;
    let port = resp
        .headers
        .get("x-echo-client-port")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    Ok((resp.status.as_u16(), port))
}

async fn stat(rig: &Rig, name: &str) -> Result<String, Error> {
    let resp = admin::get(rig.proxy().admin(), "/stats").await?;
    Ok(text_stats(&String::from_utf8_lossy(&resp.body))
        .get(name)
        .cloned()
        .unwrap_or_else(|| "absent".into()))
}

#[test]
pub(crate) fn upstream_max_duration() {
    block_on(custom("upstream_max_duration", async |rig: &Rig| {
        let addr = rig.addr("listener")?;
        let get = |path: &str| HttpRequest::get("example.com", path);
        let mut out = Vec::new();

        let (_, first) = port_of(addr, &get("/idle/1")).await?;
        let (_, second) = port_of(addr, &get("/idle/2")).await?;
        out.push(Outcome::new(
            "idle: a young connection is reused",
            first == second,
            true,
        ));
        tokio::time::sleep(PAST_MAX).await;
        let (_, third) = port_of(addr, &get("/idle/3")).await?;
        out.push(Outcome::new(
            "idle: past the maximum a new connection is used",
            third != first,
            true,
        ));
        out.push(Outcome::new(
            "idle: counted",
            (
                stat(rig, "cluster.idle.upstream_cx_max_duration_reached").await?,
                stat(rig, "cluster.idle.upstream_cx_total").await?,
            ),
            ("1".to_string(), "2".to_string()),
        ));

        // A request still in flight when the time is up gets its answer.
        let (status, slow) = port_of(
            addr,
            &get("/busy/slow").header("x-echo-delay-ms", &PAST_MAX.as_millis().to_string()),
        )
        .await?;
        let (_, after) = port_of(addr, &get("/busy/after")).await?;
        out.push(Outcome::new(
            "busy: the request in flight is answered, the next uses a new connection",
            (status, after != slow),
            (200, true),
        ));
        out.push(Outcome::new(
            "busy: counted",
            (
                stat(rig, "cluster.busy.upstream_cx_max_duration_reached").await?,
                stat(rig, "cluster.busy.upstream_cx_total").await?,
            ),
            ("1".to_string(), "2".to_string()),
        ));
        Ok(out)
    }));
}
