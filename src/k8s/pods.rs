//! The control-plane static pods (kube-apiserver, kube-controller-manager, kube-scheduler)
//! built as typed `v1.Pod`s from their config resources, with Talos 1.7's fixed flags, volumes,
//! probes, resources and security contexts; the user's extra args merge under Talos's policies
//! (the fixed file flags cannot be replaced).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, EnvVar, EnvVarSource, HTTPGetAction, HostPathVolumeSource,
    ObjectFieldSelector, Pod, PodSecurityContext, PodSpec, Probe, ResourceRequirements,
    SeccompProfile, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::args::{Args, DenyListError, MergePolicy};
use super::quantity;
use crate::constants::{
    KUBERNETES_AUDIT_LOG_DIR, KUBE_APISERVER_CONFIG_DIR, KUBE_APISERVER_RUN_USER,
    KUBE_APISERVER_SECRETS_DIR, KUBE_CONTROLLER_MANAGER_RUN_USER,
    KUBE_CONTROLLER_MANAGER_SECRETS_DIR, KUBE_SCHEDULER_CONFIG_DIR, KUBE_SCHEDULER_RUN_USER,
    KUBE_SCHEDULER_SECRETS_DIR,
};
use crate::resources::specs::{
    ApiServerConfigSpec, ControllerManagerConfigSpec, ExtraVolume, Resources, SchedulerConfigSpec,
    APISERVER_ID, CONTROLLER_MANAGER_ID, SCHEDULER_ID,
};

/// Annotation: version of the rendered secrets.
pub const ANNOTATION_SECRETS_VERSION: &str = "talos.dev/secrets-version";
/// Annotation: version of the component's config resource.
pub const ANNOTATION_CONFIG_VERSION: &str = "talos.dev/config-version";
/// Annotation: version of the rendered config files.
pub const ANNOTATION_CONFIG_FILE_VERSION: &str = "talos.dev/config-file-version";
/// Kubernetes's `system-cluster-critical` priority.
const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;
/// GOMEMLIMIT is this share (percent) of the memory limit.
const GO_GC_MEM_LIMIT_PERCENTAGE: i128 = 95;
/// kube-apiserver's cipher suites.
const APISERVER_CIPHER_SUITES: &str = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_RSA_WITH_AES_256_GCM_SHA384,TLS_RSA_WITH_AES_128_GCM_SHA256";

/// Why a static pod cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    /// An extra arg replaces a fixed one.
    #[error(transparent)]
    DeniedArg(#[from] DenyListError),
    /// A resource quantity does not parse.
    #[error("error parsing {what}: {source}")]
    Quantity {
        /// Which one (`CPU request`, `memory limit`, …).
        what: &'static str,
        /// Why.
        #[source]
        source: quantity::QuantityError,
    },
}

/// The versions a static pod is annotated with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Versions {
    /// Version of the rendered secrets.
    pub secrets: String,
    /// Version of the rendered config files (kube-apiserver only).
    pub config_files: String,
    /// Version of the component's config resource.
    pub config: String,
}

fn path(dir: &str, file: &str) -> String {
    format!("{dir}/{file}")
}

fn host_volume(name: &str, host_path: &str) -> Volume {
    Volume {
        name: name.to_string(),
        host_path: Some(HostPathVolumeSource {
            path: host_path.to_string(),
            type_: None,
        }),
        ..Volume::default()
    }
}

fn mount(name: &str, mount_path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_string(),
        mount_path: mount_path.to_string(),
        read_only: Some(read_only).filter(|r| *r),
        ..VolumeMount::default()
    }
}

fn extra_mounts(volumes: &[ExtraVolume]) -> impl Iterator<Item = VolumeMount> + '_ {
    volumes
        .iter()
        .map(|v| mount(&v.name, &v.mount_path, v.read_only))
}

fn extra_volumes(volumes: &[ExtraVolume]) -> impl Iterator<Item = Volume> + '_ {
    volumes.iter().map(|v| host_volume(&v.name, &v.host_path))
}

