//! Cross-resource analysis, as `istioctl analyze` does it: findings that no single resource
//! shows (a route to a subset no DestinationRule defines, a Gateway that does not exist,
//! the same object twice). They are warnings: each resource is valid on its own.

use crate::diag::{Code, Finding, Severity};
use crate::kinds::Resource;
use crate::load::Loaded;
use crate::mesh::mesh_config::MeshConfig;
use crate::networking::virtual_service::{Destination, VirtualService};
use crate::path::FieldPath;
use std::collections::HashMap;

/// The DNS suffix of in-cluster service names.
pub const CLUSTER_DOMAIN: &str = "svc.cluster.local";

/// Resolves a destination host as Istio does: a name without dots is a Kubernetes service
/// in the referring object's namespace.
pub fn resolve_host(host: &str, namespace: &str) -> String {
    if host.contains('.') || host == "*" {
        host.to_string()
    } else {
        format!("{host}.{namespace}.{CLUSTER_DOMAIN}")
    }
}

/// Whether `pattern` (possibly `*.suffix`) covers `host`.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(suffix) => host.ends_with(suffix),
        None => pattern == host,
    }
}

/// Runs every cross-resource check.
pub fn analyze(loaded: &[Loaded]) -> Vec<Finding> {
    let mut out = Vec::new();
    duplicates(loaded, &mut out);
    virtual_service_refs(loaded, &mut out);
    provider_refs(loaded, &mut out);
    out
}

/// Providers istiod defines even when MeshConfig lists none (its mesh defaults).
const BUILTIN_PROVIDERS: &[&str] = &["prometheus", "stackdriver", "envoy"];

/// The MeshConfigs among the loaded objects: the `istio` ConfigMap's `data.mesh` and
/// IstioOperator `spec.meshConfig`, with where each came from.
pub fn mesh_configs(loaded: &[Loaded]) -> Vec<(&MeshConfig, &Loaded)> {
    loaded
        .iter()
        .filter_map(|l| match &l.resource {
            Resource::IstioOperator(op) => op.spec.mesh_config.as_ref().map(|m| (m, l)),
            _ => l.embedded_mesh.as_ref().map(|e| (&e.config, l)),
        })
        .collect()
}

/// Telemetry and CUSTOM AuthorizationPolicy name extension providers that MeshConfig must
/// define; istiod silently skips a name it cannot find. Checked only when a MeshConfig is
/// among the inputs.
fn provider_refs(loaded: &[Loaded], out: &mut Vec<Finding>) {
    let meshes = mesh_configs(loaded);
    if meshes.is_empty() {
        return;
    }
    let defined: Vec<&str> = meshes
        .iter()
        .flat_map(|(m, _)| m.extension_providers.iter().map(|p| p.name.as_str()))
        .chain(BUILTIN_PROVIDERS.iter().copied())
        .collect();
    let source = meshes[0].1.resource.object_ref();
    let mut check = |l: &Loaded, path: FieldPath, name: &str| {
        if name.is_empty() || defined.contains(&name) {
            return;
        }
        let mut f = Finding::warning(
            Code::ReferenceNotFound,
            format!("extension provider {name:?} is not defined in meshConfig.extensionProviders ({source}); istiod ignores this reference"),
        )
        .at(path);
        if let Some(c) = crate::suggest::closest(name, defined.iter().copied()) {
            f = f.with_suggestion(format!("did you mean {c:?}?"));
        }
        out.push(l.place(f));
    };
    for l in loaded {
        match &l.resource {
            Resource::Telemetry(t) => {
                let spec = FieldPath::parse("spec");
                let groups = [
                    (
                        "tracing",
                        t.spec
                            .tracing
                            .iter()
                            .map(|x| &x.providers)
                            .collect::<Vec<_>>(),
                    ),
                    (
                        "metrics",
                        t.spec.metrics.iter().map(|x| &x.providers).collect(),
                    ),
                    (
                        "accessLogging",
                        t.spec.access_logging.iter().map(|x| &x.providers).collect(),
                    ),
                ];
                for (field, lists) in groups {
                    for (i, providers) in lists.into_iter().enumerate() {
                        for (j, p) in providers.iter().enumerate() {
                            let path = spec
                                .field(field)
                                .index(i)
                                .field("providers")
                                .index(j)
                                .field("name");
                            check(l, path, &p.name);
                        }
                    }
                }
            }
            Resource::AuthorizationPolicy(ap) => {
                if let Some(p) = &ap.spec.provider {
                    check(l, FieldPath::parse("spec.provider.name"), &p.name);
                }
            }
            _ => {}
        }
    }
}

fn duplicates(loaded: &[Loaded], out: &mut Vec<Finding>) {
    let mut seen: HashMap<(String, Option<String>, String), &Loaded> = HashMap::new();
    for l in loaded {
        let r = l.resource.object_ref();
        if r.name.is_empty() {
            continue;
        }
        let key = (r.kind.clone(), r.namespace.clone(), r.name.clone());
        if let Some(first) = seen.get(&key) {
            let at = first.locate(&FieldPath::root());
            out.push(
                l.place(
                    Finding::new(
                        Severity::Warning,
                        Code::Duplicate,
                        format!("{r} is defined more than once; the last definition wins"),
                    )
                    .with_suggestion(format!("first defined at {at}"))
                    .at(FieldPath::parse("metadata.name")),
                ),
            );
        } else {
            seen.insert(key, l);
        }
    }
}

