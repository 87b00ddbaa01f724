//! The in-memory resource state: resources grouped by (namespace, type), each group with its
//! own event channel, so watchers of one type never see (or wait for) another.
//!
//! Semantics follow COSI's in-memory state:
//! - `create` stores version 1 and fails if the id exists;
//! - `update` needs the version the caller read (optimistic concurrency), the same owner, and
//!   optionally an expected phase; the stored version becomes `read + 1`;
//! - `destroy` needs the same owner and no pending finalizers;
//! - `watch` of one id starts with the current resource (`Created`) or a bare one
//!   (`Destroyed`) when it does not exist; `watch_kind` optionally starts with every current
//!   resource (`Created`) followed by one `Bootstrapped` marker, and can replay recent events.
//!
//! The lock is a plain mutex held only for map operations (never across an await); clones of
//! [`State`] share the same data.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::sync::broadcast;

use super::meta::{Metadata, Phase, Resource, Spec};
use super::ResourceSpec;

/// Events kept per (namespace, type) for watchers that ask for a tail.
const HISTORY: usize = 128;
/// Events buffered per watcher before it is considered overrun.
const CHANNEL_DEPTH: usize = 1024;

/// Why a state operation failed. The texts follow COSI's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// No such resource.
    #[error("resource {0} doesn't exist")]
    NotFound(String),
    /// Create of an existing id.
    #[error("resource {0} already exists")]
    AlreadyExists(String),
    /// Update based on a stale version.
    #[error("resource {resource} update conflict: expected version {expected:?}, actual version {actual:?}")]
    VersionConflict {
        /// The resource.
        resource: String,
        /// Version the caller based its update on.
        expected: String,
        /// Version stored.
        actual: String,
    },
    /// Write by someone other than the owner.
    #[error("resource {resource} is owned by {owner:?}")]
    OwnerConflict {
        /// The resource.
        resource: String,
        /// Its owner.
        owner: String,
    },
    /// Update with an expected phase that does not hold.
    #[error("resource {resource} is not in phase {phase}")]
    PhaseConflict {
        /// The resource.
        resource: String,
        /// The phase the caller expected.
        phase: Phase,
    },
    /// Destroy while finalizers are set.
    #[error("resource {resource} has pending finalizers {finalizers:?}")]
    PendingFinalizers {
        /// The resource.
        resource: String,
        /// The finalizers.
        finalizers: Vec<String>,
    },
    /// A spec that does not (de)serialize.
    #[error("invalid resource spec: {0}")]
    Spec(String),
}

/// What happened to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Created (also: initial contents of a watch).
    Created,
    /// Updated.
    Updated,
    /// Destroyed (also: initial event of a single-id watch when it does not exist).
    Destroyed,
    /// End of the initial contents of a kind watch.
    Bootstrapped,
    /// The watch failed (e.g. the watcher fell too far behind) and ends.
    Errored,
}

/// One watch event.
#[derive(Debug, Clone)]
pub struct Event {
    /// Kind of change.
    pub kind: EventKind,
    /// The resource after the change (before, for `Destroyed`); `None` for markers.
    pub resource: Option<Arc<Resource>>,
    /// The previous version, for `Updated`.
    pub old: Option<Arc<Resource>>,
    /// Why the watch failed, for `Errored`.
    pub error: Option<String>,
}

impl Event {
    fn new(kind: EventKind, resource: Arc<Resource>, old: Option<Arc<Resource>>) -> Event {
        Event {
            kind,
            resource: Some(resource),
            old,
            error: None,
        }
    }

    fn marker(kind: EventKind, error: Option<String>) -> Event {
        Event {
            kind,
            resource: None,
            old: None,
            error,
        }
    }
}

struct Bucket {
    items: BTreeMap<String, Arc<Resource>>,
    tx: broadcast::Sender<Event>,
    history: VecDeque<Event>,
}

