//! This machine's primary IPv4 address, which Envoy writes into `x-forwarded-for` in place of
//! a loopback peer when `use_remote_address` is on (it appends the local address for loopback
//! clients). Expectations name it as `{{host_address}}` so a scenario holds on any machine.
//! Read from the kernel's local routing table (`/proc/net/fib_trie`), so no packet is sent.

use std::net::Ipv4Addr;
use std::sync::OnceLock;

use crate::Error;

/// The placeholder expectations use for [`host_address`].
pub const HOST_ADDRESS: &str = "{{host_address}}";

/// The first local, non-loopback IPv4 address.
pub fn host_address() -> Result<Ipv4Addr, Error> {
    static FOUND: OnceLock<Result<Ipv4Addr, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let text = std::fs::read_to_string("/proc/net/fib_trie")
                .map_err(|e| format!("reading /proc/net/fib_trie: {e}"))?;
            first_local(&text).ok_or_else(|| "no non-loopback local IPv4 address".to_string())
        })
        .clone()
        .map_err(Error::Conformance)
}

/// `text` with [`HOST_ADDRESS`] replaced, when it holds one.
pub fn fill(text: &str) -> Result<String, Error> {
    if text.contains(HOST_ADDRESS) {
        Ok(text.replace(HOST_ADDRESS, &host_address()?.to_string()))
    } else {
        Ok(text.to_string())
    }
}

/// In fib_trie, an address line (`|-- A.B.C.D`) is followed by its kinds; `/32 host LOCAL`
/// marks an address of this machine.
fn first_local(fib_trie: &str) -> Option<Ipv4Addr> {
    let mut last: Option<Ipv4Addr> = None;
    for line in fib_trie.lines() {
        let line = line.trim();
        if let Some(addr) = line.strip_prefix("|-- ") {
            last = addr.trim().parse().ok();
        } else if line.starts_with("/32 host LOCAL")
            && let Some(a) = last
            && !a.is_loopback()
        {
            return Some(a);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_non_loopback_local_entry_wins() {
        let trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 127.0.0.1\n        /32 host LOCAL\n     |-- 192.0.2.0\n        /24 link UNICAST\n     |-- 192.0.2.2\n        /32 host LOCAL\n";
        assert_eq!(first_local(trie), Some(Ipv4Addr::new(192, 0, 2, 2)));
        assert_eq!(first_local("|-- 127.0.0.1\n /32 host LOCAL\n"), None);
    }
}
