//! Arbitrary bytes as one xDS resource, the way a management server's response reaches the
//! proxy: the first byte picks the type (Listener, RouteConfiguration, Cluster,
//! ClusterLoadAssignment, Secret), the rest is decoded as that protobuf. The supported-field
//! check, the converter and the configuration store must never panic, must agree with each
//! other on what is accepted, and an accepted resource must still be accepted, unchanged,
//! after an encode/decode round trip (what a proxy sees when the same resource is re-sent).
//! Mutations are mostly structure-aware (`proto_mutate`), so deep fields get new values.
#![no_main]

use arc_swap::ArcSwap;
use envoy_types::pb::envoy::config::cluster::v3::Cluster as PbCluster;
use envoy_types::pb::envoy::config::cluster::v3::cluster::{
    ClusterDiscoveryType, DiscoveryType, EdsClusterConfig,
};
use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ConfigSource, config_source::ConfigSourceSpecifier,
};
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener as PbListener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use envoy_types::pb::google::protobuf::BoolValue;
use libfuzzer_sys::{fuzz_mutator, fuzz_target, fuzzer_mutate};
use prost::Message;
use std::fmt::Debug;
use std::sync::Arc;
use weft_proxy::config::snapshot::Snapshot;
use weft_proxy::config::store::Store;
use weft_proxy::model::ConvertError;
use weft_proxy::model::cluster::ClusterConfig;
use weft_proxy::model::endpoint::endpoints;
use weft_proxy::model::hcm::RouteSource;
use weft_proxy::model::listener::{ListenerConfig, NetworkFilter};
use weft_proxy::model::route::RouteConfig;
use weft_proxy::model::support::check_message;
use weft_proxy::stats::Registry;
use weft_yaml::FieldPath;

mod proto_mutate;

// Two mutations in three are structured edits of the decoded resource; the rest are
// libFuzzer's own byte-level ones, which still find decoder-level problems.
fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    if !seed.is_multiple_of(3)
        && let Some(n) = proto_mutate::mutate(data, size, max_size, seed)
    {
        return n;
    }
    fuzzer_mutate(data, size, max_size)
});

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    match kind % 5 {
        0 => listener(rest),
        1 => route_configuration(rest),
        2 => cluster(rest),
        3 => load_assignment(rest),
        _ => secret(rest),
    }
});

/// A runtime to enter, never to drive: DNS clusters spawn their resolver task on it, where it
/// stays unpolled (no lookup leaves the fuzzer) until the runtime is dropped.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

/// The clusters that the listener's inline route tables name.
fn inline_clusters(l: &ListenerConfig) -> Vec<String> {
    let mut out: Vec<String> = l
        .chains
        .iter()
        .chain(l.default_chain.as_ref())
        .filter_map(|c| match &c.filter {
            NetworkFilter::Http(h) => match &h.routes {
                RouteSource::Inline(rc) => Some(rc.clusters().map(|(n, _)| n.to_string())),
                RouteSource::Rds(_) => None,
            },
            NetworkFilter::TcpProxy(_) => None,
        })
        .flatten()
        .collect();
    out.sort();
    out.dedup();
    out
}

fn store() -> Store {
    Store::new(
        Arc::new(Registry::default()),
        Arc::new(ArcSwap::from_pointee(Snapshot::default())),
    )
}

/// Checks that `msg` survives encode → decode byte for byte and that `convert` gives the
/// same answer for the copy. Encodings are compared rather than messages so that a NaN in a
/// `double` field does not make two equal messages unequal.
fn round_trip<M, T>(msg: &M, converted: &T, convert: impl Fn(&M) -> T)
where
    M: Message + Default + prost::Name,
    T: PartialEq + Debug,
{
    let bytes = msg.encode_to_vec();
    let again = M::decode(bytes.as_slice()).expect("an encoded message decodes");
    assert_eq!(
        again.encode_to_vec(),
        bytes,
        "re-encoding changed the bytes"
    );
    assert!(
        check_message(&again).is_empty(),
        "round trip added unsupported fields"
    );
    assert_eq!(
        &convert(&again),
        converted,
        "round trip changed the conversion"
    );
}

/// What the store must say given what the checker and converter said: accepted exactly when
/// both had no complaint (`extra_reject` covers the store's own further checks).
fn expect_store_verdict(
    what: &str,
    store_ok: bool,
    unsupported: &[ConvertError],
    converted_ok: bool,
    extra_reject: bool,
) {
    let expected = unsupported.is_empty() && converted_ok && !extra_reject;
    assert_eq!(
        store_ok, expected,
        "{what}: store verdict {store_ok} but unsupported={unsupported:?} converted_ok={converted_ok}"
    );
}

