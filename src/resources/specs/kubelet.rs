//! The `k8s` namespace's kubelet and static pod resources: the kubelet's config and spec, its
//! node IP, the static pods and the server that hands them to the kubelet (Talos's
//! `pkg/machinery/resources/k8s`, node half).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::resources::{col, Column, ResourceSpec, StateError};

/// The namespace.
pub const K8S_NAMESPACE: &str = "k8s";
/// Id of the kubelet's config, spec and node IP resources.
pub const KUBELET_ID: &str = "kubelet";
/// Id of the static pod server status.
pub const STATIC_POD_SERVER_STATUS_ID: &str = "static-pod-server-status";

macro_rules! k8s_spec {
    ($ty:ty, $type_name:literal) => {
        impl ResourceSpec for $ty {
            const TYPE: &'static str = $type_name;
            const NAMESPACE: &'static str = K8S_NAMESPACE;
            crate::serde_yaml_spec!();
        }
    };
}

/// A mount of the kubelet's container (an OCI runtime-spec mount; Talos prints its Go field
/// names lower-cased).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Mount {
    /// Path in the container.
    pub destination: String,
    /// Filesystem type.
    #[serde(rename = "type")]
    pub mount_type: String,
    /// Source on the host.
    pub source: String,
    /// Mount options.
    pub options: Vec<String>,
}

impl Mount {
    /// The mount of `machine.kubelet.extraMounts[]`.
    pub fn from_config(m: &crate::config::ExtraMount) -> Mount {
        Mount {
            destination: m.destination.clone(),
            mount_type: m.mount_type.clone(),
            source: m.source.clone(),
            options: m.options.clone(),
        }
    }
}

/// `KubeletConfigs.kubernetes.talos.dev` (`kubelet`): the kubelet settings of the machine
/// config.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct KubeletConfigSpec {
    /// Image.
    pub image: String,
    /// Cluster DNS addresses.
    #[serde(rename = "clusterDNS")]
    pub cluster_dns: Vec<String>,
    /// Cluster domain.
    #[serde(rename = "clusterDomain")]
    pub cluster_domain: String,
    /// `machine.kubelet.extraArgs`.
    #[serde(
        rename = "extraArgs",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub extra_args: BTreeMap<String, String>,
    /// `machine.kubelet.extraMounts`.
    #[serde(rename = "extraMounts", default, skip_serializing_if = "Vec::is_empty")]
    pub extra_mounts: Vec<Mount>,
    /// `machine.kubelet.extraConfig` (free-form KubeletConfiguration fields).
    #[serde(
        rename = "extraConfig",
        default,
        skip_serializing_if = "is_empty_value",
        serialize_with = "crate::yaml::serialize_value_sorted"
    )]
    pub extra_config: serde_yaml::Value,
    /// An external cloud provider is configured.
    #[serde(rename = "cloudProviderExternal")]
    pub cloud_provider_external: bool,
    /// `machine.kubelet.defaultRuntimeSeccompProfileEnabled`.
    #[serde(rename = "defaultRuntimeSeccompEnabled")]
    pub default_runtime_seccomp_enabled: bool,
    /// `machine.kubelet.skipNodeRegistration`.
    #[serde(rename = "skipNodeRegistration")]
    pub skip_node_registration: bool,
    /// Where the kubelet fetches the static pods.
    #[serde(rename = "staticPodListURL")]
    pub static_pod_list_url: String,
    /// `machine.kubelet.disableManifestsDirectory`.
    #[serde(rename = "disableManifestsDirectory")]
    pub disable_manifests_directory: bool,
    /// `machine.features.diskQuotaSupport`.
    #[serde(rename = "enableFSQuotaMonitoring")]
    pub enable_fs_quota_monitoring: bool,
    /// `machine.kubelet.credentialProviderConfig`.
    #[serde(
        rename = "credentialProviderConfig",
        default,
        skip_serializing_if = "is_empty_value",
        serialize_with = "crate::yaml::serialize_value_sorted"
    )]
    pub credential_provider_config: serde_yaml::Value,
}
k8s_spec!(KubeletConfigSpec, "KubeletConfigs.kubernetes.talos.dev");

fn is_empty_value(v: &serde_yaml::Value) -> bool {
    match v {
        serde_yaml::Value::Null => true,
        serde_yaml::Value::Mapping(m) => m.is_empty(),
        _ => false,
    }
}

