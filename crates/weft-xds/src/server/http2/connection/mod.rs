//! One client connection: a single task that reads frames, feeds request data to the
//! streams' tasks, and writes their responses. Nothing is buffered while the connection
//! is idle: a frame's payload is allocated when its header has been read and handed on or
//! dropped once complete, and outgoing frames are queued as the response slices
//! themselves behind small headers, in a queue that is released when drained.

mod receive;

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{mpsc, watch};
use tonic::Status;

use super::frame::{self, Head, Reason};
use super::hpack;
use super::inbox::{End, Inbox, Wake};
use super::writer::Writer;
use crate::server::Peer;
use crate::server::Shared;
use crate::server::grpc::{self, Outgoing};

/// Streams a client may have open at once.
const MAX_STREAMS: usize = 100;
/// Our SETTINGS_INITIAL_WINDOW_SIZE: requests are up to ~100 KB, and a delta reconnect
/// can be megabytes, so a stream may send this much before we must have read it.
const STREAM_WINDOW: i64 = 1 << 20;
/// The connection window; credited back on receipt (streams' windows bound buffering), so
/// one stream whose task is slow to read never stalls the others.
const CONNECTION_WINDOW: i64 = 1 << 20;
/// Our SETTINGS_HEADER_TABLE_SIZE (the default).
const HEADER_TABLE: usize = 4096;
/// Our SETTINGS_MAX_HEADER_LIST_SIZE, also the cap on a header block being assembled.
const MAX_HEADER_LIST: usize = 64 << 10;
/// Queued output beyond which no more frames are produced or read until some is written.
const WRITE_HIGH: usize = 64 << 10;
/// How long a closing connection keeps reading after its last frame, so that data the
/// client sent meanwhile does not make the kernel reset the connection over our last frames.
const LINGER: Duration = Duration::from_secs(1);

const CONTENT_TYPE: &[u8] = b"application/grpc";

