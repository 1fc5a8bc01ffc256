//! Envoy's split of load between priorities: each priority's health is its healthy share
//! scaled by the overprovisioning factor (capped at 100), priorities take load in order
//! until their health is used up, a priority with too few healthy hosts goes into panic
//! (unless the priorities together are healthy enough), and when every priority is in
//! panic the load follows host counts instead. Ported from Envoy's
//! `recalculatePerPriorityState`, `recalculatePerPriorityPanic` and `choosePriority` so that
//! the same request lands on the same priority.

/// What one priority contributes to the computation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    pub hosts: usize,
    pub healthy: usize,
    /// Sums of weights, used instead of counts when `weighted_health` is set.
    pub total_weight: u64,
    pub healthy_weight: u64,
    pub overprovisioning_factor: u32,
    pub weighted_health: bool,
}

/// Each priority's share of the load (percent, summing to 100) and whether it is in panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loads {
    pub load: Vec<u32>,
    pub panic: Vec<bool>,
}

fn health(l: &Level) -> u32 {
    if l.hosts == 0 {
        return 0;
    }
    let (healthy, total) = if l.weighted_health {
        (l.healthy_weight, l.total_weight.max(1))
    } else {
        (l.healthy as u64, l.hosts as u64)
    };
    (u64::from(l.overprovisioning_factor) * healthy / total).min(100) as u32
}

/// Envoy's `isHostSetInPanic`: an empty priority counts as 0% healthy.
fn host_set_in_panic(l: &Level, threshold: u32) -> bool {
    let healthy_percent = if l.hosts == 0 {
        0.0
    } else {
        100.0 * l.healthy as f64 / l.hosts as f64
    };
    healthy_percent < f64::from(threshold.min(100))
}

pub fn compute(levels: &[Level], panic_threshold: u32) -> Loads {
    let n = levels.len().max(1);
    let mut load = vec![0u32; n];
    let mut panic = vec![false; n];
    let health: Vec<u32> = levels.iter().map(health).collect();
    let normalized = health.iter().sum::<u32>().min(100);
    // With nothing healthy there is nothing to split; panic handling below decides.
    let mut remaining = 100u32;
    let mut first_available = None;
    for (i, h) in health.iter().enumerate() {
        let Some(share) = (h * 100).checked_div(normalized) else {
            break;
        };
        if first_available.is_none() && *h > 0 {
            first_available = Some(i);
        }
        load[i] = remaining.min(share);
        remaining -= load[i];
    }
    // Rounding leftovers go to the first priority with any health.
    if let Some(first) = first_available {
        load[first] += remaining;
    }
    let threshold = panic_threshold.min(100);
    if threshold == 0 && normalized == 0 {
        // Nothing is healthy and panic is off: the load must go somewhere, and whatever
        // priority gets it has no host to give.
        load[0] = 100;
        return Loads { load, panic };
    }
    for (i, l) in levels.iter().enumerate() {
        panic[i] = normalized != 100 && host_set_in_panic(l, threshold);
    }
    if levels.is_empty() || panic.iter().all(|p| *p) {
        // Total panic: load by host count, health aside.
        let total: usize = levels.iter().map(|l| l.hosts).sum();
        load.iter_mut().for_each(|l| *l = 0);
        if total == 0 {
            load[0] = 100;
            return Loads { load, panic };
        }
        let mut remaining = 100u32;
        for (i, l) in levels.iter().enumerate() {
            load[i] = (100 * l.hosts / total) as u32;
            remaining -= load[i];
        }
        let first = levels.iter().position(|l| l.hosts > 0).unwrap_or(0);
        load[first] += remaining;
    }
    Loads { load, panic }
}

/// Envoy's `choosePriority`: `hash % 100 + 1` falls into one priority's share.
pub fn choose(load: &[u32], hash: u64) -> usize {
    let point = (hash % 100 + 1) as u32;
    let mut aggregate = 0;
    for (i, l) in load.iter().enumerate() {
        aggregate += l;
        if point <= aggregate {
            return i;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(hosts: usize, healthy: usize) -> Level {
        Level {
            hosts,
            healthy,
            total_weight: hosts as u64,
            healthy_weight: healthy as u64,
            overprovisioning_factor: 140,
            weighted_health: false,
        }
    }

    #[test]
    fn healthy_priority_zero_takes_everything() {
        let l = compute(&[level(4, 4), level(4, 4)], 50);
        assert_eq!(l.load, [100, 0]);
        assert_eq!(l.panic, [false, false]);
        // 80% healthy is still 100% with the overprovisioning factor of 1.4.
        assert_eq!(compute(&[level(5, 4), level(4, 4)], 50).load, [100, 0]);
    }

    #[test]
    fn load_spills_by_health() {
        // Half healthy: 70% health, the remaining 30% to P1.
        assert_eq!(compute(&[level(2, 1), level(2, 2)], 50).load, [70, 30]);
        // Envoy's documented example: 10%/20%/10% health scale to fill 100 (with no
        // degraded hosts here, 25/50/25).
        let l = compute(
            &[
                Level {
                    overprovisioning_factor: 100,
                    ..level(10, 1)
                },
                Level {
                    overprovisioning_factor: 100,
                    ..level(10, 2)
                },
                Level {
                    overprovisioning_factor: 100,
                    ..level(10, 1)
                },
            ],
            0,
        );
        assert_eq!(l.load, [25, 50, 25]);
        // One of five healthy (28) and one of two (70): 28/98 and 70/98 round down to 28
        // and 71, and the leftover point goes to P0; P0 alone is in panic.
        let l = compute(&[level(5, 1), level(2, 1)], 50);
        assert_eq!(l.load, [29, 71]);
        assert_eq!(l.panic, [true, false]);
    }

    #[test]
    fn total_panic_splits_by_host_count() {
        let l = compute(&[level(2, 0), level(6, 1)], 50);
        assert_eq!(l.panic, [true, true]);
        assert_eq!(l.load, [25, 75]);
        // Nothing healthy, panic off: P0 gets the load and nothing is in panic.
        let l = compute(&[level(2, 0), level(2, 0)], 0);
        assert_eq!(l.load, [100, 0]);
        assert_eq!(l.panic, [false, false]);
        // An empty P0 in front of a healthy P1 is no panic at all.
        let l = compute(&[level(0, 0), level(3, 3)], 50);
        assert_eq!(l.load, [0, 100]);
        assert_eq!(l.panic, [false, false]);
    }

    #[test]
    fn weighted_priority_health_counts_weights() {
        let weighted = Level {
            total_weight: 10,
            healthy_weight: 9,
            weighted_health: true,
            overprovisioning_factor: 100,
            ..level(2, 1)
        };
        assert_eq!(compute(&[weighted, level(2, 2)], 50).load, [90, 10]);
    }

    #[test]
    fn choose_follows_the_cumulative_load() {
        let load = [70, 30];
        assert_eq!(choose(&load, 0), 0);
        assert_eq!(choose(&load, 69), 0);
        assert_eq!(choose(&load, 70), 1);
        assert_eq!(choose(&load, 99), 1);
        assert_eq!(choose(&load, 169), 0);
    }
}
