//! `Gateway` (networking.istio.io): the listeners an edge proxy opens — ports, protocols,
//! the hosts it admits and how it terminates TLS. The TLS settings message is shared with
//! the Sidecar's ingress listeners, and the protocol names and address helpers here are
//! shared by every listener-like kind of this crate.
#![allow(clippy::upper_case_acronyms)]

pub(crate) mod protocol;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_istio;
mod validate;

pub use protocol::Protocol;
pub(crate) use validate::namespace_slash_host;

use crate::types::is_default;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A load balancer at the edge of the mesh: which workloads run it (`selector`) and the
/// servers (port + hosts + TLS) it exposes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Gateway {
    /// The servers (listeners) this gateway exposes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<Server>,
    /// Labels of the gateway workloads (pods/VMs) this configuration applies to.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
}

/// One listener of a gateway: the port it binds, the hosts it admits and its TLS mode.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Server {
    /// The port the proxy listens on for incoming connections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<Port>,
    /// IP address or `unix://` socket the listener binds to (port must then be 0).
    #[serde(skip_serializing_if = "is_default")]
    pub bind: String,
    /// Hosts exposed by this server, as `[namespace/]dnsName` (`*`, `prod/*.example.com`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// TLS termination, pass-through and HTTP-to-HTTPS redirect settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTLSSettings>,
    /// Loopback endpoint or unix socket traffic is forwarded to by default (not implemented by Istio).
    #[serde(skip_serializing_if = "is_default")]
    pub default_endpoint: String,
    /// Optional server name, unique across servers; used e.g. to prefix statistics.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
}

/// A port a gateway server listens on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Port {
    /// Port number (1..65535; 0 only for unix socket binds).
    #[serde(skip_serializing_if = "is_default")]
    pub number: u32,
    /// Protocol on the port: HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, MONGO, REDIS, MYSQL, TCP, TLS, UDP.
    #[serde(skip_serializing_if = "is_default")]
    pub protocol: String,
    /// Name of the port; must be unique across the gateway's servers.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Deprecated and without effect on gateways; Istio rejects it when set.
    #[serde(skip_serializing_if = "is_default")]
    pub target_port: u32,
}

/// How a server (or Sidecar ingress listener) handles TLS from downstream clients.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServerTLSSettings {
    /// Answer plain HTTP requests with a 301 redirect to HTTPS.
    #[serde(skip_serializing_if = "is_default")]
    pub https_redirect: bool,
    /// Whether and how TLS is terminated on this port.
    #[serde(skip_serializing_if = "is_default")]
    pub mode: ServerTLSSettingsTLSmode,
    /// Path to the server certificate file (SIMPLE/MUTUAL without credentialName).
    #[serde(skip_serializing_if = "is_default")]
    pub server_certificate: String,
    /// Path to the server private key file (SIMPLE/MUTUAL without credentialName).
    #[serde(skip_serializing_if = "is_default")]
    pub private_key: String,
    /// Path to the CA bundle used to verify client certificates (MUTUAL/OPTIONAL_MUTUAL).
    #[serde(skip_serializing_if = "is_default")]
    pub ca_certificates: String,
    /// Path to a certificate revocation list checked against client certificates.
    #[serde(skip_serializing_if = "is_default")]
    pub ca_crl: String,
    /// Name of the Kubernetes secret holding the key, certificate and optional CA.
    #[serde(skip_serializing_if = "is_default")]
    pub credential_name: String,
    /// For MUTUAL / OPTIONAL_MUTUAL: a Secret or ConfigMap holding the client CA bundle,
    /// taking precedence over a CA inside `credentialName` (Istio 1.28+).
    #[serde(skip_serializing_if = "is_default")]
    pub ca_cert_credential_name: String,
    /// Like `credentialName`, for up to two certificates (e.g. RSA and ECDSA).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub credential_names: Vec<String>,
    /// Up to two certificate/key file pairs served by this listener.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tls_certificates: Vec<TLSCertificate>,
    /// Subject alternative names accepted in client certificates.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<String>,
    /// Base64 SHA-256 hashes of the SPKIs of authorized client certificates.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub verify_certificate_spki: Vec<String>,
    /// Hex SHA-256 hashes of authorized client certificates.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub verify_certificate_hash: Vec<String>,
    /// Minimum TLS version accepted.
    #[serde(skip_serializing_if = "is_default")]
    pub min_protocol_version: TLSProtocol,
    /// Maximum TLS version accepted.
    #[serde(skip_serializing_if = "is_default")]
    pub max_protocol_version: TLSProtocol,
    /// Cipher suites to offer, instead of Envoy's defaults.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cipher_suites: Vec<String>,
}

/// One certificate/key pair (with optional CA) of `tlsCertificates`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TLSCertificate {
    /// Path to the server certificate file.
    #[serde(skip_serializing_if = "is_default")]
    pub server_certificate: String,
    /// Path to the server private key file.
    #[serde(skip_serializing_if = "is_default")]
    pub private_key: String,
    /// Path to the CA bundle used to verify client certificates.
    #[serde(skip_serializing_if = "is_default")]
    pub ca_certificates: String,
}

/// `ServerTLSSettings.TLSmode`: how the listener treats TLS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServerTLSSettingsTLSmode {
    /// Forward the TLS stream untouched, routing on the client's SNI.
    #[default]
    Passthrough,
    /// Terminate TLS with a server certificate.
    Simple,
    /// Terminate TLS and require a client certificate signed by the configured CA.
    Mutual,
    /// Pass-through where the SNI itself encodes the destination (east-west gateways).
    AutoPassthrough,
    /// Terminate Istio mTLS with the workload's own Istio-issued certificate.
    IstioMutual,
    /// Like MUTUAL, but a client certificate is only verified if one is presented.
    OptionalMutual,
}

/// `ServerTLSSettings.TLSProtocol`: TLS protocol versions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TLSProtocol {
    /// Let Envoy choose.
    #[default]
    #[serde(rename = "TLS_AUTO")]
    TlsAuto,
    /// TLS 1.0.
    #[serde(rename = "TLSV1_0")]
    Tlsv10,
    /// TLS 1.1.
    #[serde(rename = "TLSV1_1")]
    Tlsv11,
    /// TLS 1.2.
    #[serde(rename = "TLSV1_2")]
    Tlsv12,
    /// TLS 1.3.
    #[serde(rename = "TLSV1_3")]
    Tlsv13,
}

impl ServerTLSSettingsTLSmode {
    /// The proto name, as users write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passthrough => "PASSTHROUGH",
            Self::Simple => "SIMPLE",
            Self::Mutual => "MUTUAL",
            Self::AutoPassthrough => "AUTO_PASSTHROUGH",
            Self::IstioMutual => "ISTIO_MUTUAL",
            Self::OptionalMutual => "OPTIONAL_MUTUAL",
        }
    }
}
