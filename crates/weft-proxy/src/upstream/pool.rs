//! Upstream connection pools, one per cluster per worker. HTTP/1.1 connections are reused
//! one request at a time (returned to the pool when the response body ends); HTTP/2 has one
//! multiplexed connection per host. The proxy drives hyper's connection types directly so
//! that requests keep their own `Host` / `:authority` while going to the endpoint chosen by
//! the load balancer.

use super::connector::{ConnectError, Connector};
use crate::http::body::Body;
use crate::model::cluster::H2Settings;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Why an upstream request failed, in the terms Envoy's responses use.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("{0}")]
    Connect(#[from] ConnectError),
    /// The connection closed or reset before response headers arrived.
    #[error("{0}")]
    Reset(hyper::Error),
}

struct IdleH1 {
    sender: http1::SendRequest<Body>,
    since: Instant,
    served: u32,
}

pub struct Pool {
    connector: Connector,
    idle_timeout: Option<Duration>,
    max_requests: Option<u32>,
    h2_settings: H2Settings,
    h1_idle: Mutex<HashMap<SocketAddr, Vec<IdleH1>>>,
    h2: Mutex<HashMap<SocketAddr, http2::SendRequest<Body>>>,
}

/// An HTTP/1.1 connection lent out for one request; [`Pool::give_back`] returns it.
pub struct Lease {
    pool: Arc<Pool>,
    addr: SocketAddr,
    sender: http1::SendRequest<Body>,
    served: u32,
}

impl Pool {
    pub fn new(
        connector: Connector,
        idle_timeout: Option<Duration>,
        max_requests: Option<u32>,
        h2_settings: H2Settings,
    ) -> Self {
        Pool {
            connector,
            idle_timeout,
            max_requests,
            h2_settings,
            h1_idle: Mutex::new(HashMap::new()),
            h2: Mutex::new(HashMap::new()),
        }
    }

    /// Sends over HTTP/1.1; the lease goes back to the pool when the response is consumed.
    pub async fn send_h1(
        self: &Arc<Self>,
        addr: SocketAddr,
        mut req: http::Request<Body>,
    ) -> Result<(http::Response<Incoming>, Lease), UpstreamError> {
        while let Some(mut lease) = self.take_idle(addr) {
            // A connection whose previous response just ended may need a moment to become
            // ready; one that closed meanwhile fails here and the next is tried.
            if lease.sender.ready().await.is_err() {
                continue;
            }
            match lease.sender.try_send_request(req).await {
                Ok(resp) => {
                    lease.served += 1;
                    return Ok((resp, lease));
                }
                // The connection died while idle and the request never left: use a new one.
                Err(mut e) => match e.take_message() {
                    Some(r) if e.error().is_canceled() || e.error().is_closed() => req = r,
                    _ => return Err(UpstreamError::Reset(e.into_error())),
                },
            }
        }
        let mut sender = Box::pin(self.open_h1(addr)).await?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(UpstreamError::Reset)?;
        Ok((
            resp,
            Lease {
                pool: self.clone(),
                addr,
                sender,
                served: 1,
            },
        ))
    }

    fn take_idle(self: &Arc<Self>, addr: SocketAddr) -> Option<Lease> {
        let mut idle = self.h1_idle.lock();
        let list = idle.get_mut(&addr)?;
        let now = Instant::now();
        while let Some(c) = list.pop() {
            let fresh = self
                .idle_timeout
                .is_none_or(|t| now.duration_since(c.since) < t);
            if fresh && !c.sender.is_closed() {
                return Some(Lease {
                    pool: self.clone(),
                    addr,
                    sender: c.sender,
                    served: c.served,
                });
            }
        }
        None
    }

    // Opening a connection is the rare path; boxing it keeps the per-request future (which
    // hyper moves around) small.
    async fn open_h1(&self, addr: SocketAddr) -> Result<http1::SendRequest<Body>, UpstreamError> {
        let io = self.connector.connect(addr).await?;
        let (sender, conn) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(UpstreamError::Reset)?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(sender)
    }

    async fn open_h2(&self, addr: SocketAddr) -> Result<http2::SendRequest<Body>, UpstreamError> {
        let io = self.connector.connect(addr).await?;
        let mut b = http2::Builder::new(TokioExecutor::new());
        b.timer(TokioTimer::new())
            .initial_stream_window_size(self.h2_settings.initial_stream_window_size)
            .initial_connection_window_size(self.h2_settings.initial_connection_window_size)
            .keep_alive_interval(self.h2_settings.keepalive_interval)
            .header_table_size(self.h2_settings.header_table_size);
        if let Some(t) = self.h2_settings.keepalive_timeout {
            b.keep_alive_timeout(t);
        }
        let (sender, conn) = b.handshake(io).await.map_err(UpstreamError::Reset)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// Returns a connection whose response was read to the end.
    pub fn give_back(lease: Lease) {
        let Lease {
            pool,
            addr,
            sender,
            served,
        } = lease;
        if pool.max_requests.is_some_and(|m| served >= m) || sender.is_closed() {
            return;
        }
        pool.h1_idle.lock().entry(addr).or_default().push(IdleH1 {
            sender,
            since: Instant::now(),
            served,
        });
    }

    /// Sends over HTTP/2 on the host's shared connection (opened on first use).
    pub async fn send_h2(
        &self,
        addr: SocketAddr,
        req: http::Request<Body>,
    ) -> Result<http::Response<Incoming>, UpstreamError> {
        let existing = {
            let mut h2 = self.h2.lock();
            match h2.get(&addr) {
                Some(s) if !s.is_closed() => Some(s.clone()),
                Some(_) => {
                    h2.remove(&addr);
                    None
                }
                None => None,
            }
        };
        let mut sender = match existing {
            Some(s) => s,
            None => {
                let sender = Box::pin(self.open_h2(addr)).await?;
                self.h2.lock().insert(addr, sender.clone());
                sender
            }
        };
        sender.send_request(req).await.map_err(UpstreamError::Reset)
    }
}
