//! The registry built from YAML: Kubernetes Services with their EndpointSlices, Endpoints
//! and Pods; ServiceEntries with inline, selected and DNS endpoints; WorkloadEntries joining
//! Kubernetes Services; visibility; and WorkloadGroup auto-registration entries.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use super::*;

fn resources(yaml: &str) -> Vec<weft_config::Resource> {
    let mut loader = weft_config::Loader::new();
    loader.load_str("registry.yaml", yaml);
    let result = loader.finish();
    assert!(!result.has_errors(), "{:#?}", result.findings);
    result.resources.into_iter().map(|l| l.resource).collect()
}

fn build(yaml: &str, workloads: &[Workload]) -> Registry {
    let owned = resources(yaml);
    let refs: Vec<&weft_config::Resource> = owned.iter().collect();
    Registry::build(&refs, workloads, "cluster.local")
}

fn key(hostname: &str, namespace: &str) -> ServiceKey {
    ServiceKey {
        hostname: hostname.into(),
        namespace: namespace.into(),
    }
}

fn service<'a>(r: &'a Registry, hostname: &str, namespace: &str) -> &'a Service {
    r.services
        .get(&key(hostname, namespace))
        .unwrap_or_else(|| {
            panic!(
                "no service {namespace}/{hostname} in {:?}",
                r.services.keys()
            )
        })
}

fn eps<'a>(r: &'a Registry, hostname: &str, namespace: &str, port: u16) -> &'a [Endpoint] {
    r.endpoints
        .get(&(key(hostname, namespace), port))
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("no endpoints for {namespace}/{hostname}:{port}"))
}

/// `host:port` of each endpoint, in order.
fn targets(eps: &[Endpoint]) -> Vec<String> {
    eps.iter()
        .map(|e| format!("{}:{}", e.host(), e.port))
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an IP")
}

fn workload(name: &str, namespace: &str, l: &[(&str, &str)], addr: &str) -> Workload {
    Workload {
        name: name.into(),
        namespace: namespace.into(),
        labels: labels(l),
        ips: vec![ip(addr)],
        service_account: format!("{name}-sa"),
    }
}

#[test]
fn static_service_entry_with_inline_endpoints() {
    let r = build(
        r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: payments, namespace: shop }
spec:
  hosts: [payments.internal, pay.internal]
  addresses: [240.0.0.1, 240.0.0.2/32, 10.10.0.0/16]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - { number: 80, name: http, protocol: HTTP, targetPort: 8080 }
  - { number: 9000, name: grpc, protocol: GRPC }
  - { number: 7000, name: raw }
  endpoints:
  - address: 10.3.0.1
    ports: { http: 9999 }
    labels: { version: v1 }
    locality: eu-west/b
    weight: 5
    serviceAccount: payments
  - address: 10.3.0.2
    labels: { version: v2, istio-locality: us-east.a }
"#,
        &[],
    );
    assert_eq!(r.services.len(), 2, "one service per host");
    let s = service(&r, "payments.internal", "shop");
    assert_eq!(s.name, "payments");
    assert_eq!(s.origin, Origin::ServiceEntry);
    assert_eq!(s.resolution, Resolution::ClientSideLb);
    assert!(!s.mesh_external);
    assert_eq!(s.selector, None);
    // A /32 is its IP; the /16 cannot be a service address and is left out.
    assert_eq!(s.addresses, vec![ip("240.0.0.1"), ip("240.0.0.2")]);
    let protocols: Vec<(u16, &str, Protocol)> = s
        .ports
        .iter()
        .map(|p| (p.port, p.name.as_str(), p.protocol))
        .collect();
    assert_eq!(
        protocols,
        [
            (80, "http", Protocol::Http),
            (9000, "grpc", Protocol::Grpc),
            (7000, "raw", Protocol::Unsupported)
        ]
    );
    assert_eq!(service(&r, "pay.internal", "shop").ports, s.ports);

    // The endpoint's own port by name, else targetPort, else the port number.
    let http = eps(&r, "payments.internal", "shop", 80);
    assert_eq!(targets(http), ["10.3.0.1:9999", "10.3.0.2:8080"]);
    assert_eq!(
        targets(eps(&r, "payments.internal", "shop", 9000)),
        ["10.3.0.1:9000", "10.3.0.2:9000"]
    );
    let first = &http[0];
    assert_eq!(*first.labels, labels(&[("version", "v1")]));
    assert_eq!(first.locality, "eu-west/b");
    assert_eq!(first.weight, 5);
    assert_eq!(first.service_account, "payments");
    assert_eq!(first.hostname, None);
    assert!(first.healthy);
    let second = &http[1];
    assert_eq!(
        second.locality, "us-east/a",
        "from the istio-locality label"
    );
    assert_eq!(second.weight, 1, "an unset weight is 1");
    assert_eq!(targets(eps(&r, "pay.internal", "shop", 80)), targets(http));
}

