//! What the registry reads of a Pod, kept instead of the Pod: a decoded Kubernetes Pod is
//! about five kilobytes however little it says (every optional field of its spec and
//! containers is laid out inline), and a fleet described in files has tens of thousands.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use super::Labels;

/// Label sets shared by the Pods that carry equal ones: the replicas of a Deployment carry
/// the same labels, and ten thousand Pods would otherwise hold ten thousand copies.
#[derive(Debug, Default)]
pub struct LabelSets(HashSet<Labels>);

impl LabelSets {
    /// The shared copy of `labels`.
    pub fn share(&mut self, labels: &BTreeMap<String, String>) -> Labels {
        if let Some(known) = self.0.get(labels) {
            return known.clone();
        }
        let new = Arc::new(labels.clone());
        self.0.insert(new.clone());
        new
    }

    /// Forgets the sets no Pod holds any more.
    pub fn prune(&mut self) {
        self.0.retain(|l| Arc::strong_count(l) > 1);
    }
}

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
    pub fn of(pod: &Pod, label_sets: &mut LabelSets) -> Self {
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
            labels: pod.metadata.labels.as_ref().map(|l| label_sets.share(l)),
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
    let mut label_sets = LabelSets::default();
    resources
        .iter()
        .filter_map(|r| match r {
            weft_config::Resource::Pod(p) => Some(PodInfo::of(p, &mut label_sets)),
            _ => None,
        })
        .collect()
}

/// `resources` without their Pods, and the Pods as the registry keeps them.
pub fn split_pods(
    resources: impl IntoIterator<Item = weft_config::Resource>,
    label_sets: &mut LabelSets,
) -> (Vec<weft_config::Resource>, Vec<PodInfo>) {
    let mut others = Vec::new();
    let mut pods = Vec::new();
    for r in resources {
        match r {
            weft_config::Resource::Pod(p) => pods.push(PodInfo::of(&p, label_sets)),
            other => others.push(other),
        }
    }
    (others, pods)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, version: &str) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.labels = Some(BTreeMap::from([
            ("app".to_string(), "web".to_string()),
            ("version".to_string(), version.to_string()),
        ]));
        p
    }

    #[test]
    fn replicas_share_one_copy_of_their_labels_until_none_holds_it() {
        let mut sets = LabelSets::default();
        let a = PodInfo::of(&pod("web-1", "v1"), &mut sets);
        let b = PodInfo::of(&pod("web-2", "v1"), &mut sets);
        let c = PodInfo::of(&pod("web-3", "v2"), &mut sets);
        let (la, lb, lc) = (a.labels.unwrap(), b.labels.unwrap(), c.labels.unwrap());
        assert!(Arc::ptr_eq(&la, &lb));
        assert!(!Arc::ptr_eq(&la, &lc));
        assert_eq!(lc.get("version").map(String::as_str), Some("v2"));
        drop(lc);
        sets.prune();
        assert_eq!(sets.0.len(), 1);
        let again = PodInfo::of(&pod("web-4", "v1"), &mut sets);
        assert!(Arc::ptr_eq(&la, again.labels.as_ref().unwrap()));
    }
}
