//! Small value types with Talos's own YAML encoding: human-readable disk sizes, octal file modes
//! and port ranges (Go durations are [`crate::duration::GoDuration`]).

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::yaml::PLAIN_TAG;

/// A disk size in bytes, written human-readable (`10 GB`) when that is exact, else as a number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DiskSize(pub u64);

impl DiskSize {
    /// True for zero (Go's `omitempty`).
    pub fn is_zero(&self) -> bool {
        self.0 == 0
    }

    /// The SI short form Talos prints (go-humanize `Bytes`).
    pub fn humanize(bytes: u64) -> String {
        const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
        if bytes < 10 {
            return format!("{bytes} B");
        }
        let e = ((bytes as f64).ln() / 1000f64.ln()).floor() as usize;
        let e = e.min(UNITS.len() - 1);
        let val = (bytes as f64 / 1000f64.powi(e as i32) * 10.0 + 0.5).floor() / 10.0;
        if val < 10.0 {
            format!("{val:.1} {}", UNITS[e])
        } else {
            format!("{val:.0} {}", UNITS[e])
        }
    }

    /// Parses sizes such as `4GB`, `1.5 TiB`, `100` (go-humanize `ParseBytes`).
    pub fn parse(text: &str) -> Result<u64, String> {
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let num: f64 = num
            .replace(',', "")
            .parse()
            .map_err(|_| format!("invalid size {text:?}"))?;
        let unit = unit.trim().to_ascii_lowercase();
        let mult: f64 = match unit.as_str() {
            "" | "b" => 1.0,
            "k" | "kb" => 1e3,
            "ki" | "kib" => 1024.0,
            "m" | "mb" => 1e6,
            "mi" | "mib" => 1024f64.powi(2),
            "g" | "gb" => 1e9,
            "gi" | "gib" => 1024f64.powi(3),
            "t" | "tb" => 1e12,
            "ti" | "tib" => 1024f64.powi(4),
            "p" | "pb" => 1e15,
            "pi" | "pib" => 1024f64.powi(5),
            "e" | "eb" => 1e18,
            "ei" | "eib" => 1024f64.powi(6),
            _ => return Err(format!("unknown size unit {unit:?} in {text:?}")),
        };
        let v = num * mult;
        if !v.is_finite() || v >= u64::MAX as f64 {
            return Err(format!("size {text:?} is too large"));
        }
        Ok(v as u64)
    }
}

impl Serialize for DiskSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 % 1000 == 0 {
            let text = DiskSize::humanize(self.0);
            if DiskSize::parse(&text) == Ok(self.0) {
                return s.serialize_str(&text);
            }
        }
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for DiskSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DiskSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size in bytes or a string such as \"4GB\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DiskSize, E> {
                Ok(DiskSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DiskSize, E> {
                u64::try_from(v)
                    .map(DiskSize)
                    .map_err(|_| E::custom("size must not be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DiskSize, E> {
                DiskSize::parse(v).map(DiskSize).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Unix permission bits, written in Go octal notation (`0o644`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FileMode(pub u32);

impl fmt::Display for FileMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0o{:o}", self.0)
    }
}

impl Serialize for FileMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The Talos emitter writes this marker variant as a bare scalar (an integer literal).
        s.serialize_newtype_variant("FileMode", 0, PLAIN_TAG, &self.to_string())
    }
}

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FileMode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("file permissions such as 0o644")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FileMode, E> {
                u32::try_from(v)
                    .map(FileMode)
                    .map_err(|_| E::custom("file mode out of range"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FileMode, E> {
                u32::try_from(v)
                    .map(FileMode)
                    .map_err(|_| E::custom("file mode out of range"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FileMode, E> {
                let digits = v
                    .strip_prefix("0o")
                    .or_else(|| v.strip_prefix('0'))
                    .unwrap_or(v);
                let digits = if digits.is_empty() { "0" } else { digits };
                u32::from_str_radix(digits, 8)
                    .map(FileMode)
                    .map_err(|_| E::custom(format!("invalid file mode {v:?}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A port or an inclusive port range (`80` or `"8000-9000"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// First port.
    pub lo: u16,
    /// Last port (equal to `lo` for a single port).
    pub hi: u16,
}

impl Serialize for PortRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.lo == self.hi {
            s.serialize_u16(self.lo)
        } else {
            s.serialize_str(&format!("{}-{}", self.lo, self.hi))
        }
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PortRange;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number or a range such as \"8000-9000\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortRange, E> {
                let p =
                    u16::try_from(v).map_err(|_| E::custom(format!("port {v} out of range")))?;
                Ok(PortRange { lo: p, hi: p })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortRange, E> {
                let p =
                    u16::try_from(v).map_err(|_| E::custom(format!("port {v} out of range")))?;
                Ok(PortRange { lo: p, hi: p })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortRange, E> {
                let parse = |t: &str| {
                    t.trim()
                        .parse::<u16>()
                        .map_err(|_| E::custom(format!("invalid port range {v:?}")))
                };
                match v.split_once('-') {
                    Some((a, b)) => {
                        let (lo, hi) = (parse(a)?, parse(b)?);
                        if lo > hi {
                            return Err(E::custom(format!(
                                "invalid port range {v:?}: start after end"
                            )));
                        }
                        Ok(PortRange { lo, hi })
                    }
                    None => {
                        let p = parse(v)?;
                        Ok(PortRange { lo: p, hi: p })
                    }
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_sizes() {
        assert_eq!(DiskSize::humanize(100_000_000_000), "100 GB");
        assert_eq!(DiskSize::humanize(1_500_000_000), "1.5 GB");
        assert_eq!(DiskSize::parse("4GB"), Ok(4_000_000_000));
        assert_eq!(DiskSize::parse("1 GiB"), Ok(1 << 30));
        assert_eq!(DiskSize::parse("512"), Ok(512));
        let v = serde_yaml::to_value(DiskSize(1 << 30)).expect("ser");
        assert_eq!(v, serde_yaml::Value::from(1u64 << 30));
    }
}
