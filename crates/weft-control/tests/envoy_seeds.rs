//! The seeds' own configurations (every YAML block of ../shared/seeds, kept as
//! weft-config's fixtures) served by `weft control` to real Envoy 1.40: the blocks Istio
//! rejects are refused by the config store as `weft validate` refuses them, the rest are
//! translated for a sidecar in every namespace they use and for the east-west gateway they
//! declare, and each Envoy must ACK every type it is sent and NACK none. The seeds name
//! services they never define, so the test adds a Kubernetes Service with two pods
//! (versions v1 and v2) for every host their rules route to that nothing defines.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use weft_config::{Loader, Resource, Severity, validate_all};
use weft_control::control::{Options, start};
use weft_testkit::ads::{AdsProxy, IstioNode, istio_bootstrap};
use weft_testkit::proxy::ProxyBinary;
use weft_xds::server::ServerStatus;

const WAIT: Duration = Duration::from_secs(30);
const DOMAIN: &str = "svc.cluster.local";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../weft-config/tests/fixtures/seeds")
}

/// The resources of the blocks that load without errors, as the config store keeps them.
fn accepted() -> Vec<Resource> {
    let mut out = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("seed fixtures")
        .map(|e| e.expect("entry").path())
        .collect();
    names.sort();
    for path in names {
        let text = std::fs::read_to_string(&path).expect("read");
        let mut loader = Loader::new();
        loader.load_str(&path.display().to_string(), &text);
        let mut result = loader.finish();
        validate_all(&mut result);
        if result
            .findings
            .iter()
            .all(|f| f.severity != Severity::Error)
        {
            out.extend(result.resources.into_iter().map(|l| l.resource));
        }
    }
    out
}

/// `(namespace, name)` of a host that names a Kubernetes service, seen from `namespace`.
fn kube_service(host: &str, namespace: &str) -> Option<(String, String)> {
    if host.contains('*') {
        return None;
    }
    match host.split('.').collect::<Vec<_>>()[..] {
        [name] => Some((namespace.to_string(), name.to_string())),
        [name, ns] | [name, ns, "svc"] => Some((ns.to_string(), name.to_string())),
        [name, ns, ..] if host.ends_with(DOMAIN) => Some((ns.to_string(), name.to_string())),
        _ => None,
    }
}

/// Services (and pods) for every host the rules route to that no Service defines.
fn registry(resources: &[Resource]) -> String {
    let mut wanted = BTreeSet::new();
    let mut defined = BTreeSet::new();
    for r in resources {
        let ns = r.namespace().unwrap_or("default");
        match r {
            Resource::DestinationRule(o) => wanted.extend(kube_service(&o.spec.host, ns)),
            Resource::VirtualService(o) => {
                let routed = o.spec.http.iter().flat_map(|h| {
                    h.route
                        .iter()
                        .filter_map(|d| d.destination.as_ref())
                        .map(|d| d.host.as_str())
                });
                for host in o.spec.hosts.iter().map(String::as_str).chain(routed) {
                    wanted.extend(kube_service(host, ns));
                }
            }
            Resource::Service(_) => {
                defined.insert((ns.to_string(), r.name().to_string()));
            }
            _ => {}
        }
    }
    let mut yaml = String::new();
    for (i, (ns, name)) in wanted.difference(&defined).enumerate() {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Service\nmetadata: {{ name: {name}, namespace: {ns} }}\n\
             spec:\n  clusterIP: 10.200.0.{}\n  selector: {{ app: {name} }}\n  ports:\n  \
             - {{ name: http, port: 80, targetPort: 8080 }}\n  - {{ name: http-alt, port: 8080 }}\n  \
             - {{ name: grpc, port: 9090 }}\n",
            i + 1
        ));
        for (j, version) in ["v1", "v2"].iter().enumerate() {
            yaml.push_str(&format!(
                "---\napiVersion: v1\nkind: Pod\nmetadata: {{ name: {name}-{version}, namespace: {ns}, \
                 labels: {{ app: {name}, version: {version} }} }}\nspec: {{ containers: [{{ name: app, image: app }}] }}\n\
                 status: {{ phase: Running, podIP: 10.201.{i}.{} }}\n",
                j + 1
            ));
        }
    }
    yaml
}

