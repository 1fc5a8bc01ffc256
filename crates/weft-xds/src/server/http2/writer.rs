//! Outgoing frames of one connection: small frames are written into one scratch buffer,
//! response data is queued as the slices it already is, and all of it goes out in vectored
//! writes; the queue and the scratch are released whenever they drain.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::AsyncWrite;

use super::frame::{self, Head, Reason};

/// Slices handed to one vectored write.
const WRITE_SLICES: usize = 64;

/// Outgoing frames: small ones are written into `scratch`, response data is queued as the
/// slices it already is.
#[derive(Default)]
pub(super) struct Writer {
    queue: VecDeque<Bytes>,
    /// Bytes in `queue` and `scratch`.
    pub(super) len: usize,
    scratch: BytesMut,
}

impl Writer {
    pub(super) fn frame(&mut self, head: Head, payload: &[u8]) {
        self.scratch.reserve(frame::HEAD_LEN + payload.len());
        head.put(&mut self.scratch);
        self.scratch.put_slice(payload);
        self.len += frame::HEAD_LEN + payload.len();
    }

    /// A DATA frame of `slices` without copying them.
    pub(super) fn data(
        &mut self,
        stream: u32,
        slices: impl IntoIterator<Item = Bytes>,
        len: usize,
    ) {
        self.frame(Head::new(frame::DATA, 0, stream, len), &[]);
        self.seal();
        for slice in slices {
            self.len += slice.len();
            self.queue.push_back(slice);
        }
    }

    /// A header block as HEADERS and as many CONTINUATION frames as `max_frame` needs.
    pub(super) fn headers(
        &mut self,
        stream: u32,
        block: &[u8],
        end_stream: bool,
        max_frame: usize,
    ) {
        let mut chunks = block.chunks(max_frame).peekable();
        let mut kind = frame::HEADERS;
        let mut flags = if end_stream { frame::END_STREAM } else { 0 };
        loop {
            let chunk = chunks.next().unwrap_or(&[]);
            if chunks.peek().is_none() {
                flags |= frame::END_HEADERS;
            }
            self.frame(Head::new(kind, flags, stream, chunk.len()), chunk);
            if flags & frame::END_HEADERS != 0 {
                return;
            }
            kind = frame::CONTINUATION;
            flags = 0;
        }
    }

    pub(super) fn rst_stream(&mut self, stream: u32, reason: Reason) {
        self.frame(
            Head::new(frame::RST_STREAM, 0, stream, 4),
            &reason.0.to_be_bytes(),
        );
    }

    pub(super) fn window_update(&mut self, stream: u32, increment: i64) {
        let increment = increment as u32;
        self.frame(
            Head::new(frame::WINDOW_UPDATE, 0, stream, 4),
            &increment.to_be_bytes(),
        );
    }

    /// Moves what `scratch` holds onto the queue, keeping the order of frames.
    pub(super) fn seal(&mut self) {
        if !self.scratch.is_empty() {
            self.queue.push_back(self.scratch.split().freeze());
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes until done or the socket is full; `Ready(true)` when something was written.
    pub(super) fn poll_flush<IO: AsyncWrite + Unpin>(
        &mut self,
        io: &mut IO,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<bool>> {
        let mut wrote = false;
        loop {
            self.seal();
            if self.queue.is_empty() {
                // Idle: give back the queue's ring and the scratch allocation.
                self.queue = VecDeque::new();
                self.scratch = BytesMut::new();
                return Poll::Ready(Ok(wrote));
            }
            let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
            let mut count = 0;
            for (slot, bytes) in slices.iter_mut().zip(&self.queue) {
                *slot = IoSlice::new(bytes);
                count += 1;
            }
            let mut n = match Pin::new(&mut *io).poll_write_vectored(cx, &slices[..count]) {
                Poll::Pending if wrote => return Poll::Ready(Ok(true)),
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => n,
            };
            wrote = true;
            self.len -= n;
            while n > 0 {
                let front = self.queue.front_mut().expect("written bytes were queued");
                if front.len() <= n {
                    n -= front.len();
                    self.queue.pop_front();
                } else {
                    front.advance(n);
                    n = 0;
                }
            }
        }
    }
}
