//! The mesh's certificate authority: a root that signs workload certificates from the
//! certificate signing requests workloads send, as istiod's CA does. The identity in a
//! certificate is the one the caller vouches for, never what the request asks for: a
//! workload proves who it is to the control plane, and the CA writes that down.

use std::time::{Duration, SystemTime};

use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use time::OffsetDateTime;

use crate::spiffe::SpiffeId;

/// Istio's default workload certificate lifetime (`DEFAULT_WORKLOAD_CERT_TTL`).
pub const WORKLOAD_TTL: Duration = Duration::from_secs(24 * 3600);
/// Istio's longest allowed workload certificate lifetime (`MAX_WORKLOAD_CERT_TTL`).
pub const MAX_WORKLOAD_TTL: Duration = Duration::from_secs(90 * 24 * 3600);
/// How long a generated root is valid (Istio's self-signed root: ten years).
const ROOT_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Certificates start this long before they are issued, so a peer whose clock is a little
/// behind does not refuse a certificate that is not yet valid for it.
const BACKDATE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("certificate authority: {0}")]
    Crypto(#[from] rcgen::Error),
    #[error("certificate signing request: {0}")]
    Request(rcgen::Error),
    #[error("certificate lifetime {asked:?} is longer than the allowed {max:?}")]
    TooLong { asked: Duration, max: Duration },
    #[error("certificate time out of range: {0}")]
    Time(String),
    #[error("not a PEM certificate: {0}")]
    Certificate(String),
    #[error("{}: {source}", path.display())]
    File {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// A certificate the CA issued.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The workload certificate, then the root: what a workload presents.
    pub chain_pem: String,
    pub not_after: SystemTime,
}

/// A CA certificate and its key, with what issued certificates are chained to and trusted
/// by: for a self-signed root, the root itself; for a CA plugged in the way Istio's
/// `cacerts` are, its `cert-chain.pem` and `root-cert.pem`.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    key_pem: String,
    /// What follows an issued certificate in its chain (the CA's certificate onwards).
    chain_pem: String,
    /// The trust bundle.
    root_pem: String,
}

/// Istio's file names for a plugged-in CA (the `cacerts` secret), which a generated root is
/// saved under too.
pub const CA_CERT_FILE: &str = "ca-cert.pem";
pub const CA_KEY_FILE: &str = "ca-key.pem";
pub const CERT_CHAIN_FILE: &str = "cert-chain.pem";
pub const ROOT_CERT_FILE: &str = "root-cert.pem";

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

