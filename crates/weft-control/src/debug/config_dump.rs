//! `/debug/config_dump?proxyID=ID`: what the control plane last generated for one proxy, in
//! the shape of Envoy's admin `/config_dump` (one `envoy.admin.v3.*ConfigDump` section per
//! type). The control plane holds no protobuf descriptors (they live with the data plane),
//! so each resource is given as its name and version, the base64 of its serialized message
//! (how proto3 JSON writes `bytes`; `base64 -d | protoc --decode=envoy.config.cluster.v3.Cluster`
//! and the like read it in full) and a summary decoded with the prost types: the fields
//! `istioctl proxy-config` tables show.

use base64::Engine;
use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{
    Address, HealthStatus, TrafficDirection, address, socket_address,
};
use envoy_types::pb::envoy::config::endpoint::v3::{ClusterLoadAssignment, lb_endpoint};
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::google::protobuf::Any;
use prost::Message;
use serde::{Deserialize, Serialize};
use weft_xds::type_url;

use crate::node::ProxyType;
use crate::push::ProxyConfig;

/// The whole dump.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigDump {
    pub proxy: ProxyInfo,
    pub configs: Vec<Config>,
}

/// Who the dump is for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProxyInfo {
    pub id: String,
    pub proxy_type: String,
    pub namespace: String,
    pub workload: String,
    pub ips: Vec<String>,
    pub istio_version: String,
    pub connected: bool,
}

/// One section, tagged with the admin message Envoy uses for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "@type")]
pub enum Config {
    #[serde(rename = "type.googleapis.com/envoy.admin.v3.ClustersConfigDump")]
    Clusters {
        version_info: String,
        dynamic_active_clusters: Vec<Dumped<ClusterSummary>>,
    },
    #[serde(rename = "type.googleapis.com/envoy.admin.v3.ListenersConfigDump")]
    Listeners {
        version_info: String,
        dynamic_listeners: Vec<Dumped<ListenerSummary>>,
    },
    #[serde(rename = "type.googleapis.com/envoy.admin.v3.RoutesConfigDump")]
    Routes {
        version_info: String,
        dynamic_route_configs: Vec<Dumped<RouteSummary>>,
    },
    #[serde(rename = "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump")]
    Endpoints {
        version_info: String,
        dynamic_endpoint_configs: Vec<Dumped<EndpointsSummary>>,
    },
    /// Never the secrets themselves: names, kinds and validity, as `istioctl proxy-config
    /// secret` shows them.
    #[serde(rename = "type.googleapis.com/envoy.admin.v3.SecretsConfigDump")]
    Secrets {
        version_info: String,
        dynamic_active_secrets: Vec<SecretSummary>,
    },
}

/// A served secret without its material.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecretSummary {
    pub name: String,
    /// `Cert Chain` or `CA`, istioctl's words.
    #[serde(rename = "type")]
    pub kind: String,
    /// When its (first) certificate expires, in seconds since the Unix epoch; `None` when
    /// it does not parse.
    pub not_after: Option<u64>,
}

fn secret_summary(name: &str, any: &Any) -> SecretSummary {
    use envoy_types::pb::envoy::config::core::v3::data_source::Specifier;
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{Secret, secret};
    let decoded = Secret::decode(any.value.as_slice()).ok();
    let (kind, pem) = match decoded.and_then(|s| s.r#type) {
        Some(secret::Type::TlsCertificate(t)) => ("Cert Chain", t.certificate_chain),
        Some(secret::Type::ValidationContext(v)) => ("CA", v.trusted_ca),
        _ => ("Other", None),
    };
    let pem = pem.and_then(|d| match d.specifier {
        Some(Specifier::InlineBytes(b)) => String::from_utf8(b).ok(),
        Some(Specifier::InlineString(s)) => Some(s),
        _ => None,
    });
    SecretSummary {
        name: name.to_string(),
        kind: kind.to_string(),
        not_after: pem
            .and_then(|p| weft_identity::ca::not_after(&p).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs()),
    }
}

