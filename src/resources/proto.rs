//! The protobuf form (`proto_spec`) of the specs we publish, wire-compatible with Talos 1.7's
//! `talos.resource.definitions.*` and `resource.config` messages (same field numbers and
//! types), so Talos's own talosctl can decode them as typed resources (e.g. `talosctl health`
//! reads `Members`, `MachineStatuses` and `MountStatuses`).
//!
//! The specs in [`super::specs`] encode themselves with these messages.

/// `common.NetIP`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NetIp {
    /// 4 or 16 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub ip: Vec<u8>,
}

/// `talos.resource.definitions.runtime.UnmetCondition`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UnmetCondition {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Reason.
    #[prost(string, tag = "2")]
    pub reason: String,
}

/// `talos.resource.definitions.runtime.MachineStatusStatus`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MachineStatusStatus {
    /// Ready.
    #[prost(bool, tag = "1")]
    pub ready: bool,
    /// Unmet conditions.
    #[prost(message, repeated, tag = "2")]
    pub unmet_conditions: Vec<UnmetCondition>,
}

/// `talos.resource.definitions.runtime.MachineStatusSpec`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MachineStatus {
    /// `RuntimeMachineStage`.
    #[prost(int32, tag = "1")]
    pub stage: i32,
    /// Status.
    #[prost(message, optional, tag = "2")]
    pub status: Option<MachineStatusStatus>,
}

/// `talos.resource.definitions.cluster.ControlPlane`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ControlPlane {
    /// API server port.
    #[prost(int64, tag = "1")]
    pub api_server_port: i64,
}

/// `talos.resource.definitions.cluster.MemberSpec`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Member {
    /// Node id.
    #[prost(string, tag = "1")]
    pub node_id: String,
    /// Addresses.
    #[prost(message, repeated, tag = "2")]
    pub addresses: Vec<NetIp>,
    /// Hostname.
    #[prost(string, tag = "3")]
    pub hostname: String,
    /// `enums.MachineType`.
    #[prost(int32, tag = "4")]
    pub machine_type: i32,
    /// Operating system.
    #[prost(string, tag = "5")]
    pub operating_system: String,
    /// Control plane.
    #[prost(message, optional, tag = "6")]
    pub control_plane: Option<ControlPlane>,
}

/// `talos.resource.definitions.runtime.MountStatusSpec`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MountStatus {
    /// Source.
    #[prost(string, tag = "1")]
    pub source: String,
    /// Target.
    #[prost(string, tag = "2")]
    pub target: String,
    /// File system type.
    #[prost(string, tag = "3")]
    pub filesystem_type: String,
    /// Options.
    #[prost(string, repeated, tag = "4")]
    pub options: Vec<String>,
    /// Encrypted.
    #[prost(bool, tag = "5")]
    pub encrypted: bool,
    /// Encryption providers.
    #[prost(string, repeated, tag = "6")]
    pub encryption_providers: Vec<String>,
}

/// Three booleans (`v1alpha1.ServiceSpec`, `time.StatusSpec` has an int in the middle).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Service {
    /// Running.
    #[prost(bool, tag = "1")]
    pub running: bool,
    /// Healthy.
    #[prost(bool, tag = "2")]
    pub healthy: bool,
    /// Unknown.
    #[prost(bool, tag = "3")]
    pub unknown: bool,
}

/// `talos.resource.definitions.time.StatusSpec`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeStatus {
    /// Synced.
    #[prost(bool, tag = "1")]
    pub synced: bool,
    /// Epoch.
    #[prost(int64, tag = "2")]
    pub epoch: i64,
    /// Sync disabled.
    #[prost(bool, tag = "3")]
    pub sync_disabled: bool,
}

/// Two strings (`network.HostnameStatusSpec`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HostnameStatus {
    /// Hostname.
    #[prost(string, tag = "1")]
    pub hostname: String,
    /// Domain name.
    #[prost(string, tag = "2")]
    pub domainname: String,
}

/// `talos.resource.definitions.k8s.NodenameSpec`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Nodename {
    /// Node name.
    #[prost(string, tag = "1")]
    pub nodename: String,
    /// Hostname version.
    #[prost(string, tag = "2")]
    pub hostname_version: String,
    /// Skip registration.
    #[prost(bool, tag = "3")]
    pub skip_node_registration: bool,
}

/// `talos.resource.definitions.runtime.KernelParamStatusSpec`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KernelParamStatus {
    /// Current.
    #[prost(string, tag = "1")]
    pub current: String,
    /// Default.
    #[prost(string, tag = "2")]
    pub default: String,
    /// Unsupported.
    #[prost(bool, tag = "3")]
    pub unsupported: bool,
}

/// `resource.config.MachineConfigSpec`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MachineConfig {
    /// The config as submitted.
    #[prost(bytes = "vec", tag = "1")]
    pub yaml_marshalled: Vec<u8>,
}

/// `resource.config.MachineTypeSpec`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MachineType {
    /// `MachineType` enum.
    #[prost(int32, tag = "1")]
    pub machine_type: i32,
}

/// Talos's `MachineType` enum value of a type name.
pub fn machine_type_number(name: &str) -> i32 {
    match name {
        "init" => 1,
        "controlplane" => 2,
        "worker" => 3,
        _ => 0,
    }
}

/// Talos's `RuntimeMachineStage` value of a stage name.
pub fn machine_stage_number(name: &str) -> i32 {
    match name {
        "booting" => 1,
        "installing" => 2,
        "maintenance" => 3,
        "running" => 4,
        "rebooting" => 5,
        "shutting down" => 6,
        "resetting" => 7,
        "upgrading" => 8,
        _ => 0,
    }
}

/// `common.NetIP` of an address in text form (`None` when it does not parse).
pub fn net_ip(s: &str) -> Option<NetIp> {
    let ip: std::net::IpAddr = s.parse().ok()?;
    Some(NetIp {
        ip: match ip {
            std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
            std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
        },
    })
}
