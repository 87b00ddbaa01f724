//! Go's `time.Duration` in text: the one place that parses durations (Go's `time.ParseDuration`
//! grammar) and prints them (Go's `Duration.String()`), for config fields, flags and output.
//!
//! The grammar is a possibly signed sequence of decimal numbers, each with an optional fraction
//! and a unit suffix: `300ms`, `1.5h`, `2h45m`, `+5s`. Units are `ns`, `us` (or `µs`, `μs`), `ms`,
//! `s`, `m` and `h`; a lone `0` needs no unit. [`GoDuration`] holds a [`std::time::Duration`], so a
//! negative value other than zero is refused ([`DurationError::Negative`]); a caller printing
//! a signed difference writes the `-` itself, as Go does.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration read and written the way Go's `time.Duration` is (`1m0s`, `8760h0m0s`, `1.5s`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration(pub Duration);

/// Why a duration does not parse. The texts are Go's (`time: ...`) except for
/// [`DurationError::Negative`], which Go would accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not Go duration syntax, or out of Go's range (about 292 years).
    #[error("time: invalid duration {}", quote(.0))]
    Invalid(String),
    /// A number without a unit (`10`).
    #[error("time: missing unit in duration {}", quote(.0))]
    MissingUnit(String),
    /// A unit Go does not know (`5d`).
    #[error("time: unknown unit {} in duration {}", quote(.unit), quote(.text))]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole input.
        text: String,
    },
    /// A negative duration where only zero or more makes sense.
    #[error("negative duration {} is not allowed", quote(.0))]
    Negative(String),
}

const NANOSECOND: u64 = 1;
const MICROSECOND: u64 = 1_000 * NANOSECOND;
const MILLISECOND: u64 = 1_000 * MICROSECOND;
const SECOND: u64 = 1_000 * MILLISECOND;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;

/// `1 << 63`: the magnitude of Go's most negative duration.
const LIMIT: u64 = 1 << 63;

impl GoDuration {
    /// A duration of `secs` whole seconds.
    pub const fn from_secs(secs: u64) -> GoDuration {
        GoDuration(Duration::from_secs(secs))
    }

    /// True for a zero duration (Go's `omitempty`).
    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// Parses Go's `time.ParseDuration` syntax; a negative value other than zero is refused.
    pub fn parse(text: &str) -> Result<GoDuration, DurationError> {
        let (negative, nanos) = parse_go(text)?;
        if negative && nanos != 0 {
            return Err(DurationError::Negative(text.to_string()));
        }
        Ok(GoDuration(Duration::from_nanos(nanos)))
    }
}

/// [`GoDuration::parse`] as a [`std::time::Duration`]: the `value_parser` of duration flags.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    GoDuration::parse(text).map(|d| d.0)
}

/// Go's syntax, or a bare count of whole seconds (`30`), with surrounding blanks ignored: what
/// apid's own flags have always accepted.
pub fn parse_duration_or_seconds(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    match text.parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => parse_duration(text),
    }
}

/// Go's `Duration.String()` of a signed whole number of seconds (`-5s`, `1h2m3s`): Go writes the
/// magnitude after a `-`.
pub fn signed_seconds(secs: i64) -> String {
    let magnitude = GoDuration::from_secs(secs.unsigned_abs());
    if secs < 0 {
        format!("-{magnitude}")
    } else {
        magnitude.to_string()
    }
}

impl From<Duration> for GoDuration {
    fn from(d: Duration) -> GoDuration {
        GoDuration(d)
    }
}

impl From<GoDuration> for Duration {
    fn from(d: GoDuration) -> Duration {
        d.0
    }
}

impl FromStr for GoDuration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<GoDuration, DurationError> {
        GoDuration::parse(text)
    }
}

/// Go's `time.ParseDuration`: the sign and the magnitude in nanoseconds (at most `1 << 63`
/// when negative, `i64::MAX` otherwise).
fn parse_go(text: &str) -> Result<(bool, u64), DurationError> {
    let invalid = || DurationError::Invalid(text.to_string());
    let mut s = text;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok((negative, 0));
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        let (nanos, rest) = parse_term(s, text)?;
        total = total
            .checked_add(nanos)
            .filter(|t| *t <= LIMIT)
            .ok_or_else(invalid)?;
        s = rest;
    }
    if !negative && total > LIMIT - 1 {
        return Err(invalid());
    }
    Ok((negative, total))
}

