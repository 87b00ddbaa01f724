//! The runtime mode: how a node runs. One type for the mode of the platform a node boots on
//! ([`crate::platform::Platform::mode`]), the machine config validation mode
//! (`talosctl validate --mode`) and what `Version` reports, as Talos's `runtime.Mode` is all
//! three. It lives with the config model because validation needs it on the workstation too.

use std::fmt;
use std::str::FromStr;

/// How the node runs (Talos's runtime mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// PID 1 of a set of namespaces, started by a provisioner: the host owns the kernel,
    /// disks, clock and power.
    Container,
    /// A physical or virtual machine booted from our image: an install target is required.
    Metal,
    /// A cloud instance: the image is pre-installed (metadata-service platforms; none
    /// implemented yet).
    Cloud,
}

/// A mode name that is none of `container`, `metal`, `cloud`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown runtime mode: {0:?} (expected one of: metal, cloud, container)")]
pub struct UnknownMode(pub String);

impl Mode {
    /// `container`, `metal` or `cloud`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Container => "container",
            Mode::Metal => "metal",
            Mode::Cloud => "cloud",
        }
    }

    /// Parses `metal`, `cloud` or `container` (case-insensitive).
    pub fn parse(s: &str) -> Option<Mode> {
        [Mode::Metal, Mode::Cloud, Mode::Container]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
    }

    /// Whether the machine config must say where to install (metal).
    pub fn requires_install(self) -> bool {
        self == Mode::Metal
    }

    /// Whether the node is a container: the host owns the kernel (arguments, modules,
    /// sysctls), the disks, the clock, the network set-up and power.
    pub fn in_container(self) -> bool {
        self == Mode::Container
    }
}

impl FromStr for Mode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::parse(s).ok_or_else(|| UnknownMode(s.to_string()))
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_mode() {
        for mode in [Mode::Container, Mode::Metal, Mode::Cloud] {
            assert_eq!(mode.to_string().parse::<Mode>(), Ok(mode));
            assert_eq!(Mode::parse(&mode.as_str().to_uppercase()), Some(mode));
        }
        assert_eq!(Mode::parse("Metal"), Some(Mode::Metal));
        let err = "aws".parse::<Mode>().expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "unknown runtime mode: \"aws\" (expected one of: metal, cloud, container)"
        );
        assert_eq!(Mode::parse(""), None);
    }

    #[test]
    fn what_each_mode_implies() {
        assert!(Mode::Metal.requires_install());
        assert!(!Mode::Cloud.requires_install() && !Mode::Container.requires_install());
        assert!(Mode::Container.in_container());
        assert!(!Mode::Metal.in_container() && !Mode::Cloud.in_container());
    }
}
