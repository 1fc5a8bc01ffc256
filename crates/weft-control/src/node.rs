//! Who is asking: an xDS client's `node` read the way istiod reads it. Istio's sidecars and
//! gateways name themselves `TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.DOMAIN` and describe their
//! workload in `node.metadata` (namespace, labels, service account, IPs, cluster); proxyless
//! gRPC clients do the same with `GENERATOR: grpc`. What a proxy is decides what it is sent.

use std::collections::BTreeMap;
use std::net::IpAddr;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};

/// What kind of xDS client this is; decides which listeners it is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProxyType {
    /// A sidecar next to a workload (Istio's `sidecar`).
    Sidecar,
    /// A gateway (Istio's `router`): listeners come from Gateway resources.
    Router,
}

/// Which generator a client wants: Envoy-shaped resources or gRPC's proxyless subset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Generator {
    Envoy,
    Grpc,
}

/// A connected client as the control plane sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Proxy {
    /// `node.id` as sent: the key for status, debug pages and `proxy-config`.
    pub id: String,
    pub proxy_type: ProxyType,
    pub generator: Generator,
    /// Pod (or workload) name and namespace, from `POD.NAMESPACE`.
    pub workload_name: String,
    pub namespace: String,
    /// `INSTANCE_IPS`, else the IP in the id.
    pub ips: Vec<IpAddr>,
    /// `svc.cluster.local` style domain the short names of its namespace expand into.
    pub dns_domain: String,
    pub labels: BTreeMap<String, String>,
    pub service_account: String,
    pub cluster_id: String,
    pub istio_version: String,
    /// `region/zone/subzone` (as the registry writes an endpoint's): the node's `locality`,
    /// else its topology labels; empty when unknown.
    pub locality: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NodeError {
    #[error("node.id is empty")]
    Empty,
    #[error(
        "node.id {0:?} is not TYPE~IP~NAME.NAMESPACE~DOMAIN (Istio's form, e.g. \
         sidecar~10.0.0.1~reviews-v1-0.default~default.svc.cluster.local)"
    )]
    Shape(String),
    #[error("node.id {id:?}: type {kind:?} is neither sidecar nor router")]
    Type { id: String, kind: String },
    #[error("node.id {id:?}: {ip:?} is not an IP address")]
    Ip { id: String, ip: String },
}

impl Proxy {
    /// Reads `node` as istiod does: the id's four parts, refined by metadata.
    pub fn from_node(node: &Node) -> Result<Self, NodeError> {
        if node.id.is_empty() {
            return Err(NodeError::Empty);
        }
        let parts: Vec<&str> = node.id.split('~').collect();
        let [kind, ip, workload, domain] = parts[..] else {
            return Err(NodeError::Shape(node.id.clone()));
        };
        let proxy_type = match kind {
            "sidecar" => ProxyType::Sidecar,
            "router" => ProxyType::Router,
            other => {
                return Err(NodeError::Type {
                    id: node.id.clone(),
                    kind: other.to_string(),
                });
            }
        };
        let meta = Meta(node.metadata.as_ref());
        let mut ips: Vec<IpAddr> = meta
            .string("INSTANCE_IPS")
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        if ips.is_empty() && !ip.is_empty() {
            ips.push(ip.parse().map_err(|_| NodeError::Ip {
                id: node.id.clone(),
                ip: ip.to_string(),
            })?);
        }
        let (name, id_namespace) = workload.rsplit_once('.').unwrap_or((workload, ""));
        let namespace = Some(meta.string("NAMESPACE"))
            .filter(|s| !s.is_empty())
            .or(Some(id_namespace).filter(|s| !s.is_empty()))
            .unwrap_or(weft_config::kinds::DEFAULT_NAMESPACE)
            .to_string();
        let generator = match meta.string("GENERATOR") {
            "grpc" => Generator::Grpc,
            _ => Generator::Envoy,
        };
        let labels = meta.string_map("LABELS");
        let locality = match &node.locality {
            Some(l) if !(l.region.is_empty() && l.zone.is_empty() && l.sub_zone.is_empty()) => {
                [l.region.as_str(), &l.zone, &l.sub_zone]
                    .join("/")
                    .trim_end_matches('/')
                    .to_string()
            }
            _ => crate::registry::locality_of(&labels),
        };
        Ok(Proxy {
            id: node.id.clone(),
            proxy_type,
            generator,
            workload_name: Some(meta.string("NAME"))
                .filter(|s| !s.is_empty())
                .unwrap_or(name)
                .to_string(),
            namespace,
            ips,
            dns_domain: domain.to_string(),
            labels,
            service_account: meta.string("SERVICE_ACCOUNT").to_string(),
            cluster_id: meta.string("CLUSTER_ID").to_string(),
            istio_version: meta.string("ISTIO_VERSION").to_string(),
            locality,
        })
    }

