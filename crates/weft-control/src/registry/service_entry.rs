//! ServiceEntries, WorkloadEntries and WorkloadGroups as a registry, read the way istiod's
//! serviceentry controller reads them (`conversion.go`, `controller.go`): one service per
//! ServiceEntry host; endpoints from its inline `endpoints`, or from the WorkloadEntries, Pods
//! and connected proxies its `workloadSelector` picks, or — for DNS resolution with neither —
//! the hosts themselves. WorkloadEntries also join the Kubernetes Services whose selector
//! matches them, as istiod's Kubernetes controller does with workload instances.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use weft_config::Resource;
use weft_config::networking::service_entry::{self as se, ServiceEntry};
use weft_config::networking::workload_entry::WorkloadEntry;
use weft_config::networking::workload_group::WorkloadGroup;
use weft_config::object::Object;

use super::pod::PodInfo;
use super::{
    Endpoint, Origin, Protocol, Registry, Resolution, Service, ServiceKey, ServicePort, Workload,
    locality_of, selects,
};

/// Set on a WorkloadEntry whose workload reports readiness (istiod's
/// `WorkloadEntryHealthCheckAnnotation`); the entry then counts only while its `Healthy`
/// condition is `True`.
const HEALTH_CHECKS_ANNOTATION: &str = "proxy.istio.io/health-checks-enabled";
/// Names the WorkloadGroup an auto-registered WorkloadEntry was made from.
const AUTO_REGISTRATION_GROUP_ANNOTATION: &str = "istio.io/autoRegistrationGroup";
/// Istio's locality label: `region.zone.subzone`.
const LOCALITY_LABEL: &str = "istio-locality";
const UNIX_PREFIX: &str = "unix://";

/// Where a workload is reached.
#[derive(Clone, Debug, PartialEq)]
enum Addr {
    Ip(IpAddr),
    /// A DNS name: only DNS-resolved ServiceEntries can use it (istiod's
    /// `DNSServiceEntryOnly`).
    Host(String),
}

/// A workload a selector can pick: istiod's `WorkloadInstance`, from a WorkloadEntry, a Pod
/// or a connected proxy.
#[derive(Clone, Debug)]
struct Instance {
    name: String,
    namespace: String,
    labels: super::Labels,
    addr: Addr,
    /// Port numbers by name: a WorkloadEntry's `ports`, a pod's named container ports.
    ports: BTreeMap<String, u16>,
    locality: String,
    weight: u32,
    service_account: String,
    /// Kubernetes Services select WorkloadEntries this way; pods and proxies reach them
    /// through kube.rs already.
    workload_entry: bool,
}

impl Instance {
    fn endpoint(&self, port: u16) -> Endpoint {
        endpoint(
            &self.addr,
            port,
            self.labels.clone(),
            &self.locality,
            self.weight,
            &self.service_account,
            &self.name,
        )
    }
}

fn endpoint(
    addr: &Addr,
    port: u16,
    labels: super::Labels,
    locality: &str,
    weight: u32,
    service_account: &str,
    workload: &str,
) -> Endpoint {
    let (address, hostname) = match addr {
        Addr::Ip(ip) => (*ip, None),
        Addr::Host(h) => (IpAddr::V4(Ipv4Addr::UNSPECIFIED), Some(h.clone())),
    };
    Endpoint {
        address,
        hostname,
        port,
        labels,
        locality: locality.to_string(),
        service_account: service_account.to_string(),
        // istiod's GetLoadBalancingWeight: an unset weight is 1.
        weight: weight.max(1),
        healthy: true,
        workload: workload.to_string(),
    }
}

fn namespace_of(meta: &ObjectMeta) -> String {
    meta.namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(weft_config::kinds::DEFAULT_NAMESPACE)
        .to_string()
}

fn is_dns(resolution: Resolution) -> bool {
    matches!(resolution, Resolution::Dns | Resolution::DnsRoundRobin)
}

