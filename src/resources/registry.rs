//! Resource definitions and namespaces: the `meta` resources (`talosctl get rd`, `get ns`).
//!
//! A definition names a type (`MachineStatuses.runtime.talos.dev`), its default namespace,
//! print columns and sensitivity; the display type and the aliases are derived from the type
//! name the way COSI does it:
//! - display type: the singular of the name part (`MachineStatus`), with go-pluralize's rules;
//! - aliases: the explicit ones, then the lower-cased display type, then, when the name has
//!   more than one capital letter, the lower-cased capitals (`ms`) and that plus `s` unless it
//!   already ends in `s`;
//! - all aliases: the lower-cased name, the name with each proper prefix of the suffix
//!   (`machinestatuses.runtime`, `machinestatuses.runtime.talos`), then the aliases.
//!
//! The declared part of each definition ([`ResourceDef`]) comes from the [`super::catalog`].

use std::sync::{Arc, OnceLock};

use prost::Message as _;
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::catalog::{
    col, Column, ResourceDef, META_NAMESPACE_DEF, META_TYPES, TALOS_NAMESPACES, TALOS_TYPES,
};
use super::meta::Resource;
use super::state::{State, StateError};
use super::ResourceSpec;
use crate::api::cosi::resource::meta as pb;

/// Namespace of namespaces and resource definitions.
pub const META_NAMESPACE: &str = META_NAMESPACE_DEF.name;
/// Owner of the `meta` resources.
pub const META_OWNER: &str = "meta";
/// Type of namespaces.
pub const NAMESPACE_TYPE: &str = "Namespaces.meta.cosi.dev";
/// Type of resource definitions.
pub const RESOURCE_DEFINITION_TYPE: &str = "ResourceDefinitions.meta.cosi.dev";

/// Why a definition is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The type name is malformed.
    #[error("error validating resource definition {resource_type:?}: {reason}")]
    Invalid {
        /// The type.
        resource_type: String,
        /// What is wrong.
        reason: String,
    },
    /// Storing the definition failed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// An extra table column: a name and a JSONPath template over the spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrintColumn {
    /// Column header.
    pub name: String,
    /// JSONPath template.
    #[serde(rename = "jsonPath")]
    pub json_path: String,
}

/// The spec of a `ResourceDefinitions.meta.cosi.dev` resource (field order and names as COSI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definition {
    /// Full type.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// Singular display name.
    #[serde(rename = "displayType")]
    pub display_type: String,
    /// Default namespace.
    #[serde(rename = "defaultNamespace")]
    pub default_namespace: String,
    /// Human-facing aliases.
    pub aliases: Vec<String>,
    /// Every alias used for matching.
    #[serde(rename = "allAliases")]
    pub all_aliases: Vec<String>,
    /// Extra columns for table output.
    #[serde(rename = "printColumns")]
    pub print_columns: Vec<PrintColumn>,
    /// `sensitive`, or empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sensitivity: String,
}

fn invalid(resource_type: &str, reason: &str) -> RegistryError {
    RegistryError::Invalid {
        resource_type: resource_type.to_string(),
        reason: reason.to_string(),
    }
}

