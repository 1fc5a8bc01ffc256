//! The client side of the debug server, for `weft proxy-status` and `weft proxy-config`:
//! one plain HTTP/1.1 GET, bounded in time.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the control plane's debug server at {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("GET {path} on {address}: {source}")]
    Http {
        address: String,
        path: String,
        #[source]
        source: hyper::Error,
    },
    #[error("GET {path} on {address}: {source}")]
    Request {
        address: String,
        path: String,
        #[source]
        source: hyper::http::Error,
    },
    #[error("GET {path} on {address}: no answer within {timeout:?}")]
    Timeout {
        address: String,
        path: String,
        timeout: Duration,
    },
}

/// `GET path` on `address` (`HOST:PORT`): the status code and the body as text.
pub async fn get(
    address: &str,
    path: &str,
    timeout: Duration,
) -> Result<(u16, String), ClientError> {
    let fetch = async {
        let stream = TcpStream::connect(address)
            .await
            .map_err(|source| ClientError::Connect {
                address: address.to_string(),
                source,
            })?;
        let http = |source| ClientError::Http {
            address: address.to_string(),
            path: path.to_string(),
            source,
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http)?;
        let driver = tokio::spawn(connection);
        let request = Request::get(path)
            .header(header::HOST, address)
            .body(Empty::<Bytes>::new())
            .map_err(|source| ClientError::Request {
                address: address.to_string(),
                path: path.to_string(),
                source,
            })?;
        let response = sender.send_request(request).await.map_err(http)?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(http)?;
        driver.abort();
        Ok((
            status,
            String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        ))
    };
    tokio::time::timeout(timeout, fetch)
        .await
        .unwrap_or_else(|_| {
            Err(ClientError::Timeout {
                address: address.to_string(),
                path: path.to_string(),
                timeout,
            })
        })
}

/// Percent-encodes a query value, leaving only unreserved characters as they are (node ids
/// hold `~` and `.`, which stay; anything else is escaped).
pub fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Decodes `%XX` escapes and `+` (as a space) in a query component.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        let escaped = match (b[i], b.get(i + 1), b.get(i + 2)) {
            (b'%', Some(h), Some(l)) => hex(*h).zip(hex(*l)),
            _ => None,
        };
        match (escaped, b[i]) {
            (Some((h, l)), _) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, c) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips() {
        let id = "sidecar~10.0.0.1~a-0.default~default.svc.cluster.local|x y";
        let escaped = query_escape(id);
        assert_eq!(
            escaped,
            "sidecar~10.0.0.1~a-0.default~default.svc.cluster.local%7Cx%20y"
        );
        assert_eq!(percent_decode(&escaped), id);
        assert_eq!(percent_decode("a+b%zz"), "a b%zz");
    }
}
