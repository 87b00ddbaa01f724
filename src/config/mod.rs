//! Machine configuration (v1alpha1 and the other 1.7 document kinds).
//!
//! A machine config is a YAML stream of documents: at most one v1alpha1 document (identified by
//! `version: v1alpha1` or its top-level keys) and any number of typed documents identified by
//! `kind`. [`Config`] loads such a stream strictly (unknown keys are errors naming the file,
//! document, key path and what was expected), writes it back in Talos's layout, and validates it.
//! On a node, [`ConfigStore`] is the one place the machine config is accepted (parsed and
//! validated), persisted and loaded.

pub mod comments;
pub mod docs;
pub mod documents;
pub mod generate;
pub mod kubernetes;
pub mod mode;
pub mod patch;
pub mod store;
pub mod types;
pub mod v1alpha1;
pub mod validate;

use serde::de::DeserializeOwned;
use serde_yaml::Value;

pub use documents::{
    EventSinkConfig, ExtensionConfigFile, ExtensionServiceConfig, IngressRule, KmsgLogConfig,
    NetworkDefaultActionConfig, NetworkRuleConfig, RulePortSelector, SideroLinkConfig,
    WatchdogTimerConfig,
};
pub use mode::Mode;
pub use store::{ConfigStore, ConfigStoreError, ValidConfig};
pub use types::{DiskSize, FileMode, PortRange};
pub use v1alpha1::*;
pub use validate::{ValidationError, ValidationErrors, Warning};

/// Errors while loading or encoding a machine config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The input is not valid YAML.
    #[error("{file}: invalid YAML: {message}")]
    Yaml {
        /// Source name (usually the file path).
        file: String,
        /// Parser message, with line and column.
        message: String,
    },
    /// A document is not a mapping, lacks a `kind`, or has a kind Talos 1.7 does not know.
    #[error("{file}: document {index}: {message}")]
    Document {
        /// Source name.
        file: String,
        /// 1-based document number in the stream.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// A key has the wrong type, is unknown, or has an invalid value.
    #[error("{file}: document {index} ({kind}): {path}: {message}")]
    Decode {
        /// Source name.
        file: String,
        /// 1-based document number in the stream.
        index: usize,
        /// Document kind (`v1alpha1` for the legacy document).
        kind: String,
        /// Key path inside the document, e.g. `machine.network.interfaces[0].dhcpp`.
        path: String,
        /// What was found and what was expected.
        message: String,
    },
    /// Two documents collide (two v1alpha1 documents, or the same kind and name twice).
    #[error("{file}: duplicate document: {what}")]
    Duplicate {
        /// Source name.
        file: String,
        /// The duplicated document.
        what: String,
    },
    /// Serializing failed (not expected for well-formed values).
    #[error("cannot encode config: {0}")]
    Encode(String),
}

/// One document of a machine config.
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    /// The legacy `version: v1alpha1` document.
    V1Alpha1(Box<V1Alpha1Config>),
    /// `SideroLinkConfig`.
    SideroLink(SideroLinkConfig),
    /// `ExtensionServiceConfig`.
    ExtensionService(ExtensionServiceConfig),
    /// `WatchdogTimerConfig`.
    WatchdogTimer(WatchdogTimerConfig),
    /// `KmsgLogConfig`.
    KmsgLog(KmsgLogConfig),
    /// `EventSinkConfig`.
    EventSink(EventSinkConfig),
    /// `NetworkDefaultActionConfig`.
    NetworkDefaultAction(NetworkDefaultActionConfig),
    /// `NetworkRuleConfig`.
    NetworkRule(NetworkRuleConfig),
}

/// The document kinds (besides v1alpha1) known to Talos 1.7.
pub const KNOWN_KINDS: &[&str] = &[
    "SideroLinkConfig",
    "ExtensionServiceConfig",
    "WatchdogTimerConfig",
    "KmsgLogConfig",
    "EventSinkConfig",
    "NetworkDefaultActionConfig",
    "NetworkRuleConfig",
];

