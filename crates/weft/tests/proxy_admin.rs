//! Envoy-vs-Weft tests of the admin API and the process lifecycle: the same bootstrap
//! (`tests/admin/bootstrap.yaml`) is run by real Envoy 1.40 and by `weft proxy`, the same
//! traffic is sent, and what the admin endpoints report (`/ready`, `/server_info`, `/stats` in
//! its three formats, `/config_dump`, `/clusters`, `/logging`, `/quitquitquit`,
//! `/drain_listeners`) must meet what Envoy does and agree between the two. The lifecycle
//! endpoints and SIGTERM are in `admin/lifecycle.rs`.
//!
//! Both proxies:   `cargo test -p weft --test proxy_admin`
//! Only one:       `WEFT_CONFORMANCE_ONLY=envoy|weft cargo test -p weft --test proxy_admin`
//! promtool comes from Debian's `prometheus` package (`scripts/install-test-deps.sh`).

#[path = "admin/lifecycle.rs"]
mod lifecycle;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use weft_testkit::admin::{self, Report, Stand, config_dump, exposition, promtool};
use weft_testkit::{Error, HttpRequest, ProxyBinary, ProxyKind, block_on, client};

const BOOTSTRAP: &str = include_str!("admin/bootstrap.yaml");
/// The cluster (and echo backend) name, the HCM stat prefix and the names in the bootstrap.
const CLUSTER: &str = "echo";
const STAT_PREFIX: &str = "ingress";
const LISTENER_NAME: &str = "main";
const ROUTE_CONFIG_NAME: &str = "local";
/// Requests sent to the routed prefix; one more goes to a path without a route.
const ROUTED: u64 = 5;
/// Stats are read until the known counters reach their values: 100 x 20 ms at most.
const SETTLE_TRIES: u32 = 100;
const SETTLE_PAUSE: Duration = Duration::from_millis(20);
/// The lint findings promtool raises on Envoy 1.40's own `/stats/prometheus`: they come from
/// Envoy's metric names (counters without `_total`, no HELP lines), which weft must keep.
const ENVOY_NAMING_LINT: &[&str] = &[
    "no help text",
    "counter metrics should have \"_total\" suffix",
    "non-counter metrics should not have \"_total\" suffix",
    "non-histogram and non-summary metrics should not have \"_count\" suffix",
    "metric names should not contain abbreviated units",
    "use base unit \"seconds\" instead of \"days\"",
];

fn peers() -> Result<Vec<ProxyBinary>, Error> {
    let only = std::env::var("WEFT_CONFORMANCE_ONLY").ok();
    weft_testkit::conformance::peers(only.as_deref(), Path::new(env!("CARGO_BIN_EXE_weft")))
}

async fn start(binary: &ProxyBinary) -> Result<Stand, Error> {
    Stand::start(binary, BOOTSTRAP, CLUSTER).await
}

/// `ROUTED` requests that reach the echo, then one that has no route.
async fn drive_traffic(stand: &Stand) -> Result<(), Error> {
    let addr = stand.listener()?;
    for i in 0..ROUTED {
        let resp =
            client::send(addr, &HttpRequest::get("example.com", &format!("/svc/{i}"))).await?;
        if resp.status.as_u16() != 200 {
            return Err(Error::Conformance(format!(
                "[{}] /svc/{i} answered {} {:?}",
                stand.proxy.kind(),
                resp.status,
                admin::body_text(&resp)
            )));
        }
    }
    let resp = client::send(addr, &HttpRequest::get("example.com", "/nowhere")).await?;
    if resp.status.as_u16() != 404 {
        return Err(Error::Conformance(format!(
            "[{}] /nowhere answered {}, expected no route (404)",
            stand.proxy.kind(),
            resp.status
        )));
    }
    Ok(())
}

fn listener_scope(stand: &Stand) -> Result<String, Error> {
    Ok(format!("listener.127.0.0.1_{}", stand.listener()?.port()))
}

/// The counters whose values are known after [`drive_traffic`]; each client request opens
/// its own connection, so the listener saw one connection per request.
fn known_counters(stand: &Stand) -> Result<BTreeMap<String, String>, Error> {
    let n = ROUTED;
    Ok(BTreeMap::from([
        (
            format!("cluster.{CLUSTER}.upstream_rq_total"),
            n.to_string(),
        ),
        (format!("cluster.{CLUSTER}.upstream_rq_2xx"), n.to_string()),
        (format!("cluster.{CLUSTER}.membership_healthy"), "1".into()),
        (
            format!("http.{STAT_PREFIX}.downstream_rq_total"),
            (n + 1).to_string(),
        ),
        (
            format!("http.{STAT_PREFIX}.downstream_rq_2xx"),
            n.to_string(),
        ),
        (format!("http.{STAT_PREFIX}.downstream_rq_4xx"), "1".into()),
        (
            format!("{}.downstream_cx_total", listener_scope(stand)?),
            (n + 1).to_string(),
        ),
    ]))
}

