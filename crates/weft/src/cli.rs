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
