//! Machine-config patches: loading (`@file` or inline, format auto-detected) and applying them to
//! a set of config documents, with the semantics of Talos 1.7's `configpatcher` and `merge`
//! packages.
//!
//! Two kinds of patch exist:
//! - a **strategic merge** patch is itself a (partial) config document set; every patch document
//!   is merged into the config document with the same identity (apiVersion, kind, name), or
//!   appended when there is none. See [`strategic`] for the merge rules.
//! - an **RFC 6902 JSON patch**, written as JSON or as a YAML list of operations; it only works on
//!   a config made of a single document.
//!
//! The patcher works on the YAML value tree (`serde_yaml::Value`) rather than on the typed
//! config model: the merge rules that depend on Go types (`merge:"replace"` fields, keyed lists,
//! URLs merged part by part) are encoded as path rules in [`strategic`].
//!
//! Talos 1.7 has no `$patch: delete` directive: a `$patch` key is an unknown key there, and
//! loading such a patch fails with the strict decoder's "unknown keys" error. This module does
//! the same.

mod document;
mod json6902;
mod strategic;
mod url;

use std::path::PathBuf;

use serde::Deserialize;
use serde_yaml::Value;

pub use document::{DocumentError, DocumentId};

/// One loaded config patch.
#[derive(Debug, Clone, PartialEq)]
pub enum Patch {
    /// A strategic merge patch: partial config documents.
    StrategicMerge(Vec<Value>),
    /// An RFC 6902 JSON patch: its operations, kept as raw JSON objects until the patch is
    /// applied (as Talos does, an unknown operation is an error at apply time, not at load time).
    Json6902(Vec<serde_json::Value>),
}

