//! Istio's `ValidateMeshConfig` (pkg/config/validation/agent/validation.go).
//!
//! Istio validates the mesh config after merging it over its defaults
//! (`mesh.ApplyMeshConfigDefaults`), so a field left unset (zero) takes Istio's default and
//! is never reported; only values the user wrote are checked.

use super::{MeshConfig, TLSConfig};
use crate::mesh::extension_provider::validate_extension_providers;
use crate::validate::{Validate, Validator, rules};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Curves Envoy (BoringSSL) accepts in `tlsDefaults.ecdhCurves`, per Istio's
/// `security.ValidECDHCurves`.
const VALID_ECDH_CURVES: &[&str] = &[
    "P-224",
    "P-256",
    "P-521",
    "P-384",
    "X25519",
    "X25519Kyber768Draft00",
    "X25519MLKEM768",
];

/// Providers Istio's default mesh config defines, which user providers may name or override.
const BUILTIN_PROVIDERS: &[&str] = &["prometheus", "stackdriver", "envoy"];

impl Validate for MeshConfig {
    fn validate(&self, v: &mut Validator) {
        if self.proxy_listen_port != 0 {
            v.field("proxyListenPort", |v| {
                match u32::try_from(self.proxy_listen_port) {
                    Ok(p) => rules::port(v, p),
                    Err(_) => v.error(format!(
                        "invalid proxy listen port: port number {} must be in the range 1..65535",
                        self.proxy_listen_port
                    )),
                }
            });
        }
        if let Some(t) = &self.connect_timeout {
            v.field("connectTimeout", |v| {
                let before = v.findings().len();
                rules::duration(v, t);
                if v.findings().len() == before {
                    rules::duration_range(
                        v,
                        t,
                        crate::types::Duration::from_millis(1),
                        crate::types::Duration::from_secs(3600),
                    );
                }
            });
        }
        if let Some(t) = &self.protocol_detection_timeout {
            // 0s disables the timeout; otherwise only millisecond precision is accepted.
            if t.as_std().subsec_nanos() % 1_000_000 != 0 {
                v.field("protocolDetectionTimeout", |v| {
                    v.error(format!(
                        "invalid protocol detection timeout: only durations to ms precision are supported (got {t})"
                    ))
                });
            }
        }
        v.nested("defaultConfig", &self.default_config);
        if let Some(lb) = &self.locality_lb_setting {
            v.field("localityLbSetting", |v| locality_lb_setting(v, lb));
        }
        v.field("serviceSettings", |v| {
            for (i, s) in self.service_settings.iter().enumerate() {
                v.index(i, |v| {
                    v.field("hosts", |v| {
                        for (j, h) in s.hosts.iter().enumerate() {
                            v.index(j, |v| rules::wildcard_domain(v, h));
                        }
                    })
                });
            }
        });
        if !self.trust_domain.is_empty() {
            v.field("trustDomain", |v| trust_domain(v, &self.trust_domain));
        }
        v.field("trustDomainAliases", |v| {
            for (i, alias) in self.trust_domain_aliases.iter().enumerate() {
                v.index(i, |v| trust_domain(v, alias));
            }
        });
        v.field("caCertificates", |v| {
            for (i, c) in self.ca_certificates.iter().enumerate() {
                v.index(i, |v| {
                    rules::oneof(
                        v,
                        &[
                            ("pem", c.pem.is_some()),
                            ("spiffeBundleUrl", c.spiffe_bundle_url.is_some()),
                        ],
                    );
                });
            }
        });
        validate_extension_providers(v, &self.extension_providers);
        if let Some(dp) = &self.default_providers {
            v.field("defaultProviders", |v| default_providers(v, self, dp));
        }
        if let Some(m) = &self.mesh_mtls
            && !m.ecdh_curves.is_empty()
        {
            v.field("meshMTLS", |v| {
                v.field("ecdhCurves", |v| {
                    v.error("mesh TLS does not support ECDH curves configuration; set them in tlsDefaults")
                })
            });
        }
        if let Some(t) = &self.tls_defaults {
            v.field("tlsDefaults", |v| tls_defaults(v, t));
        }
        v.field("discoverySelectors", |v| {
            for (i, s) in self.discovery_selectors.iter().enumerate() {
                v.index(i, |v| label_selector(v, s));
            }
        });
        v.field("serviceScopeConfigs", |v| {
            for (i, s) in self.service_scope_configs.iter().enumerate() {
                v.index(i, |v| {
                    if let Some(ns) = &s.namespace_selector {
                        v.field("namespaceSelector", |v| label_selector(v, ns));
                    }
                    if let Some(svc) = &s.services_selector {
                        v.field("servicesSelector", |v| label_selector(v, svc));
                    }
                });
            }
        });
        if !self.certificates.is_empty() {
            v.field("certificates", |v| {
                v.deprecated("certificates is deprecated; use cert-manager or another certificate provisioner for DNS certificates")
            });
        }
        if self.verify_certificate_at_client.is_some() {
            v.field("verifyCertificateAtClient", |v| {
                v.deprecated("verifyCertificateAtClient is deprecated and has no effect; certificates are always verified unless a DestinationRule sets insecureSkipVerify")
            });
        }
    }
}

