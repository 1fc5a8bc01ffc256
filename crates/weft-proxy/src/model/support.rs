//! Which Envoy fields weft-proxy acts on. Envoy's API is far larger than what the proxy
//! implements, and a field that is silently ignored is a behaviour difference nobody sees
//! until production, so every resource is walked before conversion and any field that is
//! set but not listed here is rejected by name. Listed fields are the ones the converters
//! read (or, for the few marked in comments, whose effect the proxy has by construction).

use super::ConvertError;
use crate::descriptors;
use prost_reflect::{DynamicMessage, ReflectMessage, Value};
use std::collections::HashMap;
use std::sync::OnceLock;
use weft_yaml::FieldPath;

/// Messages whose every field is plain data the converters read as a whole.
const OPAQUE: &[&str] = &[
    "google.protobuf.Duration",
    "google.protobuf.Timestamp",
    "google.protobuf.BoolValue",
    "google.protobuf.UInt32Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.Int32Value",
    "google.protobuf.Int64Value",
    "google.protobuf.DoubleValue",
    "google.protobuf.StringValue",
    "google.protobuf.Struct",
    "google.protobuf.Value",
    "google.protobuf.ListValue",
    "google.protobuf.Empty",
    // Metadata only feeds filters and logs; carrying it changes nothing by itself.
    "envoy.config.core.v3.Metadata",
    "envoy.config.core.v3.Locality",
    "envoy.type.v3.Percent",
    "envoy.type.v3.FractionalPercent",
    "envoy.config.core.v3.RuntimeFractionalPercent",
    "envoy.config.core.v3.CidrRange",
    "envoy.type.v3.Int64Range",
    "envoy.type.v3.Int32Range",
    "envoy.config.core.v3.DataSource",
    "envoy.config.core.v3.HeaderValue",
    "envoy.config.core.v3.TcpKeepalive",
    "envoy.config.core.v3.BuildVersion",
    "envoy.type.v3.SemanticVersion",
    "envoy.config.core.v3.Extension",
    "envoy.config.core.v3.Node",
    "envoy.config.core.v3.KeepaliveSettings",
    "envoy.config.core.v3.TypedExtensionConfig",
    "envoy.type.matcher.v3.RegexMatcher.GoogleRE2",
];

/// Deeper messages are rejected (protobuf's own parsers stop at 100 levels), so a crafted
/// resource cannot exhaust the stack.
const MAX_DEPTH: usize = 100;

