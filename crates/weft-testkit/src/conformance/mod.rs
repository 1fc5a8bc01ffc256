//! The Envoy-vs-Weft conformance runner: start a scenario's echo backends and one proxy on the
//! rendered bootstrap, send each case's request, record an [`Observation`]; do that for every
//! proxy under test, then require every proxy to meet the stated expectations and all proxies
//! to observe the same thing.

mod custom;
mod expect;
mod scenario;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

pub use custom::{Outcome, check_custom};
pub use expect::departures;
pub use scenario::{ANY, Case, Expect, HeaderExpect, ObserveSpec, RequestSpec, Scenario};

use crate::client::{self, HttpResponse};
use crate::echo::EchoServer;
use crate::observation::Observation;
use crate::proxy::{ProxyBinary, ProxyKind, ProxyProcess};
use crate::template::{self, Rendered};
use crate::{Error, ports};

/// Starts tried per rig: a proxy that exits at once most likely lost a port race with another
/// process between allocation and bind, so the bootstrap is rendered anew with fresh ports.
const START_ATTEMPTS: usize = 3;

/// Which proxies to run, from `WEFT_CONFORMANCE_ONLY` (`envoy`, `weft`, or unset for both).
pub fn peers(only: Option<&str>, weft: &Path) -> Result<Vec<ProxyBinary>, Error> {
    match only.unwrap_or("") {
        "" => Ok(vec![ProxyBinary::envoy()?, ProxyBinary::weft(weft)]),
        "envoy" => Ok(vec![ProxyBinary::envoy()?]),
        "weft" => Ok(vec![ProxyBinary::weft(weft)]),
        other => Err(Error::Conformance(format!(
            "WEFT_CONFORMANCE_ONLY={other:?}: expected envoy, weft or unset"
        ))),
    }
}

/// A scenario's backends and one running proxy.
#[derive(Debug)]
pub struct Rig {
    backends: BTreeMap<String, EchoServer>,
    rendered: Rendered,
    proxy: ProxyProcess,
}

impl Rig {
    pub async fn start(scenario: &Scenario, binary: &ProxyBinary) -> Result<Self, Error> {
        let mut backends = BTreeMap::new();
        for name in &scenario.backends {
            backends.insert(name.clone(), EchoServer::http(name).await?);
        }
        for name in &scenario.tcp_backends {
            backends.insert(name.clone(), EchoServer::tcp(name).await?);
        }
        let backend_ports: BTreeMap<String, u16> = backends
            .iter()
            .map(|(n, b)| (n.clone(), b.port()))
            .collect();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let rendered = template::render(&scenario.bootstrap, &backend_ports)?;
            let admin = ports::loopback(rendered.admin_port);
            match ProxyProcess::start(binary, &rendered.text, admin).await {
                Ok(proxy) => {
                    return Ok(Self {
                        backends,
                        rendered,
                        proxy,
                    });
                }
                Err(Error::ProxyExited { log_tail, .. })
                    if attempt < START_ATTEMPTS && log_tail.contains("ddress already in use") => {}
                Err(e) => return Err(e),
            }
        }
    }

    pub fn kind(&self) -> ProxyKind {
        self.proxy.kind()
    }

    pub fn proxy(&self) -> &ProxyProcess {
        &self.proxy
    }

    /// Address of the `{{port:NAME}}` listener (`listener` for `{{listener_port}}`).
    pub fn addr(&self, listener: &str) -> Result<SocketAddr, Error> {
        Ok(ports::loopback(self.rendered.port(listener)?))
    }

    pub fn backend(&self, name: &str) -> Result<&EchoServer, Error> {
        self.backends
            .get(name)
            .ok_or_else(|| Error::Conformance(format!("no backend named {name:?}")))
    }

    /// How many requests (HTTP) or connections (TCP) each backend has served so far.
    pub fn served(&self) -> BTreeMap<String, u64> {
        self.backends
            .iter()
            .map(|(n, b)| (n.clone(), b.served()))
            .collect()
    }

    /// The bootstrap text the proxy was started with.
    pub fn bootstrap(&self) -> &str {
        &self.rendered.text
    }

    pub async fn send(&self, spec: &RequestSpec) -> Result<HttpResponse, Error> {
        let mut req = spec.to_request()?;
        req.authority = self.rendered.fill(&req.authority)?;
        req.path = self.rendered.fill(&req.path)?;
        for (_, v) in &mut req.headers {
            *v = self.rendered.fill(v)?;
        }
        client::send(self.addr(&spec.listener)?, &req).await
    }

    pub async fn observe(&self, case: &Case) -> Result<Observation, Error> {
        let resp = self.send(&case.request).await?;
        Ok(Observation::from_response(&resp, &case.selection()))
    }
}

/// Runs every case of `scenario` on every proxy in `peers`; `Err` lists each expectation a
/// proxy missed and each case where the proxies disagree, with both observations.
pub async fn check(scenario: &Scenario, peers: &[ProxyBinary]) -> Result<(), Error> {
    let mut failures = Vec::new();
    let mut seen: Vec<(ProxyKind, Vec<Option<Observation>>)> = Vec::new();
    for binary in peers {
        let before = failures.len();
        let rig = match Rig::start(scenario, binary).await {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("[{}] did not start: {e}", binary.kind));
                seen.push((binary.kind, vec![None; scenario.cases.len()]));
                continue;
            }
        };
        let mut observations = Vec::new();
        for case in &scenario.cases {
            match rig.observe(case).await {
                Ok(obs) => {
                    // Captured by the test harness; shown on failure or with --nocapture.
                    println!("[{}] {}: {}", rig.kind(), case.name, obs.compact());
                    let missed = departures(&case.expect, &obs);
                    if !missed.is_empty() {
                        failures.push(format!(
                            "[{}] case {:?}:\n  {}\n  observed: {}",
                            rig.kind(),
                            case.name,
                            missed.join("\n  "),
                            obs.pretty()
                        ));
                    }
                    observations.push(Some(obs));
                }
                Err(e) => {
                    failures.push(format!(
                        "[{}] case {:?}: request failed: {e}",
                        rig.kind(),
                        case.name
                    ));
                    observations.push(None);
                }
            }
        }
        if failures.len() > before {
            failures.push(format!(
                "[{}] log tail:\n{}",
                rig.kind(),
                rig.proxy().log_tail()
            ));
        }
        seen.push((rig.kind(), observations));
    }
    if let [(first_kind, first), rest @ ..] = seen.as_slice() {
        for (kind, obs) in rest {
            for (i, case) in scenario.cases.iter().enumerate() {
                if let (Some(a), Some(b)) = (&first[i], &obs[i])
                    && a != b
                {
                    failures.push(format!(
                        "case {:?}: {first_kind} and {kind} differ\n{first_kind}: {}\n{kind}: {}",
                        case.name,
                        a.pretty(),
                        b.pretty()
                    ));
                }
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Conformance(format!(
            "scenario {}:\n{}",
            scenario.path.display(),
            failures.join("\n\n")
        )))
    }
}