/// Why a connection ended other than by the client closing it.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("HTTP/2 {reason}: {why}")]
    Protocol { reason: Reason, why: &'static str },
    #[error("header block: {0}")]
    Compression(#[from] hpack::HpackError),
    #[error("connection I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl ConnectionError {
    fn reason(&self) -> Option<Reason> {
        match self {
            Self::Protocol { reason, .. } => Some(*reason),
            Self::Compression(_) => Some(Reason::COMPRESSION_ERROR),
            Self::Io(_) => None,
        }
    }
}

fn protocol(why: &'static str) -> ConnectionError {
    ConnectionError::Protocol {
        reason: Reason::PROTOCOL_ERROR,
        why,
    }
}

fn error(reason: Reason, why: &'static str) -> ConnectionError {
    ConnectionError::Protocol { reason, why }
}

/// Serves one accepted connection until the client closes it, it fails, or the server
/// shuts down (`closing` turns true) and its streams have ended. `_alive` is dropped on
/// return, telling the server one connection fewer remains.
pub async fn serve<IO: AsyncRead + AsyncWrite + Unpin>(
    io: IO,
    shared: Arc<Shared>,
    peer: Arc<Peer>,
    mut closing: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
) {
    let mut conn = Connection::new(io, shared, peer);
    let mut shutting_down = false;
    let result = loop {
        if !shutting_down && *closing.borrow_and_update() {
            shutting_down = true;
            conn.go_away(Reason::NO_ERROR);
        }
        tokio::select! {
            result = std::future::poll_fn(|cx| conn.poll(cx)) => break result,
            changed = closing.changed(), if !shutting_down => {
                if changed.is_err() {
                    // The server is gone without a shutdown; treat it as one.
                    shutting_down = true;
                    conn.go_away(Reason::NO_ERROR);
                }
            }
        }
    };
    if let Err(e) = &result {
        tracing::debug!("ADS connection: {e}");
        if let Some(reason) = e.reason() {
            conn.go_away(reason);
        }
    }
    // Boxed: inline, the closing's state would be part of the task for the connection's
    // whole life.
    Box::pin(conn.close()).await;
}

/// Where reading stands: frames arrive as a header, then a payload read into a buffer of
/// exactly its length.
enum Read {
    Preface {
        got: usize,
        buf: [u8; 24],
    },
    Head {
        got: usize,
        buf: [u8; frame::HEAD_LEN],
    },
    Payload {
        head: Head,
        got: usize,
        buf: Vec<u8>,
    },
}

/// A header block in progress (HEADERS awaiting CONTINUATION).
struct Block {
    stream: u32,
    end_stream: bool,
    bytes: Vec<u8>,
}

/// One open stream.
struct Stream {
    id: u32,
    inbox: Arc<Inbox>,
    /// The responses from the stream's task; `None` once the trailers are queued.
    responses: Option<mpsc::Receiver<Outgoing>>,
    /// The rest of the message being sent.
    parts: VecDeque<Bytes>,
    send_window: i64,
    /// What the client may still send before we credit more.
    recv_window: i64,
    /// Taken by the stream's task and not yet credited back to the client.
    uncredited: i64,
    /// The client has half-closed (or we stopped listening).
    request_ended: bool,
}

impl Drop for Stream {
    fn drop(&mut self) {
        // Ends the task's wait for requests when the stream goes without finishing them.
        self.inbox.end(End::Reset);
    }
}

struct Connection<IO> {
    io: IO,
    shared: Arc<Shared>,
    /// Shared with the connection's streams, which authorize their nodes by it.
    peer: Arc<Peer>,
    wake: Arc<Wake>,
    read: Read,
    /// Whether the client's SETTINGS, which must come first, have arrived.
    settled: bool,
    hpack: hpack::Decoder,
    block: Option<Block>,
    streams: Vec<Stream>,
    /// The highest stream id the client has opened.
    last_stream: u32,
    /// Where the round of writes starts, for fairness between streams.
    next: usize,
    // The client's settings that shape what we send.
    max_frame: usize,
    initial_window: i64,
    send_window: i64,
    recv_window: i64,
    recv_uncredited: i64,
    out: Writer,
    /// We sent GOAWAY: no new streams; done once the open ones are.
    going_away: bool,
    /// The client sent GOAWAY: it opens no more streams.
    client_going_away: bool,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Connection<IO> {
    fn new(io: IO, shared: Arc<Shared>, peer: Arc<Peer>) -> Self {
        let mut conn = Self {
            io,
            shared,
            peer,
            wake: Arc::new(Wake::default()),
            read: Read::Preface {
                got: 0,
                buf: [0; 24],
            },
            settled: false,
            hpack: hpack::Decoder::new(HEADER_TABLE),
            block: None,
            streams: Vec::new(),
            last_stream: 0,
            next: 0,
            max_frame: frame::DEFAULT_MAX_FRAME as usize,
            initial_window: frame::DEFAULT_WINDOW,
            send_window: frame::DEFAULT_WINDOW,
            recv_window: CONNECTION_WINDOW,
            recv_uncredited: 0,
            out: Writer::default(),
            going_away: false,
            client_going_away: false,
        };
        // Our preface, sent without waiting for the client's (RFC 9113 §3.4).
        let mut settings = Vec::with_capacity(18);
        for (id, value) in [
            (frame::SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS as u32),
            (frame::SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW as u32),
            (frame::SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST as u32),
        ] {
            settings.put_u16(id);
            settings.put_u32(value);
        }
        conn.out
            .frame(Head::new(frame::SETTINGS, 0, 0, settings.len()), &settings);
        conn.out
            .window_update(0, CONNECTION_WINDOW - frame::DEFAULT_WINDOW);
        conn
    }

    /// Drives the connection; ready when it is done.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnectionError>> {
        loop {
            let mut progress = false;
            if self.wake.poll(cx).is_ready() {
                self.credit_streams();
            }
            while self.out.len < WRITE_HIGH {
                match self.poll_frame(cx)? {
                    Poll::Ready(true) => progress = true,
                    // The client closed its side: nothing more can be answered.
                    Poll::Ready(false) => return Poll::Ready(Ok(())),
                    Poll::Pending => break,
                }
            }
            progress |= self.produce(cx);
            if let Poll::Ready(wrote) = self.out.poll_flush(&mut self.io, cx)? {
                progress |= wrote;
                if self.finished() {
                    return Poll::Ready(Ok(()));
                }
            }
            if !progress {
                return Poll::Pending;
            }
        }
    }

    /// Nothing left to do after a GOAWAY either way.
    fn finished(&self) -> bool {
        (self.going_away || self.client_going_away)
            && self.streams.is_empty()
            && self.block.is_none()
            && self.out.is_empty()
    }

    /// Sends GOAWAY once; with NO_ERROR the open streams finish first.
    fn go_away(&mut self, reason: Reason) {
        if self.going_away && reason == Reason::NO_ERROR {
            return;
        }
        self.going_away = true;
        let mut payload = [0u8; 8];
        payload[..4].copy_from_slice(&self.last_stream.to_be_bytes());
        payload[4..].copy_from_slice(&reason.0.to_be_bytes());
        self.out
            .frame(Head::new(frame::GOAWAY, 0, 0, payload.len()), &payload);
    }

    /// Writes what is queued (a GOAWAY at least), closes our side, and drains the
    /// client's for a moment before dropping the socket.
    async fn close(mut self) {
        // Streams still open lose their requests' end; their tasks see a reset.
        self.streams.clear();
        let io = &mut self.io;
        let out = &mut self.out;
        let flushed = std::future::poll_fn(|cx| out.poll_flush(io, cx)).await;
        if flushed.is_err() {
            return;
        }
        let _ = self.io.shutdown().await;
        let mut sink = [0u8; 256];
        let _ = tokio::time::timeout(LINGER, async {
            while let Ok(n) = tokio::io::AsyncReadExt::read(&mut self.io, &mut sink).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    }

    /// Reads toward the next frame and handles it: `Ready(true)` when one was handled,
    /// `Ready(false)` at the end of the client's side.
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, ConnectionError>> {
        loop {
            let (got, buf): (&mut usize, &mut [u8]) = match &mut self.read {
                Read::Preface { got, buf } => (got, buf),
                Read::Head { got, buf } => (got, buf),
                Read::Payload { got, buf, .. } => (got, buf),
            };
            if *got < buf.len() {
                let mut read_buf = ReadBuf::new(&mut buf[*got..]);
                match Pin::new(&mut self.io).poll_read(cx, &mut read_buf) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                    Poll::Ready(Ok(())) if read_buf.filled().is_empty() => {
                        return Poll::Ready(Ok(false));
                    }
                    Poll::Ready(Ok(())) => *got += read_buf.filled().len(),
                }
                continue;
            }
            let next = Read::Head {
                got: 0,
                buf: [0; frame::HEAD_LEN],
            };
            match std::mem::replace(&mut self.read, next) {
                Read::Preface { buf, .. } => {
                    if &buf != frame::PREFACE {
                        return Poll::Ready(Err(protocol("not an HTTP/2 connection preface")));
                    }
                }
                Read::Head { buf, .. } => {
                    let head = Head::parse(&buf);
                    if head.len > frame::DEFAULT_MAX_FRAME {
                        return Poll::Ready(Err(error(
                            Reason::FRAME_SIZE_ERROR,
                            "frame larger than SETTINGS_MAX_FRAME_SIZE",
                        )));
                    }
                    if head.len == 0 {
                        self.on_frame(head, Vec::new())?;
                        return Poll::Ready(Ok(true));
                    }
                    self.read = Read::Payload {
                        head,
                        got: 0,
                        buf: vec![0; head.len as usize],
                    };
                }
                Read::Payload { head, buf, .. } => {
                    self.on_frame(head, buf)?;
                    return Poll::Ready(Ok(true));
                }
            }
        }
    }

    /// Resets stream `id` if open, or tells the client of a stream it will not get.
    fn reset(&mut self, id: u32, reason: Reason) {
        match self.streams.iter().position(|s| s.id == id) {
            Some(at) => self.reset_at(at, reason),
            None => self.out.rst_stream(id, reason),
        }
    }

    fn reset_at(&mut self, at: usize, reason: Reason) {
        let stream = self.streams.remove(at);
        self.out.rst_stream(stream.id, reason);
    }

    /// Returns to the client the window its streams' tasks have read.
    fn credit_streams(&mut self) {
        for stream in &mut self.streams {
            stream.uncredited += i64::from(stream.inbox.take_credit());
            if !stream.request_ended && stream.uncredited >= STREAM_WINDOW / 2 {
                self.out.window_update(stream.id, stream.uncredited);
                stream.recv_window += stream.uncredited;
                stream.uncredited = 0;
            }
        }
    }

    /// Turns the streams' responses into frames, a frame per stream in turn, until the
    /// output is full or no stream has anything it may send. `true` if any did.
    fn produce(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        'rounds: while !self.streams.is_empty() {
            let mut round = false;
            let count = self.streams.len();
            for k in 0..count {
                if self.out.len >= WRITE_HIGH {
                    break 'rounds;
                }
                let at = (self.next + k) % count;
                round |= self.produce_one(at, cx);
            }
            self.next = (self.next + 1) % count;
            progress |= round;
            if !round {
                break;
            }
        }
        // Streams whose trailers are queued are done.
        let out = &mut self.out;
        self.streams.retain(|stream| {
            if stream.responses.is_some() {
                return true;
            }
            if !stream.request_ended {
                // The response is complete; the client need not send the rest.
                out.rst_stream(stream.id, Reason::NO_ERROR);
            }
            false
        });
        progress
    }

    /// One frame (or the trailers) of stream `at`, if it has one and the windows allow.
    fn produce_one(&mut self, at: usize, cx: &mut Context<'_>) -> bool {
        let stream = &mut self.streams[at];
        let mut progress = false;
        if stream.parts.is_empty() {
            let Some(responses) = stream.responses.as_mut() else {
                return false;
            };
            let status = match responses.poll_recv(cx) {
                Poll::Pending => return false,
                Poll::Ready(Some(Ok(message))) => {
                    stream.parts = message.into_parts().into();
                    progress = true;
                    None
                }
                Poll::Ready(Some(Err(status))) => Some(status),
                Poll::Ready(None) => Some(Status::ok("")),
            };
            if let Some(status) = status {
                let mut block = Vec::new();
                put_trailers(&mut block, &status);
                self.out.headers(stream.id, &block, true, self.max_frame);
                stream.responses = None;
                return true;
            }
        }
        let window = self.send_window.min(stream.send_window);
        if window <= 0 {
            return progress;
        }
        let budget = (window as usize).min(self.max_frame);
        let mut len = 0;
        let mut slices = Vec::new();
        while len < budget {
            let Some(part) = stream.parts.front_mut() else {
                break;
            };
            let take = part.len().min(budget - len);
            if take == part.len() {
                slices.push(stream.parts.pop_front().expect("front exists"));
            } else {
                slices.push(part.split_to(take));
            }
            len += take;
        }
        if stream.parts.is_empty() {
            // Between messages the stream holds no ring of slices.
            stream.parts = VecDeque::new();
        }
        self.send_window -= len as i64;
        stream.send_window -= len as i64;
        self.out.data(stream.id, slices, len);
        true
    }
}

fn put_trailers(out: &mut Vec<u8>, status: &Status) {
    for (name, value) in &grpc::trailers(status) {
        hpack::put_literal(out, name.as_str().as_bytes(), value.as_bytes());
    }
}
