//! HTTP/1.1 upgrades (WebSocket and friends): when the upstream answers `101 Switching
//! Protocols`, both sides stop speaking HTTP and the proxy splices the two raw streams.

use http::{Request, header};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

/// The upgrade a request asks for (`websocket`), if it carries `Connection: upgrade`.
pub fn requested<B>(req: &Request<B>) -> Option<String> {
    let h = req.headers();
    let wants = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if !wants {
        return None;
    }
    h.get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
}

/// Copies bytes both ways between the upgraded downstream and upstream until both close;
/// `held` (the request's claim on its cluster) is released when the tunnel ends.
pub fn splice<T: Send + 'static>(down: OnUpgrade, up: OnUpgrade, held: T) {
    tokio::spawn(async move {
        let _held = held;
        let (Ok(down), Ok(up)) = (down.await, up.await) else {
            return;
        };
        let mut down = TokioIo::new(down);
        let mut up = TokioIo::new(up);
        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
    });
}
