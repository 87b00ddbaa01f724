//! `talosctl cluster create` on the container provisioner.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::{ArgAction, Args};
use talos::client::connect::{self, Client, Credentials};
use talos::client::talosconfig::{self, Context as TalosContext};
use talos::config::generate::{GenerateOptions, Generator, MachineType};
use talos::config::patch::{self, Patch};
use talos::config::Config;
use talos::errors::chain;
use talos::fsutil::{write_atomic, WriteOptions};
use talos::provision::state::{NetworkState, NodeState, PublishedPorts};
use talos::provision::{self, cgroup, launcher, net, plan, ClusterState, NodeType};
use talos::rootfs;
use talos::secrets::{Bundle, VersionContract};

use super::{cluster_dir, reload, render_show, ClusterArgs};

/// `cluster create` flags (the subset of Talos's that applies to container nodes).
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The number of control plane nodes to create.
    #[arg(long, default_value_t = 1)]
    pub controlplanes: u32,
    /// The number of worker nodes to create.
    #[arg(long, default_value_t = 1)]
    pub workers: u32,
    /// CIDR of the cluster network (IPv4).
    #[arg(long, default_value = "10.5.0.0/24")]
    pub cidr: String,
    /// MTU of the cluster network.
    #[arg(long, default_value_t = 1500)]
    pub mtu: u32,
    /// The share of CPUs as fraction (each control plane).
    #[arg(long, default_value = "2.0")]
    pub cpus: f64,
    /// The share of CPUs as fraction (each worker).
    #[arg(long, default_value = "2.0")]
    pub cpus_workers: f64,
    /// The limit on memory usage in MB (each control plane).
    #[arg(long, default_value_t = 2048)]
    pub memory: u64,
    /// The limit on memory usage in MB (each worker).
    #[arg(long, default_value_t = 2048)]
    pub memory_workers: u64,
    /// Wait for the cluster to be ready before returning.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    pub wait: bool,
    /// Timeout to wait for the cluster to be ready.
    #[arg(long, default_value = "20m", value_parser = talos::duration::parse_duration)]
    pub wait_timeout: Duration,
    /// Patch generated machineconfigs (applied to all node types), use @file to read a patch from file.
    #[arg(long)]
    pub config_patch: Vec<String>,
    /// Patch generated machineconfigs (applied to 'init' and 'controlplane' types).
    #[arg(long)]
    pub config_patch_control_plane: Vec<String>,
    /// Patch generated machineconfigs (applied to 'worker' type).
    #[arg(long)]
    pub config_patch_worker: Vec<String>,
    /// Desired kubernetes version to run.
    #[arg(long, default_value = talos::version::DEFAULT_KUBERNETES_VERSION)]
    pub kubernetes_version: String,
    /// The desired Talos version to generate config for (backwards compatibility, e.g. v0.8).
    #[arg(long)]
    pub talos_version: Option<String>,
    /// Skip merging kubeconfig from the created cluster.
    #[arg(long)]
    pub skip_kubeconfig: bool,
    /// Create the cluster with an init node (not supported: init nodes are deprecated).
    #[arg(long)]
    pub with_init_node: bool,
    /// Use a secrets bundle file instead of generating one.
    #[arg(long, hide = true, value_name = "FILE")]
    pub with_secrets: Option<PathBuf>,
    /// Test seam: run this command (whitespace-separated argv, inside the node root) in every
    /// node instead of /sbin/init.
    #[arg(long, hide = true, value_name = "CMD")]
    pub node_command: Option<String>,
}

/// The config options Talos's container provisioner generates with.
const CONTAINER_PATCH: &str = "machine:
  network:
    interfaces:
      - interface: eth0
        ignore: true
  features:
    hostDNS:
      enabled: true
      forwardKubeDNSToHost: true
";

fn load_patches(flag: &str, values: &[String]) -> anyhow::Result<Vec<Patch>> {
    patch::load_patches(values).with_context(|| format!("error parsing config patch ({flag})"))
}

fn apply_patches(config: Config, patches: &[Patch], what: &str) -> anyhow::Result<Config> {
    if patches.is_empty() {
        return Ok(config);
    }
    let values = config.to_values()?;
    let patched =
        patch::apply(values, patches).with_context(|| format!("error patching {what}"))?;
    Config::from_values(patched, what).with_context(|| format!("error patching {what}"))
}

