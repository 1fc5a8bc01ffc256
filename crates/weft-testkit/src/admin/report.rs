//! Failures collected over every proxy under test, so one run of an Envoy-vs-Weft test names
//! every expectation missed and every place the proxies disagree, not just the first.

use std::fmt::Debug;

use super::ManagedProxy;
use crate::{Error, ProxyKind};

/// The failures of one test so far.
#[derive(Debug, Default)]
pub struct Report(Vec<String>);

impl Report {
    /// How many failures were recorded; pass it to [`Report::log_if_failed`] later.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Records `what()` as a failure of `kind` unless `ok`.
    pub fn check(&mut self, kind: ProxyKind, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(format!("[{kind}] {}", what()));
        }
    }

    /// Every proxy's observation must equal the first one's (Envoy's when both run).
    pub fn same<T: PartialEq + Debug>(&mut self, what: &str, seen: &[(ProxyKind, T)]) {
        if let [(k1, first), rest @ ..] = seen {
            for (k, obs) in rest {
                if obs != first {
                    self.0.push(format!(
                        "{what}: {k1} and {k} differ\n  {k1}: {first:?}\n  {k}: {obs:?}"
                    ));
                }
            }
        }
    }

    /// Appends the proxy's log tail if failures were recorded since `before`.
    pub fn log_if_failed(&mut self, before: usize, proxy: &ManagedProxy) {
        if self.0.len() > before {
            self.0.push(format!(
                "[{}] log tail:\n{}",
                proxy.kind(),
                proxy.log_tail()
            ));
        }
    }

    /// `Err` listing every failure, if any.
    pub fn finish(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Conformance(self.0.join("\n\n")))
        }
    }
}
