//! The `weft` binary: parses arguments and hands off to the library.

use clap::Parser;
use weft::cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let code = match &cli.command {
        Command::Validate(args) => weft::validate::run(
            args,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        ),
        Command::Proxy(args) => weft::proxy::run(args),
        Command::Control(args) => weft::control::run(args),
        Command::Agent(args) => weft::agent::run(args),
        Command::Token(args) => weft::token::run(args, &mut std::io::stdout().lock()),
        Command::ProxyStatus(args) => weft::proxy_status::run(
            args,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        ),
        Command::ProxyConfig(args) => weft::proxy_config::run(
            args,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        ),
        Command::Describe(args) => weft::describe::run(
            args,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        ),
    };
    std::process::exit(code);
}
