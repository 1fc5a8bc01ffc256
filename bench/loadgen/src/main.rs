//! `weft-loadgen`: the pieces of Weft's proxy benchmark (bench/proxy/run.sh) that wrk and
//! the shell cannot do well — the shared backend, readiness probes, an open-loop generator
//! without coordinated omission, /proc accounting of proxy CPU and RSS, and the report.

mod backend;
mod client;
mod histogram;
mod open_loop;
mod pacer;
mod ports;
mod probe;
mod report;
mod table;
mod usage;
mod wrk;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "weft-loadgen",
    about = "Load generator, backend and report for bench/proxy"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve `200 <body>` over HTTP/1.1 on one thread until --max-seconds pass (inside TLS
    /// with --tls-cert and --tls-key).
    Backend {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Write the bound IP:PORT here once listening.
        #[arg(long)]
        addr_file: Option<PathBuf>,
        #[arg(long, default_value = "hello")]
        body: String,
        #[arg(long, default_value_t = 900)]
        max_seconds: u64,
        /// Serve TLS with this PEM certificate chain (leaf first); needs --tls-key.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Print COUNT distinct free loopback TCP ports, one per line.
    FreePorts { count: usize },
    /// GET a URL until it answers as expected (bounded); exit 1 if it never does.
    Probe {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 200)]
        status: u16,
        #[arg(long)]
        body: Option<String>,
        #[arg(long, default_value_t = 100)]
        attempts: u32,
        #[arg(long, default_value_t = 100)]
        interval_ms: u64,
        /// Give up as soon as this process has exited.
        #[arg(long)]
        watch_pid: Option<u32>,
        /// For https:// URLs: the PEM CA certificates the server's chain must lead to.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// For https:// URLs: the DNS name to send as SNI and to verify the server's
        /// certificate against (default: the URL's host).
        #[arg(long)]
        server_name: Option<String>,
    },
    /// Fixed-rate load; latency from each request's due time. Prints a JSON report.
    OpenLoop {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// Seconds of unrecorded load first.
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        /// Seconds of recorded load.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[arg(long, default_value_t = 2.0)]
        request_timeout: f64,
        /// Seconds after the schedule ends before queued requests are dropped.
        #[arg(long, default_value_t = 5.0)]
        drain: f64,
        /// Processes (with their descendants) whose CPU is measured over the window.
        #[arg(long = "usage-pid")]
        usage_pids: Vec<u32>,
        /// The benchmark's own other processes (the backend), for the foreign-load figure.
        #[arg(long = "bench-pid")]
        bench_pids: Vec<u32>,
        #[arg(long)]
        out: Option<PathBuf>,
        /// For https:// URLs: the PEM CA certificates the server's chain must lead to.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// For https:// URLs: the DNS name to send as SNI and to verify the server's
        /// certificate against (default: the URL's host).
        #[arg(long)]
        server_name: Option<String>,
    },
    /// CPU seconds and peak RSS of processes and their descendants, as JSON.
    Usage {
        #[arg(long = "pid", required = true)]
        pids: Vec<u32>,
    },
    /// Read a run directory, write results.json into it and print the table.
    Report {
        #[arg(long)]
        dir: PathBuf,
        /// KEY=VALUE recorded under "meta" in results.json.
        #[arg(long = "meta")]
        meta: Vec<String>,
    },
}

fn seconds(value: f64, what: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| anyhow!("--{what} must be a non-negative number of seconds"))
}

fn write_or_print(json: &str, out: Option<PathBuf>) -> Result<()> {
    match out {
        Some(path) => {
            std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))
        }
        None => {
            println!("{json}");
            Ok(())
        }
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // One thread: the load side shares a pinned core with the backend, and a single
    // event loop keeps what it costs there small and predictable.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Backend {
            listen,
            addr_file,
            body,
            max_seconds,
            tls_cert,
            tls_key,
        } => runtime.block_on(backend::run(backend::BackendArgs {
            listen,
            addr_file,
            body,
            max_seconds,
            tls: tls_cert
                .zip(tls_key)
                .map(|(cert, key)| backend::TlsFiles { cert, key }),
        })),
        Command::FreePorts { count } => {
            for port in ports::free_ports(count)? {
                println!("{port}");
            }
            Ok(())
        }
        Command::Probe {
            url,
            status,
            body,
            attempts,
            interval_ms,
            watch_pid,
            ca_file,
            server_name,
        } => runtime.block_on(probe::run(probe::ProbeArgs {
            url,
            expect_status: status,
            expect_body: body,
            attempts,
            interval: Duration::from_millis(interval_ms),
            watch_pid,
            tls: client::TlsOptions {
                ca_file,
                server_name,
            },
        })),
        Command::OpenLoop {
            url,
            rate,
            connections,
            warmup,
            duration,
            request_timeout,
            drain,
            usage_pids,
            bench_pids,
            out,
            ca_file,
            server_name,
        } => {
            let report = runtime.block_on(open_loop::run(open_loop::OpenLoopArgs {
                url,
                rate,
                connections,
                warmup: seconds(warmup, "warmup")?,
                duration: seconds(duration, "duration")?,
                request_timeout: seconds(request_timeout, "request-timeout")?,
                drain: seconds(drain, "drain")?,
                usage_pids,
                bench_pids,
                tls: client::TlsOptions {
                    ca_file,
                    server_name,
                },
            }))?;
            write_or_print(&serde_json::to_string_pretty(&report)?, out)
        }
        Command::Usage { pids } => {
            let usage = usage::sample(&pids, usage::clock_ticks())?;
            println!("{}", serde_json::to_string(&usage)?);
            Ok(())
        }
        Command::Report { dir, meta } => {
            let meta: BTreeMap<String, String> = meta
                .iter()
                .map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .ok_or_else(|| anyhow!("--meta wants KEY=VALUE, got {kv}"))
                })
                .collect::<Result<_>>()?;
            let results = report::collect(&dir, meta)?;
            std::fs::write(
                dir.join("results.json"),
                serde_json::to_string_pretty(&results)?,
            )?;
            print!("{}", table::render(&results));
            println!("results: {}", dir.join("results.json").display());
            Ok(())
        }
    }
}
