//! The files of the control-plane static pods (Talos's `RenderSecretsStaticPodController` and
//! `RenderConfigsStaticPodController`): certificates, keys and kubeconfigs under
//! `/system/secrets/kubernetes/<component>`, configs under `/system/config/kubernetes/<component>`,
//! every file 0400 and owned by the component's user; then the `SecretStatuses`/`ConfigStatuses`
//! `static-pods` resources that the static pods wait for.

use talos::constants::{
    KUBE_APISERVER_CONFIG_DIR, KUBE_APISERVER_RUN_USER, KUBE_APISERVER_SECRETS_DIR,
    KUBE_CONTROLLER_MANAGER_RUN_USER, KUBE_CONTROLLER_MANAGER_SECRETS_DIR,
    KUBE_SCHEDULER_CONFIG_DIR, KUBE_SCHEDULER_RUN_USER, KUBE_SCHEDULER_SECRETS_DIR,
};
use talos::k8s::configs;
use talos::resources::controller::{Action, Context, Controller, ControllerError, Input};
use talos::resources::specs::{
    AdmissionControlConfigSpec, AuditPolicyConfigSpec, ConfigStatusSpec, EtcdRootSpec,
    KubernetesCertsSpec, KubernetesDynamicCertsSpec, KubernetesRootSpec, SchedulerConfigSpec,
    SecretsStatusSpec, ADMISSION_CONTROL_ID, AUDIT_POLICY_ID, ETCD_ROOT_ID, KUBERNETES_CERTS_ID,
    KUBERNETES_DYNAMIC_CERTS_ID, KUBERNETES_ROOT_ID, SCHEDULER_ID, STATIC_PODS_ID,
};
use talos::resources::ResourceSpec;
use talos::secrets::kubernetes::public_key_pem;

use super::{Files, K8sEnv};

/// One file of a component: name and content.
type File = (&'static str, Vec<u8>);

/// A component's secrets directory, its user, and its files.
type ComponentFiles = (&'static str, u32, Vec<File>);

/// Renders the secret files.
pub struct RenderSecretsController {
    env: K8sEnv,
}

impl RenderSecretsController {
    /// Writing below `env.root`.
    pub fn new(env: K8sEnv) -> Self {
        RenderSecretsController { env }
    }
}

fn other(e: impl std::fmt::Display) -> ControllerError {
    ControllerError::Other(e.to_string())
}

fn secret_files(
    root: &KubernetesRootSpec,
    etcd: &EtcdRootSpec,
    certs: &KubernetesCertsSpec,
    dynamic: &KubernetesDynamicCertsSpec,
) -> Result<Vec<ComponentFiles>, ControllerError> {
    let sa_key = root
        .service_account
        .as_ref()
        .map(|k| k.key.clone())
        .ok_or_else(|| other("error parsing service account key: missing"))?;
    let sa_pub = public_key_pem(&sa_key)
        .map_err(|e| other(format!("error parsing service account key: {e}")))?;
    let accepted: Vec<u8> = root
        .accepted_cas
        .iter()
        .flat_map(|c| c.crt.clone())
        .collect();
    let issuing = root.issuing_ca.clone().unwrap_or_default();
    let aggregator = root.aggregator_ca.clone().unwrap_or_default();
    let apiserver = vec![
        ("etcd-client-ca.crt", etcd.etcd_ca.crt.clone()),
        ("etcd-client.crt", dynamic.etcd_api_server.crt.clone()),
        ("etcd-client.key", dynamic.etcd_api_server.key.clone()),
        ("ca.crt", accepted),
        ("apiserver.crt", dynamic.api_server.crt.clone()),
        ("apiserver.key", dynamic.api_server.key.clone()),
        (
            "apiserver-kubelet-client.crt",
            dynamic.api_server_kubelet_client.crt.clone(),
        ),
        (
            "apiserver-kubelet-client.key",
            dynamic.api_server_kubelet_client.key.clone(),
        ),
        ("service-account.pub", sa_pub),
        ("service-account.key", sa_key.clone()),
        ("aggregator-ca.crt", aggregator.crt),
        ("front-proxy-client.crt", dynamic.front_proxy.crt.clone()),
        ("front-proxy-client.key", dynamic.front_proxy.key.clone()),
        (
            "encryptionconfig.yaml",
            configs::encryption_config(root).into_bytes(),
        ),
    ];
    let controller_manager = vec![
        ("ca.crt", issuing.crt),
        ("ca.key", issuing.key),
        ("service-account.key", sa_key),
        (
            "kubeconfig",
            certs.controller_manager_kubeconfig.clone().into_bytes(),
        ),
    ];
    let scheduler = vec![(
        "kubeconfig",
        certs.scheduler_kubeconfig.clone().into_bytes(),
    )];
    Ok(vec![
        (
            KUBE_APISERVER_SECRETS_DIR,
            KUBE_APISERVER_RUN_USER,
            apiserver,
        ),
        (
            KUBE_CONTROLLER_MANAGER_SECRETS_DIR,
            KUBE_CONTROLLER_MANAGER_RUN_USER,
            controller_manager,
        ),
        (
            KUBE_SCHEDULER_SECRETS_DIR,
            KUBE_SCHEDULER_RUN_USER,
            scheduler,
        ),
    ])
}

impl Controller for RenderSecretsController {
    fn name(&self) -> &'static str {
        "k8s.RenderSecretsStaticPodController"
    }

    fn inputs(&self) -> Vec<Input> {
        vec![
            Input::one::<KubernetesRootSpec>(KUBERNETES_ROOT_ID),
            Input::one::<EtcdRootSpec>(ETCD_ROOT_ID),
            Input::one::<KubernetesCertsSpec>(KUBERNETES_CERTS_ID),
            Input::one::<KubernetesDynamicCertsSpec>(KUBERNETES_DYNAMIC_CERTS_ID),
        ]
    }

    fn outputs(&self) -> Vec<&'static str> {
        vec![SecretsStatusSpec::TYPE]
    }

    async fn reconcile(&mut self, ctx: &Context) -> Result<Action, ControllerError> {
        let st = ctx.state();
        let (Ok(root), Ok(etcd), Ok(certs_res), Ok(dynamic)) = (
            st.get_typed::<KubernetesRootSpec>(KUBERNETES_ROOT_ID),
            st.get_typed::<EtcdRootSpec>(ETCD_ROOT_ID),
            st.get(
                KubernetesCertsSpec::NAMESPACE,
                KubernetesCertsSpec::TYPE,
                KUBERNETES_CERTS_ID,
            ),
            st.get_typed::<KubernetesDynamicCertsSpec>(KUBERNETES_DYNAMIC_CERTS_ID),
        ) else {
            return Ok(Action::AwaitChange);
        };
        let certs: KubernetesCertsSpec = certs_res.typed()?;
        let files = Files::new(&self.env);
        for (dir, uid, list) in secret_files(&root, &etcd, &certs, &dynamic)? {
            for (name, content) in list {
                files.write(dir, name, &content, uid)?;
            }
        }
        ctx.put_typed(
            STATIC_PODS_ID,
            &SecretsStatusSpec {
                ready: true,
                version: certs_res.metadata.version.to_string(),
            },
        )?;
        Ok(Action::AwaitChange)
    }
}

