//! The shapes istiod and `weft control` emit (ISTIO_MUTUAL, SIMPLE, MUTUAL, insecure, CRL),
//! the refusals by field path, the version mapping, and how secrets resolve and merge.

use super::*;
use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, GrpcService, data_source, grpc_service,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, GenericSecret, SubjectAltNameMatcher, common_tls_context,
};
use envoy_types::pb::google::protobuf::{Duration as PbDuration, UInt32Value};
use envoy_types::util::pack_any;
use std::collections::HashMap;
use std::time::SystemTime;
use weft_identity::{Ca, SpiffeId, ca};

/// An empty CRL issued by a throwaway CA (openssl `ca -gencrl`); conversion only parses it.
const CRL_PEM: &str = "-----BEGIN X509 CRL-----
MIGzMFwCAQEwCgYIKoZIzj0EAwIwGzEZMBcGA1UEAwwQd2VmdC1jcmwtdGVzdC1j
YRcNMjYxMTI1MDQwODU0WhgPMjEyNjExMDEwNDA4NTRaoA4wDDAKBgNVHRQEAwIB
ATAKBggqhkjOPQQDAgNHADBEAiAJuX2mSQnkn8d2W9eGwnCntn9A4k+VezlE+z+c
6E/OoQIgPArhZKmyuUkzRfuCTSosfUwj/NKSYkqFV5gXmGyUiZI=
-----END X509 CRL-----
";

const ISTIO_SNI: &str = "outbound_.8080_._.reviews.default.svc.cluster.local";
const REVIEWS: &str = "spiffe://cluster.local/ns/default/sa/reviews";

fn at() -> FieldPath {
    FieldPath::parse("clusters[3].transport_socket")
}

fn socket(ctx: UpstreamTlsContext) -> TransportSocket {
    TransportSocket {
        name: TLS_SOCKET.into(),
        config_type: Some(ConfigType::TypedConfig(pack_any(ctx))),
    }
}

fn convert(ctx: UpstreamTlsContext) -> Result<UpstreamTlsConfig> {
    UpstreamTlsConfig::new(&socket(ctx), &at())
}

/// The error, as `path: message`.
fn refused(ctx: UpstreamTlsContext) -> String {
    convert(ctx).expect_err("must be refused").to_string()
}

fn assert_refused(ctx: UpstreamTlsContext, path: &str, says: &str) {
    let e = convert(ctx).expect_err("must be refused");
    assert_eq!(e.path.to_string(), path, "{e}");
    assert!(e.message.contains(says), "{e}");
}