/// Istio's `ValidateTrustDomain`: dot-separated DNS-1123 labels, trailing dot allowed.
fn trust_domain(v: &mut Validator, domain: &str) {
    if domain.is_empty() {
        v.error("empty domain name not allowed");
        return;
    }
    let parts: Vec<&str> = domain.split('.').collect();
    for (i, label) in parts.iter().enumerate() {
        if i == parts.len() - 1 && label.is_empty() {
            return;
        }
        if !rules::is_dns1123_label(label) {
            v.error(format!(
                "trust domain name {domain:?} invalid (label {label:?} is not a DNS-1123 label)"
            ));
            return;
        }
    }
}

/// Istio's `ValidateMeshTLSDefaults`: unknown or repeated curves are accepted with a warning
/// (Envoy would drop them).
fn tls_defaults(v: &mut Validator, t: &TLSConfig) {
    let mut seen = BTreeSet::new();
    let mut unknown = BTreeSet::new();
    let mut dups = BTreeSet::new();
    for c in &t.ecdh_curves {
        if !c.is_empty() && !VALID_ECDH_CURVES.contains(&c.as_str()) {
            unknown.insert(c.as_str());
        } else if !seen.insert(c.as_str()) {
            dups.insert(c.as_str());
        }
    }
    v.field("ecdhCurves", |v| {
        if !unknown.is_empty() {
            v.warn(format!(
                "detected unrecognized ECDH curves: {unknown:?} (supported: {})",
                VALID_ECDH_CURVES.join(", ")
            ));
        }
        if !dups.is_empty() {
            v.warn(format!("detected duplicate ECDH curves: {dups:?}"));
        }
    });
}

/// `defaultProviders` must name providers that exist; Istio resolves them when building
/// telemetry and silently skips unknown names, so this is a warning.
fn default_providers(v: &mut Validator, mc: &MeshConfig, dp: &super::DefaultProviders) {
    let known: BTreeSet<&str> = mc
        .extension_providers
        .iter()
        .map(|p| p.name.as_str())
        .chain(BUILTIN_PROVIDERS.iter().copied())
        .collect();
    for (field, names) in [
        ("tracing", &dp.tracing),
        ("metrics", &dp.metrics),
        ("accessLogging", &dp.access_logging),
    ] {
        v.field(field, |v| {
            for (i, n) in names.iter().enumerate() {
                if !known.contains(n.as_str()) {
                    v.index(i, |v| {
                        v.warn(format!(
                            "default provider {n:?} is not defined in extensionProviders (built in: {})",
                            BUILTIN_PROVIDERS.join(", ")
                        ))
                    });
                }
            }
        });
    }
}

/// A Kubernetes label selector as `metav1.LabelSelectorAsSelector` reads it; istiod logs and
/// skips a selector it cannot convert, so problems are warnings.
fn label_selector(v: &mut Validator, s: &LabelSelector) {
    if let Some(labels) = &s.match_labels {
        v.field("matchLabels", |v| {
            for (k, val) in labels {
                v.key(k, |v| {
                    if let Err(e) = rules::check_label_key(k) {
                        v.warn(format!("{e}; istiod ignores this selector"));
                    }
                    if !rules::is_label_value(val) {
                        v.warn(format!(
                            "invalid label value {val:?}; istiod ignores this selector"
                        ));
                    }
                })
            }
        });
    }
    let Some(exprs) = &s.match_expressions else {
        return;
    };
    v.field("matchExpressions", |v| {
        for (i, e) in exprs.iter().enumerate() {
            v.index(i, |v| {
                let has_values = e.values.as_ref().is_some_and(|x| !x.is_empty());
                match e.operator.as_str() {
                    "In" | "NotIn" if !has_values => v.field("values", |v| {
                        v.warn(format!("operator {} needs at least one value; istiod ignores this selector", e.operator))
                    }),
                    "Exists" | "DoesNotExist" if has_values => v.field("values", |v| {
                        v.warn(format!("operator {} takes no values; istiod ignores this selector", e.operator))
                    }),
                    "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
                    op => v.field("operator", |v| {
                        v.warn(format!("unknown operator {op:?} (expected In, NotIn, Exists or DoesNotExist); istiod ignores this selector"))
                    }),
                }
                if let Err(err) = rules::check_label_key(&e.key) {
                    v.field("key", |v| v.warn(format!("{err}; istiod ignores this selector")));
                }
            });
        }
    });
}

