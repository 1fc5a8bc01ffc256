//! The generated mesh as a value: namespaces of Services with one or two ports, ten pods
//! each (v1 and a few v2), their EndpointSlice, and for a share of hosts a DestinationRule
//! with v1/v2 subsets and a VirtualService (canary split, header match, timeouts,
//! retries). Everything follows from the parameters and the seed, so `run` rebuilds the
//! very mesh `gen` wrote and can rewrite any one file of it.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// The cluster domain every proxy's node id and every FQDN use.
pub const DOMAIN: &str = "cluster.local";
/// Where `gen` records its parameters inside the mesh directory; hidden, so the control
/// plane's scan skips it.
pub const MANIFEST: &str = ".weft-fleet.json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub seed: u64,
    pub services: usize,
    pub endpoints: usize,
    pub namespaces: usize,
    pub vs_share: f64,
    pub dr_share: f64,
}

impl Params {
    pub fn check(&self) -> anyhow::Result<()> {
        if self.services == 0 || self.endpoints == 0 || self.namespaces == 0 {
            bail!("services, endpoints and namespaces must be at least 1");
        }
        if self.services > 60_000 {
            bail!("at most 60000 services (cluster IPs come from one /16)");
        }
        if self.services * self.endpoints > 16_000_000 {
            bail!("at most 16M pods (pod IPs come from 10.0.0.0/8)");
        }
        for (name, share) in [("vs-share", self.vs_share), ("dr-share", self.dr_share)] {
            if !(0.0..=1.0).contains(&share) {
                bail!("{name} must be within 0..=1, not {share}");
            }
        }
        Ok(())
    }

    pub fn write_manifest(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(MANIFEST);
        std::fs::write(&path, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("write {}", path.display()))
    }

    pub fn read_manifest(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read(&path).with_context(|| {
            format!(
                "read {} (was the mesh made by `weft-fleet gen`?)",
                path.display()
            )
        })?;
        Ok(serde_json::from_slice(&text)?)
    }
}

/// SplitMix64: tiny, and its sequence never changes with a dependency upgrade.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// `len` lowercase alphanumerics, like the suffixes Kubernetes generates.
    pub fn suffix(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..len).map(|_| char::from(*self.pick(ALPHABET))).collect()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Port {
    pub name: &'static str,
    pub port: u16,
    pub target: u16,
    pub app_protocol: Option<&'static str>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pod {
    pub name: String,
    pub ip: Ipv4Addr,
    pub version: &'static str,
    pub template_hash: String,
    pub node: String,
    pub zone: &'static str,
}

/// A VirtualService's knobs; the rest of its shape is fixed (see yaml.rs).
#[derive(Clone, Debug, PartialEq)]
pub struct Routing {
    /// Percent of the default route going to subset v2 (v1 gets the rest).
    pub v2_weight: u32,
    pub timeout_s: u32,
    pub attempts: u32,
    /// Whether the canary also gets a `/api/v2` prefix route.
    pub prefix_route: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    pub name: String,
    pub namespace: String,
    pub cluster_ip: Ipv4Addr,
    pub ports: Vec<Port>,
    pub pods: Vec<Pod>,
    /// The EndpointSlice's addresses, pod by pod; starts as the pod IPs, and the
    /// endpoint-change scenario rewrites one.
    pub endpoint_ips: Vec<Ipv4Addr>,
    pub slice_suffix: String,
    pub destination_rule: bool,
    pub routing: Option<Routing>,
}

impl Service {
    pub fn fqdn(&self) -> String {
        format!("{}.{}.svc.{DOMAIN}", self.name, self.namespace)
    }

    fn file(&self, dir: &Path, kind: &str) -> PathBuf {
        dir.join(&self.namespace)
            .join(format!("{}-{kind}.yaml", self.name))
    }

    pub fn service_file(&self, dir: &Path) -> PathBuf {
        self.file(dir, "service")
    }
    pub fn slice_file(&self, dir: &Path) -> PathBuf {
        self.file(dir, "endpointslice")
    }
    pub fn pods_file(&self, dir: &Path) -> PathBuf {
        self.file(dir, "pods")
    }
    pub fn destination_rule_file(&self, dir: &Path) -> PathBuf {
        self.file(dir, "destinationrule")
    }
    pub fn virtual_service_file(&self, dir: &Path) -> PathBuf {
        self.file(dir, "virtualservice")
    }
}

#[derive(Clone, Debug)]
pub struct Mesh {
    pub params: Params,
    pub services: Vec<Service>,
    /// Service indexes in the seeded order the VS and DR shares were dealt from: the first
    /// `vs_share` of them have a VirtualService, the first `dr_share` a DestinationRule.
    pub order: Vec<usize>,
}

const PREFIXES: &[&str] = &[
    "auth",
    "billing",
    "cart",
    "catalog",
    "checkout",
    "inventory",
    "ledger",
    "notify",
    "orders",
    "payments",
    "pricing",
    "profile",
    "ratings",
    "reviews",
    "search",
    "shipping",
    "users",
    "media",
    "reports",
    "fraud",
];
const SUFFIXES: &[&str] = &["api", "svc", "worker", "backend", "frontend", "gateway"];
const ZONES: &[&str] = &["zone-a", "zone-b", "zone-c"];

/// The port layouts services are drawn from, with their weights out of 20.
fn ports_for(roll: usize) -> Vec<Port> {
    let http = Port {
        name: "http",
        port: 80,
        target: 8080,
        app_protocol: None,
    };
    let grpc = Port {
        name: "grpc",
        port: 9090,
        target: 9090,
        app_protocol: Some("grpc"),
    };
    match roll {
        0..10 => vec![http],
        10..14 => vec![http, grpc],
        14..17 => vec![Port {
            name: "http-web",
            port: 8080,
            target: 8080,
            app_protocol: None,
        }],
        _ => vec![grpc],
    }
}

