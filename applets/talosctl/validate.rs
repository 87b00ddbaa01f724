//! `talosctl validate`: validate a machine config file for a platform mode.

use anyhow::Context;

use talos::config::{Config, Mode};

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
pub fn run(args: ValidateArgs, _global: &super::Global) -> anyhow::Result<()> {
    let mode = Mode::parse(&args.mode).with_context(|| {
        format!(
            "unknown mode {:?} (expected one of: metal, cloud, container)",
            args.mode
        )
    })?;
    let name = args.config.display().to_string();
    let bytes = std::fs::read(&args.config).with_context(|| format!("failed to read {name}"))?;
    let config = Config::from_yaml(&bytes, &name)?;
    match config.validate(mode, args.strict) {
        Ok(warnings) => {
            for w in warnings {
                eprintln!("WARNING: {w}");
            }
            println!("{name} is valid for {mode} mode");
            Ok(())
        }
        Err(errors) => Err(anyhow::anyhow!("{errors}"))
            .with_context(|| format!("{name} is not valid for {mode} mode")),
    }
}
