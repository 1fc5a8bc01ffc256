//! Kubernetes Services as a registry: ClusterIP services with their ports, endpoints from
//! EndpointSlices (preferred, as istiod does) or Endpoints, Pods for labels and service
//! accounts, and — when a directory describes a fleet without listing endpoints — the
//! endpoints Kubernetes' endpoints controller would derive from the selector.

use std::collections::HashMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use weft_config::Resource;

use super::pod::PodInfo;
use super::{
    Endpoint, Origin, Protocol, Registry, Resolution, Service, ServiceKey, ServicePort, Workload,
    locality_of, selects,
};

/// The label an EndpointSlice names its service by.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The Kubernetes objects a registry build looks up, indexed once per build so a mesh of
/// thousands of services and pods is read in linear time.
pub(super) struct Index<'a> {
    pods_by_name: HashMap<(&'a str, &'a str), &'a PodInfo>,
    pods_by_ip: HashMap<(&'a str, &'a str), &'a PodInfo>,
    /// Pods per namespace, for selectors.
    pods_in: HashMap<&'a str, Vec<&'a PodInfo>>,
    slices: HashMap<(&'a str, &'a str), Vec<&'a EndpointSlice>>,
    endpoints: HashMap<(&'a str, &'a str), &'a core::Endpoints>,
}

impl<'a> Index<'a> {
    fn new(resources: &[&'a Resource], pods: &[&'a PodInfo]) -> Self {
        let mut index = Index {
            pods_by_name: HashMap::new(),
            pods_by_ip: HashMap::new(),
            pods_in: HashMap::new(),
            slices: HashMap::new(),
            endpoints: HashMap::new(),
        };
        for &p in pods {
            let ns = p.namespace.as_str();
            if let Some(name) = p.name.as_deref() {
                index.pods_by_name.insert((ns, name), p);
            }
            if let Some(status) = &p.status {
                for ip in status.pod_ip.iter().chain(&status.pod_ips) {
                    index.pods_by_ip.entry((ns, ip.as_str())).or_insert(p);
                }
            }
            index.pods_in.entry(ns).or_default().push(p);
        }
        for r in resources {
            match r {
                Resource::EndpointSlice(s) => {
                    if let Some(svc) = s
                        .metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(SERVICE_NAME_LABEL))
                    {
                        index
                            .slices
                            .entry((namespace_of(&s.metadata), svc.as_str()))
                            .or_default()
                            .push(s);
                    }
                }
                Resource::Endpoints(e) => {
                    if let Some(name) = e.metadata.name.as_deref() {
                        index.endpoints.insert((namespace_of(&e.metadata), name), e);
                    }
                }
                _ => {}
            }
        }
        index
    }

    fn pod_by_name(&self, namespace: &str, name: &str) -> Option<&'a PodInfo> {
        self.pods_by_name.get(&(namespace, name)).copied()
    }

    fn pod_by_ip(&self, namespace: &str, ip: &str) -> Option<&'a PodInfo> {
        self.pods_by_ip.get(&(namespace, ip)).copied()
    }

    fn pods_in(&self, namespace: &str) -> &[&'a PodInfo] {
        self.pods_in.get(namespace).map_or(&[], Vec::as_slice)
    }
}