/// Errors while loading or applying config patches.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// A `@file` patch could not be read.
    #[error("cannot read patch file {path}")]
    ReadFile {
        /// The file named after `@`.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The patch is neither a config document set nor a JSON patch; the config decoder's
    /// complaint is the most useful one (Talos reports the same).
    #[error("patch is not a valid strategic merge patch (config documents)")]
    Strategic(#[source] DocumentError),
    /// The patch looks like a JSON patch (starts with `[`) but does not decode as one.
    #[error("patch is not a valid JSON patch")]
    JsonPatchDecode(#[source] serde_json::Error),
    /// A YAML JSON-patch operation has a value that cannot be represented as JSON.
    #[error("JSON patch operation {index} cannot be converted to JSON: {reason}")]
    JsonPatchValue {
        /// Index of the operation in the patch.
        index: usize,
        /// What went wrong.
        reason: String,
    },
    /// The machine config being patched is not a valid config document set.
    #[error("machine config is invalid")]
    Config(#[source] DocumentError),
    /// JSON 6902 patches need exactly one config document.
    #[error("JSON6902 patches are not supported for multi-document machine configuration")]
    Json6902MultiDoc,
    /// The JSON 6902 patch has a malformed operation.
    #[error("failure applying rfc6902 patches to talos machine config: invalid operation: {0}")]
    Json6902Operation(String),
    /// Applying the JSON 6902 patch failed (test failed, path missing, ...).
    #[error("failure applying rfc6902 patches to talos machine config: {0}")]
    Json6902Apply(String),
    /// The config could not be converted between YAML and JSON.
    #[error("failure converting talos machine config {direction}: {reason}")]
    JsonConversion {
        /// "to json" or "from json".
        direction: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The strategic merge met two values of incompatible kinds at the same key.
    #[error("merge type mismatch at {path}: left is {left}, right is {right}")]
    MergeTypeMismatch {
        /// Dotted path of the key (`machine.network.interfaces[]`).
        path: String,
        /// Kind of the config's value.
        left: &'static str,
        /// Kind of the patch's value.
        right: &'static str,
    },
    /// After merging, two documents have the same identity.
    #[error("duplicate document: {0}")]
    DuplicateDocument(String),
}

/// Loads one patch from its text, detecting the format as Talos does: a config document set
/// (strategic merge), else a JSON patch in JSON, else a JSON patch as a YAML list of operations.
pub fn load_patch(text: &str) -> Result<Patch, PatchError> {
    let strategic_err = match document::parse_config(text) {
        Ok(docs) => return Ok(Patch::StrategicMerge(docs)),
        Err(e) => e,
    };

    let json_err =
        match serde_json::from_str::<Vec<serde_json::Map<String, serde_json::Value>>>(text) {
            Ok(ops) => {
                return Ok(Patch::Json6902(
                    ops.into_iter().map(serde_json::Value::Object).collect(),
                ))
            }
            Err(e) => e,
        };

    match yaml_operations(text) {
        Ok(ops) => Ok(Patch::Json6902(ops)),
        Err(YamlOpsError::NotYaml) => {
            if text.trim_start().starts_with('[') {
                Err(PatchError::JsonPatchDecode(json_err))
            } else {
                Err(PatchError::Strategic(strategic_err))
            }
        }
        Err(YamlOpsError::Value { index, reason }) => {
            Err(PatchError::JsonPatchValue { index, reason })
        }
    }
}

enum YamlOpsError {
    NotYaml,
    Value { index: usize, reason: String },
}

/// Decodes the first YAML document as a list of mappings (JSON patch operations); an empty
/// input is an empty list, as with Go's yaml.Unmarshal.
fn yaml_operations(text: &str) -> Result<Vec<serde_json::Value>, YamlOpsError> {
    let first = match serde_yaml::Deserializer::from_str(text).next() {
        None => return Ok(Vec::new()),
        Some(doc) => Value::deserialize(doc).map_err(|_| YamlOpsError::NotYaml)?,
    };
    let items = match first {
        Value::Null => return Ok(Vec::new()),
        Value::Sequence(items) => items,
        _ => return Err(YamlOpsError::NotYaml),
    };
    let mut ops = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        match item {
            Value::Mapping(_) | Value::Null => {}
            _ => return Err(YamlOpsError::NotYaml),
        }
        let json = json6902::yaml_to_json(&item)
            .map_err(|reason| YamlOpsError::Value { index, reason })?;
        let json = match json {
            serde_json::Value::Null => serde_json::Value::Object(serde_json::Map::new()),
            other => other,
        };
        ops.push(json);
    }
    Ok(ops)
}

/// Loads patches given as on the talosctl command line: `@path` reads the file, anything else
/// is the patch itself. Consecutive JSON patches are merged into one, as Talos does.
pub fn load_patches<S: AsRef<str>>(args: &[S]) -> Result<Vec<Patch>, PatchError> {
    let mut result: Vec<Patch> = Vec::new();
    for arg in args {
        let arg = arg.as_ref();
        let patch = match arg.strip_prefix('@') {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| PatchError::ReadFile {
                        path: PathBuf::from(path),
                        source,
                    })?;
                load_patch(&text)?
            }
            None => load_patch(arg)?,
        };
        match (result.last_mut(), patch) {
            (Some(Patch::Json6902(prev)), Patch::Json6902(ops)) => prev.extend(ops),
            (_, patch) => result.push(patch),
        }
    }
    Ok(result)
}

/// Parses a machine config (one or more YAML documents) into its document values. Empty
/// documents are skipped. Only YAML syntax is checked here; [`apply`] checks the documents.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, PatchError> {
    document::parse_values(text).map_err(PatchError::Config)
}

/// Renders documents as a multi-document YAML stream in Talos's style.
pub fn render_documents(docs: &[Value]) -> String {
    let mut out = String::new();
    for doc in docs {
        if !out.is_empty() {
            out.push_str("---\n");
        }
        out.push_str(&crate::yaml::emit(doc));
    }
    out
}

/// Applies the patches in order to the config documents.
pub fn apply(mut docs: Vec<Value>, patches: &[Patch]) -> Result<Vec<Value>, PatchError> {
    for patch in patches {
        docs = match patch {
            Patch::StrategicMerge(patch_docs) => strategic::merge_documents(docs, patch_docs)?,
            Patch::Json6902(ops) => json6902::apply(docs, ops)?,
        };
    }
    Ok(docs)
}

/// Patches a machine config given as text and returns the patched config as text. With no
/// patches the input is returned unchanged, byte for byte (as `talosctl machineconfig patch`).
pub fn apply_to_text(config: &str, patches: &[Patch]) -> Result<String, PatchError> {
    if patches.is_empty() {
        return Ok(config.to_string());
    }
    let docs = parse_documents(config)?;
    let docs = apply(docs, patches)?;
    Ok(render_documents(&docs))
}

#[cfg(test)]
mod tests;
