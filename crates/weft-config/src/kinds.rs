//! The registry of kinds Weft reads: for each `apiVersion`/`kind`, how to decode it, its
//! schema (for suggestions), and how to validate it. Also the kinds Weft recognises but does
//! not read, so they are reported instead of silently dropped.

use crate::de::{self, Issue};
use crate::diag::ObjectRef;
use crate::node::Node;
use crate::object::{Object, ObjectMeta, validate_metadata};
use crate::path::FieldPath;
use crate::schema::Schema;
use crate::validate::{Validate, Validator};
use crate::{kube, networking, operator, security, telemetry};
use k8s_openapi::api::{apps::v1 as apps, core::v1 as core, discovery::v1 as discovery};
use serde::Serialize;
use std::sync::OnceLock;

/// Static facts about one kind.
pub struct KindInfo {
    /// API group; empty for the Kubernetes core group.
    pub group: &'static str,
    pub kind: &'static str,
    /// Versions the API server serves, preferred first.
    pub versions: &'static [&'static str],
    pub namespaced: bool,
    decode: fn(&Node) -> (Option<Resource>, Vec<Issue>),
    schema: fn() -> &'static Schema,
}

impl KindInfo {
    /// `group/version` as written in `apiVersion` for the preferred version.
    pub fn api_version(&self) -> String {
        api_version(self.group, self.versions[0])
    }

    pub fn schema(&self) -> &'static Schema {
        (self.schema)()
    }

    pub(crate) fn decode(&self, node: &Node) -> (Option<Resource>, Vec<Issue>) {
        (self.decode)(node)
    }
}

pub fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

fn validate_istio<S: Validate>(obj: &Object<S>, v: &mut Validator) {
    v.field("spec", |v| obj.spec.validate(v));
}

macro_rules! kinds {
    ($(
        $variant:ident: $ty:ty, group $group:literal, versions [$($ver:literal),+],
        namespaced $ns:literal, validate $validate:path;
    )*) => {
        /// A decoded resource of a kind Weft reads.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(untagged)]
        pub enum Resource {
            $( $variant(Box<$ty>), )*
        }

        /// Every kind Weft reads.
        pub static KINDS: &[KindInfo] = &[
            $( KindInfo {
                group: $group,
                kind: stringify!($variant),
                versions: &[$($ver),+],
                namespaced: $ns,
                decode: |node| {
                    let (v, issues) = de::decode::<$ty>(node, &FieldPath::root());
                    (v.map(|v| Resource::$variant(Box::new(v))), issues)
                },
                schema: || {
                    static S: OnceLock<Schema> = OnceLock::new();
                    S.get_or_init(Schema::of::<$ty>)
                },
            }, )*
        ];

        impl Resource {
            /// Index into [`KINDS`].
            fn kind_index(&self) -> usize {
                let mut i = 0usize;
                $(
                    if let Resource::$variant(_) = self {
                        return i;
                    }
                    i += 1;
                )*
                let _ = i;
                unreachable!("every variant is listed in KINDS")
            }

            pub fn metadata(&self) -> &ObjectMeta {
                match self {
                    $( Resource::$variant(o) => &o.metadata, )*
                }
            }

            fn validate_kind(&self, v: &mut Validator) {
                match self {
                    $( Resource::$variant(o) => $validate(o, v), )*
                }
            }
        }
    };
}