/// One `<number>[.<fraction>]<unit>` term at the start of `s`: its nanoseconds and the rest.
fn parse_term<'a>(s: &'a str, text: &str) -> Result<(u64, &'a str), DurationError> {
    let invalid = || DurationError::Invalid(text.to_string());
    if !s.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
        return Err(invalid());
    }
    let (whole, rest) = leading_int(s).ok_or_else(invalid)?;
    let has_whole = rest.len() != s.len();
    let (mut fraction, mut scale, mut has_fraction, mut rest) = (0, 1.0, false, rest);
    if let Some(after_dot) = rest.strip_prefix('.') {
        let (f, sc, after) = leading_fraction(after_dot);
        has_fraction = after.len() != after_dot.len();
        (fraction, scale, rest) = (f, sc, after);
    }
    if !has_whole && !has_fraction {
        return Err(invalid());
    }
    let unit_len = rest
        .find(|c: char| c == '.' || c.is_ascii_digit())
        .unwrap_or(rest.len());
    if unit_len == 0 {
        return Err(DurationError::MissingUnit(text.to_string()));
    }
    let (unit_text, rest) = rest.split_at(unit_len);
    let unit = match unit_text {
        "ns" => NANOSECOND,
        "us" | "\u{b5}s" | "\u{3bc}s" => MICROSECOND,
        "ms" => MILLISECOND,
        "s" => SECOND,
        "m" => MINUTE,
        "h" => HOUR,
        _ => {
            return Err(DurationError::UnknownUnit {
                unit: unit_text.to_string(),
                text: text.to_string(),
            })
        }
    };
    if whole > LIMIT / unit {
        return Err(invalid());
    }
    let mut nanos = whole * unit;
    if fraction > 0 {
        // Go scales the fraction in floating point and truncates; so do we, to the nanosecond.
        nanos += (fraction as f64 * (unit as f64 / scale)) as u64;
        if nanos > LIMIT {
            return Err(invalid());
        }
    }
    Ok((nanos, rest))
}

/// The leading decimal digits of `s` and the rest; `None` if the number passes `1 << 63`.
fn leading_int(s: &str) -> Option<(u64, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let mut x: u64 = 0;
    for b in s[..end].bytes() {
        if x > LIMIT / 10 {
            return None;
        }
        x = x * 10 + u64::from(b - b'0');
        if x > LIMIT {
            return None;
        }
    }
    Some((x, &s[end..]))
}

/// The leading digits of a fraction: their value (digits past `u64` precision are read but
/// dropped), the power of ten they are scaled by, and the rest.
fn leading_fraction(s: &str) -> (u64, f64, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (mut x, mut scale, mut overflow) = (0u64, 1.0f64, false);
    for b in s[..end].bytes() {
        if overflow {
            continue;
        }
        if x > (LIMIT - 1) / 10 {
            overflow = true;
            continue;
        }
        let y = x * 10 + u64::from(b - b'0');
        if y > LIMIT {
            overflow = true;
            continue;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale, &s[end..])
}

/// Go's `time` package quoting in messages: double quotes, `"` and `\` escaped, and bytes of
/// control or non-ASCII characters as `\xNN`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c.is_ascii() && c >= ' ' {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
    }
    out.push('"');
    out
}

impl fmt::Display for GoDuration {
    /// Go's `Duration.String()`: `0s`, `1.5µs`, `300ms`, `1m30s`, `8760h0m0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.as_nanos();
        // Below one second Go uses the largest unit that keeps the integer part non-zero.
        let (unit, suffix) = match n {
            0 => return f.write_str("0s"),
            n if n < u128::from(MICROSECOND) => (1, "ns"),
            n if n < u128::from(MILLISECOND) => (u128::from(MICROSECOND), "\u{b5}s"),
            n if n < u128::from(SECOND) => (u128::from(MILLISECOND), "ms"),
            _ => {
                let second = u128::from(SECOND);
                let secs = n / second;
                let (hours, minutes) = (secs / 3600, secs / 60 % 60);
                if hours > 0 {
                    write!(f, "{hours}h")?;
                }
                if secs >= 60 {
                    write!(f, "{minutes}m")?;
                }
                return write!(f, "{}s", decimal(secs % 60, n % second, second));
            }
        };
        write!(f, "{}{suffix}", decimal(n / unit, n % unit, unit))
    }
}