impl Document {
    /// The kind: `v1alpha1` for the legacy document, else the `kind` field.
    pub fn kind(&self) -> &str {
        match self {
            Document::V1Alpha1(_) => "v1alpha1",
            Document::SideroLink(d) => &d.kind,
            Document::ExtensionService(d) => &d.kind,
            Document::WatchdogTimer(d) => &d.kind,
            Document::KmsgLog(d) => &d.kind,
            Document::EventSink(d) => &d.kind,
            Document::NetworkDefaultAction(d) => &d.kind,
            Document::NetworkRule(d) => &d.kind,
        }
    }

    /// The name of a named document (ExtensionServiceConfig, KmsgLogConfig, NetworkRuleConfig).
    pub fn name(&self) -> Option<&str> {
        match self {
            Document::ExtensionService(d) => Some(&d.name),
            Document::KmsgLog(d) => Some(&d.name),
            Document::NetworkRule(d) => Some(&d.name),
            _ => None,
        }
    }

    /// The document as a YAML value tree, keys in Talos's order.
    pub fn to_value(&self) -> Result<Value, ConfigError> {
        let v = match self {
            Document::V1Alpha1(d) => serde_yaml::to_value(d),
            Document::SideroLink(d) => serde_yaml::to_value(d),
            Document::ExtensionService(d) => serde_yaml::to_value(d),
            Document::WatchdogTimer(d) => serde_yaml::to_value(d),
            Document::KmsgLog(d) => serde_yaml::to_value(d),
            Document::EventSink(d) => serde_yaml::to_value(d),
            Document::NetworkDefaultAction(d) => serde_yaml::to_value(d),
            Document::NetworkRule(d) => serde_yaml::to_value(d),
        };
        v.map_err(|e| ConfigError::Encode(e.to_string()))
    }
}

/// A machine config: an ordered list of documents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    documents: Vec<Document>,
}

impl Config {
    /// Builds a config from documents, checking for duplicates.
    pub fn new(documents: Vec<Document>) -> Result<Config, ConfigError> {
        check_duplicates(&documents, "<memory>")?;
        Ok(Config { documents })
    }

    /// Loads a YAML stream (documents separated by `---`). `source` names the input in errors.
    pub fn from_yaml(bytes: &[u8], source: &str) -> Result<Config, ConfigError> {
        use serde::Deserialize;
        let mut values = Vec::new();
        for doc in serde_yaml::Deserializer::from_slice(bytes) {
            let value = Value::deserialize(doc).map_err(|e| ConfigError::Yaml {
                file: source.to_string(),
                message: e.to_string(),
            })?;
            values.push(value);
        }
        Config::from_values(values, source)
    }

    /// Loads already-parsed documents (e.g. the output of a patch). Null documents are skipped.
    pub fn from_values(values: Vec<Value>, source: &str) -> Result<Config, ConfigError> {
        let mut documents = Vec::new();
        for (i, value) in values.into_iter().enumerate() {
            let index = i + 1;
            if value.is_null() {
                continue;
            }
            documents.push(decode_document(value, source, index)?);
        }
        check_duplicates(&documents, source)?;
        Ok(Config { documents })
    }

    /// All documents, in order.
    pub fn documents(&self) -> &[Document] {
        &self.documents
    }

    /// Mutable access to the documents.
    pub fn documents_mut(&mut self) -> &mut Vec<Document> {
        &mut self.documents
    }

    /// The v1alpha1 document, if any.
    pub fn v1alpha1(&self) -> Option<&V1Alpha1Config> {
        self.documents.iter().find_map(|d| match d {
            Document::V1Alpha1(c) => Some(c.as_ref()),
            _ => None,
        })
    }

    /// Mutable access to the v1alpha1 document, if any.
    pub fn v1alpha1_mut(&mut self) -> Option<&mut V1Alpha1Config> {
        self.documents.iter_mut().find_map(|d| match d {
            Document::V1Alpha1(c) => Some(c.as_mut()),
            _ => None,
        })
    }

    /// The documents as YAML value trees.
    pub fn to_values(&self) -> Result<Vec<Value>, ConfigError> {
        self.documents.iter().map(Document::to_value).collect()
    }

