//! Typed specs of the resources machined publishes. Field names and order follow the `yaml:`
//! tags of Talos 1.7's specs, so `talosctl get … -o yaml` prints the same `spec:`.

use serde::{Deserialize, Serialize};

use super::{ResourceSpec, StateError};
use crate::resource_spec;

/// `MachineConfigs.config.talos.dev` (`v1alpha1`): the machine config exactly as loaded
/// (its YAML documents are the spec). Sensitive.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MachineConfigSpec(pub String);

impl ResourceSpec for MachineConfigSpec {
    const TYPE: &'static str = "MachineConfigs.config.talos.dev";
    const NAMESPACE: &'static str = "config";

    fn to_yaml(&self) -> Result<String, StateError> {
        Ok(self.0.clone())
    }

    fn from_yaml(yaml: &str) -> Result<Self, StateError> {
        Ok(MachineConfigSpec(yaml.to_string()))
    }

    fn to_proto(&self) -> Vec<u8> {
        self.proto()
    }
}

/// Id of the active machine config.
pub const MACHINE_CONFIG_ID: &str = "v1alpha1";

/// `MachineTypes.config.talos.dev` (`machine-type`): `controlplane`, `worker`, `init` or
/// `unknown`, as a bare string.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MachineTypeSpec(pub String);
resource_spec!(
    MachineTypeSpec,
    "MachineTypes.config.talos.dev",
    "config",
    proto
);

/// Id of the machine type.
pub const MACHINE_TYPE_ID: &str = "machine-type";

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
resource_spec!(
    MachineStatusSpec,
    "MachineStatuses.runtime.talos.dev",
    "runtime",
    proto
);

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
resource_spec!(ServiceSpec, "Services.v1alpha1.talos.dev", "runtime", proto);

/// `HostnameStatuses.net.talos.dev` (`hostname`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HostnameStatusSpec {
    /// Short host name.
    pub hostname: String,
    /// Domain name (may be empty).
    pub domainname: String,
}
resource_spec!(
    HostnameStatusSpec,
    "HostnameStatuses.net.talos.dev",
    "network",
    proto
);

impl HostnameStatusSpec {
    /// `hostname.domainname`, or just the hostname.
    pub fn fqdn(&self) -> String {
        if self.domainname.is_empty() {
            self.hostname.clone()
        } else {
            format!("{}.{}", self.hostname, self.domainname)
        }
    }
}

/// Id of the hostname status (and spec).
pub const HOSTNAME_ID: &str = "hostname";

/// `Nodenames.kubernetes.talos.dev` (`nodename`): the Kubernetes node name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodenameSpec {
    /// Node name.
    pub nodename: String,
    /// Version of the hostname status it was derived from.
    #[serde(rename = "hostnameVersion")]
    pub hostname_version: String,
    /// `machine.kubelet.skipNodeRegistration`.
    #[serde(rename = "skipNodeRegistration")]
    pub skip_node_registration: bool,
}
resource_spec!(NodenameSpec, "Nodenames.kubernetes.talos.dev", "k8s", proto);

/// Id of the node name.
pub const NODENAME_ID: &str = "nodename";

/// Control-plane details of a member.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ControlPlane {
    /// kube-apiserver port.
    pub port: i64,
}

/// `Members.cluster.talos.dev` (id = node id).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MemberSpec {
    /// Node id.
    #[serde(rename = "nodeId")]
    pub node_id: String,
    /// Node addresses.
    pub addresses: Vec<String>,
    /// Host name.
    pub hostname: String,
    /// `controlplane`, `worker`, …
    #[serde(rename = "machineType")]
    pub machine_type: String,
    /// E.g. `Talos (v1.7.0)`.
    #[serde(rename = "operatingSystem")]
    pub operating_system: String,
    /// Set on control-plane nodes.
    #[serde(
        rename = "controlPlane",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub control_plane: Option<ControlPlane>,
}
resource_spec!(MemberSpec, "Members.cluster.talos.dev", "cluster", proto);

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
resource_spec!(
    KernelParamStatusSpec,
    "KernelParamStatuses.runtime.talos.dev",
    "runtime",
    proto
);

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
resource_spec!(
    MountStatusSpec,
    "MountStatuses.runtime.talos.dev",
    "runtime",
    proto
);

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
resource_spec!(
    TimeStatusSpec,
    "TimeStatuses.v1alpha1.talos.dev",
    "runtime",
    proto
);

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
            MachineTypeSpec("controlplane".into()).to_yaml().unwrap(),
            "controlplane\n"
        );
        let m = MemberSpec {
            node_id: "abc".into(),
            addresses: vec!["10.5.0.2".into()],
            hostname: "cp-1".into(),
            machine_type: "controlplane".into(),
            operating_system: "Talos (v1.7.0)".into(),
            control_plane: Some(ControlPlane { port: 6443 }),
        };
        assert_eq!(
            m.to_yaml().unwrap(),
            "nodeId: abc\naddresses:\n    - 10.5.0.2\nhostname: cp-1\nmachineType: controlplane\noperatingSystem: Talos (v1.7.0)\ncontrolPlane:\n    port: 6443\n"
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
        let back: MemberSpec = MemberSpec::from_yaml(&m.to_yaml().unwrap()).unwrap();
        assert_eq!(back, m);
    }
}
