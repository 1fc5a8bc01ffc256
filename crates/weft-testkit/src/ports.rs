//! Free loopback ports for bootstraps. A bootstrap must name its listener and admin ports
//! before the proxy starts, so the kit asks the kernel for a free one (bind port 0, read it,
//! release it) and never hands the same port out twice in one test process, which keeps
//! tests running in parallel from colliding with each other.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::LazyLock;

use parking_lot::Mutex;

use crate::Error;

static HANDED_OUT: LazyLock<Mutex<HashSet<u16>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

/// How many kernel-chosen ports to try before giving up; a clash with an earlier hand-out
/// is rare, so a handful is plenty.
const ATTEMPTS: usize = 64;

/// A loopback port nobody listens on right now and this process has not handed out before.
pub fn free_port() -> Result<u16, Error> {
    for _ in 0..ATTEMPTS {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .map_err(Error::io("binding 127.0.0.1:0"))?;
        let port = listener
            .local_addr()
            .map_err(Error::io("reading a bound port"))?
            .port();
        drop(listener);
        if HANDED_OUT.lock().insert(port) {
            return Ok(port);
        }
    }
    Err(Error::Template(format!(
        "no fresh loopback port after {ATTEMPTS} tries"
    )))
}

/// `127.0.0.1:port`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_never_repeated() {
        let a: Vec<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        let unique: HashSet<u16> = a.iter().copied().collect();
        assert_eq!(unique.len(), a.len());
        assert!(a.iter().all(|p| *p != 0));
    }
}
