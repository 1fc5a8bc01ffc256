//! Outbound clusters as istiod builds them: one per service port
//! (`outbound|PORT||HOST`) and per DestinationRule subset (`outbound|PORT|SUBSET|HOST`),
//! EDS over ADS for registry services, ORIGINAL_DST for headless ones, STRICT_DNS and
//! LOGICAL_DNS with their endpoints inline for DNS-resolved ServiceEntries, plus the
//! `BlackHoleCluster` and `PassthroughCluster` the catch-all routes and chains name.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::cluster::v3::{
    CircuitBreakers, Cluster, circuit_breakers, cluster,
};
use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ApiVersion, ConfigSource, Http1ProtocolOptions,
    HttpProtocolOptions as CommonHttpOptions, config_source,
};
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    HttpProtocolOptions, http_protocol_options,
};
use envoy_types::pb::google::protobuf::{Any, Duration as PbDuration, UInt32Value};
use envoy_types::util::pack_any;

use super::locality::LocalityRule;
use super::names::cluster_name;
use super::traffic_policy::{Policy, downstream_protocol, http2_explicit};
use super::view::MeshView;
use crate::node::Proxy;
use crate::registry::{Resolution, Service, selects};

pub(super) const HTTP_OPTIONS_KEY: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
pub const BLACKHOLE: &str = "BlackHoleCluster";
pub const PASSTHROUGH: &str = "PassthroughCluster";
/// MeshConfig's default `dnsRefreshRate`, which istiod puts on every DNS cluster.
const DNS_REFRESH_RATE: std::time::Duration = std::time::Duration::from_secs(60);

/// Which endpoints an EDS cluster carries.
#[derive(Clone, Debug, PartialEq)]
pub struct EdsRef {
    pub cluster: String,
    pub hostname: String,
    pub port: u16,
    /// Subset labels; empty for the service-wide cluster.
    pub labels: BTreeMap<String, String>,
    /// How the proxy's locality arranges the endpoints, when it does.
    pub locality: Option<LocalityRule>,
}

/// The locality rule of a cluster with `policy` for `proxy` (see `locality`).
fn locality_rule(proxy: &Proxy, view: &MeshView, policy: &Policy) -> Option<LocalityRule> {
    let setting = super::locality::setting(policy.load_balancer, &view.mesh)?;
    let failover = policy.outlier_detection.is_some();
    if setting.distribute.is_empty() && !failover {
        return None;
    }
    let proxy_labels = super::locality::priority_labels(setting)
        .filter_map(|k| Some((k.to_string(), proxy.labels.get(k)?.clone())))
        .collect();
    Some(LocalityRule {
        setting: setting.clone(),
        failover,
        proxy_locality: proxy.locality.clone(),
        proxy_labels,
    })
}

pub struct Built {
    pub name: String,
    pub body: Any,
    pub eds: Option<EdsRef>,
}

pub fn ads() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        initial_fetch_timeout: Some(PbDuration::default()),
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        ..Default::default()
    }
}

