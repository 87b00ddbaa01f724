//! Strategic merge of config documents, following Talos 1.7's `merge.Merge` on the typed
//! config, here on the YAML value tree:
//!
//! - a scalar in the patch replaces the config's value unless it is a zero value (`""`, `0`,
//!   `null`); booleans always replace (so `false` can switch a feature off);
//! - mappings merge key by key, recursively;
//! - lists are appended to, except the lists Talos tags `merge:"replace"` (replaced when the
//!   patch sets them) and the keyed lists (network interfaces by `interface` or
//!   `deviceSelector`, VLANs by `vlanId`, admission plugins by `name`), whose items merge into
//!   the item with the same key;
//! - URL-typed fields (the control plane endpoint, logging endpoints, the SideroLink API URL,
//!   kmsg log URLs) merge part by part, since Talos merges the fields of Go's `url.URL`.

use serde_yaml::{Mapping, Value};

use super::document::{self, DocumentId};
use super::url;
use super::PatchError;

/// How a path is merged when it is not merged the default way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// The patch value replaces the config value (Talos `merge:"replace"`).
    Replace,
    /// Network device list: items keyed by `interface`, else by `deviceSelector`.
    Devices,
    /// A list whose items are keyed by this field.
    KeyedBy(&'static str),
    /// A URL merged part by part.
    Url,
}

/// (document kind, dotted path with `[]` for list items, rule).
const RULES: &[(&str, &str, Rule)] = &[
    ("v1alpha1", "cluster.network.podSubnets", Rule::Replace),
    ("v1alpha1", "cluster.network.serviceSubnets", Rule::Replace),
    ("v1alpha1", "cluster.apiServer.auditPolicy", Rule::Replace),
    (
        "v1alpha1",
        "cluster.apiServer.admissionControl",
        Rule::KeyedBy("name"),
    ),
    ("v1alpha1", "cluster.controlPlane.endpoint", Rule::Url),
    ("v1alpha1", "machine.network.interfaces", Rule::Devices),
    (
        "v1alpha1",
        "machine.network.interfaces[].vlans",
        Rule::KeyedBy("vlanId"),
    ),
    (
        "v1alpha1",
        "machine.logging.destinations[].endpoint",
        Rule::Url,
    ),
    ("NetworkRuleConfig", "ingress", Rule::Replace),
    ("NetworkRuleConfig", "portSelector.ports", Rule::Replace),
    ("SideroLinkConfig", "apiUrl", Rule::Url),
    ("KmsgLogConfig", "url", Rule::Url),
];

/// Merges the patch documents into the config documents: a patch document merges into the
/// config document with the same identity, or is appended. The v1alpha1 document comes first
/// in the result, as Talos orders its document container.
pub(crate) fn merge_documents(
    mut left: Vec<Value>,
    patch: &[Value],
) -> Result<Vec<Value>, PatchError> {
    if left.is_empty() {
        return Err(PatchError::Config(document::DocumentError::NoConfig));
    }
    let left_ids = document::check_documents(&left).map_err(PatchError::Config)?;
    let right_ids = document::check_documents(patch).map_err(PatchError::Strategic)?;

    for (right, right_id) in patch.iter().zip(&right_ids) {
        match left_ids.iter().position(|id| id == right_id) {
            Some(pos) => {
                let mut path = Path::new(right_id.kind());
                merge_value(&mut left[pos], right, &mut path)?;
            }
            None => left.push(right.clone()),
        }
    }

    let ids = document::check_documents(&left).map_err(|e| match e {
        document::DocumentError::Duplicate(id) => PatchError::DuplicateDocument(id),
        other => PatchError::Config(other),
    })?;
    if let Some(pos) = ids.iter().position(|id| *id == DocumentId::V1Alpha1) {
        let doc = left.remove(pos);
        left.insert(0, doc);
    }
    Ok(left)
}

/// The path of the value being merged, for the rules and for error messages.
struct Path {
    kind: String,
    segments: Vec<String>,
}

impl Path {
    fn new(kind: &str) -> Self {
        Path {
            kind: kind.to_string(),
            segments: Vec::new(),
        }
    }

    fn dotted(&self) -> String {
        let mut out = String::new();
        for seg in &self.segments {
            if seg != "[]" && !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
        out
    }

    fn rule(&self) -> Option<Rule> {
        let dotted = self.dotted();
        RULES
            .iter()
            .find(|(kind, path, _)| *kind == self.kind && *path == dotted)
            .map(|(_, _, rule)| *rule)
    }

    fn mismatch(&self, left: &Value, right: &Value) -> PatchError {
        PatchError::MergeTypeMismatch {
            path: if self.segments.is_empty() {
                "(document)".to_string()
            } else {
                self.dotted()
            },
            left: shape_name(left),
            right: shape_name(right),
        }
    }
}

fn shape_name(value: &Value) -> &'static str {
    match value {
        Value::Mapping(_) => "a mapping",
        Value::Sequence(_) => "a list",
        Value::Null => "null",
        _ => "a scalar",
    }
}

