//! [`boot`] end to end in-process: a temp root, the container platform with a fixture config,
//! a recording [`ServiceControl`] double, the API on a temp socket.

use base64::Engine as _;
use hyper_util::rt::TokioIo;
use talos::api::machine::machine_service_client::MachineServiceClient;
use talos::platform::container::Container;
use tonic::transport::{Channel, Endpoint, Uri};

use super::*;
use crate::init::acquire::MaintenanceFn;
use crate::init::runtime::{
    ApplyRequest, BoxFuture, ConfigControl, ControlError, PowerControl, PowerRequest,
};
use crate::init::sequencer::node;
use std::time::Instant;
use talos::api::machine as pb;

/// Records calls; every service comes up at once.
#[derive(Default)]
struct FakeServices {
    calls: Mutex<Vec<String>>,
}

impl FakeServices {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("calls").clone()
    }
}

impl ServiceControl for FakeServices {
    fn start(&self, id: &str) -> BoxFuture<'_, Result<String, ControlError>> {
        self.calls
            .lock()
            .expect("calls")
            .push(format!("start {id}"));
        let message = format!("Service {id:?} started");
        Box::pin(async move { Ok(message) })
    }
    fn stop(&self, id: &str) -> BoxFuture<'_, Result<String, ControlError>> {
        self.calls.lock().expect("calls").push(format!("stop {id}"));
        let message = format!("Service {id:?} stopped");
        Box::pin(async move { Ok(message) })
    }
    fn restart(&self, id: &str) -> BoxFuture<'_, Result<String, ControlError>> {
        self.stop(id)
    }
    fn wait_up(
        &self,
        ids: &[String],
        _timeout: Duration,
    ) -> BoxFuture<'_, Result<(), ControlError>> {
        self.calls
            .lock()
            .expect("calls")
            .push(format!("wait {}", ids.join(",")));
        Box::pin(async { Ok(()) })
    }
    fn stop_all(&self) -> BoxFuture<'_, ()> {
        self.calls.lock().expect("calls").push("stop_all".into());
        Box::pin(async {})
    }
}

#[derive(Default)]
struct Recorder {
    stages: Mutex<Vec<MachineStage>>,
    configs: Mutex<u32>,
}

impl NodeObserver for Recorder {
    fn config_loaded(&self, _config: Arc<talos::config::Config>) {
        *self.configs.lock().expect("configs") += 1;
    }
    fn stage(&self, stage: MachineStage) {
        self.stages.lock().expect("stages").push(stage);
    }
    fn ready(&self, _ready: bool, _unmet: Vec<String>) {}
}

fn fixture() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/pid1/controlplane.yaml"
    ))
    .expect("fixture")
}

fn no_maintenance() -> MaintenanceFn {
    Arc::new(|_| Box::pin(async { Ok(None) }))
}

struct Harness {
    dir: tempfile::TempDir,
    socket: PathBuf,
    services: Arc<FakeServices>,
    observer: Arc<Recorder>,
    events: Arc<EventBus>,
    handle: tokio::task::JoinHandle<FinalAction>,
}

impl Harness {
    async fn wait_running(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self
            .observer
            .stages
            .lock()
            .expect("stages")
            .contains(&MachineStage::Running)
        {
            assert!(
                Instant::now() < deadline,
                "not running: {:?}",
                self.observer.stages.lock().expect("stages")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn client(&self) -> MachineServiceClient<Channel> {
        let socket = self.socket.clone();
        let channel = Endpoint::try_from("http://machined.invalid")
            .expect("endpoint")
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let socket = socket.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(
                        tokio::net::UnixStream::connect(socket).await?,
                    ))
                }
            }))
            .await
            .expect("connect");
        MachineServiceClient::new(channel)
    }
}

fn start(userdata: Option<Vec<u8>>) -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("system/run/machined/machine.sock");
    let services = Arc::new(FakeServices::default());
    let observer = Arc::new(Recorder::default());
    let events = Arc::new(EventBus::new(1000, 0));
    let userdata = userdata.map(|d| base64::engine::general_purpose::STANDARD.encode(d));
    let ctx = BootContext {
        socket: socket.clone(),
        options: NodeOptions {
            root: dir.path().to_path_buf(),
            mount_pseudo: false,
            set_hostname: false,
            chown_pki: false,
            maintenance_listen: "127.0.0.1:0".parse().expect("addr"),
            maintenance: no_maintenance(),
            service_timeout: Duration::from_secs(5),
            worker_retry: WorkerRetry::default(),
            trustd_endpoints: None,
            shutdown_action: PowerAction::PowerOff,
        },
        platform: Arc::new(Container::new(userdata)),
        logs: Arc::new(LogBuffers::default()),
        events: Arc::clone(&events),
        resources: talos::resources::State::new(),
        api_services: None,
    };
    let handle = tokio::spawn(boot(
        ctx,
        services.clone(),
        Arc::new(super::super::services::ApiOnlyServices::new()),
        observer.clone(),
    ));
    Harness {
        dir,
        socket,
        services,
        observer,
        events,
        handle,
    }
}

