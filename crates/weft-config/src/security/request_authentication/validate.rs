//! Istio's `ValidateRequestAuthentication` / `validateJwtRule`, plus the CRD's rules (list
//! caps, minimum lengths, the jwks/jwksUri exclusivity and URL-scheme CEL rules).

use super::{JWTRule, RequestAuthentication};
use crate::security::authorization_policy::targeting::validate_targeting;
use crate::validate::{Validate, Validator, rules};
use serde_json::Value;

/// CRD cap on `jwtRules`.
const MAX_JWT_RULES: usize = 4096;
/// CRD cap on the length of `jwksUri`.
const MAX_JWKS_URI_LEN: usize = 2048;

impl Validate for RequestAuthentication {
    fn validate(&self, v: &mut Validator) {
        validate_targeting(v, &self.selector, &self.target_ref, &self.target_refs);
        if self.jwt_rules.len() > MAX_JWT_RULES {
            v.field("jwtRules", |v| {
                v.error(format!(
                    "at most {MAX_JWT_RULES} jwtRules may be set (found {})",
                    self.jwt_rules.len()
                ))
            });
        }
        v.each("jwtRules", &self.jwt_rules);
    }
}

impl Validate for JWTRule {
    fn validate(&self, v: &mut Validator) {
        if self.issuer.is_empty() && self.jwks_uri.is_empty() {
            v.field("issuer", |v| {
                v.missing("issuer or jwksUri must be set (without an issuer the JWKS cannot be discovered)")
            });
        }
        v.field("audiences", |v| {
            non_empty_each(v, &self.audiences, "audience")
        });
        if !self.jwks_uri.is_empty() && !self.jwks.is_empty() {
            v.conflict("only one of jwks or jwksUri can be set");
        }
        if !self.jwks_uri.is_empty() {
            v.field("jwksUri", |v| {
                if let Err(e) = check_jwks_uri(&self.jwks_uri) {
                    v.error(e);
                }
            });
        }
        if !self.jwks.is_empty() {
            v.field("jwks", |v| {
                if let Err(e) = check_jwks(&self.jwks) {
                    v.error(format!("jwks parse error: {e}"));
                }
            });
        }
        v.field("fromHeaders", |v| {
            for (i, h) in self.from_headers.iter().enumerate() {
                if h.name.is_empty() {
                    v.index(i, |v| {
                        v.field("name", |v| v.missing("location header name must be set"))
                    });
                }
            }
        });
        v.field("fromParams", |v| {
            non_empty_each(v, &self.from_params, "query parameter name")
        });
        v.field("fromCookies", |v| {
            non_empty_each(v, &self.from_cookies, "cookie name")
        });
        v.field("outputClaimToHeaders", |v| {
            for (i, c) in self.output_claim_to_headers.iter().enumerate() {
                v.index(i, |v| {
                    if c.claim.is_empty() {
                        v.field("claim", |v| v.missing("outputClaimToHeaders claim must be set"));
                    }
                    if c.header.is_empty() {
                        v.field("header", |v| v.missing("outputClaimToHeaders header must be set"));
                    } else if !c.claim.is_empty() && !is_strict_header_name(&c.header) {
                        v.field("header", |v| {
                            v.error(format!(
                                "header name {:?} is not a valid header name (letters, digits and '-' only)",
                                c.header
                            ))
                        });
                    }
                });
            }
        });
        if let Some(t) = &self.timeout {
            v.field("timeout", |v| rules::duration(v, t));
        }
        v.field("spaceDelimitedClaims", |v| {
            non_empty_each(v, &self.space_delimited_claims, "claim name")
        });
    }
}

fn non_empty_each(v: &mut Validator, values: &[String], what: &str) {
    for (i, s) in values.iter().enumerate() {
        if s.is_empty() {
            v.index(i, |v| v.error(format!("{what} must be a non-empty string")));
        }
    }
}

/// Istio's `ValidateStrictHTTPHeaderName` (`^[-A-Za-z0-9]+$`).
fn is_strict_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