#[test]
fn dns_service_entry_without_endpoints_resolves_its_hosts() {
    let r = build(
        r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: external, namespace: default }
spec:
  hosts: [api.example.com, www.example.com]
  resolution: DNS
  ports:
  - { number: 443, name: tls, protocol: TLS }
  - { number: 80, name: http, protocol: HTTP, targetPort: 8080 }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: rr, namespace: default }
spec:
  hosts: [rr.example.com]
  resolution: DNS_ROUND_ROBIN
  ports: [{ number: 443, name: tls, protocol: TLS }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: rr-later, namespace: default }
spec:
  hosts: [rr.example.com]
  resolution: DNS_ROUND_ROBIN
  ports: [{ number: 443, name: tls, protocol: TLS }]
  endpoints: [{ address: rr-b.example.com }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: named-endpoints, namespace: default }
spec:
  hosts: [db.example.com]
  resolution: DNS
  ports: [{ number: 5432, name: tcp, protocol: TCP }]
  endpoints:
  - { address: db-a.example.com, ports: { tcp: 6432 } }
  - { address: 192.0.2.7 }
"#,
        &[],
    );
    let api = service(&r, "api.example.com", "default");
    assert_eq!(api.resolution, Resolution::Dns);
    assert!(api.mesh_external, "MESH_EXTERNAL is the default location");
    assert!(api.addresses.is_empty());
    assert_eq!(api.port(443).map(|p| p.protocol), Some(Protocol::Tls));
    let tls = eps(&r, "api.example.com", "default", 443);
    assert_eq!(targets(tls), ["api.example.com:443"]);
    assert_eq!(tls[0].hostname.as_deref(), Some("api.example.com"));
    assert_eq!(tls[0].address, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert_eq!(
        targets(eps(&r, "api.example.com", "default", 80)),
        ["api.example.com:8080"]
    );
    // Each host is its own service, resolving to itself.
    assert_eq!(
        targets(eps(&r, "www.example.com", "default", 443)),
        ["www.example.com:443"]
    );
    assert_eq!(
        service(&r, "rr.example.com", "default").resolution,
        Resolution::DnsRoundRobin
    );
    // LOGICAL_DNS connects to one name: the first definition's, though two define the host.
    assert_eq!(
        targets(eps(&r, "rr.example.com", "default", 443)),
        ["rr.example.com:443"]
    );
    // Endpoints listed by name or IP: the names resolve, the hosts do not.
    assert_eq!(
        targets(eps(&r, "db.example.com", "default", 5432)),
        ["db-a.example.com:6432", "192.0.2.7:5432"]
    );
}

#[test]
fn none_resolution_passes_through() {
    let r = build(
        r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: wild, namespace: default }
spec:
  hosts: ["*.googleapis.com"]
  resolution: NONE
  ports: [{ number: 443, name: https, protocol: HTTPS }]
"#,
        &[],
    );
    let s = service(&r, "*.googleapis.com", "default");
    assert_eq!(s.resolution, Resolution::Passthrough);
    assert_eq!(s.port(443).map(|p| p.protocol), Some(Protocol::Https));
    assert!(eps(&r, "*.googleapis.com", "default", 443).is_empty());
}

const SELECTED: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: cart, namespace: shop }
spec:
  hosts: [cart.shop.mesh]
  location: MESH_INTERNAL
  resolution: STATIC
  workloadSelector: { labels: { app: cart } }
  ports:
  - { number: 80, name: http, protocol: HTTP, targetPort: 8000 }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: cart-dns, namespace: shop }
