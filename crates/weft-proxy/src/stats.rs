//! Envoy-style statistics: named counters and gauges (`cluster.backend.upstream_rq_total`)
//! that the hot path bumps with one relaxed atomic add, and that `/stats` and
//! `/stats/prometheus` read. Scopes are created at configuration time, never per request.

use parking_lot::Mutex;
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    #[inline]
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// A reading of one statistic.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub kind: Kind,
    pub value: i64,
}

/// Something that lists its statistics under a prefix.
pub trait Scope: Send + Sync {
    fn visit(&self, prefix: &str, out: &mut Vec<Sample>);
}

type Entry = (Arc<dyn Scope>, Arc<dyn Any + Send + Sync>);

/// Scopes kept inside another (`cluster.NAME.` + `circuit_breakers.`,
/// `outlier_detection.`, `ring_hash_lb.` or `maglev_lb.`; `http.PREFIX.` + `fault.`): their
/// statistics carry the outer scope's name.
const NESTED: &[&str] = &[
    "circuit_breakers.",
    "outlier_detection.",
    "ring_hash_lb.",
    "maglev_lb.",
    "fault.",
];

/// Every live scope, by prefix (`cluster.backend.`). A scope replaced by a newer
/// configuration keeps its counters: the registry hands out the existing one.
#[derive(Default)]
pub struct Registry {
    scopes: Mutex<BTreeMap<String, Entry>>,
}

impl Registry {
    /// The scope under `prefix`, created by `make` the first time (or when the prefix was
    /// used by a scope of another type).
    pub fn scope<S: Scope + 'static>(&self, prefix: &str, make: impl FnOnce() -> S) -> Arc<S> {
        let mut scopes = self.scopes.lock();
        if let Some((_, any)) = scopes.get(prefix)
            && let Ok(s) = any.clone().downcast::<S>()
        {
            return s;
        }
        let s = Arc::new(make());
        scopes.insert(prefix.to_string(), (s.clone(), s.clone()));
        s
    }

    /// (family, name) of every scope: `cluster.backend.` → (`cluster.`, `backend`). A scope
    /// nested in another (`cluster.backend.circuit_breakers.`) names no scope of its own:
    /// its statistics belong to the outer one.
    pub fn scope_names(&self) -> Vec<(String, String)> {
        let scopes = self.scopes.lock();
        scopes
            .keys()
            .filter(|p| {
                !NESTED.iter().any(|sub| {
                    p.strip_suffix(sub)
                        .is_some_and(|outer| scopes.contains_key(outer))
                })
            })
            .filter_map(|p| {
                let (family, rest) = p.split_once('.')?;
                Some((format!("{family}."), rest.strip_suffix('.')?.to_string()))
            })
            .collect()
    }

    pub fn samples(&self) -> Vec<Sample> {
        let mut out = Vec::new();
        for (prefix, (s, _)) in self.scopes.lock().iter() {
            s.visit(prefix, &mut out);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

/// Declares a stats struct whose fields are counters and gauges named after themselves.
#[macro_export]
macro_rules! stats_struct {
    ($(#[$m:meta])* $name:ident { counters: [$($c:ident),* $(,)?], gauges: [$($g:ident),* $(,)?] $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Default)]
        pub struct $name {
            $(pub $c: $crate::stats::Counter,)*
            $(pub $g: $crate::stats::Gauge,)*
        }

        impl $crate::stats::Scope for $name {
            fn visit(&self, prefix: &str, out: &mut Vec<$crate::stats::Sample>) {
                $(out.push($crate::stats::Sample {
                    name: format!("{prefix}{}", stringify!($c)),
                    kind: $crate::stats::Kind::Counter,
                    value: self.$c.get() as i64,
                });)*
                $(out.push($crate::stats::Sample {
                    name: format!("{prefix}{}", stringify!($g)),
                    kind: $crate::stats::Kind::Gauge,
                    value: self.$g.get(),
                });)*
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Empty;
    impl Scope for Empty {
        fn visit(&self, _: &str, _: &mut Vec<Sample>) {}
    }

    #[test]
    fn nested_scopes_name_no_scope_of_their_own() {
        let r = Registry::default();
        r.scope("cluster.c.", || Empty);
        r.scope("cluster.c.circuit_breakers.", || Empty);
        r.scope("cluster.d.fault.", || Empty);
        r.scope("http.ingress.", || Empty);
        r.scope("http.ingress.fault.", || Empty);
        assert_eq!(
            r.scope_names(),
            [
                ("cluster.".to_string(), "c".to_string()),
                // No `cluster.d.` scope: this one stands on its own.
                ("cluster.".to_string(), "d.fault".to_string()),
                ("http.".to_string(), "ingress".to_string()),
            ]
        );
    }
}
