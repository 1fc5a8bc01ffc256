//! Extension provider references: Telemetry and CUSTOM AuthorizationPolicy name providers
//! that MeshConfig must define, or istiod silently drops the reference.

use crate::diag::{Code, Finding};
use crate::kinds::Resource;
use crate::load::Loaded;
use crate::mesh::mesh_config::MeshConfig;
use crate::path::FieldPath;

/// Providers istiod defines even when MeshConfig lists none (its mesh defaults).
const BUILTIN_PROVIDERS: &[&str] = &["prometheus", "stackdriver", "envoy"];

/// The MeshConfigs among the loaded objects: the `istio` ConfigMap's `data.mesh` and
/// IstioOperator `spec.meshConfig`, with where each came from.
pub fn mesh_configs(loaded: &[Loaded]) -> Vec<(&MeshConfig, &Loaded)> {
    loaded
        .iter()
        .filter_map(|l| match &l.resource {
            Resource::IstioOperator(op) => op.spec.mesh_config.as_ref().map(|m| (m, l)),
            _ => l.embedded_mesh.as_ref().map(|e| (&e.config, l)),
        })
        .collect()
}

/// Telemetry and CUSTOM AuthorizationPolicy name extension providers that MeshConfig must
/// define; istiod silently skips a name it cannot find. Checked only when a MeshConfig is
/// among the inputs.
pub(super) fn provider_refs(loaded: &[Loaded], out: &mut Vec<Finding>) {
    let meshes = mesh_configs(loaded);
    if meshes.is_empty() {
        return;
    }
    let defined: Vec<&str> = meshes
        .iter()
        .flat_map(|(m, _)| m.extension_providers.iter().map(|p| p.name.as_str()))
        .chain(BUILTIN_PROVIDERS.iter().copied())
        .collect();
    let source = meshes[0].1.resource.object_ref();
    let mut check = |l: &Loaded, path: FieldPath, name: &str| {
        if name.is_empty() || defined.contains(&name) {
            return;
        }
        let mut f = Finding::warning(
            Code::ReferenceNotFound,
            format!("extension provider {name:?} is not defined in meshConfig.extensionProviders ({source}); istiod ignores this reference"),
        )
        .at(path);
        if let Some(c) = crate::suggest::closest(name, defined.iter().copied()) {
            f = f.with_suggestion(format!("did you mean {c:?}?"));
        }
        out.push(l.place(f));
    };
    for l in loaded {
        match &l.resource {
            Resource::Telemetry(t) => {
                let spec = FieldPath::parse("spec");
                let groups = [
                    (
                        "tracing",
                        t.spec
                            .tracing
                            .iter()
                            .map(|x| &x.providers)
                            .collect::<Vec<_>>(),
                    ),
                    (
                        "metrics",
                        t.spec.metrics.iter().map(|x| &x.providers).collect(),
                    ),
                    (
                        "accessLogging",
                        t.spec.access_logging.iter().map(|x| &x.providers).collect(),
                    ),
                ];
                for (field, lists) in groups {
                    for (i, providers) in lists.into_iter().enumerate() {
                        for (j, p) in providers.iter().enumerate() {
                            let path = spec
                                .field(field)
                                .index(i)
                                .field("providers")
                                .index(j)
                                .field("name");
                            check(l, path, &p.name);
                        }
                    }
                }
            }
            Resource::AuthorizationPolicy(ap) => {
                if let Some(p) = &ap.spec.provider {
                    check(l, FieldPath::parse("spec.provider.name"), &p.name);
                }
            }
            _ => {}
        }
    }
}