spec:
  hosts: [cart-dns.shop.mesh]
  location: MESH_INTERNAL
  resolution: DNS
  workloadSelector: { labels: { app: cart } }
  ports: [{ number: 80, name: http, protocol: HTTP }]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: vm-1, namespace: shop, labels: { env: prod } }
spec:
  address: 10.2.0.1
  labels: { app: cart, env: dev }
  ports: { http: 8081 }
  serviceAccount: cart-vm
  locality: us-west/a
  weight: 3
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: vm-named, namespace: shop }
spec: { address: vm-named.corp.example, labels: { app: cart } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: vm-sick
  namespace: shop
  annotations: { proxy.istio.io/health-checks-enabled: "true" }
spec: { address: 10.2.0.9, labels: { app: cart } }
status: { conditions: [{ type: Healthy, status: "False" }] }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: vm-well
  namespace: shop
  annotations: { proxy.istio.io/health-checks-enabled: "true" }
spec: { address: 10.2.0.8, labels: { app: cart } }
status: { conditions: [{ type: Healthy, status: "True" }] }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: other-app, namespace: shop }
spec: { address: 10.2.0.2, labels: { app: ledger } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: other-ns, namespace: default }
spec: { address: 10.2.0.3, labels: { app: cart } }
---
apiVersion: v1
kind: Pod
metadata: { name: cart-pod, namespace: shop, labels: { app: cart } }
spec:
  serviceAccountName: cart-pod
  containers: [{ name: app, image: cart, ports: [{ name: http, containerPort: 9090 }] }]
status: { phase: Running, podIP: 10.2.0.4 }
---
apiVersion: v1
kind: Pod
metadata: { name: cart-pending, namespace: shop, labels: { app: cart } }
spec: { containers: [{ name: app, image: cart }] }
status: { phase: Pending }
"#;

#[test]
fn workload_selector_picks_entries_pods_and_connected_proxies() {
    let proxies = [
        workload("cart-vm-2", "shop", &[("app", "cart")], "10.2.0.5"),
        // The pod's own sidecar: already an endpoint through the pod.
        workload("cart-pod", "shop", &[("app", "cart")], "10.2.0.4"),
        workload("cart-elsewhere", "default", &[("app", "cart")], "10.2.0.6"),
    ];
    let r = build(SELECTED, &proxies);
    let s = service(&r, "cart.shop.mesh", "shop");
    assert_eq!(s.selector, Some(labels(&[("app", "cart")])));
    let http = eps(&r, "cart.shop.mesh", "shop", 80);
    // Entry port by name > targetPort; a pod's named container port; a proxy at targetPort.
    // The host name entry is for DNS only; the failing health check drops vm-sick.
    assert_eq!(
        targets(http),
        [
            "10.2.0.1:8081",
            "10.2.0.8:8000",
            "10.2.0.4:9090",
            "10.2.0.5:8000"
        ]
    );
    let vm = &http[0];
    assert_eq!(vm.workload, "vm-1");
    assert_eq!(
        *vm.labels,
        labels(&[("app", "cart"), ("env", "prod")]),
        "metadata labels win over spec labels"
    );
    assert_eq!(
        (vm.service_account.as_str(), vm.locality.as_str(), vm.weight),
        ("cart-vm", "us-west/a", 3)
    );
    assert_eq!(http[2].service_account, "cart-pod");
    assert_eq!(http[3].service_account, "cart-vm-2-sa");

    // Under DNS the named entry is an endpoint too, and the port falls back to the number.
    assert_eq!(
        targets(eps(&r, "cart-dns.shop.mesh", "shop", 80)),
        [
            "10.2.0.1:8081",
            "vm-named.corp.example:80",
            "10.2.0.8:80",
            "10.2.0.4:9090",
            "10.2.0.5:80"
        ]
    );
}

#[test]
fn kubernetes_services_select_workload_entries() {
    let r = build(
        r#"
apiVersion: v1
kind: Service
metadata: { name: ratings, namespace: shop }
spec:
  clusterIP: 10.0.0.20
  selector: { app: ratings }
  ports:
  - { name: http, port: 80, targetPort: web }
  - { name: grpc, port: 9000, targetPort: 9001 }
  - { name: plain, port: 7000 }
  - { name: dns, port: 53, protocol: UDP }
---
apiVersion: v1
kind: Service
metadata: { name: ratings-headless, namespace: shop }
spec:
  clusterIP: None
  selector: { app: ratings }
  ports: [{ name: http, port: 80 }]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ratings-vm, namespace: shop }
spec:
  address: 10.4.0.1
  labels: { app: ratings }
  ports: { web: 8080, grpc: 9100 }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ratings-vm-unnamed, namespace: shop }
