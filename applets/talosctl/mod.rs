//! The `talosctl` applet: the Talos CLI, compatible with talosctl 1.7.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod config;
mod format;
mod gen;
mod gen_config;
mod machineconfig;
mod session;
mod stats;
mod validate;
mod version;

/// Global flags shared by every talosctl command.
#[derive(Debug, clap::Args)]
pub struct Global {
    /// The path to the Talos configuration file (default `$TALOSCONFIG`, then `~/.talos/config`).
    #[arg(long, global = true, env = "TALOSCONFIG")]
    pub talosconfig: Option<std::path::PathBuf>,
    /// Context to be used in command.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Override default endpoints in Talos configuration.
    #[arg(short = 'e', long, global = true, value_delimiter = ',')]
    pub endpoints: Vec<String>,
    /// Target the specified nodes.
    #[arg(short = 'n', long, global = true, value_delimiter = ',')]
    pub nodes: Vec<String>,
}

#[derive(Debug, Parser)]
#[command(name = "talosctl", about = "A CLI for out-of-band management of Kubernetes nodes created by Talos", version = talos::version::TALOS_VERSION)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage the client configuration file (talosconfig).
    #[command(subcommand)]
    Config(config::ConfigCmd),
    /// Generate CAs, certificates, private keys, secrets and machine configs.
    #[command(subcommand)]
    Gen(gen::GenCmd),
    /// Machine config related commands.
    #[command(subcommand, visible_alias = "mc")]
    Machineconfig(machineconfig::MachineConfigCmd),
    /// Validate config.
    Validate(validate::ValidateArgs),
    /// Prints the version.
    Version(version::VersionArgs),
    /// Show memory usage.
    #[command(visible_aliases = ["m", "free"])]
    Memory(stats::MemoryArgs),
    /// List running processes.
    #[command(visible_aliases = ["p", "ps"])]
    Processes(stats::ProcessesArgs),
    /// List mounts.
    #[command(visible_alias = "mount")]
    Mounts,
    /// Get the list of disks from /sys/block on the machine.
    Disks(stats::DisksArgs),
    /// Gets current server time.
    Time(stats::TimeArgs),
}

/// Entry point of the `talosctl` applet.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<session::AlreadyReported>() => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let global = &cli.global;
    match cli.command {
        Command::Config(cmd) => config::run(cmd, global),
        Command::Gen(cmd) => gen::run(cmd, global),
        Command::Machineconfig(cmd) => machineconfig::run(cmd, global),
        Command::Validate(args) => validate::run(args, global),
        Command::Version(args) => version::run(args, global),
        Command::Memory(args) => stats::memory(args, global),
        Command::Processes(args) => stats::processes(args, global),
        Command::Mounts => stats::mounts(global),
        Command::Disks(args) => stats::disks(args, global),
        Command::Time(args) => stats::time_cmd(args, global),
    }
}