    /// The domain suffix of the mesh (`cluster.local` for `default.svc.cluster.local`).
    pub fn mesh_domain(&self) -> &str {
        self.dns_domain
            .strip_prefix(&format!("{}.svc.", self.namespace))
            .unwrap_or("cluster.local")
    }
}

/// Typed reads of `node.metadata`, where Istio keeps strings and string maps.
struct Meta<'a>(Option<&'a Struct>);

impl<'a> Meta<'a> {
    fn get(&self, key: &str) -> Option<&'a Kind> {
        self.0?.fields.get(key)?.kind.as_ref()
    }

    fn string(&self, key: &str) -> &'a str {
        match self.get(key) {
            Some(Kind::StringValue(s)) => s,
            _ => "",
        }
    }

    fn string_map(&self, key: &str) -> BTreeMap<String, String> {
        let Some(Kind::StructValue(s)) = self.get(key) else {
            return BTreeMap::new();
        };
        s.fields
            .iter()
            .filter_map(|(k, v)| match &v.kind {
                Some(Kind::StringValue(s)) => Some((k.clone(), s.clone())),
                _ => None,
            })
            .collect()
    }
}

/// Builds `node.metadata` the way an Istio sidecar sends it; for tests and simulated
/// fleets.
pub fn metadata(
    namespace: &str,
    labels: &BTreeMap<String, String>,
    service_account: &str,
    ips: &[IpAddr],
) -> Struct {
    let string = |s: &str| Value {
        kind: Some(Kind::StringValue(s.to_string())),
    };
    let mut fields = BTreeMap::new();
    fields.insert("NAMESPACE".to_string(), string(namespace));
    fields.insert("SERVICE_ACCOUNT".to_string(), string(service_account));
    let ips: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
    fields.insert("INSTANCE_IPS".to_string(), string(&ips.join(",")));
    fields.insert(
        "LABELS".to_string(),
        Value {
            kind: Some(Kind::StructValue(Struct {
                fields: labels.iter().map(|(k, v)| (k.clone(), string(v))).collect(),
            })),
        },
    );
    Struct {
        fields: fields.into_iter().collect(),
    }
}