/// Message full name → the fields the proxy supports in it.
const SUPPORTED: &[(&str, &[&str])] = &[
    (
        "envoy.config.bootstrap.v3.Bootstrap",
        &[
            "node",
            "static_resources",
            "dynamic_resources",
            "admin",
            "stats_flush_interval",
            "stats_flush_on_admin",
            "enable_dispatcher_stats",
            "stats_server_version_override",
            "use_tcp_for_dns_lookups",
            "watchdog",
            "watchdogs",
            "node_context_params",
        ],
    ),
    (
        "envoy.config.bootstrap.v3.Bootstrap.StaticResources",
        &["listeners", "clusters", "secrets"],
    ),
    (
        "envoy.config.bootstrap.v3.Bootstrap.DynamicResources",
        &["lds_config", "cds_config", "ads_config"],
    ),
    (
        "envoy.config.bootstrap.v3.Admin",
        &[
            "address",
            "access_log_path",
            "profile_path",
            "ignore_global_conn_limit",
        ],
    ),
    (
        "envoy.config.bootstrap.v3.Watchdog",
        &[
            "miss_timeout",
            "megamiss_timeout",
            "kill_timeout",
            "multikill_timeout",
            "multikill_threshold",
            "max_kill_timeout_jitter",
        ],
    ),
    (
        "envoy.config.bootstrap.v3.Watchdogs",
        &["main_thread_watchdog", "worker_watchdog"],
    ),
    (
        "envoy.config.core.v3.ConfigSource",
        &[
            "ads",
            "api_config_source",
            "resource_api_version",
            // Not per source: every resource waits Envoy's default 15 s for its
            // dependencies (store::WARMING_TIMEOUT), whatever this says.
            "initial_fetch_timeout",
        ],
    ),
    ("envoy.config.core.v3.AggregatedConfigSource", &[]),
    (
        "envoy.config.core.v3.ApiConfigSource",
        &[
            "api_type",
            "transport_api_version",
            "grpc_services",
            "set_node_on_first_message_only",
            "refresh_delay",
            "request_timeout",
        ],
    ),
    (
        "envoy.config.core.v3.GrpcService",
        &["envoy_grpc", "timeout", "initial_metadata"],
    ),
    (
        "envoy.config.core.v3.GrpcService.EnvoyGrpc",
        &["cluster_name", "authority"],
    ),
    ("envoy.config.core.v3.Address", &["socket_address", "pipe"]),
    ("envoy.config.core.v3.Pipe", &["path", "mode"]),
    (
        "envoy.config.core.v3.SocketAddress",
        &["protocol", "address", "port_value", "ipv4_compat"],
    ),
    // Listeners.
    (
        "envoy.config.listener.v3.Listener",
        &[
            "name",
            "address",
            "stat_prefix",
            "filter_chains",
            "default_filter_chain",
            "use_original_dst",
            "listener_filters",
            "listener_filters_timeout",
            "continue_on_listener_filters_timeout",
            "bind_to_port",
            // Only labels the listener for tracing and access logs, which weft-proxy does
            // not have; routing and filter chains do not depend on it.
            "traffic_direction",
            "metadata",
            // Bounds what is kept of a request body for retries (nothing else is buffered).
            "per_connection_buffer_limit_bytes",
            "enable_reuse_port",
            "reuse_port",
            "drain_type",
            "tcp_backlog_size",
            "ignore_global_conn_limit",
            "max_connections_to_accept_per_socket_event",
        ],
    ),
    (
        "envoy.config.listener.v3.FilterChain",
        &[
            "filter_chain_match",
            "filters",
            "name",
            "metadata",
            "transport_socket_connect_timeout",
        ],
    ),
    (
        "envoy.config.listener.v3.FilterChainMatch",
        &[
            "destination_port",
            "prefix_ranges",
            "direct_source_prefix_ranges",
            "source_type",
            "source_prefix_ranges",
            "source_ports",
            "server_names",
            "transport_protocol",
            "application_protocols",
        ],
    ),
    ("envoy.config.listener.v3.Filter", &["name", "typed_config"]),
    (
        "envoy.config.listener.v3.ListenerFilter",
        &["name", "typed_config", "filter_disabled"],
    ),
    (
        "envoy.config.listener.v3.ListenerFilterChainMatchPredicate",
        &[
            "or_match",
            "and_match",
            "not_match",
            "any_match",
            "destination_port_range",
        ],
    ),
    (
        "envoy.config.listener.v3.ListenerFilterChainMatchPredicate.MatchSet",
        &["rules"],
    ),
    (
        "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
        &["initial_read_buffer_size"],
    ),
    (
        "envoy.extensions.filters.listener.http_inspector.v3.HttpInspector",
        &[],
    ),
    (
        "envoy.extensions.filters.listener.original_dst.v3.OriginalDst",
        &[],
    ),
    // Network filters.
    (
        "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
        &[
            "stat_prefix",
            "cluster",
            "weighted_clusters",
            "idle_timeout",
            "max_connect_attempts",
            "max_downstream_connection_duration",
            "hash_policy",
        ],
    ),
    ("envoy.type.v3.HashPolicy", &["source_ip"]),
    ("envoy.type.v3.HashPolicy.SourceIp", &[]),
    (
        "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster",
        &["clusters"],
    ),
    (
        "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster.ClusterWeight",
        &["name", "weight"],
    ),
    (
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        &[
            "codec_type",
            "stat_prefix",
            "rds",
            "route_config",
            "http_filters",
            "server_name",
            "server_header_transformation",
            "common_http_protocol_options",
            "http_protocol_options",
            "http2_protocol_options",
            "stream_idle_timeout",
            "request_timeout",
            "request_headers_timeout",
            "drain_timeout",
            "delayed_close_timeout",
            "use_remote_address",
            "xff_num_trusted_hops",
            "skip_xff_append",
            "via",
            "generate_request_id",
            "preserve_external_request_id",
            "always_set_request_id_in_response",
            "forward_client_cert_details",
            "set_current_client_cert_details",
            "upgrade_configs",
            "strip_matching_host_port",
            "strip_any_host_port",
            "normalize_path",
            "merge_slashes",
            "path_with_escaped_slashes_action",
            "max_request_headers_kb",
            "stream_error_on_invalid_http_message",
            "proxy_100_continue",
            "internal_address_config",
        ],
    ),
    (
        "envoy.extensions.filters.network.http_connection_manager.v3.Rds",
        &["config_source", "route_config_name"],
    ),
    (
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter",
        &["name", "typed_config", "is_optional"],
    ),
    (
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.UpgradeConfig",
        &["upgrade_type", "enabled"],
    ),
    (
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.SetCurrentClientCertDetails",
        &["subject", "cert", "chain", "dns", "uri"],
    ),
    (
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.InternalAddressConfig",
        &["unix_sockets", "cidr_ranges"],
    ),
    (
        "envoy.extensions.filters.http.fault.v3.HTTPFault",
        &[
            "delay",
            "abort",
            "upstream_cluster",
            "headers",
            "downstream_nodes",
            "max_active_faults",
            // The runtime keys name overrides in Envoy's runtime layers; weft-proxy has no
            // runtime, and with none Envoy uses the configured values, as the proxy does.
            "delay_percent_runtime",
            "abort_percent_runtime",
            "delay_duration_runtime",
            "abort_http_status_runtime",
            "max_active_faults_runtime",
            "abort_grpc_status_runtime",
            // Only decide which statistics and dynamic metadata exist: per-downstream-cluster
            // fault counters (which weft-proxy does not keep) and metadata for access logs
            // and later filters (which it does not have).
            "disable_downstream_cluster_stats",
            "filter_metadata",
        ],
    ),
    (
        "envoy.extensions.filters.http.fault.v3.FaultAbort",
        &[
            "http_status",
            "grpc_status",
            "header_abort",
            "percentage",
            "response_body",
        ],
    ),
    (
        "envoy.extensions.filters.http.fault.v3.FaultAbort.HeaderAbort",
        &[],
    ),
    (
        "envoy.extensions.filters.common.fault.v3.FaultDelay",
        &["fixed_delay", "header_delay", "percentage"],
    ),
    (
        "envoy.extensions.filters.common.fault.v3.FaultDelay.HeaderDelay",
        &[],
    ),
    ("envoy.extensions.filters.http.cors.v3.Cors", &[]),
    (
        // `shadow_enabled` only feeds the filter's statistics, as in Envoy.
        "envoy.extensions.filters.http.cors.v3.CorsPolicy",
        &[
            "allow_origin_string_match",
            "allow_methods",
            "allow_headers",
            "expose_headers",
            "max_age",
            "allow_credentials",
            "filter_enabled",
            "shadow_enabled",
            "allow_private_network_access",
            "forward_not_matching_preflights",
        ],
    ),
    (
        "envoy.extensions.filters.http.router.v3.Router",
        &[
            "dynamic_stats",
            "suppress_envoy_headers",
            "suppress_grpc_request_failure_code_stats",
            "respect_expected_rq_timeout",
        ],
    ),
    (
        "envoy.config.core.v3.HttpProtocolOptions",
        &[
            "idle_timeout",
            "max_connection_duration",
            "max_headers_count",
            "max_stream_duration",
            "headers_with_underscores_action",
            "max_requests_per_connection",
        ],
    ),
    ("envoy.config.core.v3.Http1ProtocolOptions", &[]),
    (
        "envoy.config.core.v3.Http2ProtocolOptions",
        &[
            "max_concurrent_streams",
            "initial_stream_window_size",
            "initial_connection_window_size",
            "hpack_table_size",
            "connection_keepalive",
            // Flood limits: the proxy's HTTP/2 stack enforces its own, at least as strict.
            "max_outbound_frames",
            "max_outbound_control_frames",
            "max_consecutive_inbound_frames_with_empty_payload",
            "max_inbound_priority_frames_per_stream",
            "max_inbound_window_update_frames_per_data_frame_sent",
        ],
    ),
    // Routes.
    (
        "envoy.config.route.v3.RouteConfiguration",
        &[
            "name",
            "virtual_hosts",
            "response_headers_to_add",
            "response_headers_to_remove",
            "request_headers_to_add",
            "request_headers_to_remove",
            "most_specific_header_mutations_wins",
            "validate_clusters",
            "typed_per_filter_config",
            "max_direct_response_body_size_bytes",
            "ignore_port_in_host_matching",
        ],
    ),
    (
        "envoy.config.route.v3.VirtualHost",
        &[
            "name",
            "domains",
            "routes",
            "request_headers_to_add",
            "request_headers_to_remove",
            "response_headers_to_add",
            "response_headers_to_remove",
            "include_request_attempt_count",
            "include_attempt_count_in_response",
            "metadata",
            "typed_per_filter_config",
            "retry_policy",
            "require_tls",
        ],
    ),
    (
        "envoy.config.route.v3.Route",
        &[
            "name",
            "match",
            "route",
            "redirect",
            "direct_response",
            "metadata",
            // Names the tracing span; harmless without tracing, which is rejected elsewhere.
            "decorator",
            "request_headers_to_add",
            "request_headers_to_remove",
            "response_headers_to_add",
            "response_headers_to_remove",
            "per_request_buffer_limit_bytes",
            "stat_prefix",
            "typed_per_filter_config",
        ],
    ),
    (
        "envoy.config.route.v3.Decorator",
        &["operation", "propagate"],
    ),
    (
        "envoy.config.route.v3.RouteMatch",
        &[
            "prefix",
            "path",
            "safe_regex",
            "path_separated_prefix",
            "case_sensitive",
            "runtime_fraction",
            "headers",
            "query_parameters",
            "grpc",
        ],
    ),
    (
        "envoy.config.route.v3.RouteMatch.GrpcRouteMatchOptions",
        &[],
    ),
    (
        "envoy.config.route.v3.HeaderMatcher",
        &[
            "name",
            "exact_match",
            "safe_regex_match",
            "range_match",
            "present_match",
            "prefix_match",
            "suffix_match",
            "contains_match",
            "string_match",
            "invert_match",
            "treat_missing_header_as_empty",
        ],
    ),
    (
        "envoy.config.route.v3.QueryParameterMatcher",
        &["name", "string_match", "present_match"],
    ),
    (
        "envoy.type.matcher.v3.StringMatcher",
        &[
            "exact",
            "prefix",
            "suffix",
            "safe_regex",
            "contains",
            "ignore_case",
        ],
    ),
    (
        "envoy.type.matcher.v3.RegexMatcher",
        &["google_re2", "regex"],
    ),
    (
        "envoy.type.matcher.v3.RegexMatchAndSubstitute",
        &["pattern", "substitution"],
    ),
    (
        "envoy.config.route.v3.RouteAction",
        &[
            "cluster",
            "cluster_header",
            "weighted_clusters",
            "cluster_not_found_response_code",
            "prefix_rewrite",
            "regex_rewrite",
            "host_rewrite_literal",
            "auto_host_rewrite",
            "host_rewrite_header",
            "append_x_forwarded_host",
            "timeout",
            "idle_timeout",
            "upgrade_configs",
            "max_stream_duration",
            "retry_policy",
            "hash_policy",
            "request_mirror_policies",
        ],
    ),
    (
        // `request_headers_mutations` is listed so the converter refuses it with a reason
        // (model::mirror); `trace_sampled` only steers tracing, which weft-proxy does not do.
        "envoy.config.route.v3.RouteAction.RequestMirrorPolicy",
        &[
            "cluster",
            "cluster_header",
            "runtime_fraction",
            "trace_sampled",
            "disable_shadow_host_suffix_append",
            "request_headers_mutations",
            "host_rewrite_literal",
        ],
    ),
    (
        "envoy.config.route.v3.RouteAction.HashPolicy",
        &[
            "header",
            "cookie",
            "connection_properties",
            "query_parameter",
            "terminal",
        ],
    ),
    (
        "envoy.config.route.v3.RouteAction.HashPolicy.Header",
        &["header_name"],
    ),
    (
        "envoy.config.route.v3.RouteAction.HashPolicy.Cookie",
        &["name", "ttl", "path", "attributes"],
    ),
    (
        "envoy.config.route.v3.RouteAction.HashPolicy.CookieAttribute",
        &["name", "value"],
    ),
    (
        "envoy.config.route.v3.RouteAction.HashPolicy.ConnectionProperties",
        &["source_ip"],
    ),
    (
        "envoy.config.route.v3.RouteAction.HashPolicy.QueryParameter",
        &["name"],
    ),
    (
        "envoy.config.route.v3.RetryPolicy",
        &[
            "retry_on",
            "num_retries",
            "per_try_timeout",
            "retry_host_predicate",
            "host_selection_retry_max_attempts",
            "retriable_status_codes",
            "retry_back_off",
            "retriable_headers",
            "retriable_request_headers",
        ],
    ),
    (
        "envoy.config.route.v3.RetryPolicy.RetryHostPredicate",
        &["name", "typed_config"],
    ),
    (
        "envoy.config.route.v3.RetryPolicy.RetryBackOff",
        &["base_interval", "max_interval"],
    ),
    (
        "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate",
        &[],
    ),
    (
        "envoy.config.route.v3.RouteAction.UpgradeConfig",
        &["upgrade_type", "enabled"],
    ),
    (
        "envoy.config.route.v3.RouteAction.MaxStreamDuration",
        &["max_stream_duration", "grpc_timeout_header_max"],
    ),
    (
        "envoy.config.route.v3.WeightedCluster",
        &["clusters", "total_weight", "runtime_key_prefix"],
    ),
    (
        "envoy.config.route.v3.WeightedCluster.ClusterWeight",
        &[
            "name",
            "weight",
            "request_headers_to_add",
            "request_headers_to_remove",
            "response_headers_to_add",
            "response_headers_to_remove",
            "host_rewrite_literal",
        ],
    ),
    (
        "envoy.config.route.v3.RedirectAction",
        &[
            "https_redirect",
            "scheme_redirect",
            "host_redirect",
            "port_redirect",
            "path_redirect",
            "prefix_rewrite",
            "regex_rewrite",
            "response_code",
            "strip_query",
        ],
    ),
    (
        "envoy.config.route.v3.DirectResponseAction",
        &["status", "body"],
    ),
    (
        "envoy.config.core.v3.HeaderValueOption",
        &["header", "append", "append_action", "keep_empty_value"],
    ),
    // Clusters and endpoints.
    (
        "envoy.config.cluster.v3.Cluster",
        &[
            "name",
            "alt_stat_name",
            "type",
            "eds_cluster_config",
            "connect_timeout",
            "per_connection_buffer_limit_bytes",
            "lb_policy",
            "load_assignment",
            "dns_lookup_family",
            "dns_refresh_rate",
            "respect_dns_ttl",
            "typed_extension_protocol_options",
            "http_protocol_options",
            "common_http_protocol_options",
            "upstream_connection_options",
            "protocol_selection",
            "metadata",
            "cleanup_interval",
            "ignore_health_on_host_removal",
            "track_timeout_budgets",
            "close_connections_on_host_health_failure",
            "wait_for_warm_on_init",
            "circuit_breakers",
            "upstream_bind_config",
            "round_robin_lb_config",
            "least_request_lb_config",
            "ring_hash_lb_config",
            "maglev_lb_config",
            "common_lb_config",
            "outlier_detection",
            "transport_socket",
        ],
    ),
    // Upstream TLS (model/tls); only the TLS and plaintext sockets are accepted there.
    (
        "envoy.config.core.v3.TransportSocket",
        &["name", "typed_config"],
    ),
    (
        "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        &["common_tls_context", "sni", "max_session_keys"],
    ),
    (
        "envoy.extensions.transport_sockets.tls.v3.CommonTlsContext",
        &[
            "tls_params",
            "tls_certificates",
            "tls_certificate_sds_secret_configs",
            "validation_context",
            "validation_context_sds_secret_config",
            "combined_validation_context",
            "alpn_protocols",
        ],
    ),
    (
        "envoy.extensions.transport_sockets.tls.v3.CommonTlsContext.CombinedCertificateValidationContext",
        &[
            "default_validation_context",
            "validation_context_sds_secret_config",
        ],
    ),
    (
        "envoy.extensions.transport_sockets.tls.v3.TlsParameters",
        &[
            "tls_minimum_protocol_version",
            "tls_maximum_protocol_version",
        ],
    ),
    (
        "envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig",
        &["name", "sds_config"],
    ),
    (
        "envoy.extensions.transport_sockets.tls.v3.SubjectAltNameMatcher",
        &["san_type", "matcher"],
    ),
    (
        "envoy.config.cluster.v3.Cluster.CommonLbConfig",
        &["healthy_panic_threshold", "locality_weighted_lb_config"],
    ),
    (
        "envoy.config.cluster.v3.Cluster.CommonLbConfig.LocalityWeightedLbConfig",
        &[],
    ),
    (
        "envoy.config.cluster.v3.Cluster.RoundRobinLbConfig",
        &["slow_start_config"],
    ),
    (
        "envoy.config.cluster.v3.Cluster.SlowStartConfig",
        &["slow_start_window", "aggression", "min_weight_percent"],
    ),
    (
        "envoy.config.cluster.v3.Cluster.RingHashLbConfig",
        &["minimum_ring_size", "maximum_ring_size", "hash_function"],
    ),
    (
        "envoy.config.cluster.v3.Cluster.MaglevLbConfig",
        &["table_size"],
    ),
    (
        // `monitors` is listed so the converter can refuse it with a reason
        // (model::outlier) rather than as unknown.
        "envoy.config.cluster.v3.OutlierDetection",
        &[
            "consecutive_5xx",
            "interval",
            "base_ejection_time",
            "max_ejection_percent",
            "enforcing_consecutive_5xx",
            "enforcing_success_rate",
            "success_rate_minimum_hosts",
            "success_rate_request_volume",
            "success_rate_stdev_factor",
            "consecutive_gateway_failure",
            "enforcing_consecutive_gateway_failure",
            "split_external_local_origin_errors",
            "consecutive_local_origin_failure",
            "enforcing_consecutive_local_origin_failure",
            "enforcing_local_origin_success_rate",
            "failure_percentage_threshold",
            "enforcing_failure_percentage",
            "enforcing_failure_percentage_local_origin",
            "failure_percentage_minimum_hosts",
            "failure_percentage_request_volume",
            "max_ejection_time",
            "max_ejection_time_jitter",
            "always_eject_one_host",
            "monitors",
            // weft-proxy has no active health checking, so nothing for it to return early.
            "successful_active_health_check_uneject_host",
        ],
    ),
    ("envoy.config.cluster.v3.CircuitBreakers", &["thresholds"]),
    (
        "envoy.config.cluster.v3.CircuitBreakers.Thresholds",
        &[
            // HIGH thresholds only bind requests of HIGH-priority routes; route `priority`
            // is not supported, so every request is DEFAULT and HIGH limits bind nothing.
            "priority",
            "max_connections",
            "max_pending_requests",
            "max_requests",
            "max_retries",
            "track_remaining",
        ],
    ),
    (
        "envoy.config.cluster.v3.Cluster.LeastRequestLbConfig",
        &["choice_count", "active_request_bias", "slow_start_config"],
    ),
    (
        // Runtime keys name overrides in Envoy's runtime layers; weft-proxy has none, and
        // without them Envoy uses the default value, as the proxy does.
        "envoy.config.core.v3.RuntimeDouble",
        &["default_value", "runtime_key"],
    ),
    (
        "envoy.config.core.v3.BindConfig",
        &["source_address", "extra_source_addresses"],
    ),
    ("envoy.config.core.v3.ExtraSourceAddress", &["address"]),
    (
        "envoy.config.cluster.v3.Cluster.EdsClusterConfig",
        &["eds_config", "service_name"],
    ),
    (
        "envoy.config.cluster.v3.UpstreamConnectionOptions",
        &["tcp_keepalive"],
    ),
    (
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        &[
            "explicit_http_config",
            "use_downstream_protocol_config",
            "common_http_protocol_options",
            "upstream_http_protocol_options",
        ],
    ),
    (
        "envoy.config.core.v3.UpstreamHttpProtocolOptions",
        &[
            "auto_sni",
            "auto_san_validation",
            "override_auto_sni_header",
        ],
    ),
    (
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions.ExplicitHttpConfig",
        &["http_protocol_options", "http2_protocol_options"],
    ),
    (
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions.UseDownstreamHttpConfig",
        &["http_protocol_options", "http2_protocol_options"],
    ),
    (
        "envoy.config.endpoint.v3.ClusterLoadAssignment",
        &["cluster_name", "endpoints", "policy"],
    ),
    (
        "envoy.config.endpoint.v3.ClusterLoadAssignment.Policy",
        &[
            "overprovisioning_factor",
            "endpoint_stale_after",
            "weighted_priority_health",
        ],
    ),
    (
        "envoy.config.endpoint.v3.LocalityLbEndpoints",
        &[
            "locality",
            "lb_endpoints",
            "load_balancing_weight",
            "priority",
            "metadata",
        ],
    ),
    (
        "envoy.config.endpoint.v3.LbEndpoint",
        &[
            "endpoint",
            "health_status",
            "metadata",
            "load_balancing_weight",
        ],
    ),
    (
        "envoy.config.endpoint.v3.Endpoint",
        &["address", "health_check_config", "hostname"],
    ),
    (
        "envoy.config.endpoint.v3.Endpoint.HealthCheckConfig",
        &[
            "port_value",
            "hostname",
            "address",
            "disable_active_health_check",
        ],
    ),
    // Secrets (model/tls): certificates and validation contexts.
    (
        "envoy.extensions.transport_sockets.tls.v3.Secret",
        &["name", "tls_certificate", "validation_context"],
    ),
    (
        "envoy.extensions.transport_sockets.tls.v3.TlsCertificate",
        &["certificate_chain", "private_key"],
    ),
    (
        "envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext",
        &[
            "trusted_ca",
            "match_subject_alt_names",
            "match_typed_subject_alt_names",
            "crl",
        ],
    ),
];

