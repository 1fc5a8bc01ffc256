//! Unary gRPC methods served beside ADS on the same connections, as istiod serves its CA
//! (`IstioCertificateService`) on the port it serves xDS over TLS. weft-xds only carries
//! them: a method gets its request message's bytes and the caller's `authorization`
//! header, and answers with a message's bytes or a status. Such methods are served only on
//! connections the server was told are confidential (TLS), since their requests carry
//! credentials.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use tonic::Status;

/// What a unary method answers: the response message, encoded, or the status to end with.
pub type Reply = Pin<Box<dyn Future<Output = Result<Bytes, Status>> + Send>>;

/// One unary method.
pub trait Unary: Send + Sync + Debug + 'static {
    /// Answers `request` (one message's bytes) from a caller who sent `authorization`.
    fn call(&self, request: Bytes, authorization: Option<String>) -> Reply;
}
