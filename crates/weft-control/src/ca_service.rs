//! Istio's CA service on 15012 (`istio.v1.auth.IstioCertificateService/CreateCertificate`):
//! a proxy's agent sends a CSR with a join token (`authorization: Bearer …`, where istiod
//! takes a Kubernetes service account token), and gets back a certificate for the identity
//! the token names — never one the request asks for — with its chain, root last, as
//! istio-agent expects. Served beside ADS, over TLS only.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use prost::Message;
use tonic::Status;
use weft_identity::ca::{Ca, MAX_WORKLOAD_TTL, WORKLOAD_TTL};
use weft_identity::token::TokenKey;
use weft_xds::server::unary::{Reply, Unary};

pub use weft_identity::ca_api::CREATE_CERTIFICATE as PATH;
use weft_identity::ca_api::{IstioCertificateRequest, IstioCertificateResponse};

/// The CA service.
#[derive(Clone, Debug)]
pub struct CaService {
    pub ca: Arc<Ca>,
    pub tokens: Arc<TokenKey>,
    pub trust_domain: String,
}

impl Unary for CaService {
    fn call(&self, request: Bytes, authorization: Option<String>) -> Reply {
        let answer = self.create(request, authorization.as_deref(), SystemTime::now());
        Box::pin(std::future::ready(answer))
    }
}

impl CaService {
    fn create(
        &self,
        request: Bytes,
        authorization: Option<&str>,
        now: SystemTime,
    ) -> Result<Bytes, Status> {
        let token = authorization
            .and_then(|a| a.strip_prefix("Bearer "))
            .ok_or_else(|| {
                Status::unauthenticated(
                    "no `authorization: Bearer TOKEN` header: a join token (`weft token`) \
                     is required",
                )
            })?;
        let id = self
            .tokens
            .verify(token, &self.trust_domain, now)
            .map_err(|e| Status::unauthenticated(e.to_string()))?;
        let request = IstioCertificateRequest::decode(request)
            .map_err(|e| Status::invalid_argument(format!("undecodable request: {e}")))?;
        let ttl = match u64::try_from(request.validity_duration) {
            Ok(0) => WORKLOAD_TTL,
            Ok(s) => Duration::from_secs(s),
            Err(_) => {
                return Err(Status::invalid_argument(
                    "validity_duration must not be negative",
                ));
            }
        };
        if ttl > MAX_WORKLOAD_TTL {
            return Err(Status::invalid_argument(format!(
                "requested TTL {}s is greater than the max allowed TTL {}s",
                ttl.as_secs(),
                MAX_WORKLOAD_TTL.as_secs()
            )));
        }
        let issued = self
            .ca
            .sign(&request.csr, &id, ttl, now)
            .map_err(|e| Status::invalid_argument(format!("cannot sign the CSR: {e}")))?;
        tracing::info!(identity = %id, ttl = ?ttl, "issued a workload certificate");
        let mut cert_chain = pem_blocks(&issued.chain_pem);
        let root = self.ca.root_pem().trim_end().to_string() + "\n";
        if cert_chain.last() != Some(&root) {
            cert_chain.push(root);
        }
        Ok(IstioCertificateResponse { cert_chain }
            .encode_to_vec()
            .into())
    }
}

/// Each PEM block of `text`, newline-terminated.
fn pem_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.starts_with("-----BEGIN ") {
            current.clear();
        }
        current.push_str(line);
        current.push('\n');
        if line.starts_with("-----END ") {
            out.push(std::mem::take(&mut current));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_identity::tls::spiffe_ids;

    fn service() -> CaService {
        CaService {
            ca: Arc::new(Ca::generate("cluster.local").unwrap()),
            tokens: Arc::new(TokenKey::generate().unwrap()),
            trust_domain: "cluster.local".into(),
        }
    }

    fn request(csr: &str, seconds: i64) -> Bytes {
        IstioCertificateRequest {
            csr: csr.into(),
            validity_duration: seconds,
            metadata: None,
        }
        .encode_to_vec()
        .into()
    }

    #[test]
    fn a_token_gets_a_certificate_for_its_identity_with_the_root_last() {
        let s = service();
        let now = SystemTime::now();
        let token = s.tokens.mint("shop", "cart", WORKLOAD_TTL, now).unwrap();
        let (_, csr) = weft_identity::ca::key_and_request().unwrap();
        let answer = s
            .create(request(&csr, 3600), Some(&format!("Bearer {token}")), now)
            .unwrap();
        let chain = IstioCertificateResponse::decode(answer).unwrap().cert_chain;
        assert_eq!(chain.len(), 2, "leaf, then the root");
        assert_eq!(chain[1].trim(), s.ca.root_pem().trim());
        let der = pem::parse(&chain[0]).unwrap();
        let ids = spiffe_ids(&der.contents().to_vec().into());
        assert_eq!(ids[0].to_string(), "spiffe://cluster.local/ns/shop/sa/cart");
    }

    #[test]
    fn callers_without_a_good_token_and_bad_requests_are_refused() {
        let s = service();
        let now = SystemTime::now();
        let (_, csr) = weft_identity::ca::key_and_request().unwrap();
        let none = s.create(request(&csr, 0), None, now).unwrap_err();
        assert_eq!(none.code(), tonic::Code::Unauthenticated);
        let foreign = TokenKey::generate()
            .unwrap()
            .mint("shop", "cart", WORKLOAD_TTL, now)
            .unwrap();
        let err = s
            .create(request(&csr, 0), Some(&format!("Bearer {foreign}")), now)
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        assert!(err.message().contains("signature"), "{err:?}");
        let token = s.tokens.mint("shop", "cart", WORKLOAD_TTL, now).unwrap();
        let bearer = format!("Bearer {token}");
        let long = s
            .create(request(&csr, 365 * 86_400), Some(&bearer), now)
            .unwrap_err();
        assert!(long.message().contains("max allowed TTL"), "{long:?}");
        let garbage = s
            .create(request("not a csr", 0), Some(&bearer), now)
            .unwrap_err();
        assert_eq!(garbage.code(), tonic::Code::InvalidArgument);
    }
}
