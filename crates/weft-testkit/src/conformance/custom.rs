//! The runner for hand-written conformance tests: scenarios whose checks need more than one
//! request-and-response (a raw socket, several requests on one connection, a TLS ClientHello,
//! waiting for the proxy to close). The test turns each case into an [`Outcome`], the value it
//! observed next to the value Envoy is known to give; the runner requires every proxy to meet
//! the expected value and all proxies to observe the same thing, as [`super::check`] does for
//! data-driven cases.

use std::fmt::Debug;

use super::{Rig, Scenario};
use crate::Error;
use crate::proxy::{ProxyBinary, ProxyKind};

/// One case of a hand-written test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub case: String,
    /// What the proxy did, as `{:?}` of the test's own observation type.
    pub observed: String,
    pub expected: String,
}

impl Outcome {
    pub fn new<T: Debug + PartialEq>(case: impl Into<String>, observed: T, expected: T) -> Self {
        Self {
            case: case.into(),
            observed: format!("{observed:?}"),
            expected: format!("{expected:?}"),
        }
    }

    pub fn met(&self) -> bool {
        self.observed == self.expected
    }
}

/// Starts `scenario` on every proxy in `peers`, runs `cases` against each, and fails with
/// every missed expectation and every case where two proxies differ.
pub async fn check_custom(
    scenario: &Scenario,
    peers: &[ProxyBinary],
    cases: impl AsyncFn(&Rig) -> Result<Vec<Outcome>, Error>,
) -> Result<(), Error> {
    let mut failures = Vec::new();
    let mut seen: Vec<(ProxyKind, Vec<Outcome>)> = Vec::new();
    for binary in peers {
        let rig = match Rig::start(scenario, binary).await {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("[{}] did not start: {e}", binary.kind));
                continue;
            }
        };
        let kind = rig.kind();
        match cases(&rig).await {
            Ok(outcomes) => {
                let missed: Vec<String> = outcomes
                    .iter()
                    .inspect(|o| println!("[{kind}] {}: {}", o.case, o.observed))
                    .filter(|o| !o.met())
                    .map(|o| {
                        format!(
                            "[{kind}] case {:?}:\n  expected {}\n  observed {}",
                            o.case, o.expected, o.observed
                        )
                    })
                    .collect();
                if !missed.is_empty() {
                    failures.extend(missed);
                    failures.push(format!("[{kind}] log tail:\n{}", rig.proxy().log_tail()));
                }
                seen.push((kind, outcomes));
            }
            Err(e) => failures.push(format!(
                "[{kind}] failed: {e}\n[{kind}] log tail:\n{}",
                rig.proxy().log_tail()
            )),
        }
    }
    if let [(first_kind, first), rest @ ..] = seen.as_slice() {
        for (kind, outcomes) in rest {
            for (a, b) in first.iter().zip(outcomes) {
                if a.observed != b.observed {
                    failures.push(format!(
                        "case {:?}: {first_kind} and {kind} differ\n  {first_kind}: {}\n  {kind}: {}",
                        a.case, a.observed, b.observed
                    ));
                }
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Conformance(format!(
            "scenario {}:\n{}",
            scenario.path.display(),
            failures.join("\n\n")
        )))
    }
}
