//! The wire of Istio's CA service (istio/api `security/v1alpha1/ca.proto`), shared by the
//! control plane that answers it and the agents that call it: a CSR in, the certificate
//! and its chain (root last) out.

/// The gRPC method's path.
pub const CREATE_CERTIFICATE: &str = "/istio.v1.auth.IstioCertificateService/CreateCertificate";

#[derive(Clone, PartialEq, prost::Message)]
pub struct IstioCertificateRequest {
    /// PEM-encoded certificate signing request.
    #[prost(string, tag = "1")]
    pub csr: String,
    /// Requested lifetime in seconds (0: the CA's default).
    #[prost(int64, tag = "3")]
    pub validity_duration: i64,
    #[prost(message, optional, tag = "4")]
    pub metadata: Option<prost_types::Struct>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct IstioCertificateResponse {
    /// The certificate, then its chain up to and including the root (PEM each).
    #[prost(string, repeated, tag = "1")]
    pub cert_chain: Vec<String>,
}