/// Environment variables sorted by name, with `$` escaped (Kubernetes expands `$(VAR)`).
fn env_vars(environment: &BTreeMap<String, String>) -> Vec<EnvVar> {
    environment
        .iter()
        .map(|(k, v)| EnvVar {
            name: k.clone(),
            value: Some(v.replace('$', "$$")),
            value_from: None,
        })
        .collect()
}

fn quantity_of(
    map: &BTreeMap<String, String>,
    key: &str,
    what: &'static str,
) -> Result<Option<Quantity>, PodError> {
    match map.get(key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => {
            quantity::check(v).map_err(|source| PodError::Quantity { what, source })?;
            Ok(Some(Quantity(v.clone())))
        }
    }
}

/// Requests default to the component's; limits only when configured.
fn resources(
    config: &Resources,
    default_cpu: &str,
    default_memory: &str,
) -> Result<ResourceRequirements, PodError> {
    let mut requests = BTreeMap::new();
    requests.insert(
        "cpu".to_string(),
        quantity_of(&config.requests, "cpu", "CPU request")?
            .unwrap_or_else(|| Quantity(default_cpu.to_string())),
    );
    requests.insert(
        "memory".to_string(),
        quantity_of(&config.requests, "memory", "memory request")?
            .unwrap_or_else(|| Quantity(default_memory.to_string())),
    );
    let mut limits = BTreeMap::new();
    if let Some(q) = quantity_of(&config.limits, "cpu", "CPU limit")? {
        limits.insert("cpu".to_string(), q);
    }
    if let Some(q) = quantity_of(&config.limits, "memory", "memory limit")? {
        limits.insert("memory".to_string(), q);
    }
    Ok(ResourceRequirements {
        requests: Some(requests),
        limits: Some(limits).filter(|l| !l.is_empty()),
        ..ResourceRequirements::default()
    })
}

/// `GOMEMLIMIT` at 95% of the memory limit, when there is one.
fn go_gc_env(resources: &ResourceRequirements) -> Option<EnvVar> {
    let limit = resources.limits.as_ref()?.get("memory")?;
    let bytes = quantity::value(&limit.0).ok().filter(|v| *v > 0)?;
    Some(EnvVar {
        name: "GOMEMLIMIT".to_string(),
        value: Some((bytes * GO_GC_MEM_LIMIT_PERCENTAGE / 100).to_string()),
        value_from: None,
    })
}

fn env_with_gc(environment: &BTreeMap<String, String>, r: &ResourceRequirements) -> Vec<EnvVar> {
    let mut env = env_vars(environment);
    env.extend(go_gc_env(r));
    env
}

fn metadata(id: &str, annotations: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(id.to_string()),
        namespace: Some("kube-system".to_string()),
        annotations: Some(annotations),
        labels: Some(BTreeMap::from([
            ("tier".to_string(), "control-plane".to_string()),
            ("k8s-app".to_string(), id.to_string()),
        ])),
        ..ObjectMeta::default()
    }
}

fn restricted_security_context(add: Option<Vec<String>>) -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            add,
            drop: Some(vec!["ALL".to_string()]),
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_string(),
            localhost_profile: None,
        }),
        ..SecurityContext::default()
    }
}

fn pod(meta: ObjectMeta, container: Container, run_as: u32, volumes: Vec<Volume>) -> Pod {
    Pod {
        metadata: meta,
        spec: Some(PodSpec {
            priority: Some(SYSTEM_CRITICAL_PRIORITY),
            priority_class_name: Some("system-cluster-critical".to_string()),
            containers: vec![container],
            host_network: Some(true),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(i64::from(run_as)),
                run_as_group: Some(i64::from(run_as)),
                ..PodSecurityContext::default()
            }),
            volumes: Some(volumes),
            ..PodSpec::default()
        }),
        status: None,
    }
}

