//! Machine config generation (`talosctl gen config`): controlplane and worker configs and the
//! talosconfig, built from a secrets bundle and the generation options.
//!
//! The version contract (`--talos-version`) gates the defaults exactly as Talos does, so a config
//! generated for an older Talos does not carry keys that release does not know.

use std::net::IpAddr;

use indexmap::IndexMap;
use serde_yaml::{Mapping, Value};

use super::v1alpha1::{
    ApiServerConfig, ClusterConfig, ClusterDiscoveryConfig, ClusterNetworkConfig,
    ControlPlaneConfig, ControllerManagerConfig, EtcdConfig, FeaturesConfig, HostDns,
    InstallConfig, KubePrism, KubeletConfig, MachineConfig, NetworkConfig, NetworkKubeSpan,
    PemEncodedCertificateAndKey, PemEncodedKey, ProxyConfig, RegistryMirrorConfig, SchedulerConfig,
    V1Alpha1Config,
};
use super::{AdmissionPluginConfig, Config, ConfigError, Document};
use crate::secrets::{Bundle, VersionContract};

/// Image repositories of the components (the tag is the Kubernetes version).
const KUBELET_IMAGE: &str = "ghcr.io/siderolabs/kubelet";
const APISERVER_IMAGE: &str = "registry.k8s.io/kube-apiserver";
const CONTROLLER_MANAGER_IMAGE: &str = "registry.k8s.io/kube-controller-manager";
const SCHEDULER_IMAGE: &str = "registry.k8s.io/kube-scheduler";
const PROXY_IMAGE: &str = "registry.k8s.io/kube-proxy";

/// The default installer image (`--install-image`).
pub const DEFAULT_INSTALL_IMAGE: &str = "ghcr.io/siderolabs/installer:v1.7.0";
/// The default install disk (`--install-disk`).
pub const DEFAULT_INSTALL_DISK: &str = "/dev/sda";
/// The default cluster DNS domain (`--dns-domain`).
pub const DEFAULT_DNS_DOMAIN: &str = "cluster.local";
/// The default Kubernetes API port added to an endpoint without one.
pub const DEFAULT_CONTROL_PLANE_PORT: u16 = 6443;
/// KubePrism's default local port.
const KUBE_PRISM_PORT: i64 = 7445;

const IPV4_POD_NET: &str = "10.244.0.0/16";
const IPV4_SERVICE_NET: &str = "10.96.0.0/12";
const IPV6_POD_NET: &str = "fc00:db8:10::/56";
const IPV6_SERVICE_NET: &str = "fc00:db8:20::/112";

/// Errors of config generation.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The cluster endpoint is not an `https://host:port` URL.
    #[error("{0}")]
    Endpoint(String),
    /// A `--registry-mirror` value is not `host=url`.
    #[error("invalid registry mirror spec: {0:?} (expected <registry host>=<mirror URL>)")]
    RegistryMirror(String),
    /// Encoding the result failed.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Everything `gen config` takes besides the secrets bundle.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Cluster name (also the talosconfig context name).
    pub cluster_name: String,
    /// Kubernetes API endpoint, an `https://host:port` URL.
    pub endpoint: String,
    /// Kubernetes version without the leading `v` (`1.30.0`); empty leaves the images empty.
    pub kubernetes_version: String,
    /// The version contract the defaults follow.
    pub contract: VersionContract,
    /// `machine.install.disk`; empty to leave it out.
    pub install_disk: String,
    /// `machine.install.image`; empty to leave it out.
    pub install_image: String,
    /// Extra SANs for the API server and the Talos API certificates.
    pub additional_sans: Vec<String>,
    /// `cluster.network.dnsDomain`.
    pub dns_domain: String,
    /// Registry mirrors, `(host, endpoint)` pairs in the order given.
    pub registry_mirrors: Vec<(String, String)>,
    /// The top-level `persist` value.
    pub persist: bool,
    /// The top-level `debug` value.
    pub debug: bool,
    /// Cluster discovery; `None` follows the contract's default.
    pub discovery: Option<bool>,
    /// Enables KubeSpan.
    pub kubespan: bool,
    /// Endpoints written to the talosconfig context.
    pub talos_endpoints: Vec<String>,
}

