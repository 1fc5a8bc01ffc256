//! Load balancing: simple algorithms, consistent hashing, slow-start warmup and locality
//! aware balancing, with Istio's `validateLoadBalancer` and `ValidateLocalityLbSetting`.
//! MeshConfig reuses [`LocalityLoadBalancerSetting`].

use crate::types::{Duration, is_default};
use crate::validate::{Validate, Validator, rules};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Envoy's limit on the Maglev table size.
const MAGLEV_TABLE_SIZE_LIMIT: u64 = 5_000_011;

/// Locality labels that conflict with explicit `failover` when used in `failoverPriority`.
const TOPOLOGY_LABELS: &[&str] = &[
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.istio.io/subzone",
];

/// Load balancer settings: a simple algorithm or consistent hashing (not both).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LoadBalancerSettings {
    /// A simple algorithm (oneof with `consistentHash`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub simple: Option<SimpleLB>,
    /// Consistent-hash based affinity (oneof with `simple`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistent_hash: Option<ConsistentHashLB>,
    /// Locality-aware load balancing; overrides the mesh-wide setting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locality_lb_setting: Option<LocalityLoadBalancerSetting>,
    /// Deprecated slow-start window for new endpoints; use `warmup`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warmup_duration_secs: Option<Duration>,
    /// Slow-start configuration for new endpoints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warmup: Option<WarmupConfiguration>,
}

/// Simple load balancing algorithms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SimpleLB {
    /// No algorithm chosen: Istio picks its default (LEAST_REQUEST).
    #[default]
    Unspecified,
    /// Deprecated alias of LEAST_REQUEST.
    LeastConn,
    /// Random host.
    Random,
    /// Forward to the address the caller asked for (no balancing).
    Passthrough,
    /// Round robin.
    RoundRobin,
    /// Fewest outstanding requests among two random hosts.
    LeastRequest,
}

/// Consistent-hash load balancing: soft affinity by header, cookie, source IP or query
/// parameter, with a ring-hash or Maglev table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ConsistentHashLB {
    /// Hash on this request header (oneof hash key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_header_name: Option<String>,
    /// Hash on this cookie, generated if absent (oneof hash key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_cookie: Option<HTTPCookie>,
    /// Hash on the source IP (oneof hash key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_source_ip: Option<bool>,
    /// Hash on this query parameter (oneof hash key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_query_parameter_name: Option<String>,
    /// Ring hash table (oneof hash algorithm).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ring_hash: Option<RingHash>,
    /// Maglev table (oneof hash algorithm).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maglev: Option<MagLev>,
    /// Deprecated ring size; use `ringHash.minimumRingSize`.
    #[serde(skip_serializing_if = "is_default")]
    pub minimum_ring_size: u64,
}

/// Ring/modulo hash table settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RingHash {
    /// Minimum number of virtual nodes on the ring (default 1024).
    #[serde(skip_serializing_if = "is_default")]
    pub minimum_ring_size: u64,
}

/// Maglev table settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MagLev {
    /// Lookup table size; must be prime (default 65537).
    #[serde(skip_serializing_if = "is_default")]
    pub table_size: u64,
}

/// The cookie used as hash key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HTTPCookie {
    /// Cookie name (required).
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Path set on a generated cookie.
    #[serde(skip_serializing_if = "is_default")]
    pub path: String,
    /// Lifetime of a generated cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,
    /// Extra attributes set on a generated cookie (e.g. `SameSite`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Attribute>,
}

/// A cookie attribute: name and optional value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Attribute {
    /// Attribute name.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Attribute value (empty for flag attributes such as `Secure`).
    #[serde(skip_serializing_if = "is_default")]
    pub value: String,
}

/// Slow start: traffic to a new endpoint ramps up over `duration`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WarmupConfiguration {
    /// Length of the warmup window (required).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
    /// Traffic share (0-100) a new endpoint starts with (default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum_percent: Option<f64>,
    /// Speed of the ramp-up; 1 is linear, larger is faster (at least 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggression: Option<f64>,
}

/// Locality-weighted load balancing: explicit distribution, failover, or priority labels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LocalityLoadBalancerSetting {
    /// Traffic distribution per originating locality (excludes `failover`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub distribute: Vec<Distribute>,
    /// Region to fail over to when a region's endpoints are unhealthy.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failover: Vec<Failover>,
    /// Ordered labels by which endpoints are prioritized for failover.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failover_priority: Vec<String>,
    /// Enable locality load balancing; overrides the mesh-wide setting when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Weights of destination localities for traffic from one locality.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Distribute {
    /// Originating locality `region/zone/subzone`; `*` wildcards allowed at the end.
    #[serde(skip_serializing_if = "is_default")]
    pub from: String,
    /// Destination locality to weight (weights sum to 100).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub to: BTreeMap<String, u32>,
}