fn healthz_probe(port: i32, startup: bool) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/healthz".to_string()),
            host: Some("localhost".to_string()),
            port: IntOrString::Int(port),
            scheme: Some("HTTPS".to_string()),
            http_headers: None,
        }),
        // The startup probe gives the container 60 s.
        period_seconds: startup.then_some(5),
        failure_threshold: startup.then_some(12),
        timeout_seconds: (!startup).then_some(15),
        ..Probe::default()
    }
}

/// kube-apiserver's flags.
pub fn api_server_args(cfg: &ApiServerConfigSpec) -> Result<Vec<String>, PodError> {
    let secret = |f: &str| path(KUBE_APISERVER_SECRETS_DIR, f);
    let mut plugins = vec!["NodeRestriction"];
    if cfg.pod_security_policy_enabled {
        plugins.push("PodSecurityPolicy");
    }
    let mut args = Args::new([
        (
            "admission-control-config-file",
            path(KUBE_APISERVER_CONFIG_DIR, "admission-control-config.yaml"),
        ),
        ("allow-privileged", "true".into()),
        ("anonymous-auth", "false".into()),
        ("api-audiences", cfg.control_plane_endpoint.clone()),
        ("authorization-mode", "Node,RBAC".into()),
        ("bind-address", "0.0.0.0".into()),
        ("client-ca-file", secret("ca.crt")),
        ("enable-admission-plugins", plugins.join(",")),
        ("requestheader-client-ca-file", secret("aggregator-ca.crt")),
        ("requestheader-allowed-names", "front-proxy-client".into()),
        (
            "requestheader-extra-headers-prefix",
            "X-Remote-Extra-".into(),
        ),
        ("requestheader-group-headers", "X-Remote-Group".into()),
        ("requestheader-username-headers", "X-Remote-User".into()),
        ("proxy-client-cert-file", secret("front-proxy-client.crt")),
        ("proxy-client-key-file", secret("front-proxy-client.key")),
        ("enable-bootstrap-token-auth", "true".into()),
        ("tls-min-version", "VersionTLS12".into()),
        ("tls-cipher-suites", APISERVER_CIPHER_SUITES.into()),
        (
            "encryption-provider-config",
            secret("encryptionconfig.yaml"),
        ),
        (
            "audit-policy-file",
            path(KUBE_APISERVER_CONFIG_DIR, "auditpolicy.yaml"),
        ),
        (
            "audit-log-path",
            path(KUBERNETES_AUDIT_LOG_DIR, "kube-apiserver.log"),
        ),
        ("audit-log-maxage", "30".into()),
        ("audit-log-maxbackup", "10".into()),
        ("audit-log-maxsize", "100".into()),
        ("profiling", "false".into()),
        ("etcd-cafile", secret("etcd-client-ca.crt")),
        ("etcd-certfile", secret("etcd-client.crt")),
        ("etcd-keyfile", secret("etcd-client.key")),
        ("etcd-servers", cfg.etcd_servers.join(",")),
        (
            "kubelet-client-certificate",
            secret("apiserver-kubelet-client.crt"),
        ),
        ("kubelet-client-key", secret("apiserver-kubelet-client.key")),
        ("secure-port", cfg.local_port.to_string()),
        ("service-account-issuer", cfg.control_plane_endpoint.clone()),
        ("service-account-key-file", secret("service-account.pub")),
        (
            "service-account-signing-key-file",
            secret("service-account.key"),
        ),
        ("service-cluster-ip-range", cfg.service_cidrs.join(",")),
        ("tls-cert-file", secret("apiserver.crt")),
        ("tls-private-key-file", secret("apiserver.key")),
        (
            "kubelet-preferred-address-types",
            "InternalIP,ExternalIP,Hostname".into(),
        ),
    ]);
    if !cfg.advertised_address.is_empty() {
        args.set("advertise-address", cfg.advertised_address.clone());
    }
    if !cfg.cloud_provider.is_empty() {
        args.set("cloud-provider", cfg.cloud_provider.clone());
    }
    use MergePolicy::{Additive, Denied};
    args.merge(
        &cfg.extra_args,
        &[
            ("enable-admission-plugins", Additive),
            ("feature-gates", Additive),
            ("authorization-mode", Additive),
            ("tls-cipher-suites", Additive),
            ("etcd-servers", Denied),
            ("client-ca-file", Denied),
            ("requestheader-client-ca-file", Denied),
            ("proxy-client-cert-file", Denied),
            ("proxy-client-key-file", Denied),
            ("encryption-provider-config", Denied),
            ("etcd-cafile", Denied),
            ("etcd-certfile", Denied),
            ("etcd-keyfile", Denied),
            ("kubelet-client-certificate", Denied),
            ("kubelet-client-key", Denied),
            ("service-account-key-file", Denied),
            ("service-account-signing-key-file", Denied),
            ("tls-cert-file", Denied),
            ("tls-private-key-file", Denied),
        ],
    )?;
    let mut command = vec!["/usr/local/bin/kube-apiserver".to_string()];
    command.extend(args.to_vec());
    Ok(command)
}

