//! A cluster's upstream TLS transport socket (`envoy.transport_sockets.tls` with an
//! `UpstreamTlsContext`) and the SDS `Secret`s it names, as Envoy reads them. istiod and
//! `weft control` put every certificate and root of a mesh cluster in secrets served by the
//! proxy's agent (or by the control plane over ADS), so a cluster is only half of the
//! configuration: [`UpstreamTlsConfig`] keeps the references ([`SecretRef`]), a secret
//! arriving later becomes a [`SecretMaterial`], and [`UpstreamTlsConfig::resolve`] joins the
//! two into the [`Upstream`] that weft-identity turns into a rustls client. Conversion reads
//! and parses everything a resource carries inline or by file name (Envoy reads those when
//! the resource is accepted), so a bad PEM or CRL file rejects the resource whole, naming
//! the field; any TLS knob the proxy cannot honour is refused by name rather than ignored.

use super::{ConvertError, Result, timeout, type_name, unpack};
use envoy_types::pb::envoy::config::core::v3::{
    ApiConfigSource, ApiVersion, ConfigSource, DataSource, TransportSocket, api_config_source,
    config_source::ConfigSourceSpecifier, data_source::Specifier, grpc_service::TargetSpecifier,
    transport_socket::ConfigType,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, SdsSecretConfig, Secret, TlsCertificate, TlsParameters,
    UpstreamTlsContext, certificate_validation_context::TrustChainVerification,
    common_tls_context::ValidationContextType, secret, subject_alt_name_matcher::SanType,
    tls_parameters::TlsProtocol,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher::MatchPattern};
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls::pki_types::{CertificateRevocationListDer, ServerName};
use weft_identity::upstream::{SanKind, SanMatcher, Upstream, crls_from_pem};
use weft_identity::{Credentials, TrustBundle};
use weft_yaml::FieldPath;

/// The transport socket name of TLS.
pub const TLS_SOCKET: &str = "envoy.transport_sockets.tls";
/// The transport socket name of plaintext (Envoy's default when a cluster names none).
pub const RAW_BUFFER_SOCKET: &str = "envoy.transport_sockets.raw_buffer";
const UPSTREAM_TLS_CONTEXT: &str = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
const RAW_BUFFER: &str = "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer";
/// Envoy's `initial_fetch_timeout` when a `ConfigSource` sets none.
pub const DEFAULT_INITIAL_FETCH_TIMEOUT: Duration = Duration::from_secs(15);
/// How Envoy names data that came without a file (`CertificateValidationContextConfigImpl`).
const INLINE: &str = "<inline>";

/// A cluster's TLS: what it sends, what it presents, and how it checks the server.
#[derive(Debug, Clone)]
pub struct UpstreamTlsConfig {
    /// The configured SNI; `None` sends none (unless the router supplies an auto SNI).
    pub sni: Option<String>,
    /// Offered in this order; empty leaves the choice to the connection pool (Envoy's
    /// `http/1.1` or `h2` fallback), which is not this model's business.
    pub alpn: Vec<String>,
    /// The highest version offered. The lowest is always TLS 1.2: rustls has nothing older,
    /// and a TLS-1.3-only minimum is refused at conversion.
    pub max_version: TlsVersion,
    /// The client certificate, if any.
    pub certificate: Option<CertificateSource>,
    pub validation: ValidationSource,
}

/// A TLS protocol version rustls speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// Where the client certificate comes from.
#[derive(Debug, Clone)]
pub enum CertificateSource {
    /// Inline `tls_certificates` (read and parsed at conversion).
    Inline(Credentials),
    /// `tls_certificate_sds_secret_configs`.
    Sds(SecretRef),
}

/// Where the server checks come from.
#[derive(Debug, Clone)]
pub enum ValidationSource {
    /// `validation_context`, or nothing (which is the same as an empty one: no checks).
    Inline(Validation),
    /// `validation_context_sds_secret_config`: the secret's context alone.
    Sds(SecretRef),
    /// `combined_validation_context`: the secret's context merged into `default`.
    Combined {
        default: Validation,
        secret: SecretRef,
    },
}

/// The part of a `CertificateValidationContext` the proxy acts on. Each `Option` is `Some`
/// when the field was set, even to empty data, because Envoy's merge of a combined context
/// lets a set field of the secret override the default's.
#[derive(Debug, Clone, Default)]
pub struct Validation {
    pub trusted_ca: Option<Roots>,
    pub crl: Option<Crls>,
    /// `match_typed_subject_alt_names`.
    pub typed_sans: Vec<SanMatcher>,
    /// The deprecated `match_subject_alt_names` (exact values); Envoy applies each to every
    /// kind of SAN, and ignores them all when there is any typed matcher.
    pub untyped_sans: Vec<String>,
}

/// `trusted_ca` as read.
#[derive(Debug, Clone)]
pub struct Roots {
    /// The file name, or `<inline>`, for messages.
    pub origin: String,
    /// `None` when the data was empty, which Envoy reads as no trusted CA at all.
    pub bundle: Option<TrustBundle>,
}

/// `crl` as read.
#[derive(Debug, Clone)]
pub struct Crls {
    /// The file name, or `<inline>`, for messages.
    pub origin: String,
    /// Empty only when the data was empty (non-empty data without a list is an error).
    pub lists: Vec<CertificateRevocationListDer<'static>>,
}

