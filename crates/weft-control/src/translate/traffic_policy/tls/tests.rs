//! DestinationRule `tls` checked on the decoded clusters a sidecar and a gateway are
//! sent, against the shapes istiod's cluster_tls_test.go expects for each mode.

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::config_source::ConfigSourceSpecifier;
use envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, SdsSecretConfig, UpstreamTlsContext, common_tls_context,
    tls_parameters::TlsProtocol,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
use prost::Message;

use crate::node::ProxyType;
use crate::translate::tests::{decode, proxy, view};
use crate::translate::{MeshSettings, generate};

const MESH: &str = r#"
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: prod }
spec:
  clusterIP: 10.0.0.1
  selector: { app: reviews }
  ports: [{ name: http, port: 9080 }, { name: grpc, port: 9090 }, { name: tcp, port: 7000 }]
---
apiVersion: v1
kind: Pod
metadata: { name: reviews-1, namespace: prod, labels: { app: reviews, version: v1 } }
spec: { serviceAccountName: bookinfo-reviews, containers: [{ name: app, image: app }] }
status: { phase: Running, podIP: 10.1.0.1 }
---
apiVersion: v1
kind: Pod
metadata: { name: reviews-2, namespace: prod, labels: { app: reviews, version: v2 } }
spec: { containers: [{ name: app, image: app }] }
status: { phase: Running, podIP: 10.1.0.2 }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: prod }
spec:
  host: reviews
  trafficPolicy:
    tls: { mode: ISTIO_MUTUAL }
    portLevelSettings:
    - port: { number: 7000 }
      loadBalancer: { simple: RANDOM }
  subsets:
  - { name: v1, labels: { version: v1 } }
  - name: v2
    labels: { version: v2 }
    trafficPolicy: { tls: { mode: DISABLE } }
---
apiVersion: v1
kind: Service
metadata: { name: bank, namespace: prod }
spec: { clusterIP: 10.0.0.2, ports: [{ name: http, port: 80 }, { name: tcp, port: 5432 }] }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: bank, namespace: prod }
spec:
  host: bank
  trafficPolicy:
    tls: { mode: SIMPLE }
    portLevelSettings:
    - port: { number: 5432 }
      tls:
        mode: MUTUAL
        clientCertificate: /etc/certs/client.pem
        privateKey: /etc/certs/key.pem
        caCertificates: /etc/certs/ca.pem
        caCrl: /etc/certs/crl.pem
        subjectAltNames: [db.bank.example]
        sni: db.bank.example
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: payments, namespace: prod }
spec:
  hosts: [payments.example.com]
  resolution: DNS
  location: MESH_EXTERNAL
  subjectAltNames: [spiffe://partner.example/ns/pay/sa/api]
  ports: [{ number: 443, name: https, protocol: HTTPS }, { number: 8443, name: tls, protocol: TLS }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: payments, namespace: prod }
spec:
  host: payments.example.com
  trafficPolicy:
    tls: { mode: SIMPLE, caCertificates: /etc/partner/ca.pem }
    portLevelSettings:
    - port: { number: 8443 }
      tls: { mode: SIMPLE, insecureSkipVerify: true }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: vault, namespace: prod }
spec:
  hosts: [vault.example.com]
  resolution: DNS
  ports: [{ number: 443, name: tls, protocol: TLS }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: vault, namespace: prod }
spec:
  host: vault.example.com
  trafficPolicy: { tls: { mode: MUTUAL, credentialName: vault-client } }
"#;

fn clusters_of(
    mesh: MeshSettings,
    kind: ProxyType,
) -> Vec<(String, envoy_types::pb::google::protobuf::Any)> {
    let mut v = view(MESH);
    v.mesh = mesh;
    let mut p = proxy("prod", &[]);
    p.proxy_type = kind;
    generate(&p, &v).clusters
}

fn cluster(name: &str) -> Cluster {
    decode(
        &clusters_of(MeshSettings::default(), ProxyType::Sidecar),
        name,
    )
}

/// The cluster's TLS context, if it has a TLS transport socket.
fn tls(c: &Cluster) -> Option<UpstreamTlsContext> {
    let socket = c.transport_socket.as_ref()?;
    assert_eq!(socket.name, "envoy.transport_sockets.tls");
    let Some(ConfigType::TypedConfig(any)) = &socket.config_type else {
        panic!("a typed config");
    };
    assert_eq!(
        any.type_url,
        "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
    );
    Some(UpstreamTlsContext::decode(any.value.as_slice()).expect("decodes"))
}

fn common(t: &UpstreamTlsContext) -> &CommonTlsContext {
    t.common_tls_context.as_ref().expect("a common context")
}

