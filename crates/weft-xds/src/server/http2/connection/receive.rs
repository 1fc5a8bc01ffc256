//! What a connection does with each frame the client sends: settings, windows, pings,
//! resets, header blocks that open streams (or are refused), and request data handed to
//! the streams' tasks.

use super::*;

impl<IO: AsyncRead + AsyncWrite + Unpin> Connection<IO> {
    pub(super) fn on_frame(&mut self, head: Head, payload: Vec<u8>) -> Result<(), ConnectionError> {
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
                grpc::Call {
                    path: request.path.as_deref().unwrap_or_default(),
                    encoding: request.grpc_encoding.as_deref(),
                    authorization: request.authorization.take(),
                    peer: &self.peer,
                },
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
}

/// A refused request: an HTTP status before gRPC applies, or a gRPC status.
enum Refusal {
    Http(&'static [u8]),
    Grpc(Status),
}

/// What a request's header block says, as far as serving it needs.
#[derive(Default)]
struct Request {
    method: Option<Vec<u8>>,
    path: Option<Vec<u8>>,
    scheme: bool,
    content_type: Option<Vec<u8>>,
    grpc_encoding: Option<Vec<u8>>,
    /// Kept for unary methods, which authenticate their caller by it.
    authorization: Option<Vec<u8>>,
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
            b"authorization" => self.authorization = Some(value.to_vec()),
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
