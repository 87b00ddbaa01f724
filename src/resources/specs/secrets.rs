//! The `secrets` namespace's Kubernetes resources (all sensitive): the root secrets from the
//! machine config, the certificate SANs of the API server, the certificates and kubeconfigs
//! machined issues for the control plane, and the kubelet's bootstrap secrets.

use std::net::IpAddr;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::resources::ResourceSpec;

/// The namespace.
pub const SECRETS_NAMESPACE: &str = "secrets";
/// Id of the Kubernetes root secrets and of the API server's cert SANs.
pub const KUBERNETES_ROOT_ID: &str = "k8s";
/// Id of the issued kubeconfigs.
pub const KUBERNETES_CERTS_ID: &str = "k8s-certs";
/// Id of the issued certificates.
pub const KUBERNETES_DYNAMIC_CERTS_ID: &str = "k8s-dynamic-certs";
/// Id of the kubelet's secrets.
pub const KUBELET_SECRETS_ID: &str = "kubelet";
/// Id of the etcd root secrets.
pub const ETCD_ROOT_ID: &str = "etcd";

macro_rules! secrets_spec {
    ($ty:ty, $type_name:literal) => {
        impl ResourceSpec for $ty {
            const TYPE: &'static str = $type_name;
            const NAMESPACE: &'static str = SECRETS_NAMESPACE;
            const SENSITIVE: bool = true;
            crate::serde_yaml_spec!();
        }
    };
}

/// PEM bytes written as base64 (how Talos's x509 types marshal).
mod b64 {
    use super::*;

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(serde::de::Error::custom)
    }
}

/// A PEM certificate and its PEM private key.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PemCertificateAndKey {
    /// The certificate (PEM).
    #[serde(with = "b64")]
    pub crt: Vec<u8>,
    /// The key (PEM; empty when only the certificate is known).
    #[serde(with = "b64")]
    pub key: Vec<u8>,
}

/// A PEM certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PemCertificate {
    /// The certificate (PEM).
    #[serde(with = "b64")]
    pub crt: Vec<u8>,
}

/// A PEM private key.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PemKey {
    /// The key (PEM).
    #[serde(with = "b64")]
    pub key: Vec<u8>,
}

/// `KubernetesRootSecrets.secrets.talos.dev` (`k8s`): the cluster's Kubernetes secrets from
/// the machine config (control planes).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KubernetesRootSpec {
    /// Cluster name.
    pub name: String,
    /// Cluster endpoint.
    pub endpoint: String,
    /// The endpoint local components use.
    pub local_endpoint: String,
    /// `cluster.apiServer.certSANs`.
    #[serde(rename = "certSANs")]
    pub cert_sans: Vec<String>,
    /// The `kubernetes` service addresses.
    #[serde(rename = "apiServerIPs")]
    pub api_server_ips: Vec<IpAddr>,
    /// Cluster DNS domain.
    #[serde(rename = "dnsDomain")]
    pub dns_domain: String,
    /// The Kubernetes CA (`cluster.ca`); absent without its key.
    #[serde(rename = "issuingCA")]
    pub issuing_ca: Option<PemCertificateAndKey>,
    /// Every CA the cluster accepts (`cluster.acceptedCAs` and the issuing CA).
    #[serde(rename = "acceptedCAs")]
    pub accepted_cas: Vec<PemCertificate>,
    /// The service-account signing key.
    #[serde(rename = "serviceAccount")]
    pub service_account: Option<PemKey>,
    /// The front-proxy CA.
    #[serde(rename = "aggregatorCA")]
    pub aggregator_ca: Option<PemCertificateAndKey>,
    /// `cluster.aescbcEncryptionSecret`.
    #[serde(rename = "aesCBCEncryptionSecret")]
    pub aescbc_encryption_secret: String,
    /// The bootstrap token's id.
    #[serde(rename = "bootstrapTokenID")]
    pub bootstrap_token_id: String,
    /// The bootstrap token's secret.
    #[serde(rename = "bootstrapTokenSecret")]
    pub bootstrap_token_secret: String,
    /// `cluster.secretboxEncryptionSecret`.
    #[serde(rename = "secretboxEncryptionSecret")]
    pub secretbox_encryption_secret: String,
}
secrets_spec!(
    KubernetesRootSpec,
    "KubernetesRootSecrets.secrets.talos.dev"
);

