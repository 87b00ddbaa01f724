//! The `runtime` namespace: machine status, services, kernel parameters, mounts, time.

use prost::Message as _;
use serde::{Deserialize, Serialize};

use crate::resources::proto::{self, machine_stage_number};
use crate::resources::{col, Column, ResourceSpec};

/// One reason the machine is not ready.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UnmetCondition {
    /// What is missing (e.g. a service id).
    pub name: String,
    /// Why.
    pub reason: String,
}

/// Readiness of the machine at its stage.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MachineStatusStatus {
    /// Everything needed at this stage is up.
    pub ready: bool,
    /// What is not.
    #[serde(rename = "unmetConditions", default)]
    pub unmet_conditions: Vec<UnmetCondition>,
}

/// `MachineStatuses.runtime.talos.dev` (`machine`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineStatusSpec {
    /// `booting`, `running`, `maintenance`, … (Talos's stage names).
    pub stage: String,
    /// Readiness.
    pub status: MachineStatusStatus,
}

impl Default for MachineStatusSpec {
    fn default() -> Self {
        MachineStatusSpec {
            stage: "unknown".to_string(),
            status: MachineStatusStatus::default(),
        }
    }
}

impl ResourceSpec for MachineStatusSpec {
    const TYPE: &'static str = "MachineStatuses.runtime.talos.dev";
    const NAMESPACE: &'static str = "runtime";
    const COLUMNS: &'static [Column] = &[col("Stage", "{.stage}"), col("Ready", "{.status.ready}")];
    crate::serde_yaml_spec!();

    fn to_proto(&self) -> Vec<u8> {
        proto::MachineStatus {
            stage: machine_stage_number(&self.stage),
            status: Some(proto::MachineStatusStatus {
                ready: self.status.ready,
                unmet_conditions: self
                    .status
                    .unmet_conditions
                    .iter()
                    .map(|u| proto::UnmetCondition {
                        name: u.name.clone(),
                        reason: u.reason.clone(),
                    })
                    .collect(),
            }),
        }
        .encode_to_vec()
    }
}

/// Id of the machine status.
pub const MACHINE_STATUS_ID: &str = "machine";

/// `Services.v1alpha1.talos.dev` (id = service id).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// The service is running.
    pub running: bool,
    /// Its health check passes.
    pub healthy: bool,
    /// Health is not known (no check, or not run yet).
    pub unknown: bool,
}

impl ResourceSpec for ServiceSpec {
    const TYPE: &'static str = "Services.v1alpha1.talos.dev";
    const NAMESPACE: &'static str = "runtime";
    const ALIASES: &'static [&'static str] = &["svc"];
    const COLUMNS: &'static [Column] = &[
        col("Running", "{.running}"),
        col("Healthy", "{.healthy}"),
        col("Health Unknown", "{.unknown}"),
    ];
    crate::serde_yaml_spec!();

    fn to_proto(&self) -> Vec<u8> {
        proto::Service {
            running: self.running,
            healthy: self.healthy,
            unknown: self.unknown,
        }
        .encode_to_vec()
    }
}

/// `KernelParamStatuses.runtime.talos.dev` (id = sysctl key, e.g. `net.ipv4.ip_forward`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KernelParamStatusSpec {
    /// Value now.
    pub current: String,
    /// Value before Talos changed it.
    pub default: String,
    /// The kernel does not have this parameter.
    pub unsupported: bool,
}

impl ResourceSpec for KernelParamStatusSpec {
    const TYPE: &'static str = "KernelParamStatuses.runtime.talos.dev";
    const NAMESPACE: &'static str = "runtime";
    const ALIASES: &'static [&'static str] = &["sysctls", "kernelparameters", "kernelparams"];
    const COLUMNS: &'static [Column] = &[
        col("Current", "{.current}"),
        col("Default", "{.default}"),
        col("Unsupported", "{.unsupported}"),
    ];
    crate::serde_yaml_spec!();

    fn to_proto(&self) -> Vec<u8> {
        proto::KernelParamStatus {
            current: self.current.clone(),
            default: self.default.clone(),
            unsupported: self.unsupported,
        }
        .encode_to_vec()
    }
}

