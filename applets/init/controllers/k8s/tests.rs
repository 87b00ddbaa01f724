//! The Kubernetes controllers end to end on an in-memory state and a temp root: Talos's
//! renderings for a generated control plane, what a config change touches, and offline
//! validation of every rendered object with real Kubernetes tooling.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use talos::config::generate::{GenerateOptions, Generator, MachineType};
use talos::config::Config;
use talos::resources::controller::Runtime;
use talos::resources::specs::*;
use talos::resources::{Resource, ResourceSpec, State};
use talos::secrets::{Bundle, VersionContract};

use super::K8sEnv;

fn bundle() -> &'static Bundle {
    static B: OnceLock<Bundle> = OnceLock::new();
    B.get_or_init(|| Bundle::generate(VersionContract::CURRENT).expect("bundle"))
}

/// The control-plane config `talosctl gen config c https://10.5.0.2:6443` makes.
pub fn control_plane_config() -> Config {
    let opts = GenerateOptions::new("c", "https://10.5.0.2:6443");
    Generator::new(&opts, bundle())
        .config(MachineType::ControlPlane)
        .expect("config")
}

fn worker_config() -> Config {
    let opts = GenerateOptions::new("c", "https://10.5.0.2:6443");
    Generator::new(&opts, bundle())
        .config(MachineType::Worker)
        .expect("config")
}

fn addresses() -> Vec<IpAddr> {
    vec!["10.5.0.2".parse().expect("ip")]
}

struct Harness {
    st: State,
    rt: Option<Runtime>,
    dir: tempfile::TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            tokio::spawn(rt.stop());
        }
    }
}

fn set_config(st: &State, config: Config) {
    st.put(
        Resource::from_typed(MACHINE_CONFIG_ID, &MachineConfigSpec::new(Arc::new(config))),
        "v1alpha1.AcquireController",
    )
    .expect("config");
}

fn start(config: Config, etcd_healthy: bool) -> Harness {
    let st = State::new();
    set_config(&st, config);
    st.put(
        Resource::from_typed(
            HOSTNAME_ID,
            &HostnameStatusSpec {
                hostname: "talos-cp-1".into(),
                domainname: String::new(),
            },
        ),
        "network.HostnameStatusController",
    )
    .expect("hostname");
    st.put(
        Resource::from_typed(
            TIME_STATUS_ID,
            &TimeStatusSpec {
                synced: true,
                epoch: 0,
                sync_disabled: true,
            },
        ),
        "time.SyncController",
    )
    .expect("time");
    st.put(
        Resource::from_typed(
            NODENAME_ID,
            &NodenameSpec {
                nodename: "talos-cp-1".into(),
                ..NodenameSpec::default()
            },
        ),
        "k8s.NodenameController",
    )
    .expect("nodename");
    crate::init::controllers::publish_service(&st, "etcd", etcd_healthy, etcd_healthy, false)
        .expect("etcd");
    let dir = tempfile::tempdir().expect("tempdir");
    let env = K8sEnv {
        root: dir.path().to_path_buf(),
        chown: false,
        container: true,
    };
    let mut rt = Runtime::new(st.clone());
    super::start(&mut rt, &env, addresses, None);
    Harness {
        st,
        rt: Some(rt),
        dir,
    }
}

async fn eventually<F: Fn() -> bool>(what: &str, f: F) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting for {what}");
}

fn ids(st: &State, ns: &str, ty: &str) -> Vec<String> {
    st.list(ns, ty)
        .iter()
        .map(|r| r.metadata.id.clone())
        .collect()
}

fn versions(st: &State, ns: &str, ty: &str) -> BTreeMap<String, u64> {
    st.list(ns, ty)
        .iter()
        .map(|r| (r.metadata.id.clone(), r.metadata.version))
        .collect()
}

const DEFAULT_MANIFESTS: &[&str] = &[
    "00-kubelet-bootstrapping-token",
    "01-csr-approver-role-binding",
    "01-csr-node-bootstrap",
    "01-csr-renewal-role-binding",
    "05-flannel",
    "10-kube-proxy",
    "11-core-dns",
    "11-core-dns-svc",
    "11-kube-config-in-cluster",
];

