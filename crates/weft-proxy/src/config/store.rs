//! The configuration store. Resources arrive per type (from a bootstrap's static resources or
//! an xDS response), are converted one by one — a bad one is rejected with its reason while
//! the rest apply — and wait ("warm") until what they depend on has arrived, as Envoy's do:
//! a listener until its RDS routes, a cluster until its first endpoints. Then a new snapshot
//! is published for the workers.

use super::secrets::Secrets;
use super::snapshot::{ActiveListener, Shared, Snapshot};
use crate::model::cluster::{Balancer, ClusterConfig, Discovery};
use crate::model::endpoint::{self, Endpoint, HostPort};
use crate::model::hcm::RouteSource;
use crate::model::listener::{ListenerConfig, NetworkFilter};
use crate::model::route::RouteConfig;
use crate::model::{ConvertError, support};
use crate::stats::Registry;
use crate::upstream::cluster::{Cluster, ClusterStats, MaglevStats, RingHashStats, TableGauges};
use crate::upstream::dns;
use crate::upstream::endpoints::hosts_of;
use crate::upstream::outlier::OutlierStats;
use crate::upstream::resources::CircuitBreakerStats;
use crate::upstream::tls::SslStats;
use envoy_types::pb::envoy::config::cluster::v3::Cluster as PbCluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener as PbListener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;

/// How long a resource may wait for its dependencies before it is used anyway (Envoy's
/// default `initial_fetch_timeout`).
pub const WARMING_TIMEOUT: Duration = Duration::from_secs(15);

/// One accepted resource and when/which version it came in.
#[derive(Clone)]
pub struct Accepted<T, P> {
    pub config: Arc<T>,
    pub raw: P,
    pub version: String,
    pub updated: SystemTime,
    /// From the bootstrap's `static_resources`: xDS may not replace or remove it.
    pub is_static: bool,
}

impl<T, P> Accepted<T, P> {
    pub(super) fn new(config: Arc<T>, raw: P, version: &str, is_static: bool) -> Self {
        Accepted {
            config,
            raw,
            version: version.to_string(),
            updated: SystemTime::now(),
            is_static,
        }
    }
}

pub struct ListenerEntry {
    pub accepted: Accepted<ListenerConfig, PbListener>,
    pub socket: Option<Arc<std::net::TcpListener>>,
}

pub struct ClusterEntry {
    pub cluster: Arc<Cluster>,
    pub version: String,
    pub updated: SystemTime,
    pub is_static: bool,
}

#[derive(Default)]
pub struct Store {
    pub listeners: BTreeMap<String, ListenerEntry>,
    pub warming_listeners: BTreeMap<String, ListenerEntry>,
    pub routes: BTreeMap<String, Accepted<RouteConfig, RouteConfiguration>>,
    pub clusters: BTreeMap<String, ClusterEntry>,
    pub warming_clusters: BTreeMap<String, ClusterEntry>,
    pub assignments: BTreeMap<String, Accepted<Vec<Endpoint<HostPort>>, ClusterLoadAssignment>>,
    pub secrets: Secrets,
    pub registry: Arc<Registry>,
    pub shared: Shared,
    /// Woken when something warmed outside an update (a DNS answer), to publish again.
    pub republish: Arc<Notify>,
    /// Set once the server has initialised: only then do listeners take connections.
    pub serving: bool,
    /// Tells the workers a new snapshot is out.
    pub generations: Option<tokio::sync::watch::Sender<u64>>,
    generation: u64,
}

/// Errors of one update, one line per rejected resource (Envoy joins them the same way).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected(pub Vec<String>);

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

fn is_overdue(now: SystemTime, since: SystemTime) -> bool {
    now.duration_since(since).unwrap_or_default() >= WARMING_TIMEOUT
}

pub(super) fn describe(kind: &str, name: &str, errors: &[ConvertError]) -> String {
    let parts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    format!("{kind} '{name}': {}", parts.join("; "))
}

