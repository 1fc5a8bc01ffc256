//! Kubernetes Secrets as the SDS secrets a DestinationRule's `credentialName` names, served
//! over ADS as istiod serves them: `kubernetes://NAME` is the Secret's certificate and key
//! (`tls.crt`/`tls.key`, or a generic Secret's `cert`/`key`), `kubernetes://NAME-cacert` its
//! CA (`ca.crt` or `cacert`, with `ca.crl` or `crl`) — or, when a Secret named `NAME-cacert`
//! exists, that Secret's CA. A proxy reads only its own namespace's, and only over a
//! connection whose client certificate proved that namespace (istiod's rule; on the
//! plaintext port no one can prove anything, so nothing is served there).

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source::Specifier};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, Secret, TlsCertificate, secret,
};
use envoy_types::pb::google::protobuf::Any;
use envoy_types::util::pack_any;
use k8s_openapi::api::core::v1 as core;
use weft_config::Resource;

/// Istio's prefix of resource names that stand for Kubernetes Secrets.
pub const PREFIX: &str = "kubernetes://";
/// The suffix of the resource (and Secret) holding a credential's CA.
pub const CA_SUFFIX: &str = "-cacert";

/// The served secrets, per namespace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Credentials(BTreeMap<String, Served>);

/// One namespace's secrets by resource name, and a digest of them (a change pushes).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Served {
    pub secrets: Vec<(String, Any)>,
    pub digest: u64,
}

/// The TLS parts of one Secret.
#[derive(Default)]
struct Parts {
    cert: Option<Vec<u8>>,
    key: Option<Vec<u8>>,
    ca: Option<Vec<u8>>,
    crl: Option<Vec<u8>>,
}

impl Parts {
    fn of(s: &core::Secret) -> Self {
        // `stringData` wins over `data`, as the API server merges them.
        let mut values: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for (k, v) in s.data.iter().flatten() {
            values.insert(k.clone(), v.0.clone());
        }
        for (k, v) in s.string_data.iter().flatten() {
            values.insert(k.clone(), v.as_bytes().to_vec());
        }
        let mut take = |keys: [&str; 2]| keys.iter().find_map(|k| values.remove(*k));
        Parts {
            cert: take(["tls.crt", "cert"]),
            key: take(["tls.key", "key"]),
            ca: take(["ca.crt", "cacert"]),
            crl: take(["ca.crl", "crl"]),
        }
    }
}

fn inline(bytes: &[u8]) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(Specifier::InlineBytes(bytes.to_vec())),
        ..Default::default()
    })
}

fn certificate(name: &str, cert: &[u8], key: &[u8]) -> Any {
    pack_any(Secret {
        name: name.to_string(),
        r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: inline(cert),
            private_key: inline(key),
            ..Default::default()
        })),
    })
}

fn authority(name: &str, ca: &[u8], crl: Option<&[u8]>) -> Any {
    pack_any(Secret {
        name: name.to_string(),
        r#type: Some(secret::Type::ValidationContext(
            CertificateValidationContext {
                trusted_ca: inline(ca),
                crl: crl.and_then(inline),
                ..Default::default()
            },
        )),
    })
}

impl Credentials {
    pub fn of(resources: &[&Resource]) -> Self {
        let mut by_namespace: BTreeMap<&str, BTreeMap<&str, Parts>> = BTreeMap::new();
        for r in resources {
            if let Resource::Secret(s) = r {
                by_namespace
                    .entry(r.namespace().unwrap_or_default())
                    .or_default()
                    .insert(r.name(), Parts::of(s));
            }
        }
        let mut out = BTreeMap::new();
        for (namespace, secrets) in by_namespace {
            let mut served = Vec::new();
            for (name, parts) in &secrets {
                let resource = format!("{PREFIX}{name}");
                if name.ends_with(CA_SUFFIX) {
                    // Asked for by this name, it is always a CA.
                    if let Some(ca) = &parts.ca {
                        served.push((
                            resource.clone(),
                            authority(&resource, ca, parts.crl.as_deref()),
                        ));
                    }
                    continue;
                }
                if let (Some(cert), Some(key)) = (&parts.cert, &parts.key) {
                    served.push((resource.clone(), certificate(&resource, cert, key)));
                }
                let ca_secret = format!("{name}{CA_SUFFIX}");
                if let Some(ca) = &parts.ca
                    && !secrets.contains_key(ca_secret.as_str())
                {
                    let resource = format!("{PREFIX}{ca_secret}");
                    served.push((
                        resource.clone(),
                        authority(&resource, ca, parts.crl.as_deref()),
                    ));
                }
            }
            let mut h = DefaultHasher::new();
            for (name, body) in &served {
                name.hash(&mut h);
                body.value.hash(&mut h);
            }
            out.insert(
                namespace.to_string(),
                Served {
                    digest: h.finish(),
                    secrets: served,
                },
            );
        }
        Credentials(out)
    }