/// A zero value in Go terms: skipped by the merge (booleans are never skipped).
fn is_zero_scalar(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

fn merge_value(left: &mut Value, right: &Value, path: &mut Path) -> Result<(), PatchError> {
    if right.is_null() {
        return Ok(());
    }
    match path.rule() {
        Some(Rule::Replace) => {
            *left = right.clone();
            return Ok(());
        }
        Some(Rule::Devices) => return merge_keyed(left, right, path, device_matches),
        Some(Rule::KeyedBy(field)) => {
            return merge_keyed(left, right, path, |l, r| {
                field_or_null(l, field) == field_or_null(r, field)
            })
        }
        Some(Rule::Url) => {
            if let (Value::String(l), Value::String(r)) = (&*left, right) {
                if !r.is_empty() {
                    *left = Value::String(url::merge(l, r));
                }
                return Ok(());
            }
        }
        None => {}
    }

    if left.is_null() {
        *left = right.clone();
        return Ok(());
    }
    match (&mut *left, right) {
        (Value::Mapping(l), Value::Mapping(r)) => merge_mapping(l, r, path),
        (Value::Sequence(l), Value::Sequence(r)) => {
            l.extend(r.iter().cloned());
            Ok(())
        }
        (Value::Mapping(_) | Value::Sequence(_), _)
        | (_, Value::Mapping(_) | Value::Sequence(_)) => Err(path.mismatch(left, right)),
        (l, r) => {
            if matches!(r, Value::Bool(_)) || !is_zero_scalar(r) {
                *l = r.clone();
            }
            Ok(())
        }
    }
}

fn merge_mapping(left: &mut Mapping, right: &Mapping, path: &mut Path) -> Result<(), PatchError> {
    for (key, rv) in right {
        let name = match key {
            Value::String(s) => s.clone(),
            other => crate::yaml::emit(other).trim_end().to_string(),
        };
        path.segments.push(name);
        let result = match left.get_mut(key) {
            Some(lv) => merge_value(lv, rv, path),
            None => {
                // A keyed list met for the first time still merges its own items together.
                if matches!(path.rule(), Some(Rule::Devices | Rule::KeyedBy(_))) {
                    let mut fresh = Value::Sequence(Vec::new());
                    let r = merge_value(&mut fresh, rv, path);
                    left.insert(key.clone(), fresh);
                    r
                } else {
                    left.insert(key.clone(), rv.clone());
                    Ok(())
                }
            }
        };
        path.segments.pop();
        result?;
    }
    Ok(())
}

/// Merges each patch item into the first config item it matches, or appends it.
fn merge_keyed(
    left: &mut Value,
    right: &Value,
    path: &mut Path,
    matches: impl Fn(&Value, &Value) -> bool,
) -> Result<(), PatchError> {
    if left.is_null() {
        *left = Value::Sequence(Vec::new());
    }
    let (Value::Sequence(items), Value::Sequence(patch_items)) = (&mut *left, right) else {
        return Err(path.mismatch(left, right));
    };
    path.segments.push("[]".to_string());
    for patch_item in patch_items {
        match items.iter().position(|item| matches(item, patch_item)) {
            Some(pos) => {
                if let Err(e) = merge_value(&mut items[pos], patch_item, path) {
                    path.segments.pop();
                    return Err(e);
                }
            }
            None => items.push(patch_item.clone()),
        }
    }
    path.segments.pop();
    Ok(())
}

fn field_or_null<'a>(item: &'a Value, field: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    item.get(field).unwrap_or(&NULL)
}

fn non_empty_str<'a>(item: &'a Value, field: &str) -> Option<&'a str> {
    item.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Talos matches a patch device to a config device by `interface` when the patch names one,
/// else by an equal `deviceSelector`. Its selector comparison compares the `physical` pointer,
/// so a selector that sets `physical` never matches.
fn device_matches(item: &Value, patch_item: &Value) -> bool {
    if let Some(name) = non_empty_str(patch_item, "interface") {
        return non_empty_str(item, "interface") == Some(name);
    }
    match (item.get("deviceSelector"), patch_item.get("deviceSelector")) {
        (Some(l @ Value::Mapping(_)), Some(r @ Value::Mapping(_))) => selectors_equal(l, r),
        _ => false,
    }
}

fn selectors_equal(l: &Value, r: &Value) -> bool {
    let has_physical = |v: &Value| v.get("physical").is_some_and(|p| !p.is_null());
    if has_physical(l) || has_physical(r) {
        return false;
    }
    ["busPath", "hardwareAddr", "pciID", "driver"]
        .iter()
        .all(|field| non_empty_str(l, field) == non_empty_str(r, field))
}
