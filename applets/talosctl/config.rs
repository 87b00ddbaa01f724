//! `talosctl config`: manage the client configuration file (talosconfig).

use clap::Subcommand;

/// `talosctl config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Show information about the current context.
    Info,
}

/// Runs a `config` subcommand.
pub fn run(cmd: ConfigCmd, _global: &super::Global) -> anyhow::Result<()> {
    match cmd {
        ConfigCmd::Info => anyhow::bail!("config info is not built yet"),
    }
}
