//! Every YAML block of ../shared/seeds is a fixture. Blocks Istio accepts load without
//! errors; blocks Istio rejects fail with the exact field path and a suggestion of what the
//! author meant. The table below says which is which, and why.

mod seed_blocks;

use weft_config::{Code, Finding, LoadResult, Loader, Severity, validate_all};

fn check(name: &str, text: &str) -> LoadResult {
    let mut l = Loader::new();
    l.load_str(name, text);
    let mut r = l.finish();
    validate_all(&mut r);
    r
}

/// What a block must produce: exactly these errors and warnings (path, code, and a piece of
/// the suggestion or message that must appear).
struct Expect {
    fixture: &'static str,
    why: &'static str,
    errors: &'static [(&'static str, Code, &'static str)],
    warnings: &'static [(&'static str, Code, &'static str)],
}

const EXPECT: &[Expect] = &[
    Expect {
        fixture: "001_6675915f5ffd4681-b00.yaml",
        why: "a YAML list of namespace names, not a Kubernetes object: kubectl rejects it",
        errors: &[("", Code::NotAnObject, "separated by `---`")],
        warnings: &[],
    },
    Expect {
        fixture: "001_6675915f5ffd4681-b01.yaml",
        why: "namespace-wide STRICT PeerAuthentication: valid",
        errors: &[],
        warnings: &[],
    },
    Expect {
        fixture: "001_6675915f5ffd4681-b02.yaml",
        why: "circuit breaking with connectionPool and outlierDetection: valid",
        errors: &[],
        warnings: &[],
    },
    Expect {
        fixture: "001_6675915f5ffd4681-b03.yaml",
        why: "header-matched canary plus 90/10 split; the DestinationRule defines both subsets",
        errors: &[],
        warnings: &[],
    },
    Expect {
        fixture: "001_6675915f5ffd4681-b04.yaml",
        why: "ALLOW policy for two service accounts on gRPC path prefixes: valid",
        errors: &[],
        warnings: &[],
    },
    Expect {
        fixture: "001_6675915f5ffd4681-b05.yaml",
        why: "Telemetry tracing at 100% sampling: valid (v1alpha1 is still served)",
        errors: &[],
        warnings: &[],
    },
    Expect {
        fixture: "002_e9cd0fdc68ad214d-b00.yaml",
        why: "valid, but consecutiveErrors is deprecated and the VirtualService routes to \
              subsets that no DestinationRule in the block defines",
        errors: &[],
        warnings: &[
            (
                "spec.trafficPolicy.outlierDetection.consecutiveErrors",
                Code::Deprecated,
                "consecutive",
            ),
            (
                "spec.http[0].route[0].destination.subset",
                Code::ReferenceNotFound,
                "stable",
            ),
            (
                "spec.http[0].route[1].destination.subset",
                Code::ReferenceNotFound,
                "canary",
            ),
        ],
    },
    Expect {
        fixture: "004_ba2428ded5e9616c-b00.yaml",
        why: "istioctl decodes values strictly: there is no `values.istiod` (istiod's settings \
              are `values.pilot` / `components.pilot`); values.pilot.resources is deprecated",
        errors: &[(
            "spec.values.istiod",
            Code::UnknownField,
            "unknown field `istiod`",
        )],
        warnings: &[(
            "spec.values.pilot.resources",
            Code::Deprecated,
            "components.pilot.k8s.resources",
        )],
    },
    Expect {
        fixture: "004_ba2428ded5e9616c-b01.yaml",
        why: "a ConfigMap carrying an Envoy bootstrap: a valid ConfigMap (the Envoy config is \
              the data plane's to read)",
        errors: &[],
        warnings: &[],
    },
    Expect {
        fixture: "004_ba2428ded5e9616c-b02.yaml",
        why: "a Service and a MESH_EXTERNAL ServiceEntry with DNS resolution: valid",
        errors: &[],
        warnings: &[],
    },
    Expect {
        fixture: "004_ba2428ded5e9616c-b03.yaml",
        why: "east-west Gateway with ISTIO_MUTUAL and a matching DestinationRule: valid",
        errors: &[],
        warnings: &[],
    },
    Expect {
        fixture: "004_ba2428ded5e9616c-b04.yaml",
        why: "connectTimeout belongs to connectionPool.tcp, circuitBreaker is not an Istio \
              field (its fields are outlierDetection's); LEAST_CONN is deprecated",
        errors: &[
            (
                "spec.trafficPolicy.connectionPool.http.connectTimeout",
                Code::UnknownField,
                "spec.trafficPolicy.connectionPool.tcp.connectTimeout",
            ),
            (
                "spec.trafficPolicy.circuitBreaker",
                Code::UnknownField,
                "outlierDetection",
            ),
        ],
        warnings: &[(
            "spec.trafficPolicy.loadBalancer.simple",
            Code::Deprecated,
            "LEAST_REQUEST",
        )],
    },
    Expect {
        fixture: "004_ba2428ded5e9616c-b05.yaml",
        why: "valid routing with retries, a delay fault and a split; its subsets are defined in \
              another block, so alone it warns",
        errors: &[],
        warnings: &[
            (
                "spec.http[0].route[0].destination.subset",
                Code::ReferenceNotFound,
                "v2",
            ),
            (
                "spec.http[1].route[0].destination.subset",
                Code::ReferenceNotFound,
                "v2",
            ),
            (
                "spec.http[2].route[0].destination.subset",
                Code::ReferenceNotFound,
                "v1",
            ),
            (
                "spec.http[2].route[1].destination.subset",
                Code::ReferenceNotFound,
                "v2",
            ),
        ],
    },
    Expect {
        fixture: "004_ba2428ded5e9616c-b06.yaml",
        why: "STRICT mTLS and an ALLOW policy with two rules (from-only, to-only): valid",
        errors: &[],
        warnings: &[],
    },
    Expect {
        fixture: "004_ba2428ded5e9616c-b07.yaml",
        why: "the cacerts values are truncated (`LS0tLS1CRUdJTi...` is not base64, so the API \
              server rejects the Secret), and values.global has no trustDomain: it is a \
              MeshConfig field",
        errors: &[
            (
                "data[\"root-cert.pem\"]",
                Code::InvalidValue,
                "not valid base64",
            ),
            (
                "data[\"cert-chain.pem\"]",
                Code::InvalidValue,
                "not valid base64",
            ),
            (
                "data[\"ca-cert.pem\"]",
                Code::InvalidValue,
                "not valid base64",
            ),
            ("data[\"ca-key.pem\"]", Code::InvalidValue, "stringData"),
            (
                "spec.values.global.trustDomain",
                Code::UnknownField,
                "meshConfig.trustDomain",
            ),
        ],
        warnings: &[],
    },
    Expect {
        fixture: "004_ba2428ded5e9616c-b08.yaml",
        why: "a Pod snippet: Kubernetes requires metadata.name and a container image",
        errors: &[
            (
                "metadata.name",
                Code::MissingField,
                "metadata: {name: my-object}",
            ),
            (
                "spec.containers[0].image",
                Code::MissingField,
                "image: registry.example/app:1.0",
            ),
        ],
        warnings: &[],
    },
    Expect {
        fixture: "004_ba2428ded5e9616c-b09.yaml",
        why: "connectTimeout written under connectionPool.http (it is a tcp setting); the tcp \
              keepalive field is `tcpKeepalive`, not `keepAlive`; and Istio rejects \
              useClientProtocol together with h2UpgradePolicy UPGRADE",
        errors: &[
            (
                "spec.trafficPolicy.connectionPool.http.connectTimeout",
                Code::UnknownField,
                "spec.trafficPolicy.connectionPool.tcp.connectTimeout",
            ),
            (
                "spec.trafficPolicy.connectionPool.tcp.keepAlive",
                Code::UnknownField,
                "tcpKeepalive",
            ),
            (
                "spec.trafficPolicy.connectionPool.http.useClientProtocol",
                Code::Conflict,
                "UPGRADE",
            ),
        ],
        warnings: &[],
    },
    Expect {
        fixture: "004_ba2428ded5e9616c-b10.yaml",
        why: "metrics with tag overrides for every metric: valid",
        errors: &[],
        warnings: &[],
    },
    Expect {
        fixture: "004_ba2428ded5e9616c-b11.yaml",
        why: "three tracing entries (providers / sampling / custom tags): each is a valid \
              Tracing entry, so Istio accepts it, warning that multiple tracing entries are \
              not supported (the author meant one entry with all three fields)",
        errors: &[],
        warnings: &[("spec.tracing", Code::InvalidValue, "multiple tracing")],
    },
    Expect {
        fixture: "004_ba2428ded5e9616c-b12.yaml",
        why: "dev profile: valid; per-proxy resources in values are deprecated",
        errors: &[],
        warnings: &[
            (
                "spec.values.global.proxy.resources",
                Code::Deprecated,
                "deprecated",
            ),
            (
                "spec.values.pilot.resources",
                Code::Deprecated,
                "deprecated",
            ),
        ],
    },
    Expect {
        fixture: "004_ba2428ded5e9616c-b13.yaml",
        why: "prod profile: valid; per-proxy resources in values are deprecated",
        errors: &[],
        warnings: &[
            (
                "spec.values.global.proxy.resources",
                Code::Deprecated,
                "deprecated",
            ),
            (
                "spec.values.pilot.resources",
                Code::Deprecated,
                "deprecated",
            ),
        ],
    },
    Expect {
        fixture: "004_ba2428ded5e9616c-b14.yaml",
        why: "failover is a field of loadBalancer.localityLbSetting, not of trafficPolicy",
        errors: &[(
            "spec.trafficPolicy.failover",
            Code::UnknownField,
            "spec.trafficPolicy.loadBalancer.localityLbSetting.failover",
        )],
        warnings: &[],
    },
    Expect {
        fixture: "004_ba2428ded5e9616c-b15.yaml",
        why: "circuitBreaker is not an Istio field: its contents are outlierDetection's",
        errors: &[(
            "spec.trafficPolicy.circuitBreaker",
            Code::UnknownField,
            "outlierDetection",
        )],
        warnings: &[],
    },
];

