//! The [`NodeObserver`] the sequencer reports to: it writes `MachineConfigs` (`v1alpha1`),
//! `MachineTypes` (`machine-type`) and `MachineStatuses` (`machine`). The controllers derive
//! the rest (hostname, node name, member, sysctls) from these.

use std::path::Path;
use std::sync::Arc;

use talos::errors::chain;
use talos::resources::specs::{
    MachineConfigSpec, MachineStatusSpec, MachineTypeSpec, UnmetCondition, MACHINE_CONFIG_ID,
    MACHINE_STATUS_ID, MACHINE_TYPE_ID,
};
use talos::resources::{Resource, State};

use crate::init::runtime::{MachineStage, NodeObserver};

/// Owner of the machine config resource (Talos stores it without an owner).
pub const CONFIG_OWNER: &str = "";
/// Owner of the machine type.
pub const MACHINE_TYPE_OWNER: &str = "config.MachineTypeController";
/// Owner of the machine status.
pub const MACHINE_STATUS_OWNER: &str = "runtime.MachineStatusController";

/// Writes what the sequencer reports into the resource store.
#[derive(Debug, Clone)]
pub struct ResourceObserver {
    state: State,
}

impl ResourceObserver {
    /// An observer writing into `state`.
    pub fn new(state: State) -> Self {
        ResourceObserver { state }
    }

    fn status<F: FnOnce(&mut MachineStatusSpec)>(&self, f: F) {
        if let Err(e) =
            self.state
                .modify::<MachineStatusSpec, _>(MACHINE_STATUS_ID, MACHINE_STATUS_OWNER, f)
        {
            tracing::warn!("updating the machine status resource: {e}");
        }
    }
}

/// Turns an unmet condition reported as `name: reason` (or just `name`) into its parts.
pub fn unmet_condition(s: &str) -> UnmetCondition {
    match s.split_once(": ") {
        Some((name, reason)) => UnmetCondition {
            name: name.to_string(),
            reason: reason.to_string(),
        },
        None => UnmetCondition {
            name: s.to_string(),
            reason: String::new(),
        },
    }
}

impl NodeObserver for ResourceObserver {
    fn config_loaded(&self, config: Arc<talos::config::Config>) {
        let machine_type = config
            .v1alpha1()
            .and_then(|v| v.machine.as_ref())
            .map(|m| m.machine_type.clone())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "unknown".to_string());
        // The typed config itself: controllers borrow it, the API serializes it.
        let writes = self
            .state
            .put(
                Resource::from_typed(MACHINE_CONFIG_ID, &MachineConfigSpec::new(config)),
                CONFIG_OWNER,
            )
            .and_then(|_| {
                self.state.put(
                    Resource::from_typed(MACHINE_TYPE_ID, &MachineTypeSpec(machine_type)),
                    MACHINE_TYPE_OWNER,
                )
            });
        if let Err(e) = writes {
            tracing::warn!("publishing the machine config resources: {e}");
        }
    }

    fn stage(&self, stage: MachineStage) {
        self.status(|s| s.stage = stage.as_str().to_string());
    }

    fn ready(&self, ready: bool, unmet: Vec<String>) {
        self.status(|s| {
            s.status.ready = ready;
            s.status.unmet_conditions = unmet.iter().map(|u| unmet_condition(u)).collect();
        });
    }
}

/// File in the state directory holding the node id (`nodeId: …`, as Talos's node identity).
pub const NODE_IDENTITY_FILE: &str = "node-identity.yaml";

/// The node id stored in `state_dir`, or a new one (written there when a directory is given).
pub fn load_or_create_node_id(state_dir: Option<&Path>) -> String {
    #[derive(serde::Deserialize, serde::Serialize)]
    struct Identity {
        #[serde(rename = "nodeId")]
        node_id: String,
    }
    let Some(dir) = state_dir else {
        return super::member::new_node_id();
    };
    let path = dir.join(NODE_IDENTITY_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        match serde_yaml::from_str::<Identity>(&text) {
            Ok(id) if !id.node_id.is_empty() => return id.node_id,
            _ => {
                tracing::warn!(path = %path.display(), "node identity unreadable; making a new one")
            }
        }
    }
    let id = super::member::new_node_id();
    let data = talos::yaml::to_string(&Identity {
        node_id: id.clone(),
    })
    .unwrap_or_default();
    if let Err(e) = talos::fsutil::write_atomic(
        &path,
        data.as_bytes(),
        talos::fsutil::WriteOptions::PRIVATE.overwrite(true),
    ) {
        tracing::warn!("saving the node identity: {}", chain(&e));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use talos::resources::ResourceSpec;

    #[test]
    fn observer_writes_config_type_and_status() {
        let st = State::new();
        let obs = ResourceObserver::new(st.clone());
        let cfg = Arc::new(
            talos::config::Config::from_yaml(
                b"version: v1alpha1\nmachine:\n  type: controlplane\n",
                "test",
            )
            .unwrap(),
        );
        obs.config_loaded(Arc::clone(&cfg));
        let t: MachineTypeSpec = st.get_typed(MACHINE_TYPE_ID).unwrap();
        assert_eq!(t.0, "controlplane");
        let mc = st
            .get(
                MachineConfigSpec::NAMESPACE,
                MachineConfigSpec::TYPE,
                MACHINE_CONFIG_ID,
            )
            .unwrap();
        // The resource holds the very config the sequencer loaded; its YAML is made for the
        // wire, as Talos lays the documents out.
        let typed = mc.spec.typed_ref::<MachineConfigSpec>().unwrap();
        assert!(Arc::ptr_eq(typed.config(), &cfg));
        let yaml = mc.spec.yaml().unwrap();
        assert_eq!(yaml, cfg.to_yaml().unwrap());
        assert!(yaml.contains("type: controlplane"), "{yaml}");
        // The same config again writes nothing.
        obs.config_loaded(Arc::clone(&cfg));
        let again = st
            .get(
                MachineConfigSpec::NAMESPACE,
                MachineConfigSpec::TYPE,
                MACHINE_CONFIG_ID,
            )
            .unwrap();
        assert_eq!(again.metadata.version, 1);
        obs.stage(MachineStage::Booting);
        obs.ready(
            false,
            vec!["services: etcd not healthy".into(), "time".into()],
        );
        let s: MachineStatusSpec = st.get_typed(MACHINE_STATUS_ID).unwrap();
        assert_eq!(s.stage, "booting");
        assert!(!s.status.ready);
        assert_eq!(s.status.unmet_conditions[0].name, "services");
        assert_eq!(s.status.unmet_conditions[0].reason, "etcd not healthy");
        assert_eq!(s.status.unmet_conditions[1].name, "time");
        obs.stage(MachineStage::Running);
        obs.ready(true, vec![]);
        let r = st
            .get("runtime", MachineStatusSpec::TYPE, MACHINE_STATUS_ID)
            .unwrap();
        assert_eq!(r.metadata.version, 4);
        assert_eq!(r.metadata.owner, MACHINE_STATUS_OWNER);
    }

    #[test]
    fn node_id_persists() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_node_id(Some(dir.path()));
        let b = load_or_create_node_id(Some(dir.path()));
        assert_eq!(a, b);
        assert_ne!(load_or_create_node_id(None), a);
    }
}
