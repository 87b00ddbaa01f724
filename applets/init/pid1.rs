//! PID 1: `talos init` (or `/sbin/init`) without `--api-only`/`--maintenance`.
//!
//! 1. As PID 1: mounts `/proc`, `/sys` and `/dev` first (logging and the kernel command line
//!    need them), and on metal disables Ctrl-Alt-Del so the kernel sends `SIGINT` instead.
//! 2. Picks the platform ([`talos::platform::detect`]: `PLATFORM`, then `talos.platform=`, then
//!    metal) and logs to stderr (the console), the `machined` log buffer, and on metal to
//!    `/dev/kmsg`.
//! 3. [`boot`]: serves machined's API on its socket, runs Initialize (mounts, directories,
//!    config acquisition with maintenance mode) and Boot (PKI, services), and then waits.
//!    Power requests (API, signals) run Reboot/Shutdown/Reset, whose last task records the
//!    [`FinalAction`].
//! 4. Performs it: on the container platform exits with 0 (powered off) or 10 (reboot); on
//!    metal calls `reboot(2)`.
//!
//! Signals: `SIGTERM` and `SIGPWR` shut down; `SIGINT` shuts down on the container platform
//! and reboots on metal (Ctrl-Alt-Del). Failures never end PID 1: a failing sequence is
//! logged and reported (events, machine status) while the API stays up; on metal a failed boot
//! reboots after 10 s. Panics in tasks are caught by the sequencer; a panic elsewhere is caught
//! here.
//!
//! Until the supervisor and resource store are wired in, [`main`] uses [`DirectServices`] (spawns
//! apid/trustd from this executable) and [`LogObserver`]; [`reap_children`] is a stand-in for the
//! one reaper `src/sys/reaper.rs` will provide.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use talos::api::machine as pb;
use talos::events::EventBus;
use talos::logbuf::LogBuffers;
use talos::platform::{Cmdline, Mode, Platform};
use talos::sys::power::PowerAction;

use super::acquire;
use super::api::{self, Machined};
use super::pki::WorkerRetry;
use super::runtime::{BoxFuture, ControlError, MachineStage, NodeObserver, ServiceControl};
use super::sequencer::control::{start_power_sequence, Controls};
use super::sequencer::sequences::{self, FinalAction, Node, NodeOptions};
use super::sequencer::Sequence;
use super::services::{timestamp, ServiceSource};

/// How long a failed boot on metal waits before rebooting.
pub const FATAL_REBOOT_DELAY: Duration = Duration::from_secs(10);
/// How long Boot waits for its services (Talos: 70 min).
pub const SERVICE_TIMEOUT: Duration = Duration::from_secs(70 * 60);
/// How long the API may take to finish in-flight calls when the node goes down.
const API_GRACE: Duration = Duration::from_secs(2);

/// Everything [`boot`] needs besides the supervisor and the resource store.
pub struct BootContext {
    /// machined's API socket.
    pub socket: PathBuf,
    /// Node settings (root, timings, maintenance mode).
    pub options: NodeOptions,
    /// The platform.
    pub platform: Arc<dyn Platform>,
    /// Log buffers (`Logs`).
    pub logs: Arc<LogBuffers>,
    /// The event bus.
    pub events: Arc<EventBus>,
}

/// Runs the node: API server, Initialize, Boot, then waits for a power sequence to finish.
/// Returns how the process must end. Never fails: every error is logged and reported.
pub async fn boot(
    ctx: BootContext,
    services: Arc<dyn ServiceControl>,
    service_source: Arc<dyn ServiceSource>,
    observer: Arc<dyn NodeObserver>,
) -> FinalAction {
    let mode = ctx.platform.mode();
    let node = Node::new(
        ctx.options,
        Arc::clone(&ctx.platform),
        Arc::clone(&services),
        observer,
        Arc::clone(&ctx.events),
    );
    let controls = Arc::new(Controls::new(Arc::clone(&node)));

    // The API first: the node must be reachable whatever happens next.
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let server = match api::bind(&ctx.socket) {
        Ok(listener) => {
            let mut machined = Machined::new(
                Arc::clone(&ctx.logs),
                Arc::clone(&ctx.events),
                service_source,
                api::Platform {
                    name: ctx.platform.name().to_string(),
                    mode: mode.as_str().to_string(),
                },
                shutdown_rx.clone(),
            );
            machined.service_control = Some(services);
            machined.power = Some(controls.clone());
            machined.config_control = Some(controls.clone());
            tracing::info!(socket = %ctx.socket.display(), "machined API listening");
            Some(tokio::spawn(api::serve(
                listener,
                Arc::new(machined),
                api::shutting_down(shutdown_rx),
            )))
        }
        Err(e) => {
            tracing::error!("machined API unavailable: {e:#}");
            None
        }
    };

    tokio::spawn(handle_signals(Arc::clone(&node)));
    tokio::spawn(boot_sequences(Arc::clone(&node)));

    let action = node.final_action().await;
    tracing::info!("final action: {action:?}");
    let _ = shutdown_tx.send(true);
    if let Some(server) = server {
        match tokio::time::timeout(API_GRACE, server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!("machined API: {e:#}"),
            Ok(Err(e)) => tracing::warn!("machined API task: {e}"),
            Err(_) => tracing::warn!("machined API did not stop within {API_GRACE:?}"),
        }
    }
    if let Err(e) = std::fs::remove_file(&ctx.socket) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!("removing {}: {e}", ctx.socket.display());
        }
    }
    action
}

