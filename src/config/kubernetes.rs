//! The Kubernetes settings of a machine config with Talos 1.7's defaults applied: what the
//! control-plane and kubelet controllers read (Talos's `config.Provider` accessors for
//! `cluster.*` and `machine.kubelet`). Every default lives here, once.

use std::net::IpAddr;

use super::v1alpha1::{
    ClusterConfig, KubeletConfig, MachineConfig, ResourcesConfig, V1Alpha1Config, VolumeMountConfig,
};
use super::validate::syntax::parse_cidr;
use crate::version::DEFAULT_KUBERNETES_VERSION;

/// kube-apiserver's image repository.
pub const KUBE_APISERVER_IMAGE: &str = "registry.k8s.io/kube-apiserver";
/// kube-controller-manager's image repository.
pub const KUBE_CONTROLLER_MANAGER_IMAGE: &str = "registry.k8s.io/kube-controller-manager";
/// kube-scheduler's image repository.
pub const KUBE_SCHEDULER_IMAGE: &str = "registry.k8s.io/kube-scheduler";
/// kube-proxy's image repository.
pub const KUBE_PROXY_IMAGE: &str = "registry.k8s.io/kube-proxy";
/// The kubelet's image repository.
pub const KUBELET_IMAGE: &str = "ghcr.io/siderolabs/kubelet";
/// CoreDNS's default image.
pub const COREDNS_IMAGE: &str = "registry.k8s.io/coredns/coredns:v1.11.1";
/// Flannel's image (Talos mirrors flannel 0.25.1).
pub const FLANNEL_IMAGE: &str = "ghcr.io/siderolabs/flannel:v0.25.1";
/// The image that installs the CNI plugins for Flannel (Talos 1.7's extras).
pub const FLANNEL_CNI_IMAGE: &str = "ghcr.io/siderolabs/install-cni:v1.7.0-1-gbb76755";
/// The CNI name of Talos-managed Flannel (the default).
pub const FLANNEL_CNI: &str = "flannel";
/// Default cluster DNS domain.
pub const DEFAULT_DNS_DOMAIN: &str = "cluster.local";
/// Default pod subnet.
pub const DEFAULT_POD_SUBNET: &str = "10.244.0.0/16";
/// Default service subnet.
pub const DEFAULT_SERVICE_SUBNET: &str = "10.96.0.0/12";
/// Default KubePrism port.
pub const DEFAULT_KUBEPRISM_PORT: u16 = 7445;
/// Default kube-proxy mode.
pub const DEFAULT_PROXY_MODE: &str = "iptables";

/// `<repository>:v<default Kubernetes version>`.
fn default_image(repository: &str) -> String {
    format!("{repository}:v{DEFAULT_KUBERNETES_VERSION}")
}

fn or_default(image: &str, repository: &str) -> String {
    if image.is_empty() {
        default_image(repository)
    } else {
        image.to_string()
    }
}

/// A machine config's v1alpha1 machine and cluster sections, both present (what every
/// Kubernetes controller needs; Talos's controllers skip a config without them).
#[derive(Debug, Clone, Copy)]
pub struct KubernetesView<'a> {
    /// `machine`.
    pub machine: &'a MachineConfig,
    /// `cluster`.
    pub cluster: &'a ClusterConfig,
}