fn listener(bytes: &[u8]) {
    let Ok(l) = PbListener::decode(bytes) else {
        return;
    };
    let unsupported = check_message(&l);
    let converted = ListenerConfig::new(&l);
    if unsupported.is_empty()
        && let Ok(c) = &converted
    {
        round_trip(&l, c, |m| ListenerConfig::new(m).expect("accepted once"));
    }
    // The store binds sockets for bind_to_port listeners; the fuzzer must not, so the store
    // sees the listener as a virtual one (the converter above saw it as sent).
    let mut l = l;
    l.bind_to_port = Some(BoolValue { value: false });
    let unsupported = check_message(&l);
    let converted = ListenerConfig::new(&l);
    // Inline route tables must name known clusters: with none known, that is the store's
    // only reason of its own to reject; with them registered, it has none.
    let named = converted.as_ref().map(inline_clusters).unwrap_or_default();
    let mut s = store();
    let mut verdict = s.apply_listeners(vec![l.clone()], &[], "1", false);
    if verdict.is_err() && !named.is_empty() {
        if unsupported.is_empty() && converted.is_ok() {
            let errors = verdict.as_ref().expect_err("checked above").0.clone();
            assert!(
                errors.iter().all(|m| m.contains("unknown cluster")),
                "store rejected a valid listener: {errors:?}"
            );
        }
        s = store();
        let clusters = named.iter().map(|n| PbCluster {
            name: n.clone(),
            ..Default::default()
        });
        s.apply_clusters(clusters.collect(), &[], "0", false)
            .expect("plain STATIC clusters are valid");
        verdict = s.apply_listeners(vec![l.clone()], &[], "1", false);
    }
    expect_store_verdict(
        "listener",
        verdict.is_ok(),
        &unsupported,
        converted.is_ok(),
        false,
    );
    let name = l.name.clone();
    if verdict.is_ok() {
        let held = s.listeners.get(&name).or(s.warming_listeners.get(&name));
        let held = held.expect("an accepted listener is held");
        assert!(
            held.socket.is_none(),
            "bind_to_port: false listener got a socket"
        );
        assert_eq!(
            s.shared.load().listeners.contains_key(&name),
            s.listeners.contains_key(&name)
        );
        // The same resource again is a no-op that succeeds.
        s.apply_listeners(vec![l], &[], "2", false)
            .expect("re-sending an accepted listener");
        s.apply_listeners(vec![], std::slice::from_ref(&name), "3", false)
            .expect("removing a dynamic listener");
        assert!(!s.listeners.contains_key(&name) && !s.warming_listeners.contains_key(&name));
        assert!(s.shared.load().listeners.is_empty());
    } else {
        assert!(s.listeners.is_empty() && s.warming_listeners.is_empty());
    }
}

fn route_configuration(bytes: &[u8]) {
    let Ok(rc) = RouteConfiguration::decode(bytes) else {
        return;
    };
    let unsupported = check_message(&rc);
    let converted = RouteConfig::new(&rc);
    if unsupported.is_empty()
        && let Ok(c) = &converted
    {
        round_trip(&rc, c, |m| RouteConfig::new(m).expect("accepted once"));
        // Lookups on the converted table must not panic for the table's own domains.
        for v in &rc.virtual_hosts {
            for d in &v.domains {
                let _ = c.select_vhost(d);
                let _ = c.select_vhost(&d.to_ascii_uppercase());
            }
        }
    }
    let mut s = store();
    let verdict = s.apply_routes(vec![rc.clone()], &[], "1");
    expect_store_verdict(
        "routes",
        verdict.is_ok(),
        &unsupported,
        converted.is_ok(),
        false,
    );
    assert_eq!(s.routes.contains_key(&rc.name), verdict.is_ok());
    assert_eq!(
        s.shared.load().routes.contains_key(&rc.name),
        verdict.is_ok()
    );
}

