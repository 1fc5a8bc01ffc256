//! The scenario driver: starts the fleet, waits for every proxy to be in sync (the initial
//! full push), then makes two changes to the mesh directory — one endpoint's IP in one
//! EndpointSlice, one VirtualService's canary weights — and times each from the file write
//! to each affected proxy's ACK of the response showing it. Between phases it waits for
//! the control plane to go quiet, sampling its CPU and memory from /proc.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use weft_xds::envoy_types::pb::envoy::config::core::v3::Node;

use crate::mesh::{Mesh, Params, write_atomic};
use crate::proxy::{self, Event, Kind, Probe, ProxySpec, Subscriptions};
use crate::report::{Latency, Phase, Results, Round};
use crate::scenario::{endpoint_probe, node, placements, weight_probe};
use crate::usage::{Sample, Sampler};
use crate::yaml;

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub dir: PathBuf,
    /// `HOST:PORT` of the control plane's ADS server.
    pub xds: String,
    pub proxies: usize,
    /// Proxies are pods of the first this many namespaces of the mesh (None: all).
    pub namespaces: Option<usize>,
    pub delta: bool,
    pub control_pid: Option<u32>,
    pub sync_timeout: Duration,
    pub change_timeout: Duration,
    /// Rounds of (endpoint change, VirtualService change); at least one.
    pub rounds: u32,
    pub settle_max: Duration,
    /// The run stops waiting (and reports what it has) once the control plane's RSS
    /// exceeds this, so a runaway control plane cannot take the machine down.
    pub max_control_rss_mib: u64,
    pub out: Option<PathBuf>,
}

struct Ack {
    kind: Kind,
    version: String,
    at: Instant,
    bytes: usize,
}

/// What the driver has heard from the fleet.
struct Fleet {
    events: mpsc::UnboundedReceiver<Event>,
    nodes: Vec<String>,
    acks: Vec<Vec<Ack>>,
    synced: Vec<Option<Instant>>,
    /// Stream failures per proxy, and the first few distinct messages.
    stream_failures: Vec<usize>,
    failure_messages: Vec<String>,
    probe_done: Vec<Option<(u64, Instant)>>,
    subscriptions: Vec<Arc<Subscriptions>>,
    sampler: Sampler,
    /// Control-plane CPU seconds per second with nothing to do (its directory scan).
    idle_rate: f64,
    max_rss_kib: u64,
    /// Why the run stopped waiting early, if it did.
    aborted: Option<String>,
    last_progress: Instant,
    started: Instant,
    /// When the last response was ACKed (quiet means none for a while, too).
    last_ack: Instant,
}

impl Fleet {
    fn apply(&mut self, event: Event) {
        match event {
            Event::Acked {
                proxy,
                kind,
                version,
                bytes,
                at,
            } => {
                self.last_ack = self.last_ack.max(at);
                self.acks[proxy].push(Ack {
                    kind,
                    version,
                    at,
                    bytes,
                });
            }
            Event::Synced { proxy, at } => self.synced[proxy] = Some(at),
            Event::ProbeDone { proxy, probe, at } => self.probe_done[proxy] = Some((probe, at)),
            Event::StreamEnded { proxy, error } => {
                self.stream_failures[proxy] += 1;
                if self.failure_messages.len() < 5 && !self.failure_messages.contains(&error) {
                    eprintln!("weft-fleet: proxy {proxy} ({}): {error}", self.nodes[proxy]);
                    self.failure_messages.push(error);
                }
            }
        }
    }

