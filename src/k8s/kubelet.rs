//! The kubelet's configuration file (`kubelet.config.k8s.io/v1beta1` `KubeletConfiguration`)
//! and flags, as Talos builds them from the `KubeletConfigs` resource: Talos's fixed settings,
//! then `machine.kubelet.extraConfig` for the fields Talos lets the user set, then the
//! defaults for what is still unset.
//!
//! The typed struct carries the fields Talos manages; the other v1beta1 fields the user gives
//! in `extraConfig` are checked against the v1beta1 field list and kept as they are. It
//! serializes the way Go's encoder writes the v1beta1 struct: zero durations as `0s`, the
//! always-present structs (`authentication`, `authorization`, `logging`, `memorySwap`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::args::{Args, DenyListError, MergePolicy};
use crate::constants::{
    CRI_CONTAINERD_ADDRESS, KUBELET_BOOTSTRAP_KUBECONFIG, KUBELET_CONFIG_PATH,
    KUBELET_CREDENTIAL_PROVIDER_BIN_DIR, KUBELET_CREDENTIAL_PROVIDER_CONFIG, KUBELET_KUBECONFIG,
    KUBELET_PKI_DIR, KUBELET_PORT, KUBERNETES_CA_CERT, KUBERNETES_MANIFESTS_DIR,
    POD_RESOLV_CONF_PATH,
};
use crate::resources::specs::KubeletConfigSpec;

/// The fields `extraConfig` may not set.
pub const PROTECTED_FIELDS: &[&str] = &[
    "apiVersion",
    "authentication",
    "authorization",
    "cgroupRoot",
    "kind",
    "kubeletCgroups",
    "port",
    "protectKernelDefaults",
    "resolvConf",
    "rotateCertificates",
    "systemCgroups",
    "staticPodPath",
    "seccompDefault",
];

/// Every top-level field of `KubeletConfiguration` v1beta1 (Kubernetes 1.30).
pub const V1BETA1_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "enableServer",
    "staticPodPath",
    "podLogsDir",
    "syncFrequency",
    "fileCheckFrequency",
    "httpCheckFrequency",
    "staticPodURL",
    "staticPodURLHeader",
    "address",
    "port",
    "readOnlyPort",
    "tlsCertFile",
    "tlsPrivateKeyFile",
    "tlsCipherSuites",
    "tlsMinVersion",
    "rotateCertificates",
    "serverTLSBootstrap",
    "authentication",
    "authorization",
    "registryPullQPS",
    "registryBurst",
    "eventRecordQPS",
    "eventBurst",
    "enableDebuggingHandlers",
    "enableContentionProfiling",
    "healthzPort",
    "healthzBindAddress",
    "oomScoreAdj",
    "clusterDomain",
    "clusterDNS",
    "streamingConnectionIdleTimeout",
    "nodeStatusUpdateFrequency",
    "nodeStatusReportFrequency",
    "nodeLeaseDurationSeconds",
    "imageMinimumGCAge",
    "imageMaximumGCAge",
    "imageGCHighThresholdPercent",
    "imageGCLowThresholdPercent",
    "volumeStatsAggPeriod",
    "kubeletCgroups",
    "systemCgroups",
    "cgroupRoot",
    "cgroupsPerQOS",
    "cgroupDriver",
    "cpuManagerPolicy",
    "cpuManagerPolicyOptions",
    "cpuManagerReconcilePeriod",
    "memoryManagerPolicy",
    "topologyManagerPolicy",
    "topologyManagerScope",
    "topologyManagerPolicyOptions",
    "qosReserved",
    "runtimeRequestTimeout",
    "hairpinMode",
    "maxPods",
    "podCIDR",
    "podPidsLimit",
    "resolvConf",
    "runOnce",
    "cpuCFSQuota",
    "cpuCFSQuotaPeriod",
    "nodeStatusMaxImages",
    "maxOpenFiles",
    "contentType",
    "kubeAPIQPS",
    "kubeAPIBurst",
    "serializeImagePulls",
    "maxParallelImagePulls",
    "evictionHard",
    "evictionSoft",
    "evictionSoftGracePeriod",
    "evictionPressureTransitionPeriod",
    "evictionMaxPodGracePeriod",
    "evictionMinimumReclaim",
    "podsPerCore",
    "enableControllerAttachDetach",
    "protectKernelDefaults",
    "makeIPTablesUtilChains",
    "iptablesMasqueradeBit",
    "iptablesDropBit",
    "featureGates",
    "failSwapOn",
    "memorySwap",
    "containerLogMaxSize",
    "containerLogMaxFiles",
    "containerLogMaxWorkers",
    "containerLogMonitorInterval",
    "configMapAndSecretChangeDetectionStrategy",
    "systemReserved",
    "kubeReserved",
    "reservedSystemCPUs",
    "showHiddenMetricsForVersion",
    "systemReservedCgroup",
    "kubeReservedCgroup",
    "enforceNodeAllocatable",
    "allowedUnsafeSysctls",
    "volumePluginDir",
    "providerID",
    "kernelMemcgNotification",
    "logging",
    "enableSystemLogHandler",
    "enableSystemLogQuery",
    "shutdownGracePeriod",
    "shutdownGracePeriodCriticalPods",
    "shutdownGracePeriodByPodPriority",
    "reservedMemory",
    "enableProfilingHandler",
    "enableDebugFlagsHandler",
    "seccompDefault",
    "memoryThrottlingFactor",
    "registerWithTaints",
    "registerNode",
    "tracing",
    "localStorageCapacityIsolation",
    "containerRuntimeEndpoint",
    "imageServiceEndpoint",
];

