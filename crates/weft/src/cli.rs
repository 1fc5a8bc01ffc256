//! Argument definitions for every `weft` subcommand.

use clap::{Parser, Subcommand, ValueEnum};

/// Weft: an Istio-compatible service mesh.
#[derive(Debug, Parser)]
#[command(name = "weft", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate Istio and Kubernetes configuration the way Istio would, with file:line
    /// diagnostics. Exits 0 when there are no errors, 1 when there are, 2 on usage or I/O
    /// problems.
    Validate(ValidateArgs),
    /// Run the data plane: serve traffic from an Envoy v3 bootstrap (static resources and/or
    /// ADS), the way Envoy would with the same file.
    Proxy(ProxyArgs),
    /// Run the control plane: translate the Istio and Kubernetes YAML in a directory into
    /// Envoy xDS for every proxy that connects (Envoy, weft proxy, proxyless gRPC), and
    /// apply changes to the directory live.
    Control(ControlArgs),
    /// Show, per proxy connected to `weft control`, whether each xDS type is SYNCED, STALE
    /// (sent, not yet ACKed), NACK (rejected; the proxy's error follows) or NOT SENT, like
    /// `istioctl proxy-status`. Reads the control plane's /debug/syncz.
    #[command(name = "proxy-status")]
    ProxyStatus(ProxyStatusArgs),
    /// Show what `weft control` generated for one proxy (its clusters, listeners, routes
    /// or endpoints), like `istioctl proxy-config`. Reads /debug/config_dump. Exits 1 when
    /// the proxy is not connected, naming those that are.
    #[command(name = "proxy-config")]
    ProxyConfig(ProxyConfigArgs),
    /// Explain what the mesh in a config directory does with one service: its ports and
    /// endpoints, the DestinationRule and VirtualService that apply to sidecars and why,
    /// rules that exist but are not applied, Sidecars hiding it, and the policies that
    /// select its workloads. Exits 1 when the service does not exist.
    Describe(DescribeArgs),
    /// Run a proxy's secret agent, as istio-agent runs beside Envoy: serve SDS on a Unix
    /// socket (the bootstrap's `sds-grpc` cluster) with the secrets istiod-style clusters
    /// name — `default` and `ROOTCA` from the control plane's CA (by CSR, with a join
    /// token, renewed at half-life) or a certs directory, `file-root:` and `file-cert:`
    /// from the files a DestinationRule names — re-reading files so changes reach the
    /// proxy. Exits 1 when the socket cannot be bound.
    Agent(AgentArgs),
    /// Mint a join token: what a workload's agent presents to `weft control`'s CA to get a
    /// certificate for service account SA of NAMESPACE (Weft's stand-in for a Kubernetes
    /// service account token). Uses the token key in the CA directory, creating it there
    /// when absent; prints the token.
    Token(TokenArgs),
}

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// The CA directory `weft control --ca-dir` uses.
    #[arg(long = "ca-dir", value_name = "DIR")]
    pub ca_dir: std::path::PathBuf,
    #[arg(short = 'n', long)]
    pub namespace: String,
    #[arg(long = "service-account", value_name = "SA")]
    pub service_account: String,
    /// How long the token is accepted.
    #[arg(long = "ttl-hours", default_value_t = 24 * 365, value_parser = clap::value_parser!(u64).range(1..))]
    pub ttl_hours: u64,
}

#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// The SDS socket to serve on (Istio's path, relative to the working directory).
    #[arg(
        long = "sds-socket",
        value_name = "PATH",
        default_value = "./var/run/secrets/workload-spiffe-uds/socket"
    )]
    pub sds_socket: std::path::PathBuf,
    /// The workload's certificate, key and roots (Istio's file-mounted names
    /// `cert-chain.pem`, `key.pem`, `root-cert.pem`), when they do not come from the CA
    /// (--ca-address); with neither, `default` and `ROOTCA` are not served.
    #[arg(long = "certs-dir", value_name = "DIR", conflicts_with = "ca_address")]
    pub certs_dir: Option<std::path::PathBuf>,
    /// The control plane's CA (`weft control --xds-tls-address`, Istio's 15012), which
    /// issues the workload's certificate; needs --ca-root and --token-file.
    #[arg(long = "ca-address", value_name = "HOST:PORT", requires_all = ["ca_root", "token_file"])]
    pub ca_address: Option<String>,
    /// The name the control plane's certificate must carry.
    #[arg(long = "ca-server-name", default_value = "istiod.istio-system.svc")]
    pub ca_server_name: String,
    /// The mesh's root certificate (`root-cert.pem` in the CA directory).
    #[arg(long = "ca-root", value_name = "FILE")]
    pub ca_root: Option<std::path::PathBuf>,
    /// The join token (`weft token`), read again for every request.
    #[arg(long = "token-file", value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// The workload certificate's lifetime to ask for.
    #[arg(long = "cert-ttl-hours", default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=2160))]
    pub cert_ttl_hours: u64,
    /// Seconds between reads of the secrets' files.
    #[arg(long = "refresh-seconds", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub refresh_seconds: u64,
    /// Log filter (tracing's EnvFilter syntax).
    #[arg(long = "log-level", default_value = "info")]
    pub log_level: String,
}

#[derive(Debug, clap::Args)]
pub struct DescribeArgs {
    /// The service: a short name (resolved in --namespace) or a host name.
    pub service: String,
    /// The namespace short names resolve in.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// The directory `weft control` serves (read the same way).
    #[arg(long = "config-dir", value_name = "DIR")]
    pub config_dir: std::path::PathBuf,
    /// The mesh's DNS domain.
    #[arg(long, default_value = "cluster.local")]
    pub domain: String,
}

