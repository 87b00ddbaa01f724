//! The files the control-plane static pods read besides certificates: kube-apiserver's
//! admission control configuration, audit policy and encryption configuration, and
//! kube-scheduler's configuration, written as the Kubernetes serializers write them.

use serde_json::{json, Map, Value};

use crate::constants::KUBE_SCHEDULER_SECRETS_DIR;
use crate::resources::specs::{AdmissionPluginSpec, KubernetesRootSpec};

/// Why a config file cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The audit policy is not an object.
    #[error("error unmarshaling audit policy configuration: {0}")]
    AuditPolicy(String),
    /// The scheduler configuration is not an object.
    #[error("error unmarshaling scheduler configuration: {0}")]
    Scheduler(String),
}

fn to_json(value: &serde_yaml::Value) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn yaml_of(value: &Value) -> String {
    let as_yaml = serde_yaml::to_value(value).unwrap_or(serde_yaml::Value::Null);
    crate::yaml::emit_kubernetes(&crate::yaml::sort_maps(&as_yaml))
}

/// `admission-control-config.yaml` (`apiserver.config.k8s.io/v1` `AdmissionConfiguration`).
pub fn admission_control(plugins: &[AdmissionPluginSpec]) -> Value {
    let plugins: Vec<Value> = plugins
        .iter()
        .map(|p| json!({"name": p.name, "path": "", "configuration": to_json(&p.configuration)}))
        .collect();
    json!({
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AdmissionConfiguration",
        "plugins": plugins,
    })
}

/// `auditpolicy.yaml` (`audit.k8s.io/v1` `Policy`).
pub fn audit_policy(policy: &serde_yaml::Value) -> Result<Value, ConfigFileError> {
    let Value::Object(mut obj) = to_json(policy) else {
        return Err(ConfigFileError::AuditPolicy("not an object".into()));
    };
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(m) = meta.as_object_mut() {
        m.entry("creationTimestamp").or_insert(Value::Null);
    }
    obj.entry("rules").or_insert(Value::Null);
    Ok(Value::Object(obj))
}

/// `scheduler-config.yaml` (`kubescheduler.config.k8s.io/v1` `KubeSchedulerConfiguration`):
/// the user's `cluster.scheduler.config` over the serializer's zero values, with Talos's
/// kind, version and kubeconfig.
pub fn scheduler(config: &serde_yaml::Value) -> Result<Value, ConfigFileError> {
    let user = match to_json(config) {
        Value::Null => Map::new(),
        Value::Object(m) => m,
        _ => return Err(ConfigFileError::Scheduler("not an object".into())),
    };
    let mut out = json!({
        "leaderElection": {
            "leaderElect": null, "leaseDuration": "0s", "renewDeadline": "0s",
            "resourceLock": "", "resourceName": "", "resourceNamespace": "", "retryPeriod": "0s",
        },
        "clientConnection": {
            "acceptContentTypes": "", "burst": 0, "contentType": "", "kubeconfig": "", "qps": 0,
        },
    });
    if let Some(o) = out.as_object_mut() {
        for (k, v) in user {
            match (o.get_mut(&k), v) {
                (Some(Value::Object(base)), Value::Object(over)) => {
                    for (k2, v2) in over {
                        base.insert(k2, v2);
                    }
                }
                (_, v) => {
                    o.insert(k, v);
                }
            }
        }
        o.insert("apiVersion".into(), json!("kubescheduler.config.k8s.io/v1"));
        o.insert("kind".into(), json!("KubeSchedulerConfiguration"));
        if let Some(cc) = o.get_mut("clientConnection").and_then(Value::as_object_mut) {
            cc.insert(
                "kubeconfig".into(),
                json!(format!("{KUBE_SCHEDULER_SECRETS_DIR}/kubeconfig")),
            );
        }
    }
    Ok(out)
}

/// A config object as its file content.
pub fn file_content(value: &Value) -> String {
    yaml_of(value)
}

/// `encryptionconfig.yaml`: secretbox and/or aescbc keys, then identity (Talos's template,
/// byte for byte, blank-ish lines included).
pub fn encryption_config(root: &KubernetesRootSpec) -> String {
    let mut out =
        String::from("apiVersion: v1\nkind: EncryptionConfig\nresources:\n- resources:\n  - secrets\n  providers:\n  ");
    if !root.secretbox_encryption_secret.is_empty() {
        out.push_str(&format!(
            "\n  - secretbox:\n      keys:\n      - name: key2\n        secret: {}\n  ",
            root.secretbox_encryption_secret
        ));
    }
    out.push_str("\n  ");
    if !root.aescbc_encryption_secret.is_empty() {
        out.push_str(&format!(
            "\n  - aescbc:\n      keys:\n      - name: key1\n        secret: {}\n  ",
            root.aescbc_encryption_secret
        ));
    }
    out.push_str("\n  - identity: {}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_render_as_kubernetes_writes_them() {
        let policy = audit_policy(&crate::config::kubernetes::default_audit_policy()).unwrap();
        assert_eq!(
            file_content(&policy),
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nmetadata:\n  creationTimestamp: null\nrules:\n- level: Metadata\n"
        );
        let sched = file_content(&scheduler(&serde_yaml::Value::Null).unwrap());
        assert!(
            sched.contains("clientConnection:\n  acceptContentTypes: \"\"\n  burst: 0\n"),
            "{sched}"
        );
        assert!(
            sched.contains("kubeconfig: /system/secrets/kubernetes/kube-scheduler/kubeconfig\n")
        );
        assert!(sched.contains("leaderElection:\n  leaderElect: null\n  leaseDuration: 0s\n"));
        let admission = file_content(&admission_control(&[]));
        assert_eq!(
            admission,
            "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins: []\n"
        );
        let root = KubernetesRootSpec {
            secretbox_encryption_secret: "S".into(),
            ..KubernetesRootSpec::default()
        };
        let text = encryption_config(&root);
        let parsed: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let providers = &parsed["resources"][0]["providers"];
        assert_eq!(
            providers[0]["secretbox"]["keys"][0]["secret"].as_str(),
            Some("S")
        );
        assert!(providers[1]["identity"].is_mapping());
    }
}