/// Istio's `ParseJwksURI` (Go `url.Parse`, scheme http or https, numeric port) and the CRD's
/// length limit.
pub(super) fn check_jwks_uri(uri: &str) -> Result<(), String> {
    if uri.len() > MAX_JWKS_URI_LEN {
        return Err(format!(
            "jwksUri must be at most {MAX_JWKS_URI_LEN} characters"
        ));
    }
    // Go's url.Parse takes a scheme only when it is a letter followed by letters, digits,
    // '+', '-' or '.', and ends at the first ':'.
    let scheme = match uri.split_once(':') {
        Some((s, _))
            if s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            s.to_ascii_lowercase()
        }
        _ => String::new(),
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "jwksUri {uri:?}: URI scheme {scheme:?} is not supported; use http:// or https://"
        ));
    }
    let rest = &uri[scheme.len() + 1..];
    if let Some(after) = rest.strip_prefix("//") {
        let authority = after.split(['/', '?', '#']).next().unwrap_or_default();
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
        let port = if let Some(end) = host_port.strip_prefix('[').and_then(|h| h.find(']')) {
            host_port[end + 2..].strip_prefix(':')
        } else {
            host_port.rsplit_once(':').map(|(_, p)| p)
        };
        if let Some(p) = port
            && !p.bytes().all(|c| c.is_ascii_digit())
        {
            return Err(format!("jwksUri {uri:?}: invalid port {p:?}"));
        }
    }
    Ok(())
}

/// A structural check of an inline JWKS, standing in for Istio's `jwk.Parse`: a JSON key
/// set (`{"keys": [...]}`) or a single key, each key with a known `kty` and the parameters
/// that key type needs.
pub(super) fn check_jwks(jwks: &str) -> Result<(), String> {
    let doc: Value = serde_json::from_str(jwks).map_err(|e| format!("invalid JSON: {e}"))?;
    let obj = doc.as_object().ok_or("expected a JSON object")?;
    match obj.get("keys") {
        Some(Value::Array(keys)) => {
            for (i, key) in keys.iter().enumerate() {
                check_jwk(key).map_err(|e| format!("keys[{i}]: {e}"))?;
            }
            Ok(())
        }
        Some(_) => Err("`keys` must be a list of keys".into()),
        None => check_jwk(&doc),
    }
}

