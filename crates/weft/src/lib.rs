//! The `weft` command line as a library, so integration tests drive the same entry points
//! as the binary. `main.rs` only parses arguments and calls in here.

pub mod agent;
pub mod cli;
pub mod control;
pub mod describe;
pub mod proxy;
pub mod proxy_config;
pub mod proxy_status;
pub mod token;
pub mod validate;
