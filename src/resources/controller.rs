//! A small controller runtime in the kube-rs style.
//!
//! A [`Controller`] names its inputs (namespace + type, optionally one id) and the output types
//! it owns. The runtime runs `reconcile` once at start, then again whenever an input changes
//! or the requested requeue time passes ([`Action`]). A failed reconcile is logged and retried
//! with exponential back-off (input changes also retry at once). Writes go through the
//! [`Context`], which stamps the controller's name as owner and refuses types the controller
//! does not declare as outputs; the store refuses resources owned by anyone else.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::meta::Resource;
use super::state::{State, StateError};
use super::ResourceSpec;

/// What to do after a successful reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Run again after this long (or earlier if an input changes).
    Requeue(Duration),
    /// Run again only when an input changes.
    AwaitChange,
}

/// A watched input: every resource of a type in a namespace, or one id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// Namespace.
    pub namespace: String,
    /// Resource type.
    pub resource_type: String,
    /// Only this id (all when `None`).
    pub id: Option<String>,
}

impl Input {
    /// Every resource of the typed spec's type in its default namespace.
    pub fn of<T: ResourceSpec>() -> Input {
        Input {
            namespace: T::NAMESPACE.to_string(),
            resource_type: T::TYPE.to_string(),
            id: None,
        }
    }

    /// One resource of the typed spec's type.
    pub fn one<T: ResourceSpec>(id: &str) -> Input {
        Input {
            id: Some(id.to_string()),
            ..Input::of::<T>()
        }
    }
}

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The controller tried to write a type it does not declare as output.
    #[error("controller {controller} does not own outputs of type {resource_type}")]
    NotAnOutput {
        /// The controller.
        controller: String,
        /// The type it tried to write.
        resource_type: String,
    },
    /// The store refused the operation.
    #[error(transparent)]
    State(#[from] StateError),
    /// Anything else (reading the system, parsing, …).
    #[error("{0}")]
    Other(String),
}

/// A controller.
pub trait Controller: Send + 'static {
    /// Name, also the owner of its outputs (Talos style: `network.HostnameStatusController`).
    fn name(&self) -> &'static str;
    /// What to watch.
    fn inputs(&self) -> Vec<Input>;
    /// Types it writes (and owns).
    fn outputs(&self) -> Vec<&'static str>;
    /// Brings the outputs in line with the inputs and the system.
    fn reconcile(
        &mut self,
        ctx: &Context,
    ) -> impl Future<Output = Result<Action, ControllerError>> + Send;
}

/// What a reconcile sees: the state, and writes checked against the controller's outputs.
#[derive(Clone)]
pub struct Context {
    state: State,
    name: &'static str,
    outputs: Arc<Vec<&'static str>>,
}

impl Context {
    /// A context for a controller named `name` owning `outputs` (the runtime makes these;
    /// tests may too).
    pub fn new(state: State, name: &'static str, outputs: Vec<&'static str>) -> Context {
        Context {
            state,
            name,
            outputs: Arc::new(outputs),
        }
    }

