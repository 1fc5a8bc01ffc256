//! Istio's AuthorizationPolicy validation (`ValidateAuthorizationPolicy` in
//! pkg/config/validation/validation.go, with the value checks of pkg/config/security), plus
//! the CRD's structural rules (list caps, the serviceAccounts exclusivity rule).

use super::targeting::validate_targeting;
use super::{Action, AuthorizationPolicy, Operation, Rule, Source};
use crate::validate::{Validate, Validator, rules};

/// CRD cap on `rules` and on each rule's `from`.
const MAX_RULES: usize = 512;
/// `CheckServiceAccount`: an arbitrary cap Istio puts on serviceAccounts lists.
const MAX_SERVICE_ACCOUNTS: usize = 16;
/// `CheckServiceAccount`: longest accepted `namespace/account`.
const MAX_SERVICE_ACCOUNT_LEN: usize = 320;

impl Validate for AuthorizationPolicy {
    fn validate(&self, v: &mut Validator) {
        validate_targeting(v, &self.selector, &self.target_ref, &self.target_refs);

        if self.action == Action::Custom {
            if self.rules.is_empty() {
                v.field("rules", |v| {
                    v.missing(
                        "CUSTOM action without `rules` is meaningless as it will never be \
                         triggered; add an empty rule `{}` to trigger it for every request",
                    )
                });
            } else {
                match &self.provider {
                    None => v.field("provider", |v| {
                        v.missing("action CUSTOM requires `provider.name` (a MeshConfig extension provider)")
                    }),
                    Some(p) if p.name.is_empty() => v.field("provider", |v| {
                        v.field("name", |v| v.missing("`provider.name` must not be empty"))
                    }),
                    Some(_) => {}
                }
            }
            v.field("rules", |v| {
                for (i, rule) in self.rules.iter().enumerate() {
                    v.index(i, |v| custom_unsupported(v, rule));
                }
            });
        }
        if self.provider.is_some() && self.action != Action::Custom {
            v.field("provider", |v| {
                v.conflict(format!(
                    "`provider` may only be set with action CUSTOM, found action {}",
                    self.action
                ))
            });
        }
        if self.action == Action::Deny && self.rules.is_empty() {
            v.field("rules", |v| {
                v.missing(
                    "DENY action without `rules` is meaningless as it will never be triggered; \
                     add an empty rule `{}` to trigger it for every request",
                )
            });
        }

        v.field("rules", |v| {
            if self.rules.len() > MAX_RULES {
                v.error(format!(
                    "at most {MAX_RULES} rules may be set (found {})",
                    self.rules.len()
                ));
            }
            for (i, rule) in self.rules.iter().enumerate() {
                v.index(i, |v| validate_rule(v, rule, self.action));
            }
        });
    }
}

/// Istio's CUSTOM action cannot evaluate identity attributes: the external authorizer runs
/// before the mTLS/JWT identity is available to the RBAC filter.
fn custom_unsupported(v: &mut Validator, rule: &Rule) {
    v.field("from", |v| {
        for (j, from) in rule.from.iter().enumerate() {
            let Some(src) = &from.source else { continue };
            v.index(j, |v| {
                v.field("source", |v| {
                    for (name, set) in [
                        ("namespaces", !src.namespaces.is_empty()),
                        ("notNamespaces", !src.not_namespaces.is_empty()),
                        ("serviceAccounts", !src.service_accounts.is_empty()),
                        ("notServiceAccounts", !src.not_service_accounts.is_empty()),
                        ("principals", !src.principals.is_empty()),
                        ("notPrincipals", !src.not_principals.is_empty()),
                        ("requestPrincipals", !src.request_principals.is_empty()),
                        ("notRequestPrincipals", !src.not_request_principals.is_empty()),
                    ] {
                        if set {
                            v.field(name, |v| {
                                v.error(format!(
                                    "from.source.{name} is currently not supported with CUSTOM action"
                                ))
                            });
                        }
                    }
                });
            });
        }
    });
    v.field("when", |v| {
        for (k, cond) in rule.when.iter().enumerate() {
            let key = cond.key.as_str();
            if matches!(
                key,
                "source.namespace" | "source.serviceAccount" | "source.principal"
            ) || key.starts_with("request.auth.")
            {
                v.index(k, |v| {
                    v.field("key", |v| {
                        v.error(format!(
                            "{key} is currently not supported with CUSTOM action"
                        ))
                    })
                });
            }
        }
    });
}

