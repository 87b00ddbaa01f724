//! `cluster.*`: the control plane, Kubernetes components, etcd and discovery.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use super::{
    is_default, ser_value_sorted, unstructured_is_empty, PemEncodedCertificate,
    PemEncodedCertificateAndKey, PemEncodedKey, StringMap,
};
use crate::duration::GoDuration;

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