/// Renders the config files.
pub struct RenderConfigsController {
    env: K8sEnv,
}

impl RenderConfigsController {
    /// Writing below `env.root`.
    pub fn new(env: K8sEnv) -> Self {
        RenderConfigsController { env }
    }
}

impl Controller for RenderConfigsController {
    fn name(&self) -> &'static str {
        "k8s.RenderConfigsStaticPodController"
    }

    fn inputs(&self) -> Vec<Input> {
        vec![
            Input::one::<AdmissionControlConfigSpec>(ADMISSION_CONTROL_ID),
            Input::one::<AuditPolicyConfigSpec>(AUDIT_POLICY_ID),
            Input::one::<SchedulerConfigSpec>(SCHEDULER_ID),
        ]
    }

    fn outputs(&self) -> Vec<&'static str> {
        vec![ConfigStatusSpec::TYPE]
    }

    async fn reconcile(&mut self, ctx: &Context) -> Result<Action, ControllerError> {
        let st = ctx.state();
        let get = |ty: &str, id: &str| st.get(AdmissionControlConfigSpec::NAMESPACE, ty, id).ok();
        let (Some(admission), Some(audit), Some(scheduler)) = (
            get(AdmissionControlConfigSpec::TYPE, ADMISSION_CONTROL_ID),
            get(AuditPolicyConfigSpec::TYPE, AUDIT_POLICY_ID),
            get(SchedulerConfigSpec::TYPE, SCHEDULER_ID),
        ) else {
            return Ok(Action::AwaitChange);
        };
        let a: AdmissionControlConfigSpec = admission.typed()?;
        let p: AuditPolicyConfigSpec = audit.typed()?;
        let s: SchedulerConfigSpec = scheduler.typed()?;
        let files = Files::new(&self.env);
        let admission_file = configs::file_content(&configs::admission_control(&a.config));
        let audit_file = configs::file_content(&configs::audit_policy(&p.config).map_err(other)?);
        let scheduler_file = configs::file_content(&configs::scheduler(&s.config).map_err(other)?);
        files.write(
            KUBE_APISERVER_CONFIG_DIR,
            "admission-control-config.yaml",
            admission_file.as_bytes(),
            KUBE_APISERVER_RUN_USER,
        )?;
        files.write(
            KUBE_APISERVER_CONFIG_DIR,
            "auditpolicy.yaml",
            audit_file.as_bytes(),
            KUBE_APISERVER_RUN_USER,
        )?;
        files.write(
            KUBE_SCHEDULER_CONFIG_DIR,
            "scheduler-config.yaml",
            scheduler_file.as_bytes(),
            KUBE_SCHEDULER_RUN_USER,
        )?;
        ctx.put_typed(
            STATIC_PODS_ID,
            &ConfigStatusSpec {
                ready: true,
                version: format!(
                    "{}{}{}",
                    admission.metadata.version, audit.metadata.version, scheduler.metadata.version
                ),
            },
        )?;
        Ok(Action::AwaitChange)
    }
}
