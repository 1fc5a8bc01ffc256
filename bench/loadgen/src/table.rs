//! The human side of results.json: one table per topology and Weft's ratios to each peer,
//! with unavailable participants and failed requests shown rather than hidden.

use std::fmt::Write;

use crate::report::{Participant, Results, Topology};

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
    let open = p
        .latency
        .as_ref()
        .map_or(0, |l| l.non_2xx + l.errors + l.dropped);
    let mut notes = String::new();
    if wrk + open > 0 {
        let _ = write!(notes, "  failures: max {wrk}, rate {open}");
    }
    // Above a tenth of a core, load from elsewhere may have moved the numbers.
    let busy = |cores: Option<f64>| cores.filter(|c| *c > 0.1).map(|c| format!("{c:.2}"));
    let at_max = busy(p.throughput.as_ref().and_then(|t| t.foreign_cpu_cores));
    let at_rate = busy(p.latency.as_ref().and_then(|l| l.foreign_cpu_cores));
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
    let _ = writeln!(
        out,
        "  {:<9} {:>9} {:>6} {:>9} {:>8} {:>8} {:>8} {:>9} {:>8}{}",
        p.name,
        num(t.map(|t| t.rps), 0),
        num(t.and_then(|t| t.proxy_cpu_share).map(|s| s * 100.0), 0),
        num(t.and_then(|t| t.cpu_s_per_1k), 4),
        num(l.map(|l| l.p50_ms), 3),
        num(l.map(|l| l.p99_ms), 3),
        num(l.map(|l| l.p999_ms), 3),
        num(l.and_then(|l| l.cpu_s_per_1k), 4),
        num(p.peak_rss_mib, 1),
        notes(p),
    );
}

fn topology(out: &mut String, topo: &Topology, title: &str, rate: f64) {
    let _ = writeln!(out, "{title}");
    let _ = writeln!(
        out,
        "  {:<9} {:>9} {:>6} {:>9} {:>8} {:>8} {:>8} {:>9} {:>8}",
        "", "max", "proxy", "CPU s/1k", "p50", "p99", "p99.9", "CPU s/1k", "peak RSS"
    );
    let _ = writeln!(
        out,
        "  {:<9} {:>9} {:>6} {:>9} {:>8} {:>8} {:>8} {:>9} {:>8}",
        "",
        "req/s",
        "CPU%",
        "@max",
        "ms",
        "ms",
        "ms",
        format!("@{rate:.0}/s"),
        "MiB"
    );
    for p in &topo.participants {
        participant_row(out, p);
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
            "    vs {:<8} throughput {:>7}  p99 {:>7}  peak RSS {:>7}  CPU/1k@{rate:.0}/s {:>7}  CPU/1k@max {:>7}",
            r.peer,
            times(r.throughput),
            times(r.p99),
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
        other => other.to_string(),
    }
}

pub fn render(results: &Results) -> String {
    let mut out = String::new();
    for topo in &results.topologies {
        let rate = topo
            .participants
            .iter()
            .find_map(|p| p.latency.as_ref().map(|l| l.rate))
            .unwrap_or(0.0);
        topology(&mut out, topo, &title(&topo.name), rate);
        out.push('\n');
    }
    out
}