/// Failover from one region to another.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Failover {
    /// Originating region.
    #[serde(skip_serializing_if = "is_default")]
    pub from: String,
    /// Region traffic fails over to.
    #[serde(skip_serializing_if = "is_default")]
    pub to: String,
}

impl Validate for LoadBalancerSettings {
    /// Without the surrounding traffic policy the outlier detection is unknown; the
    /// failover-needs-outlier-detection warning is left to the traffic policy.
    fn validate(&self, v: &mut Validator) {
        self.validate_with_outlier(v, true);
    }
}

impl LoadBalancerSettings {
    /// `has_outlier`: the enclosing (port) traffic policy sets outlier detection, which
    /// locality failover needs.
    pub fn validate_with_outlier(&self, v: &mut Validator, has_outlier: bool) {
        rules::oneof(
            v,
            &[
                ("simple", self.simple.is_some()),
                ("consistentHash", self.consistent_hash.is_some()),
            ],
        );
        if self.simple == Some(SimpleLB::LeastConn) {
            v.field("simple", |v| {
                v.deprecated("LEAST_CONN is deprecated; use LEAST_REQUEST")
            });
        }
        v.nested("consistentHash", &self.consistent_hash);
        if let Some(l) = &self.locality_lb_setting {
            v.field("localityLbSetting", |v| {
                l.validate_with_outlier(v, has_outlier)
            });
        }
        if let Some(d) = &self.warmup_duration_secs {
            v.field("warmupDurationSecs", |v| {
                rules::duration(v, d);
                v.deprecated("warmupDurationSecs is deprecated; use warmup.duration");
            });
        }
        v.nested("warmup", &self.warmup);
    }
}

impl Validate for ConsistentHashLB {
    fn validate(&self, v: &mut Validator) {
        rules::oneof(
            v,
            &[
                ("httpHeaderName", self.http_header_name.is_some()),
                ("httpCookie", self.http_cookie.is_some()),
                ("useSourceIp", self.use_source_ip.is_some()),
                (
                    "httpQueryParameterName",
                    self.http_query_parameter_name.is_some(),
                ),
            ],
        );
        let algorithms = rules::oneof(
            v,
            &[
                ("ringHash", self.ring_hash.is_some()),
                ("maglev", self.maglev.is_some()),
            ],
        );
        if let Some(c) = &self.http_cookie
            && c.name.is_empty()
        {
            v.field("httpCookie", |v| {
                v.field("name", |v| v.missing("name required for HttpCookie"))
            });
        }
        if self.minimum_ring_size != 0 {
            v.field("minimumRingSize", |v| {
                v.deprecated(
                    "consistent hash minimumRingSize is deprecated; use ringHash.minimumRingSize",
                );
                if algorithms > 0 {
                    v.conflict("only one of minimumRingSize or maglev/ringHash can be specified");
                }
            });
        }
        if let Some(m) = &self.maglev {
            v.field("maglev", |v| {
                v.field("tableSize", |v| {
                    if m.table_size == 0 {
                        v.missing("tableSize must be set for maglev");
                    }
                    if m.table_size >= MAGLEV_TABLE_SIZE_LIMIT {
                        v.error(format!(
                            "tableSize must be less than {MAGLEV_TABLE_SIZE_LIMIT} for maglev"
                        ));
                    }
                    if !is_prime(m.table_size) {
                        v.error(format!(
                            "tableSize must be a prime number for maglev (got {})",
                            m.table_size
                        ));
                    }
                })
            });
        }
    }
}

/// Envoy's primality test, which Istio copies so it agrees with Envoy exactly.
fn is_prime(x: u64) -> bool {
    if x != 0 && x < 4 {
        return true;
    }
    if x & 1 == 0 {
        return false;
    }
    let limit = (x as f64).sqrt() as u64;
    (3..=limit).step_by(2).all(|f| !x.is_multiple_of(f))
}

impl Validate for WarmupConfiguration {
    fn validate(&self, v: &mut Validator) {
        v.field("duration", |v| match &self.duration {
            None => v.missing("warmup duration is required"),
            Some(d) if d.as_std() < std::time::Duration::from_millis(1) => v.error(format!(
                "must be a valid duration greater than 1ms (got {d})"
            )),
            Some(_) => {}
        });
        if let Some(p) = self.minimum_percent
            && (p.is_nan() || !(0.0..=100.0).contains(&p))
        {
            v.field("minimumPercent", |v| {
                v.error(format!("minimumPercent {p} must be between 0 and 100"))
            });
        }
        if let Some(a) = self.aggression
            && (a.is_nan() || a < 1.0)
        {
            v.field("aggression", |v| {
                v.error(format!("aggression {a} must be at least 1"))
            });
        }
    }
}

impl Validate for LocalityLoadBalancerSetting {
    /// The mesh-wide setting, which Istio validates as if outlier detection were set.
    fn validate(&self, v: &mut Validator) {
        self.validate_with_outlier(v, true);
    }
}

