//! The checks `istioctl install` runs on `values` (operator/pkg/apis/validation,
//! `validateValues` and the values-only feature checks), plus deprecation warnings for the
//! fields values_types.proto marks deprecated.

use super::{
    CNIConfig, EgressGatewayConfig, GlobalConfig, IngressGatewayConfig, PilotConfig, ProxyConfig,
    Values,
};
use crate::validate::{Validate, Validator, rules};
use serde_json::Value;

/// Reports `field` as deprecated when `set`.
fn deprecated(v: &mut Validator, field: &str, set: bool, instead: &str) {
    if set {
        v.field(field, |v| {
            v.deprecated(format!(
                "{field} is deprecated in Istio's values schema; {instead}"
            ))
        });
    }
}

/// Gateway settings that moved from `values.gateways` to `components.<kind>[].k8s`: each
/// entry is (field, whether it is set, its k8s replacement).
fn deprecated_gateway_fields(v: &mut Validator, component: &str, fields: &[(&str, bool, &str)]) {
    for (field, set, k8s) in fields {
        deprecated(
            v,
            field,
            *set,
            &format!("use components.{component}[].k8s.{k8s}"),
        );
    }
}

impl Validate for Values {
    fn validate(&self, v: &mut Validator) {
        v.nested("meshConfig", &self.mesh_config);
        v.nested("global", &self.global);
        v.nested("pilot", &self.pilot);
        v.nested("cni", &self.cni);
        if let Some(gw) = &self.gateways {
            v.field("gateways", |v| {
                v.nested("istio-ingressgateway", &gw.istio_ingressgateway);
                v.nested("istio-egressgateway", &gw.istio_egressgateway);
            });
        }
        deprecated(v, "istioCni", self.istio_cni.is_some(), "use pilot.cni");
        deprecated(
            v,
            "istiodRemote",
            self.istiod_remote.is_some(),
            "use pilot.istiodRemote (istiod-remote was folded into istio-discovery)",
        );
        let g = self.global.as_ref();
        if g.and_then(|g| g.native_nftables) == Some(true)
            && g.is_some_and(|g| g.variant == "distroless")
        {
            v.field("global", |v| {
                v.field("nativeNftables", |v| {
                    v.warn("nativeNftables is enabled, but the image is distroless: the 'nft' binary it needs is not in distroless images; disable nativeNftables or use a non-distroless variant")
                })
            });
        }
    }
}

impl Validate for GlobalConfig {
    fn validate(&self, v: &mut Validator) {
        v.nested("proxy", &self.proxy);
        deprecated(
            v,
            "arch",
            self.arch.is_some(),
            "use components.<component>.k8s.affinity",
        );
        deprecated(
            v,
            "defaultNodeSelector",
            self.default_node_selector.is_some(),
            "use components.<component>.k8s.nodeSelector",
        );
        deprecated(
            v,
            "defaultResources",
            self.default_resources.is_some(),
            "use components.<component>.k8s.resources",
        );
        deprecated(
            v,
            "defaultTolerations",
            !self.default_tolerations.is_empty(),
            "use components.<component>.k8s.tolerations",
        );
        deprecated(
            v,
            "priorityClassName",
            !self.priority_class_name.is_empty(),
            "use components.<component>.k8s.priorityClassName",
        );
        deprecated(
            v,
            "jwtPolicy",
            !self.jwt_policy.is_empty(),
            "it has no effect",
        );
        if let Some(sds) = &self.sds {
            v.field("sds", |v| {
                deprecated(v, "token", sds.token.is_some(), "it has no effect")
            });
        }
        if let Some(init) = &self.proxy_init {
            v.field("proxy_init", |v| {
                deprecated(
                    v,
                    "resources",
                    init.resources.is_some(),
                    "Istio may drop it in a future release",
                )
            });
        }
    }
}