/// One resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dumped<S> {
    pub name: String,
    pub version_info: String,
    pub type_url: String,
    /// Base64 of the serialized message (the `Any`'s value).
    pub encoded: String,
    /// `None` with `decode_error` set when the message did not decode as its type.
    pub summary: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode_error: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterSummary {
    /// Discovery type (`EDS`, `STATIC`, `STRICT_DNS`, `ORIGINAL_DST`, …) or the custom type's
    /// name.
    #[serde(rename = "type")]
    pub kind: String,
    pub eds_service_name: Option<String>,
    pub lb_policy: String,
    pub connect_timeout: Option<String>,
    /// The transport socket's name (`envoy.transport_sockets.tls` for mTLS).
    pub transport_socket: Option<String>,
    /// Endpoints in its inline `load_assignment`.
    pub inline_endpoints: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListenerSummary {
    pub address: String,
    pub port: u32,
    pub traffic_direction: String,
    pub use_original_dst: bool,
    pub bind_to_port: bool,
    pub listener_filters: Vec<String>,
    pub filter_chains: usize,
    pub default_filter_chain: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteSummary {
    pub virtual_hosts: Vec<VirtualHostSummary>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VirtualHostSummary {
    pub name: String,
    pub domains: Vec<String>,
    pub routes: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointsSummary {
    pub endpoints: Vec<EndpointSummary>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointSummary {
    /// `IP:PORT`.
    pub address: String,
    pub health_status: String,
    pub weight: Option<u32>,
    /// `region/zone/subzone`.
    pub locality: String,
    pub priority: u32,
}

fn enum_name<E: TryFrom<i32>>(value: i32, name: impl Fn(E) -> &'static str) -> String {
    E::try_from(value).map_or_else(|_| value.to_string(), |e| name(e).to_string())
}

fn socket(address: Option<&Address>) -> (String, u32) {
    match address.and_then(|a| a.address.as_ref()) {
        Some(address::Address::SocketAddress(s)) => {
            let port = match &s.port_specifier {
                Some(socket_address::PortSpecifier::PortValue(p)) => *p,
                _ => 0,
            };
            (s.address.clone(), port)
        }
        Some(address::Address::Pipe(p)) => (p.path.clone(), 0),
        Some(address::Address::EnvoyInternalAddress(_)) => ("envoy_internal".into(), 0),
        None => (String::new(), 0),
    }
}

fn pb_duration(d: &envoy_types::pb::google::protobuf::Duration) -> String {
    if d.nanos == 0 {
        format!("{}s", d.seconds)
    } else {
        format!("{:.3}s", d.seconds as f64 + f64::from(d.nanos) / 1e9)
    }
}

fn cluster_summary(c: Cluster) -> ClusterSummary {
    ClusterSummary {
        kind: match &c.cluster_discovery_type {
            Some(cluster::ClusterDiscoveryType::Type(t)) => {
                enum_name(*t, |t: cluster::DiscoveryType| t.as_str_name())
            }
            Some(cluster::ClusterDiscoveryType::ClusterType(t)) => t.name.clone(),
            // The proto's default.
            None => "STATIC".into(),
        },
        eds_service_name: c
            .eds_cluster_config
            .as_ref()
            .map(|e| e.service_name.clone())
            .filter(|s| !s.is_empty()),
        lb_policy: enum_name(c.lb_policy, |p: cluster::LbPolicy| p.as_str_name()),
        connect_timeout: c.connect_timeout.as_ref().map(pb_duration),
        transport_socket: c.transport_socket.as_ref().map(|t| t.name.clone()),
        inline_endpoints: c.load_assignment.as_ref().map_or(0, |la| {
            la.endpoints.iter().map(|l| l.lb_endpoints.len()).sum()
        }),
    }
}

fn listener_summary(l: Listener) -> ListenerSummary {
    let (address, port) = socket(l.address.as_ref());
    ListenerSummary {
        address,
        port,
        traffic_direction: enum_name(l.traffic_direction, |d: TrafficDirection| d.as_str_name()),
        use_original_dst: l.use_original_dst.is_some_and(|b| b.value),
        bind_to_port: l.bind_to_port.is_none_or(|b| b.value),
        listener_filters: l.listener_filters.iter().map(|f| f.name.clone()).collect(),
        filter_chains: l.filter_chains.len(),
        default_filter_chain: l.default_filter_chain.is_some(),
    }
}

fn route_summary(r: RouteConfiguration) -> RouteSummary {
    RouteSummary {
        virtual_hosts: r
            .virtual_hosts
            .iter()
            .map(|v| VirtualHostSummary {
                name: v.name.clone(),
                domains: v.domains.clone(),
                routes: v.routes.len(),
            })
            .collect(),
    }
}

fn endpoints_summary(c: ClusterLoadAssignment) -> EndpointsSummary {
    let mut endpoints = Vec::new();
    for l in &c.endpoints {
        let locality = l.locality.as_ref().map_or_else(String::new, |l| {
            [&l.region, &l.zone, &l.sub_zone]
                .map(String::as_str)
                .join("/")
                .trim_end_matches('/')
                .to_string()
        });
        for e in &l.lb_endpoints {
            let address = match &e.host_identifier {
                Some(lb_endpoint::HostIdentifier::Endpoint(ep)) => {
                    let (ip, port) = socket(ep.address.as_ref());
                    format!("{ip}:{port}")
                }
                Some(lb_endpoint::HostIdentifier::EndpointName(n)) => n.clone(),
                None => String::new(),
            };
            endpoints.push(EndpointSummary {
                address,
                health_status: enum_name(e.health_status, |h: HealthStatus| h.as_str_name()),
                weight: e.load_balancing_weight.map(|w| w.value),
                locality: locality.clone(),
                priority: l.priority,
            });
        }
    }
    EndpointsSummary { endpoints }
}

fn dump<M: Message + Default, S>(
    entries: &[(String, Any)],
    version: &str,
    summarize: fn(M) -> S,
) -> Vec<Dumped<S>> {
    entries
        .iter()
        .map(|(name, any)| {
            let decoded = M::decode(any.value.as_slice());
            Dumped {
                name: name.clone(),
                version_info: version.to_string(),
                type_url: any.type_url.clone(),
                encoded: base64::engine::general_purpose::STANDARD.encode(&any.value),
                decode_error: decoded.as_ref().err().map(ToString::to_string),
                summary: decoded.ok().map(summarize),
            }
        })
        .collect()
}

/// The dump of what `config` holds.
pub fn render(config: &ProxyConfig) -> ConfigDump {
    let version = |t: &str| config.versions.get(t).cloned().unwrap_or_default();
    let g = &config.generated;
    let p = &config.proxy;
    let (clusters, listeners) = (version(type_url::CLUSTER), version(type_url::LISTENER));
    let routes = version(type_url::ROUTE_CONFIGURATION);
    let endpoints = version(type_url::CLUSTER_LOAD_ASSIGNMENT);
    ConfigDump {
        proxy: ProxyInfo {
            id: p.id.clone(),
            proxy_type: match p.proxy_type {
                ProxyType::Sidecar => "sidecar",
                ProxyType::Router => "router",
            }
            .to_string(),
            namespace: p.namespace.clone(),
            workload: p.workload_name.clone(),
            ips: p.ips.iter().map(ToString::to_string).collect(),
            istio_version: p.istio_version.clone(),
            connected: config.connected,
        },
        configs: vec![
            Config::Clusters {
                dynamic_active_clusters: dump(&g.clusters, &clusters, cluster_summary),
                version_info: clusters,
            },
            Config::Listeners {
                dynamic_listeners: dump(&g.listeners, &listeners, listener_summary),
                version_info: listeners,
            },
            Config::Routes {
                dynamic_route_configs: dump(&g.routes, &routes, route_summary),
                version_info: routes,
            },
            Config::Endpoints {
                dynamic_endpoint_configs: dump(&g.endpoints, &endpoints, endpoints_summary),
                version_info: endpoints,
            },
            Config::Secrets {
                dynamic_active_secrets: config
                    .secrets
                    .iter()
                    .map(|(name, any)| secret_summary(name, any))
                    .collect(),
                version_info: version(type_url::SECRET),
            },
        ],
    }
}

impl ConfigDump {
    pub fn secrets(&self) -> &[SecretSummary] {
        self.configs
            .iter()
            .find_map(|c| match c {
                Config::Secrets {
                    dynamic_active_secrets,
                    ..
                } => Some(dynamic_active_secrets.as_slice()),
                _ => None,
            })
            .unwrap_or_default()
    }

    pub fn clusters(&self) -> &[Dumped<ClusterSummary>] {
        self.configs
            .iter()
            .find_map(|c| match c {
                Config::Clusters {
                    dynamic_active_clusters,
                    ..
                } => Some(dynamic_active_clusters.as_slice()),
                _ => None,
            })
            .unwrap_or_default()
    }

    pub fn listeners(&self) -> &[Dumped<ListenerSummary>] {
        self.configs
            .iter()
            .find_map(|c| match c {
                Config::Listeners {
                    dynamic_listeners, ..
                } => Some(dynamic_listeners.as_slice()),
                _ => None,
            })
            .unwrap_or_default()
    }

    pub fn routes(&self) -> &[Dumped<RouteSummary>] {
        self.configs
            .iter()
            .find_map(|c| match c {
                Config::Routes {
                    dynamic_route_configs,
                    ..
                } => Some(dynamic_route_configs.as_slice()),
                _ => None,
            })
            .unwrap_or_default()
    }

    pub fn endpoints(&self) -> &[Dumped<EndpointsSummary>] {
        self.configs
            .iter()
            .find_map(|c| match c {
                Config::Endpoints {
                    dynamic_endpoint_configs,
                    ..
                } => Some(dynamic_endpoint_configs.as_slice()),
                _ => None,
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A served credential shows its name, kind and expiry, and nothing of its key.
    #[test]
    fn secrets_are_summarized_without_their_material() {
        let ca = weft_identity::Ca::generate("cluster.local").expect("a CA");
        let (issued, key) = ca
            .serving(
                &["partner.example"],
                weft_identity::ca::WORKLOAD_TTL,
                std::time::SystemTime::now(),
            )
            .expect("issued");
        let resources = {
            let yaml = format!(
                "apiVersion: v1\nkind: Secret\nmetadata: {{ name: partner, namespace: shop }}\n\
                 stringData:\n  cert: {:?}\n  key: {:?}\n  cacert: {:?}\n",
                issued.chain_pem,
                key,
                ca.cert_pem()
            );
            let mut loader = weft_config::Loader::new();
            loader.load_str("secrets.yaml", &yaml);
            let result = loader.finish();
            assert!(!result.has_errors(), "{:?}", result.findings);
            result
                .resources
                .into_iter()
                .map(|l| l.resource)
                .collect::<Vec<_>>()
        };
        let refs: Vec<&weft_config::Resource> = resources.iter().collect();
        let served = crate::translate::credentials::Credentials::of(&refs);
        let summaries: Vec<SecretSummary> = served
            .of_namespace("shop")
            .expect("shop's")
            .secrets
            .iter()
            .map(|(n, a)| secret_summary(n, a))
            .collect();
        let kinds: Vec<(&str, &str)> = summaries
            .iter()
            .map(|s| (s.name.as_str(), s.kind.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("kubernetes://partner", "Cert Chain"),
                ("kubernetes://partner-cacert", "CA")
            ]
        );
        let expiry = weft_identity::ca::not_after(&issued.chain_pem)
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert_eq!(summaries[0].not_after, Some(expiry));
        let json = serde_json::to_string(&summaries).unwrap();
        let key_body = key.lines().nth(1).expect("a key line");
        assert!(!json.contains(key_body), "no key material in {json}");
    }
}