    /// Once a second: a progress line every 10 s, and the memory guard.
    fn tick(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.last_progress) < Duration::from_secs(10) {
            return;
        }
        self.last_progress = now;
        let sample = self.sampler.sample();
        eprintln!(
            "weft-fleet: [{:5.0} s] {}/{} proxies in sync, {} stream failures{}",
            now.duration_since(self.started).as_secs_f64(),
            self.synced.iter().filter(|s| s.is_some()).count(),
            self.nodes.len(),
            self.stream_failures.iter().sum::<usize>(),
            sample.map_or(String::new(), |s| format!(
                "; control plane {:.1} CPU s, RSS {:.0} MiB",
                s.cpu_s,
                mib(s.rss_kib)
            )),
        );
        if let Some(s) = sample
            && s.rss_kib > self.max_rss_kib
            && self.aborted.is_none()
        {
            let why = format!(
                "control-plane RSS {:.0} MiB exceeded the {:.0} MiB guard",
                mib(s.rss_kib),
                mib(self.max_rss_kib)
            );
            eprintln!("weft-fleet: {why}; stopping the run");
            self.aborted = Some(why);
        }
    }

    /// Takes in events until `done` holds, `deadline` passes or the run is aborted; says
    /// whether `done` held.
    async fn pump_until(&mut self, deadline: Instant, done: impl Fn(&Self) -> bool) -> bool {
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        loop {
            if done(self) {
                return true;
            }
            if self.aborted.is_some() {
                return false;
            }
            tokio::select! {
                event = self.events.recv() => match event {
                    Some(e) => self.apply(e),
                    None => return done(self),
                },
                _ = ticks.tick() => self.tick(),
                _ = tokio::time::sleep_until(deadline) => return done(self),
            }
        }
    }

    async fn pump_for(&mut self, d: Duration) {
        self.pump_until(Instant::now() + d, |_| false).await;
    }

    /// Waits, taking in events, until no response arrived for a second and the control
    /// plane's CPU over the last second is back to its idle rate (plus 0.05 CPU s/s of
    /// slack), or `max` passed.
    async fn quiesce(&mut self, max: Duration) -> Option<Sample> {
        if !self.sampler.enabled() {
            self.pump_for(Duration::from_secs(1)).await;
            return None;
        }
        let deadline = Instant::now() + max;
        let window = Duration::from_secs(1);
        let mut history: VecDeque<(Instant, f64)> = VecDeque::new();
        loop {
            if self.aborted.is_some() {
                return self.sampler.sample();
            }
            self.pump_for(Duration::from_millis(100)).await;
            let now = Instant::now();
            let s = self.sampler.sample()?;
            history.push_back((now, s.cpu_s));
            while history
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > window)
            {
                history.pop_front();
            }
            if let (Some((t0, c0)), true) = (history.front(), history.len() >= 9) {
                let rate = (s.cpu_s - c0) / now.duration_since(*t0).as_secs_f64();
                if rate <= self.idle_rate + 0.05 && now.duration_since(self.last_ack) >= window {
                    return Some(s);
                }
            }
            if now >= deadline {
                eprintln!("weft-fleet: control plane not quiet after {max:?}; going on");
                return Some(s);
            }
        }
    }

    /// Responses and bytes per type, and the proxies that got a type other than `only`,
    /// between `from` and `to`.
    fn traffic(
        &self,
        from: Instant,
        to: Instant,
        only: Option<Kind>,
    ) -> (BTreeMap<String, u64>, BTreeMap<String, u64>, usize) {
        let mut responses: BTreeMap<String, u64> =
            Kind::ALL.iter().map(|k| (k.label().into(), 0)).collect();
        let mut bytes = responses.clone();
        let mut others = 0;
        for acks in &self.acks {
            let mut other = false;
            for a in acks.iter().filter(|a| a.at >= from && a.at <= to) {
                *responses.entry(a.kind.label().into()).or_default() += 1;
                *bytes.entry(a.kind.label().into()).or_default() += a.bytes as u64;
                other |= only.is_some_and(|k| k != a.kind);
            }
            others += usize::from(other);
        }
        (responses, bytes, others)
    }

    /// Installs `probe`, runs `write` (the file change) at t0 and waits for every live
    /// proxy subscribed to one of its targets to see it.
    async fn change(
        &mut self,
        what: String,
        probe: Probe,
        probes: &watch::Sender<Option<Arc<Probe>>>,
        write: impl FnOnce() -> anyhow::Result<()>,
        timeout: Duration,
        settle_max: Duration,
    ) -> anyhow::Result<Phase> {
        let expected: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.synced[i].is_some())
            .filter(|&i| {
                let subs = self.subscriptions[i].of(probe.kind);
                probe.targets.keys().any(|t| subs.contains(t))
            })
            .collect();
        let (id, kind) = (probe.id, probe.kind);
        probes.send_replace(Some(Arc::new(probe)));
        let before = self.sampler.sample();
        let t0 = Instant::now();
        write()?;
        let done = |f: &Fleet, i: usize| f.probe_done[i].is_some_and(|(p, _)| p == id);
        let all = expected.clone();
        let all_done = |f: &Fleet| all.iter().all(|&i| done(f, i));
        let in_time = self.pump_until(t0 + timeout, all_done).await;
        let converged_in_time = all.iter().filter(|&&i| done(self, i)).count();
        if !in_time && self.aborted.is_none() {
            eprintln!(
                "weft-fleet: {converged_in_time}/{} converged within {timeout:?}; waiting up to \
                 {settle_max:?} more for late ones",
                all.len()
            );
            self.pump_until(t0 + timeout + settle_max, all_done).await;
        }
        let after = self.quiesce(settle_max).await;
        let end = Instant::now();
        let latencies: Vec<f64> = expected
            .iter()
            .filter_map(|&i| self.probe_done[i].filter(|(p, _)| *p == id))
            .map(|(_, at)| at.duration_since(t0).as_secs_f64())
            .collect();
        let (responses, bytes, others) = self.traffic(t0, end, Some(kind));
        Ok(Phase {
            what,
            expected: expected.len(),
            converged: latencies.len(),
            converged_in_time,
            timeout_s: timeout.as_secs_f64(),
            latency: Latency::of(latencies),
            cpu_s: before.zip(after).map(|(b, a)| a.cpu_s - b.cpu_s),
            quiet_after_s: end.duration_since(t0).as_secs_f64(),
            responses,
            bytes,
            proxies_with_other_pushes: others,
        })
    }
}