/// A secret a cluster needs, by name and where it is served from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretRef {
    pub name: String,
    pub source: SecretSource,
    /// How long the cluster waits for it before serving without it; `None` waits without
    /// limit (`0s`). A static secret is never waited for: it is there or the cluster is
    /// refused, so its timeout is `None`.
    pub initial_fetch_timeout: Option<Duration>,
}

/// Where a secret comes from; Envoy keeps secrets of different sources apart even when
/// their names are equal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecretSource {
    /// A bootstrap `static_resources.secrets` entry (no `sds_config`).
    Static,
    /// The ADS stream (`sds_config.ads`).
    Ads,
    /// Its own SDS stream to this static cluster (`api_config_source` GRPC `envoy_grpc`).
    Grpc { cluster: String },
}

/// A `Secret` resource, parsed.
#[derive(Debug, Clone)]
pub enum SecretMaterial {
    Certificate(Credentials),
    Validation(Validation),
}

/// Why a configuration cannot be built from the secrets at hand. Either way, Envoy's
/// connections on such a cluster fail with `Secret is not supplied by SDS`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Unresolved {
    #[error("secret '{0}' is not supplied by SDS")]
    Missing(String),
    /// The secret is there but cannot serve where it is referenced (a validation context
    /// where a certificate is needed, or a merged context Envoy would refuse).
    #[error("secret '{name}': {message}")]
    Invalid { name: String, message: String },
}

/// A cluster's `transport_socket`: `None` when plaintext (no socket, or `raw_buffer`), the
/// TLS configuration otherwise; any other socket is refused.
pub fn upstream_transport(
    socket: Option<&TransportSocket>,
    path: &FieldPath,
) -> Result<Option<UpstreamTlsConfig>> {
    let Some(socket) = socket else {
        return Ok(None);
    };
    match socket_kind(socket, path)? {
        Kind::RawBuffer => Ok(None),
        Kind::Tls => UpstreamTlsConfig::new(socket, path).map(Some),
    }
}

enum Kind {
    Tls,
    RawBuffer,
}

/// Envoy picks the factory by the typed config's type when there is one, else by name.
fn socket_kind(socket: &TransportSocket, path: &FieldPath) -> Result<Kind> {
    match &socket.config_type {
        Some(ConfigType::TypedConfig(any)) => match type_name(any) {
            UPSTREAM_TLS_CONTEXT => Ok(Kind::Tls),
            RAW_BUFFER => Ok(Kind::RawBuffer),
            other => Err(ConvertError::new(
                &path.field("typed_config"),
                format!(
                    "transport socket of type `{other}` is not supported by weft-proxy \
                     (only {UPSTREAM_TLS_CONTEXT} and {RAW_BUFFER})"
                ),
            )),
        },
        None => match socket.name.as_str() {
            TLS_SOCKET => Ok(Kind::Tls),
            RAW_BUFFER_SOCKET => Ok(Kind::RawBuffer),
            other => Err(ConvertError::new(
                &path.field("name"),
                format!(
                    "transport socket `{other}` is not supported by weft-proxy (only \
                     {TLS_SOCKET} and {RAW_BUFFER_SOCKET})"
                ),
            )),
        },
    }
}

impl UpstreamTlsConfig {
    /// Converts a TLS transport socket; `path` names the socket (`clusters[3].transport_socket`).
    /// Plaintext sockets are refused here: [`upstream_transport`] is the entry point that
    /// accepts both.
    pub fn new(socket: &TransportSocket, path: &FieldPath) -> Result<UpstreamTlsConfig> {
        if let Kind::RawBuffer = socket_kind(socket, path)? {
            return Err(ConvertError::new(
                path,
                format!(
                    "expected a {TLS_SOCKET} transport socket, got plaintext ({RAW_BUFFER_SOCKET})"
                ),
            ));
        }
        let p = path.field("typed_config");
        // Without a typed config Envoy builds the socket from an empty context.
        let ctx: UpstreamTlsContext = match &socket.config_type {
            Some(ConfigType::TypedConfig(any)) => unpack(any, UPSTREAM_TLS_CONTEXT, &p)?,
            None => UpstreamTlsContext::default(),
        };
        Self::from_context(&ctx, &p)
    }