impl Ca {
    /// A new self-signed root for `trust_domain` (its organization, as Istio names it).
    pub fn generate(trust_domain: &str) -> Result<Self, CaError> {
        let key = KeyPair::generate()?;
        let now = SystemTime::now();
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, trust_domain);
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = at(now - BACKDATE)?;
        params.not_after = at(now + ROOT_TTL)?;
        params.serial_number = Some(serial());
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            chain_pem: cert.pem(),
            root_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA kept in `dir` under Istio's plug-in file names (`ca-cert.pem`, `ca-key.pem`,
    /// and when the CA is an intermediate, `cert-chain.pem` and `root-cert.pem`); when
    /// `dir` holds none, a new root for `trust_domain`, saved there (the key readable by
    /// its owner alone) so that restarts keep the mesh's trust.
    pub fn load_or_create(dir: &std::path::Path, trust_domain: &str) -> Result<Self, CaError> {
        let read = |name: &str| -> Result<Option<String>, CaError> {
            match std::fs::read_to_string(dir.join(name)) {
                Ok(text) => Ok(Some(text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(CaError::File {
                    path: dir.join(name),
                    source,
                }),
            }
        };
        if let (Some(cert), Some(key)) = (read(CA_CERT_FILE)?, read(CA_KEY_FILE)?) {
            let mut ca = Self::from_pem(&cert, &key)?;
            if let Some(chain) = read(CERT_CHAIN_FILE)? {
                ca.chain_pem = chain;
            }
            if let Some(root) = read(ROOT_CERT_FILE)? {
                ca.root_pem = root;
            }
            return Ok(ca);
        }
        let ca = Self::generate(trust_domain)?;
        std::fs::create_dir_all(dir).map_err(|source| CaError::File {
            path: dir.to_path_buf(),
            source,
        })?;
        let write = |name: &str, text: &str, private: bool| -> Result<(), CaError> {
            let path = dir.join(name);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(
                &mut options,
                if private { 0o600 } else { 0o644 },
            );
            let mut file = options.open(&path).map_err(|source| CaError::File {
                path: path.clone(),
                source,
            })?;
            std::io::Write::write_all(&mut file, text.as_bytes())
                .map_err(|source| CaError::File { path, source })
        };
        write(CA_KEY_FILE, &ca.key_pem, true)?;
        write(CA_CERT_FILE, &ca.cert_pem, false)?;
        write(ROOT_CERT_FILE, &ca.root_pem, false)?;
        Ok(ca)
    }

    /// A root from its certificate and key (PEM), such as a generated one saved before.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CaError> {
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        Ok(Self {
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
            chain_pem: cert_pem.to_string(),
            root_pem: cert_pem.to_string(),
            issuer,
        })
    }

    /// The CA's own certificate.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The trust bundle every workload verifies its peers with.
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// The root's private key, for saving the CA.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Signs the key of `csr_pem` (whose signature must be valid) into a certificate for
    /// `id` valid for `ttl` from `now`. Names the request asks for are ignored.
    pub fn sign(
        &self,
        csr_pem: &str,
        id: &SpiffeId,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Issued, CaError> {
        let request =
            CertificateSigningRequestParams::from_pem(csr_pem).map_err(CaError::Request)?;
        let uri = Ia5String::try_from(id.to_string())?;
        self.issue(
            &request.public_key,
            vec![SanType::URI(uri)],
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            ttl,
            now,
        )
    }

    /// A certificate and new key for a server known by the DNS `names` (the control
    /// plane's, as istiod serves xDS over TLS as `istiod.istio-system.svc`), valid for
    /// `ttl` from `now`. Returns the issued chain and the key (PEM).
    pub fn serving(
        &self,
        names: &[&str],
        ttl: Duration,
        now: SystemTime,
    ) -> Result<(Issued, String), CaError> {
        let key = KeyPair::generate()?;
        let names = names
            .iter()
            .map(|n| Ok(SanType::DnsName(Ia5String::try_from(*n)?)))
            .collect::<Result<_, rcgen::Error>>()?;
        let issued = self.issue(
            &key,
            names,
            vec![ExtendedKeyUsagePurpose::ServerAuth],
            ttl,
            now,
        )?;
        Ok((issued, key.serialize_pem()))
    }

    /// A leaf certificate for `key` naming `names` alone (no subject, as Istio's
    /// workload certificates), chained to this CA.
    fn issue(
        &self,
        key: &impl rcgen::PublicKeyData,
        names: Vec<SanType>,
        usages: Vec<ExtendedKeyUsagePurpose>,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Issued, CaError> {
        if ttl > MAX_WORKLOAD_TTL {
            return Err(CaError::TooLong {
                asked: ttl,
                max: MAX_WORKLOAD_TTL,
            });
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = names;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = usages;
        params.use_authority_key_identifier_extension = true;
        params.not_before = at(now - BACKDATE)?;
        let not_after = now + ttl;
        params.not_after = at(not_after)?;
        params.serial_number = Some(serial());
        let cert = params.signed_by(key, &self.issuer)?;
        Ok(Issued {
            chain_pem: format!("{}{}", cert.pem(), self.chain_pem),
            not_after,
        })
    }
}

/// When the first certificate in `pem` stops being valid (an agent renews at half of it).
pub fn not_after(pem: &str) -> Result<SystemTime, CaError> {
    let bad = |e: &dyn std::fmt::Display| CaError::Certificate(e.to_string());
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| bad(&e))?;
    let cert = block.parse_x509().map_err(|e| bad(&e))?;
    let seconds = u64::try_from(cert.validity().not_after.timestamp())
        .map_err(|_| CaError::Time("expiry before 1970".into()))?;
    Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
}

/// A new key and a certificate signing request for it, as a workload makes them (the CA
/// decides the identity, so the request names none). Returns (key PEM, CSR PEM).
pub fn key_and_request() -> Result<(String, String), CaError> {
    let key = KeyPair::generate()?;
    let csr = CertificateParams::default().serialize_request(&key)?;
    Ok((key.serialize_pem(), csr.pem()?))
}

fn at(t: SystemTime) -> Result<OffsetDateTime, CaError> {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|e| CaError::Time(e.to_string()))?
        .as_secs();
    let secs = i64::try_from(secs).map_err(|e| CaError::Time(e.to_string()))?;
    OffsetDateTime::from_unix_timestamp(secs).map_err(|e| CaError::Time(e.to_string()))
}

/// A random positive 128-bit serial: RFC 5280 wants serials unique per issuer.
fn serial() -> SerialNumber {
    let mut bytes = fastrand::u128(..).to_be_bytes();
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    use x509_parser::prelude::*;

    fn pem_certs(chain: &str) -> Vec<Vec<u8>> {
        x509_parser::pem::Pem::iter_from_buffer(chain.as_bytes())
            .map(|p| p.unwrap().contents)
            .collect()
    }

    #[test]
    fn a_workload_certificate_carries_the_vouched_identity_for_its_lifetime() {
        let ca = Ca::generate("cluster.local").unwrap();
        let id = SpiffeId::workload("cluster.local", "shop", "cart").unwrap();
        let (_key, csr) = key_and_request().unwrap();
        let now = SystemTime::now();
        let issued = ca.sign(&csr, &id, WORKLOAD_TTL, now).unwrap();
        let ders = pem_certs(&issued.chain_pem);
        assert_eq!(ders.len(), 2, "leaf and root");
        let (_, leaf) = X509Certificate::from_der(&ders[0]).unwrap();
        let (_, root) = X509Certificate::from_der(&ders[1]).unwrap();
        // Signed by the root, which is a CA for the trust domain.
        leaf.verify_signature(Some(root.public_key())).unwrap();
        assert!(root.is_ca());
        assert_eq!(
            root.subject()
                .iter_organization()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            "cluster.local"
        );
        assert_eq!(leaf.issuer(), root.subject());
        // The identity as the one URI SAN, critical as the empty subject requires.
        assert!(leaf.subject().iter().next().is_none());
        let san = leaf
            .extensions()
            .iter()
            .find(|e| {
                matches!(
                    e.parsed_extension(),
                    ParsedExtension::SubjectAlternativeName(_)
                )
            })
            .unwrap();
        assert!(san.critical);
        let ParsedExtension::SubjectAlternativeName(names) = san.parsed_extension() else {
            unreachable!()
        };
        assert_eq!(
            names.general_names,
            vec![GeneralName::URI("spiffe://cluster.local/ns/shop/sa/cart")]
        );
        // Usable for both ends of mutual TLS, for 24 hours.
        let eku = leaf.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
        assert!(!leaf.is_ca());
        let lifetime =
            leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp();
        assert_eq!(lifetime, (WORKLOAD_TTL + BACKDATE).as_secs() as i64);
        // Two certificates for one key are still two serials.
        let again = ca.sign(&csr, &id, WORKLOAD_TTL, now).unwrap();
        let again = pem_certs(&again.chain_pem);
        let (_, other) = X509Certificate::from_der(&again[0]).unwrap();
        assert_ne!(leaf.raw_serial(), other.raw_serial());
    }

    #[test]
    fn a_saved_root_signs_as_the_generated_one() {
        let ca = Ca::generate("example.org").unwrap();
        let loaded = Ca::from_pem(ca.cert_pem(), ca.key_pem()).unwrap();
        let (_key, csr) = key_and_request().unwrap();
        let id = SpiffeId::workload("example.org", "a", "b").unwrap();
        let issued = loaded
            .sign(&csr, &id, WORKLOAD_TTL, SystemTime::now())
            .unwrap();
        let ders = pem_certs(&issued.chain_pem);
        let (_, leaf) = X509Certificate::from_der(&ders[0]).unwrap();
        let root = pem_certs(ca.cert_pem());
        let (_, root) = X509Certificate::from_der(&root[0]).unwrap();
        leaf.verify_signature(Some(root.public_key())).unwrap();
    }

    #[test]
    fn a_generated_root_is_saved_under_istios_names_and_kept_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let first = Ca::load_or_create(dir.path(), "cluster.local").unwrap();
        for name in [CA_CERT_FILE, CA_KEY_FILE, ROOT_CERT_FILE] {
            assert!(dir.path().join(name).is_file(), "{name}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(CA_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = Ca::load_or_create(dir.path(), "cluster.local").unwrap();
        assert_eq!(again.cert_pem(), first.cert_pem());
        assert_eq!(again.root_pem(), first.root_pem());
        // What the reloaded CA issues, the first one's root verifies.
        let (issued, _key) = again
            .serving(
                &["istiod.istio-system.svc"],
                WORKLOAD_TTL,
                SystemTime::now(),
            )
            .unwrap();
        let ders = pem_certs(&issued.chain_pem);
        let (_, leaf) = X509Certificate::from_der(&ders[0]).unwrap();
        let root = pem_certs(first.root_pem());
        let (_, root) = X509Certificate::from_der(&root[0]).unwrap();
        leaf.verify_signature(Some(root.public_key())).unwrap();
        let names = leaf.subject_alternative_name().unwrap().unwrap().value;
        assert_eq!(
            names.general_names,
            vec![GeneralName::DNSName("istiod.istio-system.svc")]
        );
        // A CA directory that cannot be written is an error naming it.
        let err = Ca::load_or_create(&dir.path().join(CA_KEY_FILE).join("x"), "cluster.local")
            .unwrap_err()
            .to_string();
        assert!(err.contains(CA_KEY_FILE), "{err}");
    }

    #[test]
    fn bad_requests_and_lifetimes_are_refused() {
        let ca = Ca::generate("cluster.local").unwrap();
        let id = SpiffeId::workload("cluster.local", "a", "b").unwrap();
        let (_key, csr) = key_and_request().unwrap();
        let err = ca
            .sign(
                &csr,
                &id,
                MAX_WORKLOAD_TTL + Duration::from_secs(1),
                SystemTime::now(),
            )
            .unwrap_err();
        assert!(matches!(err, CaError::TooLong { .. }), "{err}");
        // A request whose signature does not match its key.
        let mut der = pem_certs(&csr.replace("CERTIFICATE REQUEST", "CERTIFICATE"))[0].clone();
        let last = der.len() - 1;
        der[last] ^= 0xff;
        let tampered = ::pem::encode(&::pem::Pem::new("CERTIFICATE REQUEST", der));
        let err = ca
            .sign(&tampered, &id, WORKLOAD_TTL, SystemTime::now())
            .unwrap_err();
        assert!(matches!(err, CaError::Request(_)), "{err}");
        assert!(matches!(
            ca.sign("not a request", &id, WORKLOAD_TTL, SystemTime::now()),
            Err(CaError::Request(_))
        ));
    }
}