#[derive(Serialize)]
struct ProxyLog<'a> {
    proxy: usize,
    node: &'a str,
    synced_s: Option<f64>,
    stream_failures: usize,
    /// (type, version, seconds since the first connect, bytes) of every ACK.
    acks: Vec<(&'static str, &'a str, f64, usize)>,
}

fn write_logs(fleet: &Fleet, start: Instant, out: &std::path::Path) -> anyhow::Result<()> {
    let path = out.join("acks.jsonl");
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(&path).with_context(|| format!("create {}", path.display()))?,
    );
    for i in 0..fleet.nodes.len() {
        let log = ProxyLog {
            proxy: i,
            node: &fleet.nodes[i],
            synced_s: fleet.synced[i].map(|t| t.duration_since(start).as_secs_f64()),
            stream_failures: fleet.stream_failures[i],
            acks: fleet.acks[i]
                .iter()
                .map(|a| {
                    (
                        a.kind.label(),
                        a.version.as_str(),
                        a.at.duration_since(start).as_secs_f64(),
                        a.bytes,
                    )
                })
                .collect(),
        };
        serde_json::to_writer(&mut w, &log)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(())
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The control plane's CPU rate with no proxy: once two consecutive one-second windows
/// agree and are well below one CPU (it may still be finishing its start-up push), the
/// last window's rate; after `max`, whatever the last window showed.
async fn idle_rate(sampler: &Sampler, max: Duration) -> anyhow::Result<f64> {
    if !sampler.enabled() {
        return Ok(0.0);
    }
    let deadline = Instant::now() + max;
    let mut last = sampler.sample().context("control plane gone")?;
    let mut previous_rate = f64::INFINITY;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = sampler.sample().context("control plane gone")?;
        let rate = now.cpu_s - last.cpu_s;
        last = now;
        if ((rate - previous_rate).abs() <= 0.02 && rate < 0.5) || Instant::now() >= deadline {
            return Ok(rate);
        }
        previous_rate = rate;
    }
}

