//! Locality rules checked on the endpoints a sidecar is sent, as istiod arranges them.

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;

use super::super::sidecar;
use super::super::tests::{decode, proxy, view};

/// reviews in three localities: two pods in us-east/a, one in us-east/b, one in eu-west/c.
const REGISTRY: &str = r#"
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: prod }
spec: { clusterIP: 10.0.0.1, selector: { app: reviews }, ports: [{ name: http, port: 80 }] }
---
apiVersion: v1
kind: Pod
metadata: { name: r1, namespace: prod, labels: { app: reviews, topology.kubernetes.io/region: us-east, topology.kubernetes.io/zone: a, net: n1 } }
spec: { containers: [{ name: app, image: reviews }] }
status: { phase: Running, podIP: 10.1.0.1 }
---
apiVersion: v1
kind: Pod
metadata: { name: r2, namespace: prod, labels: { app: reviews, topology.kubernetes.io/region: us-east, topology.kubernetes.io/zone: a, net: n2 } }
spec: { containers: [{ name: app, image: reviews }] }
status: { phase: Running, podIP: 10.1.0.2 }
---
apiVersion: v1
kind: Pod
metadata: { name: r3, namespace: prod, labels: { app: reviews, topology.kubernetes.io/region: us-east, topology.kubernetes.io/zone: b, net: n1 } }
spec: { containers: [{ name: app, image: reviews }] }
status: { phase: Running, podIP: 10.1.0.3 }
---
apiVersion: v1
kind: Pod
metadata: { name: r4, namespace: prod, labels: { app: reviews, topology.kubernetes.io/region: eu-west, topology.kubernetes.io/zone: c, net: n1 } }
spec: { containers: [{ name: app, image: reviews }] }
status: { phase: Running, podIP: 10.1.0.4 }
"#;

const NAME: &str = "outbound|80||reviews.prod.svc.cluster.local";

/// (locality, priority, weight, endpoint count) per locality entry.
fn arranged(rule: &str, labels: &[(&str, &str)]) -> (Vec<(String, u32, u32, usize)>, Cluster) {
    let yaml = format!("{REGISTRY}---\n{rule}");
    let mut p = proxy("prod", labels);
    p.locality = "us-east/a".into();
    let g = sidecar(&p, &view(&yaml));
    let cla: ClusterLoadAssignment = decode(&g.endpoints, NAME);
    let out = cla
        .endpoints
        .iter()
        .map(|l| {
            let loc = l.locality.clone().unwrap_or_default();
            (
                format!("{}/{}", loc.region, loc.zone),
                l.priority,
                l.load_balancing_weight.map_or(0, |w| w.value),
                l.lb_endpoints.len(),
            )
        })
        .collect();
    (out, decode(&g.clusters, NAME))
}

fn weighted(c: &Cluster) -> bool {
    matches!(
        c.common_lb_config
            .as_ref()
            .and_then(|l| l.locality_config_specifier.as_ref()),
        Some(cluster::common_lb_config::LocalityConfigSpecifier::LocalityWeightedLbConfig(_))
    )
}

fn rule(policy: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{ name: reviews, namespace: prod }}\nspec:\n  host: reviews\n  trafficPolicy:\n{policy}"
    )
}

#[test]
fn with_outlier_detection_closer_localities_get_higher_priority() {
    let (eps, c) = arranged(
        &rule("    outlierDetection: { consecutive5xxErrors: 3 }\n"),
        &[],
    );
    assert_eq!(
        eps,
        [
            ("eu-west/c".to_string(), 2, 1, 1),
            ("us-east/a".to_string(), 0, 2, 2),
            ("us-east/b".to_string(), 1, 1, 1),
        ]
    );
    assert!(!weighted(&c), "default failover needs no locality weights");
    // Without outlier detection nothing fails over, so nothing is prioritised.
    let (eps, _) = arranged(&rule("    loadBalancer: { simple: ROUND_ROBIN }\n"), &[]);
    assert!(eps.iter().all(|(_, p, _, _)| *p == 0));
    // Turned off in the rule.
    let (eps, _) = arranged(
        &rule(
            "    outlierDetection: { consecutive5xxErrors: 3 }\n    loadBalancer: { localityLbSetting: { enabled: false } }\n",
        ),
        &[],
    );
    assert!(eps.iter().all(|(_, p, _, _)| *p == 0));
}

#[test]
fn failover_puts_the_named_region_before_other_remote_ones() {
    let yaml = format!(
        "{}---\napiVersion: v1\nkind: Pod\nmetadata: {{ name: r5, namespace: prod, labels: {{ app: reviews, topology.kubernetes.io/region: ap-south, topology.kubernetes.io/zone: d }} }}\nspec: {{ containers: [{{ name: app, image: reviews }}] }}\nstatus: {{ phase: Running, podIP: 10.1.0.5 }}\n",
        rule(
            "    outlierDetection: { consecutive5xxErrors: 3 }\n    loadBalancer:\n      localityLbSetting:\n        failover: [{ from: us-east, to: ap-south }]\n"
        )
    );
    let (eps, c) = arranged(&yaml, &[]);
    let priority = |l: &str| eps.iter().find(|e| e.0 == l).map(|e| e.1);
    assert_eq!(priority("us-east/a"), Some(0));
    assert_eq!(priority("us-east/b"), Some(1));
    assert_eq!(priority("ap-south/d"), Some(2), "the failover region");
    assert_eq!(priority("eu-west/c"), Some(3));
    assert!(weighted(&c));
}

#[test]
fn distribute_gives_the_rules_weights_and_drops_the_rest() {
    let (eps, c) = arranged(
        &rule(
            "    loadBalancer:\n      localityLbSetting:\n        distribute:\n        - { from: us-east/*, to: { us-east/a: 80, \"us-east/b\": 20 } }\n",
        ),
        &[],
    );
    assert_eq!(
        eps,
        [
            ("eu-west/c".to_string(), 0, 1, 0),
            ("us-east/a".to_string(), 0, 80, 2),
            ("us-east/b".to_string(), 0, 20, 1),
        ]
    );
    assert!(weighted(&c));
}

#[test]
fn failover_priority_splits_localities_by_the_proxys_labels() {
    let (eps, c) = arranged(
        &rule(
            "    outlierDetection: { consecutive5xxErrors: 3 }\n    loadBalancer:\n      localityLbSetting:\n        failoverPriority: [net]\n",
        ),
        &[("net", "n1")],
    );
    // Endpoints sharing net=n1 first, whatever their locality; r2 (n2) last.
    assert_eq!(
        eps,
        [
            ("eu-west/c".to_string(), 0, 1, 1),
            ("us-east/a".to_string(), 0, 1, 1),
            ("us-east/a".to_string(), 1, 1, 1),
            ("us-east/b".to_string(), 0, 1, 1),
        ]
    );
    assert!(weighted(&c));
}
