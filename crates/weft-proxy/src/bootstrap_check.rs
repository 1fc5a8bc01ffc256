//! What weft-proxy can serve of a bootstrap that Envoy accepts: every field the proxy does
//! not implement, and every static resource its converters reject, reported with the
//! bootstrap's file:line, so a user learns before starting that `weft proxy` would behave
//! differently from Envoy on this file.

use crate::bootstrap::ConfigError;
use crate::model::cluster::ClusterConfig;
use crate::model::listener::ListenerConfig;
use crate::model::{ConvertError, support};
use envoy_types::pb::envoy::config::bootstrap::v3::Bootstrap;
use envoy_types::pb::envoy::config::core::v3::{
    ApiConfigSource, config_source::ConfigSourceSpecifier,
};
use weft_yaml::{FieldPath, Node};

pub fn check(file: &str, root: &Node, b: &Bootstrap) -> Vec<ConfigError> {
    let mut out = Vec::new();
    let mut push = |base: &FieldPath, errs: Vec<ConvertError>| {
        for e in errs {
            let path = base.join(&e.path);
            out.push(ConfigError {
                file: file.to_string(),
                pos: root.locate(&path),
                path,
                message: e.message,
                suggestion: None,
            });
        }
    };
    // The whole bootstrap first: unsupported fields anywhere, named by their full path. The
    // converters would only repeat those, so they run on bootstraps without any.
    let unsupported = support::check_message(b);
    if !unsupported.is_empty() {
        push(&FieldPath::root(), unsupported);
        return out;
    }
    let statics = FieldPath::root().field("static_resources");
    if let Some(sr) = &b.static_resources {
        for (i, l) in sr.listeners.iter().enumerate() {
            if let Err(e) = ListenerConfig::new(l) {
                push(&statics.field("listeners").index(i), vec![e]);
            }
        }
        for (i, c) in sr.clusters.iter().enumerate() {
            if let Err(e) = ClusterConfig::new(c) {
                push(&statics.field("clusters").index(i), vec![e]);
            }
        }
    }
    if let Some(d) = &b.dynamic_resources {
        let dpath = FieldPath::root().field("dynamic_resources");
        let mut errs = Vec::new();
        for (name, src) in [("lds_config", &d.lds_config), ("cds_config", &d.cds_config)] {
            match src
                .as_ref()
                .and_then(|c| c.config_source_specifier.as_ref())
            {
                None | Some(ConfigSourceSpecifier::Ads(_)) => {}
                Some(_) => errs.push(ConvertError::new(
                    &FieldPath::root().field(name),
                    "only `ads: {}` is supported by weft-proxy",
                )),
            }
        }
        if let Some(ads) = &d.ads_config
            && let Err(e) = ads_source(ads, b)
        {
            errs.push(e.under(&FieldPath::root().field("ads_config")));
        }
        push(&dpath, errs);
    }
    out
}

/// The cluster named by an ADS `api_config_source`.
pub fn ads_source(ads: &ApiConfigSource, b: &Bootstrap) -> Result<String, ConvertError> {
    use envoy_types::pb::envoy::config::core::v3::api_config_source::ApiType;
    match ApiType::try_from(ads.api_type) {
        Ok(ApiType::Grpc | ApiType::DeltaGrpc) => {}
        _ => {
            return Err(ConvertError::new(
                &FieldPath::root().field("api_type"),
                "only GRPC and DELTA_GRPC are supported by weft-proxy",
            ));
        }
    }
    let [service] = ads.grpc_services.as_slice() else {
        return Err(ConvertError::new(
            &FieldPath::root().field("grpc_services"),
            "exactly one grpc_service is required",
        ));
    };
    use envoy_types::pb::envoy::config::core::v3::grpc_service::TargetSpecifier;
    let Some(TargetSpecifier::EnvoyGrpc(g)) = &service.target_specifier else {
        return Err(ConvertError::new(
            &FieldPath::root().field("grpc_services").index(0),
            "only envoy_grpc services are supported by weft-proxy",
        ));
    };
    let known = b
        .static_resources
        .as_ref()
        .is_some_and(|sr| sr.clusters.iter().any(|c| c.name == g.cluster_name));
    if !known {
        return Err(ConvertError::new(
            &FieldPath::root()
                .field("grpc_services")
                .index(0)
                .field("envoy_grpc")
                .field("cluster_name"),
            format!("unknown static cluster '{}'", g.cluster_name),
        ));
    }
    Ok(g.cluster_name.clone())
}
