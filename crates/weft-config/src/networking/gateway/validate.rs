//! Istio's Gateway validation (`ValidateGateway`, `validateServer`, `validateServerPort`,
//! `validateServerBind`, `validateTLSOptions`) plus the CRD's CEL rules on TLS settings.
//! The TLS rules are also applied to Sidecar ingress listeners, and the
//! `namespace/dnsName` host rule to Sidecar egress hosts.

use super::protocol::{Protocol, UNIX_PREFIX, error_count, is_ip, unix_address};
use super::{Gateway, Port, Server, ServerTLSSettings, ServerTLSSettingsTLSmode, TLSProtocol};
use crate::validate::{Validate, Validator, rules};
use std::collections::{BTreeMap, BTreeSet};

/// Cipher suites Envoy (BoringSSL) accepts by name (`security.ValidCipherSuites`).
const VALID_CIPHER_SUITES: [&str; 15] = [
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-SHA",
    "AES256-SHA",
    "DES-CBC3-SHA",
];

/// Istio's `IsValidCipherSuite`: expressions starting with an operator (`-`, `+`, `!`, `[`)
/// are passed through unchecked, as are `""` and `ALL`.
fn is_valid_cipher_suite(cs: &str) -> bool {
    match cs.chars().next() {
        None => true,
        Some(c) if !c.is_alphanumeric() => true,
        Some(_) => cs == "ALL" || VALID_CIPHER_SUITES.contains(&cs),
    }
}

impl Validate for Gateway {
    fn validate(&self, v: &mut Validator) {
        if self.servers.is_empty() {
            v.field("servers", |v| {
                v.missing("gateway must have at least one server")
            });
        }
        v.each("servers", &self.servers);
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        v.field("servers", |v| {
            for (i, server) in self.servers.iter().enumerate() {
                let Some(port) = &server.port else { continue };
                if let Some(first) = names.get(port.name.as_str()) {
                    v.index(i, |v| {
                        v.field("port", |v| {
                            v.field("name", |v| {
                                v.error(format!(
                                    "port names in servers must be unique: {:?} is already used by servers[{first}]",
                                    port.name
                                ))
                            })
                        })
                    });
                } else {
                    names.insert(&port.name, i);
                }
                let redirect = server.tls.as_ref().is_some_and(|t| t.https_redirect);
                if redirect && !Protocol::parse(&port.protocol).is_http() {
                    v.index(i, |v| {
                        v.field("tls", |v| {
                            v.field("httpsRedirect", |v| {
                                v.warn(format!(
                                    "tls.httpsRedirect should only be used with HTTP servers (port protocol is {:?})",
                                    port.protocol
                                ))
                            })
                        })
                    });
                }
            }
        });
    }
}

impl Validate for Server {
    fn validate(&self, v: &mut Validator) {
        if self.hosts.is_empty() {
            v.field("hosts", |v| {
                v.missing("server config must contain at least one host")
            });
        }
        v.field("hosts", |v| {
            for (i, host) in self.hosts.iter().enumerate() {
                v.index(i, |v| namespace_slash_host(v, host, true));
            }
        });

        let before = error_count(v);
        match &self.port {
            None => v.field("port", |v| v.missing("port is required")),
            Some(port) => v.field("port", |v| server_port(v, port, &self.bind)),
        }
        let port_ok = error_count(v) == before;

        if self.bind.starts_with(UNIX_PREFIX) {
            v.field("bind", |v| unix_address(v, &self.bind));
            if let Some(port) = self.port.as_ref().filter(|p| p.number != 0) {
                v.field("port", |v| {
                    v.field("number", |v| {
                        v.error(format!(
                            "port number must be 0 when binding to the unix domain socket {:?} (got {})",
                            self.bind, port.number
                        ))
                    })
                });
            }
        } else if !self.bind.is_empty() && !is_ip(&self.bind) {
            v.field("bind", |v| {
                v.error(format!(
                    "bind {:?} must be an IP address or a unix:// socket",
                    self.bind
                ))
            });
        }

        v.nested("tls", &self.tls);

        // Only meaningful once the port itself is known to be well formed.
        let Some(port) = self.port.as_ref().filter(|_| port_ok) else {
            return;
        };
        let p = Protocol::parse(&port.protocol);
        match &self.tls {
            None if p.is_tls() => v.field("tls", |v| {
                v.missing(format!(
                    "server must have TLS settings for HTTPS/TLS protocols (port protocol is {:?})",
                    port.protocol
                ))
            }),
            Some(tls) if !p.is_tls() => v.field("tls", |v| {
                if p.is_http() {
                    let passthrough = matches!(
                        tls.mode,
                        ServerTLSSettingsTLSmode::Passthrough
                            | ServerTLSSettingsTLSmode::AutoPassthrough
                    );
                    if !passthrough
                        || !tls.ca_certificates.is_empty()
                        || !tls.private_key.is_empty()
                        || !tls.server_certificate.is_empty()
                    {
                        v.error(format!(
                            "server cannot have TLS settings for plain text HTTP ports (protocol {:?}); only httpsRedirect is allowed here",
                            port.protocol
                        ));
                    }
                } else {
                    v.error(format!(
                        "server cannot have TLS settings for non HTTPS/TLS ports (protocol {:?})",
                        port.protocol
                    ));
                }
            }),
            _ => {}
        }
    }
}

