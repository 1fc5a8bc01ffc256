//! Parity with Istio: the DestinationRule tables of pkg/config/validation/validation_test.go
//! (TestValidateDestinationRule, TestValidateTrafficPolicy, TestValidateConnectionPool,
//! TestValidateLoadBalancer, TestValidateOutlierDetection), TestValidateTLS (ClientTLSSettings,
//! older validation_test.go) and TestValidateLocalityLbSetting (pkg/config/validation/agent),
//! translated to JSON. Sub-message tables are wrapped in a minimal DestinationRule so the
//! whole rule set runs, as it does when Istio validates a real object.

use super::DestinationRule;
use crate::validate::istio_table::Want::*;
use crate::validate::istio_table::{table, table_errors_only};
use serde_json::{Value, json};

fn subsets() -> Value {
    json!([{"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}}])
}

/// The "valid traffic policy" fixture Istio reuses across tables.
fn good_policy(min_health: i64) -> Value {
    json!({
        "loadBalancer": {"simple": "ROUND_ROBIN"},
        "connectionPool": {"tcp": {"maxConnections": 7}, "http": {"http2MaxRequests": 11}},
        "outlierDetection": {"minHealthPercent": min_health}
    })
}

/// Same as `good_policy` but with an empty (invalid) connection pool.
fn bad_policy() -> Value {
    json!({
        "loadBalancer": {"simple": "ROUND_ROBIN"},
        "connectionPool": {},
        "outlierDetection": {"minHealthPercent": 20}
    })
}

fn with_policy(policy: Value) -> Value {
    json!({"host": "reviews", "trafficPolicy": policy})
}

fn with_tls(tls: Value) -> Value {
    with_policy(json!({"tls": tls}))
}

#[test]
fn istio_validate_destination_rule() {
    table::<DestinationRule>(vec![
        // simple destination rule
        (
            "simple destination rule",
            json!({"host": "reviews", "subsets": subsets()}),
            Valid,
        ),
        // simple destination rule with empty selector labels
        (
            "simple destination rule with empty selector labels",
            json!({"host": "reviews", "subsets": subsets(), "workloadSelector": {}}),
            Warning,
        ),
        // missing destination name
        (
            "missing destination name",
            json!({"host": "", "subsets": subsets()}),
            Error,
        ),
        // missing subset name
        (
            "missing subset name",
            json!({"host": "reviews", "subsets": [
                {"name": "", "labels": {"version": "v1"}},
                {"name": "v2", "labels": {"version": "v2"}}]}),
            Error,
        ),
        // duplicate subset names
        (
            "duplicate subset names",
            json!({"host": "reviews", "subsets": [
                {"name": "foo", "labels": {"version": "v1"}},
                {"name": "foo", "labels": {"version": "v2"}}]}),
            Error,
        ),
        // valid traffic policy, top level
        (
            "valid traffic policy, top level",
            json!({"host": "reviews", "trafficPolicy": good_policy(20), "subsets": subsets()}),
            Valid,
        ),
        // invalid traffic policy, top level
        (
            "invalid traffic policy, top level",
            json!({"host": "reviews", "trafficPolicy": bad_policy(), "subsets": subsets()}),
            Error,
        ),
        // valid traffic policy, subset level
        (
            "valid traffic policy, subset level",
            json!({"host": "reviews", "subsets": [
                {"name": "v1", "labels": {"version": "v1"}, "trafficPolicy": good_policy(20)},
                {"name": "v2", "labels": {"version": "v2"}}]}),
            Valid,
        ),
        // invalid traffic policy, subset level
        (
            "invalid traffic policy, subset level",
            json!({"host": "reviews", "subsets": [
                {"name": "v1", "labels": {"version": "v1"}, "trafficPolicy": bad_policy()},
                {"name": "v2", "labels": {"version": "v2"}}]}),
            Error,
        ),
        // valid traffic policy, both levels
        (
            "valid traffic policy, both levels",
            json!({"host": "reviews", "trafficPolicy": good_policy(20), "subsets": [
                {"name": "v1", "labels": {"version": "v1"}, "trafficPolicy": good_policy(30)},
                {"name": "v2", "labels": {"version": "v2"}}]}),
            Valid,
        ),
        // InsecureSkipVerify is not specified with tls mode simple, and the ca cert is specified by CaCertificates
        (
            "ISV unset, SIMPLE, caCertificates",
            with_tls(json!({"mode": "SIMPLE", "caCertificates": "test",
                "subjectAltNames": ["reviews.default.svc"]})),
            Valid,
        ),
        // InsecureSkipVerify is not specified with tls mode simple, and the ca cert is specified by CredentialName
        (
            "ISV unset, SIMPLE, credentialName",
            with_tls(json!({"mode": "SIMPLE", "credentialName": "test",
                "subjectAltNames": ["reviews.default.svc"]})),
            Valid,
        ),
        // InsecureSkipVerify is set false with tls mode simple, and the ca cert is specified by CaCertificates
        (
            "ISV false, SIMPLE, caCertificates",
            with_tls(json!({"mode": "SIMPLE", "caCertificates": "test",
                "subjectAltNames": ["reviews.default.svc"], "insecureSkipVerify": false})),
            Valid,
        ),
        // InsecureSkipVerify is set false with tls mode simple, and the ca cert is specified by CredentialName
        (
            "ISV false, SIMPLE, credentialName",
            with_tls(json!({"mode": "SIMPLE", "credentialName": "test",
                "subjectAltNames": ["reviews.default.svc"], "insecureSkipVerify": false})),
            Valid,
        ),
        // InsecureSkipVerify is set true with tls mode simple, and the ca cert is specified by CaCertificates
        (
            "ISV true, SIMPLE, credentialName",
            with_tls(
                json!({"mode": "SIMPLE", "credentialName": "test", "insecureSkipVerify": true}),
            ),
            Error,
        ),
        // InsecureSkipVerify is set true with tls mode simple, and the ca cert is specified by CredentialName
        (
            "ISV true, SIMPLE, caCertificates",
            with_tls(
                json!({"mode": "SIMPLE", "caCertificates": "test", "insecureSkipVerify": true}),
            ),
            Error,
        ),
        // InsecureSkipVerify is set true with tls mode simple, and the san is specified
        (
            "ISV true, SIMPLE, SAN",
            with_tls(
                json!({"mode": "SIMPLE", "subjectAltNames": ["reviews.default.svc"],
                "insecureSkipVerify": true}),
            ),
            Error,
        ),
        // InsecureSkipVerify is not specified with tls mode mutual, and the ca cert is specified by CaCertificates
        (
            "ISV unset, MUTUAL, caCertificates",
            with_tls(
                json!({"mode": "MUTUAL", "caCertificates": "test", "privateKey": "key",
                "clientCertificate": "cert", "subjectAltNames": ["reviews.default.svc"]}),
            ),
            Valid,
        ),
        // InsecureSkipVerify is not specified with tls mode mutual, and the ca cert is specified by CredentialName
        (
            "ISV unset, MUTUAL, credentialName",
            with_tls(json!({"mode": "MUTUAL", "credentialName": "test",
                "subjectAltNames": ["reviews.default.svc"]})),
            Valid,
        ),
        // InsecureSkipVerify is set false with tls mode mutual, and the ca cert is specified by CaCertificates
        (
            "ISV false, MUTUAL, caCertificates",
            with_tls(
                json!({"mode": "MUTUAL", "caCertificates": "test", "privateKey": "key",
                "clientCertificate": "cert", "subjectAltNames": ["reviews.default.svc"],
                "insecureSkipVerify": false}),
            ),
            Valid,
        ),
        // InsecureSkipVerify is set false with tls mode mutual, and the ca cert is specified by CredentialName
        (
            "ISV false, MUTUAL, credentialName",
            with_tls(json!({"mode": "MUTUAL", "credentialName": "test",
                "subjectAltNames": ["reviews.default.svc"], "insecureSkipVerify": false})),
            Valid,
        ),
        // InsecureSkipVerify is set true with tls mode mutual, and the ca cert is specified by CaCertificates
        (
            "ISV true, MUTUAL, caCertificates",
            with_tls(
                json!({"mode": "MUTUAL", "caCertificates": "test", "privateKey": "key",
                "clientCertificate": "cert", "insecureSkipVerify": true}),
            ),
            Error,
        ),
        // InsecureSkipVerify is set true with tls mode mutual, and the ca cert is specified by CaCertificates
        // (second case of that name: credentialName only)
        (
            "ISV true, MUTUAL, credentialName",
            with_tls(
                json!({"mode": "MUTUAL", "credentialName": "test", "insecureSkipVerify": true}),
            ),
            Valid,
        ),
        // InsecureSkipVerify is set true with tls mode mutual, and the ca cert is not specified
        (
            "ISV true, MUTUAL, no CA",
            with_tls(
                json!({"mode": "MUTUAL", "privateKey": "key", "clientCertificate": "cert",
                "insecureSkipVerify": true}),
            ),
            Valid,
        ),
        // InsecureSkipVerify is set true with tls mode mutual, and the san is specified
        (
            "ISV true, MUTUAL, SAN",
            with_tls(
                json!({"mode": "MUTUAL", "privateKey": "key", "clientCertificate": "cert",
                "subjectAltNames": ["reviews.default.svc"], "insecureSkipVerify": true}),
            ),
            Error,
        ),
    ]);
}

#[test]
fn istio_validate_traffic_policy() {
    table_errors_only::<DestinationRule>(vec![
        // valid traffic policy
        ("valid traffic policy", with_policy(good_policy(20)), Valid),
        // invalid traffic policy, nil entries
        (
            "invalid traffic policy, nil entries",
            with_policy(json!({})),
            Error,
        ),
        // invalid traffic policy, missing port in port level settings
        (
            "invalid traffic policy, missing port in port level settings",
            with_policy(json!({"portLevelSettings": [good_policy(20)]})),
            Error,
        ),
        // invalid traffic policy, bad connection pool
        (
            "invalid traffic policy, bad connection pool",
            with_policy(bad_policy()),
            Error,
        ),
        // invalid traffic policy, bad max connection duration
        (
            "invalid traffic policy, bad max connection duration",
            with_policy(json!({"loadBalancer": {"simple": "ROUND_ROBIN"},
                "connectionPool": {"tcp": {"maxConnectionDuration": "500ns"}}})),
            Error,
        ),
        // invalid traffic policy, panic threshold too low
        (
            "invalid traffic policy, panic threshold too low",
            with_policy(good_policy(-1)),
            Error,
        ),
        // invalid traffic policy, both upgrade and use client protocol set
        (
            "invalid traffic policy, both upgrade and use client protocol set",
            with_policy(
                json!({"connectionPool": {"http": {"h2UpgradePolicy": "UPGRADE",
                "useClientProtocol": true}}}),
            ),
            Error,
        ),
    ]);
}

fn with_pool(pool: Value) -> Value {
    with_policy(json!({"connectionPool": pool}))
}

#[test]
fn istio_validate_connection_pool() {
    let http = json!({"http1MaxPendingRequests": 2, "http2MaxRequests": 11,
        "maxRequestsPerConnection": 5, "maxRetries": 4, "idleTimeout": "30s",
        "maxConcurrentStreams": 5});
    let tcp = json!({"maxConnections": 7, "connectTimeout": "2s"});
    table_errors_only::<DestinationRule>(vec![
        // valid connection pool, tcp and http
        (
            "valid connection pool, tcp and http",
            with_pool(json!({"tcp": tcp.clone(), "http": http.clone()})),
            Valid,
        ),
        // valid connection pool, tcp only
        (
            "valid connection pool, tcp only",
            with_pool(json!({"tcp": tcp})),
            Valid,
        ),
        // valid connection pool, http only
        (
            "valid connection pool, http only",
            with_pool(json!({"http": http})),
            Valid,
        ),
        // valid connection pool, http only with empty idle timeout
        (
            "valid connection pool, http only with empty idle timeout",
            with_pool(
                json!({"http": {"http1MaxPendingRequests": 2, "http2MaxRequests": 11,
                "maxRequestsPerConnection": 5, "maxRetries": 4, "maxConcurrentStreams": 5}}),
            ),
            Valid,
        ),
        // invalid connection pool, empty
        (
            "invalid connection pool, empty",
            with_pool(json!({})),
            Error,
        ),
        // invalid connection pool, bad max connections
        (
            "invalid connection pool, bad max connections",
            with_pool(json!({"tcp": {"maxConnections": -1}})),
            Error,
        ),
        // invalid connection pool, bad connect timeout
        (
            "invalid connection pool, bad connect timeout",
            with_pool(json!({"tcp": {"connectTimeout": "2.000000005s"}})),
            Error,
        ),
        // invalid connection pool, bad max pending requests
        (
            "invalid connection pool, bad max pending requests",
            with_pool(json!({"http": {"http1MaxPendingRequests": -1}})),
            Error,
        ),
        // invalid connection pool, bad max requests
        (
            "invalid connection pool, bad max requests",
            with_pool(json!({"http": {"http2MaxRequests": -1}})),
            Error,
        ),
        // invalid connection pool, bad max requests per connection
        (
            "invalid connection pool, bad max requests per connection",
            with_pool(json!({"http": {"maxRequestsPerConnection": -1}})),
            Error,
        ),
        // invalid connection pool, bad max retries
        (
            "invalid connection pool, bad max retries",
            with_pool(json!({"http": {"maxRetries": -1}})),
            Error,
        ),
        // invalid connection pool, bad idle timeout
        (
            "invalid connection pool, bad idle timeout",
            with_pool(json!({"http": {"idleTimeout": "30.000000005s"}})),
            Error,
        ),
        // valid connection pool, tcp timeout disabled
        (
            "valid connection pool, tcp timeout disabled",
            with_pool(json!({"tcp": {"idleTimeout": "0s"}})),
            Valid,
        ),
        // invalid connection pool, bad max concurrent streams
        (
            "invalid connection pool, bad max concurrent streams",
            with_pool(json!({"http": {"maxConcurrentStreams": -1}})),
            Error,
        ),
    ]);
}

fn with_lb(lb: Value) -> Value {
    with_policy(json!({"loadBalancer": lb}))
}

#[test]
fn istio_validate_load_balancer() {
    table_errors_only::<DestinationRule>(vec![
        // valid load balancer with simple load balancing
        (
            "valid load balancer with simple load balancing",
            with_lb(json!({"simple": "ROUND_ROBIN"})),
            Valid,
        ),
        // valid load balancer with consistentHash load balancing
        (
            "valid load balancer with consistentHash load balancing",
            with_lb(json!({"consistentHash": {"minimumRingSize": 1024,
                "httpCookie": {"name": "test", "ttl": "3600s"}}})),
            Valid,
        ),
        // invalid load balancer with consistentHash load balancing, missing name
        (
            "invalid load balancer with consistentHash load balancing, missing name",
            with_lb(json!({"consistentHash": {"minimumRingSize": 1024,
                "httpCookie": {"ttl": "3600s"}}})),
            Error,
        ),
        // invalid load balancer with consistentHash load balancing, maglev not prime
        (
            "invalid load balancer with consistentHash load balancing, maglev not prime",
            with_lb(json!({"consistentHash": {"maglev": {"tableSize": 1000}}})),
            Error,
        ),
    ]);
}

fn with_outlier(od: Value) -> Value {
    with_policy(json!({"outlierDetection": od}))
}

#[test]
fn istio_validate_outlier_detection() {
    table::<DestinationRule>(vec![
        // valid outlier detection
        (
            "valid outlier detection",
            with_outlier(json!({"interval": "2s", "baseEjectionTime": "2s",
                "maxEjectionPercent": 50})),
            Valid,
        ),
        // invalid outlier detection, bad interval
        (
            "invalid outlier detection, bad interval",
            with_outlier(json!({"interval": "2.000000005s"})),
            Error,
        ),
        // invalid outlier detection, bad base ejection time
        (
            "invalid outlier detection, bad base ejection time",
            with_outlier(json!({"baseEjectionTime": "2.000000005s"})),
            Error,
        ),
        // invalid outlier detection, bad max ejection percent
        (
            "invalid outlier detection, bad max ejection percent",
            with_outlier(json!({"maxEjectionPercent": 105})),
            Error,
        ),
        // invalid outlier detection, panic threshold too low
        (
            "invalid outlier detection, panic threshold too low",
            with_outlier(json!({"minHealthPercent": -1})),
            Error,
        ),
        // invalid outlier detection, panic threshold too high
        (
            "invalid outlier detection, panic threshold too high",
            with_outlier(json!({"minHealthPercent": 101})),
            Error,
        ),
        // deprecated outlier detection, ConsecutiveErrors
        (
            "deprecated outlier detection, ConsecutiveErrors",
            with_outlier(json!({"consecutiveErrors": 101})),
            Warning,
        ),
        // consecutive local origin errors is set but split local origin errors is not set
        (
            "consecutive local origin errors is set but split local origin errors is not set",
            with_outlier(json!({"consecutiveLocalOriginFailures": 10})),
            Error,
        ),
    ]);
}

#[test]
fn istio_validate_client_tls_settings() {
    table_errors_only::<DestinationRule>(vec![
        // SIMPLE: Credential Name set correctly
        (
            "SIMPLE: Credential Name set correctly",
            with_tls(json!({"mode": "SIMPLE", "credentialName": "some credential"})),
            Valid,
        ),
        // SIMPLE CredentialName set with ClientCertificate specified
        (
            "SIMPLE CredentialName set with ClientCertificate specified",
            with_tls(json!({"mode": "SIMPLE", "credentialName": "credential",
                "clientCertificate": "cert"})),
            Error,
        ),
        // SIMPLE: CredentialName set with PrivateKey specified
        (
            "SIMPLE: CredentialName set with PrivateKey specified",
            with_tls(
                json!({"mode": "SIMPLE", "credentialName": "credential", "privateKey": "key"}),
            ),
            Error,
        ),
        // SIMPLE: CredentialName set with CACertficiates specified
        (
            "SIMPLE: CredentialName set with CACertficiates specified",
            with_tls(json!({"mode": "SIMPLE", "credentialName": "credential",
                "caCertificates": "ca"})),
            Error,
        ),
        // MUTUAL: Credential Name set correctly
        (
            "MUTUAL: Credential Name set correctly",
            with_tls(json!({"mode": "MUTUAL", "credentialName": "some credential"})),
            Valid,
        ),
        // MUTUAL CredentialName set with ClientCertificate specified
        (
            "MUTUAL CredentialName set with ClientCertificate specified",
            with_tls(json!({"mode": "MUTUAL", "credentialName": "credential",
                "clientCertificate": "cert"})),
            Error,
        ),
        // MUTUAL: CredentialName set with PrivateKey specified
        (
            "MUTUAL: CredentialName set with PrivateKey specified",
            with_tls(
                json!({"mode": "MUTUAL", "credentialName": "credential", "privateKey": "key"}),
            ),
            Error,
        ),
        // MUTUAL: CredentialName set with CACertficiates specified
        (
            "MUTUAL: CredentialName set with CACertficiates specified",
            with_tls(json!({"mode": "MUTUAL", "credentialName": "credential",
                "caCertificates": "ca"})),
            Error,
        ),
        // MUTUAL: CredentialName not set with ClientCertificate and Key specified
        (
            "MUTUAL: CredentialName not set with ClientCertificate and Key specified",
            with_tls(json!({"mode": "MUTUAL", "clientCertificate": "cert", "privateKey": "key"})),
            Valid,
        ),
        // MUTUAL: CredentialName not set with ClientCertificate specified and Key missing
        (
            "MUTUAL: CredentialName not set with ClientCertificate specified and Key missing",
            with_tls(json!({"mode": "MUTUAL", "clientCertificate": "cert"})),
            Error,
        ),
        // MUTUAL: CredentialName not set with ClientCertificate missing and Key specified
        (
            "MUTUAL: CredentialName not set with ClientCertificate missing and Key specified",
            with_tls(json!({"mode": "MUTUAL", "privateKey": "key"})),
            Error,
        ),
    ]);
}

/// Wraps a locality setting and an optional outlier detection, as
/// ValidateLocalityLbSetting(in, outlier) sees them inside a traffic policy.
fn with_locality(lb: Value, outlier: Option<Value>) -> Value {
    let mut policy = json!({"loadBalancer": {"localityLbSetting": lb}});
    if let Some(od) = outlier {
        policy["outlierDetection"] = od;
    }
    with_policy(policy)
}

#[test]
fn istio_validate_locality_lb_setting() {
    let od = || Some(json!({}));
    table::<DestinationRule>(vec![
        // valid mesh config without LocalityLoadBalancerSetting
        (
            "valid mesh config without LocalityLoadBalancerSetting",
            with_policy(json!({"loadBalancer": {"simple": "ROUND_ROBIN"}})),
            Valid,
        ),
        // invalid LocalityLoadBalancerSetting_Distribute total weight > 100
        (
            "invalid distribute total weight > 100",
            with_locality(
                json!({"distribute": [{"from": "a/b/c", "to": {"a/b/c": 80, "a/b1": 25}}]}),
                od(),
            ),
            Error,
        ),
        // invalid LocalityLoadBalancerSetting_Distribute total weight < 100
        (
            "invalid distribute total weight < 100",
            with_locality(
                json!({"distribute": [{"from": "a/b/c", "to": {"a/b/c": 80, "a/b1": 15}}]}),
                od(),
            ),
            Error,
        ),
        // invalid LocalityLoadBalancerSetting_Distribute weight = 0
        (
            "invalid distribute weight = 0",
            with_locality(
                json!({"distribute": [{"from": "a/b/c", "to": {"a/b/c": 0, "a/b1": 100}}]}),
                od(),
            ),
            Error,
        ),
        // invalid LocalityLoadBalancerSetting specify both distribute and failover
        (
            "invalid both distribute and failover",
            with_locality(
                json!({"distribute": [{"from": "a/b/c", "to": {"a/b/c": 80, "a/b1": 20}}],
                    "failover": [{"from": "region1", "to": "region2"}]}),
                od(),
            ),
            Error,
        ),
        // invalid failover src and dst have same region
        (
            "invalid failover src and dst have same region",
            with_locality(
                json!({"failover": [{"from": "region1", "to": "region1"}]}),
                od(),
            ),
            Error,
        ),
        // invalid failover src contain '*' wildcard
        (
            "invalid failover src contain '*' wildcard",
            with_locality(json!({"failover": [{"from": "*", "to": "region2"}]}), od()),
            Error,
        ),
        // invalid failover dst contain '*' wildcard
        (
            "invalid failover dst contain '*' wildcard",
            with_locality(json!({"failover": [{"from": "region1", "to": "*"}]}), od()),
            Error,
        ),
        // invalid failover src contain '/' separator
        (
            "invalid failover src contain '/' separator",
            with_locality(
                json!({"failover": [{"from": "region1/zone1", "to": "region2"}]}),
                od(),
            ),
            Error,
        ),
        // invalid failover dst contain '/' separator
        (
            "invalid failover dst contain '/' separator",
            with_locality(
                json!({"failover": [{"from": "region1", "to": "region2/zone1"}]}),
                od(),
            ),
            Error,
        ),
        // failover priority provided without outlier detection policy
        (
            "failover priority provided without outlier detection policy",
            with_locality(
                json!({"failoverPriority": ["topology.istio.io/network",
                    "topology.kubernetes.io/region", "topology.kubernetes.io/zone",
                    "topology.istio.io/subzone"]}),
                None,
            ),
            Warning,
        ),
        // failover provided without outlier detection policy
        (
            "failover provided without outlier detection policy",
            with_locality(
                json!({"failover": [{"from": "us-east", "to": "eu-west"},
                    {"from": "us-west", "to": "eu-east"}]}),
                None,
            ),
            Warning,
        ),
        // invalid LocalityLoadBalancerSetting specify both failoverPriority and region in failover
        (
            "invalid both failoverPriority and region in failover",
            with_locality(
                json!({"failover": [{"from": "region1", "to": "region2"}],
                    "failoverPriority": ["topology.kubernetes.io/region"]}),
                od(),
            ),
            Error,
        ),
    ]);
}
