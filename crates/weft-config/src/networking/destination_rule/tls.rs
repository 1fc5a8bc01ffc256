//! TLS origination towards the upstream (`ClientTLSSettings`) with Istio's `ValidateTLS`.
//! MeshConfig reuses it for tracing and other outbound TLS settings.

use crate::types::is_default;
use crate::validate::{Validate, Validator};
use serde::{Deserialize, Serialize};

/// How connections to the upstream are secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TLSmode {
    /// Plain text (no TLS origination).
    #[default]
    Disable,
    /// TLS, verifying the server.
    Simple,
    /// Mutual TLS with a client certificate given here.
    Mutual,
    /// Mutual TLS with Istio-issued certificates.
    IstioMutual,
}

/// TLS settings for connections to the upstream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ClientTLSSettings {
    /// TLS mode.
    #[serde(skip_serializing_if = "is_default")]
    pub mode: TLSmode,
    /// Client certificate file (MUTUAL without credentialName).
    #[serde(skip_serializing_if = "is_default")]
    pub client_certificate: String,
    /// Client private key file (MUTUAL without credentialName).
    #[serde(skip_serializing_if = "is_default")]
    pub private_key: String,
    /// CA bundle file used to verify the server certificate.
    #[serde(skip_serializing_if = "is_default")]
    pub ca_certificates: String,
    /// Secret holding the client certificate/key and CA (gateways and sidecars with SDS).
    #[serde(skip_serializing_if = "is_default")]
    pub credential_name: String,
    /// Names the server certificate's SAN must match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<String>,
    /// SNI presented to the server.
    #[serde(skip_serializing_if = "is_default")]
    pub sni: String,
    /// Skip verifying the server's CA signature and SAN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
    /// Certificate revocation list file used when verifying the server.
    #[serde(skip_serializing_if = "is_default")]
    pub ca_crl: String,
}

impl Validate for ClientTLSSettings {
    fn validate(&self, v: &mut Validator) {
        let mode = self.mode;
        if self.insecure_skip_verify == Some(true) {
            if mode == TLSmode::Simple
                && (!self.ca_certificates.is_empty()
                    || !self.credential_name.is_empty()
                    || !self.subject_alt_names.is_empty())
            {
                v.field("insecureSkipVerify", |v| {
                    v.conflict("cannot specify caCertificates or credentialName or subjectAltNames when insecureSkipVerify is set true")
                });
            }
            if mode == TLSmode::Mutual
                && (!self.ca_certificates.is_empty() || !self.subject_alt_names.is_empty())
            {
                v.field("insecureSkipVerify", |v| {
                    v.conflict("cannot specify caCertificates or subjectAltNames when insecureSkipVerify is set true")
                });
            }
        }
        let with_files = matches!(mode, TLSmode::Simple | TLSmode::Mutual);
        if with_files && !self.credential_name.is_empty() {
            // Credentials come from the secret; files would be ignored.
            if !self.client_certificate.is_empty()
                || !self.ca_certificates.is_empty()
                || !self.private_key.is_empty()
                || !self.ca_crl.is_empty()
            {
                v.field("credentialName", |v| {
                    v.conflict("cannot specify client certificates or CA certificate or CA CRL If credentialName is set")
                });
            }
            return;
        }
        if mode == TLSmode::Mutual {
            if self.client_certificate.is_empty() {
                v.field("clientCertificate", |v| {
                    v.missing("client certificate required for mutual tls")
                });
            }
            if self.private_key.is_empty() {
                v.field("privateKey", |v| {
                    v.missing("private key required for mutual tls")
                });
            }
        }
    }
}
