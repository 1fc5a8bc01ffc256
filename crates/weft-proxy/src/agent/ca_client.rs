//! How an agent gets its workload's certificate, as istio-agent does: a new key, a CSR
//! for it, and `IstioCertificateService/CreateCertificate` on the control plane's 15012
//! (TLS, the server checked by DNS name against the mesh's root), with a join token as
//! the bearer credential. The key never leaves the agent.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use prost::Message;
use weft_identity::TrustBundle;
use weft_identity::ca_api::{
    CREATE_CERTIFICATE, IstioCertificateRequest, IstioCertificateResponse,
};
use weft_identity::tls::dns_client_config;

/// Longest one certificate request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how to ask for the workload's certificate.
#[derive(Clone, Debug)]
pub struct CaSource {
    /// The control plane's TLS address (Istio's 15012), `HOST:PORT`.
    pub address: String,
    /// The name its certificate must carry (`istiod.istio-system.svc`).
    pub server_name: String,
    /// The mesh's root certificate (Istio's `root-cert.pem`), trusted for the connection.
    pub root_cert: PathBuf,
    /// The join token (`weft token`), read again for every request.
    pub token_file: PathBuf,
    /// The lifetime asked for (0: the CA's default, 24 h).
    pub ttl: Duration,
}

/// A certificate the CA issued, with the key it was issued for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    /// The certificate and its intermediates (PEM), as `default` serves them.
    pub chain_pem: String,
    pub key_pem: String,
    /// The root the chain ends at, as `ROOTCA` serves it.
    pub root_pem: String,
    /// When it stops being valid.
    pub not_after: SystemTime,
}

#[derive(Debug, thiserror::Error)]
pub enum CaClientError {
    #[error("reading {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("the CA at {address}: {reason}")]
    Call { address: String, reason: String },
    #[error("the CA refused the request: {code}: {message}")]
    Refused { code: String, message: String },
    #[error("the CA's answer: {0}")]
    Answer(String),
}

impl CaSource {
    fn read(path: &PathBuf) -> Result<String, CaClientError> {
        std::fs::read_to_string(path).map_err(|e| CaClientError::File {
            path: path.clone(),
            reason: e.to_string(),
        })
    }

    /// Asks for a certificate for a new key.
    pub async fn issue(&self) -> Result<Issued, CaClientError> {
        let (key_pem, csr) = weft_identity::ca::key_and_request()
            .map_err(|e| CaClientError::Answer(format!("making a key: {e}")))?;
        let token = Self::read(&self.token_file)?;
        let request = IstioCertificateRequest {
            csr,
            validity_duration: i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX),
            metadata: None,
        };
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, self.call(request, token.trim()))
            .await
            .map_err(|_| self.failed(format!("no answer within {REQUEST_TIMEOUT:?}")))??;
        let mut chain = answer.cert_chain;
        if chain.len() < 2 {
            return Err(CaClientError::Answer(format!(
                "{} certificate(s) where a certificate and its root were expected",
                chain.len()
            )));
        }
        let root_pem = chain.pop().unwrap_or_default();
        let chain_pem = chain.concat();
        let not_after = weft_identity::ca::not_after(&chain[0])
            .map_err(|e| CaClientError::Answer(e.to_string()))?;
        Ok(Issued {
            chain_pem,
            key_pem,
            root_pem,
            not_after,
        })
    }

    fn failed(&self, reason: impl std::fmt::Display) -> CaClientError {
        CaClientError::Call {
            address: self.address.clone(),
            reason: reason.to_string(),
        }
    }

    async fn call(
        &self,
        request: IstioCertificateRequest,
        token: &str,
    ) -> Result<IstioCertificateResponse, CaClientError> {
        let roots = TrustBundle::from_pem(&Self::read(&self.root_cert)?)
            .map_err(|e| self.failed(format!("the root certificate: {e}")))?;
        let config = dns_client_config(&roots, &[b"h2"]).map_err(|e| self.failed(e))?;
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(self.server_name.clone())
            .map_err(|e| self.failed(format!("server name {:?}: {e}", self.server_name)))?;
        let tcp = tokio::net::TcpStream::connect(&self.address)
            .await
            .map_err(|e| self.failed(e))?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| self.failed(format!("TLS: {e}")))?;
        let (mut sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tls),
        )
        .await
        .map_err(|e| self.failed(format!("HTTP/2: {e}")))?;
        let driving = tokio::spawn(connection);
        let mut body = BytesMut::with_capacity(5 + request.encoded_len());
        body.put_u8(0);
        body.put_u32(u32::try_from(request.encoded_len()).unwrap_or(u32::MAX));
        request
            .encode(&mut body)
            .map_err(|e| self.failed(format!("encoding: {e}")))?;
        let http = http::Request::post(format!("https://{}{CREATE_CERTIFICATE}", self.server_name))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(body.freeze()))
            .map_err(|e| self.failed(e))?;
        let response = sender
            .send_request(http)
            .await
            .map_err(|e| self.failed(format!("HTTP/2: {e}")))?;
        let (head, body) = response.into_parts();
        let collected = body
            .collect()
            .await
            .map_err(|e| self.failed(format!("reading the answer: {e}")))?;
        driving.abort();
        // Trailers-only answers carry the status in the headers.
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let status = |name: &str| {
            trailers
                .get(name)
                .or_else(|| head.headers.get(name))
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let code = status("grpc-status").unwrap_or_else(|| "missing".into());
        if head.status != http::StatusCode::OK || code != "0" {
            return Err(CaClientError::Refused {
                code: if head.status == http::StatusCode::OK {
                    code
                } else {
                    format!("HTTP {}", head.status)
                },
                message: status("grpc-message").unwrap_or_default(),
            });
        }
        let mut data: Bytes = collected.to_bytes();
        if data.len() < 5 || data[0] != 0 {
            return Err(CaClientError::Answer(
                "not one uncompressed gRPC message".into(),
            ));
        }
        data.advance(1);
        let len = data.get_u32() as usize;
        if data.len() != len {
            return Err(CaClientError::Answer(format!(
                "a message of {} bytes where {len} were announced",
                data.len()
            )));
        }
        IstioCertificateResponse::decode(data).map_err(|e| CaClientError::Answer(e.to_string()))
    }
}