pub async fn run(opts: RunOptions) -> anyhow::Result<Results> {
    let params = Params::read_manifest(&opts.dir)?;
    let mut mesh = Mesh::generate(&params)?;
    let places = placements(&mesh, opts.proxies, opts.namespaces)?;
    let sampler = Sampler::new(opts.control_pid);
    if opts.control_pid.is_some() && sampler.sample().is_none() {
        bail!("cannot read /proc/{:?}", opts.control_pid);
    }
    let idle_rate = idle_rate(&sampler, opts.settle_max).await?;
    let loaded = sampler.sample();

    let (events_tx, events) = mpsc::unbounded_channel();
    let (probes, probe_rx) = watch::channel(None);
    let nodes: Vec<Node> = places
        .iter()
        .map(|&(s, p)| node(&mesh.services[s], p))
        .collect();
    let n = nodes.len();
    let subscriptions: Vec<Arc<Subscriptions>> = (0..n).map(|_| Arc::default()).collect();
    let start = Instant::now();
    let mut fleet = Fleet {
        events,
        nodes: nodes.iter().map(|n| n.id.clone()).collect(),
        acks: (0..n).map(|_| Vec::new()).collect(),
        synced: vec![None; n],
        stream_failures: vec![0; n],
        failure_messages: Vec::new(),
        probe_done: vec![None; n],
        subscriptions: subscriptions.clone(),
        sampler,
        idle_rate,
        max_rss_kib: opts.max_control_rss_mib.saturating_mul(1024),
        aborted: None,
        last_progress: start,
        started: start,
        last_ack: start,
    };

    eprintln!("weft-fleet: connecting {n} proxies to {}", opts.xds);
    let others_start = fleet.sampler.others();
    let before = fleet.sampler.sample();
    let tasks: Vec<JoinHandle<()>> = nodes
        .into_iter()
        .enumerate()
        .map(|(index, node)| {
            tokio::spawn(proxy::run(ProxySpec {
                index,
                node,
                endpoint: format!("http://{}", opts.xds),
                delta: opts.delta,
                events: events_tx.clone(),
                probe: probe_rx.clone(),
                subscriptions: subscriptions[index].clone(),
            }))
        })
        .collect();
    drop(events_tx);
    let all_synced = fleet
        .pump_until(start + opts.sync_timeout, |f| {
            f.synced.iter().all(Option::is_some)
        })
        .await;
    let synced_count = fleet.synced.iter().filter(|s| s.is_some()).count();
    eprintln!(
        "weft-fleet: {synced_count}/{n} proxies in sync after {:.2} s{}",
        start.elapsed().as_secs_f64(),
        if all_synced { "" } else { " (gave up waiting)" }
    );
    let after = fleet.quiesce(opts.settle_max).await;
    let end = Instant::now();
    let (responses, bytes, _) = fleet.traffic(start, end, None);
    let sync_latencies: Vec<f64> = fleet
        .synced
        .iter()
        .flatten()
        .map(|t| t.duration_since(start).as_secs_f64())
        .collect();
    let sync = Phase {
        what: "initial full push".into(),
        expected: n,
        converged: synced_count,
        converged_in_time: synced_count,
        timeout_s: opts.sync_timeout.as_secs_f64(),
        latency: Latency::of(sync_latencies),
        cpu_s: before.zip(after).map(|(b, a)| a.cpu_s - b.cpu_s),
        quiet_after_s: end.duration_since(start).as_secs_f64(),
        responses,
        bytes,
        proxies_with_other_pushes: 0,
    };

    let mut rounds: Vec<Round> = Vec::new();
    let mut rss_after_rounds_mib = Vec::new();
    let dir = opts.dir.clone();
    let used: BTreeSet<(usize, usize)> = places.iter().copied().collect();
    for round in 0..opts.rounds {
        if synced_count == 0 || fleet.aborted.is_some() {
            break;
        }
        let (what, probe, idx) = endpoint_probe(&mut mesh, &used, round);
        eprintln!("weft-fleet: round {}: endpoint change: {what}", round + 1);
        let svc = mesh.services[idx].clone();
        let endpoint_change = Some(
            fleet
                .change(
                    what,
                    probe,
                    &probes,
                    || write_atomic(&svc.slice_file(&dir), &yaml::endpoint_slice(&svc)),
                    opts.change_timeout,
                    opts.settle_max,
                )
                .await?,
        );
        let mut vs_change = None;
        if fleet.aborted.is_none() {
            match weight_probe(&mut mesh, round) {
                Some((what, probe, idx)) => {
                    eprintln!("weft-fleet: round {}: VS change: {what}", round + 1);
                    let svc = mesh.services[idx].clone();
                    let text = yaml::virtual_service(&svc).context("VS target without routing")?;
                    let phase = fleet
                        .change(
                            what,
                            probe,
                            &probes,
                            || write_atomic(&svc.virtual_service_file(&dir), &text),
                            opts.change_timeout,
                            opts.settle_max,
                        )
                        .await?;
                    vs_change = Some(phase);
                }
                None => {
                    eprintln!("weft-fleet: no service with both a VS and a DR: VS change skipped")
                }
            }
        }
        if let Some(s) = fleet.sampler.sample() {
            rss_after_rounds_mib.push(mib(s.rss_kib));
        }
        rounds.push(Round {
            endpoint_change,
            vs_change,
        });
    }
    let mut rounds = rounds.into_iter();
    let first = rounds.next().unwrap_or_default();
    let last = fleet.sampler.sample();
    let other_load_cpus = others_start
        .zip(fleet.sampler.others())
        .map(|(a, b)| a.load_until(&b, start.elapsed().as_secs_f64()));
    for t in &tasks {
        t.abort();
    }
    let first_proxy = fleet.subscriptions.first();
    let results = Results {
        mode: if opts.delta { "delta" } else { "sotw" }.into(),
        proxies: n,
        stream_failures: fleet.stream_failures.iter().sum(),
        proxies_with_failures: fleet.stream_failures.iter().filter(|&&f| f > 0).count(),
        failures: fleet.failure_messages.clone(),
        aborted: fleet.aborted.clone(),
        services: mesh.services.len(),
        endpoints: mesh.pod_count(),
        namespaces: params.namespaces,
        virtual_services: mesh.virtual_services(),
        destination_rules: mesh.destination_rules(),
        eds_per_proxy: first_proxy.map_or(0, |s| s.of(Kind::Eds).len()),
        rds_per_proxy: first_proxy.map_or(0, |s| s.of(Kind::Rds).len()),
        control_pid: opts.control_pid,
        idle_cpu_per_s: opts.control_pid.map(|_| idle_rate),
        other_load_cpus,
        rss_loaded_mib: loaded.map(|s| mib(s.rss_kib)),
        rss_synced_mib: after.map(|s| mib(s.rss_kib)),
        hwm_mib: last.map(|s| mib(s.hwm_kib)),
        sync,
        endpoint_change: first.endpoint_change,
        vs_change: first.vs_change,
        later_rounds: rounds.collect(),
        rss_after_rounds_mib,
    };
    if let Some(out) = &opts.out {
        std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
        std::fs::write(
            out.join("results.json"),
            serde_json::to_vec_pretty(&results)?,
        )?;
        write_logs(&fleet, start, out)?;
    }
    Ok(results)
}
