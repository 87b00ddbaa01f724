//! `talosctl gen config NAME ENDPOINT` (also `talosctl machineconfig gen`): writes
//! `controlplane.yaml`, `worker.yaml` and `talosconfig`.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

use talos::client::talosconfig::TalosConfig;
use talos::config::comments::{to_yaml_with_comments, CommentOptions};
use talos::config::generate::{
    validate_endpoint, GenerateOptions, Generator, MachineType, DEFAULT_DNS_DOMAIN,
    DEFAULT_INSTALL_DISK, DEFAULT_INSTALL_IMAGE,
};
use talos::config::patch::{self, Patch};
use talos::config::Config;
use talos::fsutil::{check_writable, write_atomic, WriteOptions};
use talos::secrets::{Bundle, VersionContract};

const OUTPUT_TYPES: [&str; 3] = ["controlplane", "worker", "talosconfig"];
const STDOUT: &str = "-";

/// Flags of `gen config`, as in talosctl 1.7.
#[derive(Debug, clap::Args)]
pub struct GenConfigArgs {
    /// Cluster name.
    pub cluster_name: String,
    /// Cluster endpoint: the Kubernetes API URL (https://host:port).
    pub endpoint: String,
    /// Use a secrets file generated using 'gen secrets'.
    #[arg(long, value_name = "FILE")]
    pub with_secrets: Option<PathBuf>,
    /// Desired kubernetes version to run.
    #[arg(long, default_value = talos::version::DEFAULT_KUBERNETES_VERSION)]
    pub kubernetes_version: String,
    /// The desired Talos version to generate config for (backwards compatibility, e.g. v0.8).
    #[arg(long)]
    pub talos_version: Option<String>,
    /// The desired machine config version to generate.
    #[arg(long = "version", default_value = "v1alpha1")]
    pub config_version: String,
    /// The disk to install to.
    #[arg(long, default_value = DEFAULT_INSTALL_DISK)]
    pub install_disk: String,
    /// The image used to perform an installation.
    #[arg(long, default_value = DEFAULT_INSTALL_IMAGE)]
    pub install_image: String,
    /// Additional Subject-Alt-Names for the APIServer certificate.
    #[arg(long, value_delimiter = ',')]
    pub additional_sans: Vec<String>,
    /// The dns domain to use for cluster.
    #[arg(long, default_value = DEFAULT_DNS_DOMAIN)]
    pub dns_domain: String,
    /// List of registry mirrors to use in format: <registry host>=<mirror URL>.
    #[arg(long, value_delimiter = ',')]
    pub registry_mirror: Vec<String>,
    /// The desired persist value for configs.
    #[arg(short = 'p', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub persist: bool,
    /// Enable cluster discovery feature.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub with_cluster_discovery: bool,
    /// Enable KubeSpan feature.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub with_kubespan: bool,
    /// Patch generated machineconfigs (applied to all node types), use @file to read a patch from file.
    #[arg(long, allow_hyphen_values = true)]
    pub config_patch: Vec<String>,
    /// Patch generated machineconfigs (applied to 'init' and 'controlplane' types).
    #[arg(long, allow_hyphen_values = true)]
    pub config_patch_control_plane: Vec<String>,
    /// Patch generated machineconfigs (applied to 'worker' type).
    #[arg(long, allow_hyphen_values = true)]
    pub config_patch_worker: Vec<String>,
    /// Types of outputs to be generated. valid types are: ["controlplane" "worker" "talosconfig"].
    #[arg(short = 't', long, value_delimiter = ',', default_values_t = OUTPUT_TYPES.map(String::from))]
    pub output_types: Vec<String>,
    /// Destination to output generated files. When multiple output types are specified, it must be
    /// a directory. For a single output type, it must either be a file path, or "-" for stdout.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Destination to output generated files (deprecated: use --output).
    #[arg(long, hide = true)]
    pub output_dir: Option<String>,
    /// Renders all machine configs adding the documentation for each field.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub with_docs: bool,
    /// Renders all machine configs with the commented examples.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub with_examples: bool,
    /// Will overwrite existing files.
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// Where each output goes.
struct OutputPaths {
    controlplane: String,
    worker: String,
    talosconfig: String,
}

fn output_paths(args: &GenConfigArgs, types: &BTreeSet<&str>) -> anyhow::Result<OutputPaths> {
    if args.output_dir.is_some() && args.output.is_some() {
        bail!("can't use both output-dir and output");
    }
    let in_dir = |dir: &Path| OutputPaths {
        controlplane: dir.join("controlplane.yaml").display().to_string(),
        worker: dir.join("worker.yaml").display().to_string(),
        talosconfig: dir.join("talosconfig").display().to_string(),
    };
    if let Some(dir) = &args.output_dir {
        return Ok(in_dir(Path::new(dir)));
    }
    match args.output.as_deref() {
        Some(STDOUT) => Ok(OutputPaths {
            controlplane: STDOUT.into(),
            worker: STDOUT.into(),
            talosconfig: STDOUT.into(),
        }),
        None => {
            let cwd = std::env::current_dir().context("cannot read the current directory")?;
            Ok(in_dir(&cwd))
        }
        Some(file) if types.len() == 1 => Ok(OutputPaths {
            controlplane: file.into(),
            worker: file.into(),
            talosconfig: file.into(),
        }),
        Some(dir) => Ok(in_dir(Path::new(dir))),
    }
}

fn load_patches(flag: &str, values: &[String]) -> anyhow::Result<Vec<Patch>> {
    patch::load_patches(values).with_context(|| format!("error parsing config patch ({flag})"))
}

/// Applies patches to a generated config, returning the patched, re-validated config.
fn apply_patches(config: Config, patches: &[Patch], what: &str) -> anyhow::Result<Config> {
    if patches.is_empty() {
        return Ok(config);
    }
    let values = config.to_values()?;
    let patched =
        patch::apply(values, patches).with_context(|| format!("error patching {what}"))?;
    Config::from_values(patched, what).with_context(|| format!("error patching {what}"))
}

/// Runs `gen config`.
pub fn run(args: GenConfigArgs, _global: &super::Global) -> anyhow::Result<()> {
    validate_endpoint(&args.endpoint)?;
    if args.config_version != "v1alpha1" {
        bail!("unknown config version: {:?}", args.config_version);
    }
    if args.output_types.is_empty() {
        bail!("at least one output type must be specified");
    }
    let mut types = BTreeSet::new();
    let mut bad = Vec::new();
    for t in &args.output_types {
        match OUTPUT_TYPES.iter().find(|k| **k == t.as_str()) {
            Some(k) => {
                types.insert(*k);
            }
            None => bad.push(format!("invalid output type: {t:?}")),
        }
    }
    if !bad.is_empty() {
        bail!("{}", bad.join("\n"));
    }
    if types.len() > 1 && args.output.as_deref() == Some(STDOUT) {
        bail!("can't use multiple output types with stdout");
    }
    let paths = output_paths(&args, &types)?;

    // Refuse before doing any work if an output exists: nothing is written then.
    let targets: Vec<&Path> = [
        ("controlplane", &paths.controlplane),
        ("worker", &paths.worker),
        ("talosconfig", &paths.talosconfig),
    ]
    .into_iter()
    .filter(|(kind, path)| types.contains(kind) && path.as_str() != STDOUT)
    .map(|(_, path)| Path::new(path.as_str()))
    .collect();
    check_writable(&targets, args.force)?;

    let mut opts = GenerateOptions::new(&args.cluster_name, &args.endpoint);
    opts.kubernetes_version = args.kubernetes_version.trim_start_matches('v').to_string();
    if let Some(v) = &args.talos_version {
        opts.contract = VersionContract::parse(v).context("invalid talos-version")?;
    }
    opts.install_disk = args.install_disk.clone();
    opts.install_image = args.install_image.clone();
    opts.additional_sans = args.additional_sans.clone();
    opts.dns_domain = args.dns_domain.clone();
    opts.registry_mirrors = GenerateOptions::parse_registry_mirrors(&args.registry_mirror)?;
    opts.persist = args.persist;
    opts.discovery = Some(args.with_cluster_discovery);
    opts.kubespan = args.with_kubespan;

    let all = load_patches("--config-patch", &args.config_patch)?;
    let cp = load_patches(
        "--config-patch-control-plane",
        &args.config_patch_control_plane,
    )?;
    let worker = load_patches("--config-patch-worker", &args.config_patch_worker)?;

    let secrets = match &args.with_secrets {
        Some(path) => Bundle::load(path).context("failed to load secrets bundle")?,
        None => Bundle::generate(opts.contract).context("failed to generate the secrets bundle")?,
    };
    let generator = Generator::new(&opts, &secrets);
    let comments = CommentOptions {
        docs: args.with_docs,
        examples: args.with_examples,
    };

    // Render everything first; write only when all outputs were produced.
    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();
    if types.contains("controlplane") {
        let config = generator.config(MachineType::ControlPlane)?;
        let config = apply_patches(config, &all, "control plane configs")?;
        let config = apply_patches(config, &cp, "control plane configs")?;
        outputs.push((
            paths.controlplane.clone(),
            to_yaml_with_comments(&config, comments)?.into_bytes(),
        ));
    }
    if types.contains("worker") {
        let config = generator.config(MachineType::Worker)?;
        let config = apply_patches(config, &all, "worker config")?;
        let config = apply_patches(config, &worker, "worker config")?;
        outputs.push((
            paths.worker.clone(),
            to_yaml_with_comments(&config, comments)?.into_bytes(),
        ));
    }
    if types.contains("talosconfig") {
        let talosconfig =
            TalosConfig::generate(&opts.cluster_name, &opts.talos_endpoints, &secrets)?;
        outputs.push((
            paths.talosconfig.clone(),
            talosconfig.to_yaml()?.into_bytes(),
        ));
    }

    for (path, data) in outputs {
        if path == STDOUT {
            std::io::stdout()
                .write_all(&data)
                .context("cannot write to stdout")?;
            continue;
        }
        // The outputs carry private keys and tokens: readable by the owner only.
        write_atomic(
            Path::new(&path),
            &data,
            WriteOptions::PRIVATE.overwrite(args.force),
        )?;
        eprintln!("Created {path}");
    }
    Ok(())
}