spec: { address: 10.4.0.2, labels: { app: ratings } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ratings-by-name, namespace: shop }
spec: { address: ratings.corp.example, labels: { app: ratings } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ratings-other-ns, namespace: default }
spec: { address: 10.4.0.3, labels: { app: ratings } }
"#,
        &[],
    );
    let host = "ratings.shop.svc.cluster.local";
    assert_eq!(service(&r, host, "shop").origin, Origin::Kubernetes);
    // A named targetPort needs the entry to name that port, or the entry is skipped.
    assert_eq!(targets(eps(&r, host, "shop", 80)), ["10.4.0.1:8080"]);
    // A numeric targetPort, unless the entry names a port after the service port.
    assert_eq!(
        targets(eps(&r, host, "shop", 9000)),
        ["10.4.0.1:9100", "10.4.0.2:9001"]
    );
    assert_eq!(
        targets(eps(&r, host, "shop", 7000)),
        ["10.4.0.1:7000", "10.4.0.2:7000"]
    );
    assert!(eps(&r, host, "shop", 53).is_empty(), "UDP ports take none");
    assert_eq!(r.endpoints_of(host, 80)[0].workload, "ratings-vm");
    // Headless services pass through; entries do not join them.
    assert!(eps(&r, "ratings-headless.shop.svc.cluster.local", "shop", 80).is_empty());
}

#[test]
fn export_to_limits_who_sees_a_service_entry() {
    let r = build(
        r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: private, namespace: team-a }
spec:
  hosts: [private.example.com]
  exportTo: ["."]
  resolution: DNS
  ports: [{ number: 443, name: tls, protocol: TLS }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: shared, namespace: team-a }
spec:
  hosts: [shared.example.com]
  exportTo: [team-b]
  resolution: DNS
  ports: [{ number: 443, name: tls, protocol: TLS }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: hidden, namespace: team-a }
spec:
  hosts: [hidden.example.com]
  exportTo: ["~"]
  resolution: DNS
  ports: [{ number: 443, name: tls, protocol: TLS }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: public, namespace: team-a }
spec:
  hosts: [public.example.com]
  resolution: DNS
  ports: [{ number: 443, name: tls, protocol: TLS }]
"#,
        &[],
    );
    let seen = |ns: &str| -> Vec<&str> { r.visible(ns).map(|s| s.hostname.as_str()).collect() };
    assert_eq!(
        seen("team-a"),
        ["private.example.com", "public.example.com"]
    );
    assert_eq!(seen("team-b"), ["public.example.com", "shared.example.com"]);
    assert_eq!(seen("team-c"), ["public.example.com"]);
    assert!(r.lookup("private.example.com", "team-b").is_none());
    assert!(r.lookup("shared.example.com", "team-b").is_some());
    assert_eq!(
        service(&r, "shared.example.com", "team-a").export_to,
        ["team-b"]
    );
}

#[test]
fn kubernetes_services_keep_their_host_and_the_oldest_entry_keeps_a_shared_one() {
    let r = build(
        r#"
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec: { clusterIP: 10.0.0.10, ports: [{ name: http, port: 9080 }] }
---
apiVersion: v1
kind: Endpoints
metadata: { name: reviews, namespace: default }
subsets: [{ addresses: [{ ip: 10.1.0.1 }], ports: [{ name: http, port: 9080 }] }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: squat, namespace: default }
spec:
  hosts: [reviews.default.svc.cluster.local]
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: TCP }]
  endpoints: [{ address: 192.0.2.66 }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: b-second, namespace: default }
spec:
  hosts: [legacy.corp]
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints: [{ address: 192.0.2.2 }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: a-first, namespace: default }
spec:
  hosts: [legacy.corp]
  resolution: STATIC
  ports: [{ number: 80, name: tcp, protocol: TCP }]
  endpoints: [{ address: 192.0.2.1 }]