fn check_jwk(key: &Value) -> Result<(), String> {
    let obj = key.as_object().ok_or("a key must be a JSON object")?;
    let kty = obj
        .get("kty")
        .and_then(Value::as_str)
        .ok_or("missing \"kty\"")?;
    let needed: &[&str] = match kty {
        "RSA" => &["n", "e"],
        "EC" => &["crv", "x", "y"],
        "oct" => &["k"],
        "OKP" => &["crv", "x"],
        other => return Err(format!("unsupported key type {other:?}")),
    };
    for p in needed {
        if !obj.get(*p).is_some_and(Value::is_string) {
            return Err(format!("{kty} key is missing {p:?}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;
    use crate::diag::{Code, Finding, Severity};
    use crate::validate::check;
    use serde_json::json;

    fn run(spec: Value) -> Vec<Finding> {
        let p: RequestAuthentication = serde_json::from_value(spec).expect("spec deserializes");
        check(&p, "default")
    }

    fn summary(f: &[Finding]) -> Vec<(String, Severity)> {
        f.iter().map(|f| (f.path.to_string(), f.severity)).collect()
    }

    fn only(f: &[Finding], path: &str) {
        assert_eq!(
            summary(f),
            vec![(path.to_string(), Severity::Error)],
            "{f:#?}"
        );
    }

    fn rule(extra: Value) -> Value {
        let mut r = json!({"issuer": "example"});
        if let (Some(r), Some(e)) = (r.as_object_mut(), extra.as_object()) {
            r.extend(e.clone());
        }
        json!({"jwtRules": [r]})
    }

    #[test]
    fn istio_valid_testdata() {
        let f = run(json!({
            "targetRefs": [{"group": "", "kind": "Service", "name": "foo"}],
            "jwtRules": [{
                "issuer": "example.com",
                "jwksUri": "https://example.com/.well-known/jwks.json",
                "forwardOriginalToken": true,
                "fromCookies": ["foo"],
                "fromHeaders": [{"name": "foo", "prefix": "baz"}],
                "outputClaimToHeaders": [{"claim": "abc", "header": "def"}],
                "timeout": "5s",
                "outputPayloadToHeader": "header",
                "spaceDelimitedClaims": ["custom_scope", "provider.login.scope"],
                "presence": "REQUIRED"
            }]
        }));
        assert!(f.is_empty(), "{f:#?}");
        // An issuer may be omitted when jwksUri is given.
        assert!(run(json!({"jwtRules": [{"jwksUri": "http://jwks:8080/keys"}]})).is_empty());
        // The CRD also accepts the proto field name.
        let r: RequestAuthentication =
            serde_json::from_value(json!({"jwtRules": [{"jwks_uri": "https://x/keys"}]}))
                .expect("deserializes");
        assert_eq!(r.jwt_rules[0].jwks_uri, "https://x/keys");
    }

    #[test]
    fn istio_invalid_testdata_targeting() {
        let f = run(json!({
            "targetRefs": [{"group": "", "kind": "Service", "name": "foo"}],
            "targetRef": {"group": "", "kind": "Service", "name": "foo"}
        }));
        only(&f, "");
        let f = run(
            json!({"selector": {"matchLabels": {"a": "b"}}, "targetRef": {"group": "", "kind": "Service", "name": "foo"}}),
        );
        only(&f, "");
        let f = run(json!({"targetRef": {"group": "", "kind": "Service"}}));
        only(&f, "targetRef.name");
        let f = run(
            json!({"targetRef": {"group": "", "kind": "Service", "name": "foo", "namespace": "default"}}),
        );
        only(&f, "targetRef.namespace");
        let f = run(json!({"targetRef": {"group": "__", "kind": "Service", "name": "foo"}}));
        only(&f, "targetRef");
        let f = run(json!({"targetRef": {"group": "", "kind": "Serv_ice", "name": "foo"}}));
        only(&f, "targetRef");
    }

    #[test]
    fn istio_invalid_testdata_rules() {
        only(&run(json!({"jwtRules": [{}]})), "jwtRules[0].issuer");
        only(
            &run(rule(json!({"audiences": ["ok", ""]}))),
            "jwtRules[0].audiences[1]",
        );
        only(
            &run(rule(json!({"jwksUri": "hTPp\\\\\\blah"}))),
            "jwtRules[0].jwksUri",
        );
        only(
            &run(rule(json!({"fromHeaders": [{"prefix": "baz"}]}))),
            "jwtRules[0].fromHeaders[0].name",
        );
        only(
            &run(rule(json!({"fromParams": [""]}))),
            "jwtRules[0].fromParams[0]",
        );
        only(
            &run(rule(json!({"fromCookies": [""]}))),
            "jwtRules[0].fromCookies[0]",
        );
        only(
            &run(rule(
                json!({"outputClaimToHeaders": [{"claim": "", "header": "h"}]}),
            )),
            "jwtRules[0].outputClaimToHeaders[0].claim",
        );
        only(
            &run(rule(
                json!({"outputClaimToHeaders": [{"claim": "x", "header": ""}]}),
            )),
            "jwtRules[0].outputClaimToHeaders[0].header",
        );
        only(
            &run(rule(
                json!({"outputClaimToHeaders": [{"claim": "x", "header": ":authority"}]}),
            )),
            "jwtRules[0].outputClaimToHeaders[0].header",
        );
        only(
            &run(rule(
                json!({"outputClaimToHeaders": [{"claim": "x", "header": "x_y"}]}),
            )),
            "jwtRules[0].outputClaimToHeaders[0].header",
        );
        only(
            &run(rule(json!({"spaceDelimitedClaims": [""]}))),
            "jwtRules[0].spaceDelimitedClaims[0]",
        );
        only(
            &run(rule(json!({"timeout": "0.5ms"}))),
            "jwtRules[0].timeout",
        );
        // Unparseable durations and unknown presence values fail to deserialize.
        assert!(
            serde_json::from_value::<RequestAuthentication>(rule(json!({"timeout": "apple"})))
                .is_err()
        );
        assert!(
            serde_json::from_value::<RequestAuthentication>(rule(json!({"presence": "MANDATORY"})))
                .is_err()
        );
    }

    #[test]
    fn jwks_and_jwks_uri_are_exclusive() {
        let jwks = r#"{"keys":[{"kty":"RSA","n":"abc","e":"AQAB"}]}"#;
        let f = run(rule(json!({"jwks": jwks, "jwksUri": "https://x/keys"})));
        only(&f, "jwtRules[0]");
        assert_eq!(f[0].code, Code::Conflict);
        assert!(run(rule(json!({"jwks": jwks}))).is_empty());
    }

    #[test]
    fn inline_jwks_must_parse() {
        only(&run(rule(json!({"jwks": "not json"}))), "jwtRules[0].jwks");
        only(
            &run(rule(
                json!({"jwks": r#"{"keys":[{"kty":"RSA","n":"abc"}]}"#}),
            )),
            "jwtRules[0].jwks",
        );
        only(
            &run(rule(json!({"jwks": r#"{"keys":[{"kty":"XYZ"}]}"#}))),
            "jwtRules[0].jwks",
        );
        assert!(check_jwks(r#"{"kty":"EC","crv":"P-256","x":"a","y":"b"}"#).is_ok());
        assert!(
            check_jwks(r#"{"keys":[{"kty":"oct","k":"a"},{"kty":"OKP","crv":"Ed25519","x":"a"}]}"#)
                .is_ok()
        );
        assert!(check_jwks(r#"{"keys":{}}"#).is_err());
        assert!(check_jwks("[]").is_err());
    }

    #[test]
    fn jwks_uri_forms() {
        assert!(check_jwks_uri("https://example.com/.well-known/jwks.json").is_ok());
        assert!(check_jwks_uri("HTTP://example.com:8080/keys").is_ok());
        assert!(check_jwks_uri("http://[::1]:8080/keys").is_ok());
        assert!(check_jwks_uri("http://user@host:99/k").is_ok());
        assert!(check_jwks_uri("example.com/keys").is_err());
        assert!(check_jwks_uri("ftp://example.com/keys").is_err());
        assert!(check_jwks_uri("https://example.com:port/keys").is_err());
        assert!(check_jwks_uri(&format!("https://e.com/{}", "a".repeat(2048))).is_err());
    }

    #[test]
    fn empty_selector_warns() {
        let f = run(json!({"selector": {}}));
        assert_eq!(
            summary(&f),
            vec![("selector".to_string(), Severity::Warning)]
        );
    }

    #[test]
    fn round_trips_through_json() {
        let full = json!({
            "selector": {"matchLabels": {"app": "httpbin"}},
            "targetRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"},
            "targetRefs": [{"kind": "Service", "name": "svc"}],
            "jwtRules": [{
                "issuer": "issuer-foo",
                "audiences": ["a", "b"],
                "jwksUri": "https://example.com/jwks.json",
                "jwks": "{\"keys\":[]}",
                "fromHeaders": [{"name": "x-jwt", "prefix": "Bearer "}],
                "fromParams": ["token"],
                "outputPayloadToHeader": "x-payload",
                "fromCookies": ["session"],
                "forwardOriginalToken": true,
                "outputClaimToHeaders": [{"header": "x-sub", "claim": "sub"}],
                "timeout": "5s",
                "spaceDelimitedClaims": ["scope2"],
                "presence": "REQUIRED"
            }]
        });
        let p: RequestAuthentication = serde_json::from_value(full.clone()).expect("deserializes");
        let back = serde_json::to_value(&p).expect("serializes");
        assert_eq!(back, full);
        assert_eq!(
            serde_json::from_value::<RequestAuthentication>(back).ok(),
            Some(p)
        );
        assert_eq!(
            serde_json::to_value(RequestAuthentication::default()).ok(),
            Some(json!({}))
        );
    }
}