fn validate_rule(v: &mut Validator, rule: &Rule, action: Action) {
    // Which attributes the rule uses decides whether a DENY rule also hits TCP traffic, where
    // HTTP-only attributes are absent and a DENY treats them as matching.
    let mut from_exists = false;
    let mut tcp_in_from = false;
    let mut to_exists = false;
    let mut tcp_in_to = false;

    v.field("from", |v| {
        if rule.from.len() > MAX_RULES {
            v.error(format!(
                "at most {MAX_RULES} `from` entries may be set (found {})",
                rule.from.len()
            ));
        }
        for (j, from) in rule.from.iter().enumerate() {
            v.index(j, |v| match &from.source {
                None => v.field("source", |v| v.missing("`from.source` must be set")),
                Some(src) => {
                    from_exists = true;
                    tcp_in_from |= src.has_tcp_attributes();
                    v.nested("source", src);
                }
            });
        }
    });
    v.field("to", |v| {
        for (j, to) in rule.to.iter().enumerate() {
            v.index(j, |v| match &to.operation {
                None => v.field("operation", |v| v.missing("`to.operation` must be set")),
                Some(op) => {
                    to_exists = true;
                    tcp_in_to |= !op.ports.is_empty() || !op.not_ports.is_empty();
                    v.nested("operation", op);
                }
            });
        }
    });
    v.each("when", &rule.when);

    if action == Action::Deny
        && ((from_exists && !to_exists && !tcp_in_from) || (to_exists && !tcp_in_to))
    {
        v.warn(
            "configured AuthorizationPolicy will deny all traffic to TCP ports under its scope \
             due to the use of only HTTP attributes in a DENY rule; it is recommended to \
             explicitly specify the port",
        );
    }
}

impl Source {
    /// True if the source uses an attribute that is also available for plain TCP traffic
    /// (everything except the JWT-derived request principals).
    fn has_tcp_attributes(&self) -> bool {
        [
            &self.principals,
            &self.not_principals,
            &self.namespaces,
            &self.not_namespaces,
            &self.service_accounts,
            &self.not_service_accounts,
            &self.ip_blocks,
            &self.not_ip_blocks,
            &self.remote_ip_blocks,
            &self.not_remote_ip_blocks,
        ]
        .iter()
        .any(|l| !l.is_empty())
    }
}

impl Validate for Source {
    fn validate(&self, v: &mut Validator) {
        let identity = !self.principals.is_empty()
            || !self.not_principals.is_empty()
            || !self.namespaces.is_empty()
            || !self.not_namespaces.is_empty();
        let accounts = !self.service_accounts.is_empty() || !self.not_service_accounts.is_empty();
        if identity && accounts {
            v.conflict(
                "cannot set serviceAccounts/notServiceAccounts with namespaces or principals \
                 (use separate `from` entries)",
            );
        }
        if !self.has_tcp_attributes()
            && self.request_principals.is_empty()
            && self.not_request_principals.is_empty()
        {
            v.missing("`from.source` must not be empty; set at least one field");
        }
        for (name, list) in [
            ("principals", &self.principals),
            ("notPrincipals", &self.not_principals),
            ("requestPrincipals", &self.request_principals),
            ("notRequestPrincipals", &self.not_request_principals),
            ("namespaces", &self.namespaces),
            ("notNamespaces", &self.not_namespaces),
        ] {
            v.field(name, |v| string_matches(v, list));
        }
        for (name, list) in [
            ("serviceAccounts", &self.service_accounts),
            ("notServiceAccounts", &self.not_service_accounts),
        ] {
            v.field(name, |v| service_accounts(v, list));
        }
        for (name, list) in [
            ("ipBlocks", &self.ip_blocks),
            ("notIpBlocks", &self.not_ip_blocks),
            ("remoteIpBlocks", &self.remote_ip_blocks),
            ("notRemoteIpBlocks", &self.not_remote_ip_blocks),
        ] {
            v.field(name, |v| ip_blocks(v, list));
        }
    }
}

impl Validate for Operation {
    fn validate(&self, v: &mut Validator) {
        let lists = [
            &self.hosts,
            &self.not_hosts,
            &self.ports,
            &self.not_ports,
            &self.methods,
            &self.not_methods,
            &self.paths,
            &self.not_paths,
        ];
        if lists.iter().all(|l| l.is_empty()) {
            v.missing("`to.operation` must not be empty; set at least one field");
        }
        for (name, list) in [
            ("hosts", &self.hosts),
            ("notHosts", &self.not_hosts),
            ("methods", &self.methods),
            ("notMethods", &self.not_methods),
        ] {
            v.field(name, |v| string_matches(v, list));
        }
        for (name, list) in [("ports", &self.ports), ("notPorts", &self.not_ports)] {
            v.field(name, |v| ports(v, list));
        }
        for (name, list) in [("paths", &self.paths), ("notPaths", &self.not_paths)] {
            v.field(name, |v| paths(v, list));
        }
    }
}

/// Runs `check` on each non-empty value and reports the empty ones (Istio's
/// `CheckEmptyValues`).
pub(super) fn each_value(
    v: &mut Validator,
    values: &[String],
    mut check: impl FnMut(&mut Validator, &str),
) {
    for (i, value) in values.iter().enumerate() {
        v.index(i, |v| {
            if value.is_empty() {
                v.error("empty value not allowed");
            } else {
                check(v, value);
            }
        });
    }
}