/// The v1beta1 duration fields Go writes even when zero (`0s`).
const ZERO_DURATIONS: &[&str] = &[
    "syncFrequency",
    "fileCheckFrequency",
    "httpCheckFrequency",
    "streamingConnectionIdleTimeout",
    "nodeStatusUpdateFrequency",
    "nodeStatusReportFrequency",
    "imageMinimumGCAge",
    "imageMaximumGCAge",
    "volumeStatsAggPeriod",
    "cpuManagerReconcilePeriod",
    "runtimeRequestTimeout",
    "evictionPressureTransitionPeriod",
    "shutdownGracePeriod",
    "shutdownGracePeriodCriticalPods",
];

/// Why the kubelet's configuration cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum KubeletConfigError {
    /// `extraConfig` sets fields Talos manages (Talos's multierror text).
    #[error("{}", protected_message(.0))]
    Protected(Vec<String>),
    /// `extraConfig` has fields v1beta1 does not know, or of the wrong type.
    #[error("error unmarshalling extra kubelet configuration: {0}")]
    Unmarshal(String),
    /// An extra arg replaces a fixed one.
    #[error("error merging arguments: {0}")]
    Args(#[from] DenyListError),
}

fn protected_message(fields: &[String]) -> String {
    let mut out = format!(
        "{} error{} occurred:",
        fields.len(),
        if fields.len() == 1 { "" } else { "s" }
    );
    for f in fields {
        out.push_str(&format!("\n\t* field {f:?} can't be overridden"));
    }
    out.push_str("\n\n");
    out
}

/// Whether the kubelet version reads `containerRuntimeEndpoint` from its config file (1.27+);
/// older ones take `--container-runtime-endpoint`.
pub fn supports_runtime_endpoint_in_config(image: &str) -> bool {
    let tag = image.rsplit_once(':').map_or("", |(_, t)| t);
    let version = tag.trim_start_matches('v');
    let mut parts = version.split(['.', '-', '+']);
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    // An image without a parsable version is taken to be current.
    major == 0 || (major, minor) >= (1, 27)
}

/// `authentication` of the config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubeletAuthentication {
    /// Client certificate authentication.
    pub x509: Map<String, Value>,
    /// Bearer token authentication through the API server.
    pub webhook: Map<String, Value>,
    /// Anonymous requests.
    pub anonymous: Map<String, Value>,
}

/// `authorization` of the config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubeletAuthorization {
    /// `Webhook` or `AlwaysAllow`.
    pub mode: String,
    /// Webhook cache settings.
    pub webhook: Map<String, Value>,
}

