//! A proxy process whose lifecycle a test drives: unlike the conformance
//! [`ProxyProcess`](crate::ProxyProcess), which only ever kills its proxy, this one can be
//! sent SIGTERM and waited on for its exit status, because "exits 0 after draining" is itself
//! the behaviour under test. Both proxies get `--concurrency 1`, so `/server_info` has one
//! value to agree on.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use tempfile::TempDir;

use crate::proxy::{Launch, TAIL_LINES, launch, log_tail, wait_ready};
use crate::{Error, ProxyBinary, ProxyKind};

/// The worker count both proxies are started with.
pub const CONCURRENCY: u32 = 1;
/// Lines of log shown with a failure.
/// A running proxy; killed (and reaped) on drop unless it already exited.
pub struct ManagedProxy {
    kind: ProxyKind,
    admin: SocketAddr,
    child: Child,
    exit: Option<ExitStatus>,
    log: PathBuf,
    // Held so the bootstrap and log outlive the process.
    _dir: TempDir,
}

impl fmt::Debug for ManagedProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagedProxy")
            .field("kind", &self.kind)
            .field("admin", &self.admin)
            .field("pid", &self.child.id())
            .field("exit", &self.exit)
            .finish()
    }
}

fn command(binary: &ProxyBinary, config: &Path) -> Command {
    let mut cmd = Command::new(&binary.path);
    let concurrency = CONCURRENCY.to_string();
    match binary.kind {
        ProxyKind::Envoy => {
            // A dynamic base id keeps parallel Envoys' shared memory apart without the
            // conformance kit's counter.
            cmd.arg("-c").arg(config).args([
                "--concurrency",
                &concurrency,
                "-l",
                "warning",
                "--use-dynamic-base-id",
            ]);
        }
        ProxyKind::Weft => {
            cmd.arg("proxy")
                .arg("--config")
                .arg(config)
                .args(["--concurrency", &concurrency]);
        }
    }
    cmd
}

impl ManagedProxy {
    /// Writes `bootstrap` to a temp dir, starts the proxy on it and waits until
    /// `http://{admin}/ready` answers 200 (bounded by [`READY_TRIES`] x [`READY_PAUSE`]).
    pub async fn start(
        binary: &ProxyBinary,
        bootstrap: &str,
        admin: SocketAddr,
    ) -> Result<Self, Error> {
        let Launch { child, log, dir } = launch(binary, bootstrap, "weft-admin", |_, config| {
            command(binary, config)
        })?;
        let mut proc = Self {
            kind: binary.kind,
            admin,
            child,
            exit: None,
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

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM through `kill(1)`, which keeps the kit free of unsafe signal calls.
    pub fn terminate(&self) -> Result<(), Error> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .map_err(Error::io("running kill -TERM"))?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::Conformance(format!(
                "kill -TERM {} failed: {status}",
                self.pid()
            )))
        }
    }

    /// The exit status if the process has exited, without waiting.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>, Error> {
        if self.exit.is_none() {
            self.exit = self
                .child
                .try_wait()
                .map_err(Error::io("polling the proxy"))?;
        }
        Ok(self.exit)
    }

    /// Polls for the exit status at most `tries` times, `pause` apart; `Err(Timeout)` if the
    /// process is still running after that.
    pub async fn wait_exit(&mut self, tries: u32, pause: Duration) -> Result<ExitStatus, Error> {
        for _ in 0..tries {
            if let Some(status) = self.exited()? {
                return Ok(status);
            }
            tokio::time::sleep(pause).await;
        }
        Err(Error::Timeout {
            what: format!("{} (pid {}) exiting", self.kind, self.pid()),
            secs: (pause * tries).as_secs(),
        })
    }

    /// The last lines the proxy printed.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log, TAIL_LINES)
    }

    async fn wait_ready(&mut self) -> Result<(), Error> {
        let (child, exit) = (&mut self.child, &mut self.exit);
        let exited = || {
            if exit.is_none() {
                *exit = child.try_wait().map_err(Error::io("polling the proxy"))?;
            }
            Ok(*exit)
        };
        wait_ready(self.kind, self.admin, exited, &self.log).await
    }
}

impl Drop for ManagedProxy {
    fn drop(&mut self) {
        if self.exit.is_none() {
            // Exiting on its own in the meantime is fine; kill only fails then.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
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
