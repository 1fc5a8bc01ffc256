//! The admin listener, with the endpoints Envoy users and tools rely on: `/ready`,
//! `/server_info`, `/stats` (text, JSON, Prometheus), `/config_dump`, `/clusters`,
//! `/listeners`, `/quitquitquit`, `/drain_listeners` and `/logging`. Changing endpoints
//! answer only to POST, as Envoy's do.

pub mod config_dump;
pub mod prometheus;

use crate::proxy::{Server, State};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::fmt::Write;
use std::sync::Arc;
use tokio::net::TcpListener;

type Reply = Response<Full<Bytes>>;

fn text(status: StatusCode, body: impl Into<String>) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body.into())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    r
}

fn json(value: &serde_json::Value) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(
        serde_json::to_string_pretty(value).unwrap_or_default() + "\n",
    )));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

/// Serves the admin API on `listener` until the server quits.
pub async fn serve(listener: TcpListener, server: Arc<Server>) {
    loop {
        let accepted = tokio::select! {
            _ = server.quit.cancelled() => return,
            r = listener.accept() => r,
        };
        let Ok((stream, _)) = accepted else { continue };
        let server = server.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, Infallible>(handle(req, &server)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// A query parameter, percent-decoded (clients such as istioctl encode `/stats?filter=`).
fn query_param(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        let escaped = match (b[i], b.get(i + 1), b.get(i + 2)) {
            (b'%', Some(h), Some(l)) => hex(*h).zip(hex(*l)),
            _ => None,
        };
        match (escaped, b[i]) {
            (Some((h, l)), _) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, c) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

const HELP: &str = "admin commands are:
  /: this help
  /clusters: upstream cluster status
  /config_dump: dump current Envoy configs (?include_eds)
  /drain_listeners (POST): drain listeners
  /help: print out list of admin commands
  /listeners: print listener info
  /logging (POST): query/change logging levels (?level=LEVEL)
  /quitquitquit (POST): exit the server
  /ready: print server state, return 200 if LIVE, otherwise return 503
  /server_info: print server version/status information
  /stats: print server stats (?format=json, ?filter=REGEX)
  /stats/prometheus: print server stats in prometheus format
";

fn handle(req: Request<Incoming>, server: &Server) -> Reply {
    let post = req.method() == Method::POST;
    let needs_post = |f: &dyn Fn() -> Reply| {
        if post {
            f()
        } else {
            text(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("Method {} not allowed, POST required.\n", req.method()),
            )
        }
    };
    match req.uri().path() {
        "/" | "/help" => text(StatusCode::OK, HELP),
        "/ready" => {
            let state = server.state();
            let status = if state == State::Live {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            text(status, format!("{}\n", state.name()))
        }
        "/server_info" => json(&server.info()),
        "/stats" => stats(&req, server),
        "/stats/prometheus" => {
            let mut r = text(
                StatusCode::OK,
                prometheus::render(&server.samples(), &server.registry.scope_names()),
            );
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }
        "/config_dump" => {
            let store = server.store.lock();
            json(&config_dump::render(
                &store,
                &server.bootstrap,
                server.started,
                query_param(&req, "include_eds").is_some(),
            ))
        }
        "/clusters" => clusters(
            server,
            query_param(&req, "format").as_deref() == Some("json"),
        ),
        "/listeners" => {
            let snapshot = server.shared.load();
            let mut out = String::new();
            for (name, l) in &snapshot.listeners {
                let addr = l
                    .socket
                    .as_ref()
                    .and_then(|s| s.local_addr().ok())
                    .unwrap_or(l.config.address);
                let _ = writeln!(out, "{name}::{addr}");
            }
            text(StatusCode::OK, out)
        }
        "/quitquitquit" => needs_post(&|| {
            server.quit.cancel();
            text(StatusCode::OK, "OK\n")
        }),
        "/drain_listeners" => needs_post(&|| {
            server.drain_listeners();
            text(StatusCode::OK, "OK\n")
        }),
        "/logging" => {
            let level = query_param(&req, "level");
            needs_post(&|| match &level {
                None => text(
                    StatusCode::OK,
                    format!("active loggers:\n  weft: {}\n", server.log_level()),
                ),
                Some(level) => match server.set_log_level(level) {
                    Ok(()) => text(
                        StatusCode::OK,
                        format!("active loggers:\n  weft: {level}\n"),
                    ),
                    Err(e) => text(StatusCode::BAD_REQUEST, format!("{e}\n")),
                },
            })
        }
        _ => text(StatusCode::NOT_FOUND, format!("invalid path. {HELP}")),
    }
}

fn stats(req: &Request<Incoming>, server: &Server) -> Reply {
    let filter = query_param(req, "filter").and_then(|f| regex::Regex::new(&f).ok());
    let samples: Vec<_> = server
        .samples()
        .into_iter()
        .filter(|s| filter.as_ref().is_none_or(|f| f.is_match(&s.name)))
        .collect();
    if query_param(req, "format").as_deref() == Some("json") {
        let stats: Vec<serde_json::Value> = samples
            .iter()
            .map(|s| serde_json::json!({ "name": s.name, "value": s.value }))
            .collect();
        return json(&serde_json::json!({ "stats": stats }));
    }
    let mut out = String::new();
    for s in samples {
        let _ = writeln!(out, "{}: {}", s.name, s.value);
    }
    text(StatusCode::OK, out)
}

fn clusters(server: &Server, as_json: bool) -> Reply {
    let snapshot = server.shared.load();
    let store = server.store.lock();
    let mut out = String::new();
    let mut list = Vec::new();
    let mut names: Vec<&String> = snapshot.clusters.keys().collect();
    names.sort();
    for name in names {
        let c = &snapshot.clusters[name];
        let added_via_api = store.clusters.get(name).is_some_and(|e| !e.is_static);
        let _ = writeln!(out, "{name}::observability_name::{name}");
        let _ = writeln!(out, "{name}::added_via_api::{added_via_api}");
        let eps = c.endpoints.load();
        let mut hosts = Vec::new();
        for h in &eps.hosts {
            let ejected = h.outlier.is_ejected();
            // Envoy's flag order: active health check, outlier check, EDS health.
            let flags = match (ejected, h.healthy) {
                (false, true) => "healthy",
                (true, true) => "/failed_outlier_check",
                (false, false) => "/failed_eds_health",
                (true, false) => "/failed_outlier_check/failed_eds_health",
            };
            let _ = writeln!(out, "{name}::{}::rq_total::{}", h.addr, h.rq_total.get());
            let _ = writeln!(out, "{name}::{}::rq_error::{}", h.addr, h.rq_error.get());
            let _ = writeln!(out, "{name}::{}::health_flags::{flags}", h.addr);
            let _ = writeln!(out, "{name}::{}::weight::{}", h.addr, h.weight);
            let _ = writeln!(
                out,
                "{name}::{}::hostname::{}",
                h.addr,
                h.hostname.as_deref().unwrap_or_default()
            );
            hosts.push(serde_json::json!({
                "address": { "socket_address": { "address": h.addr.ip().to_string(), "port_value": h.addr.port() } },
                "stats": [
                    { "name": "rq_total", "type": "COUNTER", "value": h.rq_total.get().to_string() },
                    { "name": "rq_error", "type": "COUNTER", "value": h.rq_error.get().to_string() },
                ],
                "health_status": if ejected {
                    serde_json::json!({ "failed_outlier_check": true, "eds_health_status": if h.healthy { "HEALTHY" } else { "UNHEALTHY" } })
                } else {
                    serde_json::json!({ "eds_health_status": if h.healthy { "HEALTHY" } else { "UNHEALTHY" } })
                },
                "weight": h.weight,
                "hostname": h.hostname.clone().unwrap_or_default(),
            }));
        }
        list.push(serde_json::json!({
            "name": name,
            "observability_name": name,
            "added_via_api": added_via_api,
            "host_statuses": hosts,
        }));
    }
    if as_json {
        return json(&serde_json::json!({ "cluster_statuses": list }));
    }
    text(StatusCode::OK, out)
}
