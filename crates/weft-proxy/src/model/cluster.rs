//! Clusters: how endpoints are found (STATIC, STRICT_DNS, LOGICAL_DNS, EDS, ORIGINAL_DST),
//! how the proxy talks to them (HTTP/1.1, HTTP/2 or the downstream's protocol; connect
//! timeout, idle timeout, TCP keepalive, source address), how one is picked (round robin,
//! least request, random, ring hash or Maglev; outlier ejection and the panic threshold
//! decide which hosts count as healthy; slow start and locality weighted balancing adjust
//! the choice), and the circuit breakers that bound connections, pending and active
//! requests, and retries.

use super::endpoint::{Endpoint, HostPort, endpoints};
use super::outlier::OutlierConfig;
use super::{ConvertError, Result, duration, timeout, unpack};
use envoy_types::pb::envoy::config::cluster::v3::{
    CircuitBreakers as PbCircuitBreakers, Cluster, cluster::ClusterDiscoveryType,
    cluster::DiscoveryType, cluster::DnsLookupFamily, cluster::LbConfig, cluster::LbPolicy,
    cluster::SlowStartConfig, cluster::common_lb_config::LocalityConfigSpecifier,
};
use envoy_types::pb::envoy::config::core::v3::{
    BindConfig as PbBindConfig, Http2ProtocolOptions, HttpProtocolOptions, RoutingPriority,
    SocketAddress, socket_address::PortSpecifier,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    HttpProtocolOptions as UpstreamHttpOptions, http_protocol_options::UpstreamProtocolOptions,
    http_protocol_options::explicit_http_config::ProtocolConfig,
};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use weft_yaml::FieldPath;

const UPSTREAM_HTTP_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

#[derive(Debug, Clone, PartialEq)]
pub enum Discovery {
    Static(Vec<Endpoint<HostPort>>),
    /// Every address of every name is an endpoint; each name is re-resolved every
    /// `dns_refresh`, or when its answer's TTL runs out (`respect_dns_ttl`).
    StrictDns(Vec<Endpoint<HostPort>>),
    /// One name; connections go to its first address.
    LogicalDns(Endpoint<HostPort>),
    Eds {
        service_name: String,
    },
    OriginalDst,
    /// One Unix socket (an Envoy `pipe`). Only xDS and SDS clients dial it; traffic routed
    /// here finds no healthy host.
    Pipe(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    Http1,
    Http2,
    /// Whatever the downstream request used.
    Downstream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsFamily {
    /// Envoy's AUTO: IPv6 when the name has it, else IPv4.
    Auto,
    V4Only,
    V6Only,
    V4Preferred,
    All,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct H2Settings {
    pub max_concurrent_streams: Option<u32>,
    pub initial_stream_window_size: Option<u32>,
    pub initial_connection_window_size: Option<u32>,
    pub keepalive_interval: Option<Duration>,
    pub keepalive_timeout: Option<Duration>,
    pub header_table_size: Option<u32>,
}

impl H2Settings {
    pub fn new(o: &Http2ProtocolOptions, path: &FieldPath) -> Result<Self> {
        let (keepalive_interval, keepalive_timeout) = match &o.connection_keepalive {
            None => (None, None),
            Some(k) => {
                let p = path.field("connection_keepalive");
                (
                    timeout(k.interval.as_ref(), &p.field("interval"))?,
                    timeout(k.timeout.as_ref(), &p.field("timeout"))?,
                )
            }
        };
        Ok(H2Settings {
            max_concurrent_streams: o.max_concurrent_streams.map(|v| v.value),
            initial_stream_window_size: o.initial_stream_window_size.map(|v| v.value),
            initial_connection_window_size: o.initial_connection_window_size.map(|v| v.value),
            keepalive_interval,
            keepalive_timeout,
            header_table_size: o.hpack_table_size.map(|v| v.value),
        })
    }
}

/// How an endpoint is picked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Balancer {
    RoundRobin,
    /// Envoy's least request: with equal weights, the least busy of `choice_count` random
    /// picks; with unequal ones, an EDF schedule over `weight / (active + 1)^bias`.
    LeastRequest {
        choice_count: u32,
        active_request_bias: f64,
    },
    /// A uniformly random host; Envoy's random balancer does not consult host weights.
    Random,
    /// Envoy's ketama-style ring: each host hashed (XXH64 of `address_i`) onto a ring of
    /// `min_ring_size..=max_ring_size` entries in proportion to its weight.
    RingHash {
        min_ring_size: u64,
        max_ring_size: u64,
    },
    /// Google's Maglev lookup table of `table_size` (a prime) entries.
    Maglev {
        table_size: u64,
    },
}

impl Balancer {
    /// Picks by a request's hash (route `hash_policy`) rather than by its own state.
    pub fn is_hashing(&self) -> bool {
        matches!(self, Balancer::RingHash { .. } | Balancer::Maglev { .. })
    }
}

/// Envoy's slow start: a host that became healthy less than `window` ago has its weight
/// scaled by `max(min_weight, (age / window)^(1 / aggression))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlowStart {
    pub window: Duration,
    /// As configured; Envoy treats a value that is not above 0 as 1 when it applies it.
    pub aggression: f64,
    /// `min_weight_percent` as a fraction (Envoy's default: 10%).
    pub min_weight: f64,
}

impl SlowStart {
    fn new(c: &SlowStartConfig, path: &FieldPath) -> Result<Option<Self>> {
        let window = match &c.slow_start_window {
            None => Duration::ZERO,
            Some(d) => duration(d, &path.field("slow_start_window"))?,
        };
        let min_weight = match &c.min_weight_percent {
            None => 0.1,
            Some(p) if (0.0..=100.0).contains(&p.value) => p.value / 100.0,
            Some(p) => {
                return Err(ConvertError::new(
                    &path.field("min_weight_percent").field("value"),
                    format!("must be between 0 and 100 (is {})", p.value),
                ));
            }
        };
        // Envoy's window is whole milliseconds; below one there is no slow start.
        Ok((window.as_millis() > 0).then_some(SlowStart {
            window: Duration::from_millis(window.as_millis() as u64),
            aggression: c.aggression.as_ref().map_or(1.0, |a| a.default_value),
            min_weight,
        }))
    }

