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
//! [`main`] wires the real parts: the service supervisor (which reaps through the one
//! process-wide reaper) and the resource store with its controllers; [`boot`] takes them as
//! trait objects so tests can pass doubles.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use talos::config::Mode;
use talos::constants;
use talos::errors::chain;
use talos::events::EventBus;
use talos::log::LogOptions;
use talos::logbuf::LogBuffers;
use talos::platform::{Cmdline, Platform};
use talos::sys::power::PowerAction;

use super::acquire;
use super::api::{self, Machined};
use super::controllers::{self, observer::load_or_create_node_id, observer::ResourceObserver};
use super::pki::WorkerRetry;
use super::runtime::{BoxFuture, ControlError, MachineStage, NodeObserver, ServiceControl};
use super::sequencer::control::{start_power_sequence, Controls};
use super::sequencer::node::{FinalAction, Node, NodeOptions};
use super::sequencer::sequences;
use super::sequencer::Sequence;
use super::services::ServiceSource;
use super::supervisor::kubelet::kubelet;
use super::supervisor::node::{
    containerd, etcd, networkd, node_services, trustd, AddressesFn, NodeParams, CONTAINERD_BIN,
};
use super::supervisor::{Runner, ServiceSpec};
use super::supervisor::{State as ServiceState, Supervisor, SupervisorOptions};

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
    /// The resource store the COSI API serves.
    pub resources: talos::resources::State,
    /// What the API's ServiceStart/Stop/Restart use (Talos's per-service policy); `None`:
    /// the sequencer's unrestricted control.
    pub api_services: Option<Arc<dyn ServiceControl>>,
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
            machined.resources = ctx.resources.clone();
            machined.service_control = Some(ctx.api_services.clone().unwrap_or(services));
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
            tracing::error!("machined API unavailable: {}", chain(e.as_ref()));
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
            Ok(Ok(Err(e))) => tracing::warn!("machined API: {}", chain(e.as_ref())),
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

/// The real parts of a node: the service supervisor with Talos's services registered (its
/// state changes published as `Services` resources) and the resource controllers.
fn wire_node(
    exe: PathBuf,
    socket: PathBuf,
    logs: Arc<LogBuffers>,
    events: Arc<EventBus>,
    resources: talos::resources::State,
    mode: Mode,
    privileged: bool,
) -> anyhow::Result<(NodeServices, talos::resources::controller::Runtime)> {
    let (supervisor, params) = new_supervisor(exe, socket, logs, events, privileged)?;
    register_node_services(&supervisor, &params);
    // Off the container platform the node brings its own network and extension layer (in a
    // container the provisioner sets up eth0 from the host side, as Docker does for Talos).
    let extensions = if mode.in_container() {
        false
    } else {
        start_networkd(&supervisor, &params);
        start_containerd(&supervisor, &params)
    };
    supervisor.register(kubelet(&params, resources.clone(), extensions));
    publish_service_changes(&supervisor, resources.clone());
    let services: Arc<dyn ServiceControl> = Arc::new(supervisor.clone());
    let runtime = start_controllers(resources, mode, privileged, services);
    let catalog = service_catalog(&params, extensions);
    Ok((NodeServices::new(supervisor, catalog), runtime))
}

/// The supervisor (in machined's cgroup hierarchy when privileged) and the parameters of the
/// node's services.
fn new_supervisor(
    exe: PathBuf,
    socket: PathBuf,
    logs: Arc<LogBuffers>,
    events: Arc<EventBus>,
    privileged: bool,
) -> anyhow::Result<(Supervisor, NodeParams)> {
    let cgroup_root = if privileged {
        talos::sys::cgroup::detect_root(std::path::Path::new(constants::CGROUP_MOUNT_PATH))
    } else {
        None
    };
    let supervisor = Supervisor::new(
        logs,
        events,
        SupervisorOptions {
            cgroup_root: cgroup_root.clone(),
            ..SupervisorOptions::default()
        },
    )
    .context("starting the reaper")?;
    let mut params = NodeParams::new(exe);
    params.machined_socket = socket;
    params.unprivileged = privileged;
    params.namespaces = privileged;
    params.cgroups = cgroup_root.is_some();
    Ok((supervisor, params))
}

/// Registers the services every node runs, and machined itself (Talos's StartMachined):
/// Running at once, healthy as soon as its socket accepts. trustd is registered when the
/// sequencer starts it (control planes only), so workers list it as Talos's do: not at all.
fn register_node_services(supervisor: &Supervisor, params: &NodeParams) {
    for spec in node_services(params, false) {
        supervisor.register(spec);
    }
    let sup = supervisor.clone();
    tokio::spawn(async move {
        if let Err(e) = sup.start("machined").await {
            tracing::warn!("registering machined as a service: {e}");
        }
    });
}

