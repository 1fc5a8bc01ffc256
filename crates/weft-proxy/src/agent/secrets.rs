//! The secrets a proxy's agent serves, by the names istiod's clusters and listeners ask
//! for: `default` and `ROOTCA` (the workload's certificate and the mesh's roots, from
//! Istio's file-mounted certificate names), `file-root:PATH` and `file-cert:CERT~KEY`
//! (files a DestinationRule names), and `file-root:system` (the OS's roots). Each comes
//! inline, as istio-agent sends them, so the proxy never reads a file itself.

use std::path::{Path, PathBuf};

use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, Secret, TlsCertificate, secret,
};

/// Istio's file-mounted workload certificate, key and roots, inside the certs directory.
pub const CERT_CHAIN_FILE: &str = "cert-chain.pem";
pub const KEY_FILE: &str = "key.pem";
pub const ROOT_CERT_FILE: &str = "root-cert.pem";

/// Where the OS keeps its roots, first found first (istio-agent's list).
const SYSTEM_ROOTS: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error(
        "secret {0:?}: unknown name (expected `default`, `ROOTCA`, `file-root:PATH` or \
         `file-cert:CERT~KEY`)"
    )]
    UnknownName(String),
    #[error(
        "secret {0:?}: the workload's certificate comes from the control plane's CA \
         (--ca-address) or a certs directory (--certs-dir), and there is none yet"
    )]
    NoOwnCertificate(String),
    #[error("secret {name:?}: cannot read {path}: {reason}")]
    Unreadable {
        name: String,
        path: PathBuf,
        reason: String,
    },
    #[error("secret {name:?}: {path} holds no PEM {what}")]
    NotPem {
        name: String,
        path: PathBuf,
        what: &'static str,
    },
    #[error("secret {0:?}: none of the OS's root bundles exists ({1})")]
    NoSystemRoots(String, String),
}

/// Where the workload's own certificate (`default`) and roots (`ROOTCA`) come from.
#[derive(Clone, Copy, Debug)]
pub enum Own<'a> {
    /// Nowhere yet (no certs directory, or the CA has not answered).
    None,
    /// Istio's file-mounted names in a directory.
    Dir(&'a Path),
    /// What the control plane's CA issued this agent.
    Issued(&'a super::ca_client::Issued),
}

/// Loads secret `name`, the workload's own from `own`.
pub fn load(name: &str, own: Own<'_>) -> Result<Secret, SecretError> {
    let kind = match (name, own) {
        ("default" | "ROOTCA", Own::None) => {
            return Err(SecretError::NoOwnCertificate(name.into()));
        }
        ("default", Own::Dir(dir)) => {
            certificate(name, &dir.join(CERT_CHAIN_FILE), &dir.join(KEY_FILE))?
        }
        ("ROOTCA", Own::Dir(dir)) => roots(name, &dir.join(ROOT_CERT_FILE))?,
        ("default", Own::Issued(issued)) => secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: inline(issued.chain_pem.clone().into_bytes()),
            private_key: inline(issued.key_pem.clone().into_bytes()),
            ..Default::default()
        }),
        ("ROOTCA", Own::Issued(issued)) => {
            secret::Type::ValidationContext(CertificateValidationContext {
                trusted_ca: inline(issued.root_pem.clone().into_bytes()),
                ..Default::default()
            })
        }
        _ => {
            if let Some(path) = name.strip_prefix("file-root:") {
                if path == "system" {
                    let found = SYSTEM_ROOTS
                        .iter()
                        .map(Path::new)
                        .find(|p| p.is_file())
                        .ok_or_else(|| {
                            SecretError::NoSystemRoots(name.into(), SYSTEM_ROOTS.join(", "))
                        })?;
                    roots(name, found)?
                } else {
                    roots(name, Path::new(path))?
                }
            } else if let Some(pair) = name.strip_prefix("file-cert:")
                && let Some((cert, key)) = pair.split_once('~')
                && !cert.is_empty()
                && !key.is_empty()
            {
                certificate(name, Path::new(cert), Path::new(key))?
            } else {
                return Err(SecretError::UnknownName(name.into()));
            }
        }
    };
    Ok(Secret {
        name: name.into(),
        r#type: Some(kind),
    })
}

