//! The bootstrap manifests a control plane injects into the API server (Talos 1.7's
//! `ManifestController`), rendered from the `BootstrapManifestsConfigs` resource and the root
//! secrets, and the parsing of any manifest text into Kubernetes objects (lists unwrapped,
//! empty documents skipped).

use serde::Deserialize as _;
use serde_json::Value;

use crate::resources::specs::{BootstrapManifestsConfigSpec, KubernetesRootSpec};

/// Why a manifest cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A document is not YAML.
    #[error("error converting manifest to JSON: {0}")]
    Yaml(String),
    /// A document is not a Kubernetes object.
    #[error("error loading JSON manifest into unstructured: {0}")]
    NotAnObject(String),
}

/// One rendered manifest: its id and its objects.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// `00-kubelet-bootstrapping-token`, `05-flannel`, …
    pub id: String,
    /// The Kubernetes objects.
    pub objects: Vec<Value>,
}

fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (key, value) in values {
        out = out.replace(&format!("${{{key}}}"), value);
    }
    out
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// `- "<arg>"` lines at `indent`, each on its own line (appended after the fixed lines).
fn arg_lines(args: &[String], indent: &str) -> String {
    args.iter()
        .map(|a| format!("\n{indent}- {}", json_str(a)))
        .collect()
}

fn core_dns_service(cfg: &BootstrapManifestsConfigSpec) -> String {
    let (v4, v6) = (&cfg.dns_service_ip, &cfg.dns_service_ipv6);
    let mut out = format!(
        "  clusterIP: {}\n  clusterIPs:",
        if v4.is_empty() { v6 } else { v4 }
    );
    for ip in [v4, v6].into_iter().filter(|ip| !ip.is_empty()) {
        out.push_str(&format!("\n    - {ip}"));
    }
    out.push_str("\n  ipFamilies:");
    if !v4.is_empty() {
        out.push_str("\n    - IPv4");
    }
    if !v6.is_empty() {
        out.push_str("\n    - IPv6");
    }
    let policy = if !v4.is_empty() && !v6.is_empty() {
        "RequireDualStack"
    } else {
        "SingleStack"
    };
    out.push_str(&format!("\n  ipFamilyPolicy: {policy}"));
    out
}

fn flannel_net_conf(pod_cidrs: &[String]) -> String {
    let mut lines = Vec::new();
    let mut has_v4 = false;
    for cidr in pod_cidrs {
        if cidr.contains('.') {
            has_v4 = true;
            lines.push(format!("      \"Network\": \"{cidr}\","));
        } else {
            lines.push(format!("      \"IPv6Network\": \"{cidr}\","));
            lines.push("      \"EnableIPv6\": true,".to_string());
        }
    }
    if !has_v4 {
        lines.push("      \"EnableIPv4\": false,".to_string());
    }
    lines.join("\n")
}

fn flannel(cfg: &BootstrapManifestsConfigSpec) -> String {
    let mut env = String::new();
    if !cfg.flannel_kube_service_host.is_empty() {
        env.push_str(&format!(
            "\n        - name: KUBERNETES_SERVICE_HOST\n          value: {}",
            json_str(&cfg.flannel_kube_service_host)
        ));
    }
    if !cfg.flannel_kube_service_port.is_empty() {
        env.push_str(&format!(
            "\n        - name: KUBERNETES_SERVICE_PORT\n          value: {}",
            json_str(&cfg.flannel_kube_service_port)
        ));
    }
    fill(
        include_str!("manifests/flannel.yaml"),
        &[
            ("NET_CONF", &flannel_net_conf(&cfg.pod_cidrs)),
            (
                "EXTRA_ARGS",
                &arg_lines(&cfg.flannel_extra_args, "        "),
            ),
            ("ENV", &env),
            ("IMAGE", &cfg.flannel_image),
            ("CNI_IMAGE", &cfg.flannel_cni_image),
        ],
    )
}

