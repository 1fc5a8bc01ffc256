//! One client connection: a single task that reads frames, feeds request data to the
//! streams' tasks, and writes their responses. Nothing is buffered while the connection
//! is idle: a frame's payload is allocated when its header has been read and handed on or
//! dropped once complete, and outgoing frames are queued as the response slices
//! themselves behind small headers, in a queue that is released when drained.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{mpsc, watch};
use tonic::Status;

use super::frame::{self, Head, Reason};
use super::hpack;
use super::inbox::{End, Inbox, Wake};
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
/// Slices handed to one vectored write.
const WRITE_SLICES: usize = 64;
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
    mut closing: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
) {
    let mut conn = Connection::new(io, shared);
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

/// Outgoing frames: small ones are written into `scratch`, response data is queued as the
/// slices it already is.
#[derive(Default)]
struct Writer {
    queue: VecDeque<Bytes>,
    /// Bytes in `queue` and `scratch`.
    len: usize,
    scratch: BytesMut,
}

impl Writer {
    fn frame(&mut self, head: Head, payload: &[u8]) {
        self.scratch.reserve(frame::HEAD_LEN + payload.len());
        head.put(&mut self.scratch);
        self.scratch.put_slice(payload);
        self.len += frame::HEAD_LEN + payload.len();
    }

    /// A DATA frame of `slices` without copying them.
    fn data(&mut self, stream: u32, slices: impl IntoIterator<Item = Bytes>, len: usize) {
        self.frame(Head::new(frame::DATA, 0, stream, len), &[]);
        self.seal();
        for slice in slices {
            self.len += slice.len();
            self.queue.push_back(slice);
        }
    }

    /// A header block as HEADERS and as many CONTINUATION frames as `max_frame` needs.
    fn headers(&mut self, stream: u32, block: &[u8], end_stream: bool, max_frame: usize) {
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

    fn rst_stream(&mut self, stream: u32, reason: Reason) {
        self.frame(
            Head::new(frame::RST_STREAM, 0, stream, 4),
            &reason.0.to_be_bytes(),
        );
    }

    fn window_update(&mut self, stream: u32, increment: i64) {
        let increment = increment as u32;
        self.frame(
            Head::new(frame::WINDOW_UPDATE, 0, stream, 4),
            &increment.to_be_bytes(),
        );
    }

    /// Moves what `scratch` holds onto the queue, keeping the order of frames.
    fn seal(&mut self) {
        if !self.scratch.is_empty() {
            self.queue.push_back(self.scratch.split().freeze());
        }
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes until done or the socket is full; `Ready(true)` when something was written.
    fn poll_flush<IO: AsyncWrite + Unpin>(
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

struct Connection<IO> {
    io: IO,
    shared: Arc<Shared>,
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
    fn new(io: IO, shared: Arc<Shared>) -> Self {
        let mut conn = Self {
            io,
            shared,
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

    fn on_frame(&mut self, head: Head, payload: Vec<u8>) -> Result<(), ConnectionError> {
        if let Some(block) = &self.block
            && (head.kind != frame::CONTINUATION || head.stream != block.stream)
        {
            return Err(protocol("header block interrupted"));
        }
        if !self.settled && head.kind != frame::SETTINGS {
            return Err(protocol("the client's preface lacks SETTINGS"));
        }
        match head.kind {
            frame::DATA => self.on_data(head, payload),
            frame::HEADERS => self.on_headers(head, &payload),
            frame::CONTINUATION => {
                let Some(block) = self.block.as_mut() else {
                    return Err(protocol("CONTINUATION without HEADERS"));
                };
                if block.bytes.len() + payload.len() > MAX_HEADER_LIST {
                    return Err(protocol("header block too large"));
                }
                block.bytes.extend_from_slice(&payload);
                if head.flags & frame::END_HEADERS != 0 {
                    let block = self.block.take().expect("checked above");
                    self.on_header_block(block)?;
                }
                Ok(())
            }
            frame::PRIORITY => {
                if head.stream == 0 {
                    return Err(protocol("PRIORITY on stream 0"));
                }
                if payload.len() != 5 {
                    self.reset(head.stream, Reason::FRAME_SIZE_ERROR);
                }
                Ok(())
            }
            frame::RST_STREAM => {
                if payload.len() != 4 {
                    return Err(error(Reason::FRAME_SIZE_ERROR, "RST_STREAM size"));
                }
                if head.stream == 0 || head.stream > self.last_stream {
                    return Err(protocol("RST_STREAM on an idle stream"));
                }
                // Dropping it ends the task's requests and stops its responses.
                self.streams.retain(|s| s.id != head.stream);
                Ok(())
            }
            frame::SETTINGS => self.on_settings(head, &payload),
            frame::PUSH_PROMISE => Err(protocol("PUSH_PROMISE from a client")),
            frame::PING => {
                if head.stream != 0 {
                    return Err(protocol("PING on a stream"));
                }
                if payload.len() != 8 {
                    return Err(error(Reason::FRAME_SIZE_ERROR, "PING size"));
                }
                if head.flags & frame::ACK == 0 {
                    self.out
                        .frame(Head::new(frame::PING, frame::ACK, 0, 8), &payload);
                }
                Ok(())
            }
            frame::GOAWAY => {
                if head.stream != 0 {
                    return Err(protocol("GOAWAY on a stream"));
                }
                self.client_going_away = true;
                Ok(())
            }
            frame::WINDOW_UPDATE => self.on_window_update(head, &payload),
            // Unknown frame types are ignored (RFC 9113 §4.1).
            _ => Ok(()),
        }
    }

    fn on_settings(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnectionError> {
        if head.stream != 0 {
            return Err(protocol("SETTINGS on a stream"));
        }
        if head.flags & frame::ACK != 0 {
            if !payload.is_empty() {
                return Err(error(
                    Reason::FRAME_SIZE_ERROR,
                    "SETTINGS ACK with a payload",
                ));
            }
            return Ok(());
        }
        if !payload.len().is_multiple_of(6) {
            return Err(error(Reason::FRAME_SIZE_ERROR, "SETTINGS size"));
        }
        self.settled = true;
        for setting in payload.chunks(6) {
            let id = u16::from_be_bytes([setting[0], setting[1]]);
            let value = u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]);
            match id {
                frame::SETTINGS_ENABLE_PUSH if value > 1 => {
                    return Err(protocol("SETTINGS_ENABLE_PUSH not 0 or 1"));
                }
                frame::SETTINGS_INITIAL_WINDOW_SIZE => {
                    let value = i64::from(value);
                    if value > frame::MAX_WINDOW {
                        return Err(error(
                            Reason::FLOW_CONTROL_ERROR,
                            "SETTINGS_INITIAL_WINDOW_SIZE too large",
                        ));
                    }
                    // Open streams' windows move by the change, possibly below zero.
                    let delta = value - self.initial_window;
                    self.initial_window = value;
                    for stream in &mut self.streams {
                        stream.send_window += delta;
                        if stream.send_window > frame::MAX_WINDOW {
                            return Err(error(
                                Reason::FLOW_CONTROL_ERROR,
                                "stream window overflow",
                            ));
                        }
                    }
                }
                frame::SETTINGS_MAX_FRAME_SIZE => {
                    if !(frame::DEFAULT_MAX_FRAME..=frame::MAX_MAX_FRAME).contains(&value) {
                        return Err(protocol("SETTINGS_MAX_FRAME_SIZE out of range"));
                    }
                    self.max_frame = value as usize;
                }
                // The header table size is about the client's decoder, which our
                // never-indexed literals never touch; the rest concern no server.
                _ => {}
            }
        }
        self.out
            .frame(Head::new(frame::SETTINGS, frame::ACK, 0, 0), &[]);
        Ok(())
    }

    fn on_window_update(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnectionError> {
        if payload.len() != 4 {
            return Err(error(Reason::FRAME_SIZE_ERROR, "WINDOW_UPDATE size"));
        }
        let increment = i64::from(
            u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) & 0x7fff_ffff,
        );
        if head.stream == 0 {
            if increment == 0 {
                return Err(protocol("WINDOW_UPDATE of 0"));
            }
            self.send_window += increment;
            if self.send_window > frame::MAX_WINDOW {
                return Err(error(
                    Reason::FLOW_CONTROL_ERROR,
                    "connection window overflow",
                ));
            }
            return Ok(());
        }
        if head.stream > self.last_stream {
            return Err(protocol("WINDOW_UPDATE on an idle stream"));
        }
        let Some(at) = self.streams.iter().position(|s| s.id == head.stream) else {
            // A stream already closed: updates may still be in flight.
            return Ok(());
        };
        if increment == 0 {
            self.reset_at(at, Reason::PROTOCOL_ERROR);
            return Ok(());
        }
        let stream = &mut self.streams[at];
        stream.send_window += increment;
        if stream.send_window > frame::MAX_WINDOW {
            self.reset_at(at, Reason::FLOW_CONTROL_ERROR);
        }
        Ok(())
    }

    fn on_data(&mut self, head: Head, payload: Vec<u8>) -> Result<(), ConnectionError> {
        if head.stream == 0 {
            return Err(protocol("DATA on stream 0"));
        }
        if head.stream > self.last_stream {
            return Err(protocol("DATA on an idle stream"));
        }
        let len = payload.len() as i64;
        if len > self.recv_window {
            return Err(error(
                Reason::FLOW_CONTROL_ERROR,
                "connection window exceeded",
            ));
        }
        // Credited on receipt; see CONNECTION_WINDOW.
        self.recv_window -= len;
        self.recv_uncredited += len;
        if self.recv_uncredited >= CONNECTION_WINDOW / 2 {
            self.out.window_update(0, self.recv_uncredited);
            self.recv_window += self.recv_uncredited;
            self.recv_uncredited = 0;
        }
        let Some(range) = frame::unpad(&payload, head.flags, 0) else {
            return Err(protocol("DATA padding exceeds the payload"));
        };
        let Some(at) = self.streams.iter().position(|s| s.id == head.stream) else {
            // A stream we closed or reset: its data is dropped.
            return Ok(());
        };
        let stream = &mut self.streams[at];
        if stream.request_ended {
            self.reset_at(at, Reason::STREAM_CLOSED);
            return Ok(());
        }
        if len > stream.recv_window {
            self.reset_at(at, Reason::FLOW_CONTROL_ERROR);
            return Ok(());
        }
        stream.recv_window -= len;
        // Padding is consumed as it arrives.
        stream.uncredited += len - range.len() as i64;
        if !range.is_empty() {
            let mut data = Bytes::from(payload);
            data.truncate(range.end);
            data.advance(range.start);
            stream.inbox.push(data);
        }
        if head.flags & frame::END_STREAM != 0 {
            stream.request_ended = true;
            stream.inbox.end(End::Finished);
        }
        Ok(())
    }

    fn on_headers(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnectionError> {
        if head.stream == 0 {
            return Err(protocol("HEADERS on stream 0"));
        }
        let priority = if head.flags & frame::PRIORITY_FLAG != 0 {
            5
        } else {
            0
        };
        let Some(range) = frame::unpad(payload, head.flags, priority) else {
            return Err(protocol("HEADERS padding exceeds the payload"));
        };
        let block = Block {
            stream: head.stream,
            end_stream: head.flags & frame::END_STREAM != 0,
            bytes: payload[range].to_vec(),
        };
        if head.flags & frame::END_HEADERS != 0 {
            self.on_header_block(block)
        } else {
            self.block = Some(block);
            Ok(())
        }
    }

    fn on_header_block(&mut self, block: Block) -> Result<(), ConnectionError> {
        // Decoded whatever becomes of the stream: the table must follow the client's.
        let mut request = Request::default();
        self.hpack
            .decode(&block.bytes, |name, value| request.field(name, value))?;
        let id = block.stream;
        if let Some(at) = self.streams.iter().position(|s| s.id == id) {
            // Trailers: gRPC clients send none, but they are valid and end the request.
            let stream = &mut self.streams[at];
            if !block.end_stream || stream.request_ended {
                self.reset_at(at, Reason::PROTOCOL_ERROR);
            } else {
                stream.request_ended = true;
                stream.inbox.end(End::Finished);
            }
            return Ok(());
        }
        if id.is_multiple_of(2) {
            return Err(protocol("a client opened an even-numbered stream"));
        }
        if id <= self.last_stream {
            // A stream we already closed or reset; the block only updated the table.
            return Ok(());
        }
        self.last_stream = id;
        if self.going_away || self.client_going_away {
            // Beyond the GOAWAY's last stream: the client knows it was not processed.
            return Ok(());
        }
        if self.streams.len() >= MAX_STREAMS {
            self.out.rst_stream(id, Reason::REFUSED_STREAM);
            return Ok(());
        }
        if !request.well_formed() {
            self.out.rst_stream(id, Reason::PROTOCOL_ERROR);
            return Ok(());
        }
        let refusal = if request.method.as_deref() != Some(b"POST".as_slice()) {
            Some(Refusal::Http(b"405"))
        } else if !request
            .content_type
            .as_deref()
            .is_some_and(|t| t.starts_with(CONTENT_TYPE))
        {
            Some(Refusal::Http(b"415"))
        } else {
            None
        };
        let inbox = Inbox::new(self.wake.clone());
        let opened = match refusal {
            Some(refusal) => Err(refusal),
            None => grpc::open(
                &self.shared,
                request.path.as_deref().unwrap_or_default(),
                request.grpc_encoding.as_deref(),
                inbox.clone(),
            )
            .map_err(Refusal::Grpc),
        };
        let responses = match opened {
            Ok(responses) => responses,
            Err(refusal) => {
                let mut out = Vec::new();
                match refusal {
                    Refusal::Http(status) => hpack::put_literal(&mut out, b":status", status),
                    Refusal::Grpc(status) => {
                        // Trailers-only: the whole response is one HEADERS frame.
                        hpack::put_status_200(&mut out);
                        hpack::put_literal(&mut out, b"content-type", CONTENT_TYPE);
                        put_trailers(&mut out, &status);
                    }
                }
                self.out.headers(id, &out, true, self.max_frame);
                if !block.end_stream {
                    // The request is of no interest; the client may stop sending it.
                    self.out.rst_stream(id, Reason::NO_ERROR);
                }
                return Ok(());
            }
        };
        let mut out = Vec::new();
        hpack::put_status_200(&mut out);
        hpack::put_literal(&mut out, b"content-type", CONTENT_TYPE);
        self.out.headers(id, &out, false, self.max_frame);
        if block.end_stream {
            inbox.end(End::Finished);
        }
        self.streams.push(Stream {
            id,
            inbox,
            responses: Some(responses),
            parts: VecDeque::new(),
            send_window: self.initial_window,
            recv_window: STREAM_WINDOW,
            uncredited: 0,
            request_ended: block.end_stream,
        });
        Ok(())
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

/// A refused request: an HTTP status before gRPC applies, or a gRPC status.
enum Refusal {
    Http(&'static [u8]),
    Grpc(Status),
}

fn put_trailers(out: &mut Vec<u8>, status: &Status) {
    for (name, value) in &grpc::trailers(status) {
        hpack::put_literal(out, name.as_str().as_bytes(), value.as_bytes());
    }
}

/// What a request's header block says, as far as serving it needs.
#[derive(Default)]
struct Request {
    method: Option<Vec<u8>>,
    path: Option<Vec<u8>>,
    scheme: bool,
    content_type: Option<Vec<u8>>,
    grpc_encoding: Option<Vec<u8>>,
    malformed: bool,
    regular_seen: bool,
}

impl Request {
    fn field(&mut self, name: &[u8], value: &[u8]) {
        if let Some(pseudo) = name.strip_prefix(b":") {
            // Pseudo-headers come first, once each, and only the request ones.
            let slot = match pseudo {
                b"method" => &mut self.method,
                b"path" => &mut self.path,
                b"scheme" => {
                    self.malformed |= self.scheme;
                    self.scheme = true;
                    self.malformed |= self.regular_seen;
                    return;
                }
                b"authority" => {
                    self.malformed |= self.regular_seen;
                    return;
                }
                _ => {
                    self.malformed = true;
                    return;
                }
            };
            self.malformed |= self.regular_seen || slot.is_some();
            *slot = Some(value.to_vec());
            return;
        }
        self.regular_seen = true;
        if name.iter().any(u8::is_ascii_uppercase) {
            self.malformed = true;
        }
        match name {
            b"content-type" => self.content_type = Some(value.to_vec()),
            b"grpc-encoding" => self.grpc_encoding = Some(value.to_vec()),
            b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding"
            | b"upgrade" => self.malformed = true,
            b"te" => self.malformed |= value != b"trailers",
            _ => {}
        }
    }

    fn well_formed(&self) -> bool {
        !self.malformed
            && self.method.is_some()
            && self.scheme
            && self.path.as_ref().is_some_and(|p| !p.is_empty())
    }
}