impl Definition {
    /// Builds and validates a definition from its declaration, deriving display type and
    /// aliases.
    pub fn new(def: &ResourceDef) -> Result<Definition, RegistryError> {
        let resource_type = def.type_name;
        let (name, suffix) = resource_type
            .split_once('.')
            .ok_or_else(|| invalid(resource_type, "missing suffix"))?;
        if name.is_empty() {
            return Err(invalid(resource_type, "name is empty"));
        }
        if suffix.is_empty() {
            return Err(invalid(resource_type, "suffix is empty"));
        }
        if name.to_lowercase() == name {
            return Err(invalid(resource_type, "name should be in CamelCase"));
        }
        let name_ok = name.starts_with(|c: char| c.is_ascii_uppercase())
            && name.len() > 1
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !name_ok {
            return Err(invalid(
                resource_type,
                "name doesn't match ^[A-Z][A-Za-z0-9-]+$",
            ));
        }
        let suffix_ok = suffix.split('.').all(|part| {
            part.len() > 1
                && part.starts_with(|c: char| c.is_ascii_lowercase())
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
        if !suffix_ok {
            return Err(invalid(
                resource_type,
                "suffix doesn't match ^[a-z][a-z0-9-]+(\\.[a-z][a-z0-9-]+)*$",
            ));
        }
        let display_type = singular(name);
        let mut aliases: Vec<String> = def.aliases.iter().map(|a| a.to_string()).collect();
        aliases.push(display_type.to_lowercase());
        let lower = name.to_lowercase();
        let mut all_aliases = vec![lower.clone()];
        let parts: Vec<&str> = suffix.split('.').collect();
        for i in 1..parts.len() {
            all_aliases.push(format!("{lower}.{}", parts[..i].join(".")));
        }
        let capitals: String = name.chars().filter(char::is_ascii_uppercase).collect();
        if capitals.len() > 1 {
            aliases.push(capitals.to_lowercase());
            if !capitals.ends_with('S') {
                aliases.push(format!("{}s", capitals.to_lowercase()));
            }
        }
        all_aliases.extend(aliases.iter().cloned());
        Ok(Definition {
            resource_type: resource_type.to_string(),
            display_type,
            default_namespace: def.namespace.to_string(),
            aliases,
            all_aliases,
            print_columns: def
                .columns
                .iter()
                .map(|c| PrintColumn {
                    name: c.name.to_string(),
                    json_path: c.json_path.to_string(),
                })
                .collect(),
            sensitivity: if def.sensitive {
                "sensitive".to_string()
            } else {
                String::new()
            },
        })
    }

    /// The id of the definition resource: the lower-cased type.
    pub fn id(&self) -> String {
        self.resource_type.to_lowercase()
    }

    /// Whether reading needs `os:admin`.
    pub fn is_sensitive(&self) -> bool {
        self.sensitivity == "sensitive"
    }

    /// The COSI protobuf form (`cosi.resource.meta.ResourceDefinitionSpec`).
    fn proto(&self) -> Vec<u8> {
        pb::ResourceDefinitionSpec {
            resource_type: self.resource_type.clone(),
            display_type: self.display_type.clone(),
            default_namespace: self.default_namespace.clone(),
            aliases: self.aliases.clone(),
            all_aliases: self.all_aliases.clone(),
            print_columns: self
                .print_columns
                .iter()
                .map(|c| pb::resource_definition_spec::PrintColumn {
                    name: c.name.clone(),
                    json_path: c.json_path.clone(),
                })
                .collect(),
            sensitivity: if self.is_sensitive() {
                pb::resource_definition_spec::Sensitivity::Sensitive as i32
            } else {
                pb::resource_definition_spec::Sensitivity::NonSensitive as i32
            },
        }
        .encode_to_vec()
    }

    /// The definition as a stored resource.
    pub fn to_resource(&self) -> Resource {
        Resource::from_typed(&self.id(), self)
    }

    /// Whether `name` (a type or alias, ASCII case-insensitive) names this definition.
    pub fn matches(&self, name: &str) -> bool {
        self.resource_type.eq_ignore_ascii_case(name)
            || self
                .all_aliases
                .iter()
                .any(|a| a.eq_ignore_ascii_case(name))
    }
}

/// `ResourceDefinitions.meta.cosi.dev` (id = the lower-cased type).
impl ResourceSpec for Definition {
    const TYPE: &'static str = RESOURCE_DEFINITION_TYPE;
    const NAMESPACE: &'static str = META_NAMESPACE;
    const ALIASES: &'static [&'static str] = &["api-resources"];
    const COLUMNS: &'static [Column] = &[col("Aliases", "{.aliases[:]}")];
    crate::serde_yaml_spec!();

    fn to_proto(&self) -> Vec<u8> {
        self.proto()
    }
}

/// go-pluralize's singularization rules, in the order it registers them (the last matching rule
/// wins), plus its pattern-based uncountables, which it registers afterwards.
const SINGULAR_RULES: &[(&str, &str)] = &[
    (r"(?i)s$", ""),
    (r"(?i)(ss)$", "$1"),
    (
        r"(?i)(wi|kni|(?:after|half|high|low|mid|non|night|[^\w]|^)li)ves$",
        "${1}fe",
    ),
    (r"(?i)(ar|(?:wo|[ae])l|[eo][ao])ves$", "${1}f"),
    (r"(?i)ies$", "y"),
    (
        r"(?i)(dg|ss|ois|lk|ok|wn|mb|th|ch|ec|oal|is|ck|ix|sser|ts|wb)ies$",
        "${1}ie",
    ),
    (
        r"(?i)\b(l|(?:neck|cross|hog|aun)?t|coll|faer|food|gen|goon|group|hipp|junk|vegg|(?:pork)?p|charl|calor|cut)ies$",
        "${1}ie",
    ),
    (r"(?i)\b(mon|smil)ies$", "${1}ey"),
    (r"(?i)\b((?:tit)?m|l)ice$", "${1}ouse"),
    (r"(?i)(seraph|cherub)im$", "$1"),
    (
        r"(?i)(x|ch|ss|sh|zz|tto|go|cho|alias|[^aou]us|t[lm]as|gas|(?:her|at|gr)o|[aeiou]ris)(?:es)?$",
        "$1",
    ),
    (
        r"(?i)(analy|diagno|parenthe|progno|synop|the|empha|cri|ne)(?:sis|ses)$",
        "${1}sis",
    ),
    (r"(?i)(movie|twelve|abuse|e[mn]u)s$", "$1"),
    (r"(?i)(test)(?:is|es)$", "${1}is"),
    (
        r"(?i)(alumn|syllab|vir|radi|nucle|fung|cact|stimul|termin|bacill|foc|uter|loc|strat)(?:us|i)$",
        "${1}us",
    ),
    (
        r"(?i)(agend|addend|millenni|dat|extrem|bacteri|desiderat|strat|candelabr|errat|ov|symposi|curricul|quor)a$",
        "${1}um",
    ),
    (
        r"(?i)(apheli|hyperbat|periheli|asyndet|noumen|phenomen|criteri|organ|prolegomen|hedr|automat)a$",
        "${1}on",
    ),
    (r"(?i)(alumn|alg|vertebr)ae$", "${1}a"),
    (r"(?i)(cod|mur|sil|vert|ind)ices$", "${1}ex"),
    (r"(?i)(matr|append)ices$", "${1}ix"),
    (r"(?i)(pe)(rson|ople)$", "${1}rson"),
    (r"(?i)(child)ren$", "$1"),
    (r"(?i)(eau)x?$", "$1"),
    (r"(?i)men$", "man"),
    // Uncountable patterns: left as they are.
    (r"(?i)pok[eé]mon$", "$0"),
    (r"(?i)[^aeiou]ese$", "$0"),
    (r"(?i)deer$", "$0"),
    (r"(?i)(fish)$", "$0"),
    (r"(?i)measles$", "$0"),
    (r"(?i)o[iu]s$", "$0"),
    (r"(?i)pox$", "$0"),
    (r"(?i)sheep$", "$0"),
];

fn singular_rules() -> &'static [(Regex, &'static str)] {
    static RULES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    RULES.get_or_init(|| {
        SINGULAR_RULES
            .iter()
            // The patterns are constants checked by the tests; an invalid one is skipped.
            .filter_map(|(re, rep)| Regex::new(re).ok().map(|r| (r, *rep)))
            .collect()
    })
}

