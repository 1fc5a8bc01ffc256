//! The hosts of a cluster at one moment, and round-robin picking over the healthy ones.
//! A set is immutable once built; membership changes build a new set and swap it in, so a
//! pick is one atomic increment and an index.

use crate::stats::Counter;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug)]
pub struct Host {
    pub addr: SocketAddr,
    /// What `auto_host_rewrite` writes: the DNS name, or the endpoint's `hostname`.
    pub hostname: Option<String>,
    pub healthy: bool,
    pub weight: u32,
    pub rq_total: Counter,
    pub rq_error: Counter,
}

impl Host {
    pub fn new(addr: SocketAddr, hostname: Option<String>, healthy: bool, weight: u32) -> Self {
        Host {
            addr,
            hostname,
            healthy,
            weight,
            rq_total: Counter::default(),
            rq_error: Counter::default(),
        }
    }
}

/// The hosts of configured endpoints (only those with an IP address; names are resolved by
/// the DNS cluster types before they get here).
pub fn hosts_of(
    eps: &[crate::model::endpoint::Endpoint<crate::model::endpoint::HostPort>],
) -> Vec<Host> {
    eps.iter()
        .filter_map(|e| {
            Some(Host::new(
                e.address.ip()?,
                e.hostname.clone(),
                e.healthy,
                e.weight,
            ))
        })
        .collect()
}

#[derive(Debug, Default)]
pub struct EndpointSet {
    pub hosts: Vec<Host>,
    /// Indices into `hosts` in round-robin order; a host of weight 3 appears three times,
    /// spread out (smooth weighted round robin), so equal weights are plain round robin.
    schedule: Vec<usize>,
    next: AtomicUsize,
}

/// Longest schedule built for weighted hosts; beyond it weights are scaled down.
const MAX_SCHEDULE: u64 = 4096;

impl EndpointSet {
    pub fn new(hosts: Vec<Host>) -> Self {
        let healthy: Vec<usize> = (0..hosts.len()).filter(|i| hosts[*i].healthy).collect();
        let schedule = if healthy
            .iter()
            .all(|i| hosts[*i].weight == hosts[healthy[0]].weight)
        {
            healthy
        } else {
            smooth_weighted(&healthy, &hosts)
        };
        EndpointSet {
            hosts,
            schedule,
            // Start each set at a random place so that many proxies don't all hit host 0.
            next: AtomicUsize::new(fastrand::usize(..1024)),
        }
    }

    pub fn healthy_count(&self) -> usize {
        self.hosts.iter().filter(|h| h.healthy).count()
    }

    /// The next host in round-robin order, or `None` when no host is healthy.
    pub fn pick(&self) -> Option<&Host> {
        if self.schedule.is_empty() {
            return None;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        Some(&self.hosts[self.schedule[n % self.schedule.len()]])
    }
}

fn smooth_weighted(healthy: &[usize], hosts: &[Host]) -> Vec<usize> {
    let total: u64 = healthy.iter().map(|i| u64::from(hosts[*i].weight)).sum();
    let scale = total.div_ceil(MAX_SCHEDULE).max(1);
    let weights: Vec<i64> = healthy
        .iter()
        .map(|i| (u64::from(hosts[*i].weight) / scale).max(1) as i64)
        .collect();
    let sum: i64 = weights.iter().sum();
    let mut current = vec![0i64; healthy.len()];
    let mut out = Vec::with_capacity(sum as usize);
    for _ in 0..sum {
        for (c, w) in current.iter_mut().zip(&weights) {
            *c += w;
        }
        let (best, _) = current
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))
            .expect("non-empty");
        current[best] -= sum;
        out.push(healthy[best]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(port: u16, weight: u32, healthy: bool) -> Host {
        Host::new(
            SocketAddr::from(([127, 0, 0, 1], port)),
            None,
            healthy,
            weight,
        )
    }

    #[test]
    fn round_robin_skips_unhealthy_hosts() {
        let set = EndpointSet::new(vec![host(1, 1, true), host(2, 1, false), host(3, 1, true)]);
        let picks: Vec<u16> = (0..4)
            .map(|_| set.pick().expect("healthy").addr.port())
            .collect();
        assert_eq!(picks.iter().filter(|p| **p == 2).count(), 0);
        assert_eq!(picks.iter().filter(|p| **p == 1).count(), 2);
        assert!(EndpointSet::new(vec![host(1, 1, false)]).pick().is_none());
    }

    #[test]
    fn weights_are_honoured_and_spread() {
        let set = EndpointSet::new(vec![host(1, 3, true), host(2, 1, true)]);
        let picks: Vec<u16> = (0..8)
            .map(|_| set.pick().expect("healthy").addr.port())
            .collect();
        assert_eq!(picks.iter().filter(|p| **p == 1).count(), 6);
        assert!(picks.windows(2).all(|w| w != [2, 2]), "{picks:?}");
    }
}