impl<'a> KubernetesView<'a> {
    /// The view of a v1alpha1 document with both sections.
    pub fn of(doc: &'a V1Alpha1Config) -> Option<KubernetesView<'a>> {
        Some(KubernetesView {
            machine: doc.machine.as_ref()?,
            cluster: doc.cluster.as_ref()?,
        })
    }

    /// `machine.type` is `controlplane` (or the deprecated `init`).
    pub fn is_control_plane(&self) -> bool {
        matches!(self.machine.machine_type.as_str(), "controlplane" | "init")
    }

    /// `cluster.clusterName`.
    pub fn cluster_name(&self) -> &str {
        &self.cluster.cluster_name
    }

    /// `cluster.controlPlane.endpoint` (empty when missing).
    pub fn endpoint(&self) -> &str {
        self.cluster
            .control_plane
            .as_ref()
            .and_then(|c| c.endpoint.as_deref())
            .unwrap_or_default()
    }

    /// The host of the endpoint URL (without brackets for IPv6).
    pub fn endpoint_host(&self) -> String {
        url_host(self.endpoint())
    }

    /// `cluster.controlPlane.localAPIServerPort` (6443).
    pub fn local_api_server_port(&self) -> u16 {
        self.cluster
            .control_plane
            .as_ref()
            .map(|c| c.local_api_server_port)
            .filter(|p| *p > 0)
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(crate::constants::KUBE_APISERVER_PORT)
    }

    /// `cluster.network.podSubnets` (10.244.0.0/16).
    pub fn pod_cidrs(&self) -> Vec<String> {
        match self.cluster.network.as_ref().map(|n| &n.pod_subnets) {
            Some(s) if !s.is_empty() => s.clone(),
            _ => vec![DEFAULT_POD_SUBNET.to_string()],
        }
    }

    /// `cluster.network.serviceSubnets` (10.96.0.0/12).
    pub fn service_cidrs(&self) -> Vec<String> {
        match self.cluster.network.as_ref().map(|n| &n.service_subnets) {
            Some(s) if !s.is_empty() => s.clone(),
            _ => vec![DEFAULT_SERVICE_SUBNET.to_string()],
        }
    }

    /// `cluster.network.dnsDomain` (cluster.local).
    pub fn dns_domain(&self) -> String {
        match self.cluster.network.as_ref().map(|n| n.dns_domain.as_str()) {
            Some(d) if !d.is_empty() => d.to_string(),
            _ => DEFAULT_DNS_DOMAIN.to_string(),
        }
    }

    /// The `n`th address of every service subnet (1: the API server, 10: cluster DNS).
    fn nth_service_ips(&self, n: u128) -> Vec<IpAddr> {
        self.service_cidrs()
            .iter()
            .flat_map(|c| c.split(','))
            .filter_map(|c| nth_ip(c.trim(), n))
            .collect()
    }

    /// The `kubernetes` service's addresses (first address of each service subnet).
    pub fn api_server_ips(&self) -> Vec<IpAddr> {
        self.nth_service_ips(1)
    }

    /// The cluster DNS service addresses (10th address of each service subnet).
    pub fn dns_service_ips(&self) -> Vec<IpAddr> {
        self.nth_service_ips(10)
    }

    /// The host DNS service address (9th of the first IPv4 service subnet) when
    /// `machine.features.hostDNS.forwardKubeDNSToHost` is on.
    pub fn host_dns_service_ip(&self) -> Option<IpAddr> {
        let host_dns = self.machine.features.as_ref()?.host_dns.as_ref()?;
        if !(host_dns.enabled.unwrap_or(false)
            && host_dns.forward_kube_dns_to_host.unwrap_or(false))
        {
            return None;
        }
        self.nth_service_ips(9).into_iter().find(IpAddr::is_ipv4)
    }

    /// `cluster.network.cni.name` (flannel).
    pub fn cni_name(&self) -> String {
        match self.cluster.network.as_ref().and_then(|n| n.cni.as_ref()) {
            Some(c) => c.name.clone(),
            None => FLANNEL_CNI.to_string(),
        }
    }

    /// `cluster.network.cni.urls`.
    pub fn cni_urls(&self) -> Vec<String> {
        self.cluster
            .network
            .as_ref()
            .and_then(|n| n.cni.as_ref())
            .map(|c| c.urls.clone())
            .unwrap_or_default()
    }

    /// `cluster.network.cni.flannel.extraArgs`.
    pub fn flannel_extra_args(&self) -> Vec<String> {
        self.cluster
            .network
            .as_ref()
            .and_then(|n| n.cni.as_ref())
            .and_then(|c| c.flannel.as_ref())
            .map(|f| f.extra_args.clone())
            .unwrap_or_default()
    }

    /// `cluster.apiServer.image`.
    pub fn api_server_image(&self) -> String {
        let image = self.cluster.api_server.as_ref().map(|a| a.image.as_str());
        or_default(image.unwrap_or_default(), KUBE_APISERVER_IMAGE)
    }

    /// `cluster.controllerManager.image`.
    pub fn controller_manager_image(&self) -> String {
        let image = self
            .cluster
            .controller_manager
            .as_ref()
            .map(|a| a.image.as_str());
        or_default(image.unwrap_or_default(), KUBE_CONTROLLER_MANAGER_IMAGE)
    }

    /// `cluster.scheduler.image`.
    pub fn scheduler_image(&self) -> String {
        let image = self.cluster.scheduler.as_ref().map(|a| a.image.as_str());
        or_default(image.unwrap_or_default(), KUBE_SCHEDULER_IMAGE)
    }

    /// `cluster.proxy.image`.
    pub fn proxy_image(&self) -> String {
        let image = self.cluster.proxy.as_ref().map(|a| a.image.as_str());
        or_default(image.unwrap_or_default(), KUBE_PROXY_IMAGE)
    }

    /// kube-proxy runs (`cluster.proxy.disabled` is not set).
    pub fn proxy_enabled(&self) -> bool {
        !self
            .cluster
            .proxy
            .as_ref()
            .and_then(|p| p.disabled)
            .unwrap_or(false)
    }

    /// `cluster.proxy.mode` (iptables).
    pub fn proxy_mode(&self) -> String {
        match self.cluster.proxy.as_ref().map(|p| p.mode.as_str()) {
            Some(m) if !m.is_empty() => m.to_string(),
            _ => DEFAULT_PROXY_MODE.to_string(),
        }
    }

    /// CoreDNS runs (`cluster.coreDNS.disabled` is not set).
    pub fn core_dns_enabled(&self) -> bool {
        !self
            .cluster
            .core_dns
            .as_ref()
            .and_then(|c| c.disabled)
            .unwrap_or(false)
    }

    /// `cluster.coreDNS.image`.
    pub fn core_dns_image(&self) -> String {
        match self.cluster.core_dns.as_ref().map(|c| c.image.as_str()) {
            Some(i) if !i.is_empty() => i.to_string(),
            _ => COREDNS_IMAGE.to_string(),
        }
    }

    /// `cluster.externalCloudProvider.enabled`.
    pub fn external_cloud_provider(&self) -> bool {
        self.cluster
            .external_cloud_provider
            .as_ref()
            .and_then(|e| e.enabled)
            .unwrap_or(false)
    }

    /// `cluster.externalCloudProvider.manifests`.
    pub fn external_cloud_provider_manifests(&self) -> Vec<String> {
        self.cluster
            .external_cloud_provider
            .as_ref()
            .map(|e| e.manifests.clone())
            .unwrap_or_default()
    }

    /// `cluster.apiServer.disablePodSecurityPolicy` is not set.
    pub fn pod_security_policy_enabled(&self) -> bool {
        !self
            .cluster
            .api_server
            .as_ref()
            .and_then(|a| a.disable_pod_security_policy)
            .unwrap_or(false)
    }

    /// `cluster.apiServer.certSANs`.
    pub fn api_server_cert_sans(&self) -> Vec<String> {
        self.cluster
            .api_server
            .as_ref()
            .map(|a| a.cert_sans.clone())
            .unwrap_or_default()
    }

    /// `cluster.apiServer.auditPolicy`, or Talos's default (level Metadata for everything).
    pub fn audit_policy(&self) -> serde_yaml::Value {
        let configured = self.cluster.api_server.as_ref().map(|a| &a.audit_policy);
        match configured {
            Some(serde_yaml::Value::Mapping(m)) if !m.is_empty() => {
                serde_yaml::Value::Mapping(m.clone())
            }
            _ => default_audit_policy(),
        }
    }

    /// `machine.controlPlane.controllerManager.disabled` is not set.
    pub fn controller_manager_enabled(&self) -> bool {
        !self
            .machine
            .control_plane
            .as_ref()
            .and_then(|c| c.controller_manager.as_ref())
            .and_then(|t| t.disabled)
            .unwrap_or(false)
    }

    /// `machine.controlPlane.scheduler.disabled` is not set.
    pub fn scheduler_enabled(&self) -> bool {
        !self
            .machine
            .control_plane
            .as_ref()
            .and_then(|c| c.scheduler.as_ref())
            .and_then(|t| t.disabled)
            .unwrap_or(false)
    }

    /// `machine.features.kubePrism`: its port when enabled.
    pub fn kube_prism_port(&self) -> Option<u16> {
        let prism = self.machine.features.as_ref()?.kube_prism.as_ref()?;
        if !prism.enabled.unwrap_or(false) {
            return None;
        }
        Some(
            u16::try_from(prism.port)
                .ok()
                .filter(|p| *p > 0)
                .unwrap_or(DEFAULT_KUBEPRISM_PORT),
        )
    }

    /// `machine.features.kubernetesTalosAPIAccess.enabled`.
    pub fn talos_api_access(&self) -> bool {
        self.machine
            .features
            .as_ref()
            .and_then(|f| f.kubernetes_talos_api_access.as_ref())
            .and_then(|a| a.enabled)
            .unwrap_or(false)
    }

    /// `machine.features.diskQuotaSupport`.
    pub fn disk_quota_support(&self) -> bool {
        self.machine
            .features
            .as_ref()
            .and_then(|f| f.disk_quota_support)
            .unwrap_or(false)
    }

    /// The endpoint the control-plane components use to reach the API server: KubePrism's when
    /// it is on, else `https://localhost:<local port>`.
    pub fn local_endpoint(&self) -> String {
        match self.kube_prism_port() {
            Some(port) => format!("https://127.0.0.1:{port}"),
            None => format!("https://localhost:{}", self.local_api_server_port()),
        }
    }

    /// The endpoint the kubelet uses: KubePrism, else localhost on control planes, else the
    /// cluster endpoint.
    pub fn kubelet_endpoint(&self) -> String {
        match self.kube_prism_port() {
            Some(port) => format!("https://127.0.0.1:{port}"),
            None if self.is_control_plane() => {
                format!("https://localhost:{}", self.local_api_server_port())
            }
            None => self.endpoint().to_string(),
        }
    }

    /// `cluster.token` split into id and secret (empty when malformed).
    pub fn bootstrap_token(&self) -> (String, String) {
        match self.cluster.token.split_once('.') {
            Some((id, secret)) if !secret.contains('.') => (id.to_string(), secret.to_string()),
            _ => (String::new(), String::new()),
        }
    }

    /// `cluster.adminKubeconfig.certLifetime` (one year).
    pub fn admin_cert_lifetime(&self) -> std::time::Duration {
        self.cluster
            .admin_kubeconfig
            .as_ref()
            .map(|a| a.cert_lifetime.0)
            .filter(|d| !d.is_zero())
            .unwrap_or(ONE_YEAR)
    }

    /// `machine.kubelet` (empty when absent).
    pub fn kubelet(&self) -> KubeletConfig {
        self.machine.kubelet.clone().unwrap_or_default()
    }

    /// `machine.kubelet.image`.
    pub fn kubelet_image(&self) -> String {
        let kubelet = self.machine.kubelet.as_ref().map(|k| k.image.as_str());
        or_default(kubelet.unwrap_or_default(), KUBELET_IMAGE)
    }
}

/// One year: Talos's validity of Kubernetes certificates it issues.
pub const ONE_YEAR: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

/// Talos's default audit policy: everything at level Metadata.
pub fn default_audit_policy() -> serde_yaml::Value {
    serde_yaml::from_str("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")
        .unwrap_or(serde_yaml::Value::Null)
}

/// The pod volume name of an extra volume: its mount path with `/`, `_` and `.` as `-`,
/// trimmed of `-`.
pub fn volume_name(volume: &VolumeMountConfig) -> String {
    volume
        .mount_path
        .replace(['/', '_', '.'], "-")
        .trim_matches('-')
        .to_string()
}

/// One resource quantity (`cpu` or `memory`) of a resources section: a string as given, an
/// integer as its decimal form, anything else ignored (Talos's `convertResource`).
pub fn resource_quantity(resources: Option<&ResourcesConfig>, limits: bool, key: &str) -> String {
    let Some(r) = resources else {
        return String::new();
    };
    let map = if limits { &r.limits } else { &r.requests };
    match map.get(key) {
        Some(serde_yaml::Value::String(s)) => s.clone(),
        Some(serde_yaml::Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        _ => String::new(),
    }
}

/// The host of a URL (`https://[::1]:6443` → `::1`), or the input when it has no scheme.
pub fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default().to_string();
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h)
        .to_string()
}