/// Initialize, then Boot; failures are reported and (metal) end in a reboot.
async fn boot_sequences(node: Arc<Node>) {
    node.set_stage(MachineStage::Booting, false, Vec::new());
    let result = match node
        .sequencer
        .run(Sequence::Initialize, sequences::initialize(&node), false)
        .await
    {
        Ok(()) => {
            node.sequencer
                .run(Sequence::Boot, sequences::boot(&node), false)
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            node.set_stage(MachineStage::Running, true, Vec::new());
            tracing::info!("boot sequence finished: the node is running");
        }
        Err(super::sequencer::SequenceError::Canceled(seq)) => {
            tracing::info!("{seq} sequence canceled by another sequence");
        }
        Err(e) => {
            tracing::error!("boot failed: {e}");
            node.set_stage(
                MachineStage::Booting,
                false,
                vec![("boot".into(), e.to_string())],
            );
            if node.mode() != Mode::Container {
                tracing::error!("rebooting in {FATAL_REBOOT_DELAY:?}");
                tokio::time::sleep(FATAL_REBOOT_DELAY).await;
                node.finish(FinalAction::Power(PowerAction::Restart));
            } else {
                tracing::error!("the node stays up in this state: the API remains available");
            }
        }
    }
}

/// The power sequence a signal asks for.
pub fn sequence_for_signal(mode: Mode, signal: i32) -> Option<Sequence> {
    use nix::sys::signal::Signal;
    match Signal::try_from(signal).ok()? {
        Signal::SIGTERM | Signal::SIGPWR => Some(Sequence::Shutdown),
        Signal::SIGINT if mode == Mode::Container => Some(Sequence::Shutdown),
        Signal::SIGINT => Some(Sequence::Reboot),
        _ => None,
    }
}

async fn handle_signals(node: Arc<Node>) {
    use tokio::signal::unix::{signal, SignalKind};
    let kinds = [
        (
            "SIGTERM",
            SignalKind::terminate(),
            libc_signal(nix::sys::signal::Signal::SIGTERM),
        ),
        (
            "SIGINT",
            SignalKind::interrupt(),
            libc_signal(nix::sys::signal::Signal::SIGINT),
        ),
        (
            "SIGPWR",
            SignalKind::from_raw(libc_signal(nix::sys::signal::Signal::SIGPWR)),
            libc_signal(nix::sys::signal::Signal::SIGPWR),
        ),
    ];
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (name, kind, number) in kinds {
        match signal(kind) {
            Ok(mut stream) => {
                let tx = tx.clone();
                tokio::spawn(async move {
                    while stream.recv().await.is_some() {
                        if tx.send((name, number)).is_err() {
                            break;
                        }
                    }
                });
            }
            Err(e) => tracing::error!("cannot handle {name}: {e}"),
        }
    }
    drop(tx);
    while let Some((name, number)) = rx.recv().await {
        let Some(sequence) = sequence_for_signal(node.mode(), number) else {
            continue;
        };
        tracing::info!("{name} received: running the {sequence} sequence");
        let phases = match sequence {
            Sequence::Reboot => sequences::reboot(&node),
            _ => sequences::shutdown(&node),
        };
        if let Err(e) = start_power_sequence(&node, sequence, phases, true) {
            tracing::error!("{sequence} after {name}: {e}");
        }
    }
}

fn libc_signal(signal: nix::sys::signal::Signal) -> i32 {
    signal as i32
}