/// `KubernetesSecrets.secrets.talos.dev` (`k8s-certs`): the kubeconfigs machined issues.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KubernetesCertsSpec {
    /// kube-scheduler's kubeconfig.
    #[serde(rename = "schedulerKubeconfig")]
    pub scheduler_kubeconfig: String,
    /// kube-controller-manager's kubeconfig.
    #[serde(rename = "controllerManagerKubeconfig")]
    pub controller_manager_kubeconfig: String,
    /// Talos's own admin kubeconfig through the local endpoint.
    #[serde(rename = "localhostAdminKubeconfig")]
    pub localhost_admin_kubeconfig: String,
    /// Talos's own admin kubeconfig through the cluster endpoint.
    #[serde(rename = "adminKubeconfig")]
    pub admin_kubeconfig: String,
}
secrets_spec!(KubernetesCertsSpec, "KubernetesSecrets.secrets.talos.dev");

/// `KubernetesDynamicCerts.secrets.talos.dev` (`k8s-dynamic-certs`): the certificates
/// machined issues for the API server.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KubernetesDynamicCertsSpec {
    /// The API server's serving certificate.
    #[serde(rename = "apiServer")]
    pub api_server: PemCertificateAndKey,
    /// Its client certificate towards the kubelets.
    #[serde(rename = "apiServerKubeletClient")]
    pub api_server_kubelet_client: PemCertificateAndKey,
    /// The front-proxy client certificate.
    #[serde(rename = "frontProxy")]
    pub front_proxy: PemCertificateAndKey,
    /// The API server's etcd client certificate (Talos keeps it in `EtcdSecrets`; here the
    /// Kubernetes side issues it from the etcd CA).
    #[serde(rename = "etcdAPIServer")]
    pub etcd_api_server: PemCertificateAndKey,
}
secrets_spec!(
    KubernetesDynamicCertsSpec,
    "KubernetesDynamicCerts.secrets.talos.dev"
);

/// `EtcdRootSecrets.secrets.talos.dev` (`etcd`): the etcd CA from the machine config.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EtcdRootSpec {
    /// The etcd CA.
    #[serde(rename = "etcdCA")]
    pub etcd_ca: PemCertificateAndKey,
}
secrets_spec!(EtcdRootSpec, "EtcdRootSecrets.secrets.talos.dev");

/// `KubeletSecrets.secrets.talos.dev` (`kubelet`): what the kubelet bootstraps with.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KubeletSecretsSpec {
    /// The API server the kubelet talks to.
    pub endpoint: String,
    /// The CAs it trusts for the API server.
    #[serde(rename = "acceptedCAs")]
    pub accepted_cas: Vec<PemCertificate>,
    /// Bootstrap token id.
    #[serde(rename = "bootstrapTokenID")]
    pub bootstrap_token_id: String,
    /// Bootstrap token secret.
    #[serde(rename = "bootstrapTokenSecret")]
    pub bootstrap_token_secret: String,
}
secrets_spec!(KubeletSecretsSpec, "KubeletSecrets.secrets.talos.dev");

/// `CertSANs.secrets.talos.dev` (`k8s`): the API server certificate's names.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CertSanSpec {
    /// Addresses, sorted.
    pub ips: Vec<IpAddr>,
    /// DNS names, sorted.
    #[serde(rename = "dnsNames")]
    pub dns_names: Vec<String>,
    /// The node's FQDN.
    pub fqdn: String,
}
secrets_spec!(CertSanSpec, "CertSANs.secrets.talos.dev");

impl CertSanSpec {
    /// Adds names, splitting addresses from DNS names, skipping duplicates and empties.
    pub fn append(&mut self, names: impl IntoIterator<Item = impl AsRef<str>>) {
        for name in names {
            let name = name.as_ref();
            match name.parse::<IpAddr>() {
                Ok(ip) => self.append_ips([ip]),
                Err(_) if name.is_empty() => {}
                Err(_) => {
                    if !self.dns_names.iter().any(|n| n == name) {
                        self.dns_names.push(name.to_string());
                    }
                }
            }
        }
    }

    /// Adds addresses, skipping duplicates.
    pub fn append_ips(&mut self, ips: impl IntoIterator<Item = IpAddr>) {
        for ip in ips {
            if !self.ips.contains(&ip) {
                self.ips.push(ip);
            }
        }
    }

    /// Sorts names and addresses (IPv4 before IPv6, then by value).
    pub fn sort(&mut self) {
        self.dns_names.sort();
        self.ips.sort();
    }
}
