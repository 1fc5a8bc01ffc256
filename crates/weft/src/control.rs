//! `weft control`: sets up logging and runs the control plane until SIGTERM or Ctrl-C.
//! Exit codes: 0 on a signal, 1 when it cannot start (unreadable directory, port taken).

use std::time::Duration;

use tracing_subscriber::EnvFilter;
use weft_control::control::{Options, start};

use crate::cli::ControlArgs;

pub fn run(args: &ControlArgs) -> i32 {
    // Before the runtime's threads exist: see heap::one_arena.
    weft_proxy::heap::one_arena();
    let filter = EnvFilter::try_new(&args.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let mut options = Options::new(&args.config_dir, args.xds_address);
    options.debug_address = Some(args.debug_address);
    options.xds_tls_address = args.xds_tls_address;
    options.ca_dir = args.ca_dir.clone();
    options.mesh.domain = args.domain.clone();
    options.debounce.after = Duration::from_millis(args.debounce_after_ms);
    options.debounce.max = Duration::from_millis(args.debounce_max_ms);
    options.release_memory = weft_proxy::heap::trim;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("weft control: cannot start the runtime: {e}");
            return 1;
        }
    };
    let code = runtime.block_on(async {
        let (running, serve) = match start(&options).await {
            Ok(started) => started,
            Err(e) => {
                eprintln!("weft control: {e}");
                return 1;
            }
        };
        tracing::info!(xds = %running.xds_address, xds_tls = ?running.xds_tls_address, debug = ?running.debug_address, dir = %args.config_dir.display(), "serving ADS");
        let addresses = [
            (&args.xds_address_path, Some(running.xds_address)),
            (&args.xds_tls_address_path, running.xds_tls_address),
            (&args.debug_address_path, running.debug_address),
        ];
        for (path, address) in addresses {
            if let (Some(path), Some(address)) = (path, address)
                && let Err(e) = std::fs::write(path, address.to_string())
            {
                eprintln!("weft control: cannot write {}: {e}", path.display());
                return 1;
            }
        }
        let mut sigterm =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("weft control: cannot watch SIGTERM: {e}");
                    return 1;
                }
            };
        tokio::select! {
            result = serve => match result {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("weft control: {e}");
                    1
                }
            },
            _ = sigterm.recv() => 0,
            _ = tokio::signal::ctrl_c() => 0,
        }
    });
    // Streams, the debug server and the directory watcher hold tasks that would keep a
    // plain drop waiting; a signal means stop now.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    code
}
