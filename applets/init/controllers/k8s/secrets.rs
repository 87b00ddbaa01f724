//! The Kubernetes secrets of a node (Talos's `secrets.*` controllers for Kubernetes): the root
//! secrets from the machine config, the API server certificate's SANs, the certificates and
//! kubeconfigs issued from the cluster CAs (re-issued when their inputs change, and at half
//! their validity), and the kubelet's bootstrap secrets.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use talos::config::kubernetes::{KubernetesView, ONE_YEAR};
use talos::config::{PemEncodedCertificate, PemEncodedCertificateAndKey};
use talos::k8s::kubeconfig::{generate, KubeconfigInput};
use talos::resources::controller::{Action, Context, Controller, ControllerError, Input};
use talos::resources::specs::{
    CertSanSpec, EtcdRootSpec, HostnameStatusSpec, KubeletSecretsSpec, KubernetesCertsSpec,
    KubernetesDynamicCertsSpec, KubernetesRootSpec, PemCertificate, PemCertificateAndKey, PemKey,
    TimeStatusSpec, ETCD_ROOT_ID, HOSTNAME_ID, KUBELET_SECRETS_ID, KUBERNETES_CERTS_ID,
    KUBERNETES_DYNAMIC_CERTS_ID, KUBERNETES_ROOT_ID, TIME_STATUS_ID,
};
use talos::resources::{ResourceSpec, State};
use talos::secrets::kubernetes::{issue, IssuedPem, Subject};
use talos::secrets::ExtKeyUsage;

use super::transform::Transform;

/// How often the node's addresses are looked at again for the SANs.
const ADDRESS_REFRESH: Duration = Duration::from_secs(30);

fn pem(b64: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .unwrap_or_default()
}

fn cert_and_key(c: &PemEncodedCertificateAndKey) -> PemCertificateAndKey {
    PemCertificateAndKey {
        crt: pem(&c.crt),
        key: pem(&c.key),
    }
}

fn cert(c: &PemEncodedCertificate) -> PemCertificate {
    PemCertificate { crt: pem(&c.crt) }
}

fn missing(what: &str) -> ControllerError {
    ControllerError::Other(format!("missing {what} secret"))
}

fn root(
    v: &KubernetesView<'_>,
    _: &Context,
) -> Result<Option<KubernetesRootSpec>, ControllerError> {
    if !v.is_control_plane() {
        return Ok(None);
    }
    let c = v.cluster;
    let mut issuing = c.ca.as_ref().map(cert_and_key);
    let mut accepted: Vec<PemCertificate> = c.accepted_cas.iter().map(cert).collect();
    if let Some(ca) = &issuing {
        accepted.push(PemCertificate {
            crt: ca.crt.clone(),
        });
    }
    if issuing.as_ref().is_some_and(|ca| ca.key.is_empty()) {
        issuing = None;
    }
    if accepted.is_empty() {
        return Err(missing("cluster.CA"));
    }
    let aggregator = c.aggregator_ca.as_ref().map(cert_and_key);
    if aggregator.is_none() {
        return Err(missing("cluster.aggregatorCA"));
    }
    let (token_id, token_secret) = v.bootstrap_token();
    Ok(Some(KubernetesRootSpec {
        name: v.cluster_name().to_string(),
        endpoint: v.endpoint().to_string(),
        local_endpoint: v.local_endpoint(),
        cert_sans: v.api_server_cert_sans(),
        api_server_ips: v.api_server_ips(),
        dns_domain: v.dns_domain(),
        issuing_ca: issuing,
        accepted_cas: accepted,
        service_account: c
            .service_account
            .as_ref()
            .map(|k| PemKey { key: pem(&k.key) }),
        aggregator_ca: aggregator,
        aescbc_encryption_secret: c.aescbc_encryption_secret.clone(),
        bootstrap_token_id: token_id,
        bootstrap_token_secret: token_secret,
        secretbox_encryption_secret: c.secretbox_encryption_secret.clone(),
    }))
}

fn etcd_root(v: &KubernetesView<'_>, _: &Context) -> Result<Option<EtcdRootSpec>, ControllerError> {
    if !v.is_control_plane() {
        return Ok(None);
    }
    let ca = v
        .cluster
        .etcd
        .as_ref()
        .and_then(|e| e.ca.as_ref())
        .ok_or_else(|| missing("cluster.etcdCA"))?;
    Ok(Some(EtcdRootSpec {
        etcd_ca: cert_and_key(ca),
    }))
}