/// Counters compared between the proxies without a value known up front (connection reuse
/// is the pool's business, but both proxies must count it the same way).
fn compared_counters() -> Vec<String> {
    vec![format!("cluster.{CLUSTER}.upstream_cx_total")]
}

/// `/stats` text once the known counters have their values (or the last reading if they never
/// get there, which the caller then reports).
async fn settled_stats(stand: &Stand) -> Result<BTreeMap<String, String>, Error> {
    let known = known_counters(stand)?;
    let admin_addr = stand.admin();
    let mut last = BTreeMap::new();
    let settled = admin::poll(SETTLE_TRIES, SETTLE_PAUSE, async || {
        let stats =
            exposition::text_stats(&admin::body_text(&admin::get(admin_addr, "/stats").await?));
        if known.iter().all(|(k, v)| stats.get(k) == Some(v)) {
            Ok(Some(stats))
        } else {
            last = stats;
            Ok(None)
        }
    })
    .await?;
    Ok(settled.unwrap_or(last))
}

#[test]
fn ready_and_server_info() {
    block_on(async {
        let mut report = Report::default();
        let mut seen = Vec::new();
        for binary in peers()? {
            let stand = start(&binary).await?;
            let kind = binary.kind;
            let before = report.len();
            let ready = admin::status_and_body(&admin::get(stand.admin(), "/ready").await?);
            report.check(kind, ready == (200, "LIVE\n".into()), || {
                format!("GET /ready gave {ready:?}, expected 200 \"LIVE\\n\"")
            });
            let info = admin::get(stand.admin(), "/server_info").await?;
            let doc: Value = serde_json::from_slice(&info.body).unwrap_or(Value::Null);
            let state = doc.get("state").cloned();
            let concurrency = doc.pointer("/command_line_options/concurrency").cloned();
            let obs = (info.status.as_u16(), state, concurrency);
            report.check(
                kind,
                obs == (200, Some("LIVE".into()), Some(admin::CONCURRENCY.into())),
                || format!("GET /server_info gave (status, state, concurrency) {obs:?}: {doc}"),
            );
            report.log_if_failed(before, &stand.proxy);
            seen.push((kind, (ready, obs)));
        }
        report.same("/ready and /server_info", &seen);
        report.finish()
    });
}

#[test]
fn stats_count_traffic_in_text_json_and_filtered_form() {
    block_on(async {
        let mut report = Report::default();
        let mut seen = Vec::new();
        for binary in peers()? {
            let stand = start(&binary).await?;
            let kind = binary.kind;
            let before = report.len();
            drive_traffic(&stand).await?;
            let text = settled_stats(&stand).await?;
            let known = known_counters(&stand)?;
            let names: Vec<String> = known.keys().cloned().chain(compared_counters()).collect();
            let values: BTreeMap<String, Option<String>> = names
                .iter()
                .map(|n| (n.clone(), text.get(n).cloned()))
                .collect();
            for (name, want) in &known {
                let got = &values[name];
                report.check(kind, got.as_ref() == Some(want), || {
                    format!("/stats {name} is {got:?}, expected {want}")
                });
            }
            for name in compared_counters() {
                let got = values[&name].as_deref().and_then(|v| v.parse::<u64>().ok());
                report.check(kind, got.is_some_and(|v| (1..=ROUTED).contains(&v)), || {
                    format!("/stats {name} is {got:?}, expected 1..={ROUTED}")
                });
            }

            let json = exposition::json_stats(
                &admin::get(stand.admin(), "/stats?format=json").await?.body,
            )?;
            for name in &names {
                let from_json = json.get(name).map(|v| v.to_string());
                report.check(kind, from_json == values[name], || {
                    format!(
                        "/stats?format=json {name} is {from_json:?}, text said {:?}",
                        values[name]
                    )
                });
            }

            // Envoy matches the regex anywhere in the name (RE2 partial match) and decodes the
            // query, which is how Go clients (istioctl, pilot-agent) send it.
            let regex = format!(r"^cluster\.{CLUSTER}\.upstream_rq_(total|2xx)$");
            let filter = format!("filter={}", admin::query_escape(&regex));
            let filtered_text = exposition::text_stats(&admin::body_text(
                &admin::get(stand.admin(), &format!("/stats?{filter}")).await?,
            ));
            let filtered_json = exposition::json_stats(
                &admin::get(stand.admin(), &format!("/stats?format=json&{filter}"))
                    .await?
                    .body,
            )?;
            let want_filtered: BTreeMap<String, String> = [
                format!("cluster.{CLUSTER}.upstream_rq_2xx"),
                format!("cluster.{CLUSTER}.upstream_rq_total"),
            ]
            .into_iter()
            .map(|n| (n, ROUTED.to_string()))
            .collect();
            report.check(kind, filtered_text == want_filtered, || {
                format!("/stats?{filter} gave {filtered_text:?}, expected {want_filtered:?}")
            });
            let filtered_json: BTreeMap<String, String> = filtered_json
                .into_iter()
                .map(|(k, v)| (k, v.to_string()))
                .collect();
            report.check(kind, filtered_json == want_filtered, || {
                format!(
                    "/stats?format=json&{filter} gave {filtered_json:?}, expected {want_filtered:?}"
                )
            });
            report.log_if_failed(before, &stand.proxy);
            // Ports differ between runs; compare the listener scope by its shape.
            let scope = listener_scope(&stand)?;
            let comparable: BTreeMap<String, Option<String>> = values
                .into_iter()
                .map(|(k, v)| (k.replacen(&scope, "listener.127.0.0.1_<port>", 1), v))
                .collect();
            seen.push((kind, (comparable, filtered_text, filtered_json)));
        }
        report.same("/stats after traffic", &seen);
        report.finish()
    });
}

