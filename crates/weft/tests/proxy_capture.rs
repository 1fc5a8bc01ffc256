//! Traffic capture the way Istio uses it (DESIGN.md testing ladder, level 4): inside a private
//! network namespace, iptables redirects the app's outbound TCP to the proxy's port 15001
//! (sparing the proxy's own group 1337), and the proxy must restore the original destination
//! and act on it: hand the connection to the `bind_to_port: false` listener for that
//! destination, pick a filter chain by it, or pass it through an ORIGINAL_DST cluster. Every
//! scenario runs on real Envoy 1.40 and on `weft proxy` with the same bootstrap
//! (`tests/capture/*.yaml`); both must meet the stated expectations and agree.
//!
//! Needs root (network namespaces, iptables) and the `iptables` command
//! (`scripts/install-test-deps.sh` installs it); without root each test fails saying so.
//!
//! Run both proxies: `cargo test -p weft --test proxy_capture`
//! Only one:         `WEFT_CONFORMANCE_ONLY=envoy|weft cargo test -p weft --test proxy_capture`

mod capture;

use std::path::Path;

use capture::{Case, Scenario, Through};
use weft_testkit::{Error, ProxyBinary, conformance};

fn peers() -> Result<Vec<ProxyBinary>, Error> {
    let only = std::env::var("WEFT_CONFORMANCE_ONLY").ok();
    conformance::peers(only.as_deref(), Path::new(env!("CARGO_BIN_EXE_weft")))
}

fn check(scenario: &Scenario) {
    if let Err(e) = peers().and_then(|p| capture::check(scenario, &p)) {
        panic!("{e}");
    }
}

/// virtualOutbound hands 10.99.0.x:9080 to the `0.0.0.0:9080` virtual listener, whose HCM
/// routes to the reviews service on another host; 10.99.0.2:7000 has no virtual listener and
/// is tunnelled to itself through PassthroughCluster.
#[test]
fn outbound_capture_uses_virtual_listeners_and_passes_the_rest_through() {
    check(&Scenario {
        bootstrap: "outbound.yaml",
        backends: &[
            ("app-7000", "10.99.0.2:7000"),
            ("reviews", "10.99.0.3:8080"),
        ],
        cases: vec![
            Case::new("10.99.0.2:9080", "/reviews/1", "reviews", Through::Hcm),
            Case::new("10.99.0.3:9080", "/reviews/2", "reviews", Through::Hcm)
                .host("reviews.default.svc.cluster.local:9080"),
            Case::new("10.99.0.2:7000", "/passthrough", "app-7000", Through::Tcp),
        ],
    });
}

/// Filter chains of virtualOutbound chosen by the restored destination: port 9090 first,
/// then the 10.99.0.3/32 prefix, else the default chain's passthrough.
#[test]
fn filter_chains_match_the_restored_destination() {
    check(&Scenario {
        bootstrap: "chain_match.yaml",
        backends: &[
            ("app-7000", "10.99.0.2:7000"),
            ("port-9090", "10.99.0.3:8081"),
            ("address-10.99.0.3", "10.99.0.3:8082"),
        ],
        cases: vec![
            Case::new("10.99.0.2:9090", "/by-port", "port-9090", Through::Tcp),
            // Nothing listens at 10.99.0.3:7000: only the chain's cluster can answer.
            Case::new(
                "10.99.0.3:7000",
                "/by-address",
                "address-10.99.0.3",
                Through::Tcp,
            ),
            Case::new(
                "10.99.0.3:9090",
                "/port-beats-address",
                "port-9090",
                Through::Tcp,
            ),
            Case::new("10.99.0.2:7000", "/default-chain", "app-7000", Through::Tcp),
        ],
    });
}

/// An HCM on a virtual listener routing to ORIGINAL_DST: each request goes through the HTTP
/// filters, then to the address the app dialled, not to where its Host header points.
#[test]
fn http_passthrough_reaches_the_original_destination() {
    check(&Scenario {
        bootstrap: "http_passthrough.yaml",
        backends: &[
            ("app-7100", "10.99.0.2:7100"),
            ("other-7100", "10.99.0.3:7100"),
        ],
        cases: vec![
            Case::new("10.99.0.2:7100", "/first", "app-7100", Through::Hcm),
            Case::new("10.99.0.3:7100", "/second", "other-7100", Through::Hcm),
            Case::new("10.99.0.2:7100", "/by-address", "app-7100", Through::Hcm)
                .host("other.example:7100"),
        ],
    });
}
