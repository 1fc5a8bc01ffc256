//! A TLS 1.3 ClientHello built by hand, for testing listener filter chain selection by SNI,
//! ALPN and transport protocol (`tls_inspector`) without a TLS stack: a proxy only reads the
//! ClientHello to pick a chain, and with `tcp_proxy` behind it the bytes go on to a TCP echo,
//! so the test sees which backend got them. The message is well formed (RFC 8446 section 4.1.2)
//! so a strict parser such as BoringSSL's accepts it; its key share is a fixed, unused value.

/// Cipher suites offered: TLS 1.3 AES-128-GCM, AES-256-GCM, ChaCha20, then two TLS 1.2 ECDHE.
const CIPHER_SUITES: [u16; 5] = [0x1301, 0x1302, 0x1303, 0xc02f, 0xc02b];
/// x25519, secp256r1.
const GROUPS: [u16; 2] = [0x001d, 0x0017];
/// ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256.
const SIGNATURE_ALGORITHMS: [u16; 3] = [0x0403, 0x0804, 0x0401];

/// The bytes of one TLS record holding a ClientHello with `server_name` (if any) and ALPN
/// `protocols` (if any).
pub fn client_hello(server_name: Option<&str>, protocols: &[&str]) -> Vec<u8> {
    let mut extensions = Vec::new();
    if let Some(name) = server_name {
        // server_name_list: one host_name entry.
        let mut entry = vec![0u8];
        put_vec16(&mut entry, name.as_bytes());
        let mut list = Vec::new();
        put_vec16(&mut list, &entry);
        extension(&mut extensions, 0x0000, &list);
    }
    extension(&mut extensions, 0x000a, &vec16_of_u16(&GROUPS));
    extension(
        &mut extensions,
        0x000d,
        &vec16_of_u16(&SIGNATURE_ALGORITHMS),
    );
    if !protocols.is_empty() {
        let mut names = Vec::new();
        for p in protocols {
            put_vec8(&mut names, p.as_bytes());
        }
        let mut list = Vec::new();
        put_vec16(&mut list, &names);
        extension(&mut extensions, 0x0010, &list);
    }
    // supported_versions: TLS 1.3, TLS 1.2.
    extension(&mut extensions, 0x002b, &[4, 0x03, 0x04, 0x03, 0x03]);
    // key_share: one x25519 share.
    let mut share = Vec::new();
    share.extend_from_slice(&0x001du16.to_be_bytes());
    put_vec16(&mut share, &[0x42; 32]);
    let mut shares = Vec::new();
    put_vec16(&mut shares, &share);
    extension(&mut extensions, 0x0033, &shares);

    let mut hello = Vec::new();
    hello.extend_from_slice(&[0x03, 0x03]);
    hello.extend_from_slice(&[0x5a; 32]);
    put_vec8(&mut hello, &[0x11; 32]);
    let mut suites = Vec::new();
    for s in CIPHER_SUITES {
        suites.extend_from_slice(&s.to_be_bytes());
    }
    put_vec16(&mut hello, &suites);
    put_vec8(&mut hello, &[0]);
    put_vec16(&mut hello, &extensions);

    let mut handshake = vec![0x01];
    handshake.extend_from_slice(&u24(hello.len()));
    handshake.extend_from_slice(&hello);

    let mut record = vec![0x16, 0x03, 0x01];
    put_vec16(&mut record, &handshake);
    record
}

fn extension(out: &mut Vec<u8>, kind: u16, body: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    put_vec16(out, body);
}

fn vec16_of_u16(items: &[u16]) -> Vec<u8> {
    let mut body = Vec::new();
    for i in items {
        body.extend_from_slice(&i.to_be_bytes());
    }
    let mut out = Vec::new();
    put_vec16(&mut out, &body);
    out
}

fn put_vec8(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(bytes);
}

fn put_vec16(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn u24(n: usize) -> [u8; 3] {
    let b = u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes();
    [b[1], b[2], b[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_consistent_and_the_name_is_in_place() {
        let hello = client_hello(Some("a.example.com"), &["h2", "http/1.1"]);
        assert_eq!(hello[0], 0x16);
        let record_len = usize::from(u16::from_be_bytes([hello[3], hello[4]]));
        assert_eq!(record_len, hello.len() - 5);
        assert_eq!(hello[5], 0x01);
        let hs_len =
            usize::from(hello[6]) << 16 | usize::from(hello[7]) << 8 | usize::from(hello[8]);
        assert_eq!(hs_len, hello.len() - 9);
        let sni = b"a.example.com";
        assert!(hello.windows(sni.len()).any(|w| w == sni));
        assert!(hello.windows(8).any(|w| w == b"http/1.1"));
        let bare = client_hello(None, &[]);
        assert!(bare.len() < hello.len());
    }
}