/// Runs `cluster create`.
pub fn run(
    args: &ClusterArgs,
    c: &CreateArgs,
    global: &crate::talosctl::Global,
) -> anyhow::Result<()> {
    if c.with_init_node {
        bail!("--with-init-node is not supported: init nodes are deprecated, control plane nodes are bootstrapped instead");
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("the container provisioner needs root (network namespaces, mounts, cgroups)");
    }
    eprintln!("validating CIDR and reserving IPs");
    let cidr = provision::Cidr::parse(&c.cidr)?;
    let planned = provision::plan_nodes(&args.name, &cidr, c.controlplanes, c.workers)?;
    if c.cpus <= 0.0 || c.cpus_workers <= 0.0 {
        bail!("--cpus and --cpus-workers must be positive");
    }
    let dir = cluster_dir(args);
    if dir.exists() {
        bail!(
            "cluster state directory {} already exists: destroy the cluster first (`talosctl cluster destroy --name {}`)",
            dir.display(),
            args.name
        );
    }
    if talos::sys::ns::netns_path(&args.name).exists() {
        bail!(
            "network namespace {} already exists: is another cluster named {:?} running?",
            talos::sys::ns::netns_path(&args.name).display(),
            args.name
        );
    }
    let node_command: Vec<String> = c
        .node_command
        .as_deref()
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();

    eprintln!("generating PKI and tokens");
    let first_cp = planned[0].ip;
    let endpoint = format!("https://{first_cp}:6443");
    let mut opts = GenerateOptions::new(&args.name, &endpoint);
    opts.kubernetes_version = c.kubernetes_version.trim_start_matches('v').to_string();
    if let Some(v) = &c.talos_version {
        opts.contract = VersionContract::parse(v).context("invalid talos-version")?;
    }
    // The Talos API is reached through 127.0.0.1 (published ports).
    opts.additional_sans = vec!["127.0.0.1".to_string()];
    // What Talos's container (docker) provisioner adds to every generated config: eth0 is
    // configured by the provisioner, and kube-dns is forwarded to the host DNS.
    let provisioner_patch = load_patches("container provisioner", &[CONTAINER_PATCH.to_string()])?;
    let all = load_patches("--config-patch", &c.config_patch)?;
    let cp_patches = load_patches(
        "--config-patch-control-plane",
        &c.config_patch_control_plane,
    )?;
    let worker_patches = load_patches("--config-patch-worker", &c.config_patch_worker)?;
    let secrets = match &c.with_secrets {
        Some(p) => Bundle::load(p).context("failed to load secrets bundle")?,
        None => Bundle::generate(opts.contract).context("failed to generate the secrets bundle")?,
    };
    let generator = Generator::new(&opts, &secrets);
    let cp_config = apply_patches(
        generator.config(MachineType::ControlPlane)?,
        &provisioner_patch,
        "control plane configs",
    )?;
    let cp_config = apply_patches(cp_config, &all, "control plane configs")?;
    let cp_config = apply_patches(cp_config, &cp_patches, "control plane configs")?;
    let w_config = apply_patches(
        generator.config(MachineType::Worker)?,
        &provisioner_patch,
        "worker config",
    )?;
    let w_config = apply_patches(w_config, &all, "worker config")?;
    let w_config = apply_patches(w_config, &worker_patches, "worker config")?;
    let mut new_talosconfig =
        talosconfig::TalosConfig::generate(&opts.cluster_name, &opts.talos_endpoints, &secrets)?;

    // From here on everything made is recorded in the state and torn down on failure.
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let state = build_state(args, c, &dir, &cidr, &planned, node_command)?;
    let mut state = match prepare(&state, &cp_config, &w_config) {
        Ok(s) => s,
        Err(e) => {
            cleanup(&state);
            return Err(e);
        }
    };
    eprintln!("creating controlplane nodes");
    if c.workers > 0 {
        eprintln!("creating worker nodes");
    }
    let exe = std::env::current_exe().context("locating the talos binary")?;
    match launcher::start_launcher(&exe, &dir, Duration::from_secs(120)) {
        Ok(_) => {}
        Err(e) => {
            cleanup(&state);
            return Err(e.into());
        }
    }
    state = reload(&dir)?;

    // talosconfig: endpoints are the published loopback ports, nodes the node addresses.
    let endpoints = launcher::apid_endpoints(&state);
    let nodes: Vec<String> = state.nodes.iter().map(|n| n.ip.to_string()).collect();
    let context = new_talosconfig
        .contexts
        .values_mut()
        .next()
        .context("generated talosconfig has no context")?;
    context.endpoints = endpoints.clone();
    context.nodes = nodes;
    let ctx_copy = context.clone();
    let (mut tc, location) = talosconfig::open(global.talosconfig.as_deref())
        .context("opening the talosconfig to merge the new context into")?;
    for r in tc.merge(new_talosconfig) {
        eprintln!("renamed talosconfig context {:?} -> {:?}", r.from, r.to);
    }
    tc.save_to(&location)
        .with_context(|| format!("saving talosconfig {}", location.path.display()))?;

    if c.wait {
        eprintln!("waiting for API");
        if let Err(e) = wait_for_api(&dir, &ctx_copy, c.wait_timeout) {
            eprintln!(
                "the cluster is left running: inspect {} or remove it with `talosctl cluster destroy --name {}`",
                dir.display(),
                args.name
            );
            return Err(e);
        }
    }
    eprintln!("bootstrap, health checks: not available in this build yet, skipped");
    // Talos merges the kubeconfig once it has waited for the cluster.
    if c.wait && !c.skip_kubeconfig {
        merge_kubeconfig(&state, &ctx_copy)?;
    }
    print!("{}", render_show(&state));
    Ok(())
}

