//! HPACK (RFC 7541): the header compression every HTTP/2 client uses. Decoding is
//! complete, since a client may use any representation and its dynamic table must be
//! mirrored exactly; encoding emits only literals without indexing, so we keep no encoder
//! state and the client's decoder table size does not concern us.

use std::collections::VecDeque;

use super::huffman::{self, HuffmanError};

/// RFC 7541 Appendix A.
const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// Per-entry overhead the table size accounts for (RFC 7541 §4.1).
const ENTRY_OVERHEAD: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HpackError {
    #[error("header block ends inside a field")]
    Truncated,
    #[error("integer too large")]
    Integer,
    #[error("table index {0} does not exist")]
    Index(usize),
    #[error("dynamic table size update to {0} exceeds the limit")]
    TableSize(usize),
    #[error("dynamic table size update after the first field")]
    LateSizeUpdate,
    #[error(transparent)]
    Huffman(#[from] HuffmanError),
}

/// A dynamic table entry: name and value in one allocation.
#[derive(Debug)]
struct Entry {
    bytes: Box<[u8]>,
    name_len: usize,
}

impl Entry {
    fn name(&self) -> &[u8] {
        &self.bytes[..self.name_len]
    }
    fn value(&self) -> &[u8] {
        &self.bytes[self.name_len..]
    }
    fn size(&self) -> usize {
        self.bytes.len() + ENTRY_OVERHEAD
    }
}

/// The decoding side of one connection: its dynamic table (newest first).
#[derive(Debug)]
pub struct Decoder {
    table: VecDeque<Entry>,
    size: usize,
    /// The size the client's encoder last chose, at most `limit`.
    max_size: usize,
    /// SETTINGS_HEADER_TABLE_SIZE as we advertise it.
    limit: usize,
}

impl Decoder {
    pub fn new(limit: usize) -> Self {
        Self {
            table: VecDeque::new(),
            size: 0,
            max_size: limit,
            limit,
        }
    }

    /// Decodes one complete header block, handing each field to `field` in order.
    pub fn decode(
        &mut self,
        mut block: &[u8],
        mut field: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), HpackError> {
        let mut first = true;
        let mut name_buf = Vec::new();
        let mut value_buf = Vec::new();
        while let Some(&byte) = block.first() {
            if byte & 0x80 != 0 {
                let index = integer(&mut block, 7)?;
                let (name, value) = self.get(index)?;
                field(name, value);
            } else if byte & 0xe0 == 0x20 {
                if !first {
                    return Err(HpackError::LateSizeUpdate);
                }
                let size = integer(&mut block, 5)?;
                if size > self.limit {
                    return Err(HpackError::TableSize(size));
                }
                self.max_size = size;
                self.evict(0);
                // Several updates may start a block (RFC 7541 §4.2), so `first` stays.
                continue;
            } else {
                // Incremental indexing has a 6-bit prefix; without / never indexed, 4.
                let indexing = byte & 0xc0 == 0x40;
                let index = integer(&mut block, if indexing { 6 } else { 4 })?;
                name_buf.clear();
                value_buf.clear();
                if index == 0 {
                    string(&mut block, &mut name_buf)?;
                } else {
                    name_buf.extend_from_slice(self.get(index)?.0);
                }
                string(&mut block, &mut value_buf)?;
                field(&name_buf, &value_buf);
                if indexing {
                    self.insert(&name_buf, &value_buf);
                }
            }
            first = false;
        }
        Ok(())
    }

    fn get(&self, index: usize) -> Result<(&[u8], &[u8]), HpackError> {
        match index {
            0 => Err(HpackError::Index(0)),
            1..=61 => {
                let (name, value) = STATIC[index - 1];
                Ok((name.as_bytes(), value.as_bytes()))
            }
            _ => self
                .table
                .get(index - 62)
                .map(|e| (e.name(), e.value()))
                .ok_or(HpackError::Index(index)),
        }
    }

    fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        if size > self.max_size {
            // Not an error: an entry larger than the table empties it (RFC 7541 §4.4).
            self.table.clear();
            self.size = 0;
            return;
        }
        self.evict(size);
        let mut bytes = Vec::with_capacity(name.len() + value.len());
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(value);
        self.table.push_front(Entry {
            bytes: bytes.into_boxed_slice(),
            name_len: name.len(),
        });
        self.size += size;
    }

    /// Evicts the oldest entries until `room` more bytes fit.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size {
            let Some(old) = self.table.pop_back() else {
                break;
            };
            self.size -= old.size();
        }
        if self.table.is_empty() {
            // A table emptied for good should not keep its ring buffer.
            self.table = VecDeque::new();
        }
    }

    #[cfg(test)]
    fn table_size(&self) -> usize {
        self.size
    }
}

