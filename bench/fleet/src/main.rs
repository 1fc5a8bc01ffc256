//! `weft-fleet`: the control-plane benchmark's generator and fleet (bench/control).
//!
//! - `gen` writes a Kubernetes/Istio mesh (Services, EndpointSlices, Pods, VirtualServices,
//!   DestinationRules) into a directory, deterministically from a seed.
//! - `run` connects a fleet of simulated Envoy sidecars (one ADS stream each) to
//!   `weft control` serving that directory, times the initial full push, an endpoint
//!   change and a VirtualService change, and prints the figures.
//! - `report` prints the table of a results.json again.

mod fleet;
mod lite;
mod mesh;
mod proxy;
mod report;
mod scenario;
mod usage;
mod yaml;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "weft-fleet",
    about = "Control-plane benchmark: mesh generator and sidecar fleet"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a generated mesh into DIR (absent or empty).
    Gen {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 1000)]
        services: usize,
        /// Endpoints (pods) per service.
        #[arg(long, default_value_t = 10)]
        endpoints: usize,
        #[arg(long, default_value_t = 10)]
        namespaces: usize,
        /// Share of services with a VirtualService.
        #[arg(long, default_value_t = 0.3)]
        vs_share: f64,
        /// Share of services with a DestinationRule (the VS ones first).
        #[arg(long, default_value_t = 0.3)]
        dr_share: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Run the fleet and the scenarios against a control plane serving DIR.
    Run {
        /// The mesh directory `gen` wrote (the scenarios rewrite files in it).
        #[arg(long)]
        dir: PathBuf,
        /// ADS address of the control plane, HOST:PORT.
        #[arg(long)]
        xds: String,
        #[arg(long, default_value_t = 1000)]
        proxies: usize,
        /// Proxies are pods of the first N namespaces of the mesh (default: all of them).
        #[arg(long)]
        namespaces: Option<usize>,
        /// Delta xDS instead of state-of-the-world.
        #[arg(long)]
        delta: bool,
        /// The control plane's pid, for CPU and memory from /proc.
        #[arg(long)]
        control_pid: Option<u32>,
        /// Runtime worker threads for the whole fleet.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[arg(long, default_value_t = 600)]
        sync_timeout_s: u64,
        #[arg(long, default_value_t = 60)]
        change_timeout_s: u64,
        /// How many times the endpoint change and the VirtualService change are made, one
        /// after the other: memory after a push is only steady once several have run.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=250))]
        rounds: u32,
        /// Longest wait for the control plane to go quiet after a phase.
        #[arg(long, default_value_t = 60)]
        settle_max_s: u64,
        /// Stop waiting once the control plane's RSS exceeds this many MiB.
        #[arg(long, default_value_t = 8192)]
        max_control_rss_mib: u64,
        /// Directory for results.json and acks.jsonl (per proxy, every ACK's time).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the table of a results.json.
    Report { results: PathBuf },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Gen {
            dir,
            services,
            endpoints,
            namespaces,
            vs_share,
            dr_share,
            seed,
        } => {
            if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
                bail!("{} is not empty", dir.display());
            }
            std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
            let params = mesh::Params {
                seed,
                services,
                endpoints,
                namespaces,
                vs_share,
                dr_share,
            };
            let m = mesh::Mesh::generate(&params)?;
            let files = yaml::write_mesh(&m, &dir)?;
            params.write_manifest(&dir)?;
            eprintln!(
                "weft-fleet: {} services, {} pods, {} VS, {} DR in {namespaces} namespaces: {files} files in {}",
                m.services.len(),
                m.pod_count(),
                m.virtual_services(),
                m.destination_rules(),
                dir.display()
            );
        }
        Command::Run {
            dir,
            xds,
            proxies,
            namespaces,
            delta,
            control_pid,
            threads,
            sync_timeout_s,
            change_timeout_s,
            rounds,
            settle_max_s,
            max_control_rss_mib,
            out,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads.max(1))
                .enable_all()
                .build()?;
            let results = runtime.block_on(fleet::run(fleet::RunOptions {
                dir,
                xds,
                proxies,
                namespaces,
                delta,
                control_pid,
                sync_timeout: Duration::from_secs(sync_timeout_s),
                change_timeout: Duration::from_secs(change_timeout_s),
                rounds,
                settle_max: Duration::from_secs(settle_max_s),
                max_control_rss_mib,
                out,
            }))?;
            // Streams are aborted; the runtime need not wait for them to unwind.
            runtime.shutdown_timeout(Duration::from_secs(1));
            print!("{}", report::table(&results));
        }
        Command::Report { results } => {
            let text =
                std::fs::read(&results).with_context(|| format!("read {}", results.display()))?;
            let r: report::Results = serde_json::from_slice(&text)?;
            print!("{}", report::table(&r));
        }
    }
    Ok(())
}
