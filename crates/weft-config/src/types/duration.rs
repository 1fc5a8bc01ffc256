//! Istio durations: the Go `time.ParseDuration` syntax ("30s", "1h", "1.5s", "100ms",
//! "1h30m") that Istio's JSON decoding of `google.protobuf.Duration` accepts.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// A non-negative duration as written in Istio configuration.
///
/// Parsing follows Go's `time.ParseDuration`, which is what Istio's config decoding uses:
/// a sequence of decimal numbers, each with an optional fraction and a mandatory unit
/// (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`); a bare `0` is allowed. Negative values are
/// rejected here because every Istio duration field rejects them in validation anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub std::time::Duration);

/// Why a duration string did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("negative duration {0:?}: durations must be positive")]
    Negative(String),
    #[error(
        "invalid duration {0:?}: expected a number followed by a unit (ns, us, ms, s, m, h), e.g. \"30s\", \"1.5s\", \"100ms\", \"1h30m\""
    )]
    Syntax(String),
    #[error(
        "missing unit in duration {0:?}: write e.g. \"{0}s\" (valid units: ns, us, ms, s, m, h)"
    )]
    MissingUnit(String),
    #[error("unknown unit {unit:?} in duration {text:?} (valid units: ns, us, ms, s, m, h)")]
    UnknownUnit { text: String, unit: String },
    #[error("duration {0:?} is out of range")]
    Overflow(String),
}

const NANOS_PER: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

impl Duration {
    pub const fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }

    pub const fn from_secs(s: u64) -> Self {
        Duration(std::time::Duration::from_secs(s))
    }

    pub fn as_std(&self) -> std::time::Duration {
        self.0
    }

    /// Parses Go duration syntax.
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let s = text.trim();
        if s.is_empty() {
            return Err(DurationError::Empty);
        }
        let (neg, mut rest) = match s.as_bytes()[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        if rest == "0" {
            return Ok(Duration::default());
        }
        if rest.is_empty() {
            return Err(DurationError::Syntax(text.to_string()));
        }
        let mut total: u128 = 0;
        while !rest.is_empty() {
            let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let (int_part, after) = rest.split_at(int_len);
            let (frac_part, after) = match after.strip_prefix('.') {
                Some(f) => {
                    let n = f.bytes().take_while(u8::is_ascii_digit).count();
                    f.split_at(n)
                }
                None => ("", after),
            };
            if int_part.is_empty() && frac_part.is_empty() {
                return Err(DurationError::Syntax(text.to_string()));
            }
            let unit_len = after
                .char_indices()
                .find(|(_, c)| c.is_ascii_digit() || *c == '.')
                .map_or(after.len(), |(i, _)| i);
            let (unit, next) = after.split_at(unit_len);
            if unit.is_empty() {
                return Err(DurationError::MissingUnit(text.to_string()));
            }
            let Some(&(_, scale)) = NANOS_PER.iter().find(|(u, _)| *u == unit) else {
                return Err(DurationError::UnknownUnit {
                    text: text.to_string(),
                    unit: unit.to_string(),
                });
            };
            let overflow = || DurationError::Overflow(text.to_string());
            let whole: u128 = if int_part.is_empty() {
                0
            } else {
                int_part.parse().map_err(|_| overflow())?
            };
            let mut nanos = whole.checked_mul(scale).ok_or_else(overflow)?;
            // Go truncates fractional nanoseconds; keep enough digits to be exact at ns.
            let mut frac_scale = scale;
            for d in frac_part.bytes().take(30) {
                frac_scale /= 10;
                nanos += u128::from(d - b'0') * frac_scale;
            }
            total = total.checked_add(nanos).ok_or_else(overflow)?;
            rest = next;
        }
        if neg && total != 0 {
            return Err(DurationError::Negative(text.to_string()));
        }
        // Go's Duration is an int64 of nanoseconds.
        if total > i64::MAX as u128 {
            return Err(DurationError::Overflow(text.to_string()));
        }
        let secs = (total / 1_000_000_000) as u64;
        let sub = (total % 1_000_000_000) as u32;
        Ok(Duration(std::time::Duration::new(secs, sub)))
    }
}

impl fmt::Display for Duration {
    /// Formats as protobuf JSON does (`"30s"`, `"0.100s"`), which both Istio and Envoy read.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        let nanos = self.0.subsec_nanos();
        if nanos == 0 {
            write!(f, "{secs}s")
        } else if nanos.is_multiple_of(1_000_000) {
            write!(f, "{secs}.{:03}s", nanos / 1_000_000)
        } else if nanos.is_multiple_of(1_000) {
            write!(f, "{secs}.{:06}s", nanos / 1_000)
        } else {
            write!(f, "{secs}.{nanos:09}s")
        }
    }
}

impl std::str::FromStr for Duration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Duration::parse(s)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"30s\", \"1.5s\", \"100ms\" or \"1h\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                Duration::parse(v).map_err(E::custom)
            }
        }
        // The newtype name lets the schema explorer name this leaf type.
        d.deserialize_newtype_struct(crate::types::DURATION_TYPE, NewtypeStr(V))
    }
}

/// Adapts a string visitor so a newtype-struct wrapper can carry a leaf type's name.
struct NewtypeStr<V>(pub V);

impl<'de, V: Visitor<'de>> Visitor<'de> for NewtypeStr<V> {
    type Value = V::Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        d.deserialize_str(self.0)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<V::Value, E> {
        self.0.visit_str(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> u128 {
        Duration::parse(s).unwrap().0.as_millis()
    }

    #[test]
    fn go_syntax() {
        assert_eq!(ms("30s"), 30_000);
        assert_eq!(ms("1h"), 3_600_000);
        assert_eq!(ms("1.5s"), 1_500);
        assert_eq!(ms("100ms"), 100);
        assert_eq!(ms("1h30m"), 5_400_000);
        assert_eq!(ms("0"), 0);
        assert_eq!(ms(".5s"), 500);
        assert_eq!(ms("7200s"), 7_200_000);
        assert_eq!(Duration::parse("1us").unwrap().0.as_nanos(), 1_000);
        assert_eq!(Duration::parse("1µs").unwrap().0.as_nanos(), 1_000);
    }

    #[test]
    fn rejects_what_go_rejects() {
        assert_eq!(Duration::parse(""), Err(DurationError::Empty));
        assert!(matches!(
            Duration::parse("30"),
            Err(DurationError::MissingUnit(_))
        ));
        assert!(matches!(
            Duration::parse("5 s"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            Duration::parse("1d"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            Duration::parse("-1s"),
            Err(DurationError::Negative(_))
        ));
        assert!(matches!(
            Duration::parse("s"),
            Err(DurationError::Syntax(_))
        ));
        assert!(matches!(
            Duration::parse("."),
            Err(DurationError::Syntax(_))
        ));
        assert!(matches!(
            Duration::parse("3000000h"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn display_round_trips() {
        for s in ["30s", "1.5s", "100ms", "1h", "1ns", "2.000001s"] {
            let d = Duration::parse(s).unwrap();
            assert_eq!(Duration::parse(&d.to_string()).unwrap(), d, "{s} -> {d}");
        }
        assert_eq!(Duration::parse("100ms").unwrap().to_string(), "0.100s");
    }
}
