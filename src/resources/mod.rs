//! Typed, versioned, watchable resources: the model Talos builds on (COSI).
//!
//! - [`meta`]: resource metadata (namespace, type, id, version, owner, phase, times, labels,
//!   annotations, finalizers) and the stored [`Resource`] with its serialized spec.
//! - [`state`]: the in-memory [`State`]: create, update (optimistic version check), modify,
//!   get, list, destroy and watch, with owner checks.
//! - [`registry`]: resource definitions (Talos 1.7's type names, default namespaces, aliases as
//!   COSI derives them, sensitivity) and namespaces, registered into a state as the `meta`
//!   resources `talosctl get rd` / `get ns` list.
//! - [`specs`]: typed specs that serialize to the same YAML as Talos's.
//! - [`wire`]: conversion to and from the `cosi.resource` protobuf messages.
//! - [`controller`]: a small controller runtime (inputs, reconcile, requeue, back-off).

pub mod catalog;
pub mod controller;
pub mod meta;
pub mod proto;
pub mod registry;
pub mod specs;
pub mod state;
pub mod wire;

pub use meta::{Metadata, Phase, Resource, Spec};
pub use state::{Event, EventKind, State, StateError, Watch};

/// A typed resource spec: knows its resource type and default namespace, and how it is
/// serialized (YAML as Talos marshals it; protobuf where we have the message).
pub trait ResourceSpec: Sized + Send + Sync + 'static {
    /// Full resource type, e.g. `MachineStatuses.runtime.talos.dev`.
    const TYPE: &'static str;
    /// Namespace the resource lives in by default.
    const NAMESPACE: &'static str;

    /// The YAML Talos shows as `spec:`.
    fn to_yaml(&self) -> Result<String, StateError>;
    /// Parses the YAML form back.
    fn from_yaml(yaml: &str) -> Result<Self, StateError>;
    /// The protobuf form (empty when we do not carry one).
    fn to_proto(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Both serialized forms, as stored.
    fn to_spec(&self) -> Result<Spec, StateError> {
        Ok(Spec {
            yaml: self.to_yaml()?,
            proto: self.to_proto(),
        })
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

/// Implements [`ResourceSpec`] for a serde struct with its type and namespace.
#[macro_export]
macro_rules! resource_spec {
    ($ty:ty, $type_name:expr, $namespace:expr) => {
        impl $crate::resources::ResourceSpec for $ty {
            const TYPE: &'static str = $type_name;
            const NAMESPACE: &'static str = $namespace;

            fn to_yaml(&self) -> Result<String, $crate::resources::StateError> {
                $crate::resources::yaml_of(self)
            }

            fn from_yaml(yaml: &str) -> Result<Self, $crate::resources::StateError> {
                $crate::resources::parse_yaml(yaml)
            }
        }
    };
    ($ty:ty, $type_name:expr, $namespace:expr, proto) => {
        impl $crate::resources::ResourceSpec for $ty {
            const TYPE: &'static str = $type_name;
            const NAMESPACE: &'static str = $namespace;

            fn to_yaml(&self) -> Result<String, $crate::resources::StateError> {
                $crate::resources::yaml_of(self)
            }

            fn from_yaml(yaml: &str) -> Result<Self, $crate::resources::StateError> {
                $crate::resources::parse_yaml(yaml)
            }

            fn to_proto(&self) -> Vec<u8> {
                self.proto()
            }
        }
    };
}
