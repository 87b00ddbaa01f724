//! Resource metadata and the stored resource, as COSI has them; the spec is kept typed where a
//! typed writer made it, and serialized only for the wire.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use super::{ResourceSpec, StateError};

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

/// The wire forms of a spec: the YAML Talos prints and, where we have the message, protobuf.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Serialized {
    yaml: String,
    proto: Vec<u8>,
}

/// A typed spec value as the store keeps it, behind `dyn` so one state holds every type.
trait TypedValue: Any + Send + Sync {
    fn as_any(&self) -> &dyn Any;
    fn serialize(&self) -> Result<Serialized, StateError>;
    fn same_value(&self, other: &dyn Any) -> bool;
    fn rust_type(&self) -> &'static str;
}

impl<T: ResourceSpec> TypedValue for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn serialize(&self) -> Result<Serialized, StateError> {
        let (yaml, proto) = self.to_wire()?;
        Ok(Serialized { yaml, proto })
    }

    fn same_value(&self, other: &dyn Any) -> bool {
        other.downcast_ref::<T>().is_some_and(|o| o == self)
    }

    fn rust_type(&self) -> &'static str {
        std::any::type_name::<T>()
    }
}

/// A typed value and its wire forms, made the first time someone asks for them (and shared by
/// every clone of the spec).
struct TypedCell<V: ?Sized> {
    wire: OnceLock<Result<Serialized, StateError>>,
    value: V,
}

#[derive(Clone)]
enum Repr {
    /// What came over the wire (or was built serialized).
    Serialized(Serialized),
    /// A typed value from this process; serialized lazily.
    Typed(Arc<TypedCell<dyn TypedValue>>),
}

/// A resource spec as stored: either its serialized forms (what a client sent), or the typed
/// value a controller wrote ([`Spec::typed`]), which is turned into YAML and protobuf only when
/// it goes on the wire. Typed readers ([`Spec::decode`]) get the typed value back without
/// parsing anything.
#[derive(Clone)]
pub struct Spec {
    repr: Repr,
}

impl Default for Spec {
    fn default() -> Self {
        Spec::new(String::new(), Vec::new())
    }
}

impl Spec {
    /// A spec in its serialized forms: YAML (`yaml_spec` on the wire) and protobuf
    /// (`proto_spec`, empty when not carried).
    pub fn new(yaml: impl Into<String>, proto: Vec<u8>) -> Spec {
        Spec {
            repr: Repr::Serialized(Serialized {
                yaml: yaml.into(),
                proto,
            }),
        }
    }

    /// A typed spec, serialized only when it is read in its wire forms.
    pub fn typed<T: ResourceSpec>(value: T) -> Spec {
        let cell: Arc<TypedCell<dyn TypedValue>> = Arc::new(TypedCell {
            wire: OnceLock::new(),
            value,
        });
        Spec {
            repr: Repr::Typed(cell),
        }
    }

    fn wire(&self) -> Result<&Serialized, StateError> {
        match &self.repr {
            Repr::Serialized(s) => Ok(s),
            Repr::Typed(cell) => cell
                .wire
                .get_or_init(|| cell.value.serialize())
                .as_ref()
                .map_err(Clone::clone),
        }
    }

    /// The YAML form (`yaml_spec`).
    pub fn yaml(&self) -> Result<&str, StateError> {
        self.wire().map(|s| s.yaml.as_str())
    }

    /// The protobuf form (`proto_spec`), empty when the type has none.
    pub fn proto(&self) -> Result<&[u8], StateError> {
        self.wire().map(|s| s.proto.as_slice())
    }

    /// The typed value, when the spec holds a `T` (no decoding).
    pub fn typed_ref<T: ResourceSpec>(&self) -> Option<&T> {
        match &self.repr {
            Repr::Typed(cell) => cell.value.as_any().downcast_ref::<T>(),
            Repr::Serialized(_) => None,
        }
    }

    /// The spec as a `T`: the typed value itself (cloned), or decoded from its YAML.
    pub fn decode<T: ResourceSpec>(&self) -> Result<T, StateError> {
        match self.typed_ref::<T>() {
            Some(value) => Ok(value.clone()),
            None => T::from_yaml(self.yaml()?),
        }
    }
}

impl PartialEq for Spec {
    /// Typed values of one type compare as values; anything else by its wire forms (a spec
    /// that cannot be serialized equals nothing).
    fn eq(&self, other: &Spec) -> bool {
        if let (Repr::Typed(a), Repr::Typed(b)) = (&self.repr, &other.repr) {
            if Arc::ptr_eq(a, b) {
                return true;
            }
            if a.value.as_any().type_id() == b.value.as_any().type_id() {
                return a.value.same_value(b.value.as_any());
            }
        }
        match (self.wire(), other.wire()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Debug for Spec {
    /// Typed values are not printed (a machine config holds secrets).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Serialized(s) => f
                .debug_struct("Spec")
                .field("yaml", &s.yaml)
                .field("proto", &s.proto)
                .finish(),
            Repr::Typed(cell) => f
                .debug_struct("Spec")
                .field("typed", &cell.value.rust_type())
                .finish_non_exhaustive(),
        }
    }
}

/// A resource: metadata plus spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// Metadata.
    pub metadata: Metadata,
    /// The spec.
    pub spec: Spec,
}

impl Resource {
    /// A new (not yet stored) resource holding a typed spec.
    pub fn from_typed<T: ResourceSpec>(id: &str, spec: &T) -> Resource {
        Resource {
            metadata: Metadata::new(T::NAMESPACE, T::TYPE, id),
            spec: Spec::typed(spec.clone()),
        }
    }

    /// The spec as `T` (checks the type first): the stored value, or decoded from YAML when
    /// the resource came over the wire.
    pub fn typed<T: ResourceSpec>(&self) -> Result<T, StateError> {
        if self.metadata.resource_type != T::TYPE {
            return Err(StateError::Spec(format!(
                "resource {} is not of type {}",
                self.metadata,
                T::TYPE
            )));
        }
        self.spec.decode()
    }
}
