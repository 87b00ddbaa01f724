//! YAML output in the style Talos writes (Go `gopkg.in/yaml.v3` as used by Talos's encoder).
//!
//! The layout rules reproduced here:
//! - 4-space indentation; block sequences are indented one step under their key (`    - item`);
//!   a mapping inside a sequence item continues at the item's content column (`- a: 1` / `  b: 2`),
//!   and anything nested deeper aligns to the next multiple of 4.
//! - Empty mappings and sequences are written in flow style: `{}` and `[]`; nulls as `null`.
//! - Strings are plain when they would read back as strings, double-quoted when they would read back
//!   as something else (`""`, `"true"`, `"123"`, `"1.5"`, `"null"`, `"yes"`, timestamps, ...),
//!   single-quoted when plain is not allowed by the syntax (leading indicators, `: `, ` #`, ...),
//!   and multi-line strings are literal blocks (`|`, `|-`, `|+`).
//! - Plain, single- and double-quoted scalars are folded at spaces once a line passes 80 columns.
//! - Mapping keys are written in the order of the value tree (insertion order); the typed config
//!   model sorts free-form maps itself with [`go_key_less`] to match Go's map ordering.
//!
//! The module is split along its seams: `order` sorts map keys the Go way, `resolve` decides
//! how a scalar must be written to read back as itself, and `emitter` lays out the text.

mod emitter;
mod order;
mod resolve;

use serde::Serialize;
use serde_yaml::Value;

pub use emitter::{emit, emit_kubernetes};
pub use order::{go_key_cmp, go_key_less, serialize_sorted, serialize_value_sorted, sort_maps};

/// The tag that makes [`emit`] write a string as a plain (unquoted) scalar whatever it looks like,
/// for values Talos writes bare that would otherwise be quoted (file modes such as `0o644`,
/// resource timestamps).
pub const PLAIN_TAG: &str = "talos-plain-scalar";

/// Errors while encoding a value as YAML.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    /// The value could not be represented as YAML.
    #[error("cannot encode as YAML: {0}")]
    Encode(String),
}

/// Serializes any value to YAML text in Talos's style.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, YamlError> {
    let tree = serde_yaml::to_value(value).map_err(|e| YamlError::Encode(e.to_string()))?;
    Ok(emit(&tree))
}

/// Serializes any value to YAML text as Kubernetes tools write it (`sigs.k8s.io/yaml`: keys
/// sorted, 2-space indentation).
pub fn to_kubernetes_string<T: Serialize + ?Sized>(value: &T) -> Result<String, YamlError> {
    let tree = serde_yaml::to_value(value).map_err(|e| YamlError::Encode(e.to_string()))?;
    Ok(emit_kubernetes(&sort_maps(&tree)))
}

/// `text` tagged with [`PLAIN_TAG`]: [`emit`] writes it as a plain scalar.
pub fn plain(text: impl Into<String>) -> Value {
    Value::Tagged(Box::new(serde_yaml::value::TaggedValue {
        tag: serde_yaml::value::Tag::new(PLAIN_TAG),
        value: Value::String(text.into()),
    }))
}