    /// The state, for reads.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The owner name stamped on writes.
    pub fn owner(&self) -> &'static str {
        self.name
    }

    fn check(&self, resource_type: &str) -> Result<(), ControllerError> {
        if self.outputs.contains(&resource_type) {
            Ok(())
        } else {
            Err(ControllerError::NotAnOutput {
                controller: self.name.to_string(),
                resource_type: resource_type.to_string(),
            })
        }
    }

    /// Creates or updates an output (no write when unchanged).
    pub fn put(&self, resource: Resource) -> Result<Arc<Resource>, ControllerError> {
        self.check(&resource.metadata.resource_type)?;
        Ok(self.state.put(resource, self.name)?)
    }

    /// Creates or updates a typed output with `spec`.
    pub fn put_typed<T: ResourceSpec>(
        &self,
        id: &str,
        spec: &T,
    ) -> Result<Arc<Resource>, ControllerError> {
        self.put(Resource::from_typed(id, spec))
    }

    /// Creates or modifies a typed output in place.
    pub fn modify<T, F>(&self, id: &str, f: F) -> Result<Arc<Resource>, ControllerError>
    where
        T: ResourceSpec + Default,
        F: FnOnce(&mut T),
    {
        self.check(T::TYPE)?;
        Ok(self.state.modify::<T, F>(id, self.name, f)?)
    }

    /// Destroys an output (not found is fine).
    pub fn destroy(
        &self,
        namespace: &str,
        resource_type: &str,
        id: &str,
    ) -> Result<(), ControllerError> {
        self.check(resource_type)?;
        match self.state.destroy(namespace, resource_type, id, self.name) {
            Ok(()) | Err(StateError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Destroys every output of a type whose id `keep` rejects (clean-up after a reconcile).
    pub fn retain<F: Fn(&str) -> bool>(
        &self,
        namespace: &str,
        resource_type: &str,
        keep: F,
    ) -> Result<(), ControllerError> {
        for r in self.state.list(namespace, resource_type) {
            if r.metadata.owner == self.name && !keep(&r.metadata.id) {
                self.destroy(namespace, resource_type, &r.metadata.id)?;
            }
        }
        Ok(())
    }
}

/// Exponential back-off between failed reconciles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// First delay.
    pub initial: Duration,
    /// Upper bound.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

/// Runs controllers on the current tokio runtime until [`Runtime::stop`].
pub struct Runtime {
    state: State,
    backoff: Backoff,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Runtime {
    /// A runtime over `state`.
    pub fn new(state: State) -> Runtime {
        Runtime {
            state,
            backoff: Backoff::default(),
            shutdown: watch::channel(false).0,
            tasks: Vec::new(),
        }
    }

    /// Uses another back-off (tests use short ones).
    pub fn with_backoff(mut self, backoff: Backoff) -> Runtime {
        self.backoff = backoff;
        self
    }

    /// Starts a controller.
    pub fn spawn<C: Controller>(&mut self, controller: C) {
        let state = self.state.clone();
        let backoff = self.backoff;
        let shutdown = self.shutdown.subscribe();
        self.tasks
            .push(tokio::spawn(run(state, controller, backoff, shutdown)));
    }

    /// Stops every controller and waits for them.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

async fn run<C: Controller>(
    state: State,
    mut controller: C,
    backoff: Backoff,
    mut shutdown: watch::Receiver<bool>,
) {
    let name = controller.name();
    let ctx = Context::new(state.clone(), name, controller.outputs());
    let changed = Arc::new(Notify::new());
    let mut forwarders = Vec::new();
    for input in controller.inputs() {
        let mut w = match &input.id {
            Some(id) => state.watch(&input.namespace, &input.resource_type, id),
            None => state.watch_kind(&input.namespace, &input.resource_type, false, 0),
        };
        let changed = Arc::clone(&changed);
        forwarders.push(tokio::spawn(async move {
            while w.next().await.is_some() {
                changed.notify_one();
            }
        }));
    }
    let mut delay = backoff.initial;
    loop {
        let wait = match controller.reconcile(&ctx).await {
            Ok(action) => {
                delay = backoff.initial;
                match action {
                    Action::Requeue(after) => Some(after),
                    Action::AwaitChange => None,
                }
            }
            Err(e) => {
                tracing::warn!(
                    target: crate::log::CONTROLLER_RUNTIME,
                    component = crate::log::CONTROLLER_RUNTIME,
                    controller = name,
                    retry_in = ?delay,
                    "reconcile failed: {e}"
                );
                let wait = delay;
                delay = (delay * 2).min(backoff.max);
                Some(wait)
            }
        };
        let timer = async {
            match wait {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = changed.notified() => {}
            _ = timer => {}
            _ = shutdown.wait_for(|down| *down) => break,
        }
    }
    for f in forwarders {
        f.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::specs::{HostnameStatusSpec, NodenameSpec, ServiceSpec};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Copies the hostname into the node name; fails its first `fail` runs.
    struct Copy {
        runs: Arc<AtomicUsize>,
        fail: usize,
    }

    impl Controller for Copy {
        fn name(&self) -> &'static str {
            "test.CopyController"
        }
        fn inputs(&self) -> Vec<Input> {
            vec![Input::one::<HostnameStatusSpec>("hostname")]
        }
        fn outputs(&self) -> Vec<&'static str> {
            vec![NodenameSpec::TYPE]
        }
        async fn reconcile(&mut self, ctx: &Context) -> Result<Action, ControllerError> {
            let n = self.runs.fetch_add(1, Ordering::SeqCst);
            if n < self.fail {
                return Err(ControllerError::Other(format!("failure {n}")));
            }
            let Ok(h) = ctx.state().get_typed::<HostnameStatusSpec>("hostname") else {
                return Ok(Action::AwaitChange);
            };
            ctx.modify::<NodenameSpec, _>("nodename", |s| s.nodename = h.hostname.clone())?;
            Ok(Action::AwaitChange)
        }
    }

    async fn eventually<F: Fn() -> bool>(f: F) {
        for _ in 0..200 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("condition not reached");
    }

    fn nodename(st: &State) -> Option<String> {
        st.get_typed::<NodenameSpec>("nodename")
            .ok()
            .map(|n| n.nodename)
    }

    #[tokio::test]
    async fn reacts_to_input_changes() {
        let st = State::new();
        let mut rt = Runtime::new(st.clone());
        let runs = Arc::new(AtomicUsize::new(0));
        rt.spawn(Copy {
            runs: Arc::clone(&runs),
            fail: 0,
        });
        eventually(|| runs.load(Ordering::SeqCst) >= 1).await;
        assert_eq!(nodename(&st), None);
        st.modify::<HostnameStatusSpec, _>("hostname", "net", |h| h.hostname = "a".into())
            .unwrap();
        eventually(|| nodename(&st).as_deref() == Some("a")).await;
        st.modify::<HostnameStatusSpec, _>("hostname", "net", |h| h.hostname = "b".into())
            .unwrap();
        eventually(|| nodename(&st).as_deref() == Some("b")).await;
        let r = st
            .get(NodenameSpec::NAMESPACE, NodenameSpec::TYPE, "nodename")
            .unwrap();
        assert_eq!(r.metadata.owner, "test.CopyController");
        assert_eq!(r.metadata.version, 2);
        rt.stop().await;
    }

    #[tokio::test]
    async fn retries_failures_with_backoff() {
        let st = State::new();
        st.modify::<HostnameStatusSpec, _>("hostname", "net", |h| h.hostname = "x".into())
            .unwrap();
        let mut rt = Runtime::new(st.clone()).with_backoff(Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(40),
        });
        let runs = Arc::new(AtomicUsize::new(0));
        rt.spawn(Copy {
            runs: Arc::clone(&runs),
            fail: 3,
        });
        eventually(|| nodename(&st).as_deref() == Some("x")).await;
        assert_eq!(runs.load(Ordering::SeqCst), 4);
        rt.stop().await;
    }

    #[tokio::test]
    async fn requeue_runs_again() {
        struct Tick(Arc<AtomicUsize>);
        impl Controller for Tick {
            fn name(&self) -> &'static str {
                "test.Tick"
            }
            fn inputs(&self) -> Vec<Input> {
                Vec::new()
            }
            fn outputs(&self) -> Vec<&'static str> {
                Vec::new()
            }
            async fn reconcile(&mut self, _: &Context) -> Result<Action, ControllerError> {
                self.0.fetch_add(1, Ordering::SeqCst);
                Ok(Action::Requeue(Duration::from_millis(5)))
            }
        }
        let runs = Arc::new(AtomicUsize::new(0));
        let mut rt = Runtime::new(State::new());
        rt.spawn(Tick(Arc::clone(&runs)));
        eventually(|| runs.load(Ordering::SeqCst) >= 3).await;
        rt.stop().await;
    }

    #[test]
    fn writes_only_declared_outputs_it_owns() {
        let st = State::new();
        let ctx = Context::new(st.clone(), "test.A", vec![ServiceSpec::TYPE]);
        let err = ctx
            .put_typed("nodename", &NodenameSpec::default())
            .unwrap_err();
        assert!(matches!(err, ControllerError::NotAnOutput { .. }), "{err}");
        ctx.put_typed("apid", &ServiceSpec::default()).unwrap();
        let other = Context::new(st.clone(), "test.B", vec![ServiceSpec::TYPE]);
        let err = other
            .modify::<ServiceSpec, _>("apid", |s| s.running = true)
            .unwrap_err();
        assert!(
            matches!(
                err,
                ControllerError::State(StateError::OwnerConflict { .. })
            ),
            "{err}"
        );
        ctx.put_typed("trustd", &ServiceSpec::default()).unwrap();
        ctx.retain("runtime", ServiceSpec::TYPE, |id| id == "apid")
            .unwrap();
        assert_eq!(st.list("runtime", ServiceSpec::TYPE).len(), 1);
    }
}
