//! Turns one benchmark run's raw outputs (a directory per topology and participant,
//! written by bench/proxy/run.sh) into results.json and the ratios of Weft to each peer.
//! Kept apart from the table so the numbers and the ratios can be checked without text.
//!
//! Latency is measured in two placements: "own core" (`openloop.json`, the proxy alone on
//! its CPU, every request crossing CPUs on each hop) and "shared core"
//! (`openloop-shared.json`, every process on the load CPU), because in a VM each
//! cross-CPU wake-up adds a floor to p99 that is the same for every proxy.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::open_loop::OpenLoopReport;
use crate::usage::Usage;
use crate::wrk;

/// Known participants in the order the table shows them; unknown ones follow by name.
const ORDER: [&str; 5] = ["direct", "nginx", "haproxy", "envoy", "weft"];
/// The participant whose ratios to every other proxy are computed.
pub const SUBJECT: &str = "weft";
/// Not a proxy: no ratio is taken against it.
const BASELINE: &str = "direct";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Throughput {
    pub rps: f64,
    pub requests: u64,
    pub seconds: f64,
    pub non_2xx: u64,
    pub socket_errors: u64,
    pub cpu_seconds: Option<f64>,
    pub cpu_s_per_1k: Option<f64>,
    /// Proxy CPU time / wall time: near 1.0 per pinned core means the proxy, not the load
    /// side, was the bottleneck.
    pub proxy_cpu_share: Option<f64>,
    /// Machine busy time spent outside the proxy, wrk and the backend, in cores: load from
    /// elsewhere that may have disturbed the window.
    pub foreign_cpu_cores: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Latency {
    pub rate: f64,
    pub connections: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    pub scheduled: u64,
    pub completed: u64,
    pub non_2xx: u64,
    pub errors: u64,
    pub dropped: u64,
    pub cpu_s_per_1k: Option<f64>,
    pub pacer_lateness_p99_us: f64,
    /// CPU used outside the benchmark during the window, in cores.
    pub foreign_cpu_cores: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Participant {
    pub name: String,
    pub available: bool,
    pub note: Option<String>,
    pub throughput: Option<Throughput>,
    /// Open loop with the proxy on its own core (for `direct`: the backend moved there).
    pub latency: Option<Latency>,
    /// Open loop with every process on the load core; `None` for runs made before this
    /// phase existed.
    #[serde(default)]
    pub latency_shared: Option<Latency>,
    pub peak_rss_mib: Option<f64>,
    pub processes: Option<usize>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ratios {
    pub peer: String,
    /// subject ÷ peer; > 1 means the subject served more.
    pub throughput: Option<f64>,
    /// subject ÷ peer, own-core placement; < 1 means the subject is faster.
    pub p99: Option<f64>,
    /// subject ÷ peer, shared-core placement.
    #[serde(default)]
    pub p99_shared: Option<f64>,
    pub peak_rss: Option<f64>,
    pub cpu_per_1k_at_rate: Option<f64>,
    pub cpu_per_1k_at_max: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Topology {
    pub name: String,
    pub participants: Vec<Participant>,
    pub subject: String,
    /// Empty, with `ratio_note` saying why, when the subject has no results.
    pub ratios: Vec<Ratios>,
    pub ratio_note: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Results {
    pub meta: BTreeMap<String, String>,
    pub topologies: Vec<Topology>,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = fs::read_to_string(path)?;
    Ok(Some(
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?,
    ))
}

/// wrk's user + system seconds, as bash's `time` wrote them (TIMEFORMAT='%U %S').
fn wrk_cpu_seconds(dir: &Path) -> Option<f64> {
    let text = fs::read_to_string(dir.join("wrk-cpu.txt")).ok()?;
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    line.split_whitespace().map(|f| f.parse::<f64>().ok()).sum()
}

fn per_1k(cpu_seconds: f64, requests: u64) -> Option<f64> {
    (requests > 0).then(|| cpu_seconds * 1000.0 / requests as f64)
}

fn latency(o: OpenLoopReport) -> Latency {
    let cpu = o
        .usage_before
        .as_ref()
        .zip(o.usage_after.as_ref())
        .map(|(b, a)| a.cpu_seconds - b.cpu_seconds);
    Latency {
        rate: o.rate,
        connections: o.connections,
        p50_ms: o.latency.p50_us / 1000.0,
        p90_ms: o.latency.p90_us / 1000.0,
        p99_ms: o.latency.p99_us / 1000.0,
        p999_ms: o.latency.p999_us / 1000.0,
        max_ms: o.latency.max_us / 1000.0,
        mean_ms: o.latency.mean_us / 1000.0,
        scheduled: o.scheduled,
        completed: o.completed,
        non_2xx: o.non_2xx,
        errors: o.errors,
        dropped: o.dropped,
        cpu_s_per_1k: cpu.and_then(|c| per_1k(c, o.completed)),
        pacer_lateness_p99_us: o.pacer_lateness.p99_us,
        foreign_cpu_cores: o.foreign_cpu_cores,
    }
}

fn read_participant(dir: &Path, name: &str) -> Result<Participant> {
    let status =
        fs::read_to_string(dir.join("status")).unwrap_or_else(|_| "n/a: no status written".into());
    let status = status.trim();
    let available = status == "ok";
    let note = (!available).then(|| status.strip_prefix("n/a: ").unwrap_or(status).to_string());
    let throughput = match fs::read_to_string(dir.join("wrk.txt")) {
        Ok(text) if available => wrk::parse(&text).map(|w| -> Result<Throughput> {
            let before: Option<Usage> = read_json(&dir.join("usage-wrk-before.json"))?;
            let after: Option<Usage> = read_json(&dir.join("usage-wrk-after.json"))?;
            let (before, after) = (before.as_ref(), after.as_ref());
            let cpu = before
                .zip(after)
                .map(|(b, a)| a.cpu_seconds - b.cpu_seconds);
            let backend_before: Option<Usage> = read_json(&dir.join("backend-wrk-before.json"))?;
            let backend_after: Option<Usage> = read_json(&dir.join("backend-wrk-after.json"))?;
            let foreign = backend_before
                .zip(backend_after)
                .zip(wrk_cpu_seconds(dir))
                .map(|((b, a), wrk)| {
                    let machine = a.machine_busy_seconds - b.machine_busy_seconds;
                    let ours = cpu.unwrap_or(0.0) + (a.cpu_seconds - b.cpu_seconds) + wrk;
                    ((machine - ours) / w.seconds.max(1e-9)).max(0.0)
                });
            Ok(Throughput {
                rps: w.rps,
                requests: w.requests,
                seconds: w.seconds,
                non_2xx: w.non_2xx,
                socket_errors: w.socket_errors,
                cpu_seconds: cpu,
                cpu_s_per_1k: cpu.and_then(|c| per_1k(c, w.requests)),
                proxy_cpu_share: cpu.filter(|_| w.seconds > 0.0).map(|c| c / w.seconds),
                foreign_cpu_cores: foreign,
            })
        }),
        _ => None,
    }
    .transpose()?;
    let open_loop = |file: &str| -> Result<Option<Latency>> {
        if !available {
            return Ok(None);
        }
        let open: Option<OpenLoopReport> = read_json(&dir.join(file))?;
        Ok(open.map(latency))
    };
    let latency_own = open_loop("openloop.json")?;
    let latency_shared = open_loop("openloop-shared.json")?;
    let usage: Option<Usage> = if available {
        read_json(&dir.join("usage-final.json"))?
    } else {
        None
    };
    let usage = usage.filter(|u| u.processes > 0);
    Ok(Participant {
        name: name.to_string(),
        available,
        note,
        throughput,
        latency: latency_own,
        latency_shared,
        peak_rss_mib: usage.as_ref().map(|u| u.vmhwm_kib as f64 / 1024.0),
        processes: usage.map(|u| u.processes),
    })
}

fn ratio(subject: Option<f64>, peer: Option<f64>) -> Option<f64> {
    let (s, p) = (subject?, peer?);
    (p > 0.0 && s.is_finite()).then(|| s / p)
}

pub fn ratios(subject: &Participant, peer: &Participant) -> Ratios {
    let rps = |p: &Participant| p.throughput.as_ref().map(|t| t.rps);
    let p99 = |p: &Participant| p.latency.as_ref().map(|l| l.p99_ms);
    let p99_shared = |p: &Participant| p.latency_shared.as_ref().map(|l| l.p99_ms);
    let at_rate = |p: &Participant| p.latency.as_ref().and_then(|l| l.cpu_s_per_1k);
    let at_max = |p: &Participant| p.throughput.as_ref().and_then(|t| t.cpu_s_per_1k);
    Ratios {
        peer: peer.name.clone(),
        throughput: ratio(rps(subject), rps(peer)),
        p99: ratio(p99(subject), p99(peer)),
        p99_shared: ratio(p99_shared(subject), p99_shared(peer)),
        peak_rss: ratio(subject.peak_rss_mib, peer.peak_rss_mib),
        cpu_per_1k_at_rate: ratio(at_rate(subject), at_rate(peer)),
        cpu_per_1k_at_max: ratio(at_max(subject), at_max(peer)),
    }
}

fn rank(name: &str) -> (usize, String) {
    (
        ORDER.iter().position(|n| *n == name).unwrap_or(ORDER.len()),
        name.to_string(),
    )
}

pub fn topology(name: &str, mut participants: Vec<Participant>) -> Topology {
    participants.sort_by_key(|p| rank(&p.name));
    let subject = participants.iter().find(|p| p.name == SUBJECT);
    let (ratios, ratio_note) = match subject {
        Some(s) if s.available => (
            participants
                .iter()
                .filter(|p| p.name != SUBJECT && p.name != BASELINE && p.available)
                .map(|peer| ratios(s, peer))
                .collect(),
            None,
        ),
        Some(s) => (
            Vec::new(),
            Some(format!(
                "{SUBJECT} not available: {}",
                s.note.as_deref().unwrap_or("?")
            )),
        ),
        None => (Vec::new(), Some(format!("{SUBJECT} was not run"))),
    };
    Topology {
        name: name.to_string(),
        participants,
        subject: SUBJECT.to_string(),
        ratios,
        ratio_note,
    }
}

/// Reads `<dir>/<topology>/<participant>/` for every topology directory under `dir`.
pub fn collect(dir: &Path, meta: BTreeMap<String, String>) -> Result<Results> {
    let mut topologies = Vec::new();
    let mut names: Vec<_> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    // The known topologies in the order the README lists them, then any other by name.
    names.sort_by_key(|name| {
        let known = ["one-hop", "two-hop", "tls"];
        (
            known.iter().position(|k| k == name).unwrap_or(known.len()),
            name.clone(),
        )
    });
    for name in names {
        let mut participants = Vec::new();
        for entry in fs::read_dir(dir.join(&name))? {
            let entry = entry?;
            if entry.path().is_dir() {
                let participant = entry.file_name().to_string_lossy().into_owned();
                participants.push(read_participant(&entry.path(), &participant)?);
            }
        }
        if !participants.is_empty() {
            topologies.push(topology(&name, participants));
        }
    }
    Ok(Results { meta, topologies })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn latency(p99_ms: f64, cpu: f64) -> Latency {
        Latency {
            rate: 1000.0,
            connections: 16,
            p50_ms: p99_ms / 2.0,
            p90_ms: p99_ms,
            p99_ms,
            p999_ms: p99_ms * 2.0,
            max_ms: p99_ms * 3.0,
            mean_ms: p99_ms / 2.0,
            scheduled: 10_000,
            completed: 10_000,
            non_2xx: 0,
            errors: 0,
            dropped: 0,
            cpu_s_per_1k: Some(cpu),
            pacer_lateness_p99_us: 5.0,
            foreign_cpu_cores: Some(0.0),
        }
    }

    /// Shared-core p99 is a quarter of own-core p99 unless a test sets it.
    pub(crate) fn participant(
        name: &str,
        rps: f64,
        p99_ms: f64,
        rss: f64,
        cpu: f64,
    ) -> Participant {
        Participant {
            name: name.into(),
            available: true,
            note: None,
            throughput: Some(Throughput {
                rps,
                requests: (rps * 10.0) as u64,
                seconds: 10.0,
                non_2xx: 0,
                socket_errors: 0,
                cpu_seconds: Some(cpu * rps / 100.0),
                cpu_s_per_1k: Some(cpu / 10.0),
                proxy_cpu_share: Some(1.0),
                foreign_cpu_cores: Some(0.0),
            }),
            latency: Some(latency(p99_ms, cpu)),
            latency_shared: Some(latency(p99_ms / 4.0, cpu)),
            peak_rss_mib: Some(rss),
            processes: Some(1),
        }
    }

    #[test]
    fn ratios_are_subject_over_peer_and_skip_the_baseline() {
        let topo = topology(
            "one-hop",
            vec![
                participant("weft", 40_000.0, 0.2, 10.0, 0.02),
                participant("envoy", 20_000.0, 0.4, 40.0, 0.05),
                participant("direct", 80_000.0, 0.1, 0.0, 0.0),
            ],
        );
        assert_eq!(
            topo.participants
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["direct", "envoy", "weft"]
        );
        assert_eq!(topo.ratios.len(), 1);
        let r = &topo.ratios[0];
        assert_eq!(r.peer, "envoy");
        assert_eq!(r.throughput, Some(2.0));
        assert_eq!(r.p99, Some(0.5));
        assert_eq!(r.p99_shared, Some(0.5));
        assert_eq!(r.peak_rss, Some(0.25));
        assert!((r.cpu_per_1k_at_rate.expect("cpu") - 0.4).abs() < 1e-12);
    }

    #[test]
    fn unavailable_subject_gives_a_reason_not_ratios() {
        let mut weft = participant("weft", 1.0, 1.0, 1.0, 1.0);
        weft.available = false;
        weft.note = Some("admin /ready never answered".into());
        let topo = topology(
            "two-hop",
            vec![participant("nginx", 1.0, 1.0, 1.0, 1.0), weft],
        );
        assert!(topo.ratios.is_empty());
        assert_eq!(
            topo.ratio_note.as_deref(),
            Some("weft not available: admin /ready never answered")
        );
    }

    #[test]
    fn missing_peer_numbers_give_no_ratio_rather_than_a_wrong_one() {
        let mut peer = participant("haproxy", 1.0, 1.0, 1.0, 1.0);
        peer.peak_rss_mib = None;
        peer.latency.as_mut().expect("latency").p99_ms = 0.0;
        let r = ratios(&participant("weft", 2.0, 1.0, 1.0, 1.0), &peer);
        assert_eq!(r.throughput, Some(2.0));
        assert_eq!(r.peak_rss, None);
        assert_eq!(r.p99, None);
    }

    #[test]
    fn shared_core_p99_ratio_is_taken_from_the_shared_phase_only() {
        let mut weft = participant("weft", 1.0, 0.2, 1.0, 1.0);
        weft.latency_shared.as_mut().expect("shared").p99_ms = 0.1;
        let mut envoy = participant("envoy", 1.0, 0.4, 1.0, 1.0);
        envoy.latency_shared.as_mut().expect("shared").p99_ms = 0.25;
        let r = ratios(&weft, &envoy);
        assert_eq!(r.p99, Some(0.5));
        assert_eq!(r.p99_shared, Some(0.4));
        // A peer without the shared phase (an older run) keeps its own-core ratio.
        envoy.latency_shared = None;
        let r = ratios(&weft, &envoy);
        assert_eq!(r.p99, Some(0.5));
        assert_eq!(r.p99_shared, None);
    }

    /// An `open-loop --out` file with the given p99, as the generator writes it.
    fn open_loop_json(p99_us: f64) -> String {
        let summary = |p99: f64| {
            serde_json::json!({"count": 10000, "min_us": 10.0, "mean_us": 20.0, "p50_us": 20.0,
                "p90_us": 30.0, "p99_us": p99, "p999_us": p99 * 2.0, "max_us": p99 * 3.0})
        };
        serde_json::json!({
            "url": "http://127.0.0.1:1/", "rate": 1000.0, "connections": 16,
            "warmup_s": 1.0, "duration_s": 10.0, "scheduled": 10000, "completed": 10000,
            "non_2xx": 0, "errors": 0, "dropped": 0, "reconnects": 0, "achieved_rps": 1000.0,
            "latency": summary(p99_us), "pacer_lateness": summary(5.0),
            "usage_before": null, "usage_after": null, "foreign_cpu_cores": 0.0
        })
        .to_string()
    }

    #[test]
    fn shared_phase_is_read_when_present_and_absent_in_older_runs() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("weft-loadgen-report-{}", std::process::id()));
        fs::create_dir_all(&dir)?;
        fs::write(dir.join("status"), "ok\n")?;
        fs::write(dir.join("openloop.json"), open_loop_json(130.0))?;
        let old = read_participant(&dir, "nginx");
        fs::write(dir.join("openloop-shared.json"), open_loop_json(68.0))?;
        let new = read_participant(&dir, "nginx");
        fs::remove_dir_all(&dir)?;
        let (old, new) = (old?, new?);
        assert_eq!(old.latency.as_ref().map(|l| l.p99_ms), Some(0.13));
        assert!(old.latency_shared.is_none());
        assert_eq!(new.latency.as_ref().map(|l| l.p99_ms), Some(0.13));
        assert_eq!(new.latency_shared.as_ref().map(|l| l.p99_ms), Some(0.068));
        // results.json written before the field existed still deserializes.
        let mut value = serde_json::to_value(&old)?;
        value
            .as_object_mut()
            .expect("object")
            .remove("latency_shared");
        let back: Participant = serde_json::from_value(value)?;
        assert!(back.latency_shared.is_none());
        Ok(())
    }
}
