//! The one bootstrap both proxies get: no listeners or routes of its own, only the static
//! `xds` cluster (HTTP/2 to the in-test ADS server) and `dynamic_resources` taking CDS and
//! LDS from ADS, so every behaviour under test comes from what the server pushes.

use super::AdsMode;

/// Bootstrap YAML for node `node` talking `mode` ADS to `127.0.0.1:ads_port`. The admin
/// listener takes a kernel-chosen port; the proxy reports it through
/// `--admin-address-path`.
pub fn bootstrap(node: &str, mode: AdsMode, ads_port: u16) -> String {
    let api_type = mode.api_type();
    format!(
        r#"node:
  id: {node}
  cluster: weft-ads-conformance
admin:
  address:
    socket_address: {{ address: 127.0.0.1, port_value: 0 }}
dynamic_resources:
  ads_config:
    api_type: {api_type}
    transport_api_version: V3
    grpc_services:
    - envoy_grpc: {{ cluster_name: xds }}
  cds_config: {{ ads: {{}}, resource_api_version: V3 }}
  lds_config: {{ ads: {{}}, resource_api_version: V3 }}
static_resources:
  clusters:
{xds}"#,
        xds = h2_cluster(
            "xds",
            &format!("socket_address: {{ address: 127.0.0.1, port_value: {ads_port} }}")
        )
    )
}

/// A static cluster speaking HTTP/2 (gRPC) to one `address` (the YAML of an Envoy
/// `Address`), as an entry of `static_resources.clusters`.
fn h2_cluster(name: &str, address: &str) -> String {
    format!(
        r#"  - name: {name}
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{ http2_protocol_options: {{}} }}
    load_assignment:
      cluster_name: {name}
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              {address}
"#
    )
}

/// A proxy as an Istio sidecar or gateway presents itself to the control plane: the node id
/// `TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local` and the metadata istio-agent sends.
#[derive(Clone, Debug)]
pub struct IstioNode {
    /// `sidecar` or `router`.
    pub kind: &'static str,
    pub pod: String,
    pub namespace: String,
    pub ip: String,
    /// `{ app: x, version: v1 }` (YAML flow map).
    pub labels: String,
}

impl IstioNode {
    pub fn id(&self) -> String {
        format!(
            "{}~{}~{}.{ns}~{ns}.svc.cluster.local",
            self.kind,
            self.ip,
            self.pod,
            ns = self.namespace
        )
    }
}

/// Bootstrap YAML for `node` with Istio's node metadata, over state-of-the-world ADS to
/// `127.0.0.1:ads_port` (CDS and LDS by ADS; the admin port is chosen by the kernel).
pub fn istio_bootstrap(node: &IstioNode, ads_port: u16) -> String {
    let id = node.id();
    let IstioNode {
        namespace,
        ip,
        labels,
        ..
    } = node;
    let base = bootstrap(&id, AdsMode::Sotw, ads_port);
    base.replacen(
        "  cluster: weft-ads-conformance\n",
        &format!(
            "  cluster: {namespace}\n  metadata:\n    NAMESPACE: {namespace}\n    \
             SERVICE_ACCOUNT: default\n    INSTANCE_IPS: {ip}\n    LABELS: {labels}\n"
        ),
        1,
    )
}

/// `bootstrap` (one of the above) with its `xds` cluster speaking TLS: trusting the PEM
/// roots in `root`, expecting the server's certificate to name `server` (DNS), as Istio's
/// proxies reach istiod on 15012, and presenting `client` (certificate chain and key
/// files), the workload's certificate, when given.
pub fn with_xds_tls(
    bootstrap: &str,
    root: &std::path::Path,
    server: &str,
    client: Option<(&std::path::Path, &std::path::Path)>,
) -> String {
    let certificate = client.map_or(String::new(), |(chain, key)| {
        format!(
            "\n          tls_certificates:\n          - certificate_chain: {{ filename: {} }}\n            private_key: {{ filename: {} }}",
            chain.display(),
            key.display()
        )
    });
    let socket = format!(
        r#"    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: {server}
        common_tls_context:
          alpn_protocols: [h2]{certificate}
          validation_context:
            trusted_ca: {{ filename: {root} }}
            match_typed_subject_alt_names:
            - san_type: DNS
              matcher: {{ exact: {server} }}
    load_assignment:
      cluster_name: xds
"#,
        root = root.display()
    );
    let anchor = "    load_assignment:\n      cluster_name: xds\n";
    assert!(
        bootstrap.contains(anchor),
        "not a bootstrap of this module: it has no xds cluster"
    );
    bootstrap.replacen(anchor, &socket, 1)
}

/// `bootstrap` (one of the above) with its `xds` cluster on the Unix socket `socket` (an
/// Envoy `pipe`) instead of a loopback port.
pub fn with_xds_pipe(bootstrap: &str, socket: &std::path::Path) -> String {
    let start = bootstrap
        .find("  - name: xds\n")
        .expect("not a bootstrap of this module: it has no xds cluster");
    let from = start
        + bootstrap[start..]
            .find("socket_address:")
            .expect("the xds cluster has a socket address");
    let to = from
        + bootstrap[from..]
            .find('\n')
            .unwrap_or(bootstrap.len() - from);
    format!(
        "{}pipe: {{ path: {} }}{}",
        &bootstrap[..from],
        socket.display(),
        &bootstrap[to..]
    )
}

/// `bootstrap` (one of the above) with Istio's `sds-grpc` cluster, the secret agent on the
/// Unix socket `socket`: where the clusters' `default`, `ROOTCA`, `file-root:` and
/// `file-cert:` secrets come from, as in the bootstrap istio-agent writes.
pub fn with_sds(bootstrap: &str, socket: &std::path::Path) -> String {
    let anchor = "static_resources:\n  clusters:\n";
    assert!(
        bootstrap.contains(anchor),
        "not a bootstrap of this module: it has no static clusters"
    );
    let cluster = format!(
        "{anchor}{}",
        h2_cluster(
            "sds-grpc",
            &format!("pipe: {{ path: {} }}", socket.display())
        )
    );
    bootstrap.replacen(anchor, &cluster, 1)
}
