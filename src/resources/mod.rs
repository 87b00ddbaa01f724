//! Typed, versioned, watchable resources: the model Talos builds on (COSI). This is the one
//! resource model: every resource type machined serves or a process publishes is declared here.
//!
//! | module | what |
//! |---|---|
//! | [`meta`] | metadata (namespace, type, id, version, owner, phase, times, labels, annotations, finalizers) and the stored [`Resource`], whose [`Spec`] keeps a typed value typed and serializes it only for the wire |
//! | [`state`] | the in-memory [`State`]: create, update (optimistic version check), modify, get, list, destroy and watch, with owner checks |
//! | [`specs`] | typed specs by area (config, runtime, network, k8s, cluster) that serialize to the same YAML as Talos's; each implements [`ResourceSpec`] |
//! | [`catalog`] | every resource type Talos 1.7 registers, as named-field [`ResourceDef`]s (those with a Rust spec come from its [`ResourceSpec`]), and the namespaces |
//! | [`registry`] | the `meta` resources built from the catalog (`talosctl get rd` / `get ns`), with aliases and display types derived as COSI does |
//! | [`proto`] | the protobuf messages of the specs (`proto_spec`) |
//! | [`wire`] | conversion to and from the `cosi.resource` protobuf messages |
//! | [`controller`] | a small controller runtime (inputs, reconcile, requeue, back-off) |

pub mod catalog;
pub mod controller;
pub mod meta;
pub mod proto;
pub mod registry;
pub mod specs;
pub mod state;
pub mod wire;

pub use catalog::{col, Column, ResourceDef};
pub use meta::{Metadata, Phase, Resource, Spec};
pub use state::{Event, EventKind, State, StateError};

/// A typed resource spec: where its type is declared (type, default namespace, aliases,
/// sensitivity, print columns) and how it is serialized (YAML as Talos marshals it; protobuf
/// where we have the message).
pub trait ResourceSpec: Clone + PartialEq + Send + Sync + 'static {
    /// Full resource type, e.g. `MachineStatuses.runtime.talos.dev`.
    const TYPE: &'static str;
    /// Namespace the resource lives in by default.
    const NAMESPACE: &'static str;
    /// Aliases besides the ones COSI derives from the type name (`talosctl get links`).
    const ALIASES: &'static [&'static str] = &[];
    /// Readable only with `os:admin`.
    const SENSITIVE: bool = false;
    /// Extra columns of `talosctl get` tables.
    const COLUMNS: &'static [Column] = &[];
    /// The resource definition, as the catalog registers it.
    const DEFINITION: ResourceDef = ResourceDef {
        type_name: Self::TYPE,
        namespace: Self::NAMESPACE,
        sensitive: Self::SENSITIVE,
        aliases: Self::ALIASES,
        columns: Self::COLUMNS,
    };

    /// The YAML Talos shows as `spec:`.
    fn to_yaml(&self) -> Result<String, StateError>;
    /// Parses the YAML form back (a spec that came over the wire).
    fn from_yaml(yaml: &str) -> Result<Self, StateError>;
    /// The protobuf form (empty when we do not carry one).
    fn to_proto(&self) -> Vec<u8> {
        Vec::new()
    }
    /// Both wire forms: YAML and protobuf.
    fn to_wire(&self) -> Result<(String, Vec<u8>), StateError> {
        Ok((self.to_yaml()?, self.to_proto()))
    }
}

/// Serializes a serde value with Talos's YAML layout (the helper most specs use).
pub fn yaml_of<T: serde::Serialize>(value: &T) -> Result<String, StateError> {
    crate::yaml::to_string(value).map_err(|e| StateError::Spec(e.to_string()))
}

/// Parses YAML into a serde value (the helper most specs use).
pub fn parse_yaml<T: serde::de::DeserializeOwned>(yaml: &str) -> Result<T, StateError> {
    serde_yaml::from_str(yaml).map_err(|e| StateError::Spec(e.to_string()))
}

/// Inside an `impl ResourceSpec for …` block: `to_yaml` and `from_yaml` through serde (the
/// field names and order of the struct are the YAML's).
#[macro_export]
macro_rules! serde_yaml_spec {
    () => {
        fn to_yaml(&self) -> Result<String, $crate::resources::StateError> {
            $crate::resources::yaml_of(self)
        }

        fn from_yaml(yaml: &str) -> Result<Self, $crate::resources::StateError> {
            $crate::resources::parse_yaml(yaml)
        }
    };
}