    fn from_context(ctx: &UpstreamTlsContext, p: &FieldPath) -> Result<UpstreamTlsConfig> {
        refuse(
            ctx.auto_host_sni,
            p,
            "auto_host_sni",
            "an SNI from each host's name",
        )?;
        refuse(
            ctx.auto_sni_san_validation,
            p,
            "auto_sni_san_validation",
            "checking the server's SANs against the SNI sent",
        )?;
        // rustls never renegotiates, so allowing it would change nothing Envoy's way.
        refuse(
            ctx.allow_renegotiation,
            p,
            "allow_renegotiation",
            "TLS renegotiation",
        )?;
        // `max_session_keys` is accepted as it stands: rustls resumes sessions from its own
        // in-memory store, which differs from Envoy's (one key) only in how often a full
        // handshake happens. `enforce_rsa_key_usage` is deprecated and ignored by Envoy too.
        let sni = sni(&ctx.sni, &p.field("sni"))?;
        let common = ctx.common_tls_context.clone().unwrap_or_default();
        let cp = p.field("common_tls_context");
        refuse(
            common.tls_certificate_provider_instance.is_some(),
            &cp,
            "tls_certificate_provider_instance",
            "certificate provider instances",
        )?;
        refuse(
            common.custom_tls_certificate_selector.is_some(),
            &cp,
            "custom_tls_certificate_selector",
            "custom certificate selectors",
        )?;
        refuse(
            common.tls_certificate_certificate_provider.is_some(),
            &cp,
            "tls_certificate_certificate_provider",
            "certificate providers",
        )?;
        refuse(
            common
                .tls_certificate_certificate_provider_instance
                .is_some(),
            &cp,
            "tls_certificate_certificate_provider_instance",
            "certificate provider instances",
        )?;
        refuse(
            common.custom_handshaker.is_some(),
            &cp,
            "custom_handshaker",
            "custom handshakers",
        )?;
        refuse(common.key_log.is_some(), &cp, "key_log", "TLS key logging")?;
        let max_version = versions(common.tls_params.as_ref(), &cp.field("tls_params"))?;
        let alpn = alpn(&common.alpn_protocols, &cp.field("alpn_protocols"))?;
        let certificate = certificate(
            &common.tls_certificates,
            &common.tls_certificate_sds_secret_configs,
            &cp,
        )?;
        let validation = match &common.validation_context_type {
            None => ValidationSource::Inline(Validation::default()),
            Some(ValidationContextType::ValidationContext(v)) => {
                let vp = cp.field("validation_context");
                let v = Validation::new(v, &vp)?;
                if let Some((field, message)) = v.without_ca() {
                    return Err(ConvertError::new(&vp.field(field), message));
                }
                ValidationSource::Inline(v)
            }
            Some(ValidationContextType::ValidationContextSdsSecretConfig(s)) => {
                ValidationSource::Sds(SecretRef::new(
                    s,
                    &cp.field("validation_context_sds_secret_config"),
                )?)
            }
            Some(ValidationContextType::CombinedValidationContext(c)) => {
                let ccp = cp.field("combined_validation_context");
                refuse(
                    c.validation_context_certificate_provider.is_some(),
                    &ccp,
                    "validation_context_certificate_provider",
                    "certificate providers",
                )?;
                refuse(
                    c.validation_context_certificate_provider_instance.is_some(),
                    &ccp,
                    "validation_context_certificate_provider_instance",
                    "certificate provider instances",
                )?;
                let default = c.default_validation_context.as_ref().ok_or_else(|| {
                    ConvertError::new(
                        &ccp.field("default_validation_context"),
                        "value is required",
                    )
                })?;
                let secret = c
                    .validation_context_sds_secret_config
                    .as_ref()
                    .ok_or_else(|| {
                        ConvertError::new(
                            &ccp.field("validation_context_sds_secret_config"),
                            "value is required",
                        )
                    })?;
                // Checked once merged with the secret (`resolve`): the default alone may
                // lack the roots the secret brings.
                ValidationSource::Combined {
                    default: Validation::new(default, &ccp.field("default_validation_context"))?,
                    secret: SecretRef::new(
                        secret,
                        &ccp.field("validation_context_sds_secret_config"),
                    )?,
                }
            }
            Some(ValidationContextType::ValidationContextCertificateProvider(_)) => {
                return Err(unsupported(
                    &cp.field("validation_context_certificate_provider"),
                    "certificate providers",
                ));
            }
            Some(ValidationContextType::ValidationContextCertificateProviderInstance(_)) => {
                return Err(unsupported(
                    &cp.field("validation_context_certificate_provider_instance"),
                    "certificate provider instances",
                ));
            }
        };
        Ok(UpstreamTlsConfig {
            sni,
            alpn,
            max_version,
            certificate,
            validation,
        })
    }

    /// The secrets this configuration waits for (SDS subscriptions, cluster warming).
    pub fn secrets(&self) -> impl Iterator<Item = &SecretRef> {
        let certificate = match &self.certificate {
            Some(CertificateSource::Sds(r)) => Some(r),
            _ => None,
        };
        let validation = match &self.validation {
            ValidationSource::Sds(r) | ValidationSource::Combined { secret: r, .. } => Some(r),
            ValidationSource::Inline(_) => None,
        };
        certificate.into_iter().chain(validation)
    }

    /// What a connection checks and presents, given the secrets at hand (`secret` looks one
    /// up by source and name). A combined context merges as Envoy's `MergeFrom` does: the
    /// secret's `trusted_ca` and `crl` win over the default's, SAN matchers add up.
    pub fn resolve(
        &self,
        secret: impl Fn(&SecretRef) -> Option<Arc<SecretMaterial>>,
    ) -> std::result::Result<Upstream, Unresolved> {
        let fetch = |r: &SecretRef| secret(r).ok_or_else(|| Unresolved::Missing(r.name.clone()));
        let own = match &self.certificate {
            None => None,
            Some(CertificateSource::Inline(c)) => Some(c.clone()),
            Some(CertificateSource::Sds(r)) => match &*fetch(r)? {
                SecretMaterial::Certificate(c) => Some(c.clone()),
                SecretMaterial::Validation(_) => {
                    return Err(Unresolved::Invalid {
                        name: r.name.clone(),
                        message: "is a validation context, where a TLS certificate is needed"
                            .into(),
                    });
                }
            },
        };
        let validation = match &self.validation {
            ValidationSource::Inline(v) => v.clone(),
            ValidationSource::Sds(r) => {
                let v = validation_secret(r, &*fetch(r)?)?;
                checked(v, r)?
            }
            ValidationSource::Combined { default, secret } => {
                let v = default.merged(validation_secret(secret, &*fetch(secret)?)?);
                checked(v, secret)?
            }
        };
        Ok(Upstream {
            roots: validation.trusted_ca.and_then(|r| r.bundle),
            crls: validation.crl.map(|c| c.lists).unwrap_or_default(),
            sans: effective_sans(validation.typed_sans, validation.untyped_sans),
            san_override: Vec::new(),
            own,
            alpn: self.alpn.iter().map(|a| a.as_bytes().to_vec()).collect(),
            tls13: self.max_version >= TlsVersion::Tls13,
        })
    }
}

