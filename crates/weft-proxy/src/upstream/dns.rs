//! STRICT_DNS and LOGICAL_DNS clusters: names resolved in the background every
//! `dns_refresh_rate`, each answer becoming the cluster's endpoint set. The task holds only
//! a weak reference, so it ends by itself once the cluster is replaced or removed.

use super::cluster::Cluster;
use super::endpoints::Host;
use crate::model::cluster::{Discovery, DnsFamily};
use crate::model::endpoint::{Endpoint, HostPort};
use std::net::SocketAddr;
use std::sync::{Arc, Weak};

/// Starts resolving for a DNS cluster; does nothing for other kinds.
pub fn spawn(cluster: &Arc<Cluster>, warmed: Arc<tokio::sync::Notify>) {
    let targets: Vec<Endpoint<HostPort>> = match &cluster.config.discovery {
        Discovery::StrictDns(eps) => eps.clone(),
        Discovery::LogicalDns(ep) => vec![ep.clone()],
        _ => return,
    };
    let logical = matches!(cluster.config.discovery, Discovery::LogicalDns(_));
    let weak: Weak<Cluster> = Arc::downgrade(cluster);
    let refresh = cluster.config.dns_refresh;
    let family = cluster.config.dns_family;
    tokio::spawn(async move {
        loop {
            let mut hosts = Vec::new();
            for t in &targets {
                let addrs = resolve(&t.address, family).await;
                let take = if logical { 1 } else { addrs.len() };
                for a in addrs.into_iter().take(take) {
                    let hostname = t.hostname.clone().or_else(|| Some(t.address.host.clone()));
                    hosts.push(Host::new(a, hostname, t.healthy, t.weight));
                }
            }
            let Some(c) = weak.upgrade() else { return };
            let first = !c.is_warm();
            c.set_hosts(hosts);
            if first {
                warmed.notify_one();
            }
            drop(c);
            tokio::time::sleep(refresh).await;
            if weak.strong_count() == 0 {
                return;
            }
        }
    });
}

async fn resolve(hp: &HostPort, family: DnsFamily) -> Vec<SocketAddr> {
    if let Some(ip) = hp.ip() {
        return vec![ip];
    }
    let all: Vec<SocketAddr> = match tokio::net::lookup_host((hp.host.as_str(), hp.port)).await {
        Ok(it) => it.collect(),
        Err(e) => {
            tracing::warn!(host = %hp.host, error = %e, "DNS resolution failed");
            return Vec::new();
        }
    };
    let v4: Vec<SocketAddr> = all.iter().copied().filter(SocketAddr::is_ipv4).collect();
    let v6: Vec<SocketAddr> = all.iter().copied().filter(SocketAddr::is_ipv6).collect();
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