pub fn duration(d: std::time::Duration) -> PbDuration {
    PbDuration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// istiod's getDefaultCircuitBreakerThresholds: every limit at its maximum, so Envoy's
/// own defaults (1024 connections, ...) never throttle mesh traffic.
pub(super) fn default_thresholds() -> circuit_breakers::Thresholds {
    let max = Some(UInt32Value { value: u32::MAX });
    circuit_breakers::Thresholds {
        max_connections: max,
        max_pending_requests: max,
        max_requests: max,
        max_retries: max,
        track_remaining: true,
        ..Default::default()
    }
}

pub(super) fn default_circuit_breakers() -> CircuitBreakers {
    CircuitBreakers {
        thresholds: vec![default_thresholds()],
        ..Default::default()
    }
}

/// `typed_extension_protocol_options` asking for HTTP/2 upstream.
pub(super) fn http2_protocol_options() -> std::collections::HashMap<String, Any> {
    protocol_options(with_protocol(http2_explicit()))
}

/// `typed_extension_protocol_options` following the downstream protocol.
pub(super) fn downstream_protocol_options() -> std::collections::HashMap<String, Any> {
    protocol_options(with_protocol(downstream_protocol()))
}

fn with_protocol(p: http_protocol_options::UpstreamProtocolOptions) -> HttpProtocolOptions {
    HttpProtocolOptions {
        upstream_protocol_options: Some(p),
        ..Default::default()
    }
}

/// Packs upstream HTTP options; Envoy requires them to name a protocol, so options that
/// only tune connections say HTTP/1.1, Envoy's default.
pub(super) fn protocol_options(
    mut options: HttpProtocolOptions,
) -> std::collections::HashMap<String, Any> {
    if options.upstream_protocol_options.is_none() {
        options.upstream_protocol_options = Some(
            http_protocol_options::UpstreamProtocolOptions::ExplicitHttpConfig(
                http_protocol_options::ExplicitHttpConfig {
                    protocol_config: Some(
                        http_protocol_options::explicit_http_config::ProtocolConfig::HttpProtocolOptions(
                            Http1ProtocolOptions::default(),
                        ),
                    ),
                },
            ),
        );
    }
    std::iter::once((HTTP_OPTIONS_KEY.to_string(), pack_any(options))).collect()
}

/// The cluster for one service port (and subset, whose `labels` pick a DNS cluster's
/// endpoints); `None` for a DNS cluster with no endpoints, which istiod leaves out.
fn service_cluster(proxy: &Proxy, view: &MeshView, t: &Target<'_>) -> Option<Cluster> {
    let Target {
        svc,
        port,
        labels,
        policy,
        ..
    } = t;
    let name = t.name.clone();
    // Timeouts and circuit breakers come with the traffic policy, defaults or not.
    let mut c = Cluster {
        name: name.clone(),
        ..Default::default()
    };
    match svc.resolution {
        Resolution::Passthrough => {
            c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::OriginalDst as i32,
            ));
            c.lb_policy = cluster::LbPolicy::ClusterProvided as i32;
        }
        Resolution::Dns | Resolution::DnsRoundRobin => {
            let kind = if svc.resolution == Resolution::Dns {
                cluster::DiscoveryType::StrictDns
            } else {
                cluster::DiscoveryType::LogicalDns
            };
            c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(kind as i32));
            dns_settings(&mut c, proxy);
            c.lb_policy = cluster::LbPolicy::LeastRequest as i32;
            let rule = locality_rule(proxy, view, policy);
            c.load_assignment = Some(dns_load_assignment(
                view,
                svc,
                port.port,
                &name,
                labels,
                rule.as_ref(),
            )?);
        }
        Resolution::ClientSideLb => {
            c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::Eds as i32,
            ));
            c.eds_cluster_config = Some(cluster::EdsClusterConfig {
                eds_config: Some(ads()),
                service_name: name,
            });
            c.lb_policy = cluster::LbPolicy::LeastRequest as i32;
        }
    }
    let mut http = if port.protocol.is_http2() {
        Some(with_protocol(http2_explicit()))
    } else if port.protocol == crate::registry::Protocol::Unsupported {
        Some(with_protocol(downstream_protocol()))
    } else {
        None
    };
    super::traffic_policy::apply(&mut c, &mut http, policy, port, &view.mesh);
    if let Some(tls) = policy.tls {
        super::traffic_policy::tls::apply(&mut c, &mut http, tls, &upstream(proxy, view, t));
    }
    if let Some(options) = http {
        c.typed_extension_protocol_options = protocol_options(options);
    }
    Some(c)
}

/// How istiod has Envoy resolve: V6_ONLY for a proxy with only IPv6 addresses, else V4_ONLY
/// (dual stack is off by default); the mesh's refresh rate; record TTLs respected. These
/// `Cluster` fields are deprecated for the `envoy.clusters.dns` extension, but istiod sends
/// them and Envoy still honours them.
#[allow(deprecated)]
fn dns_settings(c: &mut Cluster, proxy: &Proxy) {
    let v6_only = !proxy.ips.is_empty() && proxy.ips.iter().all(|ip| ip.is_ipv6());
    c.dns_lookup_family = if v6_only {
        cluster::DnsLookupFamily::V6Only
    } else {
        cluster::DnsLookupFamily::V4Only
    } as i32;
    c.dns_refresh_rate = Some(duration(DNS_REFRESH_RATE));
    c.respect_dns_ttl = true;
}

