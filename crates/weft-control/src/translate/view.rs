//! The inputs of a translation gathered once per configuration change: the registry, the
//! routing resources with their namespaces, and the mesh-wide settings.

use std::time::Duration;

use envoy_types::pb::google::protobuf::Any;

use weft_config::Resource;
use weft_config::networking::destination_rule::DestinationRule;
use weft_config::networking::gateway::Gateway;
use weft_config::networking::sidecar::Sidecar;
use weft_config::networking::virtual_service::VirtualService;

use super::host_index::HostIndex;
use super::names::resolve_host;
use crate::registry::Registry;

/// `outboundTrafficPolicy.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboundPolicy {
    AllowAny,
    RegistryOnly,
}

/// The MeshConfig values translation reads, with Istio's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct MeshSettings {
    pub domain: String,
    pub connect_timeout: Duration,
    pub outbound_policy: OutboundPolicy,
    /// `proxyListenPort` (15001).
    pub outbound_port: u16,
    /// Where the capture listeners (`virtualOutbound`, `virtualInbound`) bind: Istio's
    /// 0.0.0.0 inside a pod's network namespace; a loopback address when proxies share a
    /// host without capture.
    pub capture_bind: String,
    /// `proxyInboundListenPort` (15006).
    pub inbound_port: u16,
    /// MeshConfig `rootNamespace`: its selector-less Sidecar is the mesh-wide default.
    pub root_namespace: String,
    /// MeshConfig `tcpKeepalive`, set on every outbound cluster's upstream sockets.
    pub tcp_keepalive: Option<weft_config::networking::destination_rule::TcpKeepalive>,
    /// MeshConfig `h2UpgradePolicy: UPGRADE`: HTTP ports' clusters speak HTTP/2 upstream.
    pub h2_upgrade: bool,
    /// MeshConfig `localityLbSetting` (Istio's default: enabled, no rules).
    pub locality_lb: Option<weft_config::networking::destination_rule::LocalityLoadBalancerSetting>,
    /// MeshConfig `trustDomain`: the SPIFFE trust domain of workload identities.
    pub trust_domain: String,
    /// MeshConfig `trustDomainAliases`: trust domains whose identities count as this one's.
    pub trust_domain_aliases: Vec<String>,
}

impl Default for MeshSettings {
    fn default() -> Self {
        Self {
            domain: "cluster.local".into(),
            connect_timeout: Duration::from_secs(10),
            outbound_policy: OutboundPolicy::AllowAny,
            outbound_port: 15001,
            capture_bind: "0.0.0.0".into(),
            root_namespace: "istio-system".into(),
            inbound_port: 15006,
            tcp_keepalive: None,
            h2_upgrade: false,
            locality_lb: Some(
                weft_config::networking::destination_rule::LocalityLoadBalancerSetting {
                    enabled: Some(true),
                    ..Default::default()
                },
            ),
            trust_domain: "cluster.local".into(),
            trust_domain_aliases: Vec::new(),
        }
    }
}

impl MeshSettings {
    /// Takes the values a MeshConfig sets (the `istio` ConfigMap's `data.mesh` in the
    /// config dir); what it leaves unset keeps Istio's installed default.
    pub fn apply(&mut self, mesh: &weft_config::mesh::mesh_config::MeshConfig) {
        use weft_config::mesh::mesh_config::OutboundTrafficPolicyMode as Mode;
        if let Some(t) = &mesh.connect_timeout {
            self.connect_timeout = t.as_std();
        }
        if let Some(p) = &mesh.outbound_traffic_policy {
            self.outbound_policy = match p.mode {
                Mode::AllowAny => OutboundPolicy::AllowAny,
                Mode::RegistryOnly => OutboundPolicy::RegistryOnly,
            };
        }
        if let Ok(port) = u16::try_from(mesh.proxy_listen_port)
            && port != 0
        {
            self.outbound_port = port;
        }
        if let Ok(port) = u16::try_from(mesh.proxy_inbound_listen_port)
            && port != 0
        {
            self.inbound_port = port;
        }
        if !mesh.root_namespace.is_empty() {
            self.root_namespace = mesh.root_namespace.clone();
        }
        if mesh.tcp_keepalive.is_some() {
            self.tcp_keepalive = mesh.tcp_keepalive.clone();
        }
        self.h2_upgrade =
            mesh.h2_upgrade_policy == weft_config::mesh::mesh_config::H2UpgradePolicy::Upgrade;
        if mesh.locality_lb_setting.is_some() {
            self.locality_lb = mesh.locality_lb_setting.clone();
        }
        if !mesh.trust_domain.is_empty() {
            self.trust_domain = mesh.trust_domain.clone();
        }
        self.trust_domain_aliases = mesh.trust_domain_aliases.clone();
    }
}