/// The validation context's exact SANs and its roots' secret.
fn validation(t: &UpstreamTlsContext) -> (Vec<String>, Option<&SdsSecretConfig>, Option<String>) {
    match common(t).validation_context_type.as_ref() {
        Some(common_tls_context::ValidationContextType::CombinedValidationContext(c)) => {
            let d = c
                .default_validation_context
                .as_ref()
                .expect("a default context");
            #[allow(deprecated)]
            let sans = d
                .match_subject_alt_names
                .iter()
                .map(|m| match &m.match_pattern {
                    Some(MatchPattern::Exact(s)) => s.clone(),
                    other => panic!("an exact matcher, not {other:?}"),
                })
                .collect();
            let crl = d.crl.as_ref().map(|c| format!("{:?}", c.specifier));
            (sans, c.validation_context_sds_secret_config.as_ref(), crl)
        }
        other => panic!("a combined validation context, not {other:?}"),
    }
}

/// `(name, on the agent's sds-grpc, initial fetch timeout is zero)`, or the name and ADS.
fn source(s: &SdsSecretConfig) -> (String, &'static str, bool) {
    let cfg = s.sds_config.as_ref().expect("an SDS config");
    let via = match cfg.config_source_specifier.as_ref() {
        Some(ConfigSourceSpecifier::ApiConfigSource(api)) => {
            assert_eq!(api.grpc_services.len(), 1);
            assert!(api.set_node_on_first_message_only);
            match api.grpc_services[0].target_specifier.as_ref() {
                Some(envoy_types::pb::envoy::config::core::v3::grpc_service::TargetSpecifier::EnvoyGrpc(g))
                    if g.cluster_name == "sds-grpc" => "sds-grpc",
                other => panic!("the sds-grpc cluster, not {other:?}"),
            }
        }
        Some(ConfigSourceSpecifier::Ads(_)) => "ads",
        other => panic!("an SDS source, not {other:?}"),
    };
    let zero = cfg
        .initial_fetch_timeout
        .is_some_and(|d| d.seconds == 0 && d.nanos == 0);
    (s.name.clone(), via, zero)
}

fn http_options(c: &Cluster) -> HttpProtocolOptions {
    let any = c
        .typed_extension_protocol_options
        .get("envoy.extensions.upstreams.http.v3.HttpProtocolOptions")
        .expect("HTTP options");
    HttpProtocolOptions::decode(any.value.as_slice()).expect("decodes")
}

fn alpn_override(c: &Cluster) -> bool {
    c.metadata
        .as_ref()
        .and_then(|m| m.filter_metadata.get("istio"))
        .and_then(|s| s.fields.get("alpn_override"))
        .is_some_and(|v| {
            v.kind
                == Some(envoy_types::pb::google::protobuf::value::Kind::StringValue(
                    "false".into(),
                ))
        })
}

const HOST: &str = "reviews.prod.svc.cluster.local";

#[test]
fn istio_mutual_uses_the_workload_certificate_and_the_service_accounts() {
    let c = cluster(&format!("outbound|9080||{HOST}"));
    let t = tls(&c).expect("ISTIO_MUTUAL sets a TLS socket");
    assert_eq!(t.sni, format!("outbound_.9080_._.{HOST}"));
    let ctx = common(&t);
    assert_eq!(ctx.alpn_protocols, ["istio-peer-exchange", "istio"]);
    let params = ctx.tls_params.as_ref().expect("TLS parameters");
    assert_eq!(
        params.tls_minimum_protocol_version,
        TlsProtocol::TlSv12 as i32
    );
    assert_eq!(
        params.tls_maximum_protocol_version,
        TlsProtocol::TlSv13 as i32
    );
    assert_eq!(ctx.tls_certificate_sds_secret_configs.len(), 1);
    assert_eq!(
        source(&ctx.tls_certificate_sds_secret_configs[0]),
        ("default".into(), "sds-grpc", true)
    );
    let (sans, roots, crl) = validation(&t);
    // Both pods' accounts, the one without a name being Kubernetes' `default`.
    assert_eq!(
        sans,
        [
            "spiffe://cluster.local/ns/prod/sa/bookinfo-reviews",
            "spiffe://cluster.local/ns/prod/sa/default"
        ]
    );
    assert_eq!(
        source(roots.expect("roots")),
        ("ROOTCA".into(), "sds-grpc", true)
    );
    assert_eq!(crl, None);
    assert!(!alpn_override(&c), "only SIMPLE and MUTUAL are marked");

    // HTTP/2 adds `h2`; a subset's SNI names it.
    let grpc = tls(&cluster(&format!("outbound|9090||{HOST}"))).expect("TLS");
    assert_eq!(
        common(&grpc).alpn_protocols,
        ["istio-peer-exchange", "istio", "h2"]
    );
    let v1 = tls(&cluster(&format!("outbound|9080|v1|{HOST}"))).expect("TLS");
    assert_eq!(v1.sni, format!("outbound_.9080_.v1_.{HOST}"));
}

