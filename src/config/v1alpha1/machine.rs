//! `machine.*` except the network, install and disks sections.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use super::{
    is_default, ser_value_sorted, ser_values_sorted, unstructured_is_empty, InstallConfig,
    MachineDisk, NetworkConfig, PemEncodedCertificate, PemEncodedCertificateAndKey, StringMap,
};
use crate::config::types::FileMode;
use crate::duration::GoDuration;

/// `machine`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MachineConfig {
    #[serde(rename = "type", default)]
    pub machine_type: String,
    #[serde(default)]
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PemEncodedCertificateAndKey>,
    #[serde(rename = "acceptedCAs", default, skip_serializing_if = "Vec::is_empty")]
    pub accepted_cas: Vec<PemEncodedCertificate>,
    #[serde(rename = "certSANs", default)]
    pub cert_sans: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<MachineControlPlaneConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet: Option<KubeletConfig>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "ser_values_sorted"
    )]
    pub pods: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disks: Vec<MachineDisk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install: Option<InstallConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<MachineFile>,
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "crate::yaml::serialize_sorted"
    )]
    pub env: StringMap,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<TimeConfig>,
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "crate::yaml::serialize_sorted"
    )]
    pub sysctls: StringMap,
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "crate::yaml::serialize_sorted"
    )]
    pub sysfs: StringMap,
    #[serde(default, skip_serializing_if = "is_default")]
    pub registries: RegistriesConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_disk_encryption: Option<SystemDiskEncryptionConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<FeaturesConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udev: Option<UdevConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<LoggingConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<KernelConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seccomp_profiles: Vec<MachineSeccompProfile>,
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "crate::yaml::serialize_sorted"
    )]
    pub node_labels: StringMap,
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "crate::yaml::serialize_sorted"
    )]
    pub node_taints: StringMap,
}

/// `machine.seccompProfiles[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineSeccompProfile {
    #[serde(default)]
    pub name: String,
    #[serde(default, serialize_with = "ser_value_sorted")]
    pub value: Value,
}

/// `machine.controlPlane`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MachineControlPlaneConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_manager: Option<MachineComponentToggle>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<MachineComponentToggle>,
}

/// `machine.controlPlane.{controllerManager,scheduler}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineComponentToggle {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// `machine.kubelet`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubeletConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(rename = "clusterDNS", default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_dns: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "crate::yaml::serialize_sorted"
    )]
    pub extra_args: StringMap,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_mounts: Vec<ExtraMount>,
    #[serde(
        default,
        skip_serializing_if = "unstructured_is_empty",
        serialize_with = "ser_value_sorted"
    )]
    pub extra_config: Value,
    #[serde(
        default,
        skip_serializing_if = "unstructured_is_empty",
        serialize_with = "ser_value_sorted"
    )]
    pub credential_provider_config: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_runtime_seccomp_profile_enabled: Option<bool>,
    #[serde(
        rename = "registerWithFQDN",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub register_with_fqdn: Option<bool>,
    #[serde(rename = "nodeIP", default, skip_serializing_if = "Option::is_none")]
    pub node_ip: Option<KubeletNodeIpConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_node_registration: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_manifests_directory: Option<bool>,
}

/// `machine.kubelet.nodeIP`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubeletNodeIpConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub valid_subnets: Vec<String>,
}

/// `machine.kubelet.extraMounts[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExtraMount {
    #[serde(default)]
    pub destination: String,
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub mount_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uid_mappings: Vec<LinuxIdMapping>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gid_mappings: Vec<LinuxIdMapping>,
}

/// A user-namespace id mapping of an extra mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinuxIdMapping {
    #[serde(rename = "containerID", default)]
    pub container_id: u32,
    #[serde(rename = "hostID", default)]
    pub host_id: u32,
    #[serde(default)]
    pub size: u32,
}

/// `machine.files[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineFile {
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub permissions: FileMode,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub op: String,
}

/// `machine.time`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TimeConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
    #[serde(default, skip_serializing_if = "GoDuration::is_zero")]
    pub boot_timeout: GoDuration,
}

/// `machine.registries`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistriesConfig {
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "crate::yaml::serialize_sorted"
    )]
    pub mirrors: IndexMap<String, RegistryMirrorConfig>,
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "crate::yaml::serialize_sorted"
    )]
    pub config: IndexMap<String, RegistryConfig>,
}

/// `machine.registries.mirrors.<host>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistryMirrorConfig {
    #[serde(default)]
    pub endpoints: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_path: Option<bool>,
}

/// `machine.registries.config.<host>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<RegistryTlsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<RegistryAuthConfig>,
}

/// `machine.registries.config.<host>.auth`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistryAuthConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identity_token: String,
}

/// `machine.registries.config.<host>.tls`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistryTlsConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_identity: Option<PemEncodedCertificateAndKey>,
    /// base64 of the PEM CA certificate(s).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ca: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
}

/// `machine.systemDiskEncryption`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemDiskEncryptionConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<EncryptionConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral: Option<EncryptionConfig>,
}

/// Encryption settings of one system partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EncryptionConfig {
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub keys: Vec<EncryptionKey>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cipher: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub key_size: u64,
    #[serde(default, skip_serializing_if = "is_default")]
    pub block_size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// One key slot of an encrypted partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionKey {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#static: Option<EncryptionKeyStatic>,
    #[serde(rename = "nodeID", default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<EmptyObject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms: Option<EncryptionKeyKms>,
    #[serde(default)]
    pub slot: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<EmptyObject>,
}

/// An object with no fields (`{}`), such as `nodeID: {}` or `tpm: {}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmptyObject {}

/// A static passphrase key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionKeyStatic {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub passphrase: String,
}

/// A key sealed by a KMS endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionKeyKms {
    #[serde(default)]
    pub endpoint: String,
}

/// `machine.features`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FeaturesConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rbac: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_hostname: Option<bool>,
    #[serde(
        rename = "kubernetesTalosAPIAccess",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kubernetes_talos_api_access: Option<KubernetesTalosApiAccessConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apid_check_ext_key_usage: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_quota_support: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_prism: Option<KubePrism>,
    #[serde(rename = "hostDNS", default, skip_serializing_if = "Option::is_none")]
    pub host_dns: Option<HostDns>,
}

/// `machine.features.kubePrism`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubePrism {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub port: i64,
}

/// `machine.features.kubernetesTalosAPIAccess`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubernetesTalosApiAccessConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_kubernetes_namespaces: Vec<String>,
}

/// `machine.features.hostDNS`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HostDns {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(
        rename = "forwardKubeDNSToHost",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub forward_kube_dns_to_host: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_member_names: Option<bool>,
}

/// `machine.udev`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UdevConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
}

/// `machine.logging`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    #[serde(default)]
    pub destinations: Vec<LoggingDestination>,
}

/// `machine.logging.destinations[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoggingDestination {
    /// `tcp://` or `udp://` URL.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub format: String,
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "crate::yaml::serialize_sorted"
    )]
    pub extra_tags: StringMap,
}

/// `machine.kernel`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<KernelModuleConfig>,
}

/// `machine.kernel.modules[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelModuleConfig {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<String>,
}