/// A namespaced configuration object.
#[derive(Clone, Debug, PartialEq)]
pub struct Named<T> {
    pub name: String,
    pub namespace: String,
    pub spec: T,
}

/// One consistent set of translation inputs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MeshView {
    /// Shared with the previous view when nothing the registry reads changed.
    pub registry: std::sync::Arc<Registry>,
    pub virtual_services: Vec<Named<VirtualService>>,
    pub destination_rules: Vec<Named<DestinationRule>>,
    pub sidecars: Vec<Named<Sidecar>>,
    /// Istio `Gateway`s, which a router's listeners come from.
    pub gateways: Vec<Named<Gateway>>,
    pub mesh: MeshSettings,
    /// `virtual_services` and `destination_rules` by resolved host (built by `new`).
    pub(crate) vs_hosts: HostIndex,
    pub(crate) dr_hosts: HostIndex,
    /// Some DestinationRule sets `tls`, so clusters may name the service accounts behind
    /// their services (built by `new`). Without one, which accounts a service's endpoints
    /// run as changes no proxy's configuration, and pushes need not look.
    pub(crate) reads_accounts: bool,
    /// Content digests of the services, rules and Sidecars above, by address (built by
    /// `new`; see `dependencies`).
    pub(crate) digests: super::dependencies::Digests,
    /// Endpoint assignments computed from this view, for the next group that asks.
    pub(crate) eds_memo: EdsMemo,
    /// The Kubernetes Secrets `credentialName` can name, as SDS secrets per namespace.
    pub credentials: super::credentials::Credentials,
}

/// ClusterLoadAssignments computed from one view, by cluster name, subset labels and
/// locality rule: the proxies of every namespace typically see the same endpoints of a
/// cluster, so the first group computes them and the others copy. Emptied after each push.
#[derive(Default)]
pub struct EdsMemo(parking_lot::Mutex<std::collections::HashMap<EdsKey, Any>>);

/// A cluster's name, its subset's labels and its locality rule (as text).
type EdsKey = (String, std::collections::BTreeMap<String, String>, String);

impl EdsMemo {
    pub(crate) fn get_or(
        &self,
        key: (&str, &std::collections::BTreeMap<String, String>, String),
        compute: impl FnOnce() -> Any,
    ) -> Any {
        let key = (key.0.to_string(), key.1.clone(), key.2);
        if let Some(hit) = self.0.lock().get(&key) {
            return hit.clone();
        }
        let value = compute();
        self.0.lock().insert(key, value.clone());
        value
    }

    pub fn clear(&self) {
        self.0.lock().clear();
    }
}

/// A copy of a view starts with nothing computed.
impl Clone for EdsMemo {
    fn clone(&self) -> Self {
        Self::default()
    }
}

/// What was computed from a view says nothing about what it is.
impl PartialEq for EdsMemo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for EdsMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EdsMemo({})", self.0.lock().len())
    }
}