fn ipv4(base: [u8; 2], index: usize, offset: usize) -> Ipv4Addr {
    let n = (index + offset) as u32;
    match base {
        [10, _] => Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8),
        [a, b] => Ipv4Addr::new(a, b, (n >> 8) as u8, n as u8),
    }
}

pub fn namespace_name(index: usize) -> String {
    format!("team-{index:02}")
}

impl Mesh {
    pub fn generate(params: &Params) -> anyhow::Result<Self> {
        params.check()?;
        let mut rng = Rng::new(params.seed);
        let mut services = Vec::with_capacity(params.services);
        for i in 0..params.services {
            let name = format!("{}-{}-{i}", rng.pick(PREFIXES), rng.pick(SUFFIXES));
            let namespace = namespace_name(i % params.namespaces);
            let ports = ports_for(rng.below(20));
            // A couple of canary pods per service, like a rollout in progress.
            let canaries = (params.endpoints / 5).max(usize::from(params.endpoints > 1));
            let hashes = [rng.suffix(10), rng.suffix(10)];
            let pods: Vec<Pod> = (0..params.endpoints)
                .map(|j| {
                    let v2 = j >= params.endpoints - canaries;
                    let version = if v2 { "v2" } else { "v1" };
                    let template_hash = hashes[usize::from(v2)].clone();
                    Pod {
                        name: format!("{name}-{version}-{template_hash}-{}", rng.suffix(5)),
                        // .0 is left out so no pod gets a network-looking address.
                        ip: ipv4([10, 0], i * params.endpoints + j, 1),
                        version,
                        template_hash,
                        node: format!("node-{}", rng.below(64)),
                        zone: ZONES[rng.below(ZONES.len())],
                    }
                })
                .collect();
            services.push(Service {
                endpoint_ips: pods.iter().map(|p| p.ip).collect(),
                cluster_ip: ipv4([172, 20], i, 1),
                slice_suffix: rng.suffix(5),
                name,
                namespace,
                ports,
                pods,
                destination_rule: false,
                routing: None,
            });
        }
        // A seeded shuffle (Fisher-Yates) deals the VS and DR shares.
        let mut order: Vec<usize> = (0..params.services).collect();
        for k in (1..order.len()).rev() {
            order.swap(k, rng.below(k + 1));
        }
        let count =
            |share: f64| ((share * params.services as f64).round() as usize).min(order.len());
        for &i in &order[..count(params.dr_share)] {
            services[i].destination_rule = true;
        }
        for &i in &order[..count(params.vs_share)] {
            services[i].routing = Some(Routing {
                v2_weight: *rng.pick(&[5, 10, 20, 25]),
                timeout_s: *rng.pick(&[2, 3, 5, 10]),
                attempts: *rng.pick(&[2, 3]),
                prefix_route: rng.below(2) == 0,
            });
        }
        Ok(Self {
            params: params.clone(),
            services,
            order,
        })
    }

    /// The service whose endpoint the endpoint-change scenario rewrites: the first with
    /// a DestinationRule (so subset clusters carry the endpoint too), else the first.
    pub fn endpoint_target(&self) -> usize {
        self.order
            .iter()
            .copied()
            .find(|&i| self.services[i].destination_rule)
            .unwrap_or(self.order[0])
    }

    /// The service whose VirtualService weights the VS-change scenario edits: the first
    /// with both a VirtualService and a DestinationRule (the split is between subsets).
    pub fn routing_target(&self) -> Option<usize> {
        self.order
            .iter()
            .copied()
            .find(|&i| self.services[i].routing.is_some() && self.services[i].destination_rule)
    }

    pub fn pod_count(&self) -> usize {
        self.services.iter().map(|s| s.pods.len()).sum()
    }

    pub fn virtual_services(&self) -> usize {
        self.services.iter().filter(|s| s.routing.is_some()).count()
    }

    pub fn destination_rules(&self) -> usize {
        self.services.iter().filter(|s| s.destination_rule).count()
    }
}

/// Writes `text` to `path` through a hidden temporary file and a rename, so the control
/// plane's scan never reads half a file (and never sees the temporary one).
pub fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("file name")?;
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params {
            seed: 7,
            services: 200,
            endpoints: 10,
            namespaces: 10,
            vs_share: 0.3,
            dr_share: 0.3,
        }
    }

    #[test]
    fn same_seed_same_mesh_and_shares_as_asked() {
        let a = Mesh::generate(&params()).unwrap();
        let b = Mesh::generate(&params()).unwrap();
        assert_eq!(a.services, b.services);
        assert_eq!(a.virtual_services(), 60);
        assert_eq!(a.destination_rules(), 60);
        assert_eq!(a.pod_count(), 2000);
        let mut other = params();
        other.seed = 8;
        assert_ne!(Mesh::generate(&other).unwrap().services, a.services);
    }

    #[test]
    fn addresses_are_unique_and_targets_exist() {
        let mesh = Mesh::generate(&params()).unwrap();
        let mut ips: Vec<Ipv4Addr> = mesh
            .services
            .iter()
            .flat_map(|s| s.pods.iter().map(|p| p.ip).chain([s.cluster_ip]))
            .collect();
        let n = ips.len();
        ips.sort();
        ips.dedup();
        assert_eq!(ips.len(), n);
        assert!(mesh.services[mesh.endpoint_target()].destination_rule);
        let r = mesh.routing_target().expect("a VS with a DR");
        assert!(mesh.services[r].routing.is_some());
        let versions: Vec<&str> = mesh.services[0].pods.iter().map(|p| p.version).collect();
        assert_eq!(versions.iter().filter(|v| **v == "v2").count(), 2);
    }
}
