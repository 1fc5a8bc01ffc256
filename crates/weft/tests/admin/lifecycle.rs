//! The lifecycle half of the admin tests: `/quitquitquit` and `/drain_listeners` against
//! Envoy, and SIGTERM, where the two intentionally part: Envoy exits at once, weft drains the
//! requests in flight first.

use std::time::Duration;

use weft_testkit::admin::{self, Connect, InFlight, Report, Stand};
use weft_testkit::{EchoSeen, Error, HttpRequest, ProxyKind, block_on, client};

use super::{SETTLE_PAUSE, SETTLE_TRIES, peers, start};

/// Waiting for a process to exit: 400 x 50 ms at most (weft's default drain time is 5 s).
const EXIT_TRIES: u32 = 400;
const EXIT_PAUSE: Duration = Duration::from_millis(50);
/// Waiting for a listener to refuse connections: 200 x 10 ms at most.
const REFUSE_TRIES: u32 = 200;
const REFUSE_PAUSE: Duration = Duration::from_millis(10);
/// How long the echo holds the request that must survive a SIGTERM drain.
const SLOW_MS: &str = "800";

#[test]
fn quitquitquit_needs_post_and_exits_zero() {
    block_on(async {
        let mut report = Report::default();
        let mut seen = Vec::new();
        for binary in peers()? {
            let mut stand = start(&binary).await?;
            let kind = binary.kind;
            let before = report.len();
            let get = admin::get(stand.admin(), "/quitquitquit")
                .await?
                .status
                .as_u16();
            let ready_after_get = admin::get(stand.admin(), "/ready").await?.status.as_u16();
            let running_after_get = stand.proxy.exited()?.is_none();
            let post = admin::status_and_body(&admin::post(stand.admin(), "/quitquitquit").await?);
            let exit = match stand.proxy.wait_exit(EXIT_TRIES, EXIT_PAUSE).await {
                Ok(status) => format!("{:?}", status.code()),
                Err(e) => e.to_string(),
            };
            let obs = (get, ready_after_get, running_after_get, post, exit);
            let want = (
                405,
                200,
                true,
                (200, "OK\n".to_string()),
                format!("{:?}", Some(0)),
            );
            report.check(kind, obs == want, || {
                format!("(GET status, /ready after GET, running after GET, POST, exit code) = {obs:?}, expected {want:?}")
            });
            report.log_if_failed(before, &stand.proxy);
            seen.push((kind, obs));
        }
        report.same("/quitquitquit", &seen);
        report.finish()
    });
}

#[test]
fn drain_listeners_needs_post_and_stops_accepting() {
    block_on(async {
        let mut report = Report::default();
        let mut seen = Vec::new();
        for binary in peers()? {
            let mut stand = start(&binary).await?;
            let kind = binary.kind;
            let before = report.len();
            let listener = stand.listener()?;
            let routed = HttpRequest::get("example.com", "/svc/before");
            let get = admin::get(stand.admin(), "/drain_listeners")
                .await?
                .status
                .as_u16();
            let served_after_get = client::send(listener, &routed).await?.status.as_u16();
            let post =
                admin::status_and_body(&admin::post(stand.admin(), "/drain_listeners").await?);
            let connect = admin::wait_refused(listener, REFUSE_TRIES, REFUSE_PAUSE).await;
            let ready = admin::status_and_body(&admin::get(stand.admin(), "/ready").await?);
            let running = stand.proxy.exited()?.is_none();
            let obs = (get, served_after_get, post, connect, ready, running);
            let want = (
                405,
                200,
                (200, "OK\n".to_string()),
                Connect::Refused,
                (200, "LIVE\n".to_string()),
                true,
            );
            report.check(kind, obs == want, || {
                format!("(GET status, request after GET, POST, new connection, /ready, running) = {obs:?}, expected {want:?}")
            });
            report.log_if_failed(before, &stand.proxy);
            seen.push((kind, obs));
        }
        report.same("/drain_listeners", &seen);
        report.finish()
    });
}

