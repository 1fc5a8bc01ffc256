//! Istio configuration → xDS, the way `weft control` serves it, checked against the proxy's own
//! converter. An input is a mesh: either structured (bytes pick building blocks — Services,
//! Pods, EndpointSlices, Endpoints, ServiceEntries, WorkloadEntries, DestinationRules,
//! VirtualServices, Sidecars, Gateways, the `istio` MeshConfig map — rendered as one YAML
//! file each) or, when the first byte is `#`, YAML text whose `---` documents are the files
//! (the seeds are the control-plane tests' meshes). Each file is loaded and validated on its
//! own and dropped on any error, as the control plane's config store does, so what is
//! translated is exactly what `weft control` would serve. `#proxy KIND NAMESPACE IP [k=v,..]`
//! and `#capture-bind IP` lines pick the proxies (KIND: sidecar, router, grpc); without them
//! two sidecars (the first running pods of two namespaces), an ingress router and a gRPC
//! client are used. A finding prints its input in this text form, ready to replay;
//! `WEFT_FUZZ_VERBOSE=1` also prints which files were not served and what each proxy got.
//!
//! For each proxy, `generate` must not panic, and every resource it yields must have the
//! type and name it is listed under, names must be unique per type, and weft-proxy must
//! accept it: the supported-field check and the converter one by one, then the whole set
//! applied to a fresh store in ADS order (clusters, endpoints, listeners with `bind_to_port:
//! false` so no socket is bound, routes), after which every route and endpoint assignment the
//! store waits for must have been sent. A proxyless gRPC client's API listeners are meant for
//! gRPC, not weft-proxy: their connection manager is converted instead, and its RDS name must
//! be among the routes.
#![no_main]

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Once};

use arbitrary::Unstructured;
use arc_swap::ArcSwap;
use envoy_types::pb::envoy::config::cluster::v3::Cluster as PbCluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener as PbListener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use envoy_types::pb::google::protobuf::{Any, BoolValue};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use serde_json::{Map, Value, json};
use weft_config::{Loader, Resource, Severity, validate_all};
use weft_control::node::{Generator, Proxy, ProxyType};
use weft_control::registry::{Registry, Workload};
use weft_control::translate::{Generated, MeshSettings, MeshView, generate};
use weft_proxy::config::snapshot::Snapshot;
use weft_proxy::config::store::Store;
use weft_proxy::model::ConvertError;
use weft_proxy::model::cluster::ClusterConfig;
use weft_proxy::model::endpoint::endpoints;
use weft_proxy::model::hcm::HcmConfig;
use weft_proxy::model::listener::ListenerConfig;
use weft_proxy::model::route::RouteConfig;
use weft_proxy::model::support::check_message;
use weft_yaml::FieldPath;

/// At most this many configuration files per structured input.
const MAX_FILES: usize = 20;
/// At most this many `#proxy` lines are honoured (crossover of text inputs piles them up).
const MAX_PROXIES: usize = 4;
/// At most this many characters in a string taken from the input rather than a vocabulary.
const MAX_FREE_TEXT: usize = 24;

fuzz_target!(|data: &[u8]| {
    install_hook();
    let case = if data.first() == Some(&b'#') {
        match std::str::from_utf8(data) {
            Ok(text) => Case::from_text(text),
            Err(_) => return,
        }
    } else {
        Case::from_bytes(data)
    };
    CURRENT.with(|c| *c.borrow_mut() = case.render());
    let findings = run(&case);
    if !findings.is_empty() {
        panic!(
            "{} finding(s):\n- {}",
            findings.len(),
            findings.join("\n- ")
        );
    }
});

thread_local! {
    /// The input being run, in text form, for the panic hook to print.
    static CURRENT: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Prints the current mesh before libFuzzer's hook reports the panic and aborts, so every
/// finding (a panic in translation or a rejection) comes with its input in replayable form.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let next = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            CURRENT.with(|c| {
                if let Ok(text) = c.try_borrow() {
                    eprintln!("==== mesh (replay with this as the input file) ====\n{text}\n====");
                }
            });
            next(info);
        }));
    });
}

// ---------------------------------------------------------------------------------------
// The input: configuration files and the proxies that ask for their xDS.
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Sidecar,
    Router,
    Grpc,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Sidecar => "sidecar",
            Kind::Router => "router",
            Kind::Grpc => "grpc",
        }
    }
}

#[derive(Clone, Debug)]
struct ProxySpec {
    kind: Kind,
    namespace: String,
    ip: IpAddr,
    labels: BTreeMap<String, String>,
}

struct Case {
    files: Vec<String>,
    proxies: Vec<ProxySpec>,
    capture_bind: String,
    /// Proxies were not given: derive them from the served pods.
    derive_proxies: bool,
    /// A text input as given, which is its own rendering.
    text: Option<String>,
}

impl Case {
    fn from_text(text: &str) -> Self {
        let mut proxies = Vec::new();
        let mut capture_bind = "0.0.0.0".to_string();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("#proxy ")
                && proxies.len() < MAX_PROXIES
            {
                proxies.extend(parse_proxy(rest));
            } else if let Some(rest) = line.strip_prefix("#capture-bind ")
                && let Ok(ip) = rest.trim().parse::<IpAddr>()
            {
                // A flag of `weft control`, which takes only an IP.
                capture_bind = ip.to_string();
            }
        }
        let mut files = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            if line.trim_end() == "---" {
                files.push(std::mem::take(&mut current));
            } else {
                current.push_str(line);
                current.push('\n');
            }
        }
        files.push(current);
        files.retain(|f| {
            f.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        });
        Case {
            files,
            derive_proxies: proxies.is_empty(),
            proxies,
            capture_bind,
            text: Some(text.to_string()),
        }
    }

    fn from_bytes(data: &[u8]) -> Self {
        let mut g = Gen {
            u: Unstructured::new(data),
        };
        // Two sidecars in different namespaces.
        let first = g.range(0, 2);
        let second = (first + 1 + g.range(0, 1)) % 3;
        let mut proxies = Vec::new();
        for (kind, ns) in [
            (Kind::Sidecar, NAMESPACES[first]),
            (Kind::Sidecar, NAMESPACES[second]),
            (Kind::Router, g.pick(NAMESPACES)),
            (Kind::Grpc, g.pick(NAMESPACES)),
        ] {
            let ip = g.pick(POD_IPS).parse().expect("a valid IP");
            let labels = if kind == Kind::Router {
                BTreeMap::from([
                    (
                        "istio".to_string(),
                        g.pick(&["ingressgateway", "egressgateway"]).into(),
                    ),
                    ("app".to_string(), "istio-ingressgateway".into()),
                ])
            } else {
                g.string_labels()
            };
            proxies.push(ProxySpec {
                kind,
                namespace: ns.to_string(),
                ip,
                labels,
            });
        }
        let capture_bind = g.pick(&["0.0.0.0", "127.0.0.1"]).to_string();
        let count = g.range(1, MAX_FILES);
        let mut files = Vec::new();
        for _ in 0..count {
            if g.u.is_empty() {
                break;
            }
            let doc = match g.range(0, 12) {
                0 | 1 => g.service(),
                2 => g.pod(),
                3 => g.endpoint_slice(),
                4 => g.endpoints(),
                5 => g.service_entry(),
                6 => g.workload_entry(),
                7 => g.destination_rule(),
                8 | 9 => {
                    if g.range(0, 4) == 0 {
                        g.delegate()
                    } else {
                        g.virtual_service()
                    }
                }
                10 => g.sidecar(),
                11 => g.gateway(),
                _ => g.mesh_config(),
            };
            files.push(serde_json::to_string(&doc).expect("JSON") + "\n");
        }
        Case {
            files,
            proxies,
            capture_bind,
            derive_proxies: false,
            text: None,
        }
    }

    /// The input as text input, proxies included: replaying it runs the same case.
    fn render(&self) -> String {
        if let Some(text) = &self.text {
            return text.clone();
        }
        let mut out = String::from("# translate fuzz case\n");
        for p in &self.proxies {
            let labels: Vec<String> = p.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!(
                "#proxy {} {} {} {}\n",
                p.kind.word(),
                p.namespace,
                p.ip,
                labels.join(",")
            ));
        }
        out.push_str(&format!("#capture-bind {}\n", self.capture_bind));
        out.push_str(&self.files.join("---\n"));
        out
    }
}

