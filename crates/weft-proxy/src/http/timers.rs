//! A stream's timers, as Envoy runs them: the route timeout (from the request's start until
//! the response is complete), the request timeout (until the request has been received),
//! and the stream idle timeout (no bytes either way). While waiting for response headers
//! they decide which local reply to send; once the response streams, an expiry resets it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Activity on the request body, written by the body as it is forwarded.
pub struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    done: AtomicBool,
}

impl Activity {
    pub fn new(start: Instant, done: bool) -> Self {
        Activity {
            start,
            last_ms: AtomicU64::new(0),
            done: AtomicBool::new(done),
        }
    }

    pub fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    pub fn finish(&self) {
        self.touch();
        self.done.store(true, Ordering::Relaxed);
    }

    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Relaxed)
    }

    pub fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// Which timer fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    Route,
    Request,
    Idle,
}

#[derive(Clone, Copy)]
pub struct Deadlines {
    pub route: Option<Instant>,
    pub request: Option<Instant>,
    pub idle: Option<Duration>,
}

impl Deadlines {
    /// The next instant something could expire, given the request body's activity.
    pub fn next(&self, activity: &Activity) -> Option<Instant> {
        let request = if activity.is_done() { None } else { self.request };
        let idle = self.idle.map(|i| activity.last() + i);
        [self.route, request, idle].into_iter().flatten().min()
    }

    /// What has expired by `now`, most decisive first.
    pub fn expired(&self, activity: &Activity, now: Instant) -> Option<Expired> {
        if self.route.is_some_and(|d| d <= now) {
            return Some(Expired::Route);
        }
        if !activity.is_done() && self.request.is_some_and(|d| d <= now) {
            return Some(Expired::Request);
        }
        if self.idle.is_some_and(|i| activity.last() + i <= now) {
            return Some(Expired::Idle);
        }
        None
    }
}

/// The timers that still apply while a response body streams: the route deadline and the
/// idle timeout, which every frame pushes back.
pub struct BodyTimer {
    sleep: std::pin::Pin<Box<Sleep>>,
    deadline: Option<Instant>,
    idle: Option<Duration>,
}

impl BodyTimer {
    pub fn new(deadline: Option<Instant>, idle: Option<Duration>) -> Option<Self> {
        let first = Self::wake(deadline, idle)?;
        Some(BodyTimer {
            sleep: Box::pin(tokio::time::sleep_until(first)),
            deadline,
            idle,
        })
    }

    fn wake(deadline: Option<Instant>, idle: Option<Duration>) -> Option<Instant> {
        let idle_at = idle.map(|i| Instant::now() + i);
        [deadline, idle_at].into_iter().flatten().min()
    }

    /// A frame went through: the idle timer starts over.
    pub fn activity(&mut self) {
        if self.idle.is_some()
            && let Some(w) = Self::wake(self.deadline, self.idle)
        {
            self.sleep.as_mut().reset(w);
        }
    }

    pub fn poll_expired(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        self.sleep.as_mut().poll(cx).is_ready()
    }
}

use std::future::Future;
