//! `weft token` and `weft agent`'s flags through the real binary: a minted token is one
//! the CA directory's key vouches for, for the service account asked; the agent refuses a
//! CA address without the root and token it needs, and a socket path it cannot use.

use std::process::{Command, Output};
use std::time::SystemTime;

fn weft(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .output()
        .expect("run weft")
}

#[test]
fn a_token_vouches_for_the_service_account_it_was_minted_for() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().display().to_string();
    let out = weft(&[
        "token",
        "--ca-dir",
        &ca,
        "-n",
        "shop",
        "--service-account",
        "cart",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let key = weft_identity::TokenKey::load_or_create(dir.path()).unwrap();
    let id = key
        .verify(token.trim(), "cluster.local", SystemTime::now())
        .unwrap();
    assert_eq!(id.to_string(), "spiffe://cluster.local/ns/shop/sa/cart");

    let bad = weft(&[
        "token",
        "--ca-dir",
        &ca,
        "-n",
        "shop/evil",
        "--service-account",
        "cart",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("no valid identity"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn the_agent_refuses_incomplete_ca_settings_and_unusable_sockets() {
    let out = weft(&["agent", "--ca-address", "127.0.0.1:15012"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--ca-root") && err.contains("--token-file"),
        "{err}"
    );

    // A regular file where the socket should go is not deleted to make room.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-socket");
    std::fs::write(&file, "keep me").unwrap();
    let out = weft(&["agent", "--sds-socket", &file.display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}
