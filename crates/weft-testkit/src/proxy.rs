//! One way to run either proxy: Envoy as `envoy -c FILE` and Weft as
//! `weft proxy --config FILE`, handed the same bootstrap text, declared ready by the same
//! `GET /ready` on the bootstrap's admin address, killed when dropped. Output goes to a log
//! file whose tail is printed when a test fails, so a mismatch comes with the proxy's side.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tempfile::TempDir;

use crate::client::{self, HttpRequest};
use crate::{Error, envoy};

/// How many times readiness is polled, and the pause between polls: 10 s in all, far above
/// a normal start, and the loop also stops as soon as the process exits.
pub const READY_TRIES: u32 = 200;
pub const READY_PAUSE: Duration = Duration::from_millis(50);
/// Bound for one readiness probe.
const PROBE_LIMIT: Duration = Duration::from_secs(1);
/// Lines of log shown with a failure.
pub(crate) const TAIL_LINES: usize = 60;

/// Which proxy a process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProxyKind {
    Envoy,
    Weft,
}

impl fmt::Display for ProxyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProxyKind::Envoy => "envoy",
            ProxyKind::Weft => "weft",
        })
    }
}

/// A proxy binary and how to start it.
#[derive(Debug, Clone)]
pub struct ProxyBinary {
    pub kind: ProxyKind,
    pub path: PathBuf,
}

impl ProxyBinary {
    /// Real Envoy (see [`envoy::envoy_binary`]).
    pub fn envoy() -> Result<Self, Error> {
        Ok(Self {
            kind: ProxyKind::Envoy,
            path: envoy::envoy_binary()?,
        })
    }

    /// The `weft` binary at `path` (tests use `env!("CARGO_BIN_EXE_weft")`).
    pub fn weft(path: impl Into<PathBuf>) -> Self {
        Self {
            kind: ProxyKind::Weft,
            path: path.into(),
        }
    }

    fn command(&self, config: &Path) -> Command {
        let mut cmd = Command::new(&self.path);
        match self.kind {
            ProxyKind::Envoy => {
                cmd.arg("-c")
                    .arg(config)
                    .args(["--concurrency", "1", "-l", "warning", "--base-id"])
                    .arg(unique_base_id().to_string());
            }
            // The same worker count as Envoy: per-worker connection pools make upstream
            // reuse visible to backends, so it must match for observations to compare.
            ProxyKind::Weft => {
                cmd.arg("proxy").arg("--config").arg(config).args([
                    "--concurrency",
                    "1",
                    "-l",
                    "warning",
                ]);
            }
        }
        cmd
    }
}

/// Envoy's shared-memory name derives from its base id; pid plus a counter keeps parallel
/// instances (in this process and in other test binaries) apart.
fn unique_base_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) % 64;
    (std::process::id() % (u32::MAX / 64 - 1)) * 64 + n
}

/// A proxy process started on a bootstrap written to a temp dir of its own, with its output
/// in a log there. The three runners (`ProxyProcess`, the admin and ADS ones) share this.
pub(crate) struct Launch {
    pub child: Child,
    pub log: PathBuf,
    pub dir: TempDir,
}

/// Writes `bootstrap` to a new temp dir (named `{prefix}-{kind}-…`) and starts the command
/// `command(dir, config)` builds, stdout and stderr going to `proxy.log` beside it.
pub(crate) fn launch(
    binary: &ProxyBinary,
    bootstrap: &str,
    prefix: &str,
    command: impl FnOnce(&Path, &Path) -> Command,
) -> Result<Launch, Error> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("{prefix}-{}-", binary.kind))
        .tempdir()
        .map_err(Error::io("creating a temp dir"))?;
    let config = dir.path().join("bootstrap.yaml");
    std::fs::write(&config, bootstrap)
        .map_err(Error::io(format!("writing {}", config.display())))?;
    let log = dir.path().join("proxy.log");
    let out =
        std::fs::File::create(&log).map_err(Error::io(format!("creating {}", log.display())))?;
    let err = out
        .try_clone()
        .map_err(Error::io("cloning the log handle"))?;
    let child = command(dir.path(), &config)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(Error::io(format!("starting {}", binary.path.display())))?;
    Ok(Launch { child, log, dir })
}

/// The last `lines` lines a proxy printed to `log`.
pub(crate) fn log_tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_else(|e| format!("(no log: {e})"));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Polls `http://{admin}/ready` until it answers 200 (bounded by [`READY_TRIES`] x
/// [`READY_PAUSE`]), failing at once when `exited` reports the process gone.
pub(crate) async fn wait_ready(
    kind: ProxyKind,
    admin: SocketAddr,
    mut exited: impl FnMut() -> Result<Option<ExitStatus>, Error>,
    log: &Path,
) -> Result<(), Error> {
    let probe = HttpRequest::get(&admin.to_string(), "/ready");
    let mut last = String::from("no answer yet");
    for _ in 0..READY_TRIES {
        if let Some(status) = exited()? {
            return Err(Error::ProxyExited {
                kind: kind.to_string(),
                status: status.to_string(),
                log_tail: log_tail(log, TAIL_LINES),
            });
        }
        match tokio::time::timeout(PROBE_LIMIT, client::send(admin, &probe)).await {
            Ok(Ok(resp)) if resp.status == http::StatusCode::OK => return Ok(()),
            Ok(Ok(resp)) => {
                last = format!("{} {:?}", resp.status, String::from_utf8_lossy(&resp.body))
            }
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "probe timed out".to_string(),
        }
        tokio::time::sleep(READY_PAUSE).await;
    }
    Err(Error::ProxyNotReady {
        kind: kind.to_string(),
        admin,
        last,
        log_tail: log_tail(log, TAIL_LINES),
    })
}

/// A running proxy; killed (and reaped) on drop.
pub struct ProxyProcess {
    kind: ProxyKind,
    admin: SocketAddr,
    child: Child,
    log: PathBuf,
    // Held so the bootstrap and log live as long as the process.
    _dir: TempDir,
}

impl fmt::Debug for ProxyProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyProcess")
            .field("kind", &self.kind)
            .field("admin", &self.admin)
            .field("pid", &self.child.id())
            .field("log", &self.log)
            .finish()
    }
}

impl ProxyProcess {
    /// Writes `bootstrap` to a temp dir, starts the proxy on it and waits until
    /// `http://{admin}/ready` answers 200.
    pub async fn start(
        binary: &ProxyBinary,
        bootstrap: &str,
        admin: SocketAddr,
    ) -> Result<Self, Error> {
        let Launch { child, log, dir } = launch(binary, bootstrap, "weft-testkit", |_, config| {
            binary.command(config)
        })?;
        let mut proc = Self {
            kind: binary.kind,
            admin,
            child,
            log,
            _dir: dir,
        };
        proc.wait_ready().await?;
        Ok(proc)
    }

    pub fn kind(&self) -> ProxyKind {
        self.kind
    }

    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    /// The last lines the proxy printed.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log, TAIL_LINES)
    }

    async fn wait_ready(&mut self) -> Result<(), Error> {
        let child = &mut self.child;
        wait_ready(
            self.kind,
            self.admin,
            || child.try_wait().map_err(Error::io("polling the proxy")),
            &self.log,
        )
        .await
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        // Already exited is fine; kill only fails then.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- {} (pid {}) log tail ----\n{}\n---- end of {} log ----",
                self.kind,
                self.child.id(),
                self.log_tail(),
                self.kind
            );
        }
    }
}
