//! Network namespaces for the level-4 tests (DESIGN.md's testing ladder): traffic capture is
//! only real when iptables rewrites a client's connection the way Istio's init container does,
//! and that needs root, a private network stack and addresses nobody else uses. A [`NetNs`] is
//! that stack: created with test addresses on a veth pair that lives entirely inside it,
//! given Istio-style `nat OUTPUT` rules, and deleted (with every process still in it) when
//! dropped, so a failing or panicking test leaves nothing behind on the host.
//!
//! Code runs inside a namespace in two ways: [`NetNs::run`] moves a fresh thread into it and
//! drives a tokio runtime there (every socket that thread opens, and every process it spawns,
//! belongs to the namespace, so the kit's echo backends, client and [`ProxyProcess`] work
//! unchanged); [`NetNs::exec`] and [`NetNs::spawn`] go through `ip netns exec`.
//!
//! [`Backend`] puts an echo backend at a fixed namespace address.
//!
//! [`ProxyProcess`]: crate::ProxyProcess

mod backend;

use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rustix::process::{Pid, Signal};
use rustix::thread::LinkNameSpaceType;
use tempfile::TempDir;
use tokio::time::Instant;

use crate::{Error, ProxyBinary};

pub use backend::Backend;

/// Istio's proxy runs as uid 1337 and its capture rules let that owner's traffic through;
/// the kit matches on the group instead so the proxy can keep root's uid (Envoy and weft need
/// no privilege, but the files the kit writes are root's).
pub const PROXY_GID: u32 = 1337;
/// Istio's outbound capture port (`virtualOutbound`).
pub const OUTBOUND_CAPTURE_PORT: u16 = 15001;

/// Bound for one `ip`/`iptables` command; they finish in milliseconds.
const COMMAND_LIMIT: Duration = Duration::from_secs(10);
/// Poll step while waiting for a command, and the cap on polls (with [`COMMAND_LIMIT`]).
const COMMAND_POLL: Duration = Duration::from_millis(5);
const COMMAND_POLLS: u32 = 4000;
/// Prefix of every namespace the kit creates; [`reap_orphans`] relies on it.
const PREFIX: &str = "weft-";
/// The veth pair inside each namespace. Interface names are per namespace, so fixed names
/// cannot clash between tests.
const VETH: &str = "weft0";
const VETH_PEER: &str = "weft1";
/// Chains named like Istio's `ISTIO_OUTPUT`/`ISTIO_REDIRECT`.
const OUTPUT_CHAIN: &str = "WEFT_OUTPUT";
const REDIRECT_CHAIN: &str = "WEFT_REDIRECT";

/// Istio-style outbound capture: TCP the namespace's processes open towards `destinations`
/// is redirected to `redirect_port`, except connections opened by group `proxy_gid` (the
/// proxy itself, whose upstream connections must leave uncaptured) and to `127.0.0.1`.
#[derive(Debug, Clone)]
pub struct Capture {
    pub redirect_port: u16,
    pub proxy_gid: u32,
    /// CIDRs, e.g. `10.99.0.0/24`.
    pub destinations: Vec<String>,
}

impl Capture {
    /// Capture of `destinations` to [`OUTBOUND_CAPTURE_PORT`], sparing [`PROXY_GID`].
    pub fn outbound(destinations: &[&str]) -> Self {
        Self {
            redirect_port: OUTBOUND_CAPTURE_PORT,
            proxy_gid: PROXY_GID,
            destinations: destinations.iter().map(|d| d.to_string()).collect(),
        }
    }

