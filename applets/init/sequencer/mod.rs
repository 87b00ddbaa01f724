//! The sequencer: runs Talos's sequences (Initialize, Boot, Reboot, Shutdown, Reset) as phases
//! of tasks, one sequence at a time.
//!
//! - Phases run in order; the tasks of a phase run concurrently, each on its own tokio task,
//!   so a panicking task is caught (it fails the phase like an error) and never takes machined
//!   down.
//! - Only one sequence runs at a time. A new one may take over a running one by Talos's rules
//!   ([`Sequence::can_take_over`]: Reboot and Reset take over Boot, Reboot takes over Reboot and
//!   Reset) or when forced (signals); the running one is then canceled (its tasks aborted) and
//!   the new one starts once it has stopped (at most 1 min later). Otherwise the request is
//!   refused as locked.
//! - Progress is logged like Talos (`phase NAME (i/n): N tasks(s)`, `task NAME (i/n): starting`,
//!   `task NAME (i/n): done, 12ms`) and published as `machine.SequenceEvent`, `PhaseEvent`
//!   and `TaskEvent` on the event bus.
//!
//! The sequences' contents are in [`sequences`]; the API seams (`PowerControl`,
//! `ConfigControl`) in [`control`].

pub mod control;
pub mod node;
pub mod sequences;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message as _;
use talos::api::common as common_pb;
use talos::api::machine as pb;
use talos::errors::chain;
use talos::events::{runtime_type_url, EventBus};
use tokio::sync::watch;

use super::runtime::BoxFuture;

/// How long a sequence taking over waits for the running one to stop.
pub const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(60);

/// The sequences machined runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sequence {
    /// Early setup and config acquisition.
    Initialize,
    /// Bring the node up (PKI, services).
    Boot,
    /// Stop everything and restart.
    Reboot,
    /// Stop everything and power off.
    Shutdown,
    /// Stop everything, wipe state, then reboot or power off.
    Reset,
}

impl Sequence {
    /// Talos's name (`SequenceEvent.sequence`).
    pub fn as_str(self) -> &'static str {
        match self {
            Sequence::Initialize => "initialize",
            Sequence::Boot => "boot",
            Sequence::Reboot => "reboot",
            Sequence::Shutdown => "shutdown",
            Sequence::Reset => "reset",
        }
    }

    /// Whether `self`, requested while `running` runs, may cancel it and run instead.
    pub fn can_take_over(self, running: Sequence) -> bool {
        matches!(
            (running, self),
            (Sequence::Boot, Sequence::Reboot | Sequence::Reset)
                | (Sequence::Reboot, Sequence::Reboot)
                | (Sequence::Reset, Sequence::Reboot)
        )
    }
}

impl std::fmt::Display for Sequence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

type TaskFn = Box<dyn FnOnce() -> BoxFuture<'static, anyhow::Result<()>> + Send>;

/// One task: a name (Talos's camelCase task names) and the work.
pub struct Task {
    name: String,
    run: TaskFn,
}

impl Task {
    /// A task running `f`'s future.
    pub fn new<F, Fut>(name: impl Into<String>, f: F) -> Task
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        Task {
            name: name.into(),
            run: Box::new(move || Box::pin(f())),
        }
    }
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task").field("name", &self.name).finish()
    }
}

/// A named group of tasks run concurrently.
#[derive(Debug)]
pub struct Phase {
    /// Talos's phase name.
    pub name: String,
    /// The tasks.
    pub tasks: Vec<Task>,
}

impl Phase {
    /// A phase.
    pub fn new(name: impl Into<String>, tasks: Vec<Task>) -> Phase {
        Phase {
            name: name.into(),
            tasks,
        }
    }
}

/// Why a sequence did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    /// Another sequence runs and may not be taken over.
    #[error("sequence not started: {requested} refused while {running} is running (locked)")]
    Locked {
        /// The sequence asked for.
        requested: Sequence,
        /// The one running.
        running: Sequence,
    },
    /// A task failed (or panicked).
    #[error("error running phase {phase_number} in {sequence} sequence: task {task} ({progress}): failed, {error}")]
    TaskFailed {
        /// The sequence.
        sequence: Sequence,
        /// 1-based phase number.
        phase_number: usize,
        /// The failing task.
        task: String,
        /// `i/n` within the phase.
        progress: String,
        /// What went wrong.
        error: String,
    },
    /// Another sequence took over.
    #[error("{0} sequence canceled: another sequence took over")]
    Canceled(Sequence),
}

struct RunningState {
    sequence: Sequence,
    id: u64,
    cancel: watch::Sender<bool>,
}

/// Runs sequences one at a time and reports their progress.
pub struct Sequencer {
    events: Arc<EventBus>,
    state: watch::Sender<Option<RunningState>>,
    next_id: std::sync::atomic::AtomicU64,
}

