//! The proxy's TLS model reads exactly what the control plane writes: clusters from
//! `weft control`'s DestinationRule TLS translation (ISTIO_MUTUAL, SIMPLE, MUTUAL with a
//! CRL, insecure, credentialName) convert with the expected SNI, ALPN and secrets, and an
//! ISTIO_MUTUAL cluster resolves against the agent's `default` and `ROOTCA`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use weft_config::FieldPath;
use weft_config::networking::destination_rule::{ClientTLSSettings, TLSmode};
use weft_control::translate::traffic_policy::tls::{Upstream, apply};
use weft_identity::upstream::{SanKind, SanMatcher};
use weft_identity::{Ca, Credentials, SpiffeId, ca};
use weft_proxy::model::tls::{
    CertificateSource, SecretMaterial, SecretRef, SecretSource, TlsVersion, UpstreamTlsConfig,
    Validation, ValidationSource, upstream_transport,
};
use weft_xds::envoy_types::pb::envoy::config::cluster::v3::Cluster;
use weft_xds::envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::CertificateValidationContext;

/// An empty CRL issued by a throwaway CA (openssl `ca -gencrl`).
const CRL_PEM: &str = "-----BEGIN X509 CRL-----
MIGzMFwCAQEwCgYIKoZIzj0EAwIwGzEZMBcGA1UEAwwQd2VmdC1jcmwtdGVzdC1j
YRcNMjYxMTI1MDQwODU0WhgPMjEyNjExMDEwNDA4NTRaoA4wDDAKBgNVHRQEAwIB
ATAKBggqhkjOPQQDAgNHADBEAiAJuX2mSQnkn8d2W9eGwnCntn9A4k+VezlE+z+c
6E/OoQIgPArhZKmyuUkzRfuCTSosfUwj/NKSYkqFV5gXmGyUiZI=
-----END X509 CRL-----
";

const ISTIO_SNI: &str = "outbound_.8080_._.reviews.default.svc.cluster.local";
const REVIEWS: &str = "spiffe://cluster.local/ns/default/sa/reviews";

/// The cluster `weft control` writes for `tls`, converted by the proxy.
fn translated(tls: ClientTLSSettings) -> Option<UpstreamTlsConfig> {
    let mut cluster = Cluster {
        name: "outbound|8080||reviews.default.svc.cluster.local".into(),
        ..Default::default()
    };
    let name = cluster.name.clone();
    let up = Upstream {
        cluster: &name,
        istio_sni: ISTIO_SNI.into(),
        identities: vec![REVIEWS.into()],
        service_entry: false,
        sidecar_without_selector: false,
    };
    assert!(apply(&mut cluster, &mut None, &tls, &up), "{tls:?}");
    let path = FieldPath::parse("clusters[0].transport_socket");
    upstream_transport(cluster.transport_socket.as_ref(), &path).unwrap()
}

fn agent(name: &str, wait: Option<Duration>) -> SecretRef {
    SecretRef {
        name: name.into(),
        source: SecretSource::Grpc {
            cluster: "sds-grpc".into(),
        },
        initial_fetch_timeout: wait,
    }
}

const FIFTEEN: Option<Duration> = Some(Duration::from_secs(15));

