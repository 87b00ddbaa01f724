//! `talosctl cluster create|show|destroy` on the container provisioner, and the hidden
//! `talosctl container-launch` / `talosctl container-node` processes behind it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use talos::provision::{self, launcher, node, ClusterState};

mod create;

/// Flags every `cluster` subcommand takes.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// The name of the cluster.
    #[arg(long, global = true, default_value = "talos-default")]
    pub name: String,
    /// Talos cluster provisioner to use (only `container` in this build).
    #[arg(long, global = true, default_value = "container")]
    pub provisioner: String,
    /// Directory path to store cluster state (default `~/.talos/clusters`).
    #[arg(long, global = true, value_name = "DIR")]
    pub state: Option<PathBuf>,
    #[command(subcommand)]
    pub command: ClusterCmd,
}

/// The `cluster` subcommands.
#[derive(Debug, Subcommand)]
pub enum ClusterCmd {
    /// Creates a local container-based Talos cluster.
    Create(Box<create::CreateArgs>),
    /// Destroys a local container-based Talos cluster.
    Destroy(DestroyArgs),
    /// Shows info about a local provisioned cluster.
    Show,
}

/// `cluster destroy` flags.
#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// Force deletion of cluster directory if there were errors.
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// Hidden `talosctl container-launch`.
#[derive(Debug, Args)]
pub struct LaunchArgs {
    /// The cluster state directory.
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// How long nodes get to stop after SIGTERM before they are killed.
    #[arg(long, default_value = "30s", value_parser = talos::duration::parse_duration)]
    pub grace: Duration,
}

fn check_provisioner(p: &str) -> anyhow::Result<()> {
    match p {
        "container" => Ok(()),
        "docker" | "qemu" => bail!(
            "provisioner {p:?} is not supported in this build: use --provisioner container (nodes run as namespaced processes)"
        ),
        other => bail!("unsupported provisioner {other:?} (supported: container)"),
    }
}

fn state_root(args: &ClusterArgs) -> PathBuf {
    let root = args
        .state
        .clone()
        .unwrap_or_else(provision::state::default_state_root);
    // Recorded in the state and on the launcher's command line: make it independent of cwd.
    std::path::absolute(&root).unwrap_or(root)
}

/// The state directory of the cluster `name`.
fn cluster_dir(args: &ClusterArgs) -> PathBuf {
    state_root(args).join(&args.name)
}

/// Entry point of `talosctl cluster ...`.
pub fn run(args: ClusterArgs, global: &super::Global) -> anyhow::Result<()> {
    check_provisioner(&args.provisioner)?;
    provision::plan::validate_cluster_name(&args.name)?;
    match &args.command {
        ClusterCmd::Create(c) => create::run(&args, c, global),
        ClusterCmd::Show => show(&args),
        ClusterCmd::Destroy(d) => destroy(&args, d),
    }
}

fn load(args: &ClusterArgs) -> anyhow::Result<ClusterState> {
    let dir = cluster_dir(args);
    if !ClusterState::path_in(&dir).exists() {
        bail!(
            "cluster {:?} not found: no state in {} (create it with `talosctl cluster create --name {}`)",
            args.name,
            dir.display(),
            args.name
        );
    }
    Ok(ClusterState::load(&dir)?)
}

fn show(args: &ClusterArgs) -> anyhow::Result<()> {
    let state = load(args)?;
    print!("{}", render_show(&state));
    Ok(())
}

/// Bytes the way Go's `humanize.Bytes` prints them (SI units, one decimal below 10).
pub fn humanize_bytes(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 10 {
        return format!("{n} B");
    }
    let e = ((n as f64).ln() / 1000f64.ln()).floor() as usize;
    let e = e.min(UNITS.len() - 1);
    let val = ((n as f64) / 1000f64.powi(e as i32) * 10.0 + 0.5).floor() / 10.0;
    if val < 10.0 {
        format!("{val:.1} {}", UNITS[e])
    } else {
        format!("{val:.0} {}", UNITS[e])
    }
}

/// Left-aligned columns separated by at least three spaces (Go's tabwriter with padding 3).
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[c] + 3));
            }
        }
        out.push('\n');
    }
    out
}

