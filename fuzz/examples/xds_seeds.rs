//! Writes the `xds_resource` seed corpus: every listener, route table, cluster and load
//! assignment of the conformance scenarios' bootstraps (placeholders filled with a port),
//! plus one secret, each as the fuzz target reads them — a type byte, then the protobuf.
//! Real resources get the fuzzer past decoding and into the converters at once.
//! Usage (from fuzz/): cargo run --example xds_seeds -- ../crates/weft/tests/conformance seeds/xds_resource

use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source::Specifier};
use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager::RouteSpecifier,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    Secret, TlsCertificate, secret,
};
use prost::Message;
use std::collections::BTreeSet;
use std::path::Path;

const PER_KIND: usize = 6;
const HCM: &str =
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

/// The `bootstrap: |` block of a scenario, with `{{...}}` placeholders replaced by a port.
fn bootstrap_of(scenario: &str) -> Option<String> {
    let mut lines = scenario
        .lines()
        .skip_while(|l| !l.starts_with("bootstrap: |"));
    lines.next()?;
    let mut out = String::new();
    for l in lines.take_while(|l| l.is_empty() || l.starts_with("  ")) {
        out.push_str(l.strip_prefix("  ").unwrap_or(l));
        out.push('\n');
    }
    while let Some(start) = out.find("{{") {
        let end = out[start..].find("}}")? + start + 2;
        out.replace_range(start..end, "10000");
    }
    Some(out)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(scenarios), Some(out)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: xds_seeds SCENARIO_DIR OUT_DIR");
        std::process::exit(2);
    };
    std::fs::create_dir_all(out).expect("create the output directory");
    // Identical resources recur across scenarios; keep each once.
    let mut seeds: BTreeSet<Vec<u8>> = BTreeSet::new();
    let add = |seeds: &mut BTreeSet<Vec<u8>>, kind: u8, bytes: Vec<u8>| {
        let mut s = vec![kind];
        s.extend(bytes);
        seeds.insert(s);
    };
    let mut entries: Vec<_> = std::fs::read_dir(scenarios)
        .expect("read the scenario directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).expect("read a scenario");
        let Some(boot) = bootstrap_of(&text) else {
            continue;
        };
        let b = match weft_proxy::parse_bootstrap(&path.display().to_string(), &boot) {
            Ok(b) => b,
            Err(errors) => {
                eprintln!("skipping {}: {}", path.display(), errors[0]);
                continue;
            }
        };
        let Some(sr) = b.static_resources else {
            continue;
        };
        for l in &sr.listeners {
            add(&mut seeds, 0, l.encode_to_vec());
            for f in l.filter_chains.iter().flat_map(|c| &c.filters) {
                let Some(ConfigType::TypedConfig(any)) = &f.config_type else {
                    continue;
                };
                if !any.type_url.ends_with(HCM) {
                    continue;
                }
                let hcm = HttpConnectionManager::decode(any.value.as_slice()).expect("an HCM");
                if let Some(RouteSpecifier::RouteConfig(rc)) = hcm.route_specifier {
                    add(&mut seeds, 1, rc.encode_to_vec());
                }
            }
        }
        for c in &sr.clusters {
            add(&mut seeds, 2, c.encode_to_vec());
            if let Some(cla) = &c.load_assignment {
                add(&mut seeds, 3, cla.encode_to_vec());
            }
        }
    }
    let secret = Secret {
        name: "server-cert".into(),
        r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: Some(DataSource {
                specifier: Some(Specifier::InlineString(
                    "-----BEGIN CERTIFICATE-----".into(),
                )),
                ..Default::default()
            }),
            private_key: Some(DataSource {
                specifier: Some(Specifier::InlineString(
                    "-----BEGIN PRIVATE KEY-----".into(),
                )),
                ..Default::default()
            }),
            ..Default::default()
        })),
    };
    add(&mut seeds, 4, secret.encode_to_vec());
    // Most resources differ only in names and ports: keep a few per type, spread over sizes
    // from the smallest to the largest, so the committed corpus stays small.
    let mut written = 0;
    for (kind, label) in ["listener", "routes", "cluster", "endpoints", "secret"]
        .iter()
        .enumerate()
    {
        let mut of_kind: Vec<&Vec<u8>> = seeds.iter().filter(|s| s[0] as usize == kind).collect();
        of_kind.sort_by_key(|s| s.len());
        let n = of_kind.len().min(PER_KIND);
        for i in 0..n {
            let s = of_kind[i * (of_kind.len() - 1) / (n - 1).max(1)];
            std::fs::write(Path::new(out).join(format!("{label}-{i}")), s).expect("write a seed");
            written += 1;
        }
    }
    println!("{written} seeds written to {out}");
}
