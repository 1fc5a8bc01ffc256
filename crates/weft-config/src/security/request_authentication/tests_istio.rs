//! Istio's own test tables for RequestAuthentication, ported to prove parity:
//! `TestValidateRequestAuthentication` (pkg/config/validation/validation_test.go, run there
//! in namespace "bar") and `TestParseJwksURI` (pkg/config/security/security_test.go), the
//! `jwksUri` check the JWT rules use.

use super::RequestAuthentication;
use serde_json::{Value, json};

use crate::validate::istio_table::{Want, run};
use Want::{Error, Valid, Warning};

/// Istio runs this table in namespace "bar" (`someNamespace`).
const NS: &str = "bar";

/// Checks every case and reports all that differ from Istio at once.
fn table(cases: Vec<(&str, Value, Want)>) {
    run::<RequestAuthentication>(cases, NS, true, |v| v);
}

/// A spec with one JWT rule for issuer foo.com plus `extra` fields.
fn rule(extra: Value) -> Value {
    let mut r = json!({"issuer": "foo.com", "jwksUri": "https://foo.com"});
    if let (Some(r), Some(e)) = (r.as_object_mut(), extra.as_object()) {
        r.extend(e.clone());
    }
    json!({"jwtRules": [r]})
}

/// The JWT rule Istio's selector and targetRef cases share.
fn cert_rule() -> Value {
    json!([{"issuer": "foo.com", "jwksUri": "https://foo.com/cert"}])
}

fn gateway(extra: Value) -> Value {
    let mut r = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "foo"});
    if let (Some(r), Some(e)) = (r.as_object_mut(), extra.as_object()) {
        r.extend(e.clone());
    }
    r
}

/// An inline JWKS holding one RSA key ("jwks ok").
const JWKS: &str = r#"{ "keys":[ {"e":"AQAB","kid":"DHFbpoIUqrY8t2zpA2qXfCmr5VO5ZEr4RzHU_-envvQ","kty":"RSA","n":"xAE7eB6qugXyCAG3yhh7pkDkT65pHymX-P7KfIupjf59vsdo91bSP9C8H07pSAGQO1MV_xFj9VswgsCg4R6otmg5PV2He95lZdHtOcU5DXIg_pbhLdKXbi66GlVeK6ABZOUW3WYtnNHD-91gVuoeJT_DwtGGcp4ignkgXfkiEm4sw-4sfb4qdt5oLbyVpmW6x9cfa7vs2WTfURiCrBoUqgBo_-4WTiULmmHSGZHOjzwa8WtrtOQGsAFjIbno85jp6MnGGGZPYZbDAa_b3y5u-YpW7ypZrvD8BgtKVjgtQgZhLAGezMt0ua3DRrWnKqTZ0BJ_EyxOGuHJrLsn00fnMQ"}]}"#;

#[test]
fn validate_request_authentication_selectors() {
    table(vec![
        // "empty spec" and "empty spec with non default name" (the name does not matter).
        ("empty spec", json!({}), Valid),
        ("another empty spec", json!({"selector": {}}), Warning),
        // "dry run annotation not supported": checked with the whole object (tests/load.rs
        // `dry_run_annotation_follows_istio`); the spec alone is valid.
        ("dry run annotation not supported", json!({}), Valid),
        (
            "default name with non empty selector",
            json!({"selector": {"matchLabels": {"app": "httpbin"}}}),
            Valid,
        ),
        (
            "empty value",
            json!({
                "selector": {"matchLabels": {"app": "httpbin", "version": ""}},
                "jwtRules": cert_rule()
            }),
            Valid,
        ),
        (
            "bad workload selector - empty key",
            json!({
                "selector": {"matchLabels": {"app": "httpbin", "": "v1"}},
                "jwtRules": cert_rule()
            }),
            Error,
        ),
    ]);
}

