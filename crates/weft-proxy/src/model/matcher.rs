//! String, header and query-parameter matchers with Envoy's semantics: regexes match the
//! whole value (RE2 `FullMatch`), repeated headers are joined with `,` before matching, and
//! `invert_match` / `treat_missing_header_as_empty` / `present_match` combine as Envoy
//! documents them.

use super::{ConvertError, Result};
use envoy_types::pb::envoy::config::route::v3::{
    HeaderMatcher as PbHeaderMatcher, QueryParameterMatcher as PbQueryMatcher,
    header_matcher::HeaderMatchSpecifier, query_parameter_matcher::QueryParameterMatchSpecifier,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    RegexMatcher, StringMatcher as PbStringMatcher, string_matcher::MatchPattern,
};
use http::HeaderMap;
use regex::Regex;
use weft_yaml::FieldPath;

/// A compiled `RegexMatcher`, anchored so that it must match the whole input.
#[derive(Debug, Clone)]
pub struct FullRegex {
    pub source: String,
    anchored: Regex,
    /// Unanchored, for substitutions (`regex_rewrite`) that replace every match.
    pub unanchored: Regex,
}

impl FullRegex {
    pub fn new(re: &RegexMatcher, path: &FieldPath) -> Result<Self> {
        Self::compile(&re.regex, &path.field("regex"))
    }

    pub fn compile(source: &str, path: &FieldPath) -> Result<Self> {
        let build = |s: &str| {
            regex::RegexBuilder::new(s)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| ConvertError::new(path, format!("invalid regex `{source}`: {e}")))
        };
        Ok(FullRegex {
            source: source.to_string(),
            anchored: build(&format!("^(?:{source})$"))?,
            unanchored: build(source)?,
        })
    }

    pub fn is_match(&self, s: &str) -> bool {
        self.anchored.is_match(s)
    }
}

impl PartialEq for FullRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Pattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Regex(FullRegex),
}

/// `envoy.type.matcher.v3.StringMatcher`.
#[derive(Debug, Clone, PartialEq)]
pub struct StringMatcher {
    pattern: Pattern,
    /// Patterns are stored lowercased when set; the input is lowercased at match time.
    ignore_case: bool,
}

impl StringMatcher {
    pub fn new(m: &PbStringMatcher, path: &FieldPath) -> Result<Self> {
        let ic = m.ignore_case;
        let lower = |s: &str| if ic { s.to_lowercase() } else { s.to_string() };
        let pattern = match &m.match_pattern {
            Some(MatchPattern::Exact(s)) => Pattern::Exact(lower(s)),
            Some(MatchPattern::Prefix(s)) => Pattern::Prefix(lower(s)),
            Some(MatchPattern::Suffix(s)) => Pattern::Suffix(lower(s)),
            Some(MatchPattern::Contains(s)) => Pattern::Contains(lower(s)),
            Some(MatchPattern::SafeRegex(re)) => {
                Pattern::Regex(FullRegex::new(re, &path.field("safe_regex"))?)
            }
            Some(MatchPattern::Custom(_)) => {
                return Err(ConvertError::new(
                    &path.field("custom"),
                    "custom string matchers are not supported by weft-proxy",
                ));
            }
            None => {
                return Err(ConvertError::new(
                    path,
                    "one of exact, prefix, suffix, contains or safe_regex is required",
                ));
            }
        };
        // Envoy ignores ignore_case for regexes (the regex carries its own flags).
        let ignore_case = ic && !matches!(pattern, Pattern::Regex(_));
        Ok(StringMatcher {
            pattern,
            ignore_case,
        })
    }

    pub fn exact(s: &str) -> Self {
        StringMatcher {
            pattern: Pattern::Exact(s.to_string()),
            ignore_case: false,
        }
    }

    pub fn matches(&self, input: &str) -> bool {
        if self.ignore_case {
            return self.matches_cased(&input.to_lowercase());
        }
        self.matches_cased(input)
    }

    fn matches_cased(&self, input: &str) -> bool {
        match &self.pattern {
            Pattern::Exact(s) => input == s,
            Pattern::Prefix(s) => input.starts_with(s.as_str()),
            Pattern::Suffix(s) => input.ends_with(s.as_str()),
            Pattern::Contains(s) => input.contains(s.as_str()),
            Pattern::Regex(re) => re.is_match(input),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum HeaderTest {
    Value(StringMatcher),
    Range { start: i64, end: i64 },
    Present(bool),
}

/// What a header matcher reads: a header, or one of HTTP/2's pseudo-headers, which Envoy
/// lets matchers name for every protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderKey {
    Name(http::HeaderName),
    Method,
    Path,
    Authority,
    Scheme,
}

/// The pseudo-header values of a request, for matchers that name them.
pub struct Pseudo<'a> {
    pub method: &'a str,
    /// The path with its query, as `:path` carries it.
    pub path: &'a str,
    pub authority: &'a str,
    pub scheme: &'a str,
}

/// `envoy.config.route.v3.HeaderMatcher`.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderMatcher {
    pub name: HeaderKey,
    test: HeaderTest,
    invert: bool,
    missing_as_empty: bool,
}

