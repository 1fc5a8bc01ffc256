//! The control plane's Prometheus metrics, under istiod's names so existing dashboards and
//! alerts work: `pilot_xds_pushes` and `pilot_total_xds_rejects` per xDS type,
//! `pilot_xds_push_errors`, the `pilot_proxy_convergence_time` histogram, and the
//! `pilot_xds` and `pilot_services` gauges. Written in the text exposition format by hand.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use weft_xds::server::{AdsServer, ServerStatus};
use weft_xds::type_url;

/// istiod's buckets for `pilot_proxy_convergence_time`, in seconds.
pub const CONVERGENCE_BUCKETS: [f64; 8] = [0.1, 0.5, 1.0, 3.0, 5.0, 10.0, 20.0, 30.0];

/// The xDS types every per-type series is written for, even before any traffic.
const TYPES: [&str; 4] = [
    type_url::CLUSTER,
    type_url::CLUSTER_LOAD_ASSIGNMENT,
    type_url::LISTENER,
    type_url::ROUTE_CONFIGURATION,
];

/// The longest the push and reject counters lag behind the server (see `follow`).
const OBSERVE_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// A histogram with fixed upper bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Observations at or under each bound of [`CONVERGENCE_BUCKETS`] (not cumulative).
    pub buckets: [u64; CONVERGENCE_BUCKETS.len()],
    pub count: u64,
    pub sum: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: [0; CONVERGENCE_BUCKETS.len()],
            count: 0,
            sum: 0.0,
        }
    }
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = CONVERGENCE_BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// Per-stream counts last seen in the ADS server's status, so increments are added once.
#[derive(Debug, Default)]
struct Seen {
    nodes: BTreeMap<String, SeenStream>,
}

/// A node's latest stream: its id, and per type URL the responses and NACKs seen.
type SeenStream = (u64, BTreeMap<String, (u64, u64)>);

/// The counters and the histogram; gauges are read at scrape time.
#[derive(Debug, Default)]
pub struct Metrics {
    push_errors: AtomicU64,
    convergence: Mutex<Histogram>,
    /// Type URL to responses sent and to NACKs received, over every stream so far.
    pushes: Mutex<BTreeMap<String, u64>>,
    rejects: Mutex<BTreeMap<String, u64>>,
    seen: Mutex<Seen>,
}

/// What a scrape reads from elsewhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// Open ADS streams (istiod's `pilot_xds`).
    pub connected: usize,
    pub services: usize,
}