#[test]
fn disable_and_port_level_settings_replace_the_levels_above() {
    assert!(tls(&cluster(&format!("outbound|9080|v2|{HOST}"))).is_none());
    // The 7000 entry names no tls: nothing of the top level's is inherited.
    assert!(tls(&cluster(&format!("outbound|7000||{HOST}"))).is_none());
    assert!(tls(&cluster(&format!("outbound|7000|v1|{HOST}"))).is_none());
}

#[test]
fn trust_domain_and_aliases_shape_the_identities() {
    let mesh = MeshSettings {
        trust_domain: "corp.example".into(),
        trust_domain_aliases: vec!["old.example".into()],
        ..Default::default()
    };
    let c: Cluster = decode(
        &clusters_of(mesh, ProxyType::Sidecar),
        &format!("outbound|9080||{HOST}"),
    );
    let (sans, _, _) = validation(&tls(&c).expect("TLS"));
    assert_eq!(
        sans,
        [
            "spiffe://corp.example/ns/prod/sa/bookinfo-reviews",
            "spiffe://corp.example/ns/prod/sa/default",
            "spiffe://old.example/ns/prod/sa/bookinfo-reviews",
            "spiffe://old.example/ns/prod/sa/default",
        ]
    );
}

#[test]
fn simple_without_sni_or_roots_trusts_the_system_and_sends_the_host() {
    let c = cluster("outbound|80||bank.prod.svc.cluster.local");
    let t = tls(&c).expect("SIMPLE sets a TLS socket");
    assert_eq!(t.sni, "");
    let ctx = common(&t);
    assert!(ctx.alpn_protocols.is_empty(), "HTTP/1.1 cluster: no ALPN");
    assert!(ctx.tls_certificate_sds_secret_configs.is_empty());
    let (sans, roots, _) = validation(&t);
    assert!(sans.is_empty());
    assert_eq!(
        source(roots.expect("roots")),
        ("file-root:system".into(), "sds-grpc", false)
    );
    let up = http_options(&c)
        .upstream_http_protocol_options
        .expect("upstream HTTP options");
    assert!(up.auto_sni && up.auto_san_validation);
    assert!(alpn_override(&c));
}

#[test]
fn mutual_takes_its_files_through_the_agent() {
    let c = cluster("outbound|5432||bank.prod.svc.cluster.local");
    let t = tls(&c).expect("MUTUAL sets a TLS socket");
    assert_eq!(t.sni, "db.bank.example");
    let ctx = common(&t);
    assert_eq!(
        source(&ctx.tls_certificate_sds_secret_configs[0]),
        (
            "file-cert:/etc/certs/client.pem~/etc/certs/key.pem".into(),
            "sds-grpc",
            false
        )
    );
    let (sans, roots, crl) = validation(&t);
    assert_eq!(sans, ["db.bank.example"]);
    assert_eq!(
        source(roots.expect("roots")).0,
        "file-root:/etc/certs/ca.pem"
    );
    assert!(crl.expect("a CRL").contains("/etc/certs/crl.pem"));
    // An SNI is given, so Envoy is not asked to derive one.
    assert!(
        c.typed_extension_protocol_options.is_empty()
            || http_options(&c)
                .upstream_http_protocol_options
                .is_none_or(|u| !u.auto_sni)
    );
}

#[test]
fn service_entries_expect_their_subject_alt_names_and_insecure_skips_verification() {
    let c = cluster("outbound|443||payments.example.com");
    let t = tls(&c).expect("TLS");
    let (sans, roots, _) = validation(&t);
    assert_eq!(sans, ["spiffe://partner.example/ns/pay/sa/api"]);
    assert_eq!(
        source(roots.expect("roots")).0,
        "file-root:/etc/partner/ca.pem"
    );
    let up = http_options(&c)
        .upstream_http_protocol_options
        .expect("upstream HTTP options");
    assert!(up.auto_sni && !up.auto_san_validation, "SANs are given");

    let insecure = tls(&cluster("outbound|8443||payments.example.com")).expect("TLS");
    match common(&insecure).validation_context_type.as_ref() {
        Some(common_tls_context::ValidationContextType::ValidationContext(v)) => {
            assert_eq!(*v, Default::default(), "nothing is verified");
        }
        other => panic!("an empty validation context, not {other:?}"),
    }
}

#[test]
fn a_credential_applies_at_gateways_and_selected_sidecars_only() {
    // A sidecar whose rule selects no workload: plaintext, as istiod sends it.
    assert!(tls(&cluster("outbound|443||vault.example.com")).is_none());
    let g: Cluster = decode(
        &clusters_of(MeshSettings::default(), ProxyType::Router),
        "outbound|443||vault.example.com",
    );
    let t = tls(&g).expect("a gateway originates TLS");
    let ctx = common(&t);
    assert_eq!(
        source(&ctx.tls_certificate_sds_secret_configs[0]),
        ("kubernetes://vault-client".into(), "ads", false)
    );
    let (_, roots, _) = validation(&t);
    assert_eq!(
        source(roots.expect("roots")),
        ("kubernetes://vault-client-cacert".into(), "ads", false)
    );
}
