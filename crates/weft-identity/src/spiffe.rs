//! SPIFFE IDs: the names workloads prove with their certificates, in the form Istio gives
//! them (`spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT`), checked as the SPIFFE ID
//! specification requires so that a malformed name never reaches a certificate or a
//! comparison.

use std::fmt;

/// The longest SPIFFE ID the specification allows, in bytes.
const MAX_LEN: usize = 2048;
/// The longest trust domain name the specification allows, in bytes.
const MAX_TRUST_DOMAIN: usize = 255;

/// Why a string is not a SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{0:?} is not a SPIFFE ID: it must start with \"spiffe://\"")]
    Scheme(String),
    #[error("{0:?} is not a SPIFFE ID: its trust domain is empty")]
    EmptyTrustDomain(String),
    #[error(
        "{id:?} is not a SPIFFE ID: trust domain character {ch:?} is not a lowercase letter, digit, '.', '-' or '_'"
    )]
    TrustDomainChar { id: String, ch: char },
    #[error("{0:?} is not a SPIFFE ID: its trust domain is longer than 255 bytes")]
    TrustDomainTooLong(String),
    #[error(
        "{id:?} is not a SPIFFE ID: path segment {segment:?} is empty, \".\" or \"..\", or holds a character other than a letter, digit, '.', '-' or '_'"
    )]
    Segment { id: String, segment: String },
    #[error("{0:?} is not a SPIFFE ID: it is longer than 2048 bytes")]
    TooLong(String),
}

/// A SPIFFE ID: a trust domain and a path (empty, or `/`-separated segments).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpiffeId {
    trust_domain: String,
    /// Empty, or starting with `/`.
    path: String,
}

impl SpiffeId {
    /// Parses `spiffe://TRUST_DOMAIN[/PATH]`.
    pub fn parse(id: &str) -> Result<Self, IdError> {
        if id.len() > MAX_LEN {
            return Err(IdError::TooLong(id.to_string()));
        }
        let rest = id
            .strip_prefix("spiffe://")
            .ok_or_else(|| IdError::Scheme(id.to_string()))?;
        let (trust_domain, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        check_trust_domain(id, trust_domain)?;
        if !path.is_empty() {
            for segment in path[1..].split('/') {
                check_segment(id, segment)?;
            }
        }
        Ok(Self {
            trust_domain: trust_domain.to_string(),
            path: path.to_string(),
        })
    }

    /// The identity Istio gives a workload running as `service_account` in `namespace`.
    pub fn workload(
        trust_domain: &str,
        namespace: &str,
        service_account: &str,
    ) -> Result<Self, IdError> {
        Self::parse(&format!(
            "spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"
        ))
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The path, empty or starting with `/`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The namespace of an Istio workload identity (`/ns/NAMESPACE/sa/…`).
    pub fn namespace(&self) -> Option<&str> {
        self.istio_parts().map(|(ns, _)| ns)
    }

    /// The service account of an Istio workload identity (`/ns/…/sa/SERVICE_ACCOUNT`).
    pub fn service_account(&self) -> Option<&str> {
        self.istio_parts().map(|(_, sa)| sa)
    }

    fn istio_parts(&self) -> Option<(&str, &str)> {
        let mut segments = self.path.strip_prefix('/')?.split('/');
        match (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) {
            (Some("ns"), Some(ns), Some("sa"), Some(sa), None) => Some((ns, sa)),
            _ => None,
        }
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spiffe://{}{}", self.trust_domain, self.path)
    }
}

impl std::str::FromStr for SpiffeId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn check_trust_domain(id: &str, trust_domain: &str) -> Result<(), IdError> {
    if trust_domain.is_empty() {
        return Err(IdError::EmptyTrustDomain(id.to_string()));
    }
    if trust_domain.len() > MAX_TRUST_DOMAIN {
        return Err(IdError::TrustDomainTooLong(id.to_string()));
    }
    if let Some(ch) = trust_domain
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_')))
    {
        return Err(IdError::TrustDomainChar {
            id: id.to_string(),
            ch,
        });
    }
    Ok(())
}

fn check_segment(id: &str, segment: &str) -> Result<(), IdError> {
    let bad = segment.is_empty()
        || segment == "."
        || segment == ".."
        || !segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if bad {
        return Err(IdError::Segment {
            id: id.to_string(),
            segment: segment.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn istio_workload_ids_round_trip_and_name_their_parts() {
        let id = SpiffeId::workload("cluster.local", "payments", "checkout").unwrap();
        assert_eq!(
            id.to_string(),
            "spiffe://cluster.local/ns/payments/sa/checkout"
        );
        assert_eq!(SpiffeId::parse(&id.to_string()).unwrap(), id);
        assert_eq!(id.trust_domain(), "cluster.local");
        assert_eq!(id.namespace(), Some("payments"));
        assert_eq!(id.service_account(), Some("checkout"));
        let other = SpiffeId::parse("spiffe://example.org/ns/a/sa/b/extra").unwrap();
        assert_eq!(other.namespace(), None);
        assert_eq!(SpiffeId::parse("spiffe://example.org").unwrap().path(), "");
    }

    #[test]
    fn malformed_ids_are_refused_with_the_reason() {
        for (id, expected) in [
            ("http://cluster.local/ns/a/sa/b", "must start with"),
            ("spiffe:///ns/a/sa/b", "trust domain is empty"),
            ("spiffe://Cluster.local/ns/a", "trust domain character 'C'"),
            ("spiffe://cluster.local/ns//sa/b", "path segment \"\""),
            ("spiffe://cluster.local/ns/../sa/b", "path segment \"..\""),
            ("spiffe://cluster.local/ns/a/", "path segment \"\""),
            ("spiffe://cluster.local/ns/a?x=1", "path segment \"a?x=1\""),
        ] {
            let err = SpiffeId::parse(id).unwrap_err().to_string();
            assert!(err.contains(expected), "{id}: {err}");
        }
        let long = format!("spiffe://cluster.local/{}", "a".repeat(MAX_LEN));
        assert!(matches!(SpiffeId::parse(&long), Err(IdError::TooLong(_))));
    }
}
