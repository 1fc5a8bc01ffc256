//! Test-only building blocks for Weft (never shipped): echo backends that report what they
//! received, real Envoy and `weft proxy` started from the same bootstrap text, an HTTP client,
//! and the normalised [`Observation`] a conformance test compares between the two proxies.

pub mod admin;
pub mod ads;
pub mod client;
pub mod conformance;
pub mod echo;
pub mod envoy;
pub mod error;
pub mod host;
pub mod netns;
pub mod observation;
pub mod ports;
pub mod proxy;
pub mod stats;
pub mod template;
pub mod tls_hello;
pub mod wire;

pub use client::{HttpRequest, HttpResponse, HttpVersion};
pub use echo::grpc;
pub use echo::{EchoSeen, EchoServer};
pub use error::Error;
pub use observation::{HeaderObs, Observation};
pub use proxy::{ProxyBinary, ProxyKind, ProxyProcess};

/// Runs an async test body on a fresh multi-thread runtime and panics with the error's full
/// text, so test crates need neither tokio nor anyhow of their own and a failure report keeps
/// its line breaks.
pub fn block_on<F>(body: F)
where
    F: Future<Output = Result<(), Error>>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("building a tokio runtime: {e}"));
    if let Err(e) = rt.block_on(body) {
        panic!("{e}");
    }
}
