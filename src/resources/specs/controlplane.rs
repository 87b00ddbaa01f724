//! The `controlplane` namespace: the control-plane component configs derived from the machine
//! config, the bootstrap manifests and their status, and the render statuses of the static
//! pods' files (Talos's `pkg/machinery/resources/k8s`, control-plane half).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::resources::{col, parse_yaml, Column, ResourceSpec, StateError};

/// The namespace.
pub const CONTROL_PLANE_NAMESPACE: &str = "controlplane";

/// Id of the API server's config and static pod.
pub const APISERVER_ID: &str = "kube-apiserver";
/// Id of the controller manager's config and static pod.
pub const CONTROLLER_MANAGER_ID: &str = "kube-controller-manager";
/// Id of the scheduler's config and static pod.
pub const SCHEDULER_ID: &str = "kube-scheduler";
/// Id of the admission control config.
pub const ADMISSION_CONTROL_ID: &str = "admission-control";
/// Id of the audit policy config.
pub const AUDIT_POLICY_ID: &str = "audit-policy";
/// Id of the bootstrap manifests config and of the manifest status.
pub const MANIFESTS_ID: &str = "manifests";
/// Id of the extra manifests config.
pub const EXTRA_MANIFESTS_ID: &str = "extra-manifests";
/// Id of the static pods' config and secrets render statuses.
pub const STATIC_PODS_ID: &str = "static-pods";

/// A host path mounted into a control-plane pod (`cluster.*.extraVolumes[]`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExtraVolume {
    /// Volume name (derived from the mount path).
    pub name: String,
    /// Path on the host.
    #[serde(rename = "hostPath")]
    pub host_path: String,
    /// Path in the container.
    #[serde(rename = "mountPath")]
    pub mount_path: String,
    /// Mounted read-only.
    #[serde(rename = "readonly")]
    pub read_only: bool,
}

/// CPU and memory requests and limits of a control-plane pod.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Resources {
    /// Requests (`cpu`, `memory`; empty values mean the default).
    #[serde(default)]
    pub requests: BTreeMap<String, String>,
    /// Limits.
    #[serde(default)]
    pub limits: BTreeMap<String, String>,
}

macro_rules! controlplane_spec {
    ($ty:ty, $type_name:literal) => {
        impl ResourceSpec for $ty {
            const TYPE: &'static str = $type_name;
            const NAMESPACE: &'static str = CONTROL_PLANE_NAMESPACE;
            crate::serde_yaml_spec!();
        }
    };
    ($ty:ty, $type_name:literal, sensitive) => {
        impl ResourceSpec for $ty {
            const TYPE: &'static str = $type_name;
            const NAMESPACE: &'static str = CONTROL_PLANE_NAMESPACE;
            const SENSITIVE: bool = true;
            crate::serde_yaml_spec!();
        }
    };
}

/// `APIServerConfigs.kubernetes.talos.dev` (`kube-apiserver`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ApiServerConfigSpec {
    /// Image.
    pub image: String,
    /// `external` with an external cloud provider.
    #[serde(rename = "cloudProvider")]
    pub cloud_provider: String,
    /// The cluster endpoint (audiences and issuer).
    #[serde(rename = "controlPlaneEndpoint")]
    pub control_plane_endpoint: String,
    /// etcd client URLs.
    #[serde(rename = "etcdServers")]
    pub etcd_servers: Vec<String>,
    /// Secure port.
    #[serde(rename = "localPort")]
    pub local_port: u16,
    /// Service subnets.
    #[serde(rename = "serviceCIDR")]
    pub service_cidrs: Vec<String>,
    /// `cluster.apiServer.extraArgs`.
    #[serde(rename = "extraArgs")]
    pub extra_args: BTreeMap<String, String>,
    /// `cluster.apiServer.extraVolumes`.
    #[serde(rename = "extraVolumes")]
    pub extra_volumes: Vec<ExtraVolume>,
    /// `cluster.apiServer.env`.
    #[serde(rename = "environmentVariables")]
    pub environment_variables: BTreeMap<String, String>,
    /// Not disabled by `disablePodSecurityPolicy`.
    #[serde(rename = "podSecurityPolicyEnabled")]
    pub pod_security_policy_enabled: bool,
    /// `$(POD_IP)`, or empty with `skipNodeRegistration`.
    #[serde(rename = "advertisedAddress")]
    pub advertised_address: String,
    /// `cluster.apiServer.resources`.
    pub resources: Resources,
}
controlplane_spec!(ApiServerConfigSpec, "APIServerConfigs.kubernetes.talos.dev");