/// Reaps every exited child (this process is PID 1, so orphans are ours too) and logs it.
///
/// Stand-in until `src/sys/reaper.rs` lands: exactly one reaper may call `waitpid`, and the
/// lead replaces this with that one.
pub async fn reap_children() {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigchld = match signal(SignalKind::child()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot watch SIGCHLD, children will not be reaped: {e}");
            return;
        }
    };
    loop {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(WaitStatus::Exited(pid, code)) => {
                    tracing::debug!(pid = pid.as_raw(), code, "child exited")
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    tracing::debug!(pid = pid.as_raw(), signal = ?sig, "child killed")
                }
                Ok(_) => {}
            }
        }
        if sigchld.recv().await.is_none() {
            return;
        }
    }
}

/// Logs what the sequencer reports (stand-in for the resource store).
#[derive(Debug, Default)]
pub struct LogObserver;

impl NodeObserver for LogObserver {
    fn config_loaded(&self, config: Arc<talos::config::Config>) {
        let kind = config
            .v1alpha1()
            .and_then(|c| c.machine.as_ref())
            .map(|m| m.machine_type.clone())
            .unwrap_or_default();
        tracing::info!(machine_type = kind, "machine config active");
    }

    fn stage(&self, stage: MachineStage) {
        tracing::info!(stage = stage.as_str(), "machine stage");
    }

    fn ready(&self, ready: bool, unmet: Vec<String>) {
        if !unmet.is_empty() {
            tracing::info!(ready, unmet = unmet.join("; "), "machine status");
        }
    }
}

#[derive(Debug, Clone)]
struct DirectService {
    pid: Option<i32>,
    state: &'static str,
    since: SystemTime,
    message: String,
}

/// A minimal [`ServiceControl`]: runs apid and trustd from this executable (argv[0] = the
/// service id), without restarts or health checks beyond "its port accepts connections".
/// Stand-in for the supervisor, and the test double of the sequencer tests.
pub struct DirectServices {
    exe: PathBuf,
    root: PathBuf,
    socket: PathBuf,
    services: Mutex<HashMap<String, DirectService>>,
    order: Mutex<Vec<String>>,
    started: SystemTime,
}

impl DirectServices {
    /// Services spawned from `exe`, with their files below `root` and machined on `socket`.
    pub fn new(exe: PathBuf, root: PathBuf, socket: PathBuf) -> Self {
        DirectServices {
            exe,
            root,
            socket,
            services: Mutex::new(HashMap::new()),
            order: Mutex::new(Vec::new()),
            started: SystemTime::now(),
        }
    }

    fn args(&self, id: &str) -> Result<(Vec<String>, u16), ControlError> {
        let path = |p: &str| self.root.join(p).display().to_string();
        match id {
            "apid" => Ok((
                vec![
                    "--pki-dir".into(),
                    path(super::pki::APID_DIR),
                    "--machined-socket".into(),
                    self.socket.display().to_string(),
                ],
                50000,
            )),
            "trustd" => Ok((
                vec![
                    "--pki-dir".into(),
                    path(super::pki::TRUSTD_DIR),
                    "--token-file".into(),
                    format!(
                        "{}/{}",
                        path(super::pki::TRUSTD_DIR),
                        super::pki::TOKEN_FILE
                    ),
                ],
                50001,
            )),
            other => Err(ControlError::NotFound(format!(
                "service {other:?} not found"
            ))),
        }
    }

    fn set(&self, id: &str, pid: Option<i32>, state: &'static str, message: String) {
        if let Ok(mut services) = self.services.lock() {
            services.insert(
                id.to_string(),
                DirectService {
                    pid,
                    state,
                    since: SystemTime::now(),
                    message,
                },
            );
        }
    }

    fn pid(&self, id: &str) -> Option<i32> {
        self.services
            .lock()
            .ok()
            .and_then(|s| s.get(id).and_then(|s| s.pid))
    }

    async fn stop_one(&self, id: &str) -> Result<String, ControlError> {
        use nix::sys::signal::{kill, Signal};
        let Some(pid) = self.pid(id) else {
            return Ok(format!("Service {id:?} stopped"));
        };
        let target = nix::unistd::Pid::from_raw(pid);
        let _ = kill(target, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while process_alive(pid) {
            if Instant::now() > deadline {
                let _ = kill(target, Signal::SIGKILL);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.set(id, None, "Finished", "Service finished successfully".into());
        Ok(format!("Service {id:?} stopped"))
    }
}

/// Whether `pid` exists and is not a zombie.
fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
            .unwrap_or(false),
        Err(_) => false,
    }
}

impl ServiceControl for DirectServices {
    fn start(&self, id: &str) -> BoxFuture<'_, Result<String, ControlError>> {
        let id = id.to_string();
        Box::pin(async move {
            if self.pid(&id).is_some_and(process_alive) {
                return Ok(format!("Service {id:?} started"));
            }
            let (args, _) = self.args(&id)?;
            let child = std::process::Command::new(&self.exe)
                .arg0(&id)
                .args(&args)
                .stdin(std::process::Stdio::null())
                .spawn()
                .map_err(|e| {
                    ControlError::Internal(format!("starting {id} ({}): {e}", self.exe.display()))
                })?;
            let pid = i32::try_from(child.id()).unwrap_or(0);
            // The reaper collects it; the handle is not needed.
            drop(child);
            self.set(&id, Some(pid), "Running", "Started task".into());
            if let Ok(mut order) = self.order.lock() {
                order.retain(|s| s != &id);
                order.push(id.clone());
            }
            Ok(format!("Service {id:?} started"))
        })
    }

