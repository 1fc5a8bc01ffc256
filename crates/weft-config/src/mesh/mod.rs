//! MeshConfig (`istio.mesh.v1alpha1`): mesh-wide settings, the proxy defaults
//! (ProxyConfig) and the extension providers that Telemetry and AuthorizationPolicy name.

pub mod extension_provider;
pub mod mesh_config;
pub mod proxy_config;
