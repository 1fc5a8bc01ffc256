//! The consistent-hashing tables behind RING_HASH and MAGLEV, built exactly as Envoy builds
//! them (same keys, same XXH64, same fill order), so that a request's hash picks the same
//! host on weft-proxy as on Envoy for the same endpoints. Both map a 64-bit hash to an
//! index into the host list they were built from.

use super::xxhash::xxh64;
use std::net::SocketAddr;

/// One host as the tables see it: the key Envoy hashes (its address, `ip:port`) and its
/// share of the total weight.
pub struct Weighted {
    pub index: usize,
    pub addr: SocketAddr,
    pub weight: f64,
}

/// `weight / sum` for each of `hosts` (index, address, weight).
pub fn normalize(hosts: impl Iterator<Item = (usize, SocketAddr, u32)>) -> Vec<Weighted> {
    let hosts: Vec<_> = hosts.collect();
    let sum: u64 = hosts.iter().map(|(_, _, w)| u64::from(*w)).sum();
    hosts
        .into_iter()
        .map(|(index, addr, w)| Weighted {
            index,
            addr,
            weight: f64::from(w) / sum as f64,
        })
        .collect()
}

/// One host for [`normalize_by_locality`]: index, address, weight, locality id and that
/// locality's weight.
pub type Placed = (usize, SocketAddr, u32, u32, u32);

