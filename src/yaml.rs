//! YAML output in the style Talos writes (Go yaml.v3: 4-space indent, sequences indented under
//! their key, `""` for empty strings, keys in struct order).
//!
//! Placeholder body: the config helper replaces it with the real emitter. The signatures are the
//! contract the other modules use.

use serde::Serialize;

/// Errors while encoding a value as YAML.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    /// The value could not be represented as YAML.
    #[error("cannot encode as YAML: {0}")]
    Encode(String),
}

/// Serializes any value to YAML text in Talos's style.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, YamlError> {
    serde_yaml::to_string(value).map_err(|e| YamlError::Encode(e.to_string()))
}

/// Emits an already-built YAML value tree in Talos's style.
pub fn emit(value: &serde_yaml::Value) -> String {
    serde_yaml::to_string(value).unwrap_or_default()
}
