//! The control plane's debug server (istiod's 15014): `/ready`, `/metrics` in Prometheus'
//! text format, and the pages `weft proxy-status` and `weft proxy-config` read —
//! `/debug/syncz`, `/debug/config_dump?proxyID=ID` and `/debug/connections`.

pub mod client;
pub mod config_dump;
pub mod syncz;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use weft_xds::server::AdsServer;

use crate::metrics::Gauges;
use crate::push::ControlPlane;

type Reply = Response<Full<Bytes>>;

const HELP: &str = "weft control debug endpoints:
  /ready: 200 once the first push happened
  /metrics: Prometheus metrics
  /debug/syncz: per proxy and xDS type, sent/ACKed versions and SYNCED/STALE/NACK/NOT SENT
  /debug/config_dump?proxyID=ID: the resources last generated for a proxy
  /debug/connections: ADS streams, open and closed
";

/// What `/debug/config_dump` answers for a proxy it does not know.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnknownProxy {
    pub error: String,
    /// Ids of the connected proxies.
    pub connected: Vec<String>,
}

/// One ADS stream's row in `/debug/connections`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    pub proxy: String,
    pub stream_id: u64,
    pub mode: String,
    pub connected: bool,
    /// Streams the node has opened, reconnects included.
    pub streams: u64,
    /// Short names of the types it subscribed to.
    pub types: Vec<String>,
}

/// What the pages read.
#[derive(Clone, Debug)]
pub struct DebugState {
    pub control: Arc<ControlPlane>,
    pub server: AdsServer,
}

impl DebugState {
    fn gauges(&self) -> Gauges {
        let status = self.server.status();
        Gauges {
            connected: status.nodes.values().filter(|n| n.connected).count(),
            services: self.control.view().registry.services.len(),
        }
    }

    /// Ids of the proxies with an open stream.
    pub fn connected(&self) -> Vec<String> {
        let status = self.server.status();
        status
            .nodes
            .iter()
            .filter(|(_, n)| n.connected)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The proxy `wanted` names: its node id, or `POD.NAMESPACE` (the id's third part, as
    /// istioctl names proxies) when exactly one known proxy has it.
    pub fn resolve(&self, wanted: &str) -> Result<String, UnknownProxy> {
        let known: Vec<String> = self.control.proxy_ids();
        if known.iter().any(|id| id == wanted) {
            return Ok(wanted.to_string());
        }
        let matches: Vec<&String> = known.iter().filter(|id| short_name(id) == wanted).collect();
        match matches[..] {
            [one] => Ok(one.clone()),
            [] => Err(UnknownProxy {
                error: format!("proxy {wanted:?} is not connected to this control plane"),
                connected: self.connected(),
            }),
            _ => Err(UnknownProxy {
                error: format!(
                    "{wanted:?} names {} proxies ({}); give the full node id",
                    matches.len(),
                    matches
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                connected: self.connected(),
            }),
        }
    }

    fn connections(&self) -> Vec<Connection> {
        self.server
            .status()
            .nodes
            .iter()
            .map(|(id, n)| Connection {
                proxy: id.clone(),
                stream_id: n.stream_id,
                mode: match n.mode {
                    weft_xds::Mode::StateOfTheWorld => "sotw",
                    weft_xds::Mode::Delta => "delta",
                }
                .to_string(),
                connected: n.connected,
                streams: n.streams,
                types: weft_xds::type_url::sorted(n.types.keys().map(String::as_str))
                    .into_iter()
                    .map(|t| weft_xds::type_url::short_name(t).to_string())
                    .collect(),
            })
            .collect()
    }
}

/// `POD.NAMESPACE` of an Istio node id `TYPE~IP~POD.NAMESPACE~DOMAIN`, else the id itself.
pub fn short_name(id: &str) -> &str {
    id.split('~').nth(2).unwrap_or(id)
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r
}

fn text(status: StatusCode, body: impl Into<String>) -> Reply {
    reply(status, "text/plain; charset=utf-8", body.into())
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Reply {
    match serde_json::to_string_pretty(value) {
        Ok(body) => reply(status, "application/json", body + "\n"),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode JSON: {e}\n"),
        ),
    }
}

fn query_param(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (client::percent_decode(k) == name).then(|| client::percent_decode(v))
    })
}

fn handle(req: &Request<Incoming>, state: &DebugState) -> Reply {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "{} not allowed; the debug endpoints answer GET\n",
                req.method()
            ),
        );
    }
    match req.uri().path() {
        "/" | "/debug" | "/debug/" => text(StatusCode::OK, HELP),
        "/ready" => {
            if state.control.push_count() > 0 {
                text(StatusCode::OK, "ready\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "no push yet\n")
            }
        }
        "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            state.control.metrics().render(state.gauges()),
        ),
        "/debug/syncz" => json(
            StatusCode::OK,
            &syncz::render(&state.server.status(), &state.control.proxies()),
        ),
        "/debug/connections" => json(StatusCode::OK, &state.connections()),
        "/debug/config_dump" => {
            let Some(wanted) = query_param(req, "proxyID").filter(|p| !p.is_empty()) else {
                return json(
                    StatusCode::BAD_REQUEST,
                    &UnknownProxy {
                        error: "give the proxy: /debug/config_dump?proxyID=ID".into(),
                        connected: state.connected(),
                    },
                );
            };
            let config = state.resolve(&wanted).and_then(|id| {
                state.control.proxy_config(&id).ok_or_else(|| UnknownProxy {
                    error: format!("proxy {id:?} disconnected"),
                    connected: state.connected(),
                })
            });
            match config {
                Ok(config) => json(StatusCode::OK, &config_dump::render(&config)),
                Err(unknown) => json(StatusCode::NOT_FOUND, &unknown),
            }
        }
        _ => text(StatusCode::NOT_FOUND, format!("no such page\n{HELP}")),
    }
}

/// Serves the debug pages on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, state: DebugState) {
    let state = Arc::new(state);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors and the like: wait rather than spin.
                tracing::warn!("debug server accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&req, &state)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