fn read(name: &str, path: &Path) -> Result<Vec<u8>, SecretError> {
    std::fs::read(path).map_err(|e| SecretError::Unreadable {
        name: name.into(),
        path: path.into(),
        reason: e.to_string(),
    })
}

/// The file's bytes, if it holds a PEM block whose label ends with `label`.
fn pem(name: &str, path: &Path, label: &str, what: &'static str) -> Result<Vec<u8>, SecretError> {
    let bytes = read(name, path)?;
    let text = String::from_utf8_lossy(&bytes);
    let found = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("-----BEGIN "))
        .any(|rest| rest.trim_end_matches("-----").ends_with(label));
    if !found {
        return Err(SecretError::NotPem {
            name: name.into(),
            path: path.into(),
            what,
        });
    }
    Ok(bytes)
}

fn inline(bytes: Vec<u8>) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(data_source::Specifier::InlineBytes(bytes)),
        ..Default::default()
    })
}

fn certificate(name: &str, chain: &Path, key: &Path) -> Result<secret::Type, SecretError> {
    Ok(secret::Type::TlsCertificate(TlsCertificate {
        certificate_chain: inline(pem(name, chain, "CERTIFICATE", "certificate")?),
        private_key: inline(pem(name, key, "PRIVATE KEY", "private key")?),
        ..Default::default()
    }))
}

fn roots(name: &str, path: &Path) -> Result<secret::Type, SecretError> {
    Ok(secret::Type::ValidationContext(
        CertificateValidationContext {
            trusted_ca: inline(pem(name, path, "CERTIFICATE", "certificate")?),
            ..Default::default()
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

    fn inline_of(d: &Option<DataSource>) -> &[u8] {
        match d.as_ref().and_then(|d| d.specifier.as_ref()) {
            Some(data_source::Specifier::InlineBytes(b)) => b,
            other => panic!("inline bytes, not {other:?}"),
        }
    }

    #[test]
    fn names_resolve_to_inline_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(dir.join(CERT_CHAIN_FILE), CERT).unwrap();
        std::fs::write(dir.join(KEY_FILE), KEY).unwrap();
        std::fs::write(dir.join(ROOT_CERT_FILE), CERT).unwrap();
        let Some(secret::Type::TlsCertificate(c)) = load("default", Own::Dir(dir)).unwrap().r#type
        else {
            panic!("a certificate");
        };
        assert_eq!(inline_of(&c.certificate_chain), CERT.as_bytes());
        assert_eq!(inline_of(&c.private_key), KEY.as_bytes());
        let root = load("ROOTCA", Own::Dir(dir)).unwrap();
        assert!(matches!(
            root.r#type,
            Some(secret::Type::ValidationContext(_))
        ));
        let path = dir.join(ROOT_CERT_FILE);
        let named = load(&format!("file-root:{}", path.display()), Own::None).unwrap();
        assert_eq!(named.name, format!("file-root:{}", path.display()));
        let pair = format!(
            "file-cert:{}~{}",
            dir.join(CERT_CHAIN_FILE).display(),
            dir.join(KEY_FILE).display()
        );
        assert!(matches!(
            load(&pair, Own::None).unwrap().r#type,
            Some(secret::Type::TlsCertificate(_))
        ));
    }

    #[test]
    fn what_cannot_be_served_says_why() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        assert_eq!(
            load("default", Own::None),
            Err(SecretError::NoOwnCertificate("default".into()))
        );
        assert!(matches!(
            load("kubernetes://x", Own::Dir(dir)),
            Err(SecretError::UnknownName(_))
        ));
        assert!(matches!(
            load("file-cert:only-a-cert", Own::Dir(dir)),
            Err(SecretError::UnknownName(_))
        ));
        let missing = load("ROOTCA", Own::Dir(dir)).unwrap_err().to_string();
        assert!(
            missing.contains("root-cert.pem") && missing.contains("cannot read"),
            "{missing}"
        );
        std::fs::write(dir.join("key-as-root.pem"), KEY).unwrap();
        let wrong = load(
            &format!("file-root:{}", dir.join("key-as-root.pem").display()),
            Own::None,
        )
        .unwrap_err();
        assert!(
            matches!(
                wrong,
                SecretError::NotPem {
                    what: "certificate",
                    ..
                }
            ),
            "{wrong}"
        );
    }
}