fn describe(findings: &[Finding]) -> String {
    findings.iter().map(|f| format!("  {f}\n")).collect()
}

fn assert_findings(e: &Expect, sev: Severity, want: &[(&str, Code, &str)], findings: &[Finding]) {
    let got: Vec<&Finding> = findings.iter().filter(|f| f.severity == sev).collect();
    for (path, code, text) in want {
        let hit = got
            .iter()
            .find(|f| f.path.to_string() == *path && f.code == *code);
        let Some(f) = hit else {
            panic!(
                "{}: expected {sev} {code} at `{path}` ({})\ngot:\n{}",
                e.fixture,
                e.why,
                describe(findings)
            );
        };
        let all = format!("{} {}", f.message, f.suggestion.as_deref().unwrap_or(""));
        assert!(
            all.contains(text),
            "{}: `{path}`: {all:?} lacks {text:?}",
            e.fixture
        );
        assert!(
            f.location.as_ref().is_some_and(|l| l.line > 0),
            "{f} has no position"
        );
    }
    assert_eq!(
        got.len(),
        want.len(),
        "{}: unexpected {sev}s ({}):\n{}",
        e.fixture,
        e.why,
        describe(findings)
    );
}

#[test]
fn fixtures_match_the_seeds() {
    let Some(blocks) = seed_blocks::extract_from_seeds() else {
        eprintln!("../shared/seeds not present; checking committed fixtures only");
        return;
    };
    if std::env::var_os("WEFT_UPDATE_FIXTURES").is_some() {
        for (name, text) in &blocks {
            std::fs::write(seed_blocks::fixture_dir().join(name), text).unwrap();
        }
    }
    assert_eq!(
        blocks,
        seed_blocks::fixtures(),
        "fixtures are out of date: rerun with WEFT_UPDATE_FIXTURES=1"
    );
}

