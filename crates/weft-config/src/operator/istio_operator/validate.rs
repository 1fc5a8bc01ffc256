//! The checks `istioctl install` runs on an IstioOperator before rendering
//! (operator/pkg/apis/validation/validation.go `ParseAndValidateIstioOperator`): mesh
//! config, values, hub, tag, revision, gateway names, privileged gateway ports and
//! autoscaling conflicts. istioctl refuses to install on any error unless `--force` is given.
//!
//! istioctl validates the IstioOperator after merging it over its profile; where a check
//! reads a value the profile provides (`autoscaleEnabled`), the default profile's value is
//! assumed when the user did not set it.

use super::{GatewayComponentSpec, IstioOperatorSpec};
use crate::validate::{Validate, Validator, rules};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

/// Characters go-containerregistry allows in a repository path.
const REPOSITORY_CHARS: &str = "abcdefghijklmnopqrstuvwxyz0123456789_-./";

impl Validate for IstioOperatorSpec {
    fn validate(&self, v: &mut Validator) {
        v.nested("meshConfig", &self.mesh_config);
        v.nested("values", &self.values);
        if !self.hub.is_empty()
            && let Err(e) = check_hub(&self.hub)
        {
            v.field("hub", |v| v.error(format!("bad hub {:?}: {e}", self.hub)));
        }
        if let Err(e) = check_tag(&self.tag) {
            v.field("tag", |v| v.error(format!("bad tag: {e}")));
        }
        if !self.revision.is_empty() && !rules::is_dns1123_label(&self.revision) {
            v.field("revision", |v| {
                v.error(format!(
                    "invalid revision specified: {:?} (must be a DNS-1123 label: letters, digits and '-', at most 63 characters)",
                    self.revision
                ))
            });
        }
        let Some(c) = &self.components else { return };
        let gateways = self.values.as_ref().and_then(|vals| vals.gateways.as_ref());
        let ingress = gateways.and_then(|g| g.istio_ingressgateway.as_ref());
        let egress = gateways.and_then(|g| g.istio_egressgateway.as_ref());
        v.field("components", |v| {
            for (field, gws, root, autoscale) in [
                (
                    "ingressGateways",
                    &c.ingress_gateways,
                    ingress.and_then(|g| g.run_as_root),
                    ingress.and_then(|g| g.autoscale_enabled),
                ),
                (
                    "egressGateways",
                    &c.egress_gateways,
                    egress.and_then(|g| g.run_as_root),
                    egress.and_then(|g| g.autoscale_enabled),
                ),
            ] {
                let chart = if field == "ingressGateways" {
                    "istio-ingressgateway"
                } else {
                    "istio-egressgateway"
                };
                v.field(field, |v| {
                    for (i, gw) in gws.iter().enumerate() {
                        v.index(i, |v| {
                            gateway_name(v, gw);
                            if root != Some(true) {
                                privileged_ports(v, gw, chart);
                            }
                            // The default profile turns gateway autoscaling on.
                            if autoscale.unwrap_or(true)
                                && gw.k8s.as_ref().is_some_and(|k| k.replica_count != 0)
                            {
                                v.field("k8s", |v| v.field("replicaCount", |v| {
                                    v.warn(format!("replicaCount should not be set when values.gateways.{chart}.autoscaleEnabled is true (the default); the autoscaler overrides it"))
                                }));
                            }
                        });
                    }
                });
            }
            // The default profile turns istiod autoscaling on.
            let pilot_autoscale = self
                .values
                .as_ref()
                .and_then(|vals| vals.pilot.as_ref())
                .and_then(|p| p.autoscale_enabled)
                .unwrap_or(true);
            let replicas = c
                .pilot
                .as_ref()
                .and_then(|p| p.k8s.as_ref())
                .map_or(0, |k| k.replica_count);
            if pilot_autoscale && replicas > 1 {
                v.field("pilot", |v| v.field("k8s", |v| v.field("replicaCount", |v| {
                    v.warn("replicaCount should not be set when values.pilot.autoscaleEnabled is true (the default); the autoscaler overrides it")
                })));
            }
        });
    }
}

