//! machined's service supervisor: Talos's service ids, states, dependencies, conditions,
//! health checks and restart policies, running processes through the one child reaper.
//!
//! A [`Supervisor`] holds registered [`ServiceSpec`]s. Starting a service spawns its lifecycle
//! task ([`run`]), which walks Talos's states
//!
//! ```text
//! Starting → Waiting (dependencies, conditions) → Preparing (pre step, runner)
//!          → Running (process up, health checked) → Waiting (restart back-off) → Running …
//!          → Stopping → Finished | Failed
//! ```
//!
//! Every transition is recorded as Talos records it: an entry in the service's event history
//! (`talosctl service ID`), a `machine.ServiceStateEvent` on the event bus (`talosctl events`),
//! a `service[ID](State): message` line in machined's log (tracing) and in the service's own
//! log buffer (`talosctl logs ID`, which also gets the process's stdout and stderr and
//! survives restarts), and a [`ServiceChange`] on [`Supervisor::subscribe`].
//!
//! "Up" is Talos's `StateEventUp`: Running and healthy (or without a health check), or
//! Finished. "Down" is Failed or Finished. (Talos's Skipped state, for a service with nothing to
//! run, is never reached here: every node service has a runner.)

pub mod kubelet;
pub mod node;
pub mod run;
pub mod spec;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use prost::Message as _;
use talos::api::machine as pb;
use talos::events::EventBus;
use talos::logbuf::LogBuffers;
use talos::sys::reaper::Reaper;
use tokio::sync::{broadcast, watch};

use super::runtime::{BoxFuture, ControlError, ServiceControl};
use super::services::{timestamp, ServiceSource};
use spec::ApiPolicy;
pub use spec::{Runner, ServiceSpec, State};

/// Events kept per service (Talos: 64).
pub const MAX_EVENTS: usize = 64;
/// How long `stop_all` waits for a service's dependents before stopping it anyway.
pub const REVERSE_DEPENDENCY_WAIT: Duration = Duration::from_secs(30);

/// A service changed state or health (for the resource store's `Services` resources).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceChange {
    /// Service id.
    pub id: String,
    /// Its state now.
    pub state: State,
    /// Healthy (false when unknown).
    pub healthy: bool,
    /// No health check result yet (or no health check).
    pub unknown: bool,
    /// The event message.
    pub message: String,
}

/// Supervisor settings.
#[derive(Debug, Clone)]
pub struct SupervisorOptions {
    /// The cgroup2 root services' cgroups are created under (`None`: no cgroups).
    pub cgroup_root: Option<PathBuf>,
    /// How often conditions are re-checked while waiting (Talos: 1 s).
    pub condition_poll: Duration,
}

impl Default for SupervisorOptions {
    fn default() -> Self {
        SupervisorOptions {
            cgroup_root: None,
            condition_poll: Duration::from_secs(1),
        }
    }
}

/// One event of a service's history.
#[derive(Debug, Clone)]
pub struct ServiceEvent {
    /// The message.
    pub message: String,
    /// The state it put the service in.
    pub state: State,
    /// When.
    pub at: SystemTime,
}

#[derive(Debug, Clone, Default)]
struct Health {
    healthy: Option<bool>,
    last_message: String,
    last_change: Option<SystemTime>,
}

#[derive(Debug)]
struct Status {
    state: State,
    events: VecDeque<ServiceEvent>,
    health: Health,
    /// A lifecycle task is running (Talos's "running" set).
    active: bool,
    /// The pid of the current process.
    pid: Option<i32>,
}

struct Task {
    stop: watch::Sender<bool>,
    handle: tokio::task::JoinHandle<()>,
}

pub(crate) struct Service {
    spec: ServiceSpec,
    status: Mutex<Status>,
    task: tokio::sync::Mutex<Option<Task>>,
}