/// Restores the letter case of `matched` onto `replacement`, as go-pluralize does.
fn restore_case(matched: &str, replacement: &str) -> String {
    if matched == replacement {
        return replacement.to_string();
    }
    if matched == matched.to_lowercase() {
        return replacement.to_lowercase();
    }
    if matched == matched.to_uppercase() {
        return replacement.to_uppercase();
    }
    let mut chars = replacement.chars();
    if matched.starts_with(|c: char| c.is_uppercase()) {
        return match chars.next() {
            Some(first) => first
                .to_uppercase()
                .chain(chars.flat_map(char::to_lowercase))
                .collect(),
            None => String::new(),
        };
    }
    replacement.to_lowercase()
}

/// The singular of an English plural, with go-pluralize's rules (used for display types:
/// `MachineStatuses` → `MachineStatus`, `Identities` → `Identity`).
pub fn singular(word: &str) -> String {
    for (re, replacement) in singular_rules().iter().rev() {
        if let Some(caps) = re.captures(word) {
            let Some(m) = caps.get(0) else { continue };
            let mut expanded = String::new();
            caps.expand(replacement, &mut expanded);
            let restored = restore_case(m.as_str(), &expanded);
            return format!("{}{}", &word[..m.start()], restored);
        }
    }
    word.to_string()
}

