//! Join tokens: how a workload proves to the CA which service account it runs as before it
//! holds a certificate — Weft's stand-in for the Kubernetes service account token istiod
//! checks by TokenReview, for meshes without a cluster. The control plane mints and checks
//! them with a key only it holds (HMAC-SHA256, `token-key` beside the CA's files); a token
//! names a namespace, a service account and an expiry, and nothing else, so the CA decides
//! the identity from it and never from what a request asks for.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::spiffe::SpiffeId;

/// The key's file in the CA directory.
pub const TOKEN_KEY_FILE: &str = "token-key";
const PREFIX: &str = "weft1";
const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is malformed: {0}")]
    Malformed(&'static str),
    #[error("the token's signature does not match this control plane's key")]
    Signature,
    #[error("the token expired {0} seconds ago")]
    Expired(u64),
    #[error("the token names no valid identity: {0}")]
    Identity(String),
    #[error("the token key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("the system's random source failed")]
    Random,
}

/// The control plane's token key.
pub struct TokenKey {
    key: hmac::Key,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    fn from_bytes(bytes: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes),
        }
    }

    /// A new random key, held in memory only.
    pub fn generate() -> Result<Self, TokenError> {
        Ok(Self::from_bytes(&random_key()?))
    }

    /// The key in `dir` (`token-key`), made there (readable by its owner alone) when absent,
    /// so tokens outlive a restart.
    pub fn load_or_create(dir: &Path) -> Result<Self, TokenError> {
        let path = dir.join(TOKEN_KEY_FILE);
        let fail = |reason: String| TokenError::Key {
            path: path.display().to_string(),
            reason,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let bytes = URL_SAFE_NO_PAD
                    .decode(text.trim())
                    .map_err(|e| fail(format!("not base64url: {e}")))?;
                if bytes.len() != KEY_LEN {
                    return Err(fail(format!(
                        "{} bytes where {KEY_LEN} were expected",
                        bytes.len()
                    )));
                }
                Ok(Self::from_bytes(&bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let bytes = random_key()?;
                std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(&path).map_err(|e| fail(e.to_string()))?;
                std::io::Write::write_all(&mut file, URL_SAFE_NO_PAD.encode(bytes).as_bytes())
                    .map_err(|e| fail(e.to_string()))?;
                Ok(Self::from_bytes(&bytes))
            }
            Err(e) => Err(fail(e.to_string())),
        }
    }

    /// A token for service account `sa` of `namespace`, valid for `ttl` from `now`.
    pub fn mint(
        &self,
        namespace: &str,
        sa: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<String, TokenError> {
        // The names must make an identity: checked now rather than at first use.
        kubernetes_name("namespace", namespace)?;
        kubernetes_name("service account", sa)?;
        let expiry = seconds(now + ttl);
        let payload = URL_SAFE_NO_PAD.encode(format!("{namespace}\n{sa}\n{expiry}"));
        let tag = hmac::sign(&self.key, format!("{PREFIX}.{payload}").as_bytes());
        Ok(format!(
            "{PREFIX}.{payload}.{}",
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        ))
    }

    /// The identity in `trust_domain` a token vouches for at `now`.
    pub fn verify(
        &self,
        token: &str,
        trust_domain: &str,
        now: SystemTime,
    ) -> Result<SpiffeId, TokenError> {
        let mut parts = token.trim().split('.');
        let (Some(prefix), Some(payload), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed("expected weft1.PAYLOAD.SIGNATURE"));
        };
        if prefix != PREFIX {
            return Err(TokenError::Malformed("not a weft1 token"));
        }
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed("the signature is not base64url"))?;
        hmac::verify(&self.key, format!("{PREFIX}.{payload}").as_bytes(), &tag)
            .map_err(|_| TokenError::Signature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|p| String::from_utf8(p).ok())
            .ok_or(TokenError::Malformed("the payload is not base64url text"))?;
        let mut fields = payload.split('\n');
        let (Some(namespace), Some(sa), Some(expiry), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(TokenError::Malformed("the payload has the wrong fields"));
        };
        let expiry: u64 = expiry
            .parse()
            .map_err(|_| TokenError::Malformed("the expiry is not a number"))?;
        let now = seconds(now);
        if now >= expiry {
            return Err(TokenError::Expired(now - expiry));
        }
        kubernetes_name("namespace", namespace)?;
        kubernetes_name("service account", sa)?;
        SpiffeId::workload(trust_domain, namespace, sa)
            .map_err(|e| TokenError::Identity(e.to_string()))
    }
}

/// A Kubernetes object name (DNS-1123 subdomain): what namespaces and service accounts
/// are, and what keeps an identity's path to exactly `ns/NS/sa/SA`.
fn kubernetes_name(what: &str, name: &str) -> Result<(), TokenError> {
    let fine = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if fine {
        Ok(())
    } else {
        Err(TokenError::Identity(format!(
            "{what} {name:?} is not a Kubernetes name (lower-case letters, digits, '-' and \
             '.', starting and ending with a letter or digit)"
        )))
    }
}

fn seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn random_key() -> Result<[u8; KEY_LEN], TokenError> {
    let mut bytes = [0u8; KEY_LEN];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| TokenError::Random)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn a_minted_token_vouches_for_its_service_account_until_it_expires() {
        let key = TokenKey::generate().unwrap();
        let now = SystemTime::now();
        let token = key.mint("shop", "cart", DAY, now).unwrap();
        let id = key.verify(&token, "corp.example", now).unwrap();
        assert_eq!(id.to_string(), "spiffe://corp.example/ns/shop/sa/cart");
        assert!(matches!(
            key.verify(&token, "corp.example", now + DAY * 2),
            Err(TokenError::Expired(s)) if s == 86_400
        ));
    }

    #[test]
    fn forged_altered_and_foreign_tokens_are_refused() {
        let key = TokenKey::generate().unwrap();
        let now = SystemTime::now();
        let token = key.mint("shop", "cart", DAY, now).unwrap();
        let other = TokenKey::generate().unwrap();
        assert_eq!(other.verify(&token, "td", now), Err(TokenError::Signature));
        // Another account's payload under this token's signature.
        let forged = key.mint("shop", "admin", DAY, now).unwrap();
        let (_, payload_and_tag) = forged.split_once('.').unwrap();
        let (payload, _) = payload_and_tag.split_once('.').unwrap();
        let tag = token.rsplit_once('.').unwrap().1;
        assert_eq!(
            key.verify(&format!("weft1.{payload}.{tag}"), "td", now),
            Err(TokenError::Signature)
        );
        assert!(matches!(
            key.verify("eyJhbGciOi.x.y", "td", now),
            Err(TokenError::Malformed(_))
        ));
        for (ns, sa) in [
            ("shop\nevil", "cart"),
            ("shop/sa/admin", "x"),
            ("shop", ""),
            ("Shop", "cart"),
        ] {
            assert!(
                matches!(key.mint(ns, sa, DAY, now), Err(TokenError::Identity(_))),
                "{ns:?} {sa:?}"
            );
        }
    }

    #[test]
    fn the_key_file_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let token = TokenKey::load_or_create(dir.path())
            .unwrap()
            .mint("a", "b", DAY, now)
            .unwrap();
        let again = TokenKey::load_or_create(dir.path()).unwrap();
        assert!(again.verify(&token, "td", now).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(TOKEN_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
