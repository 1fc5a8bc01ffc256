//! Our typed resources against Istio's own CRDs: every field the CRD schema defines under
//! `spec` must be accepted by our types, and we must serve exactly the CRD's served versions.
//! The fixture is derived from Istio's `crd-all.gen.yaml` (see its header for the commit).

use std::collections::{BTreeMap, BTreeSet};
use weft_config::kinds::KINDS;

const FIXTURE: &str = include_str!("fixtures/istio-crd-fields.txt");

#[derive(Default)]
struct Crd {
    versions: Option<BTreeSet<String>>,
    paths: BTreeSet<String>,
}

/// Kind → served versions and `spec.…` paths, as listed in the fixture.
fn crds() -> BTreeMap<String, Crd> {
    let mut out: BTreeMap<String, Crd> = BTreeMap::new();
    for (n, line) in FIXTURE.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        if first == "VERSIONS" {
            let kind = words
                .next()
                .unwrap_or_else(|| panic!("fixture line {}: VERSIONS without kind", n + 1));
            let versions: BTreeSet<String> = words.map(str::to_string).collect();
            let crd = out.entry(kind.to_string()).or_default();
            assert!(
                crd.versions.replace(versions).is_none(),
                "fixture line {}: VERSIONS {kind} given twice",
                n + 1
            );
        } else {
            let path = words
                .next()
                .unwrap_or_else(|| panic!("fixture line {}: kind without path", n + 1));
            assert!(
                words.next().is_none() && path.starts_with("spec."),
                "fixture line {}: expected `<Kind> spec.<path>`, got `{line}`",
                n + 1
            );
            let crd = out.entry(first.to_string()).or_default();
            crd.paths.insert(path.to_string());
        }
    }
    out
}

#[test]
fn fixture_lists_every_istio_kind_we_read() {
    let crds = crds();
    let expected = [
        "VirtualService",
        "DestinationRule",
        "Gateway",
        "ServiceEntry",
        "WorkloadEntry",
        "WorkloadGroup",
        "Sidecar",
        "PeerAuthentication",
        "AuthorizationPolicy",
        "RequestAuthentication",
        "Telemetry",
    ];
    for kind in expected {
        let crd = crds
            .get(kind)
            .unwrap_or_else(|| panic!("fixture has no {kind}"));
        assert!(crd.versions.is_some(), "fixture has no VERSIONS {kind}");
        assert!(!crd.paths.is_empty(), "fixture has no paths for {kind}");
    }
    assert_eq!(
        crds.len(),
        expected.len(),
        "fixture kinds: {:?}",
        crds.keys()
    );
}

#[test]
fn our_types_accept_every_crd_field() {
    let mut report = Vec::new();
    let mut total = 0usize;
    for (kind, crd) in crds() {
        let info = KINDS
            .iter()
            .find(|k| k.kind == kind)
            .unwrap_or_else(|| panic!("{kind} is in the CRD fixture but not in KINDS"));
        let ours: BTreeSet<String> = info
            .schema()
            .sites("")
            .into_iter()
            .map(|s| s.path)
            .collect();
        let missing: Vec<&String> = crd.paths.iter().filter(|p| !ours.contains(*p)).collect();
        total += missing.len();
        if !missing.is_empty() {
            report.push(format!(
                "{kind}: {} of {} CRD paths missing from our schema:",
                missing.len(),
                crd.paths.len()
            ));
            report.extend(missing.iter().map(|p| format!("  {kind} {p}")));
        }
    }
    assert!(
        report.is_empty(),
        "{total} CRD field paths are not accepted by our types:\n{}",
        report.join("\n")
    );
}

#[test]
fn our_versions_are_the_crd_served_versions() {
    let mut report = Vec::new();
    for (kind, crd) in crds() {
        let Some(info) = KINDS.iter().find(|k| k.kind == kind) else {
            report.push(format!("{kind}: not in KINDS"));
            continue;
        };
        let served = crd.versions.unwrap_or_default();
        let ours: BTreeSet<String> = info.versions.iter().map(|v| v.to_string()).collect();
        if ours != served {
            let extra: Vec<&String> = ours.difference(&served).collect();
            let absent: Vec<&String> = served.difference(&ours).collect();
            report.push(format!(
                "{kind}: ours {ours:?}, CRD serves {served:?} (we list but CRD does not serve: {extra:?}; CRD serves but we lack: {absent:?})"
            ));
        }
    }
    assert!(
        report.is_empty(),
        "version mismatches:\n{}",
        report.join("\n")
    );
}
