//! machined's Kubernetes controllers (Talos 1.7's `k8s.*` and the Kubernetes `secrets.*`
//! controllers), from the machine config to the files and resources the control plane and
//! the kubelet need:
//!
//! | module | controllers |
//! |---|---|
//! | [`control_plane`] | API server, controller manager, scheduler, admission, audit, bootstrap and extra manifests configs |
//! | [`secrets`] | root secrets, cert SANs, issued certificates and kubeconfigs, kubelet secrets |
//! | [`render`] | the static pods' secret and config files |
//! | [`static_pods`] | the `StaticPods` (once etcd is healthy) |
//! | [`static_pod_server`] | the pod list served to the kubelet; "rendered new static pod" |
//! | [`manifests`] | built-in and extra manifests, and their application to the API server |
//! | [`kubelet`] | kubelet config, node IP, spec, files and service |
//!
//! Kubernetes itself does not run inside talos-rs: the API server, kubelet and their images are
//! external. These controllers render what those programs read and start what the node has.

pub mod control_plane;
pub mod kubelet;
pub mod manifests;
pub mod render;
pub mod secrets;
pub mod static_pod_server;
pub mod static_pods;
#[cfg(test)]
mod tests;
pub mod transform;

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use talos::fsutil::{write_atomic, WriteOptions};
use talos::resources::controller::{ControllerError, Runtime};

use crate::init::runtime::ServiceControl;

/// Where the Kubernetes controllers write, and how.
#[derive(Debug, Clone)]
pub struct K8sEnv {
    /// The node root (`/`; a temp dir in tests).
    pub root: PathBuf,
    /// Hand the files to the components' users (root only).
    pub chown: bool,
    /// The node runs on the container platform.
    pub container: bool,
}

/// File output below the node root: atomic, with exact modes, rewritten only when changed.
pub struct Files<'a> {
    env: &'a K8sEnv,
}

impl<'a> Files<'a> {
    /// Writing below `env.root`.
    pub fn new(env: &'a K8sEnv) -> Self {
        Files { env }
    }

    fn target(&self, absolute: &str) -> PathBuf {
        talos::constants::below(&self.env.root, absolute)
    }

    /// Writes `dir/name` (0400, owned by `uid:uid` when chowning).
    pub fn write(
        &self,
        dir: &str,
        name: &str,
        content: &[u8],
        uid: u32,
    ) -> Result<(), ControllerError> {
        let path = format!("{dir}/{name}");
        self.write_mode(&path, content, 0o400)?;
        if self.env.chown {
            let id = Some(nix::unistd::Uid::from_raw(uid));
            let gid = Some(nix::unistd::Gid::from_raw(uid));
            let target = self.target(&path);
            nix::unistd::chown(&target, id, gid).map_err(|e| {
                ControllerError::Other(format!("error chowning {}: {e}", target.display()))
            })?;
        }
        Ok(())
    }

    /// Writes the node path `absolute` with `mode` (parents 0755).
    pub fn write_mode(
        &self,
        absolute: &str,
        content: &[u8],
        mode: u32,
    ) -> Result<(), ControllerError> {
        let path = self.target(absolute);
        let unchanged = std::fs::read(&path).is_ok_and(|old| old == content)
            && std::fs::metadata(&path).is_ok_and(|m| m.permissions().mode() & 0o7777 == mode);
        if unchanged {
            return Ok(());
        }
        if let Some(parent) = path.parent() {
            create_dirs(parent)?;
        }
        write_atomic(
            &path,
            content,
            WriteOptions {
                mode,
                overwrite: true,
            },
        )
        .map_err(|e| ControllerError::Other(talos::errors::chain(&e).to_string()))
    }
}

fn create_dirs(dir: &Path) -> Result<(), ControllerError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| ControllerError::Other(format!("error creating {}: {e}", dir.display())))
}

/// The node's addresses for certificates and the node IP: the interface addresses (no
/// loopback, no IPv6 link-local). The one seam where addresses enter these controllers.
pub fn node_addresses() -> Vec<IpAddr> {
    crate::init::pki::NodeIdentity::current().addresses
}

/// Starts every Kubernetes controller; `services` lets the kubelet controller start the
/// kubelet (absent in `--api-only` mode).
pub fn start(
    runtime: &mut Runtime,
    env: &K8sEnv,
    addresses: fn() -> Vec<IpAddr>,
    services: Option<Arc<dyn ServiceControl>>,
) {
    control_plane::start(runtime);
    secrets::start(runtime, addresses);
    runtime.spawn(render::RenderSecretsController::new(env.clone()));
    runtime.spawn(render::RenderConfigsController::new(env.clone()));
    runtime.spawn(static_pods::ControlPlaneStaticPodController);
    runtime.spawn(static_pod_server::StaticPodServerController::default());
    runtime.spawn(manifests::ManifestController);
    runtime.spawn(manifests::ExtraManifestController);
    runtime.spawn(manifests::ManifestApplyController::default());
    kubelet::start(runtime, env, addresses, services);
}
