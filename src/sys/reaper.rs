//! The one owner of `waitpid`: reaps every child of this process and hands each exit status to
//! whoever registered the pid.
//!
//! On PID 1 (and in a child subreaper) orphans are re-parented to us, so *every* exit has to be
//! collected, not only those of the processes we spawned. Two processes calling `waitpid` on the
//! same children steal each other's exits, so there is one [`Reaper`] per process
//! ([`Reaper::global`]), running on its own thread with its own small runtime: it does not
//! depend on (or die with) the caller's tokio runtime.
//!
//! * [`Reaper::spawn`] starts a `std::process::Command` and registers its pid in one step.
//!   Never call `Child::wait` (or `Command::status`/`output`) in a process that runs a reaper:
//!   the reaper may already have collected the exit.
//! * [`Reaper::claim`] registers an existing pid; an exit that arrived before it was claimed is
//!   kept (for a while, and up to [`MAX_UNCLAIMED`] entries) and delivered at once.
//!
//! `std::process::Command::spawn` itself calls `waitpid` on the child when `exec` fails; the
//! reaper therefore never reaps while a spawn is in progress (a read/write lock).

use std::collections::{HashMap, VecDeque};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, Instant};

use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::sync::oneshot;

use super::SysError;

/// Exits nobody claimed are kept at most this many (oldest dropped first).
pub const MAX_UNCLAIMED: usize = 4096;
/// Exits nobody claimed are kept at most this long.
pub const UNCLAIMED_TTL: Duration = Duration::from_secs(300);
/// The reaper also polls at this interval, in case a SIGCHLD was coalesced or missed.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It called `exit(code)`.
    Exited(i32),
    /// It was killed by a signal.
    Signaled {
        /// The signal number.
        signal: i32,
        /// A core was dumped.
        core_dumped: bool,
    },
}

impl ExitStatus {
    /// Exited with code 0.
    pub fn success(&self) -> bool {
        matches!(self, ExitStatus::Exited(0))
    }

    /// The exit code as a shell (or containerd) reports it: the code, or 128 + signal.
    pub fn code(&self) -> i32 {
        match self {
            ExitStatus::Exited(code) => *code,
            ExitStatus::Signaled { signal, .. } => 128 + signal,
        }
    }
}

impl std::fmt::Display for ExitStatus {
    /// Go's `os.ProcessState` wording: `exit status 1`, `signal: killed`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Exited(code) => write!(f, "exit status {code}"),
            ExitStatus::Signaled {
                signal,
                core_dumped,
            } => {
                let name = signal_description(*signal);
                write!(f, "signal: {name}")?;
                if *core_dumped {
                    write!(f, " (core dumped)")?;
                }
                Ok(())
            }
        }
    }
}

/// The lower-case description Go prints for a signal.
fn signal_description(signal: i32) -> String {
    match signal {
        1 => "hangup".into(),
        2 => "interrupt".into(),
        3 => "quit".into(),
        6 => "aborted".into(),
        9 => "killed".into(),
        11 => "segmentation fault".into(),
        13 => "broken pipe".into(),
        15 => "terminated".into(),
        n => format!("signal {n}"),
    }
}

#[derive(Debug, Default)]
struct Table {
    /// Registered pids waiting for their exit.
    waiting: HashMap<i32, oneshot::Sender<ExitStatus>>,
    /// Exits that arrived before anyone registered the pid.
    unclaimed: HashMap<i32, (ExitStatus, Instant)>,
    /// Order in which `unclaimed` was filled (for eviction).
    order: VecDeque<(i32, Instant)>,
}

impl Table {
    fn deliver(&mut self, pid: i32, status: ExitStatus) {
        match self.waiting.remove(&pid) {
            // The receiver may be gone (nobody cares any more): that is fine.
            Some(tx) => {
                let _ = tx.send(status);
            }
            None => {
                let now = Instant::now();
                self.unclaimed.insert(pid, (status, now));
                self.order.push_back((pid, now));
                self.evict();
            }
        }
    }