/// istioctl requires gateway names to match `[a-z0-9.-]{1,254}`.
fn gateway_name(v: &mut Validator, gw: &GatewayComponentSpec) {
    let n = &gw.name;
    if n.is_empty() {
        return;
    }
    let ok = n.len() <= 254
        && n.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-');
    if !ok {
        v.field("name", |v| {
            v.error(format!(
                "invalid gateway name {n:?}: use at most 254 lowercase letters, digits, '.' or '-'"
            ))
        });
    }
}

/// istioctl's `validateGateways`: a gateway that does not run as root cannot bind a port
/// below 1024, and a missing `targetPort` means the Service port itself.
fn privileged_ports(v: &mut Validator, gw: &GatewayComponentSpec, chart: &str) {
    let Some(svc) = gw.k8s.as_ref().and_then(|k| k.service.as_ref()) else {
        return;
    };
    let Some(ports) = &svc.ports else { return };
    let path = |v: &mut Validator, i: usize, f: &mut dyn FnMut(&mut Validator)| {
        v.field("k8s", |v| {
            v.field("service", |v| v.field("ports", |v| v.index(i, f)))
        });
    };
    for (i, p) in ports.iter().enumerate() {
        let target = match &p.target_port {
            Some(IntOrString::String(_)) => continue,
            Some(IntOrString::Int(t)) => *t,
            None => 0,
        };
        if target == 0 && p.port > 1024 {
            continue;
        }
        if target < 1024 {
            let name = p.name.as_deref().unwrap_or("");
            path(v, i, &mut |v| {
                v.error(format!(
                    "port {name}/{} in gateway {} invalid: targetPort is set to {target}, which requires root. Set targetPort to be greater than 1024 or configure values.gateways.{chart}.runAsRoot=true",
                    p.port, gw.name
                ))
            });
        }
    }
}

/// go-containerregistry's `name.NewRepository(hub + "/pilot")`, which istioctl uses.
fn check_hub(hub: &str) -> Result<(), String> {
    let name = format!("{hub}/pilot");
    let (registry, repo) = match name.split_once('/') {
        Some((first, rest)) if first.contains('.') || first.contains(':') => (first, rest),
        _ => ("", name.as_str()),
    };
    if let Some(bad) = repo.chars().find(|c| !REPOSITORY_CHARS.contains(*c)) {
        return Err(format!(
            "repository {repo:?} may only contain lowercase letters, digits, '_', '-', '.' and '/' (found {bad:?})"
        ));
    }
    if repo.len() > 255 {
        return Err(format!("repository {repo:?} is longer than 255 characters"));
    }
    if !registry.is_empty() {
        let (host, port) = match registry.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (registry, None),
        };
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        let port_ok = port.is_none_or(|p| p.chars().all(|c| c.is_ascii_digit()));
        if !host_ok || !port_ok {
            return Err(format!(
                "registry {registry:?} must be a host name with an optional :port"
            ));
        }
    }
    Ok(())
}

/// go-containerregistry's `name.NewTag("istio/pilot:<tag>")`; istioctl prints the tag with
/// `%v`, so numbers and booleans are used as written.
fn check_tag(tag: &Value) -> Result<(), String> {
    let s = match tag {
        Value::Null => return Ok(()),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => return Err(format!("{other} is not a valid image tag")),
    };
    if s.is_empty() {
        return Err("the tag is empty".into());
    }
    if s.len() > 128 {
        return Err(format!("tag {s:?} is longer than 128 characters"));
    }
    if let Some(bad) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!(
            "tag {s:?} may only contain letters, digits, '_', '-' and '.' (found {bad:?})"
        ));
    }
    Ok(())
}