/// `KubeletConfiguration` (kubelet.config.k8s.io/v1beta1): the fields Talos manages, then the
/// other v1beta1 fields from `extraConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubeletConfiguration {
    /// `kubelet.config.k8s.io/v1beta1`.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// `KubeletConfiguration`.
    pub kind: String,
    /// `/etc/kubernetes/manifests`, or none with `disableManifestsDirectory`.
    #[serde(
        rename = "staticPodPath",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub static_pod_path: String,
    /// The static pod server's URL.
    #[serde(
        rename = "staticPodURL",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub static_pod_url: String,
    /// Listen address.
    pub address: String,
    /// Secure port.
    pub port: u16,
    /// Minimum TLS version.
    #[serde(rename = "tlsMinVersion")]
    pub tls_min_version: String,
    /// Client certificate rotation.
    #[serde(rename = "rotateCertificates")]
    pub rotate_certificates: bool,
    /// Authentication.
    pub authentication: KubeletAuthentication,
    /// Authorization.
    pub authorization: KubeletAuthorization,
    /// The kubelet's OOM score adjustment.
    #[serde(rename = "oomScoreAdj")]
    pub oom_score_adj: i64,
    /// Cluster domain.
    #[serde(
        rename = "clusterDomain",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub cluster_domain: String,
    /// Cluster DNS addresses.
    #[serde(rename = "clusterDNS", default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_dns: Vec<String>,
    /// The kubelet's cgroup.
    #[serde(rename = "kubeletCgroups")]
    pub kubelet_cgroups: String,
    /// System daemons' cgroup.
    #[serde(rename = "systemCgroups")]
    pub system_cgroups: String,
    /// The pods' root cgroup.
    #[serde(rename = "cgroupRoot")]
    pub cgroup_root: String,
    /// Pods' resolv.conf.
    #[serde(rename = "resolvConf")]
    pub resolv_conf: String,
    /// Pull images in parallel.
    #[serde(rename = "serializeImagePulls")]
    pub serialize_image_pulls: bool,
    /// Refuse kernel defaults other than the kubelet's.
    #[serde(
        rename = "protectKernelDefaults",
        default,
        skip_serializing_if = "is_false"
    )]
    pub protect_kernel_defaults: bool,
    /// Feature gates.
    #[serde(
        rename = "featureGates",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub feature_gates: BTreeMap<String, bool>,
    /// Start with swap on.
    #[serde(rename = "failSwapOn")]
    pub fail_swap_on: bool,
    /// Resources reserved for the system.
    #[serde(rename = "systemReserved")]
    pub system_reserved: BTreeMap<String, String>,
    /// Logging.
    pub logging: Value,
    /// `RuntimeDefault` seccomp for every pod.
    #[serde(
        rename = "seccompDefault",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub seccomp_default: Option<bool>,
    /// The CRI socket (1.27+).
    #[serde(rename = "containerRuntimeEndpoint")]
    pub container_runtime_endpoint: String,
    /// Every other field (zero durations, `memorySwap`, and the user's `extraConfig`).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Checks `extraConfig` the way Talos does: protected fields first, then unknown fields.
fn check_extra(extra: &Map<String, Value>) -> Result<(), KubeletConfigError> {
    let protected: Vec<String> = PROTECTED_FIELDS
        .iter()
        .filter(|f| extra.contains_key(**f))
        .map(|f| (*f).to_string())
        .collect();
    if !protected.is_empty() {
        let mut sorted = protected;
        sorted.sort();
        return Err(KubeletConfigError::Protected(sorted));
    }
    let mut unknown: Vec<&String> = extra
        .keys()
        .filter(|k| !V1BETA1_FIELDS.contains(&k.as_str()))
        .collect();
    unknown.sort();
    if !unknown.is_empty() {
        let list: Vec<String> = unknown
            .iter()
            .map(|k| format!("unknown field {k:?}"))
            .collect();
        return Err(KubeletConfigError::Unmarshal(format!(
            "strict decoding error: {}",
            list.join(", ")
        )));
    }
    Ok(())
}

