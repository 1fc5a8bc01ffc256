//! Request data on its way from a connection's task to the task of the stream it belongs
//! to. The connection may only reopen a stream's flow-control window once the stream has
//! taken the data, so the inbox counts what was taken and wakes the connection to return
//! it to the client; buffering per stream is thereby bounded by the window we advertise.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use parking_lot::Mutex;

/// How a stream's request side ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The client half-closed: no more requests.
    Finished,
    /// The stream was reset or the connection lost.
    Reset,
}

/// One stream's undelivered request data.
#[derive(Debug)]
pub struct Inbox {
    state: Mutex<State>,
    wake: Arc<Wake>,
}

#[derive(Debug, Default)]
struct State {
    chunks: VecDeque<Bytes>,
    end: Option<End>,
    reader: Option<Waker>,
    /// Bytes taken by the reader that the connection has not yet credited back.
    taken: u32,
}

impl Inbox {
    pub fn new(wake: Arc<Wake>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::default()),
            wake,
        })
    }

    /// An inbox holding `chunks` and then finished, for tests of its reader.
    #[cfg(test)]
    pub fn finished(chunks: impl IntoIterator<Item = Bytes>) -> Arc<Self> {
        let inbox = Self::new(Arc::new(Wake::default()));
        for chunk in chunks {
            inbox.push(chunk);
        }
        inbox.end(End::Finished);
        inbox
    }

    pub fn push(&self, chunk: Bytes) {
        let mut state = self.state.lock();
        state.chunks.push_back(chunk);
        if let Some(reader) = state.reader.take() {
            reader.wake();
        }
    }

    /// Ends the request side; the first end given stands.
    pub fn end(&self, end: End) {
        let mut state = self.state.lock();
        if state.end.is_none() {
            state.end = Some(end);
        }
        if end == End::Reset {
            state.chunks = VecDeque::new();
        }
        if let Some(reader) = state.reader.take() {
            reader.wake();
        }
    }

    /// What the reader took since the last call.
    pub fn take_credit(&self) -> u32 {
        std::mem::take(&mut self.state.lock().taken)
    }

    /// The next chunk, or how the request side ended once all are taken.
    pub fn poll_chunk(&self, cx: &mut Context<'_>) -> Poll<Result<Bytes, End>> {
        let mut state = self.state.lock();
        if state.end == Some(End::Reset) {
            return Poll::Ready(Err(End::Reset));
        }
        if let Some(chunk) = state.chunks.pop_front() {
            if state.chunks.is_empty() {
                state.chunks = VecDeque::new();
            }
            state.taken = state.taken.saturating_add(chunk.len() as u32);
            drop(state);
            self.wake.wake();
            return Poll::Ready(Ok(chunk));
        }
        if let Some(end) = state.end {
            return Poll::Ready(Err(end));
        }
        state.reader = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// A connection's wake-up for credit to return: one per connection, shared by its
/// streams' inboxes.
#[derive(Debug, Default)]
pub struct Wake {
    state: Mutex<(bool, Option<Waker>)>,
}

impl Wake {
    fn wake(&self) {
        let mut state = self.state.lock();
        state.0 = true;
        if let Some(waker) = state.1.take() {
            waker.wake();
        }
    }

    /// Ready once per batch of wake-ups since the last ready.
    pub fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.state.lock();
        if std::mem::take(&mut state.0) {
            return Poll::Ready(());
        }
        if !state.1.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            state.1 = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}
