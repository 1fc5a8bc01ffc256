//! DestinationRule `trafficPolicy` on outbound clusters and routes, as istiod applies it:
//! the policy for one cluster is merged from the rule's top level, its port-level settings,
//! the subset's policy and the subset's port-level settings (port-level settings replace
//! the level they override wholesale); connection pools become circuit breakers and
//! upstream HTTP options, outlier detection and load balancing become the cluster's own
//! fields, and a consistent hash becomes the route's `hash_policy`.
//!
//! Locality settings arrange the endpoints (see `locality`) and `tls` the cluster's
//! transport socket (see `tls`). Not applied yet, and said so by `weft describe`: the top
//! level's `tunnel`, `proxyProtocol` and `retryBudget`.

pub mod tls;

use envoy_types::pb::envoy::config::cluster::v3::{
    CircuitBreakers, Cluster, OutlierDetection as PbOutlier, UpstreamConnectionOptions, cluster,
};
use envoy_types::pb::envoy::config::core::v3::{
    Http1ProtocolOptions, Http2ProtocolOptions, HttpProtocolOptions as CommonHttpOptions,
    TcpKeepalive as PbKeepalive,
};
use envoy_types::pb::envoy::config::route::v3::route_action::{HashPolicy, hash_policy};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    HttpProtocolOptions, http_protocol_options,
};
use envoy_types::pb::envoy::r#type::v3::Percent;
use envoy_types::pb::google::protobuf::{UInt32Value, UInt64Value};
use weft_config::networking::destination_rule::{
    ClientTLSSettings, ConnectionPoolSettings, ConsistentHashLB, DestinationRule, H2UpgradePolicy,
    LoadBalancerSettings, OutlierDetection, SimpleLB, TcpKeepalive, TrafficPolicy,
};

use super::cluster::{default_thresholds, duration};
use super::view::MeshSettings;
use crate::registry::ServicePort;

/// Envoy's ring size when a consistent hash names no algorithm (istiod sends it).
const DEFAULT_MINIMUM_RING_SIZE: u64 = 1024;

/// The four parts of a traffic policy that merge per level.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Policy<'a> {
    pub connection_pool: Option<&'a ConnectionPoolSettings>,
    pub outlier_detection: Option<&'a OutlierDetection>,
    pub load_balancer: Option<&'a LoadBalancerSettings>,
    pub tls: Option<&'a ClientTLSSettings>,
}

impl<'a> Policy<'a> {
    /// The policy of `dr`'s cluster for `subset` (empty: the service-wide one) on `port`
    /// (istiod's MergeSubsetTrafficPolicy).
    pub fn of(dr: Option<&'a DestinationRule>, subset: &str, port: u16) -> Self {
        let Some(dr) = dr else {
            return Policy::default();
        };
        let top = dr.traffic_policy.as_ref().map(|tp| at_port(tp, port).0);
        let subset_policy = (!subset.is_empty())
            .then(|| dr.subset(subset))
            .flatten()
            .and_then(|s| s.traffic_policy.as_ref());
        let Some(sp) = subset_policy else {
            return top.unwrap_or_default();
        };
        let (own, port_level) = at_port(sp, port);
        let Some(mut merged) = top else {
            return own;
        };
        let take = |mine: bool| mine || port_level;
        if take(own.connection_pool.is_some()) {
            merged.connection_pool = own.connection_pool;
        }
        if take(own.outlier_detection.is_some()) {
            merged.outlier_detection = own.outlier_detection;
        }
        if take(own.load_balancer.is_some()) {
            merged.load_balancer = own.load_balancer;
        }
        if take(own.tls.is_some()) {
            merged.tls = own.tls;
        }
        merged
    }
}

/// What `weft describe` says of the policy a cluster gets: each part applied, in Istio's
/// field names, then the parts not applied yet.
pub fn describe(policy: &Policy) -> Vec<String> {
    fn json<T: serde::Serialize>(name: &str, v: &T) -> String {
        format!(
            "{name} {}",
            serde_json::to_string(v).unwrap_or_else(|e| e.to_string())
        )
    }
    let mut out = Vec::new();
    if let Some(lb) = policy.load_balancer
        && *lb != LoadBalancerSettings::default()
    {
        out.push(json("loadBalancer", lb));
    }
    if let Some(p) = policy.connection_pool {
        out.push(json("connectionPool", p));
    }
    if let Some(o) = policy.outlier_detection {
        out.push(json("outlierDetection", o));
    }
    if let Some(t) = policy.tls {
        out.push(json("tls", t));
        if !t.credential_name.is_empty() {
            out.push(format!(
                "tls credentialName {:?}: the Secret of the proxy's namespace, served over ADS \
                 only on the TLS port (15012) to a proxy whose certificate proves that \
                 namespace; a sidecar rule without a workloadSelector sends plaintext, as \
                 istiod does",
                t.credential_name
            ));
        }
    }
    out
}