    /// The factor on a host's weight `age` after it became healthy (1 once out of slow
    /// start), as Envoy's `applySlowStartFactor` computes it.
    pub fn factor(&self, age: Duration) -> f64 {
        if age >= self.window {
            return 1.0;
        }
        let aggression = if self.aggression > 0.0 {
            self.aggression
        } else {
            1.0
        };
        let ms = (age.as_millis() as u64).max(1) as f64;
        let time_factor = ms / self.window.as_millis() as f64;
        let scaled = if aggression == 1.0 || time_factor == 1.0 {
            time_factor
        } else {
            time_factor.powf(1.0 / aggression)
        };
        scaled.max(self.min_weight)
    }
}

/// One priority's circuit breaker limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub max_connections: u64,
    pub max_pending_requests: u64,
    pub max_requests: u64,
    pub max_retries: u64,
    /// Publish `remaining_*` gauges.
    pub track_remaining: bool,
}

/// Envoy's limits when a cluster sets none.
impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 1024,
            max_retries: 3,
            track_remaining: false,
        }
    }
}

/// `circuit_breakers`: limits for the DEFAULT and HIGH routing priorities. Routes always
/// use DEFAULT (a route's `priority` is not supported, so no request can be HIGH); HIGH
/// limits are read and kept, and apply to nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CircuitBreakers {
    pub default: Thresholds,
    pub high: Thresholds,
}

