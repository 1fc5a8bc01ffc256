//! Listeners: where to accept, which listener filters look at a new connection first, and
//! which filter chain serves it — chosen by Envoy's `filter_chain_match` rules, criterion by
//! criterion, the most specific match winning at each step.

use super::hcm::HcmConfig;
use super::tcp_proxy::TcpProxyConfig;
use super::{ConvertError, Result, duration, type_name, unpack};
use envoy_types::pb::envoy::config::core::v3::CidrRange;
use envoy_types::pb::envoy::config::listener::v3::{
    FilterChain as PbFilterChain, FilterChainMatch, Listener, filter, filter_chain_match,
    listener_filter,
};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use weft_yaml::FieldPath;

const HCM: &str =
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const TCP_PROXY: &str = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";
const TLS_INSPECTOR: &str = "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector";
const HTTP_INSPECTOR: &str = "envoy.extensions.filters.listener.http_inspector.v3.HttpInspector";
const ORIGINAL_DST: &str = "envoy.extensions.filters.listener.original_dst.v3.OriginalDst";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerFilter {
    TlsInspector,
    HttpInspector,
    OriginalDst,
}

/// One listener filter and when it stands aside (`filter_disabled`): Istio turns the HTTP
/// inspector off for ports whose protocol is declared, so a server-first protocol is not
/// kept waiting for client bytes that never come.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerFilterConfig {
    pub kind: ListenerFilter,
    pub disabled: Option<FilterPredicate>,
}

/// Envoy's `ListenerFilterChainMatchPredicate`, on the connection's destination.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterPredicate {
    Any,
    Not(Box<FilterPredicate>),
    And(Vec<FilterPredicate>),
    Or(Vec<FilterPredicate>),
    /// Destination ports `start..end` (end exclusive, as Envoy's Int32Range).
    DestinationPorts {
        start: i64,
        end: i64,
    },
}

impl FilterPredicate {
    pub fn matches(&self, destination: std::net::SocketAddr) -> bool {
        match self {
            FilterPredicate::Any => true,
            FilterPredicate::Not(p) => !p.matches(destination),
            FilterPredicate::And(ps) => ps.iter().all(|p| p.matches(destination)),
            FilterPredicate::Or(ps) => ps.iter().any(|p| p.matches(destination)),
            FilterPredicate::DestinationPorts { start, end } => {
                let port = i64::from(destination.port());
                *start <= port && port < *end
            }
        }
    }

