//! The control-plane config resources derived from the machine config (Talos's
//! `k8s.ControlPlane*Controller`s): API server, controller manager, scheduler, admission
//! control, audit policy, bootstrap and extra manifests. Control planes only.

use std::collections::BTreeMap;

use talos::config::kubernetes::{
    self as kcfg, volume_name, KubernetesView, FLANNEL_CNI, FLANNEL_CNI_IMAGE, FLANNEL_IMAGE,
};
use talos::config::{ResourcesConfig, StringMap, VolumeMountConfig};
use talos::k8s::args::{Args, MergePolicy};
use talos::resources::controller::{Context, ControllerError};
use talos::resources::specs::{
    AdmissionControlConfigSpec, AdmissionPluginSpec, ApiServerConfigSpec, AuditPolicyConfigSpec,
    BootstrapManifestsConfigSpec, ControllerManagerConfigSpec, ExtraManifest,
    ExtraManifestsConfigSpec, ExtraVolume, Resources, SchedulerConfigSpec, ADMISSION_CONTROL_ID,
    APISERVER_ID, AUDIT_POLICY_ID, CONTROLLER_MANAGER_ID, EXTRA_MANIFESTS_ID, MANIFESTS_ID,
    SCHEDULER_ID,
};

use super::transform::Transform;

fn map(m: &StringMap) -> BTreeMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn volumes(v: &[VolumeMountConfig]) -> Vec<ExtraVolume> {
    v.iter()
        .map(|v| ExtraVolume {
            name: volume_name(v),
            host_path: v.host_path.clone(),
            mount_path: v.mount_path.clone(),
            read_only: v.read_only,
        })
        .collect()
}

fn resources(r: Option<&ResourcesConfig>) -> Resources {
    let q = |limits, key| kcfg::resource_quantity(r, limits, key);
    let mut limits = BTreeMap::new();
    for key in ["cpu", "memory"] {
        let v = q(true, key);
        if !v.is_empty() {
            limits.insert(key.to_string(), v);
        }
    }
    Resources {
        requests: BTreeMap::from([
            ("cpu".to_string(), q(false, "cpu")),
            ("memory".to_string(), q(false, "memory")),
        ]),
        limits,
    }
}

fn cloud_provider(v: &KubernetesView<'_>) -> String {
    if v.external_cloud_provider() {
        "external".into()
    } else {
        String::new()
    }
}

fn api_server(
    v: &KubernetesView<'_>,
    _: &Context,
) -> Result<Option<ApiServerConfigSpec>, ControllerError> {
    if !v.is_control_plane() {
        return Ok(None);
    }
    let a = v.cluster.api_server.clone().unwrap_or_default();
    let skip = v.kubelet().skip_node_registration.unwrap_or(false);
    Ok(Some(ApiServerConfigSpec {
        image: v.api_server_image(),
        cloud_provider: cloud_provider(v),
        control_plane_endpoint: v.endpoint().to_string(),
        etcd_servers: vec![format!(
            "https://localhost:{}",
            talos::constants::ETCD_CLIENT_PORT
        )],
        local_port: v.local_api_server_port(),
        service_cidrs: v.service_cidrs(),
        extra_args: map(&a.extra_args),
        extra_volumes: volumes(&a.extra_volumes),
        environment_variables: map(&a.env),
        pod_security_policy_enabled: v.pod_security_policy_enabled(),
        advertised_address: if skip {
            String::new()
        } else {
            "$(POD_IP)".into()
        },
        resources: resources(a.resources.as_ref()),
    }))
}

fn controller_manager(
    v: &KubernetesView<'_>,
    _: &Context,
) -> Result<Option<ControllerManagerConfigSpec>, ControllerError> {
    if !v.is_control_plane() {
        return Ok(None);
    }
    let c = v.cluster.controller_manager.clone().unwrap_or_default();
    Ok(Some(ControllerManagerConfigSpec {
        enabled: v.controller_manager_enabled(),
        image: v.controller_manager_image(),
        cloud_provider: cloud_provider(v),
        pod_cidrs: v.pod_cidrs(),
        service_cidrs: v.service_cidrs(),
        extra_args: map(&c.extra_args),
        extra_volumes: volumes(&c.extra_volumes),
        environment_variables: map(&c.env),
        resources: resources(c.resources.as_ref()),
    }))
}

fn scheduler(
    v: &KubernetesView<'_>,
    _: &Context,
) -> Result<Option<SchedulerConfigSpec>, ControllerError> {
    if !v.is_control_plane() {
        return Ok(None);
    }
    let s = v.cluster.scheduler.clone().unwrap_or_default();
    Ok(Some(SchedulerConfigSpec {
        enabled: v.scheduler_enabled(),
        image: v.scheduler_image(),
        extra_args: map(&s.extra_args),
        extra_volumes: volumes(&s.extra_volumes),
        environment_variables: map(&s.env),
        resources: resources(s.resources.as_ref()),
        config: talos::yaml::sort_maps(&s.config),
    }))
}

fn admission(
    v: &KubernetesView<'_>,
    _: &Context,
) -> Result<Option<AdmissionControlConfigSpec>, ControllerError> {
    if !v.is_control_plane() {
        return Ok(None);
    }
    let plugins = v
        .cluster
        .api_server
        .as_ref()
        .map(|a| a.admission_control.clone())
        .unwrap_or_default();
    Ok(Some(AdmissionControlConfigSpec {
        config: plugins
            .into_iter()
            .map(|p| AdmissionPluginSpec {
                name: p.name,
                configuration: talos::yaml::sort_maps(&p.configuration),
            })
            .collect(),
    }))
}