/// An endpoint address as written: an IP, or a DNS name. Unix sockets and empty addresses
/// (an endpoint reached through its network's gateway) have no place in a registry of
/// IPs and host names, so they yield nothing.
fn addr_of(address: &str) -> Option<Addr> {
    if address.is_empty() || address.starts_with(UNIX_PREFIX) {
        return None;
    }
    Some(match address.parse() {
        Ok(ip) => Addr::Ip(ip),
        Err(_) => Addr::Host(address.to_string()),
    })
}

/// A WorkloadEntry's `locality`, else its `istio-locality` label (`region.zone.subzone`),
/// as istiod reads it.
fn entry_locality(locality: &str, labels: &BTreeMap<String, String>) -> String {
    if !locality.is_empty() {
        return locality.to_string();
    }
    labels
        .get(LOCALITY_LABEL)
        .map(|l| l.replace('.', "/"))
        .unwrap_or_default()
}

fn port_map(ports: &BTreeMap<String, u32>) -> BTreeMap<String, u16> {
    ports
        .iter()
        .filter_map(|(name, p)| Some((name.clone(), u16::try_from(*p).ok().filter(|p| *p > 0)?)))
        .collect()
}

/// istiod's `isHealthy`: with health checks enabled, only a `Healthy: True` condition counts;
/// without, the entry is healthy. Unhealthy entries are dropped, not sent as unhealthy.
fn healthy(obj: &Object<WorkloadEntry>) -> bool {
    let enabled = obj
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(HEALTH_CHECKS_ANNOTATION))
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    if !enabled {
        return true;
    }
    obj.status
        .as_ref()
        .and_then(|s| s.get("conditions")?.as_array().cloned())
        .into_iter()
        .flatten()
        .any(|c| {
            c.get("type").and_then(|t| t.as_str()) == Some("Healthy")
                && c.get("status").and_then(|s| s.as_str()) == Some("True")
        })
}

/// A WorkloadEntry as a workload instance, its labels merged with the object's own
/// (`metadata.labels` win, as in istiod's ConvertWorkloadEntry).
fn workload_entry(obj: &Object<WorkloadEntry>) -> Option<Instance> {
    if !healthy(obj) {
        return None;
    }
    let we = &obj.spec;
    let mut labels = we.labels.clone();
    labels.extend(obj.metadata.labels.clone().unwrap_or_default());
    Some(Instance {
        name: obj.metadata.name.clone().unwrap_or_default(),
        namespace: namespace_of(&obj.metadata),
        addr: addr_of(&we.address)?,
        ports: port_map(&we.ports),
        locality: entry_locality(&we.locality, &labels),
        labels: std::sync::Arc::new(labels),
        weight: we.weight,
        service_account: we.service_account.clone(),
        workload_entry: true,
    })
}

/// A running pod with an IP, its named container ports as the port map (istiod's
/// `getPortMap`).
fn pod(pod: &PodInfo) -> Option<Instance> {
    let ip = pod.running_ip()?.parse().ok()?;
    let labels = pod.labels.clone().unwrap_or_default();
    Some(Instance {
        name: pod.name.clone().unwrap_or_default(),
        namespace: pod.namespace.clone(),
        addr: Addr::Ip(ip),
        ports: pod.named_ports(),
        locality: locality_of(&labels),
        labels,
        weight: 1,
        service_account: pod
            .service_account_name
            .clone()
            .unwrap_or_else(|| "default".to_string()),
        workload_entry: false,
    })
}

fn proxies(workloads: &[Workload]) -> impl Iterator<Item = Instance> + '_ {
    workloads.iter().flat_map(|w| {
        w.ips.iter().map(move |ip| Instance {
            name: w.name.clone(),
            namespace: w.namespace.clone(),
            labels: std::sync::Arc::new(w.labels.clone()),
            addr: Addr::Ip(*ip),
            ports: BTreeMap::new(),
            locality: locality_of(&w.labels),
            weight: 1,
            service_account: w.service_account.clone(),
            workload_entry: false,
        })
    })
}

/// Appends `ep` unless an endpoint at the same address is already listed: a pod whose
/// sidecar is connected is one workload, and the pod (which names its ports) comes first.
fn push_unique(eps: &mut Vec<Endpoint>, ep: Endpoint) {
    if !eps
        .iter()
        .any(|e| e.address == ep.address && e.hostname == ep.hostname)
    {
        eps.push(ep);
    }
}

