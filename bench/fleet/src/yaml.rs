//! The mesh as the YAML a cluster would hold: one file per object kind per service
//! (`NAMESPACE/NAME-KIND.yaml`), so a change rewrites one small file as an operator or
//! a controller would, and the control plane re-reads only that file.

use std::fmt::Write;
use std::path::Path;

use anyhow::Context;

use crate::mesh::{Mesh, Service, write_atomic};

pub fn service(s: &Service) -> String {
    let mut out = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\n  \
         labels: {{ app: {name} }}\nspec:\n  type: ClusterIP\n  clusterIP: {ip}\n  \
         clusterIPs: [{ip}]\n  selector: {{ app: {name} }}\n  ports:\n",
        name = s.name,
        ns = s.namespace,
        ip = s.cluster_ip,
    );
    for p in &s.ports {
        let _ = write!(
            out,
            "  - {{ name: {}, port: {}, targetPort: {}, protocol: TCP",
            p.name, p.port, p.target
        );
        if let Some(app) = p.app_protocol {
            let _ = write!(out, ", appProtocol: {app}");
        }
        out.push_str(" }\n");
    }
    out
}

pub fn pods(s: &Service) -> String {
    let mut out = String::new();
    for (i, pod) in s.pods.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        let _ = write!(
            out,
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {pod_name}\n  namespace: {ns}\n  \
             labels:\n    app: {app}\n    version: {version}\n    pod-template-hash: {hash}\n    \
             topology.kubernetes.io/zone: {zone}\nspec:\n  serviceAccountName: {app}\n  \
             nodeName: {node}\n  containers:\n  - name: app\n    \
             image: registry.example/{app}:{version}\n    ports:\n",
            pod_name = pod.name,
            ns = s.namespace,
            app = s.name,
            version = pod.version,
            hash = pod.template_hash,
            zone = pod.zone,
            node = pod.node,
        );
        let mut targets: Vec<u16> = s.ports.iter().map(|p| p.target).collect();
        targets.dedup();
        for t in targets {
            let _ = writeln!(out, "    - {{ containerPort: {t}, protocol: TCP }}");
        }
        let _ = write!(
            out,
            "status:\n  phase: Running\n  podIP: {ip}\n  podIPs: [{{ ip: {ip} }}]\n",
            ip = pod.ip
        );
    }
    out
}

pub fn endpoint_slice(s: &Service) -> String {
    let mut out = format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  \
         name: {name}-{suffix}\n  namespace: {ns}\n  labels:\n    \
         kubernetes.io/service-name: {name}\n    \
         endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io\n\
         addressType: IPv4\nports:\n",
        name = s.name,
        suffix = s.slice_suffix,
        ns = s.namespace,
    );
    for p in &s.ports {
        let _ = writeln!(
            out,
            "- {{ name: {}, port: {}, protocol: TCP }}",
            p.name, p.target
        );
    }
    out.push_str("endpoints:\n");
    for (pod, ip) in s.pods.iter().zip(&s.endpoint_ips) {
        let _ = write!(
            out,
            "- addresses: [{ip}]\n  conditions: {{ ready: true, serving: true, terminating: false }}\n  \
             nodeName: {node}\n  zone: {zone}\n  \
             targetRef: {{ kind: Pod, name: {pod_name}, namespace: {ns} }}\n",
            node = pod.node,
            zone = pod.zone,
            pod_name = pod.name,
            ns = s.namespace,
        );
    }
    out
}

pub fn destination_rule(s: &Service) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  \
         name: {name}\n  namespace: {ns}\nspec:\n  host: {name}\n  trafficPolicy:\n    \
         loadBalancer: {{ simple: LEAST_REQUEST }}\n    connectionPool:\n      \
         tcp: {{ maxConnections: 1000, connectTimeout: 2s }}\n      \
         http: {{ http1MaxPendingRequests: 1024, maxRequestsPerConnection: 100 }}\n    \
         outlierDetection: {{ consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s }}\n  \
         subsets:\n  - {{ name: v1, labels: {{ version: v1 }} }}\n  \
         - {{ name: v2, labels: {{ version: v2 }} }}\n",
        name = s.name,
        ns = s.namespace,
    )
}

/// A canary VirtualService: a header-matched route (and sometimes a path prefix) to v2,
/// then the weighted split with a timeout and retries. Without a DestinationRule there are
/// no subsets: the same rules route to the host itself.
pub fn virtual_service(s: &Service) -> Option<String> {
    let r = s.routing.as_ref()?;
    let name = &s.name;
    let dest = |subset: &str| {
        if s.destination_rule {
            format!("{{ host: {name}, subset: {subset} }}")
        } else {
            format!("{{ host: {name} }}")
        }
    };
    let mut out = format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  \
         name: {name}\n  namespace: {ns}\nspec:\n  hosts: [{name}]\n  http:\n  \
         - name: canary-header\n    match:\n    - headers: {{ x-canary: {{ exact: \"true\" }} }}\n    \
         route:\n    - destination: {v2}\n    timeout: 2s\n",
        ns = s.namespace,
        v2 = dest("v2"),
    );
    if r.prefix_route {
        let _ = write!(
            out,
            "  - name: api-v2\n    match:\n    - uri: {{ prefix: /api/v2 }}\n    \
             route:\n    - destination: {v2}\n    \
             retries: {{ attempts: 2, perTryTimeout: 500ms, retryOn: \"connect-failure,refused-stream\" }}\n",
            v2 = dest("v2"),
        );
    }
    out.push_str("  - name: split\n    route:\n");
    if s.destination_rule {
        let _ = write!(
            out,
            "    - destination: {v1}\n      weight: {w1}\n    - destination: {v2}\n      weight: {w2}\n",
            v1 = dest("v1"),
            w1 = 100 - r.v2_weight,
            v2 = dest("v2"),
            w2 = r.v2_weight,
        );
    } else {
        let _ = writeln!(out, "    - destination: {}", dest("v1"));
    }
    let _ = write!(
        out,
        "    timeout: {t}s\n    retries: {{ attempts: {a}, perTryTimeout: 1s, \
         retryOn: \"5xx,reset,connect-failure,refused-stream\" }}\n",
        t = r.timeout_s,
        a = r.attempts,
    );
    Some(out)
}

/// Writes every file of the mesh under `dir` (which must be empty or absent).
pub fn write_mesh(mesh: &Mesh, dir: &Path) -> anyhow::Result<usize> {
    let mut files = 0;
    for s in &mesh.services {
        std::fs::create_dir_all(dir.join(&s.namespace))
            .with_context(|| format!("create {}", dir.join(&s.namespace).display()))?;
        let mut put = |path: std::path::PathBuf, text: String| -> anyhow::Result<()> {
            files += 1;
            write_atomic(&path, &text)
        };
        put(s.service_file(dir), service(s))?;
        put(s.pods_file(dir), pods(s))?;
        put(s.slice_file(dir), endpoint_slice(s))?;
        if s.destination_rule {
            put(s.destination_rule_file(dir), destination_rule(s))?;
        }
        if let Some(vs) = virtual_service(s) {
            put(s.virtual_service_file(dir), vs)?;
        }
    }
    Ok(files)
}
