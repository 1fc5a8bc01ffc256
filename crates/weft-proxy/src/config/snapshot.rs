//! The configuration the data path reads: a complete, consistent set of active listeners,
//! routes and clusters, published whole through an atomic pointer swap. Requests load it
//! once and keep using the version they started with, so updates never tear a request.

use crate::http::HttpStats;
use crate::http::fault::FaultStats;
use crate::listener::ListenerStats;
use crate::model::hcm::HttpFilter;
use crate::model::listener::{ListenerConfig, NetworkFilter};
use crate::model::route::RouteConfig;
use crate::stats::Registry;
use crate::tcp_proxy::TcpStats;
use crate::upstream::cluster::Cluster;
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

/// Statistics of one filter chain.
pub enum ChainStats {
    Http(HttpChainStats),
    Tcp(Arc<TcpStats>),
}

/// An HTTP chain's statistics: the connection manager's, and its fault filter's when it
/// has one.
#[derive(Clone)]
pub struct HttpChainStats {
    pub http: Arc<HttpStats>,
    pub fault: Option<Arc<FaultStats>>,
}

/// A listener that is serving (its routes have arrived).
pub struct ActiveListener {
    pub config: Arc<ListenerConfig>,
    pub stats: Arc<ListenerStats>,
    /// One per `config.chains`, then one for the default chain if there is one.
    pub chain_stats: Vec<ChainStats>,
    /// The bound socket (`None` for `bind_to_port: false`).
    pub socket: Option<Arc<std::net::TcpListener>>,
}

impl ActiveListener {
    pub fn new(
        config: Arc<ListenerConfig>,
        socket: Option<Arc<std::net::TcpListener>>,
        registry: &Registry,
    ) -> Self {
        let stats = registry.scope(
            &format!(
                "listener.{}_{}.",
                config.address.ip(),
                config.address.port()
            ),
            Default::default,
        );
        let chain_stats = config
            .chains
            .iter()
            .chain(config.default_chain.as_ref())
            .map(|c| match &c.filter {
                NetworkFilter::Http(h) => ChainStats::Http(HttpChainStats {
                    http: registry.scope(&format!("http.{}.", h.stat_prefix), Default::default),
                    fault: h
                        .filters
                        .iter()
                        .any(|f| matches!(f, HttpFilter::Fault(_)))
                        .then(|| {
                            registry
                                .scope(&format!("http.{}.fault.", h.stat_prefix), Default::default)
                        }),
                }),
                NetworkFilter::TcpProxy(t) => ChainStats::Tcp(
                    registry.scope(&format!("tcp.{}.", t.stat_prefix), Default::default),
                ),
            })
            .collect();
        ActiveListener {
            config,
            stats,
            chain_stats,
            socket,
        }
    }
}

#[derive(Default)]
pub struct Snapshot {
    pub generation: u64,
    /// Whether listeners take connections yet (the server has initialised).
    pub serving: bool,
    pub listeners: BTreeMap<String, Arc<ActiveListener>>,
    pub routes: HashMap<String, Arc<RouteConfig>>,
    pub clusters: HashMap<String, Arc<Cluster>>,
}

impl Snapshot {
    /// The `bind_to_port: false` listener that takes connections redirected to `dst`
    /// (an exact address first, then the wildcard address on the same port).
    pub fn virtual_listener(&self, dst: SocketAddr) -> Option<&Arc<ActiveListener>> {
        let exact = self
            .listeners
            .values()
            .find(|l| !l.config.bind_to_port && l.config.address == dst);
        exact.or_else(|| {
            self.listeners.values().find(|l| {
                !l.config.bind_to_port
                    && l.config.address.port() == dst.port()
                    && l.config.address.ip().is_unspecified()
                    && l.config.address.is_ipv4() == dst.is_ipv4()
            })
        })
    }
}

/// The published snapshot, shared by every worker.
pub type Shared = Arc<ArcSwap<Snapshot>>;