/// `validateServerPort`: reports at the port's fields.
fn server_port(v: &mut Validator, port: &Port, bind: &str) {
    if Protocol::parse(&port.protocol) == Protocol::Unsupported {
        v.field("protocol", |v| {
            v.error(format!(
                "invalid protocol {:?}; supported protocols are {} (case-insensitive)",
                port.protocol,
                super::protocol::SUPPORTED_PROTOCOLS
            ))
        });
    }
    if port.number > 0 || !bind.starts_with(UNIX_PREFIX) {
        v.field("number", |v| rules::port(v, port.number));
    }
    if port.target_port > 0 {
        v.field("targetPort", |v| {
            v.error("targetPort has no impact on Gateways; remove it")
        });
    }
    if port.name.is_empty() {
        v.field("name", |v| v.missing("port name must be set"));
    }
}

impl Validate for ServerTLSSettings {
    /// `validateTLSOptions`, plus the CRD's limits on `credentialNames`/`tlsCertificates`.
    fn validate(&self, v: &mut Validator) {
        use ServerTLSSettingsTLSmode as M;

        if matches!(
            self.min_protocol_version,
            TLSProtocol::Tlsv10 | TLSProtocol::Tlsv11
        ) && self.cipher_suites.is_empty()
        {
            v.field("minProtocolVersion", |v| {
                v.warn("TLS versions below TLSV1_2 require setting compatible cipherSuites, as the defaults no longer include any")
            });
        }
        let mut seen = BTreeSet::new();
        v.field("cipherSuites", |v| {
            for (i, cs) in self.cipher_suites.iter().enumerate() {
                if !is_valid_cipher_suite(cs) {
                    v.index(i, |v| {
                        v.warn(format!("ignoring invalid cipher suite {cs:?}"))
                    });
                } else if !seen.insert(cs.as_str()) {
                    v.index(i, |v| {
                        v.warn(format!("ignoring duplicate cipher suite {cs:?}"))
                    });
                }
            }
        });
        if self.credential_names.len() > 2 {
            v.field("credentialNames", |v| {
                v.error(format!(
                    "at most 2 credentialNames may be set (got {})",
                    self.credential_names.len()
                ))
            });
        }
        if self.tls_certificates.len() > 2 {
            v.field("tlsCertificates", |v| {
                v.error(format!(
                    "at most 2 tlsCertificates may be set (got {})",
                    self.tls_certificates.len()
                ))
            });
        }

        if self.mode == M::IstioMutual {
            // Istio-issued workload certificates are used; anything configured here would be ignored.
            let set = [
                ("serverCertificate", !self.server_certificate.is_empty()),
                ("privateKey", !self.private_key.is_empty()),
                ("caCertificates", !self.ca_certificates.is_empty()),
                ("tlsCertificates", !self.tls_certificates.is_empty()),
                ("credentialName", !self.credential_name.is_empty()),
                ("credentialNames", !self.credential_names.is_empty()),
                (
                    "caCertCredentialName",
                    !self.ca_cert_credential_name.is_empty(),
                ),
            ];
            for (field, is_set) in set {
                if is_set {
                    v.field(field, |v| {
                        v.error(format!(
                            "ISTIO_MUTUAL TLS cannot have an associated {field}: it uses the workload's Istio certificates"
                        ))
                    });
                }
            }
            return;
        }

        let has_certs = !self.ca_crl.is_empty()
            || !self.server_certificate.is_empty()
            || !self.private_key.is_empty()
            || !self.ca_certificates.is_empty()
            || !self.tls_certificates.is_empty()
            || !self.credential_name.is_empty()
            || !self.credential_names.is_empty()
            || !self.ca_cert_credential_name.is_empty();
        if matches!(self.mode, M::Passthrough | M::AutoPassthrough) && has_certs {
            v.field("mode", |v| {
                v.warn(format!(
                    "{} mode does not use certificates, they will be ignored",
                    self.mode.as_str()
                ))
            });
        }

        let sources = [
            !self.server_certificate.is_empty() && !self.private_key.is_empty(),
            !self.credential_name.is_empty(),
            !self.credential_names.is_empty(),
            !self.tls_certificates.is_empty(),
        ];
        if sources.iter().filter(|s| **s).count() > 1 {
            v.conflict("only one of credentialName, credentialNames, serverCertificate/privateKey or tlsCertificates may be set");
        }

        let terminates = matches!(self.mode, M::Simple | M::Mutual | M::OptionalMutual);
        if self.mode == M::Simple && !self.ca_cert_credential_name.is_empty() {
            v.field("caCertCredentialName", |v| {
                v.warn("caCertCredentialName only applies to MUTUAL and OPTIONAL_MUTUAL TLS; it is ignored")
            });
        }
        if terminates && (!self.credential_name.is_empty() || !self.credential_names.is_empty()) {
            // Certificates (and CA) come from the secret, so no file paths are required.
            return;
        }
        if terminates {
            let prefix = if self.mode == M::Simple {
                "SIMPLE TLS"
            } else {
                "MUTUAL TLS"
            };
            if self.mode != M::Simple
                && self.ca_certificates.is_empty()
                && self.ca_cert_credential_name.is_empty()
            {
                v.field("caCertificates", |v| {
                    v.missing(format!(
                        "{prefix} requires a client CA bundle (caCertificates), or a credentialName whose secret holds one"
                    ))
                });
            }
            let missing_pair = |v: &mut Validator, cert: &str, key: &str| {
                if cert.is_empty() {
                    v.field("serverCertificate", |v| {
                        v.missing(format!("{prefix} requires a server certificate"))
                    });
                }
                if key.is_empty() {
                    v.field("privateKey", |v| {
                        v.missing(format!("{prefix} requires a private key"))
                    });
                }
            };
            if self.tls_certificates.is_empty() {
                missing_pair(v, &self.server_certificate, &self.private_key);
            } else {
                v.field("tlsCertificates", |v| {
                    for (i, c) in self.tls_certificates.iter().enumerate() {
                        v.index(i, |v| {
                            missing_pair(v, &c.server_certificate, &c.private_key)
                        });
                    }
                });
            }
        }
        if !self.ca_crl.is_empty() {
            if !self.credential_name.is_empty() {
                v.field("caCrl", |v| {
                    v.error("CRL is not supported with credentialName; put the CRL in the credential's secret")
                });
            }
            if self.mode == M::Simple {
                v.field("caCrl", |v| v.error("CRL is not supported with SIMPLE TLS"));
            }
        }
    }
}