    fn stop(&self, id: &str) -> BoxFuture<'_, Result<String, ControlError>> {
        let id = id.to_string();
        Box::pin(async move {
            self.args(&id)?;
            self.stop_one(&id).await
        })
    }

    fn restart(&self, id: &str) -> BoxFuture<'_, Result<String, ControlError>> {
        let id = id.to_string();
        Box::pin(async move {
            self.stop(&id).await?;
            self.start(&id).await?;
            Ok(format!("Service {id:?} restarted"))
        })
    }

    fn wait_up(
        &self,
        ids: &[String],
        timeout: Duration,
    ) -> BoxFuture<'_, Result<(), ControlError>> {
        let ids = ids.to_vec();
        Box::pin(async move {
            let deadline = Instant::now() + timeout;
            for id in &ids {
                let (_, port) = self.args(id)?;
                loop {
                    if !self.pid(id).is_some_and(process_alive) {
                        self.set(id, None, "Failed", "process exited".into());
                        return Err(ControlError::FailedPrecondition(format!(
                            "service {id} is not running"
                        )));
                    }
                    let addr = SocketAddr::from(([127, 0, 0, 1], port));
                    if tokio::net::TcpStream::connect(addr).await.is_ok() {
                        break;
                    }
                    if Instant::now() > deadline {
                        return Err(ControlError::FailedPrecondition(format!(
                            "service {id} did not come up within {timeout:?}"
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            Ok(())
        })
    }

    fn stop_all(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let order: Vec<String> = self
                .order
                .lock()
                .map(|o| o.iter().rev().cloned().collect())
                .unwrap_or_default();
            for id in order {
                if let Ok(message) = self.stop_one(&id).await {
                    tracing::info!("{message}");
                }
            }
        })
    }
}

impl ServiceSource for DirectServices {
    fn list(&self) -> Vec<pb::ServiceInfo> {
        let entry = |id: &str, state: &str, since: SystemTime, message: &str, healthy: bool| {
            let ts = Some(timestamp(since));
            pb::ServiceInfo {
                id: id.into(),
                state: state.into(),
                events: Some(pb::ServiceEvents {
                    events: vec![pb::ServiceEvent {
                        msg: message.into(),
                        state: state.into(),
                        ts,
                    }],
                }),
                health: Some(pb::ServiceHealth {
                    unknown: false,
                    healthy,
                    last_message: String::new(),
                    last_change: ts,
                }),
            }
        };
        let mut out = vec![entry(
            "machined",
            "Running",
            self.started,
            "Service started as goroutine",
            true,
        )];
        if let Ok(services) = self.services.lock() {
            let mut ids: Vec<&String> = services.keys().collect();
            ids.sort();
            for id in ids {
                let s = &services[id];
                let alive = s.pid.is_some_and(process_alive);
                let state = if s.state == "Running" && !alive {
                    "Failed"
                } else {
                    s.state
                };
                out.push(entry(id, state, s.since, &s.message, alive));
            }
        }
        out
    }
}

/// Writes each log line as one `/dev/kmsg` record.
#[derive(Clone)]
struct Kmsg(Arc<Mutex<std::fs::File>>);

impl std::io::Write for Kmsg {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut line = b"<6>[talos] ".to_vec();
        line.extend_from_slice(&buf[..buf.len().min(900)]);
        if let Ok(mut file) = self.0.lock() {
            // The kernel log is best effort: a lost line must not stop PID 1.
            let _ = file.write(&line);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_tracing(logs: &LogBuffers, kmsg: bool) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .with_timer(talos::logbuf::TalosTime);
    let kmsg_layer = kmsg
        .then(|| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(talos::sys::kmsg::KMSG_PATH)
                .ok()
        })
        .flatten()
        .map(|file| {
            let writer = Kmsg(Arc::new(Mutex::new(file)));
            tracing_subscriber::fmt::layer()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .with_target(false)
                .without_time()
        });
    let buffer = logs.buffer("machined");
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(kmsg_layer)
        .with(talos::logbuf::fmt_layer(&buffer))
        .try_init();
}

/// The `init` applet in PID-1 mode.
pub fn main(cli: &super::Cli) -> ExitCode {
    let is_pid1 = std::process::id() == 1;
    let early = is_pid1.then(|| {
        let table: Vec<_> = talos::sys::mount::PSEUDO_FILESYSTEMS
            .iter()
            .copied()
            .filter(|m| m.early)
            .collect();
        talos::sys::mount::mount_table(std::path::Path::new("/"), &table)
    });
    let cmdline = Cmdline::read(std::path::Path::new(talos::platform::cmdline::PROC_CMDLINE));
    let platform_name =
        talos::platform::detect(std::env::var("PLATFORM").ok().as_deref(), &cmdline);
    let userdata = std::env::var(talos::platform::container::USERDATA_ENV).ok();
    let logs = Arc::new(LogBuffers::default());
    init_tracing(&logs, platform_name != "container" && is_pid1);
    tracing::info!(
        version = talos::version::TALOS_VERSION,
        platform = platform_name,
        pid1 = is_pid1,
        "machined starting"
    );
    match early {
        Some(Ok(outcomes)) => {
            for (target, outcome) in outcomes {
                tracing::info!("{target}: {outcome:?}");
            }
        }
        Some(Err(e)) => tracing::error!("early mounts: {e}"),
        None => {}
    }
    let platform: Arc<dyn Platform> =
        match talos::platform::from_name(&platform_name, cmdline.clone(), userdata) {
            Ok(p) => Arc::from(p),
            Err(e) => {
                tracing::error!("{e}; using the metal platform");
                Arc::new(talos::platform::metal::Metal::new(cmdline.clone()))
            }
        };
    if is_pid1 && platform.mode() != Mode::Container {
        if let Err(e) = talos::sys::power::set_ctrl_alt_del(false) {
            tracing::warn!("disabling Ctrl-Alt-Del: {e}");
        }
    }

    let action = run(cli, platform, logs, &cmdline, is_pid1);
    tracing::info!("machined exiting: {action:?}");
    match action {
        FinalAction::Exit(code) => ExitCode::from(code),
        FinalAction::Power(action) if is_pid1 => {
            match talos::sys::power::reboot(action) {
                Ok(never) => match never {},
                Err(e) => tracing::error!("{e}"),
            }
            // PID 1 must not exit (the kernel would panic): wait for someone to pull the plug.
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        FinalAction::Power(_) => ExitCode::SUCCESS,
    }
}

fn run(
    cli: &super::Cli,
    platform: Arc<dyn Platform>,
    logs: Arc<LogBuffers>,
    cmdline: &Cmdline,
    is_pid1: bool,
) -> FinalAction {
    let crash = match platform.mode() {
        Mode::Container => FinalAction::Exit(1),
        _ => FinalAction::Power(PowerAction::Restart),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("{e:#}");
            return crash;
        }
    };
    let listen = match cli.listen.parse() {
        Ok(addr) => addr,
        Err(e) => {
            tracing::error!(
                "invalid --listen {:?}: {e}; using 0.0.0.0:50000",
                cli.listen
            );
            SocketAddr::from(([0, 0, 0, 0], 50000))
        }
    };
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/sbin/init"));
    let root = PathBuf::from("/");
    let services = Arc::new(DirectServices::new(exe, root.clone(), cli.socket.clone()));
    let ctx = BootContext {
        socket: cli.socket.clone(),
        options: NodeOptions {
            root,
            mount_pseudo: is_pid1,
            set_hostname: is_pid1,
            chown_pki: false,
            maintenance_listen: listen,
            maintenance: acquire::real_maintenance(Arc::clone(&logs)),
            service_timeout: SERVICE_TIMEOUT,
            worker_retry: WorkerRetry::default(),
            trustd_endpoints: None,
            shutdown_action: PowerAction::shutdown_from_kernel_arg(cmdline.get("talos.shutdown")),
        },
        platform,
        logs,
        events: Arc::new(EventBus::default()),
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(async {
            tokio::spawn(reap_children());
            boot(
                ctx,
                services.clone(),
                services.clone(),
                Arc::new(LogObserver),
            )
            .await
        })
    }));
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(action) => action,
        Err(_) => {
            tracing::error!("machined panicked; {crash:?}");
            if crash != FinalAction::Exit(1) {
                std::thread::sleep(FATAL_REBOOT_DELAY);
            }
            crash
        }
    }
}

#[cfg(test)]
mod tests;