/// An HPACK integer with an `prefix`-bit prefix (RFC 7541 §5.1).
fn integer(block: &mut &[u8], prefix: u32) -> Result<usize, HpackError> {
    let (&first, rest) = block.split_first().ok_or(HpackError::Truncated)?;
    *block = rest;
    let mask = (1usize << prefix) - 1;
    let mut value = usize::from(first) & mask;
    if value < mask {
        return Ok(value);
    }
    let mut shift = 0;
    loop {
        let (&byte, rest) = block.split_first().ok_or(HpackError::Truncated)?;
        *block = rest;
        // Four continuation bytes reach 2^28, more than any size or index we accept.
        if shift > 21 {
            return Err(HpackError::Integer);
        }
        value += usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
}

/// A string literal (RFC 7541 §5.2), appended to `out`.
fn string(block: &mut &[u8], out: &mut Vec<u8>) -> Result<(), HpackError> {
    let huffman = block.first().ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = integer(block, 7)?;
    if len > block.len() {
        return Err(HpackError::Truncated);
    }
    let (bytes, rest) = block.split_at(len);
    *block = rest;
    if huffman {
        huffman::decode(bytes, out)?;
    } else {
        out.extend_from_slice(bytes);
    }
    Ok(())
}

fn put_integer(out: &mut Vec<u8>, flags: u8, prefix: u32, value: usize) {
    let mask = (1usize << prefix) - 1;
    if value < mask {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        out.push((rest as u8 & 0x7f) | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    put_integer(out, 0, 7, bytes.len());
    out.extend_from_slice(bytes);
}

/// `:status: 200`, static table entry 8.
pub fn put_status_200(out: &mut Vec<u8>) {
    put_integer(out, 0x80, 7, 8);
}

/// A field as a literal without indexing and with a literal name: it changes no table.
pub fn put_literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0);
    put_string(out, name);
    put_string(out, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn fields(decoder: &mut Decoder, block: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        decoder
            .decode(&hex(block), |n, v| {
                out.push((
                    String::from_utf8(n.to_vec()).unwrap(),
                    String::from_utf8(v.to_vec()).unwrap(),
                ))
            })
            .unwrap();
        out
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// RFC 7541 C.3 (plain literals) and C.4 (Huffman): three requests on one connection.
    fn request_sequence(blocks: [&str; 3]) {
        let mut d = Decoder::new(4096);
        let first = pairs(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
        ]);
        assert_eq!(fields(&mut d, blocks[0]), first);
        assert_eq!(d.table_size(), 57);
        let mut second = first.clone();
        second.push(("cache-control".into(), "no-cache".into()));
        assert_eq!(fields(&mut d, blocks[1]), second);
        assert_eq!(d.table_size(), 110);
        assert_eq!(
            fields(&mut d, blocks[2]),
            pairs(&[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value"),
            ])
        );
        assert_eq!(d.table_size(), 164);
        assert_eq!(d.get(62).unwrap().0, b"custom-key");
        assert_eq!(d.get(64).unwrap().0, b":authority");
        assert!(d.get(65).is_err());
    }

    #[test]
    fn rfc_7541_c3_requests_without_huffman() {
        request_sequence([
            "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "8286 84be 5808 6e6f 2d63 6163 6865",
            "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        ]);
    }

    #[test]
    fn rfc_7541_c4_requests_with_huffman() {
        request_sequence([
            "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
            "8286 84be 5886 a8eb 1064 9cbf",
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ]);
    }

    #[test]
    fn rfc_7541_c2_other_representations() {
        // C.2.2 without indexing, C.2.3 never indexed: neither enters the table.
        let mut d = Decoder::new(4096);
        assert_eq!(
            fields(&mut d, "040c 2f73 616d 706c 652f 7061 7468"),
            pairs(&[(":path", "/sample/path")])
        );
        assert_eq!(
            fields(&mut d, "1008 7061 7373 776f 7264 0673 6563 7265 74"),
            pairs(&[("password", "secret")])
        );
        assert_eq!(d.table_size(), 0);
    }

    #[test]
    fn eviction_and_size_updates() {
        let mut d = Decoder::new(100);
        // Two 32 + 1 + 1 = 34-byte entries fit in 100; the third evicts the oldest.
        fields(&mut d, "4001 6101 31");
        fields(&mut d, "4001 6201 32");
        fields(&mut d, "4001 6301 33");
        assert_eq!(d.table_size(), 68);
        assert_eq!(d.get(62).unwrap(), (&b"c"[..], &b"3"[..]));
        assert_eq!(d.get(63).unwrap(), (&b"b"[..], &b"2"[..]));
        assert!(d.get(64).is_err());
        // A size update to 40 keeps one entry; beyond the limit is an error, and so is
        // one after a field.
        assert_eq!(fields(&mut d, "3f09 be"), pairs(&[("c", "3")]));
        assert_eq!(d.table_size(), 34);
        assert_eq!(
            d.decode(&hex("3f46"), |_, _| {}),
            Err(HpackError::TableSize(101))
        );
        assert_eq!(
            d.decode(&hex("be 20"), |_, _| {}),
            Err(HpackError::LateSizeUpdate)
        );
        // An entry larger than the whole table empties it.
        fields(&mut d, "20 3f09");
        fields(&mut d, "4001 6101 31");
        assert_eq!(d.table_size(), 34);
        fields(&mut d, "4009 6161 6161 6161 6161 6101 31");
        assert_eq!(d.table_size(), 0);
    }

    #[test]
    fn malformed_blocks_are_errors() {
        let mut d = Decoder::new(4096);
        assert_eq!(d.decode(&hex("80"), |_, _| {}), Err(HpackError::Index(0)));
        assert_eq!(d.decode(&hex("be"), |_, _| {}), Err(HpackError::Index(62)));
        assert_eq!(
            d.decode(&hex("4005 6161"), |_, _| {}),
            Err(HpackError::Truncated)
        );
        assert_eq!(
            d.decode(&hex("ff ffff ffff 7f"), |_, _| {}),
            Err(HpackError::Integer)
        );
    }

    #[test]
    fn encoded_fields_decode() {
        let mut block = Vec::new();
        put_status_200(&mut block);
        put_literal(&mut block, b"grpc-message", &[b'x'; 300]);
        let mut d = Decoder::new(4096);
        let mut got = Vec::new();
        d.decode(&block, |n, v| got.push((n.to_vec(), v.to_vec())))
            .unwrap();
        assert_eq!(
            got,
            vec![
                (b":status".to_vec(), b"200".to_vec()),
                (b"grpc-message".to_vec(), vec![b'x'; 300])
            ]
        );
        assert_eq!(d.table_size(), 0);
    }
}
