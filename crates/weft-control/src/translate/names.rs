//! istiod's naming: `outbound|PORT|SUBSET|HOST` clusters and Istio's short-name expansion.

/// `outbound|9080|v1|reviews.default.svc.cluster.local` (model.BuildSubsetKey).
pub fn cluster_name(port: u16, subset: &str, host: &str) -> String {
    format!("outbound|{port}|{subset}|{host}")
}

/// istiod's `BuildDNSSrvSubsetKey`: the SNI Istio mutual TLS sends to a cluster, which
/// the server side's filter chains and `AUTO_PASSTHROUGH` gateways route by.
pub fn istio_sni(port: u16, subset: &str, host: &str) -> String {
    format!("outbound_.{port}_.{subset}_.{host}")
}

/// Istio's ResolveShortnameToFQDN: a name without dots is in the config's namespace;
/// anything with a dot, `*` or an IP is taken as written.
pub fn resolve_host(host: &str, namespace: &str, domain: &str) -> String {
    if host == "*" || host.contains('.') || host.parse::<std::net::IpAddr>().is_ok() {
        return host.to_string();
    }
    format!("{host}.{namespace}.svc.{domain}")
}

/// Whether `host` (possibly `*.suffix`) covers `name`.
pub fn host_matches(host: &str, name: &str) -> bool {
    match host.strip_prefix('*') {
        Some(suffix) => name.ends_with(suffix),
        None => host == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_short_names() {
        assert_eq!(
            cluster_name(9080, "v1", "reviews.default.svc.cluster.local"),
            "outbound|9080|v1|reviews.default.svc.cluster.local"
        );
        assert_eq!(
            resolve_host("reviews", "prod", "cluster.local"),
            "reviews.prod.svc.cluster.local"
        );
        assert_eq!(
            resolve_host("reviews.prod", "x", "cluster.local"),
            "reviews.prod"
        );
        assert_eq!(resolve_host("*", "x", "cluster.local"), "*");
        assert!(host_matches("*.example.com", "api.example.com"));
        assert!(!host_matches("*.example.com", "example.org"));
    }
}