/// `ControllerManagerConfigs.kubernetes.talos.dev` (`kube-controller-manager`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ControllerManagerConfigSpec {
    /// Not disabled on this node.
    pub enabled: bool,
    /// Image.
    pub image: String,
    /// `external` with an external cloud provider.
    #[serde(rename = "cloudProvider")]
    pub cloud_provider: String,
    /// Pod subnets.
    #[serde(rename = "podCIDRs")]
    pub pod_cidrs: Vec<String>,
    /// Service subnets.
    #[serde(rename = "serviceCIDRs")]
    pub service_cidrs: Vec<String>,
    /// `cluster.controllerManager.extraArgs`.
    #[serde(rename = "extraArgs")]
    pub extra_args: BTreeMap<String, String>,
    /// `cluster.controllerManager.extraVolumes`.
    #[serde(rename = "extraVolumes")]
    pub extra_volumes: Vec<ExtraVolume>,
    /// `cluster.controllerManager.env`.
    #[serde(rename = "environmentVariables")]
    pub environment_variables: BTreeMap<String, String>,
    /// `cluster.controllerManager.resources`.
    pub resources: Resources,
}
controlplane_spec!(
    ControllerManagerConfigSpec,
    "ControllerManagerConfigs.kubernetes.talos.dev"
);

/// `SchedulerConfigs.kubernetes.talos.dev` (`kube-scheduler`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SchedulerConfigSpec {
    /// Not disabled on this node.
    pub enabled: bool,
    /// Image.
    pub image: String,
    /// `cluster.scheduler.extraArgs`.
    #[serde(rename = "extraArgs")]
    pub extra_args: BTreeMap<String, String>,
    /// `cluster.scheduler.extraVolumes`.
    #[serde(rename = "extraVolumes")]
    pub extra_volumes: Vec<ExtraVolume>,
    /// `cluster.scheduler.env`.
    #[serde(rename = "environmentVariables")]
    pub environment_variables: BTreeMap<String, String>,
    /// `cluster.scheduler.resources`.
    pub resources: Resources,
    /// `cluster.scheduler.config` (a KubeSchedulerConfiguration, free-form).
    #[serde(serialize_with = "crate::yaml::serialize_value_sorted")]
    pub config: serde_yaml::Value,
}
controlplane_spec!(SchedulerConfigSpec, "SchedulerConfigs.kubernetes.talos.dev");

/// One admission plugin's configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AdmissionPluginSpec {
    /// Plugin name.
    pub name: String,
    /// Its configuration (free-form).
    #[serde(serialize_with = "crate::yaml::serialize_value_sorted")]
    pub configuration: serde_yaml::Value,
}

/// `AdmissionControlConfigs.kubernetes.talos.dev` (`admission-control`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AdmissionControlConfigSpec {
    /// `cluster.apiServer.admissionControl`.
    pub config: Vec<AdmissionPluginSpec>,
}
controlplane_spec!(
    AdmissionControlConfigSpec,
    "AdmissionControlConfigs.kubernetes.talos.dev"
);

/// `AuditPolicyConfigs.kubernetes.talos.dev` (`audit-policy`), sensitive.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AuditPolicyConfigSpec {
    /// The audit policy (free-form).
    #[serde(serialize_with = "crate::yaml::serialize_value_sorted")]
    pub config: serde_yaml::Value,
}
controlplane_spec!(
    AuditPolicyConfigSpec,
    "AuditPolicyConfigs.kubernetes.talos.dev",
    sensitive
);

