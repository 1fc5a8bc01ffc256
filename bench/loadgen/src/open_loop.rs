//! The fixed-rate latency measurement: N keep-alive connections take requests from one
//! queue fed by the pacer, so a request waits only when every connection is busy — and
//! that wait counts, since latency runs from the due time. Warm-up requests go through
//! the same path unrecorded. Everything is bounded: a per-request timeout, and a
//! give-up time after the schedule ends past which queued requests are counted as
//! dropped instead of sent.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout_at};

use crate::client::{self, Sender, Target, TlsOptions};
use crate::histogram::{Histogram, Summary};
use crate::pacer::{self, Schedule, Scheduled};
use crate::usage::{self, Usage};

pub struct OpenLoopArgs {
    pub url: String,
    pub rate: f64,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub request_timeout: Duration,
    pub drain: Duration,
    pub usage_pids: Vec<u32>,
    /// The benchmark's other processes (the backend): with this process itself they are
    /// subtracted from the machine's busy time to show load from elsewhere.
    pub bench_pids: Vec<u32>,
    /// How to verify an https:// URL's server.
    pub tls: TlsOptions,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OpenLoopReport {
    pub url: String,
    pub rate: f64,
    pub connections: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    /// Measured requests scheduled (rate × duration).
    pub scheduled: u64,
    /// Measured requests answered (any status).
    pub completed: u64,
    pub non_2xx: u64,
    pub errors: u64,
    /// Measured requests never sent because the give-up time had passed.
    pub dropped: u64,
    pub reconnects: u64,
    pub achieved_rps: f64,
    /// From due time to the end of the response body.
    pub latency: Summary,
    /// How late the pacer itself sent: the generator's own error, for the record.
    pub pacer_lateness: Summary,
    /// Usage of the watched processes over the measured window, when pids were given.
    pub usage_before: Option<Usage>,
    pub usage_after: Option<Usage>,
    /// CPU used by processes outside the benchmark during the window, in cores (0.0 on a
    /// quiet machine): a large value means other work may have disturbed the numbers.
    pub foreign_cpu_cores: Option<f64>,
}

/// Usage of the measured processes and of the benchmark's own, at one moment.
struct Snapshot {
    measured: Usage,
    bench: Usage,
    at: Instant,
}

fn snapshot(measured: &[u32], bench: &[u32], ticks: u64) -> std::io::Result<Snapshot> {
    Ok(Snapshot {
        measured: usage::sample(measured, ticks)?,
        bench: usage::sample(bench, ticks)?,
        at: Instant::now(),
    })
}

fn foreign_cores(before: &Snapshot, after: &Snapshot) -> Option<f64> {
    let seconds = (after.at - before.at).as_secs_f64();
    let machine = after.measured.machine_busy_seconds - before.measured.machine_busy_seconds;
    let ours = (after.measured.cpu_seconds - before.measured.cpu_seconds)
        + (after.bench.cpu_seconds - before.bench.cpu_seconds);
    (seconds > 0.0).then(|| ((machine - ours) / seconds).max(0.0))
}

#[derive(Default)]
struct WorkerStats {
    latency: Histogram,
    completed: u64,
    non_2xx: u64,
    errors: u64,
    dropped: u64,
    reconnects: u64,
}

impl WorkerStats {
    fn merge(&mut self, other: WorkerStats) {
        self.latency.merge(&other.latency);
        self.completed += other.completed;
        self.non_2xx += other.non_2xx;
        self.errors += other.errors;
        self.dropped += other.dropped;
        self.reconnects += other.reconnects;
    }
}

struct Worker {
    target: Target,
    sender: Option<Sender>,
    queue: Arc<Mutex<UnboundedReceiver<Scheduled>>>,
    request_timeout: Duration,
    give_up_at: Instant,
    stats: WorkerStats,
}

impl Worker {
    async fn run(mut self) -> WorkerStats {
        loop {
            // The lock is held while waiting, so idle workers line up (tokio's Mutex is
            // FIFO) and each job goes to the connection that has been idle longest.
            let next = self.queue.lock().await.recv().await;
            let Some(job) = next else { break };
            if Instant::now() >= self.give_up_at {
                self.stats.dropped += u64::from(job.measured);
                continue;
            }
            let deadline = (Instant::now() + self.request_timeout).min(self.give_up_at);
            let outcome = timeout_at(deadline, self.attempt()).await;
            let done = Instant::now();
            if !job.measured {
                continue;
            }
            match outcome {
                Ok(Ok(success)) => {
                    self.stats.completed += 1;
                    self.stats.non_2xx += u64::from(!success);
                    let nanos = (done - job.due).as_nanos();
                    self.stats
                        .latency
                        .record(u64::try_from(nanos).unwrap_or(u64::MAX));
                }
                Ok(Err(_)) | Err(_) => self.stats.errors += 1,
            }
        }
        self.stats
    }

