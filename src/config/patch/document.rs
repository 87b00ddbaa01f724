//! Config document identity and the decoder checks the patcher needs: which kind a document is
//! (the legacy v1alpha1 document or an `apiVersion`/`kind` one), its name for named kinds, and
//! unknown keys.
//!
//! The full strict decoding of v1alpha1 belongs to the typed config model; here the v1alpha1
//! document gets its top-level keys checked and any `$`-prefixed key (never a Talos field name,
//! e.g. the `$patch` directive 1.7 does not support) outside free-form maps is reported as an
//! unknown key. The small kinds are checked key by key.

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

/// Errors about the documents of a config or a strategic merge patch.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The text is not valid YAML.
    #[error("decode error")]
    Yaml(#[source] serde_yaml::Error),
    /// No document at all.
    #[error("config not found")]
    NoConfig,
    /// A document is not a YAML mapping.
    #[error("document {index}: expected a mapping")]
    NotAMapping {
        /// Zero-based index of the document.
        index: usize,
    },
    /// A document has no `kind` and is not the legacy v1alpha1 document.
    #[error("document {index}: missing kind")]
    MissingKind {
        /// Zero-based index of the document.
        index: usize,
    },
    /// The document kind/version is not one Talos 1.7 knows.
    #[error("{kind:?} {version:?}: not registered")]
    UnknownKind {
        /// The `kind` value.
        kind: String,
        /// The `apiVersion` value.
        version: String,
    },
    /// A key that is not a string where one is needed (`kind`, `apiVersion`, `name`).
    #[error("document {index}: {key} must be a string")]
    NotAString {
        /// Zero-based index of the document.
        index: usize,
        /// The key.
        key: &'static str,
    },
    /// The document has keys its kind does not define.
    #[error("unknown keys found during decoding:\n{0}")]
    UnknownKeys(String),
    /// Two documents have the same identity.
    #[error("duplicate document: {0}")]
    Duplicate(String),
}

/// The identity of a config document: documents with the same identity are merged together by
/// a strategic merge patch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DocumentId {
    /// The legacy v1alpha1 document (`version: v1alpha1`, `machine`, `cluster`, ...).
    V1Alpha1,
    /// A document with `apiVersion` and `kind`; `name` for the named kinds.
    Typed {
        /// The `apiVersion` value.
        api_version: String,
        /// The `kind` value.
        kind: String,
        /// The `name` value of named kinds (ExtensionServiceConfig, KmsgLogConfig,
        /// NetworkRuleConfig).
        name: Option<String>,
    },
}

impl DocumentId {
    /// The kind name used by the merge rules (`v1alpha1` for the legacy document).
    pub fn kind(&self) -> &str {
        match self {
            DocumentId::V1Alpha1 => "v1alpha1",
            DocumentId::Typed { kind, .. } => kind,
        }
    }
}

impl std::fmt::Display for DocumentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DocumentId::V1Alpha1 => f.write_str("v1alpha1.Config"),
            DocumentId::Typed { kind, name, .. } => {
                write!(f, "{kind}/{}", name.as_deref().unwrap_or(""))
            }
        }
    }
}

/// Key shapes of the document kinds, for the unknown-key check.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// Anything goes (scalars, free-form maps).
    Any,
    /// A struct with exactly these keys.
    Struct(&'static [(&'static str, Shape)]),
    /// A list of values of this shape.
    List(&'static Shape),
    /// The v1alpha1 `machine`/`cluster` trees: only `$` keys are rejected.
    V1Alpha1Tree,
}