fn parse_proxy(line: &str) -> Option<ProxySpec> {
    let mut words = line.split_whitespace();
    let kind = match words.next()? {
        "sidecar" => Kind::Sidecar,
        "router" => Kind::Router,
        "grpc" => Kind::Grpc,
        _ => return None,
    };
    let namespace = words.next().filter(|n| kube_name(n))?.to_string();
    let ip = words.next()?.parse().ok()?;
    let labels = words
        .next()
        .unwrap_or("")
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, v)| kube_name(k) && (v.is_empty() || kube_name(v)))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Some(ProxySpec {
        kind,
        namespace,
        ip,
        labels,
    })
}

/// What a Kubernetes namespace name or label may hold; a `#proxy` line with anything else
/// is ignored, as no real workload could have it.
fn kube_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._/".contains(&b))
}

/// Two sidecars (the first running pod with an IP of each of two namespaces, else fixed
/// workloads), the ingress gateway and a gRPC client.
fn derived_proxies(resources: &[&Resource]) -> Vec<ProxySpec> {
    let mut sidecars: Vec<ProxySpec> = Vec::new();
    for r in resources {
        let Resource::Pod(p) = r else { continue };
        let Some(status) = &p.status else { continue };
        if status.phase.as_deref().is_some_and(|ph| ph != "Running") {
            continue;
        }
        let Some(ip) = status.pod_ip.as_deref().and_then(|ip| ip.parse().ok()) else {
            continue;
        };
        let namespace = p
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        if sidecars.len() < 2 && sidecars.iter().all(|s| s.namespace != namespace) {
            sidecars.push(ProxySpec {
                kind: Kind::Sidecar,
                namespace,
                ip,
                labels: p.metadata.labels.clone().unwrap_or_default(),
            });
        }
    }
    for (ns, ip) in [("default", "10.1.0.9"), ("prod", "10.1.0.10")] {
        if sidecars.len() < 2 && sidecars.iter().all(|s| s.namespace != ns) {
            sidecars.push(ProxySpec {
                kind: Kind::Sidecar,
                namespace: ns.into(),
                ip: ip.parse().expect("IP"),
                labels: BTreeMap::from([("app".into(), "sleep".into())]),
            });
        }
    }
    sidecars.push(ProxySpec {
        kind: Kind::Router,
        namespace: "istio-system".into(),
        ip: "10.1.0.100".parse().expect("IP"),
        labels: BTreeMap::from([
            ("istio".into(), "ingressgateway".into()),
            ("app".into(), "istio-ingressgateway".into()),
        ]),
    });
    sidecars.push(ProxySpec {
        kind: Kind::Grpc,
        namespace: "default".into(),
        ip: "10.1.0.101".parse().expect("IP"),
        labels: BTreeMap::from([("app".into(), "grpc-client".into())]),
    });
    sidecars
}

fn proxy(spec: &ProxySpec, index: usize) -> Proxy {
    let ns = &spec.namespace;
    let (proxy_type, generator) = match spec.kind {
        Kind::Sidecar => (ProxyType::Sidecar, Generator::Envoy),
        Kind::Router => (ProxyType::Router, Generator::Envoy),
        Kind::Grpc => (ProxyType::Sidecar, Generator::Grpc),
    };
    let workload = format!("{}-{index}", spec.kind.word());
    let kind = if proxy_type == ProxyType::Router {
        "router"
    } else {
        "sidecar"
    };
    Proxy {
        id: format!("{kind}~{}~{workload}.{ns}~{ns}.svc.cluster.local", spec.ip),
        proxy_type,
        generator,
        workload_name: workload,
        namespace: ns.clone(),
        ips: vec![spec.ip],
        dns_domain: format!("{ns}.svc.cluster.local"),
        labels: spec.labels.clone(),
        service_account: "default".into(),
        cluster_id: String::new(),
        istio_version: String::new(),
        // As istio-agent reports it: from the workload's topology labels.
        locality: weft_control::registry::locality_of(&spec.labels),
    }
}

// ---------------------------------------------------------------------------------------
// Serving and checking.
// ---------------------------------------------------------------------------------------

/// Loads and validates every file on its own, keeping those without errors (the control
/// plane's config store), then translates for every proxy and checks the result.
fn run(case: &Case) -> Vec<String> {
    let verbose = std::env::var_os("WEFT_FUZZ_VERBOSE").is_some();
    let mut served = Vec::new();
    for (i, text) in case.files.iter().enumerate() {
        let mut loader = Loader::new();
        loader.load_str(&format!("file-{i}.yaml"), text);
        let mut result = loader.finish();
        validate_all(&mut result);
        let errors: Vec<String> = result
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(ToString::to_string)
            .collect();
        if errors.is_empty() {
            served.extend(result.resources);
        } else if verbose {
            eprintln!("file-{i} not served: {}", errors.join("; "));
        }
    }
    if verbose {
        eprintln!(
            "served {} resources from {} files",
            served.len(),
            case.files.len()
        );
    }
    let refs: Vec<&Resource> = served.iter().map(|l| &l.resource).collect();
    let mut mesh = MeshSettings {
        capture_bind: case.capture_bind.clone(),
        ..MeshSettings::default()
    };
    if let Some(m) = served.iter().find_map(|l| l.embedded_mesh.as_ref()) {
        mesh.apply(&m.config);
    }
    let specs = if case.derive_proxies {
        derived_proxies(&refs)
    } else {
        case.proxies.clone()
    };
    let proxies: Vec<Proxy> = specs.iter().enumerate().map(|(i, s)| proxy(s, i)).collect();
    // Every connected proxy is a workload, as the push layer registers them.
    let workloads: Vec<Workload> = proxies
        .iter()
        .map(|p| Workload {
            name: p.workload_name.clone(),
            namespace: p.namespace.clone(),
            labels: p.labels.clone(),
            ips: p.ips.clone(),
            service_account: p.service_account.clone(),
        })
        .collect();
    let registry = Registry::build(&refs, &workloads, &mesh.domain);
    let view = MeshView::new(&refs, registry, mesh);
    let mut findings = Vec::new();
    for p in &proxies {
        let generated = generate(p, &view);
        if verbose {
            eprintln!(
                "{}: {} listeners, {} routes, {} clusters, {} assignments",
                p.id,
                generated.listeners.len(),
                generated.routes.len(),
                generated.clusters.len(),
                generated.endpoints.len()
            );
        }
        let mut out = Vec::new();
        check(p, &generated, &mut out);
        findings.extend(out.into_iter().map(|f| format!("{}: {f}", p.id)));
    }
    findings
}

/// Decodes `list` as `M`s, checking each one's type URL, its name against the name it is
/// listed under, and that no name repeats.
fn decode_all<M: Message + Default + prost::Name>(
    what: &str,
    list: &[(String, Any)],
    name_of: impl Fn(&M) -> &str,
    findings: &mut Vec<String>,
) -> Vec<M> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (name, any) in list {
        if !seen.insert(name.as_str()) {
            findings.push(format!("{what} '{name}' is sent twice"));
        }
        if any.type_url != M::type_url() {
            findings.push(format!("{what} '{name}' has type {}", any.type_url));
            continue;
        }
        match M::decode(any.value.as_slice()) {
            Ok(m) => {
                if name_of(&m) != name {
                    findings.push(format!("{what} '{name}' is named '{}' inside", name_of(&m)));
                }
                out.push(m);
            }
            Err(e) => findings.push(format!("{what} '{name}' does not decode: {e}")),
        }
    }
    out
}

/// What weft-proxy says about one resource: the supported-field check, then the converter.
fn complaints<M: Message + prost::Name>(
    msg: &M,
    convert: impl Fn(&M) -> Result<(), ConvertError>,
) -> Vec<String> {
    let mut out: Vec<String> = check_message(msg)
        .iter()
        .map(|e| format!("unsupported: {e}"))
        .collect();
    if let Err(e) = convert(msg) {
        out.push(format!("converter: {e}"));
    }
    out
}

