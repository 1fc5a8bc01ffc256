//! The configuration directory as the control plane serves it: every file loaded and
//! validated on its own, so a broken file is reported with `weft validate`'s diagnostics
//! and the last good version of its resources keeps serving while the others move on.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use crate::registry::{LabelSets, PodInfo, split_pods};
use weft_config::mesh::mesh_config::MeshConfig;
use weft_config::{Finding, Loader, Resource, Severity};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("config dir {dir}: {source}")]
    Dir {
        dir: String,
        #[source]
        source: std::io::Error,
    },
}

/// One file's state.
#[derive(Debug)]
struct FileEntry {
    /// Modification time and size at the last read: a cheap "did it change" before hashing.
    stamp: Option<(SystemTime, u64)>,
    hash: u64,
    /// The resources of the last version that validated (empty if none ever did).
    /// Only the decoded objects are kept: their positioned YAML trees served validation
    /// and would otherwise cost several times the objects themselves.
    /// Pods are not among them: they are kept as what the registry reads of them.
    good: Arc<Vec<Resource>>,
    pods: Arc<Vec<PodInfo>>,
    /// The MeshConfig of an `istio` ConfigMap in this file, if it holds one.
    mesh: Option<Arc<MeshConfig>>,
    /// Errors of the current version, when it is rejected.
    rejected: Vec<Finding>,
}

/// What a scan found.
#[derive(Debug, Default)]
pub struct Scan {
    /// The set of served resources changed.
    pub changed: bool,
    /// Files whose current version is rejected now (newly or still), with their errors.
    pub rejected: Vec<(String, Vec<Finding>)>,
}

#[derive(Debug)]
pub struct ConfigStore {
    dir: PathBuf,
    files: BTreeMap<PathBuf, FileEntry>,
    /// The Pods' label sets, one copy of each distinct set across files.
    label_sets: LabelSets,
}

