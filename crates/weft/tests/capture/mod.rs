//! The harness behind `proxy_capture`: one private network namespace per scenario with the
//! "pod" addresses 10.99.0.2 (the app) and 10.99.0.3 (another host), Istio's `nat OUTPUT`
//! capture of 10.99.0.0/24 to port 15001 that spares group 1337, echo backends at fixed
//! addresses, and each proxy run in turn (as group 1337) on the same bootstrap. The client is
//! an ordinary process of the namespace dialling the app address, so only iptables can bring
//! its connection to the proxy; where it ended up is read from the echo's answer.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use weft_testkit::netns::{Backend, Capture, GroupProxy, NetNs, PROXY_GID};
use weft_testkit::{
    EchoSeen, Error, HttpRequest, ProxyBinary, ProxyKind, ProxyProcess, client, ports, template,
};

/// Addresses of the namespace's veth.
const ADDRESSES: &[&str] = &["10.99.0.2/24", "10.99.0.3/24"];
/// What the capture rules send to the proxy.
const CAPTURED: &str = "10.99.0.0/24";
/// Envoy's default route timeout, which its router announces upstream.
const DEFAULT_ROUTE_TIMEOUT_MS: &str = "15000";

/// A bootstrap under `tests/capture/`, its backends and the requests to make.
pub struct Scenario {
    pub bootstrap: &'static str,
    /// Echo backends: name and the `ip:port` it listens at.
    pub backends: &'static [(&'static str, &'static str)],
    pub cases: Vec<Case>,
}

/// One request from the app: dial `dial` (captured), send `GET path` with `host`.
pub struct Case {
    pub dial: &'static str,
    pub path: &'static str,
    /// The `host` header; the dialled address when `None`, as a browser would send.
    pub host: Option<&'static str>,
    pub expect: Expect,
}

/// Where a case must end up, and how.
pub struct Expect {
    pub backend: &'static str,
    pub through: Through,
}

/// Whether the connection went through an HTTP connection manager (which adds its headers)
/// or was tunnelled as bytes by `tcp_proxy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Through {
    Hcm,
    Tcp,
}

impl Case {
    pub fn new(
        dial: &'static str,
        path: &'static str,
        backend: &'static str,
        through: Through,
    ) -> Self {
        Self {
            dial,
            path,
            host: None,
            expect: Expect { backend, through },
        }
    }

    pub fn host(mut self, host: &'static str) -> Self {
        self.host = Some(host);
        self
    }

    fn host_header(&self) -> &'static str {
        self.host.unwrap_or(self.dial)
    }
}

/// What one request observably did, compared between the proxies and with [`Expect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reached {
    pub status: u16,
    /// The echo that answered (`None` if the body was not an echo account).
    pub backend: Option<String>,
    pub path: Option<String>,
    pub authority: Option<String>,
    /// Request headers an HCM's router adds; a tunnel adds none.
    pub expected_rq_timeout_ms: Option<String>,
    pub forwarded_proto: Option<String>,
    /// Response header the router adds.
    pub upstream_service_time: bool,
}

/// One proxy's run of a scenario.
struct PeerRun {
    kind: ProxyKind,
    /// Per case; `Err` when the proxy did not start or the exchange failed.
    outcomes: Result<Vec<Result<Reached, String>>, String>,
    log_tail: String,
}

/// Runs `scenario` on every peer and checks each against its expectations and the peers
/// against each other; the error lists every difference.
pub fn check(scenario: &Scenario, peers: &[ProxyBinary]) -> Result<(), Error> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/capture")
        .join(scenario.bootstrap);
    let bootstrap = std::fs::read_to_string(&path)
        .map_err(|e| Error::Conformance(format!("reading {}: {e}", path.display())))?;
    let proxies = peers
        .iter()
        .map(|p| GroupProxy::new(p, PROXY_GID))
        .collect::<Result<Vec<_>, _>>()?;
    let ns = NetNs::create(ADDRESSES)?;
    ns.capture(&Capture::outbound(&[CAPTURED]))?;
    let runs = ns.run(|| async {
        let mut backends = Vec::new();
        for (name, at) in scenario.backends {
            backends.push(Backend::start(name, addr(at)?).await?);
        }
        prove_capture(&backends).await?;
        let mut runs = Vec::new();
        for proxy in &proxies {
            runs.push(run_peer(proxy.binary(), &bootstrap, &scenario.cases).await);
        }
        Ok(runs)
    });
    let runs = runs.map_err(|e| with_rules(&ns, e.to_string()))?;
    let report = judge(scenario, &runs);
    if report.is_empty() {
        Ok(())
    } else {
        Err(with_rules(&ns, format!("{}: {report}", scenario.bootstrap)))
    }
}

/// Before any proxy runs, dialling a backend's own address must be refused: the capture
/// sends the connection to 15001, where nothing listens yet. Otherwise every later
/// observation could have bypassed the proxy.
async fn prove_capture(backends: &[Backend]) -> Result<(), Error> {
    for backend in backends {
        let at = backend.addr();
        let refused = match client::tcp_exchange(at, b"").await {
            Err(Error::Io { source, .. }) => source.kind() == std::io::ErrorKind::ConnectionRefused,
            _ => false,
        };
        if !refused {
            return Err(Error::Conformance(format!(
                "capture is not in effect: with no proxy running, dialling the backend at {at} \
                 was not refused"
            )));
        }
    }
    Ok(())
}