/// A DNS cluster's endpoints, inline: names and IPs alike (Envoy resolves names, and takes
/// IPs as they are); `None` when there are none.
fn dns_load_assignment(
    view: &MeshView,
    svc: &Service,
    port: u16,
    name: &str,
    labels: &BTreeMap<String, String>,
    rule: Option<&LocalityRule>,
) -> Option<ClusterLoadAssignment> {
    // LOGICAL_DNS takes exactly one endpoint (Envoy rejects more); the registry keeps one
    // per definition, so only a host defined in several namespaces can offer more.
    let limit = if svc.resolution == Resolution::DnsRoundRobin {
        1
    } else {
        usize::MAX
    };
    let eps: Vec<&crate::registry::Endpoint> = view
        .registry
        .endpoints_of(&svc.hostname, port)
        .into_iter()
        .filter(|ep| ep.healthy && selects(labels, &ep.labels))
        .take(limit)
        .collect();
    if eps.is_empty() {
        return None;
    }
    Some(super::endpoints::assignment(
        name,
        eps.into_iter(),
        false,
        rule,
    ))
}

/// One outbound cluster to build: a service port, a subset (empty: the whole service) and
/// the traffic policy that applies.
struct Target<'a> {
    svc: &'a Service,
    port: &'a crate::registry::ServicePort,
    labels: BTreeMap<String, String>,
    policy: Policy<'a>,
    name: String,
    subset: String,
    /// The DestinationRule selects workloads (`workloadSelector`).
    dr_selects: bool,
}

/// The clusters a proxy can reach, each once (a host defined in several namespaces is one
/// cluster), in the order `outbound` lists them.
fn targets<'a>(proxy: &Proxy, view: &'a MeshView) -> Vec<Target<'a>> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let scope = super::scope::Scope::of(proxy, view);
    // `visible_services`, borrowing only the view.
    let visible = view
        .registry
        .services
        .values()
        .filter(|s| scope.sees(s, &proxy.namespace));
    for svc in visible {
        let dr = view.destination_rule(&svc.hostname, &proxy.namespace, &svc.namespace);
        for port in &svc.ports {
            if port.protocol == crate::registry::Protocol::Udp {
                continue;
            }
            let mut subsets = vec![(String::new(), BTreeMap::new())];
            if let Some(dr) = dr {
                subsets.extend(
                    dr.spec
                        .subsets
                        .iter()
                        .map(|s| (s.name.clone(), s.labels.clone())),
                );
            }
            for (subset, labels) in subsets {
                let name = cluster_name(port.port, &subset, &svc.hostname);
                if !seen.insert(name.clone()) {
                    continue;
                }
                let policy = Policy::of(dr.map(|d| &d.spec), &subset, port.port);
                out.push(Target {
                    svc,
                    port,
                    labels,
                    policy,
                    name,
                    subset,
                    dr_selects: dr.is_some_and(|d| d.spec.workload_selector.is_some()),
                });
            }
        }
    }
    out
}

/// What a target's TLS settings read besides its rule.
fn upstream<'a>(
    proxy: &Proxy,
    view: &MeshView,
    t: &'a Target<'_>,
) -> super::traffic_policy::tls::Upstream<'a> {
    let mesh = &view.mesh;
    super::traffic_policy::tls::Upstream {
        cluster: &t.name,
        istio_sni: super::names::istio_sni(t.port.port, &t.subset, &t.svc.hostname),
        identities: super::traffic_policy::tls::identities(
            &t.svc.service_accounts,
            &t.svc.namespace,
            &mesh.trust_domain,
            &mesh.trust_domain_aliases,
        )
        .into_iter()
        .chain(t.svc.subject_alt_names.iter().cloned())
        .collect(),
        service_entry: t.svc.origin == crate::registry::Origin::ServiceEntry,
        sidecar_without_selector: proxy.proxy_type == crate::node::ProxyType::Sidecar
            && !t.dr_selects,
    }
}

fn eds_ref(proxy: &Proxy, view: &MeshView, t: Target<'_>) -> EdsRef {
    EdsRef {
        locality: locality_rule(proxy, view, &t.policy),
        cluster: t.name,
        hostname: t.svc.hostname.clone(),
        port: t.port.port,
        labels: t.labels,
    }
}

/// What `outbound`'s EDS clusters ask for, without building the clusters: the clusters of
/// client-side balanced services, unless their policy sends to the original destination.
pub fn eds_refs(proxy: &Proxy, view: &MeshView) -> Vec<EdsRef> {
    targets(proxy, view)
        .into_iter()
        .filter(|t| {
            t.svc.resolution == Resolution::ClientSideLb
                && t.policy.load_balancer.and_then(|lb| lb.simple)
                    != Some(weft_config::networking::destination_rule::SimpleLB::Passthrough)
        })
        .map(|t| eds_ref(proxy, view, t))
        .collect()
}