/// Every definition machined registers: the meta types and Talos 1.7's types.
pub fn talos_definitions() -> Result<Vec<Definition>, RegistryError> {
    META_TYPES
        .iter()
        .chain(TALOS_TYPES)
        .map(Definition::new)
        .collect()
}

/// The spec of a `Namespaces.meta.cosi.dev` resource.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NamespaceSpec {
    /// What the namespace holds.
    pub description: String,
}

/// `Namespaces.meta.cosi.dev` (id = the namespace).
impl ResourceSpec for NamespaceSpec {
    const TYPE: &'static str = NAMESPACE_TYPE;
    const NAMESPACE: &'static str = META_NAMESPACE;
    const ALIASES: &'static [&'static str] = &["ns"];
    crate::serde_yaml_spec!();

    fn to_proto(&self) -> Vec<u8> {
        pb::NamespaceSpec {
            description: self.description.clone(),
        }
        .encode_to_vec()
    }
}

/// Registers a namespace (owned by `meta`); no-op if it exists.
pub fn register_namespace(
    state: &State,
    name: &str,
    description: &str,
) -> Result<Arc<Resource>, RegistryError> {
    let spec = NamespaceSpec {
        description: description.to_string(),
    };
    Ok(state.put(Resource::from_typed(name, &spec), META_OWNER)?)
}

/// Registers a resource definition (owned by `meta`).
pub fn register(state: &State, definition: &Definition) -> Result<Arc<Resource>, RegistryError> {
    Ok(state.put(definition.to_resource(), META_OWNER)?)
}

/// Registers the `meta` namespace, Talos's namespaces and every Talos 1.7 definition.
pub fn register_defaults(state: &State) -> Result<(), RegistryError> {
    for ns in std::iter::once(&META_NAMESPACE_DEF).chain(TALOS_NAMESPACES) {
        register_namespace(state, ns.name, ns.description)?;
    }
    for def in talos_definitions()? {
        register(state, &def)?;
    }
    Ok(())
}

/// The registered definition of `resource_type` (exact type, any case), if any.
pub fn lookup(state: &State, resource_type: &str) -> Option<Definition> {
    let r = state
        .get(
            META_NAMESPACE,
            RESOURCE_DEFINITION_TYPE,
            &resource_type.to_lowercase(),
        )
        .ok()?;
    r.typed::<Definition>().ok()
}