fn audit(
    v: &KubernetesView<'_>,
    _: &Context,
) -> Result<Option<AuditPolicyConfigSpec>, ControllerError> {
    if !v.is_control_plane() {
        return Ok(None);
    }
    Ok(Some(AuditPolicyConfigSpec {
        config: talos::yaml::sort_maps(&v.audit_policy()),
    }))
}

/// kube-proxy's flags; `kubeconfig` cannot be overridden.
fn proxy_args(v: &KubernetesView<'_>) -> Result<Vec<String>, ControllerError> {
    let mut args = Args::new([
        ("cluster-cidr", v.pod_cidrs().join(",")),
        ("hostname-override", "$(NODE_NAME)".to_string()),
        ("kubeconfig", "/etc/kubernetes/kubeconfig".to_string()),
        ("proxy-mode", v.proxy_mode()),
        ("conntrack-max-per-core", "0".to_string()),
    ]);
    let extra = v
        .cluster
        .proxy
        .as_ref()
        .map(|p| p.extra_args.clone())
        .unwrap_or_default();
    args.merge(&extra, &[("kubeconfig", MergePolicy::Denied)])
        .map_err(|e| ControllerError::Other(e.to_string()))?;
    Ok(args.to_vec())
}

fn bootstrap_manifests(
    v: &KubernetesView<'_>,
    _: &Context,
) -> Result<Option<BootstrapManifestsConfigSpec>, ControllerError> {
    if !v.is_control_plane() {
        return Ok(None);
    }
    let dns = v.dns_service_ips();
    let first = |v4: bool| {
        dns.iter()
            .find(|ip| ip.is_ipv4() == v4)
            .map(ToString::to_string)
            .unwrap_or_default()
    };
    let (server, host, port) = match v.kube_prism_port() {
        Some(p) => (
            format!("https://127.0.0.1:{p}"),
            "127.0.0.1".to_string(),
            p.to_string(),
        ),
        None => (v.endpoint().to_string(), String::new(), String::new()),
    };
    Ok(Some(BootstrapManifestsConfigSpec {
        server,
        cluster_domain: v.dns_domain(),
        pod_cidrs: v.pod_cidrs(),
        proxy_enabled: v.proxy_enabled(),
        proxy_image: v.proxy_image(),
        proxy_args: proxy_args(v)?,
        core_dns_enabled: v.core_dns_enabled(),
        core_dns_image: v.core_dns_image(),
        dns_service_ip: first(true),
        dns_service_ipv6: first(false),
        flannel_enabled: v.cni_name() == FLANNEL_CNI,
        flannel_image: FLANNEL_IMAGE.into(),
        flannel_cni_image: FLANNEL_CNI_IMAGE.into(),
        flannel_extra_args: v.flannel_extra_args(),
        flannel_kube_service_host: host,
        flannel_kube_service_port: port,
        pod_security_policy_enabled: v.pod_security_policy_enabled(),
        talos_api_service_enabled: v.talos_api_access(),
        service_host_dns_address: v
            .host_dns_service_ip()
            .map(|ip| ip.to_string())
            .unwrap_or_default(),
    }))
}

fn extra_manifests(
    v: &KubernetesView<'_>,
    _: &Context,
) -> Result<Option<ExtraManifestsConfigSpec>, ControllerError> {
    if !v.is_control_plane() {
        return Ok(None);
    }
    let from_url =
        |url: &String, priority: &str, headers: BTreeMap<String, String>| ExtraManifest {
            name: url.clone(),
            url: url.clone(),
            priority: priority.to_string(),
            extra_headers: headers,
            inline_manifest: String::new(),
        };
    let mut out = Vec::new();
    out.extend(
        v.cni_urls()
            .iter()
            .map(|u| from_url(u, "05", BTreeMap::new())),
    );
    out.extend(
        v.external_cloud_provider_manifests()
            .iter()
            .map(|u| from_url(u, "30", BTreeMap::new())),
    );
    let headers = map(&v.cluster.extra_manifest_headers);
    out.extend(
        v.cluster
            .extra_manifests
            .iter()
            .map(|u| from_url(u, "99", headers.clone())),
    );
    out.extend(v.cluster.inline_manifests.iter().map(|m| ExtraManifest {
        name: m.name.clone(),
        url: String::new(),
        priority: "99".into(),
        extra_headers: BTreeMap::new(),
        inline_manifest: m.contents.clone(),
    }));
    Ok(Some(ExtraManifestsConfigSpec {
        extra_manifests: out,
    }))
}

/// Starts them on `runtime`.
pub fn start(runtime: &mut talos::resources::controller::Runtime) {
    runtime.spawn(Transform::new(
        "k8s.ControlPlaneAPIServerController",
        APISERVER_ID,
        api_server,
    ));
    runtime.spawn(Transform::new(
        "k8s.ControlPlaneControllerManagerController",
        CONTROLLER_MANAGER_ID,
        controller_manager,
    ));
    runtime.spawn(Transform::new(
        "k8s.ControlPlaneSchedulerController",
        SCHEDULER_ID,
        scheduler,
    ));
    runtime.spawn(Transform::new(
        "k8s.ControlPlaneAdmissionControlController",
        ADMISSION_CONTROL_ID,
        admission,
    ));
    runtime.spawn(Transform::new(
        "k8s.ControlPlaneAuditPolicyController",
        AUDIT_POLICY_ID,
        audit,
    ));
    runtime.spawn(Transform::new(
        "k8s.ControlPlaneBootstrapManifestsController",
        MANIFESTS_ID,
        bootstrap_manifests,
    ));
    runtime.spawn(Transform::new(
        "k8s.ControlPlaneExtraManifestsController",
        EXTRA_MANIFESTS_ID,
        extra_manifests,
    ));
}