/// The texts of the built-in manifests for `cfg`, by id, in Talos's order.
pub fn texts(
    cfg: &BootstrapManifestsConfigSpec,
    root: &KubernetesRootSpec,
) -> Vec<(&'static str, String)> {
    let mut out = vec![
        (
            "00-kubelet-bootstrapping-token",
            fill(
                include_str!("manifests/kubelet-bootstrapping-token.yaml"),
                &[
                    ("TOKEN_ID", &root.bootstrap_token_id),
                    ("TOKEN_SECRET", &root.bootstrap_token_secret),
                ],
            ),
        ),
        (
            "01-csr-node-bootstrap",
            include_str!("manifests/csr-node-bootstrap.yaml").to_string(),
        ),
        (
            "01-csr-approver-role-binding",
            include_str!("manifests/csr-approver-role-binding.yaml").to_string(),
        ),
        (
            "01-csr-renewal-role-binding",
            include_str!("manifests/csr-renewal-role-binding.yaml").to_string(),
        ),
        (
            "11-kube-config-in-cluster",
            fill(
                include_str!("manifests/kube-config-in-cluster.yaml"),
                &[("SERVER", &cfg.server)],
            ),
        ),
    ];
    if cfg.core_dns_enabled {
        out.push((
            "11-core-dns",
            fill(
                include_str!("manifests/core-dns.yaml"),
                &[
                    ("DOMAIN", &cfg.cluster_domain),
                    ("IMAGE", &cfg.core_dns_image),
                ],
            ),
        ));
        out.push((
            "11-core-dns-svc",
            fill(
                include_str!("manifests/core-dns-svc.yaml"),
                &[("CLUSTER_IPS", &core_dns_service(cfg))],
            ),
        ));
    }
    if cfg.flannel_enabled {
        out.push(("05-flannel", flannel(cfg)));
    }
    if cfg.proxy_enabled {
        out.push((
            "10-kube-proxy",
            fill(
                include_str!("manifests/kube-proxy.yaml"),
                &[
                    ("IMAGE", &cfg.proxy_image),
                    ("ARGS", &arg_lines(&cfg.proxy_args, "        ")),
                ],
            ),
        ));
    }
    if cfg.pod_security_policy_enabled {
        out.push((
            "03-default-pod-security-policy",
            include_str!("manifests/pod-security-policy.yaml").to_string(),
        ));
    }
    if cfg.talos_api_service_enabled {
        out.push((
            "12-talos-api-service",
            include_str!("manifests/talos-api-service.yaml").to_string(),
        ));
        out.push((
            "13-talos-service-account-crd",
            include_str!("manifests/talos-service-account-crd.yaml").to_string(),
        ));
    }
    if !cfg.service_host_dns_address.is_empty() {
        out.push((
            "15-host-dns-service",
            fill(
                include_str!("manifests/host-dns-service.yaml"),
                &[("ADDRESS", &cfg.service_host_dns_address)],
            ),
        ));
    }
    out
}

/// The built-in manifests for `cfg`, parsed.
pub fn render(
    cfg: &BootstrapManifestsConfigSpec,
    root: &KubernetesRootSpec,
) -> Result<Vec<Rendered>, ManifestError> {
    texts(cfg, root)
        .into_iter()
        .map(|(id, text)| {
            Ok(Rendered {
                id: id.to_string(),
                objects: parse(&text)?,
            })
        })
        .collect()
}

/// The Kubernetes objects of a (multi-document) YAML text: empty and comment-only documents
/// are skipped, `*List` objects are unwrapped into their items.
pub fn parse(text: &str) -> Result<Vec<Value>, ManifestError> {
    let mut objects = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        let value = Value::deserialize(document).map_err(|e| ManifestError::Yaml(e.to_string()))?;
        match value {
            Value::Null => {}
            Value::Object(ref m) if m.is_empty() => {}
            Value::Object(m) => {
                let is_list = m
                    .get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.ends_with("List"))
                    && m.get("items").is_some_and(Value::is_array);
                if is_list {
                    if let Some(Value::Array(items)) = m.get("items") {
                        objects.extend(items.iter().cloned());
                    }
                } else {
                    objects.push(Value::Object(m));
                }
            }
            other => {
                return Err(ManifestError::NotAnObject(format!(
                    "expected an object, found {}",
                    kind_of(&other)
                )))
            }
        }
    }
    Ok(objects)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
