//! What the fleet is and what the scenarios change: each proxy is a pod of the mesh with
//! the node an Istio sidecar sends, and each change edits the mesh in memory and says,
//! resource by resource, what every affected proxy must come to see.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use anyhow::bail;
use weft_xds::envoy_types::pb::envoy::config::core::v3::Node;
use weft_xds::envoy_types::pb::google::protobuf::{Struct, Value, value::Kind as ValueKind};

use crate::mesh::{DOMAIN, Mesh, Service};
use crate::proxy::{Check, Kind, Probe};

fn string(s: &str) -> Value {
    Value {
        kind: Some(ValueKind::StringValue(s.to_string())),
    }
}

/// An Istio sidecar's node for the proxy of `pod` in `svc`, as pilot-agent fills it in.
pub fn node(svc: &Service, pod: usize) -> Node {
    let p = &svc.pods[pod];
    let ns = &svc.namespace;
    let labels = [
        ("app", svc.name.as_str()),
        ("version", p.version),
        ("pod-template-hash", p.template_hash.as_str()),
        ("topology.kubernetes.io/zone", p.zone),
    ];
    let mut fields = BTreeMap::new();
    for (k, v) in [
        ("NAMESPACE", ns.as_str()),
        ("NAME", p.name.as_str()),
        ("SERVICE_ACCOUNT", svc.name.as_str()),
        ("INSTANCE_IPS", &p.ip.to_string()),
        ("CLUSTER_ID", "Kubernetes"),
        ("ISTIO_VERSION", "1.24.0"),
    ] {
        fields.insert(k.to_string(), string(v));
    }
    fields.insert(
        "LABELS".into(),
        Value {
            kind: Some(ValueKind::StructValue(Struct {
                fields: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), string(v)))
                    .collect(),
            })),
        },
    );
    Node {
        id: format!("sidecar~{}~{}.{ns}~{ns}.svc.{DOMAIN}", p.ip, p.name),
        cluster: format!("{}.{ns}", svc.name),
        metadata: Some(Struct {
            fields: fields.into_iter().collect(),
        }),
        ..Default::default()
    }
}

/// (service, pod) of every proxy: round-robin over the services of the chosen namespaces,
/// pod 0 of each first, so proxies spread evenly over namespaces and services.
pub fn placements(
    mesh: &Mesh,
    proxies: usize,
    namespaces: Option<usize>,
) -> anyhow::Result<Vec<(usize, usize)>> {
    let n = namespaces.unwrap_or(mesh.params.namespaces);
    if n == 0 || n > mesh.params.namespaces {
        bail!("--namespaces must be within 1..={}", mesh.params.namespaces);
    }
    let eligible: Vec<usize> = (0..mesh.services.len())
        .filter(|i| i % mesh.params.namespaces < n)
        .collect();
    let capacity = eligible.len() * mesh.params.endpoints;
    if proxies > capacity {
        bail!("{proxies} proxies but only {capacity} pods in {n} namespaces: one proxy per pod");
    }
    Ok((0..proxies)
        .map(|k| (eligible[k % eligible.len()], k / eligible.len()))
        .collect())
}

/// The endpoint change of `round` (from 0): the last pod without a proxy of the target
/// service gets a new IP in its EndpointSlice, 100.64.0.1 in the first round and one more
/// in each next (100.64/10 is never used by the mesh).
pub fn endpoint_probe(
    mesh: &mut Mesh,
    used: &BTreeSet<(usize, usize)>,
    round: u32,
) -> (String, Probe, usize) {
    let idx = mesh.endpoint_target();
    let svc = &mut mesh.services[idx];
    let pod = (0..svc.pods.len())
        .rev()
        .find(|p| !used.contains(&(idx, *p)))
        .unwrap_or(svc.pods.len() - 1);
    let old = svc.endpoint_ips[pod];
    let new = Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 1)) + round);
    svc.endpoint_ips[pod] = new;
    let fqdn = svc.fqdn();
    let version = svc.pods[pod].version;
    let mut targets = BTreeMap::new();
    for p in &svc.ports {
        let check = Check::Endpoint {
            ip: new.to_string(),
        };
        targets.insert(format!("outbound|{}||{fqdn}", p.port), check.clone());
        if svc.destination_rule {
            targets.insert(format!("outbound|{}|{version}|{fqdn}", p.port), check);
        }
    }
    let what = format!(
        "endpoint {old} -> {new} in {} ({} clusters)",
        svc.slice_file(std::path::Path::new("")).display(),
        targets.len()
    );
    (
        what,
        Probe {
            id: 1 + 2 * u64::from(round),
            kind: Kind::Eds,
            targets,
        },
        idx,
    )
}

/// The VirtualService change of `round` (from 0): the canary's v2 weight moves by 20
/// points.
pub fn weight_probe(mesh: &mut Mesh, round: u32) -> Option<(String, Probe, usize)> {
    let idx = mesh.routing_target()?;
    let svc = &mut mesh.services[idx];
    let routing = svc.routing.as_mut()?;
    let old = routing.v2_weight;
    let new = if old <= 50 { old + 20 } else { old - 20 };
    routing.v2_weight = new;
    let fqdn = svc.fqdn();
    let targets = svc
        .ports
        .iter()
        .map(|p| {
            (
                p.port.to_string(),
                Check::Weight {
                    vhost: format!("{fqdn}:{}", p.port),
                    cluster: format!("outbound|{}|v2|{fqdn}", p.port),
                    weight: new,
                },
            )
        })
        .collect();
    let what = format!(
        "VirtualService {}/{}: v1/v2 {}/{old} -> {}/{new}",
        svc.namespace,
        svc.name,
        100 - old,
        100 - new
    );
    Some((
        what,
        Probe {
            id: 2 + 2 * u64::from(round),
            kind: Kind::Rds,
            targets,
        },
        idx,
    ))
}
