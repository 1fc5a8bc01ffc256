//! Accepted configuration: the store that takes resources (from a bootstrap or xDS), warms
//! them, and publishes snapshots for the data path.

pub mod secrets;
pub mod snapshot;
pub mod store;