/// `whole.fraction` with the fraction (of `unit`) written without trailing zeros, and without a
/// decimal point when it is zero.
fn decimal(whole: u128, fraction: u128, unit: u128) -> String {
    if fraction == 0 {
        return whole.to_string();
    }
    let width = unit.to_string().len() - 1;
    let digits = format!("{fraction:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = GoDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"30s\", \"5m\" or \"8760h\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<GoDuration, E> {
                GoDuration::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(n: u64) -> GoDuration {
        GoDuration(Duration::from_nanos(n))
    }

    /// Go's `Duration.String()` outputs for known values.
    #[test]
    fn prints_like_go() {
        for (n, want) in [
            (0, "0s"),
            (1, "1ns"),
            (999, "999ns"),
            (1_100, "1.1\u{b5}s"),
            (2_200 * MICROSECOND, "2.2ms"),
            (3_300 * MILLISECOND, "3.3s"),
            (4 * MINUTE + 5 * SECOND, "4m5s"),
            (4 * MINUTE + 5_001 * MILLISECOND, "4m5.001s"),
            (5 * HOUR + 6 * MINUTE + 7_001 * MILLISECOND, "5h6m7.001s"),
            (8 * MINUTE + 1, "8m0.000000001s"),
            (HOUR, "1h0m0s"),
            (8760 * HOUR, "8760h0m0s"),
            (90 * SECOND, "1m30s"),
            (500 * MILLISECOND, "500ms"),
            (HOUR + 2 * MINUTE + 3_500 * MILLISECOND, "1h2m3.5s"),
            (i64::MAX as u64, "2562047h47m16.854775807s"),
        ] {
            assert_eq!(nanos(n).to_string(), want, "{n}ns");
        }
    }

    /// Go's `time.ParseDuration` results for known inputs.
    #[test]
    fn parses_like_go() {
        for (text, want) in [
            ("0", 0),
            ("5s", 5 * SECOND),
            ("30s", 30 * SECOND),
            ("1478s", 1478 * SECOND),
            ("+5s", 5 * SECOND),
            ("-0", 0),
            ("+0", 0),
            ("-0s", 0),
            ("5.0s", 5 * SECOND),
            ("5.6s", 5 * SECOND + 600 * MILLISECOND),
            ("5.s", 5 * SECOND),
            (".5s", 500 * MILLISECOND),
            ("1.0s", SECOND),
            ("1.00s", SECOND),
            ("1.004s", SECOND + 4 * MILLISECOND),
            ("1.0040s", SECOND + 4 * MILLISECOND),
            ("100.00100s", 100 * SECOND + MILLISECOND),
            ("10ns", 10),
            ("11us", 11 * MICROSECOND),
            ("12\u{b5}s", 12 * MICROSECOND),
            ("12\u{3bc}s", 12 * MICROSECOND),
            ("13ms", 13 * MILLISECOND),
            ("14s", 14 * SECOND),
            ("15m", 15 * MINUTE),
            ("16h", 16 * HOUR),
            ("3h30m", 3 * HOUR + 30 * MINUTE),
            ("10.5s4m", 4 * MINUTE + 10 * SECOND + 500 * MILLISECOND),
            (
                "1h2m3s4ms5us6ns",
                HOUR + 2 * MINUTE + 3 * SECOND + 4 * MILLISECOND + 5_006,
            ),
            (
                "39h9m14.425s",
                39 * HOUR + 9 * MINUTE + 14 * SECOND + 425 * MILLISECOND,
            ),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * MINUTE),
            ("9007199254740993ns", (1 << 53) + 1),
            ("9223372036854775807ns", i64::MAX as u64),
            ("9223372036854775.807us", i64::MAX as u64),
            ("9223372036854ms775us807ns", i64::MAX as u64),
            ("0.100000000000000000000h", 6 * MINUTE),
            (
                "0.830103483285477580700h",
                49 * MINUTE + 48 * SECOND + 372_539_827,
            ),
        ] {
            assert_eq!(GoDuration::parse(text), Ok(nanos(want)), "{text}");
        }
    }

    #[test]
    fn refuses_what_go_refuses() {
        for text in [
            "",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "\u{85}\u{85}",
            "9223372036854775808ns",
            "9223372036854775.808us",
            "9223372036854ms775us808ns",
            "3000000h",
        ] {
            assert_eq!(
                GoDuration::parse(text),
                Err(DurationError::Invalid(text.to_string())),
                "{text:?}"
            );
        }
        assert_eq!(
            GoDuration::parse("3").unwrap_err().to_string(),
            "time: missing unit in duration \"3\""
        );
        assert_eq!(
            GoDuration::parse("10"),
            Err(DurationError::MissingUnit("10".to_string()))
        );
        assert_eq!(
            GoDuration::parse("1d").unwrap_err().to_string(),
            "time: unknown unit \"d\" in duration \"1d\""
        );
        assert_eq!(
            GoDuration::parse("1.5.s"),
            Err(DurationError::MissingUnit("1.5.s".to_string()))
        );
        assert_eq!(
            GoDuration::parse("x").unwrap_err().to_string(),
            "time: invalid duration \"x\""
        );
        assert_eq!(
            GoDuration::parse("1\u{e9}").unwrap_err().to_string(),
            "time: unknown unit \"\\xc3\\xa9\" in duration \"1\\xc3\\xa9\""
        );
    }

    #[test]
    fn negative_values_are_refused() {
        assert_eq!(
            GoDuration::parse("-1s").unwrap_err().to_string(),
            "negative duration \"-1s\" is not allowed"
        );
        assert!(GoDuration::parse("-9223372036854775808ns").is_err());
    }

    /// Every printed value parses back to itself, and Go's canonical texts print unchanged.
    #[test]
    fn round_trip() {
        for text in [
            "0s",
            "1ns",
            "1.1\u{b5}s",
            "2.2ms",
            "3.3s",
            "4m5s",
            "4m5.001s",
            "5h6m7.001s",
            "8m0.000000001s",
            "1m0s",
            "8760h0m0s",
            "2562047h47m16.854775807s",
        ] {
            let d: GoDuration = text.parse().expect(text);
            assert_eq!(d.to_string(), text);
        }
        for n in [
            1,
            999,
            1_000,
            1_234_567,
            SECOND - 1,
            SECOND,
            61 * SECOND + 1,
            3 * HOUR + 7,
        ] {
            let d = nanos(n);
            assert_eq!(d.to_string().parse::<GoDuration>(), Ok(d), "{n}");
        }
        for (text, printed) in [
            ("0", "0s"),
            ("8760h", "8760h0m0s"),
            ("1m", "1m0s"),
            ("90s", "1m30s"),
            ("1.5s", "1.5s"),
            ("300ms", "300ms"),
            ("1h30m", "1h30m0s"),
            ("10s", "10s"),
            ("2us", "2\u{b5}s"),
        ] {
            assert_eq!(GoDuration::parse(text).expect(text).to_string(), printed);
        }
    }

    #[test]
    fn seconds_or_go() {
        assert_eq!(parse_duration_or_seconds("7"), Ok(Duration::from_secs(7)));
        assert_eq!(
            parse_duration_or_seconds(" 30s "),
            Ok(Duration::from_secs(30))
        );
        assert!(parse_duration_or_seconds("").is_err());
        assert!(parse_duration_or_seconds("5x").is_err());
        assert!(parse_duration("7").is_err());
    }

    #[test]
    fn signed_whole_seconds() {
        assert_eq!(signed_seconds(0), "0s");
        assert_eq!(signed_seconds(42), "42s");
        assert_eq!(signed_seconds(300), "5m0s");
        assert_eq!(signed_seconds(3723), "1h2m3s");
        assert_eq!(signed_seconds(-5), "-5s");
        assert_eq!(signed_seconds(i64::MIN), "-2562047788015215h30m8s");
    }

    #[test]
    fn serde_as_text() {
        let d: GoDuration = serde_yaml::from_str("2m").expect("duration");
        assert_eq!(d, nanos(2 * MINUTE));
        assert_eq!(serde_yaml::to_string(&d).expect("yaml"), "2m0s\n");
        let e = serde_yaml::from_str::<GoDuration>("10")
            .unwrap_err()
            .to_string();
        assert!(e.contains("time: missing unit in duration \"10\""), "{e}");
        let e = serde_yaml::from_str::<GoDuration>("[1]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected a duration such as"), "{e}");
    }
}
