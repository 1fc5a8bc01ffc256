//! The raw TCP echo, for `tcp_proxy` tests: bytes in, same bytes out, until the peer closes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub(super) async fn serve(listener: TcpListener, served: Arc<AtomicU64>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((mut stream, _)) = accepted else { continue };
                served.fetch_add(1, Ordering::Relaxed);
                conns.spawn(async move {
                    let (mut r, mut w) = stream.split();
                    // An error here is the peer going away; nothing to report to it.
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}
