//! Running the fault injection filter on a request: pick the most specific configuration
//! (route, then virtual host, then route table, then the filter's own), check that the
//! request is one it applies to, then delay it and/or answer it with an abort — counting
//! active faults against `max_active_faults` the way Envoy does.

use super::local_reply::reply_with_grpc_status;
use crate::model::fault::{AbortStatus, FaultConfig};
use crate::model::hcm::FaultFilter;
use crate::model::matcher::Pseudo;
use crate::model::route::{Route, RouteConfig, VirtualHost};
use crate::stats_struct;
use bytes::Bytes;
use http::HeaderMap;

stats_struct!(
    /// `http.<stat_prefix>.fault.*`, named as Envoy names them.
    FaultStats {
        counters: [aborts_injected, delays_injected, faults_overflow, response_rl_injected],
        gauges: [active_faults],
    }
);

/// What the fault filter decided for one request.
pub enum Outcome {
    /// Go on to the next filter (after any injected delay).
    Continue { delayed: bool },
    /// Answer with this abort (after any injected delay).
    Abort { status: AbortStatus, body: Bytes },
}

/// The request's place in the route table, for per-route overrides.
pub struct Place<'a> {
    pub table: Option<&'a RouteConfig>,
    pub vhost: Option<&'a VirtualHost>,
    pub route: Option<&'a Route>,
    /// The cluster the route sends to (`upstream_cluster` is compared with it).
    pub cluster: Option<&'a str>,
}

/// The configuration that applies: Envoy's "most specific per-filter config".
fn effective<'a>(f: &'a FaultFilter, place: &Place<'a>) -> &'a FaultConfig {
    place
        .route
        .and_then(|r| r.per_filter.fault(&f.name))
        .or_else(|| place.vhost.and_then(|v| v.per_filter.fault(&f.name)))
        .or_else(|| place.table.and_then(|t| t.per_filter.fault(&f.name)))
        .unwrap_or(&f.config)
}

/// One request's claim on `active_faults`, released when dropped.
struct Active<'a> {
    stats: &'a FaultStats,
    held: bool,
}

impl Active<'_> {
    /// Takes a slot unless `max_active_faults` are already active (a fuzzy limit, as in
    /// Envoy: the check and the increment are not one atomic step).
    fn try_take(&mut self, max: Option<u64>) -> bool {
        if self.held {
            return true;
        }
        if max.is_some_and(|m| self.stats.active_faults.get() >= m as i64) {
            self.stats.faults_overflow.inc();
            return false;
        }
        self.stats.active_faults.inc();
        self.held = true;
        true
    }

    fn release(&mut self) {
        if std::mem::take(&mut self.held) {
            self.stats.active_faults.dec();
        }
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

/// Whether the filter could inject anything into this request (a synchronous check, so
/// requests the faults do not concern — most, with Istio's empty filter — cost nothing more).
pub fn concerns(
    f: &FaultFilter,
    place: &Place<'_>,
    headers: &HeaderMap,
    pseudo: &Pseudo<'_>,
) -> bool {
    let cfg = effective(f, place);
    !cfg.is_inert() && cfg.applies(place.cluster, headers, pseudo)
}

pub async fn run(
    f: &FaultFilter,
    stats: &FaultStats,
    place: &Place<'_>,
    headers: &HeaderMap,
    pseudo: &Pseudo<'_>,
) -> Outcome {
    let cfg = effective(f, place);
    if cfg.is_inert() || !cfg.applies(place.cluster, headers, pseudo) {
        return Outcome::Continue { delayed: false };
    }
    let mut active = Active { stats, held: false };
    if let Some(delay) = cfg.delay_for(headers)
        && active.try_take(cfg.max_active_faults)
    {
        stats.delays_injected.inc();
        tokio::time::sleep(delay).await;
        // Delays can be followed by aborts (decided afresh once the delay is over).
        if let Some(status) = cfg.abort_for(headers) {
            stats.aborts_injected.inc();
            return abort_outcome(cfg, status);
        }
        active.release();
        return Outcome::Continue { delayed: true };
    }
    if let Some(status) = cfg.abort_for(headers)
        && active.try_take(cfg.max_active_faults)
    {
        stats.aborts_injected.inc();
        return abort_outcome(cfg, status);
    }
    Outcome::Continue { delayed: false }
}

fn abort_outcome(cfg: &FaultConfig, status: AbortStatus) -> Outcome {
    Outcome::Abort {
        status,
        body: Bytes::copy_from_slice(cfg.abort_body().as_bytes()),
    }
}

/// The local reply for an abort (trailers-only for gRPC requests).
pub fn abort_reply(
    status: AbortStatus,
    body: Bytes,
    grpc: bool,
    head: bool,
) -> http::Response<super::body::ResponseBody> {
    reply_with_grpc_status(status.http, Some(body), grpc, head, status.grpc)
}
