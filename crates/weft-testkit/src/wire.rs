//! HTTP/1.1 written and read by hand on one socket, for what a proper client hides or cannot
//! do: pipelined requests, `Expect: 100-continue` (seeing the interim 100), chunked request
//! bodies sent in pieces, a request body that stalls half way, upgrades that turn the socket
//! into a tunnel, and whether (and how) the proxy closes the connection. Every read is bounded
//! in time, and a response is parsed with httparse then framed by content-length, chunked
//! coding or connection close, as RFC 9112 section 6.3 says.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Error;
use crate::client::EXCHANGE_LIMIT;

/// Most response headers a parsed response may have.
const MAX_HEADERS: usize = 128;
/// Largest response (head plus body) read into memory.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// One response as it came off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    pub status: u16,
    /// Names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the body came with chunked transfer coding.
    pub chunked: bool,
}

impl RawResponse {
    /// The first value of `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `connection` lists `close`.
    pub fn closes(&self) -> bool {
        self.headers.iter().any(|(n, v)| {
            n == "connection" && v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))
        })
    }
}

/// How a connection ended when the test waited for the proxy to close it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// Bytes that arrived before the close.
    pub trailing: Vec<u8>,
    /// `None` for a clean close (FIN), else the error that ended it (e.g. a reset).
    pub error: Option<std::io::ErrorKind>,
}

/// A raw HTTP/1.1 connection.
#[derive(Debug)]
pub struct Wire {
    addr: SocketAddr,
    stream: TcpStream,
    buf: BytesMut,
    /// Set once the peer closed its side.
    eof: bool,
}

/// A request head: request line, `host`, the given headers, blank line.
pub fn head(method: &str, path: &str, host: &str, headers: &[(&str, &str)]) -> String {
    let mut s = format!("{method} {path} HTTP/1.1\r\nhost: {host}\r\n");
    for (n, v) in headers {
        s.push_str(&format!("{n}: {v}\r\n"));
    }
    s.push_str("\r\n");
    s
}

