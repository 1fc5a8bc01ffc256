//! The one body type the proxy moves in both directions: nothing, a buffer the proxy made
//! (local replies), or a peer's body streamed through frame by frame. An enum rather than a
//! boxed trait object, so forwarding a body costs no allocation. A [`StreamGuard`] rides
//! along on responses so the connection knows when the stream is really over.

use super::ConnCtx;
use super::timers::{Activity, BodyTimer};
use crate::upstream::pool::{Lease, Pool};
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
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
                let r = Pin::new(i).poll_frame(cx).map_err(Into::into);
                match &r {
                    Poll::Ready(Some(Ok(_))) => activity.touch(),
                    Poll::Ready(_) => activity.finish(),
                    Poll::Pending => {}
                }
                r
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(b) => b.is_none(),
            Body::Incoming(i) | Body::Tracked(i, _) => i.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Incoming(i) | Body::Tracked(i, _) => i.size_hint(),
        }
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
    /// The route and idle timeouts that still run while the body streams.
    pub timer: Option<BodyTimer>,
}

impl ResponseBody {
    pub fn new(body: Body) -> Self {
        ResponseBody {
            body,
            guard: None,
            lease: None,
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
