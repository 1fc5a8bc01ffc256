//! `HttpConnectionManager`: the codec, where routes come from (RDS or inline), the HTTP
//! filter pipeline, timeouts and limits, and how the proxy treats forwarding headers
//! (`x-forwarded-for`, `x-request-id`, `via`, `server`, client certificate details).

use super::cluster::H2Settings;
use super::cors::CORS;
use super::fault::{FAULT, FaultConfig};
use super::listener::Cidr;
use super::route::RouteConfig;
use super::{ConvertError, Result, duration, timeout, type_name, unpack};
use envoy_types::pb::envoy::config::core::v3::{
    HttpProtocolOptions, config_source::ConfigSourceSpecifier,
    http_protocol_options::HeadersWithUnderscoresAction,
};
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::Cors;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager::CodecType,
    http_connection_manager::ForwardClientCertDetails,
    http_connection_manager::PathWithEscapedSlashesAction, http_connection_manager::RouteSpecifier,
    http_connection_manager::ServerHeaderTransformation, http_connection_manager::StripPortMode,
    http_filter,
};
use http::HeaderValue;
use std::sync::Arc;
use std::time::Duration;
use weft_yaml::FieldPath;

const ROUTER: &str = "envoy.extensions.filters.http.router.v3.Router";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Auto,
    Http1,
    Http2,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RouteSource {
    Rds(String),
    Inline(Arc<RouteConfig>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerHeader {
    Overwrite,
    AppendIfAbsent,
    PassThrough,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardClientCert {
    Sanitize,
    ForwardOnly,
    AppendForward,
    SanitizeSet,
    AlwaysForwardOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Underscores {
    Allow,
    RejectRequest,
    DropHeader,
}

/// The router filter's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RouterConfig {
    pub suppress_envoy_headers: bool,
    pub respect_expected_rq_timeout: bool,
}

/// An HTTP filter in the chain, run in order before the router (always the last).
#[derive(Debug, Clone, PartialEq)]
pub enum HttpFilter {
    Fault(FaultFilter),
    /// The CORS filter; its policies come from the route table levels, by this name.
    Cors(CorsFilter),
    Router(RouterConfig),
}

/// `envoy.filters.http.cors`: the filter itself has no settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CorsFilter {
    pub name: String,
}

/// The fault filter as configured in the chain; routes override its configuration by the
/// filter's `name` (`typed_per_filter_config`).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultFilter {
    pub name: String,
    pub config: Arc<FaultConfig>,
}

/// Envoy's default `per_connection_buffer_limit_bytes`.
pub const DEFAULT_BUFFER_LIMIT: u32 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct HcmConfig {
    pub stat_prefix: String,
    pub codec: Codec,
    pub routes: RouteSource,
    pub filters: Vec<HttpFilter>,
    pub router: RouterConfig,
    pub server_name: HeaderValue,
    pub server_header: ServerHeader,
    pub idle_timeout: Option<Duration>,
    pub max_connection_duration: Option<Duration>,
    pub max_requests_per_connection: Option<u32>,
    pub max_stream_duration: Option<Duration>,
    pub max_headers_count: Option<u32>,
    pub underscores: Underscores,
    pub stream_idle_timeout: Option<Duration>,
    pub request_timeout: Option<Duration>,
    pub request_headers_timeout: Option<Duration>,
    pub drain_timeout: Duration,
    pub use_remote_address: bool,
    pub xff_num_trusted_hops: u32,
    pub skip_xff_append: bool,
    pub via: Option<HeaderValue>,
    pub generate_request_id: bool,
    pub preserve_external_request_id: bool,
    pub always_set_request_id_in_response: bool,
    pub forward_client_cert: ForwardClientCert,
    pub upgrades: Vec<(String, bool)>,
    pub strip_matching_host_port: bool,
    pub strip_any_host_port: bool,
    pub normalize_path: bool,
    pub merge_slashes: bool,
    pub max_request_headers_kb: u32,
    pub h2: H2Settings,
    /// `None`: Envoy's default notion of internal (RFC 1918, loopback and similar).
    pub internal_cidrs: Option<Vec<Cidr>>,
    /// The listener's `per_connection_buffer_limit_bytes`: the most of a request body kept
    /// so that it can be sent again on a retry.
    pub buffer_limit: u32,
}

/// Envoy's defaults.
const DEFAULT_IDLE: Duration = Duration::from_secs(3600);
const DEFAULT_STREAM_IDLE: Duration = Duration::from_secs(300);
const DEFAULT_DRAIN: Duration = Duration::from_secs(5);

impl HcmConfig {
    pub fn new(h: &HttpConnectionManager, path: &FieldPath) -> Result<Self> {
        let codec = match CodecType::try_from(h.codec_type) {
            Ok(CodecType::Auto) => Codec::Auto,
            Ok(CodecType::Http1) => Codec::Http1,
            Ok(CodecType::Http2) => Codec::Http2,
            _ => {
                return Err(ConvertError::new(
                    &path.field("codec_type"),
                    "only AUTO, HTTP1 and HTTP2 are supported by weft-proxy",
                ));
            }
        };
        let routes = match &h.route_specifier {
            Some(RouteSpecifier::Rds(rds)) => {
                let p = path.field("rds");
                if rds.route_config_name.is_empty() {
                    return Err(ConvertError::new(
                        &p.field("route_config_name"),
                        "must not be empty",
                    ));
                }
                match rds
                    .config_source
                    .as_ref()
                    .and_then(|c| c.config_source_specifier.as_ref())
                {
                    Some(ConfigSourceSpecifier::Ads(_)) => {}
                    _ => {
                        return Err(ConvertError::new(
                            &p.field("config_source"),
                            "only `ads: {}` route sources are supported by weft-proxy",
                        ));
                    }
                }
                RouteSource::Rds(rds.route_config_name.clone())
            }
            Some(RouteSpecifier::RouteConfig(rc)) => RouteSource::Inline(Arc::new(
                RouteConfig::new(rc).map_err(|e| e.under(&path.field("route_config")))?,
            )),
            Some(RouteSpecifier::ScopedRoutes(_)) => {
                return Err(ConvertError::new(
                    &path.field("scoped_routes"),
                    "scoped routes are not supported by weft-proxy",
                ));
            }
            None => {
                return Err(ConvertError::new(
                    path,
                    "one of rds or route_config is required",
                ));
            }
        };
        if h.proxy_100_continue {
            // The proxy answers `Expect: 100-continue` itself, as Envoy does by default.
            return Err(ConvertError::new(
                &path.field("proxy_100_continue"),
                "is not supported by weft-proxy (100 Continue is answered by the proxy)",
            ));
        }
        let (filters, router) = http_filters(h, path)?;
        let common_path = path.field("common_http_protocol_options");
        let common = h
            .common_http_protocol_options
            .unwrap_or_else(|| HttpProtocolOptions {
                idle_timeout: Some(envoy_types::pb::google::protobuf::Duration {
                    seconds: DEFAULT_IDLE.as_secs() as i64,
                    nanos: 0,
                }),
                ..Default::default()
            });
        let underscores =
            match HeadersWithUnderscoresAction::try_from(common.headers_with_underscores_action) {
                Ok(HeadersWithUnderscoresAction::Allow) => Underscores::Allow,
                Ok(HeadersWithUnderscoresAction::RejectRequest) => Underscores::RejectRequest,
                Ok(HeadersWithUnderscoresAction::DropHeader) => Underscores::DropHeader,
                Err(_) => {
                    return Err(ConvertError::new(
                        &common_path.field("headers_with_underscores_action"),
                        "unknown action",
                    ));
                }
            };
        let server_header =
            match ServerHeaderTransformation::try_from(h.server_header_transformation) {
                Ok(ServerHeaderTransformation::Overwrite) => ServerHeader::Overwrite,
                Ok(ServerHeaderTransformation::AppendIfAbsent) => ServerHeader::AppendIfAbsent,
                Ok(ServerHeaderTransformation::PassThrough) => ServerHeader::PassThrough,
                Err(_) => {
                    return Err(ConvertError::new(
                        &path.field("server_header_transformation"),
                        "unknown transformation",
                    ));
                }
            };
        let forward_client_cert =
            match ForwardClientCertDetails::try_from(h.forward_client_cert_details) {
                Ok(ForwardClientCertDetails::Sanitize) => ForwardClientCert::Sanitize,
                Ok(ForwardClientCertDetails::ForwardOnly) => ForwardClientCert::ForwardOnly,
                Ok(ForwardClientCertDetails::AppendForward) => ForwardClientCert::AppendForward,
                Ok(ForwardClientCertDetails::SanitizeSet) => ForwardClientCert::SanitizeSet,
                Ok(ForwardClientCertDetails::AlwaysForwardOnly) => {
                    ForwardClientCert::AlwaysForwardOnly
                }
                Err(_) => {
                    return Err(ConvertError::new(
                        &path.field("forward_client_cert_details"),
                        "unknown value",
                    ));
                }
            };
        match PathWithEscapedSlashesAction::try_from(h.path_with_escaped_slashes_action) {
            Ok(
                PathWithEscapedSlashesAction::ImplementationSpecificDefault
                | PathWithEscapedSlashesAction::KeepUnchanged,
            ) => {}
            _ => {
                return Err(ConvertError::new(
                    &path.field("path_with_escaped_slashes_action"),
                    "only KEEP_UNCHANGED is supported by weft-proxy",
                ));
            }
        }
        let upgrades = h
            .upgrade_configs
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let p = path.field("upgrade_configs").index(i);
                if !u.filters.is_empty() {
                    return Err(ConvertError::new(
                        &p.field("filters"),
                        "per-upgrade filter chains are not supported by weft-proxy",
                    ));
                }
                if u.upgrade_type.eq_ignore_ascii_case("CONNECT") {
                    return Err(ConvertError::new(
                        &p.field("upgrade_type"),
                        "CONNECT is not supported by weft-proxy",
                    ));
                }
                Ok((
                    u.upgrade_type.to_ascii_lowercase(),
                    u.enabled.is_none_or(|b| b.value),
                ))
            })
            .collect::<Result<_>>()?;
        let internal_cidrs = h
            .internal_address_config
            .as_ref()
            .map(|c| -> Result<Vec<Cidr>> {
                c.cidr_ranges
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        Cidr::from_range(
                            r,
                            &path
                                .field("internal_address_config")
                                .field("cidr_ranges")
                                .index(i),
                        )
                    })
                    .collect()
            })
            .transpose()?;
        let via = (!h.via.is_empty())
            .then(|| {
                HeaderValue::from_str(&h.via)
                    .map_err(|_| ConvertError::new(&path.field("via"), "invalid header value"))
            })
            .transpose()?;
        let server_name = if h.server_name.is_empty() {
            HeaderValue::from_static("envoy")
        } else {
            HeaderValue::from_str(&h.server_name).map_err(|_| {
                ConvertError::new(&path.field("server_name"), "invalid header value")
            })?
        };
        Ok(HcmConfig {
            stat_prefix: h.stat_prefix.clone(),
            codec,
            routes,
            filters,
            router,
            server_name,
            server_header,
            idle_timeout: timeout(
                common.idle_timeout.as_ref(),
                &common_path.field("idle_timeout"),
            )?,
            max_connection_duration: timeout(
                common.max_connection_duration.as_ref(),
                &common_path.field("max_connection_duration"),
            )?,
            max_requests_per_connection: common
                .max_requests_per_connection
                .map(|v| v.value)
                .filter(|v| *v > 0),
            max_stream_duration: timeout(
                common.max_stream_duration.as_ref(),
                &common_path.field("max_stream_duration"),
            )?,
            max_headers_count: common.max_headers_count.map(|v| v.value),
            underscores,
            stream_idle_timeout: match &h.stream_idle_timeout {
                None => Some(DEFAULT_STREAM_IDLE),
                Some(d) => timeout(Some(d), &path.field("stream_idle_timeout"))?,
            },
            request_timeout: timeout(h.request_timeout.as_ref(), &path.field("request_timeout"))?,
            request_headers_timeout: timeout(
                h.request_headers_timeout.as_ref(),
                &path.field("request_headers_timeout"),
            )?,
            drain_timeout: match &h.drain_timeout {
                None => DEFAULT_DRAIN,
                Some(d) => duration(d, &path.field("drain_timeout"))?,
            },
            use_remote_address: h.use_remote_address.is_some_and(|b| b.value),
            xff_num_trusted_hops: h.xff_num_trusted_hops,
            skip_xff_append: h.skip_xff_append,
            via,
            generate_request_id: h.generate_request_id.is_none_or(|b| b.value),
            preserve_external_request_id: h.preserve_external_request_id,
            always_set_request_id_in_response: h.always_set_request_id_in_response,
            forward_client_cert,
            upgrades,
            strip_matching_host_port: h.strip_matching_host_port,
            strip_any_host_port: matches!(
                h.strip_port_mode,
                Some(StripPortMode::StripAnyHostPort(true))
            ),
            normalize_path: h.normalize_path.is_some_and(|b| b.value),
            merge_slashes: h.merge_slashes,
            max_request_headers_kb: h.max_request_headers_kb.map_or(60, |v| v.value),
            h2: match &h.http2_protocol_options {
                Some(o) => {
                    let p = path.field("http2_protocol_options");
                    if o.hpack_table_size.is_some() {
                        return Err(ConvertError::new(
                            &p.field("hpack_table_size"),
                            "is not supported by weft-proxy for downstream connections",
                        ));
                    }
                    H2Settings::new(o, &p)?
                }
                None => H2Settings::default(),
            },
            internal_cidrs,
            buffer_limit: DEFAULT_BUFFER_LIMIT,
        })
    }

    /// Whether any filter runs before the router.
    pub fn has_filters(&self) -> bool {
        self.filters.len() > 1
    }

    pub fn rds_name(&self) -> Option<&str> {
        match &self.routes {
            RouteSource::Rds(n) => Some(n),
            RouteSource::Inline(_) => None,
        }
    }

    /// Whether an upgrade (`websocket`) is allowed, with a route's override.
    pub fn upgrade_allowed(&self, kind: &str, route: &[(String, bool)]) -> bool {
        let find = |list: &[(String, bool)]| {
            list.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(kind))
                .map(|(_, on)| *on)
        };
        match find(route) {
            Some(on) => on && find(&self.upgrades).is_some(),
            None => find(&self.upgrades).unwrap_or(false),
        }
    }
}