struct Index<'a> {
    /// (resolved DR host, DR namespace, subset names)
    subsets: Vec<(String, &'a str, Vec<&'a str>)>,
    gateways: Vec<(String, String)>,
}

fn virtual_service_refs(loaded: &[Loaded], out: &mut Vec<Finding>) {
    let mut idx = Index {
        subsets: Vec::new(),
        gateways: Vec::new(),
    };
    for l in loaded {
        let ns = l.resource.namespace().unwrap_or_default();
        match &l.resource {
            Resource::DestinationRule(dr) => idx.subsets.push((
                resolve_host(&dr.spec.host, ns),
                ns,
                dr.spec.subsets.iter().map(|s| s.name.as_str()).collect(),
            )),
            Resource::Gateway(_) => idx
                .gateways
                .push((ns.to_string(), l.resource.name().to_string())),
            _ => {}
        }
    }
    for l in loaded {
        let Resource::VirtualService(vs) = &l.resource else {
            continue;
        };
        let ns = l.resource.namespace().unwrap_or_default();
        check_gateways(l, &vs.spec, ns, &idx, out);
        for (path, d) in destinations(&vs.spec) {
            if d.subset.is_empty() || d.host.is_empty() {
                continue;
            }
            let host = resolve_host(&d.host, ns);
            let rules: Vec<_> = idx
                .subsets
                .iter()
                .filter(|(h, _, _)| host_matches(h, &host))
                .collect();
            if rules.iter().any(|(_, _, s)| s.contains(&d.subset.as_str())) {
                continue;
            }
            let why = if rules.is_empty() {
                format!("no DestinationRule for host {host} is loaded")
            } else {
                let names: Vec<&str> = rules
                    .iter()
                    .flat_map(|(_, _, s)| s.iter().copied())
                    .collect();
                format!(
                    "the DestinationRule for {host} defines subsets [{}]",
                    names.join(", ")
                )
            };
            let mut f = Finding::warning(
                Code::ReferenceNotFound,
                format!("subset {:?} of host {host} is not defined: {why}", d.subset),
            )
            .at(path.field("subset"));
            if let Some(close) = crate::suggest::closest(
                &d.subset,
                rules.iter().flat_map(|(_, _, s)| s.iter().copied()),
            ) {
                f = f.with_suggestion(format!("did you mean subset {close:?}?"));
            } else if rules.is_empty() {
                f = f.with_suggestion(format!(
                    "add a DestinationRule for {host} with subset {:?} (requests to an undefined subset fail with 503)",
                    d.subset
                ));
            }
            out.push(l.place(f));
        }
    }
}

fn check_gateways(
    l: &Loaded,
    vs: &VirtualService,
    ns: &str,
    idx: &Index<'_>,
    out: &mut Vec<Finding>,
) {
    for (i, g) in vs.gateways.iter().enumerate() {
        if g == "mesh" {
            continue;
        }
        let (gns, gname) = match g.split_once('/') {
            Some((n, name)) => (n.to_string(), name.to_string()),
            None => (ns.to_string(), g.clone()),
        };
        if !idx
            .gateways
            .iter()
            .any(|(n, name)| *n == gns && *name == gname)
        {
            out.push(
                l.place(
                    Finding::warning(
                        Code::ReferenceNotFound,
                        format!("gateway {gns}/{gname} is not defined by any loaded Gateway"),
                    )
                    .at(FieldPath::parse("spec.gateways").index(i)),
                ),
            );
        }
    }
}

/// Every destination in a VirtualService with its path.
fn destinations(vs: &VirtualService) -> Vec<(FieldPath, &Destination)> {
    let spec = FieldPath::parse("spec");
    let mut out = Vec::new();
    for (i, r) in vs.http.iter().enumerate() {
        let p = spec.field("http").index(i);
        for (j, d) in r.route.iter().enumerate() {
            if let Some(dest) = &d.destination {
                out.push((p.field("route").index(j).field("destination"), dest));
            }
        }
        if let Some(m) = &r.mirror {
            out.push((p.field("mirror"), m));
        }
        for (j, m) in r.mirrors.iter().enumerate() {
            if let Some(dest) = &m.destination {
                out.push((p.field("mirrors").index(j).field("destination"), dest));
            }
        }
    }
    for (name, routes) in [
        ("tcp", vs.tcp.iter().map(|r| &r.route).collect::<Vec<_>>()),
        ("tls", vs.tls.iter().map(|r| &r.route).collect()),
    ] {
        for (i, route) in routes.into_iter().enumerate() {
            for (j, d) in route.iter().enumerate() {
                if let Some(dest) = &d.destination {
                    out.push((
                        spec.field(name)
                            .index(i)
                            .field("route")
                            .index(j)
                            .field("destination"),
                        dest,
                    ));
                }
            }
        }
    }
    out
}