impl Metrics {
    /// A stream the control plane could not serve (its node was refused).
    pub fn push_error(&self) {
        self.push_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn push_errors(&self) -> u64 {
        self.push_errors.load(Ordering::Relaxed)
    }

    /// A proxy's new configuration was published `delay` after the change that caused it.
    pub fn converged(&self, delay: Duration) {
        self.convergence.lock().observe(delay.as_secs_f64());
    }

    pub fn convergence(&self) -> Histogram {
        self.convergence.lock().clone()
    }

    /// Responses sent for `type_url` over every stream.
    pub fn pushes(&self, type_url: &str) -> u64 {
        self.pushes.lock().get(type_url).copied().unwrap_or(0)
    }

    /// NACKs received for `type_url` over every stream.
    pub fn rejects(&self, type_url: &str) -> u64 {
        self.rejects.lock().get(type_url).copied().unwrap_or(0)
    }

    /// Adds what the server did since the last status seen. A node's counts restart with
    /// each new stream, so a changed stream id means everything it shows is new.
    pub fn observe_status(&self, status: &ServerStatus) {
        let mut seen = self.seen.lock();
        let mut pushes = self.pushes.lock();
        let mut rejects = self.rejects.lock();
        for (node, n) in &status.nodes {
            if !seen.nodes.contains_key(node) {
                seen.nodes.insert(node.clone(), Default::default());
            }
            let Some(entry) = seen.nodes.get_mut(node) else {
                continue;
            };
            if entry.0 != n.stream_id {
                *entry = (n.stream_id, BTreeMap::new());
            }
            for (type_url, t) in &n.types {
                if !entry.1.contains_key(type_url) {
                    entry.1.insert(type_url.clone(), Default::default());
                }
                let Some((responses, nacks)) = entry.1.get_mut(type_url) else {
                    continue;
                };
                let sent = t.responses.saturating_sub(*responses);
                let nacked = t.nacks.saturating_sub(*nacks);
                if sent > 0 {
                    *pushes.entry(type_url.clone()).or_default() += sent;
                }
                if nacked > 0 {
                    *rejects.entry(type_url.clone()).or_default() += nacked;
                }
                *responses = t.responses;
                *nacks = t.nacks;
            }
        }
    }

    /// Follows the server's status until the task is dropped. Every change to any stream
    /// changes the status, and reading it walks every node, so changes are taken at most
    /// every [`OBSERVE_EVERY`] (the counters lag that much behind).
    pub async fn follow(&self, server: AdsServer) {
        let mut rx = server.watch_status();
        loop {
            self.observe_status(&rx.borrow_and_update());
            if rx.changed().await.is_err() {
                return;
            }
            tokio::time::sleep(OBSERVE_EVERY).await;
        }
    }

    /// The exposition, in Prometheus' text format 0.0.4.
    pub fn render(&self, gauges: Gauges) -> String {
        let mut out = String::new();
        let by_type = |out: &mut String, name: &str, help: &str, counts: &BTreeMap<String, u64>| {
            header(out, name, help, "counter");
            let mut types: Vec<&str> = TYPES.to_vec();
            types.extend(
                counts
                    .keys()
                    .map(String::as_str)
                    .filter(|t| !TYPES.contains(t)),
            );
            for t in type_url::sorted(types) {
                let value = counts.get(t).copied().unwrap_or(0);
                let _ = writeln!(out, "{name}{{type=\"{}\"}} {value}", type_label(t));
            }
        };
        by_type(
            &mut out,
            "pilot_xds_pushes",
            "xDS responses sent to proxies, by type.",
            &self.pushes.lock(),
        );
        by_type(
            &mut out,
            "pilot_total_xds_rejects",
            "xDS responses proxies rejected (NACKed), by type.",
            &self.rejects.lock(),
        );
        header(
            &mut out,
            "pilot_xds_push_errors",
            "xDS streams the control plane could not serve (a node it cannot read).",
            "counter",
        );
        let _ = writeln!(out, "pilot_xds_push_errors {}", self.push_errors());
        let h = self.convergence();
        let name = "pilot_proxy_convergence_time";
        header(
            &mut out,
            name,
            "Seconds from a configuration change being noticed to a proxy's new configuration \
             being published to its stream.",
            "histogram",
        );
        let mut cumulative = 0;
        for (bound, n) in CONVERGENCE_BUCKETS.iter().zip(h.buckets) {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "{name}_sum {}", h.sum);
        let _ = writeln!(out, "{name}_count {}", h.count);
        header(
            &mut out,
            "pilot_xds",
            "Proxies connected to this control plane over xDS.",
            "gauge",
        );
        let _ = writeln!(out, "pilot_xds {}", gauges.connected);
        header(
            &mut out,
            "pilot_services",
            "Services known to the control plane.",
            "gauge",
        );
        let _ = writeln!(out, "pilot_services {}", gauges.services);
        out
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// istiod's `type` label: `cds`, `eds`, `lds`, `rds`, `sds`; other types by message name.
fn type_label(type_url: &str) -> String {
    type_url::short_name(type_url)
        .to_ascii_lowercase()
        .replace(['\\', '"', '\n'], "_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_xds::Subscription;
    use weft_xds::server::{NodeStatus, TypeStatus};

    fn status(stream_id: u64, responses: u64, nacks: u64) -> ServerStatus {
        let mut types = BTreeMap::new();
        let t = TypeStatus {
            subscription: Subscription::Wildcard.into(),
            first_request_names: Default::default(),
            initial_resource_versions: BTreeMap::new(),
            sent_version: Some("1".into()),
            sent_nonce: "1".into(),
            acked_version: None,
            acked_nonce: String::new(),
            last_nack: None,
            responses,
            acks: 0,
            nacks,
            stale_nonces: 0,
        };
        types.insert(type_url::CLUSTER.to_string(), Box::new(t));
        let mut s = ServerStatus::default();
        s.nodes.insert(
            "n".into(),
            NodeStatus {
                stream_id,
                mode: weft_xds::Mode::StateOfTheWorld,
                connected: true,
                streams: 1,
                types,
            },
        );
        s
    }

    #[test]
    fn counts_survive_reconnects_and_are_added_once() {
        let m = Metrics::default();
        m.observe_status(&status(1, 2, 1));
        m.observe_status(&status(1, 2, 1));
        m.observe_status(&status(1, 3, 1));
        // A new stream starts counting from zero again.
        m.observe_status(&status(2, 1, 0));
        assert_eq!(m.pushes(type_url::CLUSTER), 4);
        assert_eq!(m.rejects(type_url::CLUSTER), 1);
        let text = m.render(Gauges::default());
        assert!(
            text.contains("pilot_xds_pushes{type=\"cds\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("pilot_xds_pushes{type=\"rds\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("pilot_total_xds_rejects{type=\"cds\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn the_histogram_is_cumulative() {
        let m = Metrics::default();
        m.converged(Duration::from_millis(50));
        m.converged(Duration::from_millis(700));
        m.converged(Duration::from_secs(60));
        let text = m.render(Gauges {
            connected: 2,
            services: 3,
        });
        for line in [
            "pilot_proxy_convergence_time_bucket{le=\"0.1\"} 1",
            "pilot_proxy_convergence_time_bucket{le=\"1\"} 2",
            "pilot_proxy_convergence_time_bucket{le=\"30\"} 2",
            "pilot_proxy_convergence_time_bucket{le=\"+Inf\"} 3",
            "pilot_proxy_convergence_time_count 3",
            "pilot_xds 2",
            "pilot_services 3",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }
}