impl ConfigStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            files: BTreeMap::new(),
            label_sets: LabelSets::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads what changed in the directory since the last scan.
    pub fn scan(&mut self) -> Result<Scan, StoreError> {
        let paths =
            weft_config::load::config_files(&self.dir).map_err(|source| StoreError::Dir {
                dir: self.dir.display().to_string(),
                source,
            })?;
        let mut scan = Scan::default();
        let before = self.files.len();
        let present: std::collections::HashSet<&PathBuf> = paths.iter().collect();
        self.files.retain(|p, _| present.contains(p));
        scan.changed |= self.files.len() != before;
        for path in paths {
            let stamp = std::fs::metadata(&path)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            if let Some(entry) = self.files.get(&path)
                && entry.stamp.is_some()
                && entry.stamp == stamp
            {
                if !entry.rejected.is_empty() {
                    scan.rejected
                        .push((path.display().to_string(), entry.rejected.clone()));
                }
                continue;
            }
            // Unreadable now (e.g. removed between listing and reading): next scan.
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let mut hasher = DefaultHasher::new();
            text.hash(&mut hasher);
            let hash = hasher.finish();
            let name = path.display().to_string();
            let entry = self.files.entry(path).or_insert_with(|| FileEntry {
                stamp: None,
                hash: hash.wrapping_add(1),
                good: Arc::new(Vec::new()),
                pods: Arc::new(Vec::new()),
                mesh: None,
                rejected: Vec::new(),
            });
            entry.stamp = stamp;
            if entry.hash == hash {
                continue;
            }
            entry.hash = hash;
            let mut loader = Loader::new();
            loader.load_str(&name, &text);
            let mut result = loader.finish();
            weft_config::validate_all(&mut result);
            let errors: Vec<Finding> = result
                .findings
                .into_iter()
                .filter(|f| f.severity == Severity::Error)
                .collect();
            if errors.is_empty() {
                entry.mesh = result
                    .resources
                    .iter()
                    .find_map(|l| l.embedded_mesh.as_ref().map(|m| Arc::new(m.config.clone())));
                let (others, pods) = split_pods(
                    result.resources.into_iter().map(|l| l.resource),
                    &mut self.label_sets,
                );
                entry.pods = Arc::new(pods);
                entry.good = Arc::new(others);
                entry.rejected.clear();
                scan.changed = true;
                tracing::info!(file = %name, "configuration file applied");
            } else {
                for f in &errors {
                    tracing::warn!("{f}");
                }
                tracing::warn!(file = %name, "configuration file rejected; its last good version keeps serving");
                entry.rejected = errors.clone();
                scan.rejected.push((name, errors));
            }
        }
        if scan.changed {
            self.label_sets.prune();
        }
        Ok(scan)
    }

    /// Every served resource but Pods, file by file in name order.
    pub fn resources(&self) -> Vec<&Resource> {
        self.files.values().flat_map(|f| f.good.iter()).collect()
    }

    /// Every served Pod, as the registry reads it ([`Registry::build_with_pods`]).
    ///
    /// [`Registry::build_with_pods`]: crate::registry::Registry::build_with_pods
    pub fn pods(&self) -> Vec<&PodInfo> {
        self.files.values().flat_map(|f| f.pods.iter()).collect()
    }

    /// The files' shared Pod lists, in file name order (see [`ConfigStore::shared_resources`]).
    pub fn shared_pods(&self) -> Vec<Arc<Vec<PodInfo>>> {
        self.files
            .values()
            .filter(|f| !f.pods.is_empty())
            .map(|f| f.pods.clone())
            .collect()
    }

    /// Every served resource as the files' shared lists, in file name order: what the
    /// control plane keeps, so a resource is held once however many keep it.
    pub fn shared_resources(&self) -> Vec<Arc<Vec<Resource>>> {
        self.files
            .values()
            .filter(|f| !f.good.is_empty())
            .map(|f| f.good.clone())
            .collect()
    }

    /// The MeshConfig of the directory's `istio` ConfigMap (`data.mesh`), if there is one.
    pub fn mesh_config(&self) -> Option<&MeshConfig> {
        self.files.values().find_map(|f| f.mesh.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::{MeshSettings, OutboundPolicy};

    #[test]
    fn the_mesh_config_map_sets_mesh_settings_and_a_broken_file_keeps_its_last_good_version() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mesh.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: istio, namespace: istio-system }\n\
             data:\n  mesh: |\n    connectTimeout: 3s\n    rootNamespace: mesh-root\n    \
             outboundTrafficPolicy: { mode: REGISTRY_ONLY }\n",
        )
        .unwrap();
        let svc = "apiVersion: v1\nkind: Service\nmetadata: { name: web }\nspec: { ports: [{ port: 80 }] }\n";
        std::fs::write(dir.path().join("svc.yaml"), svc).unwrap();
        let mut store = ConfigStore::new(dir.path());
        let scan = store.scan().unwrap();
        assert!(scan.changed && scan.rejected.is_empty());
        let mut mesh = MeshSettings::default();
        mesh.apply(store.mesh_config().expect("mesh config"));
        assert_eq!(mesh.connect_timeout, std::time::Duration::from_secs(3));
        assert_eq!(mesh.outbound_policy, OutboundPolicy::RegistryOnly);
        assert_eq!(mesh.root_namespace, "mesh-root");
        assert_eq!(store.resources().len(), 2);

        // A broken edit is reported and the file's previous resources stay served.
        std::fs::write(
            dir.path().join("svc.yaml"),
            format!("{svc}  clusterIP: [oops\n"),
        )
        .unwrap();
        let scan = store.scan().unwrap();
        assert!(!scan.changed);
        assert_eq!(scan.rejected.len(), 1, "{:?}", scan.rejected);
        assert!(scan.rejected[0].0.ends_with("svc.yaml"));
        assert_eq!(store.resources().len(), 2);
        // Removing the file removes its resources.
        std::fs::remove_file(dir.path().join("svc.yaml")).unwrap();
        assert!(store.scan().unwrap().changed);
        assert_eq!(store.resources().len(), 1);
    }

    #[test]
    fn pods_are_kept_as_what_the_registry_reads_of_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("fleet.yaml"),
            "apiVersion: v1\nkind: Service\nmetadata: { name: web, namespace: shop }\n\
             spec: { selector: { app: web }, ports: [{ name: http, port: 80, targetPort: web }] }\n\
             ---\napiVersion: v1\nkind: Pod\nmetadata: { name: web-0, namespace: shop, labels: { app: web } }\n\
             spec:\n  serviceAccountName: web-sa\n  containers: [{ name: app, image: x, ports: [{ name: web, containerPort: 8080 }] }]\n\
             status: { phase: Running, podIP: 10.0.0.7 }\n",
        )
        .unwrap();
        let mut store = ConfigStore::new(dir.path());
        store.scan().unwrap();
        assert_eq!(store.resources().len(), 1, "the Service only");
        let pods = store.pods();
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].port_named("web"), Some(8080));
        let registry = crate::registry::Registry::build_with_pods(
            &store.resources(),
            &pods,
            &[],
            "cluster.local",
        );
        let eps = registry.endpoints_of("web.shop.svc.cluster.local", 80);
        assert_eq!(eps.len(), 1);
        assert_eq!(
            (
                eps[0].address.to_string(),
                eps[0].port,
                eps[0].service_account.as_str()
            ),
            ("10.0.0.7".to_string(), 8080, "web-sa")
        );
    }
}
