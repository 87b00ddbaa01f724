//! The `config` namespace: the machine config and the machine type.

use std::sync::Arc;

use prost::Message as _;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::resources::proto::{machine_type_number, MachineConfig, MachineType};
use crate::resources::{col, Column, ResourceSpec, StateError};

/// `MachineConfigs.config.talos.dev` (`v1alpha1`): the active machine config, typed and shared
/// (controllers borrow it; nobody parses it again). Its YAML, Talos's layout of the documents,
/// is made only when the resource goes on the wire. Sensitive.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineConfigSpec(pub Arc<Config>);

impl MachineConfigSpec {
    /// The spec of `config`.
    pub fn new(config: Arc<Config>) -> Self {
        MachineConfigSpec(config)
    }

    /// The config.
    pub fn config(&self) -> &Arc<Config> {
        &self.0
    }

    fn encode(yaml: &str) -> Vec<u8> {
        MachineConfig {
            yaml_marshalled: yaml.as_bytes().to_vec(),
        }
        .encode_to_vec()
    }
}

impl ResourceSpec for MachineConfigSpec {
    const TYPE: &'static str = "MachineConfigs.config.talos.dev";
    const NAMESPACE: &'static str = "config";
    const SENSITIVE: bool = true;

    fn to_yaml(&self) -> Result<String, StateError> {
        self.0
            .to_yaml()
            .map_err(|e| StateError::Spec(e.to_string()))
    }

    /// A machine config resource written by a client over the API (machined's own is typed).
    fn from_yaml(yaml: &str) -> Result<Self, StateError> {
        Config::from_yaml(yaml.as_bytes(), "MachineConfigs/v1alpha1")
            .map(|c| MachineConfigSpec(Arc::new(c)))
            .map_err(|e| StateError::Spec(e.to_string()))
    }

    /// `resource.config.MachineConfigSpec`: the YAML again, as bytes.
    fn to_proto(&self) -> Vec<u8> {
        self.to_yaml()
            .map(|yaml| Self::encode(&yaml))
            .unwrap_or_default()
    }

    fn to_wire(&self) -> Result<(String, Vec<u8>), StateError> {
        let yaml = self.to_yaml()?;
        let proto = Self::encode(&yaml);
        Ok((yaml, proto))
    }
}

/// Id of the active machine config.
pub const MACHINE_CONFIG_ID: &str = "v1alpha1";

/// `MachineTypes.config.talos.dev` (`machine-type`): `controlplane`, `worker`, `init` or
/// `unknown`, as a bare string.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MachineTypeSpec(pub String);

impl ResourceSpec for MachineTypeSpec {
    const TYPE: &'static str = "MachineTypes.config.talos.dev";
    const NAMESPACE: &'static str = "config";
    const COLUMNS: &'static [Column] = &[col("Type", "{@}")];
    crate::serde_yaml_spec!();

    fn to_proto(&self) -> Vec<u8> {
        MachineType {
            machine_type: machine_type_number(&self.0),
        }
        .encode_to_vec()
    }
}

/// Id of the machine type.
pub const MACHINE_TYPE_ID: &str = "machine-type";

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Arc<Config> {
        Arc::new(Config::from_yaml(yaml.as_bytes(), "test").expect("config"))
    }

    #[test]
    fn machine_config_is_typed_and_serialized_for_the_wire_only() {
        let cfg = config("version: v1alpha1\nmachine:\n  type: worker\n");
        let spec = MachineConfigSpec::new(Arc::clone(&cfg));
        assert!(Arc::ptr_eq(spec.config(), &cfg));
        let (yaml, proto) = spec.to_wire().unwrap();
        assert_eq!(yaml, cfg.to_yaml().unwrap());
        assert_eq!(proto, spec.to_proto());
        let decoded = MachineConfig::decode(&proto[..]).unwrap();
        assert_eq!(decoded.yaml_marshalled, yaml.as_bytes());
        assert_eq!(MachineConfigSpec::from_yaml(&yaml).unwrap(), spec);
        const { assert!(MachineConfigSpec::SENSITIVE) };
        const { assert!(MachineConfigSpec::DEFINITION.sensitive) };
    }

    #[test]
    fn machine_type_yaml_and_proto() {
        let t = MachineTypeSpec("controlplane".into());
        assert_eq!(t.to_yaml().unwrap(), "controlplane\n");
        assert_eq!(t.to_proto(), [0x08, 2]);
    }
}