fn table() -> &'static HashMap<&'static str, &'static [&'static str]> {
    static T: OnceLock<HashMap<&'static str, &'static [&'static str]>> = OnceLock::new();
    T.get_or_init(|| SUPPORTED.iter().copied().collect())
}

/// Whether the proxy understands messages of this type at all (an `Any`'s `@type`).
pub fn is_known_type(full_name: &str) -> bool {
    OPAQUE.contains(&full_name) || table().contains_key(full_name)
}

/// Every field set in `bytes` (a `full_name` message) that the proxy does not support.
pub fn check(full_name: &str, bytes: &[u8]) -> Vec<ConvertError> {
    let mut out = Vec::new();
    let Some(desc) = descriptors::message(full_name) else {
        out.push(ConvertError::new(
            &FieldPath::root(),
            format!("{full_name} is not in the proxy's descriptors"),
        ));
        return out;
    };
    match DynamicMessage::decode(desc, bytes) {
        Ok(msg) => walk(&msg, &FieldPath::root(), &mut out),
        Err(e) => out.push(ConvertError::new(
            &FieldPath::root(),
            format!("cannot decode {full_name}: {e}"),
        )),
    }
    out
}

/// [`check`] for a prost message.
pub fn check_message<M: prost::Message + prost::Name>(msg: &M) -> Vec<ConvertError> {
    check(&M::full_name(), &msg.encode_to_vec())
}

fn walk(msg: &DynamicMessage, path: &FieldPath, out: &mut Vec<ConvertError>) {
    if path.0.len() > MAX_DEPTH {
        out.push(ConvertError::new(
            path,
            format!("nested more than {MAX_DEPTH} levels deep"),
        ));
        return;
    }
    let desc = msg.descriptor();
    let name = desc.full_name();
    if OPAQUE.contains(&name) {
        return;
    }
    if name == "google.protobuf.Any" {
        return walk_any(msg, path, out);
    }
    let Some(fields) = table().get(name) else {
        out.push(ConvertError::new(
            path,
            format!("{name} is not supported by weft-proxy"),
        ));
        return;
    };
    for (field, value) in msg.fields() {
        let here = path.field(field.name());
        if !fields.contains(&field.name()) {
            out.push(ConvertError::new(
                &here,
                format!(
                    "field `{}` of {name} is not supported by weft-proxy; it would change \
                     behaviour, so the resource is rejected rather than served without it",
                    field.name()
                ),
            ));
            continue;
        }
        match value {
            Value::Message(m) => walk(m, &here, out),
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Value::Message(m) = item {
                        walk(m, &here.index(i), out);
                    }
                }
            }
            Value::Map(map) => {
                for (k, v) in map {
                    if let Value::Message(m) = v {
                        let key = match k {
                            prost_reflect::MapKey::String(s) => s.clone(),
                            other => format!("{other:?}"),
                        };
                        walk(m, &here.key(&key), out);
                    }
                }
            }
            _ => {}
        }
    }
}

