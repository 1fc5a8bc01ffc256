//! `weft token`: mints the join token a workload's agent presents to `weft control`'s CA.
//! Exit codes: 0 when the token is printed, 1 when the key or the names are unusable.

use std::time::Duration;

/// `weft token`: prints a join token for the service account.
pub fn run(args: &crate::cli::TokenArgs, out: &mut dyn std::io::Write) -> i32 {
    let minted = weft_identity::TokenKey::load_or_create(&args.ca_dir).and_then(|key| {
        key.mint(
            &args.namespace,
            &args.service_account,
            Duration::from_secs(args.ttl_hours * 3600),
            std::time::SystemTime::now(),
        )
    });
    match minted {
        Ok(token) => match writeln!(out, "{token}") {
            Ok(()) => 0,
            Err(_) => 1,
        },
        Err(e) => {
            eprintln!("weft token: {e}");
            1
        }
    }
}
