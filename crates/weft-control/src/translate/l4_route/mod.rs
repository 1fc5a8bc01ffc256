//! VirtualService `tcp` and `tls` routes on a sidecar's outbound TCP and TLS listeners, as
//! istiod builds them (buildSidecarOutboundTCPTLSFilterChainOpts): each route whose match
//! applies to this proxy (port, source labels and namespace, the `mesh` gateway) becomes a
//! filter chain matching its destination subnets or SNI hosts and relaying to its
//! destinations — one cluster, or a weighted choice; without a route that matches every
//! connection, the service's own cluster takes what is left.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use envoy_types::pb::envoy::config::core::v3::CidrRange;
use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain, FilterChainMatch, filter};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use envoy_types::pb::envoy::r#type::v3::{HashPolicy, hash_policy};
use envoy_types::pb::google::protobuf::UInt32Value;
use envoy_types::util::pack_any;
use weft_config::networking::destination_rule::DestinationRule;
use weft_config::networking::virtual_service::{RouteDestination, VirtualService};

use super::cluster::duration;
use super::names::{cluster_name, resolve_host};
use super::route::{destination_cluster, virtual_service};
use super::view::{MeshView, Named};
use crate::node::Proxy;
use crate::registry::{Service, ServicePort};

const TCP_PROXY: &str = "envoy.filters.network.tcp_proxy";

/// The filter chains of the listener for `port` of `svc`, and whether any matches by SNI
/// (so the listener needs the TLS inspector). On a `wildcard` listener (the service has no
/// address of its own) a TLS service's default chain matches its host name as SNI.
pub fn chains(
    proxy: &Proxy,
    view: &MeshView,
    svc: &Service,
    port: &ServicePort,
    wildcard: bool,
) -> (Vec<FilterChain>, bool) {
    let vs = virtual_service(proxy, view, svc);
    let mut out = Vec::new();
    let mut covered = false;
    if let Some(vs) = vs {
        if port.protocol.is_tls() {
            tls_chains(proxy, view, vs, port.port, &mut out);
            // A TLS port with a matching route sends nothing else to the service.
            covered = !out.is_empty();
        } else {
            covered = tcp_chains(proxy, view, vs, port.port, &mut out);
        }
    }
    if !covered {
        let cluster = cluster_name(port.port, "", &svc.hostname);
        let dr = view.destination_rule(&svc.hostname, &proxy.namespace, &svc.namespace);
        let sni = if wildcard && port.protocol.is_tls() {
            vec![svc.hostname.clone()]
        } else {
            Vec::new()
        };
        out.push(chain(
            FilterChainMatch {
                server_names: sni,
                ..Default::default()
            },
            single(&cluster, "", dr.map(|d| &d.spec)),
        ));
    }
    let sni = out.iter().any(|c| {
        c.filter_chain_match
            .as_ref()
            .is_some_and(|m| !m.server_names.is_empty())
    });
    (out, sni)
}

/// istiod's matchTCP / matchTLS: every static predicate of a match must hold.
fn applies(
    proxy: &Proxy,
    port: u16,
    match_port: u32,
    gateways: &[String],
    source_labels: &BTreeMap<String, String>,
    source_namespace: &str,
) -> bool {
    let gateway = if gateways.is_empty() {
        true
    } else {
        gateways.iter().any(|g| g == "mesh")
    };
    gateway
        && source_labels
            .iter()
            .all(|(k, v)| proxy.labels.get(k) == Some(v))
        && (match_port == 0 || match_port == u32::from(port))
        && (source_namespace.is_empty() || source_namespace == proxy.namespace)
}

/// Appends the chains of the `tcp` routes; true when one of them takes every connection
/// (a route without matches, or a match without destination subnets), after which later
/// routes and the service's default are unreachable.
fn tcp_chains(
    proxy: &Proxy,
    view: &MeshView,
    vs: &Named<VirtualService>,
    port: u16,
    out: &mut Vec<FilterChain>,
) -> bool {
    for route in &vs.spec.tcp {
        let filter = || destinations(proxy, view, vs, &route.route, port);
        if route.r#match.is_empty() {
            out.extend(filter().map(|f| chain(FilterChainMatch::default(), f)));
            return true;
        }
        let mut subnets = Vec::new();
        for m in &route.r#match {
            if !applies(
                proxy,
                port,
                m.port,
                &m.gateways,
                &m.source_labels,
                &m.source_namespace,
            ) {
                continue;
            }
            if m.destination_subnets.is_empty() {
                out.extend(filter().map(|f| chain(FilterChainMatch::default(), f)));
                return true;
            }
            subnets.extend(m.destination_subnets.iter().cloned());
        }
        if !subnets.is_empty()
            && let Some(f) = filter()
        {
            out.push(chain(
                FilterChainMatch {
                    prefix_ranges: subnets.iter().filter_map(|s| cidr(s)).collect(),
                    ..Default::default()
                },
                f,
            ));
        }
    }
    false
}

/// Appends the chains of the `tls` routes: one per distinct SNI-and-subnet match, the
/// first applicable route for it winning.
fn tls_chains(
    proxy: &Proxy,
    view: &MeshView,
    vs: &Named<VirtualService>,
    port: u16,
    out: &mut Vec<FilterChain>,
) {
    let mut seen = BTreeSet::new();
    for route in &vs.spec.tls {
        for m in &route.r#match {
            if !applies(
                proxy,
                port,
                m.port,
                &m.gateways,
                &m.source_labels,
                &m.source_namespace,
            ) {
                continue;
            }
            let mut sni = m.sni_hosts.clone();
            sni.sort();
            let mut subnets = m.destination_subnets.clone();
            subnets.sort();
            if !seen.insert((sni.clone(), subnets.clone())) {
                continue;
            }
            let Some(f) = destinations(proxy, view, vs, &route.route, port) else {
                continue;
            };
            out.push(chain(
                FilterChainMatch {
                    server_names: m.sni_hosts.clone(),
                    prefix_ranges: subnets.iter().filter_map(|s| cidr(s)).collect(),
                    ..Default::default()
                },
                f,
            ));
        }
    }
}