    /// The `iptables -t nat` argument lists, in order, that install this capture.
    pub fn rules(&self) -> Vec<Vec<String>> {
        let mut rules = vec![
            format!("-N {REDIRECT_CHAIN}"),
            format!(
                "-A {REDIRECT_CHAIN} -p tcp -j REDIRECT --to-ports {}",
                self.redirect_port
            ),
            format!("-N {OUTPUT_CHAIN}"),
            format!("-A OUTPUT -p tcp -j {OUTPUT_CHAIN}"),
            format!(
                "-A {OUTPUT_CHAIN} -m owner --gid-owner {} -j RETURN",
                self.proxy_gid
            ),
            format!("-A {OUTPUT_CHAIN} -d 127.0.0.1/32 -j RETURN"),
        ];
        for cidr in &self.destinations {
            rules.push(format!("-A {OUTPUT_CHAIN} -d {cidr} -j {REDIRECT_CHAIN}"));
        }
        rules
            .iter()
            .map(|r| {
                std::iter::once("-t")
                    .chain(std::iter::once("nat"))
                    .chain(r.split(' '))
                    .map(str::to_string)
                    .collect()
            })
            .collect()
    }
}

/// A network namespace of the kit's own; deleted on drop, after killing what runs in it.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    children: Mutex<Vec<Child>>,
}

