//! A cluster's circuit breakers, as Envoy's resource manager keeps them: per routing
//! priority, counts of open connections, pending requests (waiting for a connection),
//! active requests and active retries, each with its limit. Checks are "fuzzy" like
//! Envoy's — a load and a compare, not one atomic step — and every count is released by a
//! guard, so no path can leak a slot. Statistics (`circuit_breakers.default.*_open`, and
//! `remaining_*` with `track_remaining`) are computed from the counts when read.

use crate::model::cluster::{CircuitBreakers, Thresholds};
use crate::stats::{Kind, Sample, Scope};
use arc_swap::ArcSwapOption;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug)]
pub struct Resource {
    current: AtomicU64,
    max: u64,
}

impl Resource {
    fn new(max: u64) -> Self {
        Resource {
            current: AtomicU64::new(0),
            max,
        }
    }

    pub fn can_create(&self) -> bool {
        self.current.load(Ordering::Relaxed) < self.max
    }

    pub fn current(&self) -> u64 {
        self.current.load(Ordering::Relaxed)
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn inc(&self) {
        self.current.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dec(&self) {
        self.current.fetch_sub(1, Ordering::Relaxed);
    }

    fn remaining(&self) -> u64 {
        self.max.saturating_sub(self.current())
    }
}

/// One priority's counts.
#[derive(Debug)]
pub struct Limits {
    pub connections: Resource,
    pub pending: Resource,
    pub requests: Resource,
    pub retries: Resource,
    track_remaining: bool,
}

impl Limits {
    fn new(t: &Thresholds) -> Self {
        Limits {
            connections: Resource::new(t.max_connections),
            pending: Resource::new(t.max_pending_requests),
            requests: Resource::new(t.max_requests),
            retries: Resource::new(t.max_retries),
            track_remaining: t.track_remaining,
        }
    }
}

/// A cluster's counts for both priorities. Requests use DEFAULT (route priorities are not
/// supported), so HIGH's counts stay at zero.
#[derive(Debug)]
pub struct Resources {
    pub default: Limits,
    pub high: Limits,
}

impl Resources {
    pub fn new(cb: &CircuitBreakers) -> Self {
        Resources {
            default: Limits::new(&cb.default),
            high: Limits::new(&cb.high),
        }
    }
}

/// Which count a [`Held`] slot is in.
#[derive(Debug, Clone, Copy)]
pub enum Count {
    Connection,
    Pending,
    Request,
    Retry,
}

/// A slot in one of a cluster's DEFAULT counts, given back when dropped.
#[derive(Debug)]
pub struct Held {
    resources: Arc<Resources>,
    kind: Count,
}

impl Held {
    /// Counts one more in `kind` (whether or not the limit allows it: callers check
    /// [`Resource::can_create`] first where Envoy does).
    pub fn take(resources: &Arc<Resources>, kind: Count) -> Self {
        resource(resources, kind).inc();
        Held {
            resources: resources.clone(),
            kind,
        }
    }
}

fn resource(r: &Resources, kind: Count) -> &Resource {
    match kind {
        Count::Connection => &r.default.connections,
        Count::Pending => &r.default.pending,
        Count::Request => &r.default.requests,
        Count::Retry => &r.default.retries,
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        resource(&self.resources, self.kind).dec();
    }
}

/// `cluster.<name>.circuit_breakers.*`: read from whichever configuration of the cluster is
/// current (the registry keeps this scope across cluster updates).
#[derive(Default)]
pub struct CircuitBreakerStats {
    current: ArcSwapOption<Resources>,
}

impl CircuitBreakerStats {
    pub fn attach(&self, resources: &Arc<Resources>) {
        self.current.store(Some(resources.clone()));
    }
}

impl Scope for CircuitBreakerStats {
    fn visit(&self, prefix: &str, out: &mut Vec<Sample>) {
        let Some(r) = self.current.load_full() else {
            return;
        };
        // Envoy's admin lists the HIGH priority's gauges only once something uses them, and
        // nothing does here (routes always use DEFAULT).
        {
            let (priority, l) = ("default", &r.default);
            let mut gauge = |name: &str, value: u64| {
                out.push(Sample {
                    name: format!("{prefix}{priority}.{name}"),
                    kind: Kind::Gauge,
                    value: i64::try_from(value).unwrap_or(i64::MAX),
                });
            };
            let open = |r: &Resource| u64::from(!r.can_create());
            gauge("cx_open", open(&l.connections));
            // Connection pools are not limited (max_connection_pools is not supported).
            gauge("cx_pool_open", 0);
            gauge("rq_open", open(&l.requests));
            gauge("rq_pending_open", open(&l.pending));
            gauge("rq_retry_open", open(&l.retries));
            if l.track_remaining {
                gauge("remaining_cx", l.connections.remaining());
                gauge("remaining_pending", l.pending.remaining());
                gauge("remaining_retries", l.retries.remaining());
                gauge("remaining_rq", l.requests.remaining());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_given_back_and_statistics_follow_the_counts() {
        let cb = CircuitBreakers {
            default: Thresholds {
                max_requests: 1,
                track_remaining: true,
                ..Thresholds::default()
            },
            ..CircuitBreakers::default()
        };
        let r = Arc::new(Resources::new(&cb));
        let stats = CircuitBreakerStats::default();
        stats.attach(&r);
        let read = |name: &str| {
            let mut out = Vec::new();
            stats.visit("cluster.c.circuit_breakers.", &mut out);
            out.into_iter()
                .find(|s| s.name == format!("cluster.c.circuit_breakers.{name}"))
                .map(|s| s.value)
        };
        assert!(r.default.requests.can_create());
        let held = Held::take(&r, Count::Request);
        assert!(!r.default.requests.can_create());
        assert_eq!(read("default.rq_open"), Some(1));
        assert_eq!(read("default.remaining_rq"), Some(0));
        assert_eq!(read("default.remaining_retries"), Some(3));
        assert_eq!(read("high.rq_open"), None, "HIGH is never used");
        drop(held);
        assert!(r.default.requests.can_create());
        assert_eq!(read("default.rq_open"), Some(0));
    }
}
