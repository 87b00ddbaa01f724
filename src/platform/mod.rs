//! Platforms: where a node runs and where its machine config comes from.
//!
//! | platform | mode | config source |
//! |---|---|---|
//! | [`container`] | container | the `USERDATA` environment variable (base64) |
//! | [`metal`] | metal | the `talos.config=` kernel argument (an `http://` URL with `${uuid}`-style variables) |
//!
//! The platform is chosen from the `PLATFORM` environment variable (set by container
//! provisioners), else from `talos.platform=` on the kernel command line, else `metal`
//! ([`detect`]). A platform without a config source returns `Ok(None)` from
//! [`Platform::configuration`], and the node goes into maintenance mode.

pub mod cmdline;
pub mod container;
pub mod http;
pub mod metal;

use std::future::Future;
use std::pin::Pin;

pub use cmdline::Cmdline;

use crate::config::Mode;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Errors getting the machine config from a platform.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The platform name is not one this build implements.
    #[error("platform {0:?} is not supported by this build (supported: container, metal)")]
    Unsupported(String),
    /// The config source holds something that cannot be decoded.
    #[error("{what} is not valid base64")]
    Decode {
        /// Which source, e.g. `the USERDATA environment variable`.
        what: String,
        /// The decoding error.
        source: base64::DecodeError,
    },
    /// The `talos.config=` value cannot be used.
    #[error("talos.config={value:?}: {reason}")]
    BadSource {
        /// The kernel argument value.
        value: String,
        /// Why, and what is supported.
        reason: String,
    },
    /// Downloading failed on every attempt until the time limit.
    #[error("failed to download config from {url:?} after {attempts} attempt(s): {last}")]
    Fetch {
        /// The URL (after variable substitution).
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last error.
        last: http::FetchError,
    },
}

/// A platform: its name, mode and config source.
pub trait Platform: Send + Sync {
    /// Talos's platform name (`container`, `metal`, ...).
    fn name(&self) -> &str;
    /// The runtime mode.
    fn mode(&self) -> Mode;
    /// The machine config this platform provides, `None` if it has no source (then the node
    /// waits in maintenance mode). May retry for a long time (metal downloads).
    fn configuration(&self) -> BoxFuture<'_, Result<Option<Vec<u8>>, PlatformError>>;
    /// Whether asking again can give a different config (a server can be fixed; an
    /// environment variable cannot): an invalid config is then fetched again with back-off.
    fn config_may_change(&self) -> bool {
        false
    }
}

/// The platform name: `PLATFORM` from the environment (container provisioners set it), else
/// `talos.platform=` from the kernel command line, else `metal`.
pub fn detect(env_platform: Option<&str>, cmdline: &Cmdline) -> String {
    if let Some(p) = env_platform.map(str::trim).filter(|p| !p.is_empty()) {
        return p.to_string();
    }
    cmdline
        .get("talos.platform")
        .filter(|p| !p.is_empty())
        .unwrap_or("metal")
        .to_string()
}

/// Builds the named platform. `userdata` is the `USERDATA` environment variable (container).
pub fn from_name(
    name: &str,
    cmdline: Cmdline,
    userdata: Option<String>,
) -> Result<Box<dyn Platform>, PlatformError> {
    match name {
        "container" => Ok(Box::new(container::Container::new(userdata))),
        "metal" => Ok(Box::new(metal::Metal::new(cmdline))),
        other => Err(PlatformError::Unsupported(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_detection_order() {
        let cmdline = Cmdline::parse("console=ttyS0 talos.platform=metal");
        assert_eq!(detect(Some("container"), &cmdline), "container");
        assert_eq!(detect(None, &cmdline), "metal");
        assert_eq!(
            detect(Some(" "), &Cmdline::parse("talos.platform=aws")),
            "aws"
        );
        assert_eq!(detect(None, &Cmdline::parse("")), "metal");
    }

    #[test]
    fn known_platforms_only() {
        let p = from_name("container", Cmdline::default(), None).expect("container");
        assert_eq!((p.name(), p.mode()), ("container", Mode::Container));
        let p = from_name("metal", Cmdline::default(), None).expect("metal");
        assert_eq!((p.name(), p.mode()), ("metal", Mode::Metal));
        let err = from_name("aws", Cmdline::default(), None)
            .err()
            .expect("unsupported");
        assert!(err.to_string().contains("\"aws\""), "{err}");
    }
}
