//! A stream's timers, as Envoy runs them: the route timeout (from the request's start until
//! the response is complete), the request timeout (until the request has been received),
//! and the stream idle timeout (no bytes either way). While waiting for response headers
//! they decide which local reply to send; once the response streams, an expiry resets it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Context;
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
    /// The retry policy's `per_try_timeout` for the current try.
    PerTry,
    /// The stream's maximum duration (`max_stream_duration`, or a client's grpc-timeout).
    Stream,
    Request,
    Idle,
}

#[derive(Clone, Copy)]
pub struct Deadlines {
    pub route: Option<Instant>,
    /// The current try's deadline (`per_try_timeout`).
    pub per_try: Option<Instant>,
    pub stream: Option<Instant>,
    pub request: Option<Instant>,
    pub idle: Option<Duration>,
}

impl Deadlines {
    /// The next instant something could expire, given the request body's activity.
    pub fn next(&self, activity: &Activity) -> Option<Instant> {
        let request = if activity.is_done() {
            None
        } else {
            self.request
        };
        let idle = self.idle.map(|i| activity.last() + i);
        [self.route, self.per_try, self.stream, request, idle]
            .into_iter()
            .flatten()
            .min()
    }

    /// What has expired by `now`, most decisive first.
    pub fn expired(&self, activity: &Activity, now: Instant) -> Option<Expired> {
        if self.stream.is_some_and(|d| d <= now) {
            return Some(Expired::Stream);
        }
        if self.route.is_some_and(|d| d <= now) {
            return Some(Expired::Route);
        }
        if self.per_try.is_some_and(|d| d <= now) {
            return Some(Expired::PerTry);
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
/// idle timeout, which every frame pushes back. The timer is only armed the first time the
/// body has to wait, so bodies that arrive whole cost no timer at all.
pub struct BodyTimer {
    sleep: Option<Pin<Box<Sleep>>>,
    deadline: Option<Instant>,
    idle: Option<Duration>,
}

impl BodyTimer {
    pub fn new(deadline: Option<Instant>, idle: Option<Duration>) -> Option<Self> {
        (deadline.is_some() || idle.is_some()).then_some(BodyTimer {
            sleep: None,
            deadline,
            idle,
        })
    }

    fn wake(&self) -> Option<Instant> {
        let idle_at = self.idle.map(|i| Instant::now() + i);
        [self.deadline, idle_at].into_iter().flatten().min()
    }

    /// A frame went through: the idle timer starts over.
    pub fn activity(&mut self) {
        if self.idle.is_some()
            && let Some(at) = self.wake()
            && let Some(sleep) = &mut self.sleep
        {
            sleep.as_mut().reset(at);
        }
    }

    /// Called when the body has to wait: arms the timer and says whether it has fired.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        if self.sleep.is_none() {
            match self.wake() {
                Some(at) => self.sleep = Some(Box::pin(tokio::time::sleep_until(at))),
                None => return false,
            }
        }
        self.sleep
            .as_mut()
            .is_some_and(|s| s.as_mut().poll(cx).is_ready())
    }
}
