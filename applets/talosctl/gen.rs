//! `talosctl gen`: secrets, CAs, keys, CSRs, certificates, and machine configs.

use clap::Subcommand;

use super::gen_config;

/// `talosctl gen` subcommands.
#[derive(Debug, Subcommand)]
pub enum GenCmd {
    /// Generates a set of configuration files for Talos cluster.
    Config(gen_config::GenConfigArgs),
}

/// Runs a `gen` subcommand.
pub fn run(cmd: GenCmd, global: &super::Global) -> anyhow::Result<()> {
    match cmd {
        GenCmd::Config(args) => gen_config::run(args, global),
    }
}
