//! WebSocket upgrades through the proxy (allowed, refused, bytes both ways), compared between
//! Envoy and Weft.

use super::*;
use crate::connections::{CLOSE_WAIT, answer, quiet_close};

/// RFC 6455's sample key; the echo answers with its accept value.
pub(crate) const WEBSOCKET_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// Bytes sent through an upgraded connection, in a few writes.
pub(crate) const TUNNEL_BYTES: usize = 64 * 1024;

async fn upgrade_request(
    addr: std::net::SocketAddr,
    kind: &str,
) -> Result<(Wire, RawResponse), Error> {
    let mut w = Wire::connect(addr).await?;
    w.send(wire::head(
        "GET",
        "/ws",
        "example.com",
        &[
            ("connection", "upgrade"),
            ("upgrade", kind),
            ("sec-websocket-key", WEBSOCKET_KEY),
            ("sec-websocket-version", "13"),
        ],
    ))
    .await?;
    let resp = w.response(false).await?;
    Ok((w, resp))
}

#[test]
pub(crate) fn websocket() {
    block_on(custom("websocket", async |rig: &Rig| {
        let mut out = Vec::new();
        let (mut w, resp) = upgrade_request(rig.addr("listener")?, "websocket").await?;
        let handshake = (
            resp.status,
            resp.header("upgrade").map(str::to_string),
            resp.header("sec-websocket-accept").map(str::to_string),
            resp.header("x-echo-backend").map(str::to_string),
        );
        let mut echoed = 0;
        if resp.status == 101 {
            let payload: Vec<u8> = (0..TUNNEL_BYTES).map(|i| (i % 241) as u8).collect();
            for piece in payload.chunks(TUNNEL_BYTES / 4) {
                w.send(piece).await?;
                if w.bytes(piece.len()).await? == piece {
                    echoed += piece.len();
                }
            }
        }
        out.push(Outcome::new(
            "the handshake succeeds and bytes flow both ways",
            (handshake, echoed),
            (
                (
                    101,
                    Some("websocket".to_string()),
                    Some(websocket_accept(WEBSOCKET_KEY.as_bytes())),
                    Some("a".to_string()),
                ),
                TUNNEL_BYTES,
            ),
        ));
        w.finish().await?;
        let closed = w.closed(CLOSE_WAIT).await?;
        out.push(Outcome::new(
            "closing the client side closes the tunnel",
            quiet_close(&closed),
            "closed",
        ));

        for (case, listener, kind) in [
            ("refused without upgrade_configs", "plain", "websocket"),
            (
                "refused when the route disables it",
                "route_off",
                "websocket",
            ),
            (
                "refused for an unconfigured upgrade type",
                "listener",
                "h2c-ish",
            ),
        ] {
            let (_, resp) = upgrade_request(rig.addr(listener)?, kind).await?;
            out.push(Outcome::new(
                case,
                answer(&resp),
                // Envoy closes the connection after refusing, since the client may already
                // be speaking the new protocol.
                (403, String::new(), true),
            ));
        }
        out.push(Outcome::new(
            "refused upgrades never reach the backend",
            rig.backend("a")?.served(),
            1,
        ));
        Ok(out)
    }));
}
