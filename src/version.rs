//! Build-time version facts shared by every applet.

/// The Talos release this build is compatible with (version contract and defaults).
pub const TALOS_VERSION: &str = "v1.7.0";

/// Our own package version.
pub const PKG_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The Kubernetes version Talos 1.7 defaults to.
pub const DEFAULT_KUBERNETES_VERSION: &str = "1.30.0";
