//! `tcp_proxy`: a connection relayed byte for byte to one cluster (or a weighted choice of
//! clusters), with Envoy's idle timeout, connect attempts and maximum duration, and the
//! client's IP as the hash for RING_HASH and MAGLEV clusters when `hash_policy` says so.

use super::{ConvertError, Result, timeout};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
    TcpProxy, tcp_proxy::ClusterSpecifier,
};
use std::time::Duration;
use weft_yaml::FieldPath;

#[derive(Debug, Clone, PartialEq)]
pub enum TcpTarget {
    Cluster(String),
    Weighted {
        clusters: Vec<(String, u32)>,
        total: u64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct TcpProxyConfig {
    pub stat_prefix: String,
    pub target: TcpTarget,
    pub idle_timeout: Option<Duration>,
    pub max_connect_attempts: u32,
    pub max_downstream_connection_duration: Option<Duration>,
    /// `hash_policy: [{source_ip: {}}]`: hashing balancers pick by the client's IP.
    pub hash_source_ip: bool,
}

/// Envoy's default idle timeout for tcp_proxy.
const DEFAULT_IDLE: Duration = Duration::from_secs(3600);

impl TcpProxyConfig {
    pub fn new(t: &TcpProxy, path: &FieldPath) -> Result<Self> {
        if t.stat_prefix.is_empty() {
            return Err(ConvertError::new(
                &path.field("stat_prefix"),
                "must not be empty",
            ));
        }
        let target = match &t.cluster_specifier {
            Some(ClusterSpecifier::Cluster(c)) if !c.is_empty() => TcpTarget::Cluster(c.clone()),
            Some(ClusterSpecifier::WeightedClusters(w)) => {
                let p = path.field("weighted_clusters").field("clusters");
                if w.clusters.is_empty() {
                    return Err(ConvertError::new(&p, "must not be empty"));
                }
                let mut clusters = Vec::new();
                let mut total = 0u64;
                for (i, c) in w.clusters.iter().enumerate() {
                    if c.metadata_match.is_some() {
                        return Err(ConvertError::new(
                            &p.index(i).field("metadata_match"),
                            "is not supported by weft-proxy",
                        ));
                    }
                    if c.weight == 0 {
                        return Err(ConvertError::new(
                            &p.index(i).field("weight"),
                            "must be at least 1",
                        ));
                    }
                    total += u64::from(c.weight);
                    clusters.push((c.name.clone(), c.weight));
                }
                TcpTarget::Weighted { clusters, total }
            }
            _ => {
                return Err(ConvertError::new(
                    path,
                    "one of cluster or weighted_clusters is required",
                ));
            }
        };
        use envoy_types::pb::envoy::r#type::v3::hash_policy::PolicySpecifier;
        let mut hash_source_ip = false;
        for (i, h) in t.hash_policy.iter().enumerate() {
            match &h.policy_specifier {
                Some(PolicySpecifier::SourceIp(_)) => hash_source_ip = true,
                Some(PolicySpecifier::FilterState(_)) => {
                    return Err(ConvertError::new(
                        &path.field("hash_policy").index(i).field("filter_state"),
                        "filter state hashing is not supported by weft-proxy",
                    ));
                }
                None => {
                    return Err(ConvertError::new(
                        &path.field("hash_policy").index(i),
                        "one of source_ip or filter_state is required",
                    ));
                }
            }
        }
        Ok(TcpProxyConfig {
            hash_source_ip,
            stat_prefix: t.stat_prefix.clone(),
            target,
            idle_timeout: match &t.idle_timeout {
                None => Some(DEFAULT_IDLE),
                Some(d) => timeout(Some(d), &path.field("idle_timeout"))?,
            },
            max_connect_attempts: t.max_connect_attempts.map_or(1, |v| v.value.max(1)),
            max_downstream_connection_duration: timeout(
                t.max_downstream_connection_duration.as_ref(),
                &path.field("max_downstream_connection_duration"),
            )?,
        })
    }

    pub fn clusters(&self) -> Vec<&str> {
        match &self.target {
            TcpTarget::Cluster(c) => vec![c],
            TcpTarget::Weighted { clusters, .. } => {
                clusters.iter().map(|(c, _)| c.as_str()).collect()
            }
        }
    }

    /// The cluster for a new connection.
    pub fn pick(&self) -> &str {
        match &self.target {
            TcpTarget::Cluster(c) => c,
            TcpTarget::Weighted { clusters, total } => {
                let mut r = fastrand::u64(0..*total);
                for (name, w) in clusters {
                    if r < u64::from(*w) {
                        return name;
                    }
                    r -= u64::from(*w);
                }
                &clusters[clusters.len() - 1].0
            }
        }
    }
}
