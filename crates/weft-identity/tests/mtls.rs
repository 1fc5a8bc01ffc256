//! Mutual TLS between two workloads holding certificates from the mesh CA, over loopback:
//! each side accepts the other only for the identities it allows and a chain to the
//! bundle it trusts.

use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use weft_identity::ca::{self, WORKLOAD_TTL};
use weft_identity::tls::{client_config, server_config};
use weft_identity::{Ca, Credentials, Peers, SpiffeId, TrustBundle};

/// Bounded waits, so a broken handshake fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(20);

fn workload(ca: &Ca, ns: &str, sa: &str) -> (SpiffeId, Credentials) {
    let id = SpiffeId::workload("cluster.local", ns, sa).unwrap();
    let (key, csr) = ca::key_and_request().unwrap();
    let issued = ca.sign(&csr, &id, WORKLOAD_TTL, SystemTime::now()).unwrap();
    (id, Credentials::from_pem(&issued.chain_pem, &key).unwrap())
}

struct Side {
    bundle: TrustBundle,
    own: Credentials,
    peers: Peers,
}

/// One exchange: the client sends "ping", the server answers "pong". `Err` carries what
/// each side saw fail (client, then server).
async fn exchange(server: Side, client: Side) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(
        server_config(&server.bundle, server.own, server.peers, &[b"h2"]).unwrap(),
    );
    let serving = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut tls = acceptor
            .accept(tcp)
            .await
            .map_err(|e| format!("server: {e}"))?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf)
            .await
            .map_err(|e| format!("server: {e}"))?;
        tls.write_all(b"pong")
            .await
            .map_err(|e| format!("server: {e}"))?;
        tls.shutdown().await.map_err(|e| format!("server: {e}"))?;
        Ok::<_, String>(buf)
    });
    let connector = TlsConnector::from(
        client_config(&client.bundle, Some(client.own), client.peers, &[b"h2"]).unwrap(),
    );
    let talking = async {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let name = "outbound_.80_._.reviews.default.svc.cluster.local"
            .try_into()
            .unwrap();
        let mut tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("client: {e}"))?;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        tls.write_all(b"ping")
            .await
            .map_err(|e| format!("client: {e}"))?;
        let mut buf = Vec::new();
        tls.read_to_end(&mut buf)
            .await
            .map_err(|e| format!("client: {e}"))?;
        Ok::<_, String>(buf)
    };
    let answer = tokio::time::timeout(WAIT, talking)
        .await
        .expect("client in time");
    let heard = tokio::time::timeout(WAIT, serving)
        .await
        .expect("server in time")
        .unwrap();
    match (heard, answer) {
        (Ok(heard), Ok(answer)) => {
            assert_eq!((&heard, answer.as_slice()), (b"ping", &b"pong"[..]));
            Ok(())
        }
        // Both sides' view: the one that refused says why, the other sees its alert.
        (heard, answer) => Err(format!("{:?} / {:?}", answer.err(), heard.err())),
    }
}

#[tokio::test]
async fn workloads_accept_each_other_only_for_the_identities_they_allow() {
    let ca = Ca::generate("cluster.local").unwrap();
    let bundle = TrustBundle::from_pem(ca.cert_pem()).unwrap();
    let (reviews, reviews_creds) = workload(&ca, "default", "reviews");
    let (productpage, page_creds) = workload(&ca, "default", "productpage");
    let side = |own: &Credentials, peers: Peers| Side {
        bundle: bundle.clone(),
        own: own.clone(),
        peers,
    };

    // Each names the other.
    exchange(
        side(&reviews_creds, Peers::OneOf(vec![productpage.clone()])),
        side(&page_creds, Peers::OneOf(vec![reviews.clone()])),
    )
    .await
    .unwrap();
    // Any identity of the trust domain.
    exchange(
        side(&reviews_creds, Peers::TrustDomain("cluster.local".into())),
        side(&page_creds, Peers::TrustDomain("cluster.local".into())),
    )
    .await
    .unwrap();

    // The client expects another service account behind the service.
    let ratings = SpiffeId::workload("cluster.local", "default", "ratings").unwrap();
    let err = exchange(
        side(&reviews_creds, Peers::TrustDomain("cluster.local".into())),
        side(&page_creds, Peers::OneOf(vec![ratings.clone()])),
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("client: unexpected error: peer identity spiffe://cluster.local/ns/default/sa/reviews is not spiffe://cluster.local/ns/default/sa/ratings"),
        "{err}"
    );
    // The server does not allow this client.
    let err = exchange(
        side(&reviews_creds, Peers::OneOf(vec![ratings])),
        side(&page_creds, Peers::OneOf(vec![reviews.clone()])),
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("server: unexpected error: peer identity spiffe://cluster.local/ns/default/sa/productpage is not spiffe://cluster.local/ns/default/sa/ratings"),
        "{err}"
    );
    // Another trust domain.
    let err = exchange(
        side(&reviews_creds, Peers::TrustDomain("cluster.local".into())),
        side(&page_creds, Peers::TrustDomain("example.org".into())),
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("is not an identity of trust domain example.org"),
        "{err}"
    );
}

#[tokio::test]
async fn a_certificate_from_another_authority_is_refused() {
    let ca = Ca::generate("cluster.local").unwrap();
    let impostor_ca = Ca::generate("cluster.local").unwrap();
    let bundle = TrustBundle::from_pem(ca.cert_pem()).unwrap();
    let (_, good) = workload(&ca, "default", "reviews");
    // Same identity, signed by a root the server does not trust.
    let (_, forged) = workload(&impostor_ca, "default", "productpage");
    let any = || Peers::TrustDomain("cluster.local".into());
    let err = exchange(
        Side {
            bundle: bundle.clone(),
            own: good.clone(),
            peers: any(),
        },
        Side {
            bundle: bundle.clone(),
            own: forged.clone(),
            peers: any(),
        },
    )
    .await
    .unwrap_err();
    assert!(err.contains("server: invalid peer certificate"), "{err}");
    // And the other way round: a server with a forged certificate.
    let err = exchange(
        Side {
            bundle: bundle.clone(),
            own: forged,
            peers: any(),
        },
        Side {
            bundle,
            own: good,
            peers: any(),
        },
    )
    .await
    .unwrap_err();
    assert!(err.contains("client: invalid peer certificate"), "{err}");
}

#[test]
fn bad_pem_is_reported_with_what_it_was() {
    let err = TrustBundle::from_pem("").unwrap_err().to_string();
    assert!(err.contains("trust bundle"), "{err}");
    let ca = Ca::generate("cluster.local").unwrap();
    let err = Credentials::from_pem(ca.cert_pem(), "not a key")
        .unwrap_err()
        .to_string();
    assert!(err.contains("private key"), "{err}");
}
