//! Validation rules that many resources share, each written after the Istio (or
//! Kubernetes) function that defines it, so a value is accepted here exactly when Istio
//! accepts it. Each rule reports at the validator's current path.

use super::Validator;
use crate::types::Duration;
use std::collections::BTreeMap;
use std::net::IpAddr;

const DNS1123_LABEL_MAX: usize = 63;
const DNS1123_NAME_MAX: usize = 255;

/// Istio's `dns1123LabelFmt`: like Kubernetes' but case-insensitive.
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= DNS1123_LABEL_MAX
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// Kubernetes' strict DNS-1123 label (lowercase), used for namespaces and port names.
pub fn is_k8s_dns1123_label(s: &str) -> bool {
    is_dns1123_label(s) && !s.bytes().any(|c| c.is_ascii_uppercase())
}

/// Kubernetes' DNS-1123 subdomain: object names.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_k8s_dns1123_label)
}

/// Istio's `IsWildcardDNS1123Label`: `*`, `*foo`, `*-foo` or a plain label.
fn is_wildcard_label(s: &str) -> bool {
    if s.len() > DNS1123_LABEL_MAX {
        return false;
    }
    if s == "*" {
        return true;
    }
    let rest = s
        .strip_prefix("*-")
        .or_else(|| s.strip_prefix('*'))
        .unwrap_or(s);
    is_dns1123_label(rest)
}

fn dns_preconditions(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty domain name not allowed".into());
    }
    if name.len() > DNS1123_NAME_MAX {
        return Err(format!("domain name {name:?} too long (max 255)"));
    }
    Ok(())
}

/// Istio's `ValidateDNS1123Labels`: dot-separated labels, optional trailing dot, and a
/// top-level label that is not all digits.
pub fn check_dns1123_labels(domain: &str) -> Result<(), String> {
    let parts: Vec<&str> = domain.split('.').collect();
    let top = parts[parts.len() - 1];
    if !top.is_empty() && top.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "domain name {domain:?} invalid (top level domain {top:?} cannot be all-numeric)"
        ));
    }
    for (i, label) in parts.iter().enumerate() {
        if i == parts.len() - 1 && label.is_empty() {
            return Ok(());
        }
        if !is_dns1123_label(label) {
            return Err(format!(
                "domain name {domain:?} invalid (label {label:?} invalid)"
            ));
        }
    }
    Ok(())
}

/// Istio's `ValidateFQDN`.
pub fn check_fqdn(fqdn: &str) -> Result<(), String> {
    dns_preconditions(fqdn)?;
    check_dns1123_labels(fqdn)
}

/// Istio's `ValidateWildcardDomain`: a wildcard is only allowed in the first label.
pub fn check_wildcard_domain(domain: &str) -> Result<(), String> {
    dns_preconditions(domain)?;
    let (first, rest) = match domain.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (domain, None),
    };
    if !is_wildcard_label(first) {
        return Err(format!(
            "domain name {domain:?} invalid (label {first:?} invalid)"
        ));
    }
    match rest {
        Some(r) => check_dns1123_labels(r),
        None => Ok(()),
    }
}

/// Reports a host that is not a valid (possibly wildcard) domain name.
pub fn wildcard_domain(v: &mut Validator, host: &str) {
    if let Err(e) = check_wildcard_domain(host) {
        v.error(e);
    }
}

/// Reports an invalid fully qualified domain name.
pub fn fqdn(v: &mut Validator, host: &str) {
    if let Err(e) = check_fqdn(host) {
        v.error(e);
    }
}

/// Checks a regular expression the way Envoy's RE2 engine (and Istio's Go validation,
/// also RE2) would: no look-around, no backreferences. Rust's `regex` syntax is RE2's
/// plus a few extensions; the extensions RE2 lacks are rejected explicitly.
pub fn check_re2(re: &str) -> Result<(), String> {
    if re.is_empty() {
        return Err("regex must not be empty".into());
    }
    for (needle, what) in [
        ("(?=", "look-ahead"),
        ("(?!", "negative look-ahead"),
        ("(?<=", "look-behind"),
        ("(?<!", "negative look-behind"),
        ("(?>", "atomic groups"),
    ] {
        if re.contains(needle) {
            return Err(format!(
                "invalid regex {re:?}: {what} is not supported by RE2"
            ));
        }
    }
    if let Some(pos) = re.find("\\") {
        let tail = &re[pos..];
        if tail.len() > 1 && tail.as_bytes()[1].is_ascii_digit() && tail.as_bytes()[1] != b'0' {
            return Err(format!(
                "invalid regex {re:?}: backreferences are not supported by RE2"
            ));
        }
    }
    regex_syntax::ParserBuilder::new()
        .build()
        .parse(re)
        .map(|_| ())
        .map_err(|e| {
            let msg = e.to_string();
            let last = msg.lines().last().unwrap_or(&msg).trim().to_string();
            format!("invalid regex {re:?}: {last}")
        })
}

/// Reports a regex that RE2 would not compile.
pub fn re2(v: &mut Validator, re: &str) {
    if let Err(e) = check_re2(re) {
        v.error(e);
    }
}

/// HTTP header names are RFC 7230 tokens; Istio additionally requires lowercase for the
/// names it programs into Envoy.
pub fn check_header_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name cannot be empty".into());
    }
    let token = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
    let body = name.strip_prefix(':').unwrap_or(name);
    if body.is_empty() || !body.bytes().all(token) {
        return Err(format!(
            "invalid header name {name:?}: must be an HTTP token (letters, digits and !#$%&'*+-.^_`|~)"
        ));
    }
    if name.bytes().any(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "header name {name:?} must be lowercase (use {:?})",
            name.to_ascii_lowercase()
        ));
    }
    Ok(())
}