#[test]
fn prometheus_exposition_parses_and_counts_upstream_requests() {
    block_on(async {
        let mut report = Report::default();
        let mut seen = Vec::new();
        let mut kinds_seen = Vec::new();
        for binary in peers()? {
            let stand = start(&binary).await?;
            let kind = binary.kind;
            let before = report.len();
            drive_traffic(&stand).await?;
            settled_stats(&stand).await?;
            let resp = admin::get(stand.admin(), "/stats/prometheus").await?;
            let text = admin::body_text(&resp);
            report.check(kind, resp.status.as_u16() == 200, || {
                format!("GET /stats/prometheus answered {}", resp.status)
            });
            let verdict = promtool::check_metrics(&text)?;
            report.check(kind, verdict.parsed(), || {
                format!(
                    "promtool check metrics failed ({:?}): {:?}",
                    verdict.code, verdict.parse_error
                )
            });
            let foreign: BTreeMap<&String, &BTreeSet<String>> = verdict
                .lint
                .iter()
                .filter(|(finding, _)| !ENVOY_NAMING_LINT.contains(&finding.as_str()))
                .collect();
            report.check(kind, foreign.is_empty(), || {
                format!("promtool findings Envoy's own exposition does not have: {foreign:?}")
            });
            let value = exposition::prometheus_samples(&text).map(|s| {
                exposition::prometheus_value(
                    &s,
                    "envoy_cluster_upstream_rq_total",
                    &[("envoy_cluster_name", CLUSTER)],
                )
            });
            let value = match value {
                Ok(v) => v,
                Err(e) => {
                    report.check(kind, false, || e.to_string());
                    None
                }
            };
            report.check(kind, value == Some(ROUTED as f64), || {
                format!("envoy_cluster_upstream_rq_total{{envoy_cluster_name=\"{CLUSTER}\"}} is {value:?}, expected {ROUTED}")
            });
            report.log_if_failed(before, &stand.proxy);
            kinds_seen.push((kind, verdict.lint_kinds()));
            seen.push((kind, (verdict.parsed(), value)));
        }
        if let [(ProxyKind::Envoy, envoy), rest @ ..] = kinds_seen.as_slice() {
            for (kind, kinds) in rest {
                let extra: Vec<&String> = kinds.difference(envoy).collect();
                report.check(*kind, extra.is_empty(), || {
                    format!("promtool findings that Envoy's exposition does not raise: {extra:?}")
                });
            }
        }
        report.same("/stats/prometheus", &seen);
        report.finish()
    });
}

