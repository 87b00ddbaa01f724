//! machined's controllers: they turn the machine config and the running system into status
//! resources (`talosctl get hostname`, `nodename`, `members`, `kernelparamstatus`,
//! `mountstatus`, `timestatus`), plus the bridge from the sequencer ([`observer`]) and the
//! supervisor ([`publish_service`]).
//!
//! None of them needs the rest of init, so `talos machined --api-only` runs them too. Each
//! reads the system through paths in [`Env`] so tests can point them at fixtures.

pub mod hostname;
pub mod k8s;
pub mod kernel_params;
pub mod member;
pub mod mounts;
pub mod observer;
pub mod time;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use talos::config::{Config, ConfigStore, Mode};
use talos::errors::chain;
use talos::resources::controller::Runtime;
use talos::resources::specs::{MachineConfigSpec, ServiceSpec, MACHINE_CONFIG_ID};
use talos::resources::{State, StateError};

/// Where the controllers read the system, and what platform they run on.
#[derive(Debug, Clone)]
pub struct Env {
    /// `/proc` (hostname, sysctls, mountinfo).
    pub proc_root: PathBuf,
    /// The runtime mode.
    pub mode: Mode,
}

impl Env {
    /// The real system.
    pub fn new(mode: Mode) -> Env {
        Env {
            proc_root: PathBuf::from("/proc"),
            mode,
        }
    }

    /// Whether this is the container platform (the host owns clock, sysctls, hostname).
    pub fn is_container(&self) -> bool {
        self.mode.in_container()
    }
}

/// Starts every controller of this module on `runtime`.
pub fn start(runtime: &mut Runtime, env: &Env, node_id: &str) {
    runtime.spawn(hostname::HostnameStatusController::new(env.clone()));
    runtime.spawn(hostname::NodenameController);
    runtime.spawn(kernel_params::KernelParamStatusController::new(env.clone()));
    runtime.spawn(mounts::MountStatusController::new(env.clone()));
    runtime.spawn(time::TimeStatusController::new(env.clone()));
    runtime.spawn(member::MemberController::new(node_id));
}

/// What `talos machined --api-only` runs: the controllers, plus the resources the sequencer
/// would report (the config persisted in `STATE_DIR` when there is one, parsed but not
/// validated; stage `running`, ready) and the `machined` service. Returns the controller
/// runtime (stop it on shutdown).
pub fn start_api_only(state: &State, mode: Mode, state_dir: Option<&Path>) -> Runtime {
    use crate::init::runtime::{MachineStage, NodeObserver as _};
    let obs = observer::ResourceObserver::new(state.clone());
    if let Some(store) = state_dir.map(ConfigStore::in_dir) {
        match store.load_unvalidated() {
            Ok(Some(cfg)) => obs.config_loaded(cfg),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(path = %store.path().display(), "machine config not loaded: {}", chain(&e))
            }
        }
    }
    obs.stage(MachineStage::Running);
    obs.ready(true, Vec::new());
    if let Err(e) = publish_service(state, "machined", true, true, false) {
        tracing::warn!("publishing the machined service resource: {e}");
    }
    // Started after the config is in, so their first outputs already follow it.
    let mut runtime = Runtime::new(state.clone());
    let node_id = observer::load_or_create_node_id(state_dir);
    start(&mut runtime, &Env::new(mode), &node_id);
    runtime
}

/// The active machine config: the typed config the `MachineConfigs` resource holds, shared
/// (nothing is parsed).
pub fn current_config(state: &State) -> Option<Arc<Config>> {
    match state.get_typed::<MachineConfigSpec>(MACHINE_CONFIG_ID) {
        Ok(spec) => Some(spec.0),
        Err(StateError::NotFound(_)) => None,
        Err(e) => {
            tracing::warn!("machine config resource is not usable: {e}");
            None
        }
    }
}

/// Owner of the `Services` resources.
pub const SERVICE_OWNER: &str = "v1alpha1.ServiceController";

/// Publishes a service's state as a `Services.v1alpha1.talos.dev` resource (what the
/// supervisor calls on every state change).
pub fn publish_service(
    state: &State,
    id: &str,
    running: bool,
    healthy: bool,
    unknown: bool,
) -> Result<(), StateError> {
    state
        .put(
            talos::resources::Resource::from_typed(
                id,
                &ServiceSpec {
                    running,
                    healthy,
                    unknown,
                },
            ),
            SERVICE_OWNER,
        )
        .map(|_| ())
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use talos::resources::specs::MachineConfigSpec;

    /// The machine config resource's spec for a config given as YAML.
    pub fn machine_config(yaml: &str) -> MachineConfigSpec {
        let config = talos::config::Config::from_yaml(yaml.as_bytes(), "test").expect("config");
        MachineConfigSpec::new(Arc::new(config))
    }

    /// A fake `/proc` in a temp dir.
    pub fn write(root: &Path, rel: &str, content: &str) {
        let p = root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("dir");
        }
        std::fs::write(p, content).expect("write");
    }

    /// Polls `f` for up to 2 s.
    pub async fn eventually<F: Fn() -> bool>(f: F) {
        for _ in 0..200 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("condition not reached");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use talos::resources::ResourceSpec as _;

    #[test]
    fn services_are_published() {
        let st = State::new();
        publish_service(&st, "apid", true, false, true).unwrap();
        publish_service(&st, "apid", true, true, false).unwrap();
        let s: ServiceSpec = st.get_typed("apid").unwrap();
        assert!(s.running && s.healthy && !s.unknown);
        let r = st.get("runtime", ServiceSpec::TYPE, "apid").unwrap();
        assert_eq!(r.metadata.version, 2);
        assert_eq!(r.metadata.owner, SERVICE_OWNER);
    }
}