/// Every outbound cluster the proxy can reach, then the two catch-alls.
pub fn outbound(proxy: &Proxy, view: &MeshView) -> Vec<Built> {
    let mut out = Vec::new();
    for t in targets(proxy, view) {
        let Some(c) = service_cluster(proxy, view, &t) else {
            continue;
        };
        let name = t.name.clone();
        let eds = c
            .eds_cluster_config
            .is_some()
            .then(|| eds_ref(proxy, view, t));
        out.push(Built {
            name,
            body: pack_any(c),
            eds,
        });
    }
    out.push(Built {
        name: BLACKHOLE.into(),
        body: pack_any(Cluster {
            name: BLACKHOLE.into(),
            connect_timeout: Some(duration(view.mesh.connect_timeout)),
            cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::Static as i32,
            )),
            ..Default::default()
        }),
        eds: None,
    });
    let mut passthrough_options = with_protocol(downstream_protocol());
    passthrough_options.common_http_protocol_options = Some(CommonHttpOptions {
        idle_timeout: Some(duration(std::time::Duration::from_secs(300))),
        ..Default::default()
    });
    out.push(Built {
        name: PASSTHROUGH.into(),
        body: pack_any(Cluster {
            name: PASSTHROUGH.into(),
            connect_timeout: Some(duration(view.mesh.connect_timeout)),
            cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::OriginalDst as i32,
            )),
            lb_policy: cluster::LbPolicy::ClusterProvided as i32,
            circuit_breakers: Some(default_circuit_breakers()),
            typed_extension_protocol_options: protocol_options(passthrough_options),
            ..Default::default()
        }),
        eds: None,
    });
    out
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::core::v3::{address, socket_address};
    use prost::Message;

    use super::*;
    use crate::registry::Registry;
    use crate::translate::MeshSettings;
    use envoy_types::pb::envoy::config::endpoint::v3::lb_endpoint;

    const MESH: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: external, namespace: default }
spec:
  hosts: [api.example.com]
  resolution: DNS
  ports:
  - { number: 443, name: tls, protocol: TLS }
  - { number: 80, name: http, protocol: HTTP, targetPort: 8080 }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: rr, namespace: default }
spec:
  hosts: [rr.example.com]
  resolution: DNS_ROUND_ROBIN
  ports: [{ number: 443, name: tls, protocol: TLS }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: versions, namespace: default }
spec:
  hosts: [db.example.com]
  resolution: DNS
  ports: [{ number: 5432, name: tcp, protocol: TCP }]
  endpoints:
  - { address: db-1.example.com, labels: { version: v1 }, locality: eu/a, weight: 2 }
  - { address: 192.0.2.9, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: db, namespace: default }
spec:
  host: db.example.com
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v3, labels: { version: v3 } }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: nobody, namespace: default }
spec:
  hosts: [nobody.example.com]
  resolution: DNS
  workloadSelector: { labels: { app: nobody } }
  ports: [{ number: 80, name: http, protocol: HTTP }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: mixed-static, namespace: default }
spec:
  hosts: [mixed.example.com]
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints: [{ address: 192.0.2.1 }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: mixed-dns, namespace: other }
spec:
  hosts: [mixed.example.com]
  resolution: DNS
  ports: [{ number: 80, name: http, protocol: HTTP }]