impl HeaderMatcher {
    pub fn new(m: &PbHeaderMatcher, path: &FieldPath) -> Result<Self> {
        let lower = m.name.to_ascii_lowercase();
        let name = match lower.as_str() {
            ":method" => HeaderKey::Method,
            ":path" => HeaderKey::Path,
            ":authority" | "host" => HeaderKey::Authority,
            ":scheme" => HeaderKey::Scheme,
            _ => HeaderKey::Name(http::HeaderName::from_bytes(lower.as_bytes()).map_err(|_| {
                ConvertError::new(
                    &path.field("name"),
                    format!("`{}` is not a valid header name", m.name),
                )
            })?),
        };
        let plain = |p: MatchPattern| StringMatcher {
            pattern: match p {
                MatchPattern::Exact(s) => Pattern::Exact(s),
                MatchPattern::Prefix(s) => Pattern::Prefix(s),
                MatchPattern::Suffix(s) => Pattern::Suffix(s),
                MatchPattern::Contains(s) => Pattern::Contains(s),
                MatchPattern::SafeRegex(_) | MatchPattern::Custom(_) => unreachable!(),
            },
            ignore_case: false,
        };
        let test = match &m.header_match_specifier {
            Some(HeaderMatchSpecifier::ExactMatch(s)) => {
                HeaderTest::Value(plain(MatchPattern::Exact(s.clone())))
            }
            Some(HeaderMatchSpecifier::PrefixMatch(s)) => {
                HeaderTest::Value(plain(MatchPattern::Prefix(s.clone())))
            }
            Some(HeaderMatchSpecifier::SuffixMatch(s)) => {
                HeaderTest::Value(plain(MatchPattern::Suffix(s.clone())))
            }
            Some(HeaderMatchSpecifier::ContainsMatch(s)) => {
                HeaderTest::Value(plain(MatchPattern::Contains(s.clone())))
            }
            Some(HeaderMatchSpecifier::SafeRegexMatch(re)) => HeaderTest::Value(StringMatcher {
                pattern: Pattern::Regex(FullRegex::new(re, &path.field("safe_regex_match"))?),
                ignore_case: false,
            }),
            Some(HeaderMatchSpecifier::StringMatch(s)) => {
                HeaderTest::Value(StringMatcher::new(s, &path.field("string_match"))?)
            }
            Some(HeaderMatchSpecifier::RangeMatch(r)) => HeaderTest::Range {
                start: r.start,
                end: r.end,
            },
            Some(HeaderMatchSpecifier::PresentMatch(p)) => HeaderTest::Present(*p),
            // No specifier: the header must be present.
            None => HeaderTest::Present(true),
        };
        Ok(HeaderMatcher {
            name,
            test,
            invert: m.invert_match,
            missing_as_empty: m.treat_missing_header_as_empty,
        })
    }

    /// Envoy 1.40: a header that appears several times matches when any one of its
    /// values does; an absent header never matches a value test, inverted or not, unless
    /// `treat_missing_header_as_empty` makes it the empty string.
    pub fn matches(&self, headers: &HeaderMap, pseudo: &Pseudo<'_>) -> bool {
        let found: Vec<&[u8]> = match &self.name {
            HeaderKey::Name(n) => headers.get_all(n).iter().map(|v| v.as_bytes()).collect(),
            HeaderKey::Method => vec![pseudo.method.as_bytes()],
            HeaderKey::Path => vec![pseudo.path.as_bytes()],
            HeaderKey::Authority => vec![pseudo.authority.as_bytes()],
            HeaderKey::Scheme => vec![pseudo.scheme.as_bytes()],
        };
        let mut values = found.into_iter().peekable();
        if let HeaderTest::Present(want) = &self.test {
            return (values.peek().is_some() == *want) != self.invert;
        }
        if values.peek().is_none() {
            return self.missing_as_empty && (self.test_value("") != self.invert);
        }
        values.any(|v| {
            let v = String::from_utf8_lossy(v);
            self.test_value(&v) != self.invert
        })
    }

    fn test_value(&self, value: &str) -> bool {
        match &self.test {
            HeaderTest::Value(m) => m.matches(value),
            HeaderTest::Range { start, end } => {
                value.parse::<i64>().is_ok_and(|n| *start <= n && n < *end)
            }
            HeaderTest::Present(_) => true,
        }
    }
}

