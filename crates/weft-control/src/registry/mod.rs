//! The service registry: every service the mesh knows (Kubernetes Services, ServiceEntries)
//! with its ports and protocols, and every endpoint behind each port. Built afresh from
//! the loaded configuration plus the workloads of connected proxies, so a translation reads
//! one consistent value and never a half-applied change.

mod kube;
mod pod;
mod protocol;
mod service_entry;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::IpAddr;

pub use pod::{LabelSets, PodInfo, split_pods};
pub use protocol::Protocol;
pub use service_entry::entry_from_group;

/// How a service's endpoints are found and balanced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The proxy balances over endpoints the control plane sends (EDS).
    ClientSideLb,
    /// The proxy resolves the host by DNS and balances over the answers (STRICT_DNS).
    Dns,
    /// The proxy resolves by DNS and connects to one answer (LOGICAL_DNS).
    DnsRoundRobin,
    /// Traffic goes to the address the caller dialled (ORIGINAL_DST).
    Passthrough,
}

/// One port of a service.
#[derive(Clone, Debug, PartialEq)]
pub struct ServicePort {
    pub name: String,
    pub port: u16,
    pub protocol: Protocol,
}

/// A service: what a caller addresses by host name (and VIP) and port.
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    /// Fully qualified: `reviews.default.svc.cluster.local`, or a ServiceEntry host.
    pub hostname: String,
    pub namespace: String,
    /// The object's name (Kubernetes Service or ServiceEntry).
    pub name: String,
    /// Cluster IPs / ServiceEntry addresses; empty when the service has none.
    pub addresses: Vec<IpAddr>,
    pub ports: Vec<ServicePort>,
    pub resolution: Resolution,
    pub mesh_external: bool,
    /// Workloads selected as endpoints; `None` when endpoints are listed instead.
    pub selector: Option<BTreeMap<String, String>>,
    /// Namespaces that may see it (`*` all, `.` own); empty means the mesh default (all).
    pub export_to: Vec<String>,
    pub origin: Origin,
    /// The service accounts its endpoints run as, sorted, each once: an Istio mutual TLS
    /// client accepts only their identities from the service (istiod's ServiceAccounts).
    pub service_accounts: Vec<String>,
    /// A ServiceEntry's `subjectAltNames`: identities its endpoints may present besides.
    pub subject_alt_names: Vec<String>,
}

/// Where a service came from, for `describe` and for Istio's precedence rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Kubernetes,
    ServiceEntry,
}

impl Service {
    pub fn port(&self, number: u16) -> Option<&ServicePort> {
        self.ports.iter().find(|p| p.port == number)
    }

    /// Whether a proxy in `namespace` may see this service.
    pub fn visible_from(&self, namespace: &str) -> bool {
        self.export_to.is_empty()
            || self
                .export_to
                .iter()
                .any(|e| e == "*" || e == namespace || (e == "." && self.namespace == namespace))
    }
}

/// One endpoint of one service port.
#[derive(Clone, Debug, PartialEq, Hash)]
pub struct Endpoint {
    /// The IP; unspecified (`0.0.0.0`) when the endpoint is a DNS name (`hostname`).
    pub address: IpAddr,
    /// A DNS name the proxy resolves itself, for endpoints of DNS-resolved ServiceEntries
    /// given by name (their hosts, or endpoint addresses that are not IPs). Such endpoints
    /// only fit STRICT_DNS/LOGICAL_DNS clusters, never EDS.
    pub hostname: Option<String>,
    /// The port the workload listens on (the service's target port).
    pub port: u16,
    /// Shared with the Pod (or workload) it came from: ten thousand endpoints would
    /// otherwise hold ten thousand copies of what the Pods already hold.
    pub labels: Labels,
    /// `region/zone/subzone`, from the topology labels; empty when unknown.
    pub locality: String,
    pub service_account: String,
    pub weight: u32,
    pub healthy: bool,
    /// The workload's name (pod, WorkloadEntry or connected proxy), for debugging.
    pub workload: String,
}

impl Endpoint {
    /// What the proxy connects to: the DNS name when there is one, else the IP.
    pub fn host(&self) -> String {
        self.hostname
            .clone()
            .unwrap_or_else(|| self.address.to_string())
    }
}

/// Key of a service: Istio allows one host name per namespace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    pub hostname: String,
    pub namespace: String,
}

/// A workload the control plane learned from a connected proxy.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub ips: Vec<IpAddr>,
    pub service_account: String,
}

/// The services and their endpoints at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Registry {
    pub services: BTreeMap<ServiceKey, Service>,
    /// Per service and service port number.
    pub endpoints: BTreeMap<(ServiceKey, u16), Vec<Endpoint>>,
    /// Endpoint address to (service, service port) keys, built with the registry so each
    /// proxy's inbound side is found without walking every endpoint.
    by_address: std::collections::HashMap<IpAddr, Vec<(ServiceKey, u16)>>,
    /// A digest of `endpoints`, so a push can tell whether they changed without keeping
    /// the previous registry alive while it builds the next.
    endpoints_digest: u64,
    /// A digest of every service's `service_accounts`, which come from its endpoints but
    /// are read by clusters: when it changes, an endpoint change is more than EDS.
    accounts_digest: u64,
}

impl Registry {
    /// Builds the registry from loaded resources (Pods among them) and connected workloads.
    pub fn build(
        resources: &[&weft_config::Resource],
        workloads: &[Workload],
        domain: &str,
    ) -> Self {
        let pods = pod::pods_of(resources);
        let refs: Vec<&PodInfo> = pods.iter().collect();
        Self::build_with_pods(resources, &refs, workloads, domain)
    }

