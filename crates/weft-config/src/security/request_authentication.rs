//! `security.istio.io` RequestAuthentication: which JWTs the selected workloads validate and
//! where they find them. Types follow `security/v1beta1/request_authentication.proto` (the
//! `JWTRule` message formerly in jwt.proto); validation follows Istio's
//! `ValidateRequestAuthentication` / `validateJwtRule` and the CRD's CEL rules.
#![allow(clippy::upper_case_acronyms)]

#[cfg(test)]
mod tests_istio;
mod validate;

use crate::selector::{PolicyTargetReference, WorkloadSelector};
use crate::types::{Duration, is_default};
use serde::{Deserialize, Serialize};

/// JWT validation for the selected workloads. A request with a token is rejected if the
/// token is invalid; a request without one is accepted (enforce presence with
/// AuthorizationPolicy, or `presence: REQUIRED`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RequestAuthentication {
    /// Workloads (by label) the policy applies to; unset means every workload in the namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<WorkloadSelector>,
    /// A single Gateway API resource the policy attaches to instead of a selector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<PolicyTargetReference>,
    /// Resources (Gateway, Service, ServiceEntry, GatewayClass) the policy attaches to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub target_refs: Vec<PolicyTargetReference>,
    /// The JWT issuers accepted, with where to find and how to verify their tokens.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub jwt_rules: Vec<JWTRule>,
}

/// How to find, verify and forward one issuer's JWTs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct JWTRule {
    /// Expected `iss` claim (usually a URL or email); optional when `jwksUri` is set.
    #[serde(skip_serializing_if = "is_default")]
    pub issuer: String,
    /// Accepted `aud` values; empty accepts the service name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// URL of the issuer's public key set (http or https); discovered via OpenID when unset.
    /// The CRD also accepts the proto name `jwks_uri`.
    #[serde(skip_serializing_if = "is_default", alias = "jwks_uri")]
    pub jwks_uri: String,
    /// The public key set inline, as JWKS JSON; only one of this and `jwksUri` may be set.
    #[serde(skip_serializing_if = "is_default")]
    pub jwks: String,
    /// Headers the token may arrive in; default `Authorization: Bearer <token>`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_headers: Vec<JWTHeader>,
    /// Query parameters the token may arrive in; default `access_token`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_params: Vec<String>,
    /// Header to which the verified token's payload is written (base64-encoded JSON).
    #[serde(skip_serializing_if = "is_default")]
    pub output_payload_to_header: String,
    /// Cookies the token may arrive in.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_cookies: Vec<String>,
    /// Keep the original token in the request forwarded upstream (it is removed by default).
    #[serde(skip_serializing_if = "is_default")]
    pub forward_original_token: bool,
    /// Claims copied into request headers after successful verification.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub output_claim_to_headers: Vec<ClaimToHeader>,
    /// How long to wait for the JWKS to be fetched (default 5s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Claims holding space-separated lists (beyond the default `scope` and `permission`),
    /// split into lists for matching in AuthorizationPolicy.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub space_delimited_claims: Vec<String>,
    /// Whether a request must carry this rule's token (OPTIONAL by default).
    #[serde(skip_serializing_if = "is_default")]
    pub presence: JWTRequirement,
}

/// Whether a JWT rule's token must be present on every request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JWTRequirement {
    /// A missing token is accepted; a present but invalid one is rejected.
    #[default]
    Optional,
    /// The token must be present and valid, else the request is rejected with 401.
    Required,
}

/// A header a JWT is read from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct JWTHeader {
    /// The HTTP header name.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Prefix stripped before decoding the token, e.g. `Bearer `.
    #[serde(skip_serializing_if = "is_default")]
    pub prefix: String,
}

/// Copies one JWT claim into a request header.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ClaimToHeader {
    /// Name of the header to set (letters, digits and `-`).
    #[serde(skip_serializing_if = "is_default")]
    pub header: String,
    /// Name of the claim to copy; nested claims use `.`-separated paths.
    #[serde(skip_serializing_if = "is_default")]
    pub claim: String,
}