impl Service {
    fn status(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_up_locked(&self, status: &Status) -> bool {
        match status.state {
            State::Finished => true,
            State::Running => self.spec.health.is_none() || status.health.healthy == Some(true),
            _ => false,
        }
    }
}

pub(crate) struct Inner {
    services: Mutex<BTreeMap<String, Arc<Service>>>,
    reaper: Reaper,
    logs: Arc<LogBuffers>,
    events: Arc<EventBus>,
    changes: broadcast::Sender<ServiceChange>,
    /// Bumped on every change of any service (waiters re-check).
    any_change: watch::Sender<u64>,
    options: SupervisorOptions,
    terminating: std::sync::atomic::AtomicBool,
}

/// The service supervisor (cheap to clone).
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

fn not_defined(id: &str) -> ControlError {
    ControlError::NotFound(format!("service {id:?} not defined"))
}

/// Go's zero `time.Time` as a protobuf timestamp (what Talos reports for "never").
fn zero_timestamp() -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: -62_135_596_800,
        nanos: 0,
    }
}

impl Inner {
    fn map(&self) -> MutexGuard<'_, BTreeMap<String, Arc<Service>>> {
        self.services.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn service(&self, id: &str) -> Result<Arc<Service>, ControlError> {
        self.map().get(id).cloned().ok_or_else(|| not_defined(id))
    }

    fn bump(&self) {
        self.any_change.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn publish(&self, svc: &Service, state: State, message: &str, health: &Health) {
        let event = pb::ServiceStateEvent {
            service: svc.spec.id.clone(),
            action: state.action() as i32,
            message: message.to_string(),
            health: Some(pb::ServiceHealth {
                unknown: health.healthy.is_none(),
                healthy: health.healthy == Some(true),
                last_message: health.last_message.clone(),
                last_change: Some(health.last_change.map_or_else(zero_timestamp, timestamp)),
            }),
        };
        self.events.publish(
            &talos::events::runtime_type_url("machine.ServiceStateEvent"),
            event.encode_to_vec(),
            "",
        );
        let _ = self.changes.send(ServiceChange {
            id: svc.spec.id.clone(),
            state,
            healthy: health.healthy == Some(true),
            unknown: health.healthy.is_none(),
            message: message.to_string(),
        });
        tracing::info!("service[{}]({state}): {message}", svc.spec.id);
        let line = format!(
            "{} service[{}]({state}): {message}\n",
            talos_time(),
            svc.spec.id
        );
        self.logs.buffer(&svc.spec.id).append(line.as_bytes());
        self.bump();
    }

    /// Moves a service to `state` with `message` (Talos's `UpdateState`).
    fn update(&self, svc: &Service, state: State, message: &str) {
        self.record(svc, state, message, None);
    }

    /// Like [`Inner::update`], and `active` becomes `active` (set when a lifecycle starts or
    /// ends, in the same step as the state change so waiters never see a gap).
    fn record(&self, svc: &Service, state: State, message: &str, active: Option<bool>) {
        let health = {
            let mut status = svc.status();
            status.state = state;
            if let Some(active) = active {
                status.active = active;
            }
            push_event(&mut status.events, message, state);
            status.health.clone()
        };
        self.publish(svc, state, message, &health);
    }

    /// A health check result (Talos's `healthUpdate`): an event only when health changes
    /// while the service is Running.
    fn health_result(&self, svc: &Service, result: Result<(), String>) {
        let healthy = result.is_ok();
        let message = result.err().unwrap_or_default();
        let event = {
            let mut status = svc.status();
            let changed = status.health.healthy != Some(healthy);
            if changed {
                status.health.healthy = Some(healthy);
                status.health.last_change = Some(SystemTime::now());
            }
            status.health.last_message = message.clone();
            if changed && status.state == State::Running {
                let text = if healthy {
                    "Health check successful".to_string()
                } else {
                    format!("Health check failed: {message}")
                };
                push_event(&mut status.events, &text, State::Running);
                Some((text, status.health.clone()))
            } else {
                None
            }
        };
        match event {
            Some((text, health)) => self.publish(svc, State::Running, &text, &health),
            None => self.bump(),
        }
    }

    fn reset_health(&self, svc: &Service) {
        svc.status().health = Health::default();
        self.bump();
    }

    fn set_pid(&self, svc: &Service, pid: Option<i32>) {
        svc.status().pid = pid;
    }

    fn is_up(&self, id: &str) -> Option<bool> {
        let svc = self.map().get(id).cloned()?;
        let status = svc.status();
        Some(svc.is_up_locked(&status))
    }

    fn is_active(&self, id: &str) -> bool {
        self.map()
            .get(id)
            .map(|svc| svc.status().active)
            .unwrap_or(false)
    }
}

fn push_event(events: &mut VecDeque<ServiceEvent>, message: &str, state: State) {
    events.push_back(ServiceEvent {
        message: message.to_string(),
        state,
        at: SystemTime::now(),
    });
    while events.len() > MAX_EVENTS {
        events.pop_front();
    }
}

/// machined's log time stamp, `2024/04/20 10:11:12.123456` (UTC).
fn talos_time() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02}.{:06}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.microsecond()
    )
}