fn kubelet(
    v: &KubernetesView<'_>,
    _: &Context,
) -> Result<Option<KubeletSecretsSpec>, ControllerError> {
    let mut accepted: Vec<PemCertificate> = Vec::new();
    if let Some(ca) = &v.cluster.ca {
        accepted.push(PemCertificate { crt: pem(&ca.crt) });
    }
    accepted.extend(v.cluster.accepted_cas.iter().map(cert));
    if accepted.is_empty() {
        return Err(ControllerError::Other(
            "missing accepted Kubernetes CAs".into(),
        ));
    }
    let (id, secret) = v.bootstrap_token();
    Ok(Some(KubeletSecretsSpec {
        endpoint: v.kubelet_endpoint(),
        accepted_cas: accepted,
        bootstrap_token_id: id,
        bootstrap_token_secret: secret,
    }))
}

/// `CertSANs/k8s`: endpoint host, `cluster.apiServer.certSANs`, the `kubernetes` service
/// names and addresses, hostname and FQDN, the node's addresses and 127.0.0.1.
pub struct KubernetesCertSansController {
    addresses: fn() -> Vec<IpAddr>,
}

impl KubernetesCertSansController {
    /// With the node's addresses from `addresses`.
    pub fn new(addresses: fn() -> Vec<IpAddr>) -> Self {
        KubernetesCertSansController { addresses }
    }
}

impl Controller for KubernetesCertSansController {
    fn name(&self) -> &'static str {
        "secrets.KubernetesCertSANsController"
    }

    fn inputs(&self) -> Vec<Input> {
        vec![
            Input::one::<KubernetesRootSpec>(KUBERNETES_ROOT_ID),
            Input::one::<HostnameStatusSpec>(HOSTNAME_ID),
        ]
    }

    fn outputs(&self) -> Vec<&'static str> {
        vec![CertSanSpec::TYPE]
    }

    async fn reconcile(&mut self, ctx: &Context) -> Result<Action, ControllerError> {
        let Ok(root) = ctx
            .state()
            .get_typed::<KubernetesRootSpec>(KUBERNETES_ROOT_ID)
        else {
            ctx.destroy(
                CertSanSpec::NAMESPACE,
                CertSanSpec::TYPE,
                KUBERNETES_ROOT_ID,
            )?;
            return Ok(Action::AwaitChange);
        };
        let Ok(host) = ctx.state().get_typed::<HostnameStatusSpec>(HOSTNAME_ID) else {
            return Ok(Action::AwaitChange);
        };
        let mut spec = CertSanSpec::default();
        spec.append([talos::config::kubernetes::url_host(&root.endpoint)]);
        spec.append(&root.cert_sans);
        let domain = format!("kubernetes.default.svc.{}", root.dns_domain);
        spec.append([
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            domain.as_str(),
            "localhost",
        ]);
        spec.append([host.hostname.clone(), host.fqdn()]);
        spec.append_ips(root.api_server_ips.iter().copied());
        spec.append_ips((self.addresses)());
        spec.append_ips([IpAddr::from([127, 0, 0, 1])]);
        spec.fqdn = host.fqdn();
        spec.sort();
        ctx.put_typed(KUBERNETES_ROOT_ID, &spec)?;
        Ok(Action::Requeue(ADDRESS_REFRESH))
    }
}

/// Whether time is synchronized (certificates depend on the clock).
fn time_synced(state: &State) -> bool {
    state
        .get_typed::<TimeStatusSpec>(TIME_STATUS_ID)
        .is_ok_and(|t| t.synced)
}

/// The versions of a set of inputs, to re-issue only when one changes.
fn versions(state: &State, inputs: &[(&str, &str, &str)]) -> Option<Vec<u64>> {
    inputs
        .iter()
        .map(|(ns, ty, id)| state.get(ns, ty, id).ok().map(|r| r.metadata.version))
        .collect()
}

fn leaf(
    ca: &PemCertificateAndKey,
    subject: &Subject<'_>,
    usage: ExtKeyUsage,
) -> Result<PemCertificateAndKey, ControllerError> {
    let IssuedPem { crt, key } = issue(
        &ca.crt,
        &ca.key,
        subject,
        usage,
        time::OffsetDateTime::now_utc(),
        ONE_YEAR,
    )
    .map_err(|e| ControllerError::Other(format!("failed to issue {}: {e}", subject.common_name)))?;
    Ok(PemCertificateAndKey { crt, key })
}

