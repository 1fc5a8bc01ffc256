//! The hosts of a cluster at one moment, and picking one of the healthy ones: first a
//! priority (Envoy's priority load, see `priority`), then — with locality weighted
//! balancing — a locality by its weight and health, then a host by the cluster's balancer:
//! round robin (smoothly weighted), Envoy's least request — the least busy of
//! `choice_count` random picks when the weights are equal, an earliest-deadline-first
//! schedule over `weight / (active + 1)^bias` when they are not — random, or a ring hash or
//! Maglev table looked up by the request's hash. With slow start, round robin and least
//! request schedule by weights scaled down for hosts that only recently became healthy. A
//! set is immutable once built (only the pick state moves); membership changes, ejections
//! and returns build a new set and swap it in.
//!
//! Healthy means healthy by EDS and not ejected by outlier detection. When a priority's
//! healthy share falls below the cluster's panic threshold (and the priorities together
//! cannot take the load), Envoy's panic mode balances over every host of that priority.

use super::hashing::{Maglev, Ring, normalize};
use super::outlier::HostOutlier;
use super::priority::{self, Level};
use crate::model::cluster::{Balancer, ClusterConfig, SlowStart};
use crate::model::endpoint::Placement;
use crate::stats::{Counter, Gauge};
use parking_lot::Mutex;
use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::time::Instant;

#[derive(Debug)]
pub struct Host {
    pub addr: SocketAddr,
    /// What `auto_host_rewrite` writes: the DNS name, or the endpoint's `hostname`.
    pub hostname: Option<String>,
    pub healthy: bool,
    pub weight: u32,
    pub placement: Placement,
    pub rq_total: Counter,
    pub rq_error: Counter,
    /// Requests in flight to this host (what least request compares).
    pub rq_active: Gauge,
    pub outlier: HostOutlier,
    /// When a set with slow start first found this host healthy (Envoy's
    /// `lastHcPassTime`, which its balancer sets when no health checker has): its slow
    /// start window runs from here.
    healthy_since: OnceLock<Instant>,
}

impl Host {
    pub fn new(addr: SocketAddr, hostname: Option<String>, healthy: bool, weight: u32) -> Self {
        Host {
            addr,
            hostname,
            healthy,
            weight,
            placement: Placement::default(),
            rq_total: Counter::default(),
            rq_error: Counter::default(),
            rq_active: Gauge::default(),
            outlier: HostOutlier::default(),
            healthy_since: OnceLock::new(),
        }
    }

    pub fn with_placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
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
            && self.placement == other.placement
    }

    /// The weight slow start gives this host at `now` (its plain weight outside the
    /// window).
    fn slow_start_weight(&self, weight: f64, slow: Option<&SlowStart>, now: Instant) -> f64 {
        match (slow, self.healthy_since.get()) {
            (Some(s), Some(since)) if self.is_healthy() => {
                weight * s.factor(now.saturating_duration_since(*since))
            }
            _ => weight,
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
            Some(
                Host::new(e.address.ip()?, e.hostname.clone(), e.healthy, e.weight)
                    .with_placement(e.placement),
            )
        })
        .collect()
}

/// `hosts` as shared hosts, reusing those of `previous` that did not change. A host whose
/// weight, health or place changed is new, but keeps the moment it became healthy: Envoy
/// updates such a host in place, so its slow start does not begin again.
pub fn carry_over(previous: &EndpointSet, hosts: Vec<Host>) -> Vec<Arc<Host>> {
    let by_addr: HashMap<SocketAddr, &Arc<Host>> =
        previous.hosts.iter().map(|h| (h.addr, h)).collect();
    hosts
        .into_iter()
        .map(|h| match by_addr.get(&h.addr) {
            Some(old) if old.same_as(&h) => Arc::clone(old),
            Some(old) => {
                if let Some(since) = old.healthy_since.get() {
                    let _ = h.healthy_since.set(*since);
                }
                Arc::new(h)
            }
            None => Arc::new(h),
        })
        .collect()
}

/// What a set needs from the cluster's configuration to balance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LbSettings {
    pub balancer: Balancer,
    pub panic_threshold: u32,
    pub slow_start: Option<SlowStart>,
    pub locality_weighted: bool,
}