/// The kube-apiserver static pod.
pub fn api_server(cfg: &ApiServerConfigSpec, versions: &Versions) -> Result<Pod, PodError> {
    let command = api_server_args(cfg)?;
    let resources = resources(&cfg.resources, "200m", "512Mi")?;
    let mut env = vec![EnvVar {
        name: "POD_IP".to_string(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: "status.podIP".to_string(),
            }),
            ..EnvVarSource::default()
        }),
    }];
    env.extend(env_with_gc(&cfg.environment_variables, &resources));
    let mut mounts = vec![
        mount("secrets", KUBE_APISERVER_SECRETS_DIR, true),
        mount("config", KUBE_APISERVER_CONFIG_DIR, true),
        mount("audit", KUBERNETES_AUDIT_LOG_DIR, false),
    ];
    mounts.extend(extra_mounts(&cfg.extra_volumes));
    let container = Container {
        name: APISERVER_ID.to_string(),
        image: Some(cfg.image.clone()),
        command: Some(command),
        env: Some(env),
        volume_mounts: Some(mounts),
        resources: Some(resources),
        // The binary carries cap_net_bind_service, so the capability must stay available.
        security_context: Some(restricted_security_context(Some(vec![
            "NET_BIND_SERVICE".to_string()
        ]))),
        ..Container::default()
    };
    let mut volumes = vec![
        host_volume("secrets", KUBE_APISERVER_SECRETS_DIR),
        host_volume("config", KUBE_APISERVER_CONFIG_DIR),
        host_volume("audit", KUBERNETES_AUDIT_LOG_DIR),
    ];
    volumes.extend(extra_volumes(&cfg.extra_volumes));
    let annotations = BTreeMap::from([
        (
            ANNOTATION_SECRETS_VERSION.to_string(),
            versions.secrets.clone(),
        ),
        (
            ANNOTATION_CONFIG_FILE_VERSION.to_string(),
            versions.config_files.clone(),
        ),
        (
            ANNOTATION_CONFIG_VERSION.to_string(),
            versions.config.clone(),
        ),
    ]);
    Ok(pod(
        metadata(APISERVER_ID, annotations),
        container,
        KUBE_APISERVER_RUN_USER,
        volumes,
    ))
}