/// `BootstrapManifestsConfigs.kubernetes.talos.dev` (`manifests`): what the built-in
/// manifests are rendered from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BootstrapManifestsConfigSpec {
    /// The API server URL in-cluster components use (Talos's YAML key is `string`).
    #[serde(rename = "string")]
    pub server: String,
    /// Cluster DNS domain.
    #[serde(rename = "clusterDomain")]
    pub cluster_domain: String,
    /// Pod subnets.
    #[serde(rename = "podCIDRs")]
    pub pod_cidrs: Vec<String>,
    /// kube-proxy is deployed.
    #[serde(rename = "proxyEnabled")]
    pub proxy_enabled: bool,
    /// kube-proxy's image.
    #[serde(rename = "proxyImage")]
    pub proxy_image: String,
    /// kube-proxy's flags.
    #[serde(rename = "proxyArgs")]
    pub proxy_args: Vec<String>,
    /// CoreDNS is deployed.
    #[serde(rename = "coreDNSEnabled")]
    pub core_dns_enabled: bool,
    /// CoreDNS's image.
    #[serde(rename = "coreDNSImage")]
    pub core_dns_image: String,
    /// IPv4 cluster DNS address.
    #[serde(rename = "dnsServiceIP")]
    pub dns_service_ip: String,
    /// IPv6 cluster DNS address.
    #[serde(rename = "dnsServiceIPv6")]
    pub dns_service_ipv6: String,
    /// Flannel is the CNI.
    #[serde(rename = "flannelEnabled")]
    pub flannel_enabled: bool,
    /// Flannel's image.
    #[serde(rename = "flannelImage")]
    pub flannel_image: String,
    /// The CNI plugins installer image.
    #[serde(rename = "flannelCNIImage")]
    pub flannel_cni_image: String,
    /// `cluster.network.cni.flannel.extraArgs`.
    #[serde(rename = "flannelExtraArgs")]
    pub flannel_extra_args: Vec<String>,
    /// API server host for flanneld (KubePrism).
    #[serde(rename = "flannelKubeServiceHost")]
    pub flannel_kube_service_host: String,
    /// API server port for flanneld (KubePrism).
    #[serde(rename = "flannelKubeServicePort")]
    pub flannel_kube_service_port: String,
    /// The legacy pod security policy manifest is rendered.
    #[serde(rename = "podSecurityPolicyEnabled")]
    pub pod_security_policy_enabled: bool,
    /// The Talos API service and its CRD are rendered.
    #[serde(rename = "talosAPIServiceEnabled")]
    pub talos_api_service_enabled: bool,
    /// The host DNS service address (empty: no service).
    #[serde(rename = "serviceHostDNSAddress")]
    pub service_host_dns_address: String,
}
controlplane_spec!(
    BootstrapManifestsConfigSpec,
    "BootstrapManifestsConfigs.kubernetes.talos.dev"
);

/// A manifest fetched from a URL or given inline.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExtraManifest {
    /// Name (the URL for downloaded ones).
    pub name: String,
    /// Where to fetch it.
    pub url: String,
    /// Id prefix: 05 CNI, 30 cloud provider, 99 extra.
    pub priority: String,
    /// `cluster.extraManifestHeaders`.
    #[serde(rename = "extraHeaders")]
    pub extra_headers: BTreeMap<String, String>,
    /// The contents of an inline manifest.
    #[serde(rename = "inlineManifest")]
    pub inline_manifest: String,
}

/// `ExtraManifestsConfigs.kubernetes.talos.dev` (`extra-manifests`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExtraManifestsConfigSpec {
    /// The manifests, in order.
    #[serde(rename = "extraManifests")]
    pub extra_manifests: Vec<ExtraManifest>,
}
controlplane_spec!(
    ExtraManifestsConfigSpec,
    "ExtraManifestsConfigs.kubernetes.talos.dev"
);