fn validation_secret(
    r: &SecretRef,
    m: &SecretMaterial,
) -> std::result::Result<Validation, Unresolved> {
    match m {
        SecretMaterial::Validation(v) => Ok(v.clone()),
        SecretMaterial::Certificate(_) => Err(Unresolved::Invalid {
            name: r.name.clone(),
            message: "is a TLS certificate, where a validation context is needed".into(),
        }),
    }
}

fn checked(v: Validation, r: &SecretRef) -> std::result::Result<Validation, Unresolved> {
    match v.without_ca() {
        None => Ok(v),
        Some((_, message)) => Err(Unresolved::Invalid {
            name: r.name.clone(),
            message,
        }),
    }
}

/// Envoy's `getSubjectAltNameMatchers`: typed matchers when there are any, else each
/// deprecated one for every SAN kind.
fn effective_sans(typed: Vec<SanMatcher>, untyped: Vec<String>) -> Vec<SanMatcher> {
    if !typed.is_empty() {
        return typed;
    }
    untyped
        .into_iter()
        .map(|exact| SanMatcher {
            kind: SanKind::Any,
            exact,
        })
        .collect()
}

impl Validation {
    /// Converts one `CertificateValidationContext` (inline, a combined default, or a
    /// secret's); the checks that need roots are left to [`Validation::without_ca`], since
    /// a combined context is only complete once merged.
    pub fn new(v: &CertificateValidationContext, path: &FieldPath) -> Result<Validation> {
        refuse(
            v.ca_certificate_provider_instance.is_some(),
            path,
            "ca_certificate_provider_instance",
            "certificate provider instances",
        )?;
        refuse(
            v.system_root_certs.is_some(),
            path,
            "system_root_certs",
            "the system's roots (name a trusted_ca file instead)",
        )?;
        refuse(
            v.watched_directory.is_some(),
            path,
            "watched_directory",
            "reloading from a watched directory",
        )?;
        refuse(
            !v.verify_certificate_spki.is_empty(),
            path,
            "verify_certificate_spki",
            "certificate SPKI pinning",
        )?;
        refuse(
            !v.verify_certificate_hash.is_empty(),
            path,
            "verify_certificate_hash",
            "certificate hash pinning",
        )?;
        refuse(
            v.require_signed_certificate_timestamp
                .is_some_and(|b| b.value),
            path,
            "require_signed_certificate_timestamp",
            "requiring signed certificate timestamps",
        )?;
        refuse(
            v.allow_expired_certificate,
            path,
            "allow_expired_certificate",
            "accepting expired certificates",
        )?;
        refuse(
            v.trust_chain_verification != TrustChainVerification::VerifyTrustChain as i32,
            path,
            "trust_chain_verification",
            "accepting untrusted chains",
        )?;
        refuse(
            v.custom_validator_config.is_some(),
            path,
            "custom_validator_config",
            "custom certificate validators",
        )?;
        refuse(
            v.only_verify_leaf_cert_crl,
            path,
            "only_verify_leaf_cert_crl",
            "checking revocation of the leaf only",
        )?;
        refuse(
            v.max_verify_depth.is_some(),
            path,
            "max_verify_depth",
            "a maximum chain depth",
        )?;
        // `suppress_client_ca_list` only changes what a server sends, never a client.
        let trusted_ca = match &v.trusted_ca {
            None => None,
            Some(ds) => {
                let tp = path.field("trusted_ca");
                read(ds, &tp)?.map(|(data, origin)| -> Result<Roots> {
                    let bundle = if data.is_empty() {
                        None
                    } else {
                        let fail = |why: String| {
                            ConvertError::new(
                                &tp,
                                format!(
                                    "Failed to load trusted CA certificates from {origin}: {why}"
                                ),
                            )
                        };
                        let pem = std::str::from_utf8(&data)
                            .map_err(|_| fail("not PEM text".into()))?;
                        Some(TrustBundle::from_pem(pem).map_err(|e| fail(e.to_string()))?)
                    };
                    Ok(Roots { origin, bundle })
                })
                .transpose()?
            }
        };
        let crl = match &v.crl {
            None => None,
            Some(ds) => {
                let cp = path.field("crl");
                read(ds, &cp)?
                    .map(|(data, origin)| -> Result<Crls> {
                        let lists = if data.is_empty() {
                            Vec::new()
                        } else {
                            let fail = |why: String| {
                                ConvertError::new(
                                    &cp,
                                    format!("Failed to load CRL from {origin}: {why}"),
                                )
                            };
                            let lists = crls_from_pem(&data).map_err(|e| fail(e.to_string()))?;
                            if lists.is_empty() {
                                // Envoy would accept the file and then fail every chain for
                                // want of a list; refusing it says why up front.
                                return Err(fail("no X509 CRL in it".into()));
                            }
                            lists
                        };
                        Ok(Crls { origin, lists })
                    })
                    .transpose()?
            }
        };
        let tsp = path.field("match_typed_subject_alt_names");
        let typed_sans = v
            .match_typed_subject_alt_names
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mp = tsp.index(i);
                let kind = match SanType::try_from(m.san_type) {
                    Ok(SanType::Dns) => SanKind::Dns,
                    Ok(SanType::Uri) => SanKind::Uri,
                    Ok(SanType::Email) => SanKind::Email,
                    Ok(SanType::IpAddress) => SanKind::IpAddress,
                    Ok(SanType::OtherName) => {
                        return Err(unsupported(
                            &mp.field("san_type"),
                            "OTHER_NAME subject alternative name matchers",
                        ));
                    }
                    Ok(SanType::Unspecified) | Err(_) => {
                        return Err(ConvertError::new(
                            &mp.field("san_type"),
                            format!("expected DNS, URI, EMAIL or IP_ADDRESS, got {}", m.san_type),
                        ));
                    }
                };
                let matcher = m
                    .matcher
                    .as_ref()
                    .ok_or_else(|| ConvertError::new(&mp.field("matcher"), "value is required"))?;
                Ok(SanMatcher {
                    kind,
                    exact: exact(matcher, &mp.field("matcher"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let usp = path.field("match_subject_alt_names");
        let untyped_sans = v
            .match_subject_alt_names
            .iter()
            .enumerate()
            .map(|(i, m)| exact(m, &usp.index(i)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Validation {
            trusted_ca,
            crl,
            typed_sans,
            untyped_sans,
        })
    }

    /// Envoy's `CertificateValidationContextConfigImpl::initialize`: without a trusted CA a
    /// CRL or a SAN matcher would check nothing, so Envoy refuses them. The field at fault
    /// and Envoy's message.
    pub fn without_ca(&self) -> Option<(&'static str, String)> {
        if self.trusted_ca.as_ref().is_some_and(|r| r.bundle.is_some()) {
            return None;
        }
        if let Some(crl) = self.crl.as_ref().filter(|c| !c.lists.is_empty()) {
            return Some((
                "crl",
                format!("Failed to load CRL from {} without trusted CA", crl.origin),
            ));
        }
        let sans = if !self.typed_sans.is_empty() {
            "match_typed_subject_alt_names"
        } else if !self.untyped_sans.is_empty() {
            "match_subject_alt_names"
        } else {
            return None;
        };
        Some((
            sans,
            "SAN-based verification of peer certificates without trusted CA is insecure and \
             not allowed"
                .into(),
        ))
    }

    /// `self` (a combined context's default) with `dynamic` (the secret's) merged in.
    pub fn merged(&self, dynamic: Validation) -> Validation {
        Validation {
            trusted_ca: dynamic.trusted_ca.or_else(|| self.trusted_ca.clone()),
            crl: dynamic.crl.or_else(|| self.crl.clone()),
            typed_sans: self
                .typed_sans
                .iter()
                .cloned()
                .chain(dynamic.typed_sans)
                .collect(),
            untyped_sans: self
                .untyped_sans
                .iter()
                .cloned()
                .chain(dynamic.untyped_sans)
                .collect(),
        }
    }
}

impl SecretRef {
    /// An `SdsSecretConfig`.
    pub fn new(s: &SdsSecretConfig, path: &FieldPath) -> Result<SecretRef> {
        if s.name.is_empty() {
            return Err(ConvertError::new(&path.field("name"), "must not be empty"));
        }
        let Some(cs) = &s.sds_config else {
            return Ok(SecretRef {
                name: s.name.clone(),
                source: SecretSource::Static,
                initial_fetch_timeout: None,
            });
        };
        let (source, initial_fetch_timeout) = config_source(cs, &path.field("sds_config"))?;
        Ok(SecretRef {
            name: s.name.clone(),
            source,
            initial_fetch_timeout,
        })
    }
}

fn config_source(cs: &ConfigSource, path: &FieldPath) -> Result<(SecretSource, Option<Duration>)> {
    refuse(
        !cs.authorities.is_empty(),
        path,
        "authorities",
        "xDS-TP authorities",
    )?;
    api_version(cs.resource_api_version, &path.field("resource_api_version"))?;
    let wait = match &cs.initial_fetch_timeout {
        None => Some(DEFAULT_INITIAL_FETCH_TIMEOUT),
        Some(d) => timeout(Some(d), &path.field("initial_fetch_timeout"))?,
    };
    let source = match &cs.config_source_specifier {
        Some(ConfigSourceSpecifier::Ads(_)) => SecretSource::Ads,
        Some(ConfigSourceSpecifier::ApiConfigSource(api)) => SecretSource::Grpc {
            cluster: grpc_cluster(api, &path.field("api_config_source"))?,
        },
        Some(ConfigSourceSpecifier::Path(_)) => {
            return Err(unsupported(&path.field("path"), "secrets from files"));
        }
        Some(ConfigSourceSpecifier::PathConfigSource(_)) => {
            return Err(unsupported(
                &path.field("path_config_source"),
                "secrets from files",
            ));
        }
        Some(ConfigSourceSpecifier::Self_(_)) => {
            return Err(unsupported(
                &path.field("self"),
                "secrets from the resource's own source",
            ));
        }
        None => {
            return Err(ConvertError::new(
                path,
                "expected `ads` or `api_config_source`: a config source is required",
            ));
        }
    };
    Ok((source, wait))
}

/// The static cluster of a GRPC `api_config_source` (whether that cluster exists and is
/// static is the bootstrap's and the store's to check).
fn grpc_cluster(api: &ApiConfigSource, path: &FieldPath) -> Result<String> {
    use api_config_source::ApiType;
    match ApiType::try_from(api.api_type) {
        Ok(ApiType::Grpc) => {}
        Ok(other) => {
            return Err(ConvertError::new(
                &path.field("api_type"),
                format!(
                    "only GRPC secret sources are supported by weft-proxy, got {}",
                    other.as_str_name()
                ),
            ));
        }
        Err(_) => {
            return Err(ConvertError::new(
                &path.field("api_type"),
                format!("expected GRPC, got {}", api.api_type),
            ));
        }
    }
    api_version(
        api.transport_api_version,
        &path.field("transport_api_version"),
    )?;
    refuse(
        !api.cluster_names.is_empty(),
        path,
        "cluster_names",
        "REST sources (gRPC names its cluster in grpc_services)",
    )?;
    refuse(
        api.rate_limit_settings.is_some(),
        path,
        "rate_limit_settings",
        "xDS request rate limits",
    )?;
    refuse(
        !api.config_validators.is_empty(),
        path,
        "config_validators",
        "config validators",
    )?;
    // `refresh_delay` and `request_timeout` are REST's and Envoy ignores them for gRPC;
    // `set_node_on_first_message_only` only changes which requests repeat the node.
    let [service] = api.grpc_services.as_slice() else {
        return Err(ConvertError::new(
            &path.field("grpc_services"),
            format!(
                "expected exactly one grpc_service, got {}",
                api.grpc_services.len()
            ),
        ));
    };
    let sp = path.field("grpc_services").index(0);
    refuse(service.timeout.is_some(), &sp, "timeout", "gRPC timeouts")?;
    refuse(
        !service.initial_metadata.is_empty(),
        &sp,
        "initial_metadata",
        "gRPC initial metadata",
    )?;
    refuse(
        service.retry_policy.is_some(),
        &sp,
        "retry_policy",
        "gRPC retry policies",
    )?;
    match &service.target_specifier {
        Some(TargetSpecifier::EnvoyGrpc(g)) => {
            let gp = sp.field("envoy_grpc");
            if g.cluster_name.is_empty() {
                return Err(ConvertError::new(
                    &gp.field("cluster_name"),
                    "must not be empty",
                ));
            }
            refuse(
                !g.authority.is_empty(),
                &gp,
                "authority",
                "a gRPC authority",
            )?;
            refuse(
                g.retry_policy.is_some(),
                &gp,
                "retry_policy",
                "gRPC retry policies",
            )?;
            refuse(
                g.max_receive_message_length.is_some(),
                &gp,
                "max_receive_message_length",
                "a gRPC message size limit",
            )?;
            refuse(
                g.skip_envoy_headers,
                &gp,
                "skip_envoy_headers",
                "leaving out Envoy's gRPC headers",
            )?;
            Ok(g.cluster_name.clone())
        }
        Some(TargetSpecifier::GoogleGrpc(_)) => Err(unsupported(
            &sp.field("google_grpc"),
            "Google gRPC clients (use envoy_grpc)",
        )),
        None => Err(ConvertError::new(
            &sp,
            "expected `envoy_grpc`: a gRPC target is required",
        )),
    }
}

/// xDS v2 is gone from Envoy; AUTO means v3.
fn api_version(v: i32, path: &FieldPath) -> Result<()> {
    match ApiVersion::try_from(v) {
        Ok(ApiVersion::Auto | ApiVersion::V3) => Ok(()),
        _ => Err(ConvertError::new(
            path,
            format!("expected V3, got {v} (xDS v2 is not supported)"),
        )),
    }
}

impl SecretMaterial {
    /// Converts an SDS (or static bootstrap) `Secret`; `path` names the resource.
    pub fn new(secret: &Secret, path: &FieldPath) -> Result<SecretMaterial> {
        if secret.name.is_empty() {
            return Err(ConvertError::new(&path.field("name"), "must not be empty"));
        }
        let name = &secret.name;
        let material = match &secret.r#type {
            Some(secret::Type::TlsCertificate(c)) => {
                let cp = path.field("tls_certificate");
                credentials(c, &cp).and_then(|c| {
                    c.map(SecretMaterial::Certificate).ok_or_else(|| {
                        ConvertError::new(&cp, "expected certificate_chain and private_key")
                    })
                })
            }
            Some(secret::Type::ValidationContext(v)) => {
                Validation::new(v, &path.field("validation_context"))
                    .map(SecretMaterial::Validation)
            }
            Some(secret::Type::SessionTicketKeys(_)) => Err(unsupported(
                &path.field("session_ticket_keys"),
                "session ticket keys (only upstream TLS uses secrets)",
            )),
            Some(secret::Type::GenericSecret(_)) => Err(unsupported(
                &path.field("generic_secret"),
                "generic secrets",
            )),
            None => Err(ConvertError::new(
                path,
                "expected tls_certificate or validation_context",
            )),
        };
        material.map_err(|e| ConvertError {
            message: format!("secret '{name}': {}", e.message),
            path: e.path,
        })
    }
}

/// One inline `TlsCertificate` or a secret's: both of chain and key, or neither (Envoy
/// skips an empty entry).
fn credentials(c: &TlsCertificate, path: &FieldPath) -> Result<Option<Credentials>> {
    refuse(c.pkcs12.is_some(), path, "pkcs12", "PKCS#12 bundles")?;
    refuse(
        c.watched_directory.is_some(),
        path,
        "watched_directory",
        "reloading from a watched directory",
    )?;
    refuse(
        c.private_key_provider.is_some(),
        path,
        "private_key_provider",
        "private key providers",
    )?;
    refuse(
        c.password.is_some(),
        path,
        "password",
        "encrypted private keys",
    )?;
    refuse(
        c.ocsp_staple.is_some(),
        path,
        "ocsp_staple",
        "OCSP stapling",
    )?;
    refuse(
        !c.signed_certificate_timestamp.is_empty(),
        path,
        "signed_certificate_timestamp",
        "signed certificate timestamps",
    )?;
    refuse(
        c.tls_params.is_some(),
        path,
        "tls_params",
        "per-certificate TLS parameters",
    )?;
    let chain = match &c.certificate_chain {
        Some(ds) => read(ds, &path.field("certificate_chain"))?,
        None => None,
    };
    let key = match &c.private_key {
        Some(ds) => read(ds, &path.field("private_key"))?,
        None => None,
    };
    let (chain, key) = match (chain, key) {
        (None, None) => return Ok(None),
        (Some(chain), Some(key)) => (chain, key),
        (Some(_), None) => {
            return Err(ConvertError::new(
                &path.field("private_key"),
                "value is required with certificate_chain",
            ));
        }
        (None, Some(_)) => {
            return Err(ConvertError::new(
                &path.field("certificate_chain"),
                "value is required with private_key",
            ));
        }
    };
    let text = |(data, origin): &(Vec<u8>, String), field: &str, what: &str| -> Result<String> {
        String::from_utf8(data.clone()).map_err(|_| {
            ConvertError::new(
                &path.field(field),
                format!("Failed to load {what} from {origin}: not PEM text"),
            )
        })
    };
    let chain_pem = text(&chain, "certificate_chain", "certificate chain")?;
    let key_pem = text(&key, "private_key", "private key")?;
    Credentials::from_pem(&chain_pem, &key_pem)
        .map(Some)
        .map_err(|e| {
            // The error names which of the two it is about.
            let (field, origin) = match &e {
                weft_identity::TlsError::Pem { what, .. } if *what == "private key" => {
                    ("private_key", &key.1)
                }
                _ => ("certificate_chain", &chain.1),
            };
            ConvertError::new(
                &path.field(field),
                format!("cannot load TLS certificate from {origin}: {e}"),
            )
        })
}

/// The bytes of a `DataSource` and where they came from; `None` when no source is named
/// (which Envoy treats as not set).
fn read(ds: &DataSource, path: &FieldPath) -> Result<Option<(Vec<u8>, String)>> {
    refuse(
        ds.watched_directory.is_some(),
        path,
        "watched_directory",
        "reloading from a watched directory",
    )?;
    Ok(match &ds.specifier {
        None => None,
        Some(Specifier::Filename(f)) => {
            if f.is_empty() {
                return Err(ConvertError::new(
                    &path.field("filename"),
                    "must not be empty",
                ));
            }
            let data = std::fs::read(f).map_err(|e| {
                ConvertError::new(&path.field("filename"), format!("cannot read {f}: {e}"))
            })?;
            Some((data, f.clone()))
        }
        Some(Specifier::InlineBytes(b)) => Some((b.clone(), INLINE.into())),
        Some(Specifier::InlineString(s)) => Some((s.clone().into_bytes(), INLINE.into())),
        Some(Specifier::EnvironmentVariable(_)) => {
            return Err(unsupported(
                &path.field("environment_variable"),
                "data from environment variables",
            ));
        }
    })
}

/// At most one client certificate, inline or by SDS (Envoy counts both lists together).
fn certificate(
    inline: &[TlsCertificate],
    sds: &[SdsSecretConfig],
    path: &FieldPath,
) -> Result<Option<CertificateSource>> {
    if inline.len() + sds.len() > 1 {
        let extra = if inline.len() > 1 {
            path.field("tls_certificates").index(1)
        } else {
            path.field("tls_certificate_sds_secret_configs")
                .index(sds.len() - 1)
        };
        return Err(ConvertError::new(
            &extra,
            "Multiple TLS certificates are not supported for client contexts",
        ));
    }
    if let [c] = inline {
        let cp = path.field("tls_certificates").index(0);
        return Ok(credentials(c, &cp)?.map(CertificateSource::Inline));
    }
    if let [s] = sds {
        let sp = path.field("tls_certificate_sds_secret_configs").index(0);
        return Ok(Some(CertificateSource::Sds(SecretRef::new(s, &sp)?)));
    }
    Ok(None)
}

/// `tls_params`: the highest version (see [`UpstreamTlsConfig::max_version`]). Envoy's
/// client default is TLS 1.2 to 1.2, and `TLS_AUTO` means that default.
fn versions(params: Option<&TlsParameters>, path: &FieldPath) -> Result<TlsVersion> {
    let Some(tp) = params else {
        return Ok(TlsVersion::Tls12);
    };
    refuse(
        !tp.cipher_suites.is_empty(),
        path,
        "cipher_suites",
        "choosing cipher suites",
    )?;
    refuse(
        !tp.ecdh_curves.is_empty(),
        path,
        "ecdh_curves",
        "choosing ECDH curves",
    )?;
    refuse(
        !tp.signature_algorithms.is_empty(),
        path,
        "signature_algorithms",
        "choosing signature algorithms",
    )?;
    refuse(
        !tp.compliance_policies.is_empty(),
        path,
        "compliance_policies",
        "compliance policies",
    )?;
    let protocol = |v: i32, field: &str| {
        TlsProtocol::try_from(v).map_err(|_| {
            ConvertError::new(
                &path.field(field),
                format!("expected TLS_AUTO, TLSv1_0, TLSv1_1, TLSv1_2 or TLSv1_3, got {v}"),
            )
        })
    };
    match protocol(
        tp.tls_minimum_protocol_version,
        "tls_minimum_protocol_version",
    )? {
        // rustls's floor is TLS 1.2, which these minimums allow anyway.
        TlsProtocol::TlsAuto | TlsProtocol::TlSv10 | TlsProtocol::TlSv11 | TlsProtocol::TlSv12 => {}
        TlsProtocol::TlSv13 => {
            return Err(unsupported(
                &path.field("tls_minimum_protocol_version"),
                "TLSv1_3 as the minimum (TLS 1.3 only) for upstream connections",
            ));
        }
    }
    match protocol(
        tp.tls_maximum_protocol_version,
        "tls_maximum_protocol_version",
    )? {
        TlsProtocol::TlsAuto | TlsProtocol::TlSv12 => Ok(TlsVersion::Tls12),
        TlsProtocol::TlSv13 => Ok(TlsVersion::Tls13),
        v @ (TlsProtocol::TlSv10 | TlsProtocol::TlSv11) => Err(ConvertError::new(
            &path.field("tls_maximum_protocol_version"),
            format!(
                "expected TLSv1_2 or later, got {}: weft-proxy's TLS (rustls) has no TLS 1.0 or 1.1",
                v.as_str_name()
            ),
        )),
    }
}

/// Envoy joins the list with commas and splits it again, so an entry with a comma is two
/// protocols; each must fit ALPN's one-byte length and not be empty.
fn alpn(protocols: &[String], path: &FieldPath) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (i, p) in protocols.iter().enumerate() {
        for part in p.split(',') {
            if part.is_empty() || part.len() > 255 {
                return Err(ConvertError::new(
                    &path.index(i),
                    format!(
                        "Invalid ALPN protocol string `{p}`: each protocol must be 1 to 255 bytes"
                    ),
                ));
            }
            out.push(part.to_string());
        }
    }
    Ok(out)
}

/// The configured SNI. rustls sends only DNS names as SNI, so anything else (an IP
/// literal, which Envoy would send as is) is refused rather than silently not sent.
fn sni(sni: &str, path: &FieldPath) -> Result<Option<String>> {
    if sni.is_empty() {
        return Ok(None);
    }
    if sni.contains('\0') {
        return Err(ConvertError::new(
            path,
            "SNI names containing NULL-byte are not allowed",
        ));
    }
    if sni.len() > 255 {
        return Err(ConvertError::new(
            path,
            format!("must be at most 255 bytes (is {})", sni.len()),
        ));
    }
    match ServerName::try_from(sni) {
        Ok(ServerName::DnsName(_)) => Ok(Some(sni.to_string())),
        Ok(_) => Err(unsupported(
            path,
            "an IP address as SNI (rustls sends none for one)",
        )),
        Err(e) => Err(ConvertError::new(
            path,
            format!("expected a DNS name to send as SNI, got `{sni}`: {e}"),
        )),
    }
}

/// An exact `StringMatcher` (the only kind the SAN checks implement).
fn exact(m: &StringMatcher, path: &FieldPath) -> Result<String> {
    refuse(
        m.ignore_case,
        path,
        "ignore_case",
        "case-insensitive SAN matchers",
    )?;
    let other = match &m.match_pattern {
        Some(MatchPattern::Exact(s)) => return Ok(s.clone()),
        Some(MatchPattern::Prefix(_)) => "prefix",
        Some(MatchPattern::Suffix(_)) => "suffix",
        Some(MatchPattern::SafeRegex(_)) => "safe_regex",
        Some(MatchPattern::Contains(_)) => "contains",
        Some(MatchPattern::Custom(_)) => "custom",
        None => {
            return Err(ConvertError::new(
                path,
                "expected `exact`: a match pattern is required",
            ));
        }
    };
    Err(unsupported(
        &path.field(other),
        &format!("{other} SAN matchers (only exact)"),
    ))
}

fn unsupported(path: &FieldPath, what: &str) -> ConvertError {
    ConvertError::new(
        path,
        format!(
            "{what} is not supported by weft-proxy; the resource is rejected rather than \
             served without it"
        ),
    )
}

/// Refuses `field` (of the message at `path`) when it is set.
fn refuse(set: bool, path: &FieldPath, field: &str, what: &str) -> Result<()> {
    if set {
        Err(unsupported(&path.field(field), what))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
