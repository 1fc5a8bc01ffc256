//! Reading Envoy's `/config_dump`: which `envoy.admin.v3.*ConfigDump` entries it has, in order,
//! with the names of the static resources in each, and a way to reach one entry's fields, so a
//! test compares structure and proto field names rather than timestamps and versions.

use serde_json::Value;

/// `(@type, static resource names)` for each entry of `configs`, in order. Names are listed
/// for clusters, listeners and route configurations.
pub fn shape(doc: &Value) -> Vec<(String, Vec<String>)> {
    let Some(configs) = doc.get("configs").and_then(Value::as_array) else {
        return Vec::new();
    };
    configs
        .iter()
        .map(|c| {
            let ty = c.get("@type").and_then(Value::as_str).unwrap_or("");
            let resources = match short_type(ty) {
                "ClustersConfigDump" => names(c, "static_clusters", "cluster"),
                "ListenersConfigDump" => names(c, "static_listeners", "listener"),
                "RoutesConfigDump" => names(c, "static_route_configs", "route_config"),
                _ => Vec::new(),
            };
            (ty.to_string(), resources)
        })
        .collect()
}

/// The `configs` entry whose `@type` ends in `.{short}` (e.g. `RoutesConfigDump`).
pub fn config_of<'a>(doc: &'a Value, short: &str) -> Option<&'a Value> {
    doc.get("configs")?.as_array()?.iter().find(|c| {
        c.get("@type")
            .and_then(Value::as_str)
            .is_some_and(|t| short_type(t) == short)
    })
}

fn short_type(ty: &str) -> &str {
    ty.rsplit('.').next().unwrap_or("")
}

fn names(config: &Value, list: &str, inner: &str) -> Vec<String> {
    let pointer = format!("/{inner}/name");
    config
        .get(list)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| e.pointer(&pointer)?.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_lists_types_and_static_names() {
        let doc = serde_json::json!({"configs": [
            {"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump", "bootstrap": {}},
            {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
             "static_clusters": [{"cluster": {"name": "a"}}, {"cluster": {"name": "b"}}]},
        ]});
        assert_eq!(
            shape(&doc),
            vec![
                (
                    "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump".to_string(),
                    vec![]
                ),
                (
                    "type.googleapis.com/envoy.admin.v3.ClustersConfigDump".to_string(),
                    vec!["a".to_string(), "b".to_string()]
                ),
            ]
        );
        assert!(config_of(&doc, "ClustersConfigDump").is_some());
        assert!(config_of(&doc, "RoutesConfigDump").is_none());
    }
}
