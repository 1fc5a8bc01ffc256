//! The hosts of a cluster at one moment, and picking one of the healthy ones: round robin
//! (smoothly weighted), Envoy's least request — the least busy of `choice_count` random
//! picks when the weights are equal, an earliest-deadline-first schedule over
//! `weight / (active + 1)^bias` when they are not — random, or a ring hash or Maglev table
//! looked up by the request's hash. A set is immutable once built (only the pick state
//! moves); membership changes, ejections and returns build a new set and swap it in.
//!
//! Healthy means healthy by EDS and not ejected by outlier detection. When the healthy
//! share falls below the cluster's panic threshold, Envoy's panic mode balances over every
//! host instead.

use super::hashing::{Maglev, Ring, normalize};
use super::outlier::HostOutlier;
use crate::model::cluster::Balancer;
use crate::stats::{Counter, Gauge};
use parking_lot::Mutex;
use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
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
    /// Requests in flight to this host (what least request compares).
    pub rq_active: Gauge,
    pub outlier: HostOutlier,
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
            rq_active: Gauge::default(),
            outlier: HostOutlier::default(),
        }
    }

    /// Healthy by EDS and not ejected.
    pub fn is_healthy(&self) -> bool {
        self.healthy && !self.outlier.is_ejected()
    }

    /// The same endpoint as `other`: a membership update keeps this host (and its
    /// counters, which least request reads) rather than starting a new one.
    fn same_as(&self, other: &Host) -> bool {
        self.addr == other.addr
            && self.hostname == other.hostname
            && self.healthy == other.healthy
            && self.weight == other.weight
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

/// `hosts` as shared hosts, reusing those of `previous` that did not change.
pub fn carry_over(previous: &EndpointSet, hosts: Vec<Host>) -> Vec<Arc<Host>> {
    let by_addr: HashMap<SocketAddr, &Arc<Host>> =
        previous.hosts.iter().map(|h| (h.addr, h)).collect();
    hosts
        .into_iter()
        .map(|h| match by_addr.get(&h.addr) {
            Some(old) if old.same_as(&h) => Arc::clone(old),
            _ => Arc::new(h),
        })
        .collect()
}

#[derive(Debug)]
enum Picker {
    /// Indices into `hosts` in round-robin order; a host of weight 3 appears three times,
    /// spread out (smooth weighted round robin), so equal weights are plain round robin.
    RoundRobin {
        schedule: Vec<usize>,
        next: AtomicUsize,
    },
    LeastRequest {
        choice_count: u32,
        bias: f64,
        /// Present when the healthy hosts' weights differ.
        edf: Option<Mutex<Edf>>,
    },
    Random,
    Ring(Ring),
    Maglev(Maglev),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableStats {
    Ring([u64; 3]),
    Maglev([u64; 2]),
}

#[derive(Debug)]
pub struct EndpointSet {
    pub hosts: Vec<Arc<Host>>,
    /// Indices of the hosts picks are made from: the healthy ones, or all in panic.
    usable: Vec<usize>,
    healthy_count: usize,
    panic: bool,
    picker: Picker,
}

impl Default for EndpointSet {
    fn default() -> Self {
        EndpointSet::new(Vec::new(), Balancer::RoundRobin, 0)
    }
}

/// Whether Envoy would be in panic: fewer healthy hosts than `threshold` percent of all
/// (with a threshold of 0 never, not even with no healthy host left).
fn in_panic(healthy: usize, total: usize, threshold: u32) -> bool {
    total > 0 && threshold > 0 && (100.0 * healthy as f64 / total as f64) < f64::from(threshold)
}

/// Longest schedule built for weighted hosts; beyond it weights are scaled down.
const MAX_SCHEDULE: u64 = 4096;

impl EndpointSet {
    pub fn new(hosts: Vec<Arc<Host>>, balancer: Balancer, panic_threshold: u32) -> Self {
        let healthy: Vec<usize> = (0..hosts.len())
            .filter(|i| hosts[*i].is_healthy())
            .collect();
        let healthy_count = healthy.len();
        let panic = in_panic(healthy_count, hosts.len(), panic_threshold);
        let healthy = if panic {
            (0..hosts.len()).collect()
        } else {
            healthy
        };
        let equal = healthy
            .iter()
            .all(|i| hosts[*i].weight == hosts[healthy[0]].weight);
        let weighted = || {
            normalize(
                healthy
                    .iter()
                    .map(|i| (*i, hosts[*i].addr, hosts[*i].weight)),
            )
        };
        let picker = match balancer {
            Balancer::RoundRobin => Picker::RoundRobin {
                schedule: if equal {
                    healthy.clone()
                } else {
                    smooth_weighted(&healthy, &hosts)
                },
                // Start each set at a random place so that many proxies don't all hit
                // host 0.
                next: AtomicUsize::new(fastrand::usize(..1024)),
            },
            Balancer::LeastRequest {
                choice_count,
                active_request_bias,
            } => Picker::LeastRequest {
                choice_count,
                bias: active_request_bias,
                edf: (!equal).then(|| {
                    Mutex::new(Edf::new(&healthy, |i| {
                        dynamic_weight(&hosts[i], active_request_bias)
                    }))
                }),
            },
            Balancer::Random => Picker::Random,
            Balancer::RingHash {
                min_ring_size,
                max_ring_size,
            } => Picker::Ring(Ring::new(&weighted(), min_ring_size, max_ring_size)),
            Balancer::Maglev { table_size } => Picker::Maglev(Maglev::new(&weighted(), table_size)),
        };
        EndpointSet {
            hosts,
            usable: healthy,
            healthy_count,
            panic,
            picker,
        }
    }

    pub fn healthy_count(&self) -> usize {
        self.healthy_count
    }

    /// Picks are made from every host, healthy or not (Envoy's `lb_healthy_panic`).
    pub fn in_panic(&self) -> bool {
        self.panic
    }

    /// The hashing balancer's table statistics, as Envoy reports them: a ring's size and
    /// least and most entries of a host, or a Maglev table's least and most.
    pub fn table_stats(&self) -> Option<TableStats> {
        match &self.picker {
            Picker::Ring(r) => r.stats.map(TableStats::Ring),
            Picker::Maglev(m) => m.stats.map(TableStats::Maglev),
            _ => None,
        }
    }

    /// Hosts currently ejected by outlier detection.
    pub fn ejected_count(&self) -> usize {
        self.hosts.iter().filter(|h| h.outlier.is_ejected()).count()
    }

    /// The next host, or `None` when no host is usable. `hash` is the request's hash for
    /// the hashing balancers (a random one stands in when the route gives none).
    pub fn pick(&self, hash: Option<u64>) -> Option<&Arc<Host>> {
        self.pick_attempt(hash, 0)
    }

    fn pick_attempt(&self, hash: Option<u64>, attempt: u32) -> Option<&Arc<Host>> {
        if self.usable.is_empty() {
            return None;
        }
        let healthy = &self.usable;
        let i = match &self.picker {
            Picker::RoundRobin { schedule, next } => {
                let n = next.fetch_add(1, Ordering::Relaxed);
                schedule[n % schedule.len()]
            }
            Picker::LeastRequest {
                edf: Some(edf),
                bias,
                ..
            } => edf
                .lock()
                .pick_and_add(|i| dynamic_weight(&self.hosts[i], *bias))?,
            Picker::LeastRequest {
                choice_count,
                edf: None,
                ..
            } => self.least_of_random(*choice_count),
            Picker::Random => healthy[fastrand::usize(..healthy.len())],
            Picker::Ring(r) => r.pick(hash.unwrap_or_else(|| fastrand::u64(..)), attempt)?,
            Picker::Maglev(m) => m.pick(hash.unwrap_or_else(|| fastrand::u64(..)), attempt)?,
        };
        self.hosts.get(i)
    }

    /// Envoy's N choices: `choice_count` random healthy hosts (with replacement), keeping
    /// the first of those with the fewest active requests.
    fn least_of_random(&self, choice_count: u32) -> usize {
        let mut best = self.usable[fastrand::usize(..self.usable.len())];
        for _ in 1..choice_count {
            let other = self.usable[fastrand::usize(..self.usable.len())];
            if self.hosts[other].rq_active.get() < self.hosts[best].rq_active.get() {
                best = other;
            }
        }
        best
    }

    /// A pick for a retry: up to `extra` more picks while the host is one already `tried`
    /// (the `previous_hosts` predicate); the last pick stands if every one was tried. The
    /// hashing balancers look further along their table for each extra pick, as Envoy does.
    pub fn pick_avoiding(
        &self,
        tried: &[SocketAddr],
        extra: u32,
        hash: Option<u64>,
    ) -> Option<&Arc<Host>> {
        // One hash for every attempt, so the hashing balancers step from the same place.
        let hash = match self.picker {
            Picker::Ring(_) | Picker::Maglev(_) => Some(hash.unwrap_or_else(|| fastrand::u64(..))),
            _ => hash,
        };
        let mut host = self.pick_attempt(hash, 0)?;
        for attempt in 1..=extra {
            if !tried.contains(&host.addr) {
                break;
            }
            host = self.pick_attempt(hash, attempt)?;
        }
        Some(host)
    }
}

/// Least request's weight for a host with unequal weights: `weight / (active + 1)^bias`.
fn dynamic_weight(h: &Host, bias: f64) -> f64 {
    let active = h.rq_active.get().max(0) as f64 + 1.0;
    let weight = f64::from(h.weight);
    if bias == 1.0 {
        weight / active
    } else if bias == 0.0 {
        weight
    } else {
        weight / active.powf(bias)
    }
}

/// Envoy's earliest-deadline-first scheduler: each host is due `1 / weight` after the
/// current time; the earliest is picked and queued again with its weight at that moment.
#[derive(Debug)]
struct Edf {
    now: f64,
    order: u64,
    queue: BinaryHeap<Due>,
}

#[derive(Debug)]
struct Due {
    deadline: f64,
    order: u64,
    host: usize,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    /// Reversed, so the heap's top is the earliest deadline (then the earliest queued).
    fn cmp(&self, other: &Self) -> CmpOrdering {
        other
            .deadline
            .total_cmp(&self.deadline)
            .then(other.order.cmp(&self.order))
    }
}

impl Edf {
    fn new(hosts: &[usize], weight: impl Fn(usize) -> f64) -> Self {
        let mut edf = Edf {
            now: 0.0,
            order: 0,
            queue: BinaryHeap::with_capacity(hosts.len()),
        };
        for &h in hosts {
            edf.add(h, weight(h));
        }
        // A random number of picks first, as Envoy does, so that proxies started together
        // do not all begin with the same host.
        if !hosts.is_empty() {
            for _ in 0..fastrand::usize(..hosts.len()) {
                edf.pick_and_add(&weight);
            }
        }
        edf
    }

    fn add(&mut self, host: usize, weight: f64) {
        let weight = if weight > 0.0 {
            weight
        } else {
            f64::MIN_POSITIVE
        };
        self.queue.push(Due {
            deadline: self.now + 1.0 / weight,
            order: self.order,
            host,
        });
        self.order += 1;
    }

    fn pick_and_add(&mut self, weight: impl Fn(usize) -> f64) -> Option<usize> {
        let due = self.queue.pop()?;
        self.now = due.deadline;
        self.add(due.host, weight(due.host));
        Some(due.host)
    }
}

fn smooth_weighted(healthy: &[usize], hosts: &[Arc<Host>]) -> Vec<usize> {
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

    fn host(port: u16, weight: u32, healthy: bool) -> Arc<Host> {
        Arc::new(Host::new(
            SocketAddr::from(([127, 0, 0, 1], port)),
            None,
            healthy,
            weight,
        ))
    }

    fn least_request(choice_count: u32) -> Balancer {
        Balancer::LeastRequest {
            choice_count,
            active_request_bias: 1.0,
        }
    }

    #[test]
    fn round_robin_skips_unhealthy_hosts() {
        let set = EndpointSet::new(
            vec![host(1, 1, true), host(2, 1, false), host(3, 1, true)],
            Balancer::RoundRobin,
            0,
        );
        let picks: Vec<u16> = (0..4)
            .map(|_| set.pick(None).expect("healthy").addr.port())
            .collect();
        assert_eq!(picks.iter().filter(|p| **p == 2).count(), 0);
        assert_eq!(picks.iter().filter(|p| **p == 1).count(), 2);
        assert!(
            EndpointSet::new(vec![host(1, 1, false)], Balancer::RoundRobin, 0)
                .pick(None)
                .is_none()
        );
    }

    #[test]
    fn weights_are_honoured_and_spread() {
        let set = EndpointSet::new(
            vec![host(1, 3, true), host(2, 1, true)],
            Balancer::RoundRobin,
            0,
        );
        let picks: Vec<u16> = (0..8)
            .map(|_| set.pick(None).expect("healthy").addr.port())
            .collect();
        assert_eq!(picks.iter().filter(|p| **p == 1).count(), 6);
        assert!(picks.windows(2).all(|w| w != [2, 2]), "{picks:?}");
    }

    #[test]
    fn least_request_prefers_the_idle_host() {
        let busy = host(1, 1, true);
        busy.rq_active.inc();
        let set = EndpointSet::new(vec![busy, host(2, 1, true)], least_request(64), 0);
        // 64 random choices among two hosts miss the idle one with probability 2^-64.
        assert!((0..100).all(|_| set.pick(None).expect("healthy").addr.port() == 2));
        // With two choices the idle host wins unless both picks land on the busy one.
        let set = EndpointSet::new(set.hosts.clone(), least_request(2), 0);
        let idle = (0..4000)
            .filter(|_| set.pick(None).expect("healthy").addr.port() == 2)
            .count();
        // p = 3/4 over 4000 picks: the standard deviation is 27; this allows 7 of them.
        assert!((2810..=3190).contains(&idle), "{idle}");
    }

    #[test]
    fn weighted_least_request_follows_weight_over_active_requests() {
        let heavy = host(1, 3, true);
        let light = host(2, 1, true);
        let set = EndpointSet::new(vec![heavy.clone(), light], least_request(2), 0);
        let count = |set: &EndpointSet, n| {
            (0..n)
                .filter(|_| set.pick(None).expect("healthy").addr.port() == 1)
                .count()
        };
        let idle = count(&set, 4000);
        assert!(
            (2998..=3002).contains(&idle),
            "idle hosts go 3:1, got {idle}"
        );
        // Three requests in flight on the heavy host make its weight 3/4 against 1.
        for _ in 0..3 {
            heavy.rq_active.inc();
        }
        let share = count(&set, 7000);
        assert!((2900..=3100).contains(&share), "{share}");
    }

    #[test]
    fn retries_avoid_hosts_already_tried() {
        let set = EndpointSet::new(
            vec![host(1, 1, true), host(2, 1, true)],
            least_request(2),
            0,
        );
        let tried = [SocketAddr::from(([127, 0, 0, 1], 1))];
        assert!((0..100).all(|_| {
            set.pick_avoiding(&tried, 64, None)
                .expect("healthy")
                .addr
                .port()
                == 2
        }));
    }

    #[test]
    fn random_ignores_weights_and_skips_unhealthy_hosts() {
        let set = EndpointSet::new(
            vec![host(1, 3, true), host(2, 1, true), host(3, 1, false)],
            Balancer::Random,
            0,
        );
        let ones = (0..4000)
            .filter(|_| set.pick(None).expect("healthy").addr.port() == 1)
            .count();
        // An even split of 4000 has a standard deviation of 32; weights 3:1 would give 3000.
        assert!((1800..=2200).contains(&ones), "{ones}");
        assert!((0..200).all(|_| set.pick(None).expect("healthy").addr.port() != 3));
    }

    #[test]
    fn panic_mode_balances_over_every_host_below_the_threshold() {
        let hosts = || vec![host(1, 1, true), host(2, 1, false), host(3, 1, false)];
        // One healthy of three is 33%, under 50%: every host serves.
        let set = EndpointSet::new(hosts(), Balancer::RoundRobin, 50);
        assert!(set.in_panic());
        let seen: std::collections::BTreeSet<u16> = (0..6)
            .map(|_| set.pick(None).expect("any").addr.port())
            .collect();
        assert_eq!(seen, [1, 2, 3].into());
        // Under a 30% threshold only the healthy one does.
        let set = EndpointSet::new(hosts(), Balancer::RoundRobin, 30);
        assert!(!set.in_panic());
        assert!((0..6).all(|_| set.pick(None).expect("healthy").addr.port() == 1));
        // No healthy host: panic unless the threshold is 0.
        let none = || vec![host(1, 1, false)];
        assert!(
            EndpointSet::new(none(), Balancer::RoundRobin, 50)
                .pick(None)
                .is_some()
        );
        assert!(
            EndpointSet::new(none(), Balancer::RoundRobin, 0)
                .pick(None)
                .is_none()
        );
    }

    #[test]
    fn hashing_picks_are_sticky_and_retries_step_along_the_table() {
        for balancer in [
            Balancer::RingHash {
                min_ring_size: 1024,
                max_ring_size: 8 << 20,
            },
            Balancer::Maglev { table_size: 65537 },
        ] {
            let set = EndpointSet::new(
                vec![host(1, 1, true), host(2, 1, true), host(3, 1, true)],
                balancer,
                0,
            );
            let mut spread = std::collections::BTreeSet::new();
            let mut moved = 0;
            for key in 0..60u64 {
                let h = crate::upstream::xxhash::xxh64(&key.to_le_bytes(), 0);
                let first = set.pick(Some(h)).expect("host").addr;
                assert!((0..5).all(|_| set.pick(Some(h)).expect("host").addr == first));
                let retry = set.pick_avoiding(&[first], 5, Some(h)).expect("host").addr;
                moved += usize::from(retry != first);
                spread.insert(first.port());
            }
            assert_eq!(spread, [1, 2, 3].into(), "{balancer:?}");
            // Like Envoy's, the extra lookups do not guarantee another host, only make it
            // likely.
            assert!(moved >= 50, "{balancer:?}: {moved} of 60 retries moved");
        }
    }

    #[test]
    fn unchanged_hosts_carry_over() {
        let old = EndpointSet::new(
            vec![host(1, 1, true), host(2, 1, true)],
            Balancer::RoundRobin,
            0,
        );
        old.hosts[0].rq_active.inc();
        let new = carry_over(
            &old,
            vec![
                Host::new(SocketAddr::from(([127, 0, 0, 1], 1)), None, true, 1),
                Host::new(SocketAddr::from(([127, 0, 0, 1], 2)), None, true, 5),
            ],
        );
        assert!(Arc::ptr_eq(&new[0], &old.hosts[0]));
        assert!(
            !Arc::ptr_eq(&new[1], &old.hosts[1]),
            "a new weight is a new host"
        );
    }
}
