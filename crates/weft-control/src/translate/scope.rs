//! What a proxy may see: the `Sidecar` resource that applies to it (its own workload's,
//! else its namespace's default, else the root namespace's) narrows the services and
//! VirtualServices it imports to its egress hosts (`namespace/dnsName`) and may override
//! the outbound traffic policy — so a proxy is sent only what it can reach.

use weft_config::networking::sidecar::{OutboundTrafficPolicyMode, Sidecar};

use super::view::{MeshView, Named, OutboundPolicy};
use crate::node::Proxy;
use crate::registry::{Service, selects};

/// One `namespace/dnsName` import.
#[derive(Clone, Debug, PartialEq)]
struct Import {
    namespace: String,
    host: String,
}

/// The effective scope of one proxy.
#[derive(Clone, Debug, PartialEq)]
pub struct Scope {
    /// `None`: no Sidecar applies and everything exported to the proxy is visible.
    imports: Option<Vec<Import>>,
    pub outbound_policy: OutboundPolicy,
    /// `namespace/name` of the Sidecar that applies, for `describe`.
    pub sidecar: Option<String>,
}

fn host_matches(pattern: &str, host: &str) -> bool {
    pattern == "*"
        || pattern == host
        || pattern
            .strip_prefix('*')
            .is_some_and(|suffix| host.ends_with(suffix))
}

impl Import {
    fn parse(entry: &str) -> Option<Self> {
        let (namespace, host) = entry.split_once('/')?;
        Some(Self {
            namespace: namespace.to_string(),
            host: host.to_string(),
        })
    }

    fn covers(&self, owner_namespace: &str, host: &str, proxy_namespace: &str) -> bool {
        let namespace_ok = match self.namespace.as_str() {
            "*" => true,
            "." => owner_namespace == proxy_namespace,
            "~" => false,
            ns => ns == owner_namespace,
        };
        namespace_ok && host_matches(&self.host, host)
    }
}

/// The Sidecar that applies to `proxy` (istiod's order: a selector match in the proxy's
/// namespace, then that namespace's selector-less default, then the root namespace's).
pub(super) fn applicable<'a>(proxy: &Proxy, view: &'a MeshView) -> Option<&'a Named<Sidecar>> {
    let default_of = |ns: &str| {
        view.sidecars
            .iter()
            .find(|s| s.namespace == ns && s.spec.workload_selector.is_none())
    };
    view.sidecars
        .iter()
        .find(|s| {
            s.namespace == proxy.namespace
                && s.spec
                    .workload_selector
                    .as_ref()
                    .is_some_and(|w| !w.labels.is_empty() && selects(&w.labels, &proxy.labels))
        })
        .or_else(|| default_of(&proxy.namespace))
        .or_else(|| default_of(&view.mesh.root_namespace))
}

impl Scope {
    pub fn of(proxy: &Proxy, view: &MeshView) -> Self {
        let Some(sidecar) = applicable(proxy, view) else {
            return Self {
                imports: None,
                outbound_policy: view.mesh.outbound_policy,
                sidecar: None,
            };
        };
        let imports = (!sidecar.spec.egress.is_empty()).then(|| {
            sidecar
                .spec
                .egress
                .iter()
                .flat_map(|e| e.hosts.iter())
                .filter_map(|h| Import::parse(h))
                .collect()
        });
        let outbound_policy = match sidecar
            .spec
            .outbound_traffic_policy
            .as_ref()
            .map(|p| p.mode)
        {
            Some(OutboundTrafficPolicyMode::RegistryOnly) => OutboundPolicy::RegistryOnly,
            Some(OutboundTrafficPolicyMode::AllowAny) => OutboundPolicy::AllowAny,
            None => view.mesh.outbound_policy,
        };
        Self {
            imports,
            outbound_policy,
            sidecar: Some(format!("{}/{}", sidecar.namespace, sidecar.name)),
        }
    }

    /// Whether the proxy imports a host owned by `namespace`.
    pub fn imports(&self, namespace: &str, host: &str, proxy_namespace: &str) -> bool {
        self.imports.as_ref().is_none_or(|list| {
            list.iter()
                .any(|i| i.covers(namespace, host, proxy_namespace))
        })
    }

    pub fn sees(&self, svc: &Service, proxy_namespace: &str) -> bool {
        svc.visible_from(proxy_namespace)
            && self.imports(&svc.namespace, &svc.hostname, proxy_namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_follow_istio_namespace_selectors() {
        let i = Import::parse("./*").unwrap();
        assert!(i.covers("prod", "a.prod.svc.cluster.local", "prod"));
        assert!(!i.covers("other", "a.other.svc.cluster.local", "prod"));
        let i = Import::parse("istio-system/*.example.com").unwrap();
        assert!(i.covers("istio-system", "api.example.com", "prod"));
        assert!(!i.covers("istio-system", "example.org", "prod"));
        assert!(!Import::parse("~/*").unwrap().covers("prod", "x", "prod"));
        assert!(Import::parse("*/*").unwrap().covers("any", "thing", "prod"));
        assert_eq!(Import::parse("no-slash"), None);
    }
}