#[test]
fn every_seed_block_loads_as_istio_would() {
    let fixtures = seed_blocks::fixtures();
    for e in EXPECT {
        let (_, text) = fixtures
            .iter()
            .find(|(n, _)| n == e.fixture)
            .unwrap_or_else(|| panic!("no fixture {}", e.fixture));
        let r = check(e.fixture, text);
        assert_findings(e, Severity::Error, e.errors, &r.findings);
        assert_findings(e, Severity::Warning, e.warnings, &r.findings);
    }
}

#[test]
fn every_seed_block_has_an_expectation() {
    for (name, _) in seed_blocks::fixtures() {
        assert!(
            EXPECT.iter().any(|e| e.fixture == name),
            "{name} has no entry in EXPECT"
        );
    }
}

#[test]
fn round_trip_every_fixture() {
    for (name, text) in seed_blocks::fixtures() {
        let first = check(&name, &text);
        for l in &first.resources {
            let json = serde_json::to_string_pretty(&l.resource.to_json()).unwrap();
            let mut again = Loader::new();
            again.load_str("round-trip.json", &json);
            let again = again.finish();
            let decode_errors: Vec<_> = again.findings.iter().filter(|f| f.is_error()).collect();
            assert!(
                decode_errors.is_empty(),
                "{name}: {decode_errors:?}\n{json}"
            );
            assert_eq!(again.resources.len(), 1, "{name}");
            assert_eq!(
                again.resources[0].resource, l.resource,
                "{name}: round trip changed the value\n{json}"
            );
        }
    }
}
