//! `/config_dump`: what the proxy accepted, as Envoy's admin API shows it — the bootstrap,
//! then static and dynamic (active and warming) clusters, listeners, routes and secrets,
//! each resource in proto3 JSON with its `@type`, version and update time.

use crate::config::store::Store;
use crate::descriptors;
use envoy_types::pb::envoy::config::bootstrap::v3::Bootstrap;
use prost::{Message, Name};
use prost_reflect::{DynamicMessage, SerializeOptions};
use serde_json::{Map, Value, json};
use std::time::SystemTime;

/// A prost message as proto3 JSON with `@type`.
pub fn to_json<M: Message + Name>(m: &M) -> Value {
    let name = M::full_name();
    let Some(desc) = descriptors::message(&name) else {
        return Value::Null;
    };
    let Ok(dynamic) = DynamicMessage::decode(desc, m.encode_to_vec().as_slice()) else {
        return Value::Null;
    };
    let opts = SerializeOptions::new()
        .skip_default_fields(true)
        .use_proto_field_name(true);
    let mut v = dynamic
        .serialize_with_options(serde_json::value::Serializer, &opts)
        .unwrap_or(Value::Null);
    if let Value::Object(o) = &mut v {
        let mut with_type = Map::new();
        with_type.insert("@type".into(), Value::String(M::type_url()));
        with_type.extend(std::mem::take(o));
        *o = with_type;
    }
    v
}

fn timestamp(t: SystemTime) -> Value {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    Value::String(rfc3339(secs))
}