    /// What a proxy of `namespace` may read.
    pub fn of_namespace(&self, namespace: &str) -> Option<&Served> {
        self.0.get(namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn load(yaml: &str) -> Vec<Resource> {
        let mut loader = weft_config::Loader::new();
        loader.load_str("secrets.yaml", yaml);
        let result = loader.finish();
        assert!(!result.has_errors(), "{:?}", result.findings);
        result.resources.into_iter().map(|l| l.resource).collect()
    }

    fn decoded(served: &Served) -> BTreeMap<String, Secret> {
        served
            .secrets
            .iter()
            .map(|(n, a)| (n.clone(), Secret::decode(a.value.as_slice()).unwrap()))
            .collect()
    }

    fn bytes(d: &Option<DataSource>) -> &[u8] {
        match d.as_ref().and_then(|d| d.specifier.as_ref()) {
            Some(Specifier::InlineBytes(b)) => b,
            other => panic!("not inline bytes: {other:?}"),
        }
    }

    #[test]
    fn tls_and_generic_secrets_become_istios_resources_per_namespace() {
        // `Y2VydA==` is "cert", `a2V5` "key", `Y2E=` "ca".
        let resources = load(
            r#"
apiVersion: v1
kind: Secret
metadata: { name: partner, namespace: shop }
type: kubernetes.io/tls
data: { tls.crt: Y2VydA==, tls.key: a2V5, ca.crt: Y2E= }
---
apiVersion: v1
kind: Secret
metadata: { name: bank, namespace: shop }
stringData: { cert: bank-cert, key: bank-key }
---
apiVersion: v1
kind: Secret
metadata: { name: bank-cacert, namespace: shop }
stringData: { cacert: bank-ca, crl: bank-crl }
---
apiVersion: v1
kind: Secret
metadata: { name: partner, namespace: other }
stringData: { cert: other-cert, key: other-key }
"#,
        );
        let refs: Vec<&Resource> = resources.iter().collect();
        let c = Credentials::of(&refs);
        let shop = decoded(c.of_namespace("shop").expect("shop's"));
        assert_eq!(
            shop.keys().collect::<Vec<_>>(),
            [
                "kubernetes://bank",
                "kubernetes://bank-cacert",
                "kubernetes://partner",
                "kubernetes://partner-cacert"
            ]
        );
        let Some(secret::Type::TlsCertificate(t)) = &shop["kubernetes://partner"].r#type else {
            panic!("a certificate")
        };
        assert_eq!(
            (bytes(&t.certificate_chain), bytes(&t.private_key)),
            (&b"cert"[..], &b"key"[..])
        );
        let Some(secret::Type::ValidationContext(v)) = &shop["kubernetes://partner-cacert"].r#type
        else {
            panic!("a CA")
        };
        assert_eq!(bytes(&v.trusted_ca), b"ca");
        // A Secret named NAME-cacert is NAME's CA.
        let Some(secret::Type::ValidationContext(v)) = &shop["kubernetes://bank-cacert"].r#type
        else {
            panic!("a CA")
        };
        assert_eq!(
            (bytes(&v.trusted_ca), bytes(&v.crl)),
            (&b"bank-ca"[..], &b"bank-crl"[..])
        );
        let other = decoded(c.of_namespace("other").expect("other's"));
        assert_eq!(other.keys().collect::<Vec<_>>(), ["kubernetes://partner"]);
        assert!(c.of_namespace("default").is_none());
        assert_ne!(
            c.of_namespace("shop").unwrap().digest,
            c.of_namespace("other").unwrap().digest
        );
    }
}