pub(super) fn add(
    registry: &mut Registry,
    resources: &[&Resource],
    pods: &[&PodInfo],
    workloads: &[Workload],
    domain: &str,
) {
    let index = Index::new(resources, pods);
    // Connected workloads by namespace, so each service looks only at its own.
    let mut workloads_in: HashMap<&str, Vec<&Workload>> = HashMap::new();
    for w in workloads {
        workloads_in
            .entry(w.namespace.as_str())
            .or_default()
            .push(w);
    }
    for r in resources {
        let Resource::Service(svc) = r else { continue };
        let Some(service) = service(svc, domain) else {
            continue;
        };
        let key = ServiceKey {
            hostname: service.hostname.clone(),
            namespace: service.namespace.clone(),
        };
        let spec_ports = svc
            .spec
            .as_ref()
            .and_then(|s| s.ports.clone())
            .unwrap_or_default();
        let ns = service.namespace.as_str();
        let slices: &[&EndpointSlice] = index
            .slices
            .get(&(ns, service.name.as_str()))
            .map_or(&[], Vec::as_slice);
        let endpoints_obj = index.endpoints.get(&(ns, service.name.as_str())).copied();
        let local_workloads = workloads_in.get(ns).map_or(&[][..], Vec::as_slice);
        for (sp, spec_port) in service.ports.iter().zip(&spec_ports) {
            let mut eps = if !slices.is_empty() {
                from_slices(slices, sp, &index, ns)
            } else if let Some(e) = endpoints_obj {
                from_endpoints(e, sp, &index, ns)
            } else {
                from_selector(&service, spec_port, &index)
            };
            add_workloads(&mut eps, &service, spec_port, local_workloads);
            registry.endpoints.insert((key.clone(), sp.port), eps);
        }
        registry.services.insert(key, service);
    }
}

fn namespace_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(weft_config::kinds::DEFAULT_NAMESPACE)
}

fn service(svc: &core::Service, domain: &str) -> Option<Service> {
    let name = svc.metadata.name.clone()?;
    let namespace = namespace_of(&svc.metadata).to_string();
    let spec = svc.spec.as_ref()?;
    // ExternalName services are DNS aliases; istiod models them as DNS clusters, which
    // arrive with ServiceEntry DNS resolution.
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    let mut addresses: Vec<IpAddr> = spec
        .cluster_ips
        .iter()
        .flatten()
        .chain(spec.cluster_ip.iter())
        .filter_map(|ip| ip.parse().ok())
        .collect();
    addresses.dedup();
    let headless = spec.cluster_ip.as_deref() == Some("None");
    let ports = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            let port = u16::try_from(p.port).ok()?;
            Some(ServicePort {
                name: p.name.clone().unwrap_or_default(),
                port,
                protocol: Protocol::of_kube_port(
                    port,
                    p.name.as_deref().unwrap_or(""),
                    p.protocol.as_deref(),
                    p.app_protocol.as_deref(),
                ),
            })
        })
        .collect();
    Some(Service {
        hostname: format!("{name}.{namespace}.svc.{domain}"),
        namespace,
        name,
        addresses,
        ports,
        resolution: if headless {
            Resolution::Passthrough
        } else {
            Resolution::ClientSideLb
        },
        mesh_external: false,
        selector: spec.selector.clone(),
        export_to: Vec::new(),
        origin: Origin::Kubernetes,
        service_accounts: Vec::new(),
        subject_alt_names: Vec::new(),
    })
}

fn endpoint(
    ip: IpAddr,
    port: u16,
    pod: Option<&PodInfo>,
    healthy: bool,
    zone: Option<&str>,
) -> Endpoint {
    let labels = pod.and_then(|p| p.labels.clone()).unwrap_or_default();
    let mut locality = locality_of(&labels);
    if locality.is_empty()
        && let Some(zone) = zone
    {
        locality = format!("/{zone}");
    }
    Endpoint {
        address: ip,
        hostname: None,
        port,
        service_account: pod
            .and_then(|p| p.service_account_name.clone())
            .unwrap_or_else(|| "default".to_string()),
        labels,
        locality,
        weight: 1,
        healthy,
        workload: pod.and_then(|p| p.name.clone()).unwrap_or_default(),
    }
}

/// The EndpointPort for a service port: same name, or the only port when unnamed.
fn port_named<T>(
    ports: &[T],
    name: &str,
    get: impl Fn(&T) -> (Option<&str>, Option<i32>),
) -> Option<u16> {
    ports
        .iter()
        .find(|p| get(p).0.unwrap_or("") == name)
        .or_else(|| (ports.len() == 1 && name.is_empty()).then(|| &ports[0]))
        .and_then(|p| u16::try_from(get(p).1?).ok())
}

