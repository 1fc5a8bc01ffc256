//! The one body type the proxy moves in both directions: nothing, a buffer the proxy made
//! (local replies), a peer's body streamed through frame by frame, or — on routes that
//! retry — a request body streamed to the current try while a copy is kept, up to the
//! buffer limit, for the next. An enum rather than a boxed trait object, so forwarding a
//! body costs no allocation. A [`StreamGuard`] rides along on responses so the connection
//! knows when the stream is really over.

use super::ConnCtx;
use super::timers::{Activity, BodyTimer};
use crate::upstream::pool::{ActiveRequest, Lease, Pool};
use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use parking_lot::Mutex;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub enum Body {
    Empty,
    Full(Option<Bytes>),
    Incoming(Incoming),
    /// A downstream request body whose progress feeds the stream's timers.
    Tracked(Incoming, Arc<Activity>),
    /// One try's view of a request body that may be sent again.
    Replay(ReplayBody),
}

impl Body {
    pub fn full(b: impl Into<Bytes>) -> Self {
        let b = b.into();
        if b.is_empty() {
            Body::Empty
        } else {
            Body::Full(Some(b))
        }
    }
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Incoming(i) => Pin::new(i).poll_frame(cx).map_err(Into::into),
            Body::Tracked(i, activity) => {
                let r = Pin::new(&mut *i).poll_frame(cx).map_err(Into::into);
                match &r {
                    // hyper stops polling a body that says it has ended.
                    Poll::Ready(Some(Ok(_))) if i.is_end_stream() => activity.finish(),
                    Poll::Ready(Some(Ok(_))) => activity.touch(),
                    Poll::Ready(_) => activity.finish(),
                    Poll::Pending => {}
                }
                r
            }
            Body::Replay(r) => r.poll(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(b) => b.is_none(),
            Body::Incoming(i) | Body::Tracked(i, _) => i.is_end_stream(),
            Body::Replay(r) => r.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Incoming(i) | Body::Tracked(i, _) => i.size_hint(),
            Body::Replay(r) => r.shared.hint,
        }
    }
}

/// A downstream request body shared by the tries of one request: the current try reads the
/// downstream, and what it reads is kept (up to `limit` bytes, Envoy's retry buffer limit)
/// so that the next try can send it again before reading on. Past the limit nothing more is
/// kept and the request may not be retried.
pub struct Replay {
    state: Mutex<ReplayState>,
    hint: SizeHint,
}

struct ReplayState {
    source: Option<Incoming>,
    kept: Vec<Bytes>,
    kept_bytes: usize,
    limit: usize,
    trailers: Option<HeaderMap>,
    /// The downstream body ended (or failed).
    ended: bool,
    overflowed: bool,
    /// Only the latest try may read on; an earlier one still being polled is cut off.
    current: u32,
    activity: Arc<Activity>,
}

impl Replay {
    pub fn new(source: Incoming, limit: usize, activity: Arc<Activity>) -> Arc<Self> {
        let ended = source.is_end_stream();
        Arc::new(Replay {
            hint: source.size_hint(),
            state: Mutex::new(ReplayState {
                source: (!ended).then_some(source),
                kept: Vec::new(),
                kept_bytes: 0,
                limit,
                trailers: None,
                ended,
                overflowed: false,
                current: 0,
                activity,
            }),
        })
    }

    /// The body for the next try.
    pub fn next_try(self: &Arc<Self>) -> ReplayBody {
        let mut st = self.state.lock();
        st.current += 1;
        ReplayBody {
            shared: self.clone(),
            attempt: st.current,
            next: 0,
            trailers_sent: false,
        }
    }

    /// Whether the body outgrew the buffer limit, which rules out another try.
    pub fn overflowed(&self) -> bool {
        self.state.lock().overflowed
    }
}

pub struct ReplayBody {
    shared: Arc<Replay>,
    attempt: u32,
    next: usize,
    trailers_sent: bool,
}

