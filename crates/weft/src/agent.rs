//! `weft agent`: sets up logging and runs the secret agent until SIGTERM or Ctrl-C.
//! Exit codes: 0 on a signal, 1 when it cannot start (socket path unusable).

use std::time::Duration;

use tracing_subscriber::EnvFilter;
use weft_proxy::agent::ca_client::CaSource;
use weft_proxy::agent::{AgentOptions, start};

use crate::cli::AgentArgs;

pub fn run(args: &AgentArgs) -> i32 {
    let filter = EnvFilter::try_new(&args.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("weft agent: cannot start the runtime: {e}");
            return 1;
        }
    };
    let ca = match (&args.ca_address, &args.ca_root, &args.token_file) {
        (Some(address), Some(root), Some(token)) => Some(CaSource {
            address: address.clone(),
            server_name: args.ca_server_name.clone(),
            root_cert: root.clone(),
            token_file: token.clone(),
            ttl: Duration::from_secs(args.cert_ttl_hours * 3600),
        }),
        _ => None,
    };
    let options = AgentOptions {
        socket: args.sds_socket.clone(),
        certs_dir: args.certs_dir.clone(),
        ca,
        refresh: Duration::from_secs(args.refresh_seconds),
    };
    runtime.block_on(async {
        let mut sigterm =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("weft agent: cannot watch SIGTERM: {e}");
                    return 1;
                }
            };
        let stop = async move {
            tokio::select! {
                _ = sigterm.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        match start(options.clone(), stop) {
            Ok((_agent, serve)) => {
                tracing::info!(socket = %options.socket.display(), certs = ?options.certs_dir, "serving SDS");
                serve.await;
                0
            }
            Err(e) => {
                eprintln!("weft agent: {e}");
                1
            }
        }
    })
}
