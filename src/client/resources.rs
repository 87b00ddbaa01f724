//! Client side of COSI resources (`cosi.resource.State`): resource definitions, resolving a
//! user-given type or alias to its definition, and the YAML form of a resource that
//! `talosctl get -o yaml|json` prints.

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use crate::api::cosi::resource as cosi;

pub use crate::resources::registry::{META_NAMESPACE, RESOURCE_DEFINITION_TYPE};

/// Errors of resource handling.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// A resource's YAML spec does not parse.
    #[error("resource {id}: invalid YAML spec")]
    Spec {
        /// The resource id.
        id: String,
        /// The parser's error.
        #[source]
        source: serde_yaml::Error,
    },
    /// No definition matches.
    #[error("resource {0:?} is not registered (see `talosctl get rd`)")]
    NotRegistered(String),
    /// Several definitions match.
    #[error("resource type {name:?} is ambiguous: {matches:?}")]
    Ambiguous {
        /// What the user asked for.
        name: String,
        /// The matching definition ids.
        matches: Vec<String>,
    },
    /// A resource without metadata on the wire.
    #[error("resource without metadata in the reply")]
    NoMetadata,
}

/// One print column of a resource definition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PrintColumn {
    /// Column name.
    #[serde(default)]
    pub name: String,
    /// JSONPath template evaluated against the spec.
    #[serde(default, rename = "jsonPath")]
    pub json_path: String,
}

/// The spec of a `ResourceDefinitions.meta.cosi.dev` resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ResourceDefinition {
    /// Full type name, e.g. `Members.cluster.talos.dev`.
    #[serde(default, rename = "type")]
    pub resource_type: String,
    /// The short name shown in tables.
    #[serde(default, rename = "displayType")]
    pub display_type: String,
    /// Namespace used when none is given.
    #[serde(default, rename = "defaultNamespace")]
    pub default_namespace: String,
    /// User-facing aliases.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Every alias, including derived short forms.
    #[serde(default, rename = "allAliases")]
    pub all_aliases: Vec<String>,
    /// Extra table columns.
    #[serde(default, rename = "printColumns")]
    pub print_columns: Vec<PrintColumn>,
    /// `sensitive` for secrets.
    #[serde(default)]
    pub sensitivity: Option<Value>,
}

impl ResourceDefinition {
    /// Parses a definition from a resource's `yaml_spec`.
    pub fn from_resource(r: &cosi::Resource) -> Result<ResourceDefinition, ResourceError> {
        let id = r
            .metadata
            .as_ref()
            .map(|m| m.id.clone())
            .unwrap_or_default();
        let yaml = r.spec.as_ref().map(|s| s.yaml_spec.as_str()).unwrap_or("");
        if yaml.trim().is_empty() {
            return Ok(ResourceDefinition::default());
        }
        serde_yaml::from_str(yaml).map_err(|source| ResourceError::Spec { id, source })
    }
}

/// Picks the definition whose id or one of whose aliases equals `name` (ASCII case-insensitive).
pub fn resolve<'a>(
    definitions: &'a [(String, ResourceDefinition)],
    name: &str,
) -> Result<&'a ResourceDefinition, ResourceError> {
    let matched: Vec<&(String, ResourceDefinition)> = definitions
        .iter()
        .filter(|(id, rd)| {
            id.eq_ignore_ascii_case(name)
                || rd.all_aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
        })
        .collect();
    match matched.as_slice() {
        [(_, rd)] => Ok(rd),
        [] => Err(ResourceError::NotRegistered(name.to_string())),
        many => Err(ResourceError::Ambiguous {
            name: name.to_string(),
            matches: many.iter().map(|(id, _)| id.clone()).collect(),
        }),
    }
}

