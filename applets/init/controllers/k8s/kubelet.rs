//! The kubelet's resources (Talos's `KubeletConfigController`, `NodeIPConfigController`,
//! `NodeIPController`, `KubeletSpecController`) and its files and service
//! (`KubeletServiceController`): the bootstrap kubeconfig, the Kubernetes CA, the
//! `KubeletConfiguration` file; then the `kubelet` service is (re)started with the rendered
//! flags.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use talos::config::kubernetes::KubernetesView;
use talos::constants::{
    KUBELET_BOOTSTRAP_KUBECONFIG, KUBELET_CONFIG_PATH, KUBELET_CREDENTIAL_PROVIDER_CONFIG,
    KUBERNETES_CA_CERT,
};
use talos::k8s::{kubeconfig, kubelet};
use talos::resources::controller::{Action, Context, Controller, ControllerError, Input};
use talos::resources::specs::{
    KubeletConfigSpec, KubeletSecretsSpec, KubeletSpecSpec, Mount, NodeIpConfigSpec, NodeIpSpec,
    NodenameSpec, StaticPodServerStatusSpec, KUBELET_ID, KUBELET_SECRETS_ID, NODENAME_ID,
    STATIC_POD_SERVER_STATUS_ID,
};
use talos::resources::ResourceSpec;

use super::transform::Transform;
use super::{Files, K8sEnv};
use crate::init::runtime::ServiceControl;

fn other(e: impl std::fmt::Display) -> ControllerError {
    ControllerError::Other(e.to_string())
}

fn kubelet_config(
    v: &KubernetesView<'_>,
    ctx: &Context,
) -> Result<Option<KubeletConfigSpec>, ControllerError> {
    let Ok(server) = ctx
        .state()
        .get_typed::<StaticPodServerStatusSpec>(STATIC_POD_SERVER_STATUS_ID)
    else {
        return Ok(None);
    };
    let k = v.kubelet();
    let mut cluster_dns = k.cluster_dns.clone();
    if cluster_dns.is_empty() {
        cluster_dns = v
            .dns_service_ips()
            .iter()
            .map(ToString::to_string)
            .collect();
    }
    Ok(Some(KubeletConfigSpec {
        image: v.kubelet_image(),
        cluster_dns,
        cluster_domain: v.dns_domain(),
        extra_args: k
            .extra_args
            .iter()
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect(),
        extra_mounts: k.extra_mounts.iter().map(Mount::from_config).collect(),
        extra_config: talos::yaml::sort_maps(&k.extra_config),
        cloud_provider_external: v.external_cloud_provider(),
        default_runtime_seccomp_enabled: k.default_runtime_seccomp_profile_enabled.unwrap_or(false),
        skip_node_registration: k.skip_node_registration.unwrap_or(false),
        static_pod_list_url: server.url,
        disable_manifests_directory: k.disable_manifests_directory.unwrap_or(false),
        enable_fs_quota_monitoring: v.disk_quota_support(),
        credential_provider_config: talos::yaml::sort_maps(&k.credential_provider_config),
    }))
}

fn node_ip_config(
    v: &KubernetesView<'_>,
    _: &Context,
) -> Result<Option<NodeIpConfigSpec>, ControllerError> {
    let mut valid = v
        .kubelet()
        .node_ip
        .map(|n| n.valid_subnets)
        .unwrap_or_default();
    if valid.is_empty() {
        valid = v
            .service_cidrs()
            .iter()
            .map(|c| if c.contains(':') { "::/0" } else { "0.0.0.0/0" }.to_string())
            .collect();
    }
    let mut exclude = v.pod_cidrs();
    exclude.extend(v.service_cidrs());
    for vip in vips(v) {
        exclude.push(vip);
    }
    Ok(Some(NodeIpConfigSpec {
        valid_subnets: valid,
        exclude_subnets: exclude,
    }))
}

/// The VIPs of the machine's interfaces and VLANs.
fn vips(v: &KubernetesView<'_>) -> Vec<String> {
    let Some(net) = &v.machine.network else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for dev in &net.interfaces {
        out.extend(dev.vip.iter().map(|x| x.ip.clone()));
        for vlan in &dev.vlans {
            out.extend(vlan.vip.iter().map(|x| x.ip.clone()));
        }
    }
    out
}