fn take_str(extra: &mut Map<String, Value>, key: &str, default: &str) -> String {
    match extra.remove(key) {
        Some(Value::String(s)) if !s.is_empty() => s,
        _ => default.to_string(),
    }
}

/// Builds the kubelet configuration (Talos's `NewKubeletConfiguration`); `container`: the
/// node runs on the container platform (kernel defaults are the host's).
pub fn configuration(
    cfg: &KubeletConfigSpec,
    container: bool,
) -> Result<KubeletConfiguration, KubeletConfigError> {
    let mut extra: Map<String, Value> = serde_json::to_value(&cfg.extra_config)
        .ok()
        .and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default();
    check_extra(&extra)?;
    let mut other = Map::new();
    for d in ZERO_DURATIONS {
        other.insert((*d).to_string(), json!("0s"));
    }
    other.insert("memorySwap".into(), json!({}));
    other.insert("shutdownGracePeriod".into(), json!("30s"));
    other.insert("shutdownGracePeriodCriticalPods".into(), json!("10s"));
    other.insert("streamingConnectionIdleTimeout".into(), json!("5m0s"));
    let mut feature_gates: BTreeMap<String, bool> = extra
        .remove("featureGates")
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    if cfg.enable_fs_quota_monitoring {
        feature_gates
            .entry("LocalStorageCapacityIsolationFSQuotaMonitoring".into())
            .or_insert(true);
    }
    let system_reserved = match extra.remove("systemReserved") {
        Some(v @ Value::Object(_)) if v.as_object().is_some_and(|m| !m.is_empty()) => {
            serde_json::from_value(v).unwrap_or_default()
        }
        _ => BTreeMap::from([
            ("cpu".to_string(), "50m".to_string()),
            ("ephemeral-storage".to_string(), "256Mi".to_string()),
            ("memory".to_string(), "192Mi".to_string()),
            ("pid".to_string(), "100".to_string()),
        ]),
    };
    let mut logging = json!({
        "flushFrequency": 0,
        "format": "json",
        "options": {"json": {"infoBufferSize": "0"}, "text": {"infoBufferSize": "0"}},
        "verbosity": 0,
    });
    if let Some(Value::Object(user)) = extra.remove("logging") {
        if let Some(l) = logging.as_object_mut() {
            for (k, v) in user {
                l.insert(k, v);
            }
        }
    }
    let oom_score_adj = extra
        .remove("oomScoreAdj")
        .and_then(|v| v.as_i64())
        .unwrap_or(-450);
    let serialize_image_pulls = extra
        .remove("serializeImagePulls")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let fail_swap_on = extra
        .remove("failSwapOn")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let cluster_dns: Vec<String> = extra
        .remove("clusterDNS")
        .and_then(|v| serde_json::from_value(v).ok())
        .filter(|v: &Vec<String>| !v.is_empty())
        .unwrap_or_else(|| cfg.cluster_dns.clone());
    let address = take_str(&mut extra, "address", "0.0.0.0");
    let cluster_domain = take_str(&mut extra, "clusterDomain", &cfg.cluster_domain);
    let tls_min_version = take_str(&mut extra, "tlsMinVersion", "VersionTLS13");
    let runtime_endpoint = if supports_runtime_endpoint_in_config(&cfg.image) {
        format!("unix://{CRI_CONTAINERD_ADDRESS}")
    } else {
        String::new()
    };
    let container_runtime_endpoint =
        take_str(&mut extra, "containerRuntimeEndpoint", &runtime_endpoint);
    for (k, v) in extra {
        other.insert(k, v);
    }
    let skip = cfg.skip_node_registration;
    Ok(KubeletConfiguration {
        api_version: "kubelet.config.k8s.io/v1beta1".into(),
        kind: "KubeletConfiguration".into(),
        static_pod_path: if cfg.disable_manifests_directory {
            String::new()
        } else {
            KUBERNETES_MANIFESTS_DIR.into()
        },
        static_pod_url: cfg.static_pod_list_url.clone(),
        address,
        port: KUBELET_PORT,
        tls_min_version,
        rotate_certificates: true,
        authentication: KubeletAuthentication {
            x509: json!({"clientCAFile": KUBERNETES_CA_CERT})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            webhook: json!({"cacheTTL": "0s", "enabled": !skip})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            anonymous: json!({"enabled": false})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        },
        authorization: KubeletAuthorization {
            mode: if skip { "AlwaysAllow" } else { "Webhook" }.into(),
            webhook: json!({"cacheAuthorizedTTL": "0s", "cacheUnauthorizedTTL": "0s"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        },
        oom_score_adj,
        cluster_domain,
        cluster_dns,
        kubelet_cgroups: crate::sys::cgroup::KUBELET.into(),
        system_cgroups: "/system".into(),
        cgroup_root: "/".into(),
        resolv_conf: POD_RESOLV_CONF_PATH.into(),
        serialize_image_pulls,
        protect_kernel_defaults: !container,
        feature_gates,
        fail_swap_on,
        system_reserved,
        logging,
        seccomp_default: cfg.default_runtime_seccomp_enabled.then_some(true),
        container_runtime_endpoint,
        other,
    })
}

impl KubeletConfiguration {
    /// The configuration as one JSON object with sorted keys (the `KubeletSpecs` `config`).
    pub fn to_value(&self) -> Value {
        let value = serde_json::to_value(self).unwrap_or(Value::Null);
        sort_json(value)
    }

    /// The file the kubelet reads (`/etc/kubernetes/kubelet.yaml`), as Kubernetes writes YAML.
    pub fn to_yaml(&self) -> String {
        let value = serde_yaml::to_value(self.to_value()).unwrap_or(serde_yaml::Value::Null);
        crate::yaml::emit_kubernetes(&crate::yaml::sort_maps(&value))
    }
}

fn sort_json(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_json(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_json).collect()),
        other => other,
    }
}