const STATIC_PODS: &[&str] = &[
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

async fn rendered(h: &Harness) {
    let st = h.st.clone();
    eventually("static pods and manifests", || {
        ids(&st, K8S_NAMESPACE, StaticPodSpec::TYPE).len() == 3
            && ids(&st, CONTROL_PLANE_NAMESPACE, ManifestSpec::TYPE).len()
                == DEFAULT_MANIFESTS.len()
            && st.get_typed::<KubeletSpecSpec>(KUBELET_ID).is_ok()
    })
    .await;
}

fn pod(st: &State, id: &str) -> serde_json::Value {
    st.get_typed::<StaticPodSpec>(id).expect("pod").pod
}

fn command(st: &State, id: &str) -> Vec<String> {
    serde_json::from_value(pod(st, id)["spec"]["containers"][0]["command"].clone())
        .expect("command")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_control_plane_renders_as_talos() {
    let h = start(control_plane_config(), true);
    rendered(&h).await;
    let st = &h.st;
    assert_eq!(ids(st, K8S_NAMESPACE, StaticPodSpec::TYPE), STATIC_PODS);
    assert_eq!(
        ids(st, CONTROL_PLANE_NAMESPACE, ManifestSpec::TYPE),
        DEFAULT_MANIFESTS
    );
    let s = "/system/secrets/kubernetes/kube-apiserver";
    let c = "/system/config/kubernetes/kube-apiserver";
    let want: Vec<String> = [
        "/usr/local/bin/kube-apiserver".to_string(),
        format!("--admission-control-config-file={c}/admission-control-config.yaml"),
        "--advertise-address=$(POD_IP)".into(),
        "--allow-privileged=true".into(),
        "--anonymous-auth=false".into(),
        "--api-audiences=https://10.5.0.2:6443".into(),
        "--audit-log-maxage=30".into(),
        "--audit-log-maxbackup=10".into(),
        "--audit-log-maxsize=100".into(),
        "--audit-log-path=/var/log/audit/kube/kube-apiserver.log".into(),
        format!("--audit-policy-file={c}/auditpolicy.yaml"),
        "--authorization-mode=Node,RBAC".into(),
        "--bind-address=0.0.0.0".into(),
        format!("--client-ca-file={s}/ca.crt"),
        "--enable-admission-plugins=NodeRestriction".into(),
        "--enable-bootstrap-token-auth=true".into(),
        format!("--encryption-provider-config={s}/encryptionconfig.yaml"),
        format!("--etcd-cafile={s}/etcd-client-ca.crt"),
        format!("--etcd-certfile={s}/etcd-client.crt"),
        format!("--etcd-keyfile={s}/etcd-client.key"),
        "--etcd-servers=https://localhost:2379".into(),
        format!("--kubelet-client-certificate={s}/apiserver-kubelet-client.crt"),
        format!("--kubelet-client-key={s}/apiserver-kubelet-client.key"),
        "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname".into(),
        "--profiling=false".into(),
        format!("--proxy-client-cert-file={s}/front-proxy-client.crt"),
        format!("--proxy-client-key-file={s}/front-proxy-client.key"),
        "--requestheader-allowed-names=front-proxy-client".into(),
        format!("--requestheader-client-ca-file={s}/aggregator-ca.crt"),
        "--requestheader-extra-headers-prefix=X-Remote-Extra-".into(),
        "--requestheader-group-headers=X-Remote-Group".into(),
        "--requestheader-username-headers=X-Remote-User".into(),
        "--secure-port=6443".into(),
        "--service-account-issuer=https://10.5.0.2:6443".into(),
        format!("--service-account-key-file={s}/service-account.pub"),
        format!("--service-account-signing-key-file={s}/service-account.key"),
        "--service-cluster-ip-range=10.96.0.0/12".into(),
        "--tls-cert-file=/system/secrets/kubernetes/kube-apiserver/apiserver.crt".into(),
        "--tls-cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_RSA_WITH_AES_256_GCM_SHA384,TLS_RSA_WITH_AES_128_GCM_SHA256".into(),
        "--tls-min-version=VersionTLS12".into(),
        format!("--tls-private-key-file={s}/apiserver.key"),
    ]
    .into_iter()
    .collect();
    assert_eq!(command(st, "kube-apiserver"), want);
    let cm = command(st, "kube-controller-manager");
    assert_eq!(
        cm[..3],
        [
            "/usr/local/bin/kube-controller-manager",
            "--use-service-account-credentials",
            "--allocate-node-cidrs=true"
        ]
    );
    assert!(
        cm.contains(&"--controllers=*,tokencleaner".to_string()),
        "{cm:?}"
    );
    assert!(
        cm.contains(&"--cluster-cidr=10.244.0.0/16".to_string()),
        "{cm:?}"
    );
    assert_eq!(
        command(st, "kube-scheduler"),
        [
            "/usr/local/bin/kube-scheduler",
            "--authentication-kubeconfig=/system/secrets/kubernetes/kube-scheduler/kubeconfig",
            "--authentication-tolerate-lookup-failure=false",
            "--authorization-kubeconfig=/system/secrets/kubernetes/kube-scheduler/kubeconfig",
            "--bind-address=127.0.0.1",
            "--config=/system/config/kubernetes/kube-scheduler/scheduler-config.yaml",
            "--leader-elect=true",
            "--profiling=false",
            "--tls-min-version=VersionTLS13",
        ]
    );
    // The resource shows the pod as Talos's does.
    let yaml = st
        .get(K8S_NAMESPACE, StaticPodSpec::TYPE, "kube-apiserver")
        .expect("pod")
        .spec
        .yaml()
        .expect("yaml")
        .to_string();
    assert!(yaml.contains("    priority: 2e+09\n"), "{yaml}");
    assert!(yaml.contains("    creationTimestamp: null\n"), "{yaml}");
    assert!(yaml.ends_with("status: {}\n"), "{yaml}");
    // Secret and config files: 0400.
    for f in [
        "system/secrets/kubernetes/kube-apiserver/apiserver.crt",
        "system/secrets/kubernetes/kube-apiserver/etcd-client.key",
        "system/secrets/kubernetes/kube-apiserver/service-account.pub",
        "system/secrets/kubernetes/kube-apiserver/encryptionconfig.yaml",
        "system/secrets/kubernetes/kube-controller-manager/kubeconfig",
        "system/secrets/kubernetes/kube-scheduler/kubeconfig",
        "system/config/kubernetes/kube-apiserver/auditpolicy.yaml",
        "system/config/kubernetes/kube-scheduler/scheduler-config.yaml",
    ] {
        let m = std::fs::metadata(h.dir.path().join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(m.permissions().mode() & 0o777, 0o400, "{f}");
    }
    let sans: CertSanSpec = st.get_typed(KUBERNETES_ROOT_ID).expect("sans");
    for ip in ["10.5.0.2", "10.96.0.1", "127.0.0.1"] {
        assert!(
            sans.ips.contains(&ip.parse().expect("ip")),
            "{ip} in {:?}",
            sans.ips
        );
    }
    assert!(sans
        .dns_names
        .contains(&"kubernetes.default.svc.cluster.local".to_string()));
    let spec: KubeletSpecSpec = st.get_typed(KUBELET_ID).expect("kubelet spec");
    assert_eq!(
        spec.args,
        [
            "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubeconfig",
            "--cert-dir=/var/lib/kubelet/pki",
            "--config=/etc/kubernetes/kubelet.yaml",
            "--hostname-override=talos-cp-1",
            "--kubeconfig=/etc/kubernetes/kubeconfig-kubelet",
            "--node-ip=10.5.0.2",
        ]
    );
    let status: ManifestStatusSpec = st.get_typed(MANIFESTS_ID).expect("manifest status");
    assert!(
        status.manifests_applied.is_empty(),
        "no API server answers here: {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_static_before_etcd_and_no_control_plane_on_workers() {
    let h = start(control_plane_config(), false);
    let st = h.st.clone();
    eventually("manifests", || {
        ids(&st, CONTROL_PLANE_NAMESPACE, ManifestSpec::TYPE).len() == DEFAULT_MANIFESTS.len()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(ids(&st, K8S_NAMESPACE, StaticPodSpec::TYPE).is_empty());
    crate::init::controllers::publish_service(&st, "etcd", true, true, false).expect("etcd");
    eventually("static pods", || {
        ids(&st, K8S_NAMESPACE, StaticPodSpec::TYPE).len() == 3
    })
    .await;

    let w = start(worker_config(), true);
    let st = w.st.clone();
    eventually("kubelet spec", || {
        st.get_typed::<KubeletSpecSpec>(KUBELET_ID).is_ok()
    })
    .await;
    assert!(ids(&st, K8S_NAMESPACE, StaticPodSpec::TYPE).is_empty());
    assert!(ids(&st, CONTROL_PLANE_NAMESPACE, ManifestSpec::TYPE).is_empty());
    let spec: KubeletSecretsSpec = st.get_typed(KUBELET_SECRETS_ID).expect("kubelet secrets");
    assert_eq!(
        spec.endpoint, "https://127.0.0.1:7445",
        "KubePrism is on in 1.7 configs"
    );
}

/// The static pods' versions once they have not changed for a second.
async fn settled(st: &State) -> BTreeMap<String, u64> {
    let mut last = versions(st, K8S_NAMESPACE, StaticPodSpec::TYPE);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = versions(st, K8S_NAMESPACE, StaticPodSpec::TYPE);
        if now == last {
            return now;
        }
        last = now;
    }
}

fn change(config: &Config, f: impl FnOnce(&mut talos::config::ClusterConfig)) -> Config {
    let mut c = config.clone();
    let cluster = c
        .v1alpha1_mut()
        .and_then(|v| v.cluster.as_mut())
        .expect("cluster");
    f(cluster);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_changes_touch_only_the_affected_resources() {
    let base = control_plane_config();
    let h = start(base.clone(), true);
    rendered(&h).await;
    let st = h.st.clone();
    let pods0 = settled(&st).await;
    let manifests0 = versions(&st, CONTROL_PLANE_NAMESPACE, ManifestSpec::TYPE);

    // An extra arg of the API server: only its pod changes.
    let c1 = change(&base, |c| {
        c.api_server
            .get_or_insert_with(Default::default)
            .extra_args
            .insert("audit-log-batch-max-size".into(), "2".into());
    });
    set_config(&st, c1.clone());
    eventually("apiserver pod", || {
        command(&st, "kube-apiserver").contains(&"--audit-log-batch-max-size=2".to_string())
    })
    .await;
    let pods1 = settled(&st).await;
    assert_eq!(pods1["kube-apiserver"], pods0["kube-apiserver"] + 1);
    assert_eq!(
        pods1["kube-controller-manager"],
        pods0["kube-controller-manager"]
    );
    assert_eq!(pods1["kube-scheduler"], pods0["kube-scheduler"]);
    assert_eq!(
        versions(&st, CONTROL_PLANE_NAMESPACE, ManifestSpec::TYPE),
        manifests0
    );

    // An extra volume of the API server: only its pod changes.
    let c2 = change(&c1, |c| {
        c.api_server
            .get_or_insert_with(Default::default)
            .extra_volumes
            .push(talos::config::VolumeMountConfig {
                host_path: "/var/lib/extra".into(),
                mount_path: "/etc/extra".into(),
                read_only: true,
            });
    });
    set_config(&st, c2.clone());
    eventually("apiserver volume", || {
        pod(&st, "kube-apiserver")["spec"]["volumes"]
            .as_array()
            .is_some_and(|v| v.iter().any(|x| x["name"] == "etc-extra"))
    })
    .await;
    let pods2 = settled(&st).await;
    assert_eq!(pods2["kube-apiserver"], pods1["kube-apiserver"] + 1);
    assert_eq!(pods2["kube-scheduler"], pods1["kube-scheduler"]);
    assert_eq!(
        pods2["kube-controller-manager"],
        pods1["kube-controller-manager"]
    );
    let mounts = &pod(&st, "kube-apiserver")["spec"]["containers"][0]["volumeMounts"];
    assert_eq!(
        mounts[3],
        serde_json::json!({"name": "etc-extra", "mountPath": "/etc/extra", "readOnly": true})
    );

    // A new inline manifest: one new Manifests resource, the others untouched.
    let c3 = change(&c2, |c| {
        c.inline_manifests
            .push(talos::config::ClusterInlineManifest {
                name: "ns".into(),
                contents: "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: extra\n".into(),
            });
    });
    set_config(&st, c3);
    eventually("inline manifest", || {
        ids(&st, CONTROL_PLANE_NAMESPACE, ManifestSpec::TYPE).contains(&"99-ns".to_string())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut manifests3 = versions(&st, CONTROL_PLANE_NAMESPACE, ManifestSpec::TYPE);
    assert_eq!(manifests3.remove("99-ns"), Some(1));
    assert_eq!(manifests3, manifests0);
    assert_eq!(versions(&st, K8S_NAMESPACE, StaticPodSpec::TYPE), pods2);

    // A denied extra arg is refused with Talos's message; the pod stays as it was.
    set_config(
        &st,
        change(&c2, |c| {
            c.api_server
                .get_or_insert_with(Default::default)
                .extra_args
                .insert("etcd-servers".into(), "https://x:2379".into());
        }),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!command(&st, "kube-apiserver")
        .iter()
        .any(|a| a.contains("https://x:2379")));
    let err = talos::k8s::pods::api_server_args(&st.get_typed(APISERVER_ID).expect("config"))
        .expect_err("denied");
    assert_eq!(err.to_string(), "extra arg \"etcd-servers\" is not allowed");
}

/// Every rendered object of a few configs, as files: the static pods as served to the
/// kubelet, every manifest object, the kubelet configuration.
async fn rendered_files(out: &Path) -> Vec<std::path::PathBuf> {
    let base = control_plane_config();
    let variants = [
        ("default", base.clone()),
        (
            "variant",
            change(&base, |c| {
                let a = c.api_server.get_or_insert_with(Default::default);
                a.extra_args
                    .insert("feature-gates".into(), "Foo=true".into());
                a.env
                    .insert("HTTP_PROXY".into(), "http://proxy:3128".into());
                a.resources = Some(talos::config::ResourcesConfig {
                    requests: serde_yaml::from_str("{cpu: 1, memory: 1Gi}").expect("yaml"),
                    limits: serde_yaml::from_str("{memory: 2Gi}").expect("yaml"),
                });
                c.proxy.get_or_insert_with(Default::default).disabled = Some(true);
                c.core_dns.get_or_insert_with(Default::default).disabled = Some(true);
                c.network.get_or_insert_with(Default::default).cni =
                    Some(talos::config::CniConfig {
                        name: "none".into(),
                        ..Default::default()
                    });
            }),
        ),
    ];
    let mut files = Vec::new();
    for (name, config) in variants {
        let h = start(config, true);
        let st = h.st.clone();
        eventually("static pods", || {
            ids(&st, K8S_NAMESPACE, StaticPodSpec::TYPE).len() == 3
        })
        .await;
        eventually("kubelet spec", || {
            st.get_typed::<KubeletSpecSpec>(KUBELET_ID).is_ok()
        })
        .await;
        eventually("manifests", || {
            !ids(&st, CONTROL_PLANE_NAMESPACE, ManifestSpec::TYPE).is_empty()
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let pods: Vec<serde_json::Value> = st
            .list(K8S_NAMESPACE, StaticPodSpec::TYPE)
            .iter()
            .map(|r| r.typed::<StaticPodSpec>().expect("pod").pod)
            .collect();
        let list: serde_json::Value =
            serde_yaml::from_slice(&super::static_pod_server::pod_list(&pods)).expect("pod list");
        for (i, p) in list["items"].as_array().expect("items").iter().enumerate() {
            files.push(write_yaml(out, &format!("{name}-pod-{i}.yaml"), p));
        }
        for r in st.list(CONTROL_PLANE_NAMESPACE, ManifestSpec::TYPE) {
            for (i, obj) in r
                .typed::<ManifestSpec>()
                .expect("manifest")
                .items
                .iter()
                .enumerate()
            {
                files.push(write_yaml(
                    out,
                    &format!("{name}-{}-{i}.yaml", r.metadata.id),
                    obj,
                ));
            }
        }
        let spec: KubeletSpecSpec = st.get_typed(KUBELET_ID).expect("spec");
        let secrets: KubeletSecretsSpec = st.get_typed(KUBELET_SECRETS_ID).expect("secrets");
        for (path, content, _) in super::kubelet::kubelet_files(&spec, &secrets) {
            if path == talos::constants::KUBELET_CONFIG_PATH {
                let p = out.join(format!("{name}-kubelet.yaml"));
                std::fs::write(&p, content).expect("write");
                files.push(p);
            }
        }
    }
    files
}

fn write_yaml(dir: &Path, name: &str, value: &serde_json::Value) -> std::path::PathBuf {
    let path = dir.join(name);
    let y = serde_yaml::to_value(value).expect("yaml");
    std::fs::write(
        &path,
        talos::yaml::emit_kubernetes(&talos::yaml::sort_maps(&y)),
    )
    .expect("write");
    path
}

/// Deserializes an object into its k8s-openapi type and back: nothing may change.
fn round_trips(obj: &serde_json::Value) -> Result<(), String> {
    use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
    use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service, ServiceAccount};
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    fn rt<T: serde::de::DeserializeOwned + serde::Serialize>(
        o: &serde_json::Value,
    ) -> Result<(), String> {
        let typed: T = serde_json::from_value(o.clone()).map_err(|e| e.to_string())?;
        let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
        if back == *o {
            Ok(())
        } else {
            Err(format!("changed:\n{o}\n{back}"))
        }
    }
    match obj["kind"].as_str().unwrap_or_default() {
        "Pod" => rt::<Pod>(obj),
        "DaemonSet" => rt::<DaemonSet>(obj),
        "Deployment" => rt::<Deployment>(obj),
        "Service" => rt::<Service>(obj),
        "ConfigMap" => rt::<ConfigMap>(obj),
        "Secret" => rt::<Secret>(obj),
        "ServiceAccount" => rt::<ServiceAccount>(obj),
        "ClusterRole" => rt::<ClusterRole>(obj),
        "ClusterRoleBinding" => rt::<ClusterRoleBinding>(obj),
        "CustomResourceDefinition" => rt::<CustomResourceDefinition>(obj),
        // No schema for it in k8s-openapi or kubernetes-validate: every field must be a
        // kubelet.config.k8s.io/v1beta1 field.
        "KubeletConfiguration" => match obj.as_object() {
            Some(m) => m
                .keys()
                .find(|k| !talos::k8s::kubelet::V1BETA1_FIELDS.contains(&k.as_str()))
                .map_or(Ok(()), |k| {
                    Err(format!("unknown KubeletConfiguration field {k}"))
                }),
            None => Err("not an object".into()),
        },
        other => Err(format!("no k8s-openapi type checked for {other}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendered_objects_validate_offline_and_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = rendered_files(dir.path()).await;
    assert!(files.len() > 20, "{files:?}");
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        let obj: serde_json::Value = serde_yaml::from_str(&text).expect("parse");
        round_trips(&obj).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
    let tool = std::process::Command::new("kubernetes-validate")
        .args(["-k", "1.30.0", "--strict", "--quiet"])
        .args(&files)
        .output();
    match tool {
        Err(e) => println!("SKIPPED (kubernetes-validate not installed: {e}; ci/setup installs it): offline schema validation"),
        Ok(out) => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "kubernetes-validate failed:\n{stdout}\n{stderr}");
            println!(
                "kubernetes-validate -k 1.30.0 --strict: {} files passed ({} kubelet configs have no schema in the tool)",
                files.len(),
                files.iter().filter(|f| f.to_string_lossy().ends_with("kubelet.yaml")).count()
            );
            // KubeletConfiguration has no schema in the tool (a warning, not a pass): say so.
            for line in stdout.lines().chain(stderr.lines()) {
                assert!(
                    line.contains("KubeletConfiguration") || !line.starts_with("WARN"),
                    "{line}"
                );
            }
        }
    }
}

/// Figures for `ci/bench-k8s` (not run in CI): the time from etcd turning healthy (what
/// `talosctl bootstrap` leads to) to every static pod and manifest present, and the size of
/// the rendered set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a figure for ci/bench-k8s, not a check"]
async fn figures_render_time_and_size() {
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..5 {
        let h = start(control_plane_config(), false);
        let st = h.st.clone();
        // Everything before bootstrap (config, secrets, files, manifests) settles first.
        eventually("secrets rendered", || {
            st.get_typed::<SecretsStatusSpec>(STATIC_PODS_ID).is_ok()
        })
        .await;
        eventually("manifests", || {
            ids(&st, CONTROL_PLANE_NAMESPACE, ManifestSpec::TYPE).len() == DEFAULT_MANIFESTS.len()
        })
        .await;
        let started = std::time::Instant::now();
        crate::init::controllers::publish_service(&st, "etcd", true, true, false).expect("etcd");
        eventually("static pods", || {
            ids(&st, K8S_NAMESPACE, StaticPodSpec::TYPE).len() == 3
        })
        .await;
        times.push(started.elapsed());
        size = [StaticPodSpec::TYPE, ManifestSpec::TYPE]
            .iter()
            .flat_map(|t| {
                let ns = if *t == StaticPodSpec::TYPE {
                    K8S_NAMESPACE
                } else {
                    CONTROL_PLANE_NAMESPACE
                };
                st.list(ns, t)
            })
            .map(|r| r.spec.yaml().map(str::len).unwrap_or(0))
            .sum::<usize>();
    }
    times.sort();
    println!(
        "bootstrap (etcd healthy) -> 3 static pods: median {:?} of 5 (min {:?}, max {:?})",
        times[2], times[0], times[4]
    );
    println!(
        "rendered set (3 static pods + {} manifests, resource YAML): {size} bytes",
        DEFAULT_MANIFESTS.len()
    );
}