fn in_cidr(ip: IpAddr, cidr: &str) -> bool {
    let (net, bits) = match cidr.split_once('/') {
        Some((n, b)) => (n, b.parse::<u32>().ok()),
        None => (cidr, None),
    };
    let Ok(net) = net.parse::<IpAddr>() else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// The node IPs from `addresses`: in a valid subnet, in no excluded one; the first IPv4 and
/// the first IPv6.
pub fn pick_node_ips(addresses: &[IpAddr], cfg: &NodeIpConfigSpec) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for ip in addresses {
        let valid = cfg.valid_subnets.iter().any(|c| in_cidr(*ip, c));
        let excluded = cfg.exclude_subnets.iter().any(|c| in_cidr(*ip, c));
        if valid && !excluded && !out.iter().any(|o| o.is_ipv4() == ip.is_ipv4()) {
            out.push(*ip);
        }
    }
    out
}

/// `NodeIPs/kubelet`.
pub struct NodeIpController {
    addresses: fn() -> Vec<IpAddr>,
}

impl NodeIpController {
    /// With the node's addresses from `addresses`.
    pub fn new(addresses: fn() -> Vec<IpAddr>) -> Self {
        NodeIpController { addresses }
    }
}

impl Controller for NodeIpController {
    fn name(&self) -> &'static str {
        "k8s.NodeIPController"
    }

    fn inputs(&self) -> Vec<Input> {
        vec![Input::one::<NodeIpConfigSpec>(KUBELET_ID)]
    }

    fn outputs(&self) -> Vec<&'static str> {
        vec![NodeIpSpec::TYPE]
    }

    async fn reconcile(&mut self, ctx: &Context) -> Result<Action, ControllerError> {
        let Ok(cfg) = ctx.state().get_typed::<NodeIpConfigSpec>(KUBELET_ID) else {
            return Ok(Action::AwaitChange);
        };
        let ips = pick_node_ips(&(self.addresses)(), &cfg);
        if ips.is_empty() {
            tracing::warn!("no suitable node IP found, please make sure .machine.kubelet.nodeIP filters and pod/service subnets are set up correctly");
        } else {
            ctx.put_typed(KUBELET_ID, &NodeIpSpec { addresses: ips })?;
        }
        Ok(Action::Requeue(Duration::from_secs(30)))
    }
}

/// `KubeletSpecs/kubelet`: flags and configuration.
pub struct KubeletSpecController {
    container: bool,
}

impl KubeletSpecController {
    /// `container`: the node runs on the container platform.
    pub fn new(container: bool) -> Self {
        KubeletSpecController { container }
    }
}

impl Controller for KubeletSpecController {
    fn name(&self) -> &'static str {
        "k8s.KubeletSpecController"
    }

    fn inputs(&self) -> Vec<Input> {
        vec![
            Input::one::<KubeletConfigSpec>(KUBELET_ID),
            Input::one::<NodenameSpec>(NODENAME_ID),
            Input::one::<NodeIpSpec>(KUBELET_ID),
        ]
    }

    fn outputs(&self) -> Vec<&'static str> {
        vec![KubeletSpecSpec::TYPE]
    }

    async fn reconcile(&mut self, ctx: &Context) -> Result<Action, ControllerError> {
        let st = ctx.state();
        let (Ok(cfg), Ok(nodename)) = (
            st.get_typed::<KubeletConfigSpec>(KUBELET_ID),
            st.get_typed::<NodenameSpec>(NODENAME_ID),
        ) else {
            return Ok(Action::AwaitChange);
        };
        let node_ips = if cfg.extra_args.contains_key("node-ip") {
            Vec::new()
        } else {
            match st.get_typed::<NodeIpSpec>(KUBELET_ID) {
                Ok(ip) => ip.addresses,
                Err(_) => return Ok(Action::AwaitChange),
            }
        };
        let args = kubelet::args(&cfg, &nodename.nodename, &node_ips).map_err(other)?;
        let config = kubelet::configuration(&cfg, self.container)
            .map_err(|e| other(format!("error creating kubelet configuration: {e}")))?;
        let expected = if cfg.extra_args.contains_key("hostname-override") {
            String::new()
        } else {
            nodename.nodename.clone()
        };
        ctx.put_typed(
            KUBELET_ID,
            &KubeletSpecSpec {
                image: cfg.image.clone(),
                args,
                extra_mounts: cfg.extra_mounts.clone(),
                expected_nodename: expected,
                config: serde_yaml::to_value(config.to_value()).map_err(other)?,
                credential_provider_config: cfg.credential_provider_config.clone(),
            },
        )?;
        Ok(Action::AwaitChange)
    }
}

