//! The v1alpha1 machine config document (`version: v1alpha1`, no `apiVersion`/`kind`).
//!
//! Field order follows Talos's Go structs, so output keys come out in Talos's order; a field is
//! skipped when empty exactly where Talos marks it `omitempty`. Free-form Kubernetes objects
//! (static pods, admission configuration, audit policy, ...) are kept as YAML values, and string
//! maps are written with their keys sorted the way Go writes maps.

mod cluster;
mod install;
mod machine;
mod network;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_yaml::Value;

pub use cluster::*;
pub use install::*;
pub use machine::*;
pub use network::*;

/// A string-keyed map kept in input order (written sorted, as Go does).
pub type StringMap = IndexMap<String, String>;

pub(crate) fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Go's `omitempty` for a free-form object: absent, null, or an empty map.
pub(crate) fn unstructured_is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Mapping(m) => m.is_empty(),
        _ => false,
    }
}

fn ser_values_sorted<S: serde::Serializer>(v: &[Value], s: S) -> Result<S::Ok, S::Error> {
    let sorted: Vec<Value> = v.iter().map(crate::yaml::sort_maps).collect();
    sorted.serialize(s)
}

fn ser_value_sorted<S: serde::Serializer>(v: &Value, s: S) -> Result<S::Ok, S::Error> {
    crate::yaml::serialize_value_sorted(v, s)
}

fn default_version() -> String {
    "v1alpha1".to_string()
}

/// The whole v1alpha1 document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct V1Alpha1Config {
    /// Always `v1alpha1`.
    #[serde(default = "default_version")]
    pub version: String,
    /// Debug logging to the console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug: Option<bool>,
    /// Deprecated; kept for compatibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persist: Option<bool>,
    /// Machine-specific settings (written as `null` when absent).
    #[serde(default)]
    pub machine: Option<MachineConfig>,
    /// Cluster-wide settings (written as `null` when absent).
    #[serde(default)]
    pub cluster: Option<ClusterConfig>,
}

impl Default for V1Alpha1Config {
    fn default() -> Self {
        V1Alpha1Config {
            version: default_version(),
            debug: None,
            persist: None,
            machine: None,
            cluster: None,
        }
    }
}

/// A base64-encoded PEM certificate and private key (`{crt, key}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PemEncodedCertificateAndKey {
    /// base64 of the PEM certificate.
    #[serde(default)]
    pub crt: String,
    /// base64 of the PEM private key (empty on workers).
    #[serde(default)]
    pub key: String,
}

/// A base64-encoded PEM certificate (`{crt}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PemEncodedCertificate {
    /// base64 of the PEM certificate.
    #[serde(default)]
    pub crt: String,
}

/// A base64-encoded PEM private key (`{key}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PemEncodedKey {
    /// base64 of the PEM private key.
    #[serde(default)]
    pub key: String,
}
