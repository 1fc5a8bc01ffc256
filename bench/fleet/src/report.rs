//! The run's figures as written to results.json, and the table printed from them, with
//! the anchors of issue 5: istiod needs about 1 vCPU and 1.5 GB at this size; Weft aims
//! for at most 150 MB and convergence within 1 s.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// Memory target of issue 5, in bytes (150 MB).
pub const RSS_TARGET_BYTES: f64 = 150e6;
/// Convergence target of issue 5: a change reaches every proxy within this (p99).
pub const CONVERGENCE_TARGET_S: f64 = 1.0;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: usize,
    /// The first proxy: for a change, roughly the control plane's detection and compute
    /// time before anything was sent.
    pub min_s: f64,
    pub p50_s: f64,
    pub p99_s: f64,
    pub max_s: f64,
}

impl Latency {
    /// Nearest-rank percentiles of `samples` (seconds); None when empty.
    pub fn of(mut samples: Vec<f64>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let i = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[i - 1]
        };
        Some(Self {
            count: samples.len(),
            min_s: samples[0],
            p50_s: rank(0.50),
            p99_s: rank(0.99),
            max_s: samples[samples.len() - 1],
        })
    }
}

/// One phase: the initial full push, or one change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// What changed (for the changes).
    pub what: String,
    /// Proxies waited for: every live proxy for the full push; for a change, those
    /// subscribed to a resource it touches.
    pub expected: usize,
    /// Of those, how many got there before the phase ended (a change that times out is
    /// given `SETTLE_MAX` more, so a slow convergence is still measured)…
    pub converged: usize,
    /// …and how many within the timeout.
    pub converged_in_time: usize,
    pub timeout_s: f64,
    /// Per proxy, from the phase's start (first connect, or the file write) to its ACK of
    /// the response that completed it.
    pub latency: Option<Latency>,
    /// Control-plane CPU from the phase's start until it went quiet again.
    pub cpu_s: Option<f64>,
    /// Wall time from the phase's start until the control plane went quiet.
    pub quiet_after_s: f64,
    /// Responses and bytes (protobuf-encoded responses) received by the whole fleet in
    /// the phase, per type.
    pub responses: BTreeMap<String, u64>,
    pub bytes: BTreeMap<String, u64>,
    /// For a change: proxies that received a type other than the one the change is about.
    pub proxies_with_other_pushes: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub mode: String,
    pub proxies: usize,
    /// Streams that failed or could not open (each proxy then reconnects with Envoy's
    /// backoff), and on how many proxies.
    pub stream_failures: usize,
    pub proxies_with_failures: usize,
    /// The first few distinct failure messages, verbatim.
    pub failures: Vec<String>,
    /// Why the run stopped waiting early (the memory guard), if it did.
    pub aborted: Option<String>,
    pub services: usize,
    pub endpoints: usize,
    pub namespaces: usize,
    pub virtual_services: usize,
    pub destination_rules: usize,
    /// EDS and RDS names proxy 0 subscribed to.
    pub eds_per_proxy: usize,
    pub rds_per_proxy: usize,
    pub control_pid: Option<u32>,
    /// Control-plane CPU per second with the mesh loaded and no proxy (the directory scan).
    pub idle_cpu_per_s: Option<f64>,
    /// CPUs busy on average, during the fleet's run, with work other than the control
    /// plane and the fleet (other processes on the machine): noise in every figure.
    pub other_load_cpus: Option<f64>,
    pub rss_loaded_mib: Option<f64>,
    pub rss_synced_mib: Option<f64>,
    pub hwm_mib: Option<f64>,
    pub sync: Phase,
    pub endpoint_change: Option<Phase>,
    pub vs_change: Option<Phase>,
    /// The rounds after the first (`--rounds`), whose changes are the two above.
    #[serde(default)]
    pub later_rounds: Vec<Round>,
    /// Resident memory after each round: whether pushes leave memory behind.
    #[serde(default)]
    pub rss_after_rounds_mib: Vec<f64>,
}

/// One endpoint change followed by one VirtualService change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Round {
    pub endpoint_change: Option<Phase>,
    pub vs_change: Option<Phase>,
}

