//! Schema exploration over nested, optional, recursive and aliased types.

use super::*;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
#[allow(dead_code)]
struct Tcp {
    max_connections: u32,
    connect_timeout: Option<crate::types::Duration>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
#[allow(dead_code)]
struct Http {
    max_retries: i32,
}

#[derive(Deserialize, Default)]
#[serde(default)]
#[allow(dead_code)]
struct Pool {
    tcp: Option<Tcp>,
    http: Option<Http>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
#[allow(dead_code)]
struct Policy {
    connection_pool: Option<Pool>,
    subsets: Vec<Policy>,
    labels: BTreeMap<String, String>,
}

#[test]
fn explores_nested_and_recursive_types() {
    let s = Schema::of::<Policy>();
    let sites: Vec<String> = s.sites("spec").into_iter().map(|f| f.path).collect();
    for want in [
        "spec.connectionPool.tcp.connectTimeout",
        "spec.connectionPool.tcp.maxConnections",
        "spec.connectionPool.http.maxRetries",
        "spec.subsets",
        "spec.labels",
    ] {
        assert!(sites.contains(&want.to_string()), "{want} in {sites:?}");
    }
    let tcp = s.struct_at("connectionPool.tcp").unwrap();
    let names: Vec<&str> = s.structs[tcp].fields.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["maxConnections", "connectTimeout"]);
    assert_eq!(s.structs[tcp].fields[1].1, Shape::Leaf("duration"));
    assert!(s.struct_at("subsets[].connectionPool").is_some());
}
