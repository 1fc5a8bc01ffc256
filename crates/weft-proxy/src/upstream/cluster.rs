//! A live cluster: its converted configuration, its current endpoints (swapped whole on
//! EDS/DNS updates), its statistics, and one connection pool per worker thread so that
//! workers never contend for upstream connections.

use super::connector::Connector;
use super::endpoints::{EndpointSet, Host, carry_over, hosts_of};
use super::pool::Pool;
use super::resources::Resources;
use crate::model::cluster::{ClusterConfig, Discovery, UpstreamProtocol};
use crate::stats_struct;
use crate::worker;
use arc_swap::ArcSwap;
use envoy_types::pb::envoy::config::cluster::v3::Cluster as PbCluster;
use std::sync::{Arc, OnceLock};

stats_struct!(
    /// `cluster.<name>.*`, named as Envoy names them.
    ClusterStats {
        counters: [
            upstream_cx_total,
            upstream_cx_connect_fail,
            upstream_cx_connect_timeout,
            upstream_cx_destroy,
            upstream_cx_none_healthy,
            upstream_cx_overflow,
            upstream_rq_total,
            upstream_rq_pending_total,
            upstream_rq_pending_overflow,
            upstream_rq_retry,
            upstream_rq_retry_success,
            upstream_rq_retry_overflow,
            upstream_rq_retry_limit_exceeded,
            upstream_rq_retry_backoff_exponential,
            upstream_rq_per_try_timeout,
            retry_or_shadow_abandoned,
            upstream_rq_completed,
            upstream_rq_timeout,
            upstream_rq_rx_reset,
            upstream_rq_1xx,
            upstream_rq_2xx,
            upstream_rq_3xx,
            upstream_rq_4xx,
            upstream_rq_5xx,
            update_attempt,
            update_success,
            update_empty,
        ],
        gauges: [
            upstream_cx_active,
            upstream_rq_active,
            upstream_rq_pending_active,
            membership_healthy,
            membership_total,
        ],
    }
);

impl ClusterStats {
    pub fn count_status(&self, status: u16) {
        match status / 100 {
            1 => self.upstream_rq_1xx.inc(),
            2 => self.upstream_rq_2xx.inc(),
            3 => self.upstream_rq_3xx.inc(),
            4 => self.upstream_rq_4xx.inc(),
            _ => self.upstream_rq_5xx.inc(),
        }
    }
}

/// Which HTTP version to speak upstream for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Http1,
    Http2,
}

pub struct Cluster {
    pub config: ClusterConfig,
    pub raw: PbCluster,
    pub endpoints: ArcSwap<EndpointSet>,
    pub stats: Arc<ClusterStats>,
    /// The circuit breakers' counts.
    pub resources: Arc<Resources>,
    pub connector: Connector,
    pools: Box<[OnceLock<Arc<Pool>>]>,
    /// Set once the first endpoint set arrived (EDS, DNS) or was given (STATIC).
    warmed: OnceLock<()>,
}

impl Cluster {
    pub fn new(config: ClusterConfig, raw: PbCluster, stats: Arc<ClusterStats>) -> Self {
        let resources = Arc::new(Resources::new(&config.circuit_breakers));
        let connector = Connector {
            connect_timeout: config.connect_timeout,
            keepalive: config.tcp_keepalive.clone(),
            stats: stats.clone(),
            resources: resources.clone(),
            source: config.source_addresses.clone().into(),
        };
        let c = Cluster {
            endpoints: ArcSwap::from_pointee(EndpointSet::new(Vec::new(), config.balancer)),
            resources,
            pools: (0..=worker::count()).map(|_| OnceLock::new()).collect(),
            config,
            raw,
            stats,
            connector,
            warmed: OnceLock::new(),
        };
        match &c.config.discovery {
            Discovery::Static(eps) => c.set_hosts(hosts_of(eps)),
            // Connections go wherever the downstream was headed; there is nothing to wait for.
            Discovery::OriginalDst => {
                let _ = c.warmed.set(());
            }
            _ => {}
        }
        c
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn is_warm(&self) -> bool {
        self.warmed.get().is_some()
    }

    pub fn set_hosts(&self, hosts: Vec<Host>) {
        self.stats.update_attempt.inc();
        self.stats.update_success.inc();
        if hosts.is_empty() {
            self.stats.update_empty.inc();
        }
        self.stats.membership_total.set(hosts.len() as i64);
        let hosts = carry_over(&self.endpoints.load(), hosts);
        let set = EndpointSet::new(hosts, self.config.balancer);
        self.stats
            .membership_healthy
            .set(set.healthy_count() as i64);
        self.endpoints.store(Arc::new(set));
        let _ = self.warmed.set(());
    }

    /// The protocol to use upstream, given the downstream request's.
    pub fn wire(&self, downstream: http::Version) -> Wire {
        match self.config.protocol {
            UpstreamProtocol::Http1 => Wire::Http1,
            UpstreamProtocol::Http2 => Wire::Http2,
            UpstreamProtocol::Downstream if downstream == http::Version::HTTP_2 => Wire::Http2,
            UpstreamProtocol::Downstream => Wire::Http1,
        }
    }

    /// This worker's connection pool.
    pub fn pool(&self) -> &Arc<Pool> {
        let slot = &self.pools[worker::current().min(self.pools.len() - 1)];
        slot.get_or_init(|| {
            Arc::new(Pool::new(
                self.connector.clone(),
                self.config.idle_timeout,
                self.config.max_requests_per_connection,
                self.config.h2.clone(),
            ))
        })
    }
}