impl CircuitBreakers {
    fn new(cb: &PbCircuitBreakers, path: &FieldPath) -> Result<Self> {
        let mut out = CircuitBreakers::default();
        for (i, t) in cb.thresholds.iter().enumerate() {
            let p = path.field("thresholds").index(i);
            let slot = match RoutingPriority::try_from(t.priority) {
                Ok(RoutingPriority::Default) => &mut out.default,
                Ok(RoutingPriority::High) => &mut out.high,
                Err(_) => {
                    return Err(ConvertError::new(
                        &p.field("priority"),
                        format!("unknown priority {}", t.priority),
                    ));
                }
            };
            let d = Thresholds::default();
            let v = |v: Option<envoy_types::pb::google::protobuf::UInt32Value>, default: u64| {
                v.map_or(default, |v| u64::from(v.value))
            };
            *slot = Thresholds {
                max_connections: v(t.max_connections, d.max_connections),
                max_pending_requests: v(t.max_pending_requests, d.max_pending_requests),
                max_requests: v(t.max_requests, d.max_requests),
                max_retries: v(t.max_retries, d.max_retries),
                track_remaining: t.track_remaining,
            };
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TcpKeepalive {
    pub probes: Option<u32>,
    pub time: Option<Duration>,
    pub interval: Option<Duration>,
}

/// A converted `Cluster`.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub name: String,
    pub discovery: Discovery,
    pub connect_timeout: Duration,
    pub protocol: UpstreamProtocol,
    pub h2: H2Settings,
    /// Idle upstream connections are closed after this (Envoy's default: one hour).
    pub idle_timeout: Option<Duration>,
    /// Connections this old are drained: they take no new request and close once idle.
    pub max_connection_duration: Option<Duration>,
    pub max_requests_per_connection: Option<u32>,
    pub tcp_keepalive: Option<TcpKeepalive>,
    pub dns_family: DnsFamily,
    pub dns_refresh: Duration,
    /// `respect_dns_ttl`: after an answer with addresses, a DNS cluster asks again when the
    /// answer's shortest TTL runs out instead of after `dns_refresh` (which still applies to
    /// a TTL of zero, an empty answer and a failure). Other kinds of cluster ignore it.
    pub respect_dns_ttl: bool,
    pub balancer: Balancer,
    /// `common_lb_config.healthy_panic_threshold`, a whole percentage: below this share
    /// of healthy hosts every host is balanced over (0 turns panic mode off).
    pub panic_threshold: u32,
    /// `slow_start_config` of round robin or least request, when its window is not zero.
    pub slow_start: Option<SlowStart>,
    /// `common_lb_config.locality_weighted_lb_config`: a locality is picked by its
    /// `load_balancing_weight` and health before a host within it.
    pub locality_weighted: bool,
    pub outlier: Option<OutlierConfig>,
    pub circuit_breakers: CircuitBreakers,
    /// `upstream_bind_config`: the source addresses to bind (the first of the endpoint's
    /// IP family is used, else the first).
    pub source_addresses: Vec<SocketAddr>,
    /// The TLS `transport_socket`; `None` is plaintext.
    pub tls: Option<super::tls::UpstreamTlsConfig>,
    /// Set when each request's host is the SNI (TLS clusters only).
    pub auto_sni: Option<AutoSni>,
}

/// Envoy's defaults.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
const DEFAULT_DNS_REFRESH: Duration = Duration::from_secs(5);
const DEFAULT_PANIC_THRESHOLD: u32 = 50;
const DEFAULT_MIN_RING_SIZE: u64 = 1024;
const MAX_RING_SIZE: u64 = 8 * 1024 * 1024;
const DEFAULT_MAGLEV_TABLE_SIZE: u64 = 65537;
/// The largest Maglev table Envoy's validation allows.
const MAX_MAGLEV_TABLE_SIZE: u64 = 5_000_011;

impl ClusterConfig {
    pub fn new(c: &Cluster) -> Result<Self> {
        let root = FieldPath::root();
        if c.name.is_empty() {
            return Err(ConvertError::new(&root.field("name"), "must not be empty"));
        }
        let kind = match &c.cluster_discovery_type {
            None => DiscoveryType::Static,
            Some(ClusterDiscoveryType::Type(t)) => DiscoveryType::try_from(*t)
                .map_err(|_| ConvertError::new(&root.field("type"), format!("unknown type {t}")))?,
            Some(ClusterDiscoveryType::ClusterType(t)) => {
                return Err(ConvertError::new(
                    &root.field("cluster_type"),
                    format!(
                        "custom cluster type `{}` is not supported by weft-proxy",
                        t.name
                    ),
                ));
            }
        };
        let lb = LbPolicy::try_from(c.lb_policy).map_err(|_| {
            ConvertError::new(
                &root.field("lb_policy"),
                format!("unknown policy {}", c.lb_policy),
            )
        })?;
        let balancer = match (lb, kind) {
            (LbPolicy::RoundRobin, k) if k != DiscoveryType::OriginalDst => Balancer::RoundRobin,
            (LbPolicy::LeastRequest, k) if k != DiscoveryType::OriginalDst => {
                least_request(c.lb_config.as_ref())?
            }
            (LbPolicy::Random, k) if k != DiscoveryType::OriginalDst => Balancer::Random,
            (LbPolicy::RingHash, k) if k != DiscoveryType::OriginalDst => {
                ring_hash(c.lb_config.as_ref())?
            }
            (LbPolicy::Maglev, k) if k != DiscoveryType::OriginalDst => {
                maglev(c.lb_config.as_ref())?
            }
            (LbPolicy::ClusterProvided, DiscoveryType::OriginalDst) => Balancer::RoundRobin,
            (other, DiscoveryType::OriginalDst) => {
                return Err(ConvertError::new(
                    &root.field("lb_policy"),
                    format!(
                        "cluster: LB policy {} is not valid for Cluster type ORIGINAL_DST. \
                         Only 'CLUSTER_PROVIDED' is allowed with cluster type 'ORIGINAL_DST'",
                        other.as_str_name()
                    ),
                ));
            }
            (other, _) => {
                return Err(ConvertError::new(
                    &root.field("lb_policy"),
                    format!(
                        "{} is not supported by weft-proxy yet (only ROUND_ROBIN, \
                         LEAST_REQUEST, RANDOM, RING_HASH and MAGLEV)",
                        other.as_str_name()
                    ),
                ));
            }
        };
        if let Some(cfg) = &c.lb_config
            && !matches!(
                (cfg, balancer),
                (
                    LbConfig::LeastRequestLbConfig(_),
                    Balancer::LeastRequest { .. }
                ) | (LbConfig::RoundRobinLbConfig(_), Balancer::RoundRobin)
                    | (LbConfig::RingHashLbConfig(_), Balancer::RingHash { .. })
                    | (LbConfig::MaglevLbConfig(_), Balancer::Maglev { .. })
            )
        {
            return Err(ConvertError::new(
                &root.field("lb_config"),
                "an lb_config needs its own lb_policy (round_robin_lb_config with ROUND_ROBIN, \
                 least_request_lb_config with LEAST_REQUEST, ring_hash_lb_config with \
                 RING_HASH, maglev_lb_config with MAGLEV)",
            ));
        }
        let slow_start = match &c.lb_config {
            Some(LbConfig::RoundRobinLbConfig(rr)) => match &rr.slow_start_config {
                Some(s) => SlowStart::new(
                    s,
                    &root
                        .field("round_robin_lb_config")
                        .field("slow_start_config"),
                )?,
                None => None,
            },
            Some(LbConfig::LeastRequestLbConfig(lr)) => match &lr.slow_start_config {
                Some(s) => SlowStart::new(
                    s,
                    &root
                        .field("least_request_lb_config")
                        .field("slow_start_config"),
                )?,
                None => None,
            },
            _ => None,
        };
        let locality_weighted = match c
            .common_lb_config
            .as_ref()
            .and_then(|l| l.locality_config_specifier.as_ref())
        {
            None => false,
            Some(LocalityConfigSpecifier::LocalityWeightedLbConfig(_)) => true,
            Some(LocalityConfigSpecifier::ZoneAwareLbConfig(_)) => {
                return Err(ConvertError::new(
                    &root.field("common_lb_config").field("zone_aware_lb_config"),
                    "zone aware routing is not supported by weft-proxy",
                ));
            }
        };
        let panic_threshold = match c
            .common_lb_config
            .as_ref()
            .and_then(|l| l.healthy_panic_threshold.as_ref())
        {
            None => DEFAULT_PANIC_THRESHOLD,
            Some(p) if (0.0..=100.0).contains(&p.value) => p.value.round() as u32,
            Some(p) => {
                return Err(ConvertError::new(
                    &root
                        .field("common_lb_config")
                        .field("healthy_panic_threshold")
                        .field("value"),
                    format!("must be between 0 and 100 (is {})", p.value),
                ));
            }
        };
        let outlier = match &c.outlier_detection {
            Some(od) => Some(OutlierConfig::new(od, &root.field("outlier_detection"))?),
            None => None,
        };
        let circuit_breakers = match &c.circuit_breakers {
            Some(cb) => CircuitBreakers::new(cb, &root.field("circuit_breakers"))?,
            None => CircuitBreakers::default(),
        };
        let tls = super::tls::upstream_transport(
            c.transport_socket.as_ref(),
            &root.field("transport_socket"),
        )?;
        let source_addresses = match &c.upstream_bind_config {
            Some(b) => bind_addresses(b, &root.field("upstream_bind_config"))?,
            None => Vec::new(),
        };
        let assignment = || -> Result<Vec<Endpoint<HostPort>>> {
            match &c.load_assignment {
                Some(cla) => endpoints(cla, &root.field("load_assignment")),
                None => Ok(Vec::new()),
            }
        };
        let static_endpoints = || -> Result<Discovery> {
            if let Some(cla) = &c.load_assignment
                && let Some(pipe) = super::endpoint::pipe(cla, &root.field("load_assignment"))?
            {
                return Ok(Discovery::Pipe(pipe));
            }
            let eps = assignment()?;
            for (i, e) in eps.iter().enumerate() {
                if e.address.ip().is_none() {
                    return Err(ConvertError::new(
                        &root.field("load_assignment").field("endpoints").index(i),
                        format!(
                            "malformed IP address: {} (STATIC clusters take IP addresses)",
                            e.address.host
                        ),
                    ));
                }
            }
            Ok(Discovery::Static(eps))
        };
        let discovery = match kind {
            DiscoveryType::Static => static_endpoints()?,
            DiscoveryType::StrictDns => Discovery::StrictDns(assignment()?),
            DiscoveryType::LogicalDns => {
                let mut eps = assignment()?;
                if eps.len() != 1 {
                    return Err(ConvertError::new(
                        &root.field("load_assignment"),
                        "LOGICAL_DNS clusters must have a single locality_lb_endpoint and a \
                         single lb_endpoint",
                    ));
                }
                Discovery::LogicalDns(eps.remove(0))
            }
            DiscoveryType::Eds => {
                let eds = c.eds_cluster_config.clone().unwrap_or_default();
                if let Some(src) = &eds.eds_config
                    && src.config_source_specifier.is_some()
                    && !matches!(
                        src.config_source_specifier,
                        Some(envoy_types::pb::envoy::config::core::v3::config_source::ConfigSourceSpecifier::Ads(_))
                    )
                {
                    return Err(ConvertError::new(
                        &root.field("eds_cluster_config").field("eds_config"),
                        "only `ads: {}` EDS sources are supported by weft-proxy",
                    ));
                }
                Discovery::Eds {
                    service_name: if eds.service_name.is_empty() {
                        c.name.clone()
                    } else {
                        eds.service_name
                    },
                }
            }
            DiscoveryType::OriginalDst => {
                if c.load_assignment
                    .as_ref()
                    .is_some_and(|l| !l.endpoints.is_empty())
                {
                    return Err(ConvertError::new(
                        &root.field("load_assignment"),
                        "ORIGINAL_DST clusters must not have endpoints",
                    ));
                }
                Discovery::OriginalDst
            }
        };
        let ProtocolOptions {
            protocol,
            h2,
            common,
            auto_sni,
        } = protocol_options(c)?;
        if h2.max_concurrent_streams.is_some() {
            // Envoy opens more connections past the limit; the proxy multiplexes every
            // request to an endpoint over one connection, so it cannot honour it yet.
            return Err(ConvertError::new(
                &root.field("typed_extension_protocol_options"),
                "http2_protocol_options.max_concurrent_streams on upstream connections is not \
                 supported by weft-proxy yet",
            ));
        }
        let common_path = root.field("common_http_protocol_options");
        let idle_timeout = match common.as_ref().and_then(|o| o.idle_timeout.as_ref()) {
            None => Some(DEFAULT_IDLE_TIMEOUT),
            Some(d) => timeout(Some(d), &common_path.field("idle_timeout"))?,
        };
        if let Some(o) = &common
            && (o.max_stream_duration.is_some()
                || o.max_headers_count.is_some()
                || o.headers_with_underscores_action != 0)
        {
            return Err(ConvertError::new(
                &common_path,
                "only idle_timeout, max_connection_duration and max_requests_per_connection are \
                 supported by weft-proxy for upstream connections",
            ));
        }
        let max_connection_duration = timeout(
            common
                .as_ref()
                .and_then(|o| o.max_connection_duration.as_ref()),
            &common_path.field("max_connection_duration"),
        )?;
        let secs = |v: Option<envoy_types::pb::google::protobuf::UInt32Value>| {
            v.map(|v| Duration::from_secs(u64::from(v.value)))
                .filter(|d| !d.is_zero())
        };
        let tcp_keepalive = c
            .upstream_connection_options
            .as_ref()
            .and_then(|o| o.tcp_keepalive.as_ref())
            .map(|k| TcpKeepalive {
                probes: k.keepalive_probes.map(|v| v.value),
                time: secs(k.keepalive_time),
                interval: secs(k.keepalive_interval),
            });
        let dns_family = match DnsLookupFamily::try_from(c.dns_lookup_family) {
            Ok(DnsLookupFamily::Auto) => DnsFamily::Auto,
            Ok(DnsLookupFamily::V4Only) => DnsFamily::V4Only,
            Ok(DnsLookupFamily::V6Only) => DnsFamily::V6Only,
            Ok(DnsLookupFamily::V4Preferred) => DnsFamily::V4Preferred,
            Ok(DnsLookupFamily::All) => DnsFamily::All,
            Err(_) => {
                return Err(ConvertError::new(
                    &root.field("dns_lookup_family"),
                    format!("unknown family {}", c.dns_lookup_family),
                ));
            }
        };
        let dns_refresh = match &c.dns_refresh_rate {
            None => DEFAULT_DNS_REFRESH,
            Some(d) => {
                let d = duration(d, &root.field("dns_refresh_rate"))?;
                if d < Duration::from_millis(1) {
                    return Err(ConvertError::new(
                        &root.field("dns_refresh_rate"),
                        "must be at least 1ms",
                    ));
                }
                d
            }
        };
        let connect_timeout = match &c.connect_timeout {
            None => DEFAULT_CONNECT_TIMEOUT,
            Some(d) => {
                let d = duration(d, &root.field("connect_timeout"))?;
                if d.is_zero() {
                    return Err(ConvertError::new(
                        &root.field("connect_timeout"),
                        "must be greater than 0s",
                    ));
                }
                d
            }
        };
        Ok(ClusterConfig {
            name: c.name.clone(),
            discovery,
            connect_timeout,
            protocol,
            h2,
            idle_timeout,
            max_connection_duration,
            max_requests_per_connection: common
                .as_ref()
                .and_then(|o| o.max_requests_per_connection)
                .map(|v| v.value)
                .filter(|v| *v > 0),
            tcp_keepalive,
            dns_family,
            dns_refresh,
            respect_dns_ttl: c.respect_dns_ttl,
            balancer,
            panic_threshold,
            slow_start,
            locality_weighted,
            outlier,
            circuit_breakers,
            source_addresses,
            auto_sni: auto_sni.filter(|_| tls.is_some()),
            tls,
        })
    }

    /// The EDS resource name this cluster waits for, if any.
    pub fn eds_name(&self) -> Option<&str> {
        match &self.discovery {
            Discovery::Eds { service_name } => Some(service_name),
            _ => None,
        }
    }
}

/// `least_request_lb_config`, with Envoy's defaults (two choices, a bias of 1).
fn least_request(cfg: Option<&LbConfig>) -> Result<Balancer> {
    let path = FieldPath::root()
        .field("lb_config")
        .field("least_request_lb_config");
    let lr = match cfg {
        Some(LbConfig::LeastRequestLbConfig(lr)) => lr.clone(),
        _ => Default::default(),
    };
    let choice_count = lr.choice_count.map_or(2, |v| v.value);
    if choice_count < 2 {
        return Err(ConvertError::new(
            &path.field("choice_count"),
            format!("must be at least 2 (is {choice_count})"),
        ));
    }
    // Envoy logs and falls back to 1 for a negative or NaN bias.
    let active_request_bias = lr
        .active_request_bias
        .map(|b| b.default_value)
        .filter(|b| *b >= 0.0)
        .unwrap_or(1.0);
    Ok(Balancer::LeastRequest {
        choice_count,
        active_request_bias,
    })
}

/// `ring_hash_lb_config`, with Envoy's defaults (1024 to 8M entries, XX_HASH).
fn ring_hash(cfg: Option<&LbConfig>) -> Result<Balancer> {
    use envoy_types::pb::envoy::config::cluster::v3::cluster::ring_hash_lb_config::HashFunction;
    let path = FieldPath::root()
        .field("lb_config")
        .field("ring_hash_lb_config");
    let rh = match cfg {
        Some(LbConfig::RingHashLbConfig(rh)) => *rh,
        _ => Default::default(),
    };
    if rh.hash_function != HashFunction::XxHash as i32 {
        return Err(ConvertError::new(
            &path.field("hash_function"),
            "only XX_HASH is supported by weft-proxy (MURMUR_HASH_2 is not)",
        ));
    }
    let min_ring_size = rh
        .minimum_ring_size
        .map_or(DEFAULT_MIN_RING_SIZE, |v| v.value);
    let max_ring_size = rh.maximum_ring_size.map_or(MAX_RING_SIZE, |v| v.value);
    for (v, name) in [
        (min_ring_size, "minimum_ring_size"),
        (max_ring_size, "maximum_ring_size"),
    ] {
        if v > MAX_RING_SIZE {
            return Err(ConvertError::new(
                &path.field(name),
                format!("must be at most {MAX_RING_SIZE} (is {v})"),
            ));
        }
    }
    if min_ring_size > max_ring_size {
        return Err(ConvertError::new(
            &path,
            format!(
                "ring hash: minimum_ring_size ({min_ring_size}) > maximum_ring_size \
                 ({max_ring_size})"
            ),
        ));
    }
    Ok(Balancer::RingHash {
        min_ring_size,
        max_ring_size,
    })
}

/// `maglev_lb_config`: the table size, a prime (65537 unless set).
fn maglev(cfg: Option<&LbConfig>) -> Result<Balancer> {
    let path = FieldPath::root()
        .field("lb_config")
        .field("maglev_lb_config");
    let table_size = match cfg {
        Some(LbConfig::MaglevLbConfig(m)) => m.table_size.map(|v| v.value),
        _ => None,
    }
    .unwrap_or(DEFAULT_MAGLEV_TABLE_SIZE);
    if table_size > MAX_MAGLEV_TABLE_SIZE {
        return Err(ConvertError::new(
            &path.field("table_size"),
            format!("must be at most {MAX_MAGLEV_TABLE_SIZE} (is {table_size})"),
        ));
    }
    if !is_prime(table_size) {
        return Err(ConvertError::new(
            &path.field("table_size"),
            "The table size of maglev must be prime number",
        ));
    }
    Ok(Balancer::Maglev { table_size })
}

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

/// `upstream_bind_config`'s addresses: `source_address`, then `extra_source_addresses`.
fn bind_addresses(b: &PbBindConfig, path: &FieldPath) -> Result<Vec<SocketAddr>> {
    let one = |a: &SocketAddress, p: &FieldPath| -> Result<SocketAddr> {
        let ip: IpAddr = a.address.parse().map_err(|_| {
            ConvertError::new(
                &p.field("address"),
                format!("malformed IP address: {}", a.address),
            )
        })?;
        let port = match a.port_specifier {
            Some(PortSpecifier::PortValue(v)) => u16::try_from(v)
                .map_err(|_| ConvertError::new(&p.field("port_value"), "must be at most 65535"))?,
            Some(PortSpecifier::NamedPort(_)) => {
                return Err(ConvertError::new(
                    &p.field("named_port"),
                    "named ports are not supported by weft-proxy",
                ));
            }
            None => 0,
        };
        Ok(SocketAddr::new(ip, port))
    };
    let Some(source) = &b.source_address else {
        return Err(ConvertError::new(
            &path.field("source_address"),
            "is required by weft-proxy",
        ));
    };
    let mut out = vec![one(source, &path.field("source_address"))?];
    for (i, e) in b.extra_source_addresses.iter().enumerate() {
        let p = path.field("extra_source_addresses").index(i);
        let Some(a) = &e.address else {
            return Err(ConvertError::new(&p.field("address"), "is required"));
        };
        out.push(one(a, &p.field("address"))?);
    }
    Ok(out)
}

/// `upstream_http_protocol_options`: the SNI of a TLS connection taken from each request's
/// host rather than fixed by the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoSni {
    /// The server's certificate must also name that host (`auto_san_validation`).
    pub san_validation: bool,
    /// `override_auto_sni_header`: the SNI comes from this request header when present.
    pub header: Option<http::HeaderName>,
}

/// What `typed_extension_protocol_options` (or the deprecated cluster-level fields) say.
struct ProtocolOptions {
    protocol: UpstreamProtocol,
    h2: H2Settings,
    common: Option<HttpProtocolOptions>,
    auto_sni: Option<AutoSni>,
}

fn auto_sni(
    o: &envoy_types::pb::envoy::config::core::v3::UpstreamHttpProtocolOptions,
    path: &FieldPath,
) -> Result<Option<AutoSni>> {
    let header = if o.override_auto_sni_header.is_empty() {
        None
    } else {
        Some(
            http::HeaderName::from_bytes(
                o.override_auto_sni_header.to_ascii_lowercase().as_bytes(),
            )
            .map_err(|_| {
                ConvertError::new(
                    &path.field("override_auto_sni_header"),
                    format!(
                        "expected a header name, got {:?}",
                        o.override_auto_sni_header
                    ),
                )
            })?,
        )
    };
    // Envoy takes the SNI from the header only when `auto_sni` is on.
    Ok(o.auto_sni.then_some(AutoSni {
        san_validation: o.auto_san_validation,
        header,
    }))
}

fn protocol_options(c: &Cluster) -> Result<ProtocolOptions> {
    let root = FieldPath::root();
    let tepo = root.field("typed_extension_protocol_options");
    for (k, v) in &c.typed_extension_protocol_options {
        if k != UPSTREAM_HTTP_OPTIONS && super::type_name(v) != UPSTREAM_HTTP_OPTIONS {
            return Err(ConvertError::new(
                &tepo.key(k),
                format!("protocol options `{k}` are not supported by weft-proxy"),
            ));
        }
    }
    let typed = c
        .typed_extension_protocol_options
        .iter()
        .find(|(k, v)| *k == UPSTREAM_HTTP_OPTIONS || super::type_name(v) == UPSTREAM_HTTP_OPTIONS);
    let Some((key, any)) = typed else {
        let protocol = if c.protocol_selection == 1 {
            UpstreamProtocol::Downstream
        } else {
            UpstreamProtocol::Http1
        };
        return Ok(ProtocolOptions {
            protocol,
            h2: H2Settings::default(),
            common: c.common_http_protocol_options,
            auto_sni: None,
        });
    };
    let path = tepo.key(key);
    let o: UpstreamHttpOptions = unpack(any, UPSTREAM_HTTP_OPTIONS, &path)?;
    let (protocol, h2) = match &o.upstream_protocol_options {
        None => (UpstreamProtocol::Http1, H2Settings::default()),
        Some(UpstreamProtocolOptions::ExplicitHttpConfig(e)) => match &e.protocol_config {
            Some(ProtocolConfig::Http2ProtocolOptions(h2)) => (
                UpstreamProtocol::Http2,
                H2Settings::new(
                    h2,
                    &path
                        .field("explicit_http_config")
                        .field("http2_protocol_options"),
                )?,
            ),
            Some(ProtocolConfig::HttpProtocolOptions(_)) | None => {
                (UpstreamProtocol::Http1, H2Settings::default())
            }
            Some(ProtocolConfig::Http3ProtocolOptions(_)) => {
                return Err(ConvertError::new(
                    &path
                        .field("explicit_http_config")
                        .field("http3_protocol_options"),
                    "HTTP/3 is not supported by weft-proxy",
                ));
            }
        },
        Some(UpstreamProtocolOptions::UseDownstreamProtocolConfig(d)) => (
            UpstreamProtocol::Downstream,
            match &d.http2_protocol_options {
                Some(h2) => H2Settings::new(
                    h2,
                    &path
                        .field("use_downstream_protocol_config")
                        .field("http2_protocol_options"),
                )?,
                None => H2Settings::default(),
            },
        ),
        Some(UpstreamProtocolOptions::AutoConfig(_)) => {
            return Err(ConvertError::new(
                &path.field("auto_config"),
                "ALPN protocol selection (`auto_config`) is not supported by weft-proxy",
            ));
        }
    };
    let auto_sni = match &o.upstream_http_protocol_options {
        Some(u) => auto_sni(u, &path.field("upstream_http_protocol_options"))?,
        None => None,
    };
    Ok(ProtocolOptions {
        protocol,
        h2,
        common: o
            .common_http_protocol_options
            .or(c.common_http_protocol_options),
        auto_sni,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::extensions::upstreams::http::v3::http_protocol_options::{
        ExplicitHttpConfig, UpstreamProtocolOptions,
    };
    use envoy_types::pb::google::protobuf::{Any, UInt32Value};
    use prost::{Message, Name};

    fn h2_cluster(o: Http2ProtocolOptions) -> Cluster {
        let options = UpstreamHttpOptions {
            upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
                ExplicitHttpConfig {
                    protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(o)),
                },
            )),
            ..Default::default()
        };
        Cluster {
            name: "c".into(),
            typed_extension_protocol_options: [(
                UPSTREAM_HTTP_OPTIONS.to_string(),
                Any {
                    type_url: UpstreamHttpOptions::type_url(),
                    value: options.encode_to_vec(),
                },
            )]
            .into(),
            ..Default::default()
        }
    }