impl NetNs {
    /// Creates `weft-<pid>-<n>` with `lo` up and `addresses` (CIDRs such as `10.99.0.2/24`)
    /// on a veth pair inside it. Fails with a message that says so when not run as root or
    /// when `ip` is missing.
    pub fn create(addresses: &[&str]) -> Result<Self, Error> {
        require_root()?;
        reap_orphans();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        run(Command::new("ip").args(["netns", "add", &name]))?;
        // From here on Drop deletes the namespace, whatever fails next.
        let ns = Self {
            name,
            children: Mutex::new(Vec::new()),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        ns.ip(&[
            "link", "add", VETH, "type", "veth", "peer", "name", VETH_PEER,
        ])?;
        for addr in addresses {
            ns.ip(&["addr", "add", addr, "dev", VETH])?;
        }
        ns.ip(&["link", "set", VETH, "up"])?;
        ns.ip(&["link", "set", VETH_PEER, "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME args...`, returning its output.
    pub fn ip(&self, args: &[&str]) -> Result<String, Error> {
        run(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// Runs `program args...` inside the namespace to completion (bounded), returning stdout.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String, Error> {
        run(self.command(program).args(args))
    }

    /// Starts `program args...` inside the namespace with output discarded; killed on drop.
    /// Returns its pid.
    pub fn spawn(&self, program: &str, args: &[&str]) -> Result<u32, Error> {
        let child = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(Error::io(format!("starting {program} in {}", self.name)))?;
        let pid = child.id();
        self.children.lock().push(child);
        Ok(pid)
    }

    /// The pids of every process inside the namespace.
    pub fn pids(&self) -> Result<Vec<u32>, Error> {
        let out = run(Command::new("ip").args(["netns", "pids", &self.name]))?;
        Ok(out
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect())
    }

    /// Installs `capture` with `iptables` inside the namespace.
    pub fn capture(&self, capture: &Capture) -> Result<(), Error> {
        require_program("iptables")?;
        for rule in capture.rules() {
            let args: Vec<&str> = rule.iter().map(String::as_str).collect();
            self.exec("iptables", &args)?;
        }
        Ok(())
    }

    /// `iptables -t nat -S` inside the namespace, for failure reports.
    pub fn nat_rules(&self) -> Result<String, Error> {
        self.exec("iptables", &["-t", "nat", "-S"])
    }

    /// Runs `body` to completion on a new thread that has joined this namespace, on a
    /// current-thread tokio runtime of its own. Sockets the body opens, threads it starts and
    /// processes it spawns are all inside the namespace. A panic in `body` is re-raised here.
    pub fn run<T, F, Fut>(&self, body: F) -> Result<T, Error>
    where
        T: Send,
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<T, Error>>,
    {
        let path = format!("/run/netns/{}", self.name);
        let handle = File::open(&path).map_err(Error::io(format!("opening {path}")))?;
        std::thread::scope(|scope| {
            let thread = std::thread::Builder::new()
                .name(format!("netns-{}", self.name))
                .spawn_scoped(scope, move || {
                    rustix::thread::move_into_link_name_space(
                        handle.as_fd(),
                        Some(LinkNameSpaceType::Network),
                    )
                    .map_err(|e| {
                        Error::io(format!("joining network namespace {path}"))(e.into())
                    })?;
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(Error::io("building a tokio runtime"))?;
                    rt.block_on(body())
                })
                .map_err(Error::io("starting a namespace thread"))?;
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        for mut child in self.children.lock().drain(..) {
            // Already exited is fine; kill only fails then.
            let _ = child.kill();
            let _ = child.wait();
        }
        // Anything else still inside was started by this test (a proxy a panicking test did
        // not get to drop, a grandchild); it must not outlive the namespace.
        if let Ok(pids) = self.pids() {
            for pid in pids {
                kill(pid);
            }
        }
        if let Err(e) = run(Command::new("ip").args(["netns", "del", &self.name])) {
            eprintln!("leaving network namespace {} behind: {e}", self.name);
        }
    }
}

/// A proxy binary started with group id `gid` (via `setpriv`), so capture rules that spare
/// that group let its upstream connections through, as Istio's rules do for uid 1337.
#[derive(Debug)]
pub struct GroupProxy {
    binary: ProxyBinary,
    // Holds the wrapper script.
    _dir: TempDir,
}

impl GroupProxy {
    /// Wraps `binary` in a script that `exec`s it under `setpriv --regid gid --clear-groups`;
    /// `exec` keeps the pid, so killing the [`crate::ProxyProcess`] kills the proxy.
    pub fn new(binary: &ProxyBinary, gid: u32) -> Result<Self, Error> {
        require_program("setpriv")?;
        let dir = tempfile::Builder::new()
            .prefix("weft-netns-proxy-")
            .tempdir()
            .map_err(Error::io("creating a temp dir"))?;
        let script = dir.path().join(format!("{}-gid-{gid}", binary.kind));
        let real = binary
            .path
            .to_str()
            .ok_or_else(|| Error::Conformance(format!("{} is not UTF-8", binary.path.display())))?;
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nexec setpriv --regid {gid} --clear-groups -- '{}' \"$@\"\n",
                real.replace('\'', r"'\''")
            ),
        )
        .map_err(Error::io(format!("writing {}", script.display())))?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .map_err(Error::io(format!("making {} executable", script.display())))?;
        Ok(Self {
            binary: ProxyBinary {
                kind: binary.kind,
                path: script,
            },
            _dir: dir,
        })
    }

    pub fn binary(&self) -> &ProxyBinary {
        &self.binary
    }
}

fn require_root() -> Result<(), Error> {
    if rustix::process::geteuid().is_root() {
        return Ok(());
    }
    Err(Error::Conformance(
        "network-namespace tests need root (CAP_NET_ADMIN and CAP_SYS_ADMIN: `ip netns add`, \
         setns and iptables); run them as root, as CI does"
            .to_string(),
    ))
}

fn require_program(program: &str) -> Result<(), Error> {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()));
    if found {
        Ok(())
    } else {
        Err(Error::Conformance(format!(
            "{program} is not installed; scripts/install-test-deps.sh installs it"
        )))
    }
}

/// Deletes `weft-<pid>-<n>` namespaces whose creating process is gone (a test binary killed
/// before its drops ran), so they do not pile up across runs.
fn reap_orphans() {
    let Ok(list) = run(Command::new("ip").args(["netns", "list"])) else {
        return;
    };
    for line in list.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let pids = run(Command::new("ip").args(["netns", "pids", name])).unwrap_or_default();
            for p in pids.split_whitespace().filter_map(|p| p.parse().ok()) {
                kill(p);
            }
            let _ = run(Command::new("ip").args(["netns", "del", name]));
        }
    }
}

fn kill(pid: u32) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        // Gone already is fine.
        let _ = rustix::process::kill_process(pid, Signal::KILL);
    }
}

