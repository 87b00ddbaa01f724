//! `apply-config`: send a machine config to nodes (ApplyConfiguration).

use std::time::Duration;

use anyhow::Context as _;
use talos::api::machine as pb;

use super::session::{self, NodeErrors, Session};
use super::Global;

/// Flags of `apply-config`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// Accepted for compatibility: `config` or `machineconfig` (only with the `apply` alias).
    #[arg(hide = true)]
    what: Option<String>,
    /// The filename of the updated configuration.
    #[arg(short = 'f', long)]
    file: Option<std::path::PathBuf>,
    /// Apply config mode: auto, no-reboot, reboot, staged, try (interactive is not supported).
    #[arg(short = 'm', long, default_value = "auto")]
    mode: String,
    /// Check how the config change will be applied in dry-run mode.
    #[arg(long)]
    dry_run: bool,
    /// List of server certificate fingerprints to accept (defaults to no check).
    #[arg(long, value_delimiter = ',')]
    cert_fingerprint: Vec<String>,
    /// The list of config patches to apply to the local config file before sending it to the node.
    #[arg(short = 'p', long, value_delimiter = ',')]
    config_patch: Vec<String>,
    /// Apply the config using the insecure (encrypted with no auth) maintenance service.
    #[arg(short = 'i', long)]
    insecure: bool,
    /// The config will be rolled back after specified timeout (if try mode is selected).
    #[arg(long, default_value = "1m", value_parser = talos::duration::parse_duration)]
    timeout: Duration,
}

/// Maps a `--mode` value to the API enum.
pub fn parse_mode(mode: &str) -> anyhow::Result<pb::apply_configuration_request::Mode> {
    use pb::apply_configuration_request::Mode;
    Ok(match mode {
        "auto" => Mode::Auto,
        "no-reboot" => Mode::NoReboot,
        "reboot" => Mode::Reboot,
        "staged" => Mode::Staged,
        "try" => Mode::Try,
        "interactive" => anyhow::bail!(
            "--mode=interactive (the terminal installer) is not supported by this talosctl"
        ),
        other => anyhow::bail!(
            "invalid --mode {other:?}: possible options are: auto, no-reboot, reboot, staged, try"
        ),
    })
}

/// Runs `apply-config`.
pub fn run(args: ApplyArgs, global: &Global) -> anyhow::Result<()> {
    if let Some(what) = &args.what {
        if what != "config" && !what.eq_ignore_ascii_case("machineconfig") {
            anyhow::bail!("unknown positional argument {what}");
        }
    }
    let mode = parse_mode(&args.mode)?;
    let Some(file) = &args.file else {
        anyhow::bail!("no filename supplied for configuration: use --file");
    };
    let mut data = std::fs::read(file)
        .with_context(|| format!("failed to read configuration from {}", file.display()))?;
    if data.is_empty() {
        anyhow::bail!("no configuration data read from {}", file.display());
    }
    if !args.config_patch.is_empty() {
        use talos::config::patch;
        let patches = patch::load_patches(&args.config_patch)?;
        let text = String::from_utf8(data)
            .with_context(|| format!("{} is not UTF-8 text", file.display()))?;
        data = patch::apply_to_text(&text, &patches)?.into_bytes();
    }
    let insecure: Option<&[String]> = if args.insecure {
        Some(&args.cert_fingerprint)
    } else {
        None
    };
    session::runtime()?.block_on(async {
        let s = Session::open(global, insecure).await?;
        let req = pb::ApplyConfigurationRequest {
            data,
            mode: mode as i32,
            dry_run: args.dry_run,
            try_mode_timeout: Some(prost_types::Duration::try_from(args.timeout)?),
        };
        let resp = s
            .client
            .machine()
            .apply_configuration(s.request(req)?)
            .await
            .map_err(|e| session::call_error("error applying new configuration", e))?
            .into_inner();
        let mut errors = NodeErrors::default();
        let messages = session::partition(&s, &mut errors, resp.messages, |m| m.metadata.as_ref());
        for m in &messages {
            for w in &m.warnings {
                eprintln!("WARNING: {w}");
            }
            if !m.mode_details.is_empty() {
                eprintln!("{}", m.mode_details);
            }
        }
        errors.finish()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        use pb::apply_configuration_request::Mode;
        assert_eq!(parse_mode("auto").unwrap(), Mode::Auto);
        assert_eq!(parse_mode("no-reboot").unwrap(), Mode::NoReboot);
        assert_eq!(parse_mode("try").unwrap(), Mode::Try);
        assert!(parse_mode("interactive").is_err());
        assert!(parse_mode("bogus").is_err());
    }
}
