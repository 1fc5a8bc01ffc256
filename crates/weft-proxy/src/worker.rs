//! Worker identity. The proxy runs one single-threaded runtime per worker (Envoy's
//! `--concurrency`), each with its own listener sockets and upstream pools; code that keeps
//! per-worker state asks which worker it runs on.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNT: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    static CURRENT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Sets the number of workers; called once at start, before any cluster exists.
pub fn set_count(n: usize) {
    COUNT.store(n.max(1), Ordering::Relaxed);
}

pub fn count() -> usize {
    COUNT.load(Ordering::Relaxed)
}

/// Marks this thread as worker `i`.
pub fn enter(i: usize) {
    CURRENT.with(|c| c.set(i));
}

/// This thread's worker index; threads that are not workers share the slot after the last.
pub fn current() -> usize {
    CURRENT.with(|c| {
        let v = c.get();
        if v == usize::MAX { count() } else { v }
    })
}