const TOPOLOGY_LABELS: &[&str] = &[
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.istio.io/subzone",
];

/// Istio's `ValidateLocalityLbSetting` as MeshConfig calls it (with an outlier detection
/// present, so failover never warns). Read from the serialized JSON so it does not depend on
/// the Rust spelling of the networking types.
fn locality_lb_setting(v: &mut Validator, lb: &impl serde::Serialize) {
    let Ok(json) = serde_json::to_value(lb) else {
        return;
    };
    let list = |k: &str| {
        json.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let distribute = list("distribute");
    let failover = list("failover");
    let priority = list("failoverPriority");
    if !distribute.is_empty() && !failover.is_empty() {
        v.conflict("can not simultaneously specify 'distribute' and 'failover'");
        return;
    }
    if !failover.is_empty() {
        for p in priority.iter().filter_map(Value::as_str) {
            if TOPOLOGY_LABELS.contains(&p) {
                v.field("failoverPriority", |v| {
                    v.conflict(format!("can not simultaneously set 'failover' and topology label '{p}' in 'failoverPriority'"))
                });
                return;
            }
        }
    }
    let str_of = |x: &Value, k: &str| x.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut sources = Vec::new();
    for (i, d) in distribute.iter().enumerate() {
        sources.push(str_of(d, "from"));
        let to: BTreeMap<String, u64> = d
            .get("to")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, w)| (k.clone(), w.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        let mut total = 0;
        let mut bad_weight = false;
        for w in to.values() {
            bad_weight |= !(1..=100).contains(w);
            total += w;
        }
        let err = if bad_weight {
            Some("locality weight must be in range [1, 100]".to_string())
        } else if total != 100 {
            Some(format!("total locality weight {total} != 100"))
        } else {
            None
        };
        if let Some(err) = err {
            v.field("distribute", |v| {
                v.index(i, |v| v.field("to", |v| v.error(err)))
            });
            return;
        }
        let dests: Vec<String> = to.into_keys().collect();
        if let Err(e) = localities(&dests) {
            v.field("distribute", |v| {
                v.index(i, |v| v.field("to", |v| v.error(e)))
            });
        }
    }
    if let Err(e) = localities(&sources) {
        v.field("distribute", |v| v.error(e));
    }
    for (i, f) in failover.iter().enumerate() {
        let (from, to) = (str_of(f, "from"), str_of(f, "to"));
        v.field("failover", |v| {
            v.index(i, |v| {
                if from == to {
                    v.error("locality lb failover settings must specify different regions");
                }
                if from.contains('/') || to.contains('/') {
                    v.error("locality lb failover only specify region");
                }
                if from.contains('*') || to.contains('*') {
                    v.error("locality lb failover region should not contain '*' wildcard");
                }
            })
        });
    }
}

/// Istio's `validateLocalities`: localities must be well formed and must not overlap.
fn localities(locs: &[String]) -> Result<(), String> {
    let mut map: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let star = || "*".to_string();
    for loc in locs {
        let stars = loc.matches('*').count();
        if stars > 0 && (stars > 1 || !loc.ends_with('*')) {
            return Err(format!(
                "locality {loc} wildcard '*' number can not exceed 1 and must be in the end"
            ));
        }
        let overlap = || {
            Err(format!(
                "locality {loc} overlap with previous specified ones"
            ))
        };
        if map.contains_key("*") {
            return overlap();
        }
        let items: Vec<&str> = loc.splitn(3, '/').collect();
        if items.iter().any(|s| s.is_empty()) {
            return Err(format!(
                "locality {loc} must not contain empty region/zone/subzone info"
            ));
        }
        let region = items[0].to_string();
        match items.len() {
            1 => {
                if map.contains_key(&region) {
                    return overlap();
                }
                map.insert(region, BTreeMap::from([(star(), BTreeSet::from([star()]))]));
            }
            2 => {
                let zones = map.entry(region).or_default();
                if zones.contains_key("*") || zones.contains_key(items[1]) {
                    return overlap();
                }
                zones.insert(items[1].to_string(), BTreeSet::from([star()]));
            }
            _ => {
                let zones = map.entry(region).or_default();
                if zones.contains_key("*") {
                    return overlap();
                }
                let subzones = zones.entry(items[1].to_string()).or_default();
                if subzones.contains("*") || !subzones.insert(items[2].to_string()) {
                    return overlap();
                }
            }
        }
    }
    Ok(())
}
