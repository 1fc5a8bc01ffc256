//! `weft agent`: sets up logging and runs the secret agent until SIGTERM or Ctrl-C.
//! Exit codes: 0 on a signal, 1 when it cannot start (socket path unusable).

use std::time::Duration;

use tracing_subscriber::EnvFilter;
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
    let options = AgentOptions {
        socket: args.sds_socket.clone(),
        certs_dir: args.certs_dir.clone(),
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
