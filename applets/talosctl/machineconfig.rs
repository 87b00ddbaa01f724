//! `talosctl machineconfig` (alias `mc`): work with machine config files locally.

use clap::Subcommand;

use super::gen_config;

/// `talosctl machineconfig` subcommands.
#[derive(Debug, Subcommand)]
pub enum MachineConfigCmd {
    /// Generates a set of configuration files for Talos cluster (same as `gen config`).
    Gen(gen_config::GenConfigArgs),
}

/// Runs a `machineconfig` subcommand.
pub fn run(cmd: MachineConfigCmd, global: &super::Global) -> anyhow::Result<()> {
    match cmd {
        MachineConfigCmd::Gen(args) => gen_config::run(args, global),
    }
}
