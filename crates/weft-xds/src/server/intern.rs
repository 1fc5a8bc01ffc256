//! Hash-consing of what many streams hold alike: a thousand sidecars of one namespace
//! subscribe to the same two thousand EDS names, and one shared copy of that set costs a
//! thousand times less than a copy per stream and per status entry.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

/// Hands out one `Arc` per distinct value among those still alive.
#[derive(Debug)]
pub(crate) struct Interner<T> {
    hasher: RandomState,
    inner: Mutex<Table<T>>,
}

#[derive(Debug)]
struct Table<T> {
    by_hash: HashMap<u64, Vec<Weak<T>>>,
    /// Entries (live or dead) in `by_hash`; a sweep runs when it doubles since the last one.
    entries: usize,
    swept_at: usize,
}

impl<T: Hash + Eq> Default for Interner<T> {
    fn default() -> Self {
        Self {
            hasher: RandomState::new(),
            inner: Mutex::new(Table {
                by_hash: HashMap::new(),
                entries: 0,
                swept_at: 0,
            }),
        }
    }
}

impl<T: Hash + Eq> Interner<T> {
    /// The shared copy of `value`: an existing one when an equal value is alive.
    pub fn intern(&self, value: T) -> Arc<T> {
        let hash = self.hasher.hash_one(&value);
        let mut table = self.inner.lock();
        let bucket = table.by_hash.entry(hash).or_default();
        let mut found = None;
        bucket.retain(|weak| match weak.upgrade() {
            Some(live) => {
                if found.is_none() && *live == value {
                    found = Some(live);
                }
                true
            }
            None => false,
        });
        if let Some(live) = found {
            return live;
        }
        let arc = Arc::new(value);
        bucket.push(Arc::downgrade(&arc));
        table.entries += 1;
        if table.entries >= 2 * table.swept_at.max(64) {
            table.by_hash.retain(|_, bucket| {
                bucket.retain(|w| w.strong_count() > 0);
                !bucket.is_empty()
            });
            table.entries = table.by_hash.values().map(Vec::len).sum();
            table.swept_at = table.entries;
        }
        arc
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_one_copy_while_alive() {
        let i = Interner::default();
        let a = i.intern(vec!["x".to_string(), "y".to_string()]);
        let b = i.intern(vec!["x".to_string(), "y".to_string()]);
        let c = i.intern(vec!["z".to_string()]);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        drop((a, b));
        let d = i.intern(vec!["x".to_string(), "y".to_string()]);
        assert_eq!(*d, vec!["x".to_string(), "y".to_string()]);
    }

    #[test]
    fn dead_entries_are_swept() {
        let i = Interner::default();
        for n in 0..1000 {
            drop(i.intern(n));
        }
        let keep: Vec<Arc<i32>> = (0..10).map(|n| i.intern(n)).collect();
        assert!(i.len() < 200, "{} entries for 10 live values", i.len());
        assert_eq!(keep.len(), 10);
    }
}
