//! HTTP/2 frame layout (RFC 9113 §4 and §6): the 9-byte frame header, the frame types,
//! flags and error codes the server reads and writes, and padding removal.

use bytes::BufMut;

pub const HEAD_LEN: usize = 9;
/// What every client sends first (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The frame size every peer accepts before SETTINGS say otherwise, and the largest we
/// accept: we never advertise more, so a read never needs more than this.
pub const DEFAULT_MAX_FRAME: u32 = 16_384;
pub const MAX_MAX_FRAME: u32 = (1 << 24) - 1;
pub const MAX_WINDOW: i64 = (1 << 31) - 1;
/// Flow-control windows start here for connection and streams (RFC 9113 §6.9.2).
pub const DEFAULT_WINDOW: i64 = 65_535;

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY_FLAG: u8 = 0x20;

pub const SETTINGS_ENABLE_PUSH: u16 = 0x2;
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;
pub const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// RFC 9113 §7 error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reason(pub u32);

impl Reason {
    pub const NO_ERROR: Self = Self(0x0);
    pub const PROTOCOL_ERROR: Self = Self(0x1);
    pub const FLOW_CONTROL_ERROR: Self = Self(0x3);
    pub const STREAM_CLOSED: Self = Self(0x5);
    pub const FRAME_SIZE_ERROR: Self = Self(0x6);
    pub const REFUSED_STREAM: Self = Self(0x7);
    pub const COMPRESSION_ERROR: Self = Self(0x9);
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.0 {
            0x0 => "NO_ERROR",
            0x1 => "PROTOCOL_ERROR",
            0x2 => "INTERNAL_ERROR",
            0x3 => "FLOW_CONTROL_ERROR",
            0x4 => "SETTINGS_TIMEOUT",
            0x5 => "STREAM_CLOSED",
            0x6 => "FRAME_SIZE_ERROR",
            0x7 => "REFUSED_STREAM",
            0x8 => "CANCEL",
            0x9 => "COMPRESSION_ERROR",
            0xa => "CONNECT_ERROR",
            0xb => "ENHANCE_YOUR_CALM",
            0xc => "INADEQUATE_SECURITY",
            0xd => "HTTP_1_1_REQUIRED",
            _ => return write!(f, "error code {:#x}", self.0),
        };
        f.write_str(name)
    }
}

/// A frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub len: u32,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl Head {
    pub fn parse(b: &[u8; HEAD_LEN]) -> Self {
        Self {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: b[3],
            flags: b[4],
            // The reserved bit is ignored on receipt (RFC 9113 §4.1).
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }

    pub fn new(kind: u8, flags: u8, stream: u32, len: usize) -> Self {
        debug_assert!(len <= MAX_MAX_FRAME as usize);
        Self {
            len: len as u32,
            kind,
            flags,
            stream,
        }
    }

    pub fn put(&self, out: &mut impl BufMut) {
        out.put_slice(&self.len.to_be_bytes()[1..]);
        out.put_u8(self.kind);
        out.put_u8(self.flags);
        out.put_u32(self.stream);
    }
}

/// The payload of a PADDED frame without its pad length byte and padding; `extra` is the
/// bytes before the content proper (HEADERS' priority fields).
pub fn unpad(payload: &[u8], flags: u8, extra: usize) -> Option<std::ops::Range<usize>> {
    let (start, pad) = if flags & PADDED != 0 {
        (1, usize::from(*payload.first()?))
    } else {
        (0, 0)
    };
    let end = payload.len().checked_sub(pad)?;
    let start = start + extra;
    (start <= end).then_some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_round_trips_and_ignores_the_reserved_bit() {
        let mut out = Vec::new();
        Head::new(HEADERS, END_HEADERS, 3, 0x12345).put(&mut out);
        let bytes: [u8; HEAD_LEN] = out.try_into().unwrap();
        assert_eq!(
            Head::parse(&bytes),
            Head::new(HEADERS, END_HEADERS, 3, 0x12345)
        );
        let mut reserved = bytes;
        reserved[5] |= 0x80;
        assert_eq!(Head::parse(&reserved).stream, 3);
    }

    #[test]
    fn padding_is_removed_or_refused() {
        assert_eq!(unpad(&[2, b'a', b'b', 0, 0], PADDED, 0), Some(1..3));
        assert_eq!(unpad(b"ab", 0, 0), Some(0..2));
        assert_eq!(unpad(&[5, b'a'], PADDED, 0), None);
        assert_eq!(unpad(&[], PADDED, 0), None);
        assert_eq!(unpad(&[0, 1, 2, 3, 4, 5, b'h'], PADDED, 5), Some(6..7));
    }
}