    /// Writes the config in Talos's layout, documents separated by `---`.
    pub fn to_yaml(&self) -> Result<String, ConfigError> {
        let parts: Vec<String> = self.to_values()?.iter().map(crate::yaml::emit).collect();
        Ok(parts.join("---\n"))
    }
}

fn check_duplicates(documents: &[Document], source: &str) -> Result<(), ConfigError> {
    let mut seen: Vec<(String, Option<String>)> = Vec::new();
    for d in documents {
        let key = (d.kind().to_string(), d.name().map(str::to_string));
        if seen.contains(&key) {
            let what = match &key.1 {
                Some(name) => format!("{} {name:?}", key.0),
                None => key.0.clone(),
            };
            return Err(ConfigError::Duplicate {
                file: source.to_string(),
                what,
            });
        }
        seen.push(key);
    }
    Ok(())
}

fn decode_document(value: Value, source: &str, index: usize) -> Result<Document, ConfigError> {
    let doc_err = |message: String| ConfigError::Document {
        file: source.to_string(),
        index,
        message,
    };
    let Some(map) = value.as_mapping() else {
        return Err(doc_err(format!(
            "expected a mapping, found {}",
            value_kind(&value)
        )));
    };
    let get_str = |key: &str| -> Result<Option<String>, ConfigError> {
        match map.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(doc_err(format!(
                "{key}: expected a string, found {}",
                value_kind(other)
            ))),
        }
    };
    let kind = get_str("kind")?;
    let api_version = get_str("apiVersion")?;
    let legacy_keys = ["machine", "cluster", "debug", "persist"]
        .iter()
        .any(|k| map.contains_key(*k));
    let version = get_str("version").ok().flatten();

    let Some(kind) = kind else {
        if legacy_keys || version.as_deref() == Some("v1alpha1") {
            if let Some(v) = &version {
                if v != "v1alpha1" {
                    return Err(doc_err(format!(
                        "unsupported config version {v:?} (expected \"v1alpha1\")"
                    )));
                }
            }
            let cfg: V1Alpha1Config = typed(value, source, index, "v1alpha1")?;
            return Ok(Document::V1Alpha1(Box::new(cfg)));
        }
        return Err(doc_err("missing kind".to_string()));
    };
    if let Some(v) = &api_version {
        if v != "v1alpha1" {
            return Err(doc_err(format!(
                "{kind}: unsupported apiVersion {v:?} (expected \"v1alpha1\")"
            )));
        }
    }
    let k = kind.as_str();
    Ok(match k {
        "SideroLinkConfig" => Document::SideroLink(typed(value, source, index, k)?),
        "ExtensionServiceConfig" => Document::ExtensionService(typed(value, source, index, k)?),
        "WatchdogTimerConfig" => Document::WatchdogTimer(typed(value, source, index, k)?),
        "KmsgLogConfig" => Document::KmsgLog(typed(value, source, index, k)?),
        "EventSinkConfig" => Document::EventSink(typed(value, source, index, k)?),
        "NetworkDefaultActionConfig" => {
            Document::NetworkDefaultAction(typed(value, source, index, k)?)
        }
        "NetworkRuleConfig" => Document::NetworkRule(typed(value, source, index, k)?),
        other => {
            return Err(doc_err(format!(
                "unknown document kind {other:?} (known kinds: v1alpha1, {})",
                KNOWN_KINDS.join(", ")
            )))
        }
    })
}

fn typed<T: DeserializeOwned>(
    value: Value,
    source: &str,
    index: usize,
    kind: &str,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut path = e.path().to_string();
        let message = e.inner().to_string();
        // For an unknown key, point at the key itself rather than at its parent.
        if let Some(rest) = message.strip_prefix("unknown field `") {
            let field = rest.split('`').next().unwrap_or_default();
            let already = path == field || path.ends_with(&format!(".{field}"));
            if !field.is_empty() && !already {
                path = if path == "." || path.is_empty() {
                    field.to_string()
                } else {
                    format!("{path}.{field}")
                };
            }
        }
        if path.is_empty() {
            path = ".".to_string();
        }
        ConfigError::Decode {
            file: source.to_string(),
            index,
            kind: kind.to_string(),
            path,
            message,
        }
    })
}

fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a sequence",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}
