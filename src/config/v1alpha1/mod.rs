//! The v1alpha1 machine config document (`version: v1alpha1`, no `apiVersion`/`kind`).
//!
//! Field order follows Talos's Go structs, so output keys come out in Talos's order; a field is
//! skipped when empty exactly where Talos marks it `omitempty`. Free-form Kubernetes objects
//! (static pods, admission configuration, audit policy, ...) are kept as YAML values, and string
//! maps are written with their keys sorted the way Go writes maps.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use super::types::{DiskSize, FileMode};
use crate::duration::GoDuration;

/// A string-keyed map kept in input order (written sorted, as Go does).
pub type StringMap = IndexMap<String, String>;

pub(crate) fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Go's `omitempty` for a free-form object: absent, null, or an empty map.
pub(crate) fn unstructured_is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Mapping(m) => m.is_empty(),
        _ => false,
    }
}

fn default_version() -> String {
    "v1alpha1".to_string()
}

/// The whole v1alpha1 document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct V1Alpha1Config {
    /// Always `v1alpha1`.
    #[serde(default = "default_version")]
    pub version: String,
    /// Debug logging to the console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug: Option<bool>,
    /// Deprecated; kept for compatibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persist: Option<bool>,
    /// Machine-specific settings (written as `null` when absent).
    #[serde(default)]
    pub machine: Option<MachineConfig>,
    /// Cluster-wide settings (written as `null` when absent).
    #[serde(default)]
    pub cluster: Option<ClusterConfig>,
}

impl Default for V1Alpha1Config {
    fn default() -> Self {
        V1Alpha1Config {
            version: default_version(),
            debug: None,
            persist: None,
            machine: None,
            cluster: None,
        }
    }
}

/// A base64-encoded PEM certificate and private key (`{crt, key}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PemEncodedCertificateAndKey {
    /// base64 of the PEM certificate.
    #[serde(default)]
    pub crt: String,
    /// base64 of the PEM private key (empty on workers).
    #[serde(default)]
    pub key: String,
}

/// A base64-encoded PEM certificate (`{crt}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PemEncodedCertificate {
    /// base64 of the PEM certificate.
    #[serde(default)]
    pub crt: String,
}

/// A base64-encoded PEM private key (`{key}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PemEncodedKey {
    /// base64 of the PEM private key.
    #[serde(default)]
    pub key: String,
}

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

fn ser_values_sorted<S: serde::Serializer>(v: &[Value], s: S) -> Result<S::Ok, S::Error> {
    let sorted: Vec<Value> = v.iter().map(crate::yaml::sort_maps).collect();
    sorted.serialize(s)
}

fn ser_value_sorted<S: serde::Serializer>(v: &Value, s: S) -> Result<S::Ok, S::Error> {
    crate::yaml::serialize_value_sorted(v, s)
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

/// `machine.network`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Device>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_host_entries: Vec<ExtraHost>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubespan: Option<NetworkKubeSpan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_search_domain: Option<bool>,
}

/// `machine.network.extraHostEntries[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraHost {
    #[serde(default)]
    pub ip: String,
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// `machine.network.interfaces[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Device {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_selector: Option<NetworkDeviceSelector>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cidr: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bond: Option<Bond>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<Bridge>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vlans: Vec<Vlan>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub mtu: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dummy: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp_options: Option<DhcpOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wireguard: Option<DeviceWireguardConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vip: Option<DeviceVipConfig>,
}

/// DHCP options of an interface or VLAN.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DhcpOptions {
    #[serde(default)]
    pub route_metric: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<bool>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub duidv6: String,
}

/// `interfaces[].wireguard`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeviceWireguardConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub private_key: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub listen_port: i64,
    #[serde(default, skip_serializing_if = "is_default")]
    pub firewall_mark: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<DeviceWireguardPeer>,
}

/// `interfaces[].wireguard.peers[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeviceWireguardPeer {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub public_key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub endpoint: String,
    #[serde(default, skip_serializing_if = "GoDuration::is_zero")]
    pub persistent_keepalive_interval: GoDuration,
    #[serde(rename = "allowedIPs", default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_ips: Vec<String>,
}

/// `interfaces[].vip` / `vlans[].vip`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeviceVipConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equinix_metal: Option<VipApiToken>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hcloud: Option<VipApiToken>,
}

/// The API token of a cloud-managed VIP (Equinix Metal, Hetzner Cloud).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VipApiToken {
    #[serde(default)]
    pub api_token: String,
}

