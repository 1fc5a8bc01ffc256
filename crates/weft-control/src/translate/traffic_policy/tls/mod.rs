//! DestinationRule `tls` on an outbound cluster, as istiod writes it: an
//! `UpstreamTlsContext` transport socket whose certificates and roots are SDS secrets —
//! the workload's own (`default`, `ROOTCA`) or files (`file-root:`, `file-cert:`) from the
//! proxy's secret agent on the `sds-grpc` bootstrap cluster, or a Kubernetes Secret
//! (`kubernetes://`) from the control plane over ADS. Clusters never carry file names or
//! key material themselves, so a proxy's certificates rotate without a push.

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ApiConfigSource, ApiVersion, ConfigSource, GrpcService, Metadata,
    TransportSocket, UpstreamHttpProtocolOptions, api_config_source, config_source, grpc_service,
    transport_socket,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, SdsSecretConfig, TlsParameters,
    UpstreamTlsContext, common_tls_context, tls_parameters::TlsProtocol,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher};
use envoy_types::pb::google::protobuf::{Duration as PbDuration, Value, value};
use envoy_types::util::pack_any;
use weft_config::networking::destination_rule::{ClientTLSSettings, TLSmode};

/// The bootstrap cluster of the proxy's secret agent (istio-agent's, and `weft agent`'s).
pub const SDS_CLUSTER: &str = "sds-grpc";
/// The workload's own certificate and key, from the agent.
pub const DEFAULT_SECRET: &str = "default";
/// The mesh's root certificates, from the agent.
pub const ROOT_SECRET: &str = "ROOTCA";
/// What a SIMPLE or MUTUAL rule without `caCertificates` trusts: the OS's roots.
const SYSTEM_ROOTS: &str = "system";
pub const TLS_SOCKET: &str = "envoy.transport_sockets.tls";

/// What the TLS settings of one cluster depend on besides the rule.
pub struct Upstream<'a> {
    pub cluster: &'a str,
    /// istiod's `outbound_.PORT_.SUBSET_.HOST`: the SNI of Istio mutual TLS.
    pub istio_sni: String,
    /// The SPIFFE identities the service's endpoints may present.
    pub identities: Vec<String>,
    /// The service is a ServiceEntry's: SIMPLE and MUTUAL rules that name no
    /// `subjectAltNames` expect its `identities` (its own `subjectAltNames` among them).
    pub service_entry: bool,
    /// The proxy is a sidecar whose rule has no `workloadSelector`: Istio applies
    /// `credentialName` there only when the rule selects the workload.
    pub sidecar_without_selector: bool,
}

/// Sets `c`'s transport socket (and what goes with it) per `tls`, once the rest of the
/// traffic policy has set the upstream HTTP options `http`; says whether it did. (Without a
/// rule's `tls` a cluster stays plaintext: auto mutual TLS is not applied yet.)
pub fn apply(
    c: &mut Cluster,
    http: &mut Option<HttpProtocolOptions>,
    tls: &ClientTLSSettings,
    up: &Upstream,
) -> bool {
    // An explicitly HTTP/2 cluster offers `h2` in ALPN.
    let http2 = http.as_mut().and_then(super::explicit_http2).is_some();
    let context = match tls.mode {
        TLSmode::Disable => return false,
        TLSmode::IstioMutual => istio_mutual(tls, up, http2),
        TLSmode::Simple | TLSmode::Mutual => {
            let Some(context) = originated(http, tls, up, http2) else {
                return false;
            };
            alpn_override(c);
            context
        }
    };
    c.transport_socket = Some(TransportSocket {
        name: TLS_SOCKET.into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack_any(context))),
    });
    true
}