fn from_slices(
    slices: &[&EndpointSlice],
    sp: &ServicePort,
    index: &Index<'_>,
    ns: &str,
) -> Vec<Endpoint> {
    let mut out = Vec::new();
    for slice in slices {
        let ports = slice.ports.clone().unwrap_or_default();
        let Some(port) = port_named(&ports, &sp.name, |p| (p.name.as_deref(), p.port)) else {
            continue;
        };
        for e in slice.endpoints.iter().flatten() {
            let ready = e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            let pod = e
                .target_ref
                .as_ref()
                .filter(|t| t.kind.as_deref() == Some("Pod"))
                .and_then(|t| index.pod_by_name(ns, t.name.as_deref()?));
            for addr in &e.addresses {
                let Ok(ip) = addr.parse() else { continue };
                let pod = pod.or_else(|| index.pod_by_ip(ns, addr));
                out.push(endpoint(ip, port, pod, ready, e.zone.as_deref()));
            }
        }
    }
    out
}

fn from_endpoints(
    e: &core::Endpoints,
    sp: &ServicePort,
    index: &Index<'_>,
    ns: &str,
) -> Vec<Endpoint> {
    let mut out = Vec::new();
    for subset in e.subsets.iter().flatten() {
        let ports = subset.ports.clone().unwrap_or_default();
        let Some(port) = port_named(&ports, &sp.name, |p| (p.name.as_deref(), Some(p.port))) else {
            continue;
        };
        let ready = subset.addresses.iter().flatten().map(|a| (a, true));
        let not_ready = subset
            .not_ready_addresses
            .iter()
            .flatten()
            .map(|a| (a, false));
        for (a, healthy) in ready.chain(not_ready) {
            let Ok(ip) = a.ip.parse() else { continue };
            let pod = a
                .target_ref
                .as_ref()
                .and_then(|t| index.pod_by_name(ns, t.name.as_deref()?))
                .or_else(|| index.pod_by_ip(ns, &a.ip));
            out.push(endpoint(ip, port, pod, healthy, None));
        }
    }
    out
}

/// The port a selected workload serves a service port on.
fn target_port(spec_port: &core::ServicePort, pod: Option<&PodInfo>) -> Option<u16> {
    match &spec_port.target_port {
        None => u16::try_from(spec_port.port).ok(),
        Some(IntOrString::Int(n)) => u16::try_from(*n).ok(),
        Some(IntOrString::String(name)) => u16::try_from(pod?.port_named(name)?).ok(),
    }
}

/// What the endpoints controller derives: running pods the selector matches.
fn from_selector(
    service: &Service,
    spec_port: &core::ServicePort,
    index: &Index<'_>,
) -> Vec<Endpoint> {
    let Some(selector) = &service.selector else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for pod in index.pods_in(&service.namespace) {
        let matches = pod.labels.as_ref().is_some_and(|l| selects(selector, l));
        if !matches {
            continue;
        }
        let Some(ip) = pod.running_ip().and_then(|ip| ip.parse().ok()) else {
            continue;
        };
        let Some(port) = target_port(spec_port, Some(pod)) else {
            continue;
        };
        out.push(endpoint(ip, port, Some(pod), true, None));
    }
    out
}

/// Connected proxies whose labels the selector matches become endpoints too, unless an
/// endpoint for their address is already listed.
fn add_workloads(
    eps: &mut Vec<Endpoint>,
    service: &Service,
    spec_port: &core::ServicePort,
    workloads: &[&Workload],
) {
    let Some(selector) = &service.selector else {
        return;
    };
    for w in workloads {
        if w.namespace != service.namespace || !selects(selector, &w.labels) {
            continue;
        }
        let Some(port) =
            target_port(spec_port, None).or_else(|| u16::try_from(spec_port.port).ok())
        else {
            continue;
        };
        for ip in &w.ips {
            if eps.iter().any(|e| e.address == *ip) {
                continue;
            }
            eps.push(Endpoint {
                address: *ip,
                hostname: None,
                port,
                labels: std::sync::Arc::new(w.labels.clone()),
                locality: locality_of(&w.labels),
                service_account: w.service_account.clone(),
                weight: 1,
                healthy: true,
                workload: w.name.clone(),
            });
        }
    }
}