impl LbSettings {
    pub fn of(c: &ClusterConfig) -> Self {
        LbSettings {
            balancer: c.balancer,
            panic_threshold: c.panic_threshold,
            slow_start: c.slow_start,
            locality_weighted: c.locality_weighted,
        }
    }
}

#[derive(Debug)]
enum Picker {
    /// Indices into `hosts` in round-robin order; a host of weight 3 appears three times,
    /// spread out (smooth weighted round robin), so equal weights are plain round robin.
    RoundRobin {
        schedule: Vec<usize>,
        next: AtomicUsize,
    },
    /// Round robin while some host is in slow start: Envoy's EDF schedule, each host
    /// queued again with its weight at the moment it was picked.
    SlowRoundRobin(Mutex<Edf>),
    LeastRequest {
        choice_count: u32,
        bias: f64,
        /// Present when the healthy hosts' weights differ or some host is in slow start.
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

/// Some hosts and how to pick among them (Envoy's hosts source and its scheduler).
#[derive(Debug)]
struct Source {
    usable: Vec<usize>,
    picker: Picker,
}

/// One priority: its hosts source (healthy hosts, or every host in panic) and, with
/// locality weighted balancing, one source per locality and the schedule over them.
#[derive(Debug)]
struct PriorityLevel {
    panic: bool,
    all: Source,
    localities: Option<Localities>,
}

#[derive(Debug)]
struct Localities {
    sources: Vec<Source>,
    /// Over indices into `sources`, by effective weight; empty when no locality has any.
    schedule: Option<Mutex<Edf>>,
    weights: Vec<f64>,
}

#[derive(Debug)]
pub struct EndpointSet {
    pub hosts: Vec<Arc<Host>>,
    levels: Vec<PriorityLevel>,
    /// Each priority's share of the load, in percent.
    load: Vec<u32>,
    healthy_count: usize,
    settings: LbSettings,
}

impl Default for EndpointSet {
    fn default() -> Self {
        EndpointSet::new(Vec::new(), Balancer::RoundRobin, 0)
    }
}

/// Longest schedule built for weighted hosts; beyond it weights are scaled down.
const MAX_SCHEDULE: u64 = 4096;

impl Source {
    /// `members`: the priority's hosts, whose localities a hashing balancer weighs by
    /// locality when the cluster balances by locality weight (Envoy folds the weights into
    /// the ring or table rather than picking a locality first).
    fn new(
        hosts: &[Arc<Host>],
        usable: Vec<usize>,
        members: &[usize],
        lb: &LbSettings,
        slow: bool,
    ) -> Self {
        let equal = usable
            .iter()
            .all(|i| hosts[*i].weight == hosts[usable[0]].weight);
        let weighted = || {
            if !lb.locality_weighted {
                return normalize(
                    usable
                        .iter()
                        .map(|i| (*i, hosts[*i].addr, hosts[*i].weight)),
                );
            }
            let mut localities: Vec<(u32, u32)> = Vec::new();
            for i in members {
                let p = hosts[*i].placement;
                if !localities.iter().any(|(id, _)| *id == p.locality) {
                    localities.push((p.locality, p.locality_weight));
                }
            }
            let placed: Vec<super::hashing::Placed> = usable
                .iter()
                .map(|i| {
                    let h = &hosts[*i];
                    (
                        *i,
                        h.addr,
                        h.weight,
                        h.placement.locality,
                        h.placement.locality_weight,
                    )
                })
                .collect();
            super::hashing::normalize_by_locality(&placed, &localities)
        };
        let slow_start = lb.slow_start.filter(|_| slow);
        let now = Instant::now();
        let picker = match lb.balancer {
            Balancer::RoundRobin if slow_start.is_some() && usable.len() > 1 => {
                Picker::SlowRoundRobin(Mutex::new(Edf::new(&usable, |i| {
                    let h = &hosts[i];
                    h.slow_start_weight(f64::from(h.weight), slow_start.as_ref(), now)
                })))
            }
            Balancer::RoundRobin => Picker::RoundRobin {
                schedule: if equal {
                    usable.clone()
                } else {
                    smooth_weighted(&usable, hosts)
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
                edf: (!equal || (slow_start.is_some() && usable.len() > 1)).then(|| {
                    Mutex::new(Edf::new(&usable, |i| {
                        let h = &hosts[i];
                        h.slow_start_weight(
                            dynamic_weight(h, active_request_bias),
                            slow_start.as_ref(),
                            now,
                        )
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
        Source { usable, picker }
    }

    fn pick(
        &self,
        hosts: &[Arc<Host>],
        slow_start: Option<&SlowStart>,
        hash: Option<u64>,
        attempt: u32,
    ) -> Option<usize> {
        if self.usable.is_empty() {
            return None;
        }
        let usable = &self.usable;
        Some(match &self.picker {
            Picker::RoundRobin { schedule, next } => {
                let n = next.fetch_add(1, Ordering::Relaxed);
                schedule[n % schedule.len()]
            }
            Picker::SlowRoundRobin(edf) => {
                let now = Instant::now();
                edf.lock().pick_and_add(|i| {
                    let h = &hosts[i];
                    h.slow_start_weight(f64::from(h.weight), slow_start, now)
                })?
            }
            Picker::LeastRequest {
                edf: Some(edf),
                bias,
                ..
            } => {
                let now = Instant::now();
                edf.lock().pick_and_add(|i| {
                    let h = &hosts[i];
                    h.slow_start_weight(dynamic_weight(h, *bias), slow_start, now)
                })?
            }
            Picker::LeastRequest {
                choice_count,
                edf: None,
                ..
            } => self.least_of_random(hosts, *choice_count),
            Picker::Random => usable[fastrand::usize(..usable.len())],
            Picker::Ring(r) => r.pick(hash.unwrap_or_else(|| fastrand::u64(..)), attempt)?,
            Picker::Maglev(m) => m.pick(hash.unwrap_or_else(|| fastrand::u64(..)), attempt)?,
        })
    }

    /// Envoy's N choices: `choice_count` random hosts (with replacement), keeping the first
    /// of those with the fewest active requests.
    fn least_of_random(&self, hosts: &[Arc<Host>], choice_count: u32) -> usize {
        let mut best = self.usable[fastrand::usize(..self.usable.len())];
        for _ in 1..choice_count {
            let other = self.usable[fastrand::usize(..self.usable.len())];
            if hosts[other].rq_active.get() < hosts[best].rq_active.get() {
                best = other;
            }
        }
        best
    }
}

impl EndpointSet {
    pub fn new(hosts: Vec<Arc<Host>>, balancer: Balancer, panic_threshold: u32) -> Self {
        EndpointSet::with_settings(
            hosts,
            LbSettings {
                balancer,
                panic_threshold,
                slow_start: None,
                locality_weighted: false,
            },
        )
    }

    pub fn with_settings(hosts: Vec<Arc<Host>>, settings: LbSettings) -> Self {
        let now = Instant::now();
        // Envoy's balancer stamps hosts it finds healthy; slow start is on while the latest
        // stamp is within the window.
        let slow = settings.slow_start.is_some_and(|s| {
            hosts
                .iter()
                .filter(|h| h.is_healthy())
                .map(|h| *h.healthy_since.get_or_init(|| now))
                .max()
                .is_some_and(|latest| now.saturating_duration_since(latest) <= s.window)
        });
        let top = hosts
            .iter()
            .map(|h| h.placement.priority)
            .max()
            .unwrap_or(0) as usize;
        let mut by_priority: Vec<Vec<usize>> = vec![Vec::new(); top + 1];
        for (i, h) in hosts.iter().enumerate() {
            by_priority[h.placement.priority as usize].push(i);
        }
        let levels_in: Vec<Level> = by_priority
            .iter()
            .map(|members| {
                let policy = members
                    .first()
                    .map(|i| hosts[*i].placement.policy)
                    .unwrap_or_default();
                let healthy: Vec<&usize> =
                    members.iter().filter(|i| hosts[**i].is_healthy()).collect();
                Level {
                    hosts: members.len(),
                    healthy: healthy.len(),
                    total_weight: members.iter().map(|i| u64::from(hosts[*i].weight)).sum(),
                    healthy_weight: healthy.iter().map(|i| u64::from(hosts[**i].weight)).sum(),
                    overprovisioning_factor: policy.overprovisioning_factor,
                    weighted_health: policy.weighted_priority_health,
                }
            })
            .collect();
        let loads = priority::compute(&levels_in, settings.panic_threshold);
        let levels = by_priority
            .into_iter()
            .zip(&loads.panic)
            .map(|(members, &panic)| {
                let usable: Vec<usize> = if panic {
                    members.clone()
                } else {
                    members
                        .iter()
                        .copied()
                        .filter(|i| hosts[*i].is_healthy())
                        .collect()
                };
                // Hashing balancers fold locality weights into their table instead.
                let localities =
                    (settings.locality_weighted && !panic && !settings.balancer.is_hashing())
                        .then(|| Localities::new(&hosts, &members, &settings, slow));
                PriorityLevel {
                    panic,
                    all: Source::new(&hosts, usable, &members, &settings, slow),
                    localities,
                }
            })
            .collect();
        EndpointSet {
            healthy_count: hosts.iter().filter(|h| h.is_healthy()).count(),
            hosts,
            levels,
            load: loads.load,
            settings,
        }
    }

    pub fn healthy_count(&self) -> usize {
        self.healthy_count
    }

    /// Whether picks are made from every host, healthy or not (Envoy's
    /// `lb_healthy_panic`): exact with one priority; with several, whether every priority
    /// that takes load is in panic (`pick_checked` tells per pick).
    pub fn in_panic(&self) -> bool {
        let mut loaded = self
            .levels
            .iter()
            .zip(&self.load)
            .filter(|(_, l)| **l > 0)
            .peekable();
        loaded.peek().is_some() && loaded.all(|(level, _)| level.panic)
    }

    /// Each priority's share of the load, in percent.
    pub fn priority_load(&self) -> &[u32] {
        &self.load
    }

    /// The hashing balancer's table statistics, as Envoy reports them: a ring's size and
    /// least and most entries of a host, or a Maglev table's least and most. Envoy builds a
    /// table per priority into the same gauges, so the last priority with hosts wins.
    pub fn table_stats(&self) -> Option<TableStats> {
        self.levels.iter().rev().find_map(|l| match &l.all.picker {
            Picker::Ring(r) => r.stats.map(TableStats::Ring),
            Picker::Maglev(m) => m.stats.map(TableStats::Maglev),
            _ => None,
        })
    }

    /// Hosts currently ejected by outlier detection.
    pub fn ejected_count(&self) -> usize {
        self.hosts.iter().filter(|h| h.outlier.is_ejected()).count()
    }

    /// The next host, or `None` when no host is usable. `hash` is the request's hash for
    /// the hashing balancers (a random one stands in when the route gives none).
    pub fn pick(&self, hash: Option<u64>) -> Option<&Arc<Host>> {
        self.pick_checked(&[], 0, hash).map(|(h, _)| h)
    }

    /// Picks a priority as Envoy does: by the request's hash for the hashing balancers
    /// (which keep the priority across a request's retries), by a random number otherwise.
    fn choose_level(&self, hash: u64) -> &PriorityLevel {
        &self.levels[priority::choose(&self.load, hash).min(self.levels.len() - 1)]
    }

    fn pick_in(&self, level: &PriorityLevel, hash: Option<u64>, attempt: u32) -> Option<usize> {
        let slow = self.settings.slow_start.as_ref();
        if let Some(l) = &level.localities
            && let Some(schedule) = &l.schedule
        {
            let i = schedule.lock().pick_and_add(|i| l.weights[i])?;
            return l.sources[i].pick(&self.hosts, slow, hash, attempt);
        }
        level.all.pick(&self.hosts, slow, hash, attempt)
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
        self.pick_checked(tried, extra, hash).map(|(h, _)| h)
    }

    /// `pick_avoiding`, also saying whether the host came from a priority in panic (each
    /// such pick is one `lb_healthy_panic` in Envoy).
    pub fn pick_checked(
        &self,
        tried: &[SocketAddr],
        extra: u32,
        hash: Option<u64>,
    ) -> Option<(&Arc<Host>, bool)> {
        if self.levels.is_empty() {
            return None;
        }
        if self.settings.balancer.is_hashing() {
            // One hash for the priority and every attempt, so the hashing balancers step
            // from the same place.
            let hash = hash.unwrap_or_else(|| fastrand::u64(..));
            let level = self.choose_level(hash);
            let mut host = &self.hosts[self.pick_in(level, Some(hash), 0)?];
            for attempt in 1..=extra {
                if !tried.contains(&host.addr) {
                    break;
                }
                host = &self.hosts[self.pick_in(level, Some(hash), attempt)?];
            }
            return Some((host, level.panic));
        }
        let mut panic = false;
        let mut host = None;
        for attempt in 0..=extra {
            let level = self.choose_level(fastrand::u64(..));
            panic |= level.panic;
            let h = &self.hosts[self.pick_in(level, hash, attempt)?];
            host = Some(h);
            if !tried.contains(&h.addr) {
                break;
            }
        }
        host.map(|h| (h, panic))
    }
}

impl Localities {
    /// Envoy's locality schedule: each locality's `load_balancing_weight` times its
    /// availability, `min(1, overprovisioning_factor * healthy / hosts)`; localities of no
    /// effective weight are never picked.
    fn new(hosts: &[Arc<Host>], members: &[usize], lb: &LbSettings, slow: bool) -> Self {
        let mut ids: Vec<u32> = members
            .iter()
            .map(|i| hosts[*i].placement.locality)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut sources = Vec::with_capacity(ids.len());
        let mut weights = Vec::with_capacity(ids.len());
        for id in &ids {
            let in_locality: Vec<usize> = members
                .iter()
                .copied()
                .filter(|i| hosts[*i].placement.locality == *id)
                .collect();
            let healthy: Vec<usize> = in_locality
                .iter()
                .copied()
                .filter(|i| hosts[*i].is_healthy())
                .collect();
            let p = hosts[in_locality[0]].placement;
            let availability = (f64::from(p.policy.overprovisioning_factor) / 100.0
                * healthy.len() as f64
                / in_locality.len() as f64)
                .min(1.0);
            weights.push(f64::from(p.locality_weight) * availability);
            sources.push(Source::new(hosts, healthy, &in_locality, lb, slow));
        }
        let eligible: Vec<usize> = (0..ids.len()).filter(|i| weights[*i] > 0.0).collect();
        let schedule =
            (!eligible.is_empty()).then(|| Mutex::new(Edf::new(&eligible, |i| weights[i])));
        Localities {
            sources,
            schedule,
            weights,
        }
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

    fn placed(port: u16, healthy: bool, priority: u32, locality: u32, lw: u32) -> Arc<Host> {
        Arc::new(
            Host::new(SocketAddr::from(([127, 0, 0, 1], port)), None, healthy, 1).with_placement(
                Placement {
                    priority,
                    locality,
                    locality_weight: lw,
                    ..Default::default()
                },
            ),
        )
    }

    fn settings(balancer: Balancer, slow_start: Option<SlowStart>, lw: bool) -> LbSettings {
        LbSettings {
            balancer,
            panic_threshold: 50,
            slow_start,
            locality_weighted: lw,
        }
    }

    fn counts(set: &EndpointSet, n: usize) -> std::collections::BTreeMap<u16, usize> {
        let mut out = std::collections::BTreeMap::new();
        for _ in 0..n {
            *out.entry(set.pick(None).expect("host").addr.port())
                .or_default() += 1;
        }
        out
    }

    #[test]
    fn lower_priorities_serve_only_what_higher_ones_cannot() {
        let all_up = EndpointSet::new(
            vec![placed(1, true, 0, 0, 0), placed(2, true, 1, 1, 0)],
            Balancer::RoundRobin,
            50,
        );
        assert_eq!(all_up.priority_load(), [100, 0]);
        assert_eq!(counts(&all_up, 100).get(&2), None);
        // Half of P0 healthy: 70% health, the other 30% spill to P1; P0's unhealthy host
        // gets nothing.
        let set = EndpointSet::new(
            vec![
                placed(1, true, 0, 0, 0),
                placed(2, false, 0, 0, 0),
                placed(3, true, 1, 1, 0),
            ],
            Balancer::RoundRobin,
            50,
        );
        assert_eq!(set.priority_load(), [70, 30]);
        assert!(!set.in_panic());
        let c = counts(&set, 4000);
        assert_eq!(c.get(&2), None);
        // p = 0.3 over 4000 picks: the standard deviation is 29; this allows 7 of them.
        assert!((995..=1405).contains(&c[&3]), "{c:?}");
        // Every priority in panic: load by host count, every host serves.
        let set = EndpointSet::new(
            vec![
                placed(1, false, 0, 0, 0),
                placed(2, false, 1, 1, 0),
                placed(3, false, 1, 1, 0),
            ],
            Balancer::RoundRobin,
            50,
        );
        assert_eq!(set.priority_load(), [34, 66]);
        assert!(set.in_panic());
        assert_eq!(counts(&set, 600).len(), 3);
        // An ejected host counts as unhealthy.
        let ejected = placed(1, true, 0, 0, 0);
        let config = crate::model::outlier::OutlierConfig::new(
            &Default::default(),
            &weft_yaml::FieldPath::root(),
        )
        .expect("defaults");
        ejected.outlier.eject(&config, Instant::now());
        let set = EndpointSet::new(
            vec![ejected, placed(2, true, 0, 0, 0), placed(3, true, 1, 1, 0)],
            Balancer::RoundRobin,
            50,
        );
        assert_eq!(set.priority_load(), [70, 30]);
    }

    #[test]
    fn hashing_balancers_choose_the_priority_by_the_hash() {
        for balancer in [
            Balancer::RingHash {
                min_ring_size: 1024,
                max_ring_size: 8 << 20,
            },
            Balancer::Maglev { table_size: 65537 },
        ] {
            let set = EndpointSet::new(
                vec![
                    placed(1, true, 0, 0, 0),
                    placed(2, false, 0, 0, 0),
                    placed(3, true, 1, 1, 0),
                ],
                balancer,
                50,
            );
            // 70/30: hashes whose `% 100` is below 70 stay in P0, the others go to P1.
            for h in [0u64, 69, 100, 1069] {
                assert_eq!(set.pick(Some(h)).expect("host").addr.port(), 1);
            }
            for h in [70u64, 99, 170] {
                assert_eq!(set.pick(Some(h)).expect("host").addr.port(), 3);
            }
        }
    }

    fn aged(port: u16, weight: u32, age: std::time::Duration) -> Arc<Host> {
        let h = Host::new(SocketAddr::from(([127, 0, 0, 1], port)), None, true, weight);
        let _ = h.healthy_since.set(Instant::now() - age);
        Arc::new(h)
    }

    const MINUTE: std::time::Duration = std::time::Duration::from_secs(60);

    fn slow(aggression: f64) -> Option<SlowStart> {
        Some(SlowStart {
            window: MINUTE,
            aggression,
            min_weight: 0.1,
        })
    }

    #[test]
    fn slow_start_ramps_new_hosts_up_over_the_window() {
        let secs = std::time::Duration::from_secs;
        // A quarter into the window: a weight of 1/4 against the old host's 1, so a fifth
        // of the picks (the EDF schedule is exact to a pick or two).
        for balancer in [Balancer::RoundRobin, least_request(2)] {
            let set = EndpointSet::with_settings(
                vec![aged(1, 1, secs(600)), aged(2, 1, secs(15))],
                settings(balancer, slow(1.0), false),
            );
            let c = counts(&set, 1000);
            assert!((195..=205).contains(&c[&2]), "{balancer:?}: {c:?}");
        }
        // An aggression of 2 ramps faster: sqrt(1/4) = 1/2, a third of the picks.
        let set = EndpointSet::with_settings(
            vec![aged(1, 1, secs(600)), aged(2, 1, secs(15))],
            settings(Balancer::RoundRobin, slow(2.0), false),
        );
        let c = counts(&set, 900);
        assert!((295..=305).contains(&c[&2]), "{c:?}");
        // A second in: 1/60 is below the 10% floor, so a weight of 1/10.
        let set = EndpointSet::with_settings(
            vec![aged(1, 1, secs(600)), aged(2, 1, secs(1))],
            settings(Balancer::RoundRobin, slow(1.0), false),
        );
        let c = counts(&set, 1100);
        assert!((95..=105).contains(&c[&2]), "{c:?}");
        // Hosts that all arrived together ramp together: an even split.
        let set = EndpointSet::with_settings(
            vec![
                Arc::new(Host::new(
                    SocketAddr::from(([127, 0, 0, 1], 1)),
                    None,
                    true,
                    1,
                )),
                Arc::new(Host::new(
                    SocketAddr::from(([127, 0, 0, 1], 2)),
                    None,
                    true,
                    1,
                )),
            ],
            settings(Balancer::RoundRobin, slow(1.0), false),
        );
        assert!(set.hosts.iter().all(|h| h.healthy_since.get().is_some()));
        let c = counts(&set, 1000);
        assert!((495..=505).contains(&c[&2]), "{c:?}");
        // Past the window the weights are plain again.
        let set = EndpointSet::with_settings(
            vec![aged(1, 1, secs(600)), aged(2, 3, secs(61))],
            settings(Balancer::RoundRobin, slow(1.0), false),
        );
        let c = counts(&set, 800);
        assert!((595..=605).contains(&c[&2]), "{c:?}");
    }

    #[test]
    fn slow_start_stamps_only_healthy_hosts_and_survives_weight_changes() {
        let down = Arc::new(Host::new(
            SocketAddr::from(([127, 0, 0, 1], 1)),
            None,
            false,
            1,
        ));
        let _ = EndpointSet::with_settings(
            vec![down.clone()],
            settings(Balancer::RoundRobin, slow(1.0), false),
        );
        assert!(down.healthy_since.get().is_none());
        let old = aged(2, 1, std::time::Duration::from_secs(30));
        let set = EndpointSet::with_settings(
            vec![down, old.clone()],
            settings(Balancer::RoundRobin, slow(1.0), false),
        );
        let moved = carry_over(
            &set,
            vec![Host::new(
                SocketAddr::from(([127, 0, 0, 1], 2)),
                None,
                true,
                7,
            )],
        );
        assert!(!Arc::ptr_eq(&moved[0], &old));
        assert_eq!(moved[0].healthy_since.get(), old.healthy_since.get());
    }

    #[test]
    fn locality_weights_split_traffic_only_when_configured() {
        let hosts = || {
            vec![
                placed(1, true, 0, 0, 1),
                placed(2, true, 0, 1, 3),
                placed(3, true, 0, 1, 3),
            ]
        };
        let set = EndpointSet::with_settings(hosts(), settings(Balancer::RoundRobin, None, true));
        let c = counts(&set, 800);
        assert!((198..=202).contains(&c[&1]), "{c:?}");
        // Without locality_weighted_lb_config the weights mean nothing: a third each.
        let set = EndpointSet::with_settings(hosts(), settings(Balancer::RoundRobin, None, false));
        let c = counts(&set, 900);
        assert_eq!(c[&1], 300, "{c:?}");
        // Health scales a locality's weight: one of two healthy is min(1, 1.4 / 2) = 0.7
        // of its weight, against 1 for the other locality.
        let set = EndpointSet::with_settings(
            vec![
                placed(1, true, 0, 0, 1),
                placed(2, false, 0, 0, 1),
                placed(3, true, 0, 1, 1),
            ],
            settings(Balancer::RoundRobin, None, true),
        );
        let c = counts(&set, 1700);
        assert!((695..=705).contains(&c[&1]), "{c:?}");
        assert_eq!(c.get(&2), None);
        // No locality has a weight: hosts are balanced as if there were no localities.
        let set = EndpointSet::with_settings(
            vec![placed(1, true, 0, 0, 0), placed(2, true, 0, 1, 0)],
            settings(Balancer::RoundRobin, None, true),
        );
        assert_eq!(counts(&set, 100)[&1], 50);
    }
}