/// What `weft control`'s `agent_secret` writes: GRPC to `sds-grpc`.
fn agent(name: &str, wait: Option<PbDuration>) -> SdsSecretConfig {
    SdsSecretConfig {
        name: name.into(),
        sds_config: Some(ConfigSource {
            resource_api_version: ApiVersion::V3 as i32,
            initial_fetch_timeout: wait,
            config_source_specifier: Some(ConfigSourceSpecifier::ApiConfigSource(
                ApiConfigSource {
                    api_type: api_config_source::ApiType::Grpc as i32,
                    transport_api_version: ApiVersion::V3 as i32,
                    set_node_on_first_message_only: true,
                    grpc_services: vec![GrpcService {
                        target_specifier: Some(TargetSpecifier::EnvoyGrpc(
                            grpc_service::EnvoyGrpc {
                                cluster_name: "sds-grpc".into(),
                                ..Default::default()
                            },
                        )),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            )),
            ..Default::default()
        }),
    }
}

fn exact_matchers(names: &[&str]) -> Vec<StringMatcher> {
    names
        .iter()
        .map(|n| StringMatcher {
            match_pattern: Some(MatchPattern::Exact(n.to_string())),
            ..Default::default()
        })
        .collect()
}

fn file(name: &str) -> DataSource {
    DataSource {
        specifier: Some(data_source::Specifier::Filename(name.into())),
        ..Default::default()
    }
}

fn inline(text: &str) -> DataSource {
    DataSource {
        specifier: Some(data_source::Specifier::InlineString(text.into())),
        ..Default::default()
    }
}

fn tls_params(min: TlsProtocol, max: TlsProtocol) -> TlsParameters {
    TlsParameters {
        tls_minimum_protocol_version: min as i32,
        tls_maximum_protocol_version: max as i32,
        ..Default::default()
    }
}

fn combined(
    default: CertificateValidationContext,
    roots: SdsSecretConfig,
) -> Option<ValidationContextType> {
    Some(ValidationContextType::CombinedValidationContext(
        common_tls_context::CombinedCertificateValidationContext {
            default_validation_context: Some(default),
            validation_context_sds_secret_config: Some(roots),
            ..Default::default()
        },
    ))
}

/// ISTIO_MUTUAL as `weft control` (and istiod) write it.
fn istio_mutual() -> UpstreamTlsContext {
    UpstreamTlsContext {
        sni: ISTIO_SNI.into(),
        common_tls_context: Some(CommonTlsContext {
            tls_params: Some(tls_params(TlsProtocol::TlSv12, TlsProtocol::TlSv13)),
            alpn_protocols: vec!["istio-peer-exchange".into(), "istio".into()],
            tls_certificate_sds_secret_configs: vec![agent("default", Some(PbDuration::default()))],
            validation_context_type: combined(
                CertificateValidationContext {
                    match_subject_alt_names: exact_matchers(&[REVIEWS]),
                    ..Default::default()
                },
                agent("ROOTCA", Some(PbDuration::default())),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// SIMPLE with `caCertificates` and no `sni`.
fn simple(roots: &str) -> UpstreamTlsContext {
    UpstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_params: Some(tls_params(TlsProtocol::TlSv12, TlsProtocol::TlSv13)),
            validation_context_type: combined(
                CertificateValidationContext::default(),
                agent(&format!("file-root:{roots}"), None),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn common(ctx: &mut UpstreamTlsContext) -> &mut CommonTlsContext {
    ctx.common_tls_context.get_or_insert_with(Default::default)
}

fn grpc(cluster: &str) -> SecretSource {
    SecretSource::Grpc {
        cluster: cluster.into(),
    }
}

fn mesh() -> Ca {
    Ca::generate("cluster.local").unwrap()
}

/// A workload certificate and key of `ca`, as PEM.
fn workload_pem(ca: &Ca) -> (String, String) {
    let id = SpiffeId::workload("cluster.local", "default", "reviews").unwrap();
    let (key, csr) = ca::key_and_request().unwrap();
    let issued = ca
        .sign(&csr, &id, ca::WORKLOAD_TTL, SystemTime::now())
        .unwrap();
    (issued.chain_pem, key)
}

fn roots_secret(pem: &str) -> Arc<SecretMaterial> {
    Arc::new(SecretMaterial::Validation(
        Validation::new(
            &CertificateValidationContext {
                trusted_ca: Some(inline(pem)),
                ..Default::default()
            },
            &FieldPath::root(),
        )
        .unwrap(),
    ))
}

fn certificate_secret(ca: &Ca) -> Arc<SecretMaterial> {
    let (chain, key) = workload_pem(ca);
    Arc::new(SecretMaterial::Certificate(
        Credentials::from_pem(&chain, &key).unwrap(),
    ))
}

/// A lookup over these secrets by name.
fn secrets(
    list: Vec<(&str, Arc<SecretMaterial>)>,
) -> impl Fn(&SecretRef) -> Option<Arc<SecretMaterial>> {
    let map: HashMap<String, Arc<SecretMaterial>> =
        list.into_iter().map(|(n, m)| (n.to_string(), m)).collect();
    move |r: &SecretRef| map.get(&r.name).cloned()
}

#[test]
fn istio_mutual_keeps_the_sni_alpn_and_agent_secrets_waited_for_without_limit() {
    let c = convert(istio_mutual()).unwrap();
    assert_eq!(c.sni.as_deref(), Some(ISTIO_SNI));
    assert_eq!(c.alpn, ["istio-peer-exchange", "istio"]);
    assert_eq!(c.max_version, TlsVersion::Tls13);
    let Some(CertificateSource::Sds(cert)) = &c.certificate else {
        panic!("{:?}", c.certificate);
    };
    assert_eq!(
        cert,
        &SecretRef {
            name: "default".into(),
            source: grpc("sds-grpc"),
            initial_fetch_timeout: None,
        }
    );
    let ValidationSource::Combined { default, secret } = &c.validation else {
        panic!("{:?}", c.validation);
    };
    assert_eq!(secret.name, "ROOTCA");
    assert_eq!(secret.source, grpc("sds-grpc"));
    assert_eq!(secret.initial_fetch_timeout, None);
    assert_eq!(default.untyped_sans, [REVIEWS]);
    assert!(default.typed_sans.is_empty());
    assert!(default.trusted_ca.is_none() && default.crl.is_none());
    let names: Vec<&str> = c.secrets().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["default", "ROOTCA"]);

    let ca = mesh();
    let up = c
        .resolve(secrets(vec![
            ("default", certificate_secret(&ca)),
            ("ROOTCA", roots_secret(ca.root_pem())),
        ]))
        .unwrap();
    assert!(up.roots.is_some() && up.own.is_some());
    assert_eq!(
        up.sans,
        [SanMatcher {
            kind: SanKind::Any,
            exact: REVIEWS.into()
        }]
    );
    assert_eq!(
        up.alpn,
        [b"istio-peer-exchange".to_vec(), b"istio".to_vec()]
    );
    assert!(up.tls13);
    assert!(up.crls.is_empty());
}

#[test]
fn simple_with_a_root_file_waits_envoys_default_and_sends_no_sni() {
    let c = convert(simple("/etc/certs/ca.pem")).unwrap();
    assert_eq!(c.sni, None);
    assert!(c.alpn.is_empty());
    assert!(c.certificate.is_none());
    let refs: Vec<&SecretRef> = c.secrets().collect();
    assert_eq!(
        refs,
        [&SecretRef {
            name: "file-root:/etc/certs/ca.pem".into(),
            source: grpc("sds-grpc"),
            initial_fetch_timeout: Some(Duration::from_secs(15)),
        }]
    );
    let ca = mesh();
    let up = c
        .resolve(secrets(vec![(
            "file-root:/etc/certs/ca.pem",
            roots_secret(ca.root_pem()),
        )]))
        .unwrap();
    assert!(up.roots.is_some() && up.own.is_none() && up.sans.is_empty());
}

#[test]
fn mutual_presents_the_agents_file_certificate() {
    let mut ctx = simple("/etc/certs/ca.pem");
    common(&mut ctx).tls_certificate_sds_secret_configs = vec![agent(
        "file-cert:/etc/certs/client.pem~/etc/certs/key.pem",
        None,
    )];
    let c = convert(ctx).unwrap();
    let Some(CertificateSource::Sds(cert)) = &c.certificate else {
        panic!("{:?}", c.certificate);
    };
    assert_eq!(
        cert.name,
        "file-cert:/etc/certs/client.pem~/etc/certs/key.pem"
    );
    assert_eq!(cert.initial_fetch_timeout, Some(Duration::from_secs(15)));
    assert_eq!(c.secrets().count(), 2);
    let missing = c
        .resolve(secrets(vec![(
            "file-root:/etc/certs/ca.pem",
            roots_secret(mesh().root_pem()),
        )]))
        .unwrap_err();
    assert_eq!(
        missing,
        Unresolved::Missing("file-cert:/etc/certs/client.pem~/etc/certs/key.pem".into())
    );
}

#[test]
fn insecure_checks_nothing_and_needs_no_secret() {
    let mut ctx = UpstreamTlsContext::default();
    common(&mut ctx).validation_context_type = Some(ValidationContextType::ValidationContext(
        CertificateValidationContext::default(),
    ));
    let c = convert(ctx).unwrap();
    assert_eq!(c.secrets().count(), 0);
    let up = c.resolve(|_| None).unwrap();
    assert!(up.roots.is_none() && up.sans.is_empty() && up.crls.is_empty());
    assert!(up.own.is_none());
    // Envoy's client default is TLS 1.2 only.
    assert!(!up.tls13);
}

#[test]
fn a_crl_file_is_read_at_conversion_and_refused_when_unreadable_or_not_a_crl() {
    let dir = tempfile::tempdir().unwrap();
    let crl = dir.path().join("crl.pem");
    std::fs::write(&crl, CRL_PEM).unwrap();
    let crl = crl.to_str().unwrap().to_string();
    let with_crl = |name: &str| {
        let mut ctx = simple("/etc/certs/ca.pem");
        common(&mut ctx).validation_context_type = combined(
            CertificateValidationContext {
                match_subject_alt_names: exact_matchers(&["db.bank.example"]),
                crl: Some(file(name)),
                ..Default::default()
            },
            agent("file-root:/etc/certs/ca.pem", None),
        );
        ctx
    };
    let c = convert(with_crl(&crl)).unwrap();
    let ValidationSource::Combined { default, .. } = &c.validation else {
        panic!("{:?}", c.validation);
    };
    let lists = default.crl.as_ref().unwrap();
    assert_eq!(lists.origin, crl);
    assert_eq!(lists.lists.len(), 1);
    let up = c
        .resolve(secrets(vec![(
            "file-root:/etc/certs/ca.pem",
            roots_secret(mesh().root_pem()),
        )]))
        .unwrap();
    assert_eq!(up.crls, lists.lists);

    let crl_path = "clusters[3].transport_socket.typed_config.common_tls_context.\
                    combined_validation_context.default_validation_context.crl";
    let gone = dir.path().join("gone.pem");
    let gone = gone.to_str().unwrap();
    assert_refused(with_crl(gone), &format!("{crl_path}.filename"), gone);

    // A certificate is PEM, but not a revocation list.
    let not_crl = dir.path().join("cert.pem");
    std::fs::write(&not_crl, mesh().root_pem()).unwrap();
    let not_crl = not_crl.to_str().unwrap();
    assert_refused(
        with_crl(not_crl),
        crl_path,
        &format!("Failed to load CRL from {not_crl}"),
    );
    let damaged = dir.path().join("damaged.pem");
    std::fs::write(
        &damaged,
        "-----BEGIN X509 CRL-----\nMIIBAAAA\n-----END X509 CRL-----\n",
    )
    .unwrap();
    let damaged = damaged.to_str().unwrap();
    assert_refused(
        with_crl(damaged),
        crl_path,
        &format!("Failed to load CRL from {damaged}"),
    );
}

#[test]
fn an_inline_context_with_roots_checks_typed_sans_and_needs_roots_for_sans_and_crls() {
    let ca = mesh();
    let typed = vec![
        SubjectAltNameMatcher {
            san_type: SanType::Dns as i32,
            matcher: exact_matchers(&["*.bank.example"]).pop(),
            ..Default::default()
        },
        SubjectAltNameMatcher {
            san_type: SanType::Uri as i32,
            matcher: exact_matchers(&[REVIEWS]).pop(),
            ..Default::default()
        },
    ];
    let mut ctx = UpstreamTlsContext::default();
    common(&mut ctx).validation_context_type = Some(ValidationContextType::ValidationContext(
        CertificateValidationContext {
            trusted_ca: Some(inline(ca.root_pem())),
            match_typed_subject_alt_names: typed.clone(),
            // Ignored by Envoy when typed matchers are present.
            match_subject_alt_names: exact_matchers(&["ignored"]),
            ..Default::default()
        },
    ));
    let up = convert(ctx).unwrap().resolve(|_| None).unwrap();
    assert!(up.roots.is_some());
    assert_eq!(
        up.sans,
        [
            SanMatcher {
                kind: SanKind::Dns,
                exact: "*.bank.example".into()
            },
            SanMatcher {
                kind: SanKind::Uri,
                exact: REVIEWS.into()
            }
        ]
    );

    let vc = "clusters[3].transport_socket.typed_config.common_tls_context.validation_context";
    let mut ctx = UpstreamTlsContext::default();
    common(&mut ctx).validation_context_type = Some(ValidationContextType::ValidationContext(
        CertificateValidationContext {
            match_typed_subject_alt_names: typed,
            ..Default::default()
        },
    ));
    assert_refused(
        ctx,
        &format!("{vc}.match_typed_subject_alt_names"),
        "SAN-based verification of peer certificates without trusted CA is insecure and not allowed",
    );
    let mut ctx = UpstreamTlsContext::default();
    common(&mut ctx).validation_context_type = Some(ValidationContextType::ValidationContext(
        CertificateValidationContext {
            crl: Some(inline(CRL_PEM)),
            ..Default::default()
        },
    ));
    assert_refused(
        ctx,
        &format!("{vc}.crl"),
        "Failed to load CRL from <inline> without trusted CA",
    );
    let mut ctx = UpstreamTlsContext::default();
    common(&mut ctx).validation_context_type = Some(ValidationContextType::ValidationContext(
        CertificateValidationContext {
            trusted_ca: Some(inline("not a certificate")),
            ..Default::default()
        },
    ));
    assert_refused(
        ctx,
        &format!("{vc}.trusted_ca"),
        "Failed to load trusted CA certificates from <inline>",
    );
}

#[test]
fn an_inline_client_certificate_is_loaded_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, key) = workload_pem(&mesh());
    let chain_file = dir.path().join("chain.pem");
    let key_file = dir.path().join("key.pem");
    std::fs::write(&chain_file, chain).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let cert = |chain: &str, key: DataSource| TlsCertificate {
        certificate_chain: Some(file(chain)),
        private_key: Some(key),
        ..Default::default()
    };
    let mut ctx = UpstreamTlsContext::default();
    common(&mut ctx).tls_certificates = vec![cert(
        chain_file.to_str().unwrap(),
        file(key_file.to_str().unwrap()),
    )];
    let c = convert(ctx).unwrap();
    assert!(matches!(c.certificate, Some(CertificateSource::Inline(_))));
    assert!(c.resolve(|_| None).unwrap().own.is_some());

    let mut ctx = UpstreamTlsContext::default();
    common(&mut ctx).tls_certificates =
        vec![cert(chain_file.to_str().unwrap(), inline("no key here"))];
    assert_refused(
        ctx,
        "clusters[3].transport_socket.typed_config.common_tls_context.tls_certificates[0].\
         private_key",
        "cannot load TLS certificate from <inline>",
    );
}

#[test]
fn tls_versions_map_to_what_rustls_offers() {
    use TlsProtocol::*;
    let max = |params: Option<TlsParameters>| {
        let mut ctx = UpstreamTlsContext::default();
        common(&mut ctx).tls_params = params;
        convert(ctx).map(|c| c.max_version)
    };
    assert_eq!(max(None).unwrap(), TlsVersion::Tls12);
    assert_eq!(
        max(Some(tls_params(TlsAuto, TlsAuto))).unwrap(),
        TlsVersion::Tls12
    );
    assert_eq!(
        max(Some(tls_params(TlSv12, TlSv12))).unwrap(),
        TlsVersion::Tls12
    );
    assert_eq!(
        max(Some(tls_params(TlsAuto, TlSv13))).unwrap(),
        TlsVersion::Tls13
    );
    // Minimums under 1.2 allow 1.2, which is rustls's floor.
    assert_eq!(
        max(Some(tls_params(TlSv10, TlSv13))).unwrap(),
        TlsVersion::Tls13
    );
    assert_eq!(
        max(Some(tls_params(TlSv11, TlsAuto))).unwrap(),
        TlsVersion::Tls12
    );

    let tp = "clusters[3].transport_socket.typed_config.common_tls_context.tls_params";
    let e = max(Some(tls_params(TlSv10, TlSv11))).unwrap_err();
    assert_eq!(
        e.path.to_string(),
        format!("{tp}.tls_maximum_protocol_version")
    );
    assert!(
        e.message.contains("expected TLSv1_2 or later, got TLSv1_1"),
        "{e}"
    );
    let e = max(Some(tls_params(TlSv13, TlSv13))).unwrap_err();
    assert_eq!(
        e.path.to_string(),
        format!("{tp}.tls_minimum_protocol_version")
    );
    let e = max(Some(TlsParameters {
        tls_maximum_protocol_version: 9,
        ..Default::default()
    }))
    .unwrap_err();
    assert_eq!(
        e.path.to_string(),
        format!("{tp}.tls_maximum_protocol_version")
    );
}

#[test]
fn unsupported_fields_are_refused_by_their_path() {
    let ctx = "clusters[3].transport_socket.typed_config";
    let cc = format!("{ctx}.common_tls_context");
    let with = |f: &dyn Fn(&mut UpstreamTlsContext)| {
        let mut c = istio_mutual();
        f(&mut c);
        c
    };
    let params =
        |f: &dyn Fn(&mut TlsParameters)| with(&|c| f(common(c).tls_params.as_mut().unwrap()));
    assert_refused(
        params(&|p| p.cipher_suites = vec!["ECDHE-RSA-AES128-GCM-SHA256".into()]),
        &format!("{cc}.tls_params.cipher_suites"),
        "not supported",
    );
    assert_refused(
        params(&|p| p.ecdh_curves = vec!["P-256".into()]),
        &format!("{cc}.tls_params.ecdh_curves"),
        "not supported",
    );
    assert_refused(
        params(&|p| p.signature_algorithms = vec!["ecdsa_secp256r1_sha256".into()]),
        &format!("{cc}.tls_params.signature_algorithms"),
        "not supported",
    );
    assert_refused(
        with(&|c| c.auto_sni_san_validation = true),
        &format!("{ctx}.auto_sni_san_validation"),
        "not supported",
    );
    assert_refused(
        with(&|c| c.auto_host_sni = true),
        &format!("{ctx}.auto_host_sni"),
        "not supported",
    );
    assert_refused(
        with(&|c| c.allow_renegotiation = true),
        &format!("{ctx}.allow_renegotiation"),
        "not supported",
    );
    assert_refused(
        with(&|c| c.sni = "10.0.0.1".into()),
        &format!("{ctx}.sni"),
        "an IP address as SNI",
    );
    // Session resumption is accepted as is (see the module).
    assert!(
        convert(with(
            &|c| c.max_session_keys = Some(UInt32Value { value: 0 })
        ))
        .is_ok()
    );

    let default = |f: &dyn Fn(&mut CertificateValidationContext)| {
        with(&|c| {
            let Some(ValidationContextType::CombinedValidationContext(cv)) =
                &mut common(c).validation_context_type
            else {
                unreachable!()
            };
            f(cv.default_validation_context.as_mut().unwrap());
        })
    };
    let dv = format!("{cc}.combined_validation_context.default_validation_context");
    assert_refused(
        default(&|v| v.trust_chain_verification = TrustChainVerification::AcceptUntrusted as i32),
        &format!("{dv}.trust_chain_verification"),
        "accepting untrusted chains is not supported by weft-proxy",
    );
    assert_refused(
        default(&|v| {
            v.match_subject_alt_names[0].match_pattern =
                Some(MatchPattern::Prefix("spiffe://".into()))
        }),
        &format!("{dv}.match_subject_alt_names[0].prefix"),
        "prefix SAN matchers (only exact)",
    );
    assert_refused(
        default(&|v| v.match_subject_alt_names[0].ignore_case = true),
        &format!("{dv}.match_subject_alt_names[0].ignore_case"),
        "not supported",
    );
    assert_refused(
        default(&|v| {
            v.match_typed_subject_alt_names = vec![SubjectAltNameMatcher {
                san_type: SanType::OtherName as i32,
                matcher: exact_matchers(&["x"]).pop(),
                oid: "1.3.6.1.4.1.311.20.2.3".into(),
            }]
        }),
        &format!("{dv}.match_typed_subject_alt_names[0].san_type"),
        "OTHER_NAME",
    );
    assert_refused(
        default(&|v| v.verify_certificate_spki = vec!["abc".into()]),
        &format!("{dv}.verify_certificate_spki"),
        "not supported",
    );
    assert_refused(
        default(&|v| {
            v.crl = Some(DataSource {
                specifier: Some(data_source::Specifier::EnvironmentVariable("CRL".into())),
                ..Default::default()
            })
        }),
        &format!("{dv}.crl.environment_variable"),
        "not supported",
    );

    // Secret sources.
    let roots = |f: &dyn Fn(&mut ConfigSource)| {
        with(&|c| {
            let Some(ValidationContextType::CombinedValidationContext(cv)) =
                &mut common(c).validation_context_type
            else {
                unreachable!()
            };
            f(cv.validation_context_sds_secret_config
                .as_mut()
                .unwrap()
                .sds_config
                .as_mut()
                .unwrap());
        })
    };
    let api = |f: &dyn Fn(&mut ApiConfigSource)| {
        roots(&|cs| {
            let Some(ConfigSourceSpecifier::ApiConfigSource(a)) = &mut cs.config_source_specifier
            else {
                unreachable!()
            };
            f(a);
        })
    };
    let sds =
        format!("{cc}.combined_validation_context.validation_context_sds_secret_config.sds_config");
    assert_refused(
        api(&|a| {
            a.grpc_services[0].target_specifier = Some(TargetSpecifier::GoogleGrpc(
                grpc_service::GoogleGrpc::default(),
            ))
        }),
        &format!("{sds}.api_config_source.grpc_services[0].google_grpc"),
        "Google gRPC clients",
    );
    assert_refused(
        api(&|a| a.api_type = api_config_source::ApiType::Rest as i32),
        &format!("{sds}.api_config_source.api_type"),
        "only GRPC secret sources are supported by weft-proxy, got REST",
    );
    assert_refused(
        api(&|a| a.api_type = api_config_source::ApiType::DeltaGrpc as i32),
        &format!("{sds}.api_config_source.api_type"),
        "got DELTA_GRPC",
    );
    assert_refused(
        api(&|a| a.grpc_services.clear()),
        &format!("{sds}.api_config_source.grpc_services"),
        "expected exactly one grpc_service, got 0",
    );
    assert_refused(
        roots(&|cs| {
            cs.config_source_specifier = Some(ConfigSourceSpecifier::Path("/etc/sds.yaml".into()))
        }),
        &format!("{sds}.path"),
        "secrets from files",
    );
    assert_refused(
        roots(&|cs| {
            cs.initial_fetch_timeout = Some(PbDuration {
                seconds: -1,
                nanos: 0,
            })
        }),
        &format!("{sds}.initial_fetch_timeout"),
        "must not be negative",
    );

    // One client certificate at most, inline and SDS counted together.
    assert_refused(
        with(&|c| {
            common(c).tls_certificates = vec![TlsCertificate::default()];
        }),
        &format!("{cc}.tls_certificate_sds_secret_configs[0]"),
        "Multiple TLS certificates are not supported for client contexts",
    );
    assert_refused(
        with(&|c| {
            common(c).tls_certificate_sds_secret_configs[0].name.clear();
        }),
        &format!("{cc}.tls_certificate_sds_secret_configs[0].name"),
        "must not be empty",
    );
    assert_refused(
        with(&|c| common(c).alpn_protocols = vec!["h2,".into()]),
        &format!("{cc}.alpn_protocols[0]"),
        "Invalid ALPN protocol string",
    );
}

#[test]
fn other_transport_sockets_are_refused_and_raw_buffer_is_plaintext() {
    let raw = TransportSocket {
        name: RAW_BUFFER_SOCKET.into(),
        config_type: None,
    };
    assert!(upstream_transport(Some(&raw), &at()).unwrap().is_none());
    assert!(upstream_transport(None, &at()).unwrap().is_none());
    let e = UpstreamTlsConfig::new(&raw, &at()).unwrap_err();
    assert_eq!(e.path.to_string(), "clusters[3].transport_socket");
    assert!(e.message.contains("got plaintext"), "{e}");

    let alts = TransportSocket {
        name: "envoy.transport_sockets.alts".into(),
        config_type: None,
    };
    let e = upstream_transport(Some(&alts), &at()).unwrap_err();
    assert_eq!(e.path.to_string(), "clusters[3].transport_socket.name");
    assert!(
        e.message
            .contains("`envoy.transport_sockets.alts` is not supported"),
        "{e}"
    );

    // The typed config's type decides, as in Envoy.
    let downstream = TransportSocket {
        name: TLS_SOCKET.into(),
        config_type: Some(ConfigType::TypedConfig(pack_any(
            envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext::default(),
        ))),
    };
    let e = upstream_transport(Some(&downstream), &at()).unwrap_err();
    assert_eq!(
        e.path.to_string(),
        "clusters[3].transport_socket.typed_config"
    );
    assert!(e.message.contains("DownstreamTlsContext"), "{e}");

    // No typed config: Envoy's empty context, TLS that checks nothing.
    let bare = TransportSocket {
        name: TLS_SOCKET.into(),
        config_type: None,
    };
    let c = upstream_transport(Some(&bare), &at()).unwrap().unwrap();
    assert!(matches!(&c.validation, ValidationSource::Inline(v) if v.without_ca().is_none()));
    assert_eq!(c.max_version, TlsVersion::Tls12);
}

#[test]
fn ads_and_static_secrets_keep_their_source() {
    let mut ctx = istio_mutual();
    common(&mut ctx).tls_certificate_sds_secret_configs = vec![SdsSecretConfig {
        name: "kubernetes://client".into(),
        sds_config: Some(ConfigSource {
            resource_api_version: ApiVersion::V3 as i32,
            config_source_specifier: Some(ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
            ..Default::default()
        }),
    }];
    common(&mut ctx).validation_context_type = Some(
        ValidationContextType::ValidationContextSdsSecretConfig(SdsSecretConfig {
            name: "bootstrap-roots".into(),
            sds_config: None,
        }),
    );
    let c = convert(ctx).unwrap();
    let refs: Vec<&SecretRef> = c.secrets().collect();
    assert_eq!(
        refs,
        [
            &SecretRef {
                name: "kubernetes://client".into(),
                source: SecretSource::Ads,
                initial_fetch_timeout: Some(DEFAULT_INITIAL_FETCH_TIMEOUT),
            },
            &SecretRef {
                name: "bootstrap-roots".into(),
                source: SecretSource::Static,
                initial_fetch_timeout: None,
            }
        ]
    );
}

#[test]
fn resolve_merges_the_secret_over_the_default_and_reports_what_is_missing() {
    let ca = mesh();
    let c = convert(istio_mutual()).unwrap();
    assert_eq!(
        c.resolve(|_| None).unwrap_err(),
        Unresolved::Missing("default".into())
    );
    assert_eq!(
        c.resolve(secrets(vec![("default", certificate_secret(&ca))]))
            .unwrap_err(),
        Unresolved::Missing("ROOTCA".into())
    );
    assert_eq!(
        Unresolved::Missing("ROOTCA".into()).to_string(),
        "secret 'ROOTCA' is not supplied by SDS"
    );
    // A secret of the wrong kind cannot serve.
    let e = c
        .resolve(secrets(vec![
            ("default", roots_secret(ca.root_pem())),
            ("ROOTCA", roots_secret(ca.root_pem())),
        ]))
        .unwrap_err();
    assert!(
        matches!(&e, Unresolved::Invalid { name, .. } if name == "default"),
        "{e}"
    );

    // The secret's typed SANs add to the default's untyped ones, and then win as Envoy's
    // matchers do.
    let with_typed = Arc::new(SecretMaterial::Validation(
        Validation::new(
            &CertificateValidationContext {
                trusted_ca: Some(inline(ca.root_pem())),
                match_typed_subject_alt_names: vec![SubjectAltNameMatcher {
                    san_type: SanType::Uri as i32,
                    matcher: exact_matchers(&["spiffe://cluster.local/ns/x/sa/y"]).pop(),
                    ..Default::default()
                }],
                ..Default::default()
            },
            &FieldPath::root(),
        )
        .unwrap(),
    ));
    let up = c
        .resolve(secrets(vec![
            ("default", certificate_secret(&ca)),
            ("ROOTCA", with_typed),
        ]))
        .unwrap();
    assert_eq!(
        up.sans,
        [SanMatcher {
            kind: SanKind::Uri,
            exact: "spiffe://cluster.local/ns/x/sa/y".into()
        }]
    );

    // The secret's roots win over the default's; an empty secret value still overrides.
    let default = Validation::new(
        &CertificateValidationContext {
            trusted_ca: Some(file("/nonexistent/never-read")),
            ..Default::default()
        },
        &FieldPath::root(),
    );
    assert!(default.is_err(), "a named file is read at conversion");
    let default = Validation::new(
        &CertificateValidationContext {
            trusted_ca: Some(inline(ca.root_pem())),
            match_subject_alt_names: exact_matchers(&[REVIEWS]),
            crl: Some(inline(CRL_PEM)),
            ..Default::default()
        },
        &FieldPath::root(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let roots_file = dir.path().join("roots.pem");
    std::fs::write(&roots_file, ca.root_pem()).unwrap();
    let roots_file = roots_file.to_str().unwrap();
    let from_file = Validation::new(
        &CertificateValidationContext {
            trusted_ca: Some(file(roots_file)),
            ..Default::default()
        },
        &FieldPath::root(),
    )
    .unwrap();
    let merged = default.merged(from_file);
    assert_eq!(merged.trusted_ca.as_ref().unwrap().origin, roots_file);
    assert_eq!(merged.crl.as_ref().unwrap().origin, "<inline>");
    assert_eq!(merged.untyped_sans, [REVIEWS]);
    assert!(merged.without_ca().is_none());
    let emptied = default.merged(
        Validation::new(
            &CertificateValidationContext {
                trusted_ca: Some(inline("")),
                ..Default::default()
            },
            &FieldPath::root(),
        )
        .unwrap(),
    );
    assert_eq!(
        emptied.without_ca().unwrap().1,
        "Failed to load CRL from <inline> without trusted CA"
    );
    // The same check at resolution: a roots secret without roots leaves SANs unanchored.
    let no_roots = Arc::new(SecretMaterial::Validation(Validation::default()));
    let e = c
        .resolve(secrets(vec![
            ("default", certificate_secret(&ca)),
            ("ROOTCA", no_roots),
        ]))
        .unwrap_err();
    assert_eq!(
        e,
        Unresolved::Invalid {
            name: "ROOTCA".into(),
            message: "SAN-based verification of peer certificates without trusted CA is \
                      insecure and not allowed"
                .into()
        }
    );
}

#[test]
fn secrets_parse_their_pem_and_name_themselves_in_errors() {
    let ca = mesh();
    let (chain, key) = workload_pem(&ca);
    let cert = Secret {
        name: "default".into(),
        r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: Some(DataSource {
                specifier: Some(data_source::Specifier::InlineBytes(
                    chain.clone().into_bytes(),
                )),
                ..Default::default()
            }),
            private_key: Some(DataSource {
                specifier: Some(data_source::Specifier::InlineBytes(key.into_bytes())),
                ..Default::default()
            }),
            ..Default::default()
        })),
    };
    let at = FieldPath::parse("resources[0]");
    assert!(matches!(
        SecretMaterial::new(&cert, &at).unwrap(),
        SecretMaterial::Certificate(_)
    ));
    let roots = Secret {
        name: "ROOTCA".into(),
        r#type: Some(secret::Type::ValidationContext(
            CertificateValidationContext {
                trusted_ca: Some(inline(ca.root_pem())),
                ..Default::default()
            },
        )),
    };
    let SecretMaterial::Validation(v) = SecretMaterial::new(&roots, &at).unwrap() else {
        panic!("a validation context");
    };
    assert!(v.trusted_ca.unwrap().bundle.is_some());

    let mut bad = cert.clone();
    if let Some(secret::Type::TlsCertificate(c)) = &mut bad.r#type {
        c.certificate_chain = Some(inline("garbage"));
    }
    let e = SecretMaterial::new(&bad, &at).unwrap_err();
    assert_eq!(
        e.path.to_string(),
        "resources[0].tls_certificate.certificate_chain"
    );
    assert!(e.message.starts_with("secret 'default': "), "{e}");
    let mut half = cert.clone();
    if let Some(secret::Type::TlsCertificate(c)) = &mut half.r#type {
        c.private_key = None;
    }
    let e = SecretMaterial::new(&half, &at).unwrap_err();
    assert_eq!(
        e.path.to_string(),
        "resources[0].tls_certificate.private_key"
    );

    let bad_roots = Secret {
        name: "file-root:/etc/ca.pem".into(),
        r#type: Some(secret::Type::ValidationContext(
            CertificateValidationContext {
                trusted_ca: Some(inline(
                    "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
                )),
                ..Default::default()
            },
        )),
    };
    let e = SecretMaterial::new(&bad_roots, &at).unwrap_err();
    assert_eq!(
        e.path.to_string(),
        "resources[0].validation_context.trusted_ca"
    );
    assert!(
        e.message
            .starts_with("secret 'file-root:/etc/ca.pem': Failed to load trusted CA"),
        "{e}"
    );

    let generic = Secret {
        name: "token".into(),
        r#type: Some(secret::Type::GenericSecret(GenericSecret::default())),
    };
    let e = SecretMaterial::new(&generic, &at).unwrap_err();
    assert_eq!(e.path.to_string(), "resources[0].generic_secret");
    assert!(
        e.message.starts_with("secret 'token': generic secrets"),
        "{e}"
    );
    let e = SecretMaterial::new(
        &Secret {
            name: "keys".into(),
            r#type: Some(secret::Type::SessionTicketKeys(Default::default())),
        },
        &at,
    )
    .unwrap_err();
    assert_eq!(e.path.to_string(), "resources[0].session_ticket_keys");
}

#[test]
fn istios_sni_with_underscores_is_a_dns_name_and_alpn_lists_split_like_envoys() {
    let mut ctx = istio_mutual();
    common(&mut ctx).alpn_protocols = vec!["h2,http/1.1".into()];
    let c = convert(ctx).unwrap();
    assert_eq!(c.alpn, ["h2", "http/1.1"]);
    assert_eq!(c.sni.as_deref(), Some(ISTIO_SNI));
    let e = refused({
        let mut c = istio_mutual();
        c.sni = "a\0b".into();
        c
    });
    assert!(e.contains("NULL-byte"), "{e}");
}