/// Runs `cmd` to completion within [`COMMAND_LIMIT`], returning stdout; a non-zero exit is an
/// error carrying stderr.
fn run(cmd: &mut Command) -> Result<String, Error> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Error::io(format!("starting {what}")))?;
    // Drained on their own threads so a chatty command cannot block on a full pipe.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + COMMAND_LIMIT;
    let mut status = None;
    for _ in 0..COMMAND_POLLS {
        status = child
            .try_wait()
            .map_err(Error::io(format!("waiting for {what}")))?;
        if status.is_some() || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(COMMAND_POLL);
    }
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Error::Timeout {
            what,
            secs: COMMAND_LIMIT.as_secs(),
        });
    };
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    if status.success() {
        Ok(out)
    } else {
        Err(Error::Conformance(format!(
            "{what} failed ({status}): {}",
            err.trim()
        )))
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut p) = pipe {
            // A read error leaves what was read; the exit status tells the story.
            let _ = p.read_to_string(&mut text);
        }
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_rules_spare_the_proxy_group_before_redirecting() {
        let rules: Vec<String> = Capture::outbound(&["10.99.0.0/24"])
            .rules()
            .iter()
            .map(|r| r.join(" "))
            .collect();
        let spare = rules
            .iter()
            .position(|r| r.contains("--gid-owner 1337 -j RETURN"))
            .expect("a RETURN rule for the proxy's group");
        let redirect = rules
            .iter()
            .position(|r| r.ends_with("-d 10.99.0.0/24 -j WEFT_REDIRECT"))
            .expect("a redirect rule for the destination");
        assert!(spare < redirect, "{rules:#?}");
        assert!(rules.iter().all(|r| r.starts_with("-t nat ")));
        assert!(
            rules
                .iter()
                .any(|r| r.ends_with("-j REDIRECT --to-ports 15001"))
        );
    }

    /// Needs root, like every namespace test.
    #[test]
    fn a_namespace_holds_its_addresses_and_processes_and_is_gone_after_drop() {
        let ns = NetNs::create(&["10.99.0.2/24"]).unwrap_or_else(|e| panic!("{e}"));
        let name = ns.name().to_string();
        let addrs = ns.ip(&["-4", "addr", "show", VETH]).unwrap();
        assert!(addrs.contains("10.99.0.2/24"), "{addrs}");
        let pid = ns.spawn("sleep", &["60"]).unwrap();
        // `ip netns exec` joins the namespace just after it starts: wait for that (bounded).
        let joined = (0..250).any(|_| {
            let found = ns.pids().unwrap().contains(&pid);
            if !found {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            found
        });
        assert!(joined, "pid {pid} never showed up in the namespace");
        let inside = ns
            .run(|| async {
                let l = tokio::net::TcpListener::bind("10.99.0.2:0")
                    .await
                    .map_err(Error::io("binding inside"))?;
                l.local_addr().map_err(Error::io("local addr"))
            })
            .unwrap();
        assert_eq!(inside.ip().to_string(), "10.99.0.2");
        drop(ns);
        let list = run(Command::new("ip").args(["netns", "list"])).unwrap();
        assert!(
            !list.split_whitespace().any(|n| n == name),
            "{name} survived: {list}"
        );
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }

    /// Needs root. A test that panics inside the namespace must still not leave it behind.
    #[test]
    fn a_panic_inside_reaches_the_caller_and_the_namespace_is_still_deleted() {
        let mut name = String::new();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let ns = NetNs::create(&[]).unwrap_or_else(|e| panic!("{e}"));
            name = ns.name().to_string();
            let _: Result<(), Error> = ns.run(|| async { panic!("on purpose") });
        }));
        assert!(caught.is_err(), "the panic was swallowed");
        assert!(!name.is_empty());
        let list = run(Command::new("ip").args(["netns", "list"])).unwrap();
        assert!(
            !list.split_whitespace().any(|n| n == name),
            "{name} survived: {list}"
        );
    }
}
