//! Envoy-vs-Weft conformance over ADS: one in-test `weft_xds` ADS server feeds a proxy that
//! boots from a bootstrap holding nothing but the `xds` cluster, so what the proxy serves
//! comes only from pushed snapshots. The pieces here start that server (and restart it on the
//! same port), start either proxy without waiting for readiness (readiness is under test),
//! build the Envoy resources, probe listeners, drive keep-alive load across a push, and keep
//! the ordered transcript that is compared between the two proxies.

mod bootstrap;
mod control;
mod load;
mod probe;
mod process;
pub mod resources;
mod rig;
mod transcript;

use std::fmt;
use std::time::Duration;

pub use bootstrap::{IstioNode, bootstrap, istio_bootstrap, with_sds, with_xds_pipe, with_xds_tls};
pub use control::{ControlPlane, acked_all};
pub use load::{Load, LoadPlan, Sample};
pub use probe::{Reach, probe, wait_reach};
pub use process::AdsProxy;
pub use rig::{AdsRig, BACKENDS, run_peers};
pub use transcript::{Run, Transcript, compare};
/// weft-xds itself, so test crates build snapshots and read server status with the very
/// types the kit uses, without a dependency of their own.
pub use weft_xds as xds;

/// Upper bound of every wait on the control plane or a proxy: far above what either proxy
/// needs, so reaching it means the awaited thing is not going to happen.
pub const WAIT: Duration = Duration::from_secs(20);
/// Pause between two polls of a bounded wait.
pub const POLL: Duration = Duration::from_millis(50);
/// Polls per bounded wait: with [`POLL`] this matches [`WAIT`].
pub const POLLS: u32 = 400;

/// The two ADS variants, as the bootstrap's `ads_config.api_type` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdsMode {
    Sotw,
    Delta,
}

impl AdsMode {
    pub fn api_type(self) -> &'static str {
        match self {
            AdsMode::Sotw => "GRPC",
            AdsMode::Delta => "DELTA_GRPC",
        }
    }

    /// The weft-xds name of the variant, as the server records it per node.
    pub fn wire(self) -> xds::Mode {
        match self {
            AdsMode::Sotw => xds::Mode::StateOfTheWorld,
            AdsMode::Delta => xds::Mode::Delta,
        }
    }
}

impl fmt::Display for AdsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AdsMode::Sotw => "sotw",
            AdsMode::Delta => "delta",
        })
    }
}

/// Sleeps `d`: for tests that pace requests and have no tokio of their own.
pub async fn pause(d: Duration) {
    tokio::time::sleep(d).await;
}