impl GenerateOptions {
    /// Talos's defaults for a cluster name and endpoint.
    pub fn new(cluster_name: &str, endpoint: &str) -> Self {
        GenerateOptions {
            cluster_name: cluster_name.to_string(),
            endpoint: endpoint.to_string(),
            kubernetes_version: crate::version::DEFAULT_KUBERNETES_VERSION.to_string(),
            contract: VersionContract::CURRENT,
            install_disk: DEFAULT_INSTALL_DISK.to_string(),
            install_image: DEFAULT_INSTALL_IMAGE.to_string(),
            additional_sans: Vec::new(),
            dns_domain: DEFAULT_DNS_DOMAIN.to_string(),
            registry_mirrors: Vec::new(),
            persist: true,
            debug: false,
            discovery: None,
            kubespan: false,
            talos_endpoints: Vec::new(),
        }
    }

    /// Parses `--registry-mirror host=url` values.
    pub fn parse_registry_mirrors(
        specs: &[String],
    ) -> Result<Vec<(String, String)>, GenerateError> {
        specs
            .iter()
            .map(|s| match s.split_once('=') {
                Some((host, url)) => Ok((host.to_string(), url.to_string())),
                None => Err(GenerateError::RegistryMirror(s.clone())),
            })
            .collect()
    }
}

/// The machine role a config is generated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineType {
    /// A control-plane node.
    ControlPlane,
    /// A worker node.
    Worker,
}

impl MachineType {
    /// The `machine.type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            MachineType::ControlPlane => "controlplane",
            MachineType::Worker => "worker",
        }
    }
}

/// Checks the cluster endpoint the way `talosctl gen config` does: it must be an https URL with a
/// host; the error suggests the corrected form.
pub fn validate_endpoint(endpoint: &str) -> Result<(), GenerateError> {
    let suggestion = suggest_endpoint(endpoint);
    let (scheme, rest) = match endpoint.split_once("://") {
        Some((s, r)) => (s, r),
        None => {
            let has_port = split_host_port(endpoint).1.is_some();
            let what = if has_port {
                "no scheme specified for the cluster endpoint URL"
            } else {
                "no scheme and port specified for the cluster endpoint URL"
            };
            return Err(GenerateError::Endpoint(format!(
                "{what}\ntry: {suggestion:?}"
            )));
        }
    };
    if scheme != "https" {
        return Err(GenerateError::Endpoint(format!(
            "the control plane endpoint URL should have scheme https://\ntry: {suggestion:?}"
        )));
    }
    let (host, port) = split_host_port(authority(rest));
    if host.is_empty() {
        return Err(GenerateError::Endpoint(format!(
            "error validating the cluster endpoint URL: {endpoint:?} has no host"
        )));
    }
    if let Some(port) = port {
        if port.parse::<u16>().map(|p| p == 0).unwrap_or(true) {
            return Err(GenerateError::Endpoint(format!(
                "error validating the cluster endpoint URL: invalid port {port:?} in {endpoint:?}"
            )));
        }
    }
    Ok(())
}

/// Splits `host:port` / `[v6]:port` / `host`, returning the host and the port if present.
fn split_host_port(authority: &str) -> (&str, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':')),
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        // A bare IPv6 address has several colons and no port.
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (authority, None),
    }
}

/// The authority (`host:port`) of an endpoint URL, or of a bare `host[:port]`.
fn authority(endpoint: &str) -> &str {
    let rest = endpoint
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(endpoint);
    rest.split(['/', '?', '#']).next().unwrap_or_default()
}

/// The `https://host:port` form of a possibly incomplete endpoint, for error hints.
fn suggest_endpoint(endpoint: &str) -> String {
    let (host, port) = split_host_port(authority(endpoint));
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let port = port
        .map(str::to_string)
        .unwrap_or_else(|| DEFAULT_CONTROL_PLANE_PORT.to_string());
    format!("https://{host}:{port}")
}

/// The host part of the endpoint URL (without brackets), as Go's `url.Hostname()`.
fn endpoint_hostname(endpoint: &str) -> String {
    let authority = authority(endpoint);
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    split_host_port(authority).0.to_string()
}

fn image(repo: &str, kubernetes_version: &str) -> String {
    if kubernetes_version.is_empty() {
        String::new()
    } else {
        format!("{repo}:v{kubernetes_version}")
    }
}

fn b64(pem: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(pem)
}

fn string_map(pairs: &[(&str, Value)]) -> Value {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(Value::String((*k).to_string()), v.clone());
    }
    Value::Mapping(m)
}

fn strings(items: &[&str]) -> Value {
    Value::Sequence(items.iter().map(|s| Value::String(s.to_string())).collect())
}

