//! Build-time version facts shared by every applet: the one place machined's Version RPC and
//! `talosctl version` take them from.

use crate::api::machine::VersionInfo;

/// The Talos release this build is compatible with (version contract and defaults).
pub const TALOS_VERSION: &str = "v1.7.0";

/// Our own package version.
pub const PKG_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The Kubernetes version Talos 1.7 defaults to.
pub const DEFAULT_KUBERNETES_VERSION: &str = "1.30.0";

/// The commit this was built from (`TALOS_GIT_SHA` at build time), or empty.
pub const GIT_SHA: &str = match option_env!("TALOS_GIT_SHA") {
    Some(sha) => sha,
    None => "",
};

/// `GOARCH` naming of the architecture this was built for, as Talos reports it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// The version facts of this build in the API's shape: tag, commit, no build time, our package
/// version where Talos gives its Go version, and OS/architecture.
pub fn version_info() -> VersionInfo {
    VersionInfo {
        tag: TALOS_VERSION.into(),
        sha: GIT_SHA.into(),
        built: String::new(),
        go_version: format!("talos-rs {PKG_VERSION}"),
        os: std::env::consts::OS.into(),
        arch: go_arch().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_info_names_the_release_and_platform() {
        let v = version_info();
        assert_eq!(v.tag, "v1.7.0");
        assert_eq!(
            v.go_version,
            format!("talos-rs {}", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(v.os, "linux");
        assert!(!v.arch.is_empty());
        assert_ne!(v.arch, "x86_64");
    }
}