impl Validate for ProxyConfig {
    fn validate(&self, v: &mut Validator) {
        for (field, value) in [
            ("includeIPRanges", &self.include_ip_ranges),
            ("excludeIPRanges", &self.exclude_ip_ranges),
        ] {
            v.field(field, |v| ip_ranges_or_star(v, value));
        }
        for (field, value) in [
            ("includeInboundPorts", &self.include_inbound_ports),
            ("excludeInboundPorts", &self.exclude_inbound_ports),
        ] {
            v.field(field, |v| port_list(v, value));
        }
        deprecated(
            v,
            "enableCoreDump",
            self.enable_core_dump.is_some(),
            "Istio may drop it in a future release",
        );
        deprecated(
            v,
            "resources",
            self.resources.is_some(),
            "set proxy resources per pod with the sidecar.istio.io/proxyCPU and proxyMemory annotations",
        );
        deprecated(
            v,
            "holdApplicationUntilProxyStarts",
            self.hold_application_until_proxy_starts.is_some(),
            "use meshConfig.defaultConfig.holdApplicationUntilProxyStarts",
        );
    }
}

/// istioctl's `validateIPRangesOrStar`: `*`, empty, or comma-separated CIDR blocks.
fn ip_ranges_or_star(v: &mut Validator, s: &str) {
    if s.is_empty() || s == "*" {
        return;
    }
    for part in s.split(',') {
        if !part.contains('/') {
            v.error(format!(
                "{part:?} is not a CIDR block: netip.ParsePrefix needs an address/prefix length (e.g. 10.0.0.0/8)"
            ));
        } else if let Err(e) = rules::check_ip_or_cidr(part) {
            v.error(e);
        }
    }
}

/// istioctl's `validateStringList(validatePortNumberString)`: comma-separated ports 0-65535,
/// `*` or empty entries.
fn port_list(v: &mut Validator, s: &str) {
    if s.is_empty() {
        return;
    }
    for part in s.split(',') {
        if part.is_empty() || part == "*" {
            continue;
        }
        match part.parse::<i32>() {
            Err(_) => v.error(format!("{part:?} is not a port number")),
            Ok(n) if !(0..=65535).contains(&n) => {
                v.error(format!("port {n} falls outside range [0, 65535]"))
            }
            Ok(_) => {}
        }
    }
}

impl Validate for PilotConfig {
    fn validate(&self, v: &mut Validator) {
        let k8s = |f: &str| format!("use components.pilot.k8s.{f}");
        deprecated(
            v,
            "replicaCount",
            self.replica_count != 0,
            &k8s("replicaCount"),
        );
        deprecated(v, "resources", self.resources.is_some(), &k8s("resources"));
        deprecated(v, "cpu", self.cpu.is_some(), &k8s("hpaSpec"));
        deprecated(v, "memory", self.memory.is_some(), &k8s("hpaSpec"));
        deprecated(
            v,
            "nodeSelector",
            self.node_selector.is_some(),
            &k8s("nodeSelector"),
        );
        deprecated(
            v,
            "rollingMaxSurge",
            self.rolling_max_surge.is_some(),
            &k8s("strategy"),
        );
        deprecated(
            v,
            "rollingMaxUnavailable",
            self.rolling_max_unavailable.is_some(),
            &k8s("strategy"),
        );
        deprecated(
            v,
            "tolerations",
            !self.tolerations.is_empty(),
            &k8s("tolerations"),
        );
        deprecated(
            v,
            "podAnnotations",
            self.pod_annotations.is_some(),
            &k8s("podAnnotations"),
        );
        if let Some(cni) = &self.cni {
            v.field("cni", |v| {
                deprecated(v, "chained", cni.chained.is_some(), "it has no effect")
            });
        }
    }
}