/// The document kinds registered in Talos 1.7 (besides v1alpha1), all at version v1alpha1.
const KINDS: &[(&str, bool, Shape)] = &[
    (
        "SideroLinkConfig",
        false,
        Shape::Struct(&[
            ("apiVersion", Shape::Any),
            ("kind", Shape::Any),
            ("apiUrl", Shape::Any),
        ]),
    ),
    (
        "ExtensionServiceConfig",
        true,
        Shape::Struct(&[
            ("apiVersion", Shape::Any),
            ("kind", Shape::Any),
            ("name", Shape::Any),
            (
                "configFiles",
                Shape::List(&Shape::Struct(&[
                    ("content", Shape::Any),
                    ("mountPath", Shape::Any),
                ])),
            ),
            ("environment", Shape::Any),
        ]),
    ),
    (
        "EventSinkConfig",
        false,
        Shape::Struct(&[
            ("apiVersion", Shape::Any),
            ("kind", Shape::Any),
            ("endpoint", Shape::Any),
        ]),
    ),
    (
        "KmsgLogConfig",
        true,
        Shape::Struct(&[
            ("apiVersion", Shape::Any),
            ("kind", Shape::Any),
            ("name", Shape::Any),
            ("url", Shape::Any),
        ]),
    ),
    (
        "WatchdogTimerConfig",
        false,
        Shape::Struct(&[
            ("apiVersion", Shape::Any),
            ("kind", Shape::Any),
            ("device", Shape::Any),
            ("timeout", Shape::Any),
        ]),
    ),
    (
        "NetworkDefaultActionConfig",
        false,
        Shape::Struct(&[
            ("apiVersion", Shape::Any),
            ("kind", Shape::Any),
            ("ingress", Shape::Any),
        ]),
    ),
    (
        "NetworkRuleConfig",
        true,
        Shape::Struct(&[
            ("apiVersion", Shape::Any),
            ("kind", Shape::Any),
            ("name", Shape::Any),
            (
                "portSelector",
                Shape::Struct(&[("ports", Shape::Any), ("protocol", Shape::Any)]),
            ),
            (
                "ingress",
                Shape::List(&Shape::Struct(&[
                    ("subnet", Shape::Any),
                    ("except", Shape::Any),
                ])),
            ),
        ]),
    ),
];

const V1ALPHA1: Shape = Shape::Struct(&[
    ("version", Shape::Any),
    ("debug", Shape::Any),
    ("persist", Shape::Any),
    ("machine", Shape::V1Alpha1Tree),
    ("cluster", Shape::V1Alpha1Tree),
]);

/// v1alpha1 keys whose values are free-form maps (`map[string]...` or `Unstructured` in Talos):
/// any key is valid below them.
const FREE_FORM_KEYS: &[&str] = &[
    "pods",
    "sysctls",
    "sysfs",
    "nodeLabels",
    "nodeTaints",
    "value",
    "extraManifestHeaders",
    "extraArgs",
    "extraConfig",
    "credentialProviderConfig",
    "mirrors",
    "config",
    "auditPolicy",
    "configuration",
    "requests",
    "limits",
    "extraTags",
];

/// Keys that mark the legacy v1alpha1 document.
const V1ALPHA1_KEYS: &[&str] = &["machine", "cluster", "debug", "persist"];

/// Parses YAML text into its non-empty documents.
pub(crate) fn parse_values(text: &str) -> Result<Vec<Value>, DocumentError> {
    let mut docs = Vec::new();
    for de in serde_yaml::Deserializer::from_str(text) {
        let value = Value::deserialize(de).map_err(DocumentError::Yaml)?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// Parses text as a config document set, as Talos's config loader does: at least one
/// document, each of a known kind without unknown keys, no duplicates.
pub(crate) fn parse_config(text: &str) -> Result<Vec<Value>, DocumentError> {
    let docs = parse_values(text)?;
    if docs.is_empty() {
        return Err(DocumentError::NoConfig);
    }
    check_documents(&docs)?;
    Ok(docs)
}

/// Checks every document (kind, keys) and that no two have the same identity; returns the
/// identities.
pub(crate) fn check_documents(docs: &[Value]) -> Result<Vec<DocumentId>, DocumentError> {
    let mut ids: Vec<DocumentId> = Vec::with_capacity(docs.len());
    for (index, doc) in docs.iter().enumerate() {
        let id = identify(index, doc)?;
        check_keys(&id, doc)?;
        if ids.iter().any(|seen| same_slot(seen, &id)) {
            return Err(DocumentError::Duplicate(id.to_string()));
        }
        ids.push(id);
    }
    Ok(ids)
}

/// Talos's container keys non-v1alpha1 documents by kind and name only (not apiVersion).
fn same_slot(a: &DocumentId, b: &DocumentId) -> bool {
    match (a, b) {
        (DocumentId::V1Alpha1, DocumentId::V1Alpha1) => true,
        (
            DocumentId::Typed {
                kind: ka, name: na, ..
            },
            DocumentId::Typed {
                kind: kb, name: nb, ..
            },
        ) => ka == kb && na.as_deref().unwrap_or("") == nb.as_deref().unwrap_or(""),
        _ => false,
    }
}

fn string_at(
    index: usize,
    map: &Mapping,
    key: &'static str,
) -> Result<Option<String>, DocumentError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(DocumentError::NotAString { index, key }),
    }
}