/// `envoy.config.route.v3.QueryParameterMatcher`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryMatcher {
    pub name: String,
    value: Option<StringMatcher>,
    present: bool,
}

impl QueryMatcher {
    pub fn new(m: &PbQueryMatcher, path: &FieldPath) -> Result<Self> {
        if m.name.is_empty() {
            return Err(ConvertError::new(&path.field("name"), "must not be empty"));
        }
        let (value, present) = match &m.query_parameter_match_specifier {
            Some(QueryParameterMatchSpecifier::StringMatch(s)) => (
                Some(StringMatcher::new(s, &path.field("string_match"))?),
                true,
            ),
            Some(QueryParameterMatchSpecifier::PresentMatch(p)) => (None, *p),
            None => (None, true),
        };
        Ok(QueryMatcher {
            name: m.name.clone(),
            value,
            present,
        })
    }

    /// `query` is the raw query string (after `?`, without the fragment).
    pub fn matches(&self, query: Option<&str>) -> bool {
        let found = first_param(query.unwrap_or(""), &self.name);
        match (&self.value, found) {
            (Some(m), Some(v)) => m.matches(v),
            (Some(_), None) => false,
            (None, found) => found.is_some() == self.present,
        }
    }
}

/// The first value of parameter `name` (`a=1&b&c=x`), compared as written: Envoy does not
/// percent-decode query parameters before matching.
pub fn first_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hm(yaml_spec: HeaderMatchSpecifier, invert: bool, missing_empty: bool) -> HeaderMatcher {
        HeaderMatcher::new(
            &PbHeaderMatcher {
                name: "X-Test".into(),
                header_match_specifier: Some(yaml_spec),
                invert_match: invert,
                treat_missing_header_as_empty: missing_empty,
            },
            &FieldPath::root(),
        )
        .expect("valid")
    }

    impl HeaderMatcher {
        fn matches_h(&self, h: &HeaderMap) -> bool {
            let p = Pseudo {
                method: "GET",
                path: "/",
                authority: "a",
                scheme: "http",
            };
            self.matches(h, &p)
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        h
    }

    #[test]
    fn repeated_headers_match_when_any_value_does() {
        let m = hm(HeaderMatchSpecifier::ExactMatch("yes".into()), false, false);
        assert!(m.matches_h(&headers(&[("x-test", "no"), ("x-test", "yes")])));
        assert!(!m.matches_h(&headers(&[("x-test", "yes,yes")])));
    }

    #[test]
    fn absent_headers_follow_invert_and_missing_as_empty() {
        let exact = |inv, empty| hm(HeaderMatchSpecifier::ExactMatch(String::new()), inv, empty);
        let none = headers(&[]);
        assert!(!exact(false, false).matches_h(&none));
        assert!(
            !exact(true, false).matches_h(&none),
            "absent never matches, even inverted"
        );
        assert!(exact(false, true).matches_h(&none));
        let absent = hm(HeaderMatchSpecifier::PresentMatch(false), false, false);
        assert!(absent.matches_h(&none));
        assert!(!absent.matches_h(&headers(&[("x-test", "1")])));
    }

    #[test]
    fn regexes_and_ranges_match_the_whole_value() {
        let re = hm(
            HeaderMatchSpecifier::SafeRegexMatch(RegexMatcher {
                regex: "\\d{3}".into(),
                ..Default::default()
            }),
            false,
            false,
        );
        assert!(re.matches_h(&headers(&[("x-test", "123")])));
        assert!(!re.matches_h(&headers(&[("x-test", "1234")])));
        let range = hm(
            HeaderMatchSpecifier::RangeMatch(envoy_types::pb::envoy::r#type::v3::Int64Range {
                start: -10,
                end: 0,
            }),
            false,
            false,
        );
        assert!(range.matches_h(&headers(&[("x-test", "-1")])));
        assert!(!range.matches_h(&headers(&[("x-test", "0")])));
    }

    #[test]
    fn query_parameters_use_the_first_raw_value() {
        let m = QueryMatcher::new(
            &PbQueryMatcher {
                name: "q".into(),
                query_parameter_match_specifier: Some(QueryParameterMatchSpecifier::StringMatch(
                    PbStringMatcher {
                        match_pattern: Some(MatchPattern::Exact("a%20b".into())),
                        ignore_case: false,
                    },
                )),
            },
            &FieldPath::root(),
        )
        .expect("valid");
        assert!(m.matches(Some("x=1&q=a%20b&q=zz")));
        assert!(!m.matches(Some("q=zz&q=a%20b")));
        assert!(!m.matches(None));
    }
}