/// `interfaces[].bond`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Bond {
    #[serde(default)]
    pub interfaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_selectors: Vec<NetworkDeviceSelector>,
    #[serde(rename = "arpIPTarget", default, skip_serializing_if = "Vec::is_empty")]
    pub arp_ip_target: Vec<String>,
    #[serde(default)]
    pub mode: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub xmit_hash_policy: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub lacp_rate: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ad_actor_system: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub arp_validate: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub arp_all_targets: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub primary: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub primary_reselect: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fail_over_mac: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ad_select: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub miimon: u32,
    #[serde(default, skip_serializing_if = "is_default")]
    pub updelay: u32,
    #[serde(default, skip_serializing_if = "is_default")]
    pub downdelay: u32,
    #[serde(default, skip_serializing_if = "is_default")]
    pub arp_interval: u32,
    #[serde(default, skip_serializing_if = "is_default")]
    pub resend_igmp: u32,
    #[serde(default, skip_serializing_if = "is_default")]
    pub min_links: u32,
    #[serde(default, skip_serializing_if = "is_default")]
    pub lp_interval: u32,
    #[serde(default, skip_serializing_if = "is_default")]
    pub packets_per_slave: u32,
    #[serde(default, skip_serializing_if = "is_default")]
    pub num_peer_notif: u8,
    #[serde(default, skip_serializing_if = "is_default")]
    pub tlb_dynamic_lb: u8,
    #[serde(default, skip_serializing_if = "is_default")]
    pub all_slaves_active: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_carrier: Option<bool>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub ad_actor_sys_prio: u16,
    #[serde(default, skip_serializing_if = "is_default")]
    pub ad_user_port_key: u16,
    #[serde(default, skip_serializing_if = "is_default")]
    pub peer_notify_delay: u32,
}

/// `interfaces[].bridge.stp`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stp {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// `interfaces[].bridge`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bridge {
    #[serde(default)]
    pub interfaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stp: Option<Stp>,
}

/// `interfaces[].vlans[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Vlan {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cidr: String,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp: Option<bool>,
    #[serde(default)]
    pub vlan_id: u16,
    #[serde(default, skip_serializing_if = "is_default")]
    pub mtu: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vip: Option<DeviceVipConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp_options: Option<DhcpOptions>,
}

/// A static route.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    #[serde(default)]
    pub network: String,
    #[serde(default)]
    pub gateway: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub metric: u32,
    #[serde(default, skip_serializing_if = "is_default")]
    pub mtu: u32,
}

/// `machine.network.kubespan`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkKubeSpan {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise_kubernetes_networks: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_down_peer_bypass: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harvest_extra_endpoints: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<KubeSpanFilters>,
}

/// `machine.network.kubespan.filters`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeSpanFilters {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
}

/// Selects a network link by its hardware properties.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkDeviceSelector {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bus_path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hardware_addr: String,
    #[serde(rename = "pciID", default, skip_serializing_if = "String::is_empty")]
    pub pci_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physical: Option<bool>,
}

/// `machine.disks[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineDisk {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub device: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<DiskPartition>,
}

/// `machine.disks[].partitions[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskPartition {
    #[serde(default, skip_serializing_if = "DiskSize::is_zero")]
    pub size: DiskSize,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mountpoint: String,
}

/// `machine.install`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InstallConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub disk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_selector: Option<InstallDiskSelector>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_kernel_args: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<InstallExtensionConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootloader: Option<bool>,
    #[serde(default)]
    pub wipe: Option<bool>,
    #[serde(
        rename = "legacyBIOSSupport",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub legacy_bios_support: Option<bool>,
}

/// `machine.install.diskSelector`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InstallDiskSelector {
    /// Size condition such as `>= 1TB` or `4GB`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub size: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub serial: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub modalias: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uuid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub wwid: String,
    /// `ssd`, `hdd`, `nvme` or `sd`.
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub disk_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bus_path: String,
}

/// `machine.install.extensions[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallExtensionConfig {
    #[serde(default)]
    pub image: String,
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

// ----------------------------------------------------------------------------------------------
// cluster.*
// ----------------------------------------------------------------------------------------------

/// `cluster`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret: String,
    #[serde(default)]
    pub control_plane: Option<ControlPlaneConfig>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<ClusterNetworkConfig>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub aescbc_encryption_secret: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secretbox_encryption_secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PemEncodedCertificateAndKey>,
    #[serde(rename = "acceptedCAs", default, skip_serializing_if = "Vec::is_empty")]
    pub accepted_cas: Vec<PemEncodedCertificate>,
    #[serde(
        rename = "aggregatorCA",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub aggregator_ca: Option<PemEncodedCertificateAndKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<PemEncodedKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_server: Option<ApiServerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_manager: Option<ControllerManagerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<SchedulerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<ClusterDiscoveryConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd: Option<EtcdConfig>,
    #[serde(rename = "coreDNS", default, skip_serializing_if = "Option::is_none")]
    pub core_dns: Option<CoreDns>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_cloud_provider: Option<ExternalCloudProviderConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_manifests: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "crate::yaml::serialize_sorted"
    )]
    pub extra_manifest_headers: StringMap,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inline_manifests: Vec<ClusterInlineManifest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_kubeconfig: Option<AdminKubeconfigConfig>,
    /// Deprecated spelling of `allowSchedulingOnControlPlanes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_scheduling_on_masters: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_scheduling_on_control_planes: Option<bool>,
}