fn http_filters(
    h: &HttpConnectionManager,
    path: &FieldPath,
) -> Result<(Vec<HttpFilter>, RouterConfig)> {
    let fpath = path.field("http_filters");
    let mut filters = Vec::new();
    let mut router = None;
    for (i, f) in h.http_filters.iter().enumerate() {
        let p = fpath.index(i);
        if router.is_some() {
            return Err(ConvertError::new(
                &p,
                format!(
                    "Error: terminal filter named envoy.filters.http.router of type \
                     envoy.filters.http.router must be the last filter in a http filter chain \
                     (found `{}` after it)",
                    f.name
                ),
            ));
        }
        let any = match &f.config_type {
            Some(http_filter::ConfigType::TypedConfig(a)) => a,
            _ => {
                return Err(ConvertError::new(
                    &p.field("typed_config"),
                    format!("http filter `{}` needs a typed_config", f.name),
                ));
            }
        };
        match type_name(any) {
            FAULT => {
                let p = p.field("typed_config");
                filters.push(HttpFilter::Fault(FaultFilter {
                    name: f.name.clone(),
                    config: Arc::new(FaultConfig::new(&unpack(any, FAULT, &p)?, &p)?),
                }));
            }
            CORS => {
                let _: Cors = unpack(any, CORS, &p.field("typed_config"))?;
                filters.push(HttpFilter::Cors(CorsFilter {
                    name: f.name.clone(),
                }));
            }
            ROUTER => {
                let r: Router = unpack(any, ROUTER, &p.field("typed_config"))?;
                let cfg = RouterConfig {
                    suppress_envoy_headers: r.suppress_envoy_headers,
                    respect_expected_rq_timeout: r.respect_expected_rq_timeout,
                };
                filters.push(HttpFilter::Router(cfg));
                router = Some(cfg);
            }
            // Envoy skips optional filters it does not know; so does the proxy.
            _ if f.is_optional => {}
            other => {
                return Err(ConvertError::new(
                    &p.field("typed_config"),
                    format!("http filter type `{other}` is not supported by weft-proxy"),
                ));
            }
        }
    }
    let Some(router) = router else {
        return Err(ConvertError::new(
            &fpath,
            "the http filter chain must end with the router filter \
             (envoy.extensions.filters.http.router.v3.Router)",
        ));
    };
    Ok((filters, router))
}
