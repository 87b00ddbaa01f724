//! The `init` applet, also called `machined`.
//!
//! ```text
//! talos init                      # PID 1 (see [`pid1`]): mounts, sequencer, API, services
//! talos machined --api-only [--socket PATH] [--state-dir DIR] [--platform container|metal]
//! talos machined --maintenance [--listen ADDR] --state-dir DIR
//! ```
//!
//! `--api-only` serves only machined's API (see [`api`]) on a unix socket (mode 0600; a stale
//! socket is replaced; the socket is removed on SIGTERM/SIGINT), for development and tests.
//! Logs go to stderr and to the in-memory buffer of service `machined`, which `Logs` serves.

pub mod acquire;
pub mod api;
pub mod controllers;
pub mod maintenance;
pub mod pid1;
pub mod pki;
pub mod runtime;
pub mod sequencer;
pub mod services;
pub mod stage1;
pub mod supervisor;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::builder::{PossibleValuesParser, TypedValueParser as _};
use clap::Parser;
use talos::config::Mode;
use talos::constants::{APID_LISTEN_ADDRESS, MACHINE_SOCKET_PATH};
use talos::events::EventBus;
use talos::log::LogOptions;
use talos::logbuf::LogBuffers;

use crate::edge::{self, Errors, UsageError};

/// How long a graceful shutdown may take before machined exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// machined: the Talos init process and node API.
#[derive(Debug, Parser)]
#[command(name = "machined", version = talos::version::TALOS_VERSION)]
pub struct Cli {
    /// Run only the API server (no PID 1 duties): for development and tests.
    #[arg(long)]
    pub api_only: bool,

    /// Serve the maintenance-mode API (no config yet) until a config is applied.
    #[arg(long, conflicts_with = "api_only")]
    pub maintenance: bool,

    /// Address the maintenance API listens on.
    #[arg(long, value_name = "ADDR", default_value_t = APID_LISTEN_ADDRESS.to_string())]
    pub listen: String,

    /// Unix socket to serve the API on.
    #[arg(long, value_name = "PATH", default_value = MACHINE_SOCKET_PATH)]
    pub socket: PathBuf,

    /// Directory for machined's persistent state (created if missing).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Platform reported by Version (and the mode maintenance mode validates for).
    #[arg(long, env = "TALOS_PLATFORM", default_value_t = Mode::Container,
          value_parser = PossibleValuesParser::new([Mode::Container.as_str(), Mode::Metal.as_str()])
              .try_map(|s| s.parse::<Mode>()))]
    pub platform: Mode,
}

impl Cli {
    /// Whether this is the node's init (neither `--api-only` nor `--maintenance`).
    fn is_node_init(&self) -> bool {
        !self.api_only && !self.maintenance
    }
}

/// Entry point of the `init` applet.
pub fn main(args: Vec<OsString>) -> ExitCode {
    // PID 1 of the initramfs (`/init`): stage 1 mounts the real root and execs /sbin/init.
    if stage1::is_stage1(&args) {
        return stage1::main();
    }
    let logs = Arc::new(LogBuffers::default());
    let buffer = logs.buffer("machined");
    edge::main(
        args,
        Errors::Named("machined"),
        // The node's init sets up its logging itself once /dev is there (see `pid1`).
        |cli: &Cli| (!cli.is_node_init()).then(|| LogOptions::default().buffer(buffer)),
        |cli| run(cli, logs),
    )
}

fn run(cli: Cli, logs: Arc<LogBuffers>) -> anyhow::Result<ExitCode> {
    if cli.maintenance {
        maintenance::main(&cli, logs)?;
    } else if cli.api_only {
        run_api_only(cli, logs)?;
    } else if std::process::id() == 1 {
        return Ok(pid1::main(&cli, logs));
    } else {
        return Err(UsageError(
            "not running as PID 1; the node's init must be PID 1 (use --api-only or \
             --maintenance for development)"
                .into(),
        )
        .into());
    }
    Ok(ExitCode::SUCCESS)
}

fn prepare_state_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating state directory {}", dir.display()))
}

fn run_api_only(cli: Cli, logs: Arc<LogBuffers>) -> anyhow::Result<()> {
    if let Some(dir) = &cli.state_dir {
        prepare_state_dir(dir)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(serve_api_only(&cli, logs));
    // Streams still blocked on the file system must not keep us alive.
    runtime.shutdown_timeout(Duration::from_secs(1));
    if let Err(e) = std::fs::remove_file(&cli.socket) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(socket = %cli.socket.display(), "removing the socket: {e}");
        }
    }
    result
}

async fn serve_api_only(cli: &Cli, logs: Arc<LogBuffers>) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;

    let listener = api::bind(&cli.socket)?;
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let events = Arc::new(EventBus::default());
    let platform = api::Platform {
        name: cli.platform.to_string(),
        mode: cli.platform.to_string(),
    };
    let state = Arc::new(api::Machined::new(
        logs,
        Arc::clone(&events),
        Arc::new(services::ApiOnlyServices::new()),
        platform,
        shutdown_rx.clone(),
    ));
    let controllers =
        controllers::start_api_only(&state.resources, cli.platform, cli.state_dir.as_deref());
    tracing::info!(
        socket = %cli.socket.display(),
        state_dir = %cli.state_dir.as_deref().map(|d| d.display().to_string()).unwrap_or_default(),
        version = talos::version::TALOS_VERSION,
        "machined API listening (api-only mode)"
    );
    api::machine::publish_service_state(
        &events,
        "machined",
        talos::api::machine::service_state_event::Action::Running,
        "Service started as goroutine",
        true,
    );

    let server = tokio::spawn(api::serve(listener, state, api::shutting_down(shutdown_rx)));
    tokio::select! {
        _ = sigterm.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = sigint.recv() => tracing::info!("SIGINT received, shutting down"),
    }
    let _ = shutdown_tx.send(true);
    controllers.stop().await;
    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(anyhow::anyhow!("API server task failed: {e}")),
        Err(_) => {
            tracing::warn!("API server did not stop within {SHUTDOWN_GRACE:?}; exiting anyway");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_is_parsed_once_into_the_mode() {
        let cli = Cli::try_parse_from(["machined", "--api-only"]).expect("defaults");
        assert_eq!(cli.platform, Mode::Container);
        assert_eq!(cli.socket, PathBuf::from(MACHINE_SOCKET_PATH));
        assert_eq!(cli.listen, "0.0.0.0:50000");
        let cli =
            Cli::try_parse_from(["machined", "--api-only", "--platform", "metal"]).expect("metal");
        assert_eq!(cli.platform, Mode::Metal);
        // Only the platforms this build runs are accepted here.
        let err = Cli::try_parse_from(["machined", "--api-only", "--platform", "cloud"])
            .expect_err("cloud");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn only_the_plain_invocation_is_the_node_init() {
        let parse = |a: &[&str]| Cli::try_parse_from(a).expect("parses");
        assert!(parse(&["init"]).is_node_init());
        assert!(!parse(&["init", "--api-only"]).is_node_init());
        assert!(!parse(&["init", "--maintenance"]).is_node_init());
    }
}