async fn run_peer(binary: &ProxyBinary, bootstrap: &str, cases: &[Case]) -> PeerRun {
    let rendered = match template::render(bootstrap, &BTreeMap::new()) {
        Ok(r) => r,
        Err(e) => return failed_run(binary.kind, e.to_string()),
    };
    let admin = ports::loopback(rendered.admin_port);
    let proxy = match ProxyProcess::start(binary, &rendered.text, admin).await {
        Ok(p) => p,
        Err(e) => return failed_run(binary.kind, e.to_string()),
    };
    let mut outcomes = Vec::new();
    for case in cases {
        outcomes.push(request(case).await);
    }
    PeerRun {
        kind: binary.kind,
        outcomes: Ok(outcomes),
        log_tail: proxy.log_tail(),
    }
}

fn failed_run(kind: ProxyKind, error: String) -> PeerRun {
    PeerRun {
        kind,
        outcomes: Err(error),
        log_tail: String::new(),
    }
}

async fn request(case: &Case) -> Result<Reached, String> {
    let dial = addr(case.dial).map_err(|e| e.to_string())?;
    let req = HttpRequest::get(case.host_header(), case.path);
    let resp = client::send(dial, &req).await.map_err(|e| e.to_string())?;
    let seen = EchoSeen::parse(&resp.body);
    let header = |name: &str| {
        seen.as_ref()
            .and_then(|s| s.headers.get(name))
            .map(|v| v.join(","))
    };
    Ok(Reached {
        status: resp.status.as_u16(),
        backend: seen.as_ref().map(|s| s.backend.clone()),
        path: seen.as_ref().map(|s| s.path.clone()),
        authority: seen.as_ref().and_then(|s| s.authority.clone()),
        expected_rq_timeout_ms: header("x-envoy-expected-rq-timeout-ms"),
        forwarded_proto: header("x-forwarded-proto"),
        upstream_service_time: resp.headers.contains_key("x-envoy-upstream-service-time"),
    })
}

/// Every way the runs fall short, one line each; empty when all is well.
fn judge(scenario: &Scenario, runs: &[PeerRun]) -> String {
    let mut report = String::new();
    for run in runs {
        let mut lines = String::new();
        match &run.outcomes {
            Err(e) => {
                let _ = writeln!(lines, "  did not start: {e}");
            }
            Ok(outcomes) => {
                for (case, outcome) in scenario.cases.iter().zip(outcomes) {
                    if let Some(why) = unmet(case, outcome) {
                        let _ = writeln!(
                            lines,
                            "  GET http://{}{} (host {}): {why}",
                            case.dial,
                            case.path,
                            case.host_header()
                        );
                    }
                }
            }
        }
        if !lines.is_empty() {
            let _ = write!(
                report,
                "\n{} missed expectations:\n{lines}---- {} log tail ----\n{}\n",
                run.kind, run.kind, run.log_tail
            );
        }
    }
    if let [first, rest @ ..] = runs {
        for other in rest {
            let (Ok(a), Ok(b)) = (&first.outcomes, &other.outcomes) else {
                continue;
            };
            for ((case, x), y) in scenario.cases.iter().zip(a).zip(b) {
                if x != y {
                    let _ = write!(
                        report,
                        "\nGET http://{}{} differs:\n  {}: {x:?}\n  {}: {y:?}\n",
                        case.dial, case.path, first.kind, other.kind
                    );
                }
            }
        }
    }
    report
}

/// Why `outcome` does not meet `case`'s expectation, if it does not.
fn unmet(case: &Case, outcome: &Result<Reached, String>) -> Option<String> {
    let r = match outcome {
        Ok(r) => r,
        Err(e) => return Some(format!("exchange failed: {e}")),
    };
    let hcm = case.expect.through == Through::Hcm;
    let want = Reached {
        status: 200,
        backend: Some(case.expect.backend.to_string()),
        path: Some(case.path.to_string()),
        authority: Some(case.host_header().to_string()),
        expected_rq_timeout_ms: hcm.then(|| DEFAULT_ROUTE_TIMEOUT_MS.to_string()),
        forwarded_proto: hcm.then(|| "http".to_string()),
        upstream_service_time: hcm,
    };
    (*r != want).then(|| format!("expected {want:?}\n    got {r:?}"))
}

fn addr(text: &str) -> Result<SocketAddr, Error> {
    text.parse()
        .map_err(|e| Error::Conformance(format!("{text:?} is not an ip:port: {e}")))
}

fn with_rules(ns: &NetNs, message: String) -> Error {
    let rules = ns
        .nat_rules()
        .unwrap_or_else(|e| format!("(could not list them: {e})"));
    Error::Conformance(format!("{message}\nnat rules in {}:\n{rules}", ns.name()))
}
