//! Upstream validation on loopback handshakes, with certificates from two meshes' CAs.

use std::time::SystemTime;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::*;
use crate::ca::{self, Ca, WORKLOAD_TTL};
use crate::spiffe::SpiffeId;
use crate::tls::{Peers, server_config, serving_config};

/// Istio's SNI, which no certificate names: Envoy does not check it, nor does Weft.
const SNI: &str = "outbound_.9080_._.reviews.default.svc.cluster.local";

fn workload(ca: &Ca, sa: &str) -> Credentials {
    let id = SpiffeId::workload("cluster.local", "default", sa).unwrap();
    let (key, csr) = ca::key_and_request().unwrap();
    let issued = ca.sign(&csr, &id, WORKLOAD_TTL, SystemTime::now()).unwrap();
    Credentials::from_pem(&issued.chain_pem, &key).unwrap()
}

fn any(exact: &str) -> SanMatcher {
    SanMatcher {
        kind: SanKind::Any,
        exact: exact.into(),
    }
}

fn upstream(roots: Option<&Ca>, sans: Vec<SanMatcher>, own: Option<Credentials>) -> Upstream {
    Upstream {
        roots: roots.map(|ca| TrustBundle::from_pem(ca.root_pem()).unwrap()),
        crls: Vec::new(),
        sans,
        san_override: Vec::new(),
        own,
        alpn: vec![b"istio".to_vec()],
        tls13: true,
    }
}

/// Handshakes with a server configured by `server`; the client's error, if any.
async fn handshake(server: Arc<rustls::ServerConfig>, client: Upstream) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        // The server's view does not matter here; a refused client ends it.
        let _ = TlsAcceptor::from(server).accept(tcp).await;
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let connector = TlsConnector::from(client_config(client).unwrap());
    let name = ServerName::try_from(SNI.to_string()).unwrap();
    let result = connector
        .connect(name, tcp)
        .await
        .map(drop)
        .map_err(|e| e.to_string());
    serving.abort();
    result
}

#[tokio::test]
async fn any_matching_san_under_the_roots_passes_whatever_the_sni() {
    let mesh = Ca::generate("cluster.local").unwrap();
    let server = serving_config(workload(&mesh, "reviews"), &[b"istio"]).unwrap();
    let reviews = "spiffe://cluster.local/ns/default/sa/reviews";
    let ok = handshake(
        server.clone(),
        upstream(
            Some(&mesh),
            vec![any("spiffe://x/ns/a/sa/b"), any(reviews)],
            None,
        ),
    )
    .await;
    assert_eq!(ok, Ok(()));
    let wrong = handshake(
        server.clone(),
        upstream(
            Some(&mesh),
            vec![any("spiffe://cluster.local/ns/default/sa/ratings")],
            None,
        ),
    )
    .await;
    let wrong = wrong.unwrap_err();
    assert!(wrong.contains("NotValidForName"), "{wrong}");
    // A typed matcher looks at its own kind of SAN only.
    let typed = handshake(
        server,
        upstream(
            Some(&mesh),
            vec![SanMatcher {
                kind: SanKind::Dns,
                exact: reviews.into(),
            }],
            None,
        ),
    )
    .await;
    assert!(typed.is_err());
}