fn chain(m: FilterChainMatch, f: Filter) -> FilterChain {
    FilterChain {
        filter_chain_match: (m != FilterChainMatch::default()).then_some(m),
        filters: vec![f],
        ..Default::default()
    }
}

/// The tcp_proxy for a route's destinations (buildOutboundNetworkFilters): one cluster, or
/// the weighted ones, with the first destination's DestinationRule for the TCP settings.
fn destinations(
    proxy: &Proxy,
    view: &MeshView,
    vs: &Named<VirtualService>,
    routes: &[RouteDestination],
    port: u16,
) -> Option<Filter> {
    let first = routes.first()?.destination.as_ref()?;
    let host = resolve_host(&first.host, &vs.namespace, &view.mesh.domain);
    let host_namespace = view
        .registry
        .lookup(&host, &vs.namespace)
        .map_or("", |s| s.namespace.as_str());
    let dr = view
        .destination_rule(&host, &proxy.namespace, host_namespace)
        .map(|d| &d.spec);
    if let [only] = routes {
        let cluster = destination_cluster(view, first, &vs.namespace, port);
        return Some(single(&cluster, &only_subset(only), dr));
    }
    let clusters: Vec<_> = routes
        .iter()
        .filter(|r| r.weight > 0)
        .filter_map(|r| {
            Some(tcp_proxy::weighted_cluster::ClusterWeight {
                name: destination_cluster(view, r.destination.as_ref()?, &vs.namespace, port),
                weight: u32::try_from(r.weight).unwrap_or(0),
                ..Default::default()
            })
        })
        .collect();
    if clusters.is_empty() {
        return None;
    }
    let mut t = settings(dr, "");
    t.stat_prefix = format!("{}.{}", vs.name, vs.namespace);
    t.cluster_specifier = Some(tcp_proxy::ClusterSpecifier::WeightedClusters(
        tcp_proxy::WeightedCluster { clusters },
    ));
    Some(filter(t))
}

fn only_subset(r: &RouteDestination) -> String {
    r.destination
        .as_ref()
        .map(|d| d.subset.clone())
        .unwrap_or_default()
}

fn single(cluster: &str, subset: &str, dr: Option<&DestinationRule>) -> Filter {
    let mut t = settings(dr, subset);
    t.stat_prefix = cluster.to_string();
    t.cluster_specifier = Some(tcp_proxy::ClusterSpecifier::Cluster(cluster.to_string()));
    filter(t)
}

fn filter(t: TcpProxy) -> Filter {
    Filter {
        name: TCP_PROXY.into(),
        config_type: Some(filter::ConfigType::TypedConfig(pack_any(t))),
    }
}

/// What a DestinationRule's top level says of relayed connections (idle timeout, longest
/// life), and a source-IP hash when the rule — or the subset, which overrides it — hashes
/// by source IP (istiod's maybeSetHashPolicy).
fn settings(dr: Option<&DestinationRule>, subset: &str) -> TcpProxy {
    let mut t = TcpProxy::default();
    let Some(dr) = dr else {
        return t;
    };
    let tcp = dr
        .traffic_policy
        .as_ref()
        .and_then(|tp| tp.connection_pool.as_ref())
        .and_then(|p| p.tcp.as_ref());
    t.idle_timeout = tcp
        .and_then(|t| t.idle_timeout.as_ref())
        .map(|d| duration(d.as_std()));
    t.max_downstream_connection_duration = tcp
        .and_then(|t| t.max_connection_duration.as_ref())
        .map(|d| duration(d.as_std()));
    let source_ip =
        |lb: Option<&weft_config::networking::destination_rule::LoadBalancerSettings>| {
            lb.and_then(|lb| lb.consistent_hash.as_ref())
                .map(|h| h.use_source_ip == Some(true))
        };
    let top = source_ip(
        dr.traffic_policy
            .as_ref()
            .and_then(|tp| tp.load_balancer.as_ref()),
    )
    .unwrap_or(false);
    let by_subset = dr
        .subset(subset)
        .and_then(|s| s.traffic_policy.as_ref())
        .and_then(|tp| tp.load_balancer.as_ref())
        .map(|lb| source_ip(Some(lb)).unwrap_or(false));
    if by_subset.unwrap_or(top) {
        t.hash_policy = vec![HashPolicy {
            policy_specifier: Some(hash_policy::PolicySpecifier::SourceIp(
                hash_policy::SourceIp::default(),
            )),
        }];
    }
    t
}

/// A destination subnet as a CIDR range: `10.0.0.0/8`, or one address.
fn cidr(s: &str) -> Option<CidrRange> {
    let (ip, len) = match s.split_once('/') {
        Some((ip, len)) => (ip, len.parse::<u32>().ok()?),
        None => (s, if s.contains(':') { 128 } else { 32 }),
    };
    let _: std::net::IpAddr = ip.parse().ok()?;
    Some(CidrRange {
        address_prefix: ip.to_string(),
        prefix_len: Some(UInt32Value { value: len }),
    })
}

#[cfg(test)]
mod tests;