/// `cluster.controlPlane`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ControlPlaneConfig {
    /// The canonical Kubernetes API URL, e.g. `https://1.2.3.4:6443`.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(
        rename = "localAPIServerPort",
        default,
        skip_serializing_if = "is_default"
    )]
    pub local_api_server_port: i64,
}

/// `cluster.network`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterNetworkConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni: Option<CniConfig>,
    #[serde(default)]
    pub dns_domain: String,
    #[serde(default)]
    pub pod_subnets: Vec<String>,
    #[serde(default)]
    pub service_subnets: Vec<String>,
}

/// `cluster.network.cni`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CniConfig {
    /// `flannel`, `custom` or `none`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flannel: Option<FlannelCniConfig>,
}

/// `cluster.network.cni.flannel`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FlannelCniConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<String>,
}

/// `cluster.apiServer`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApiServerConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "crate::yaml::serialize_sorted"
    )]
    pub extra_args: StringMap,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_volumes: Vec<VolumeMountConfig>,
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "crate::yaml::serialize_sorted"
    )]
    pub env: StringMap,
    #[serde(rename = "certSANs", default, skip_serializing_if = "Vec::is_empty")]
    pub cert_sans: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_pod_security_policy: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admission_control: Vec<AdmissionPluginConfig>,
    #[serde(
        default,
        skip_serializing_if = "unstructured_is_empty",
        serialize_with = "ser_value_sorted"
    )]
    pub audit_policy: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesConfig>,
}

/// `cluster.apiServer.admissionControl[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmissionPluginConfig {
    #[serde(default)]
    pub name: String,
    #[serde(default, serialize_with = "ser_value_sorted")]
    pub configuration: Value,
}

/// Resource requests/limits of a control plane static pod.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourcesConfig {
    #[serde(
        default,
        skip_serializing_if = "unstructured_is_empty",
        serialize_with = "ser_value_sorted"
    )]
    pub requests: Value,
    #[serde(
        default,
        skip_serializing_if = "unstructured_is_empty",
        serialize_with = "ser_value_sorted"
    )]
    pub limits: Value,
}

/// An extra host volume of a control plane static pod.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VolumeMountConfig {
    #[serde(default)]
    pub host_path: String,
    #[serde(default)]
    pub mount_path: String,
    #[serde(rename = "readonly", default, skip_serializing_if = "is_default")]
    pub read_only: bool,
}

/// `cluster.controllerManager`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ControllerManagerConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "crate::yaml::serialize_sorted"
    )]
    pub extra_args: StringMap,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_volumes: Vec<VolumeMountConfig>,
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "crate::yaml::serialize_sorted"
    )]
    pub env: StringMap,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesConfig>,
}

/// `cluster.proxy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProxyConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mode: String,
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "crate::yaml::serialize_sorted"
    )]
    pub extra_args: StringMap,
}

/// `cluster.scheduler`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SchedulerConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "crate::yaml::serialize_sorted"
    )]
    pub extra_args: StringMap,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_volumes: Vec<VolumeMountConfig>,
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "crate::yaml::serialize_sorted"
    )]
    pub env: StringMap,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesConfig>,
    #[serde(
        default,
        skip_serializing_if = "unstructured_is_empty",
        serialize_with = "ser_value_sorted"
    )]
    pub config: Value,
}

/// `cluster.etcd`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EtcdConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(default)]
    pub ca: Option<PemEncodedCertificateAndKey>,
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "crate::yaml::serialize_sorted"
    )]
    pub extra_args: StringMap,
    /// Deprecated: use `advertisedSubnets`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subnet: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub advertised_subnets: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listen_subnets: Vec<String>,
}

/// `cluster.coreDNS`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoreDns {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
}

/// `cluster.externalCloudProvider`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalCloudProviderConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<String>,
}

/// `cluster.inlineManifests[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterInlineManifest {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub contents: String,
}

/// `cluster.adminKubeconfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AdminKubeconfigConfig {
    #[serde(default, skip_serializing_if = "GoDuration::is_zero")]
    pub cert_lifetime: GoDuration,
}

/// `cluster.discovery`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterDiscoveryConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub registries: DiscoveryRegistriesConfig,
}

/// `cluster.discovery.registries`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryRegistriesConfig {
    #[serde(default)]
    pub kubernetes: RegistryKubernetesConfig,
    #[serde(default)]
    pub service: RegistryServiceConfig,
}

/// `cluster.discovery.registries.kubernetes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryKubernetesConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// `cluster.discovery.registries.service`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryServiceConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub endpoint: String,
}