/// Reports an invalid header name.
pub fn header_name(v: &mut Validator, name: &str) {
    if let Err(e) = check_header_name(name) {
        v.error(e);
    }
}

/// Ports are 1..=65535.
pub fn port(v: &mut Validator, port: u32) {
    if port == 0 || port > 65535 {
        v.error(format!("port number {port} must be in the range 1..65535"));
    }
}

/// Istio's `ValidateDuration`: at least 1ms and a whole number of milliseconds.
pub fn duration(v: &mut Validator, d: &Duration) {
    let d = d.as_std();
    if d < std::time::Duration::from_millis(1) {
        v.error(format!(
            "duration must be greater than 1ms (got {})",
            Duration(d)
        ));
    } else if !d.subsec_nanos().is_multiple_of(1_000_000) {
        v.error(format!(
            "only durations to ms precision are supported (got {})",
            Duration(d)
        ));
    }
}

/// Istio's `ValidateDurationRange`.
pub fn duration_range(v: &mut Validator, d: &Duration, min: Duration, max: Duration) {
    if *d < min || *d > max {
        v.error(format!("time {d} must be >{min} and <{max}"));
    }
}

/// A percentage: 0..=100.
pub fn percent(v: &mut Validator, p: f64) {
    if !(0.0..=100.0).contains(&p) || p.is_nan() {
        v.error(format!("percentage {p} is out of range [0, 100]"));
    }
}

/// Kubernetes label key: optional DNS-1123 subdomain prefix, then a name of at most 63
/// characters of alphanumerics, `-`, `_`, `.`, beginning and ending alphanumeric.
pub fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && !is_dns1123_subdomain(p)
    {
        return Err(format!(
            "invalid label key {key:?}: prefix {p:?} must be a DNS-1123 subdomain"
        ));
    }
    if !is_label_value(name) || name.is_empty() {
        return Err(format!(
            "invalid label key {key:?}: name part must be 1-63 characters of alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"
        ));
    }
    Ok(())
}

/// Kubernetes label value (may be empty).
pub fn is_label_value(v: &str) -> bool {
    let b = v.as_bytes();
    b.is_empty()
        || (b.len() <= 63
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c)))
}

/// Reports invalid keys and values of a label map (`matchLabels`, subset `labels`).
pub fn labels(v: &mut Validator, labels: &BTreeMap<String, String>) {
    for (k, val) in labels {
        v.key(k, |v| {
            if let Err(e) = check_label_key(k) {
                v.error(e);
            }
            if !is_label_value(val) {
                v.error(format!("invalid label value {val:?}: must be at most 63 characters of alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"));
            }
        });
    }
}

/// An IP address or CIDR block, IPv4 or IPv6.
pub fn check_ip_or_cidr(s: &str) -> Result<(), String> {
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("{s:?} is not a valid IP address or CIDR block"))?;
    if let Some(bits) = bits {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        match bits.parse::<u8>() {
            Ok(n) if n <= max => {}
            _ => return Err(format!("{s:?}: prefix length must be 0..{max}")),
        }
    }
    Ok(())
}

/// Reports an invalid IP or CIDR.
pub fn ip_or_cidr(v: &mut Validator, s: &str) {
    if let Err(e) = check_ip_or_cidr(s) {
        v.error(e);
    }
}

/// Reports an invalid plain IP address.
pub fn ip(v: &mut Validator, s: &str) {
    if s.parse::<IpAddr>().is_err() {
        v.error(format!("{s:?} is not a valid IP address"));
    }
}

/// Reports when more than one field of a oneof group is set. `set` lists each field's
/// serialized name and whether it is set.
pub fn oneof(v: &mut Validator, set: &[(&str, bool)]) -> usize {
    let present: Vec<&str> = set.iter().filter(|(_, s)| *s).map(|(n, _)| *n).collect();
    if present.len() > 1 {
        let all: Vec<&str> = set.iter().map(|(n, _)| *n).collect();
        v.conflict(format!(
            "only one of {} may be set (found {})",
            all.join(", "),
            present.join(" and ")
        ));
    }
    present.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_domains() {
        for ok in [
            "*",
            "*.example.com",
            "foo.bar",
            "*foo.bar",
            "*-foo.bar",
            "reviews",
            "a.b.c.",
            "FOO.com",
        ] {
            assert!(check_wildcard_domain(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "foo.*.com",
            "foo..com",
            "-foo.com",
            "foo.123",
            "a_b.com",
            "**.com",
        ] {
            assert!(check_wildcard_domain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn regexes() {
        assert!(check_re2("^/api/v[0-9]+/.*$").is_ok());
        assert!(check_re2("(?i)foo").is_ok());
        assert!(check_re2("foo(?=bar)").is_err());
        assert!(check_re2("(a)\\1").is_err());
        assert!(check_re2("[").is_err());
        assert!(check_re2("").is_err());
    }

    #[test]
    fn header_names() {
        assert!(check_header_name("x-user-id").is_ok());
        assert!(check_header_name(":authority").is_ok());
        assert!(check_header_name("X-User").is_err());
        assert!(check_header_name("bad header").is_err());
        assert!(check_header_name("").is_err());
    }

    #[test]
    fn labels_and_ips() {
        assert!(check_label_key("app").is_ok());
        assert!(check_label_key("app.kubernetes.io/name").is_ok());
        assert!(check_label_key("-app").is_err());
        assert!(is_label_value("v1") && is_label_value("") && !is_label_value("v1-"));
        assert!(check_ip_or_cidr("10.0.0.0/8").is_ok());
        assert!(check_ip_or_cidr("::1/128").is_ok());
        assert!(check_ip_or_cidr("10.0.0.0/33").is_err());
        assert!(check_ip_or_cidr("10.0.0").is_err());
    }
}