fn traffic(p: &Phase) -> String {
    p.bytes
        .iter()
        .filter(|(_, b)| **b > 0)
        .map(|(t, b)| {
            let n = p.responses.get(t).copied().unwrap_or(0);
            format!(
                "{t} {} resp, {:.1} MiB ({:.0} KiB each)",
                n,
                *b as f64 / 1048576.0,
                *b as f64 / 1024.0 / n.max(1) as f64
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn latency(p: &Phase) -> String {
    match &p.latency {
        Some(l) => format!(
            "min {:.3} s  p50 {:.3} s  p99 {:.3} s  max {:.3} s",
            l.min_s, l.p50_s, l.p99_s, l.max_s
        ),
        None => "none converged".into(),
    }
}

/// The verdict over every round's change of one kind: the worst p99 decides.
fn convergence(phases: &[&Option<Phase>]) -> String {
    let run: Vec<&Phase> = phases.iter().filter_map(|p| p.as_ref()).collect();
    if run.is_empty() {
        return "not run".into();
    }
    if let Some(p) = run.iter().find(|p| p.converged_in_time < p.expected) {
        return format!(
            "{}/{} proxies converged within {:.0} s: MISSED",
            p.converged_in_time, p.expected, p.timeout_s
        );
    }
    let worst = run
        .iter()
        .filter_map(|p| p.latency.as_ref())
        .max_by(|a, b| a.p99_s.total_cmp(&b.p99_s));
    match worst {
        Some(l) => format!(
            "p99 {:.3} s (max {:.3} s){}: {}",
            l.p99_s,
            l.max_s,
            if run.len() > 1 {
                format!(", the worst of {} rounds", run.len())
            } else {
                String::new()
            },
            verdict(l.p99_s <= CONVERGENCE_TARGET_S)
        ),
        None => "none converged: MISSED".into(),
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.1} {unit}"))
}

pub fn table(r: &Results) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "weft control — control-plane benchmark ({}, {} proxies)",
        r.mode, r.proxies
    );
    let row = |o: &mut String, k: &str, v: String| {
        let _ = writeln!(o, "  {k:<22} {v}");
    };
    row(
        &mut o,
        "proxies",
        format!(
            "{} ({} stream failures on {} proxies, retried with Envoy's backoff)",
            r.proxies, r.stream_failures, r.proxies_with_failures
        ),
    );
    if let Some(load) = r.other_load_cpus {
        row(
            &mut o,
            "other load",
            format!(
                "{load:.2} CPUs busy on average with other processes during the run{}",
                if load >= 0.2 {
                    " (figures disturbed: rerun on a quiet machine)"
                } else {
                    ""
                }
            ),
        );
    }
    if let Some(why) = &r.aborted {
        row(&mut o, "ABORTED", why.clone());
    }
    row(
        &mut o,
        "mesh",
        format!(
            "{} services, {} endpoints, {} VS, {} DR, {} namespaces",
            r.services, r.endpoints, r.virtual_services, r.destination_rules, r.namespaces
        ),
    );
    row(
        &mut o,
        "per proxy",
        format!(
            "{} EDS clusters, {} RDS routes",
            r.eds_per_proxy, r.rds_per_proxy
        ),
    );
    row(
        &mut o,
        "RSS",
        format!(
            "peak {} (after sync {}; mesh loaded, no proxy {})",
            opt(r.hwm_mib, "MiB"),
            opt(r.rss_synced_mib, "MiB"),
            opt(r.rss_loaded_mib, "MiB")
        ),
    );
    if !r.rss_after_rounds_mib.is_empty() {
        let each: Vec<String> = r
            .rss_after_rounds_mib
            .iter()
            .map(|m| format!("{m:.1}"))
            .collect();
        row(
            &mut o,
            "  after each round",
            format!("{} MiB", each.join(", ")),
        );
    }
    let s = &r.sync;
    row(
        &mut o,
        "full push CPU",
        format!(
            "{} over {:.1} s until quiet (idle, no proxy: {})",
            opt(s.cpu_s, "s"),
            s.quiet_after_s,
            r.idle_cpu_per_s
                .map_or("n/a".into(), |v| format!("{:.3} CPU s/s", v))
        ),
    );
    if r.idle_cpu_per_s.is_some_and(|v| v >= 0.9) {
        row(
            &mut o,
            "NOTE",
            "the control plane keeps a CPU busy with no proxy at all: quiet cannot be told \
             from busy by CPU, so a phase may overlap the previous one's pushes"
                .into(),
        );
    }
    let sync = match &s.latency {
        Some(l) if s.converged == s.expected => format!(
            "{:.3} s ({}/{} proxies; per proxy {})",
            l.max_s,
            s.converged,
            s.expected,
            latency(s)
        ),
        _ => format!(
            "NOT REACHED: {}/{} proxies in sync when the run stopped waiting at {:.0} s \
             (per proxy {})",
            s.converged,
            s.expected,
            s.quiet_after_s,
            latency(s)
        ),
    };
    row(&mut o, "time to full sync", sync);
    row(&mut o, "  received", traffic(s));
    for (name, phase, other) in [
        ("endpoint change", &r.endpoint_change, "non-EDS"),
        ("VS change", &r.vs_change, "non-RDS"),
    ] {
        let Some(p) = phase else {
            row(&mut o, name, "not run".into());
            continue;
        };
        row(
            &mut o,
            name,
            format!(
                "{}  ({}/{} proxies within {:.0} s{}; {} with {} pushes; CPU {})",
                latency(p),
                p.converged_in_time,
                p.expected,
                p.timeout_s,
                if p.converged > p.converged_in_time {
                    format!(", {} more later", p.converged - p.converged_in_time)
                } else {
                    String::new()
                },
                p.proxies_with_other_pushes,
                other,
                opt(p.cpu_s, "s")
            ),
        );
        row(&mut o, "  changed", p.what.clone());
        row(&mut o, "  received", traffic(p));
    }
    for (i, round) in r.later_rounds.iter().enumerate() {
        let short = |p: &Option<Phase>| match p {
            Some(p) => match &p.latency {
                Some(l) => format!(
                    "p50 {:.3} s  p99 {:.3} s ({}/{})",
                    l.p50_s, l.p99_s, p.converged_in_time, p.expected
                ),
                None => "none converged".into(),
            },
            None => "not run".into(),
        };
        row(
            &mut o,
            &format!("round {}", i + 2),
            format!(
                "endpoint {};  VS {}",
                short(&round.endpoint_change),
                short(&round.vs_change)
            ),
        );
    }
    let _ = writeln!(o, "anchors (issue 5)");
    row(&mut o, "istiod at this size", "~1 vCPU, ~1.5 GB".into());
    if let Some(cpu) = s.cpu_s
        && s.quiet_after_s > 0.0
    {
        row(
            &mut o,
            "weft full push",
            format!(
                "{:.2} CPU on average over {:.1} s",
                cpu / s.quiet_after_s,
                s.quiet_after_s
            ),
        );
    }
    match r.hwm_mib {
        Some(hwm) => row(
            &mut o,
            "memory ≤150 MB",
            format!(
                "peak {:.1} MiB = {:.1} MB: {}",
                hwm,
                hwm * 1048576.0 / 1e6,
                verdict(hwm * 1048576.0 <= RSS_TARGET_BYTES)
            ),
        ),
        None => row(&mut o, "memory ≤150 MB", "not sampled".into()),
    }
    let eds: Vec<&Option<Phase>> = std::iter::once(&r.endpoint_change)
        .chain(r.later_rounds.iter().map(|round| &round.endpoint_change))
        .collect();
    let rds: Vec<&Option<Phase>> = std::iter::once(&r.vs_change)
        .chain(r.later_rounds.iter().map(|round| &round.vs_change))
        .collect();
    for (name, phases) in [
        ("convergence ≤1 s (EDS)", eds),
        ("convergence ≤1 s (RDS)", rds),
    ] {
        row(&mut o, name, convergence(&phases));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let l = Latency::of((1..=100).map(f64::from).collect()).unwrap();
        assert_eq!(
            (l.p50_s, l.p99_s, l.max_s, l.count),
            (50.0, 99.0, 100.0, 100)
        );
        assert_eq!(l.min_s, 1.0);
        let one = Latency::of(vec![0.25]).unwrap();
        assert_eq!((one.p50_s, one.p99_s), (0.25, 0.25));
        assert!(Latency::of(Vec::new()).is_none());
    }

    #[test]
    fn verdicts_follow_the_numbers() {
        let change = |p99: f64| Phase {
            expected: 2,
            converged: 2,
            converged_in_time: 2,
            latency: Some(Latency {
                count: 2,
                min_s: p99,
                p50_s: p99,
                p99_s: p99,
                max_s: p99,
            }),
            ..Default::default()
        };
        let r = Results {
            proxies: 2,
            hwm_mib: Some(200.0),
            endpoint_change: Some(change(0.4)),
            vs_change: Some(change(1.5)),
            ..Default::default()
        };
        let t = table(&r);
        assert!(t.contains("peak 200.0 MiB = 209.7 MB: MISSED"), "{t}");
        assert!(t.contains("p99 0.400 s (max 0.400 s): met"), "{t}");
        assert!(t.contains("p99 1.500 s (max 1.500 s): MISSED"), "{t}");
        // A later round's slower change decides the verdict.
        let r = Results {
            later_rounds: vec![Round {
                endpoint_change: Some(change(1.2)),
                vs_change: Some(change(0.3)),
            }],
            rss_after_rounds_mib: vec![180.0, 190.5],
            ..r
        };
        let t = table(&r);
        assert!(
            t.contains("p99 1.200 s (max 1.200 s), the worst of 2 rounds: MISSED"),
            "{t}"
        );
        assert!(t.contains("180.0, 190.5 MiB"), "{t}");
        assert!(t.contains("round 2"), "{t}");
    }
}