pub(super) fn add(
    registry: &mut Registry,
    resources: &[&Resource],
    pods: &[&PodInfo],
    workloads: &[Workload],
) {
    let mut entries = Vec::new();
    let mut workload_entries = false;
    for r in resources {
        match r {
            Resource::ServiceEntry(o) => entries.push(&**o),
            Resource::WorkloadEntry(_) => workload_entries = true,
            _ => {}
        }
    }
    // Pods and proxies matter here only as what ServiceEntries select, and WorkloadEntries
    // only as extra endpoints: without either kind there is nothing to do (and a fleet of
    // pods is not walked again on every build).
    if entries.is_empty() && !workload_entries {
        return;
    }
    let mut instances: Vec<Instance> = Vec::new();
    for r in resources {
        if let Resource::WorkloadEntry(o) = r {
            instances.extend(workload_entry(o));
        }
    }
    if !entries.is_empty() {
        instances.extend(pods.iter().filter_map(|p| pod(p)));
    }
    instances.extend(proxies(workloads));
    add_to_kube_services(registry, resources, &instances);
    // Istio keeps the oldest of two definitions of a host; files carry no creation time,
    // so namespace/name decides, as for VirtualServices and DestinationRules.
    entries.sort_by_key(|o| (namespace_of(&o.metadata), o.metadata.name.clone()));
    for obj in entries {
        add_service_entry(registry, obj, &instances);
    }
}

/// WorkloadEntries with an IP become endpoints of the ClientSideLB Kubernetes Services in
/// their namespace whose selector matches them (istiod's kube WorkloadInstanceHandler), at
/// the Service's target port — or, by name, the entry's own port for it.
fn add_to_kube_services(registry: &mut Registry, resources: &[&Resource], instances: &[Instance]) {
    for r in resources {
        let Resource::Service(svc) = r else { continue };
        let (Some(name), Some(spec)) = (&svc.metadata.name, &svc.spec) else {
            continue;
        };
        let namespace = namespace_of(&svc.metadata);
        let Some(service) = registry.services.values().find(|s| {
            s.origin == Origin::Kubernetes && &s.name == name && s.namespace == namespace
        }) else {
            continue;
        };
        // A Service without a selector selects nothing (Kubernetes and istiod alike);
        // headless ones pass traffic through to the address dialled.
        let Some(selector) = service.selector.clone().filter(|s| !s.is_empty()) else {
            continue;
        };
        if service.resolution != Resolution::ClientSideLb {
            continue;
        }
        let key = ServiceKey {
            hostname: service.hostname.clone(),
            namespace: namespace.clone(),
        };
        let ports = service.ports.clone();
        let spec_ports = spec.ports.clone().unwrap_or_default();
        for we in instances.iter().filter(|i| {
            i.workload_entry
                && i.namespace == namespace
                // istiod ignores entries without labels: nothing can select them.
                && !i.labels.is_empty()
                && matches!(i.addr, Addr::Ip(_))
                && selects(&selector, &i.labels)
        }) {
            for sp in ports.iter().filter(|p| p.protocol != Protocol::Udp) {
                let Some(spec_port) = spec_ports.iter().find(|p| {
                    p.name.as_deref().unwrap_or("") == sp.name || p.port == i32::from(sp.port)
                }) else {
                    continue;
                };
                let Some(port) = kube_target_port(spec_port, sp.port, &we.ports) else {
                    continue;
                };
                let eps = registry
                    .endpoints
                    .entry((key.clone(), sp.port))
                    .or_default();
                if !eps.iter().any(|e| Addr::Ip(e.address) == we.addr) {
                    eps.push(we.endpoint(port));
                }
            }
        }
    }
}