"#;

    fn generated() -> Vec<(Built, Cluster)> {
        let mut loader = weft_config::Loader::new();
        loader.load_str("mesh.yaml", MESH);
        let result = loader.finish();
        assert!(!result.has_errors(), "{:?}", result.findings);
        let refs: Vec<&weft_config::Resource> =
            result.resources.iter().map(|l| &l.resource).collect();
        let registry = Registry::build(&refs, &[], "cluster.local");
        let view = MeshView::new(&refs, registry, MeshSettings::default());
        let node = envoy_types::pb::envoy::config::core::v3::Node {
            id: "sidecar~10.1.0.9~app-0.default~default.svc.cluster.local".into(),
            ..Default::default()
        };
        let proxy = Proxy::from_node(&node).expect("a sidecar id");
        let built = outbound(&proxy, &view);
        let eds: Vec<_> = built
            .iter()
            .filter_map(|b| b.eds.as_ref())
            .map(|e| super::super::endpoints::load_assignment(e, &view))
            .collect();
        // EDS never carries a DNS name, even for a host some namespace resolves by DNS.
        let (name, cla) = &eds[0];
        assert_eq!(name, "outbound|80||mixed.example.com");
        let cla = ClusterLoadAssignment::decode(cla.value.as_slice()).expect("decodes");
        assert_eq!(hosts(&cla), ["192.0.2.1:80"]);
        built
            .into_iter()
            .map(|b| {
                let c = Cluster::decode(b.body.value.as_slice()).expect("decodes");
                (b, c)
            })
            .collect()
    }

    fn hosts(cla: &ClusterLoadAssignment) -> Vec<String> {
        cla.endpoints
            .iter()
            .flat_map(|l| &l.lb_endpoints)
            .map(|e| {
                let Some(lb_endpoint::HostIdentifier::Endpoint(ep)) = &e.host_identifier else {
                    panic!("an endpoint")
                };
                let Some(address::Address::SocketAddress(sa)) =
                    ep.address.as_ref().and_then(|a| a.address.as_ref())
                else {
                    panic!("a socket address")
                };
                let Some(socket_address::PortSpecifier::PortValue(port)) = sa.port_specifier else {
                    panic!("a port")
                };
                format!("{}:{port}", sa.address)
            })
            .collect()
    }

    fn find<'a>(clusters: &'a [(Built, Cluster)], name: &str) -> &'a Cluster {
        &clusters
            .iter()
            .find(|(b, _)| b.name == name)
            .unwrap_or_else(|| panic!("no cluster {name}"))
            .1
    }

    fn kind(c: &Cluster) -> Option<cluster::DiscoveryType> {
        match c.cluster_discovery_type {
            Some(cluster::ClusterDiscoveryType::Type(t)) => {
                cluster::DiscoveryType::try_from(t).ok()
            }
            _ => None,
        }
    }

    #[test]
    #[allow(deprecated)]
    fn dns_service_entries_are_dns_clusters_with_their_endpoints_inline() {
        let clusters = generated();
        let names: Vec<&str> = clusters.iter().map(|(b, _)| b.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "outbound|443||api.example.com",
                "outbound|80||api.example.com",
                "outbound|5432||db.example.com",
                "outbound|5432|v1|db.example.com",
                "outbound|80||mixed.example.com",
                "outbound|443||rr.example.com",
                BLACKHOLE,
                PASSTHROUGH,
            ],
            "DNS clusters without endpoints (nobody, subset v3) are left out"
        );

        let tls = find(&clusters, "outbound|443||api.example.com");
        assert_eq!(kind(tls), Some(cluster::DiscoveryType::StrictDns));
        assert_eq!(
            tls.dns_lookup_family,
            cluster::DnsLookupFamily::V4Only as i32
        );
        assert_eq!(tls.dns_refresh_rate, Some(duration(DNS_REFRESH_RATE)));
        assert!(tls.respect_dns_ttl);
        assert!(tls.eds_cluster_config.is_none());
        let cla = tls.load_assignment.as_ref().expect("inline endpoints");
        assert_eq!(cla.cluster_name, "outbound|443||api.example.com");
        assert_eq!(hosts(cla), ["api.example.com:443"]);
        let http = find(&clusters, "outbound|80||api.example.com");
        assert_eq!(
            hosts(http.load_assignment.as_ref().expect("inline")),
            ["api.example.com:8080"]
        );

        let rr = find(&clusters, "outbound|443||rr.example.com");
        assert_eq!(kind(rr), Some(cluster::DiscoveryType::LogicalDns));
        assert_eq!(
            hosts(rr.load_assignment.as_ref().expect("inline")),
            ["rr.example.com:443"]
        );

        // Names and IPs alike, grouped by locality with summed weights; subsets filter.
        let db = find(&clusters, "outbound|5432||db.example.com");
        let cla = db.load_assignment.as_ref().expect("inline");
        assert_eq!(hosts(cla), ["192.0.2.9:5432", "db-1.example.com:5432"]);
        let localities: Vec<(String, u32)> = cla
            .endpoints
            .iter()
            .map(|l| {
                let loc = l.locality.clone().unwrap_or_default();
                (
                    format!("{}/{}", loc.region, loc.zone),
                    l.load_balancing_weight.map_or(0, |w| w.value),
                )
            })
            .collect();
        assert_eq!(localities, [("/".to_string(), 1), ("eu/a".to_string(), 2)]);
        let v1 = find(&clusters, "outbound|5432|v1|db.example.com");
        assert_eq!(
            hosts(v1.load_assignment.as_ref().expect("inline")),
            ["db-1.example.com:5432"]
        );

        let mixed = find(&clusters, "outbound|80||mixed.example.com");
        assert_eq!(kind(mixed), Some(cluster::DiscoveryType::Eds));
    }
}