/// The PodSecurity admission plugin configuration Talos enables by default (keys sorted as Go
/// writes maps).
fn pod_security_admission() -> AdmissionPluginConfig {
    let defaults = string_map(&[
        ("audit", "restricted".into()),
        ("audit-version", "latest".into()),
        ("enforce", "baseline".into()),
        ("enforce-version", "latest".into()),
        ("warn", "restricted".into()),
        ("warn-version", "latest".into()),
    ]);
    let exemptions = string_map(&[
        ("namespaces", strings(&["kube-system"])),
        ("runtimeClasses", strings(&[])),
        ("usernames", strings(&[])),
    ]);
    AdmissionPluginConfig {
        name: "PodSecurity".to_string(),
        configuration: string_map(&[
            (
                "apiVersion",
                "pod-security.admission.config.k8s.io/v1alpha1".into(),
            ),
            ("defaults", defaults),
            ("exemptions", exemptions),
            ("kind", "PodSecurityConfiguration".into()),
        ]),
    }
}

/// The default API server audit policy (log request metadata).
fn default_audit_policy() -> Value {
    string_map(&[
        ("apiVersion", "audit.k8s.io/v1".into()),
        ("kind", "Policy".into()),
        (
            "rules",
            Value::Sequence(vec![string_map(&[("level", "Metadata".into())])]),
        ),
    ])
}

/// A generator holding the inputs shared by every output.
pub struct Generator<'a> {
    opts: &'a GenerateOptions,
    secrets: &'a Bundle,
}

impl<'a> Generator<'a> {
    /// A generator for `opts` from `secrets`.
    pub fn new(opts: &'a GenerateOptions, secrets: &'a Bundle) -> Self {
        Generator { opts, secrets }
    }

    fn pod_and_service_nets(&self) -> (Vec<String>, Vec<String>) {
        // Talos picks the IPv6 defaults only when the endpoint itself is a bare IPv6 address.
        let v6 = matches!(self.opts.endpoint.parse::<IpAddr>(), Ok(IpAddr::V6(_)));
        if v6 {
            (vec![IPV6_POD_NET.into()], vec![IPV6_SERVICE_NET.into()])
        } else {
            (vec![IPV4_POD_NET.into()], vec![IPV4_SERVICE_NET.into()])
        }
    }

    fn machine(&self, kind: MachineType) -> MachineConfig {
        let certs = &self.secrets.certs;
        let ca = match kind {
            MachineType::ControlPlane => PemEncodedCertificateAndKey {
                crt: b64(&certs.os.crt),
                key: b64(&certs.os.key),
            },
            MachineType::Worker => PemEncodedCertificateAndKey {
                crt: b64(&certs.os.crt),
                key: String::new(),
            },
        };

        let mut machine = MachineConfig {
            machine_type: kind.as_str().to_string(),
            token: self.secrets.trustdinfo.token.clone(),
            ca: Some(ca),
            cert_sans: self.machine_cert_sans(),
            kubelet: Some(self.kubelet()),
            network: Some(self.machine_network()),
            install: Some(InstallConfig {
                disk: self.opts.install_disk.clone(),
                image: self.opts.install_image.clone(),
                wipe: Some(false),
                ..InstallConfig::default()
            }),
            features: Some(self.features()),
            ..MachineConfig::default()
        };
        machine.registries.mirrors = self.registry_mirrors();
        machine
    }

    /// `machine.features`: what each version contract turned on by default.
    fn features(&self) -> FeaturesConfig {
        let c = self.opts.contract;
        let mut features = FeaturesConfig::default();
        if c.greater(VersionContract::V0_10) {
            features.rbac = Some(true);
        }
        if c.greater(VersionContract::V1_1) {
            features.stable_hostname = Some(true);
        }
        if c.greater(VersionContract::V1_2) {
            features.apid_check_ext_key_usage = Some(true);
        }
        if c.greater(VersionContract::V1_4) {
            features.disk_quota_support = Some(true);
        }
        if c.greater(VersionContract::V1_5) {
            features.kube_prism = Some(KubePrism {
                enabled: Some(true),
                port: KUBE_PRISM_PORT,
            });
        }
        if c.greater(VersionContract::V1_6) {
            features.host_dns = Some(HostDns {
                enabled: Some(true),
                ..HostDns::default()
            });
        }
        features
    }

    /// `machine.kubelet`: the image and the contract's defaults.
    fn kubelet(&self) -> KubeletConfig {
        let c = self.opts.contract;
        let mut kubelet = KubeletConfig {
            image: image(KUBELET_IMAGE, &self.opts.kubernetes_version),
            ..KubeletConfig::default()
        };
        if c.greater(VersionContract::V1_1) {
            kubelet.default_runtime_seccomp_profile_enabled = Some(true);
        }
        if c.greater(VersionContract::V1_2) {
            kubelet.disable_manifests_directory = Some(true);
        }
        kubelet
    }