fn walk_any(msg: &DynamicMessage, path: &FieldPath, out: &mut Vec<ConvertError>) {
    let url = match msg.get_field_by_name("type_url").as_deref() {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let type_name = url.rsplit('/').next().unwrap_or_default();
    if !is_known_type(type_name) {
        out.push(ConvertError::new(
            path,
            format!("typed_config of type `{url}` is not supported by weft-proxy"),
        ));
        return;
    }
    let bytes = match msg.get_field_by_name("value").as_deref() {
        Some(Value::Bytes(b)) => b.clone(),
        _ => Default::default(),
    };
    let Some(desc) = descriptors::message(type_name) else {
        return;
    };
    match DynamicMessage::decode(desc, bytes) {
        Ok(inner) => walk(&inner, path, out),
        Err(e) => out.push(ConvertError::new(
            path,
            format!("cannot decode {type_name}: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_message_and_field_exists_in_envoys_api() {
        for (msg, fields) in SUPPORTED {
            let desc = descriptors::message(msg).unwrap_or_else(|| panic!("no message {msg}"));
            for f in *fields {
                assert!(
                    desc.get_field_by_name(f).is_some(),
                    "{msg} has no field {f}"
                );
            }
        }
        for msg in OPAQUE {
            assert!(descriptors::message(msg).is_some(), "no message {msg}");
        }
    }

    #[test]
    fn unsupported_fields_are_named_with_their_path() {
        use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, VirtualHost};
        let rc = RouteConfiguration {
            name: "r".into(),
            virtual_hosts: vec![VirtualHost {
                name: "v".into(),
                domains: vec!["*".into()],
                cors: Some(Default::default()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let errs = check_message(&rc);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].path.to_string(), "virtual_hosts[0].cors");
        assert!(errs[0].message.contains("not supported"), "{}", errs[0]);
    }
}