/// `KubeletSpecs.kubernetes.talos.dev` (`kubelet`): how the kubelet runs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct KubeletSpecSpec {
    /// Image.
    pub image: String,
    /// Command-line flags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Extra mounts.
    #[serde(rename = "extraMounts", default, skip_serializing_if = "Vec::is_empty")]
    pub extra_mounts: Vec<Mount>,
    /// The node name Talos manages (empty when the user overrides it).
    #[serde(
        rename = "expectedNodename",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub expected_nodename: String,
    /// The KubeletConfiguration, as an object.
    #[serde(serialize_with = "crate::yaml::serialize_value_sorted")]
    pub config: serde_yaml::Value,
    /// The credential provider configuration.
    #[serde(
        rename = "credentialProviderConfig",
        default,
        skip_serializing_if = "is_empty_value",
        serialize_with = "crate::yaml::serialize_value_sorted"
    )]
    pub credential_provider_config: serde_yaml::Value,
}
k8s_spec!(KubeletSpecSpec, "KubeletSpecs.kubernetes.talos.dev");

/// `NodeIPConfigs.kubernetes.talos.dev` (`kubelet`): how the node IP is picked.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodeIpConfigSpec {
    /// Subnets the node IP may come from.
    #[serde(
        rename = "validSubnets",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub valid_subnets: Vec<String>,
    /// Subnets it may not (pods, services, VIPs).
    #[serde(rename = "excludeSubnets")]
    pub exclude_subnets: Vec<String>,
}
k8s_spec!(NodeIpConfigSpec, "NodeIPConfigs.kubernetes.talos.dev");

/// `NodeIPs.kubernetes.talos.dev` (`kubelet`): the kubelet's `--node-ip`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodeIpSpec {
    /// At most one IPv4 and one IPv6 address.
    pub addresses: Vec<IpAddr>,
}
k8s_spec!(NodeIpSpec, "NodeIPs.kubernetes.talos.dev");

/// `StaticPodServerStatuses.kubernetes.talos.dev`: where the static pods are served.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StaticPodServerStatusSpec {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}
k8s_spec!(
    StaticPodServerStatusSpec,
    "StaticPodServerStatuses.kubernetes.talos.dev"
);

/// `StaticPods.kubernetes.talos.dev`: a static pod (a `v1.Pod` as a JSON object). Talos keeps
/// the pod as a JSON-decoded map, so its YAML prints every number as a Go float64 does
/// (`priority: 2e+09`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StaticPodSpec {
    /// The pod.
    pub pod: serde_json::Value,
}

impl ResourceSpec for StaticPodSpec {
    const TYPE: &'static str = "StaticPods.kubernetes.talos.dev";
    const NAMESPACE: &'static str = K8S_NAMESPACE;

    fn to_yaml(&self) -> Result<String, StateError> {
        Ok(crate::yaml::emit(&go_floats(&self.pod)))
    }

    fn from_yaml(yaml: &str) -> Result<Self, StateError> {
        Ok(StaticPodSpec {
            pod: crate::resources::parse_yaml(yaml)?,
        })
    }
}

/// `StaticPodStatuses.kubernetes.talos.dev` (`podstatus`): a static pod's status as the
/// kubelet reports it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StaticPodStatusSpec {
    /// The pod status.
    pub pod_status: serde_json::Value,
}

impl ResourceSpec for StaticPodStatusSpec {
    const TYPE: &'static str = "StaticPodStatuses.kubernetes.talos.dev";
    const NAMESPACE: &'static str = K8S_NAMESPACE;
    const ALIASES: &'static [&'static str] = &["podstatus"];
    const COLUMNS: &'static [Column] =
        &[col("Ready", "{.conditions[?(@.type==\"Ready\")].status}")];

    fn to_yaml(&self) -> Result<String, StateError> {
        Ok(crate::yaml::emit(&go_floats(&self.pod_status)))
    }

    fn from_yaml(yaml: &str) -> Result<Self, StateError> {
        Ok(StaticPodStatusSpec {
            pod_status: crate::resources::parse_yaml(yaml)?,
        })
    }
}

/// A JSON value as YAML with sorted keys and every number a float (what Go's YAML encoder
/// prints for a JSON-decoded `map[string]any`).
pub fn go_floats(value: &serde_json::Value) -> serde_yaml::Value {
    use serde_json::Value as J;
    use serde_yaml::Value as Y;
    match value {
        J::Null => Y::Null,
        J::Bool(b) => Y::Bool(*b),
        J::Number(n) => Y::Number(serde_yaml::Number::from(n.as_f64().unwrap_or(0.0))),
        J::String(s) => Y::String(s.clone()),
        J::Array(items) => Y::Sequence(items.iter().map(go_floats).collect()),
        J::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| crate::yaml::go_key_cmp(a, b));
            Y::Mapping(
                keys.into_iter()
                    .map(|k| (Y::String(k.clone()), go_floats(&map[k])))
                    .collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_pod_numbers_print_as_go_floats() {
        let spec = StaticPodSpec {
            pod: serde_json::json!({"spec": {"priority": 2_000_000_000, "port": 10257}, "kind": "Pod"}),
        };
        assert_eq!(
            spec.to_yaml().unwrap(),
            "kind: Pod\nspec:\n    port: 10257\n    priority: 2e+09\n"
        );
    }
}