impl MeshView {
    pub fn new(
        resources: &[&Resource],
        registry: impl Into<std::sync::Arc<Registry>>,
        mesh: MeshSettings,
    ) -> Self {
        let mut view = MeshView {
            registry: registry.into(),
            mesh,
            ..Default::default()
        };
        for r in resources {
            let namespace = r.namespace().unwrap_or_default().to_string();
            let name = r.name().to_string();
            match r {
                Resource::VirtualService(o) => view.virtual_services.push(Named {
                    name,
                    namespace,
                    spec: o.spec.clone(),
                }),
                Resource::DestinationRule(o) => view.destination_rules.push(Named {
                    name,
                    namespace,
                    spec: o.spec.clone(),
                }),
                Resource::Sidecar(o) => view.sidecars.push(Named {
                    name,
                    namespace,
                    spec: o.spec.clone(),
                }),
                Resource::Gateway(o) => view.gateways.push(Named {
                    name,
                    namespace,
                    spec: o.spec.clone(),
                }),
                _ => {}
            }
        }
        // Istio orders by creation time then name; files carry no creation time, so the
        // name (namespace/name) decides which of two conflicting rules wins.
        view.virtual_services
            .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        view.destination_rules
            .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        view.gateways
            .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        let domain = &view.mesh.domain;
        view.virtual_services =
            super::delegate::merge(std::mem::take(&mut view.virtual_services), domain);
        view.vs_hosts = HostIndex::new(view.virtual_services.iter().map(|vs| {
            vs.spec
                .hosts
                .iter()
                .map(|h| resolve_host(h, &vs.namespace, domain))
                .collect()
        }));
        view.dr_hosts = HostIndex::new(
            view.destination_rules
                .iter()
                .map(|dr| vec![resolve_host(&dr.spec.host, &dr.namespace, domain)]),
        );
        view.reads_accounts = view.destination_rules.iter().any(|dr| sets_tls(&dr.spec));
        view.credentials = super::credentials::Credentials::of(resources);
        view.digests = super::dependencies::Digests::of(&view);
        view
    }

    /// Whether a change of the registry's service accounts (`Registry::accounts_digest`)
    /// can change any proxy's configuration.
    pub fn reads_accounts(&self) -> bool {
        self.reads_accounts
    }

    /// The services a proxy may reach: exported to its namespace and imported by the
    /// Sidecar that applies to it.
    pub fn visible_services<'a>(
        &'a self,
        proxy: &'a crate::node::Proxy,
        scope: &'a super::scope::Scope,
    ) -> impl Iterator<Item = &'a crate::registry::Service> + 'a {
        self.registry
            .services
            .values()
            .filter(move |s| scope.sees(s, &proxy.namespace))
    }

    /// Whether an object exported to `export_to` from `owner` is visible in `namespace`.
    pub fn exported(export_to: &[String], owner: &str, namespace: &str) -> bool {
        export_to.is_empty()
            || export_to
                .iter()
                .any(|e| e == "*" || e == namespace || (e == "." && owner == namespace))
    }

    /// The DestinationRule that applies to `host` for a proxy in `namespace`: the proxy's
    /// own namespace first, then the host's, then any other visible one (Istio's lookup
    /// order), exact hosts before wildcards.
    pub fn destination_rule(
        &self,
        host: &str,
        namespace: &str,
        host_namespace: &str,
    ) -> Option<&Named<DestinationRule>> {
        let candidates: Vec<(usize, &Named<DestinationRule>)> = self
            .dr_hosts
            .matching(host)
            .into_iter()
            .map(|i| (i, &self.destination_rules[i]))
            .filter(|(_, dr)| {
                Self::exported(&dr.spec.export_to, &dr.namespace, namespace)
                    && dr.spec.workload_selector.is_none()
            })
            .collect();
        let exact_first = |ns: &str| {
            let in_ns = candidates.iter().filter(|(_, d)| d.namespace == ns);
            let exact = in_ns
                .clone()
                .find(|(i, _)| self.dr_hosts.hosts(*i).first().map(String::as_str) == Some(host));
            exact.or_else(|| in_ns.clone().next()).map(|(_, d)| *d)
        };
        exact_first(namespace)
            .or_else(|| exact_first(host_namespace))
            .or_else(|| candidates.first().map(|(_, d)| *d))
    }
}

/// Whether `dr` sets `tls` at any level: top, port, subset or a subset's port.
fn sets_tls(dr: &DestinationRule) -> bool {
    let policy = |tp: &weft_config::networking::destination_rule::TrafficPolicy| {
        tp.tls.is_some() || tp.port_level_settings.iter().any(|p| p.tls.is_some())
    };
    dr.traffic_policy.as_ref().is_some_and(policy)
        || dr
            .subsets
            .iter()
            .any(|s| s.traffic_policy.as_ref().is_some_and(policy))
}
