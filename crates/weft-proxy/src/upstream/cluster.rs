//! A live cluster: its converted configuration, its current endpoints (swapped whole on
//! EDS/DNS updates, ejections and returns), its statistics, its outlier detection, and one
//! connection pool per worker thread so that workers never contend for upstream
//! connections.

use super::connector::Connector;
use super::endpoints::{EndpointSet, Host, LbSettings, TableStats, carry_over, hosts_of};
use super::outlier::{Detector, Origin, Outcome, OutlierStats, enforced, statistical_outliers};
use super::pool::Pool;
use super::resources::Resources;
use super::tls::{SslStats, TlsSlot};
use crate::model::cluster::{ClusterConfig, Discovery, UpstreamProtocol};
use crate::stats_struct;
use crate::worker;
use arc_swap::ArcSwap;
use envoy_types::pb::envoy::config::cluster::v3::Cluster as PbCluster;
use parking_lot::Mutex;
use std::sync::{Arc, OnceLock, Weak};

stats_struct!(
    /// `cluster.<name>.*`, named as Envoy names them.
    ClusterStats {
        counters: [
            upstream_cx_total,
            upstream_cx_connect_fail,
            upstream_cx_connect_timeout,
            upstream_cx_destroy,
            upstream_cx_max_duration_reached,
            upstream_cx_none_healthy,
            lb_healthy_panic,
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

stats_struct!(
    /// `cluster.<name>.ring_hash_lb.*`.
    RingHashStats {
        counters: [],
        gauges: [size, min_hashes_per_host, max_hashes_per_host],
    }
);

stats_struct!(
    /// `cluster.<name>.maglev_lb.*`.
    MaglevStats {
        counters: [],
        gauges: [min_entries_per_host, max_entries_per_host],
    }
);

/// The statistics of a hashing balancer's table.
pub enum TableGauges {
    Ring(Arc<RingHashStats>),
    Maglev(Arc<MaglevStats>),
}

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
    /// Present when the cluster configures outlier detection.
    pub outlier_stats: Option<Arc<OutlierStats>>,
    /// Present for RING_HASH and MAGLEV clusters.
    table_gauges: Option<TableGauges>,
    /// Serializes whoever replaces the endpoint set (membership updates, ejections,
    /// returns), so none builds on a set another is replacing; pickers never take it.
    writer: Mutex<()>,
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
            tls: None,
        };
        let c = Cluster {
            endpoints: ArcSwap::from_pointee(EndpointSet::with_settings(
                Vec::new(),
                LbSettings::of(&config),
            )),
            resources,
            pools: (0..=worker::count()).map(|_| OnceLock::new()).collect(),
            config,
            raw,
            stats,
            connector,
            warmed: OnceLock::new(),
            outlier_stats: None,
            table_gauges: None,
            writer: Mutex::new(()),
        };
        match &c.config.discovery {
            Discovery::Static(eps) => c.set_hosts(hosts_of(eps)),
            // Connections go wherever the downstream was headed; there is nothing to wait for.
            Discovery::OriginalDst => {
                let _ = c.warmed.set(());
            }
            // Its one endpoint is a socket path the config sources dial themselves.
            Discovery::Pipe(path) => {
                tracing::info!(
                    cluster = %c.config.name,
                    path = %path.display(),
                    "a Unix socket endpoint serves xDS and SDS clients only: requests routed \
                     to this cluster find no healthy upstream"
                );
                c.set_hosts(Vec::new());
            }
            _ => {}
        }
        c
    }

    /// A TLS cluster's connector gets its slot for client configurations (filled by the
    /// store from the cluster's secrets) and its `ssl.*` statistics.
    pub fn with_tls(mut self, stats: Arc<SslStats>) -> Self {
        if self.config.tls.is_some() {
            let auto_san = self
                .config
                .auto_sni
                .as_ref()
                .is_some_and(|a| a.san_validation);
            self.connector.tls = Some(Arc::new(TlsSlot::new(stats, auto_san)));
        }
        self
    }

    /// Where this cluster's outlier statistics go (kept across configurations by the
    /// registry). Without outlier detection configured they are not used.
    pub fn with_outlier_stats(mut self, stats: Arc<OutlierStats>) -> Self {
        if self.config.outlier.is_some() {
            self.outlier_stats = Some(stats);
        }
        self
    }

    /// Where the hashing balancer's table statistics go. Static endpoints were published
    /// before this is known, so they are published again.
    pub fn with_table_gauges(mut self, gauges: TableGauges) -> Self {
        self.table_gauges = Some(gauges);
        if let Some(t) = self.endpoints.load().table_stats() {
            self.set_table_gauges(t);
        }
        self
    }

    fn set_table_gauges(&self, t: TableStats) {
        match (&self.table_gauges, t) {
            (Some(TableGauges::Ring(g)), TableStats::Ring([size, min, max])) => {
                g.size.set(size as i64);
                g.min_hashes_per_host.set(min as i64);
                g.max_hashes_per_host.set(max as i64);
            }
            (Some(TableGauges::Maglev(g)), TableStats::Maglev([min, max])) => {
                g.min_entries_per_host.set(min as i64);
                g.max_entries_per_host.set(max as i64);
            }
            _ => {}
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn is_warm(&self) -> bool {
        self.warmed.get().is_some()
    }

    pub fn set_hosts(&self, hosts: Vec<Host>) {
        let _writer = self.writer.lock();
        self.stats.update_attempt.inc();
        self.stats.update_success.inc();
        if hosts.is_empty() {
            self.stats.update_empty.inc();
        }
        self.stats.membership_total.set(hosts.len() as i64);
        let hosts = carry_over(&self.endpoints.load(), hosts);
        self.publish(hosts);
        let _ = self.warmed.set(());
    }

    /// Swaps in a set of `hosts` as they are now (healthy, ejected). Callers hold `writer`.
    fn publish(&self, hosts: Vec<Arc<Host>>) {
        let set = EndpointSet::with_settings(hosts, LbSettings::of(&self.config));
        self.stats
            .membership_healthy
            .set(set.healthy_count() as i64);
        if let Some(s) = &self.outlier_stats {
            s.ejections_active.set(set.ejected_count() as i64);
        }
        if let Some(t) = set.table_stats() {
            self.set_table_gauges(t);
        }
        self.endpoints.store(Arc::new(set));
    }

    /// Charges one try's result to `host` for outlier detection. The common case is a few
    /// atomic operations; only a detection takes the writer lock.
    pub fn record(&self, host: &Arc<Host>, outcome: Outcome) {
        let Some(config) = &self.config.outlier else {
            return;
        };
        for d in host.outlier.record(config, outcome).into_iter().flatten() {
            self.detected(host, d);
        }
    }

    /// Envoy's handling of a consecutive-error detection: count it, eject the host if the
    /// cap allows and enforcement says so, and start the host's run over.
    fn detected(&self, host: &Arc<Host>, d: Detector) {
        let Some(stats) = &self.outlier_stats else {
            return;
        };
        let _writer = self.writer.lock();
        let set = self.endpoints.load();
        // Gone in a membership update, or ejected by an earlier detection.
        if !set.hosts.iter().any(|h| Arc::ptr_eq(h, host)) || host.outlier.is_ejected() {
            return;
        }
        d.count_detected(stats);
        if self.eject(&set.hosts, host, d) {
            self.publish(set.hosts.clone());
        }
        if d == Detector::Consecutive5xx {
            stats.ejections_consecutive_5xx.inc();
        }
        host.outlier.reset(d);
    }

    /// Envoy's `ejectHost`: ejects `host` if the ejection cap allows and the detector's
    /// enforcement says so (`true` then; the caller publishes the new set).
    fn eject(&self, hosts: &[Arc<Host>], host: &Arc<Host>, d: Detector) -> bool {
        let (Some(config), Some(stats)) = (&self.config.outlier, &self.outlier_stats) else {
            return false;
        };
        let active = hosts.iter().filter(|h| h.outlier.is_ejected()).count();
        let share = 100.0 * (active + 1) as f64 / hosts.len() as f64;
        let allowed = share <= f64::from(config.max_ejection_percent)
            || (config.always_eject_one_host && active == 0);
        if !allowed {
            stats.ejections_overflow.inc();
            return false;
        }
        if matches!(d, Detector::Consecutive5xx | Detector::SuccessRate) {
            stats.ejections_total.inc();
        }
        if !enforced(d.enforcing(config)) {
            return false;
        }
        d.count_enforced(stats);
        host.outlier.eject(config, tokio::time::Instant::now());
        tracing::debug!(cluster = %self.config.name, host = %host.addr, ?d, "ejected");
        true
    }

    /// The outlier detection interval, in Envoy's order: hosts whose ejection time is up
    /// return, the success rates of the interval just ended are judged, and hosts that
    /// stayed back earn down their back-off.
    pub fn outlier_tick(&self) {
        let (Some(config), Some(stats)) = (&self.config.outlier, &self.outlier_stats) else {
            return;
        };
        let _writer = self.writer.lock();
        let set = self.endpoints.load();
        let hosts = &set.hosts;
        let now = tokio::time::Instant::now();
        let mut changed = false;
        for h in hosts {
            changed |= h.outlier.tick(config, now);
            h.outlier.swap_buckets();
        }
        for origin in [Origin::External, Origin::Local] {
            let rates: Vec<(usize, Option<(f64, u64)>)> = (0..hosts.len())
                .filter(|i| !hosts[*i].outlier.is_ejected())
                .map(|i| (i, hosts[i].outlier.last_rate(origin)))
                .collect();
            for (i, d) in statistical_outliers(&config.statistical, hosts.len(), &rates, origin) {
                // Found by both detectors of this pass: counted twice, as Envoy counts
                // it, but ejected once.
                if matches!(d, Detector::SuccessRate | Detector::SuccessRateLocalOrigin) {
                    stats.ejections_success_rate.inc();
                }
                d.count_detected(stats);
                if hosts[i].outlier.is_ejected() {
                    continue;
                }
                changed |= self.eject(hosts, &hosts[i], d);
            }
        }
        for h in hosts {
            h.outlier.ease_backoff(config, now);
        }
        if changed {
            self.publish(hosts.clone());
        }
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

    /// Runs outlier detection's interval timer for as long as the cluster lives; does
    /// nothing without outlier detection or outside a runtime.
    pub fn spawn_outlier_timer(self: &Arc<Self>) {
        let Some(config) = &self.config.outlier else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let interval = config.interval;
        let weak: Weak<Cluster> = Arc::downgrade(self);
        rt.spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(c) = weak.upgrade() else { return };
                c.outlier_tick();
            }
        });
    }

    /// This worker's connection pool.
    pub fn pool(&self) -> &Arc<Pool> {
        let slot = &self.pools[worker::current().min(self.pools.len() - 1)];
        slot.get_or_init(|| {
            Arc::new(Pool::new(
                self.connector.clone(),
                self.config.idle_timeout,
                self.config.max_connection_duration,
                self.config.max_requests_per_connection,
                self.config.h2.clone(),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::cluster::v3::OutlierDetection;
    use envoy_types::pb::envoy::config::cluster::v3::cluster::CommonLbConfig;
    use envoy_types::pb::envoy::config::core::v3::{
        Address, SocketAddress, address, socket_address::PortSpecifier,
    };
    use envoy_types::pb::envoy::config::endpoint::v3::{
        ClusterLoadAssignment, Endpoint as PbEndpoint, LbEndpoint, LocalityLbEndpoints,
        lb_endpoint::HostIdentifier,
    };
    use envoy_types::pb::envoy::r#type::v3::Percent;
    use envoy_types::pb::google::protobuf::{Duration as PbDuration, UInt32Value};

    fn static_cluster(
        ports: &[u16],
        od: Option<OutlierDetection>,
        panic: Option<f64>,
    ) -> PbCluster {
        let lb_endpoints = ports
            .iter()
            .map(|p| LbEndpoint {
                host_identifier: Some(HostIdentifier::Endpoint(PbEndpoint {
                    address: Some(Address {
                        address: Some(address::Address::SocketAddress(SocketAddress {
                            address: "127.0.0.1".into(),
                            port_specifier: Some(PortSpecifier::PortValue(u32::from(*p))),
                            ..Default::default()
                        })),
                    }),
                    ..Default::default()
                })),
                ..Default::default()
            })
            .collect();
        PbCluster {
            name: "c".into(),
            outlier_detection: od,
            common_lb_config: panic.map(|v| CommonLbConfig {
                healthy_panic_threshold: Some(Percent { value: v }),
                ..Default::default()
            }),
            load_assignment: Some(ClusterLoadAssignment {
                cluster_name: "c".into(),
                endpoints: vec![LocalityLbEndpoints {
                    lb_endpoints,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn outlier(max_percent: u32) -> OutlierDetection {
        OutlierDetection {
            consecutive_5xx: Some(UInt32Value { value: 2 }),
            base_ejection_time: Some(PbDuration {
                seconds: 0,
                nanos: 1_000_000,
            }),
            max_ejection_percent: Some(UInt32Value { value: max_percent }),
            enforcing_success_rate: Some(UInt32Value { value: 0 }),
            ..Default::default()
        }
    }

    fn live(pb: PbCluster) -> (Cluster, Arc<OutlierStats>) {
        let config = ClusterConfig::new(&pb).expect("the cluster converts");
        let stats = Arc::new(OutlierStats::default());
        let c = Cluster::new(config, pb, Arc::new(ClusterStats::default()))
            .with_outlier_stats(stats.clone());
        (c, stats)
    }

    fn ports_picked(c: &Cluster, n: usize) -> std::collections::BTreeSet<u16> {
        let set = c.endpoints.load();
        (0..n)
            .filter_map(|_| set.pick(None).map(|h| h.addr.port()))
            .collect()
    }

    #[test]
    fn consecutive_5xx_ejects_a_host_until_its_time_is_up() {
        let (c, stats) = live(static_cluster(&[1, 2], Some(outlier(50)), Some(0.0)));
        let bad = c.endpoints.load().hosts[0].clone();
        c.record(&bad, Outcome::Status(503));
        assert!(!bad.outlier.is_ejected());
        c.record(&bad, Outcome::Status(503));
        assert!(bad.outlier.is_ejected());
        assert_eq!(stats.ejections_enforced_consecutive_5xx.get(), 1);
        assert_eq!(stats.ejections_active.get(), 1);
        assert_eq!(c.stats.membership_healthy.get(), 1);
        assert_eq!(ports_picked(&c, 20), [2].into());
        // One millisecond of ejection; the interval tick brings the host back.
        std::thread::sleep(std::time::Duration::from_millis(5));
        c.outlier_tick();
        assert!(!bad.outlier.is_ejected());
        assert_eq!(stats.ejections_active.get(), 0);
        assert_eq!(ports_picked(&c, 20), [1, 2].into());
    }

    #[test]
    fn the_ejection_cap_overflows_and_panic_uses_every_host() {
        // Envoy's default cap of 10% cannot take one host of two.
        let (c, stats) = live(static_cluster(&[1, 2], Some(outlier(10)), None));
        let bad = c.endpoints.load().hosts[0].clone();
        c.record(&bad, Outcome::Status(500));
        c.record(&bad, Outcome::Status(500));
        assert!(!bad.outlier.is_ejected());
        assert_eq!(stats.ejections_detected_consecutive_5xx.get(), 1);
        assert_eq!(stats.ejections_overflow.get(), 1);
        // Both ejected: below the default 50% panic threshold, so both still serve.
        let (c, _) = live(static_cluster(&[1, 2], Some(outlier(100)), None));
        for h in c.endpoints.load().hosts.clone() {
            c.record(&h, Outcome::ConnectFailed);
            c.record(&h, Outcome::ConnectFailed);
            assert!(h.outlier.is_ejected());
        }
        assert!(c.endpoints.load().in_panic());
        assert_eq!(ports_picked(&c, 40), [1, 2].into());
        // With panic off there is nothing left to pick.
        let (c, _) = live(static_cluster(&[1, 2], Some(outlier(100)), Some(0.0)));
        for h in c.endpoints.load().hosts.clone() {
            c.record(&h, Outcome::Timeout);
            c.record(&h, Outcome::Timeout);
        }
        assert!(c.endpoints.load().pick(None).is_none());
    }

    #[test]
    fn lb_policies_and_their_configs_convert() {
        use envoy_types::pb::envoy::config::cluster::v3::cluster::{
            LbConfig, LbPolicy, MaglevLbConfig, RingHashLbConfig,
        };
        use envoy_types::pb::google::protobuf::UInt64Value;
        let mut pb = static_cluster(&[1], None, Some(25.4));
        pb.lb_policy = LbPolicy::Random as i32;
        let c = ClusterConfig::new(&pb).expect("random");
        assert_eq!(c.balancer, crate::model::cluster::Balancer::Random);
        assert_eq!(c.panic_threshold, 25);
        pb.lb_policy = LbPolicy::RingHash as i32;
        pb.lb_config = Some(LbConfig::RingHashLbConfig(RingHashLbConfig {
            minimum_ring_size: Some(UInt64Value { value: 2048 }),
            maximum_ring_size: Some(UInt64Value { value: 1024 }),
            hash_function: 0,
        }));
        let e = ClusterConfig::new(&pb).expect_err("min > max");
        assert!(
            e.message
                .contains("minimum_ring_size (2048) > maximum_ring_size (1024)"),
            "{e}"
        );
        pb.lb_config = Some(LbConfig::RingHashLbConfig(RingHashLbConfig {
            hash_function: 1,
            ..Default::default()
        }));
        let e = ClusterConfig::new(&pb).expect_err("murmur");
        assert!(e.to_string().contains("hash_function"), "{e}");
        pb.lb_policy = LbPolicy::Maglev as i32;
        pb.lb_config = Some(LbConfig::MaglevLbConfig(MaglevLbConfig {
            table_size: Some(UInt64Value { value: 100 }),
        }));
        let e = ClusterConfig::new(&pb).expect_err("not prime");
        assert!(e.message.contains("prime"), "{e}");
        pb.lb_config = None;
        let c = ClusterConfig::new(&pb).expect("maglev");
        assert_eq!(
            c.balancer,
            crate::model::cluster::Balancer::Maglev { table_size: 65537 }
        );
    }
}