impl Bucket {
    fn new() -> Bucket {
        Bucket {
            items: BTreeMap::new(),
            tx: broadcast::channel(CHANNEL_DEPTH).0,
            history: VecDeque::new(),
        }
    }

    fn publish(&mut self, event: Event) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(event.clone());
        // No receivers is fine: nobody watches this kind right now.
        let _ = self.tx.send(event);
    }
}

type Kind = (String, String);

/// The resource store. Cheap to clone; clones share the data.
#[derive(Clone, Default)]
pub struct State {
    buckets: Arc<Mutex<HashMap<Kind, Bucket>>>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").finish_non_exhaustive()
    }
}

fn kind(namespace: &str, resource_type: &str) -> Kind {
    (namespace.to_string(), resource_type.to_string())
}

fn pointer(namespace: &str, resource_type: &str, id: &str) -> String {
    format!("{resource_type}({namespace}/{id}@undefined)")
}

impl State {
    /// An empty state.
    pub fn new() -> State {
        State::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Kind, Bucket>> {
        // A panic while holding the lock cannot leave a map half-updated (every write is a
        // single insert/remove), so a poisoned lock is still consistent.
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One resource.
    pub fn get(
        &self,
        namespace: &str,
        resource_type: &str,
        id: &str,
    ) -> Result<Arc<Resource>, StateError> {
        self.lock()
            .get(&kind(namespace, resource_type))
            .and_then(|b| b.items.get(id).cloned())
            .ok_or_else(|| StateError::NotFound(pointer(namespace, resource_type, id)))
    }

    /// One resource, decoded.
    pub fn get_typed<T: ResourceSpec>(&self, id: &str) -> Result<T, StateError> {
        self.get(T::NAMESPACE, T::TYPE, id)?.typed()
    }

    /// Every resource of a type in a namespace, sorted by id.
    pub fn list(&self, namespace: &str, resource_type: &str) -> Vec<Arc<Resource>> {
        self.lock()
            .get(&kind(namespace, resource_type))
            .map(|b| b.items.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Stores a new resource owned by `owner`, version 1. Its version and times are set here.
    pub fn create(&self, mut resource: Resource, owner: &str) -> Result<Arc<Resource>, StateError> {
        let mut buckets = self.lock();
        let md = &resource.metadata;
        let bucket = buckets
            .entry(kind(&md.namespace, &md.resource_type))
            .or_insert_with(Bucket::new);
        if bucket.items.contains_key(&md.id) {
            return Err(StateError::AlreadyExists(pointer(
                &md.namespace,
                &md.resource_type,
                &md.id,
            )));
        }
        let now = SystemTime::now();
        resource.metadata.version = 1;
        resource.metadata.owner = owner.to_string();
        resource.metadata.created = now;
        resource.metadata.updated = now;
        let stored = Arc::new(resource);
        bucket
            .items
            .insert(stored.metadata.id.clone(), Arc::clone(&stored));
        bucket.publish(Event::new(EventKind::Created, Arc::clone(&stored), None));
        Ok(stored)
    }

    /// Replaces a resource. `resource.metadata.version` must be the version the caller read;
    /// the owner must match; `expected_phase`, when given, must hold.
    pub fn update(
        &self,
        resource: Resource,
        owner: &str,
        expected_phase: Option<Phase>,
    ) -> Result<Arc<Resource>, StateError> {
        let mut buckets = self.lock();
        let md = &resource.metadata;
        let current = buckets
            .get(&kind(&md.namespace, &md.resource_type))
            .and_then(|b| b.items.get(&md.id))
            .cloned()
            .ok_or_else(|| StateError::NotFound(md.to_string()))?;
        let cur = &current.metadata;
        if cur.owner != owner {
            return Err(StateError::OwnerConflict {
                resource: cur.to_string(),
                owner: cur.owner.clone(),
            });
        }
        if cur.version != md.version {
            return Err(StateError::VersionConflict {
                resource: cur.to_string(),
                expected: md.version_string(),
                actual: cur.version_string(),
            });
        }
        if let Some(phase) = expected_phase {
            if cur.phase != phase {
                return Err(StateError::PhaseConflict {
                    resource: cur.to_string(),
                    phase,
                });
            }
        }
        Ok(Self::replace(&mut buckets, current, resource))
    }

    /// Stores `new` over `current` (checks done), bumping the version.
    fn replace(
        buckets: &mut HashMap<Kind, Bucket>,
        current: Arc<Resource>,
        mut new: Resource,
    ) -> Arc<Resource> {
        new.metadata.version = current.metadata.version + 1;
        new.metadata.owner = current.metadata.owner.clone();
        new.metadata.created = current.metadata.created;
        new.metadata.updated = SystemTime::now();
        let stored = Arc::new(new);
        let md = &stored.metadata;
        if let Some(bucket) = buckets.get_mut(&kind(&md.namespace, &md.resource_type)) {
            bucket.items.insert(md.id.clone(), Arc::clone(&stored));
            bucket.publish(Event::new(
                EventKind::Updated,
                Arc::clone(&stored),
                Some(current),
            ));
        }
        stored
    }

    /// Creates or updates a resource on behalf of `owner` without a version check (the way a
    /// controller writes its outputs). Nothing is written, and no event is sent, when spec,
    /// labels, annotations and phase are unchanged. Returns the stored resource.
    pub fn put(&self, resource: Resource, owner: &str) -> Result<Arc<Resource>, StateError> {
        let existing = {
            let buckets = self.lock();
            let md = &resource.metadata;
            buckets
                .get(&kind(&md.namespace, &md.resource_type))
                .and_then(|b| b.items.get(&md.id))
                .cloned()
        };
        let Some(current) = existing else {
            return match self.create(resource.clone(), owner) {
                // Lost a race with another writer: retry as an update.
                Err(StateError::AlreadyExists(_)) => self.put(resource, owner),
                other => other,
            };
        };
        let cur = &current.metadata;
        if cur.owner != owner {
            return Err(StateError::OwnerConflict {
                resource: cur.to_string(),
                owner: cur.owner.clone(),
            });
        }
        let md = &resource.metadata;
        if current.spec == resource.spec
            && cur.labels == md.labels
            && cur.annotations == md.annotations
            && cur.phase == md.phase
        {
            return Ok(current);
        }
        let mut new = resource;
        new.metadata.version = current.metadata.version;
        new.metadata.finalizers = current.metadata.finalizers.clone();
        match self.update(new.clone(), owner, None) {
            // Someone else wrote in between: read again.
            Err(StateError::VersionConflict { .. }) => self.put(new, owner),
            other => other,
        }
    }

    /// Creates or modifies the typed resource `id`: `f` gets the current spec (or the default
    /// one) and changes it. Writes only when something changed.
    pub fn modify<T, F>(&self, id: &str, owner: &str, f: F) -> Result<Arc<Resource>, StateError>
    where
        T: ResourceSpec + Default,
        F: FnOnce(&mut T),
    {
        let (mut spec, metadata) = match self.get(T::NAMESPACE, T::TYPE, id) {
            Ok(r) => (r.typed::<T>()?, r.metadata.clone()),
            Err(StateError::NotFound(_)) => {
                (T::default(), Metadata::new(T::NAMESPACE, T::TYPE, id))
            }
            Err(e) => return Err(e),
        };
        f(&mut spec);
        self.put(
            Resource {
                metadata,
                spec: Spec::typed(spec),
            },
            owner,
        )
    }

    /// Moves a resource to `tearingDown` (bumps the version once). Returns whether it can be
    /// destroyed now (no finalizers).
    pub fn teardown(
        &self,
        namespace: &str,
        resource_type: &str,
        id: &str,
        owner: &str,
    ) -> Result<bool, StateError> {
        let current = self.get(namespace, resource_type, id)?;
        if current.metadata.phase != Phase::TearingDown {
            let mut new = (*current).clone();
            new.metadata.phase = Phase::TearingDown;
            self.update(new, owner, Some(Phase::Running))?;
        } else if current.metadata.owner != owner {
            return Err(StateError::OwnerConflict {
                resource: current.metadata.to_string(),
                owner: current.metadata.owner.clone(),
            });
        }
        Ok(self
            .get(namespace, resource_type, id)?
            .metadata
            .finalizers
            .is_empty())
    }

    /// Adds (`add`) or removes a finalizer. Anyone may do this (finalizers belong to the
    /// consumers, not the owner). No-op if already in the wanted state.
    pub fn set_finalizer(
        &self,
        namespace: &str,
        resource_type: &str,
        id: &str,
        finalizer: &str,
        add: bool,
    ) -> Result<Arc<Resource>, StateError> {
        let mut buckets = self.lock();
        let current = buckets
            .get(&kind(namespace, resource_type))
            .and_then(|b| b.items.get(id))
            .cloned()
            .ok_or_else(|| StateError::NotFound(pointer(namespace, resource_type, id)))?;
        let has = current.metadata.finalizers.iter().any(|f| f == finalizer);
        if has == add {
            return Ok(current);
        }
        let mut new = (*current).clone();
        if add {
            new.metadata.finalizers.push(finalizer.to_string());
        } else {
            new.metadata.finalizers.retain(|f| f != finalizer);
        }
        Ok(Self::replace(&mut buckets, current, new))
    }

    /// Removes a resource. Only its owner may, and only without pending finalizers.
    pub fn destroy(
        &self,
        namespace: &str,
        resource_type: &str,
        id: &str,
        owner: &str,
    ) -> Result<(), StateError> {
        let mut buckets = self.lock();
        let bucket = buckets
            .get_mut(&kind(namespace, resource_type))
            .ok_or_else(|| StateError::NotFound(pointer(namespace, resource_type, id)))?;
        let current = bucket
            .items
            .get(id)
            .cloned()
            .ok_or_else(|| StateError::NotFound(pointer(namespace, resource_type, id)))?;
        let md = &current.metadata;
        if md.owner != owner {
            return Err(StateError::OwnerConflict {
                resource: md.to_string(),
                owner: md.owner.clone(),
            });
        }
        if !md.finalizers.is_empty() {
            return Err(StateError::PendingFinalizers {
                resource: md.to_string(),
                finalizers: md.finalizers.clone(),
            });
        }
        bucket.items.remove(id);
        bucket.publish(Event::new(EventKind::Destroyed, current, None));
        Ok(())
    }

    /// Watches one resource: the first event is its current state (`Created`), or a bare
    /// `Destroyed` resource when it does not exist; then every change of it.
    pub fn watch(&self, namespace: &str, resource_type: &str, id: &str) -> Watch {
        let mut buckets = self.lock();
        let bucket = buckets
            .entry(kind(namespace, resource_type))
            .or_insert_with(Bucket::new);
        let rx = bucket.tx.subscribe();
        let first = match bucket.items.get(id) {
            Some(r) => Event::new(EventKind::Created, Arc::clone(r), None),
            None => Event::new(
                EventKind::Destroyed,
                Arc::new(Resource {
                    metadata: Metadata::new(namespace, resource_type, id),
                    spec: Default::default(),
                }),
                None,
            ),
        };
        Watch {
            pending: VecDeque::from([first]),
            rx,
            id: Some(id.to_string()),
            namespace: namespace.to_string(),
            resource_type: resource_type.to_string(),
            done: false,
        }
    }

    /// Watches every resource of a type. With `bootstrap`, the watch starts with a `Created`
    /// event per current resource and one `Bootstrapped` marker; `tail` replays up to that
    /// many recent events first (without bootstrap).
    pub fn watch_kind(
        &self,
        namespace: &str,
        resource_type: &str,
        bootstrap: bool,
        tail: usize,
    ) -> Watch {
        let mut buckets = self.lock();
        let bucket = buckets
            .entry(kind(namespace, resource_type))
            .or_insert_with(Bucket::new);
        let rx = bucket.tx.subscribe();
        let mut pending = VecDeque::new();
        if bootstrap {
            for r in bucket.items.values() {
                pending.push_back(Event::new(EventKind::Created, Arc::clone(r), None));
            }
            pending.push_back(Event::marker(EventKind::Bootstrapped, None));
        } else if tail > 0 {
            let skip = bucket.history.len().saturating_sub(tail);
            pending.extend(bucket.history.iter().skip(skip).cloned());
        }
        Watch {
            pending,
            rx,
            id: None,
            namespace: namespace.to_string(),
            resource_type: resource_type.to_string(),
            done: false,
        }
    }
}

/// A stream of events of one kind (or one resource).
pub struct Watch {
    pending: VecDeque<Event>,
    rx: broadcast::Receiver<Event>,
    id: Option<String>,
    namespace: String,
    resource_type: String,
    done: bool,
}

impl Watch {
    /// The next event; `None` once the watch has ended (after an `Errored` event).
    pub async fn next(&mut self) -> Option<Event> {
        if let Some(e) = self.pending.pop_front() {
            return Some(e);
        }
        if self.done {
            return None;
        }
        loop {
            match self.rx.recv().await {
                Ok(event) => {
                    let matches = match (&self.id, &event.resource) {
                        (Some(id), Some(r)) => &r.metadata.id == id,
                        _ => true,
                    };
                    if matches {
                        return Some(event);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.done = true;
                    return Some(Event::marker(
                        EventKind::Errored,
                        Some(format!(
                            "buffer overrun: namespace {:?} type {:?}",
                            self.namespace, self.resource_type
                        )),
                    ));
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.done = true;
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(id: &str, yaml: &str) -> Resource {
        Resource {
            metadata: Metadata::new("runtime", "Things.test.dev", id),
            spec: Spec::new(yaml, Vec::new()),
        }
    }

    #[test]
    fn versions_bump_on_update_and_conflicts_are_refused() {
        let st = State::new();
        let r = st.create(res("a", "x: 1\n"), "ctrl").unwrap();
        assert_eq!(r.metadata.version, 1);
        assert_eq!(r.metadata.owner, "ctrl");
        let mut next = (*r).clone();
        next.spec = Spec::new("x: 2\n", Vec::new());
        let r2 = st.update(next.clone(), "ctrl", None).unwrap();
        assert_eq!(r2.metadata.version, 2);
        assert_eq!(r2.metadata.created, r.metadata.created);
        // Stale version.
        let err = st.update(next, "ctrl", None).unwrap_err();
        assert!(matches!(err, StateError::VersionConflict { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "resource Things.test.dev(runtime/a@2) update conflict: expected version \"1\", actual version \"2\""
        );
        assert!(matches!(
            st.create(res("a", ""), "ctrl"),
            Err(StateError::AlreadyExists(_))
        ));
        assert_eq!(
            st.get("runtime", "Things.test.dev", "nope")
                .unwrap_err()
                .to_string(),
            "resource Things.test.dev(runtime/nope@undefined) doesn't exist"
        );
    }

    #[test]
    fn typed_specs_are_stored_typed_and_serialized_for_the_wire() {
        use crate::resources::specs::{HostnameStatusSpec, ServiceSpec};
        use crate::resources::{wire, ResourceSpec as _};
        let st = State::new();
        let up = ServiceSpec {
            running: true,
            healthy: true,
            unknown: false,
        };
        let r = st.put(Resource::from_typed("apid", &up), "svc").unwrap();
        assert_eq!(r.metadata.version, 1);
        // Read back typed, without decoding anything.
        assert_eq!(r.spec.typed_ref::<ServiceSpec>(), Some(&up));
        assert_eq!(st.get_typed::<ServiceSpec>("apid").unwrap(), up);
        // An equal value writes nothing; a different one does.
        assert_eq!(
            st.put(Resource::from_typed("apid", &up.clone()), "svc")
                .unwrap()
                .metadata
                .version,
            1
        );
        let down = ServiceSpec {
            running: false,
            ..up.clone()
        };
        assert_eq!(
            st.modify::<ServiceSpec, _>("apid", "svc", |s| s.running = false)
                .unwrap()
                .metadata
                .version,
            2
        );
        assert_eq!(st.get_typed::<ServiceSpec>("apid").unwrap(), down);
        // The wire forms are the spec's own serialization.
        let stored = st.get("runtime", ServiceSpec::TYPE, "apid").unwrap();
        let w = wire::to_proto(&stored).unwrap();
        let spec = w.spec.unwrap();
        assert_eq!(spec.yaml_spec, down.to_yaml().unwrap());
        assert_eq!(spec.proto_spec, down.to_proto());
        // A spec that came over the wire is decoded from its YAML.
        let from_wire = Resource {
            metadata: Metadata::new("runtime", ServiceSpec::TYPE, "trustd"),
            spec: Spec::new("running: true\nhealthy: false\nunknown: true\n", Vec::new()),
        };
        st.create(from_wire, "svc").unwrap();
        let t = st.get_typed::<ServiceSpec>("trustd").unwrap();
        assert!(t.running && !t.healthy && t.unknown);
        // And equals the typed value it serializes from.
        assert_eq!(
            Spec::new(down.to_yaml().unwrap(), down.to_proto()),
            Spec::typed(down.clone())
        );
        // Types are checked.
        let err = stored.typed::<HostnameStatusSpec>().unwrap_err();
        assert!(err.to_string().contains("is not of type"), "{err}");
        assert!(stored.spec.typed_ref::<HostnameStatusSpec>().is_none());
    }

    #[tokio::test]
    async fn watchers_see_typed_values() {
        use crate::resources::specs::ServiceSpec;
        let st = State::new();
        let mut w = st.watch_kind("runtime", "Services.v1alpha1.talos.dev", false, 0);
        let spec = ServiceSpec {
            running: true,
            ..Default::default()
        };
        st.put(Resource::from_typed("apid", &spec), "svc").unwrap();
        let e = w.next().await.unwrap();
        assert_eq!(e.kind, EventKind::Created);
        let r = e.resource.unwrap();
        assert_eq!(r.spec.typed_ref::<ServiceSpec>(), Some(&spec));
    }

    #[test]
    fn owners_guard_writes() {
        let st = State::new();
        let r = st.create(res("a", "x: 1\n"), "ctrl").unwrap();
        let err = st.update((*r).clone(), "other", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "resource Things.test.dev(runtime/a@1) is owned by \"ctrl\""
        );
        assert!(matches!(
            st.put(res("a", "x: 9\n"), "other"),
            Err(StateError::OwnerConflict { .. })
        ));
        assert!(matches!(
            st.destroy("runtime", "Things.test.dev", "a", "other"),
            Err(StateError::OwnerConflict { .. })
        ));
        st.destroy("runtime", "Things.test.dev", "a", "ctrl")
            .unwrap();
        assert!(st.list("runtime", "Things.test.dev").is_empty());
    }

    #[test]
    fn put_writes_only_changes() {
        let st = State::new();
        assert_eq!(st.put(res("a", "x: 1\n"), "c").unwrap().metadata.version, 1);
        assert_eq!(st.put(res("a", "x: 1\n"), "c").unwrap().metadata.version, 1);
        assert_eq!(st.put(res("a", "x: 2\n"), "c").unwrap().metadata.version, 2);
        let mut labelled = res("a", "x: 2\n");
        labelled.metadata.labels.insert("k".into(), "v".into());
        assert_eq!(st.put(labelled, "c").unwrap().metadata.version, 3);
    }

    #[test]
    fn finalizers_block_destroy_and_teardown_sets_phase() {
        let st = State::new();
        st.create(res("a", ""), "c").unwrap();
        st.set_finalizer("runtime", "Things.test.dev", "a", "user", true)
            .unwrap();
        assert!(!st.teardown("runtime", "Things.test.dev", "a", "c").unwrap());
        let r = st.get("runtime", "Things.test.dev", "a").unwrap();
        assert_eq!(r.metadata.phase, Phase::TearingDown);
        assert!(matches!(
            st.destroy("runtime", "Things.test.dev", "a", "c"),
            Err(StateError::PendingFinalizers { .. })
        ));
        st.set_finalizer("runtime", "Things.test.dev", "a", "user", false)
            .unwrap();
        assert!(st.teardown("runtime", "Things.test.dev", "a", "c").unwrap());
        // Phase expectations are checked on update.
        let r = st.get("runtime", "Things.test.dev", "a").unwrap();
        assert!(matches!(
            st.update((*r).clone(), "c", Some(Phase::Running)),
            Err(StateError::PhaseConflict { .. })
        ));
        st.destroy("runtime", "Things.test.dev", "a", "c").unwrap();
    }

    #[tokio::test]
    async fn kind_watch_bootstraps_then_follows_in_order() {
        let st = State::new();
        st.create(res("b", "v: 1\n"), "c").unwrap();
        st.create(res("a", "v: 1\n"), "c").unwrap();
        let mut w = st.watch_kind("runtime", "Things.test.dev", true, 0);
        st.put(res("a", "v: 2\n"), "c").unwrap();
        st.create(res("c", ""), "c").unwrap();
        st.destroy("runtime", "Things.test.dev", "b", "c").unwrap();
        // Another kind must not show up.
        st.create(
            Resource {
                metadata: Metadata::new("runtime", "Others.test.dev", "a"),
                spec: Spec::default(),
            },
            "c",
        )
        .unwrap();
        let mut seen = Vec::new();
        for _ in 0..6 {
            let e = w.next().await.unwrap();
            let id = e
                .resource
                .as_ref()
                .map(|r| r.metadata.id.clone())
                .unwrap_or_default();
            seen.push((e.kind, id));
        }
        use EventKind::*;
        assert_eq!(
            seen,
            vec![
                (Created, "a".into()),
                (Created, "b".into()),
                (Bootstrapped, String::new()),
                (Updated, "a".into()),
                (Created, "c".into()),
                (Destroyed, "b".into()),
            ]
        );
        let mut tail = st.watch_kind("runtime", "Things.test.dev", false, 2);
        assert_eq!(tail.next().await.unwrap().kind, Created);
        assert_eq!(tail.next().await.unwrap().kind, Destroyed);
    }

    #[tokio::test]
    async fn id_watch_starts_with_current_state() {
        let st = State::new();
        let mut w = st.watch("runtime", "Things.test.dev", "a");
        let first = w.next().await.unwrap();
        assert_eq!(first.kind, EventKind::Destroyed);
        st.create(res("b", ""), "c").unwrap();
        st.create(res("a", "v: 1\n"), "c").unwrap();
        let e = w.next().await.unwrap();
        assert_eq!(e.kind, EventKind::Created);
        assert_eq!(e.resource.unwrap().metadata.id, "a");
        st.put(res("a", "v: 2\n"), "c").unwrap();
        let e = w.next().await.unwrap();
        assert_eq!(e.kind, EventKind::Updated);
        assert_eq!(e.old.unwrap().spec.yaml().unwrap(), "v: 1\n");
    }

    #[tokio::test]
    async fn overrun_ends_the_watch_with_an_error() {
        let st = State::new();
        let mut w = st.watch_kind("runtime", "Things.test.dev", false, 0);
        for i in 0..(CHANNEL_DEPTH + 10) {
            st.put(res("a", &format!("v: {i}\n")), "c").unwrap();
        }
        let e = w.next().await.unwrap();
        assert_eq!(e.kind, EventKind::Errored);
        assert!(e.error.unwrap().contains("buffer overrun"));
        assert!(w.next().await.is_none());
    }
}