    /// One request; on any failure the connection is dropped and the next attempt opens
    /// a new one (counted), as a client would.
    async fn attempt(&mut self) -> Result<bool> {
        if self.sender.is_none() {
            self.stats.reconnects += 1;
            self.sender = Some(client::connect(&self.target).await?);
        }
        let sender = self
            .sender
            .as_mut()
            .ok_or_else(|| anyhow!("no connection"))?;
        match client::get(sender, &self.target).await {
            Ok((status, _)) => Ok(status.is_success()),
            Err(error) => {
                self.sender = None;
                Err(error)
            }
        }
    }
}

pub async fn run(args: OpenLoopArgs) -> Result<OpenLoopReport> {
    if !args.rate.is_finite() || args.rate <= 0.0 || args.connections == 0 {
        return Err(anyhow!("rate and connections must be positive"));
    }
    let target = Target::parse(&args.url, &args.tls).await?;
    let mut senders = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        senders.push(
            client::connect(&target)
                .await
                .context("opening the load connections")?,
        );
    }
    let (tx, rx) = unbounded_channel();
    let queue = Arc::new(Mutex::new(rx));
    let schedule = Schedule {
        // A little lead so every worker is parked on the queue before the first due time.
        start: Instant::now() + Duration::from_millis(50),
        rate: args.rate,
        warmup: (args.warmup.as_secs_f64() * args.rate).round() as u64,
        measured: (args.duration.as_secs_f64() * args.rate).round() as u64,
    };
    let give_up_at = schedule.end() + args.drain;
    let mut workers = JoinSet::new();
    for sender in senders {
        let worker = Worker {
            target: target.clone(),
            sender: Some(sender),
            queue: Arc::clone(&queue),
            request_timeout: args.request_timeout,
            give_up_at,
            stats: WorkerStats::default(),
        };
        workers.spawn(worker.run());
    }
    let ticks = usage::clock_ticks();
    let measured_pids = args.usage_pids.clone();
    let mut bench_pids = args.bench_pids.clone();
    bench_pids.push(std::process::id());
    let watching = !measured_pids.is_empty();
    pacer::request_exact_timers();
    let pacer = {
        let (measured_pids, bench_pids) = (measured_pids.clone(), bench_pids.clone());
        std::thread::spawn(move || {
            pacer::run(&schedule, &tx, || {
                snapshot(&measured_pids, &bench_pids, ticks)
            })
        })
    };
    let mut stats = WorkerStats::default();
    while let Some(worker) = workers.join_next().await {
        stats.merge(worker?);
    }
    let after = snapshot(&measured_pids, &bench_pids, ticks)?;
    let (lateness, before) = pacer.join().map_err(|_| anyhow!("pacer thread panicked"))?;
    let before = before.transpose()?;
    let foreign_cpu_cores = before.as_ref().and_then(|b| foreign_cores(b, &after));
    let duration_s = args.duration.as_secs_f64();
    Ok(OpenLoopReport {
        url: args.url,
        rate: args.rate,
        connections: args.connections,
        warmup_s: args.warmup.as_secs_f64(),
        duration_s,
        scheduled: schedule.measured,
        completed: stats.completed,
        non_2xx: stats.non_2xx,
        errors: stats.errors,
        dropped: stats.dropped,
        reconnects: stats.reconnects,
        achieved_rps: stats.completed as f64 / duration_s,
        latency: stats.latency.summary(),
        pacer_lateness: lateness.summary(),
        // Without watched pids these would be zeros, not a measurement of anything.
        usage_before: before.map(|b| b.measured).filter(|_| watching),
        usage_after: Some(after.measured).filter(|_| watching),
        foreign_cpu_cores,
    })
}