impl Supervisor {
    /// A supervisor reaping through the process-wide [`Reaper`], logging into `logs` and
    /// publishing on `events`.
    pub fn new(
        logs: Arc<LogBuffers>,
        events: Arc<EventBus>,
        options: SupervisorOptions,
    ) -> Result<Self, talos::sys::SysError> {
        let reaper = Reaper::global()?;
        let (changes, _) = broadcast::channel(256);
        Ok(Supervisor {
            inner: Arc::new(Inner {
                services: Mutex::new(BTreeMap::new()),
                reaper,
                logs,
                events,
                changes,
                any_change: watch::Sender::new(0),
                options,
                terminating: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    /// Adds a service (state Initialized). Returns false, changing nothing, if the id is
    /// already registered (like Talos's `Load`).
    pub fn register(&self, spec: ServiceSpec) -> bool {
        let mut map = self.inner.map();
        if map.contains_key(&spec.id) {
            return false;
        }
        // The log buffer exists from registration on (`talosctl logs` finds it).
        self.inner.logs.buffer(&spec.id);
        map.insert(
            spec.id.clone(),
            Arc::new(Service {
                spec,
                status: Mutex::new(Status {
                    state: State::Initialized,
                    events: VecDeque::new(),
                    health: Health::default(),
                    active: false,
                    pid: None,
                }),
                task: tokio::sync::Mutex::new(None),
            }),
        );
        true
    }

    /// Registered ids, sorted.
    #[cfg(test)]
    pub fn ids(&self) -> Vec<String> {
        self.inner.map().keys().cloned().collect()
    }

    /// Changes of every service from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ServiceChange> {
        self.inner.changes.subscribe()
    }

    /// The state of a service and its health (`None` = unknown).
    pub fn state(&self, id: &str) -> Option<(State, Option<bool>)> {
        let svc = self.inner.map().get(id).cloned()?;
        let status = svc.status();
        Some((status.state, status.health.healthy))
    }

    /// The pid of the service's current process.
    #[cfg(test)]
    pub fn pid(&self, id: &str) -> Option<i32> {
        let svc = self.inner.map().get(id).cloned()?;
        let pid = svc.status().pid;
        pid
    }

    /// Whether a service is up (Running and healthy or unchecked, or Finished).
    #[cfg(test)]
    pub fn is_up(&self, id: &str) -> bool {
        self.inner.is_up(id).unwrap_or(false)
    }

    /// The event history of a service, oldest first.
    #[cfg(test)]
    pub fn events(&self, id: &str) -> Vec<ServiceEvent> {
        match self.inner.map().get(id).cloned() {
            Some(svc) => svc.status().events.iter().cloned().collect(),
            None => Vec::new(),
        }
    }

    /// Starts a service; returns once it is Starting (no-op if its lifecycle already runs).
    pub async fn start(&self, id: &str) -> Result<(), ControlError> {
        let svc = self.inner.service(id)?;
        if self
            .inner
            .terminating
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(ControlError::FailedPrecondition(format!(
                "service {id:?} not started: the node is shutting down"
            )));
        }
        let mut task = svc.task.lock().await;
        if let Some(t) = task.as_ref() {
            if !t.handle.is_finished() {
                return Ok(());
            }
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        self.inner
            .record(&svc, State::Starting, "Starting service", Some(true));
        let handle = tokio::spawn(run::lifecycle(
            Arc::clone(&self.inner),
            Arc::clone(&svc),
            stop_rx,
        ));
        *task = Some(Task {
            stop: stop_tx,
            handle,
        });
        Ok(())
    }

    /// Stops a service and waits until its lifecycle has ended (no-op if it is not running).
    pub async fn stop(&self, id: &str) -> Result<(), ControlError> {
        let svc = self.inner.service(id)?;
        let mut task = svc.task.lock().await;
        if let Some(t) = task.take() {
            let _ = t.stop.send(true);
            if let Err(e) = t.handle.await {
                return Err(ControlError::Internal(format!(
                    "service {id:?}: supervisor task failed: {e}"
                )));
            }
        }
        Ok(())
    }

    /// Stops then starts a service (starts it if it was not running).
    pub async fn restart(&self, id: &str) -> Result<(), ControlError> {
        self.stop(id).await?;
        self.start(id).await
    }

    /// Waits until every listed service is up.
    pub async fn wait_up(&self, ids: &[String], timeout: Duration) -> Result<(), ControlError> {
        for id in ids {
            self.inner.service(id)?;
        }
        let mut changes = self.inner.any_change.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changes.borrow_and_update();
            let pending: Vec<&String> = ids
                .iter()
                .filter(|id| !self.inner.is_up(id).unwrap_or(false))
                .collect();
            if pending.is_empty() {
                return Ok(());
            }
            tokio::select! {
                _ = changes.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {
                    let names: Vec<String> = pending.iter().map(|id| {
                        let state = self.state(id).map(|(s, _)| s.as_str()).unwrap_or("?");
                        format!("{id} ({state})")
                    }).collect();
                    return Err(ControlError::FailedPrecondition(format!(
                        "timed out after {timeout:?} waiting for services to be up: {}",
                        names.join(", ")
                    )));
                }
            }
        }
    }

    /// Stops every running service, each only after the services that depend on it are
    /// down (waiting at most [`REVERSE_DEPENDENCY_WAIT`]), and refuses new starts.
    pub async fn stop_all(&self) {
        self.inner
            .terminating
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let services: Vec<Arc<Service>> = self.inner.map().values().cloned().collect();
        let active: HashSet<String> = services
            .iter()
            .filter(|s| s.status().active)
            .map(|s| s.spec.id.clone())
            .collect();
        let mut dependents: HashMap<String, Vec<String>> = HashMap::new();
        for svc in &services {
            for dep in &svc.spec.depends_on {
                dependents
                    .entry(dep.clone())
                    .or_default()
                    .push(svc.spec.id.clone());
            }
        }
        let mut set = tokio::task::JoinSet::new();
        for id in active {
            let sup = self.clone();
            let waits_for = dependents.remove(&id).unwrap_or_default();
            set.spawn(async move {
                sup.wait_inactive(&waits_for, REVERSE_DEPENDENCY_WAIT).await;
                if let Err(e) = sup.stop(&id).await {
                    tracing::warn!("stopping service {id}: {e}");
                }
            });
        }
        while set.join_next().await.is_some() {}
    }

    async fn wait_inactive(&self, ids: &[String], timeout: Duration) {
        let mut changes = self.inner.any_change.subscribe();
        let deadline = Instant::now() + timeout;
        loop {
            changes.borrow_and_update();
            if ids.iter().all(|id| !self.inner.is_active(id)) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!("gave up waiting for {} to stop", ids.join(", "));
                return;
            }
            let _ = tokio::time::timeout(left, changes.changed()).await;
        }
    }

    /// The `ServiceControl` the API should get: Talos's per-service API policy applied.
    pub fn api_control(&self) -> Arc<dyn ServiceControl> {
        Arc::new(ApiControl(self.clone()))
    }

    fn policy(&self, id: &str) -> Result<ApiPolicy, ControlError> {
        Ok(self.inner.service(id)?.spec.api)
    }
}

impl ServiceSource for Supervisor {
    fn list(&self) -> Vec<pb::ServiceInfo> {
        let services: Vec<Arc<Service>> = self.inner.map().values().cloned().collect();
        services
            .iter()
            .map(|svc| {
                let status = svc.status();
                pb::ServiceInfo {
                    id: svc.spec.id.clone(),
                    state: status.state.as_str().to_string(),
                    events: Some(pb::ServiceEvents {
                        events: status
                            .events
                            .iter()
                            .map(|e| pb::ServiceEvent {
                                msg: e.message.clone(),
                                state: e.state.as_str().to_string(),
                                ts: Some(timestamp(e.at)),
                            })
                            .collect(),
                    }),
                    health: Some(pb::ServiceHealth {
                        unknown: status.health.healthy.is_none(),
                        healthy: status.health.healthy == Some(true),
                        last_message: status.health.last_message.clone(),
                        last_change: Some(
                            status
                                .health
                                .last_change
                                .map_or_else(zero_timestamp, timestamp),
                        ),
                    }),
                }
            })
            .collect()
    }
}

/// Unrestricted control (for machined's sequencer).
impl ServiceControl for Supervisor {
    fn start(&self, id: &str) -> BoxFuture<'_, Result<String, ControlError>> {
        let id = id.to_string();
        Box::pin(async move {
            Supervisor::start(self, &id).await?;
            Ok(format!("Service {id:?} started"))
        })
    }

    fn stop(&self, id: &str) -> BoxFuture<'_, Result<String, ControlError>> {
        let id = id.to_string();
        Box::pin(async move {
            Supervisor::stop(self, &id).await?;
            Ok(format!("Service {id:?} stopped"))
        })
    }

