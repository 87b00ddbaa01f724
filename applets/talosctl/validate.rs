//! `talosctl validate`: validate a machine config file for a platform mode.

/// Flags of `validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The path of the config file.
    #[arg(short = 'c', long)]
    pub config: std::path::PathBuf,
    /// The mode to validate the config for (metal, cloud, container).
    #[arg(short = 'm', long)]
    pub mode: String,
    /// Treat validation warnings as errors.
    #[arg(long)]
    pub strict: bool,
}

/// Runs `validate`.
pub fn run(_args: ValidateArgs, _global: &super::Global) -> anyhow::Result<()> {
    anyhow::bail!("validate is not built yet")
}