fn cluster(bytes: &[u8]) {
    let Ok(c) = PbCluster::decode(bytes) else {
        return;
    };
    let unsupported = check_message(&c);
    let converted = ClusterConfig::new(&c);
    if unsupported.is_empty()
        && let Ok(cfg) = &converted
    {
        round_trip(&c, cfg, |m| ClusterConfig::new(m).expect("accepted once"));
    }
    // DNS clusters spawn their resolver task; a runtime that is entered but never driven
    // holds it unpolled (no lookups leave the fuzzer) and drops it at the end.
    let rt = runtime();
    let _guard = rt.enter();
    let mut s = store();
    let verdict = s.apply_clusters(vec![c.clone()], &[], "1", false);
    expect_store_verdict(
        "cluster",
        verdict.is_ok(),
        &unsupported,
        converted.is_ok(),
        false,
    );
    if let Ok(cfg) = &converted
        && verdict.is_ok()
    {
        let held = s.clusters.get(&c.name).or(s.warming_clusters.get(&c.name));
        let held = held.expect("an accepted cluster is held");
        assert_eq!(&held.cluster.config, cfg);
        if let weft_proxy::model::cluster::Discovery::Static(eps) = &cfg.discovery {
            assert!(held.cluster.is_warm(), "a STATIC cluster is warm at once");
            let set = held.cluster.endpoints.load();
            assert_eq!(set.hosts.len(), eps.len());
            assert_eq!(
                set.healthy_count(),
                eps.iter().filter(|e| e.healthy).count()
            );
            check_picks(&set);
        }
        s.apply_clusters(vec![], std::slice::from_ref(&c.name), "2", false)
            .expect("removing a dynamic cluster");
        assert!(s.clusters.is_empty() && s.warming_clusters.is_empty());
    }
    drop(s);
}

/// Picks only healthy hosts, and some host whenever one is healthy.
fn check_picks(set: &weft_proxy::upstream::endpoints::EndpointSet) {
    for _ in 0..4 {
        match set.pick() {
            Some(h) => assert!(h.healthy, "picked an unhealthy host"),
            None => assert_eq!(set.healthy_count(), 0, "no pick with healthy hosts"),
        }
    }
}

fn load_assignment(bytes: &[u8]) {
    let Ok(cla) = ClusterLoadAssignment::decode(bytes) else {
        return;
    };
    let unsupported = check_message(&cla);
    let root = FieldPath::root();
    let converted = endpoints(&cla, &root);
    if unsupported.is_empty()
        && let Ok(eps) = &converted
    {
        round_trip(&cla, eps, |m| endpoints(m, &root).expect("accepted once"));
    }
    // An EDS cluster waiting for this assignment, so an update reaches its endpoint set.
    let name = if cla.cluster_name.is_empty() {
        "eds".to_string()
    } else {
        cla.cluster_name.clone()
    };
    let eds = PbCluster {
        name: name.clone(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
        eds_cluster_config: Some(EdsClusterConfig {
            service_name: cla.cluster_name.clone(),
            eds_config: Some(ConfigSource {
                config_source_specifier: Some(ConfigSourceSpecifier::Ads(
                    AggregatedConfigSource {},
                )),
                ..Default::default()
            }),
        }),
        ..Default::default()
    };
    let mut s = store();
    s.apply_clusters(vec![eds], &[], "1", false)
        .expect("the EDS cluster is valid");
    let verdict = s.apply_endpoints(vec![cla.clone()], &[], "1");
    let bad_ip = converted
        .as_ref()
        .is_ok_and(|eps| eps.iter().any(|e| e.address.ip().is_none()));
    expect_store_verdict(
        "endpoints",
        verdict.is_ok(),
        &unsupported,
        converted.is_ok(),
        bad_ip,
    );
    if let (Ok(()), Ok(eps)) = (&verdict, &converted) {
        let held = s.clusters.get(&name).or(s.warming_clusters.get(&name));
        let cluster = &held.expect("the EDS cluster is held").cluster;
        if cla.cluster_name == name {
            assert!(cluster.is_warm(), "endpoints arrived, the cluster is warm");
            let set = cluster.endpoints.load();
            assert_eq!(set.hosts.len(), eps.len());
            assert_eq!(
                set.healthy_count(),
                eps.iter().filter(|e| e.healthy).count()
            );
            check_picks(&set);
        }
    }
}

fn secret(bytes: &[u8]) {
    let Ok(sec) = Secret::decode(bytes) else {
        return;
    };
    let unsupported = check_message(&sec);
    if unsupported.is_empty() {
        round_trip(&sec, &(), |_| ());
    }
    let mut s = store();
    let verdict = s.apply_secrets(vec![sec.clone()], &[], "1", false);
    expect_store_verdict("secret", verdict.is_ok(), &unsupported, true, false);
    assert_eq!(s.secrets.contains_key(&sec.name), verdict.is_ok());
}
