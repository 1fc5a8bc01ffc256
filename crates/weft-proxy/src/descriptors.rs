//! The protobuf descriptors of Envoy's API, from the same proto snapshot the `envoy-types`
//! prost structs were generated from. Envoy's YAML/JSON is proto3 JSON with `Any` values
//! (`typed_config: {"@type": ...}`), so it is read through these descriptors and the result
//! re-encoded into the prost types.

use parking_lot::Mutex;
use prost_reflect::{DescriptorPool, MessageDescriptor};
use std::sync::atomic::{AtomicBool, Ordering};

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
    "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
    "envoy.extensions.filters.http.router.v3.Router",
    "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
    "envoy.extensions.filters.listener.http_inspector.v3.HttpInspector",
    "envoy.extensions.filters.listener.original_dst.v3.OriginalDst",
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    "envoy.extensions.filters.http.fault.v3.HTTPFault",
    "envoy.extensions.filters.http.cors.v3.Cors",
    "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate",
];

/// The envoy-types version the descriptors were copied from.
pub const ENVOY_TYPES_VERSION: &str = include_str!("../descriptors/envoy-types.version");

/// A decoded set, kept while configuration is being read and dropped once it has sat idle:
/// decoded, even the small set costs about ten megabytes, while decoding it again takes
/// about five milliseconds. Dropped memory goes back to the heap that connections use.
struct Cached {
    bytes: &'static [u8],
    name: &'static str,
    pool: Mutex<Option<DescriptorPool>>,
    used: AtomicBool,
}

impl Cached {
    const fn new(bytes: &'static [u8], name: &'static str) -> Self {
        Cached {
            bytes,
            name,
            pool: Mutex::new(None),
            used: AtomicBool::new(false),
        }
    }

    fn get(&self) -> DescriptorPool {
        self.used.store(true, Ordering::Relaxed);
        self.pool
            .lock()
            .get_or_insert_with(|| {
                DescriptorPool::decode(self.bytes)
                    .unwrap_or_else(|e| panic!("descriptors/{} is corrupt: {e}", self.name))
            })
            .clone()
    }

    /// Whether a decoded set was dropped.
    fn release_if_idle(&self) -> bool {
        !self.used.swap(false, Ordering::Relaxed) && self.release()
    }

    fn release(&self) -> bool {
        self.pool.lock().take().is_some()
    }
}

static PROXY: Cached = Cached::new(PROXY_DESCRIPTORS, "proxy.bin");
static FULL: Cached = Cached::new(ENVOY_DESCRIPTORS, "envoy.bin");

/// The served messages and everything they reference, by full name.
pub fn pool() -> DescriptorPool {
    PROXY.get()
}

/// Every Envoy message, by full name.
pub fn full_pool() -> DescriptorPool {
    FULL.get()
}

/// Drops the decoded sets not used since the previous call (the proxy calls this every few
/// seconds). Descriptors still held elsewhere keep their set alive until they are dropped.
/// The freed megabytes go back to the kernel rather than staying resident in the heap.
pub fn release_idle() {
    let proxy = PROXY.release_if_idle();
    let full = FULL.release_if_idle();
    if proxy || full {
        crate::heap::trim();
    }
}

/// Drops both decoded sets now: the proxy has read its start-up configuration and goes
/// live, and traffic should not arrive on top of megabytes it no longer needs (peak RSS is
/// what a sidecar is sized by). Later xDS updates decode them again.
pub fn release_now() {
    let proxy = PROXY.release();
    let full = FULL.release();
    if proxy || full {
        crate::heap::trim();
    }
}

/// The descriptor of a message such as `envoy.config.bootstrap.v3.Bootstrap`.
pub fn message(full_name: &str) -> Option<MessageDescriptor> {
    pool().get_message_by_name(full_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_sets_are_released_and_decoded_again_on_use() {
        let first = pool();
        release_idle();
        release_idle();
        // The handle taken before the release still works.
        assert!(
            first
                .get_message_by_name("envoy.config.listener.v3.Listener")
                .is_some()
        );
        assert!(message("envoy.config.cluster.v3.Cluster").is_some());
    }

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