#[test]
fn validate_request_authentication_target_refs() {
    table(vec![
        (
            "good targetRef",
            json!({"targetRef": gateway(json!({})), "jwtRules": cert_rule()}),
            Valid,
        ),
        (
            "bad targetRef - empty name",
            json!({"targetRef": gateway(json!({"name": ""})), "jwtRules": cert_rule()}),
            Error,
        ),
        (
            "bad targetRef - non-empty namespace",
            json!({"targetRef": gateway(json!({"namespace": "bar"})), "jwtRules": cert_rule()}),
            Error,
        ),
        (
            "bad targetRef - wrong group",
            json!({"targetRef": gateway(json!({"group": "wrong-group"})), "jwtRules": cert_rule()}),
            Error,
        ),
        (
            "bad targetRef - wrong kind",
            json!({"targetRef": gateway(json!({"kind": "wrong-kind"})), "jwtRules": cert_rule()}),
            Error,
        ),
        (
            "targetRef and selector cannot both be set",
            json!({
                "targetRef": gateway(json!({})),
                "jwtRules": cert_rule(),
                "selector": {"matchLabels": {"app": "httpbin"}}
            }),
            Error,
        ),
    ]);
}

#[test]
fn validate_request_authentication_jwt_rules() {
    table(vec![
        ("empty jwt rule", json!({"jwtRules": [{}]}), Error),
        ("empty issuer", json!({"jwtRules": [{"issuer": ""}]}), Error),
        (
            "bad JwksUri - no protocol",
            json!({"jwtRules": [{"issuer": "foo.com", "jwksUri": "foo.com"}]}),
            Error,
        ),
        (
            "bad JwksUri - invalid port",
            json!({"jwtRules": [{"issuer": "foo.com", "jwksUri": "https://foo.com:not-a-number"}]}),
            Error,
        ),
        (
            "bad header location",
            rule(json!({"fromHeaders": [{"name": "", "prefix": "Bearer "}]})),
            Error,
        ),
        (
            "bad param location",
            rule(json!({"fromParams": [""]})),
            Error,
        ),
        (
            "good",
            rule(json!({"fromHeaders": [{"name": "x-foo", "prefix": "Bearer "}]})),
            Valid,
        ),
        (
            "bad cookie location",
            rule(json!({"fromCookies": ["", "foo"]})),
            Error,
        ),
        (
            "jwks ok",
            json!({"jwtRules": [{
                "issuer": "foo.com", "jwks": JWKS, "fromHeaders": [{"name": "x-foo", "prefix": "Bearer "}]
            }]}),
            Valid,
        ),
        (
            "jwks error",
            json!({"jwtRules": [{
                "issuer": "foo.com", "jwks": "foo", "fromHeaders": [{"name": "x-foo", "prefix": "Bearer "}]
            }]}),
            Error,
        ),
        (
            "null outputClaimToHeader",
            rule(json!({"outputClaimToHeaders": [{}]})),
            Error,
        ),
        (
            "null claim value in outputClaimToHeader",
            rule(json!({"outputClaimToHeaders": [{"header": "x-jwt-claim", "claim": ""}]})),
            Error,
        ),
        (
            "null header value in outputClaimToHeader",
            rule(json!({"outputClaimToHeaders": [{"header": "", "claim": "sub"}]})),
            Error,
        ),
        (
            "invalid header value in outputClaimToHeader",
            rule(json!({"outputClaimToHeaders": [{"header": "abc%123", "claim": "sub"}]})),
            Error,
        ),
    ]);
}

/// `TestParseJwksURI`: which `jwksUri` values `ParseJwksURI` accepts.
#[test]
fn parse_jwks_uri() {
    let cases = [
        ("foo.bar.com", Error),
        ("tcp://foo.bar.com:abc", Error),
        ("http://foo.bar.com:abc", Error),
        ("http://foo.bar.com", Valid),
        ("https://foo.bar.com", Valid),
        ("http://foo.bar.com:1234", Valid),
        ("https://foo.bar.com:1234/secure/key", Valid),
    ];
    table(
        cases
            .into_iter()
            .map(|(uri, want)| {
                (
                    uri,
                    json!({"jwtRules": [{"issuer": "foo.com", "jwksUri": uri}]}),
                    want,
                )
            })
            .collect(),
    );
}