impl LocalityLoadBalancerSetting {
    /// Istio's `ValidateLocalityLbSetting`; `has_outlier` says whether the enclosing policy
    /// configures outlier detection (failover only works with it). Like Istio, stops at
    /// the first problem with distribute weights.
    pub fn validate_with_outlier(&self, v: &mut Validator, has_outlier: bool) {
        if !self.distribute.is_empty() && !self.failover.is_empty() {
            v.field("failover", |v| {
                v.conflict("can not simultaneously specify 'distribute' and 'failover'")
            });
            return;
        }
        if !self.failover.is_empty()
            && let Some((i, l)) = self
                .failover_priority
                .iter()
                .enumerate()
                .find(|(_, l)| TOPOLOGY_LABELS.contains(&l.as_str()))
        {
            v.field("failoverPriority", |v| {
                v.index(i, |v| {
                    v.conflict(format!(
                        "can not simultaneously set 'failover' and topology label '{l}' in 'failover_priority'"
                    ))
                })
            });
            return;
        }
        let mut stop = false;
        v.field("distribute", |v| {
            for (i, d) in self.distribute.iter().enumerate() {
                v.index(i, |v| {
                    v.field("to", |v| {
                        if let Some((loc, w)) = d.to.iter().find(|(_, w)| **w == 0 || **w > 100) {
                            v.key(loc, |v| {
                                v.error(format!(
                                    "locality weight must be in range [1, 100] (got {w})"
                                ))
                            });
                            stop = true;
                            return;
                        }
                        let total: u64 = d.to.values().map(|w| u64::from(*w)).sum();
                        if total != 100 {
                            v.error(format!("total locality weight {total} != 100"));
                            stop = true;
                            return;
                        }
                        let dests: Vec<&str> = d.to.keys().map(String::as_str).collect();
                        localities(v, &dests);
                    });
                });
                if stop {
                    return;
                }
            }
            let sources: Vec<&str> = self.distribute.iter().map(|d| d.from.as_str()).collect();
            localities(v, &sources);
        });
        if stop {
            return;
        }
        if (!self.failover.is_empty() || !self.failover_priority.is_empty()) && !has_outlier {
            v.warn("outlier detection policy must be provided for failover");
        }
        v.field("failover", |v| {
            for (i, f) in self.failover.iter().enumerate() {
                v.index(i, |v| {
                    if f.from == f.to {
                        v.error(format!("locality lb failover settings must specify different regions (from and to are both {:?})", f.from));
                    }
                    if f.from.contains('/') || f.to.contains('/') {
                        v.error("locality lb failover only specify region");
                    }
                    if f.from.contains('*') || f.to.contains('*') {
                        v.error("locality lb failover region should not contain '*' wildcard");
                    }
                });
            }
        });
    }
}

/// Istio's `validateLocalities`: `region[/zone[/subzone]]`, a trailing `*` at most, and no
/// locality covered by an earlier one.
fn localities(v: &mut Validator, list: &[&str]) {
    type Zones = HashMap<String, HashMap<String, bool>>;
    let mut regions: HashMap<String, Zones> = HashMap::new();
    let overlap = |loc: &str| format!("locality {loc} overlap with previous specified ones");
    for loc in list {
        let stars = loc.matches('*').count();
        if stars > 1 || (stars == 1 && !loc.ends_with('*')) {
            v.error(format!(
                "locality {loc} wildcard '*' number can not exceed 1 and must be in the end"
            ));
            return;
        }
        if regions.contains_key("*") {
            v.error(overlap(loc));
            return;
        }
        let parts: Vec<&str> = loc.splitn(3, '/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            v.error(format!(
                "locality {loc} must not contain empty region/zone/subzone info"
            ));
            return;
        }
        let (region, zone, sub) = (parts[0], parts.get(1).copied(), parts.get(2).copied());
        let conflict = match (zone, sub) {
            (None, _) => regions
                .insert(
                    region.into(),
                    HashMap::from([("*".into(), HashMap::from([("*".into(), true)]))]),
                )
                .is_some(),
            (Some(zone), None) => {
                let zones = regions.entry(region.into()).or_default();
                let taken = zones.contains_key("*") || zones.contains_key(zone);
                if !taken {
                    zones.insert(zone.into(), HashMap::from([("*".into(), true)]));
                }
                taken
            }
            (Some(zone), Some(sub)) => {
                let zones = regions.entry(region.into()).or_default();
                if zones.contains_key("*") {
                    true
                } else {
                    let subs = zones.entry(zone.into()).or_default();
                    let taken = subs.contains_key("*") || subs.contains_key(sub);
                    subs.insert(sub.into(), true);
                    taken
                }
            }
        };
        if conflict {
            v.error(overlap(loc));
            return;
        }
    }
}
