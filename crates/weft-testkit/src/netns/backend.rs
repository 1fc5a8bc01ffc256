//! A backend at a fixed address inside the test's namespace: the kit's echo servers bind
//! `127.0.0.1:0`, but capture needs backends at the "pod" addresses the client dials
//! (10.99.0.x), so a byte-for-byte TCP relay listens there and forwards to the echo. The echo
//! still answers with its own name, which is what tells a test where a request ended up.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::{EchoServer, Error};

/// An HTTP echo named `name`, reachable at `at`; both stop when dropped.
#[derive(Debug)]
pub struct Backend {
    addr: SocketAddr,
    // Held so the echo lives as long as the relay in front of it.
    _echo: EchoServer,
    relay: JoinHandle<()>,
}

impl Backend {
    pub async fn start(name: &str, at: SocketAddr) -> Result<Self, Error> {
        let echo = EchoServer::http(name).await?;
        let listener = TcpListener::bind(at)
            .await
            .map_err(Error::io(format!("binding backend {name} at {at}")))?;
        let relay = tokio::spawn(forward(listener, echo.addr()));
        Ok(Self {
            addr: at,
            _echo: echo,
            relay,
        })
    }

    /// Where the relay listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        // The JoinSet of open relays lives in the task, so this ends them too.
        self.relay.abort();
    }
}

async fn forward(listener: TcpListener, to: SocketAddr) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((mut inbound, _)) = accepted else { continue };
                conns.spawn(async move {
                    // A failure on either side just ends this connection; the client sees
                    // it closed, which is what a dead backend looks like.
                    if let Ok(mut outbound) = TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}