fn build_state(
    args: &ClusterArgs,
    c: &CreateArgs,
    dir: &Path,
    cidr: &provision::Cidr,
    planned: &[plan::PlannedNode],
    node_command: Vec<String>,
) -> anyhow::Result<ClusterState> {
    let init_binary = std::env::current_exe().context("locating the talos binary")?;
    let nodes = planned
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let cp = p.node_type == NodeType::Controlplane;
            NodeState {
                name: p.name.clone(),
                node_type: p.node_type,
                ip: p.ip,
                cpus: if cp { c.cpus } else { c.cpus_workers },
                memory_mib: if cp { c.memory } else { c.memory_workers },
                veth: format!("veth{i}"),
                config: dir.join(if cp {
                    "controlplane.yaml"
                } else {
                    "worker.yaml"
                }),
                dir: dir.join(&p.name),
                cgroups: Vec::new(),
                pid: None,
                ports: PublishedPorts::default(),
                last_exit: None,
            }
        })
        .collect();
    Ok(ClusterState {
        name: args.name.clone(),
        provisioner: "container".to_string(),
        state_dir: dir.to_path_buf(),
        rootfs: dir.join("rootfs"),
        init_binary,
        kubernetes_endpoint: format!("https://{}:6443", planned[0].ip),
        network: NetworkState {
            name: args.name.clone(),
            netns: args.name.clone(),
            bridge: plan::bridge_name(&args.name),
            cidr: cidr.to_string(),
            gateway: cidr.gateway(),
            prefix: cidr.prefix,
            mtu: c.mtu,
        },
        launcher_pid: None,
        nodes,
        node_command,
    })
}

/// Writes configs and the root, creates the network and cgroups; returns the updated state.
fn prepare(state: &ClusterState, cp: &Config, worker: &Config) -> anyhow::Result<ClusterState> {
    let mut state = state.clone();
    state.save()?;
    let dir = &state.state_dir;
    write_atomic(
        &dir.join("controlplane.yaml"),
        cp.to_yaml()?.as_bytes(),
        WriteOptions::PRIVATE,
    )?;
    write_atomic(
        &dir.join("worker.yaml"),
        worker.to_yaml()?.as_bytes(),
        WriteOptions::PRIVATE,
    )?;
    rootfs::materialize(&state.rootfs, rootfs::Init::MountPoint)?;
    for n in &state.nodes {
        for sub in ["state", "var"] {
            let d = n.dir.join(sub);
            std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        }
    }
    eprintln!("creating network {}", state.network.name);
    net::create_network(&state.network)?;
    for i in 0..state.nodes.len() {
        let n = &state.nodes[i];
        let dirs = cgroup::create_node_cgroups(&state.name, &n.name, n.cpus, n.memory_mib)?;
        state.nodes[i].cgroups = dirs;
        // Saved after every piece, so a failure half-way still knows what to remove.
        state.save()?;
    }
    Ok(state)
}

fn cleanup(state: &ClusterState) {
    // Reload: the launcher may have recorded pids before failing.
    let state = ClusterState::load(&state.state_dir).unwrap_or_else(|_| state.clone());
    let report = provision::destroy(&state, true, &mut |_| {});
    for e in report.errors {
        eprintln!("cleanup: {e}");
    }
}

