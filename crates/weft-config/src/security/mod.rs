//! `security.istio.io`: peer (mTLS) and request (JWT) authentication, and authorization.

pub mod authorization_policy;
pub mod dry_run;
pub mod peer_authentication;
pub mod request_authentication;
