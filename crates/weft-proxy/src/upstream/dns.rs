//! STRICT_DNS and LOGICAL_DNS clusters: each name is resolved in the background and its answer
//! becomes its share of the cluster's endpoint set. Each name is refreshed on its own schedule,
//! as Envoy's `DnsClusterImpl` does: every `dns_refresh_rate`, or, with `respect_dns_ttl`,
//! when the answer's shortest TTL runs out. The task holds only a weak reference, so it ends
//! by itself once the cluster is replaced or removed.

mod resolver;
#[cfg(test)]
mod tests;

pub use resolver::TtlResolver;

use super::cluster::Cluster;
use super::endpoints::Host;
use crate::model::cluster::{Discovery, DnsFamily};
use crate::model::endpoint::{Endpoint, HostPort};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::time::Instant;

/// How often a task whose names are not due checks that its cluster still exists, so that a
/// long TTL does not keep a removed cluster's task (and resolver) around.
const LIVENESS_CHECK: Duration = Duration::from_secs(5);

/// What one resolution of one name gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// The name resolved, possibly to no address (NXDOMAIN, NODATA). `ttl` is the shortest
    /// TTL among the answer's records, CNAMEs included; zero when the resolver reports none.
    Answer { addrs: Vec<IpAddr>, ttl: Duration },
    /// The lookup failed (timeout, SERVFAIL, refused...): the name keeps its last endpoints.
    Failed(String),
}

/// The resolver a DNS cluster uses.
pub enum Resolver {
    /// getaddrinfo, through tokio: no TTLs, and a failed lookup looks like a name with no
    /// address.
    System,
    /// Name servers asked directly, for clusters that set `respect_dns_ttl`.
    Ttl(Box<TtlResolver>),
}

impl Resolver {
    async fn resolve(&mut self, hp: &HostPort, family: DnsFamily) -> Resolution {
        if let Some(ip) = hp.ip() {
            return Resolution::Answer {
                addrs: vec![ip.ip()],
                ttl: Duration::ZERO,
            };
        }
        match self {
            Resolver::System => Resolution::Answer {
                addrs: system_resolve(hp, family).await,
                ttl: Duration::ZERO,
            },
            Resolver::Ttl(r) => r.resolve(&hp.host, family).await,
        }
    }
}

/// Starts resolving for a DNS cluster; does nothing for other kinds.
pub fn spawn(cluster: &Arc<Cluster>, warmed: Arc<tokio::sync::Notify>) {
    let resolver = if cluster.config.respect_dns_ttl {
        Resolver::Ttl(Box::new(TtlResolver::system()))
    } else {
        Resolver::System
    };
    spawn_with(cluster, warmed, resolver);
}

/// One name of the cluster: what it last resolved to, and when to ask again.
struct Target {
    endpoint: Endpoint<HostPort>,
    addrs: Vec<SocketAddr>,
    due: Instant,
}

/// [`spawn`] with a given resolver.
pub fn spawn_with(
    cluster: &Arc<Cluster>,
    warmed: Arc<tokio::sync::Notify>,
    mut resolver: Resolver,
) {
    let endpoints: Vec<Endpoint<HostPort>> = match &cluster.config.discovery {
        Discovery::StrictDns(eps) => eps.clone(),
        Discovery::LogicalDns(ep) => vec![ep.clone()],
        _ => return,
    };
    let logical = matches!(cluster.config.discovery, Discovery::LogicalDns(_));
    let weak: Weak<Cluster> = Arc::downgrade(cluster);
    let schedule = Schedule {
        refresh: cluster.config.dns_refresh,
        respect_ttl: cluster.config.respect_dns_ttl,
        logical,
    };
    let family = cluster.config.dns_family;
    let start = Instant::now();
    let mut targets: Vec<Target> = endpoints
        .into_iter()
        .map(|endpoint| Target {
            endpoint,
            addrs: Vec::new(),
            due: start,
        })
        .collect();
    tokio::spawn(async move {
        loop {
            let now = Instant::now();
            let mut changed = false;
            for t in targets.iter_mut().filter(|t| t.due <= now) {
                let resolution = resolver.resolve(&t.endpoint.address, family).await;
                if let Resolution::Failed(e) = &resolution {
                    tracing::warn!(host = %t.endpoint.address.host, error = %e, "DNS resolution failed");
                }
                let (addrs, next) = schedule.settle(resolution);
                if let Some(addrs) = addrs {
                    let port = t.endpoint.address.port;
                    t.addrs = addrs
                        .into_iter()
                        .map(|ip| SocketAddr::new(ip, port))
                        .collect();
                    changed = true;
                }
                t.due = Instant::now() + next;
            }
            let Some(c) = weak.upgrade() else { return };
            // The first round warms the cluster even if every lookup failed, as in Envoy,
            // where a cluster whose names do not resolve initializes with no endpoints.
            let first = !c.is_warm();
            if changed || first {
                c.set_hosts(targets.iter().flat_map(hosts_of).collect());
            }
            if first {
                warmed.notify_one();
            }
            drop(c);
            let Some(due) = targets.iter().map(|t| t.due).min() else {
                return;
            };
            tokio::time::sleep_until(due.min(Instant::now() + LIVENESS_CHECK)).await;
            if weak.strong_count() == 0 {
                return;
            }
        }
    });
}

