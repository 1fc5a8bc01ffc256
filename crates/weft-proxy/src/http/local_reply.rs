//! Responses the proxy writes itself (no route, no healthy upstream, timeouts, direct
//! responses, redirects), shaped as Envoy shapes them: `text/plain` bodies, and for gRPC
//! requests a trailers-only response whose `grpc-status` carries the HTTP error.

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
        if let Some(b) = text.clone().filter(|b| !b.is_empty())
            && let Ok(v) = HeaderValue::from_bytes(&b)
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