    fn dns_cluster(kind: DiscoveryType, respect_dns_ttl: bool) -> Cluster {
        use envoy_types::pb::envoy::config::core::v3::{Address, address};
        use envoy_types::pb::envoy::config::endpoint::v3::{
            ClusterLoadAssignment, Endpoint as PbEndpoint, LbEndpoint, LocalityLbEndpoints,
            lb_endpoint::HostIdentifier,
        };
        let address = Address {
            address: Some(address::Address::SocketAddress(SocketAddress {
                address: "svc.example.internal".into(),
                port_specifier: Some(PortSpecifier::PortValue(8080)),
                ..Default::default()
            })),
        };
        Cluster {
            name: "dns".into(),
            cluster_discovery_type: Some(ClusterDiscoveryType::Type(kind as i32)),
            respect_dns_ttl,
            dns_refresh_rate: Some(envoy_types::pb::google::protobuf::Duration {
                seconds: 30,
                nanos: 0,
            }),
            load_assignment: Some(ClusterLoadAssignment {
                cluster_name: "dns".into(),
                endpoints: vec![LocalityLbEndpoints {
                    lb_endpoints: vec![LbEndpoint {
                        host_identifier: Some(HostIdentifier::Endpoint(PbEndpoint {
                            address: Some(address),
                            ..Default::default()
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn upstream_max_connection_duration_applies_and_max_stream_duration_is_refused() {
        use envoy_types::pb::google::protobuf::Duration as PbDuration;
        let mut c = h2_cluster(Http2ProtocolOptions::default());
        c.common_http_protocol_options = Some(HttpProtocolOptions {
            max_connection_duration: Some(PbDuration {
                seconds: 2,
                nanos: 0,
            }),
            ..Default::default()
        });
        // The typed options carry none, so the cluster-level ones count.
        let config = ClusterConfig::new(&c).expect("max_connection_duration");
        assert_eq!(config.max_connection_duration, Some(Duration::from_secs(2)));
        c.common_http_protocol_options = Some(HttpProtocolOptions {
            max_stream_duration: Some(PbDuration {
                seconds: 2,
                nanos: 0,
            }),
            ..Default::default()
        });
        let e = ClusterConfig::new(&c).expect_err("max_stream_duration");
        assert!(
            e.to_string().contains("common_http_protocol_options"),
            "{e}"
        );
    }

    #[test]
    fn respect_dns_ttl_is_accepted_on_dns_clusters_and_kept() {
        for kind in [DiscoveryType::StrictDns, DiscoveryType::LogicalDns] {
            let c = ClusterConfig::new(&dns_cluster(kind, true))
                .unwrap_or_else(|e| panic!("{kind:?} with respect_dns_ttl: {e}"));
            assert!(c.respect_dns_ttl, "{kind:?}");
            assert_eq!(c.dns_refresh, Duration::from_secs(30), "{kind:?}");
            let c = ClusterConfig::new(&dns_cluster(kind, false)).expect("without respect_dns_ttl");
            assert!(!c.respect_dns_ttl, "{kind:?}");
        }
    }

    #[test]
    fn upstream_http2_settings_apply_or_are_refused_by_name() {
        let c = ClusterConfig::new(&h2_cluster(Http2ProtocolOptions {
            hpack_table_size: Some(UInt32Value { value: 1024 }),
            ..Default::default()
        }))
        .expect("hpack_table_size is applied upstream");
        assert_eq!(c.protocol, UpstreamProtocol::Http2);
        assert_eq!(c.h2.header_table_size, Some(1024));
        let err = ClusterConfig::new(&h2_cluster(Http2ProtocolOptions {
            max_concurrent_streams: Some(UInt32Value { value: 10 }),
            ..Default::default()
        }))
        .expect_err("a per-connection stream limit cannot be honoured yet");
        assert!(err.message.contains("max_concurrent_streams"), "{err}");
    }

    fn with_slow_start(window_secs: i64, aggression: Option<f64>, min: Option<f64>) -> Cluster {
        use envoy_types::pb::envoy::config::cluster::v3::cluster::RoundRobinLbConfig;
        use envoy_types::pb::envoy::config::core::v3::RuntimeDouble;
        Cluster {
            name: "c".into(),
            lb_config: Some(LbConfig::RoundRobinLbConfig(RoundRobinLbConfig {
                slow_start_config: Some(SlowStartConfig {
                    slow_start_window: Some(envoy_types::pb::google::protobuf::Duration {
                        seconds: window_secs,
                        nanos: 0,
                    }),
                    aggression: aggression.map(|v| RuntimeDouble {
                        default_value: v,
                        runtime_key: "k".into(),
                    }),
                    min_weight_percent: min
                        .map(|value| envoy_types::pb::envoy::r#type::v3::Percent { value }),
                }),
            })),
            ..Default::default()
        }
    }

    #[test]
    fn slow_start_converts_with_envoys_defaults() {
        let c = ClusterConfig::new(&with_slow_start(60, None, None)).expect("slow start");
        assert_eq!(
            c.slow_start,
            Some(SlowStart {
                window: Duration::from_secs(60),
                aggression: 1.0,
                min_weight: 0.1,
            })
        );
        let c = ClusterConfig::new(&with_slow_start(60, Some(2.0), Some(20.0))).expect("set");
        let s = c.slow_start.expect("on");
        assert_eq!((s.aggression, s.min_weight), (2.0, 0.2));
        // A zero window is no slow start at all.
        let c = ClusterConfig::new(&with_slow_start(0, None, None)).expect("zero window");
        assert_eq!(c.slow_start, None);
        let e = ClusterConfig::new(&with_slow_start(60, None, Some(120.0))).expect_err("120%");
        assert!(e.to_string().contains("min_weight_percent"), "{e}");
    }

    #[test]
    fn slow_start_factor_follows_envoys_formula() {
        let s = |aggression| SlowStart {
            window: Duration::from_secs(60),
            aggression,
            min_weight: 0.1,
        };
        let secs = Duration::from_secs;
        assert_eq!(s(1.0).factor(secs(15)), 0.25);
        assert_eq!(s(2.0).factor(secs(15)), 0.5);
        // Below the floor, and at the very start (Envoy counts at least a millisecond).
        assert_eq!(s(1.0).factor(secs(1)), 0.1);
        assert_eq!(s(1.0).factor(Duration::ZERO), 0.1);
        assert_eq!(s(1.0).factor(secs(60)), 1.0);
        // Envoy applies an aggression that is not above 0 as 1.
        assert_eq!(s(-3.0).factor(secs(30)), 0.5);
    }

    #[test]
    fn locality_weighting_applies_to_every_balancer_and_dns_clusters() {
        use envoy_types::pb::envoy::config::cluster::v3::cluster::{
            CommonLbConfig, common_lb_config::LocalityWeightedLbConfig,
        };
        let mut c = Cluster {
            name: "c".into(),
            lb_policy: LbPolicy::RingHash as i32,
            common_lb_config: Some(CommonLbConfig {
                locality_config_specifier: Some(LocalityConfigSpecifier::LocalityWeightedLbConfig(
                    LocalityWeightedLbConfig {},
                )),
                ..Default::default()
            }),
            ..Default::default()
        };
        // Envoy folds locality weights into a hashing balancer's table, and so does weft.
        assert!(ClusterConfig::new(&c).expect("ring hash").locality_weighted);
        c.lb_policy = LbPolicy::RoundRobin as i32;
        assert!(
            ClusterConfig::new(&c)
                .expect("round robin")
                .locality_weighted
        );
        // DNS clusters' resolved hosts keep their endpoint's priority and locality.
        let mut dns = dns_cluster(DiscoveryType::StrictDns, false);
        if let Some(cla) = &mut dns.load_assignment {
            cla.endpoints[0].priority = 1;
        }
        let Discovery::StrictDns(eps) = ClusterConfig::new(&dns).expect("DNS priority").discovery
        else {
            panic!("a STRICT_DNS cluster")
        };
        assert_eq!(eps[0].placement.priority, 1);
    }
}