/// `cluster show` output (also the summary of `cluster create`).
pub fn render_show(state: &ClusterState) -> String {
    let s = |v: &str| v.to_string();
    let mut out = table(&[
        vec![s("PROVISIONER"), state.provisioner.clone()],
        vec![s("NAME"), state.name.clone()],
        vec![s("NETWORK NAME"), state.network.name.clone()],
        vec![s("NETWORK CIDR"), state.network.cidr.clone()],
        vec![s("NETWORK GATEWAY"), state.network.gateway.to_string()],
        vec![s("NETWORK MTU"), state.network.mtu.to_string()],
        vec![s("KUBERNETES ENDPOINT"), state.kubernetes_endpoint.clone()],
    ]);
    out.push_str("\nNODES:\n\n");
    let mut nodes: Vec<_> = state.nodes.iter().collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let mut rows = vec![["NAME", "TYPE", "IP", "CPU", "RAM", "DISK"].map(s).to_vec()];
    for n in nodes {
        let cpu = if n.cpus > 0.0 {
            format!("{:.2}", n.cpus)
        } else {
            s("-")
        };
        let ram = if n.memory_mib > 0 {
            humanize_bytes(n.memory_mib * 1024 * 1024)
        } else {
            s("-")
        };
        rows.push(vec![
            n.name.clone(),
            s(n.node_type.as_str()),
            n.ip.to_string(),
            cpu,
            ram,
            s("-"),
        ]);
    }
    out.push_str(&table(&rows));
    out
}

fn destroy(args: &ClusterArgs, d: &DestroyArgs) -> anyhow::Result<()> {
    let dir = cluster_dir(args);
    if !ClusterState::path_in(&dir).exists() {
        // Idempotent: nothing (left) to destroy. A directory without state is removed with --force.
        if d.force && dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        eprintln!(
            "cluster {:?} not found in {}: nothing to destroy",
            args.name,
            dir.display()
        );
        return Ok(());
    }
    let state = ClusterState::load(&dir)?;
    let report = provision::destroy(&state, d.force, &mut |line| eprintln!("{line}"));
    if !report.errors.is_empty() {
        bail!(
            "destroying cluster {:?} left errors{}:\n  {}",
            args.name,
            if d.force {
                ""
            } else {
                " (state kept; retry, or use --force to delete it anyway)"
            },
            report.errors.join("\n  ")
        );
    }
    Ok(())
}

/// Entry point of the hidden `talosctl container-launch`.
pub fn launch(args: LaunchArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("locating the talos binary")?;
    let mut stdout = std::io::stdout();
    launcher::run(&args.state_dir, &exe, args.grace, &mut stdout)?;
    let _ = stdout.flush();
    Ok(())
}

/// Entry point of the hidden `talosctl container-node` (PID 1 of a new node, before init).
pub fn container_node() -> anyhow::Result<()> {
    let spec = std::env::var(node::SPEC_ENV)
        .with_context(|| format!("{} is not set (this command is internal)", node::SPEC_ENV))?;
    let spec: node::NodeSpec =
        serde_json::from_str(&spec).with_context(|| format!("parsing {}", node::SPEC_ENV))?;
    let e = node::enter_node(&spec);
    match e {
        Err(e) => Err(anyhow::Error::new(e).context(format!("starting node {}", spec.hostname))),
        Ok(never) => match never {},
    }
}

/// Reads the state of the cluster in `dir` (for `create`'s wait loop).
fn reload(dir: &Path) -> anyhow::Result<ClusterState> {
    Ok(ClusterState::load(dir)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanize_matches_go() {
        assert_eq!(humanize_bytes(2048 * 1024 * 1024), "2.1 GB");
        assert_eq!(humanize_bytes(6144 * 1024 * 1024), "6.4 GB");
        assert_eq!(humanize_bytes(5), "5 B");
        assert_eq!(humanize_bytes(82854982), "83 MB");
    }

    #[test]
    fn provisioners() {
        assert!(check_provisioner("container").is_ok());
        let e = check_provisioner("docker").unwrap_err().to_string();
        assert!(e.contains("not supported in this build"), "{e}");
        assert!(check_provisioner("qemu").is_err());
    }

    #[test]
    fn table_pads_by_three() {
        let t = table(&[
            vec!["A".into(), "x".into()],
            vec!["LONGER".into(), "y".into()],
        ]);
        assert_eq!(t, "A        x\nLONGER   y\n");
    }
}
