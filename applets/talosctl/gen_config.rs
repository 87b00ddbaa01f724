//! `talosctl gen config NAME ENDPOINT` (also `talosctl machineconfig gen`).

/// Flags of `gen config`.
#[derive(Debug, clap::Args)]
pub struct GenConfigArgs {
    /// Cluster name.
    pub cluster_name: String,
    /// Cluster endpoint (https URL with port).
    pub endpoint: String,
}

/// Runs `gen config`.
pub fn run(_args: GenConfigArgs, _global: &super::Global) -> anyhow::Result<()> {
    anyhow::bail!("gen config is not built yet")
}