impl Validate for CNIConfig {
    fn validate(&self, v: &mut Validator) {
        deprecated(
            v,
            "podAnnotations",
            self.pod_annotations.is_some(),
            "use components.cni.k8s.podAnnotations",
        );
        deprecated(
            v,
            "logLevel",
            !self.log_level.is_empty(),
            "use cni.logging.level",
        );
        deprecated(
            v,
            "privileged",
            self.privileged.is_some(),
            "it has no effect",
        );
        if let Some(r) = &self.repair {
            v.field("repair", |v| {
                deprecated(
                    v,
                    "createEvents",
                    !r.create_events.is_empty(),
                    "it has no effect",
                )
            });
        }
    }
}

impl Validate for IngressGatewayConfig {
    fn validate(&self, v: &mut Validator) {
        // istioctl's checkServicePorts also reads these free-form ports, whatever runAsRoot says.
        v.field("ingressPorts", |v| {
            for (i, p) in self.ingress_ports.iter().enumerate() {
                let target = match p.get("targetPort") {
                    None | Some(Value::Null) => 0.0,
                    // A named (string) target port is not checked.
                    Some(t) => match t.as_f64() {
                        Some(t) => t,
                        None => continue,
                    },
                };
                let Some(port) = p.get("port").and_then(Value::as_f64) else {
                    continue;
                };
                if target == 0.0 && port > 1024.0 {
                    continue;
                }
                if target < 1024.0 {
                    v.index(i, |v| {
                        v.error(format!("port {port} is invalid: targetPort is set to {target}, which requires root. Set targetPort to be greater than 1024 or configure values.gateways.istio-ingressgateway.runAsRoot=true"))
                    });
                }
            }
        });
        deprecated_gateway_fields(
            v,
            "ingressGateways",
            &[
                ("memory", self.memory.is_some(), "hpaSpec"),
                ("cpu", self.cpu.is_some(), "hpaSpec"),
                ("nodeSelector", self.node_selector.is_some(), "nodeSelector"),
                (
                    "podAnnotations",
                    self.pod_annotations.is_some(),
                    "podAnnotations",
                ),
                (
                    "podAntiAffinityLabelSelector",
                    !self.pod_anti_affinity_label_selector.is_empty(),
                    "affinity",
                ),
                (
                    "podAntiAffinityTermLabelSelector",
                    !self.pod_anti_affinity_term_label_selector.is_empty(),
                    "affinity",
                ),
                ("replicaCount", self.replica_count != 0, "replicaCount"),
                ("resources", self.resources.is_some(), "resources"),
                (
                    "rollingMaxSurge",
                    self.rolling_max_surge.is_some(),
                    "strategy",
                ),
                (
                    "rollingMaxUnavailable",
                    self.rolling_max_unavailable.is_some(),
                    "strategy",
                ),
                ("tolerations", !self.tolerations.is_empty(), "tolerations"),
            ],
        );
    }
}

impl Validate for EgressGatewayConfig {
    fn validate(&self, v: &mut Validator) {
        deprecated_gateway_fields(
            v,
            "egressGateways",
            &[
                ("memory", self.memory.is_some(), "hpaSpec"),
                ("cpu", self.cpu.is_some(), "hpaSpec"),
                ("nodeSelector", self.node_selector.is_some(), "nodeSelector"),
                (
                    "podAnnotations",
                    self.pod_annotations.is_some(),
                    "podAnnotations",
                ),
                (
                    "podAntiAffinityLabelSelector",
                    !self.pod_anti_affinity_label_selector.is_empty(),
                    "affinity",
                ),
                (
                    "podAntiAffinityTermLabelSelector",
                    !self.pod_anti_affinity_term_label_selector.is_empty(),
                    "affinity",
                ),
                ("resources", self.resources.is_some(), "resources"),
                (
                    "rollingMaxSurge",
                    self.rolling_max_surge.is_some(),
                    "strategy",
                ),
                (
                    "rollingMaxUnavailable",
                    self.rolling_max_unavailable.is_some(),
                    "strategy",
                ),
                ("tolerations", !self.tolerations.is_empty(), "tolerations"),
            ],
        );
    }
}