/// UTC `YYYY-MM-DDTHH:MM:SS.mmmZ` from seconds since the epoch.
pub fn rfc3339(secs: f64) -> String {
    let total = secs.floor() as i64;
    let millis = ((secs - secs.floor()) * 1000.0).round() as i64 % 1000;
    let days = total.div_euclid(86_400);
    let rem = total.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub fn render(
    store: &Store,
    bootstrap: &Bootstrap,
    started: SystemTime,
    include_eds: bool,
) -> Value {
    let mut static_clusters = Vec::new();
    let mut dynamic_active_clusters = Vec::new();
    for e in store.clusters.values() {
        let mut entry = json!({
            "cluster": to_json(&e.cluster.raw),
            "last_updated": timestamp(e.updated),
        });
        if e.is_static {
            static_clusters.push(entry);
        } else {
            entry["version_info"] = Value::String(e.version.clone());
            dynamic_active_clusters.push(entry);
        }
    }
    let dynamic_warming_clusters: Vec<Value> = store
        .warming_clusters
        .values()
        .map(|e| {
            json!({
                "version_info": e.version,
                "cluster": to_json(&e.cluster.raw),
                "last_updated": timestamp(e.updated),
            })
        })
        .collect();
    let mut static_listeners = Vec::new();
    let mut dynamic_listeners: std::collections::BTreeMap<String, Value> = Default::default();
    for (name, e) in &store.listeners {
        let a = &e.accepted;
        if a.is_static {
            static_listeners.push(json!({
                "listener": to_json(&a.raw),
                "last_updated": timestamp(a.updated),
            }));
        } else {
            dynamic_listeners.insert(
                name.clone(),
                json!({
                    "name": name,
                    "active_state": {
                        "version_info": a.version,
                        "listener": to_json(&a.raw),
                        "last_updated": timestamp(a.updated),
                    },
                }),
            );
        }
    }
    for (name, e) in &store.warming_listeners {
        let a = &e.accepted;
        let slot = dynamic_listeners
            .entry(name.clone())
            .or_insert_with(|| json!({ "name": name }));
        slot["warming_state"] = json!({
            "version_info": a.version,
            "listener": to_json(&a.raw),
            "last_updated": timestamp(a.updated),
        });
    }
    let mut static_route_configs = Vec::new();
    for e in store.listeners.values() {
        for_each_inline_route(&e.accepted.raw, &mut |rc| {
            static_route_configs.push(json!({
                "route_config": to_json(rc),
                "last_updated": timestamp(e.accepted.updated),
            }));
        });
    }
    let dynamic_route_configs: Vec<Value> = store
        .routes
        .values()
        .map(|a| {
            json!({
                "version_info": a.version,
                "route_config": to_json(&a.raw),
                "last_updated": timestamp(a.updated),
            })
        })
        .collect();
    let secret = |a: &crate::config::store::Accepted<
        crate::model::tls::SecretMaterial,
        envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret,
    >| {
        json!({
            "name": a.raw.name,
            "version_info": a.version,
            "last_updated": timestamp(a.updated),
            // Key material is never shown, as in Envoy.
            "secret": { "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret", "name": a.raw.name },
        })
    };
    let mut static_secrets = Vec::new();
    let mut dynamic_active_secrets = Vec::new();
    for (source, held) in &store.secrets {
        let into = if *source == crate::model::tls::SecretSource::Static {
            &mut static_secrets
        } else {
            &mut dynamic_active_secrets
        };
        into.extend(held.values().map(secret));
    }
    // What a cluster waits for and has not had, as Envoy lists an SDS subscription
    // that has not been answered.
    let dynamic_warming_secrets: Vec<Value> = store
        .warming_secrets()
        .into_iter()
        .map(|r| json!({ "name": r.name }))
        .collect();
    let mut configs = vec![
        json!({
            "@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
            "bootstrap": to_json(bootstrap),
            "last_updated": timestamp(started),
        }),
        json!({
            "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
            "static_clusters": static_clusters,
            "dynamic_active_clusters": dynamic_active_clusters,
            "dynamic_warming_clusters": dynamic_warming_clusters,
        }),
        json!({
            "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
            "static_listeners": static_listeners,
            "dynamic_listeners": dynamic_listeners.into_values().collect::<Vec<_>>(),
        }),
        json!({ "@type": "type.googleapis.com/envoy.admin.v3.ScopedRoutesConfigDump" }),
        json!({
            "@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
            "static_route_configs": static_route_configs,
            "dynamic_route_configs": dynamic_route_configs,
        }),
        json!({
            "@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump",
            "static_secrets": static_secrets,
            "dynamic_active_secrets": dynamic_active_secrets,
            "dynamic_warming_secrets": dynamic_warming_secrets,
        }),
    ];
    if include_eds {
        let dynamic_endpoint_configs: Vec<Value> = store
            .assignments
            .values()
            .map(|a| {
                json!({
                    "version_info": a.version,
                    "endpoint_config": to_json(&a.raw),
                    "last_updated": timestamp(a.updated),
                })
            })
            .collect();
        configs.push(json!({
            "@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump",
            "dynamic_endpoint_configs": dynamic_endpoint_configs,
        }));
    }
    json!({ "configs": configs })
}

/// Calls `f` with every route table written inline in a listener's connection managers.
fn for_each_inline_route(
    l: &envoy_types::pb::envoy::config::listener::v3::Listener,
    f: &mut dyn FnMut(&envoy_types::pb::envoy::config::route::v3::RouteConfiguration),
) {
    use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType;
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
        HttpConnectionManager, http_connection_manager::RouteSpecifier,
    };
    for chain in l
        .filter_chains
        .iter()
        .chain(l.default_filter_chain.as_ref())
    {
        for filter in &chain.filters {
            let Some(ConfigType::TypedConfig(any)) = &filter.config_type else {
                continue;
            };
            if any.type_url != HttpConnectionManager::type_url() {
                continue;
            }
            if let Ok(hcm) = HttpConnectionManager::decode(any.value.as_slice())
                && let Some(RouteSpecifier::RouteConfig(rc)) = &hcm.route_specifier
            {
                f(rc);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_000_000.25), "2026-11-18T11:06:40.250Z");
    }
}
