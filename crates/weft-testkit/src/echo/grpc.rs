//! Just enough gRPC for proxy tests, by hand over HTTP/2 (no codegen): a POST with
//! `content-type: application/grpc` gets its length-prefixed messages echoed back, then
//! trailers `grpc-status` (from `x-echo-grpc-status`, default 0) and `grpc-message` (from
//! `x-echo-grpc-message`, default empty), which is what a proxy must carry through.

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};

use super::http::EchoBody;

/// gRPC's INTERNAL status, for request bodies that are not valid framing.
const INTERNAL: u32 = 13;

pub(super) fn is_grpc(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::POST
        && headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/grpc"))
}

pub(super) fn respond(name: &str, headers: &HeaderMap, body: &[u8]) -> Response<EchoBody> {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (out, status, message) = match unframe(body) {
        Ok(messages) => {
            let mut out = BytesMut::new();
            for m in &messages {
                out.put(frame(m));
            }
            let status = header("x-echo-grpc-status")
                .and_then(|s| s.parse::<u32>().ok())
                .unwrap_or(0);
            (
                out.freeze(),
                status,
                header("x-echo-grpc-message").unwrap_or_default(),
            )
        }
        Err(e) => (Bytes::new(), INTERNAL, e),
    };
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(status));
    trailers.insert(
        "grpc-message",
        HeaderValue::from_str(&message).unwrap_or_else(|_| HeaderValue::from_static("unprintable")),
    );
    let body = Full::new(out)
        .with_trailers(std::future::ready(Some(Ok(trailers))))
        .boxed_unsync();
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    if let Ok(v) = HeaderValue::from_str(name) {
        resp.headers_mut().insert("x-echo-backend", v);
    }
    resp
}

/// One uncompressed gRPC message with its 5-byte prefix.
pub fn frame(message: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + message.len());
    b.put_u8(0);
    b.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    b.put_slice(message);
    b.freeze()
}

/// Splits a gRPC body into its messages; errors on a truncated or compressed frame.
pub fn unframe(mut body: &[u8]) -> Result<Vec<Bytes>, String> {
    let mut out = Vec::new();
    while !body.is_empty() {
        if body.len() < 5 {
            return Err(format!(
                "truncated gRPC frame prefix ({} bytes)",
                body.len()
            ));
        }
        if body[0] != 0 {
            return Err("compressed gRPC frames are not supported by the echo".to_string());
        }
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        let rest = &body[5..];
        if rest.len() < len {
            return Err(format!(
                "gRPC frame says {len} bytes, {} present",
                rest.len()
            ));
        }
        out.push(Bytes::copy_from_slice(&rest[..len]));
        body = &rest[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut body = BytesMut::new();
        body.put(frame(b"hello"));
        body.put(frame(b""));
        let got = unframe(&body).unwrap();
        assert_eq!(got, vec![Bytes::from_static(b"hello"), Bytes::new()]);
        assert!(unframe(&body[..7]).is_err());
    }
}