/// One level's policy on `port`: its port-level settings for that port replace all four
/// parts (what they leave out falls back to defaults, not to the level above); the flag
/// says they did.
fn at_port(tp: &TrafficPolicy, port: u16) -> (Policy<'_>, bool) {
    match tp
        .port_level_settings
        .iter()
        .find(|p| p.port.as_ref().map(|s| s.number) == Some(u32::from(port)))
    {
        Some(p) => (
            Policy {
                connection_pool: p.connection_pool.as_ref(),
                outlier_detection: p.outlier_detection.as_ref(),
                load_balancer: p.load_balancer.as_ref(),
                tls: p.tls.as_ref(),
            },
            true,
        ),
        None => (
            Policy {
                connection_pool: tp.connection_pool.as_ref(),
                outlier_detection: tp.outlier_detection.as_ref(),
                load_balancer: tp.load_balancer.as_ref(),
                tls: tp.tls.as_ref(),
            },
            false,
        ),
    }
}

/// Applies `policy` to an outbound cluster, whose upstream HTTP options (`None`: none set
/// yet) are passed apart so the pool and protocol settings can add to them before they are
/// packed (istiod's applyTrafficPolicy, outbound direction).
pub fn apply(
    c: &mut Cluster,
    http: &mut Option<HttpProtocolOptions>,
    policy: &Policy,
    port: &ServicePort,
    mesh: &MeshSettings,
) {
    connection_pool(c, http, policy.connection_pool, mesh);
    h2_upgrade(http, policy.connection_pool, port, mesh);
    if let Some(o) = policy.outlier_detection {
        outlier_detection(c, o);
    }
    if let Some(l) = super::locality::setting(policy.load_balancer, mesh)
        && super::locality::weighted(l, policy.outlier_detection.is_some())
    {
        c.common_lb_config
            .get_or_insert_with(Default::default)
            .locality_config_specifier = Some(
            cluster::common_lb_config::LocalityConfigSpecifier::LocalityWeightedLbConfig(
                Default::default(),
            ),
        );
    }
    load_balancer(c, policy.load_balancer);
}

/// A Sidecar's connection pool on an inbound cluster (istiod applies only the pool there).
pub fn apply_inbound_pool(c: &mut Cluster, pool: &ConnectionPoolSettings, mesh: &MeshSettings) {
    let mut http = None;
    connection_pool(c, &mut http, Some(pool), mesh);
    if let Some(mut options) = http {
        if let Some(existing) = c
            .typed_extension_protocol_options
            .get(super::cluster::HTTP_OPTIONS_KEY)
            .and_then(|a| <HttpProtocolOptions as prost::Message>::decode(a.value.as_slice()).ok())
        {
            options.upstream_protocol_options = existing.upstream_protocol_options;
        }
        c.typed_extension_protocol_options = super::cluster::protocol_options(options);
    }
}