/// The kubelet's flags (Talos's `KubeletSpecController`): `node_ips` empty leaves `--node-ip`
/// out; `nodename` is the managed node name.
pub fn args(
    cfg: &KubeletConfigSpec,
    nodename: &str,
    node_ips: &[std::net::IpAddr],
) -> Result<Vec<String>, KubeletConfigError> {
    let mut args = Args::new([
        ("config", KUBELET_CONFIG_PATH.to_string()),
        ("cert-dir", KUBELET_PKI_DIR.to_string()),
        ("hostname-override", nodename.to_string()),
    ]);
    if !cfg.skip_node_registration {
        args.set("bootstrap-kubeconfig", KUBELET_BOOTSTRAP_KUBECONFIG);
        args.set("kubeconfig", KUBELET_KUBECONFIG);
    }
    if cfg.cloud_provider_external {
        args.set("cloud-provider", "external");
    }
    if !supports_runtime_endpoint_in_config(&cfg.image) {
        args.set("container-runtime-endpoint", CRI_CONTAINERD_ADDRESS);
    }
    if !cfg.extra_args.contains_key("node-ip") && !node_ips.is_empty() {
        let ips: Vec<String> = node_ips.iter().map(ToString::to_string).collect();
        args.set("node-ip", ips.join(","));
    }
    use MergePolicy::Denied;
    args.merge(
        &cfg.extra_args,
        &[
            ("bootstrap-kubeconfig", Denied),
            ("kubeconfig", Denied),
            ("container-runtime", Denied),
            ("container-runtime-endpoint", Denied),
            ("config", Denied),
            ("cert-dir", Denied),
        ],
    )?;
    if !is_empty_value(&cfg.credential_provider_config) {
        args.set(
            "image-credential-provider-bin-dir",
            KUBELET_CREDENTIAL_PROVIDER_BIN_DIR,
        );
        args.set(
            "image-credential-provider-config",
            KUBELET_CREDENTIAL_PROVIDER_CONFIG,
        );
    }
    Ok(args.to_vec())
}

fn is_empty_value(v: &serde_yaml::Value) -> bool {
    match v {
        serde_yaml::Value::Null => true,
        serde_yaml::Value::Mapping(m) => m.is_empty(),
        _ => false,
    }
}