/// Starts a request the echo holds for [`SLOW_MS`] and waits until it reached the echo, so it
/// is certainly in flight in the proxy.
async fn slow_request_in_flight(stand: &Stand) -> Result<InFlight, Error> {
    let req = HttpRequest::get("example.com", "/svc/slow").header("x-echo-delay-ms", SLOW_MS);
    let inflight = InFlight::spawn(stand.listener()?, req);
    let reached = admin::poll(SETTLE_TRIES, SETTLE_PAUSE, async || {
        Ok((stand.backend.served() >= 1).then_some(()))
    })
    .await?;
    if reached.is_none() {
        return Err(Error::Conformance(format!(
            "[{}] the slow request never reached the echo; log tail:\n{}",
            stand.proxy.kind(),
            stand.proxy.log_tail()
        )));
    }
    Ok(inflight)
}

/// weft drains on SIGTERM (Envoy does not, see the next test): the request in flight is
/// answered, the listener refuses new connections while the process still runs, and the
/// process exits 0 once the request is done.
#[test]
fn sigterm_drains_in_flight_requests_then_exits_zero() {
    block_on(async {
        let Some(weft) = peers()?.into_iter().find(|p| p.kind == ProxyKind::Weft) else {
            return Ok(());
        };
        let mut report = Report::default();
        let mut stand = start(&weft).await?;
        let inflight = slow_request_in_flight(&stand).await?;
        stand.proxy.terminate()?;
        let connect = admin::wait_refused(stand.listener()?, REFUSE_TRIES, REFUSE_PAUSE).await;
        // Still running after the refusal means it was refused while the process drained.
        let running = stand.proxy.exited()?.is_none();
        report.check(ProxyKind::Weft, connect == Connect::Refused && running, || {
            if connect == Connect::Refused {
                "during the SIGTERM drain new connections were still accepted; they were refused \
                 only once the process had exited"
                    .to_string()
            } else {
                format!("after SIGTERM new connections were never refused (last attempt: {connect:?})")
            }
        });
        match inflight.finish().await {
            Ok(resp) => {
                let seen = EchoSeen::parse(&resp.body);
                report.check(
                    ProxyKind::Weft,
                    resp.status.as_u16() == 200 && seen.is_some(),
                    || {
                        format!(
                            "the in-flight request got {} {:?}, expected the echo's 200",
                            resp.status,
                            admin::body_text(&resp)
                        )
                    },
                );
            }
            Err(e) => report.check(ProxyKind::Weft, false, || {
                format!("the in-flight request failed: {e}")
            }),
        }
        let exit = stand.proxy.wait_exit(EXIT_TRIES, EXIT_PAUSE).await;
        let code = exit.as_ref().ok().and_then(|s| s.code());
        report.check(ProxyKind::Weft, code == Some(0), || {
            format!("after draining weft exited with {exit:?}, expected code 0")
        });
        report.log_if_failed(0, &stand.proxy);
        report.finish()
    });
}

/// The reference point for the test above: Envoy 1.40 does not drain on SIGTERM; it exits
/// (code 0) at once and the request in flight gets no answer. (Draining Envoy is done with
/// `/drain_listeners?graceful` before the signal.)
#[test]
fn envoy_exits_on_sigterm_without_draining() {
    block_on(async {
        let Some(envoy) = peers()?.into_iter().find(|p| p.kind == ProxyKind::Envoy) else {
            return Ok(());
        };
        let mut report = Report::default();
        let mut stand = start(&envoy).await?;
        let inflight = slow_request_in_flight(&stand).await?;
        stand.proxy.terminate()?;
        let exit = stand.proxy.wait_exit(EXIT_TRIES, EXIT_PAUSE).await;
        let outcome = inflight.finish().await.map(|r| r.status.as_u16());
        report.check(
            ProxyKind::Envoy,
            matches!(&exit, Ok(s) if s.code() == Some(0)),
            || format!("Envoy exited with {exit:?} on SIGTERM"),
        );
        report.check(ProxyKind::Envoy, !matches!(outcome, Ok(200)), || {
            format!("the in-flight request got {outcome:?}; Envoy was expected to drop it")
        });
        report.log_if_failed(0, &stand.proxy);
        report.finish()
    });
}
