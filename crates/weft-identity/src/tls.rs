//! rustls configurations for mutual TLS between workloads, and the one choice of crypto
//! provider (aws-lc-rs) for all of Weft. A peer is accepted when its chain leads to the
//! mesh's trust bundle and its certificate names an acceptable SPIFFE ID; host names play
//! no part, as in Istio, where a sidecar checks the service account behind a service, not
//! the name it dialled.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::spiffe::SpiffeId;

/// The handshake-signature methods of a server certificate verifier whose `provider` field
/// checks them: every verifier here checks signatures the same way and differs only in
/// how it judges the certificate.
macro_rules! handshake_signatures_by_provider {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    };
}
pub(crate) use handshake_signatures_by_provider;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{what}: {source}")]
    Pem {
        what: &'static str,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{0}: no certificate in it")]
    NoCertificate(&'static str),
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// The crypto provider every TLS configuration of Weft uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The roots peers' chains must lead to.
#[derive(Clone, Debug)]
pub struct TrustBundle {
    pub(crate) roots: Arc<RootCertStore>,
}

impl TrustBundle {
    /// From one or more PEM certificates.
    pub fn from_pem(pem: &str) -> Result<Self, TlsError> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|source| TlsError::Pem {
                what: "trust bundle",
                source,
            })?;
            roots.add(cert)?;
        }
        if roots.is_empty() {
            return Err(TlsError::NoCertificate("trust bundle"));
        }
        Ok(Self {
            roots: Arc::new(roots),
        })
    }
}

/// A workload's certificate chain and key.
#[derive(Debug)]
pub struct Credentials {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
}

impl Clone for Credentials {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Credentials {
    /// From a PEM chain (leaf first) and a PEM private key.
    pub fn from_pem(chain_pem: &str, key_pem: &str) -> Result<Self, TlsError> {
        let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| TlsError::Pem {
                what: "certificate chain",
                source,
            })?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate("certificate chain"));
        }
        let key =
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|source| TlsError::Pem {
                what: "private key",
                source,
            })?;
        Ok(Self { chain, key })
    }
}

/// Which SPIFFE IDs a peer may present.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peers {
    /// Any identity of this trust domain.
    TrustDomain(String),
    /// One of these (Istio: the service accounts behind a service).
    OneOf(Vec<SpiffeId>),
}

impl std::fmt::Display for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peers::TrustDomain(td) => write!(f, "an identity of trust domain {td}"),
            Peers::OneOf(ids) => {
                for (i, id) in ids.iter().enumerate() {
                    f.write_str(if i == 0 { "" } else { " or " })?;
                    write!(f, "{id}")?;
                }
                Ok(())
            }
        }
    }
}

impl Peers {
    fn accepts(&self, id: &SpiffeId) -> bool {
        match self {
            Peers::TrustDomain(td) => id.trust_domain() == td,
            Peers::OneOf(ids) => ids.contains(id),
        }
    }
}

/// A client that presents `own` (if any) and accepts servers that `peers` allows.
pub fn client_config(
    bundle: &TrustBundle,
    own: Option<Credentials>,
    peers: Peers,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let verifier = Arc::new(SpiffeServerVerifier {
        roots: bundle.roots.clone(),
        peers,
        provider: provider.clone(),
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match own {
        Some(own) => builder.with_client_auth_cert(own.chain, own.key)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A client without a certificate that accepts servers by DNS name under `bundle` — how
/// an agent reaches the control plane (`istiod.istio-system.svc`) before it has an identity.
pub fn dns_client_config(
    bundle: &TrustBundle,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, TlsError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(bundle.roots.clone())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A server that presents `own` and requires client certificates that `peers` allows.
pub fn server_config(
    bundle: &TrustBundle,
    own: Credentials,
    peers: Peers,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let chain_verifier =
        WebPkiClientVerifier::builder_with_provider(bundle.roots.clone(), provider.clone())
            .build()?;
    let verifier = Arc::new(SpiffeClientVerifier {
        chain: chain_verifier,
        peers,
    });
    checking_clients(provider, verifier, own, alpn)
}

/// A server presenting `own` whose clients `verifier` checks.
fn checking_clients(
    provider: Arc<CryptoProvider>,
    verifier: Arc<dyn ClientCertVerifier>,
    own: Credentials,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(own.chain, own.key)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A server that presents `own` and lets clients choose: a certificate, whose chain must
/// lead to `bundle` (the caller then reads its SPIFFE IDs with [`spiffe_ids`]), or none,
/// for clients that prove who they are otherwise — istiod's 15012, where proxies present
/// their workload certificate and agents without one yet present a token.
pub fn serving_config_verifying_clients(
    own: Credentials,
    bundle: &TrustBundle,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(bundle.roots.clone(), provider.clone())
            .allow_unauthenticated()
            .build()?;
    checking_clients(provider, verifier, own, alpn)
}

/// A server that presents `own` and asks clients for no certificate: they prove who they
/// are otherwise.
pub fn serving_config(own: Credentials, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(own.chain, own.key)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The SPIFFE IDs (URI SANs that parse as such) a certificate names.
pub fn spiffe_ids(cert: &CertificateDer<'_>) -> Vec<SpiffeId> {
    let Ok((_, cert)) = X509Certificate::from_der(cert) else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
            for name in &san.general_names {
                if let GeneralName::URI(uri) = name
                    && let Ok(id) = SpiffeId::parse(uri)
                {
                    ids.push(id);
                }
            }
        }
    }
    ids
}

/// The peer is acceptable when its certificate names exactly one SPIFFE ID (the SPIFFE
/// X.509-SVID rule) and `peers` allows it.
fn check_identity(cert: &CertificateDer<'_>, peers: &Peers) -> Result<(), rustls::Error> {
    let ids = spiffe_ids(cert);
    match ids.as_slice() {
        [id] if peers.accepts(id) => Ok(()),
        [id] => Err(rustls::Error::General(format!(
            "peer identity {id} is not {peers}"
        ))),
        [] => Err(rustls::Error::General(
            "peer certificate names no SPIFFE ID".to_string(),
        )),
        _ => Err(rustls::Error::General(format!(
            "peer certificate names {} SPIFFE IDs; an SVID names one",
            ids.len()
        ))),
    }
}

#[derive(Debug)]
struct SpiffeServerVerifier {
    roots: Arc<RootCertStore>,
    peers: Peers,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        check_identity(end_entity, &self.peers)?;
        Ok(ServerCertVerified::assertion())
    }

    handshake_signatures_by_provider!();
}

#[derive(Debug)]
struct SpiffeClientVerifier {
    chain: Arc<dyn ClientCertVerifier>,
    peers: Peers,
}

impl ClientCertVerifier for SpiffeClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.chain.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.chain
            .verify_client_cert(end_entity, intermediates, now)?;
        check_identity(end_entity, &self.peers)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}
