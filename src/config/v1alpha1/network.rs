//! `machine.network`: interfaces, bonds, bridges, VLANs, routes, WireGuard, VIPs and KubeSpan.

use serde::{Deserialize, Serialize};

use super::is_default;
use crate::duration::GoDuration;

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
