//! `weft control` serves xDS over TLS only with a CA to issue its serving certificate from
//! (the TLS side itself is checked with both proxies in `crates/weft/tests/proxy_xds_tls.rs`).

use weft_control::control::{Options, start};

#[tokio::test]
async fn tls_without_a_ca_directory_is_refused_at_start() {
    let config = tempfile::tempdir().unwrap();
    let mut options = Options::new(config.path(), "127.0.0.1:0".parse().unwrap());
    options.xds_tls_address = Some("127.0.0.1:0".parse().unwrap());
    let err = match start(&options).await {
        Ok(_) => panic!("started without a CA"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("--ca-dir"), "{err}");
}
