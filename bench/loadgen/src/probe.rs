//! Readiness for the benchmark script: GET a URL until it answers as expected, a bounded
//! number of times, and give up early when the process under test has already exited (a
//! proxy that rejects its config should be reported at once, not waited for).

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};
use tokio::time::timeout;

use crate::client::{self, Target, TlsOptions};

pub struct ProbeArgs {
    pub url: String,
    pub expect_status: u16,
    pub expect_body: Option<String>,
    pub attempts: u32,
    pub interval: Duration,
    pub watch_pid: Option<u32>,
    pub tls: TlsOptions,
}

pub async fn run(args: ProbeArgs) -> Result<()> {
    let target = Target::parse(&args.url, &args.tls).await?;
    let mut last = String::from("no attempt made");
    for attempt in 0..args.attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(args.interval).await;
        }
        if let Some(pid) = args.watch_pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            bail!(
                "process {pid} exited before {} was ready ({last})",
                args.url
            );
        }
        let once = async {
            let mut sender = client::connect(&target).await?;
            client::get(&mut sender, &target).await
        };
        match timeout(Duration::from_secs(2), once).await {
            Ok(Ok((status, body))) => {
                let body_ok = args
                    .expect_body
                    .as_deref()
                    .is_none_or(|want| body.as_ref() == want.as_bytes());
                if status.as_u16() == args.expect_status && body_ok {
                    return Ok(());
                }
                last = format!("status {status}, body {:?}", String::from_utf8_lossy(&body));
            }
            Ok(Err(error)) => last = format!("{error:#}"),
            Err(_) => last = "no answer within 2 s".to_string(),
        }
    }
    bail!(
        "{} not ready after {} attempts: {last}",
        args.url,
        args.attempts
    )
}