/// istiod's findServiceTargetPort + serviceInstanceFromWorkloadInstance: a numeric
/// `targetPort`, unless the entry names a port after the service port; a named `targetPort`
/// must be among the entry's ports, or the entry is not an endpoint of that port; no
/// `targetPort` means the service port.
fn kube_target_port(
    spec_port: &core::ServicePort,
    port: u16,
    named: &BTreeMap<String, u16>,
) -> Option<u16> {
    match &spec_port.target_port {
        Some(IntOrString::Int(n)) if *n > 0 => {
            let by_name = spec_port
                .name
                .as_deref()
                .and_then(|n| named.get(n).copied());
            by_name.or_else(|| u16::try_from(*n).ok())
        }
        Some(IntOrString::String(name)) if !name.is_empty() => named.get(name).copied(),
        _ => Some(port),
    }
}

fn resolution(r: se::Resolution) -> Resolution {
    match r {
        se::Resolution::None => Resolution::Passthrough,
        se::Resolution::Static => Resolution::ClientSideLb,
        se::Resolution::Dns => Resolution::Dns,
        se::Resolution::DnsRoundRobin => Resolution::DnsRoundRobin,
    }
}

/// `addresses` as IPs. A `/32` (or `/128`) CIDR is its IP, as in istiod; wider CIDRs are
/// left out: istiod matches them as a prefix on a shared listener's filter chain, which a
/// service of plain addresses cannot express.
fn addresses(se: &ServiceEntry) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = se
        .addresses
        .iter()
        .filter_map(|a| {
            if let Ok(ip) = a.parse() {
                return Some(ip);
            }
            let (ip, bits) = a.split_once('/')?;
            let ip: IpAddr = ip.parse().ok()?;
            let full = if ip.is_ipv4() { 32 } else { 128 };
            (bits.parse::<u8>().ok()? == full).then_some(ip)
        })
        .collect();
    out.dedup();
    out
}

/// The port a ServiceEntry endpoint serves `port` on (istiod's convertEndpoint): the
/// endpoint's own port of that name, else `targetPort`, else the port number.
fn se_target_port(port: &se::ServicePort, named: &BTreeMap<String, u16>) -> Option<u16> {
    named
        .get(&port.name)
        .copied()
        .or_else(|| u16::try_from(port.target_port).ok().filter(|p| *p > 0))
        .or_else(|| u16::try_from(port.number).ok())
}

fn add_service_entry(registry: &mut Registry, obj: &Object<ServiceEntry>, instances: &[Instance]) {
    let entry = &obj.spec;
    let namespace = namespace_of(&obj.metadata);
    let resolution = resolution(entry.resolution);
    let ports: Vec<(&se::ServicePort, ServicePort)> = entry
        .ports
        .iter()
        .filter_map(|p| {
            let number = u16::try_from(p.number).ok().filter(|n| *n > 0)?;
            Some((
                p,
                ServicePort {
                    name: p.name.clone(),
                    port: number,
                    protocol: Protocol::parse(&p.protocol),
                },
            ))
        })
        .collect();
    let selector = entry.workload_selector.as_ref().map(|s| s.labels.clone());
    let selected: Vec<&Instance> = match &selector {
        Some(sel) => instances
            .iter()
            .filter(|i| i.namespace == namespace && selects(sel, &i.labels))
            // A name is only an address for the proxy's DNS resolver.
            .filter(|i| matches!(i.addr, Addr::Ip(_)) || is_dns(resolution))
            .collect(),
        None => Vec::new(),
    };
    let inline: Vec<(Addr, &WorkloadEntry)> = entry
        .endpoints
        .iter()
        .filter_map(|we| {
            let addr = addr_of(&we.address)?;
            // STATIC needs IPs (validation says so); names only resolve under DNS.
            (matches!(addr, Addr::Ip(_)) || is_dns(resolution)).then_some((addr, we))
        })
        .collect();
    for host in &entry.hosts {
        let key = ServiceKey {
            hostname: host.clone(),
            namespace: namespace.clone(),
        };
        match registry.services.get(&key) {
            // A Kubernetes Service keeps its host: istiod does not let a ServiceEntry
            // squat on it. Its endpoints stay out too, so the cluster is the Service's.
            Some(s) if s.origin == Origin::Kubernetes => continue,
            // An older ServiceEntry for the host keeps the service; the endpoints of both
            // are the host's (istiod indexes them by host and namespace).
            Some(_) => {}
            None => {
                registry.services.insert(
                    key.clone(),
                    Service {
                        hostname: host.clone(),
                        namespace: namespace.clone(),
                        name: obj.metadata.name.clone().unwrap_or_default(),
                        addresses: addresses(entry),
                        ports: ports.iter().map(|(_, p)| p.clone()).collect(),
                        resolution,
                        mesh_external: entry.location == se::Location::MeshExternal,
                        selector: selector.clone(),
                        export_to: entry.export_to.clone(),
                        origin: Origin::ServiceEntry,
                        service_accounts: Vec::new(),
                        subject_alt_names: entry.subject_alt_names.clone(),
                    },
                );
            }
        }
        for (port, sp) in &ports {
            let eps = registry
                .endpoints
                .entry((key.clone(), sp.port))
                .or_default();
            if selector.is_some() {
                for i in &selected {
                    if let Some(p) = se_target_port(port, &i.ports) {
                        push_unique(eps, i.endpoint(p));
                    }
                }
            } else if !entry.endpoints.is_empty() {
                for (addr, we) in &inline {
                    let Some(p) = se_target_port(port, &port_map(&we.ports)) else {
                        continue;
                    };
                    let ep = endpoint(
                        addr,
                        p,
                        std::sync::Arc::new(we.labels.clone()),
                        &entry_locality(&we.locality, &we.labels),
                        we.weight,
                        &we.service_account,
                        "",
                    );
                    push_unique(eps, ep);
                }
            } else if is_dns(resolution) && !host.starts_with('*') {
                // No endpoints and no selector: the proxy resolves the host itself.
                if let Some(p) = se_target_port(port, &BTreeMap::new()) {
                    let ep = endpoint(
                        &Addr::Host(host.clone()),
                        p,
                        super::Labels::default(),
                        "",
                        1,
                        "",
                        "",
                    );
                    push_unique(eps, ep);
                }
            }
            // LOGICAL_DNS connects to one name: istiod keeps the first endpoint per port.
            if resolution == Resolution::DnsRoundRobin {
                eps.truncate(1);
            }
        }
    }
}