"#,
        &[],
    );
    let reviews = service(&r, "reviews.default.svc.cluster.local", "default");
    assert_eq!(reviews.origin, Origin::Kubernetes);
    assert_eq!(reviews.port(9080).map(|p| p.protocol), Some(Protocol::Http));
    assert_eq!(
        targets(eps(
            &r,
            "reviews.default.svc.cluster.local",
            "default",
            9080
        )),
        ["10.1.0.1:9080"]
    );
    let legacy = service(&r, "legacy.corp", "default");
    assert_eq!(legacy.name, "a-first");
    assert_eq!(legacy.port(80).map(|p| p.protocol), Some(Protocol::Tcp));
    assert_eq!(
        targets(eps(&r, "legacy.corp", "default", 80)),
        ["192.0.2.1:80", "192.0.2.2:80"]
    );
}

const REVIEWS: &str = r#"
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec:
  clusterIP: 10.0.0.10
  selector: { app: reviews }
  ports: [{ name: http, port: 9080, targetPort: web }]
---
apiVersion: v1
kind: Pod
metadata:
  name: reviews-v1-0
  namespace: default
  labels: { app: reviews, version: v1, topology.kubernetes.io/region: eu, topology.kubernetes.io/zone: eu-1 }
spec:
  serviceAccountName: bookinfo-reviews
  containers: [{ name: app, image: reviews, ports: [{ name: web, containerPort: 8080 }] }]
status: { phase: Running, podIP: 10.1.0.1 }
---
apiVersion: v1
kind: Pod
metadata: { name: reviews-v2-0, namespace: default, labels: { app: reviews, version: v2 } }
spec: { containers: [{ name: app, image: reviews, ports: [{ name: web, containerPort: 8082 }] }] }
status: { phase: Running, podIP: 10.1.0.2 }
---
apiVersion: v1
kind: Pod
metadata: { name: reviews-v3-0, namespace: default, labels: { app: reviews, version: v3 } }
spec: { containers: [{ name: app, image: reviews, ports: [{ name: web, containerPort: 8083 }] }] }
status: { phase: Failed, podIP: 10.1.0.3 }
---
apiVersion: v1
kind: Pod
metadata: { name: reviews-other, namespace: other, labels: { app: reviews } }
spec: { containers: [{ name: app, image: reviews, ports: [{ name: web, containerPort: 8084 }] }] }
status: { phase: Running, podIP: 10.1.0.4 }
"#;

const REVIEWS_ENDPOINTS: &str = r#"
apiVersion: v1
kind: Endpoints
metadata: { name: reviews, namespace: default }
subsets:
- addresses: [{ ip: 10.1.0.1 }]
  notReadyAddresses: [{ ip: 10.1.0.9 }]
  ports: [{ name: http, port: 8080 }]
"#;

const REVIEWS_SLICE: &str = r#"
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: reviews-abc12, namespace: default, labels: { kubernetes.io/service-name: reviews } }
addressType: IPv4
ports: [{ name: http, port: 8080 }]
endpoints:
- { addresses: [10.1.0.2], conditions: { ready: true }, zone: eu-2, targetRef: { kind: Pod, name: reviews-v2-0 } }
- { addresses: [10.1.0.8], conditions: { ready: false } }
"#;

#[test]
fn pods_serve_a_named_target_port_when_nothing_lists_endpoints() {
    let proxies = [workload(
        "reviews-vm",
        "default",
        &[("app", "reviews")],
        "10.1.0.7",
    )];
    let r = build(REVIEWS, &proxies);
    let host = "reviews.default.svc.cluster.local";
    let eps = eps(&r, host, "default", 9080);
    // Running pods in the namespace at their `web` port, then the connected proxy at the
    // service port (it has no container ports to name).
    assert_eq!(
        targets(eps),
        ["10.1.0.1:8080", "10.1.0.2:8082", "10.1.0.7:9080"]
    );
    assert_eq!(eps[0].locality, "eu/eu-1");
    assert_eq!(eps[0].service_account, "bookinfo-reviews");
    assert_eq!(eps[0].labels.get("version").map(String::as_str), Some("v1"));
    assert_eq!(eps[1].service_account, "default");
    assert_eq!(eps[2].workload, "reviews-vm");
    assert!(eps.iter().all(|e| e.healthy && e.hostname.is_none()));
}