/// Starts `id` without waiting for it; a failure is logged.
fn start_in_background(supervisor: &Supervisor, id: &'static str) {
    let sup = supervisor.clone();
    tokio::spawn(async move {
        if let Err(e) = sup.start(id).await {
            tracing::error!("starting {id}: {e}");
        }
    });
}

/// networkd: brings loopback up and runs DHCP on the physical links (nobody else configures
/// the network off the container platform).
fn start_networkd(supervisor: &Supervisor, params: &NodeParams) {
    let mut spec = networkd(params);
    if let Runner::Process(p) = &mut spec.runner {
        p.args = vec![
            "--machined-socket".into(),
            params.machined_socket.display().to_string(),
        ];
    }
    supervisor.register(spec);
    start_in_background(supervisor, "networkd");
}

/// containerd, from the extension layer (metal images), started early as Talos's is (before
/// the config: maintenance mode has it too). Returns whether the extension layer is there
/// (etcd comes with it).
fn start_containerd(supervisor: &Supervisor, params: &NodeParams) -> bool {
    if !std::path::Path::new(CONTAINERD_BIN).exists() {
        tracing::info!(
            "no extension layer ({CONTAINERD_BIN} missing): containerd and etcd are not available"
        );
        return false;
    }
    supervisor.register(containerd(params));
    start_in_background(supervisor, "containerd");
    true
}

/// Keeps the `Services` resources in step with the supervisor's state changes.
fn publish_service_changes(supervisor: &Supervisor, resources: talos::resources::State) {
    let mut changes = supervisor.subscribe();
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match changes.recv().await {
                Ok(change) => {
                    let running = change.state == ServiceState::Running;
                    if let Err(e) = controllers::publish_service(
                        &resources,
                        &change.id,
                        running,
                        change.healthy,
                        change.unknown,
                    ) {
                        tracing::warn!(service = change.id, "publishing the service resource: {e}");
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!("service resources missed {n} changes");
                }
                Err(RecvError::Closed) => break,
            }
        }
    });
}

/// The resource controllers, with the node's identity (persisted on a privileged node).
fn start_controllers(
    resources: talos::resources::State,
    mode: Mode,
    privileged: bool,
    services: Arc<dyn ServiceControl>,
) -> talos::resources::controller::Runtime {
    let state_dir = std::path::Path::new(constants::STATE_MOUNT_POINT);
    let node_id = load_or_create_node_id(privileged.then_some(state_dir).filter(|d| d.is_dir()));
    let mut runtime = talos::resources::controller::Runtime::new(resources);
    controllers::start(&mut runtime, &controllers::Env::new(mode), &node_id);
    let k8s_env = controllers::k8s::K8sEnv {
        root: PathBuf::from("/"),
        chown: privileged,
        container: mode.in_container(),
    };
    controllers::k8s::start(
        &mut runtime,
        &k8s_env,
        controllers::k8s::node_addresses,
        Some(services),
    );
    runtime
}

/// Services only some nodes run: they wait in the catalog until the sequencer first starts
/// them (so a worker does not list trustd or etcd, as Talos's do not). etcd needs the
/// extension layer.
fn service_catalog(params: &NodeParams, extensions: bool) -> Vec<ServiceSpec> {
    let mut catalog = vec![trustd(params)];
    if extensions {
        let addresses: AddressesFn = Arc::new(|| {
            super::maintenance::reachable_addresses(std::net::IpAddr::V4(
                std::net::Ipv4Addr::UNSPECIFIED,
            ))
            .iter()
            .map(ToString::to_string)
            .collect()
        });
        catalog.push(etcd(params, addresses));
    }
    catalog
}

/// The supervisor as the sequencer sees it, with a catalog of services that only some nodes
/// run (trustd and etcd on control planes; etcd only where the extension layer provides it):
/// a catalog service is registered the first time it is started.
#[derive(Clone)]
struct NodeServices {
    supervisor: Supervisor,
    catalog: Arc<Mutex<Vec<ServiceSpec>>>,
}

impl NodeServices {
    fn new(supervisor: Supervisor, catalog: Vec<ServiceSpec>) -> Self {
        NodeServices {
            supervisor,
            catalog: Arc::new(Mutex::new(catalog)),
        }
    }

    fn ensure_registered(&self, id: &str) {
        let spec = {
            let mut catalog = match self.catalog.lock() {
                Ok(c) => c,
                Err(poisoned) => poisoned.into_inner(),
            };
            match catalog.iter().position(|s| s.id == id) {
                Some(i) => catalog.remove(i),
                None => return,
            }
        };
        self.supervisor.register(spec);
    }
}