    fn evict(&mut self) {
        let now = Instant::now();
        while let Some(&(oldest, stamp)) = self.order.front() {
            let current = matches!(self.unclaimed.get(&oldest), Some((_, at)) if *at == stamp);
            if !current {
                // Claimed meanwhile (or replaced by a newer exit of a reused pid).
                self.order.pop_front();
            } else if self.unclaimed.len() > MAX_UNCLAIMED
                || now.duration_since(stamp) > UNCLAIMED_TTL
            {
                self.order.pop_front();
                self.unclaimed.remove(&oldest);
            } else {
                break;
            }
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    table: Mutex<Table>,
    /// Spawns hold it shared; reaping holds it exclusively (see the module docs).
    spawn_lock: RwLock<()>,
}

/// The process-wide child reaper (cheap to clone).
#[derive(Debug, Clone)]
pub struct Reaper {
    inner: Arc<Inner>,
}

static GLOBAL: OnceLock<Result<Reaper, String>> = OnceLock::new();

impl Reaper {
    /// The reaper of this process, started on first use (a thread named `reaper`).
    pub fn global() -> Result<Reaper, SysError> {
        GLOBAL
            .get_or_init(|| Reaper::start().map_err(|e| e.to_string()))
            .clone()
            .map_err(|what| SysError::Syscall {
                call: format!("starting the child reaper: {what}"),
                source: nix::Error::EAGAIN,
            })
    }

    fn start() -> Result<Reaper, std::io::Error> {
        let reaper = Reaper {
            inner: Arc::new(Inner::default()),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        // Install the SIGCHLD handler before returning, so no exit is missed.
        let mut sigchld = {
            let _guard = runtime.enter();
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())?
        };
        let worker = reaper.clone();
        std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || {
                runtime.block_on(async move {
                    loop {
                        worker.reap_all();
                        tokio::select! {
                            _ = sigchld.recv() => {}
                            _ = tokio::time::sleep(POLL_INTERVAL) => {}
                        }
                    }
                });
            })?;
        Ok(reaper)
    }

    /// Makes this process a child subreaper (`PR_SET_CHILD_SUBREAPER`): orphaned descendants
    /// are re-parented to it instead of to PID 1. For tests; PID 1 needs no such call.
    pub fn become_subreaper() -> Result<(), SysError> {
        nix::sys::prctl::set_child_subreaper(true).map_err(|source| SysError::Syscall {
            call: "prctl PR_SET_CHILD_SUBREAPER".into(),
            source,
        })
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.inner.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `pid`: the receiver gets its exit status (at once if it already exited).
    /// Registering a pid twice replaces the first registration.
    pub fn claim(&self, pid: i32) -> oneshot::Receiver<ExitStatus> {
        let (tx, rx) = oneshot::channel();
        let mut table = self.table();
        match table.unclaimed.remove(&pid) {
            Some((status, _)) => {
                let _ = tx.send(status);
            }
            None => {
                table.waiting.insert(pid, tx);
            }
        }
        rx
    }

    /// Spawns `command` and registers the child. Never wait on the returned `Child`.
    pub fn spawn(
        &self,
        command: &mut Command,
    ) -> std::io::Result<(Child, oneshot::Receiver<ExitStatus>)> {
        let _shared = self
            .inner
            .spawn_lock
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let child = command.spawn()?;
        let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
        let rx = self.claim(pid);
        Ok((child, rx))
    }

    /// Spawns with `spawn` (which returns the child's pid, e.g.
    /// [`super::spawn::spawn_in_pid_namespace`]) and registers the child, with reaping held off
    /// meanwhile (an `exec` failure's exit is collected afterwards and dropped).
    pub fn spawn_with(
        &self,
        spawn: impl FnOnce() -> std::io::Result<i32>,
    ) -> std::io::Result<(i32, oneshot::Receiver<ExitStatus>)> {
        let _shared = self
            .inner
            .spawn_lock
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let pid = spawn()?;
        Ok((pid, self.claim(pid)))
    }

    /// Runs `command` to completion (the reaper's replacement for `Command::status`, which
    /// must not be used in a process with a reaper).
    pub async fn status(&self, command: &mut Command) -> std::io::Result<ExitStatus> {
        let (_child, exit) = self.spawn(command)?;
        exit.await
            .map_err(|_| std::io::Error::other("the child reaper stopped"))
    }

    /// Collects every exited child now (normally done by the reaper thread on SIGCHLD).
    pub fn reap_all(&self) {
        let _exclusive = self
            .inner
            .spawn_lock
            .write()
            .unwrap_or_else(|e| e.into_inner());
        loop {
            let flags = WaitPidFlag::WNOHANG | WaitPidFlag::__WALL;
            match nix::sys::wait::waitpid(Pid::from_raw(-1), Some(flags)) {
                Ok(WaitStatus::Exited(pid, code)) => {
                    self.table().deliver(pid.as_raw(), ExitStatus::Exited(code));
                }
                Ok(WaitStatus::Signaled(pid, signal, core_dumped)) => {
                    self.table().deliver(
                        pid.as_raw(),
                        ExitStatus::Signaled {
                            signal: signal as i32,
                            core_dumped,
                        },
                    );
                }
                // Nothing more has exited.
                Ok(WaitStatus::StillAlive) => break,
                // Stopped/continued/traced children are not exits.
                Ok(_) => continue,
                Err(nix::Error::EINTR) => continue,
                // ECHILD: no children at all.
                Err(_) => break,
            }
        }
    }

    /// Exits collected but not claimed yet (for tests and diagnostics).
    pub fn unclaimed_count(&self) -> usize {
        self.table().unclaimed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_wording_matches_go() {
        assert_eq!(ExitStatus::Exited(1).to_string(), "exit status 1");
        let killed = ExitStatus::Signaled {
            signal: 9,
            core_dumped: false,
        };
        assert_eq!(killed.to_string(), "signal: killed");
        assert_eq!(killed.code(), 137);
        assert!(ExitStatus::Exited(0).success());
        assert!(!killed.success());
    }

    #[test]
    fn unclaimed_exits_are_kept_until_claimed_and_bounded() {
        let mut table = Table::default();
        table.deliver(42, ExitStatus::Exited(3));
        assert_eq!(table.unclaimed.len(), 1);
        for pid in 0..(MAX_UNCLAIMED as i32 + 10) {
            table.deliver(100_000 + pid, ExitStatus::Exited(0));
        }
        assert!(table.unclaimed.len() <= MAX_UNCLAIMED);
        // The oldest went first.
        assert!(!table.unclaimed.contains_key(&42));
    }

    #[tokio::test]
    async fn spawned_children_are_reaped_and_delivered() {
        let reaper = Reaper::global().expect("reaper");
        let (_child, rx) = reaper
            .spawn(Command::new("/bin/sh").args(["-c", "exit 7"]))
            .expect("spawn");
        let status = tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .expect("in time")
            .expect("delivered");
        assert_eq!(status, ExitStatus::Exited(7));
    }

    #[tokio::test]
    async fn exits_before_claim_are_delivered_on_claim() {
        let reaper = Reaper::global().expect("reaper");
        // Spawned outside the reaper: nobody registered it yet (the reaper collects it).
        #[allow(clippy::zombie_processes)]
        let child = Command::new("/bin/true").spawn().expect("spawn");
        let pid = i32::try_from(child.id()).expect("pid");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            reaper.reap_all();
            if reaper.table().unclaimed.contains_key(&pid) {
                break;
            }
            assert!(Instant::now() < deadline, "never reaped");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let status = reaper.claim(pid).await.expect("delivered");
        assert_eq!(status, ExitStatus::Exited(0));
    }
}