/// Holds the sequencer lock; released on drop.
struct LockGuard<'a> {
    sequencer: &'a Sequencer,
    id: u64,
    cancel: watch::Receiver<bool>,
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.sequencer.state.send_if_modified(|state| match state {
            Some(s) if s.id == self.id => {
                *state = None;
                true
            }
            _ => false,
        });
    }
}

/// A phase or sequence duration for log lines, as Go prints it (`850µs`, `12ms`, `1.234s`,
/// `2m3.5s`): to the microsecond below a millisecond, truncated to the millisecond below a
/// second, else rounded to the millisecond.
pub fn fmt_duration(d: Duration) -> String {
    let micros = d.as_micros();
    let shown = match micros {
        0..1_000 => micros,
        1_000..1_000_000 => micros / 1_000 * 1_000,
        _ => (micros + 500) / 1_000 * 1_000,
    };
    talos::duration::GoDuration(Duration::from_micros(
        u64::try_from(shown).unwrap_or(u64::MAX),
    ))
    .to_string()
}

impl Sequencer {
    /// A sequencer publishing on `events`.
    pub fn new(events: Arc<EventBus>) -> Sequencer {
        Sequencer {
            events,
            state: watch::Sender::new(None),
            next_id: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// The sequence running now.
    pub fn running(&self) -> Option<Sequence> {
        self.state.borrow().as_ref().map(|s| s.sequence)
    }

    /// Whether `sequence` could start now (idle, or allowed to take over).
    pub fn check(&self, sequence: Sequence, force: bool) -> Result<(), SequenceError> {
        match self.running() {
            Some(running) if !force && !sequence.can_take_over(running) => {
                Err(SequenceError::Locked {
                    requested: sequence,
                    running,
                })
            }
            _ => Ok(()),
        }
    }

    fn publish_sequence(
        &self,
        sequence: Sequence,
        action: pb::sequence_event::Action,
        error: Option<(common_pb::Code, String)>,
    ) {
        let event = pb::SequenceEvent {
            sequence: sequence.as_str().into(),
            action: action as i32,
            error: error.map(|(code, message)| common_pb::Error {
                code: code as i32,
                message,
                details: Vec::new(),
            }),
        };
        self.events.publish(
            &runtime_type_url("machine.SequenceEvent"),
            event.encode_to_vec(),
            "",
        );
    }

    fn publish_phase(&self, phase: &str, action: pb::phase_event::Action) {
        let event = pb::PhaseEvent {
            phase: phase.into(),
            action: action as i32,
        };
        self.events.publish(
            &runtime_type_url("machine.PhaseEvent"),
            event.encode_to_vec(),
            "",
        );
    }

    async fn lock(&self, sequence: Sequence, force: bool) -> Result<LockGuard<'_>, SequenceError> {
        let deadline = Instant::now() + TAKEOVER_TIMEOUT;
        let mut rx = self.state.subscribe();
        loop {
            let mut refused = None;
            let mut acquired = None;
            self.state.send_if_modified(|state| match state {
                None => {
                    let id = self
                        .next_id
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let (tx, rx) = watch::channel(false);
                    *state = Some(RunningState {
                        sequence,
                        id,
                        cancel: tx,
                    });
                    acquired = Some((id, rx));
                    true
                }
                Some(running) => {
                    if force || sequence.can_take_over(running.sequence) {
                        if !*running.cancel.borrow() {
                            tracing::info!(
                                "{} sequence takes over the running {} sequence",
                                sequence,
                                running.sequence
                            );
                        }
                        let _ = running.cancel.send(true);
                    } else {
                        refused = Some(running.sequence);
                    }
                    false
                }
            });
            if let Some((id, cancel)) = acquired {
                return Ok(LockGuard {
                    sequencer: self,
                    id,
                    cancel,
                });
            }
            if let Some(running) = refused {
                let err = SequenceError::Locked {
                    requested: sequence,
                    running,
                };
                self.publish_sequence(
                    sequence,
                    pb::sequence_event::Action::Noop,
                    Some((common_pb::Code::Locked, err.to_string())),
                );
                return Err(err);
            }
            let wait = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(wait, rx.wait_for(|s| s.is_none())).await {
                Ok(_) => continue,
                Err(_) => {
                    let running = self.running().unwrap_or(sequence);
                    return Err(SequenceError::Locked {
                        requested: sequence,
                        running,
                    });
                }
            }
        }
    }

    /// Runs `phases` as `sequence`. `force` takes over whatever runs (signals do that).
    pub async fn run(
        &self,
        sequence: Sequence,
        phases: Vec<Phase>,
        force: bool,
    ) -> Result<(), SequenceError> {
        let guard = self.lock(sequence, force).await?;
        let result = self
            .run_locked(sequence, phases, guard.cancel.clone())
            .await;
        if let Err(e) = &result {
            let code = match e {
                SequenceError::Canceled(_) => common_pb::Code::Canceled,
                _ => common_pb::Code::Fatal,
            };
            self.publish_sequence(
                sequence,
                pb::sequence_event::Action::Noop,
                Some((code, format!("sequence failed: {e}"))),
            );
        }
        drop(guard);
        result
    }

    async fn run_locked(
        &self,
        sequence: Sequence,
        phases: Vec<Phase>,
        cancel: watch::Receiver<bool>,
    ) -> Result<(), SequenceError> {
        self.publish_sequence(sequence, pb::sequence_event::Action::Start, None);
        let started = Instant::now();
        let total = phases.len();
        tracing::info!("{sequence} sequence: {total} phase(s)");
        let mut result = Ok(());
        for (index, phase) in phases.into_iter().enumerate() {
            let number = index + 1;
            let progress = format!("{number}/{total}");
            let phase_started = Instant::now();
            let name = phase.name.clone();
            tracing::info!("phase {name} ({progress}): {} tasks(s)", phase.tasks.len());
            self.publish_phase(&name, pb::phase_event::Action::Start);
            let outcome = self
                .run_phase(sequence, number, phase, cancel.clone())
                .await;
            self.publish_phase(&name, pb::phase_event::Action::Stop);
            if let Err(e) = outcome {
                tracing::error!("phase {name} ({progress}): failed");
                result = Err(e);
                break;
            }
            tracing::info!(
                "phase {name} ({progress}): done, {}",
                fmt_duration(phase_started.elapsed())
            );
            if *cancel.borrow() {
                result = Err(SequenceError::Canceled(sequence));
                break;
            }
        }
        match &result {
            Ok(()) => tracing::info!(
                "{sequence} sequence: done: {}",
                fmt_duration(started.elapsed())
            ),
            Err(_) => tracing::error!("{sequence} sequence: failed"),
        }
        self.publish_sequence(sequence, pb::sequence_event::Action::Stop, None);
        result
    }

    async fn run_phase(
        &self,
        sequence: Sequence,
        phase_number: usize,
        phase: Phase,
        mut cancel: watch::Receiver<bool>,
    ) -> Result<(), SequenceError> {
        let count = phase.tasks.len();
        let mut handles = Vec::with_capacity(count);
        for (index, task) in phase.tasks.into_iter().enumerate() {
            let progress = format!("{}/{count}", index + 1);
            let events = Arc::clone(&self.events);
            let name = task.name.clone();
            let join = tokio::spawn(run_task(events, task, progress.clone()));
            handles.push((name, progress, join));
        }
        let aborts: Vec<_> = handles.iter().map(|(_, _, h)| h.abort_handle()).collect();
        let all = async {
            let mut first_error = None;
            for (name, progress, handle) in handles {
                let error = match handle.await {
                    Ok(Ok(())) => continue,
                    Ok(Err(e)) => e,
                    Err(join) => {
                        let message = panic_message(join);
                        tracing::error!("task {name} ({progress}): failed: {message}");
                        message
                    }
                };
                first_error.get_or_insert(SequenceError::TaskFailed {
                    sequence,
                    phase_number,
                    task: name,
                    progress,
                    error,
                });
            }
            first_error.map_or(Ok(()), Err)
        };
        tokio::select! {
            result = all => result,
            _ = cancel.wait_for(|c| *c) => {
                for abort in aborts {
                    abort.abort();
                }
                Err(SequenceError::Canceled(sequence))
            }
        }
    }
}

fn panic_message(join: tokio::task::JoinError) -> String {
    if join.is_cancelled() {
        return "canceled".into();
    }
    match join.try_into_panic() {
        Ok(payload) => {
            let text = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            format!("panicked: {text}")
        }
        Err(_) => "task failed".into(),
    }
}

fn publish_task(events: &EventBus, task: &str, action: pb::task_event::Action) {
    let event = pb::TaskEvent {
        task: task.into(),
        action: action as i32,
    };
    events.publish(
        &runtime_type_url("machine.TaskEvent"),
        event.encode_to_vec(),
        "",
    );
}

async fn run_task(events: Arc<EventBus>, task: Task, progress: String) -> Result<(), String> {
    let Task { name, run } = task;
    publish_task(&events, &name, pb::task_event::Action::Start);
    tracing::info!("task {name} ({progress}): starting");
    let started = Instant::now();
    let result = run().await;
    publish_task(&events, &name, pb::task_event::Action::Stop);
    match result {
        Ok(()) => {
            tracing::info!(
                "task {name} ({progress}): done, {}",
                fmt_duration(started.elapsed())
            );
            Ok(())
        }
        Err(e) => {
            let message = chain(e.as_ref()).to_string();
            tracing::error!("task {name} ({progress}): failed: {message}");
            Err(message)
        }
    }
}

#[cfg(test)]
mod tests;