/// istiod's applyConnectionPool: every limit at its maximum unless set, the pool's connect
/// timeout over the mesh's, TCP keepalive from the mesh then the pool, and the HTTP
/// connection settings as upstream HTTP options.
fn connection_pool(
    c: &mut Cluster,
    http: &mut Option<HttpProtocolOptions>,
    pool: Option<&ConnectionPoolSettings>,
    mesh: &MeshSettings,
) {
    let mut t = default_thresholds();
    let positive = |v: i32| u32::try_from(v).ok().filter(|v| *v > 0);
    let mut idle_timeout = None;
    let mut max_requests_per_connection = None;
    let mut max_concurrent_streams = None;
    let mut max_connection_duration = None;
    if let Some(h) = pool.and_then(|p| p.http.as_ref()) {
        if let Some(v) = positive(h.http2_max_requests) {
            t.max_requests = Some(UInt32Value { value: v });
        }
        if let Some(v) = positive(h.http1_max_pending_requests) {
            t.max_pending_requests = Some(UInt32Value { value: v });
        }
        if let Some(v) = positive(h.max_retries) {
            t.max_retries = Some(UInt32Value { value: v });
        }
        idle_timeout = h.idle_timeout.as_ref().map(|d| d.as_std());
        max_requests_per_connection = positive(h.max_requests_per_connection);
        max_concurrent_streams = positive(h.max_concurrent_streams);
    }
    c.connect_timeout = Some(duration(mesh.connect_timeout));
    let tcp = pool.and_then(|p| p.tcp.as_ref());
    if let Some(tcp) = tcp {
        if let Some(d) = &tcp.connect_timeout {
            c.connect_timeout = Some(duration(d.as_std()));
        }
        if let Some(v) = positive(tcp.max_connections) {
            t.max_connections = Some(UInt32Value { value: v });
        }
        max_connection_duration = tcp.max_connection_duration.as_ref().map(|d| d.as_std());
        if idle_timeout.is_none() {
            idle_timeout = tcp.idle_timeout.as_ref().map(|d| d.as_std());
        }
    }
    keepalive(c, mesh.tcp_keepalive.as_ref());
    keepalive(c, tcp.and_then(|t| t.tcp_keepalive.as_ref()));
    c.circuit_breakers = Some(CircuitBreakers {
        thresholds: vec![t],
        ..Default::default()
    });
    if idle_timeout.is_some()
        || max_requests_per_connection.is_some()
        || max_concurrent_streams.is_some()
        || max_connection_duration.is_some()
    {
        let options = http.get_or_insert_with(HttpProtocolOptions::default);
        let common = options
            .common_http_protocol_options
            .get_or_insert_with(CommonHttpOptions::default);
        if let Some(d) = idle_timeout {
            common.idle_timeout = Some(duration(d));
        }
        if let Some(v) = max_requests_per_connection {
            common.max_requests_per_connection = Some(UInt32Value { value: v });
        }
        if let Some(d) = max_connection_duration {
            common.max_connection_duration = Some(duration(d));
        }
        if let (Some(v), Some(h2)) = (max_concurrent_streams, explicit_http2(options)) {
            h2.max_concurrent_streams = Some(UInt32Value { value: v });
        }
    }
    if pool
        .and_then(|p| p.http.as_ref())
        .is_some_and(|h| h.use_client_protocol)
    {
        http.get_or_insert_with(HttpProtocolOptions::default)
            .upstream_protocol_options = Some(downstream_protocol());
    }
}

fn explicit_http2(options: &mut HttpProtocolOptions) -> Option<&mut Http2ProtocolOptions> {
    use http_protocol_options::explicit_http_config::ProtocolConfig;
    match &mut options.upstream_protocol_options {
        Some(http_protocol_options::UpstreamProtocolOptions::ExplicitHttpConfig(e)) => {
            match &mut e.protocol_config {
                Some(ProtocolConfig::Http2ProtocolOptions(h2)) => Some(h2),
                _ => None,
            }
        }
        _ => None,
    }
}

pub(super) fn downstream_protocol() -> http_protocol_options::UpstreamProtocolOptions {
    http_protocol_options::UpstreamProtocolOptions::UseDownstreamProtocolConfig(
        http_protocol_options::UseDownstreamHttpConfig {
            http_protocol_options: Some(Http1ProtocolOptions::default()),
            http2_protocol_options: Some(Http2ProtocolOptions::default()),
            ..Default::default()
        },
    )
}

pub(super) fn http2_explicit() -> http_protocol_options::UpstreamProtocolOptions {
    use http_protocol_options::explicit_http_config::ProtocolConfig;
    http_protocol_options::UpstreamProtocolOptions::ExplicitHttpConfig(
        http_protocol_options::ExplicitHttpConfig {
            protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(
                Http2ProtocolOptions::default(),
            )),
        },
    )
}

/// istiod's setKeepAliveSettings: an empty keepalive turns SO_KEEPALIVE on with the OS's
/// timings; each set field overrides (times in whole seconds).
fn keepalive(c: &mut Cluster, k: Option<&TcpKeepalive>) {
    let Some(k) = k else {
        return;
    };
    let out = c
        .upstream_connection_options
        .get_or_insert_with(UpstreamConnectionOptions::default)
        .tcp_keepalive
        .get_or_insert_with(PbKeepalive::default);
    let secs = |d: &weft_config::types::Duration| UInt32Value {
        value: u32::try_from(d.as_std().as_secs()).unwrap_or(u32::MAX),
    };
    if k.probes > 0 {
        out.keepalive_probes = Some(UInt32Value { value: k.probes });
    }
    if let Some(t) = &k.time {
        out.keepalive_time = Some(secs(t));
    }
    if let Some(i) = &k.interval {
        out.keepalive_interval = Some(secs(i));
    }
}