/// Envoy's `normalizeLocalityWeights`, for a priority balanced by locality weight: a host's
/// share is its weight within its locality's usable hosts times its locality's share of
/// the weights of all the priority's localities (`localities`: id and weight of each, those
/// without a usable host included); hosts of a locality of weight 0 are left out.
pub fn normalize_by_locality(hosts: &[Placed], localities: &[(u32, u32)]) -> Vec<Weighted> {
    let total: u64 = localities.iter().map(|(_, w)| u64::from(*w)).sum();
    if total == 0 {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(hosts.len());
    for (id, locality_weight) in localities {
        if *locality_weight == 0 {
            continue;
        }
        let members: Vec<&Placed> = hosts.iter().filter(|h| h.3 == *id).collect();
        let sum: u64 = members.iter().map(|h| u64::from(h.2)).sum();
        let share = f64::from(*locality_weight) / total as f64;
        for (index, addr, weight, _, _) in members {
            out.push(Weighted {
                index: *index,
                addr: *addr,
                weight: f64::from(*weight) * share / sum as f64,
            });
        }
    }
    out
}

/// Envoy's ketama ring: sorted (hash, host) entries.
#[derive(Debug)]
pub struct Ring {
    entries: Vec<(u64, usize)>,
    /// What Envoy reports (`ring_hash_lb.size`, `min_hashes_per_host`,
    /// `max_hashes_per_host`); `None` for an empty ring, whose build Envoy skips.
    pub stats: Option<[u64; 3]>,
}

impl Ring {
    pub fn new(hosts: &[Weighted], min_size: u64, max_size: u64) -> Self {
        let Some(min_weight) = hosts.iter().map(|h| h.weight).reduce(f64::min) else {
            return Ring {
                entries: Vec::new(),
                stats: None,
            };
        };
        // Enough entries that the lightest host gets a whole number of them, within the
        // maximum; heavier hosts may get fractional shares, which the running sums absorb.
        let scale = ((min_weight * min_size as f64).ceil() / min_weight).min(max_size as f64);
        let ring_size = scale.ceil() as u64;
        let mut entries = Vec::with_capacity(ring_size as usize);
        let mut current = 0.0;
        let mut target = 0.0;
        let (mut min_per_host, mut max_per_host) = (ring_size, 0);
        for h in hosts {
            target += scale * h.weight;
            let mut i: u64 = 0;
            while current < target {
                let key = format!("{}_{i}", h.addr);
                entries.push((xxh64(key.as_bytes(), 0), h.index));
                i += 1;
                current += 1.0;
            }
            min_per_host = min_per_host.min(i);
            max_per_host = max_per_host.max(i);
        }
        entries.sort_by_key(|e| e.0);
        Ring {
            entries,
            stats: Some([ring_size, min_per_host, max_per_host]),
        }
    }

    /// Entries on the ring (Envoy's `ring_hash_lb.size`).
    pub fn size(&self) -> usize {
        self.entries.len()
    }

    /// The host for `hash`: the first entry at or after it, wrapping. Ported from Envoy's
    /// port of ketama's binary search, quirks included, so ties resolve the same way; a
    /// retry (`attempt` > 0) moves that many entries on.
    pub fn pick(&self, hash: u64, attempt: u32) -> Option<usize> {
        let len = self.entries.len() as i64;
        if len == 0 {
            return None;
        }
        let (mut low, mut high) = (0i64, len);
        let mut mid;
        loop {
            mid = (low + high) / 2;
            if mid == len {
                mid = 0;
                break;
            }
            let midval = self.entries[mid as usize].0;
            let before = if mid == 0 {
                0
            } else {
                self.entries[mid as usize - 1].0
            };
            if hash <= midval && hash > before {
                break;
            }
            if midval < hash {
                low = mid + 1;
            } else {
                high = mid - 1;
            }
            if low > high {
                mid = 0;
                break;
            }
        }
        if attempt > 0 {
            mid = (mid + i64::from(attempt)) % len;
        }
        Some(self.entries[mid as usize].1)
    }
}

/// Maglev's lookup table (section 3.4 of the paper, with Envoy's weighting).
#[derive(Debug)]
pub struct Maglev {
    table: Vec<u32>,
    /// Envoy's `maglev_lb.min_entries_per_host` and `max_entries_per_host`; `None` for an
    /// empty table, whose build Envoy skips.
    pub stats: Option<[u64; 2]>,
}

impl Maglev {
    pub fn new(hosts: &[Weighted], table_size: u64) -> Self {
        if hosts.is_empty() {
            return Maglev {
                table: Vec::new(),
                stats: None,
            };
        }
        struct Entry {
            index: usize,
            offset: u64,
            skip: u64,
            weight: f64,
            target: f64,
            next: u64,
            count: u64,
        }
        // The fill order must not depend on the order the endpoints came in.
        let mut keyed: Vec<(String, &Weighted)> =
            hosts.iter().map(|h| (h.addr.to_string(), h)).collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.index.cmp(&b.1.index)));
        let mut entries: Vec<Entry> = keyed
            .iter()
            .map(|(key, h)| Entry {
                index: h.index,
                offset: xxh64(key.as_bytes(), 0) % table_size,
                skip: xxh64(key.as_bytes(), 1) % (table_size - 1) + 1,
                weight: h.weight,
                target: 0.0,
                next: 0,
                count: 0,
            })
            .collect();
        let max_weight = hosts.iter().map(|h| h.weight).fold(0.0, f64::max);
        const EMPTY: u32 = u32::MAX;
        let size = table_size as usize;
        let mut table = vec![EMPTY; size];
        let mut filled = 0usize;
        let mut iteration: u32 = 1;
        while filled < size {
            for e in entries.iter_mut() {
                if filled >= size {
                    break;
                }
                // A host of the largest weight takes a slot every round, one of a third of
                // it every third round.
                if f64::from(iteration) * e.weight < e.target {
                    continue;
                }
                e.target += max_weight;
                let mut c = (e.offset + e.skip * e.next) % table_size;
                while table[c as usize] != EMPTY {
                    e.next += 1;
                    c = (e.offset + e.skip * e.next) % table_size;
                }
                table[c as usize] = e.index as u32;
                e.next += 1;
                e.count += 1;
                filled += 1;
            }
            iteration += 1;
        }
        let min = entries.iter().map(|e| e.count).fold(table_size, u64::min);
        let max = entries.iter().map(|e| e.count).fold(0, u64::max);
        Maglev {
            table,
            stats: Some([min, max]),
        }
    }

    /// The host for `hash`; a retry flips the hash by `-attempt` for a distant slot.
    pub fn pick(&self, mut hash: u64, attempt: u32) -> Option<usize> {
        if self.table.is_empty() {
            return None;
        }
        if attempt > 0 {
            hash ^= u64::MAX - u64::from(attempt) + 1;
        }
        Some(self.table[(hash % self.table.len() as u64) as usize] as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(n: u16, weights: &[u32]) -> Vec<Weighted> {
        normalize((0..n).map(|i| {
            (
                usize::from(i),
                SocketAddr::from(([127, 0, 0, 1], 9000 + i)),
                weights.get(usize::from(i)).copied().unwrap_or(1),
            )
        }))
    }

    fn shares(pick: impl Fn(u64) -> usize, n: usize, samples: u64) -> Vec<u64> {
        let mut out = vec![0; n];
        for k in 0..samples {
            out[pick(xxh64(&k.to_le_bytes(), 0))] += 1;
        }
        out
    }

    #[test]
    fn ring_is_sized_like_envoys_and_spreads_keys() {
        let ring = Ring::new(&hosts(3, &[]), 1024, 8 * 1024 * 1024);
        // ceil(1024 / 3) entries for each of three hosts.
        assert_eq!(ring.size(), 1026);
        let s = shares(|h| ring.pick(h, 0).expect("host"), 3, 30_000);
        assert!(s.iter().all(|c| (8_000..12_000).contains(c)), "{s:?}");
        let capped = Ring::new(&hosts(3, &[]), 1024, 6);
        assert_eq!(capped.size(), 6);
    }

    #[test]
    fn ring_lookup_takes_the_next_entry_and_wraps() {
        let ring = Ring::new(&hosts(2, &[]), 4, 4);
        let e = &ring.entries;
        assert_eq!(ring.pick(e[1].0, 0), Some(e[1].1));
        assert_eq!(ring.pick(e[1].0 - 1, 0), Some(e[1].1));
        assert_eq!(ring.pick(e[1].0 + 1, 0), Some(e[2].1));
        assert_eq!(ring.pick(u64::MAX, 0), Some(e[0].1));
        assert_eq!(ring.pick(0, 0), Some(e[0].1));
        assert_eq!(ring.pick(e[1].0, 1), Some(e[2].1));
    }

    #[test]
    fn maglev_fills_the_table_by_weight() {
        let m = Maglev::new(&hosts(3, &[1, 1, 2]), 65537);
        assert!(m.table.iter().all(|i| *i < 3));
        let mut counts = [0usize; 3];
        for i in &m.table {
            counts[*i as usize] += 1;
        }
        // Weights 1:1:2 of 65537 slots.
        assert!(
            (counts[2] as f64 / 65537.0 - 0.5).abs() < 0.01,
            "{counts:?}"
        );
        assert!(
            (counts[0] as f64 / 65537.0 - 0.25).abs() < 0.01,
            "{counts:?}"
        );
    }

    #[test]
    fn maglev_does_not_depend_on_endpoint_order() {
        let a = hosts(4, &[]);
        let mut b = hosts(4, &[]);
        b.reverse();
        let (ma, mb) = (Maglev::new(&a, 251), Maglev::new(&b, 251));
        assert_eq!(ma.table, mb.table);
    }

    #[test]
    fn retries_move_to_other_slots() {
        let m = Maglev::new(&hosts(5, &[]), 65537);
        let moved = (0..1000u64)
            .filter(|k| {
                let h = xxh64(&k.to_le_bytes(), 0);
                m.pick(h, 0) != m.pick(h, 1)
            })
            .count();
        // Most land elsewhere (a random slot would move four in five).
        assert!(moved > 700, "{moved}");
    }
}