/// kube-controller-manager's flags.
pub fn controller_manager_args(cfg: &ControllerManagerConfigSpec) -> Result<Vec<String>, PodError> {
    let secret = |f: &str| path(KUBE_CONTROLLER_MANAGER_SECRETS_DIR, f);
    let mut args = Args::new([
        ("allocate-node-cidrs", "true".to_string()),
        ("bind-address", "127.0.0.1".into()),
        ("cluster-cidr", cfg.pod_cidrs.join(",")),
        ("service-cluster-ip-range", cfg.service_cidrs.join(",")),
        ("cluster-signing-cert-file", secret("ca.crt")),
        ("cluster-signing-key-file", secret("ca.key")),
        ("controllers", "*,tokencleaner".into()),
        ("configure-cloud-routes", "false".into()),
        ("kubeconfig", secret("kubeconfig")),
        ("authentication-kubeconfig", secret("kubeconfig")),
        ("authorization-kubeconfig", secret("kubeconfig")),
        ("leader-elect", "true".into()),
        ("root-ca-file", secret("ca.crt")),
        (
            "service-account-private-key-file",
            secret("service-account.key"),
        ),
        ("profiling", "false".into()),
        ("tls-min-version", "VersionTLS13".into()),
    ]);
    if !cfg.cloud_provider.is_empty() {
        args.set("cloud-provider", cfg.cloud_provider.clone());
    }
    use MergePolicy::{Additive, Denied};
    args.merge(
        &cfg.extra_args,
        &[
            ("service-cluster-ip-range", Additive),
            ("controllers", Additive),
            ("cluster-signing-cert-file", Denied),
            ("cluster-signing-key-file", Denied),
            ("authentication-kubeconfig", Denied),
            ("authorization-kubeconfig", Denied),
            ("root-ca-file", Denied),
            ("service-account-private-key-file", Denied),
        ],
    )?;
    let mut command = vec![
        "/usr/local/bin/kube-controller-manager".to_string(),
        "--use-service-account-credentials".to_string(),
    ];
    command.extend(args.to_vec());
    Ok(command)
}

/// The kube-controller-manager static pod (`None` when disabled on this node).
pub fn controller_manager(
    cfg: &ControllerManagerConfigSpec,
    versions: &Versions,
) -> Result<Option<Pod>, PodError> {
    if !cfg.enabled {
        return Ok(None);
    }
    let command = controller_manager_args(cfg)?;
    let resources = resources(&cfg.resources, "50m", "256Mi")?;
    let mut mounts = vec![mount("secrets", KUBE_CONTROLLER_MANAGER_SECRETS_DIR, true)];
    mounts.extend(extra_mounts(&cfg.extra_volumes));
    let container = Container {
        name: CONTROLLER_MANAGER_ID.to_string(),
        image: Some(cfg.image.clone()),
        command: Some(command),
        env: Some(env_with_gc(&cfg.environment_variables, &resources)).filter(|e| !e.is_empty()),
        volume_mounts: Some(mounts),
        startup_probe: Some(healthz_probe(10257, true)),
        liveness_probe: Some(healthz_probe(10257, false)),
        resources: Some(resources),
        security_context: Some(restricted_security_context(None)),
        ..Container::default()
    };
    let mut volumes = vec![host_volume("secrets", KUBE_CONTROLLER_MANAGER_SECRETS_DIR)];
    volumes.extend(extra_volumes(&cfg.extra_volumes));
    let annotations = BTreeMap::from([
        (
            ANNOTATION_SECRETS_VERSION.to_string(),
            versions.secrets.clone(),
        ),
        (
            ANNOTATION_CONFIG_VERSION.to_string(),
            versions.config.clone(),
        ),
    ]);
    Ok(Some(pod(
        metadata(CONTROLLER_MANAGER_ID, annotations),
        container,
        KUBE_CONTROLLER_MANAGER_RUN_USER,
        volumes,
    )))
}

/// kube-scheduler's flags.
pub fn scheduler_args(cfg: &SchedulerConfigSpec) -> Result<Vec<String>, PodError> {
    let mut args = Args::new([
        (
            "config",
            path(KUBE_SCHEDULER_CONFIG_DIR, "scheduler-config.yaml"),
        ),
        ("authentication-tolerate-lookup-failure", "false".into()),
        (
            "authentication-kubeconfig",
            path(KUBE_SCHEDULER_SECRETS_DIR, "kubeconfig"),
        ),
        (
            "authorization-kubeconfig",
            path(KUBE_SCHEDULER_SECRETS_DIR, "kubeconfig"),
        ),
        ("bind-address", "127.0.0.1".into()),
        ("leader-elect", "true".into()),
        ("profiling", "false".into()),
        ("tls-min-version", "VersionTLS13".into()),
    ]);
    use MergePolicy::Denied;
    args.merge(
        &cfg.extra_args,
        &[
            ("kubeconfig", Denied),
            ("authentication-kubeconfig", Denied),
            ("authorization-kubeconfig", Denied),
            ("config", Denied),
        ],
    )?;
    let mut command = vec!["/usr/local/bin/kube-scheduler".to_string()];
    command.extend(args.to_vec());
    Ok(command)
}