/// istiod's shouldH2Upgrade: the pool's `h2UpgradePolicy` decides; without one, HTTP ports
/// follow the mesh's policy (ports of unknown protocol are never upgraded, so sniffing
/// cannot send HTTP/2 to an HTTP/1.1 server).
fn h2_upgrade(
    http: &mut Option<HttpProtocolOptions>,
    pool: Option<&ConnectionPoolSettings>,
    port: &ServicePort,
    mesh: &MeshSettings,
) {
    let upgrade = match pool
        .and_then(|p| p.http.as_ref())
        .map(|h| h.h2_upgrade_policy)
    {
        Some(H2UpgradePolicy::Upgrade) => true,
        Some(H2UpgradePolicy::DoNotUpgrade) => false,
        _ => port.protocol.is_http() && mesh.h2_upgrade,
    };
    if upgrade {
        http.get_or_insert_with(HttpProtocolOptions::default)
            .upstream_protocol_options = Some(http2_explicit());
    }
}

/// istiod's applyOutlierDetection: success-rate ejection off, each consecutive-error kind
/// enforced fully when its threshold is above zero, and the panic threshold set to the
/// rule's `minHealthPercent` (0 unless set, which turns panic mode off).
fn outlier_detection(c: &mut Cluster, o: &OutlierDetection) {
    let enforcing = |v: u32| UInt32Value {
        value: if v > 0 { 100 } else { 0 },
    };
    let mut out = PbOutlier {
        enforcing_success_rate: Some(UInt32Value { value: 0 }),
        ..Default::default()
    };
    if let Some(v) = o.consecutive_5xx_errors {
        out.consecutive_5xx = Some(UInt32Value { value: v });
        out.enforcing_consecutive_5xx = Some(enforcing(v));
    }
    if let Some(v) = o.consecutive_gateway_errors {
        out.consecutive_gateway_failure = Some(UInt32Value { value: v });
        out.enforcing_consecutive_gateway_failure = Some(enforcing(v));
    }
    if let Some(i) = &o.interval {
        out.interval = Some(duration(i.as_std()));
    }
    if let Some(b) = &o.base_ejection_time {
        out.base_ejection_time = Some(duration(b.as_std()));
    }
    if let Ok(v) = u32::try_from(o.max_ejection_percent)
        && v > 0
    {
        out.max_ejection_percent = Some(UInt32Value { value: v });
    }
    if o.split_external_local_origin_errors {
        out.split_external_local_origin_errors = true;
        if let Some(v) = o.consecutive_local_origin_failures.filter(|v| *v > 0) {
            out.consecutive_local_origin_failure = Some(UInt32Value { value: v });
            out.enforcing_consecutive_local_origin_failure = Some(UInt32Value { value: 100 });
        }
        out.enforcing_local_origin_success_rate = Some(UInt32Value { value: 0 });
    }
    c.outlier_detection = Some(out);
    if o.min_health_percent >= 0 {
        c.common_lb_config
            .get_or_insert_with(Default::default)
            .healthy_panic_threshold = Some(Percent {
            value: f64::from(o.min_health_percent),
        });
    }
}

