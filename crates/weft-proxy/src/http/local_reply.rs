//! Responses the proxy writes itself (no route, no healthy upstream, timeouts, direct
//! responses, redirects), shaped as Envoy shapes them: `text/plain` bodies, and for gRPC
//! requests a trailers-only response whose `grpc-status` carries the HTTP error and whose
//! `grpc-message` carries the text, percent-encoded so that any text fits a header value.

use super::body::{Body, ResponseBody};
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

/// Envoy's HTTP → gRPC status mapping (`Grpc::Utility::httpToGrpcStatus`).
pub fn grpc_status_for(status: StatusCode) -> u32 {
    match status.as_u16() {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502..=504 => 14,
        _ => 2,
    }
}

/// A local reply's text as `grpc-message`, percent-encoded as Envoy's `PercentEncoding::encode`
/// does it: control bytes, `~` and above (so every non-ASCII byte), and `%` itself. The gRPC
/// spec asks for this encoding, and it makes every text a valid header value.
pub fn grpc_message(text: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(text.len());
    for &b in text {
        if !(b' '..b'~').contains(&b) || b == b'%' {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        } else {
            out.push(b);
        }
    }
    Bytes::from(out)
}

/// A local reply. `head` leaves the body out but keeps its length, as for any HEAD.
pub fn reply(
    status: StatusCode,
    text: Option<Bytes>,
    grpc: bool,
    head: bool,
) -> Response<ResponseBody> {
    reply_with_grpc_status(status, text, grpc, head, None)
}

/// [`reply`], with the gRPC status given instead of derived from the HTTP one.
pub fn reply_with_grpc_status(
    status: StatusCode,
    text: Option<Bytes>,
    grpc: bool,
    head: bool,
    grpc_status: Option<u32>,
) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::new(Body::Empty));
    *resp.status_mut() = if grpc { StatusCode::OK } else { status };
    let (parts, mut body) = resp.into_parts();
    let mut parts = parts;
    let h = &mut parts.headers;
    if grpc {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        h.insert(
            "grpc-status",
            HeaderValue::from(grpc_status.unwrap_or_else(|| grpc_status_for(status))),
        );
        // Envoy leaves the message out of a HEAD reply, as it would the body.
        if !head
            && let Some(b) = text.as_deref().filter(|b| !b.is_empty())
            && let Ok(v) = HeaderValue::from_maybe_shared(grpc_message(b))
        {
            h.insert("grpc-message", v);
        }
        return Response::from_parts(parts, body);
    }
    match text.filter(|b| !b.is_empty()) {
        Some(b) => {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(b.len()));
            if !head {
                body.body = Body::full(b);
            }
        }
        None => {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        }
    }
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_messages_are_percent_encoded_as_envoy_does() {
        assert_eq!(
            &grpc_message(b"down for maintenance")[..],
            b"down for maintenance"
        );
        assert_eq!(
            &grpc_message("50% off\t~now é\n".as_bytes())[..],
            b"50%25 off%09%7Enow %C3%A9%0A"
        );
        assert_eq!(&grpc_message(b"\x7f}")[..], b"%7F}");
    }

    #[test]
    fn grpc_replies_carry_any_text_encoded_but_not_on_head() {
        let text = Bytes::from_static("naïve\r\n100%".as_bytes());
        let resp = reply(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(text.clone()),
            true,
            false,
        );
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["grpc-status"], "14");
        assert_eq!(resp.headers()["grpc-message"], "na%C3%AFve%0D%0A100%25");
        let head = reply(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(text.clone()),
            true,
            true,
        );
        assert!(head.headers().get("grpc-message").is_none());
        let plain = reply(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(text.clone()),
            false,
            false,
        );
        assert!(plain.headers().get("grpc-message").is_none());
        assert_eq!(
            plain.headers()[header::CONTENT_LENGTH],
            text.len().to_string().as_str()
        );
    }
}
