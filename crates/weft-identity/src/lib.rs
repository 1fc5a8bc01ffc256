//! Workload identity for the mesh: SPIFFE IDs, the certificate authority that issues them,
//! and the rustls configurations that prove and check them. DESIGN makes this the only
//! crate that chooses the crypto provider, so every TLS session Weft makes agrees on it.

pub mod ca;
pub mod ca_api;
pub mod spiffe;
pub mod tls;
pub mod token;
pub mod upstream;

pub use ca::{Ca, CaError, Issued};
pub use spiffe::{IdError, SpiffeId};
pub use tls::{Credentials, Peers, TlsError, TrustBundle};
pub use token::{TokenError, TokenKey};