    /// `machine.network`: KubeSpan when asked for.
    fn machine_network(&self) -> NetworkConfig {
        let mut network = NetworkConfig::default();
        if self.opts.kubespan {
            network.kubespan = Some(NetworkKubeSpan {
                enabled: Some(true),
                ..NetworkKubeSpan::default()
            });
        }
        network
    }

    /// `machine.registries.mirrors`: the `--registry-mirror` flags, plus the k8s.gcr.io mirror
    /// of the 1.2 contract; keys sorted as Go writes maps.
    fn registry_mirrors(&self) -> IndexMap<String, RegistryMirrorConfig> {
        let c = self.opts.contract;
        let mut mirrors: IndexMap<String, RegistryMirrorConfig> = IndexMap::new();
        for (host, endpoint) in &self.opts.registry_mirrors {
            // A later flag for the same host replaces the earlier one, as in Talos.
            mirrors.insert(
                host.clone(),
                RegistryMirrorConfig {
                    endpoints: vec![endpoint.clone()],
                    ..RegistryMirrorConfig::default()
                },
            );
        }
        if c.greater(VersionContract::V1_1) && !c.greater(VersionContract::V1_2) {
            mirrors
                .entry("k8s.gcr.io".to_string())
                .or_insert_with(|| RegistryMirrorConfig {
                    endpoints: vec![
                        "https://registry.k8s.io".to_string(),
                        "https://k8s.gcr.io".to_string(),
                    ],
                    ..RegistryMirrorConfig::default()
                });
        }
        // Go writes map keys sorted.
        mirrors.sort_by(|a, _, b, _| crate::yaml::go_key_cmp(a, b));
        mirrors
    }

    /// SANs of the Talos API certificate: the additional SANs (older contracts without dynamic
    /// SANs also got the talosconfig endpoints).
    fn machine_cert_sans(&self) -> Vec<String> {
        let mut sans = self.opts.additional_sans.clone();
        if !self.opts.contract.greater(VersionContract::V0_12) {
            sans.extend(self.opts.talos_endpoints.iter().cloned());
        }
        sans
    }

    fn discovery(&self) -> ClusterDiscoveryConfig {
        let c = self.opts.contract;
        let enabled = self
            .opts
            .discovery
            .unwrap_or_else(|| c.greater(VersionContract::V0_13));
        let mut d = ClusterDiscoveryConfig {
            enabled: Some(enabled),
            ..ClusterDiscoveryConfig::default()
        };
        if c.greater(VersionContract::V1_1) {
            d.registries.kubernetes.disabled = Some(true);
        }
        d
    }

    fn cluster_network(&self) -> ClusterNetworkConfig {
        let (pods, services) = self.pod_and_service_nets();
        ClusterNetworkConfig {
            dns_domain: self.opts.dns_domain.clone(),
            pod_subnets: pods,
            service_subnets: services,
            ..ClusterNetworkConfig::default()
        }
    }

    fn control_plane_cluster(&self) -> ClusterConfig {
        let c = self.opts.contract;
        let s = self.secrets;
        let kv = &self.opts.kubernetes_version;
        let mut cluster =
            ClusterConfig {
                id: s.cluster.id.clone(),
                secret: s.cluster.secret.clone(),
                control_plane: Some(ControlPlaneConfig {
                    endpoint: Some(self.opts.endpoint.clone()),
                    ..ControlPlaneConfig::default()
                }),
                cluster_name: self.opts.cluster_name.clone(),
                network: Some(self.cluster_network()),
                token: s.secrets.bootstraptoken.clone(),
                ca: Some(PemEncodedCertificateAndKey {
                    crt: b64(&s.certs.k8s.crt),
                    key: b64(&s.certs.k8s.key),
                }),
                aggregator_ca: s.certs.k8saggregator.as_ref().map(|a| {
                    PemEncodedCertificateAndKey {
                        crt: b64(&a.crt),
                        key: b64(&a.key),
                    }
                }),
                service_account: s
                    .certs
                    .k8sserviceaccount
                    .as_ref()
                    .map(|k| PemEncodedKey { key: b64(&k.key) }),
                api_server: Some(self.api_server()),
                controller_manager: Some(ControllerManagerConfig {
                    image: image(CONTROLLER_MANAGER_IMAGE, kv),
                    ..ControllerManagerConfig::default()
                }),
                proxy: Some(ProxyConfig {
                    image: image(PROXY_IMAGE, kv),
                    ..ProxyConfig::default()
                }),
                scheduler: Some(SchedulerConfig {
                    image: image(SCHEDULER_IMAGE, kv),
                    ..SchedulerConfig::default()
                }),
                discovery: Some(self.discovery()),
                etcd: Some(EtcdConfig {
                    ca: Some(PemEncodedCertificateAndKey {
                        crt: b64(&s.certs.etcd.crt),
                        key: b64(&s.certs.etcd.key),
                    }),
                    ..EtcdConfig::default()
                }),
                ..ClusterConfig::default()
            };
        if c.greater(VersionContract::V1_2) {
            cluster.secretbox_encryption_secret = s
                .secrets
                .secretboxencryptionsecret
                .clone()
                .unwrap_or_default();
        } else {
            cluster.aescbc_encryption_secret =
                s.secrets.aescbcencryptionsecret.clone().unwrap_or_default();
        }
        cluster
    }

