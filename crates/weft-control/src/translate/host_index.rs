//! Which rules name a host: VirtualServices and DestinationRules indexed by their resolved
//! hosts once per view, so finding the rules of one service is a lookup rather than a scan
//! of every rule (a thousand services times hundreds of rules, per proxy group, was most of
//! a push).

use std::collections::HashMap;

use super::names::host_matches;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostIndex {
    /// Each rule's resolved hosts, by the rule's position in its list.
    hosts: Vec<Vec<String>>,
    exact: HashMap<String, Vec<usize>>,
    /// Rules with a wildcard host (`*`, `*.suffix`), in position order.
    wildcard: Vec<usize>,
}

impl HostIndex {
    /// `rules` yields each rule's resolved hosts, in the rules' order.
    pub fn new(rules: impl IntoIterator<Item = Vec<String>>) -> Self {
        let mut index = Self::default();
        for (i, hosts) in rules.into_iter().enumerate() {
            for h in &hosts {
                if h.starts_with('*') {
                    if index.wildcard.last() != Some(&i) {
                        index.wildcard.push(i);
                    }
                } else {
                    let at = index.exact.entry(h.clone()).or_default();
                    if at.last() != Some(&i) {
                        at.push(i);
                    }
                }
            }
            index.hosts.push(hosts);
        }
        index
    }

    /// Positions of the rules with a host covering `name`, ascending.
    pub fn matching(&self, name: &str) -> Vec<usize> {
        let mut out: Vec<usize> = self.exact.get(name).cloned().unwrap_or_default();
        out.extend(
            self.wildcard
                .iter()
                .copied()
                .filter(|&i| self.hosts[i].iter().any(|h| host_matches(h, name))),
        );
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Rule `i`'s resolved hosts.
    pub fn hosts(&self, i: usize) -> &[String] {
        self.hosts.get(i).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_wildcard_hosts_in_rule_order() {
        let index = HostIndex::new([
            vec!["a.ns.svc.cluster.local".to_string()],
            vec!["*.ns.svc.cluster.local".to_string()],
            vec![
                "b.ns.svc.cluster.local".to_string(),
                "a.ns.svc.cluster.local".to_string(),
            ],
            vec!["*".to_string()],
            vec!["*.other".to_string()],
        ]);
        assert_eq!(index.matching("a.ns.svc.cluster.local"), [0, 1, 2, 3]);
        assert_eq!(index.matching("b.ns.svc.cluster.local"), [1, 2, 3]);
        assert_eq!(index.matching("x.other"), [3, 4]);
        assert_eq!(index.hosts(2).len(), 2);
        assert!(index.hosts(9).is_empty());
    }
}
