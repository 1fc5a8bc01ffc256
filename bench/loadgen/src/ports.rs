//! Free loopback ports for the benchmark's configs (nginx and haproxy need a number in
//! their files): bind all of them at once on port 0 so they are distinct, then release.

use std::net::TcpListener;

use anyhow::Result;

pub fn free_ports(count: usize) -> Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ports_are_distinct_and_nonzero() {
        let ports = super::free_ports(8).expect("bind");
        let unique: std::collections::BTreeSet<_> = ports.iter().collect();
        assert_eq!(unique.len(), 8);
        assert!(ports.iter().all(|&p| p != 0));
    }
}