fn controls_for(h: &Harness) -> Controls {
    // A second face on the same node is not reachable from outside boot(); go through the
    // API instead where the node matters. This helper is for validation-only checks.
    let node = Node::new(
        NodeOptions {
            root: h.dir.path().to_path_buf(),
            mount_pseudo: false,
            set_hostname: false,
            chown_pki: false,
            maintenance_listen: "127.0.0.1:0".parse().expect("addr"),
            maintenance: no_maintenance(),
            service_timeout: Duration::from_secs(5),
            worker_retry: WorkerRetry::default(),
            trustd_endpoints: None,
            shutdown_action: PowerAction::PowerOff,
        },
        Arc::new(Container::new(None)),
        h.services.clone(),
        h.observer.clone(),
        Arc::clone(&h.events),
    );
    Controls::new(node)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_node_boots_serves_the_api_and_shuts_down() {
    let h = start(Some(fixture()));
    h.wait_running().await;
    let root = h.dir.path();
    // Layout, persisted config, PKI.
    for dir in [
        "system/state",
        "system/secrets",
        "system/run",
        "var/log/pods",
        "var/lib/kubelet",
    ] {
        assert!(root.join(dir).is_dir(), "{dir}");
    }
    assert_eq!(
        std::fs::read(root.join("system/state/config.yaml")).expect("config"),
        fixture()
    );
    for file in [
        "system/secrets/apid/ca.crt",
        "system/secrets/apid/ca.key",
        "system/secrets/trustd/server.crt",
        "system/secrets/trustd/token",
    ] {
        assert!(root.join(file).is_file(), "{file}");
    }
    assert_eq!(
        h.services.calls(),
        // etcd is asked for but not waited for (it waits for `talosctl bootstrap`).
        vec![
            "start apid",
            "start trustd",
            "start etcd",
            "wait apid,trustd"
        ]
    );

    let mut client = h.client().await;
    let version = client.version(()).await.expect("Version").into_inner();
    let platform = version.messages[0].platform.clone().expect("platform");
    assert_eq!(
        (platform.name.as_str(), platform.mode.as_str()),
        ("container", "container")
    );

    // Sequencer events are on the bus.
    let mut sub = h.events.subscribe(talos::events::WatchOptions {
        tail: talos::events::Tail::Count(-1),
        actor_id: None,
    });
    let mut kinds = std::collections::HashSet::new();
    while let Some(e) = sub.try_next() {
        kinds.insert(e.type_url.clone());
    }
    for kind in [
        "SequenceEvent",
        "PhaseEvent",
        "TaskEvent",
        "MachineStatusEvent",
    ] {
        assert!(
            kinds.contains(&format!("talos/runtime/machine.{kind}")),
            "{kind} missing: {kinds:?}"
        );
    }

    // Shutdown through the API: services stopped, exit code 0, socket removed.
    client
        .shutdown(pb::ShutdownRequest::default())
        .await
        .expect("Shutdown");
    let action = tokio::time::timeout(Duration::from_secs(20), h.handle)
        .await
        .expect("in time")
        .expect("join");
    assert_eq!(action, FinalAction::Exit(node::EXIT_POWER_OFF));
    assert!(h.services.calls().contains(&"stop_all".to_string()));
    assert!(!h.socket.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_wipes_state_and_var_then_reboots() {
    let h = start(Some(fixture()));
    h.wait_running().await;
    std::fs::write(h.dir.path().join("var/lib/data"), b"x").expect("var file");
    let mut client = h.client().await;
    client
        .reset(pb::ResetRequest {
            reboot: true,
            ..Default::default()
        })
        .await
        .expect("Reset");
    let action = tokio::time::timeout(Duration::from_secs(20), h.handle)
        .await
        .expect("in time")
        .expect("join");
    assert_eq!(action, FinalAction::Exit(node::EXIT_REBOOT));
    assert!(!h.dir.path().join("system/state/config.yaml").exists());
    assert!(!h.dir.path().join("var/lib").exists());
    assert!(
        h.dir.path().join("var").is_dir(),
        "the mount point itself stays"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_modes() {
    let h = start(Some(fixture()));
    h.wait_running().await;
    let mut client = h.client().await;
    use pb::apply_configuration_request::Mode as M;

    // Invalid: refused, naming the key; the stored config is untouched.
    let bad = String::from_utf8(fixture())
        .expect("utf8")
        .replace("type: controlplane", "type: bogus");
    let err = client
        .apply_configuration(pb::ApplyConfigurationRequest {
            data: bad.into_bytes(),
            mode: M::NoReboot as i32,
            ..Default::default()
        })
        .await
        .expect_err("invalid");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("machine.type"), "{}", err.message());
    assert_eq!(
        std::fs::read(h.dir.path().join("system/state/config.yaml")).expect("config"),
        fixture()
    );

    // Try: not supported.
    let err = client
        .apply_configuration(pb::ApplyConfigurationRequest {
            data: fixture(),
            mode: M::Try as i32,
            ..Default::default()
        })
        .await
        .expect_err("try");
    assert_eq!(err.code(), tonic::Code::Unimplemented);

    // No-reboot with the same PKI: applied live, the observer hears of it.
    let before = *h.observer.configs.lock().expect("configs");
    let reply = client
        .apply_configuration(pb::ApplyConfigurationRequest {
            data: fixture(),
            mode: M::Auto as i32,
            ..Default::default()
        })
        .await
        .expect("auto")
        .into_inner();
    assert_eq!(reply.messages[0].mode, M::NoReboot as i32);
    assert_eq!(*h.observer.configs.lock().expect("configs"), before + 1);

    // Dry run reports only.
    let reply = client
        .apply_configuration(pb::ApplyConfigurationRequest {
            data: fixture(),
            mode: M::Reboot as i32,
            dry_run: true,
            ..Default::default()
        })
        .await
        .expect("dry run")
        .into_inner();
    assert!(reply.messages[0].mode_details.starts_with("Dry run"));

    // Reboot mode: persisted, then the node reboots (exit 10).
    client
        .apply_configuration(pb::ApplyConfigurationRequest {
            data: fixture(),
            mode: M::Reboot as i32,
            ..Default::default()
        })
        .await
        .expect("reboot");
    let action = tokio::time::timeout(Duration::from_secs(20), h.handle)
        .await
        .expect("in time")
        .expect("join");
    assert_eq!(action, FinalAction::Exit(node::EXIT_REBOOT));
}

#[tokio::test]
async fn no_reboot_refuses_a_machine_type_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness {
        socket: dir.path().join("unused.sock"),
        dir,
        services: Arc::default(),
        observer: Arc::default(),
        events: Arc::new(EventBus::new(100, 0)),
        handle: tokio::spawn(async { FinalAction::Exit(0) }),
    };
    let controls = controls_for(&h);
    let cp = talos::config::Config::from_yaml(&fixture(), "fixture").expect("config");
    controls_node(&controls).set_config(Arc::new(cp));
    let worker = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/pid1/worker.yaml"
    ))
    .expect("worker");
    let err = controls
        .apply(ApplyRequest {
            data: worker,
            mode: pb::apply_configuration_request::Mode::NoReboot,
            dry_run: false,
        })
        .await
        .expect_err("needs reboot");
    assert!(err.to_string().contains("machine.type changed"), "{err}");
    assert!(!h.dir.path().join("system/state/config.yaml").exists());

    // Unknown reset labels are refused before anything runs.
    let err = controls
        .request(PowerRequest::Reset {
            graceful: false,
            reboot: false,
            system_labels: vec!["BOOT".into()],
        })
        .expect_err("label");
    assert!(matches!(err, ControlError::InvalidArgument(_)), "{err}");
}

fn controls_node(controls: &Controls) -> Arc<Node> {
    controls.node()
}

#[test]
fn signals_map_to_sequences() {
    use nix::sys::signal::Signal;
    let s = |m, sig: Signal| sequence_for_signal(m, sig as i32);
    assert_eq!(
        s(Mode::Container, Signal::SIGTERM),
        Some(Sequence::Shutdown)
    );
    assert_eq!(s(Mode::Container, Signal::SIGINT), Some(Sequence::Shutdown));
    assert_eq!(s(Mode::Metal, Signal::SIGINT), Some(Sequence::Reboot));
    assert_eq!(s(Mode::Metal, Signal::SIGPWR), Some(Sequence::Shutdown));
    assert_eq!(s(Mode::Metal, Signal::SIGHUP), None);
}

/// Catalog services (trustd, etcd) are unknown until the sequencer first starts them; other
/// ids are refused as before.
#[tokio::test]
async fn catalog_services_are_registered_on_first_start() {
    let supervisor = Supervisor::new(
        Arc::new(LogBuffers::default()),
        Arc::new(EventBus::default()),
        SupervisorOptions::default(),
    )
    .expect("supervisor");
    let params = NodeParams::new("/bin/true");
    let mut spec = super::super::supervisor::node::trustd(&params);
    // Registered as part of machined: nothing is spawned.
    spec.runner = Runner::Internal;
    let services = NodeServices::new(supervisor.clone(), vec![spec]);
    assert!(!supervisor.ids().iter().any(|i| i == "trustd"));
    ServiceControl::start(&services, "trustd")
        .await
        .expect("start trustd");
    assert!(supervisor.ids().iter().any(|i| i == "trustd"));
    // A second start does not register it twice (or fail).
    ServiceControl::start(&services, "trustd")
        .await
        .expect("start trustd again");
    assert!(matches!(
        ServiceControl::start(&services, "etcd").await,
        Err(ControlError::NotFound(_))
    ));
}
