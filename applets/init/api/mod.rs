//! machined's API server: the Talos `MachineService`, `StorageService` and `TimeService`,
//! answered from the running system, on a unix socket (apid is the only client on a node).
//!
//! One module per service area: [`machine`] (with the file RPCs in [`files`]), [`storage`],
//! [`time`]. machined trusts the `talos-role` metadata apid sets and does no RBAC itself.
//! RPCs not implemented answer `UNIMPLEMENTED` with a message naming the method.

pub mod cosi;
pub mod files;
pub mod machine;
pub mod storage;
pub mod time;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use talos::api::{machine as pb, storage as storage_pb, time as time_pb};
use talos::events::EventBus;
use talos::logbuf::LogBuffers;
use talos::sys::SysError;
use tokio::net::UnixListener;
use tokio::sync::{mpsc, watch};
use tonic::codegen::BoxStream;
use tonic::{Request, Status};

use super::runtime::{ConfigControl, PowerControl, ServiceControl};
use super::services::ServiceSource;

/// The platform machined reports in `Version` (`talosctl version` shows it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `container`, `metal`, ...
    pub name: String,
    /// Runtime mode: `container`, `metal`, `cloud`.
    pub mode: String,
}

/// Everything the API handlers read.
pub struct Machined {
    /// Per-service log buffers (`Logs`).
    pub logs: Arc<LogBuffers>,
    /// Runtime events (`Events`).
    pub events: Arc<EventBus>,
    /// The service table (`ServiceList`).
    pub services: Arc<dyn ServiceSource>,
    /// Reported platform.
    pub platform: Platform,
    /// Where `/proc` is (tests point it elsewhere).
    pub proc_root: PathBuf,
    /// Where `/sys` is.
    pub sys_root: PathBuf,
    /// The kernel log device.
    pub kmsg_path: PathBuf,
    /// Turns true when the server shuts down; long-running streams end then.
    pub shutdown: watch::Receiver<bool>,
    /// `ServiceStart/Stop/Restart` (none in `--api-only` mode: those RPCs fail).
    pub service_control: Option<Arc<dyn ServiceControl>>,
    /// `Reboot`, `Shutdown`, `Reset`.
    pub power: Option<Arc<dyn PowerControl>>,
    /// `ApplyConfiguration`.
    pub config_control: Option<Arc<dyn ConfigControl>>,
    /// The resource store (`cosi.resource.State`), with Talos's definitions registered.
    pub resources: talos::resources::State,
}

impl Machined {
    /// Handlers reading the real system.
    pub fn new(
        logs: Arc<LogBuffers>,
        events: Arc<EventBus>,
        services: Arc<dyn ServiceSource>,
        platform: Platform,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Machined {
            logs,
            events,
            services,
            platform,
            proc_root: PathBuf::from("/proc"),
            sys_root: PathBuf::from("/sys"),
            kmsg_path: PathBuf::from(talos::sys::kmsg::KMSG_PATH),
            shutdown,
            service_control: None,
            power: None,
            config_control: None,
            resources: cosi::new_state(),
        }
    }
}

/// Builds the gRPC router with every service machined serves.
pub fn router(state: Arc<Machined>) -> tonic::transport::server::Router {
    tonic::transport::Server::builder()
        .add_service(
            pb::machine_service_server::MachineServiceServer::new(machine::MachineApi::new(
                Arc::clone(&state),
            ))
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE),
        )
        .add_service(
            storage_pb::storage_service_server::StorageServiceServer::new(
                storage::StorageApi::new(Arc::clone(&state)),
            ),
        )
        .add_service(time_pb::time_service_server::TimeServiceServer::new(
            time::TimeApi::new(Arc::clone(&state)),
        ))
        .add_service(
            talos::api::cosi::resource::state_server::StateServer::new(cosi::CosiApi::new(state))
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        )
}

/// Talos's gRPC message size limit.
pub const MAX_MESSAGE_SIZE: usize = 32 << 20;

/// Binds the API socket: creates the parent directory, removes a stale socket, restricts the
/// socket to its owner (0600).
pub fn bind(socket: &Path) -> anyhow::Result<UnixListener> {
    use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
    if let Some(parent) = socket.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating socket directory {}", parent.display()))?;
    }
    match std::fs::symlink_metadata(socket) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(socket)
            .with_context(|| format!("removing stale socket {}", socket.display()))?,
        Ok(_) => anyhow::bail!(
            "{} exists and is not a socket; refusing to replace it",
            socket.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("checking {}", socket.display())),
    }
    let listener =
        UnixListener::bind(socket).with_context(|| format!("binding {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("setting mode 0600 on {}", socket.display()))?;
    Ok(listener)
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: UnixListener,
    state: Arc<Machined>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
    router(state)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .context("serving the machined API")
}

/// The `UNIMPLEMENTED` status for `service/method`.
pub fn unimplemented(service: &str, method: &str) -> Status {
    Status::unimplemented(format!("{service}/{method} is not implemented by machined"))
}

/// Logs an API call with the roles apid passed along.
pub fn called<T>(request: &Request<T>, method: &str) {
    let roles: Vec<&str> = request
        .metadata()
        .get_all("talos-role")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if roles.is_empty() && method.starts_with("cosi.") {
        // networkd publishing its status resources over the socket: not worth an info line.
        tracing::debug!(method, "local api call");
    } else {
        tracing::info!(method, roles = roles.join(","), "api call");
    }
}

/// Maps a kernel-interface error to a gRPC status (its code, its whole chain as the message).
pub fn sys_status(err: SysError) -> Status {
    talos::errors::status(&err)
}

/// A status for an I/O error kind.
pub fn io_status(kind: std::io::ErrorKind, message: String) -> Status {
    Status::new(talos::errors::io_code(kind), message)
}

/// Runs a blocking closure off the async threads and flattens a join failure into a status.
pub async fn blocking<T, F>(f: F) -> Result<T, Status>
where
    F: FnOnce() -> Result<T, Status> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("worker failed: {e}")))?
}

/// Items queued per streaming response before the producer waits for the client.
pub const STREAM_DEPTH: usize = 16;

/// A bounded channel whose receiving end is a response stream.
pub fn stream_channel<T: Send + 'static>() -> (mpsc::Sender<Result<T, Status>>, BoxStream<T>) {
    let (tx, rx) = mpsc::channel(STREAM_DEPTH);
    (
        tx,
        Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)),
    )
}

/// Resolves when the server starts shutting down.
pub async fn shutting_down(mut shutdown: watch::Receiver<bool>) {
    // An error means the sender is gone, which also means shutdown.
    let _ = shutdown.wait_for(|down| *down).await;
}