/// Polls every node's `Version` through the first control plane's published apid port (apid
/// forwards by the `node` metadata) until all answer or `timeout` passes.
/// Merges the first control plane's admin kubeconfig into `$KUBECONFIG` or `~/.kube/config`
/// (clashing names renamed), as Talos's `cluster create` ends.
fn merge_kubeconfig(state: &ClusterState, ctx: &TalosContext) -> anyhow::Result<()> {
    use crate::talosctl::kubeconfig::{default_path, extract, merge_into};
    let path = default_path()?;
    eprintln!("merging kubeconfig into {:?}", path.display().to_string());
    let node = state
        .nodes
        .iter()
        .find(|n| n.node_type == NodeType::Controlplane)
        .context("the cluster has no control plane")?;
    let creds = Credentials::from_context(ctx)?;
    let targets = connect::parse_endpoints(&ctx.endpoints)?;
    let archive = crate::talosctl::session::runtime()?.block_on(async {
        let client = Client::connect(targets, &creds).await?;
        let req = connect::with_node(tonic::Request::new(()), &node.ip.to_string())?;
        let mut stream = client
            .machine()
            .kubeconfig(req)
            .await
            .map_err(|e| crate::talosctl::session::call_error("error fetching kubeconfig", e))?
            .into_inner();
        let mut data = Vec::new();
        while let Some(item) = tokio_stream::StreamExt::next(&mut stream).await {
            let item = item.map_err(|e| {
                crate::talosctl::session::call_error("error fetching kubeconfig", e)
            })?;
            data.extend_from_slice(&item.bytes);
        }
        anyhow::Ok(data)
    })?;
    let kubeconfig = extract(&archive)?;
    if path.exists() {
        merge_into(&path, &kubeconfig, false, "")
    } else {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        talos::fsutil::write_atomic(
            &path,
            &kubeconfig,
            WriteOptions {
                mode: 0o600,
                overwrite: true,
            },
        )
        .with_context(|| format!("error writing {}", path.display()))
    }
}

fn wait_for_api(dir: &Path, ctx: &TalosContext, timeout: Duration) -> anyhow::Result<()> {
    let creds = Credentials::from_context(ctx)?;
    let targets = connect::parse_endpoints(&ctx.endpoints)?;
    let rt = crate::talosctl::session::runtime()?;
    let deadline = Instant::now() + timeout;
    let state = reload(dir)?;
    rt.block_on(async {
        for n in &state.nodes {
            let mut down_since: Option<Instant> = None;
            loop {
                let last_err = match version(&targets, &creds, &n.ip.to_string()).await {
                    Ok(()) => {
                        eprintln!("  {} ({}): API ready", n.name, n.ip);
                        break;
                    }
                    Err(e) => e,
                };
                let now = reload(dir)?;
                if !now.launcher_pid.is_some_and(launcher::alive) {
                    bail!(
                        "the cluster launcher is not running (see {})",
                        launcher::log_path(dir).display()
                    );
                }
                let cur = now.nodes.iter().find(|x| x.name == n.name);
                match cur {
                    Some(x) if x.pid.is_none() && x.last_exit.is_some() => {
                        let since = *down_since.get_or_insert_with(Instant::now);
                        if since.elapsed() > Duration::from_secs(20) {
                            bail!(
                                "node {} is not running (last exit: {}); see {}",
                                n.name,
                                x.last_exit.clone().unwrap_or_default(),
                                dir.join(format!("{}.log", n.name)).display()
                            );
                        }
                    }
                    _ => down_since = None,
                }
                if Instant::now() > deadline {
                    bail!(
                        "timed out waiting for the API of {} ({}): {last_err}",
                        n.name,
                        n.ip
                    );
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Ok(())
    })
}

async fn version(
    targets: &[connect::Target],
    creds: &Credentials,
    node: &str,
) -> Result<(), String> {
    let client = Client::connect_with_timeout(targets.to_vec(), creds, Duration::from_secs(5))
        .await
        .map_err(|e| chain(&e).to_string())?;
    let req = connect::with_node(tonic::Request::new(()), node).map_err(|e| e.to_string())?;
    let mut machine = client.machine();
    match tokio::time::timeout(Duration::from_secs(10), machine.version(req)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(s)) => Err(s.message().to_string()),
        Err(_) => Err("timed out".to_string()),
    }
}