/// The `n`th address of a CIDR (`10.96.0.0/12`, 10 → `10.96.0.10`); `None` when the CIDR is
/// invalid or too small.
pub fn nth_ip(cidr: &str, n: u128) -> Option<IpAddr> {
    let (ip, bits) = parse_cidr(cidr)?;
    match ip {
        IpAddr::V4(v4) => {
            let host_bits = 32 - u32::from(bits);
            let mask = if host_bits == 32 {
                0
            } else {
                u32::MAX << host_bits
            };
            let base = u32::from(v4) & mask;
            let n = u32::try_from(n).ok()?;
            if host_bits < 32 && u64::from(n) >= (1u64 << host_bits) {
                return None;
            }
            Some(IpAddr::V4((base + n).into()))
        }
        IpAddr::V6(v6) => {
            let host_bits = 128 - u32::from(bits);
            let mask = if host_bits == 128 {
                0
            } else {
                u128::MAX << host_bits
            };
            let base = u128::from(v6) & mask;
            if host_bits < 128 && n >= (1u128 << host_bits) {
                return None;
            }
            Some(IpAddr::V6((base + n).into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view_of(yaml: &str) -> V1Alpha1Config {
        let cfg = crate::config::Config::from_yaml(yaml.as_bytes(), "t").expect("config");
        cfg.v1alpha1().expect("v1alpha1").clone()
    }

    #[test]
    fn defaults_follow_talos() {
        let doc = view_of("version: v1alpha1\nmachine:\n  type: controlplane\ncluster:\n  clusterName: c\n  controlPlane:\n    endpoint: https://[fd00::1]:6443\n");
        let v = KubernetesView::of(&doc).expect("view");
        assert!(v.is_control_plane());
        assert_eq!(v.endpoint_host(), "fd00::1");
        assert_eq!(v.local_api_server_port(), 6443);
        assert_eq!(
            v.api_server_image(),
            "registry.k8s.io/kube-apiserver:v1.30.0"
        );
        assert_eq!(v.kubelet_image(), "ghcr.io/siderolabs/kubelet:v1.30.0");
        assert_eq!(v.core_dns_image(), COREDNS_IMAGE);
        assert_eq!(v.pod_cidrs(), ["10.244.0.0/16"]);
        assert_eq!(v.dns_domain(), "cluster.local");
        assert_eq!(v.api_server_ips(), ["10.96.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(
            v.dns_service_ips(),
            ["10.96.0.10".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(v.cni_name(), "flannel");
        assert!(v.proxy_enabled() && v.core_dns_enabled() && v.pod_security_policy_enabled());
        assert_eq!(v.proxy_mode(), "iptables");
        assert_eq!(v.local_endpoint(), "https://localhost:6443");
        assert_eq!(v.kubelet_endpoint(), "https://localhost:6443");
        assert_eq!(v.audit_policy(), default_audit_policy());
        assert_eq!(v.admin_cert_lifetime(), ONE_YEAR);
    }

    #[test]
    fn nth_ip_and_hosts() {
        assert_eq!(
            nth_ip("fd00:10::/108", 10),
            Some("fd00:10::a".parse().unwrap())
        );
        assert_eq!(nth_ip("10.0.0.0/30", 10), None);
        assert_eq!(url_host("https://a.example:6443/x"), "a.example");
        assert_eq!(url_host("https://10.5.0.2:6443"), "10.5.0.2");
        let v = VolumeMountConfig {
            host_path: "/a".into(),
            mount_path: "/var/lib/my_app.d/".into(),
            read_only: false,
        };
        assert_eq!(volume_name(&v), "var-lib-my-app-d");
    }
}
