//! How a proxy checks an upstream's certificate the way Envoy's default certificate
//! validator does, for the `UpstreamTlsContext`s istiod-style clusters carry: the chain
//! leads to the configured roots (when there are any — none and no SAN matcher is
//! Envoy's "insecure", which accepts any chain), and then any of the certificate's subject
//! alternative names matches any configured matcher. The name the proxy dialled (its SNI)
//! is never checked against the certificate, as Envoy does not check it either; the
//! matchers are what say who the server must be. Only the step of weft proxy's upstream TLS
//! that needs crypto lives here (DESIGN: the one crate that picks the provider).

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{CertificateRevocationList, FromDer, X509Certificate};

use crate::tls::{Credentials, TlsError, TrustBundle, provider};

/// Which kind of subject alternative name a matcher applies to (Envoy's `san_type`); the
/// deprecated untyped `match_subject_alt_names` applies to every kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SanKind {
    Any,
    Dns,
    Uri,
    Email,
    IpAddress,
}

/// One exact SAN matcher (the only kind istiod emits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SanMatcher {
    pub kind: SanKind,
    pub exact: String,
}

/// What an upstream connection checks and presents.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// The roots the chain must lead to; `None` checks no chain.
    pub roots: Option<TrustBundle>,
    /// Revocation lists for the chain (checked only with roots).
    pub crls: Vec<CertificateRevocationListDer<'static>>,
    /// Any of the certificate's SANs must match any of these; none checks no name.
    pub sans: Vec<SanMatcher>,
    /// Checked as well as `sans`: any SAN must match one of these names (Envoy's SAN
    /// override list, which `auto_san_validation` fills with the request's host).
    pub san_override: Vec<String>,
    /// The client certificate to present, if any.
    pub own: Option<Credentials>,
    pub alpn: Vec<Vec<u8>>,
    /// TLS 1.3 allowed (Envoy's `tls_maximum_protocol_version`); 1.2 is always allowed.
    pub tls13: bool,
}

/// The certificate revocation lists in `pem` (`X509 CRL` blocks; other blocks are skipped,
/// as OpenSSL's PEM reader skips them). Each one must parse, so a damaged list is refused
/// when the configuration is read rather than failing every handshake later. An empty
/// result means the text held no list at all; callers decide whether that is an error.
pub fn crls_from_pem(pem: &[u8]) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let mut out = Vec::new();
    for crl in CertificateRevocationListDer::pem_slice_iter(pem) {
        let crl = crl.map_err(|source| TlsError::Pem {
            what: "certificate revocation list",
            source,
        })?;
        if CertificateRevocationList::from_der(&crl).is_err() {
            return Err(TlsError::Config(rustls::Error::InvalidCertRevocationList(
                rustls::CertRevocationListError::ParseError,
            )));
        }
        out.push(crl);
    }
    Ok(out)
}

/// A client configuration that validates as Envoy does (see the module).
pub fn client_config(upstream: Upstream) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let chain = match &upstream.roots {
        Some(bundle) => Some(
            WebPkiServerVerifier::builder_with_provider(bundle.roots.clone(), provider.clone())
                .with_crls(upstream.crls.clone())
                .build()
                .map_err(|e| TlsError::Config(rustls::Error::General(e.to_string())))?,
        ),
        None => None,
    };
    let verifier = Arc::new(EnvoyValidator {
        chain,
        sans: upstream.sans,
        san_override: upstream
            .san_override
            .into_iter()
            .map(|exact| SanMatcher {
                kind: SanKind::Any,
                exact,
            })
            .collect(),
        provider: provider.clone(),
    });
    let versions: &[&rustls::SupportedProtocolVersion] = if upstream.tls13 {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS12]
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match upstream.own {
        Some(own) => builder.with_client_auth_cert(own.chain, own.key)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = upstream.alpn;
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct EnvoyValidator {
    chain: Option<Arc<WebPkiServerVerifier>>,
    sans: Vec<SanMatcher>,
    san_override: Vec<SanMatcher>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for EnvoyValidator {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(chain) = &self.chain {
            // webpki checks chain and revocation before the name, so a name error means
            // the chain passed; the name is not Envoy's to check.
            match chain.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                Ok(_)
                | Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )) => {}
                Err(e) => return Err(e),
            }
        }
        if !self.sans.is_empty() || !self.san_override.is_empty() {
            let names = subject_alt_names(end_entity);
            let any_matches = |matchers: &[SanMatcher]| {
                matchers.is_empty()
                    || names
                        .iter()
                        .any(|(kind, name)| matchers.iter().any(|m| matches(m, *kind, name)))
            };
            if !any_matches(&self.sans) || !any_matches(&self.san_override) {
                return Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName,
                ));
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    crate::tls::handshake_signatures_by_provider!();
}

/// The certificate's SANs, each with its kind, as text (IP addresses in their usual form).
fn subject_alt_names(cert: &CertificateDer<'_>) -> Vec<(SanKind, String)> {
    let Ok((_, cert)) = X509Certificate::from_der(cert) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
            for name in &san.general_names {
                match name {
                    GeneralName::DNSName(n) => out.push((SanKind::Dns, n.to_string())),
                    GeneralName::URI(n) => out.push((SanKind::Uri, n.to_string())),
                    GeneralName::RFC822Name(n) => out.push((SanKind::Email, n.to_string())),
                    GeneralName::IPAddress(bytes) => {
                        let ip = match bytes.len() {
                            4 => <[u8; 4]>::try_from(*bytes).ok().map(std::net::IpAddr::from),
                            16 => <[u8; 16]>::try_from(*bytes)
                                .ok()
                                .map(std::net::IpAddr::from),
                            _ => None,
                        };
                        if let Some(ip) = ip {
                            out.push((SanKind::IpAddress, ip.to_string()));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

/// Envoy's matching of one SAN: a DNS SAN by `dnsNameMatch` (a `*.` wildcard stands for
/// exactly one non-empty leftmost label), every other kind by equality.
fn matches(m: &SanMatcher, kind: SanKind, name: &str) -> bool {
    if m.kind != SanKind::Any && m.kind != kind {
        return false;
    }
    if kind != SanKind::Dns {
        return m.exact == name;
    }
    if m.exact.eq_ignore_ascii_case(name) {
        return true;
    }
    match (name.strip_prefix("*."), m.exact.split_once('.')) {
        (Some(domain), Some((label, rest))) => {
            !label.is_empty() && rest.eq_ignore_ascii_case(domain)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
