//! `talosctl machineconfig` (alias `mc`): work with machine config files locally.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;

use talos::fsutil::{self, WriteOptions};

use super::gen_config;

/// `talosctl machineconfig` subcommands.
#[derive(Debug, Subcommand)]
pub enum MachineConfigCmd {
    /// Generates a set of configuration files for Talos cluster (same as `gen config`).
    Gen(Box<gen_config::GenConfigArgs>),
    /// Patch a machine config.
    Patch(PatchArgs),
}

/// Flags of `machineconfig patch`.
#[derive(Debug, clap::Args)]
pub struct PatchArgs {
    /// The machine config file to patch.
    #[arg(value_name = "machineconfig-file")]
    pub file: PathBuf,
    /// Patch generated machineconfigs (applied to all node types), use @file to read a patch from file.
    #[arg(
        short = 'p',
        long = "patch",
        value_name = "PATCH",
        allow_hyphen_values = true
    )]
    pub patches: Vec<String>,
    /// Output destination. If not specified, output will be printed to stdout.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
}

/// Runs a `machineconfig` subcommand.
pub fn run(cmd: MachineConfigCmd, global: &super::Global) -> anyhow::Result<()> {
    match cmd {
        MachineConfigCmd::Gen(args) => gen_config::run(*args, global),
        MachineConfigCmd::Patch(args) => patch(args),
    }
}

fn patch(args: PatchArgs) -> anyhow::Result<()> {
    use talos::config::patch;

    let config = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read machine config {}", args.file.display()))?;
    let patches = patch::load_patches(&args.patches)?;
    let source = args.file.display().to_string();
    let patched = if patches.is_empty() {
        config
    } else {
        // Apply on the document tree, then load the result strictly through the typed model so
        // a patch that produces an invalid config is refused, and write it in Talos's layout.
        let docs =
            patch::parse_documents(&config).with_context(|| format!("cannot parse {source}"))?;
        let docs =
            patch::apply(docs, &patches).with_context(|| format!("cannot patch {source}"))?;
        talos::config::Config::from_values(docs, &source)
            .with_context(|| format!("the patched config {source} is invalid"))?
            .to_yaml()?
    };

    match args.output {
        None => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{patched}").context("cannot write to stdout")?;
        }
        Some(path) => {
            // Like Talos, `-o` replaces an existing file (there is no --force here).
            let opts = WriteOptions::mode(0o644).overwrite(true);
            fsutil::write_atomic(&path, patched.as_bytes(), opts)?;
        }
    }
    Ok(())
}
