//! `weft proxy`: reads the bootstrap, sets up logging (adjustable through the admin
//! `/logging` endpoint), and runs weft-proxy. Exit codes: 0 after a clean drain, 1 when the
//! bootstrap cannot be served, 2 when it cannot be read.

use crate::cli::{ProxyArgs, ProxyMode};
use std::sync::Arc;
use std::time::Duration;
use tracing_subscriber::{EnvFilter, reload};
use weft_proxy::proxy::{LogControl, Options};

/// Envoy's level names, mapped onto tracing's.
fn filter_for(level: &str) -> Result<EnvFilter, String> {
    let l = match level.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warning" | "warn" => "warn",
        "error" | "critical" => "error",
        "off" => "off",
        other => return Err(format!("unknown log level `{other}`")),
    };
    Ok(EnvFilter::new(l))
}

struct Logs {
    handle: reload::Handle<EnvFilter, tracing_subscriber::Registry>,
    level: parking_lot::Mutex<String>,
}

impl LogControl for Logs {
    fn set(&self, level: &str) -> Result<(), String> {
        let f = filter_for(level)?;
        self.handle.reload(f).map_err(|e| e.to_string())?;
        *self.level.lock() = level.to_string();
        Ok(())
    }
    fn get(&self) -> String {
        self.level.lock().clone()
    }
}

pub fn run(args: &ProxyArgs) -> i32 {
    let text = match std::fs::read_to_string(&args.config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", args.config);
            return 2;
        }
    };
    let bootstrap = match weft_proxy::proxy::check(&args.config, &text) {
        Ok(b) => b,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!(
                "error: {} problem(s) in {}; weft-proxy will not start",
                errors.len(),
                args.config
            );
            return 1;
        }
    };
    if args.mode == ProxyMode::Validate {
        println!("configuration '{}' OK", args.config);
        return 0;
    }
    let filter = match filter_for(&args.log_level) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let (layer, handle) = reload::Layer::new(filter);
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .try_init();
    let logs = Arc::new(Logs {
        handle,
        level: parking_lot::Mutex::new(args.log_level.clone()),
    });
    let options = Options {
        config_path: args.config.clone(),
        concurrency: args.concurrency,
        admin_address_path: args.admin_address_path.clone(),
        drain_time: Duration::from_secs(args.drain_time_s),
        log: Some(logs),
    };
    match weft_proxy::proxy::run(bootstrap, options) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
