//! The human side of results.json: one table per topology and Weft's ratios to each peer,
//! with unavailable participants and failed requests shown rather than hidden. Latency
//! has two column groups, one per placement (see bench/proxy/README.md): own core and
//! shared core.

use std::fmt::Write;

use crate::report::{Latency, Participant, Results, Topology};

/// The CPUs the run pinned to, for the column-group labels (from results.json's meta).
struct Cpus {
    proxy: String,
    load: String,
}

fn num(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.decimals$}"))
}

fn times(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_string(), |v| format!("{v:.2}x"))
}

fn notes(p: &Participant) -> String {
    let wrk = p
        .throughput
        .as_ref()
        .map_or(0, |t| t.non_2xx + t.socket_errors);
    let failed = |l: Option<&Latency>| l.map_or(0, |l| l.non_2xx + l.errors + l.dropped);
    let open = failed(p.latency.as_ref()) + failed(p.latency_shared.as_ref());
    let mut notes = String::new();
    if wrk + open > 0 {
        let _ = write!(notes, "  failures: max {wrk}, rate {open}");
    }
    // Above a tenth of a core, load from elsewhere may have moved the numbers.
    let busy = |cores: Option<f64>| cores.filter(|c| *c > 0.1).map(|c| format!("{c:.2}"));
    let at_max = busy(p.throughput.as_ref().and_then(|t| t.foreign_cpu_cores));
    // Either placement counts: both are open-loop windows at the rate.
    let at_rate = busy(
        [p.latency.as_ref(), p.latency_shared.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|l| l.foreign_cpu_cores)
            .reduce(f64::max),
    );
    if at_max.is_some() || at_rate.is_some() {
        let show = |c: Option<String>| c.unwrap_or_else(|| "-".into());
        let _ = write!(
            notes,
            "  other load (cores) max {} rate {}",
            show(at_max),
            show(at_rate)
        );
    }
    notes
}

/// Name, then: max req/s, CPU %, CPU s/1k@max | own p50, p99, p99.9, CPU s/1k@rate |
/// shared p50, p99, p99.9 | peak RSS.
fn columns(c: [&str; 12]) -> String {
    format!(
        "  {:<9} {:>9} {:>6} {:>9} {:>8} {:>8} {:>8} {:>9} {:>10} {:>10} {:>10} {:>8}",
        c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11]
    )
}

fn participant_row(out: &mut String, p: &Participant) {
    if !p.available {
        let _ = writeln!(
            out,
            "  {:<9} not available: {}",
            p.name,
            p.note.as_deref().unwrap_or("?")
        );
        return;
    }
    let t = p.throughput.as_ref();
    let l = p.latency.as_ref();
    let s = p.latency_shared.as_ref();
    let row = columns([
        &p.name,
        &num(t.map(|t| t.rps), 0),
        &num(t.and_then(|t| t.proxy_cpu_share).map(|s| s * 100.0), 0),
        &num(t.and_then(|t| t.cpu_s_per_1k), 4),
        &num(l.map(|l| l.p50_ms), 3),
        &num(l.map(|l| l.p99_ms), 3),
        &num(l.map(|l| l.p999_ms), 3),
        &num(l.and_then(|l| l.cpu_s_per_1k), 4),
        &num(s.map(|s| s.p50_ms), 3),
        &num(s.map(|s| s.p99_ms), 3),
        &num(s.map(|s| s.p999_ms), 3),
        &num(p.peak_rss_mib, 1),
    ]);
    let _ = writeln!(out, "{row}{}", notes(p));
}

