//! Resource metadata and the stored resource, as COSI has them.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

/// Lifecycle phase of a resource: `running`, or `tearingDown` once its owner started
/// destroying it (finalizers may still hold it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Phase {
    /// Normal state.
    #[default]
    Running,
    /// Being torn down.
    TearingDown,
}

impl Phase {
    /// The wire/YAML name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Running => "running",
            Phase::TearingDown => "tearingDown",
        }
    }

    /// Parses the wire name (empty means running).
    pub fn parse(s: &str) -> Option<Phase> {
        match s {
            "" | "running" => Some(Phase::Running),
            "tearingDown" => Some(Phase::TearingDown),
            _ => None,
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identity and bookkeeping of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Namespace, e.g. `runtime`.
    pub namespace: String,
    /// Full type, e.g. `MachineStatuses.runtime.talos.dev`.
    pub resource_type: String,
    /// Id, unique within namespace and type.
    pub id: String,
    /// Version: 1 on create, +1 on every update. 0 means "not stored yet".
    pub version: u64,
    /// Controller (or client) that owns the resource; empty for unowned.
    pub owner: String,
    /// Lifecycle phase.
    pub phase: Phase,
    /// When it was created.
    pub created: SystemTime,
    /// When it was last written.
    pub updated: SystemTime,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Finalizers: while any is set, the resource cannot be destroyed.
    pub finalizers: Vec<String>,
}

impl Metadata {
    /// Metadata of a resource that is not stored yet (version 0, no owner).
    pub fn new(namespace: &str, resource_type: &str, id: &str) -> Metadata {
        let now = SystemTime::now();
        Metadata {
            namespace: namespace.to_string(),
            resource_type: resource_type.to_string(),
            id: id.to_string(),
            version: 0,
            owner: String::new(),
            phase: Phase::Running,
            created: now,
            updated: now,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            finalizers: Vec::new(),
        }
    }

    /// COSI's text for the version: `undefined` before the first write.
    pub fn version_string(&self) -> String {
        if self.version == 0 {
            "undefined".to_string()
        } else {
            self.version.to_string()
        }
    }
}

impl fmt::Display for Metadata {
    /// `Type(namespace/id@version)`, as COSI names a resource in its errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}({}/{}@{})",
            self.resource_type,
            self.namespace,
            self.id,
            self.version_string()
        )
    }
}

/// A serialized spec: the YAML Talos prints and, where we have the message, the protobuf form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Spec {
    /// YAML (`yaml_spec` on the wire).
    pub yaml: String,
    /// Protobuf bytes (`proto_spec` on the wire), empty when not carried.
    pub proto: Vec<u8>,
}

/// A resource: metadata plus spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Metadata.
    pub metadata: Metadata,
    /// Serialized spec.
    pub spec: Spec,
}

impl Resource {
    /// A new (not yet stored) resource from a typed spec.
    pub fn from_typed<T: super::ResourceSpec>(
        id: &str,
        spec: &T,
    ) -> Result<Resource, super::StateError> {
        Ok(Resource {
            metadata: Metadata::new(T::NAMESPACE, T::TYPE, id),
            spec: spec.to_spec()?,
        })
    }

    /// Decodes the spec as `T` (checks the type first).
    pub fn typed<T: super::ResourceSpec>(&self) -> Result<T, super::StateError> {
        if self.metadata.resource_type != T::TYPE {
            return Err(super::StateError::Spec(format!(
                "resource {} is not of type {}",
                self.metadata,
                T::TYPE
            )));
        }
        T::from_yaml(&self.spec.yaml)
    }
}
