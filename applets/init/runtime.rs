//! The seams between machined's parts: what the API handlers ask of the supervisor and the
//! sequencer, and what the sequencer tells the resource store.
//!
//! The API ([`super::api`]) holds these as trait objects, so each part can be built and tested
//! alone and machined's main wires the real ones together:
//!
//! | trait | implemented by | used by |
//! |---|---|---|
//! | [`ServiceControl`] | the service supervisor | `ServiceStart/Stop/Restart`, the sequencer |
//! | [`PowerControl`] | the sequencer | `Reboot`, `Shutdown`, `Reset` |
//! | [`ConfigControl`] | the sequencer (config acquisition) | `ApplyConfiguration` |
//! | [`NodeObserver`] | the resource store bridge | the sequencer |

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use talos::api::machine as pb;

/// A boxed, sendable future (what the traits below return, so they stay object safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a control request was refused; maps one to one onto a gRPC status code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No such service (or other named object): `NOT_FOUND`.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed or the config is invalid: `INVALID_ARGUMENT`.
    #[error("{0}")]
    InvalidArgument(String),
    /// The node is not in a state that allows it (e.g. a sequence already running):
    /// `FAILED_PRECONDITION`.
    #[error("{0}")]
    FailedPrecondition(String),
    /// Not supported on this platform or in this build: `UNIMPLEMENTED`.
    #[error("{0}")]
    Unimplemented(String),
    /// Anything else: `INTERNAL`.
    #[error("{0}")]
    Internal(String),
}

impl talos::errors::GrpcCode for ControlError {
    fn code(&self) -> tonic::Code {
        match self {
            ControlError::NotFound(_) => tonic::Code::NotFound,
            ControlError::InvalidArgument(_) => tonic::Code::InvalidArgument,
            ControlError::FailedPrecondition(_) => tonic::Code::FailedPrecondition,
            ControlError::Unimplemented(_) => tonic::Code::Unimplemented,
            ControlError::Internal(_) => tonic::Code::Internal,
        }
    }
}

impl From<ControlError> for tonic::Status {
    fn from(e: ControlError) -> Self {
        talos::errors::status(&e)
    }
}

/// Starting and stopping services by Talos service id (`apid`, `trustd`, `etcd`, ...).
pub trait ServiceControl: Send + Sync + 'static {
    /// Starts a registered service (no-op if it is already running). Returns the message
    /// `talosctl service ID start` prints, e.g. `Service "apid" started`.
    fn start(&self, id: &str) -> BoxFuture<'_, Result<String, ControlError>>;
    /// Stops a service and waits until it is down.
    fn stop(&self, id: &str) -> BoxFuture<'_, Result<String, ControlError>>;
    /// Stops then starts a service.
    fn restart(&self, id: &str) -> BoxFuture<'_, Result<String, ControlError>>;
    /// Waits until every listed service is up (Running and healthy, or Finished).
    fn wait_up(&self, ids: &[String], timeout: Duration)
        -> BoxFuture<'_, Result<(), ControlError>>;
    /// Stops every service in reverse dependency order (shutdown, reboot, reset).
    fn stop_all(&self) -> BoxFuture<'_, ()>;
}

/// A power or reset request from the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PowerRequest {
    /// `Reboot`; `powercycle` is Talos's `--mode powercycle` (no kexec).
    Reboot {
        /// Skip kexec.
        powercycle: bool,
    },
    /// `Shutdown`; `force` skips the Kubernetes drain.
    Shutdown {
        /// Skip draining.
        force: bool,
    },
    /// `Reset`.
    Reset {
        /// Leave etcd and drain first.
        graceful: bool,
        /// Reboot afterwards instead of powering off.
        reboot: bool,
        /// Partition labels to wipe (empty: the whole system disk).
        system_labels: Vec<String>,
    },
}

/// Runs the Reboot, Shutdown and Reset sequences.
pub trait PowerControl: Send + Sync + 'static {
    /// Queues the sequence and returns at once (the reply is sent before the node goes
    /// down). The returned string is the actor id reported back to the client.
    fn request(&self, request: PowerRequest) -> Result<String, ControlError>;
}

/// How a config arriving through `ApplyConfiguration` should take effect.
#[derive(Debug, Clone)]
pub struct ApplyRequest {
    /// The raw machine config document(s).
    pub data: Vec<u8>,
    /// Talos's apply mode.
    pub mode: pb::apply_configuration_request::Mode,
    /// Validate and report only.
    pub dry_run: bool,
}

/// The result of an accepted apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// The mode actually used (AUTO resolves to REBOOT or NO_REBOOT).
    pub mode: pb::apply_configuration_request::Mode,
    /// What `talosctl apply-config` prints.
    pub mode_details: String,
    /// Validation warnings.
    pub warnings: Vec<String>,
}

/// Validates, persists and applies a new machine config.
pub trait ConfigControl: Send + Sync + 'static {
    /// Never persists an invalid config; the error says which key is wrong.
    fn apply(&self, request: ApplyRequest) -> BoxFuture<'_, Result<ApplyOutcome, ControlError>>;
}

/// Talos's machine stages (`MachineStatus.stage`, the `machine.MachineStatusEvent` enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MachineStage {
    /// Boot sequence running.
    Booting,
    /// Waiting for a config.
    Maintenance,
    /// Boot done.
    Running,
    /// Reboot sequence running.
    Rebooting,
    /// Shutdown sequence running.
    ShuttingDown,
    /// Reset sequence running.
    Resetting,
}

impl MachineStage {
    /// The name `talosctl get machinestatus` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            MachineStage::Booting => "booting",
            MachineStage::Maintenance => "maintenance",
            MachineStage::Running => "running",
            MachineStage::Rebooting => "rebooting",
            MachineStage::ShuttingDown => "shutting down",
            MachineStage::Resetting => "resetting",
        }
    }
}

/// What the sequencer reports as the node changes (the resource store turns these into
/// `MachineConfig`, `MachineType`, `MachineStatus`, ... resources).
pub trait NodeObserver: Send + Sync + 'static {
    /// A validated machine config is active (also called again after an apply).
    fn config_loaded(&self, config: Arc<talos::config::Config>);
    /// The machine entered a stage.
    fn stage(&self, stage: MachineStage);
    /// Whether the node is ready, and if not which services/conditions are missing.
    fn ready(&self, ready: bool, unmet: Vec<String>);
}