/// Whether a client whose certificate proved `identities` (SPIFFE IDs, its chain checked
/// against the mesh's root) may connect as `proxy`, as istiod checks on 15012: one identity
/// must be of the proxy's namespace and, when the proxy names its service account, of that
/// account — so a workload cannot ask for another namespace's configuration.
pub fn authorize(proxy: &Proxy, identities: &[String]) -> Result<(), tonic::Status> {
    if identities.is_empty() {
        return Err(tonic::Status::unauthenticated(
            "xDS over TLS needs a client certificate from the mesh CA (the workload's, as \
             `weft agent` obtains it)",
        ));
    }
    let matches = identities.iter().any(|id| {
        weft_identity::SpiffeId::parse(id).is_ok_and(|id| {
            id.namespace() == Some(proxy.namespace.as_str())
                && (proxy.service_account.is_empty()
                    || id.service_account() == Some(proxy.service_account.as_str()))
        })
    });
    if matches {
        Ok(())
    } else {
        Err(tonic::Status::permission_denied(format!(
            "no identities ({}) matched {}/{}",
            identities.join(", "),
            proxy.namespace,
            proxy.service_account
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_must_be_of_the_proxys_namespace_and_account() {
        let labels = BTreeMap::new();
        let ips: Vec<IpAddr> = vec!["10.1.0.5".parse().unwrap()];
        let id = "sidecar~10.1.0.5~reviews-v1-0.prod~prod.svc.cluster.local";
        let p =
            Proxy::from_node(&node(id, Some(metadata("prod", &labels, "reviews", &ips)))).unwrap();
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(authorize(&p, &ids(&["spiffe://cluster.local/ns/prod/sa/reviews"])).is_ok());
        // Any trust domain the chain check let through; one matching identity suffices.
        assert!(
            authorize(
                &p,
                &ids(&[
                    "spiffe://td/ns/other/sa/x",
                    "spiffe://td/ns/prod/sa/reviews"
                ])
            )
            .is_ok()
        );
        let err = authorize(&p, &ids(&["spiffe://cluster.local/ns/prod/sa/ratings"])).unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
        assert!(err.message().contains("matched prod/reviews"), "{err:?}");
        assert_eq!(
            authorize(&p, &[]).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        // A proxy that names no account is held to its namespace.
        let anonymous =
            Proxy::from_node(&node(id, Some(metadata("prod", &labels, "", &ips)))).unwrap();
        assert!(authorize(&anonymous, &ids(&["spiffe://cluster.local/ns/prod/sa/any"])).is_ok());
    }

    fn node(id: &str, meta: Option<Struct>) -> Node {
        Node {
            id: id.to_string(),
            metadata: meta,
            ..Default::default()
        }
    }

    #[test]
    fn reads_istio_sidecar_ids_and_metadata() {
        let labels = BTreeMap::from([("app".to_string(), "reviews".to_string())]);
        let ips: Vec<IpAddr> = vec!["10.1.0.5".parse().unwrap(), "fd00::5".parse().unwrap()];
        let p = Proxy::from_node(&node(
            "sidecar~10.1.0.5~reviews-v1-0.prod~prod.svc.cluster.local",
            Some(metadata("prod", &labels, "bookinfo-reviews", &ips)),
        ))
        .unwrap();
        assert_eq!(p.proxy_type, ProxyType::Sidecar);
        assert_eq!(p.generator, Generator::Envoy);
        assert_eq!(
            (p.workload_name.as_str(), p.namespace.as_str()),
            ("reviews-v1-0", "prod")
        );
        assert_eq!(p.ips, ips);
        assert_eq!(p.labels, labels);
        assert_eq!(p.service_account, "bookinfo-reviews");
        assert_eq!(p.mesh_domain(), "cluster.local");
    }

    #[test]
    fn falls_back_to_the_id_and_rejects_other_shapes() {
        let p = Proxy::from_node(&node(
            "router~10.0.0.9~ingress-0.istio-system~istio-system.svc.cluster.local",
            None,
        ))
        .unwrap();
        assert_eq!(p.proxy_type, ProxyType::Router);
        assert_eq!(p.namespace, "istio-system");
        assert_eq!(p.ips, vec!["10.0.0.9".parse::<IpAddr>().unwrap()]);
        assert!(matches!(
            Proxy::from_node(&node("envoy-1", None)),
            Err(NodeError::Shape(_))
        ));
        assert!(matches!(
            Proxy::from_node(&node("waypoint~1.2.3.4~a.b~b.svc.cluster.local", None)),
            Err(NodeError::Type { .. })
        ));
        assert!(matches!(
            Proxy::from_node(&node("sidecar~nope~a.b~b.svc.cluster.local", None)),
            Err(NodeError::Ip { .. })
        ));
        assert_eq!(Proxy::from_node(&node("", None)), Err(NodeError::Empty));
    }
}
