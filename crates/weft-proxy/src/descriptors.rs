//! The protobuf descriptors of Envoy's API, from the same proto snapshot the `envoy-types`
//! prost structs were generated from. Envoy's YAML/JSON is proto3 JSON with `Any` values
//! (`typed_config: {"@type": ...}`), so it is read through these descriptors and the result
//! re-encoded into the prost types.

use prost_reflect::{DescriptorPool, MessageDescriptor};
use std::sync::OnceLock;

/// Every Envoy message, without source comments (see `scripts/update-envoy-descriptors.sh`).
/// Decoded only when a bootstrap names a type the proxy does not serve, to explain it.
static ENVOY_DESCRIPTORS: &[u8] = include_bytes!("../descriptors/envoy.bin");

/// The files the served resource types need: small enough to keep decoded for the
/// process's life (the full set costs tens of megabytes of memory once decoded).
static PROXY_DESCRIPTORS: &[u8] = include_bytes!("../descriptors/proxy.bin");

/// The messages the proxy serves; `proxy.bin` is their dependency closure.
pub const SERVED_ROOTS: &[&str] = &[
    "envoy.config.bootstrap.v3.Bootstrap",
    "envoy.config.listener.v3.Listener",
    "envoy.config.route.v3.RouteConfiguration",
    "envoy.config.cluster.v3.Cluster",
    "envoy.config.endpoint.v3.ClusterLoadAssignment",
    "envoy.extensions.transport_sockets.tls.v3.Secret",
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
    "envoy.extensions.filters.http.router.v3.Router",
    "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
    "envoy.extensions.filters.listener.http_inspector.v3.HttpInspector",
    "envoy.extensions.filters.listener.original_dst.v3.OriginalDst",
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
];

/// The envoy-types version the descriptors were copied from.
pub const ENVOY_TYPES_VERSION: &str = include_str!("../descriptors/envoy-types.version");

/// The served messages and everything they reference, by full name.
pub fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(PROXY_DESCRIPTORS)
            .unwrap_or_else(|e| panic!("descriptors/proxy.bin is corrupt: {e}"))
    })
}

/// Every Envoy message, by full name.
pub fn full_pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(ENVOY_DESCRIPTORS)
            .unwrap_or_else(|e| panic!("descriptors/envoy.bin is corrupt: {e}"))
    })
}

/// The descriptor of a message such as `envoy.config.bootstrap.v3.Bootstrap`.
pub fn message(full_name: &str) -> Option<MessageDescriptor> {
    pool().get_message_by_name(full_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_match_the_prost_types() {
        let lock = include_str!("../../../Cargo.lock");
        let locked = lock
            .split("[[package]]")
            .find(|p| p.contains("name = \"envoy-types\""))
            .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
            .map(|v| v.trim_end_matches('"'))
            .expect("envoy-types in Cargo.lock");
        assert_eq!(
            ENVOY_TYPES_VERSION.trim(),
            locked,
            "run scripts/update-envoy-descriptors.sh after changing envoy-types"
        );
    }

    #[test]
    fn has_the_messages_the_proxy_reads() {
        for name in SERVED_ROOTS {
            assert!(
                message(name).is_some(),
                "{name} missing from the descriptors"
            );
        }
    }

    #[test]
    fn the_small_set_is_the_closure_of_the_served_types_in_the_full_set() {
        let full = full_pool();
        let mut need = std::collections::BTreeSet::new();
        let mut stack: Vec<prost_reflect::FileDescriptor> = SERVED_ROOTS
            .iter()
            .map(|r| {
                full.get_message_by_name(r)
                    .expect("in the full set")
                    .parent_file()
            })
            .collect();
        stack.extend(full.get_file_by_name("validate/validate.proto"));
        while let Some(f) = stack.pop() {
            if need.insert(f.name().to_string()) {
                stack.extend(f.dependencies());
            }
        }
        let small: std::collections::BTreeSet<String> =
            pool().files().map(|f| f.name().to_string()).collect();
        assert_eq!(small, need, "run scripts/update-envoy-descriptors.sh");
        // Every message of the small set is the same message in the full set.
        for m in pool().all_messages() {
            let f = full
                .get_message_by_name(m.full_name())
                .expect("in the full set");
            assert_eq!(
                f.descriptor_proto(),
                m.descriptor_proto(),
                "{}",
                m.full_name()
            );
        }
    }
}