/// Writes the kubelet's files and (re)starts the `kubelet` service when they change.
pub struct KubeletServiceController {
    env: K8sEnv,
    services: Arc<dyn ServiceControl>,
    started: Option<(u64, u64)>,
}

impl KubeletServiceController {
    /// Writing below `env.root`, starting through `services`.
    pub fn new(env: K8sEnv, services: Arc<dyn ServiceControl>) -> Self {
        KubeletServiceController {
            env,
            services,
            started: None,
        }
    }
}

/// The kubelet's files for a spec and its secrets: (path, content, mode).
pub fn kubelet_files(
    spec: &KubeletSpecSpec,
    secrets: &KubeletSecretsSpec,
) -> Vec<(&'static str, Vec<u8>, u32)> {
    let cas: Vec<u8> = secrets
        .accepted_cas
        .iter()
        .flat_map(|c| c.crt.clone())
        .collect();
    let config_value: serde_json::Value = serde_json::to_value(&spec.config).unwrap_or_default();
    let yaml = serde_yaml::to_value(&config_value).unwrap_or(serde_yaml::Value::Null);
    let mut files = vec![
        (
            KUBELET_BOOTSTRAP_KUBECONFIG,
            kubeconfig::kubelet_bootstrap(
                &secrets.endpoint,
                &cas,
                &secrets.bootstrap_token_id,
                &secrets.bootstrap_token_secret,
            )
            .into_bytes(),
            0o600,
        ),
        (KUBERNETES_CA_CERT, cas, 0o400),
        (
            KUBELET_CONFIG_PATH,
            talos::yaml::emit_kubernetes(&talos::yaml::sort_maps(&yaml)).into_bytes(),
            0o600,
        ),
    ];
    if !matches!(&spec.credential_provider_config, serde_yaml::Value::Null) {
        files.push((
            KUBELET_CREDENTIAL_PROVIDER_CONFIG,
            talos::yaml::emit_kubernetes(&talos::yaml::sort_maps(&spec.credential_provider_config))
                .into_bytes(),
            0o600,
        ));
    }
    files
}

impl Controller for KubeletServiceController {
    fn name(&self) -> &'static str {
        "k8s.KubeletServiceController"
    }

    fn inputs(&self) -> Vec<Input> {
        vec![
            Input::one::<KubeletSpecSpec>(KUBELET_ID),
            Input::one::<KubeletSecretsSpec>(KUBELET_SECRETS_ID),
        ]
    }

    fn outputs(&self) -> Vec<&'static str> {
        Vec::new()
    }

    async fn reconcile(&mut self, ctx: &Context) -> Result<Action, ControllerError> {
        let st = ctx.state();
        let (Ok(spec_res), Ok(secrets_res)) = (
            st.get(
                KubeletSpecSpec::NAMESPACE,
                KubeletSpecSpec::TYPE,
                KUBELET_ID,
            ),
            st.get(
                KubeletSecretsSpec::NAMESPACE,
                KubeletSecretsSpec::TYPE,
                KUBELET_SECRETS_ID,
            ),
        ) else {
            return Ok(Action::AwaitChange);
        };
        let versions = (spec_res.metadata.version, secrets_res.metadata.version);
        if self.started == Some(versions) {
            return Ok(Action::AwaitChange);
        }
        let spec: KubeletSpecSpec = spec_res.typed()?;
        let secrets: KubeletSecretsSpec = secrets_res.typed()?;
        let files = Files::new(&self.env);
        for (path, content, mode) in kubelet_files(&spec, &secrets) {
            files.write_mode(path, &content, mode)?;
        }
        self.services.restart("kubelet").await.map_err(other)?;
        self.started = Some(versions);
        Ok(Action::AwaitChange)
    }
}

/// Starts the kubelet controllers (every node).
pub fn start(
    runtime: &mut talos::resources::controller::Runtime,
    env: &K8sEnv,
    addresses: fn() -> Vec<IpAddr>,
    services: Option<Arc<dyn ServiceControl>>,
) {
    runtime.spawn(
        Transform::new("k8s.KubeletConfigController", KUBELET_ID, kubelet_config).with_input(
            Input::one::<StaticPodServerStatusSpec>(STATIC_POD_SERVER_STATUS_ID),
        ),
    );
    runtime.spawn(Transform::new(
        "k8s.NodeIPConfigController",
        KUBELET_ID,
        node_ip_config,
    ));
    runtime.spawn(NodeIpController::new(addresses));
    runtime.spawn(KubeletSpecController::new(env.container));
    if let Some(services) = services {
        runtime.spawn(KubeletServiceController::new(env.clone(), services));
    }
}