fn acked_everything(s: &ServerStatus, node: &str) -> bool {
    s.nodes.get(node).is_some_and(|n| {
        !n.types.is_empty()
            && n.types.values().all(|t| {
                t.sent_version.is_some()
                    && t.acked_version == t.sent_version
                    && t.last_nack.is_none()
            })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_acks_what_the_seeds_configure() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    for entry in std::fs::read_dir(fixtures())? {
        let path = entry?.path();
        std::fs::copy(
            &path,
            dir.path().join(path.file_name().expect("a file name")),
        )?;
    }
    let resources = accepted();
    assert!(
        resources
            .iter()
            .any(|r| matches!(r, Resource::DestinationRule(_)))
            && resources
                .iter()
                .any(|r| matches!(r, Resource::VirtualService(_))),
        "the seeds' rules load"
    );
    std::fs::write(dir.path().join("zz-registry.yaml"), registry(&resources))?;

    let mut options = Options::new(dir.path(), "127.0.0.1:0".parse()?);
    options.mesh.capture_bind = "127.0.0.1".into();
    options.mesh.outbound_port = weft_testkit::ports::free_port()?;
    options.mesh.inbound_port = weft_testkit::ports::free_port()?;
    let (running, serve) = start(&options).await?;
    let serving = tokio::spawn(serve);

    // A sidecar in every namespace the seeds use, and their east-west gateway.
    let mut namespaces: BTreeSet<&str> = resources
        .iter()
        .map(|r| r.namespace().unwrap_or("default"))
        .collect();
    namespaces.insert("default");
    let mut nodes: Vec<IstioNode> = namespaces
        .iter()
        .enumerate()
        .map(|(i, ns)| IstioNode {
            kind: "sidecar",
            pod: format!("client-{i}"),
            namespace: ns.to_string(),
            ip: format!("127.0.0.{}", 50 + i),
            labels: "{ app: client, version: v1 }".into(),
        })
        .collect();
    nodes.push(IstioNode {
        kind: "router",
        pod: "eastwest-0".into(),
        namespace: "istio-system".into(),
        ip: "127.0.0.70".into(),
        labels: "{ istio: eastwestgateway }".into(),
    });
    let envoy = ProxyBinary::envoy()?;
    let port = running.xds_address.port();
    let mut proxies = Vec::new();
    for node in &nodes {
        proxies.push(AdsProxy::start(&envoy, &istio_bootstrap(node, port)).await?);
    }
    for node in &nodes {
        let id = node.id();
        let status = running
            .server
            .wait_for(&format!("{id} to ACK everything"), WAIT, |s| {
                acked_everything(s, &id)
            })
            .await;
        if let Err(e) = status {
            let s = running.server.status();
            panic!("{e}\n{:#?}", s.nodes.get(&id));
        }
    }
    // The rules reached the proxies: 002's circuit breaker on encounter-service. (The
    // east-west gateway's one server terminates ISTIO_MUTUAL TLS, which arrives with
    // inbound mutual TLS; until then it has no listener, and ACKs its clusters.)
    let default = nodes
        .iter()
        .find(|n| n.namespace == "default" && n.kind == "sidecar")
        .expect("a sidecar in default");
    let (_, g) = running.control.generated(&default.id()).expect("generated");
    let cluster = g
        .clusters
        .iter()
        .find(|(n, _)| n == "outbound|80||encounter-service.default.svc.cluster.local")
        .map(|(_, any)| {
            use prost::Message;
            envoy_types::pb::envoy::config::cluster::v3::Cluster::decode(any.value.as_slice())
                .expect("a cluster")
        })
        .expect("encounter-service's cluster");
    let limits = &cluster.circuit_breakers.expect("breakers").thresholds[0];
    assert_eq!(limits.max_connections.map(|v| v.value), Some(100));
    assert_eq!(limits.max_pending_requests.map(|v| v.value), Some(100));
    assert!(cluster.outlier_detection.is_some());
    // 004's `*.local` rule asks for Istio mutual TLS wherever a more specific rule does not.
    let mutual: Vec<&str> = g
        .clusters
        .iter()
        .filter(|(_, any)| {
            use prost::Message;
            envoy_types::pb::envoy::config::cluster::v3::Cluster::decode(any.value.as_slice())
                .expect("a cluster")
                .transport_socket
                .is_some()
        })
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(!mutual.is_empty(), "some cluster takes 004's ISTIO_MUTUAL");
    drop(proxies);
    serving.abort();
    Ok(())
}