#[test]
fn config_dump_lists_the_static_resources() {
    block_on(async {
        let mut report = Report::default();
        let mut seen = Vec::new();
        let admin_v3 = "type.googleapis.com/envoy.admin.v3.";
        let required = [
            (format!("{admin_v3}BootstrapConfigDump"), vec![]),
            (
                format!("{admin_v3}ClustersConfigDump"),
                vec![CLUSTER.to_string()],
            ),
            (
                format!("{admin_v3}ListenersConfigDump"),
                vec![LISTENER_NAME.to_string()],
            ),
            (
                format!("{admin_v3}RoutesConfigDump"),
                vec![ROUTE_CONFIG_NAME.to_string()],
            ),
        ];
        for binary in peers()? {
            let stand = start(&binary).await?;
            let kind = binary.kind;
            let before = report.len();
            let resp = admin::get(stand.admin(), "/config_dump").await?;
            let doc: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
            let shape = config_dump::shape(&doc);
            report.check(kind, resp.status.as_u16() == 200, || {
                format!("GET /config_dump answered {}", resp.status)
            });
            for want in &required {
                report.check(kind, shape.contains(want), || {
                    format!("/config_dump lacks {want:?}; it has {shape:?}")
                });
            }
            // Envoy dumps protos with their field names (snake_case), as istioctl expects.
            let listener_port = stand.listener()?.port();
            let fields: [(&str, &str, Value); 5] = [
                (
                    "BootstrapConfigDump",
                    "/bootstrap/admin/address/socket_address/port_value",
                    stand.admin().port().into(),
                ),
                (
                    "ClustersConfigDump",
                    "/static_clusters/0/cluster/connect_timeout",
                    "1s".into(),
                ),
                (
                    "ListenersConfigDump",
                    "/static_listeners/0/listener/address/socket_address/port_value",
                    listener_port.into(),
                ),
                (
                    "RoutesConfigDump",
                    "/static_route_configs/0/route_config/@type",
                    "type.googleapis.com/envoy.config.route.v3.RouteConfiguration".into(),
                ),
                (
                    "RoutesConfigDump",
                    "/static_route_configs/0/route_config/virtual_hosts/0/name",
                    "all".into(),
                ),
            ];
            for (dump, pointer, want) in fields {
                let got = config_dump::config_of(&doc, dump).and_then(|c| c.pointer(pointer));
                report.check(kind, got == Some(&want), || {
                    format!("/config_dump {dump}{pointer} is {got:?}, expected {want}")
                });
            }
            report.log_if_failed(before, &stand.proxy);
            seen.push((kind, shape));
        }
        report.same("/config_dump (@type, static names)", &seen);
        report.finish()
    });
}

#[test]
fn clusters_show_the_endpoint_healthy() {
    block_on(async {
        let mut report = Report::default();
        let mut seen = Vec::new();
        for binary in peers()? {
            let stand = start(&binary).await?;
            let kind = binary.kind;
            let before = report.len();
            let resp = admin::get(stand.admin(), "/clusters").await?;
            let body = admin::body_text(&resp);
            let host = stand.backend.addr();
            let lines = [
                format!("{CLUSTER}::observability_name::{CLUSTER}"),
                format!("{CLUSTER}::added_via_api::false"),
                format!("{CLUSTER}::{host}::health_flags::healthy"),
            ];
            let present: BTreeMap<String, bool> = lines
                .iter()
                .map(|l| {
                    (
                        l.replace(&host.to_string(), "<echo>"),
                        body.lines().any(|b| b == l),
                    )
                })
                .collect();
            report.check(
                kind,
                resp.status.as_u16() == 200 && present.values().all(|p| *p),
                || {
                    format!(
                        "GET /clusters answered {} with lines present {present:?}:\n{body}",
                        resp.status
                    )
                },
            );
            report.log_if_failed(before, &stand.proxy);
            seen.push((kind, present));
        }
        report.same("/clusters", &seen);
        report.finish()
    });
}

#[test]
fn logging_changes_need_post() {
    block_on(async {
        let mut report = Report::default();
        let mut seen = Vec::new();
        // Envoy 1.40 answers 405 to any GET of /logging, with or without a query.
        let steps: [(&str, &str, u16); 5] = [
            ("GET", "/logging?level=debug", 405),
            ("GET", "/logging", 405),
            ("POST", "/logging?level=debug", 200),
            ("POST", "/logging?level=bogus", 400),
            ("POST", "/logging?level=warning", 200),
        ];
        for binary in peers()? {
            let stand = start(&binary).await?;
            let kind = binary.kind;
            let before = report.len();
            let mut statuses = Vec::new();
            for (method, path, want) in steps {
                let resp = match method {
                    "GET" => admin::get(stand.admin(), path).await?,
                    _ => admin::post(stand.admin(), path).await?,
                };
                let status = resp.status.as_u16();
                let body = admin::body_text(&resp);
                report.check(kind, status == want, || {
                    format!("{method} {path} answered {status} {body:?}, expected {want}")
                });
                if want == 200 {
                    report.check(kind, body.starts_with("active loggers:"), || {
                        format!("{method} {path} body {body:?} does not list the active loggers")
                    });
                }
                statuses.push((method, path, status));
            }
            report.log_if_failed(before, &stand.proxy);
            seen.push((kind, statuses));
        }
        report.same("/logging", &seen);
        report.finish()
    });
}