    fn from_proto(
        p: &envoy_types::pb::envoy::config::listener::v3::ListenerFilterChainMatchPredicate,
        path: &FieldPath,
    ) -> Result<Self> {
        use envoy_types::pb::envoy::config::listener::v3::listener_filter_chain_match_predicate::Rule;
        let set = |rules: &[envoy_types::pb::envoy::config::listener::v3::ListenerFilterChainMatchPredicate],
                   field: &str| {
            if rules.len() < 2 {
                return Err(ConvertError::new(
                    &path.field(field).field("rules"),
                    "needs at least 2 rules",
                ));
            }
            rules
                .iter()
                .enumerate()
                .map(|(i, r)| Self::from_proto(r, &path.field(field).field("rules").index(i)))
                .collect::<Result<Vec<_>>>()
        };
        match &p.rule {
            Some(Rule::AnyMatch(true)) => Ok(FilterPredicate::Any),
            Some(Rule::NotMatch(inner)) => Ok(FilterPredicate::Not(Box::new(Self::from_proto(
                inner,
                &path.field("not_match"),
            )?))),
            Some(Rule::AndMatch(m)) => Ok(FilterPredicate::And(set(&m.rules, "and_match")?)),
            Some(Rule::OrMatch(m)) => Ok(FilterPredicate::Or(set(&m.rules, "or_match")?)),
            Some(Rule::DestinationPortRange(r)) => Ok(FilterPredicate::DestinationPorts {
                start: i64::from(r.start),
                end: i64::from(r.end),
            }),
            Some(Rule::AnyMatch(false)) | None => Err(ConvertError::new(
                path,
                "a rule is required (any_match must be true)",
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum NetworkFilter {
    TcpProxy(TcpProxyConfig),
    Http(Arc<HcmConfig>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub len: u8,
}

impl Cidr {
    pub fn from_range(c: &CidrRange, path: &FieldPath) -> Result<Self> {
        Self::new(c, path)
    }

    fn new(c: &CidrRange, path: &FieldPath) -> Result<Self> {
        let addr: IpAddr = c.address_prefix.parse().map_err(|_| {
            ConvertError::new(
                &path.field("address_prefix"),
                format!("malformed IP address: {}", c.address_prefix),
            )
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = c.prefix_len.map_or(0, |v| v.value);
        if len > max {
            return Err(ConvertError::new(
                &path.field("prefix_len"),
                format!("must be at most {max} for {addr}"),
            ));
        }
        Ok(Cidr {
            addr,
            len: len as u8,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceType {
    Any,
    Local,
    External,
}

/// `FilterChainMatch`, normalised (lists sorted) so duplicates can be detected.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChainMatch {
    pub destination_port: Option<u16>,
    pub prefix_ranges: Vec<Cidr>,
    pub server_names: Vec<String>,
    pub transport_protocol: Option<String>,
    pub application_protocols: Vec<String>,
    pub direct_source_prefix_ranges: Vec<Cidr>,
    pub source_type: SourceType,
    pub source_prefix_ranges: Vec<Cidr>,
    pub source_ports: Vec<u16>,
}

fn cidrs(list: &[CidrRange], path: &FieldPath) -> Result<Vec<Cidr>> {
    let mut v = list
        .iter()
        .enumerate()
        .map(|(i, c)| Cidr::new(c, &path.index(i)))
        .collect::<Result<Vec<_>>>()?;
    v.sort_by_key(|c| (c.addr, c.len));
    Ok(v)
}

impl ChainMatch {
    fn new(m: &FilterChainMatch, path: &FieldPath) -> Result<Self> {
        if !m.address_suffix.is_empty() || m.suffix_len.is_some() {
            return Err(ConvertError::new(
                &path.field("address_suffix"),
                "is not supported by weft-proxy",
            ));
        }
        let destination_port = m
            .destination_port
            .map(|p| {
                u16::try_from(p.value)
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| {
                        ConvertError::new(&path.field("destination_port"), "must be in [1, 65535]")
                    })
            })
            .transpose()?;
        let mut server_names: Vec<String> = m
            .server_names
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        for (i, s) in server_names.iter().enumerate() {
            let allowed = match s.strip_prefix('*') {
                Some(rest) => rest.starts_with('.') && !rest.contains('*'),
                None => !s.contains('*'),
            };
            if !allowed {
                return Err(ConvertError::new(
                    &path.field("server_names").index(i),
                    format!("`{s}`: only a leading `*.` wildcard is allowed"),
                ));
            }
        }
        server_names.sort();
        let mut application_protocols = m.application_protocols.clone();
        application_protocols.sort();
        let mut source_ports = m
            .source_ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                u16::try_from(*p).map_err(|_| {
                    ConvertError::new(
                        &path.field("source_ports").index(i),
                        "must be at most 65535",
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        source_ports.sort();
        let source_type = match filter_chain_match::ConnectionSourceType::try_from(m.source_type) {
            Ok(filter_chain_match::ConnectionSourceType::Any) => SourceType::Any,
            Ok(filter_chain_match::ConnectionSourceType::SameIpOrLoopback) => SourceType::Local,
            Ok(filter_chain_match::ConnectionSourceType::External) => SourceType::External,
            Err(_) => {
                return Err(ConvertError::new(
                    &path.field("source_type"),
                    "unknown source type",
                ));
            }
        };
        Ok(ChainMatch {
            destination_port,
            prefix_ranges: cidrs(&m.prefix_ranges, &path.field("prefix_ranges"))?,
            server_names,
            transport_protocol: (!m.transport_protocol.is_empty())
                .then(|| m.transport_protocol.clone()),
            application_protocols,
            direct_source_prefix_ranges: cidrs(
                &m.direct_source_prefix_ranges,
                &path.field("direct_source_prefix_ranges"),
            )?,
            source_type,
            source_prefix_ranges: cidrs(
                &m.source_prefix_ranges,
                &path.field("source_prefix_ranges"),
            )?,
            source_ports,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FilterChain {
    pub name: String,
    pub matcher: ChainMatch,
    pub filter: NetworkFilter,
}

impl FilterChain {
    fn new(fc: &PbFilterChain, buffer_limit: u32, path: &FieldPath) -> Result<Self> {
        if fc.transport_socket.is_some() {
            return Err(ConvertError::new(
                &path.field("transport_socket"),
                "TLS on listeners is not supported by weft-proxy yet",
            ));
        }
        // Bounds the transport socket's handshake. A chain without a transport socket is
        // plaintext, whose "handshake" completes on accept, so the bound can never fire;
        // istiod sets it on every gateway chain, so it is checked, not refused.
        if let Some(t) = &fc.transport_socket_connect_timeout {
            duration(t, &path.field("transport_socket_connect_timeout"))?;
        }
        let matcher = ChainMatch::new(
            &fc.filter_chain_match.clone().unwrap_or_default(),
            &path.field("filter_chain_match"),
        )?;
        let fpath = path.field("filters");
        let Some((last, _)) = fc.filters.split_last() else {
            return Err(ConvertError::new(
                &fpath,
                "a filter chain needs a terminal network filter (tcp_proxy or \
                 http_connection_manager)",
            ));
        };
        if fc.filters.len() > 1 {
            return Err(ConvertError::new(
                &fpath.index(0),
                format!(
                    "network filter `{}` is not supported by weft-proxy; only one terminal \
                     filter (tcp_proxy or http_connection_manager) per chain",
                    fc.filters[0].name
                ),
            ));
        }
        let lpath = fpath.index(0);
        let any = match &last.config_type {
            Some(filter::ConfigType::TypedConfig(a)) => a,
            Some(filter::ConfigType::ConfigDiscovery(_)) => {
                return Err(ConvertError::new(
                    &lpath.field("config_discovery"),
                    "extension config discovery is not supported by weft-proxy",
                ));
            }
            None => {
                return Err(ConvertError::new(
                    &lpath.field("typed_config"),
                    format!("filter `{}` needs a typed_config", last.name),
                ));
            }
        };
        let tpath = lpath.field("typed_config");
        let filter = match type_name(any) {
            HCM => {
                let mut hcm = HcmConfig::new(&unpack(any, HCM, &tpath)?, &tpath)?;
                hcm.buffer_limit = buffer_limit;
                NetworkFilter::Http(Arc::new(hcm))
            }
            TCP_PROXY => NetworkFilter::TcpProxy(TcpProxyConfig::new(
                &unpack(any, TCP_PROXY, &tpath)?,
                &tpath,
            )?),
            other => {
                return Err(ConvertError::new(
                    &tpath,
                    format!("network filter type `{other}` is not supported by weft-proxy"),
                ));
            }
        };
        Ok(FilterChain {
            name: fc.name.clone(),
            matcher,
            filter,
        })
    }
}

/// A converted `Listener`.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerConfig {
    pub name: String,
    pub address: SocketAddr,
    pub bind_to_port: bool,
    pub use_original_dst: bool,
    pub listener_filters: Vec<ListenerFilterConfig>,
    pub listener_filters_timeout: Option<Duration>,
    pub continue_on_listener_filters_timeout: bool,
    pub chains: Vec<FilterChain>,
    pub default_chain: Option<FilterChain>,
    pub backlog: Option<u32>,
}

/// Envoy's default `listener_filters_timeout`.
const DEFAULT_LISTENER_FILTERS_TIMEOUT: Duration = Duration::from_secs(15);

#[cfg(test)]
mod filter_predicate_tests {
    use super::FilterPredicate::*;

    #[test]
    fn predicates_follow_envoys_rules_on_the_destination_port() {
        let at = |port: u16| std::net::SocketAddr::from(([10, 0, 0, 1], port));
        let ports = |start, end| DestinationPorts { start, end };
        assert!(ports(9080, 9081).matches(at(9080)));
        assert!(!ports(9080, 9081).matches(at(9081)), "end is exclusive");
        let either = Or(vec![ports(80, 81), ports(443, 444)]);
        assert!(either.matches(at(443)) && !either.matches(at(8080)));
        assert!(Not(Box::new(either.clone())).matches(at(8080)));
        assert!(!And(vec![either, ports(0, 100)]).matches(at(443)));
        assert!(Any.matches(at(1)));
    }
}

impl ListenerConfig {
    /// Whether a filter of `kind` runs for a connection to `destination`.
    pub fn runs(&self, kind: ListenerFilter, destination: std::net::SocketAddr) -> bool {
        self.listener_filters
            .iter()
            .any(|f| f.kind == kind && !f.disabled.as_ref().is_some_and(|p| p.matches(destination)))
    }

    pub fn new(l: &Listener) -> Result<Self> {
        let root = FieldPath::root();
        if l.name.is_empty() {
            return Err(ConvertError::new(&root.field("name"), "must not be empty"));
        }
        let Some(addr) = &l.address else {
            return Err(ConvertError::new(&root.field("address"), "is required"));
        };
        let address = super::endpoint::socket_addr(addr, &root.field("address"))?;
        if l.listener_specifier.is_some() {
            return Err(ConvertError::new(
                &root.field("internal_listener"),
                "internal listeners are not supported by weft-proxy",
            ));
        }
        let mut listener_filters = Vec::new();
        for (i, f) in l.listener_filters.iter().enumerate() {
            let p = root.field("listener_filters").index(i);
            let kind = match &f.config_type {
                Some(listener_filter::ConfigType::TypedConfig(a)) => match type_name(a) {
                    TLS_INSPECTOR => ListenerFilter::TlsInspector,
                    HTTP_INSPECTOR => ListenerFilter::HttpInspector,
                    ORIGINAL_DST => ListenerFilter::OriginalDst,
                    other => {
                        return Err(ConvertError::new(
                            &p.field("typed_config"),
                            format!(
                                "listener filter type `{other}` is not supported by weft-proxy"
                            ),
                        ));
                    }
                },
                _ => {
                    return Err(ConvertError::new(
                        &p.field("typed_config"),
                        format!("listener filter `{}` needs a typed_config", f.name),
                    ));
                }
            };
            let disabled = f
                .filter_disabled
                .as_ref()
                .map(|d| FilterPredicate::from_proto(d, &p.field("filter_disabled")))
                .transpose()?;
            listener_filters.push(ListenerFilterConfig { kind, disabled });
        }
        let buffer_limit = l
            .per_connection_buffer_limit_bytes
            .map_or(super::hcm::DEFAULT_BUFFER_LIMIT, |v| v.value);
        let chains = l
            .filter_chains
            .iter()
            .enumerate()
            .map(|(i, fc)| {
                FilterChain::new(fc, buffer_limit, &root.field("filter_chains").index(i))
            })
            .collect::<Result<Vec<_>>>()?;
        for (i, c) in chains.iter().enumerate() {
            if let Some(j) = chains[..i].iter().position(|o| o.matcher == c.matcher) {
                return Err(ConvertError::new(
                    &root.field("filter_chains").index(i),
                    format!(
                        "error adding listener '{}': multiple filter chains with the same \
                         matching rules are defined (filter_chains[{j}] and filter_chains[{i}])",
                        address
                    ),
                ));
            }
        }
        let default_chain = l
            .default_filter_chain
            .as_ref()
            .map(|fc| FilterChain::new(fc, buffer_limit, &root.field("default_filter_chain")))
            .transpose()?;
        if chains.is_empty() && default_chain.is_none() {
            return Err(ConvertError::new(
                &root.field("filter_chains"),
                "a listener needs at least one filter chain or a default_filter_chain",
            ));
        }
        let listener_filters_timeout = match &l.listener_filters_timeout {
            None => Some(DEFAULT_LISTENER_FILTERS_TIMEOUT),
            Some(d) => {
                let d = duration(d, &root.field("listener_filters_timeout"))?;
                (!d.is_zero()).then_some(d)
            }
        };
        Ok(ListenerConfig {
            name: l.name.clone(),
            address,
            bind_to_port: l.bind_to_port.is_none_or(|b| b.value),
            use_original_dst: l.use_original_dst.is_some_and(|b| b.value),
            listener_filters,
            listener_filters_timeout,
            continue_on_listener_filters_timeout: l.continue_on_listener_filters_timeout,
            chains,
            default_chain,
            backlog: l.tcp_backlog_size.map(|v| v.value),
        })
    }

    /// Every RDS route name the listener's chains wait for.
    pub fn rds_names(&self) -> impl Iterator<Item = &str> {
        self.chains
            .iter()
            .chain(self.default_chain.as_ref())
            .filter_map(|c| match &c.filter {
                NetworkFilter::Http(h) => h.rds_name(),
                NetworkFilter::TcpProxy(_) => None,
            })
    }

    /// The chain for a connection, or `None` (Envoy closes such connections).
    pub fn select_chain(&self, conn: &ConnectionFacts<'_>) -> Option<&FilterChain> {
        select(&self.chains, conn).or(self.default_chain.as_ref())
    }
}

/// What filter chain matching reads from a new connection.
pub struct ConnectionFacts<'a> {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub server_name: Option<&'a str>,
    pub transport_protocol: &'a str,
    pub application_protocols: &'a [String],
}

/// Narrows `candidates` by one criterion: the chains that match it specifically with the
/// best score, else the chains that leave it unset.
fn narrow(
    candidates: Vec<&FilterChain>,
    unset: impl Fn(&ChainMatch) -> bool,
    score: impl Fn(&ChainMatch) -> Option<u32>,
) -> Vec<&FilterChain> {
    let best = candidates
        .iter()
        .filter(|c| !unset(&c.matcher))
        .filter_map(|c| score(&c.matcher))
        .max();
    match best {
        Some(best) => candidates
            .into_iter()
            .filter(|c| !unset(&c.matcher) && score(&c.matcher) == Some(best))
            .collect(),
        None => candidates
            .into_iter()
            .filter(|c| unset(&c.matcher))
            .collect(),
    }
}

fn longest_prefix(ranges: &[Cidr], ip: IpAddr) -> Option<u32> {
    ranges
        .iter()
        .filter(|c| c.contains(ip))
        .map(|c| u32::from(c.len))
        .max()
}

fn select<'a>(chains: &'a [FilterChain], conn: &ConnectionFacts<'_>) -> Option<&'a FilterChain> {
    let mut c: Vec<&FilterChain> = chains.iter().collect();
    c = narrow(
        c,
        |m| m.destination_port.is_none(),
        |m| (m.destination_port == Some(conn.local.port())).then_some(1),
    );
    c = narrow(
        c,
        |m| m.prefix_ranges.is_empty(),
        |m| longest_prefix(&m.prefix_ranges, conn.local.ip()),
    );
    let sni = conn.server_name.map(str::to_ascii_lowercase);
    c = narrow(
        c,
        |m| m.server_names.is_empty(),
        |m| {
            let sni = sni.as_deref()?;
            m.server_names
                .iter()
                .filter_map(|n| match n.strip_prefix('*') {
                    // Exact names beat every wildcard; longer wildcards beat shorter ones.
                    None => (n == sni).then_some(u32::MAX),
                    Some(suffix) => (sni.len() > suffix.len() && sni.ends_with(suffix))
                        .then_some(suffix.len() as u32),
                })
                .max()
        },
    );
    c = narrow(
        c,
        |m| m.transport_protocol.is_none(),
        |m| (m.transport_protocol.as_deref() == Some(conn.transport_protocol)).then_some(1),
    );
    c = narrow(
        c,
        |m| m.application_protocols.is_empty(),
        |m| {
            m.application_protocols
                .iter()
                .any(|p| conn.application_protocols.contains(p))
                .then_some(1)
        },
    );
    c = narrow(
        c,
        |m| m.direct_source_prefix_ranges.is_empty(),
        |m| longest_prefix(&m.direct_source_prefix_ranges, conn.remote.ip()),
    );
    let local_source = conn.remote.ip() == conn.local.ip() || conn.remote.ip().is_loopback();
    c = narrow(
        c,
        |m| m.source_type == SourceType::Any,
        |m| match m.source_type {
            SourceType::Local => local_source.then_some(1),
            SourceType::External => (!local_source).then_some(1),
            SourceType::Any => None,
        },
    );
    c = narrow(
        c,
        |m| m.source_prefix_ranges.is_empty(),
        |m| longest_prefix(&m.source_prefix_ranges, conn.remote.ip()),
    );
    c = narrow(
        c,
        |m| m.source_ports.is_empty(),
        |m| m.source_ports.contains(&conn.remote.port()).then_some(1),
    );
    c.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tcp_proxy::{TcpProxyConfig, TcpTarget};

    fn chain(name: &str, m: ChainMatch) -> FilterChain {
        FilterChain {
            name: name.into(),
            matcher: m,
            filter: NetworkFilter::TcpProxy(TcpProxyConfig {
                stat_prefix: "t".into(),
                target: TcpTarget::Cluster("c".into()),
                idle_timeout: None,
                max_connect_attempts: 1,
                max_downstream_connection_duration: None,
                hash_source_ip: false,
            }),
        }
    }

    fn any() -> ChainMatch {
        ChainMatch {
            destination_port: None,
            prefix_ranges: vec![],
            server_names: vec![],
            transport_protocol: None,
            application_protocols: vec![],
            direct_source_prefix_ranges: vec![],
            source_type: SourceType::Any,
            source_prefix_ranges: vec![],
            source_ports: vec![],
        }
    }

    fn pick<'a>(
        chains: &'a [FilterChain],
        port: u16,
        sni: Option<&str>,
        tp: &str,
        alpn: &[&str],
    ) -> Option<&'a str> {
        let alpn: Vec<String> = alpn.iter().map(|s| s.to_string()).collect();
        let facts = ConnectionFacts {
            local: SocketAddr::from(([10, 0, 0, 1], port)),
            remote: SocketAddr::from(([10, 0, 0, 2], 5000)),
            server_name: sni,
            transport_protocol: tp,
            application_protocols: &alpn,
        };
        select(chains, &facts).map(|c| c.name.as_str())
    }

    #[test]
    fn the_most_specific_chain_wins_criterion_by_criterion() {
        let chains = vec![
            chain(
                "port",
                ChainMatch {
                    destination_port: Some(8080),
                    ..any()
                },
            ),
            chain(
                "exact-sni",
                ChainMatch {
                    server_names: vec!["a.example.com".into()],
                    ..any()
                },
            ),
            chain(
                "wild-sni",
                ChainMatch {
                    server_names: vec!["*.example.com".into()],
                    ..any()
                },
            ),
            chain(
                "tls",
                ChainMatch {
                    transport_protocol: Some("tls".into()),
                    ..any()
                },
            ),
            chain(
                "h2c",
                ChainMatch {
                    application_protocols: vec!["h2c".into()],
                    ..any()
                },
            ),
            chain("fallback", any()),
        ];
        assert_eq!(
            pick(&chains, 8080, Some("a.example.com"), "tls", &[]),
            Some("port")
        );
        assert_eq!(
            pick(&chains, 80, Some("a.example.com"), "tls", &[]),
            Some("exact-sni")
        );
        assert_eq!(
            pick(&chains, 80, Some("b.example.com"), "tls", &[]),
            Some("wild-sni")
        );
        assert_eq!(
            pick(&chains, 80, Some("other.org"), "tls", &[]),
            Some("tls")
        );
        assert_eq!(pick(&chains, 80, None, "raw_buffer", &["h2c"]), Some("h2c"));
        assert_eq!(
            pick(&chains, 80, None, "raw_buffer", &["http/1.1"]),
            Some("fallback")
        );
    }

    #[test]
    fn a_specific_mismatch_does_not_fall_back_across_criteria() {
        // Envoy narrows by destination port first: once a port-specific chain exists for the
        // port, chains without a port are out even if they would match later criteria.
        let chains = vec![
            chain(
                "port-tls",
                ChainMatch {
                    destination_port: Some(443),
                    transport_protocol: Some("tls".into()),
                    ..any()
                },
            ),
            chain("raw", any()),
        ];
        assert_eq!(pick(&chains, 443, None, "raw_buffer", &[]), None);
        assert_eq!(pick(&chains, 80, None, "raw_buffer", &[]), Some("raw"));
    }

    fn tcp_chain(connect_timeout_s: Option<i64>) -> PbFilterChain {
        use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
            TcpProxy, tcp_proxy::ClusterSpecifier,
        };
        use envoy_types::pb::google::protobuf::{Any, Duration as PbDuration};
        use prost::Message;
        let tcp = TcpProxy {
            stat_prefix: "t".into(),
            cluster_specifier: Some(ClusterSpecifier::Cluster("c".into())),
            ..Default::default()
        };
        PbFilterChain {
            filters: vec![envoy_types::pb::envoy::config::listener::v3::Filter {
                name: "envoy.filters.network.tcp_proxy".into(),
                config_type: Some(filter::ConfigType::TypedConfig(Any {
                    type_url: format!("type.googleapis.com/{TCP_PROXY}"),
                    value: tcp.encode_to_vec(),
                })),
            }],
            transport_socket_connect_timeout: connect_timeout_s.map(|s| PbDuration {
                seconds: s,
                nanos: 0,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_transport_socket_connect_timeout_is_checked_on_plaintext_chains() {
        let root = FieldPath::root();
        assert!(FilterChain::new(&tcp_chain(Some(10)), 1 << 20, &root).is_ok());
        let err =
            FilterChain::new(&tcp_chain(Some(-1)), 1 << 20, &root).expect_err("negative timeout");
        assert!(
            err.to_string().contains("transport_socket_connect_timeout"),
            "{err}"
        );
    }

    #[test]
    fn cidrs_contain_addresses_of_their_family() {
        let c = Cidr {
            addr: "10.1.0.0".parse().expect("ip"),
            len: 16,
        };
        assert!(c.contains("10.1.200.3".parse().expect("ip")));
        assert!(!c.contains("10.2.0.1".parse().expect("ip")));
        assert!(c.contains("::ffff:10.1.0.9".parse().expect("ip")));
        let all = Cidr {
            addr: "0.0.0.0".parse().expect("ip"),
            len: 0,
        };
        assert!(all.contains("192.168.1.1".parse().expect("ip")));
    }
}