/// The control plane's debug address (Istio's 15014), where `proxy-status` and
/// `proxy-config` read from.
pub const DEFAULT_DEBUG_ADDRESS: &str = "127.0.0.1:15014";

#[derive(Debug, clap::Args)]
pub struct ProxyStatusArgs {
    /// `HOST:PORT` of `weft control`'s debug server.
    #[arg(long = "control-address", default_value = DEFAULT_DEBUG_ADDRESS)]
    pub control_address: String,
    #[arg(short = 'o', long = "output", value_enum, default_value_t = StatusOutput::Table)]
    pub output: StatusOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusOutput {
    /// One row per proxy; NACKed types are followed by the proxy's error.
    Table,
    /// /debug/syncz as served.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ProxyConfigArgs {
    /// What to show.
    #[arg(value_enum)]
    pub kind: ConfigKind,
    /// The proxy: its node id, or `POD.NAMESPACE` as `proxy-status` lists it.
    pub proxy: String,
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ConfigOutput::Short)]
    pub output: ConfigOutput,
    /// `HOST:PORT` of `weft control`'s debug server.
    #[arg(long = "control-address", default_value = DEFAULT_DEBUG_ADDRESS)]
    pub control_address: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConfigKind {
    #[value(alias = "listener")]
    Listeners,
    #[value(alias = "route")]
    Routes,
    #[value(alias = "cluster")]
    Clusters,
    #[value(alias = "endpoint")]
    Endpoints,
    #[value(alias = "secret")]
    Secrets,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConfigOutput {
    /// Tables like istioctl's.
    Short,
    /// The resources as the control plane's config dump gives them.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ControlArgs {
    /// Directory of Istio resources, MeshConfig and Kubernetes Services/Endpoints/Pods
    /// (read recursively, watched for changes).
    #[arg(long = "config-dir", value_name = "DIR")]
    pub config_dir: std::path::PathBuf,
    /// Plaintext ADS address (Istio's 15010).
    #[arg(long = "xds-address", default_value = "127.0.0.1:15010")]
    pub xds_address: std::net::SocketAddr,
    /// Write the bound xDS address to this file (useful with port 0).
    #[arg(long = "xds-address-path", value_name = "FILE")]
    pub xds_address_path: Option<std::path::PathBuf>,
    /// ADS over TLS (Istio's 15012), served with a certificate from the mesh CA for
    /// istiod's names (istiod.istio-system.svc); needs --ca-dir.
    #[arg(long = "xds-tls-address", value_name = "ADDRESS", requires = "ca_dir")]
    pub xds_tls_address: Option<std::net::SocketAddr>,
    /// Write the bound xDS-over-TLS address to this file (useful with port 0).
    #[arg(long = "xds-tls-address-path", value_name = "FILE")]
    pub xds_tls_address_path: Option<std::path::PathBuf>,
    /// The mesh CA's directory, under Istio's plug-in file names (ca-cert.pem, ca-key.pem,
    /// root-cert.pem; cert-chain.pem for an intermediate). A new root is made there when
    /// it holds none; proxies trust root-cert.pem.
    #[arg(long = "ca-dir", value_name = "DIR")]
    pub ca_dir: Option<std::path::PathBuf>,
    /// Debug pages and Prometheus metrics (Istio's 15014): /ready, /metrics, /debug/syncz,
    /// /debug/config_dump, /debug/connections.
    #[arg(long = "debug-address", default_value = DEFAULT_DEBUG_ADDRESS)]
    pub debug_address: std::net::SocketAddr,
    /// Write the bound debug address to this file (useful with port 0).
    #[arg(long = "debug-address-path", value_name = "FILE")]
    pub debug_address_path: Option<std::path::PathBuf>,
    /// The mesh's DNS domain.
    #[arg(long, default_value = "cluster.local")]
    pub domain: String,
    /// Quiet period before a change is pushed (istiod's PILOT_DEBOUNCE_AFTER), in ms.
    #[arg(long = "debounce-after-ms", default_value_t = 100)]
    pub debounce_after_ms: u64,
    /// Longest a change waits for the quiet period (PILOT_DEBOUNCE_MAX), in ms.
    #[arg(long = "debounce-max-ms", default_value_t = 10_000)]
    pub debounce_max_ms: u64,
    /// Log level: trace, debug, info, warn, error.
    #[arg(short = 'l', long = "log-level", default_value = "info")]
    pub log_level: String,
}

#[derive(Debug, clap::Args)]
pub struct ProxyArgs {
    /// The Envoy v3 bootstrap, YAML or JSON (Envoy's `-c`).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: String,
    /// Worker threads, each with its own event loop (Envoy's `--concurrency`).
    #[arg(long, default_value_t = 2)]
    pub concurrency: usize,
    /// Write the admin listener's bound address to this file (Envoy's flag of the same name).
    #[arg(long, value_name = "FILE")]
    pub admin_address_path: Option<std::path::PathBuf>,
    /// Seconds to let open connections finish after SIGTERM before exiting.
    #[arg(long = "drain-time-s", default_value_t = 5)]
    pub drain_time_s: u64,
    /// Log level: trace, debug, info, warning (or warn), error, critical, off.
    #[arg(short = 'l', long = "log-level", default_value = "info")]
    pub log_level: String,
    /// `validate`: check the bootstrap and exit (0 when weft-proxy can serve it as Envoy would).
    #[arg(long, value_enum, default_value_t = ProxyMode::Serve)]
    pub mode: ProxyMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProxyMode {
    Serve,
    Validate,
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// A file, a directory (read recursively) or `-` for standard input. Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub files: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// One line per finding: `file:line:col: severity[code]: Kind ns/name: path: message`.
    Text,
    /// A JSON document with every finding and a summary.
    Json,
}