/// `Manifests.kubernetes.talos.dev`: the Kubernetes objects of one manifest (JSON objects; the
/// YAML `spec:` is their list).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ManifestSpec {
    /// The objects.
    pub items: Vec<serde_json::Value>,
}

impl ResourceSpec for ManifestSpec {
    const TYPE: &'static str = "Manifests.kubernetes.talos.dev";
    const NAMESPACE: &'static str = CONTROL_PLANE_NAMESPACE;

    fn to_yaml(&self) -> Result<String, StateError> {
        crate::resources::yaml_of(&sorted_json(&serde_json::Value::Array(self.items.clone())))
    }

    fn from_yaml(yaml: &str) -> Result<Self, StateError> {
        let items: Vec<serde_json::Value> = parse_yaml(yaml)?;
        Ok(ManifestSpec { items })
    }
}

/// `value` with every object's keys sorted the way Go sorts map keys (`map[string]any`).
pub fn sorted_json(value: &serde_json::Value) -> serde_yaml::Value {
    let as_yaml = serde_yaml::to_value(value).unwrap_or(serde_yaml::Value::Null);
    crate::yaml::sort_maps(&as_yaml)
}

/// `ManifestStatuses.kubernetes.talos.dev` (`manifests`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ManifestStatusSpec {
    /// Ids of the manifests applied to the API server.
    #[serde(rename = "manifestsApplied")]
    pub manifests_applied: Vec<String>,
}
controlplane_spec!(ManifestStatusSpec, "ManifestStatuses.kubernetes.talos.dev");

/// `ConfigStatuses.kubernetes.talos.dev` (`static-pods`): the config files are rendered.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConfigStatusSpec {
    /// Rendered.
    pub ready: bool,
    /// Versions of the inputs.
    pub version: String,
}

impl ResourceSpec for ConfigStatusSpec {
    const TYPE: &'static str = "ConfigStatuses.kubernetes.talos.dev";
    const NAMESPACE: &'static str = CONTROL_PLANE_NAMESPACE;
    const COLUMNS: &'static [Column] = &[
        col("Ready", "{.ready}"),
        col("Secrets Version", "{.version}"),
    ];
    crate::serde_yaml_spec!();
}

/// `SecretStatuses.kubernetes.talos.dev` (`static-pods`): the secret files are rendered.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SecretsStatusSpec {
    /// Rendered.
    pub ready: bool,
    /// Version of the secrets.
    pub version: String,
}

impl ResourceSpec for SecretsStatusSpec {
    const TYPE: &'static str = "SecretStatuses.kubernetes.talos.dev";
    const NAMESPACE: &'static str = CONTROL_PLANE_NAMESPACE;
    const COLUMNS: &'static [Column] = &[
        col("Ready", "{.ready}"),
        col("Secrets Version", "{.version}"),
    ];
    crate::serde_yaml_spec!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_keys_are_talos() {
        let spec = ApiServerConfigSpec {
            image: "i".into(),
            local_port: 6443,
            ..Default::default()
        };
        let yaml = spec.to_yaml().unwrap();
        assert!(
            yaml.starts_with("image: i\ncloudProvider: \"\"\n"),
            "{yaml}"
        );
        assert!(yaml.contains("serviceCIDR: []\nextraArgs: {}\n"), "{yaml}");
        assert!(
            yaml.contains("resources:\n    requests: {}\n    limits: {}\n"),
            "{yaml}"
        );
        assert_eq!(ApiServerConfigSpec::from_yaml(&yaml).unwrap(), spec);
        let m = ManifestSpec {
            items: vec![serde_json::json!({"kind": "A", "apiVersion": "v1", "num": 2})],
        };
        assert_eq!(
            m.to_yaml().unwrap(),
            "- apiVersion: v1\n  kind: A\n  num: 2\n"
        );
        assert_eq!(ManifestSpec::from_yaml(&m.to_yaml().unwrap()).unwrap(), m);
    }
}