fn topology(out: &mut String, topo: &Topology, title: &str, rate: f64, cpus: &Cpus) {
    let _ = writeln!(out, "{title}");
    // Group labels over the columns they cover: 27 characters for wrk's three, 37 for the
    // own-core four, 33 for the shared-core three (each including the separating spaces).
    let _ = writeln!(
        out,
        "  {:<9} {:-^26} {:-^36} {:-^32}",
        "",
        " wrk, closed loop ",
        format!(" own core (proxy on CPU {}) ", cpus.proxy),
        format!(" shared core (all on CPU {}) ", cpus.load),
    );
    let head = columns([
        "", "max", "proxy", "CPU s/1k", "p50", "p99", "p99.9", "CPU s/1k", "p50", "p99", "p99.9",
        "peak RSS",
    ]);
    let _ = writeln!(out, "{head}");
    let at_rate = format!("@{rate:.0}/s");
    let units = columns([
        "", "req/s", "CPU%", "@max", "ms", "ms", "ms", &at_rate, "ms", "ms", "ms", "MiB",
    ]);
    let _ = writeln!(out, "{units}");
    for p in &topo.participants {
        participant_row(out, p);
    }
    if topo
        .participants
        .iter()
        // Older runs (no shared phase) measured direct with the backend on the load CPU.
        .any(|p| p.name == "direct" && p.latency_shared.is_some())
    {
        let _ = writeln!(
            out,
            "  direct, own core: the backend alone on CPU {}, i.e. 2 CPU crossings per request \
             (a proxy on its own core has 4)",
            cpus.proxy
        );
    }
    let _ = writeln!(
        out,
        "  {} ÷ peer (throughput: higher is better; the rest: lower is better):",
        topo.subject
    );
    if let Some(note) = &topo.ratio_note {
        let _ = writeln!(out, "    n/a — {note}");
    }
    for r in &topo.ratios {
        let _ = writeln!(
            out,
            "    vs {:<8} throughput {:>6}  p99 own {:>6}  p99 shared {:>6}  peak RSS {:>6}  \
             CPU/1k@{rate:.0}/s {:>6}  CPU/1k@max {:>6}",
            r.peer,
            times(r.throughput),
            times(r.p99),
            times(r.p99_shared),
            times(r.peak_rss),
            times(r.cpu_per_1k_at_rate),
            times(r.cpu_per_1k_at_max),
        );
    }
}

fn title(name: &str) -> String {
    match name {
        "one-hop" => "(a) one hop: wrk/loadgen -> proxy -> backend, HTTP/1.1 throughout".into(),
        "two-hop" => {
            "(b) two hops: client -> proxy -> (HTTP/2 cleartext) -> proxy -> backend (HTTP/1.1)"
                .into()
        }
        "tls" => "(c) TLS upstream: wrk/loadgen -> proxy -> (HTTP/1.1 in TLS, backend's \
                  certificate verified) -> backend; direct: wrk/loadgen -> backend over TLS"
            .into(),
        other => other.to_string(),
    }
}

pub fn render(results: &Results) -> String {
    let cpu = |key: &str| results.meta.get(key).cloned().unwrap_or_else(|| "?".into());
    let cpus = Cpus {
        proxy: cpu("proxy_cpu"),
        load: cpu("load_cpu"),
    };
    let mut out = String::new();
    for topo in &results.topologies {
        let rate = topo
            .participants
            .iter()
            .find_map(|p| p.latency.as_ref().map(|l| l.rate))
            .unwrap_or(0.0);
        topology(&mut out, topo, &title(&topo.name), rate, &cpus);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::report::{self, tests::participant};

    fn results() -> Results {
        let mut weft = participant("weft", 40_000.0, 0.2, 10.0, 0.02);
        weft.latency_shared.as_mut().expect("shared").p99_ms = 0.114;
        let mut envoy = participant("envoy", 20_000.0, 0.4, 40.0, 0.05);
        envoy.latency_shared.as_mut().expect("shared").p99_ms = 0.264;
        let direct = participant("direct", 80_000.0, 0.13, 0.0, 0.0);
        let meta = BTreeMap::from([
            ("proxy_cpu".to_string(), "1".to_string()),
            ("load_cpu".to_string(), "0".to_string()),
        ]);
        Results {
            meta,
            topologies: vec![report::topology("one-hop", vec![weft, envoy, direct])],
        }
    }

    #[test]
    fn both_placements_are_labelled_shown_and_compared() {
        let text = render(&results());
        assert!(text.contains(" own core (proxy on CPU 1) "), "{text}");
        assert!(text.contains(" shared core (all on CPU 0) "), "{text}");
        let weft = text
            .lines()
            .find(|l| l.trim_start().starts_with("weft "))
            .expect("weft row");
        let cells: Vec<&str> = weft.split_whitespace().collect();
        // own p50, p99, p99.9 then CPU s/1k@rate, then shared p50, p99, p99.9.
        assert_eq!(
            cells[4..11],
            [
                "0.100", "0.200", "0.400", "0.0200", "0.025", "0.114", "0.100"
            ]
        );
        let vs_envoy = text
            .lines()
            .find(|l| l.contains("vs envoy"))
            .expect("ratio line");
        assert!(vs_envoy.contains("p99 own  0.50x"), "{vs_envoy}");
        assert!(vs_envoy.contains("p99 shared  0.43x"), "{vs_envoy}");
        assert!(text.contains("direct, own core: the backend alone on CPU 1"));
        for line in text.lines() {
            assert!(line.chars().count() < 130, "too wide: {line}");
        }
    }
}