/// `MountStatuses.runtime.talos.dev` (id = mount name).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MountStatusSpec {
    /// Mounted device or pseudo file system.
    pub source: String,
    /// Mount point.
    pub target: String,
    /// File system type.
    #[serde(rename = "filesystemType")]
    pub filesystem_type: String,
    /// Mount options.
    pub options: Vec<String>,
    /// Whether the volume is encrypted.
    pub encrypted: bool,
    /// Encryption providers.
    #[serde(
        rename = "encryptionProviders",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub encryption_providers: Vec<String>,
}

impl ResourceSpec for MountStatusSpec {
    const TYPE: &'static str = "MountStatuses.runtime.talos.dev";
    const NAMESPACE: &'static str = "runtime";
    const ALIASES: &'static [&'static str] = &["mounts"];
    const COLUMNS: &'static [Column] = &[
        col("Source", "{.source}"),
        col("Target", "{.target}"),
        col("Filesystem Type", "{.filesystemType}"),
    ];
    crate::serde_yaml_spec!();

    fn to_proto(&self) -> Vec<u8> {
        proto::MountStatus {
            source: self.source.clone(),
            target: self.target.clone(),
            filesystem_type: self.filesystem_type.clone(),
            options: self.options.clone(),
            encrypted: self.encrypted,
            encryption_providers: self.encryption_providers.clone(),
        }
        .encode_to_vec()
    }
}

/// `TimeStatuses.v1alpha1.talos.dev` (`node`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TimeStatusSpec {
    /// The clock is synchronized (or sync is disabled).
    pub synced: bool,
    /// Bumped on big clock jumps.
    pub epoch: i64,
    /// Time sync is disabled (e.g. the container platform: the host owns the clock).
    #[serde(rename = "syncDisabled")]
    pub sync_disabled: bool,
}

impl ResourceSpec for TimeStatusSpec {
    const TYPE: &'static str = "TimeStatuses.v1alpha1.talos.dev";
    const NAMESPACE: &'static str = "runtime";
    const COLUMNS: &'static [Column] = &[col("Synced", "{.synced}")];
    crate::serde_yaml_spec!();

    fn to_proto(&self) -> Vec<u8> {
        proto::TimeStatus {
            synced: self.synced,
            epoch: self.epoch,
            sync_disabled: self.sync_disabled,
        }
        .encode_to_vec()
    }
}

/// Id of the time status.
pub const TIME_STATUS_ID: &str = "node";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_matches_talos_layout() {
        let ms = MachineStatusSpec {
            stage: "running".into(),
            status: MachineStatusStatus {
                ready: false,
                unmet_conditions: vec![UnmetCondition {
                    name: "services".into(),
                    reason: "service \"etcd\" not healthy".into(),
                }],
            },
        };
        assert_eq!(
            ms.to_yaml().unwrap(),
            "stage: running\nstatus:\n    ready: false\n    unmetConditions:\n        - name: services\n          reason: service \"etcd\" not healthy\n"
        );
        assert_eq!(
            MachineStatusSpec::default().to_yaml().unwrap(),
            "stage: unknown\nstatus:\n    ready: false\n    unmetConditions: []\n"
        );
        assert_eq!(
            TimeStatusSpec {
                synced: true,
                epoch: 0,
                sync_disabled: true
            }
            .to_yaml()
            .unwrap(),
            "synced: true\nepoch: 0\nsyncDisabled: true\n"
        );
    }

    #[test]
    fn proto_matches_talos_field_numbers() {
        let ms = MachineStatusSpec {
            stage: "running".into(),
            status: MachineStatusStatus {
                ready: true,
                unmet_conditions: vec![],
            },
        };
        // stage = 4 (field 1 varint), status { ready = true }.
        assert_eq!(ms.to_proto(), [0x08, 4, 0x12, 2, 0x08, 1]);
    }
}
