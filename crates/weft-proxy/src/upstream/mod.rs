//! Upstream side: live clusters, their endpoints and load balancing, circuit breakers,
//! connection pools and DNS resolution.

pub mod cluster;
pub mod connector;
pub mod dns;
pub mod endpoints;
pub mod hashing;
pub mod outlier;
pub mod pool;
pub mod priority;
pub mod resources;
pub mod tls;
pub mod xxhash;