/// A DestinationRule's `caCrl` is a file the proxy reads when it converts the cluster (as
/// Envoy does, refusing the cluster when it is missing), and the generated paths name no
/// file here. The CRL is therefore set aside — the socket must still decode as an
/// `UpstreamTlsContext` — and the rest of the TLS context must be accepted as any other.
fn without_crl(c: &PbCluster, findings: &mut Vec<String>) -> PbCluster {
    use envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType;
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext;
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::common_tls_context::ValidationContextType;
    let mut c = c.clone();
    let Some(socket) = c.transport_socket.as_mut() else {
        return c;
    };
    let Some(ConfigType::TypedConfig(any)) = socket.config_type.as_mut() else {
        return c;
    };
    let context = match UpstreamTlsContext::decode(any.value.as_slice()) {
        Ok(ctx) if socket.name == "envoy.transport_sockets.tls" => ctx,
        other => {
            findings.push(format!(
                "cluster '{}': transport socket {} is not an UpstreamTlsContext: {other:?}",
                c.name, socket.name
            ));
            return c;
        }
    };
    let mut context = context;
    if let Some(common) = context.common_tls_context.as_mut() {
        match common.validation_context_type.as_mut() {
            Some(ValidationContextType::ValidationContext(v)) => v.crl = None,
            Some(ValidationContextType::CombinedValidationContext(v)) => {
                if let Some(d) = v.default_validation_context.as_mut() {
                    d.crl = None;
                }
            }
            _ => {}
        }
    }
    any.value = context.encode_to_vec();
    c
}