    /// `cluster.apiServer` of a control plane: image, SANs, and the contract's admission and
    /// audit defaults.
    fn api_server(&self) -> ApiServerConfig {
        let c = self.opts.contract;
        let kv = &self.opts.kubernetes_version;
        let mut cert_sans = vec![endpoint_hostname(&self.opts.endpoint)];
        cert_sans.extend(self.machine_cert_sans());

        let mut api_server = ApiServerConfig {
            image: image(APISERVER_IMAGE, kv),
            cert_sans,
            ..ApiServerConfig::default()
        };
        if c.greater(VersionContract::V1_0) {
            api_server.admission_control = vec![pod_security_admission()];
        }
        if c.greater(VersionContract::V1_2) {
            api_server.audit_policy = default_audit_policy();
        }
        if c.greater(VersionContract::V0_14) {
            api_server.disable_pod_security_policy = Some(true);
        }
        api_server
    }

    fn worker_cluster(&self) -> ClusterConfig {
        let s = self.secrets;
        ClusterConfig {
            id: s.cluster.id.clone(),
            secret: s.cluster.secret.clone(),
            control_plane: Some(ControlPlaneConfig {
                endpoint: Some(self.opts.endpoint.clone()),
                ..ControlPlaneConfig::default()
            }),
            network: Some(self.cluster_network()),
            token: s.secrets.bootstraptoken.clone(),
            ca: Some(PemEncodedCertificateAndKey {
                crt: b64(&s.certs.k8s.crt),
                key: String::new(),
            }),
            discovery: Some(self.discovery()),
            ..ClusterConfig::default()
        }
    }

    /// The machine config for `kind`.
    pub fn config(&self, kind: MachineType) -> Result<Config, GenerateError> {
        let cluster = match kind {
            MachineType::ControlPlane => self.control_plane_cluster(),
            MachineType::Worker => self.worker_cluster(),
        };
        let doc = V1Alpha1Config {
            version: "v1alpha1".to_string(),
            debug: Some(self.opts.debug),
            persist: Some(self.opts.persist),
            machine: Some(self.machine(kind)),
            cluster: Some(cluster),
        };
        Ok(Config::new(vec![Document::V1Alpha1(Box::new(doc))])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_checks_match_talos_messages() {
        assert!(validate_endpoint("https://base:6443").is_ok());
        assert!(validate_endpoint("https://[fd00::1]:6443").is_ok());
        assert!(validate_endpoint("https://10.5.0.2").is_ok());
        let e = validate_endpoint("10.5.0.2").unwrap_err().to_string();
        assert_eq!(
            e,
            "no scheme and port specified for the cluster endpoint URL\ntry: \"https://10.5.0.2:6443\""
        );
        let e = validate_endpoint("10.5.0.2:6443").unwrap_err().to_string();
        assert!(e.starts_with("no scheme specified"), "{e}");
        let e = validate_endpoint("http://a:6443").unwrap_err().to_string();
        assert!(e.contains("should have scheme https://"), "{e}");
        assert!(e.contains("https://a:6443"), "{e}");
        assert!(validate_endpoint("https://:6443").is_err());
        assert!(validate_endpoint("https://a:notaport").is_err());
    }

    #[test]
    fn hostname_of_endpoint() {
        assert_eq!(endpoint_hostname("https://base:6443"), "base");
        assert_eq!(endpoint_hostname("https://[fd00::1]:6443/x"), "fd00::1");
        assert_eq!(endpoint_hostname("https://u@h"), "h");
    }

    #[test]
    fn registry_mirror_specs() {
        let ok =
            GenerateOptions::parse_registry_mirrors(&["docker.io=http://10.5.0.1:5000".into()])
                .unwrap();
        assert_eq!(
            ok,
            vec![("docker.io".into(), "http://10.5.0.1:5000".into())]
        );
        assert!(GenerateOptions::parse_registry_mirrors(&["nope".into()]).is_err());
    }
}