    /// Whether `resource` is of a kind the registry is built from (see
    /// [`Registry::build_with_pods`]): a change to other kinds leaves the registry as it is.
    pub fn reads(resource: &weft_config::Resource) -> bool {
        use weft_config::Resource;
        matches!(
            resource,
            Resource::Service(_)
                | Resource::Pod(_)
                | Resource::Endpoints(_)
                | Resource::EndpointSlice(_)
                | Resource::ServiceEntry(_)
                | Resource::WorkloadEntry(_)
                | Resource::WorkloadGroup(_)
        )
    }

    /// Builds the registry from loaded resources, with the Pods given as [`PodInfo`]s (any
    /// Pod among `resources` is not read). Reads only the kinds [`Registry::reads`] names.
    pub fn build_with_pods(
        resources: &[&weft_config::Resource],
        pods: &[&PodInfo],
        workloads: &[Workload],
        domain: &str,
    ) -> Self {
        let mut registry = Registry::default();
        kube::add(&mut registry, resources, pods, workloads, domain);
        // After the Kubernetes services: they take precedence over ServiceEntries for the
        // same host, and WorkloadEntries join the ones whose selector matches them.
        service_entry::add(&mut registry, resources, pods, workloads);
        for ((key, port), eps) in &registry.endpoints {
            for e in eps {
                let keys = registry.by_address.entry(e.address).or_default();
                if !keys.iter().any(|(k, p)| k == key && p == port) {
                    keys.push((key.clone(), *port));
                }
            }
        }
        let mut h = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&registry.endpoints, &mut h);
        registry.endpoints_digest = std::hash::Hasher::finish(&h);
        registry.settle_accounts();
        registry
    }

    /// Fills each service's `service_accounts` from its endpoints (an endpoint without one
    /// names none) and digests them all.
    fn settle_accounts(&mut self) {
        let Registry {
            services,
            endpoints,
            ..
        } = self;
        let mut h = std::hash::DefaultHasher::new();
        for (key, svc) in services.iter_mut() {
            // Endpoints are keyed by (service, port): this service's are one range.
            let ports = (key.clone(), 0)..=(key.clone(), u16::MAX);
            let accounts: std::collections::BTreeSet<&str> = endpoints
                .range(ports)
                .flat_map(|(_, eps)| eps.iter().map(|e| e.service_account.as_str()))
                .filter(|a| !a.is_empty())
                .collect();
            svc.service_accounts = accounts.into_iter().map(str::to_string).collect();
            std::hash::Hash::hash(&(key, &svc.service_accounts), &mut h);
        }
        self.accounts_digest = std::hash::Hasher::finish(&h);
    }

    /// A digest of every service port's endpoints: equal for equal endpoints.
    pub fn endpoints_digest(&self) -> u64 {
        self.endpoints_digest
    }

    /// A digest of every service's service accounts: equal for equal accounts.
    pub fn accounts_digest(&self) -> u64 {
        self.accounts_digest
    }

    /// Services visible to a proxy in `namespace`, in host name order.
    pub fn visible(&self, namespace: &str) -> impl Iterator<Item = &Service> {
        self.services
            .values()
            .filter(move |s| s.visible_from(namespace))
    }

    /// The endpoints behind `port` of every service named `hostname` (a host defined in
    /// several namespaces is one cluster).
    pub fn endpoints_of(&self, hostname: &str, port: u16) -> Vec<&Endpoint> {
        // Keys order by host name first, so one host's entries are one contiguous range.
        let from = (
            ServiceKey {
                hostname: hostname.to_string(),
                namespace: String::new(),
            },
            0,
        );
        self.endpoints
            .range(from..)
            .take_while(|((k, _), _)| k.hostname == hostname)
            .filter(|((_, p), _)| *p == port)
            .flat_map(|(_, eps)| eps.iter())
            .collect()
    }

    /// Every (service, service port, endpoint) served at `address`: what a workload at that
    /// address serves, for its sidecar's inbound side.
    pub fn served_at(&self, address: IpAddr) -> Vec<(&Service, u16, &Endpoint)> {
        let Some(keys) = self.by_address.get(&address) else {
            return Vec::new();
        };
        keys.iter()
            .filter_map(|(key, port)| {
                let svc = self.services.get(key)?;
                let eps = self.endpoints.get(&(key.clone(), *port))?;
                Some(
                    eps.iter()
                        .filter(|e| e.address == address)
                        .map(move |e| (svc, *port, e)),
                )
            })
            .flatten()
            .collect()
    }

    /// The service named `hostname` that a proxy in `namespace` sees: its own namespace's
    /// definition first, then any other visible one.
    pub fn lookup(&self, hostname: &str, namespace: &str) -> Option<&Service> {
        let own = ServiceKey {
            hostname: hostname.to_string(),
            namespace: namespace.to_string(),
        };
        self.services.get(&own).or_else(|| {
            self.services
                .values()
                .find(|s| s.hostname == hostname && s.visible_from(namespace))
        })
    }
}

/// A workload's labels, shared by everything that reads them.
pub type Labels = std::sync::Arc<BTreeMap<String, String>>;

/// Whether every `selector` label is on `labels` (an empty selector selects all).
pub fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// `region/zone/subzone` from Kubernetes' and Istio's topology labels.
pub fn locality_of(labels: &BTreeMap<String, String>) -> String {
    if let Some(l) = labels.get("istio-locality") {
        return l.replace('.', "/");
    }
    let get = |k: &str| labels.get(k).map(String::as_str).unwrap_or("");
    let parts = [
        get("topology.kubernetes.io/region"),
        get("topology.kubernetes.io/zone"),
        get("topology.istio.io/subzone"),
    ];
    if parts.iter().all(|p| p.is_empty()) {
        return String::new();
    }
    parts.join("/").trim_end_matches('/').to_string()
}
