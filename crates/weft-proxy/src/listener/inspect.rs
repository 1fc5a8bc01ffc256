//! Listener filters that look at a connection's first bytes: `tls_inspector` (is it TLS, and
//! which SNI and ALPN does the ClientHello carry) and `http_inspector` (HTTP/1.x or HTTP/2
//! prior knowledge). The bytes read are replayed to whatever serves the connection.

use bytes::{Buf, Bytes, BytesMut};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// What the inspectors found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Inspection {
    /// `tls` or `raw_buffer`.
    pub transport: &'static str,
    pub server_name: Option<String>,
    pub alpn: Vec<String>,
}

/// A stream with some already-read bytes in front.
pub struct Rewind {
    prefix: Bytes,
    inner: TcpStream,
}

impl Rewind {
    pub fn new(inner: TcpStream) -> Self {
        Rewind {
            prefix: Bytes::new(),
            inner,
        }
    }

    pub fn stream(&self) -> &TcpStream {
        &self.inner
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Envoy's tls_inspector reads at most this much of a ClientHello.
const MAX_CLIENT_HELLO: usize = 64 * 1024;

/// Reads enough of the connection to run the inspectors (or until the peer stops sending).
pub async fn inspect(s: &mut Rewind, tls: bool, http: bool) -> io::Result<Inspection> {
    let mut buf = BytesMut::with_capacity(1024);
    let mut out = Inspection {
        transport: "raw_buffer",
        ..Default::default()
    };
    loop {
        let n = s.inner.read_buf(&mut buf).await?;
        let eof = n == 0;
        let verdict = if tls {
            parse_client_hello(&buf)
        } else {
            Hello::NotTls
        };
        match verdict {
            Hello::NeedMore if !eof && buf.len() < MAX_CLIENT_HELLO => continue,
            Hello::Tls { sni, alpn } => {
                out.transport = "tls";
                out.server_name = sni;
                out.alpn = alpn;
                break;
            }
            _ => {
                if http {
                    match http_kind(&buf) {
                        HttpKind::NeedMore if !eof && buf.len() < 8192 => continue,
                        HttpKind::H2 => out.alpn = vec!["h2c".into()],
                        HttpKind::H1(v) => out.alpn = vec![v.into()],
                        _ => {}
                    }
                }
                break;
            }
        }
    }
    s.prefix = buf.freeze();
    Ok(out)
}

enum HttpKind {
    NeedMore,
    H2,
    H1(&'static str),
    Other,
}

fn http_kind(b: &[u8]) -> HttpKind {
    let n = b.len().min(H2_PREFACE.len());
    if b[..n] == H2_PREFACE[..n] {
        return if n == H2_PREFACE.len() {
            HttpKind::H2
        } else {
            HttpKind::NeedMore
        };
    }
    let Some(end) = b.windows(2).position(|w| w == b"\r\n") else {
        return HttpKind::NeedMore;
    };
    let line = &b[..end];
    let mut parts = line.split(|c| *c == b' ');
    let (Some(method), Some(_), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return HttpKind::Other;
    };
    if method.is_empty() || !method.iter().all(|c| c.is_ascii_uppercase()) {
        return HttpKind::Other;
    }
    match version {
        b"HTTP/1.1" => HttpKind::H1("http/1.1"),
        b"HTTP/1.0" => HttpKind::H1("http/1.0"),
        _ => HttpKind::Other,
    }
}

enum Hello {
    NeedMore,
    NotTls,
    Tls {
        sni: Option<String>,
        alpn: Vec<String>,
    },
}

/// Parses a TLS record carrying a ClientHello far enough to read SNI and ALPN.
fn parse_client_hello(b: &[u8]) -> Hello {
    if b.is_empty() {
        return Hello::NeedMore;
    }
    if b[0] != 0x16 {
        return Hello::NotTls;
    }
    if b.len() < 5 {
        return Hello::NeedMore;
    }
    if b[1] != 0x03 {
        return Hello::NotTls;
    }
    let record_len = usize::from(u16::from_be_bytes([b[3], b[4]]));
    if b.len() < 5 + record_len.min(MAX_CLIENT_HELLO) {
        return Hello::NeedMore;
    }
    let body = &b[5..(5 + record_len).min(b.len())];
    client_hello_fields(body).unwrap_or(Hello::NotTls)
}

fn client_hello_fields(h: &[u8]) -> Option<Hello> {
    let mut r = Reader(h);
    if r.u8()? != 1 {
        return None;
    }
    let _len = r.take(3)?;
    r.take(2 + 32)?;
    let sid = usize::from(r.u8()?);
    r.take(sid)?;
    let cs = usize::from(r.u16()?);
    r.take(cs)?;
    let comp = usize::from(r.u8()?);
    r.take(comp)?;
    let mut sni = None;
    let mut alpn = Vec::new();
    if r.0.is_empty() {
        return Some(Hello::Tls { sni, alpn });
    }
    let ext_len = usize::from(r.u16()?);
    let mut exts = Reader(r.take(ext_len)?);
    while !exts.0.is_empty() {
        let kind = exts.u16()?;
        let len = usize::from(exts.u16()?);
        let mut data = Reader(exts.take(len)?);
        match kind {
            0 => {
                let n = usize::from(data.u16()?);
                let mut list = Reader(data.take(n)?);
                while !list.0.is_empty() {
                    let name_type = list.u8()?;
                    let n = usize::from(list.u16()?);
                    let name = list.take(n)?;
                    if name_type == 0 {
                        sni = Some(String::from_utf8_lossy(name).to_ascii_lowercase());
                    }
                }
            }
            16 => {
                let n = usize::from(data.u16()?);
                let mut list = Reader(data.take(n)?);
                while !list.0.is_empty() {
                    let n = usize::from(list.u8()?);
                    let p = list.take(n)?;
                    alpn.push(String::from_utf8_lossy(p).into_owned());
                }
            }
            _ => {}
        }
    }
    Some(Hello::Tls { sni, alpn })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ClientHello with SNI `example.com` and ALPN `h2`, `http/1.1`.
    fn client_hello() -> Vec<u8> {
        let mut ext = Vec::new();
        let name = b"Example.com";
        let mut sni = Vec::new();
        sni.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
        sni.push(0);
        sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
        sni.extend_from_slice(name);
        ext.extend_from_slice(&0u16.to_be_bytes());
        ext.extend_from_slice(&(sni.len() as u16).to_be_bytes());
        ext.extend_from_slice(&sni);
        let mut protos = Vec::new();
        for p in [&b"h2"[..], b"http/1.1"] {
            protos.push(p.len() as u8);
            protos.extend_from_slice(p);
        }
        let mut alpn = (protos.len() as u16).to_be_bytes().to_vec();
        alpn.extend_from_slice(&protos);
        ext.extend_from_slice(&16u16.to_be_bytes());
        ext.extend_from_slice(&(alpn.len() as u16).to_be_bytes());
        ext.extend_from_slice(&alpn);
        let mut hello = vec![0x03, 0x03];
        hello.extend_from_slice(&[0u8; 32]);
        hello.push(0);
        hello.extend_from_slice(&2u16.to_be_bytes());
        hello.extend_from_slice(&[0x13, 0x01]);
        hello.extend_from_slice(&[1, 0]);
        hello.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        hello.extend_from_slice(&ext);
        let mut hs = vec![1];
        hs.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&hello);
        let mut rec = vec![0x16, 0x03, 0x01];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn client_hello_sni_and_alpn_are_read() {
        let rec = client_hello();
        match parse_client_hello(&rec) {
            Hello::Tls { sni, alpn } => {
                assert_eq!(sni.as_deref(), Some("example.com"));
                assert_eq!(alpn, ["h2", "http/1.1"]);
            }
            _ => panic!("not parsed"),
        }
        assert!(matches!(parse_client_hello(&rec[..20]), Hello::NeedMore));
        assert!(matches!(
            parse_client_hello(b"GET / HTTP/1.1\r\n"),
            Hello::NotTls
        ));
    }

    #[test]
    fn http_versions_are_recognised() {
        assert!(matches!(
            http_kind(b"GET /x HTTP/1.1\r\nHost: a\r\n"),
            HttpKind::H1("http/1.1")
        ));
        assert!(matches!(
            http_kind(b"GET /x HTTP/1.0\r\n"),
            HttpKind::H1("http/1.0")
        ));
        assert!(matches!(http_kind(H2_PREFACE), HttpKind::H2));
        assert!(matches!(http_kind(b"PRI * HT"), HttpKind::NeedMore));
        assert!(matches!(http_kind(b"hello world\r\n"), HttpKind::Other));
    }
}