/// Works out the identity of document `index`, following the order of keys like Talos's
/// decoder (a later `apiVersion` overrides the version implied by `machine`/`cluster`/...).
pub(crate) fn identify(index: usize, doc: &Value) -> Result<DocumentId, DocumentError> {
    let Value::Mapping(map) = doc else {
        return Err(DocumentError::NotAMapping { index });
    };
    let mut version = String::new();
    let mut kind = String::new();
    for (key, _) in map {
        let Some(key) = key.as_str() else { continue };
        match key {
            "kind" => kind = string_at(index, map, "kind")?.unwrap_or_default(),
            "apiVersion" => version = string_at(index, map, "apiVersion")?.unwrap_or_default(),
            k if V1ALPHA1_KEYS.contains(&k) => version = "v1alpha1".to_string(),
            _ => {}
        }
    }
    if version == "v1alpha1" && kind.is_empty() {
        return Ok(DocumentId::V1Alpha1);
    }
    if kind.is_empty() {
        return Err(DocumentError::MissingKind { index });
    }
    let Some((_, named, _)) = KINDS.iter().find(|(k, _, _)| *k == kind) else {
        return Err(DocumentError::UnknownKind { kind, version });
    };
    if version != "v1alpha1" {
        return Err(DocumentError::UnknownKind { kind, version });
    }
    let name = if *named {
        Some(string_at(index, map, "name")?.unwrap_or_default())
    } else {
        None
    };
    Ok(DocumentId::Typed {
        api_version: version,
        kind,
        name,
    })
}

fn check_keys(id: &DocumentId, doc: &Value) -> Result<(), DocumentError> {
    let shape = match id {
        DocumentId::V1Alpha1 => &V1ALPHA1,
        DocumentId::Typed { kind, .. } => match KINDS.iter().find(|(k, _, _)| k == kind) {
            Some((_, _, shape)) => shape,
            None => return Ok(()),
        },
    };
    match unknown_keys(shape, doc) {
        None => Ok(()),
        Some(unknown) => Err(DocumentError::UnknownKeys(crate::yaml::emit(&unknown))),
    }
}

/// Returns the tree of unknown keys (with their values) below `value`, or `None`.
fn unknown_keys(shape: &Shape, value: &Value) -> Option<Value> {
    match (shape, value) {
        (Shape::Any, _) => None,
        (Shape::Struct(fields), Value::Mapping(map)) => {
            let mut unknown = Mapping::new();
            for (key, val) in map {
                let field = key
                    .as_str()
                    .and_then(|k| fields.iter().find(|(name, _)| *name == k));
                match field {
                    None => {
                        unknown.insert(key.clone(), val.clone());
                    }
                    Some((_, inner)) => {
                        if let Some(u) = unknown_keys(inner, val) {
                            unknown.insert(key.clone(), u);
                        }
                    }
                }
            }
            (!unknown.is_empty()).then_some(Value::Mapping(unknown))
        }
        (Shape::List(inner), Value::Sequence(items)) => {
            let unknown: Vec<Value> = items
                .iter()
                .filter_map(|item| unknown_keys(inner, item))
                .collect();
            (!unknown.is_empty()).then_some(Value::Sequence(unknown))
        }
        (Shape::V1Alpha1Tree, Value::Mapping(map)) => {
            let mut unknown = Mapping::new();
            for (key, val) in map {
                let name = key.as_str().unwrap_or("");
                if name.starts_with('$') {
                    unknown.insert(key.clone(), val.clone());
                } else if FREE_FORM_KEYS.contains(&name) {
                    continue;
                } else if let Some(u) = unknown_keys(&Shape::V1Alpha1Tree, val) {
                    unknown.insert(key.clone(), u);
                }
            }
            (!unknown.is_empty()).then_some(Value::Mapping(unknown))
        }
        (Shape::V1Alpha1Tree, Value::Sequence(items)) => {
            let unknown: Vec<Value> = items
                .iter()
                .filter_map(|item| unknown_keys(&Shape::V1Alpha1Tree, item))
                .collect();
            (!unknown.is_empty()).then_some(Value::Sequence(unknown))
        }
        _ => None,
    }
}