#[test]
fn istio_mutual_converts_and_resolves_against_the_agents_secrets() {
    let c = translated(ClientTLSSettings {
        mode: TLSmode::IstioMutual,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.sni.as_deref(), Some(ISTIO_SNI));
    assert_eq!(c.alpn, ["istio-peer-exchange", "istio"]);
    assert_eq!(c.max_version, TlsVersion::Tls13);
    let refs: Vec<&SecretRef> = c.secrets().collect();
    assert_eq!(refs, [&agent("default", None), &agent("ROOTCA", None)]);
    let ValidationSource::Combined { default, .. } = &c.validation else {
        panic!("{:?}", c.validation);
    };
    assert_eq!(default.untyped_sans, [REVIEWS]);

    let mesh = Ca::generate("cluster.local").unwrap();
    let id = SpiffeId::workload("cluster.local", "default", "productpage").unwrap();
    let (key, csr) = ca::key_and_request().unwrap();
    let issued = mesh
        .sign(&csr, &id, ca::WORKLOAD_TTL, SystemTime::now())
        .unwrap();
    let own = Arc::new(SecretMaterial::Certificate(
        Credentials::from_pem(&issued.chain_pem, &key).unwrap(),
    ));
    let roots = Arc::new(SecretMaterial::Validation(
        Validation::new(
            &CertificateValidationContext {
                trusted_ca: Some(
                    weft_xds::envoy_types::pb::envoy::config::core::v3::DataSource {
                        specifier: Some(
                            weft_xds::envoy_types::pb::envoy::config::core::v3::data_source::Specifier::InlineBytes(
                                mesh.root_pem().as_bytes().to_vec(),
                            ),
                        ),
                        ..Default::default()
                    },
                ),
                ..Default::default()
            },
            &FieldPath::root(),
        )
        .unwrap(),
    ));
    let upstream = c
        .resolve(|r| match r.name.as_str() {
            "default" => Some(own.clone()),
            "ROOTCA" => Some(roots.clone()),
            _ => None,
        })
        .unwrap();
    assert!(upstream.roots.is_some() && upstream.own.is_some() && upstream.tls13);
    assert_eq!(
        upstream.sans,
        [SanMatcher {
            kind: SanKind::Any,
            exact: REVIEWS.into()
        }]
    );
    weft_identity::upstream::client_config(upstream).unwrap();
}

#[test]
fn simple_without_sni_names_its_root_file_and_waits_the_default() {
    let c = translated(ClientTLSSettings {
        mode: TLSmode::Simple,
        ca_certificates: "/etc/certs/ca.pem".into(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.sni, None);
    assert!(c.alpn.is_empty() && c.certificate.is_none());
    let refs: Vec<&SecretRef> = c.secrets().collect();
    assert_eq!(refs, [&agent("file-root:/etc/certs/ca.pem", FIFTEEN)]);

    let system = translated(ClientTLSSettings {
        mode: TLSmode::Simple,
        ..Default::default()
    })
    .unwrap();
    let refs: Vec<&SecretRef> = system.secrets().collect();
    assert_eq!(refs, [&agent("file-root:system", FIFTEEN)]);
}

#[test]
fn mutual_with_a_crl_reads_the_crl_file_and_names_the_agents_file_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let crl = dir.path().join("crl.pem");
    std::fs::write(&crl, CRL_PEM).unwrap();
    let crl = crl.to_str().unwrap().to_string();
    let c = translated(ClientTLSSettings {
        mode: TLSmode::Mutual,
        client_certificate: "/etc/certs/client.pem".into(),
        private_key: "/etc/certs/key.pem".into(),
        ca_certificates: "/etc/certs/ca.pem".into(),
        ca_crl: crl.clone(),
        subject_alt_names: vec!["db.bank.example".into()],
        sni: "db.bank.example".into(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.sni.as_deref(), Some("db.bank.example"));
    let Some(CertificateSource::Sds(cert)) = &c.certificate else {
        panic!("{:?}", c.certificate);
    };
    assert_eq!(
        cert,
        &agent(
            "file-cert:/etc/certs/client.pem~/etc/certs/key.pem",
            FIFTEEN
        )
    );
    let ValidationSource::Combined { default, secret } = &c.validation else {
        panic!("{:?}", c.validation);
    };
    assert_eq!(secret, &agent("file-root:/etc/certs/ca.pem", FIFTEEN));
    assert_eq!(default.untyped_sans, ["db.bank.example"]);
    let lists = default.crl.as_ref().unwrap();
    assert_eq!(
        (lists.origin.as_str(), lists.lists.len()),
        (crl.as_str(), 1)
    );

    // A CRL file that is not there rejects the cluster, naming the file.
    let gone = dir.path().join("gone.pem").to_str().unwrap().to_string();
    let mut cluster = Cluster::default();
    let tls = ClientTLSSettings {
        mode: TLSmode::Simple,
        ca_crl: gone.clone(),
        ..Default::default()
    };
    let up = Upstream {
        cluster: "c",
        istio_sni: String::new(),
        identities: Vec::new(),
        service_entry: false,
        sidecar_without_selector: false,
    };
    assert!(apply(&mut cluster, &mut None, &tls, &up));
    let e = upstream_transport(
        cluster.transport_socket.as_ref(),
        &FieldPath::parse("clusters[0].transport_socket"),
    )
    .unwrap_err();
    assert_eq!(
        e.path.to_string(),
        "clusters[0].transport_socket.typed_config.common_tls_context.\
         combined_validation_context.default_validation_context.crl.filename"
    );
    assert!(e.message.contains(&gone), "{e}");
}

#[test]
fn insecure_checks_nothing_and_credential_names_come_over_ads() {
    let c = translated(ClientTLSSettings {
        mode: TLSmode::Simple,
        insecure_skip_verify: Some(true),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.secrets().count(), 0);
    let up = c.resolve(|_| None).unwrap();
    assert!(up.roots.is_none() && up.sans.is_empty() && up.own.is_none());

    let c = translated(ClientTLSSettings {
        mode: TLSmode::Mutual,
        credential_name: "bank-client".into(),
        ..Default::default()
    })
    .unwrap();
    let refs: Vec<(&str, &SecretSource)> =
        c.secrets().map(|r| (r.name.as_str(), &r.source)).collect();
    assert_eq!(
        refs,
        [
            ("kubernetes://bank-client", &SecretSource::Ads),
            ("kubernetes://bank-client-cacert", &SecretSource::Ads)
        ]
    );
}