/// istiod's applyLoadBalancer: ORIGINAL_DST clusters keep CLUSTER_PROVIDED; `simple` picks
/// the algorithm (LEAST_REQUEST by default, PASSTHROUGH turns the cluster into an
/// ORIGINAL_DST one), a warmup becomes slow start, and a consistent hash overrides it all
/// with RING_HASH or MAGLEV.
fn load_balancer(c: &mut Cluster, lb: Option<&LoadBalancerSettings>) {
    use cluster::{DiscoveryType, LbConfig, LbPolicy};
    let original_dst = || {
        Some(cluster::ClusterDiscoveryType::Type(
            DiscoveryType::OriginalDst as i32,
        ))
    };
    if c.cluster_discovery_type == original_dst() {
        c.lb_policy = LbPolicy::ClusterProvided as i32;
        return;
    }
    let slow_start =
        lb.and_then(|lb| lb.warmup_duration_secs.as_ref())
            .map(|d| cluster::SlowStartConfig {
                slow_start_window: Some(duration(d.as_std())),
                ..Default::default()
            });
    match lb.and_then(|lb| lb.simple).unwrap_or_default() {
        SimpleLB::Random => c.lb_policy = LbPolicy::Random as i32,
        SimpleLB::RoundRobin => {
            c.lb_policy = LbPolicy::RoundRobin as i32;
            c.lb_config = slow_start.map(|s| {
                LbConfig::RoundRobinLbConfig(cluster::RoundRobinLbConfig {
                    slow_start_config: Some(s),
                })
            });
        }
        SimpleLB::Passthrough => {
            c.lb_policy = LbPolicy::ClusterProvided as i32;
            c.cluster_discovery_type = original_dst();
            c.load_assignment = None;
            c.eds_cluster_config = None;
        }
        SimpleLB::LeastConn | SimpleLB::LeastRequest | SimpleLB::Unspecified => {
            c.lb_policy = LbPolicy::LeastRequest as i32;
            c.lb_config = slow_start.map(|s| {
                LbConfig::LeastRequestLbConfig(cluster::LeastRequestLbConfig {
                    slow_start_config: Some(s),
                    ..Default::default()
                })
            });
        }
    }
    let Some(hash) = lb.and_then(|lb| lb.consistent_hash.as_ref()) else {
        return;
    };
    if let Some(m) = &hash.maglev {
        c.lb_policy = LbPolicy::Maglev as i32;
        c.lb_config =
            (m.table_size != 0).then_some(LbConfig::MaglevLbConfig(cluster::MaglevLbConfig {
                table_size: Some(UInt64Value {
                    value: m.table_size,
                }),
            }));
    } else if let Some(r) = &hash.ring_hash {
        c.lb_policy = LbPolicy::RingHash as i32;
        c.lb_config = (r.minimum_ring_size != 0).then(|| ring_hash(r.minimum_ring_size));
    } else {
        c.lb_policy = LbPolicy::RingHash as i32;
        let size = match hash.minimum_ring_size {
            0 => DEFAULT_MINIMUM_RING_SIZE,
            n => n,
        };
        c.lb_config = Some(ring_hash(size));
    }
}

fn ring_hash(minimum: u64) -> cluster::LbConfig {
    cluster::LbConfig::RingHashLbConfig(cluster::RingHashLbConfig {
        minimum_ring_size: Some(UInt64Value { value: minimum }),
        ..Default::default()
    })
}

/// A consistent hash's key as a route `hash_policy` (istiod's consistentHashToHashPolicy).
pub fn hash_policy(hash: &ConsistentHashLB) -> Option<HashPolicy> {
    use hash_policy::PolicySpecifier;
    let specifier = if let Some(name) = &hash.http_header_name {
        PolicySpecifier::Header(hash_policy::Header {
            header_name: name.clone(),
            ..Default::default()
        })
    } else if let Some(cookie) = &hash.http_cookie {
        PolicySpecifier::Cookie(hash_policy::Cookie {
            name: cookie.name.clone(),
            ttl: cookie.ttl.as_ref().map(|t| duration(t.as_std())),
            path: cookie.path.clone(),
            ..Default::default()
        })
    } else if let Some(source_ip) = hash.use_source_ip {
        PolicySpecifier::ConnectionProperties(hash_policy::ConnectionProperties { source_ip })
    } else if let Some(name) = &hash.http_query_parameter_name {
        PolicySpecifier::QueryParameter(hash_policy::QueryParameter { name: name.clone() })
    } else {
        return None;
    };
    Some(HashPolicy {
        policy_specifier: Some(specifier),
        terminal: false,
    })
}

/// The consistent hash a route to `subset` of `dr`'s host on `port` hashes with: the
/// subset's port-level one, the subset's, the rule's port-level one, then the rule's
/// (istiod's hashForHTTPDestination; unlike cluster policies, a port-level entry without a
/// hash does not hide the level above).
pub fn route_hash<'a>(
    dr: &'a DestinationRule,
    subset: &str,
    port: Option<u16>,
) -> Option<&'a ConsistentHashLB> {
    let hash_of = |tp: Option<&'a TrafficPolicy>| {
        tp.and_then(|tp| tp.load_balancer.as_ref())
            .and_then(|lb| lb.consistent_hash.as_ref())
    };
    let port_hash = |tp: Option<&'a TrafficPolicy>| {
        let port = u32::from(port?);
        tp?.port_level_settings
            .iter()
            .find(|p| p.port.as_ref().map(|s| s.number) == Some(port))?
            .load_balancer
            .as_ref()?
            .consistent_hash
            .as_ref()
    };
    let top = dr.traffic_policy.as_ref();
    let sub = dr
        .subsets
        .iter()
        .find(|s| s.name == subset)
        .and_then(|s| s.traffic_policy.as_ref());
    port_hash(sub)
        .or_else(|| hash_of(sub))
        .or_else(|| port_hash(top))
        .or_else(|| hash_of(top))
}

#[cfg(test)]
mod tests;