/// `body` in chunked coding, split into `pieces` chunks, with the final zero chunk.
pub fn chunked(body: &[u8], pieces: usize) -> Vec<u8> {
    let size = body.len().div_ceil(pieces.max(1)).max(1);
    let mut out = Vec::new();
    for piece in body.chunks(size) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

impl Wire {
    pub async fn connect(addr: SocketAddr) -> Result<Self, Error> {
        let stream = bounded(format!("connecting to {addr}"), EXCHANGE_LIMIT, async {
            TcpStream::connect(addr)
                .await
                .map_err(Error::io(format!("connecting to {addr}")))
        })
        .await?;
        Ok(Self {
            addr,
            stream,
            buf: BytesMut::new(),
            eof: false,
        })
    }

    /// The local address of this connection (what the proxy sees as the client).
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.stream
            .local_addr()
            .map_err(Error::io("reading a local address"))
    }

    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) -> Result<(), Error> {
        let addr = self.addr;
        let bytes = bytes.as_ref();
        bounded(format!("writing to {addr}"), EXCHANGE_LIMIT, async {
            self.stream
                .write_all(bytes)
                .await
                .map_err(Error::io(format!("writing to {addr}")))
        })
        .await
    }

    /// Reads one response; a request made with HEAD must say so (its response has no body).
    /// Interim (1xx) responses are returned on their own, like any other.
    pub async fn response(&mut self, head_request: bool) -> Result<RawResponse, Error> {
        let what = format!("a response from {}", self.addr);
        bounded(what, EXCHANGE_LIMIT, self.read_response(head_request)).await
    }

    /// Exactly `n` bytes (for a tunnel), bounded in time.
    pub async fn bytes(&mut self, n: usize) -> Result<Vec<u8>, Error> {
        let what = format!("{n} bytes from {}", self.addr);
        bounded(what, EXCHANGE_LIMIT, async {
            self.fill_to(n).await?;
            Ok(self.buf.split_to(n).to_vec())
        })
        .await
    }

    /// Up to `n` bytes: stops early when the peer closes (cleanly, or with the error kind
    /// returned next to what arrived), so a test can tell "echoed" from "closed on us".
    pub async fn up_to(&mut self, n: usize) -> Result<Closed, Error> {
        let what = format!("{n} bytes from {}", self.addr);
        bounded(what, EXCHANGE_LIMIT, async {
            let mut error = None;
            while self.buf.len() < n && !self.eof {
                match self.read_more().await {
                    Ok(()) => {}
                    Err(Error::Io { source, .. }) => {
                        error = Some(source.kind());
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            let take = self.buf.len().min(n);
            Ok(Closed {
                trailing: self.buf.split_to(take).to_vec(),
                error,
            })
        })
        .await
    }

    /// Half-closes the sending side, as a client that has nothing more to say.
    pub async fn finish(&mut self) -> Result<(), Error> {
        self.stream.shutdown().await.map_err(Error::io(format!(
            "shutting down the write side to {}",
            self.addr
        )))
    }

    /// Waits up to `limit` for the peer to close, returning what arrived first and how it
    /// ended; `Err(Timeout)` if it stayed open.
    pub async fn closed(&mut self, limit: Duration) -> Result<Closed, Error> {
        let what = format!("{} to close the connection", self.addr);
        bounded(what, limit, async {
            let mut error = None;
            while !self.eof {
                match self.read_more().await {
                    Ok(()) => {}
                    Err(Error::Io { source, .. }) => {
                        error = Some(source.kind());
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(Closed {
                trailing: self.buf.split().to_vec(),
                error,
            })
        })
        .await
    }

    async fn read_response(&mut self, head_request: bool) -> Result<RawResponse, Error> {
        let (status, headers, head_len) = loop {
            let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut parsed = httparse::Response::new(&mut slots);
            match parsed.parse(&self.buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let headers: Vec<(String, String)> = parsed
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_ascii_lowercase(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect();
                    break (parsed.code.unwrap_or(0), headers, len);
                }
                Ok(httparse::Status::Partial) => self.need_more("a response head").await?,
                Err(e) => {
                    return Err(Error::Request(format!(
                        "unparsable response from {}: {e}: {:?}",
                        self.addr,
                        String::from_utf8_lossy(&self.buf[..self.buf.len().min(200)])
                    )));
                }
            }
        };
        self.buf.advance(head_len);
        let mut resp = RawResponse {
            status,
            headers,
            body: Vec::new(),
            chunked: false,
        };
        let no_body =
            head_request || (100..200).contains(&status) || status == 204 || status == 304;
        if no_body {
            return Ok(resp);
        }
        let chunked = resp
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
        if chunked {
            resp.chunked = true;
            resp.body = self.chunked_body().await?;
        } else if let Some(len) = resp.header("content-length") {
            let len: usize = len.trim().parse().map_err(|_| {
                Error::Request(format!("content-length {len:?} from {}", self.addr))
            })?;
            self.fill_to(len).await?;
            resp.body = self.buf.split_to(len).to_vec();
        } else {
            while !self.eof {
                self.read_more().await?;
            }
            resp.body = self.buf.split().to_vec();
        }
        Ok(resp)
    }

    async fn chunked_body(&mut self) -> Result<Vec<u8>, Error> {
        let mut body = Vec::new();
        loop {
            let line = self.line().await?;
            let size_text = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| Error::Request(format!("chunk size {line:?} from {}", self.addr)))?;
            if size == 0 {
                // Trailer fields, if any, end with an empty line.
                while !self.line().await?.is_empty() {}
                return Ok(body);
            }
            self.fill_to(size + 2).await?;
            body.extend_from_slice(&self.buf[..size]);
            self.buf.advance(size + 2);
        }
    }

    async fn line(&mut self) -> Result<String, Error> {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..at]).into_owned();
                self.buf.advance(at + 2);
                return Ok(line);
            }
            self.need_more("a chunk line").await?;
        }
    }

    async fn fill_to(&mut self, n: usize) -> Result<(), Error> {
        while self.buf.len() < n {
            self.need_more("a body").await?;
        }
        Ok(())
    }

    /// Reads more, failing if the peer closed (the caller needed more).
    async fn need_more(&mut self, what: &str) -> Result<(), Error> {
        if !self.eof {
            self.read_more().await?;
        }
        if self.eof {
            return Err(Error::Request(format!(
                "{} closed the connection in the middle of {what} (had {:?})",
                self.addr,
                String::from_utf8_lossy(&self.buf[..self.buf.len().min(200)])
            )));
        }
        Ok(())
    }

    async fn read_more(&mut self) -> Result<(), Error> {
        if self.buf.len() > MAX_RESPONSE_BYTES {
            return Err(Error::Request(format!(
                "more than {MAX_RESPONSE_BYTES} bytes from {}",
                self.addr
            )));
        }
        let n = self
            .stream
            .read_buf(&mut self.buf)
            .await
            .map_err(Error::io(format!("reading from {}", self.addr)))?;
        if n == 0 {
            self.eof = true;
        }
        Ok(())
    }
}

async fn bounded<T>(
    what: String,
    limit: Duration,
    fut: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| Error::Timeout {
            what,
            secs: limit.as_secs(),
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_coding_splits_and_terminates() {
        assert_eq!(
            chunked(b"abcdefghij", 3),
            b"4\r\nabcd\r\n4\r\nefgh\r\n2\r\nij\r\n0\r\n\r\n"
        );
        assert_eq!(chunked(b"", 3), b"0\r\n\r\n");
    }

    #[tokio::test]
    async fn responses_are_framed_by_length_chunks_and_close() {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc\
                  HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nhi\r\n1\r\n!\r\n0\r\nt: v\r\n\r\n\
                  HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n\
                  HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nrest",
            )
            .await
            .unwrap();
        });
        let mut w = Wire::connect(addr).await.unwrap();
        assert_eq!(w.response(false).await.unwrap().status, 100);
        let a = w.response(false).await.unwrap();
        assert_eq!(
            (a.status, a.body.as_slice(), a.chunked),
            (200, &b"abc"[..], false)
        );
        let b = w.response(false).await.unwrap();
        assert_eq!(
            (b.status, b.body.as_slice(), b.chunked),
            (201, &b"hi!"[..], true)
        );
        let head = w.response(true).await.unwrap();
        assert_eq!((head.status, head.body.len()), (200, 0));
        let c = w.response(false).await.unwrap();
        assert!(c.closes());
        assert_eq!(c.body, b"rest");
        server.await.unwrap();
        let closed = w.closed(Duration::from_secs(5)).await.unwrap();
        assert_eq!(
            closed,
            Closed {
                trailing: vec![],
                error: None
            }
        );
    }
}
