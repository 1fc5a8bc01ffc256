//! What the registry reads of a Pod, kept instead of the Pod: a decoded Kubernetes Pod is
//! about five kilobytes however little it says (every optional field of its spec and
//! containers is laid out inline), and a fleet described in files has tens of thousands.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

#[derive(Clone, Debug, PartialEq)]
pub struct PodInfo {
    pub name: Option<String>,
    /// Resolved: the default namespace when unset.
    pub namespace: String,
    pub labels: Option<super::Labels>,
    pub service_account_name: Option<String>,
    /// Container ports as (name, number), in container order.
    pub ports: Vec<(Option<String>, i32)>,
    /// `None` when the Pod has no status at all.
    pub status: Option<PodStatusInfo>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PodStatusInfo {
    pub phase: Option<String>,
    pub pod_ip: Option<String>,
    pub pod_ips: Vec<String>,
}

impl PodInfo {
    pub fn of(pod: &Pod) -> Self {
        let spec = pod.spec.as_ref();
        Self {
            name: pod.metadata.name.clone(),
            namespace: pod
                .metadata
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(weft_config::kinds::DEFAULT_NAMESPACE)
                .to_string(),
            labels: pod.metadata.labels.clone().map(std::sync::Arc::new),
            service_account_name: spec.and_then(|s| s.service_account_name.clone()),
            ports: spec
                .into_iter()
                .flat_map(|s| &s.containers)
                .flat_map(|c| c.ports.iter().flatten())
                .map(|p| (p.name.clone(), p.container_port))
                .collect(),
            status: pod.status.as_ref().map(|s| PodStatusInfo {
                phase: s.phase.clone(),
                pod_ip: s.pod_ip.clone(),
                pod_ips: s.pod_ips.iter().flatten().map(|i| i.ip.clone()).collect(),
            }),
        }
    }

    /// Running (or with no phase given) and with an IP: what selectors make endpoints of.
    pub fn running_ip(&self) -> Option<&str> {
        let status = self.status.as_ref()?;
        if status.phase.as_deref().is_some_and(|p| p != "Running") {
            return None;
        }
        status.pod_ip.as_deref()
    }

    /// The number of the first container port called `name`.
    pub fn port_named(&self, name: &str) -> Option<i32> {
        self.ports
            .iter()
            .find(|(n, _)| n.as_deref() == Some(name))
            .map(|(_, p)| *p)
    }

    /// Named ports as a map (istiod's `getPortMap`).
    pub fn named_ports(&self) -> BTreeMap<String, u16> {
        self.ports
            .iter()
            .filter_map(|(n, p)| Some((n.clone()?, u16::try_from(*p).ok()?)))
            .collect()
    }
}

/// The Pods among `resources`, as the registry keeps them.
pub fn pods_of(resources: &[&weft_config::Resource]) -> Vec<PodInfo> {
    resources
        .iter()
        .filter_map(|r| match r {
            weft_config::Resource::Pod(p) => Some(PodInfo::of(p)),
            _ => None,
        })
        .collect()
}

/// `resources` without their Pods, and the Pods as the registry keeps them.
pub fn split_pods(
    resources: impl IntoIterator<Item = weft_config::Resource>,
) -> (Vec<weft_config::Resource>, Vec<PodInfo>) {
    let mut others = Vec::new();
    let mut pods = Vec::new();
    for r in resources {
        match r {
            weft_config::Resource::Pod(p) => pods.push(PodInfo::of(&p)),
            other => others.push(other),
        }
    }
    (others, pods)
}
