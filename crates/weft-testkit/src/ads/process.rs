//! A proxy started for an ADS test. Unlike [`crate::ProxyProcess`], starting does not wait for
//! `/ready`: whether and when a proxy becomes ready is what these tests check. The admin port
//! is kernel-chosen and read back from `--admin-address-path`, which both proxies write once
//! their admin listener is bound.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use http::StatusCode;
use tempfile::TempDir;

use super::{POLL, POLLS, WAIT};
use crate::client::{self, HttpRequest};
use crate::proxy::{Launch, launch, log_tail};
use crate::{Error, ProxyBinary, ProxyKind};

/// Worker threads per proxy: more than one, so a pushed update must reach every worker.
const CONCURRENCY: &str = "2";
/// Lines of log shown with a failure.
const TAIL_LINES: usize = 80;

/// A running proxy; killed (and reaped) on drop.
pub struct AdsProxy {
    kind: ProxyKind,
    admin: SocketAddr,
    child: Child,
    log: PathBuf,
    // Held so the bootstrap and log live as long as the process.
    _dir: TempDir,
}

impl fmt::Debug for AdsProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdsProxy")
            .field("kind", &self.kind)
            .field("admin", &self.admin)
            .field("pid", &self.child.id())
            .field("log", &self.log)
            .finish()
    }
}

fn command(binary: &ProxyBinary, config: &Path, admin_path: &Path) -> Command {
    let mut cmd = Command::new(&binary.path);
    match binary.kind {
        ProxyKind::Envoy => {
            cmd.arg("-c").arg(config).args([
                "--concurrency",
                CONCURRENCY,
                "-l",
                "warning",
                "--use-dynamic-base-id",
            ]);
        }
        ProxyKind::Weft => {
            cmd.arg("proxy").arg("--config").arg(config).args([
                "--concurrency",
                CONCURRENCY,
                "-l",
                "info",
            ]);
        }
    }
    cmd.arg("--admin-address-path").arg(admin_path);
    cmd
}

impl AdsProxy {
    /// Writes `bootstrap`, starts the proxy on it and waits (bounded) for its admin address.
    pub async fn start(binary: &ProxyBinary, bootstrap: &str) -> Result<Self, Error> {
        let mut admin_path = PathBuf::new();
        let Launch { child, log, dir } = launch(binary, bootstrap, "weft-ads", |dir, config| {
            admin_path = dir.join("admin.address");
            command(binary, config, &admin_path)
        })?;
        let mut proc = Self {
            kind: binary.kind,
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            child,
            log,
            _dir: dir,
        };
        proc.admin = proc.read_admin_address(&admin_path).await?;
        Ok(proc)
    }

    async fn read_admin_address(&mut self, path: &Path) -> Result<SocketAddr, Error> {
        for _ in 0..POLLS {
            self.check_running()?;
            if let Ok(text) = std::fs::read_to_string(path)
                && let Ok(addr) = text.trim().parse::<SocketAddr>()
            {
                return Ok(addr);
            }
            tokio::time::sleep(POLL).await;
        }
        Err(Error::ProxyNotReady {
            kind: self.kind.to_string(),
            admin: self.admin,
            last: format!("no admin address in {} after {WAIT:?}", path.display()),
            log_tail: self.log_tail(),
        })
    }

    pub fn kind(&self) -> ProxyKind {
        self.kind
    }

    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    /// `Err` if the process has exited.
    pub fn check_running(&mut self) -> Result<(), Error> {
        match self
            .child
            .try_wait()
            .map_err(Error::io("polling the proxy"))?
        {
            Some(status) => Err(Error::ProxyExited {
                kind: self.kind.to_string(),
                status: status.to_string(),
                log_tail: self.log_tail(),
            }),
            None => Ok(()),
        }
    }

    /// `GET /ready` on the admin listener: status and body.
    pub async fn ready(&self) -> Result<(u16, String), Error> {
        let resp = client::send(
            self.admin,
            &HttpRequest::get(&self.admin.to_string(), "/ready"),
        )
        .await?;
        Ok((
            resp.status.as_u16(),
            String::from_utf8_lossy(&resp.body).into_owned(),
        ))
    }

    /// Polls `/ready` (bounded) until it answers 200.
    pub async fn wait_ready(&mut self) -> Result<(), Error> {
        let mut last = String::from("no answer yet");
        for _ in 0..POLLS {
            self.check_running()?;
            match self.ready().await {
                Ok((200, _)) => return Ok(()),
                Ok((status, body)) => last = format!("{status} {body:?}"),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(POLL).await;
        }
        Err(Error::ProxyNotReady {
            kind: self.kind.to_string(),
            admin: self.admin,
            last,
            log_tail: self.log_tail(),
        })
    }

    /// `GET path` on the admin listener, for failure reports (`/config_dump`, `/clusters`).
    pub async fn admin_get(&self, path: &str) -> Result<(StatusCode, String), Error> {
        let resp =
            client::send(self.admin, &HttpRequest::get(&self.admin.to_string(), path)).await?;
        Ok((
            resp.status,
            String::from_utf8_lossy(&resp.body).into_owned(),
        ))
    }

    /// The last lines the proxy printed.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log, TAIL_LINES)
    }
}

impl Drop for AdsProxy {
    fn drop(&mut self) {
        // Already exited is fine; kill only fails then.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