/// Binds a listener's socket the way Envoy does (address reuse, port reuse). It does not
/// listen yet: like Envoy, the proxy takes connections only once the listener has warmed and
/// the server has initialised, so until then connections are refused, not left waiting.
pub fn bind(addr: SocketAddr, backlog: Option<u32>) -> std::io::Result<std::net::TcpListener> {
    let domain = socket2::Domain::for_address(addr);
    let s = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    let _ = backlog;
    Ok(s.into())
}

impl Store {
    pub fn new(registry: Arc<Registry>, shared: Shared) -> Self {
        Store {
            registry,
            shared,
            ..Default::default()
        }
    }

    /// Publishes what an update changed and reports what it rejected.
    pub(super) fn finish(&mut self, errors: Vec<String>) -> Result<(), Rejected> {
        self.publish();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Rejected(errors))
        }
    }

    /// Every cluster name known, serving or warming.
    fn cluster_known(&self, name: &str) -> bool {
        self.clusters.contains_key(name) || self.warming_clusters.contains_key(name)
    }

    /// Listeners: `updates` added or replaced, `removed` deleted.
    pub fn apply_listeners(
        &mut self,
        updates: Vec<PbListener>,
        removed: &[String],
        version: &str,
        is_static: bool,
    ) -> Result<(), Rejected> {
        let mut errors = Vec::new();
        for name in removed {
            if self
                .listeners
                .get(name)
                .is_some_and(|e| e.accepted.is_static)
            {
                errors.push(format!(
                    "listener '{name}': a static listener cannot be removed"
                ));
                continue;
            }
            self.listeners.remove(name);
            self.warming_listeners.remove(name);
        }
        for l in updates {
            let name = l.name.clone();
            match self.accept_listener(l, version, is_static) {
                Ok(Some(entry)) => {
                    self.warming_listeners.insert(name, entry);
                }
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        self.finish(errors)
    }

    fn accept_listener(
        &self,
        l: PbListener,
        version: &str,
        is_static: bool,
    ) -> Result<Option<ListenerEntry>, String> {
        let name = l.name.clone();
        let current = self
            .warming_listeners
            .get(&name)
            .or(self.listeners.get(&name));
        if let Some(c) = current {
            if c.accepted.raw == l {
                return Ok(None);
            }
            if c.accepted.is_static && !is_static {
                return Err(format!(
                    "listener '{name}': a static listener cannot be updated through LDS"
                ));
            }
        }
        let unsupported = support::check_message(&l);
        if !unsupported.is_empty() {
            return Err(describe("listener", &name, &unsupported));
        }
        let config = ListenerConfig::new(&l).map_err(|e| describe("listener", &name, &[e]))?;
        self.validate_inline_clusters(&config)
            .map_err(|e| describe("listener", &name, &[e]))?;
        let socket = if config.bind_to_port {
            let reuse = [self.warming_listeners.get(&name), self.listeners.get(&name)]
                .into_iter()
                .flatten()
                .chain(self.listeners.values())
                .find(|e| e.accepted.config.address == config.address && e.socket.is_some())
                .and_then(|e| e.socket.clone());
            match reuse {
                Some(s) => Some(s),
                None => Some(Arc::new(bind(config.address, config.backlog).map_err(
                    |e| {
                        format!(
                            "listener '{name}': cannot bind '{}': {}",
                            config.address,
                            crate::upstream::connector::os_error_text(&e)
                        )
                    },
                )?)),
            }
        } else {
            None
        };
        Ok(Some(ListenerEntry {
            accepted: Accepted::new(Arc::new(config), l, version, is_static),
            socket,
        }))
    }

    /// Envoy rejects inline (static) route tables that name unknown clusters, unless
    /// `validate_clusters: false`.
    fn validate_inline_clusters(&self, l: &ListenerConfig) -> Result<(), ConvertError> {
        for (i, chain) in l.chains.iter().chain(l.default_chain.as_ref()).enumerate() {
            let NetworkFilter::Http(h) = &chain.filter else {
                continue;
            };
            let RouteSource::Inline(rc) = &h.routes else {
                continue;
            };
            if rc.validate_clusters == Some(false) {
                continue;
            }
            for (cluster, path) in rc.clusters() {
                if !self.cluster_known(cluster) {
                    let at = if i < l.chains.len() {
                        weft_yaml::FieldPath::root().field("filter_chains").index(i)
                    } else {
                        weft_yaml::FieldPath::root().field("default_filter_chain")
                    };
                    let at = at
                        .field("filters")
                        .index(0)
                        .field("typed_config")
                        .field("route_config")
                        .join(&path);
                    return Err(ConvertError::new(
                        &at,
                        format!("route: unknown cluster '{cluster}'"),
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn apply_routes(
        &mut self,
        updates: Vec<RouteConfiguration>,
        removed: &[String],
        version: &str,
    ) -> Result<(), Rejected> {
        let mut errors = Vec::new();
        for name in removed {
            self.routes.remove(name);
        }
        for rc in updates {
            let name = rc.name.clone();
            if self.routes.get(&name).is_some_and(|a| a.raw == rc) {
                continue;
            }
            let unsupported = support::check_message(&rc);
            if !unsupported.is_empty() {
                errors.push(describe("route configuration", &name, &unsupported));
                continue;
            }
            match RouteConfig::new(&rc) {
                Ok(config) => {
                    self.routes
                        .insert(name, Accepted::new(Arc::new(config), rc, version, false));
                }
                Err(e) => errors.push(describe("route configuration", &name, &[e])),
            }
        }
        self.finish(errors)
    }

    pub fn apply_clusters(
        &mut self,
        updates: Vec<PbCluster>,
        removed: &[String],
        version: &str,
        is_static: bool,
    ) -> Result<(), Rejected> {
        let mut errors = Vec::new();
        let batch: BTreeSet<String> = if is_static {
            updates.iter().map(|c| c.name.clone()).collect()
        } else {
            BTreeSet::new()
        };
        for name in removed {
            if self.clusters.get(name).is_some_and(|e| e.is_static) {
                errors.push(format!(
                    "cluster '{name}': a static cluster cannot be removed"
                ));
                continue;
            }
            self.clusters.remove(name);
            self.warming_clusters.remove(name);
        }
        for c in updates {
            let name = c.name.clone();
            let current = self
                .warming_clusters
                .get(&name)
                .or(self.clusters.get(&name));
            if let Some(cur) = current {
                if cur.cluster.raw == c {
                    continue;
                }
                if cur.is_static && !is_static {
                    errors.push(format!(
                        "cluster '{name}': a static cluster cannot be updated through CDS"
                    ));
                    continue;
                }
            }
            let unsupported = support::check_message(&c);
            if !unsupported.is_empty() {
                errors.push(describe("cluster", &name, &unsupported));
                continue;
            }
            let config = match ClusterConfig::new(&c) {
                Ok(config) => config,
                Err(e) => {
                    errors.push(describe("cluster", &name, &[e]));
                    continue;
                }
            };
            let stats = self
                .registry
                .scope(&format!("cluster.{name}."), ClusterStats::default);
            let mut cluster = Cluster::new(config, c, stats);
            // Envoy has these statistics only for clusters that detect outliers.
            if cluster.config.outlier.is_some() {
                cluster = cluster.with_outlier_stats(self.registry.scope(
                    &format!("cluster.{name}.outlier_detection."),
                    OutlierStats::default,
                ));
            }
            // And these only for the balancers they describe.
            match cluster.config.balancer {
                Balancer::RingHash { .. } => {
                    cluster = cluster.with_table_gauges(TableGauges::Ring(self.registry.scope(
                        &format!("cluster.{name}.ring_hash_lb."),
                        RingHashStats::default,
                    )));
                }
                Balancer::Maglev { .. } => {
                    cluster = cluster.with_table_gauges(TableGauges::Maglev(
                        self.registry
                            .scope(&format!("cluster.{name}.maglev_lb."), MaglevStats::default),
                    ));
                }
                _ => {}
            }
            // And these only for TLS clusters.
            if cluster.config.tls.is_some() {
                cluster = cluster.with_tls(
                    self.registry
                        .scope(&format!("cluster.{name}.ssl."), SslStats::default),
                );
            }
            if let Err(e) = self.check_secret_refs(&cluster, &batch) {
                errors.push(format!("cluster '{name}': {e}"));
                continue;
            }
            self.refresh_tls(&cluster);
            let cluster = Arc::new(cluster);
            cluster.spawn_outlier_timer();
            self.registry
                .scope(
                    &format!("cluster.{name}.circuit_breakers."),
                    CircuitBreakerStats::default,
                )
                .attach(&cluster.resources);
            if let Some(eds) = cluster.config.eds_name()
                && let Some(a) = self.assignments.get(eds)
            {
                cluster.set_hosts(hosts_of(&a.config));
            }
            if matches!(
                cluster.config.discovery,
                Discovery::StrictDns(_) | Discovery::LogicalDns(_)
            ) {
                dns::spawn(&cluster, self.republish.clone());
            }
            self.warming_clusters.insert(
                name,
                ClusterEntry {
                    cluster,
                    version: version.to_string(),
                    updated: SystemTime::now(),
                    is_static,
                },
            );
        }
        self.finish(errors)
    }

    pub fn apply_endpoints(
        &mut self,
        updates: Vec<ClusterLoadAssignment>,
        removed: &[String],
        version: &str,
    ) -> Result<(), Rejected> {
        let mut errors = Vec::new();
        for name in removed {
            self.assignments.remove(name);
            self.update_eds_clusters(name, Vec::new());
        }
        for cla in updates {
            let name = cla.cluster_name.clone();
            let unsupported = support::check_message(&cla);
            if !unsupported.is_empty() {
                errors.push(describe("cluster load assignment", &name, &unsupported));
                continue;
            }
            let root = weft_yaml::FieldPath::root();
            let eps = match endpoint::endpoints(&cla, &root) {
                Ok(eps) => eps,
                Err(e) => {
                    errors.push(describe("cluster load assignment", &name, &[e]));
                    continue;
                }
            };
            if let Some(bad) = eps.iter().find(|e| e.address.ip().is_none()) {
                errors.push(format!(
                    "cluster load assignment '{name}': malformed IP address: {}",
                    bad.address.host
                ));
                continue;
            }
            self.update_eds_clusters(&name, eps.clone());
            self.assignments
                .insert(name, Accepted::new(Arc::new(eps), cla, version, false));
        }
        self.finish(errors)
    }

    fn update_eds_clusters(&self, eds_name: &str, eps: Vec<Endpoint<HostPort>>) {
        for e in self.clusters.values().chain(self.warming_clusters.values()) {
            if e.cluster.config.eds_name() == Some(eds_name) {
                e.cluster.set_hosts(hosts_of(&eps));
            }
        }
    }

    /// The RDS and EDS names the configuration waits for (to subscribe to over xDS).
    pub fn wanted_routes(&self) -> BTreeSet<String> {
        self.listeners
            .values()
            .chain(self.warming_listeners.values())
            .flat_map(|e| {
                e.accepted
                    .config
                    .rds_names()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    pub fn wanted_endpoints(&self) -> BTreeSet<String> {
        self.clusters
            .values()
            .chain(self.warming_clusters.values())
            .filter_map(|e| e.cluster.config.eds_name().map(str::to_string))
            .collect()
    }

    fn listener_ready(&self, e: &ListenerEntry) -> bool {
        e.accepted
            .config
            .rds_names()
            .all(|n| self.routes.contains_key(n))
    }

    /// Whether a resource has waited past [`WARMING_TIMEOUT`] and must be promoted.
    pub fn has_overdue(&self) -> bool {
        let now = SystemTime::now();
        self.warming_clusters
            .values()
            .any(|e| self.cluster_promotable(e, now))
            || self
                .warming_listeners
                .values()
                .any(|e| is_overdue(now, e.accepted.updated))
    }

    /// Whether a warming cluster goes into service now: its first hosts arrived (or
    /// [`WARMING_TIMEOUT`] passed), and each of its secrets arrived or waited out its own
    /// `initial_fetch_timeout`.
    fn cluster_promotable(&self, e: &ClusterEntry, now: SystemTime) -> bool {
        (e.cluster.is_warm() || is_overdue(now, e.updated)) && self.secrets_settled(e, now)
    }

    /// Grows with every published snapshot.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether everything has warmed (for `/ready` during startup).
    pub fn all_warm(&self) -> bool {
        self.warming_listeners.is_empty() && self.warming_clusters.is_empty()
    }

    /// Promotes what has warmed (or waited too long) and publishes a new snapshot.
    pub fn publish(&mut self) {
        let now = SystemTime::now();
        let overdue = |t: SystemTime| is_overdue(now, t);
        let ready: Vec<String> = self
            .warming_clusters
            .iter()
            .filter(|(_, e)| self.cluster_promotable(e, now))
            .map(|(n, _)| n.clone())
            .collect();
        for n in ready {
            if let Some(e) = self.warming_clusters.remove(&n) {
                self.clusters.insert(n, e);
            }
        }
        let ready: Vec<String> = self
            .warming_listeners
            .iter()
            .filter(|(_, e)| self.listener_ready(e) || overdue(e.accepted.updated))
            .map(|(n, _)| n.clone())
            .collect();
        for n in ready {
            if let Some(e) = self.warming_listeners.remove(&n) {
                self.listeners.insert(n, e);
            }
        }
        self.generation += 1;
        if self.serving {
            // Listen here, on the main thread, before the server reports LIVE: a client that
            // connects right after `/ready` says 200 must find the door open (as with Envoy,
            // which listens before starting its workers).
            for e in self.listeners.values() {
                if let Some(sock) = &e.socket {
                    let backlog = e
                        .accepted
                        .config
                        .backlog
                        .map_or(1024, |b| b.min(i32::MAX as u32) as i32);
                    if let Err(err) = socket2::SockRef::from(sock.as_ref()).listen(backlog) {
                        tracing::error!(listener = %e.accepted.config.name, error = %err, "cannot listen");
                    }
                }
            }
        }
        let previous = self.shared.load();
        let listeners = self
            .listeners
            .iter()
            .map(|(n, e)| {
                // Keep the same active listener (and its stats handles) when nothing changed.
                let same = previous
                    .listeners
                    .get(n)
                    .filter(|a| Arc::ptr_eq(&a.config, &e.accepted.config))
                    .cloned();
                let active = same.unwrap_or_else(|| {
                    Arc::new(ActiveListener::new(
                        e.accepted.config.clone(),
                        e.socket.clone(),
                        &self.registry,
                    ))
                });
                (n.clone(), active)
            })
            .collect();
        let snapshot = Snapshot {
            generation: self.generation,
            serving: self.serving,
            listeners,
            routes: self
                .routes
                .iter()
                .map(|(n, a)| (n.clone(), a.config.clone()))
                .collect(),
            clusters: self
                .clusters
                .iter()
                .map(|(n, e)| (n.clone(), e.cluster.clone()))
                .collect(),
        };
        self.shared.store(Arc::new(snapshot));
        if let Some(g) = &self.generations {
            g.send_replace(self.generation);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arc_swap::ArcSwap;
    use envoy_types::pb::envoy::config::core::v3::{
        Address, AggregatedConfigSource, ConfigSource, SocketAddress, address,
        config_source::ConfigSourceSpecifier, socket_address::PortSpecifier,
    };
    use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain, filter};
    use envoy_types::pb::envoy::config::route::v3::VirtualHost;
    use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
        HttpConnectionManager, HttpFilter, Rds, http_connection_manager::RouteSpecifier,
        http_filter,
    };
    use envoy_types::pb::google::protobuf::{Any, BoolValue};
    use prost::{Message, Name};

    fn any<M: Message + Name>(m: &M) -> Any {
        Any {
            type_url: M::type_url(),
            value: m.encode_to_vec(),
        }
    }

    fn listener(name: &str, port: u32, rds: &str, filter_type: Option<&str>) -> PbListener {
        let router = HttpFilter {
            name: "router".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(match filter_type {
                Some(t) => Any {
                    type_url: t.into(),
                    value: vec![],
                },
                None => any(&Router::default()),
            })),
            ..Default::default()
        };
        let hcm = HttpConnectionManager {
            stat_prefix: name.into(),
            http_filters: vec![router],
            route_specifier: Some(RouteSpecifier::Rds(Rds {
                route_config_name: rds.into(),
                config_source: Some(ConfigSource {
                    config_source_specifier: Some(ConfigSourceSpecifier::Ads(
                        AggregatedConfigSource::default(),
                    )),
                    ..Default::default()
                }),
            })),
            ..Default::default()
        };
        PbListener {
            name: name.into(),
            address: Some(Address {
                address: Some(address::Address::SocketAddress(SocketAddress {
                    address: "127.0.0.1".into(),
                    port_specifier: Some(PortSpecifier::PortValue(port)),
                    ..Default::default()
                })),
            }),
            bind_to_port: Some(BoolValue { value: false }),
            filter_chains: vec![FilterChain {
                filters: vec![Filter {
                    name: "hcm".into(),
                    config_type: Some(filter::ConfigType::TypedConfig(any(&hcm))),
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn routes(name: &str) -> RouteConfiguration {
        RouteConfiguration {
            name: name.into(),
            virtual_hosts: vec![VirtualHost {
                name: "v".into(),
                domains: vec!["*".into()],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn store() -> Store {
        Store::new(
            Arc::new(Registry::default()),
            Arc::new(ArcSwap::from_pointee(Snapshot::default())),
        )
    }

    #[test]
    fn listeners_warm_until_their_routes_arrive() {
        let mut s = store();
        s.apply_listeners(vec![listener("l", 1001, "r", None)], &[], "1", false)
            .expect("valid");
        assert!(
            s.shared.load().listeners.is_empty(),
            "serving before RDS arrived"
        );
        assert_eq!(s.wanted_routes().into_iter().collect::<Vec<_>>(), ["r"]);
        s.apply_routes(vec![routes("r")], &[], "1").expect("valid");
        assert!(s.shared.load().listeners.contains_key("l"));
        assert!(s.all_warm());
    }

    #[test]
    fn a_bad_resource_is_rejected_by_name_while_the_rest_apply() {
        let mut s = store();
        s.apply_routes(vec![routes("r")], &[], "1").expect("valid");
        let err = s
            .apply_listeners(
                vec![
                    listener("good", 1002, "r", None),
                    listener("bad", 1003, "r", Some("type.googleapis.com/weft.Unknown")),
                ],
                &[],
                "2",
                false,
            )
            .expect_err("one bad listener");
        assert_eq!(err.0.len(), 1, "{err}");
        assert!(err.0[0].starts_with("listener 'bad': "), "{err}");
        assert!(err.0[0].contains("weft.Unknown"), "{err}");
        assert!(s.shared.load().listeners.contains_key("good"));
        assert!(!s.shared.load().listeners.contains_key("bad"));
    }

    #[test]
    fn a_rejected_update_keeps_the_last_good_version_serving() {
        let mut s = store();
        s.apply_routes(vec![routes("r")], &[], "1").expect("valid");
        s.apply_listeners(vec![listener("l", 1004, "r", None)], &[], "1", false)
            .expect("valid");
        let before = s.shared.load().listeners["l"].config.clone();
        let bad = listener("l", 1004, "r", Some("type.googleapis.com/weft.Unknown"));
        assert!(s.apply_listeners(vec![bad], &[], "2", false).is_err());
        assert!(Arc::ptr_eq(&s.shared.load().listeners["l"].config, &before));
        assert_eq!(s.listeners["l"].accepted.version, "1");
    }

    #[test]
    fn static_listeners_cannot_be_replaced_or_removed_over_lds() {
        let mut s = store();
        s.apply_routes(vec![routes("r")], &[], "1").expect("valid");
        s.apply_listeners(vec![listener("l", 1005, "r", None)], &[], "", true)
            .expect("valid");
        let mut changed = listener("l", 1006, "r", None);
        changed.stat_prefix = "x".into();
        let err = s
            .apply_listeners(vec![changed], &[], "1", false)
            .expect_err("static");
        assert!(err.0[0].contains("static listener"), "{err}");
        let err = s
            .apply_listeners(vec![], &["l".to_string()], "2", false)
            .expect_err("static");
        assert!(err.0[0].contains("cannot be removed"), "{err}");
    }
}