impl ServiceControl for NodeServices {
    fn start(&self, id: &str) -> BoxFuture<'_, Result<String, ControlError>> {
        self.ensure_registered(id);
        ServiceControl::start(&self.supervisor, id)
    }
    fn stop(&self, id: &str) -> BoxFuture<'_, Result<String, ControlError>> {
        ServiceControl::stop(&self.supervisor, id)
    }
    fn restart(&self, id: &str) -> BoxFuture<'_, Result<String, ControlError>> {
        ServiceControl::restart(&self.supervisor, id)
    }
    fn wait_up(
        &self,
        ids: &[String],
        timeout: Duration,
    ) -> BoxFuture<'_, Result<(), ControlError>> {
        ServiceControl::wait_up(&self.supervisor, ids, timeout)
    }
    fn stop_all(&self) -> BoxFuture<'_, ()> {
        ServiceControl::stop_all(&self.supervisor)
    }
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

/// The `init` applet in PID-1 mode.
pub fn main(cli: &super::Cli, logs: Arc<LogBuffers>) -> ExitCode {
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
    // An unsupported name falls back to metal; the error is logged once logging is up.
    let (platform, unsupported): (Arc<dyn Platform>, _) =
        match talos::platform::from_name(&platform_name, cmdline.clone(), userdata) {
            Ok(p) => (Arc::from(p), None),
            Err(e) => (
                Arc::new(talos::platform::metal::Metal::new(cmdline.clone())),
                Some(e),
            ),
        };
    talos::log::init(
        &LogOptions::default()
            .plain()
            .buffer(logs.buffer("machined"))
            .controller_runtime(logs.buffer(talos::log::CONTROLLER_RUNTIME))
            .kmsg(!platform.mode().in_container() && is_pid1),
    );
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
        Some(Err(e)) => tracing::error!("early mounts: {}", chain(&e)),
        None => {}
    }
    if let Some(e) = unsupported {
        tracing::error!("{}; using the metal platform", chain(&e));
    }
    if is_pid1 && !platform.mode().in_container() {
        if let Err(e) = talos::sys::power::set_ctrl_alt_del(false) {
            tracing::warn!("disabling Ctrl-Alt-Del: {}", chain(&e));
        }
    }

    let action = run(cli, platform, logs, &cmdline, is_pid1);
    tracing::info!("machined exiting: {action:?}");
    match action {
        FinalAction::Exit(code) => ExitCode::from(code),
        FinalAction::Power(action) if is_pid1 => {
            match talos::sys::power::reboot(action) {
                Ok(never) => match never {},
                Err(e) => tracing::error!("{}", chain(&e)),
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
            tracing::error!("{}", chain(e.as_ref()));
            return crash;
        }
    };
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/sbin/init"));
    let events = Arc::new(EventBus::default());
    let resources = api::cosi::new_state();
    let wired = runtime.block_on(async {
        wire_node(
            exe,
            cli.socket.clone(),
            Arc::clone(&logs),
            Arc::clone(&events),
            resources.clone(),
            platform.mode(),
            is_pid1,
        )
    });
    let (supervisor, controllers) = match wired {
        Ok(w) => w,
        Err(e) => {
            tracing::error!("starting the service supervisor: {}", chain(e.as_ref()));
            return crash;
        }
    };
    let ctx = BootContext {
        socket: cli.socket.clone(),
        options: node_options(cli, &logs, &resources, cmdline, is_pid1),
        platform,
        logs,
        events,
        resources: resources.clone(),
        api_services: Some(supervisor.supervisor.api_control()),
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(async {
            let observer = Arc::new(ResourceObserver::new(resources));
            let services = Arc::new(supervisor.supervisor.clone());
            let action = boot(ctx, Arc::new(supervisor), services, observer).await;
            controllers.stop().await;
            action
        })
    }));
    runtime.shutdown_timeout(Duration::from_secs(1));
    result.unwrap_or_else(|_| {
        tracing::error!("machined panicked; {crash:?}");
        if crash != FinalAction::Exit(1) {
            std::thread::sleep(FATAL_REBOOT_DELAY);
        }
        crash
    })
}

/// The node's settings on a real node (PID 1 mounts, names the host and hands PKI files to
/// the services' users; tests use other settings).
fn node_options(
    cli: &super::Cli,
    logs: &Arc<LogBuffers>,
    resources: &talos::resources::State,
    cmdline: &Cmdline,
    is_pid1: bool,
) -> NodeOptions {
    let maintenance_listen = match cli.listen.parse() {
        Ok(addr) => addr,
        Err(e) => {
            tracing::error!(
                "invalid --listen {:?}: {e}; using {}",
                cli.listen,
                constants::APID_LISTEN_ADDRESS
            );
            constants::APID_LISTEN_ADDRESS
        }
    };
    NodeOptions {
        root: PathBuf::from("/"),
        mount_pseudo: is_pid1,
        set_hostname: is_pid1,
        chown_pki: is_pid1,
        maintenance_listen,
        maintenance: acquire::real_maintenance(Arc::clone(logs), Some(resources.clone())),
        service_timeout: SERVICE_TIMEOUT,
        worker_retry: WorkerRetry::default(),
        trustd_endpoints: None,
        shutdown_action: PowerAction::shutdown_from_kernel_arg(cmdline.get("talos.shutdown")),
    }
}

#[cfg(test)]
mod tests;