/// The kube-scheduler static pod (`None` when disabled on this node).
pub fn scheduler(cfg: &SchedulerConfigSpec, versions: &Versions) -> Result<Option<Pod>, PodError> {
    if !cfg.enabled {
        return Ok(None);
    }
    let command = scheduler_args(cfg)?;
    let resources = resources(&cfg.resources, "10m", "64Mi")?;
    let mut mounts = vec![
        mount("secrets", KUBE_SCHEDULER_SECRETS_DIR, true),
        mount("config", KUBE_SCHEDULER_CONFIG_DIR, true),
    ];
    mounts.extend(extra_mounts(&cfg.extra_volumes));
    let container = Container {
        name: SCHEDULER_ID.to_string(),
        image: Some(cfg.image.clone()),
        command: Some(command),
        env: Some(env_with_gc(&cfg.environment_variables, &resources)).filter(|e| !e.is_empty()),
        volume_mounts: Some(mounts),
        startup_probe: Some(healthz_probe(10259, true)),
        liveness_probe: Some(healthz_probe(10259, false)),
        resources: Some(resources),
        security_context: Some(restricted_security_context(None)),
        ..Container::default()
    };
    let mut volumes = vec![
        host_volume("secrets", KUBE_SCHEDULER_SECRETS_DIR),
        host_volume("config", KUBE_SCHEDULER_CONFIG_DIR),
    ];
    volumes.extend(extra_volumes(&cfg.extra_volumes));
    let annotations = BTreeMap::from([
        (
            ANNOTATION_SECRETS_VERSION.to_string(),
            versions.secrets.clone(),
        ),
        (
            ANNOTATION_CONFIG_VERSION.to_string(),
            versions.config.clone(),
        ),
    ]);
    Ok(Some(pod(
        metadata(SCHEDULER_ID, annotations),
        container,
        KUBE_SCHEDULER_RUN_USER,
        volumes,
    )))
}

/// A pod as a JSON object, as served to the kubelet and written to files.
pub fn to_json(pod: &Pod) -> serde_json::Value {
    serde_json::to_value(pod).unwrap_or(serde_json::Value::Null)
}

/// The pod as Talos's `StaticPods` resource holds it: Go's JSON of a `v1.Pod` also carries
/// `metadata.creationTimestamp: null` and `status: {}`.
pub fn to_resource_json(pod: &Pod) -> serde_json::Value {
    let mut value = to_json(pod);
    if let Some(obj) = value.as_object_mut() {
        if let Some(meta) = obj.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            meta.insert("creationTimestamp".into(), serde_json::Value::Null);
        }
        obj.insert("status".into(), serde_json::json!({}));
    }
    value
}

/// The pod the kubelet is served from a `StaticPods` resource's JSON: the resource form
/// without Go's `creationTimestamp: null` and `status: {}` (the inverse of
/// [`to_resource_json`]; no deserialization, so the release binary carries no `Pod` decoder).
pub fn served(resource_json: &serde_json::Value) -> serde_json::Value {
    let mut value = resource_json.clone();
    if let Some(obj) = value.as_object_mut() {
        obj.remove("status");
        if let Some(meta) = obj.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            if meta
                .get("creationTimestamp")
                .is_some_and(serde_json::Value::is_null)
            {
                meta.remove("creationTimestamp");
            }
        }
    }
    value
}