/// istiod's `defaultUpstreamCommonTLSContext`: TLS 1.2 to 1.3.
fn common() -> CommonTlsContext {
    CommonTlsContext {
        tls_params: Some(TlsParameters {
            tls_minimum_protocol_version: TlsProtocol::TlSv12 as i32,
            tls_maximum_protocol_version: TlsProtocol::TlSv13 as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The agent's secret `name` on `sds-grpc`; the workload's own secrets are waited for
/// without limit (`initial_fetch_timeout: 0s`), as istiod asks.
pub fn agent_secret(name: &str) -> SdsSecretConfig {
    let own = name == DEFAULT_SECRET || name == ROOT_SECRET;
    SdsSecretConfig {
        name: name.into(),
        sds_config: Some(ConfigSource {
            resource_api_version: ApiVersion::V3 as i32,
            initial_fetch_timeout: own.then(PbDuration::default),
            config_source_specifier: Some(config_source::ConfigSourceSpecifier::ApiConfigSource(
                ApiConfigSource {
                    api_type: api_config_source::ApiType::Grpc as i32,
                    transport_api_version: ApiVersion::V3 as i32,
                    set_node_on_first_message_only: true,
                    grpc_services: vec![GrpcService {
                        target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                            grpc_service::EnvoyGrpc {
                                cluster_name: SDS_CLUSTER.into(),
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

/// A Kubernetes Secret `name` from the control plane, over ADS.
fn ads_secret(name: &str) -> SdsSecretConfig {
    SdsSecretConfig {
        name: name.into(),
        sds_config: Some(ConfigSource {
            resource_api_version: ApiVersion::V3 as i32,
            config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
                AggregatedConfigSource {},
            )),
            ..Default::default()
        }),
    }
}

fn exact(names: &[String]) -> Vec<StringMatcher> {
    names
        .iter()
        .map(|n| StringMatcher {
            match_pattern: Some(string_matcher::MatchPattern::Exact(n.clone())),
            ..Default::default()
        })
        .collect()
}

fn combined(
    sans: &[String],
    crl: Option<&str>,
    roots: SdsSecretConfig,
) -> common_tls_context::ValidationContextType {
    common_tls_context::ValidationContextType::CombinedValidationContext(
        common_tls_context::CombinedCertificateValidationContext {
            default_validation_context: Some(CertificateValidationContext {
                #[allow(deprecated)]
                match_subject_alt_names: exact(sans),
                crl: crl.map(|f| envoy_types::pb::envoy::config::core::v3::DataSource {
                    specifier: Some(
                        envoy_types::pb::envoy::config::core::v3::data_source::Specifier::Filename(
                            f.into(),
                        ),
                    ),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            validation_context_sds_secret_config: Some(roots),
            ..Default::default()
        },
    )
}

/// ISTIO_MUTUAL: the workload's certificate, the mesh's roots, the service's identities,
/// and Istio's SNI and ALPN, which the server side's filter chains match on.
fn istio_mutual(tls: &ClientTLSSettings, up: &Upstream, http2: bool) -> UpstreamTlsContext {
    let sans = if tls.subject_alt_names.is_empty() {
        &up.identities
    } else {
        &tls.subject_alt_names
    };
    let mut common = common();
    common.alpn_protocols = ["istio-peer-exchange", "istio"]
        .into_iter()
        .chain(http2.then_some("h2"))
        .map(str::to_string)
        .collect();
    common.tls_certificate_sds_secret_configs = vec![agent_secret(DEFAULT_SECRET)];
    common.validation_context_type = Some(combined(sans, None, agent_secret(ROOT_SECRET)));
    let sni = if tls.sni.is_empty() {
        up.istio_sni.clone()
    } else {
        tls.sni.clone()
    };
    UpstreamTlsContext {
        common_tls_context: Some(common),
        sni,
        ..Default::default()
    }
}

/// SIMPLE and MUTUAL: TLS the user configured, from files or a Kubernetes Secret; `None`
/// where istiod sends the cluster without TLS (a sidecar rule naming a credential without
/// selecting the workload; a validated rule cannot lack MUTUAL's files).
fn originated(
    http: &mut Option<HttpProtocolOptions>,
    tls: &ClientTLSSettings,
    up: &Upstream,
    http2: bool,
) -> Option<UpstreamTlsContext> {
    let mutual = tls.mode == TLSmode::Mutual;
    let sans: &[String] = if !tls.subject_alt_names.is_empty() {
        &tls.subject_alt_names
    } else if up.service_entry {
        &up.identities
    } else {
        &[]
    };
    let insecure = tls.insecure_skip_verify == Some(true);
    let mut common = common();
    if http2 {
        common.alpn_protocols = vec!["h2".into()];
    }
    if !tls.credential_name.is_empty() {
        if up.sidecar_without_selector {
            return None;
        }
        let name = credential_resource(&tls.credential_name);
        if !insecure {
            common.validation_context_type =
                Some(combined(sans, None, ads_secret(&format!("{name}-cacert"))));
        }
        if mutual {
            common.tls_certificate_sds_secret_configs = vec![ads_secret(&name)];
        }
    } else {
        if mutual {
            if tls.client_certificate.is_empty() || tls.private_key.is_empty() {
                tracing::warn!(
                    "failed to apply tls setting for {}: client certificate and private key \
                     must not be empty",
                    up.cluster
                );
                return None;
            }
            common.tls_certificate_sds_secret_configs = vec![agent_secret(&format!(
                "file-cert:{}~{}",
                tls.client_certificate, tls.private_key
            ))];
        }
        common.validation_context_type = Some(if insecure {
            common_tls_context::ValidationContextType::ValidationContext(Default::default())
        } else {
            let roots = if tls.ca_certificates.is_empty() {
                SYSTEM_ROOTS
            } else {
                &tls.ca_certificates
            };
            let crl = (!tls.ca_crl.is_empty()).then_some(tls.ca_crl.as_str());
            combined(sans, crl, agent_secret(&format!("file-root:{roots}")))
        });
    }
    if tls.sni.is_empty() {
        // Envoy then sends each request's host as SNI, and checks the server's names
        // against it when nothing else says what to expect.
        let options = http.get_or_insert_with(Default::default);
        let upstream = options
            .upstream_http_protocol_options
            .get_or_insert_with(UpstreamHttpProtocolOptions::default);
        upstream.auto_sni = true;
        if sans.is_empty() && !insecure {
            upstream.auto_san_validation = true;
        }
    }
    Some(UpstreamTlsContext {
        common_tls_context: Some(common),
        sni: tls.sni.clone(),
        ..Default::default()
    })
}

/// istiod's `credentials.ToResourceName`: a bare Secret name is a Kubernetes one.
fn credential_resource(name: &str) -> String {
    const KNOWN: [&str; 3] = ["kubernetes://", "configmap://", "kubernetes-gateway://"];
    if KNOWN.iter().any(|p| name.starts_with(p)) {
        name.to_string()
    } else {
        format!("kubernetes://{name}")
    }
}

/// istiod marks user TLS clusters so its telemetry filters leave their ALPN alone.
fn alpn_override(c: &mut Cluster) {
    let metadata = c.metadata.get_or_insert_with(Metadata::default);
    let istio = metadata.filter_metadata.entry("istio".into()).or_default();
    istio.fields.insert(
        "alpn_override".into(),
        Value {
            kind: Some(value::Kind::StringValue("false".into())),
        },
    );
}

/// The SPIFFE identities of service accounts `accounts` in `namespace`, in the mesh's
/// trust domain and then each alias (istiod's `ExpandWithTrustDomains`).
pub fn identities(
    accounts: &[String],
    namespace: &str,
    trust_domain: &str,
    aliases: &[String],
) -> Vec<String> {
    std::iter::once(trust_domain)
        .chain(
            aliases
                .iter()
                .map(String::as_str)
                .filter(|a| *a != trust_domain),
        )
        .flat_map(|td| {
            accounts
                .iter()
                .map(move |sa| format!("spiffe://{td}/ns/{namespace}/sa/{sa}"))
        })
        .collect()
}

#[cfg(test)]
mod tests;