/// Istio's `ValidateNamespaceSlashWildcardHostname`: `namespace/dnsName` hosts of Gateway
/// servers (where the namespace is optional and an IP is allowed) and Sidecar egress
/// listeners (where the namespace is required and may also be `~`).
pub(crate) fn namespace_slash_host(v: &mut Validator, host: &str, is_gateway: bool) {
    let Some((ns, name)) = host.split_once('/') else {
        if is_gateway {
            host_part(v, host, true);
        } else {
            v.error(format!(
                "host {host:?} must be of form namespace/dnsName, e.g. \"./{host}\", \"*/{host}\" or \"istio-system/*\""
            ));
        }
        return;
    };
    if ns.is_empty() || name.is_empty() {
        v.error(format!(
            "config namespace and dnsName in host {host:?} cannot be empty"
        ));
    }
    let special = ns == "*" || ns == "." || (!is_gateway && ns == "~");
    if !ns.is_empty() && !special && !rules::is_dns1123_label(ns) {
        let (kind, allowed) = if is_gateway {
            ("gateway", "*, . or a namespace name")
        } else {
            ("sidecar", "*, ., ~ or a namespace name")
        };
        v.error(format!(
            "invalid namespace value {ns:?} in {kind} host {host:?}: expected {allowed}"
        ));
    }
    if !name.is_empty() {
        host_part(v, name, is_gateway);
    }
}

/// `validateSidecarOrGatewayHostnamePart`.
fn host_part(v: &mut Validator, name: &str, is_gateway: bool) {
    if name != "*" && !name.contains('.') {
        v.error(format!(
            "short name {name:?} is not allowed: use a fully qualified name (e.g. {name}.<namespace>.svc.cluster.local) or *"
        ));
    }
    if let Err(e) = rules::check_wildcard_domain(name) {
        // Gateways also admit a plain IP address as the host.
        if !is_gateway || !is_ip(name) {
            v.error(e);
        }
    }
    if name.contains('*') && name.len() != 1 && !name.starts_with("*.") {
        v.error(format!(
            "partial wildcard {name:?} is not allowed: a wildcard must be the whole first label (\"*.example.com\") or the whole host (\"*\")"
        ));
    }
}
