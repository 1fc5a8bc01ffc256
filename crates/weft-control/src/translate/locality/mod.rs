//! Locality load balancing as istiod applies it to a proxy's endpoints
//! (loadbalancer.ApplyLocalityLoadBalancer): with `distribute`, the localities the proxy's
//! own locality sends to get the rule's weights and the others none; otherwise, for a
//! cluster with outlier detection (without it nothing would ever fail over), endpoints are
//! put in priorities by how close their locality is to the proxy's — same subzone first,
//! then zone, region, the rest (after the regions `failover` names) — or by the
//! `failoverPriority` labels they share with the proxy. The setting is the
//! DestinationRule's, else the MeshConfig's (on by default); `enabled: false` turns it off.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::endpoint::v3::LbEndpoint;
use weft_config::networking::destination_rule::{
    LoadBalancerSettings, LocalityLoadBalancerSetting,
};

use super::view::MeshSettings;

/// How one EDS cluster's endpoints are arranged for one proxy.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalityRule {
    pub setting: LocalityLoadBalancerSetting,
    /// The cluster has outlier detection, so failover can happen.
    pub failover: bool,
    /// The proxy's `region/zone/subzone`.
    pub proxy_locality: String,
    /// The proxy's values of the `failoverPriority` labels.
    pub proxy_labels: BTreeMap<String, String>,
}

/// The setting that applies: the rule's own (unless it says `enabled: false`), else the
/// mesh's (likewise).
pub fn setting<'a>(
    lb: Option<&'a LoadBalancerSettings>,
    mesh: &'a MeshSettings,
) -> Option<&'a LocalityLoadBalancerSetting> {
    let on = |s: &LocalityLoadBalancerSetting| s.enabled != Some(false);
    match lb.and_then(|lb| lb.locality_lb_setting.as_ref()) {
        Some(s) => on(s).then_some(s),
        None => mesh.locality_lb.as_ref().filter(|s| on(s)),
    }
}

/// Whether the cluster balances by locality weight (`locality_weighted_lb_config`): with
/// `distribute`, or with failover rules and outlier detection.
pub fn weighted(s: &LocalityLoadBalancerSetting, outlier: bool) -> bool {
    !s.distribute.is_empty()
        || (outlier && (!s.failover.is_empty() || !s.failover_priority.is_empty()))
}

/// The label names `failoverPriority` compares (an entry may be `label=value`).
pub fn priority_labels(s: &LocalityLoadBalancerSetting) -> impl Iterator<Item = &str> {
    s.failover_priority
        .iter()
        .map(|l| l.split_once('=').map_or(l.as_str(), |(k, _)| k))
}

/// An endpoint with the labels `failoverPriority` compares.
pub type Labelled<'a> = (LbEndpoint, &'a BTreeMap<String, String>);

/// One locality's endpoints, with what the rules read and set.
#[derive(Clone, Debug)]
pub struct Group<'a> {
    pub locality: String,
    pub weight: u32,
    pub priority: u32,
    pub endpoints: Vec<Labelled<'a>>,
}

/// Applies `rule` to the localities of one cluster; `labels_known` says whether the
/// endpoints' labels may decide `failoverPriority` (istiod does not apply it to the
/// endpoints DNS clusters carry inline).
pub fn apply(groups: &mut Vec<Group<'_>>, rule: &LocalityRule, labels_known: bool) {
    let s = &rule.setting;
    if !s.distribute.is_empty() {
        distribute(groups, rule);
    } else if rule.failover {
        if !s.failover_priority.is_empty() {
            if labels_known {
                by_labels(groups, rule);
            }
            if !s.failover.is_empty() {
                by_distance(groups, rule);
            }
        } else {
            by_distance(groups, rule);
        }
    }
}

fn parts(locality: &str) -> [&str; 3] {
    let mut p = locality.splitn(3, '/');
    [
        p.next().unwrap_or(""),
        p.next().unwrap_or(""),
        p.next().unwrap_or(""),
    ]
}

/// istiod's LocalityMatch: `region/zone/subzone` with `*` (or a missing part) matching any.
fn matches(locality: &str, pattern: &str) -> bool {
    let [r, z, s] = parts(locality);
    let [pr, pz, ps] = parts(pattern);
    (pr == "*" || pr == r)
        && (pz == "*" || pz.is_empty() || pz == z)
        && (ps == "*" || ps.is_empty() || ps == s)
}

