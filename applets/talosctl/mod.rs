//! The `talosctl` applet: the Talos CLI, compatible with talosctl 1.7.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod apply;
mod cluster;
mod config;
mod files;
mod format;
mod gen;
mod gen_config;
mod get;
mod jsonpath;
pub(crate) mod kubeconfig;
mod logs;
mod machineconfig;
mod power;
mod services;
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
    /// Retrieve a directory listing.
    #[command(visible_alias = "ls")]
    List(files::ListArgs),
    /// Read a file on the machine.
    #[command(visible_alias = "cat")]
    Read(files::ReadArgs),
    /// Copy data out from the node (a .tar.gz on stdout with `-`, else extracted locally).
    #[command(visible_alias = "cp")]
    Copy(files::CopyArgs),
    /// Retrieve a disk usage.
    #[command(visible_alias = "du")]
    Usage(files::UsageArgs),
    /// Retrieve kernel logs.
    Dmesg(logs::DmesgArgs),
    /// Retrieve logs for a service.
    Logs(logs::LogsArgs),
    /// Stream runtime events.
    Events(logs::EventsArgs),
    /// Retrieve the state of a service (or all services), control service state.
    #[command(visible_alias = "services")]
    Service(services::ServiceArgs),
    /// Get a specific resource or list of resources (use 'talosctl get rd' to see all available resource types).
    #[command(visible_alias = "g")]
    Get(get::GetArgs),
    /// Apply a new configuration to a node.
    #[command(name = "apply-config", visible_alias = "apply")]
    ApplyConfig(apply::ApplyArgs),
    /// Reboot a node.
    Reboot(power::RebootArgs),
    /// Shutdown a node.
    Shutdown(power::ShutdownArgs),
    /// Reset a node.
    Reset(power::ResetArgs),
    /// Download the admin kubeconfig from the node
    Kubeconfig(kubeconfig::KubeconfigArgs),
    /// Create, show and destroy local clusters (container provisioner).
    Cluster(cluster::ClusterArgs),
    /// Runs the nodes of a container-provisioned cluster (internal, started by `cluster create`).
    #[command(hide = true)]
    ContainerLaunch(cluster::LaunchArgs),
    /// Prepares and starts one container node (internal, run by the launcher).
    #[command(hide = true)]
    ContainerNode,
}

/// Entry point of the `talosctl` applet.
pub fn main(args: Vec<OsString>) -> ExitCode {
    crate::edge::main(args, crate::edge::Errors::Cli, crate::edge::no_logging, run)
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
        Command::List(args) => files::list(args, global),
        Command::Read(args) => files::read(args, global),
        Command::Copy(args) => files::copy(args, global),
        Command::Usage(args) => files::usage(args, global),
        Command::Dmesg(args) => logs::dmesg(args, global),
        Command::Logs(args) => logs::logs(args, global),
        Command::Events(args) => logs::events(args, global),
        Command::Service(args) => services::run(args, global),
        Command::ApplyConfig(args) => apply::run(args, global),
        Command::Reboot(args) => power::reboot(args, global),
        Command::Shutdown(args) => power::shutdown(args, global),
        Command::Reset(args) => power::reset(args, global),
        Command::Cluster(args) => cluster::run(args, global),
        Command::ContainerLaunch(args) => cluster::launch(args),
        Command::ContainerNode => cluster::container_node(),
        Command::Get(args) => get::run(args, global),
        Command::Kubeconfig(args) => kubeconfig::run(args, global),
    }
}
