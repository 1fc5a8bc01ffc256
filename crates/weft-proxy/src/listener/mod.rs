//! Accepting connections. Each worker runs one accept loop per bound listener (all workers
//! share the listening socket); a new connection goes through the listener filters
//! (original destination, TLS and HTTP inspection), may be handed to the
//! `bind_to_port: false` listener for its original destination, and is served by the filter
//! chain that matches it.

pub mod inspect;

use crate::config::snapshot::{ActiveListener, ChainStats, Shared, Snapshot};
use crate::model::listener::{ConnectionFacts, ListenerFilter, NetworkFilter};
use crate::stats_struct;
use inspect::Rewind;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

stats_struct!(
    /// `listener.<address>.*`, named as Envoy names them.
    ListenerStats {
        counters: [
            downstream_cx_total,
            downstream_cx_destroy,
            no_filter_chain_match,
            downstream_listener_filter_error,
            downstream_pre_cx_timeout,
        ],
        gauges: [downstream_cx_active],
    }
);

/// Downstream connections open across all workers, for draining.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

pub fn active_connections() -> usize {
    ACTIVE.load(Ordering::Relaxed)
}

/// Runs on a worker: keeps one accept loop per bound listener of the current snapshot.
pub async fn run_worker(
    shared: Shared,
    mut generations: watch::Receiver<u64>,
    drain: CancellationToken,
) {
    // Listener name → (socket identity, stop signal).
    let mut loops: HashMap<String, (usize, CancellationToken)> = HashMap::new();
    loop {
        let snapshot = shared.load_full();
        let mut keep = Vec::new();
        let listeners = snapshot.listeners.iter().filter(|_| snapshot.serving);
        for (name, l) in listeners {
            let Some(socket) = &l.socket else { continue };
            let id = Arc::as_ptr(socket) as usize;
            keep.push(name.clone());
            if loops.get(name).is_some_and(|(i, _)| *i == id) {
                continue;
            }
            if let Some((_, stop)) = loops.remove(name) {
                stop.cancel();
            }
            // Listening twice is harmless: every worker does it, the first one opens the door.
            let backlog = l
                .config
                .backlog
                .map_or(1024, |b| b.min(i32::MAX as u32) as i32);
            if let Err(e) = socket2::SockRef::from(socket.as_ref()).listen(backlog) {
                tracing::error!(listener = %name, error = %e, "cannot listen");
                continue;
            }
            let std_listener = match socket.try_clone() {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(listener = %name, error = %e, "cannot share listening socket");
                    continue;
                }
            };
            let listener = match TcpListener::from_std(std_listener) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(listener = %name, error = %e, "cannot register listening socket");
                    continue;
                }
            };
            let stop = drain.child_token();
            tokio::spawn(accept_loop(
                listener,
                name.clone(),
                shared.clone(),
                stop.clone(),
                drain.clone(),
            ));
            loops.insert(name.clone(), (id, stop));
        }
        loops.retain(|name, (_, stop)| {
            let live = keep.contains(name);
            if !live {
                stop.cancel();
            }
            live
        });
        tokio::select! {
            r = generations.changed() => if r.is_err() { break },
            _ = drain.cancelled() => break,
        }
    }
    for (_, (_, stop)) in loops {
        stop.cancel();
    }
}

async fn accept_loop(
    listener: TcpListener,
    name: String,
    shared: Shared,
    stop: CancellationToken,
    drain: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, remote)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_connection(
                    stream,
                    remote,
                    name.clone(),
                    shared.clone(),
                    drain.clone(),
                ));
            }
            Err(e) => {
                // Out of file descriptors and similar: back off instead of spinning.
                tracing::warn!(listener = %name, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// The original destination of a redirected connection (iptables REDIRECT/TPROXY).
fn original_dst(s: &TcpStream, local: SocketAddr) -> SocketAddr {
    let sock = socket2::SockRef::from(s);
    let got = if local.is_ipv4() {
        sock.original_dst_v4()
    } else {
        sock.original_dst_v6()
    };
    got.ok().and_then(|a| a.as_socket()).unwrap_or(local)
}

async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    name: String,
    shared: Shared,
    drain: CancellationToken,
) {
    let snapshot: Arc<Snapshot> = shared.load_full();
    let Some(receiving) = snapshot.listeners.get(&name).cloned() else {
        return;
    };
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let wants_dst = receiving.config.use_original_dst
        || receiving.config.runs(ListenerFilter::OriginalDst, local);
    let dst = if wants_dst {
        original_dst(&stream, local)
    } else {
        local
    };
    // Envoy hands a redirected connection to the listener for its original destination.
    let listener: Arc<ActiveListener> = if receiving.config.use_original_dst && dst != local {
        snapshot
            .virtual_listener(dst)
            .cloned()
            .unwrap_or(receiving.clone())
    } else {
        receiving.clone()
    };
    drop(snapshot);
    let stats = listener.stats.clone();
    ACTIVE.fetch_add(1, Ordering::Relaxed);
    stats.downstream_cx_total.inc();
    stats.downstream_cx_active.inc();
    let mut io = Rewind::new(stream);
    let runs = |kind| listener.config.runs(kind, dst) || receiving.config.runs(kind, dst);
    let tls = runs(ListenerFilter::TlsInspector);
    let http = runs(ListenerFilter::HttpInspector);
    let mut inspection = inspect::Inspection {
        transport: "raw_buffer",
        ..Default::default()
    };
    if tls || http {
        let timeout = listener.config.listener_filters_timeout;
        let run = inspect::inspect(&mut io, tls, http);
        let result = match timeout {
            Some(t) => tokio::time::timeout(t, run).await.ok(),
            None => Some(run.await),
        };
        match result {
            Some(Ok(found)) => inspection = found,
            Some(Err(_)) => {
                stats.downstream_listener_filter_error.inc();
                return finish(&stats);
            }
            None => {
                stats.downstream_pre_cx_timeout.inc();
                if !listener.config.continue_on_listener_filters_timeout {
                    return finish(&stats);
                }
            }
        }
    }
    let facts = ConnectionFacts {
        local: dst,
        remote,
        server_name: inspection.server_name.as_deref(),
        transport_protocol: inspection.transport,
        application_protocols: &inspection.alpn,
    };
    let Some(chain) = listener.config.select_chain(&facts) else {
        stats.no_filter_chain_match.inc();
        return finish(&stats);
    };
    let index = listener
        .config
        .chains
        .iter()
        .position(|c| std::ptr::eq(c, chain))
        .unwrap_or(listener.config.chains.len());
    let original = (dst != local).then_some(dst);
    match (&chain.filter, listener.chain_stats.get(index)) {
        (NetworkFilter::Http(hcm), Some(ChainStats::Http(hstats))) => {
            let conn = crate::http::server::Conn {
                remote,
                local: dst,
                original_dst: original,
            };
            crate::http::server::serve(io, conn, hcm.clone(), hstats.clone(), shared, drain).await;
        }
        (NetworkFilter::TcpProxy(t), Some(ChainStats::Tcp(tstats))) => {
            let ends = crate::tcp_proxy::Ends {
                remote,
                original_dst: original.unwrap_or(dst),
            };
            crate::tcp_proxy::serve(io, t, tstats.clone(), &shared, ends).await;
        }
        _ => {}
    }
    finish(&stats);
}

fn finish(stats: &ListenerStats) {
    ACTIVE.fetch_sub(1, Ordering::Relaxed);
    stats.downstream_cx_active.dec();
    stats.downstream_cx_destroy.inc();
}