/// applyLocalityWeights: the first `from` the proxy is in decides; each `to` pattern's share
/// is split over the localities it matches (in proportion to their weights), and
/// localities no pattern matches keep no endpoints.
fn distribute(groups: &mut [Group<'_>], rule: &LocalityRule) {
    let Some(d) = rule
        .setting
        .distribute
        .iter()
        .find(|d| matches(&rule.proxy_locality, &d.from))
    else {
        return;
    };
    let mut unmatched: Vec<bool> = vec![true; groups.len()];
    for (pattern, share) in &d.to {
        let dest: Vec<usize> = (0..groups.len())
            .filter(|i| unmatched[*i] && matches(&groups[*i].locality, pattern))
            .collect();
        let total: u64 = dest
            .iter()
            .map(|i| u64::from(groups[*i].weight.max(1)))
            .sum();
        for i in dest {
            unmatched[i] = false;
            let w = f64::from(groups[i].weight.max(1)) * f64::from(*share) / total as f64;
            if w > 0.0 {
                groups[i].weight = w.ceil() as u32;
            }
        }
    }
    for (g, unmatched) in groups.iter_mut().zip(unmatched) {
        if unmatched {
            g.endpoints.clear();
        }
    }
}

/// istiod's LbPriority: 0 same subzone, 1 same zone, 2 same region, 3 elsewhere.
fn distance(proxy: &str, endpoint: &str) -> u32 {
    let [pr, pz, ps] = parts(proxy);
    let [r, z, s] = parts(endpoint);
    match (pr == r, pz == z, ps == s) {
        (true, true, true) => 0,
        (true, true, false) => 1,
        (true, false, _) => 2,
        (false, _, _) => 3,
    }
}

/// applyLocalityFailover: priorities by distance (a region `failover` names for the
/// proxy's region comes before the other remote ones), on top of those already set, then
/// renumbered from 0 without gaps.
fn by_distance(groups: &mut [Group<'_>], rule: &LocalityRule) {
    let [proxy_region, ..] = parts(&rule.proxy_locality);
    for g in groups.iter_mut() {
        let mut p = distance(&rule.proxy_locality, &g.locality);
        if p == 3
            && let Some(f) = rule
                .setting
                .failover
                .iter()
                .find(|f| f.from == proxy_region)
            && parts(&g.locality)[0] != f.to
        {
            p = 4;
        }
        g.priority = g.priority * 5 + p;
    }
    renumber(groups);
}

/// applyFailoverPriorities: each locality is split by how many of the `failoverPriority`
/// labels (in order) its endpoints share with the proxy — all of them first.
fn by_labels(groups: &mut Vec<Group<'_>>, rule: &LocalityRule) {
    if rule.proxy_labels.is_empty() {
        return;
    }
    let wanted: Vec<(&str, Option<&str>)> = rule
        .setting
        .failover_priority
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (l.as_str(), None),
        })
        .collect();
    let lowest = wanted.len() as u32;
    let mut out = Vec::new();
    for g in groups.drain(..) {
        let mut split: BTreeMap<u32, Vec<Labelled<'_>>> = BTreeMap::new();
        for (ep, labels) in g.endpoints {
            let mut priority = 0;
            for (j, (key, value)) in wanted.iter().enumerate() {
                let proxy_value = value.or_else(|| rule.proxy_labels.get(*key).map(String::as_str));
                if proxy_value != labels.get(*key).map(String::as_str) {
                    priority = lowest - j as u32;
                    break;
                }
            }
            split.entry(priority).or_default().push((ep, labels));
        }
        for (priority, endpoints) in split {
            let weight = endpoints
                .iter()
                .map(|(e, _)| e.load_balancing_weight.map_or(0, |w| w.value))
                .fold(0u32, u32::saturating_add);
            out.push(Group {
                locality: g.locality.clone(),
                weight,
                priority,
                endpoints,
            });
        }
    }
    *groups = out;
    renumber(groups);
}

/// Priorities must run from 0 without gaps.
fn renumber(groups: &mut [Group<'_>]) {
    let mut used: Vec<u32> = groups.iter().map(|g| g.priority).collect();
    used.sort_unstable();
    used.dedup();
    for g in groups.iter_mut() {
        g.priority = used.binary_search(&g.priority).unwrap_or(0) as u32;
    }
}

#[cfg(test)]
mod tests;