#[test]
fn endpoint_slices_win_over_endpoints_which_win_over_selectors() {
    let host = "reviews.default.svc.cluster.local";
    let r = build(&format!("{REVIEWS}---{REVIEWS_ENDPOINTS}"), &[]);
    let from_endpoints = eps(&r, host, "default", 9080);
    assert_eq!(targets(from_endpoints), ["10.1.0.1:8080", "10.1.0.9:8080"]);
    assert_eq!(
        from_endpoints.iter().map(|e| e.healthy).collect::<Vec<_>>(),
        [true, false]
    );
    // Labels come from the pod at the address.
    assert_eq!(from_endpoints[0].workload, "reviews-v1-0");

    let r = build(
        &format!("{REVIEWS}---{REVIEWS_ENDPOINTS}---{REVIEWS_SLICE}"),
        &[],
    );
    let from_slice = eps(&r, host, "default", 9080);
    assert_eq!(targets(from_slice), ["10.1.0.2:8080", "10.1.0.8:8080"]);
    assert_eq!(
        from_slice.iter().map(|e| e.healthy).collect::<Vec<_>>(),
        [true, false]
    );
    assert_eq!(from_slice[0].workload, "reviews-v2-0");
    assert_eq!(from_slice[0].locality, "/eu-2", "the slice's zone");
    assert_eq!(from_slice[1].workload, "");
}

#[test]
fn workload_group_entries_register_like_workload_entries() {
    let owned = resources(
        r#"
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: { name: billing, namespace: vms }
spec:
  metadata:
    labels: { app: billing, tier: group }
    annotations: { team: payments }
  template:
    serviceAccount: billing-vm
    labels: { tier: template, version: v1 }
    ports: { http: 8443 }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: billing, namespace: vms }
spec:
  hosts: [billing.vms.mesh]
  location: MESH_INTERNAL
  resolution: STATIC
  workloadSelector: { labels: { app: billing } }
  ports: [{ number: 80, name: http, protocol: HTTP }]
"#,
    );
    let weft_config::Resource::WorkloadGroup(group) = &owned[0] else {
        panic!("first resource is the group")
    };
    let proxy = Workload {
        name: "billing-vm-1".into(),
        namespace: "vms".into(),
        labels: labels(&[("version", "v2"), ("istio-locality", "us.east")]),
        ips: vec![ip("10.5.0.1"), ip("10.5.0.2")],
        service_account: String::new(),
    };
    let entry = entry_from_group(group, &proxy).expect("an entry");
    assert_eq!(entry.metadata.name.as_deref(), Some("billing-10.5.0.1"));
    assert_eq!(entry.metadata.namespace.as_deref(), Some("vms"));
    assert_eq!(entry.spec.address, "10.5.0.1");
    assert_eq!(entry.spec.service_account, "billing-vm");
    // template < group metadata < proxy; the locality label is dropped.
    assert_eq!(
        entry.spec.labels,
        labels(&[("app", "billing"), ("tier", "group"), ("version", "v2")])
    );
    let annotations = entry.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations
            .get("istio.io/autoRegistrationGroup")
            .map(String::as_str),
        Some("billing")
    );
    assert_eq!(
        annotations.get("team").map(String::as_str),
        Some("payments")
    );
    let v6 = Workload {
        ips: vec![ip("fd00::1")],
        ..proxy.clone()
    };
    assert_eq!(
        entry_from_group(group, &v6).and_then(|e| e.metadata.name),
        Some("billing-fd00--1".to_string())
    );
    assert!(
        entry_from_group(
            group,
            &Workload {
                ips: vec![],
                ..proxy
            }
        )
        .is_none()
    );

    // Added to the resources, the entry is selected with the template's port.
    let registered = weft_config::Resource::WorkloadEntry(Box::new(entry));
    let mut refs: Vec<&weft_config::Resource> = owned.iter().collect();
    refs.push(&registered);
    let r = Registry::build(&refs, &[], "cluster.local");
    let eps = eps(&r, "billing.vms.mesh", "vms", 80);
    assert_eq!(targets(eps), ["10.5.0.1:8443"]);
    assert_eq!(eps[0].service_account, "billing-vm");
    assert_eq!(eps[0].workload, "billing-10.5.0.1");
}
