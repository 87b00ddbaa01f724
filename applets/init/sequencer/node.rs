//! The node as the sequencer's tasks see it: settings, platform, services, the active config,
//! the machine stage, and how the process ends ([`FinalAction`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prost::Message as _;
use talos::api::machine as pb;
use talos::config::{Config, ConfigStore, Mode};
use talos::constants;
use talos::events::{runtime_type_url, EventBus};
use talos::platform::Platform;
use talos::sys::power::PowerAction;
use tokio::sync::watch;

use super::Sequencer;
use crate::init::acquire::MaintenanceFn;
use crate::init::pki::WorkerRetry;
use crate::init::runtime::{MachineStage, NodeObserver, ServiceControl};

/// Container exit code: powered off (stays down).
pub const EXIT_POWER_OFF: u8 = 0;
/// Container exit code: reboot (the launcher starts the node again).
pub const EXIT_REBOOT: u8 = 10;

/// How a power sequence ends the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalAction {
    /// Exit with this code (container platform).
    Exit(u8),
    /// `reboot(2)` (metal).
    Power(PowerAction),
}

/// Settings of a node (tests change paths and timings).
#[derive(Clone)]
pub struct NodeOptions {
    /// The root the `/system` and `/var` paths are below (`/` on a node).
    pub root: PathBuf,
    /// Mount the pseudo filesystems (PID 1 only).
    pub mount_pseudo: bool,
    /// Set the host name from `machine.network.hostname` (PID 1 only: never in tests).
    pub set_hostname: bool,
    /// Hand PKI files to the services' users (apid 50, trustd 51).
    pub chown_pki: bool,
    /// Where maintenance mode listens.
    pub maintenance_listen: SocketAddr,
    /// Maintenance mode.
    pub maintenance: MaintenanceFn,
    /// How long Boot waits for services.
    pub service_timeout: Duration,
    /// How workers retry trustd.
    pub worker_retry: WorkerRetry,
    /// trustd endpoints for workers (default: from the config).
    pub trustd_endpoints: Option<Vec<String>>,
    /// What Shutdown does on metal (`talos.shutdown=`).
    pub shutdown_action: PowerAction,
}

/// Everything the tasks work on.
pub struct Node {
    /// Settings.
    pub options: NodeOptions,
    /// The platform.
    pub platform: Arc<dyn Platform>,
    /// The service supervisor.
    pub services: Arc<dyn ServiceControl>,
    /// The resource store bridge.
    pub observer: Arc<dyn NodeObserver>,
    /// The event bus.
    pub events: Arc<EventBus>,
    /// The sequencer.
    pub sequencer: Sequencer,
    config: RwLock<Option<Arc<Config>>>,
    final_action: watch::Sender<Option<FinalAction>>,
}

/// The stage names `MachineStatusEvent` uses.
fn stage_pb(stage: MachineStage) -> pb::machine_status_event::MachineStage {
    use pb::machine_status_event::MachineStage as S;
    match stage {
        MachineStage::Booting => S::Booting,
        MachineStage::Maintenance => S::Maintenance,
        MachineStage::Running => S::Running,
        MachineStage::Rebooting => S::Rebooting,
        MachineStage::ShuttingDown => S::ShuttingDown,
        MachineStage::Resetting => S::Resetting,
    }
}

impl Node {
    /// A node; `Arc` because tasks hold it.
    pub fn new(
        options: NodeOptions,
        platform: Arc<dyn Platform>,
        services: Arc<dyn ServiceControl>,
        observer: Arc<dyn NodeObserver>,
        events: Arc<EventBus>,
    ) -> Arc<Node> {
        Arc::new(Node {
            options,
            platform,
            services,
            observer,
            sequencer: Sequencer::new(Arc::clone(&events)),
            events,
            config: RwLock::new(None),
            final_action: watch::Sender::new(None),
        })
    }

    /// The runtime mode.
    pub fn mode(&self) -> Mode {
        self.platform.mode()
    }

    /// An absolute node path below the root.
    pub fn path(&self, absolute: &str) -> PathBuf {
        constants::below(&self.options.root, absolute)
    }

    /// Where the node's machine config is persisted (below the root).
    pub fn config_store(&self) -> ConfigStore {
        ConfigStore::under_root(&self.options.root)
    }

    /// The active config.
    pub fn config(&self) -> Option<Arc<Config>> {
        self.config.read().ok().and_then(|c| c.clone())
    }

    /// Makes `config` the active config and tells the observer.
    pub fn set_config(&self, config: Arc<Config>) {
        if let Ok(mut slot) = self.config.write() {
            *slot = Some(Arc::clone(&config));
        }
        self.observer.config_loaded(config);
    }

    /// Whether the active config is a control plane's.
    pub fn is_control_plane(&self) -> bool {
        self.config()
            .and_then(|c| {
                c.v1alpha1()
                    .and_then(|v| v.machine.as_ref())
                    .map(|m| matches!(m.machine_type.as_str(), "controlplane" | "init"))
            })
            .unwrap_or(false)
    }

    /// Enters `stage`: tells the observer and publishes a `MachineStatusEvent`.
    pub fn set_stage(&self, stage: MachineStage, ready: bool, unmet: Vec<(String, String)>) {
        self.observer.stage(stage);
        self.observer.ready(
            ready,
            unmet
                .iter()
                .map(|(name, reason)| format!("{name}: {reason}"))
                .collect(),
        );
        let event = pb::MachineStatusEvent {
            stage: stage_pb(stage) as i32,
            status: Some(pb::machine_status_event::MachineStatus {
                ready,
                unmet_conditions: unmet
                    .into_iter()
                    .map(|(name, reason)| {
                        pb::machine_status_event::machine_status::UnmetCondition { name, reason }
                    })
                    .collect(),
            }),
        };
        self.events.publish(
            &runtime_type_url("machine.MachineStatusEvent"),
            event.encode_to_vec(),
            "",
        );
    }

    /// Records how the process ends (the first request wins).
    pub fn finish(&self, action: FinalAction) {
        self.final_action.send_if_modified(|slot| {
            if slot.is_none() {
                *slot = Some(action);
                true
            } else {
                false
            }
        });
    }

    /// Waits until a power sequence has recorded how the process ends.
    pub async fn final_action(&self) -> FinalAction {
        let mut rx = self.final_action.subscribe();
        loop {
            if let Some(action) = *rx.borrow_and_update() {
                return action;
            }
            if rx.changed().await.is_err() {
                return FinalAction::Exit(EXIT_POWER_OFF);
            }
        }
    }

    /// The final action already recorded, if any.
    pub fn final_action_now(&self) -> Option<FinalAction> {
        *self.final_action.borrow()
    }
}