fn hosts_of(t: &Target) -> impl Iterator<Item = Host> + '_ {
    let e = &t.endpoint;
    t.addrs.iter().map(move |a| {
        let hostname = e.hostname.clone().or_else(|| Some(e.address.host.clone()));
        Host::new(*a, hostname, e.healthy, e.weight).with_placement(e.placement)
    })
}

/// Envoy's rules for what an answer does to a name's endpoints and when it is asked again
/// (`DnsClusterImpl::ResolveTarget::onResolutionComplete`).
#[derive(Debug, Clone, Copy)]
struct Schedule {
    refresh: Duration,
    respect_ttl: bool,
    logical: bool,
}

impl Schedule {
    /// The name's new addresses (`None`: keep the last ones) and the wait before the next
    /// lookup.
    ///
    /// A STRICT_DNS name takes every distinct address, and an empty answer empties it; a
    /// LOGICAL_DNS name takes the first address, and treats an empty answer as a failure.
    /// After an answer with addresses, `respect_dns_ttl` makes the wait the shortest record
    /// TTL, unless that is zero; otherwise it is `dns_refresh_rate`. After a failure it is
    /// also `dns_refresh_rate` (Envoy's fixed backoff when `dns_failure_refresh_rate` is
    /// unset, which it must be here).
    fn settle(&self, resolution: Resolution) -> (Option<Vec<IpAddr>>, Duration) {
        match resolution {
            Resolution::Answer { addrs, ttl } if !(self.logical && addrs.is_empty()) => {
                let wait = if self.respect_ttl && !addrs.is_empty() && !ttl.is_zero() {
                    ttl
                } else {
                    self.refresh
                };
                let mut kept: Vec<IpAddr> = Vec::with_capacity(addrs.len());
                for a in addrs {
                    if !kept.contains(&a) {
                        kept.push(a);
                    }
                }
                if self.logical {
                    kept.truncate(1);
                }
                (Some(kept), wait)
            }
            _ => (None, self.refresh),
        }
    }
}

async fn system_resolve(hp: &HostPort, family: DnsFamily) -> Vec<IpAddr> {
    let all: Vec<IpAddr> = match tokio::net::lookup_host((hp.host.as_str(), hp.port)).await {
        Ok(it) => it.map(|a| a.ip()).collect(),
        Err(e) => {
            tracing::warn!(host = %hp.host, error = %e, "DNS resolution failed");
            return Vec::new();
        }
    };
    let v4: Vec<IpAddr> = all.iter().copied().filter(IpAddr::is_ipv4).collect();
    let v6: Vec<IpAddr> = all.iter().copied().filter(IpAddr::is_ipv6).collect();
    match family {
        DnsFamily::V4Only => v4,
        DnsFamily::V6Only => v6,
        DnsFamily::All => all,
        DnsFamily::V4Preferred => {
            if v4.is_empty() {
                v6
            } else {
                v4
            }
        }
        DnsFamily::Auto => {
            if v6.is_empty() {
                v4
            } else {
                v6
            }
        }
    }
}