/// Issues the API server's serving, kubelet-client, front-proxy and etcd-client certificates.
#[derive(Default)]
pub struct KubernetesDynamicCertsController {
    issued: Option<(Vec<u64>, Instant)>,
}

impl Controller for KubernetesDynamicCertsController {
    fn name(&self) -> &'static str {
        "secrets.KubernetesDynamicCertsController"
    }

    fn inputs(&self) -> Vec<Input> {
        vec![
            Input::one::<KubernetesRootSpec>(KUBERNETES_ROOT_ID),
            Input::one::<EtcdRootSpec>(ETCD_ROOT_ID),
            Input::one::<CertSanSpec>(KUBERNETES_ROOT_ID),
            Input::one::<TimeStatusSpec>(TIME_STATUS_ID),
        ]
    }

    fn outputs(&self) -> Vec<&'static str> {
        vec![KubernetesDynamicCertsSpec::TYPE]
    }

    async fn reconcile(&mut self, ctx: &Context) -> Result<Action, ControllerError> {
        let st = ctx.state();
        let keys = [
            (
                KubernetesRootSpec::NAMESPACE,
                KubernetesRootSpec::TYPE,
                KUBERNETES_ROOT_ID,
            ),
            (EtcdRootSpec::NAMESPACE, EtcdRootSpec::TYPE, ETCD_ROOT_ID),
            (
                CertSanSpec::NAMESPACE,
                CertSanSpec::TYPE,
                KUBERNETES_ROOT_ID,
            ),
        ];
        let Some(current) = versions(st, &keys) else {
            if st.get(keys[0].0, keys[0].1, keys[0].2).is_err() {
                ctx.destroy(
                    KubernetesDynamicCertsSpec::NAMESPACE,
                    KubernetesDynamicCertsSpec::TYPE,
                    KUBERNETES_DYNAMIC_CERTS_ID,
                )?;
                self.issued = None;
            }
            return Ok(Action::AwaitChange);
        };
        if !time_synced(st) || !due(&self.issued, &current) {
            return Ok(Action::Requeue(ONE_YEAR / 2));
        }
        let root: KubernetesRootSpec = st.get_typed(KUBERNETES_ROOT_ID)?;
        let etcd: EtcdRootSpec = st.get_typed(ETCD_ROOT_ID)?;
        let sans: CertSanSpec = st.get_typed(KUBERNETES_ROOT_ID)?;
        let ca = root
            .issuing_ca
            .as_ref()
            .ok_or_else(|| missing("cluster.ca"))?;
        let aggregator = root
            .aggregator_ca
            .as_ref()
            .ok_or_else(|| missing("cluster.aggregatorCA"))?;
        let spec = KubernetesDynamicCertsSpec {
            api_server: leaf(
                ca,
                &Subject {
                    common_name: "kube-apiserver",
                    organization: "kube-master",
                    dns_names: sans.dns_names.clone(),
                    ips: sans.ips.clone(),
                },
                ExtKeyUsage::ServerAuth,
            )?,
            api_server_kubelet_client: leaf(
                ca,
                &Subject {
                    common_name: "apiserver-kubelet-client",
                    organization: "system:masters",
                    ..Subject::default()
                },
                ExtKeyUsage::ClientAuth,
            )?,
            front_proxy: leaf(
                aggregator,
                &Subject {
                    common_name: "front-proxy-client",
                    ..Subject::default()
                },
                ExtKeyUsage::ClientAuth,
            )?,
            etcd_api_server: leaf(
                &etcd.etcd_ca,
                &Subject {
                    common_name: "kube-apiserver",
                    ..Subject::default()
                },
                ExtKeyUsage::ClientAuth,
            )?,
        };
        ctx.put_typed(KUBERNETES_DYNAMIC_CERTS_ID, &spec)?;
        self.issued = Some((current, Instant::now()));
        Ok(Action::Requeue(ONE_YEAR / 2))
    }
}

/// Re-issue when the inputs changed or half the validity has passed.
fn due(issued: &Option<(Vec<u64>, Instant)>, current: &[u64]) -> bool {
    match issued {
        None => true,
        Some((versions, at)) => versions != current || at.elapsed() >= ONE_YEAR / 2,
    }
}

/// Issues the kubeconfigs of the controller manager, the scheduler and Talos itself.
#[derive(Default)]
pub struct KubernetesController {
    issued: Option<(Vec<u64>, Instant)>,
}

