//! `machine.install` and `machine.disks`: where Talos installs itself and which extra disks it
//! partitions.

use serde::{Deserialize, Serialize};

use crate::config::types::DiskSize;

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
