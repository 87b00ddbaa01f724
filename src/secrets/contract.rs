//! The version contract: which Talos release a config or secrets bundle is generated for
//! (`--talos-version`). Several generation defaults are gated on it.

use std::fmt;
use std::str::FromStr;

/// A Talos `major.minor` version that generation stays compatible with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VersionContract {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

/// A `--talos-version` value that is not a version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("error parsing version {0:?}: expected vMAJOR.MINOR, e.g. v1.7 or v1.7.0")]
pub struct ContractParseError(pub String);

impl VersionContract {
    /// The contract of this build (Talos 1.7).
    pub const CURRENT: Self = Self::new(1, 7);
    /// Talos 1.6.
    pub const V1_6: Self = Self::new(1, 6);
    /// Talos 1.5.
    pub const V1_5: Self = Self::new(1, 5);
    /// Talos 1.4.
    pub const V1_4: Self = Self::new(1, 4);
    /// Talos 1.3.
    pub const V1_3: Self = Self::new(1, 3);
    /// Talos 1.2.
    pub const V1_2: Self = Self::new(1, 2);
    /// Talos 1.1.
    pub const V1_1: Self = Self::new(1, 1);
    /// Talos 1.0.
    pub const V1_0: Self = Self::new(1, 0);
    /// Talos 0.14.
    pub const V0_14: Self = Self::new(0, 14);
    /// Talos 0.13.
    pub const V0_13: Self = Self::new(0, 13);
    /// Talos 0.12.
    pub const V0_12: Self = Self::new(0, 12);
    /// Talos 0.10.
    pub const V0_10: Self = Self::new(0, 10);
    /// Talos 0.8.
    pub const V0_8: Self = Self::new(0, 8);

    /// A contract for `major.minor`.
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }

    /// Parses `v1.7`, `1.7`, `v1.7.0`, `v1.7.0-beta.1`: `v` is optional, the minor version must
    /// be followed by the end or a dot.
    pub fn parse(s: &str) -> Result<Self, ContractParseError> {
        let err = || ContractParseError(s.to_string());
        let rest = s.strip_prefix('v').unwrap_or(s);
        let (major, rest) = rest.split_once('.').ok_or_else(err)?;
        let (minor, tail) = match rest.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if !(tail.is_empty() || tail.starts_with('.')) {
            return Err(err());
        }
        let num = |t: &str| {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            t.parse::<u32>().map_err(|_| err())
        };
        Ok(Self::new(num(major)?, num(minor)?))
    }

    /// Whether this contract is newer than `other`.
    pub fn greater(self, other: Self) -> bool {
        self > other
    }

    /// ECDSA (not RSA) for the etcd and Kubernetes CAs.
    pub fn supports_ecdsa_keys(self) -> bool {
        self.greater(Self::V0_8)
    }

    /// The aggregator (front-proxy) CA exists.
    pub fn supports_aggregator_ca(self) -> bool {
        self.greater(Self::V0_8)
    }

    /// The service-account key exists.
    pub fn supports_service_account(self) -> bool {
        self.greater(Self::V0_8)
    }

    /// ECDSA CAs sign with SHA-256 (SHA-512 before).
    pub fn supports_ecdsa_sha256(self) -> bool {
        self.greater(Self::V0_12)
    }

    /// Secretbox encryption secret (AES-CBC before).
    pub fn secretbox_encryption_supported(self) -> bool {
        self.greater(Self::V1_2)
    }

    /// RSA-4096 service-account key (ECDSA P-256 before).
    pub fn use_rsa_service_account_key(self) -> bool {
        self.greater(Self::V1_6)
    }
}

impl Default for VersionContract {
    fn default() -> Self {
        Self::CURRENT
    }
}

impl FromStr for VersionContract {
    type Err = ContractParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for VersionContract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_accepted_spellings() {
        for s in ["v1.7", "1.7", "v1.7.0", "v1.7.0-beta.1", "1.7.3"] {
            assert_eq!(
                VersionContract::parse(s).unwrap(),
                VersionContract::new(1, 7),
                "{s}"
            );
        }
        assert_eq!(
            VersionContract::parse("v0.14").unwrap(),
            VersionContract::V0_14
        );
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "v",
            "v1",
            "1.",
            "v1.x",
            "v1.7-alpha",
            "latest",
            "v-1.7",
            "v1..7",
        ] {
            let err = VersionContract::parse(s).unwrap_err();
            assert!(err.to_string().contains("error parsing version"), "{s}");
        }
    }

    #[test]
    fn compares_numerically() {
        let v = |s| VersionContract::parse(s).unwrap();
        assert!(v("v1.10").greater(v("v1.9")));
        assert!(v("v1.0").greater(v("v0.14")));
        assert!(!v("v1.7").greater(v("v1.7")));
        assert!(VersionContract::CURRENT.use_rsa_service_account_key());
        assert!(!v("v1.6").use_rsa_service_account_key());
        assert!(!v("v1.2").secretbox_encryption_supported());
        assert!(!v("v0.8").supports_aggregator_ca());
        assert_eq!(v("1.6").to_string(), "v1.6");
    }
}