fn kubeconfig(
    root: &KubernetesRootSpec,
    ca: &PemCertificateAndKey,
    server_cas: &[u8],
    who: (&str, &str, &str),
    endpoint: &str,
) -> Result<String, ControllerError> {
    let (cn, org, username) = who;
    let context = if username == "admin" {
        "admin"
    } else {
        "default"
    };
    generate(
        &KubeconfigInput {
            cluster_name: &root.name,
            ca_crt: &ca.crt,
            ca_key: &ca.key,
            server_cas,
            lifetime: ONE_YEAR,
            common_name: cn,
            organization: org,
            endpoint,
            username,
            context_name: context,
        },
        time::OffsetDateTime::now_utc(),
    )
    .map_err(|e| ControllerError::Other(format!("failed to generate {username} kubeconfig: {e}")))
}

impl Controller for KubernetesController {
    fn name(&self) -> &'static str {
        "secrets.KubernetesController"
    }

    fn inputs(&self) -> Vec<Input> {
        vec![
            Input::one::<KubernetesRootSpec>(KUBERNETES_ROOT_ID),
            Input::one::<TimeStatusSpec>(TIME_STATUS_ID),
        ]
    }

    fn outputs(&self) -> Vec<&'static str> {
        vec![KubernetesCertsSpec::TYPE]
    }

    async fn reconcile(&mut self, ctx: &Context) -> Result<Action, ControllerError> {
        let st = ctx.state();
        let Ok(r) = st.get(
            KubernetesRootSpec::NAMESPACE,
            KubernetesRootSpec::TYPE,
            KUBERNETES_ROOT_ID,
        ) else {
            ctx.destroy(
                KubernetesCertsSpec::NAMESPACE,
                KubernetesCertsSpec::TYPE,
                KUBERNETES_CERTS_ID,
            )?;
            self.issued = None;
            return Ok(Action::AwaitChange);
        };
        let current = vec![r.metadata.version];
        if !time_synced(st) || !due(&self.issued, &current) {
            return Ok(Action::Requeue(ONE_YEAR / 2));
        }
        let root: KubernetesRootSpec = r.typed()?;
        let ca = root
            .issuing_ca
            .as_ref()
            .ok_or_else(|| missing("cluster.ca"))?;
        let cas: Vec<u8> = root
            .accepted_cas
            .iter()
            .flat_map(|c| c.crt.clone())
            .collect();
        // The admin kubeconfigs also trust the issuing CA (it is in the accepted list already).
        let admin = ("talos:admin", "system:masters", "admin");
        let spec = KubernetesCertsSpec {
            scheduler_kubeconfig: kubeconfig(
                &root,
                ca,
                &cas,
                (
                    "system:kube-scheduler",
                    "system:kube-scheduler",
                    "system:kube-scheduler",
                ),
                &root.local_endpoint,
            )?,
            controller_manager_kubeconfig: kubeconfig(
                &root,
                ca,
                &cas,
                (
                    "system:kube-controller-manager",
                    "system:kube-controller-manager",
                    "system:kube-controller-manager",
                ),
                &root.local_endpoint,
            )?,
            localhost_admin_kubeconfig: kubeconfig(&root, ca, &cas, admin, &root.local_endpoint)?,
            admin_kubeconfig: kubeconfig(&root, ca, &cas, admin, &root.endpoint)?,
        };
        ctx.put_typed(KUBERNETES_CERTS_ID, &spec)?;
        self.issued = Some((current, Instant::now()));
        Ok(Action::Requeue(ONE_YEAR / 2))
    }
}

/// Starts the secrets controllers.
pub fn start(
    runtime: &mut talos::resources::controller::Runtime,
    node_addresses: fn() -> Vec<IpAddr>,
) {
    runtime.spawn(Transform::new(
        "secrets.RootKubernetesController",
        KUBERNETES_ROOT_ID,
        root,
    ));
    runtime.spawn(Transform::new(
        "secrets.RootEtcdController",
        ETCD_ROOT_ID,
        etcd_root,
    ));
    runtime.spawn(Transform::new(
        "secrets.KubeletController",
        KUBELET_SECRETS_ID,
        kubelet,
    ));
    runtime.spawn(KubernetesCertSansController::new(node_addresses));
    runtime.spawn(KubernetesDynamicCertsController::default());
    runtime.spawn(KubernetesController::default());
}