/// `auto_san_validation`'s override list is checked on top of the configured matchers.
#[tokio::test]
async fn the_san_override_must_match_as_well_as_the_matchers() {
    let mesh = Ca::generate("cluster.local").unwrap();
    let (issued, key) = mesh
        .serving(
            &["*.bank.internal"],
            crate::ca::WORKLOAD_TTL,
            std::time::SystemTime::now(),
        )
        .unwrap();
    let creds = Credentials::from_pem(&issued.chain_pem, &key).unwrap();
    let server = serving_config(creds, &[b"istio"]).unwrap();
    let with_override = |sans: Vec<SanMatcher>, host: &str| {
        let mut u = upstream(Some(&mesh), sans, None);
        u.san_override = vec![host.to_string()];
        u
    };
    // Alone: the host must be one the certificate names (DNS wildcards as Envoy matches them).
    assert_eq!(
        handshake(
            server.clone(),
            with_override(Vec::new(), "api.bank.internal")
        )
        .await,
        Ok(())
    );
    let other = handshake(
        server.clone(),
        with_override(Vec::new(), "api.shop.internal"),
    )
    .await;
    assert!(other.unwrap_err().contains("NotValidForName"));
    // With matchers, both must pass.
    let both = handshake(
        server.clone(),
        with_override(vec![any("*.bank.internal")], "api.bank.internal"),
    )
    .await;
    assert_eq!(both, Ok(()));
    let matcher_fails = handshake(
        server,
        with_override(vec![any("ledger.internal")], "api.bank.internal"),
    )
    .await;
    assert!(matcher_fails.is_err());
}

#[tokio::test]
async fn another_meshs_chain_fails_unless_nothing_is_checked() {
    let mesh = Ca::generate("cluster.local").unwrap();
    let other = Ca::generate("cluster.local").unwrap();
    let server = serving_config(workload(&other, "reviews"), &[]).unwrap();
    let chained = handshake(
        server.clone(),
        upstream(
            Some(&mesh),
            vec![any("spiffe://cluster.local/ns/default/sa/reviews")],
            None,
        ),
    )
    .await;
    let chained = chained.unwrap_err();
    // Both roots have the same name, so the chain is built and its signature fails.
    assert!(
        chained.contains("invalid peer certificate") && !chained.contains("NotValidForName"),
        "{chained}"
    );
    // Envoy's insecure: no roots, no matchers.
    assert_eq!(
        handshake(server, upstream(None, Vec::new(), None)).await,
        Ok(())
    );
}

#[tokio::test]
async fn the_client_certificate_is_presented() {
    let mesh = Ca::generate("cluster.local").unwrap();
    let bundle = TrustBundle::from_pem(mesh.root_pem()).unwrap();
    let gateway = SpiffeId::workload("cluster.local", "default", "gateway").unwrap();
    let server = server_config(
        &bundle,
        workload(&mesh, "reviews"),
        Peers::OneOf(vec![gateway]),
        &[],
    )
    .unwrap();
    let sans = vec![any("spiffe://cluster.local/ns/default/sa/reviews")];
    // With TLS 1.3 the server judges the certificate after the client's handshake ends,
    // so the check is that a presented certificate completes it, 1.2 and 1.3.
    for tls13 in [true, false] {
        let mut with = upstream(Some(&mesh), sans.clone(), Some(workload(&mesh, "gateway")));
        with.tls13 = tls13;
        assert_eq!(
            handshake(server.clone(), with).await,
            Ok(()),
            "tls13 {tls13}"
        );
    }
    let mut without = upstream(Some(&mesh), sans, None);
    without.tls13 = false;
    assert!(
        handshake(server, without).await.is_err(),
        "TLS 1.2 refuses at once"
    );
}

#[test]
fn dns_sans_match_as_envoy_matches_them() {
    let m = |exact: &str| SanMatcher {
        kind: SanKind::Any,
        exact: exact.into(),
    };
    assert!(matches(
        &m("foo.example.com"),
        SanKind::Dns,
        "*.example.com"
    ));
    assert!(matches(
        &m("FOO.example.com"),
        SanKind::Dns,
        "foo.EXAMPLE.com"
    ));
    assert!(!matches(
        &m("a.b.example.com"),
        SanKind::Dns,
        "*.example.com"
    ));
    assert!(!matches(&m("example.com"), SanKind::Dns, "*.example.com"));
    assert!(!matches(&m(".example.com"), SanKind::Dns, "*.example.com"));
    // Only DNS names have wildcards.
    assert!(!matches(&m("spiffe://a/x"), SanKind::Uri, "spiffe://a/*"));
    assert!(matches(&m("10.0.0.1"), SanKind::IpAddress, "10.0.0.1"));
}