/// The static `sds-grpc` cluster of the bootstrap istio-agent writes: a Unix socket.
fn sds_grpc() -> PbCluster {
    use envoy_types::pb::envoy::config::cluster::v3::cluster::{
        ClusterDiscoveryType, DiscoveryType,
    };
    use envoy_types::pb::envoy::config::core::v3::{Address, Pipe, address};
    use envoy_types::pb::envoy::config::endpoint::v3::{
        Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint::HostIdentifier,
    };
    PbCluster {
        name: "sds-grpc".into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Static as i32)),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: "sds-grpc".into(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![LbEndpoint {
                    host_identifier: Some(HostIdentifier::Endpoint(Endpoint {
                        address: Some(Address {
                            address: Some(address::Address::Pipe(Pipe {
                                path: "./var/run/secrets/workload-spiffe-uds/socket".into(),
                                mode: 0,
                            })),
                        }),
                        ..Default::default()
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Judges one resource; returns it for the store when weft-proxy accepts it, else records
/// the rejection as a finding.
fn judge<M: Message + prost::Name + Clone>(
    what: &str,
    name: &str,
    msg: &M,
    convert: impl Fn(&M) -> Result<(), ConvertError>,
    findings: &mut Vec<String>,
) -> Option<M> {
    let errors = complaints(msg, &convert);
    if errors.is_empty() {
        return Some(msg.clone());
    }
    findings.extend(errors.iter().map(|e| format!("{what} '{name}': {e}")));
    None
}

fn check(proxy: &Proxy, g: &Generated, findings: &mut Vec<String>) {
    let listeners: Vec<PbListener> =
        decode_all("listener", &g.listeners, |l: &PbListener| &l.name, findings);
    let routes: Vec<RouteConfiguration> = decode_all(
        "route configuration",
        &g.routes,
        |r: &RouteConfiguration| &r.name,
        findings,
    );
    let clusters: Vec<PbCluster> =
        decode_all("cluster", &g.clusters, |c: &PbCluster| &c.name, findings);
    let assignments: Vec<ClusterLoadAssignment> = decode_all(
        "cluster load assignment",
        &g.endpoints,
        |a: &ClusterLoadAssignment| &a.cluster_name,
        findings,
    );
    let route_names: BTreeSet<&str> = routes.iter().map(|r| r.name.as_str()).collect();
    let assignment_names: BTreeSet<&str> = assignments
        .iter()
        .map(|a| a.cluster_name.as_str())
        .collect();

    // One by one, as `weft-proxy validate` would judge them; what passes goes to the store.
    let clusters: Vec<PbCluster> = clusters.iter().map(|c| without_crl(c, findings)).collect();
    let clusters: Vec<PbCluster> = clusters
        .iter()
        .filter_map(|c| {
            let convert = |c: &PbCluster| ClusterConfig::new(c).map(drop);
            judge("cluster", &c.name, c, convert, findings)
        })
        .collect();
    let root = FieldPath::root();
    let convert_assignment = |a: &ClusterLoadAssignment| {
        let eps = endpoints(a, &root)?;
        match eps.iter().find(|e| e.address.ip().is_none()) {
            Some(bad) => Err(ConvertError::new(
                &root,
                format!("malformed IP address: {}", bad.address.host),
            )),
            None => Ok(()),
        }
    };
    let assignments: Vec<ClusterLoadAssignment> = assignments
        .iter()
        .filter_map(|a| {
            let name = &a.cluster_name;
            judge(
                "cluster load assignment",
                name,
                a,
                convert_assignment,
                findings,
            )
        })
        .collect();
    let routes: Vec<RouteConfiguration> = routes
        .iter()
        .filter_map(|r| {
            let convert = |r: &RouteConfiguration| RouteConfig::new(r).map(drop);
            judge("route configuration", &r.name, r, convert, findings)
        })
        .collect();
    let grpc = proxy.generator == Generator::Grpc;
    let mut listeners_to_apply = Vec::new();
    for l in &listeners {
        if grpc {
            api_listener(l, &route_names, findings);
            continue;
        }
        let convert = |l: &PbListener| ListenerConfig::new(l).map(drop);
        listeners_to_apply.extend(judge("listener", &l.name, l, convert, findings));
    }

    // All together, in the order an ADS proxy takes them.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let mut store = Store::new(
        Arc::new(weft_proxy::stats::Registry::default()),
        Arc::new(ArcSwap::from_pointee(Snapshot::default())),
    );
    let mut apply = |what: &str, r: Result<(), weft_proxy::config::store::Rejected>| {
        if let Err(e) = r {
            findings.push(format!("store rejected {what}: {e}"));
        }
    };
    // An Istio bootstrap's secret agent, which the TLS clusters take their secrets from.
    apply(
        "the bootstrap's sds-grpc",
        store.apply_clusters(vec![sds_grpc()], &[], "", true),
    );
    apply("clusters", store.apply_clusters(clusters, &[], "1", false));
    apply("endpoints", store.apply_endpoints(assignments, &[], "1"));
    if !grpc {
        let unbound = listeners_to_apply
            .into_iter()
            .map(|mut l| {
                l.bind_to_port = Some(BoolValue { value: false });
                l
            })
            .collect();
        apply("listeners", store.apply_listeners(unbound, &[], "1", false));
    }
    apply("routes", store.apply_routes(routes, &[], "1"));
    // What the proxy then subscribes to must have been sent, or it never finishes warming.
    for name in store.wanted_routes() {
        if !route_names.contains(name.as_str()) {
            findings.push(format!(
                "route configuration '{name}' is wanted but not sent"
            ));
        }
    }
    for name in store.wanted_endpoints() {
        if !assignment_names.contains(name.as_str()) {
            findings.push(format!(
                "cluster load assignment '{name}' is wanted but not sent"
            ));
        }
    }
    drop(store);
}

/// A proxyless gRPC client's listener: an API listener whose connection manager weft-proxy's
/// converter must take, naming a route configuration that is sent.
fn api_listener(l: &PbListener, routes: &BTreeSet<&str>, findings: &mut Vec<String>) {
    let Some(any) = l
        .api_listener
        .as_ref()
        .and_then(|a| a.api_listener.as_ref())
    else {
        findings.push(format!("gRPC listener '{}' has no api_listener", l.name));
        return;
    };
    let Ok(hcm) = HttpConnectionManager::decode(any.value.as_slice()) else {
        findings.push(format!(
            "gRPC listener '{}': api_listener is not an HCM",
            l.name
        ));
        return;
    };
    if let Ok(h) = HcmConfig::new(&hcm, &FieldPath::root())
        && let Some(rds) = h.rds_name()
        && !routes.contains(rds)
    {
        findings.push(format!(
            "gRPC listener '{}': route '{rds}' is not sent",
            l.name
        ));
    }
    let convert = |h: &HttpConnectionManager| HcmConfig::new(h, &FieldPath::root()).map(drop);
    judge("gRPC listener's HCM", &l.name, &hcm, convert, findings);
}

// ---------------------------------------------------------------------------------------
// Structured meshes: vocabularies that make references meet. Each has common values and
// odd ones (invalid, reserved or extreme) picked one time in twelve; one string in 32 is
// free text from the input.
// ---------------------------------------------------------------------------------------

#[rustfmt::skip]
mod vocab {
    pub const NAMESPACES: &[&str] = &["default", "prod", "istio-system"];
    pub const SERVICE_NAMES: &[&str] = &["web", "db", "reviews", "api", "echo"];
    pub const POD_IPS: &[&str] = &["10.1.0.1", "10.1.0.2", "10.1.0.9", "10.1.0.10", "127.0.0.21", "fd00::1", "192.0.2.9"];
    pub const VIPS: &[&str] = &["10.0.0.1", "10.0.0.2", "10.0.0.3", "fd00::a", "240.240.0.1"];
    pub const PORTS: &[i64] = &[80, 443, 8080, 9080, 5432, 7070, 3306, 53, 15001, 15006, 15021, 15090, 1, 65535];
    pub const PORTS_ODD: &[i64] = &[0, 70000];
    pub const PORT_NAMES: &[&str] = &["http", "http-web", "grpc", "grpc-web", "http2", "tcp", "tls", "https", "mongo", "redis", "mysql", "web", "tcp-db", "udp-dns"];
    pub const PORT_NAMES_ODD: &[&str] = &["", "HTTP"];
    pub const TARGET_PORT_NAMES: &[&str] = &["http", "web", "grpc", "metrics"];
    pub const APP_PROTOCOLS: &[&str] = &["http", "http2", "grpc", "kubernetes.io/h2c", "kubernetes.io/ws", "tcp", "tls", "https"];
    pub const SE_PROTOCOLS: &[&str] = &["HTTP", "HTTP2", "GRPC", "GRPC-WEB", "TCP", "TLS", "HTTPS", "MONGO", "REDIS", "MYSQL", "http"];
    pub const SE_PROTOCOLS_ODD: &[&str] = &["UDP", ""];
    pub const HOSTS: &[&str] = &["web", "db", "reviews", "web.prod.svc.cluster.local", "db.default.svc.cluster.local", "reviews.default.svc.cluster.local", "echo.istio-system.svc.cluster.local", "api.example.com", "*.example.com", "db.example.com", "rr.example.com", "unknown.example.com", "*.prod.svc.cluster.local", "web.prod"];
    pub const HOSTS_ODD: &[&str] = &["*", "10.9.0.1"];
    pub const SE_HOSTS: &[&str] = &["api.example.com", "*.example.com", "db.example.com", "rr.example.com", "web.prod.svc.cluster.local", "reviews", "mongo.internal", "ext.example.org"];
    pub const SE_ADDRESSES: &[&str] = &["10.9.0.1", "10.9.0.2/32", "10.9.0.0/24", "fd00::9"];
    pub const WORKLOAD_ADDRESSES: &[&str] = &["10.1.0.1", "10.1.0.9", "192.0.2.9", "fd00::1", "db-1.example.com", "api.example.com"];
    pub const WORKLOAD_ADDRESSES_ODD: &[&str] = &["unix:///var/run/sock", ""];
    pub const SUBSETS: &[&str] = &["v1", "v2", "v3", "canary", "a-b"];
    pub const VERSIONS: &[&str] = &["v1", "v2", "v3"];
    pub const LABEL_KEYS: &[&str] = &["app", "version", "istio-locality", "topology.kubernetes.io/zone", "topology.kubernetes.io/region"];
    pub const LABEL_VALUES: &[&str] = &["web", "db", "reviews", "v1", "v2", "v3", "us-east.a.b", "eu"];
    pub const DURATIONS: &[&str] = &["1s", "3s", "0.5s", "1ms", "100ms", "10m", "1h", "1.5s", "0.001s", "2.000000001s"];
    pub const DURATIONS_ODD: &[&str] = &["0s", "100000h", "0.1ms", "1ns", "-1s"];
    pub const URIS: &[&str] = &["/", "/api", "/productpage", "/a/b/", "/v1?x=1", "/%2F", "//"];
    pub const URIS_ODD: &[&str] = &["", "/\u{fc}", "no-slash", "/a b"];
    // RE2 and Rust's regex differ (`\Q..\E`, repetition limits, program size): the odd ones
    // probe where Istio's validation and the proxy's matcher may disagree.
    pub const REGEXES: &[&str] = &[".*", "/api/.*", "^/v[0-9]+$", "(a|b)+", "\\d+", "a{2,}", "(?i)abc", "\\p{L}+", "[^/]+", "(?P<x>a)", "[[:alpha:]]+"];
    pub const REGEXES_ODD: &[&str] = &["[", "a**", "", "*", "(?=a)", "\\C", "\\Qa.b\\E", "a{1001}", "\\w{300}", "(\\pL{50}){20}", "(?U)a+"];
    pub const HEADER_NAMES: &[&str] = &["x-canary", "X-Upper", "cookie", "x_under", "x-mesh-only", "user-agent"];
    pub const HEADER_NAMES_ODD: &[&str] = &[":path", ":authority", "host", "", "te", "connection", "content-length"];
    pub const HEADER_VALUES: &[&str] = &["1", "true", "a,b", "\u{e9}"];
    pub const HEADER_VALUES_ODD: &[&str] = &["", " spaced "];
    pub const SET_HEADERS: &[&str] = &["x-added", "x-envoy-foo", "x-b3-traceid", "X-Mixed"];
    pub const SET_HEADERS_ODD: &[&str] = &["Host", ":authority", "content-length", ""];
    pub const AUTHORITIES: &[&str] = &["example.com", "example.com:8080", "*.example.com"];
    pub const AUTHORITIES_ODD: &[&str] = &["", "[::1]:80", "a b", "*"];
    pub const WEIGHTS: &[i64] = &[0, 1, 25, 50, 75, 100];
    pub const WEIGHTS_ODD: &[i64] = &[-1, 2147483647];
    pub const RETRY_ON: &[&str] = &["5xx", "gateway-error,503", "connect-failure,refused-stream", "retriable-4xx", "reset", "503", "cancelled,deadline-exceeded,internal,resource-exhausted,unavailable"];
    pub const RETRY_ON_ODD: &[&str] = &["bogus", "", "5xx,,503"];
    pub const GRPC_STATUS: &[&str] = &["UNAVAILABLE", "14", "NOT_FOUND", "DATA_LOSS"];
    pub const GRPC_STATUS_ODD: &[&str] = &["bogus", "17"];
    pub const GATEWAY_REFS: &[&str] = &["mesh", "gw", "istio-system/gw", "default/gw", "gw.prod.svc.cluster.local"];
    pub const GATEWAY_REFS_ODD: &[&str] = &["./gw", "*/gw"];
    pub const EGRESS_HOSTS: &[&str] = &["./*", "istio-system/*", "*/api.example.com", "~/*", "*/*", "prod/web.prod.svc.cluster.local", "default/*.example.com"];
    pub const SERVER_HOSTS: &[&str] = &["*", "api.example.com", "*.example.com", "./web.prod.svc.cluster.local", "*/reviews.default.svc.cluster.local", "prod/*"];
    pub const PERCENTAGES: &[f64] = &[0.0, 0.5, 1.0, 50.0, 100.0, 0.0001, 1e-9, 99.99999];
    pub const STATUSES: &[i64] = &[200, 204, 404, 503];
    pub const STATUSES_ODD: &[i64] = &[99, 600, 1000];
}

use vocab::*;

/// A structured-input reader: each decision takes a byte or two of the input, and an
/// exhausted input decides the first option.
struct Gen<'a> {
    u: Unstructured<'a>,
}

impl Gen<'_> {
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        self.u.int_in_range(lo..=hi).unwrap_or(lo)
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.range(0, xs.len() - 1)]
    }

    /// Mostly `common`, one time in twelve `odd`.
    fn pick2<T: Copy>(&mut self, common: &[T], odd: &[T]) -> T {
        if odd.is_empty() || self.range(0, 11) != 0 {
            self.pick(common)
        } else {
            self.pick(odd)
        }
    }

    fn chance(&mut self) -> bool {
        self.u.arbitrary::<bool>().unwrap_or(false)
    }

    /// A string from the vocabularies, or (one time in 32) free text from the input.
    fn text(&mut self, common: &[&str], odd: &[&str]) -> String {
        if self.range(0, 31) != 0 {
            return self.pick2(common, odd).to_string();
        }
        let len = self.range(0, MAX_FREE_TEXT);
        (0..len)
            .map(|_| match self.range(0, 99) {
                0..=94 => char::from(0x20 + self.range(0, 94) as u8),
                95 => '\u{e9}',
                96 => '\u{2603}',
                97 => '\t',
                98 => '\n',
                _ => '\u{0}',
            })
            .collect()
    }

    fn maybe(&mut self, v: impl FnOnce(&mut Self) -> Value) -> Option<Value> {
        self.chance().then(|| v(self))
    }

    fn list(&mut self, max: usize, mut item: impl FnMut(&mut Self) -> Value) -> Value {
        let n = self.range(0, max);
        Value::Array((0..n).map(|_| item(self)).collect())
    }

    fn list1(&mut self, max: usize, mut item: impl FnMut(&mut Self) -> Value) -> Value {
        let n = self.range(1, max);
        Value::Array((0..n).map(|_| item(self)).collect())
    }

    fn port(&mut self) -> Value {
        json!(self.pick2(PORTS, PORTS_ODD))
    }

    fn port_name(&mut self) -> Option<Value> {
        let name = self.pick2(PORT_NAMES, PORT_NAMES_ODD);
        (!name.is_empty()).then(|| json!(name))
    }

    fn duration(&mut self) -> Value {
        json!(self.text(DURATIONS, DURATIONS_ODD))
    }

    fn string_labels(&mut self) -> BTreeMap<String, String> {
        let n = self.range(0, 2);
        (0..n)
            .map(|_| {
                (
                    self.pick(LABEL_KEYS).to_string(),
                    self.pick(LABEL_VALUES).to_string(),
                )
            })
            .collect()
    }

    fn labels(&mut self) -> Value {
        let mut m = Map::new();
        m.insert("app".into(), json!(self.pick(SERVICE_NAMES)));
        for (k, v) in self.string_labels() {
            m.insert(k, json!(v));
        }
        Value::Object(m)
    }

    fn app_selector(&mut self) -> Value {
        json!({ "app": self.pick(SERVICE_NAMES) })
    }

    fn meta(&mut self, name: &str) -> Value {
        json!({ "name": name, "namespace": self.pick(NAMESPACES) })
    }

    /// Metadata named `PREFIX-N`, N at most `max`.
    fn numbered(&mut self, prefix: &str, max: usize) -> Value {
        let name = format!("{prefix}-{}", self.range(0, max));
        self.meta(&name)
    }

    fn export_to(&mut self) -> Option<Value> {
        self.maybe(|g| json!([g.pick(&[".", "*", "prod", "default"])]))
    }

    fn object(api: &str, kind: &str, meta: Value, body: Vec<(&str, Value)>) -> Value {
        let mut m = Map::new();
        m.insert("apiVersion".into(), json!(api));
        m.insert("kind".into(), json!(kind));
        m.insert("metadata".into(), meta);
        for (k, v) in body {
            m.insert(k.into(), v);
        }
        Value::Object(m)
    }

    fn istio(kind: &str, meta: Value, spec: Value) -> Value {
        Gen::object("networking.istio.io/v1", kind, meta, vec![("spec", spec)])
    }

    /// A mapping of the given optional fields, leaving out the absent ones.
    fn fields(entries: Vec<(&str, Option<Value>)>) -> Value {
        Value::Object(
            entries
                .into_iter()
                .filter_map(|(k, v)| Some((k.to_string(), v?)))
                .collect(),
        )
    }

    fn service(&mut self) -> Value {
        let name = self.pick(SERVICE_NAMES);
        let meta = self.meta(name);
        let cluster_ip = match self.range(0, 4) {
            0 | 1 => Some(json!(self.pick(VIPS))),
            2 => Some(json!("None")),
            _ => None,
        };
        let ports = self.list1(3, |g| {
            Gen::fields(vec![
                ("name", g.port_name()),
                ("port", Some(g.port())),
                (
                    "targetPort",
                    g.maybe(|g| {
                        if g.chance() {
                            g.port()
                        } else {
                            json!(g.pick(TARGET_PORT_NAMES))
                        }
                    }),
                ),
                ("protocol", g.maybe(|g| json!(g.pick(&["TCP", "UDP"])))),
                ("appProtocol", g.maybe(|g| json!(g.pick(APP_PROTOCOLS)))),
            ])
        });
        let mut spec = Gen::fields(vec![
            ("clusterIP", cluster_ip),
            ("selector", self.maybe(Gen::labels)),
            ("ports", Some(ports)),
            (
                "type",
                self.maybe(|g| json!(g.pick(&["ClusterIP", "NodePort", "ExternalName"]))),
            ),
        ]);
        if spec.get("type") == Some(&json!("ExternalName")) {
            spec["externalName"] = json!("api.example.com");
        }
        Gen::object("v1", "Service", meta, vec![("spec", spec)])
    }

    fn pod(&mut self) -> Value {
        let app = self.pick(SERVICE_NAMES);
        let mut meta = self.numbered(app, 2);
        meta["labels"] = self.labels();
        let ports = self.list(
            2,
            |g| json!({ "name": g.pick(TARGET_PORT_NAMES), "containerPort": g.port() }),
        );
        let spec = Gen::fields(vec![
            (
                "containers",
                Some(json!([{ "name": "app", "image": app, "ports": ports }])),
            ),
            (
                "serviceAccountName",
                self.maybe(|g| json!(g.pick(&["default", "bookinfo"]))),
            ),
        ]);
        let status = json!({
            "phase": self.pick(&["Running", "Running", "Pending"]),
            "podIP": self.pick(POD_IPS),
        });
        Gen::object("v1", "Pod", meta, vec![("spec", spec), ("status", status)])
    }

    fn endpoint_slice(&mut self) -> Value {
        let svc = self.pick(SERVICE_NAMES);
        let mut meta = self.numbered(svc, 2);
        meta["labels"] = json!({ "kubernetes.io/service-name": svc });
        let v6 = self.range(0, 3) == 0;
        let endpoints = self.list1(3, |g| {
            let ip = if v6 { "fd00::1" } else { g.pick(&POD_IPS[..5]) };
            Gen::fields(vec![
                ("addresses", Some(json!([ip]))),
                ("conditions", g.maybe(|g| json!({ "ready": g.chance() }))),
                (
                    "targetRef",
                    g.maybe(|g| json!({ "kind": "Pod", "name": format!("{}-0", g.pick(SERVICE_NAMES)) })),
                ),
                ("zone", g.maybe(|g| json!(g.pick(&["a", "us-east-1a"])))),
            ])
        });
        let ports = self.list(2, |g| {
            Gen::fields(vec![
                ("name", g.port_name()),
                ("port", Some(g.port())),
                ("protocol", Some(json!("TCP"))),
            ])
        });
        let body = vec![
            ("addressType", json!(if v6 { "IPv6" } else { "IPv4" })),
            ("endpoints", endpoints),
            ("ports", ports),
        ];
        Gen::object("discovery.k8s.io/v1", "EndpointSlice", meta, body)
    }

    fn endpoints(&mut self) -> Value {
        let name = self.pick(SERVICE_NAMES);
        let meta = self.meta(name);
        let subsets = self.list1(2, |g| {
            let address = |g: &mut Gen| json!({ "ip": g.pick(POD_IPS) });
            Gen::fields(vec![
                ("addresses", Some(g.list(2, address))),
                ("notReadyAddresses", g.maybe(|g| g.list1(1, address))),
                (
                    "ports",
                    Some(g.list1(2, |g| {
                        Gen::fields(vec![("name", g.port_name()), ("port", Some(g.port()))])
                    })),
                ),
            ])
        });
        Gen::object("v1", "Endpoints", meta, vec![("subsets", subsets)])
    }

    fn workload_fields(&mut self) -> Vec<(&'static str, Option<Value>)> {
        let address = self.text(WORKLOAD_ADDRESSES, WORKLOAD_ADDRESSES_ODD);
        vec![
            ("address", Some(json!(address))),
            (
                "ports",
                self.maybe(|g| json!({ g.pick(PORT_NAMES): g.port() })),
            ),
            ("labels", self.maybe(Gen::labels)),
            (
                "locality",
                self.maybe(|g| json!(g.pick(&["eu/a", "us-east/b/c", "r"]))),
            ),
            (
                "weight",
                self.maybe(|g| json!(g.pick(&[0, 1, 2, 100, 4294967295_i64]))),
            ),
            (
                "serviceAccount",
                self.maybe(|g| json!(g.pick(&["default", "sa"]))),
            ),
        ]
    }

    fn service_entry(&mut self) -> Value {
        let meta = self.numbered("se", 3);
        let ports = self.list1(2, |g| {
            Gen::fields(vec![
                ("number", Some(g.port())),
                ("name", Some(json!(g.pick(PORT_NAMES)))),
                (
                    "protocol",
                    Some(json!(g.pick2(SE_PROTOCOLS, SE_PROTOCOLS_ODD))),
                ),
                ("targetPort", g.maybe(Gen::port)),
            ])
        });
        let resolution = self.pick(&["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"]);
        // Inline endpoints or a selector, not both (validation says so).
        let (endpoints, selector) = match self.range(0, 2) {
            0 => (
                Some(self.list1(2, |g| Gen::fields(g.workload_fields()))),
                None,
            ),
            1 => (None, Some(json!({ "labels": self.app_selector() }))),
            _ => (None, None),
        };
        let spec = Gen::fields(vec![
            (
                "hosts",
                Some(self.list1(2, |g| json!(g.text(SE_HOSTS, &[])))),
            ),
            ("addresses", self.maybe(|g| json!([g.pick(SE_ADDRESSES)]))),
            ("ports", Some(ports)),
            (
                "location",
                self.maybe(|g| json!(g.pick(&["MESH_EXTERNAL", "MESH_INTERNAL"]))),
            ),
            ("resolution", Some(json!(resolution))),
            ("endpoints", endpoints),
            ("workloadSelector", selector),
            ("exportTo", self.export_to()),
        ]);
        Gen::istio("ServiceEntry", meta, spec)
    }

    fn workload_entry(&mut self) -> Value {
        let meta = self.numbered("we", 3);
        let spec = Gen::fields(self.workload_fields());
        Gen::istio("WorkloadEntry", meta, spec)
    }

    fn destination_rule(&mut self) -> Value {
        let meta = self.numbered("dr", 3);
        let subsets = self.list(3, |g| {
            Gen::fields(vec![
                ("name", Some(json!(g.text(SUBSETS, &[])))),
                ("labels", Some(json!({ "version": g.pick(VERSIONS) }))),
                ("trafficPolicy", g.maybe(|g| g.traffic_policy())),
            ])
        });
        let spec = Gen::fields(vec![
            ("host", Some(json!(self.text(HOSTS, HOSTS_ODD)))),
            ("subsets", Some(subsets)),
            ("exportTo", self.export_to()),
            ("trafficPolicy", self.maybe(|g| g.traffic_policy())),
        ]);
        Gen::istio("DestinationRule", meta, spec)
    }

    /// A traffic policy (with port-level settings at the top level and in subsets alike).
    fn traffic_policy(&mut self) -> Value {
        let mut fields = self.policy_parts();
        fields.push((
            "portLevelSettings",
            self.maybe(|g| {
                g.list1(2, |g| {
                    let mut f = g.policy_parts();
                    f.push(("port", Some(json!({ "number": g.port() }))));
                    Gen::fields(f)
                })
            }),
        ));
        Gen::fields(fields)
    }

    fn policy_parts(&mut self) -> Vec<(&'static str, Option<Value>)> {
        vec![
            ("loadBalancer", self.maybe(Gen::load_balancer)),
            ("connectionPool", self.maybe(Gen::connection_pool)),
            ("outlierDetection", self.maybe(Gen::outlier_detection)),
            ("tls", self.maybe(Gen::client_tls)),
        ]
    }

    fn client_tls(&mut self) -> Value {
        let mode = self.pick(&["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"]);
        let file = |g: &mut Gen| json!(g.pick(&["/etc/certs/a.pem", "/etc/certs/b.pem"]));
        Gen::fields(vec![
            ("mode", Some(json!(mode))),
            ("clientCertificate", self.maybe(file)),
            ("privateKey", self.maybe(file)),
            ("caCertificates", self.maybe(file)),
            ("caCrl", self.maybe(file)),
            (
                "credentialName",
                self.maybe(|g| json!(g.pick(&["cert", "kubernetes://other"]))),
            ),
            (
                "subjectAltNames",
                self.maybe(|g| {
                    g.list1(2, |g| {
                        json!(g.pick(&["a.example", "spiffe://cluster.local/ns/a/sa/b"]))
                    })
                }),
            ),
            ("sni", self.maybe(|_| json!("sni.example"))),
            ("insecureSkipVerify", self.maybe(|g| json!(g.chance()))),
        ])
    }

    fn load_balancer(&mut self) -> Value {
        let mut f = Vec::new();
        if self.chance() {
            let simple = self.pick(&[
                "ROUND_ROBIN",
                "LEAST_REQUEST",
                "LEAST_CONN",
                "RANDOM",
                "PASSTHROUGH",
            ]);
            f.push(("simple", Some(json!(simple))));
        } else {
            let key = match self.range(0, 3) {
                0 => ("httpHeaderName", json!(self.text(HEADER_NAMES, &[]))),
                1 => (
                    "httpCookie",
                    Gen::fields(vec![
                        ("name", Some(json!("user"))),
                        ("path", self.maybe(|g| json!(g.text(URIS, &[])))),
                        ("ttl", self.maybe(Gen::duration)),
                    ]),
                ),
                2 => ("useSourceIp", json!(true)),
                _ => ("httpQueryParameterName", json!("q")),
            };
            let mut h = vec![(key.0, Some(key.1))];
            match self.range(0, 2) {
                0 => h.push((
                    "ringHash",
                    Some(json!({ "minimumRingSize": self.pick(&[0, 64, 1024, 8192]) })),
                )),
                1 => h.push((
                    "maglev",
                    Some(json!({ "tableSize": self.pick(&[251, 65537, 1021]) })),
                )),
                _ => {}
            }
            f.push(("consistentHash", Some(Gen::fields(h))));
        }
        let locality = |g: &mut Gen| {
            let regions = ["us-east", "eu", "ap"];
            match g.range(0, 3) {
                0 => json!({ "enabled": g.chance() }),
                1 => json!({ "failover": [{ "from": g.pick(&regions), "to": g.pick(&regions) }] }),
                2 => {
                    json!({ "failoverPriority": [g.pick(&["version", "app", "topology.kubernetes.io/zone", "app=web"])] })
                }
                _ => {
                    json!({ "distribute": [{ "from": g.pick(&["us-east/*", "*", "eu/a"]), "to": { "us-east/*": 60, "eu/*": 40 } }] })
                }
            }
        };
        f.push(("localityLbSetting", self.maybe(locality)));
        f.push(("warmupDurationSecs", self.maybe(Gen::duration)));
        Gen::fields(f)
    }

    fn connection_pool(&mut self) -> Value {
        let tcp = |g: &mut Gen| {
            Gen::fields(vec![
                ("maxConnections", g.maybe(|g| json!(g.pick(&[1, 100, 0])))),
                ("connectTimeout", g.maybe(Gen::duration)),
                ("maxConnectionDuration", g.maybe(Gen::duration)),
                ("idleTimeout", g.maybe(Gen::duration)),
                (
                    "tcpKeepalive",
                    g.maybe(|g| {
                        Gen::fields(vec![
                            ("probes", g.maybe(|g| json!(g.pick(&[0, 3])))),
                            ("time", g.maybe(Gen::duration)),
                            ("interval", g.maybe(Gen::duration)),
                        ])
                    }),
                ),
            ])
        };
        let http = |g: &mut Gen| {
            Gen::fields(vec![
                (
                    "http1MaxPendingRequests",
                    g.maybe(|g| json!(g.pick(&[1, 1024]))),
                ),
                ("http2MaxRequests", g.maybe(|g| json!(g.pick(&[1, 1000])))),
                (
                    "maxRequestsPerConnection",
                    g.maybe(|g| json!(g.pick(&[0, 1, 10]))),
                ),
                ("maxRetries", g.maybe(|g| json!(g.pick(&[0, 3])))),
                ("idleTimeout", g.maybe(Gen::duration)),
                (
                    "h2UpgradePolicy",
                    g.maybe(|g| json!(g.pick(&["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"]))),
                ),
                ("useClientProtocol", g.maybe(|g| json!(g.chance()))),
                (
                    "maxConcurrentStreams",
                    g.maybe(|g| json!(g.pick(&[0, 1, 100]))),
                ),
            ])
        };
        Gen::fields(vec![("tcp", Some(tcp(self))), ("http", self.maybe(http))])
    }

    fn outlier_detection(&mut self) -> Value {
        Gen::fields(vec![
            (
                "consecutive5xxErrors",
                self.maybe(|g| json!(g.pick(&[0, 1, 5]))),
            ),
            (
                "consecutiveGatewayErrors",
                self.maybe(|g| json!(g.pick(&[0, 3]))),
            ),
            (
                "splitExternalLocalOriginErrors",
                self.maybe(|_| json!(true)),
            ),
            (
                "consecutiveLocalOriginFailures",
                self.maybe(|g| json!(g.pick(&[1, 4]))),
            ),
            ("interval", self.maybe(Gen::duration)),
            ("baseEjectionTime", self.maybe(Gen::duration)),
            (
                "maxEjectionPercent",
                self.maybe(|g| json!(g.pick(&[0, 10, 100]))),
            ),
            ("minHealthPercent", self.maybe(|g| json!(g.pick(&[0, 50])))),
        ])
    }

    fn string_match(&mut self, common: &[&str], odd: &[&str]) -> Value {
        match self.range(0, 2) {
            0 => json!({ "exact": self.text(common, odd) }),
            1 => json!({ "prefix": self.text(common, odd) }),
            _ => json!({ "regex": self.text(REGEXES, REGEXES_ODD) }),
        }
    }

    fn match_map(&mut self, names: &[&str], names_odd: &[&str]) -> Value {
        let n = self.range(1, 2);
        let mut m = Map::new();
        for _ in 0..n {
            let k = self.text(names, names_odd);
            let v = if self.range(0, 5) == 0 {
                json!({})
            } else {
                self.string_match(HEADER_VALUES, HEADER_VALUES_ODD)
            };
            m.insert(k, v);
        }
        Value::Object(m)
    }

    fn gateways_ref(&mut self) -> Value {
        self.list1(2, |g| json!(g.pick2(GATEWAY_REFS, GATEWAY_REFS_ODD)))
    }

    fn http_match(&mut self) -> Value {
        Gen::fields(vec![
            ("name", self.maybe(|g| json!(g.pick(&["m1", "m2"])))),
            ("uri", self.maybe(|g| g.string_match(URIS, URIS_ODD))),
            (
                "headers",
                self.maybe(|g| g.match_map(HEADER_NAMES, HEADER_NAMES_ODD)),
            ),
            (
                "queryParams",
                self.maybe(|g| g.match_map(&["q", "id"], &[""])),
            ),
            (
                "withoutHeaders",
                self.maybe(|g| g.match_map(HEADER_NAMES, HEADER_NAMES_ODD)),
            ),
            (
                "method",
                self.maybe(|g| g.string_match(&["GET", "POST"], &["get", ""])),
            ),
            (
                "authority",
                self.maybe(|g| g.string_match(AUTHORITIES, AUTHORITIES_ODD)),
            ),
            (
                "scheme",
                self.maybe(|g| g.string_match(&["http", "https"], &["ftp"])),
            ),
            ("ignoreUriCase", self.maybe(|g| json!(g.chance()))),
            ("port", self.maybe(Gen::port)),
            ("sourceLabels", self.maybe(Gen::app_selector)),
            ("sourceNamespace", self.maybe(|g| json!(g.pick(NAMESPACES)))),
            ("gateways", self.maybe(Gen::gateways_ref)),
        ])
    }

    fn destination(&mut self) -> Value {
        Gen::fields(vec![
            ("host", Some(json!(self.text(HOSTS, HOSTS_ODD)))),
            ("subset", self.maybe(|g| json!(g.text(SUBSETS, &[])))),
            ("port", self.maybe(|g| json!({ "number": g.port() }))),
        ])
    }

    fn header_ops(&mut self) -> Value {
        let one = |g: &mut Gen| json!({ g.text(SET_HEADERS, SET_HEADERS_ODD): g.text(HEADER_VALUES, HEADER_VALUES_ODD) });
        Gen::fields(vec![
            ("set", self.maybe(one)),
            ("add", self.maybe(one)),
            (
                "remove",
                self.maybe(|g| json!([g.text(SET_HEADERS, SET_HEADERS_ODD)])),
            ),
        ])
    }

    fn headers(&mut self) -> Value {
        Gen::fields(vec![
            ("request", self.maybe(Gen::header_ops)),
            ("response", self.maybe(Gen::header_ops)),
        ])
    }

    fn percentage(&mut self) -> Value {
        json!({ "value": self.pick(PERCENTAGES) })
    }

    fn redirect(&mut self) -> Value {
        Gen::fields(vec![
            ("uri", self.maybe(|g| json!(g.text(URIS, URIS_ODD)))),
            (
                "authority",
                self.maybe(|g| json!(g.text(AUTHORITIES, AUTHORITIES_ODD))),
            ),
            ("port", self.maybe(Gen::port)),
            (
                "derivePort",
                self.maybe(|g| json!(g.pick(&["FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"]))),
            ),
            (
                "scheme",
                self.maybe(|g| json!(g.text(&["http", "https"], &["ftp"]))),
            ),
            (
                "redirectCode",
                self.maybe(|g| json!(g.pick2(&[301, 302, 303, 307, 308], &[200, 399]))),
            ),
        ])
    }

    fn direct_response(&mut self) -> Value {
        let body = |g: &mut Gen| {
            if g.chance() {
                json!({ "string": g.text(&["hello", "{\"a\":1}"], &[""]) })
            } else {
                json!({ "bytes": g.pick2(&["aGVsbG8="], &["", "!!"]) })
            }
        };
        Gen::fields(vec![
            ("status", Some(json!(self.pick2(STATUSES, STATUSES_ODD)))),
            ("body", self.maybe(body)),
        ])
    }

    fn rewrite(&mut self) -> Value {
        let regex = |g: &mut Gen| {
            let m = g.text(REGEXES, REGEXES_ODD);
            json!({ "match": m, "rewrite": g.text(&["/", "\\1", "/x/\\2"], &[""]) })
        };
        Gen::fields(vec![
            ("uri", self.maybe(|g| json!(g.text(URIS, URIS_ODD)))),
            (
                "authority",
                self.maybe(|g| json!(g.text(AUTHORITIES, AUTHORITIES_ODD))),
            ),
            ("uriRegexRewrite", self.maybe(regex)),
        ])
    }

    fn retries(&mut self) -> Value {
        Gen::fields(vec![
            ("attempts", Some(json!(self.pick2(&[0, 1, 3], &[-1, 1000])))),
            ("perTryTimeout", self.maybe(Gen::duration)),
            (
                "retryOn",
                self.maybe(|g| json!(g.text(RETRY_ON, RETRY_ON_ODD))),
            ),
            ("retryRemoteLocalities", self.maybe(|g| json!(g.chance()))),
            (
                "retryIgnorePreviousHosts",
                self.maybe(|g| json!(g.chance())),
            ),
            ("backoff", self.maybe(Gen::duration)),
        ])
    }

    fn fault(&mut self) -> Value {
        let delay = |g: &mut Gen| {
            Gen::fields(vec![
                ("fixedDelay", Some(g.duration())),
                ("percentage", g.maybe(Gen::percentage)),
                (
                    "percent",
                    g.maybe(|g| json!(g.pick2(&[0, 50, 100], &[101]))),
                ),
            ])
        };
        let abort = |g: &mut Gen| {
            let status = if g.chance() {
                (
                    "httpStatus",
                    Some(json!(g.pick2(&[400, 503, 418], &[200, 0, 999]))),
                )
            } else {
                (
                    "grpcStatus",
                    Some(json!(g.text(GRPC_STATUS, GRPC_STATUS_ODD))),
                )
            };
            Gen::fields(vec![status, ("percentage", g.maybe(Gen::percentage))])
        };
        Gen::fields(vec![
            ("delay", self.maybe(delay)),
            ("abort", self.maybe(abort)),
        ])
    }

    fn http_route(&mut self) -> Value {
        let mut fields = vec![
            (
                "name",
                self.maybe(|g| json!(g.pick(&["r1", "canary", "default"]))),
            ),
            ("match", self.maybe(|g| g.list1(2, Gen::http_match))),
            ("headers", self.maybe(Gen::headers)),
        ];
        match self.range(0, 5) {
            0 => fields.push(("redirect", Some(self.redirect()))),
            1 => fields.push(("directResponse", Some(self.direct_response()))),
            _ => {
                let route = self.list1(3, |g| {
                    Gen::fields(vec![
                        ("destination", Some(g.destination())),
                        ("weight", g.maybe(|g| json!(g.pick2(WEIGHTS, WEIGHTS_ODD)))),
                        ("headers", g.maybe(Gen::headers)),
                    ])
                });
                fields.push(("route", Some(route)));
                fields.push(("rewrite", self.maybe(Gen::rewrite)));
                fields.push(("timeout", self.maybe(Gen::duration)));
                fields.push(("retries", self.maybe(Gen::retries)));
                fields.push(("fault", self.maybe(Gen::fault)));
                fields.push(("mirror", self.maybe(Gen::destination)));
                fields.push(("mirrorPercentage", self.maybe(Gen::percentage)));
                fields.push((
                    "mirrors",
                    self.maybe(|g| {
                        g.list1(2, |g| {
                            Gen::fields(vec![
                                ("destination", Some(g.destination())),
                                ("percentage", g.maybe(Gen::percentage)),
                            ])
                        })
                    }),
                ));
            }
        }
        fields.push(("corsPolicy", self.maybe(Gen::cors)));
        Gen::fields(fields)
    }

    fn cors(&mut self) -> Value {
        Gen::fields(vec![
            (
                "allowOrigins",
                self.maybe(|g| g.list1(2, |g| g.string_match(AUTHORITIES, AUTHORITIES_ODD))),
            ),
            ("allowMethods", self.maybe(|_| json!(["GET", "POST"]))),
            ("allowHeaders", self.maybe(|_| json!(["x-a"]))),
            ("exposeHeaders", self.maybe(|_| json!(["x-b"]))),
            ("maxAge", self.maybe(Gen::duration)),
            ("allowCredentials", self.maybe(|g| json!(g.chance()))),
            (
                "unmatchedPreflights",
                self.maybe(|g| json!(g.pick(&["FORWARD", "IGNORE"]))),
            ),
        ])
    }

    /// A delegate VirtualService (no hosts) that roots name from their `http` routes.
    fn delegate(&mut self) -> Value {
        let meta = self.numbered("dvs", 1);
        let spec = Gen::fields(vec![
            ("http", Some(self.list1(2, Gen::http_route))),
            ("exportTo", self.export_to()),
        ]);
        Gen::istio("VirtualService", meta, spec)
    }

    fn l4_route(&mut self, tls: bool) -> Value {
        let m = self.list1(2, |g| {
            let mut f = vec![
                ("port", g.maybe(Gen::port)),
                ("gateways", g.maybe(Gen::gateways_ref)),
                ("sourceLabels", g.maybe(Gen::app_selector)),
            ];
            if tls {
                f.push((
                    "sniHosts",
                    Some(g.list1(2, |g| json!(g.text(SE_HOSTS, &[])))),
                ));
            }
            Gen::fields(f)
        });
        let route = self.list1(2, |g| {
            Gen::fields(vec![
                ("destination", Some(g.destination())),
                ("weight", g.maybe(|g| json!(g.pick2(WEIGHTS, WEIGHTS_ODD)))),
            ])
        });
        json!({ "match": m, "route": route })
    }

    fn virtual_service(&mut self) -> Value {
        let meta = self.numbered("vs", 3);
        let spec = Gen::fields(vec![
            (
                "hosts",
                Some(self.list1(2, |g| json!(g.text(HOSTS, HOSTS_ODD)))),
            ),
            ("gateways", self.maybe(Gen::gateways_ref)),
            (
                "http",
                Some(self.list1(3, |g| {
                    if g.range(0, 5) == 0 {
                        let ns = g.pick(NAMESPACES);
                        let name = format!("dvs-{}", g.range(0, 1));
                        json!({ "match": [{ "uri": { "prefix": "/d" } }], "delegate": { "name": name, "namespace": ns } })
                    } else {
                        g.http_route()
                    }
                })),
            ),
            ("tcp", self.maybe(|g| g.list1(1, |g| g.l4_route(false)))),
            ("tls", self.maybe(|g| g.list1(1, |g| g.l4_route(true)))),
            ("exportTo", self.export_to()),
        ]);
        Gen::istio("VirtualService", meta, spec)
    }

    fn sidecar(&mut self) -> Value {
        let meta = self.numbered("sc", 2);
        let egress = self.list1(2, |g| {
            let port = |g: &mut Gen| {
                let protocol = g.pick(SE_PROTOCOLS);
                json!({ "number": g.port(), "protocol": protocol, "name": "egress" })
            };
            Gen::fields(vec![
                (
                    "hosts",
                    Some(g.list1(3, |g| json!(g.text(EGRESS_HOSTS, &[])))),
                ),
                ("port", g.maybe(port)),
            ])
        });
        let policy = |g: &mut Gen| json!({ "mode": g.pick(&["ALLOW_ANY", "REGISTRY_ONLY"]) });
        let ingress = |g: &mut Gen| {
            g.list1(2, |g| {
                let protocol = g.pick(SE_PROTOCOLS);
                Gen::fields(vec![
                    (
                        "port",
                        Some(json!({ "number": g.port(), "protocol": protocol, "name": "in" })),
                    ),
                    (
                        "defaultEndpoint",
                        g.maybe(|g| {
                            json!(g.pick(&["127.0.0.1:8080", "0.0.0.0:9090", "[::1]:8080"]))
                        }),
                    ),
                    (
                        "captureMode",
                        g.maybe(|g| json!(g.pick(&["DEFAULT", "IPTABLES", "NONE"]))),
                    ),
                    ("bind", g.maybe(|_| json!("127.0.0.1"))),
                    (
                        "connectionPool",
                        g.maybe(|g| json!({ "tcp": { "maxConnections": g.pick(&[1, 10]) } })),
                    ),
                ])
            })
        };
        let spec = Gen::fields(vec![
            (
                "workloadSelector",
                self.maybe(|g| json!({ "labels": g.app_selector() })),
            ),
            ("ingress", self.maybe(ingress)),
            (
                "inboundConnectionPool",
                self.maybe(|g| json!({ "http": { "http1MaxPendingRequests": g.pick(&[1, 10]) } })),
            ),
            ("egress", Some(egress)),
            ("outboundTrafficPolicy", self.maybe(policy)),
        ]);
        Gen::istio("Sidecar", meta, spec)
    }

    fn gateway(&mut self) -> Value {
        let meta = self.meta("gw");
        let servers = self.list1(3, |g| {
            let protocol = g.pick(&["HTTP", "HTTPS", "HTTP2", "GRPC", "TCP", "TLS", "MONGO", "http"]);
            let port = json!({ "number": g.port(), "name": format!("p-{}", g.range(0, 3)), "protocol": protocol });
            let tls = |g: &mut Gen| {
                let mode = g.pick(&["PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL"]);
                Gen::fields(vec![
                    ("mode", Some(json!(mode))),
                    ("httpsRedirect", g.maybe(|g| json!(g.chance()))),
                    ("credentialName", g.maybe(|_| json!("cert"))),
                ])
            };
            Gen::fields(vec![
                ("port", Some(port)),
                ("hosts", Some(g.list1(2, |g| json!(g.text(SERVER_HOSTS, &[]))))),
                ("tls", g.maybe(tls)),
                ("bind", g.maybe(|g| json!(g.pick(&["127.0.0.1", "0.0.0.0", "10.1.0.100"])))),
            ])
        });
        let selector = json!({ "istio": self.pick(&["ingressgateway", "egressgateway"]) });
        Gen::istio(
            "Gateway",
            meta,
            json!({ "selector": selector, "servers": servers }),
        )
    }

    fn mesh_config(&mut self) -> Value {
        let mut lines = Vec::new();
        if self.chance() {
            lines.push(format!(
                "connectTimeout: {}",
                self.text(DURATIONS, DURATIONS_ODD)
            ));
        }
        if self.chance() {
            let mode = self.pick(&["ALLOW_ANY", "REGISTRY_ONLY"]);
            lines.push(format!("outboundTrafficPolicy: {{ mode: {mode} }}"));
        }
        if self.chance() {
            lines.push(format!("rootNamespace: {}", self.pick(NAMESPACES)));
        }
        if self.chance() {
            lines.push(format!("proxyListenPort: {}", self.pick2(PORTS, PORTS_ODD)));
        }
        if self.chance() {
            lines.push(format!(
                "proxyInboundListenPort: {}",
                self.pick2(PORTS, PORTS_ODD)
            ));
        }
        let meta = json!({ "name": "istio", "namespace": "istio-system" });
        let data = json!({ "mesh": lines.join("\n") + "\n" });
        Gen::object("v1", "ConfigMap", meta, vec![("data", data)])
    }
}