impl ReplayBody {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut guard = self.shared.state.lock();
        let st = &mut *guard;
        if st.current != self.attempt {
            return Poll::Ready(Some(Err("superseded by a retry".into())));
        }
        if let Some(b) = st.kept.get(self.next) {
            self.next += 1;
            return Poll::Ready(Some(Ok(Frame::data(b.clone()))));
        }
        if st.ended {
            if !self.trailers_sent
                && let Some(t) = &st.trailers
            {
                self.trailers_sent = true;
                return Poll::Ready(Some(Ok(Frame::trailers(t.clone()))));
            }
            return Poll::Ready(None);
        }
        let Some(source) = st.source.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(source).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(frame))) => {
                st.activity.touch();
                if let Some(data) = frame.data_ref() {
                    if !st.overflowed {
                        if st.kept_bytes + data.len() > st.limit {
                            st.overflowed = true;
                            st.kept = Vec::new();
                        } else {
                            st.kept_bytes += data.len();
                            st.kept.push(data.clone());
                            self.next = st.kept.len();
                        }
                    }
                } else if let Some(t) = frame.trailers_ref() {
                    st.trailers = Some(t.clone());
                    self.trailers_sent = true;
                }
                if st.source.as_ref().is_some_and(|s| s.is_end_stream()) {
                    st.ended = true;
                    st.source = None;
                    st.activity.finish();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                st.ended = true;
                st.source = None;
                st.activity.finish();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                // A broken request body cannot be sent again.
                st.ended = true;
                st.overflowed = true;
                st.source = None;
                st.activity.finish();
                Poll::Ready(Some(Err(e.into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        let st = self.shared.state.lock();
        st.ended
            && self.next >= st.kept.len()
            && (self.trailers_sent || st.trailers.is_none())
            && st.current == self.attempt
    }
}

/// Closes a stream's books when its response body is finished or dropped.
pub struct StreamGuard(Arc<ConnCtx>);

impl StreamGuard {
    pub fn new(ctx: Arc<ConnCtx>) -> Self {
        StreamGuard(ctx)
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.stats.downstream_rq_active.dec();
        self.0.tracker.stream_ended();
    }
}

/// A response body, the guard that closes its stream's books, and the upstream HTTP/1.1
/// connection to hand back to its pool once the body has been read to the end.
pub struct ResponseBody {
    pub body: Body,
    pub guard: Option<StreamGuard>,
    pub lease: Option<Lease>,
    /// The request's claim on its cluster's active requests, released with the body.
    pub active: Option<ActiveRequest>,
    /// The route and idle timeouts that still run while the body streams.
    pub timer: Option<BodyTimer>,
}

impl ResponseBody {
    pub fn new(body: Body) -> Self {
        ResponseBody {
            body,
            guard: None,
            lease: None,
            active: None,
            timer: None,
        }
    }
}

impl ResponseBody {
    /// The body was read to its end: the upstream connection can serve another request.
    fn finished(&mut self) {
        if let Some(lease) = self.lease.take() {
            Pool::give_back(lease);
        }
        self.active = None;
        self.timer = None;
        self.guard.take();
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        // A response that was never polled but is already complete (empty bodies, bodies
        // the server did not need to poll again) still returns its connection.
        if self.lease.is_some() && self.body.is_end_stream() {
            self.finished();
        }
    }
}

impl HttpBody for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.body).poll_frame(cx);
        if let Some(t) = &mut this.timer {
            if let Poll::Ready(Some(Ok(_))) = &r {
                t.activity();
            } else if r.is_pending() && t.poll_expired(cx) {
                // Headers are already out: like Envoy, the only answer left is a reset.
                this.lease.take();
                this.active = None;
                this.guard.take();
                this.timer = None;
                return Poll::Ready(Some(Err("stream timeout".into())));
            }
        }
        match &r {
            Poll::Ready(None) => this.finished(),
            // hyper stops polling once the body reports its end; finish the books now.
            Poll::Ready(Some(Ok(_))) if this.body.is_end_stream() => this.finished(),
            Poll::Ready(Some(Err(_))) => {
                this.lease.take();
                this.active = None;
                this.guard.take();
            }
            _ => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