/// Values matched with Istio's string matcher: exact, `prefix*`, `*suffix` or `*`.
pub(super) fn string_matches(v: &mut Validator, values: &[String]) {
    each_value(v, values, wildcard_position);
}

/// Istio only treats a leading or trailing `*` as a wildcard; anywhere else it is matched
/// literally, which is rarely what the author meant. Istio accepts such values silently.
pub(super) fn wildcard_position(v: &mut Validator, value: &str) {
    if value == "*" {
        return;
    }
    let inner = value
        .strip_prefix('*')
        .or_else(|| value.strip_suffix('*'))
        .unwrap_or(value);
    if inner.contains('*') {
        v.warn(format!(
            "{value:?}: `*` is a wildcard only as the whole value, the first character (suffix \
             match) or the last character (prefix match); here it is matched literally"
        ));
    }
}

/// Istio's `ValidateIPs`: each value an IP address or a CIDR block.
pub(super) fn ip_blocks(v: &mut Validator, values: &[String]) {
    each_value(v, values, rules::ip_or_cidr);
}

/// Istio's `ValidatePorts`: decimal numbers up to 65535 (Istio accepts 0).
pub(super) fn ports(v: &mut Validator, values: &[String]) {
    each_value(v, values, |v, p| {
        let parsed = if p.bytes().all(|c| c.is_ascii_digit()) {
            p.parse::<u32>().ok()
        } else {
            None
        };
        match parsed {
            Some(0) => v.warn("port \"0\" never matches a connection"),
            Some(n) if n <= 65535 => {}
            _ => v.error(format!(
                "bad port {p:?}: ports are decimal numbers in the range 1..65535"
            )),
        }
    });
}

/// Istio's `CheckServiceAccount`: `account` or `namespace/account`, no wildcards.
pub(super) fn service_accounts(v: &mut Validator, values: &[String]) {
    if values.len() > MAX_SERVICE_ACCOUNTS {
        v.error(format!(
            "may not have more than {MAX_SERVICE_ACCOUNTS} values (found {})",
            values.len()
        ));
    }
    each_value(v, values, |v, value| {
        const FORMAT: &str = "expected format 'serviceAccount' or 'namespace/serviceAccount'";
        if value.contains('*') {
            v.error(format!(
                "{value:?}: wildcards are not allowed in service accounts"
            ));
        } else if value.matches('/').count() > 1 {
            v.error(format!("{FORMAT}, found {value:?}"));
        } else if value.len() > MAX_SERVICE_ACCOUNT_LEN {
            v.error(format!(
                "{value:?}: value cannot exceed {MAX_SERVICE_ACCOUNT_LEN} characters"
            ));
        } else if let Some((ns, sa)) = value.split_once('/') {
            if ns.is_empty() {
                v.error(format!("{FORMAT}, found empty namespace in {value:?}"));
            } else if sa.is_empty() {
                v.error(format!("{FORMAT}, found empty serviceAccount in {value:?}"));
            }
        }
    });
}

/// `MatchOneTemplate` / `MatchAnyTemplate` of Envoy's URI template matcher.
const MATCH_ONE: &str = "{*}";
const MATCH_ANY: &str = "{**}";

fn paths(v: &mut Validator, values: &[String]) {
    each_value(v, values, |v, path| {
        if let Err(e) = check_path_template(path) {
            v.error(e);
        } else if !path.contains(MATCH_ONE) && !path.contains(MATCH_ANY) {
            wildcard_position(v, path);
        }
    });
}

/// Istio's `CheckValidPathTemplate`: `{*}` matches one segment and `{**}` any number (only
/// as the last operator); other braces are rejected, and a path that uses a template must
/// otherwise consist of RFC 3986 `pchar` literals.
pub(super) fn check_path_template(path: &str) -> Result<(), String> {
    let templated = path.contains(MATCH_ONE) || path.contains(MATCH_ANY);
    let mut seen_any = false;
    for glob in path.trim_matches('/').split('/') {
        if glob == MATCH_ONE || glob == MATCH_ANY {
            if seen_any {
                return Err(format!(
                    "invalid or unsupported path {path:?}: {{**}} is not the last operator"
                ));
            }
            seen_any = glob == MATCH_ANY;
            continue;
        }
        if glob.contains(['{', '}']) {
            return Err(format!(
                "invalid or unsupported path {path:?}: contains '{{' or '}}' beyond a supported \
                 path template ({{*}} or {{**}} as a whole segment)"
            ));
        }
        if templated && !is_pchar_literal(glob) {
            return Err(format!(
                "invalid or unsupported path {path:?}: segment {glob:?} is not a valid literal \
                 (letters, digits and -._~%!$&'()+,;:@=)"
            ));
        }
    }
    Ok(())
}

fn is_pchar_literal(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-._~%!$&'()+,;:@=".contains(&c))
}