/// Whether a namespace is registered.
pub fn namespace_exists(state: &State, namespace: &str) -> bool {
    state.get(META_NAMESPACE, NAMESPACE_TYPE, namespace).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(ty: &str) -> Definition {
        let d = TALOS_TYPES
            .iter()
            .find(|d| d.type_name == ty)
            .unwrap_or_else(|| panic!("{ty} not in the catalog"));
        Definition::new(d).unwrap()
    }

    fn meta_definitions() -> Vec<Definition> {
        META_TYPES
            .iter()
            .map(|d| Definition::new(d).unwrap())
            .collect()
    }

    #[test]
    fn rules_compile() {
        assert_eq!(singular_rules().len(), SINGULAR_RULES.len());
    }

    #[test]
    fn aliases_as_cosi_derives_them() {
        let ms = def("MachineStatuses.runtime.talos.dev");
        assert_eq!(ms.display_type, "MachineStatus");
        assert_eq!(ms.aliases, ["machinestatus", "ms"]);
        assert_eq!(
            ms.all_aliases,
            [
                "machinestatuses",
                "machinestatuses.runtime",
                "machinestatuses.runtime.talos",
                "machinestatus",
                "ms"
            ]
        );
        let rd = meta_definitions().remove(1);
        assert_eq!(rd.display_type, "ResourceDefinition");
        assert_eq!(
            rd.aliases,
            ["api-resources", "resourcedefinition", "rd", "rds"]
        );
        assert!(rd.matches("rd"));
        let ns = meta_definitions().remove(0);
        assert_eq!(ns.aliases, ["ns", "namespace"]);
        let mc = def("MachineConfigs.config.talos.dev");
        assert_eq!(mc.aliases, ["machineconfig", "mc", "mcs"]);
        assert!(mc.is_sensitive());
        let hs = def("HostnameStatuses.net.talos.dev");
        assert_eq!(hs.aliases, ["hostname", "hostnamestatus", "hs"]);
        let svc = def("Services.v1alpha1.talos.dev");
        assert_eq!(svc.aliases, ["svc", "service"]);
        assert_eq!(
            svc.all_aliases,
            [
                "services",
                "services.v1alpha1",
                "services.v1alpha1.talos",
                "svc",
                "service"
            ]
        );
        let kps = def("KernelParamStatuses.runtime.talos.dev");
        assert!(kps.matches("sysctls") && kps.matches("kernelparamstatus") && kps.matches("kps"));
    }

    #[test]
    fn display_types_of_tricky_plurals() {
        for (plural, single) in [
            ("Identities", "Identity"),
            ("Addresses", "Address"),
            ("NodeAddresses", "NodeAddress"),
            ("Infos", "Info"),
            ("LinkRefreshes", "LinkRefresh"),
            ("PlatformMetadatas", "PlatformMetadata"),
            ("KubernetesDynamicCerts", "KubernetesDynamicCert"),
            ("KubePrismStatuses", "KubePrismStatus"),
            ("Processors", "Processor"),
            ("MetaKeys", "MetaKey"),
            ("Nodenames", "Nodename"),
            ("DevicesStatuses", "DevicesStatus"),
            // go-pluralize's `ch(es)` rule really gives this.
            ("DNSResolveCaches", "DNSResolveCach"),
        ] {
            assert_eq!(singular(plural), single, "{plural}");
        }
    }

    #[test]
    fn every_talos_type_is_valid_and_unique() {
        let defs = talos_definitions().unwrap();
        assert_eq!(defs.len(), TALOS_TYPES.len() + 2);
        let mut ids: Vec<String> = defs.iter().map(Definition::id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), defs.len());
        assert!(Definition::new(&ResourceDef::new("lower.x.dev", "ns")).is_err());
        assert!(Definition::new(&ResourceDef::new("Things", "ns")).is_err());
        assert!(Definition::new(&ResourceDef::new("", "ns")).is_err());
    }

    #[test]
    fn definitions_serialize_as_cosi_yaml() {
        let y = super::super::yaml_of(&def("MachineTypes.config.talos.dev")).unwrap();
        assert_eq!(
            y,
            "type: MachineTypes.config.talos.dev\ndisplayType: MachineType\ndefaultNamespace: config\naliases:\n    - machinetype\n    - mt\n    - mts\nallAliases:\n    - machinetypes\n    - machinetypes.config\n    - machinetypes.config.talos\n    - machinetype\n    - mt\n    - mts\nprintColumns:\n    - name: Type\n      jsonPath: '{@}'\n"
        );
        let y = super::super::yaml_of(&def("OSRootSecrets.secrets.talos.dev")).unwrap();
        assert!(
            y.ends_with("printColumns: []\nsensitivity: sensitive\n"),
            "{y}"
        );
    }

    #[test]
    fn defaults_register_into_a_state() {
        let st = State::new();
        register_defaults(&st).unwrap();
        register_defaults(&st).unwrap();
        let rds = st.list(META_NAMESPACE, RESOURCE_DEFINITION_TYPE);
        assert_eq!(rds.len(), TALOS_TYPES.len() + 2);
        assert!(rds.iter().all(|r| r.metadata.version == 1));
        assert_eq!(st.list(META_NAMESPACE, NAMESPACE_TYPE).len(), 16);
        let mc = lookup(&st, "machineconfigs.config.talos.dev").unwrap();
        assert!(mc.is_sensitive());
        assert!(namespace_exists(&st, "network"));
        assert!(!namespace_exists(&st, "nope"));
        let proto = pb::ResourceDefinitionSpec::decode(
            st.get(
                META_NAMESPACE,
                RESOURCE_DEFINITION_TYPE,
                "machineconfigs.config.talos.dev",
            )
            .unwrap()
            .spec
            .proto()
            .unwrap(),
        )
        .unwrap();
        assert_eq!(proto.sensitivity, 1);
        assert_eq!(proto.display_type, "MachineConfig");
    }
}