/// istiod's auto-registration (`WorkloadEntryFromGroup`): the WorkloadEntry a proxy that
/// names `group` in its node metadata (`AUTO_REGISTER_GROUP`) registers as — the group's
/// template at the proxy's first IP, labelled template < group `metadata.labels` < proxy
/// labels, annotated with the group's name and `metadata.annotations`. `None` without an IP.
///
/// `crate::node::Proxy` does not read `AUTO_REGISTER_GROUP` yet; once it does, the push
/// layer calls this for such proxies and adds the entry to the resources the registry is
/// built from, where it is selected like any WorkloadEntry.
pub fn entry_from_group(
    group: &Object<WorkloadGroup>,
    proxy: &Workload,
) -> Option<Object<WorkloadEntry>> {
    let ip = proxy.ips.first()?;
    let group_name = group.metadata.name.clone().unwrap_or_default();
    let mut spec = group.spec.template.clone().unwrap_or_default();
    spec.address = ip.to_string();
    let meta = group.spec.metadata.clone().unwrap_or_default();
    spec.labels.extend(meta.labels);
    spec.labels.extend(proxy.labels.clone());
    // The proxy's locality label is in `istio-locality` form; istiod drops it from the
    // entry's labels (Kubernetes label values cannot hold `/`).
    spec.labels.remove(LOCALITY_LABEL);
    let mut annotations = BTreeMap::from([(
        AUTO_REGISTRATION_GROUP_ANNOTATION.to_string(),
        group_name.clone(),
    )]);
    annotations.extend(meta.annotations);
    // istiod's GenerateWorkloadEntryName: GROUP-IP, `:` made `-` for IPv6, at most 253
    // characters counted from the end.
    let mut name = format!("{group_name}-{}", ip.to_string().replace(':', "-"));
    if name.len() > 253 {
        name = name[name.len() - 253..].to_string();
    }
    Some(Object {
        api_version: "networking.istio.io/v1".into(),
        kind: "WorkloadEntry".into(),
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(proxy.namespace.clone()),
            labels: Some(spec.labels.clone()),
            annotations: Some(annotations),
            ..Default::default()
        },
        spec,
        status: None,
    })
}