    fn restart(&self, id: &str) -> BoxFuture<'_, Result<String, ControlError>> {
        let id = id.to_string();
        Box::pin(async move {
            Supervisor::restart(self, &id).await?;
            Ok(format!("Service {id:?} restarted"))
        })
    }

    fn wait_up(
        &self,
        ids: &[String],
        timeout: Duration,
    ) -> BoxFuture<'_, Result<(), ControlError>> {
        let ids = ids.to_vec();
        Box::pin(async move { Supervisor::wait_up(self, &ids, timeout).await })
    }

    fn stop_all(&self) -> BoxFuture<'_, ()> {
        Box::pin(Supervisor::stop_all(self))
    }
}

/// The API's view: `start`/`stop`/`restart` only where the service's [`ApiPolicy`] allows
/// (Talos: `service "apid" doesn't support stop operation via API`).
struct ApiControl(Supervisor);

fn refused(id: &str, op: &str) -> ControlError {
    ControlError::FailedPrecondition(format!(
        "service {id:?} doesn't support {op} operation via API"
    ))
}

impl ServiceControl for ApiControl {
    fn start(&self, id: &str) -> BoxFuture<'_, Result<String, ControlError>> {
        let id = id.to_string();
        Box::pin(async move {
            let active = self.0.inner.is_active(&id);
            if !active && !self.0.policy(&id)?.start {
                return Err(refused(&id, "start"));
            }
            ServiceControl::start(&self.0, &id).await
        })
    }

    fn stop(&self, id: &str) -> BoxFuture<'_, Result<String, ControlError>> {
        let id = id.to_string();
        Box::pin(async move {
            let active = self.0.inner.is_active(&id);
            if active && !self.0.policy(&id)?.stop {
                return Err(refused(&id, "stop"));
            }
            self.0.policy(&id)?;
            ServiceControl::stop(&self.0, &id).await
        })
    }

    fn restart(&self, id: &str) -> BoxFuture<'_, Result<String, ControlError>> {
        let id = id.to_string();
        Box::pin(async move {
            let policy = self.0.policy(&id)?;
            if !self.0.inner.is_active(&id) {
                // Restarting a stopped service is a start.
                if !policy.start {
                    return Err(refused(&id, "start"));
                }
            } else if !policy.restart {
                return Err(refused(&id, "restart"));
            }
            ServiceControl::restart(&self.0, &id).await
        })
    }

    fn wait_up(
        &self,
        ids: &[String],
        timeout: Duration,
    ) -> BoxFuture<'_, Result<(), ControlError>> {
        ServiceControl::wait_up(&self.0, ids, timeout)
    }

    fn stop_all(&self) -> BoxFuture<'_, ()> {
        ServiceControl::stop_all(&self.0)
    }
}