fn rfc3339(ts: Option<&prost_types::Timestamp>) -> String {
    let ts = ts.cloned().unwrap_or_default();
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(ts.seconds) else {
        return String::new();
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn string_map(map: &std::collections::HashMap<String, String>) -> Value {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let mut m = Mapping::new();
    for k in keys {
        m.insert(Value::String(k.clone()), Value::String(map[k].clone()));
    }
    Value::Mapping(m)
}

/// The metadata as COSI marshals it to YAML: namespace, type, id, version, owner, phase,
/// created, updated, then labels, annotations and finalizers when present.
pub fn metadata_value(md: &cosi::Metadata) -> Value {
    let mut m = Mapping::new();
    let s = |v: &str| Value::String(v.to_string());
    m.insert(s("namespace"), s(&md.namespace));
    m.insert(s("type"), s(&md.r#type));
    m.insert(s("id"), s(&md.id));
    let version = match md.version.parse::<u64>() {
        Ok(n) => Value::Number(n.into()),
        Err(_) => s(&md.version),
    };
    m.insert(s("version"), version);
    m.insert(s("owner"), s(&md.owner));
    m.insert(s("phase"), s(&md.phase));
    m.insert(s("created"), s(&rfc3339(md.created.as_ref())));
    m.insert(s("updated"), s(&rfc3339(md.updated.as_ref())));
    if !md.labels.is_empty() {
        m.insert(s("labels"), string_map(&md.labels));
    }
    if !md.annotations.is_empty() {
        m.insert(s("annotations"), string_map(&md.annotations));
    }
    if !md.finalizers.is_empty() {
        m.insert(
            s("finalizers"),
            Value::Sequence(md.finalizers.iter().map(|f| s(f)).collect()),
        );
    }
    Value::Mapping(m)
}

/// `{metadata: ..., spec: ...}` for YAML output: as [`resource_value`], with the `created` and
/// `updated` times written as plain timestamps (COSI emits them unquoted; as strings our emitter
/// would quote them because they read back as timestamps).
pub fn resource_yaml_value(r: &cosi::Resource) -> Result<Value, ResourceError> {
    let mut v = resource_value(r)?;
    if let Some(md) = v.get_mut("metadata").and_then(Value::as_mapping_mut) {
        for key in ["created", "updated"] {
            if let Some(slot) = md.get_mut(key) {
                if let Value::String(t) = slot {
                    *slot = crate::yaml::plain(std::mem::take(t));
                }
            }
        }
    }
    Ok(v)
}

/// The spec of a resource as a YAML value (null when empty).
pub fn spec_value(r: &cosi::Resource) -> Result<Value, ResourceError> {
    let id = r
        .metadata
        .as_ref()
        .map(|m| m.id.clone())
        .unwrap_or_default();
    let yaml = r.spec.as_ref().map(|s| s.yaml_spec.as_str()).unwrap_or("");
    if yaml.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_yaml::from_str(yaml).map_err(|source| ResourceError::Spec { id, source })
}

/// `{metadata: ..., spec: ...}` of a resource.
pub fn resource_value(r: &cosi::Resource) -> Result<Value, ResourceError> {
    let md = r.metadata.as_ref().ok_or(ResourceError::NoMetadata)?;
    let mut m = Mapping::new();
    m.insert(Value::String("metadata".into()), metadata_value(md));
    m.insert(Value::String("spec".into()), spec_value(r)?);
    Ok(Value::Mapping(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rd(id: &str, yaml: &str) -> (String, ResourceDefinition) {
        let r = cosi::Resource {
            metadata: Some(cosi::Metadata {
                id: id.into(),
                ..Default::default()
            }),
            spec: Some(cosi::Spec {
                proto_spec: vec![],
                yaml_spec: yaml.into(),
            }),
        };
        (
            id.to_string(),
            ResourceDefinition::from_resource(&r).unwrap(),
        )
    }

    #[test]
    fn resolves_ids_and_aliases() {
        let defs = vec![
            rd(
                "members.cluster.talos.dev",
                "type: Members.cluster.talos.dev\ndisplayType: Member\ndefaultNamespace: cluster\naliases: [members]\nallAliases: [member, members]\nprintColumns:\n  - name: Hostname\n    jsonPath: '{.hostname}'\n",
            ),
            rd("a.x", "type: A.x\nallAliases: [dup]\n"),
            rd("b.x", "type: B.x\nallAliases: [dup]\n"),
        ];
        let m = resolve(&defs, "Member").unwrap();
        assert_eq!(m.resource_type, "Members.cluster.talos.dev");
        assert_eq!(m.default_namespace, "cluster");
        assert_eq!(m.print_columns[0].json_path, "{.hostname}");
        assert!(resolve(&defs, "MEMBERS.cluster.talos.dev").is_ok());
        assert!(matches!(
            resolve(&defs, "nope"),
            Err(ResourceError::NotRegistered(_))
        ));
        assert!(matches!(
            resolve(&defs, "dup"),
            Err(ResourceError::Ambiguous { .. })
        ));
    }

    #[test]
    fn metadata_in_cosi_order() {
        let md = cosi::Metadata {
            namespace: "network".into(),
            r#type: "Hostnames.net.talos.dev".into(),
            id: "hostname".into(),
            version: "3".into(),
            owner: "ctrl".into(),
            phase: "running".into(),
            created: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 5,
            }),
            labels: [
                ("b".to_string(), "2".to_string()),
                ("a".to_string(), "1".to_string()),
            ]
            .into_iter()
            .collect(),
            ..Default::default()
        };
        let v = metadata_value(&md);
        let keys: Vec<&str> = v
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "namespace",
                "type",
                "id",
                "version",
                "owner",
                "phase",
                "created",
                "updated",
                "labels"
            ]
        );
        assert_eq!(v["version"], Value::Number(3.into()));
        assert_eq!(v["created"], Value::String("2023-11-14T22:13:20Z".into()));
        let labels: Vec<&str> = v["labels"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap())
            .collect();
        assert_eq!(labels, ["a", "b"]);
    }
}