kinds! {
    VirtualService: Object<networking::virtual_service::VirtualService>,
        group "networking.istio.io", versions ["v1", "v1beta1", "v1alpha3"],
        namespaced true, validate validate_istio;
    DestinationRule: Object<networking::destination_rule::DestinationRule>,
        group "networking.istio.io", versions ["v1", "v1beta1", "v1alpha3"],
        namespaced true, validate validate_istio;
    Gateway: Object<networking::gateway::Gateway>,
        group "networking.istio.io", versions ["v1", "v1beta1", "v1alpha3"],
        namespaced true, validate validate_istio;
    ServiceEntry: Object<networking::service_entry::ServiceEntry>,
        group "networking.istio.io", versions ["v1", "v1beta1", "v1alpha3"],
        namespaced true, validate validate_istio;
    WorkloadEntry: Object<networking::workload_entry::WorkloadEntry>,
        group "networking.istio.io", versions ["v1", "v1beta1", "v1alpha3"],
        namespaced true, validate validate_istio;
    WorkloadGroup: Object<networking::workload_group::WorkloadGroup>,
        group "networking.istio.io", versions ["v1", "v1beta1", "v1alpha3"],
        namespaced true, validate validate_istio;
    Sidecar: Object<networking::sidecar::Sidecar>,
        group "networking.istio.io", versions ["v1", "v1beta1", "v1alpha3"],
        namespaced true, validate validate_istio;
    PeerAuthentication: Object<security::peer_authentication::PeerAuthentication>,
        group "security.istio.io", versions ["v1", "v1beta1"],
        namespaced true, validate validate_istio;
    AuthorizationPolicy: Object<security::authorization_policy::AuthorizationPolicy>,
        group "security.istio.io", versions ["v1", "v1beta1"],
        namespaced true, validate validate_istio;
    RequestAuthentication: Object<security::request_authentication::RequestAuthentication>,
        group "security.istio.io", versions ["v1", "v1beta1"],
        namespaced true, validate validate_istio;
    Telemetry: Object<telemetry::telemetry::Telemetry>,
        group "telemetry.istio.io", versions ["v1", "v1alpha1"],
        namespaced true, validate validate_istio;
    IstioOperator: Object<operator::istio_operator::IstioOperatorSpec>,
        group "install.istio.io", versions ["v1alpha1"],
        namespaced true, validate validate_istio;
    Service: core::Service, group "", versions ["v1"],
        namespaced true, validate kube::validate_service;
    Endpoints: core::Endpoints, group "", versions ["v1"],
        namespaced true, validate kube::validate_endpoints;
    EndpointSlice: discovery::EndpointSlice, group "discovery.k8s.io", versions ["v1"],
        namespaced true, validate kube::validate_endpoint_slice;
    Namespace: core::Namespace, group "", versions ["v1"],
        namespaced false, validate kube::validate_namespace;
    Pod: core::Pod, group "", versions ["v1"],
        namespaced true, validate kube::validate_pod;
    Deployment: apps::Deployment, group "apps", versions ["v1"],
        namespaced true, validate kube::validate_deployment;
    Secret: core::Secret, group "", versions ["v1"],
        namespaced true, validate kube::validate_secret;
    ConfigMap: core::ConfigMap, group "", versions ["v1"],
        namespaced true, validate kube::validate_config_map;
}

/// The namespace objects without one are created in, as `kubectl apply` does.
pub const DEFAULT_NAMESPACE: &str = "default";

impl Resource {
    pub fn info(&self) -> &'static KindInfo {
        &KINDS[self.kind_index()]
    }

    pub fn kind(&self) -> &'static str {
        self.info().kind
    }

    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or("")
    }

    /// The object's namespace after defaulting; `None` for cluster-scoped kinds.
    pub fn namespace(&self) -> Option<&str> {
        self.info().namespaced.then(|| {
            self.metadata()
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(DEFAULT_NAMESPACE)
        })
    }

    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            kind: self.kind().to_string(),
            namespace: self.namespace().map(str::to_string),
            name: self.name().to_string(),
        }
    }

    /// Validates metadata and spec; paths are relative to the object root.
    pub fn validate(&self) -> Vec<crate::Finding> {
        let ns = self.namespace().unwrap_or("").to_string();
        let mut v = Validator::new(ns);
        let info = self.info();
        let name_is_label = matches!(info.kind, "Namespace" | "Service");
        validate_metadata(
            &mut v,
            info.kind,
            self.metadata(),
            info.namespaced,
            name_is_label,
        );
        self.validate_kind(&mut v);
        match self {
            Resource::AuthorizationPolicy(ap) => {
                security::dry_run::check_authorization_policy(&mut v, &ap.metadata, ap.spec.action)
            }
            Resource::RequestAuthentication(ra) => {
                security::dry_run::check_request_authentication(&mut v, &ra.metadata)
            }
            _ => {}
        }
        v.into_findings()
    }

    /// The object as JSON, in the form it was read (envelope included).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// Finds the kind for `group`/`kind`, ignoring the version.
pub fn find(group: &str, kind: &str) -> Option<&'static KindInfo> {
    KINDS.iter().find(|k| k.group == group && k.kind == kind)
}

/// Kinds Weft knows of but does not read; loading reports them as warnings.
pub static RECOGNISED_UNSUPPORTED: &[(&str, &str, &str)] = &[
    (
        "networking.istio.io",
        "EnvoyFilter",
        "EnvoyFilter patches Envoy internals; Weft does not apply it",
    ),
    (
        "networking.istio.io",
        "ProxyConfig",
        "ProxyConfig is not supported yet; use meshConfig.defaultConfig",
    ),
    (
        "extensions.istio.io",
        "WasmPlugin",
        "Wasm plugins are not supported by Weft",
    ),
    (
        "gateway.networking.k8s.io",
        "*",
        "Kubernetes Gateway API resources are not supported yet; use Istio Gateway and VirtualService",
    ),
];

/// API groups that belong to Istio: an unknown kind in them is an error, not a warning.
pub const ISTIO_GROUPS: &[&str] = &[
    "networking.istio.io",
    "security.istio.io",
    "telemetry.istio.io",
    "install.istio.io",
    "extensions.istio.io",
];

/// The version of `group` that serves `kind`, if the kind exists in another group (for
/// "PeerAuthentication is in security.istio.io").
pub fn kind_elsewhere(kind: &str) -> Option<&'static KindInfo> {
    KINDS.iter().find(|k| k.kind == kind)
}
