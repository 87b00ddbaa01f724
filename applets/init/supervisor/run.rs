//! One service's lifecycle (Talos's `ServiceRunner.Run` with its restart and process
//! runners): wait, prepare, run with restarts, health-check, stop.

use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use talos::errors::chain;
use talos::sys::cgroup::Cgroup;
use talos::sys::reaper::ExitStatus;
use tokio::sync::watch;

use super::spec::{HealthCheck, ProcessSpec, RestartPolicy, Runner, State, Style};
use super::{Inner, Service};

/// `PATH` of services (Talos's, without the CNI directory).
pub const SERVICE_PATH: &str = "/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin";

/// How the lifecycle ended.
enum End {
    /// Finished (also after a stop).
    Finished,
    /// Failed with this (lower-case) message.
    Failed(String),
}

/// Upper-cases the first letter (Talos does this to the final error).
fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Resolves when a stop was requested (or the supervisor dropped the task).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The lifecycle task of a service; `Starting` has already been recorded.
pub(crate) async fn lifecycle(
    inner: Arc<Inner>,
    svc: Arc<Service>,
    mut stop: watch::Receiver<bool>,
) {
    let end = lifecycle_inner(&inner, &svc, &mut stop).await;
    inner.set_pid(&svc, None);
    match end {
        End::Finished => inner.record(
            &svc,
            State::Finished,
            "Service finished successfully",
            Some(false),
        ),
        End::Failed(msg) => inner.record(&svc, State::Failed, &capitalize(&msg), Some(false)),
    }
}

async fn lifecycle_inner(
    inner: &Arc<Inner>,
    svc: &Arc<Service>,
    stop: &mut watch::Receiver<bool>,
) -> End {
    if let Err(e) = wait_conditions(inner, svc, stop).await {
        return End::Failed(format!("condition failed: {e}"));
    }
    inner.update(svc, State::Preparing, "Running pre state");
    if let Some(pre) = &svc.spec.pre {
        // A pre step may wait for a long time (etcd waits for `talosctl bootstrap`): a stop
        // ends it as Talos's canceled context does.
        let result = tokio::select! {
            result = pre() => result,
            () = stopped(stop) => Err("context canceled".to_string()),
        };
        if let Err(e) = result {
            return End::Failed(format!("failed to run pre stage: {e}"));
        }
    }
    inner.update(svc, State::Preparing, "Creating service runner");
    let health = svc
        .spec
        .health
        .clone()
        .map(|check| spawn_health(inner, svc, check));
    let end = match &svc.spec.runner {
        Runner::Internal => {
            inner.update(svc, State::Running, "Service started as goroutine");
            stopped(stop).await;
            End::Finished
        }
        Runner::Process(process) => match run_with_restarts(inner, svc, process, stop).await {
            Ok(()) => End::Finished,
            Err(e) => End::Failed(format!("failed running service: {e}")),
        },
        Runner::Dynamic(build) => match build().await {
            Ok(process) => match run_with_restarts(inner, svc, &process, stop).await {
                Ok(()) => End::Finished,
                Err(e) => End::Failed(format!("failed running service: {e}")),
            },
            Err(e) => End::Failed(format!("failed to create runner: {e}")),
        },
    };
    if let Some(health) = health {
        health.abort();
    }
    end
}

/// Waits for dependencies and conditions; reports what is still missing as it changes.
async fn wait_conditions(
    inner: &Arc<Inner>,
    svc: &Arc<Service>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let spec = &svc.spec;
    if spec.depends_on.is_empty() && spec.conditions.is_empty() {
        return Ok(());
    }
    let mut changes = inner.any_change.subscribe();
    let mut described = String::new();
    loop {
        changes.borrow_and_update();
        let mut missing = Vec::new();
        for dep in &spec.depends_on {
            match inner.is_up(dep) {
                None => missing.push(format!("service {dep:?} to be registered")),
                Some(false) => missing.push(format!("service {dep:?} to be \"up\"")),
                Some(true) => {}
            }
        }
        for condition in &spec.conditions {
            if !condition.holds().await {
                missing.push(condition.description());
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let description = missing.join(", ");
        if description != described {
            inner.update(svc, State::Waiting, &format!("Waiting for {description}"));
            described = description;
        }
        tokio::select! {
            _ = stopped(stop) => return Err("context canceled".into()),
            _ = changes.changed() => {}
            _ = tokio::time::sleep(inner.options.condition_poll) => {}
        }
    }
}

/// Runs the health check for as long as the returned task lives.
fn spawn_health(
    inner: &Arc<Inner>,
    svc: &Arc<Service>,
    check: HealthCheck,
) -> tokio::task::JoinHandle<()> {
    inner.reset_health(svc);
    let inner = Arc::clone(inner);
    let svc = Arc::clone(svc);
    tokio::spawn(async move {
        tokio::time::sleep(check.initial_delay).await;
        let mut ticker = tokio::time::interval(check.period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let result = check.check().await;
            inner.health_result(&svc, result);
        }
    })
}

/// How one run of the process ended.
enum RunEnd {
    /// It exited on its own.
    Exited(ExitStatus),
    /// We stopped it.
    Stopped,
}

/// Go's wording for a failed exec: `fork/exec /x: no such file or directory`.
fn start_error(exe: &std::path::Path, e: &std::io::Error) -> String {
    let reason = match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_lowercase(),
        None => e.to_string(),
    };
    format!(
        "error starting process: fork/exec {}: {reason}",
        exe.display()
    )
}

/// The restart loop (Talos's `restart` runner around its process runner).
async fn run_with_restarts(
    inner: &Arc<Inner>,
    svc: &Arc<Service>,
    process: &ProcessSpec,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let spec = &svc.spec;
    let cgroup = prepare_cgroup(inner, &spec.id, process);
    let describe = match process.style {
        Style::Process => process.describe(),
        Style::Container => format!("Containerd({})", spec.id),
    };
    let mut short_runs = 0u32;
    loop {
        let started = Instant::now();
        let error = match run_once(inner, svc, process, cgroup.as_ref(), stop).await? {
            RunEnd::Stopped => return Ok(()),
            RunEnd::Exited(status) if status.success() => None,
            RunEnd::Exited(status) => Some(match process.style {
                Style::Process => status.to_string(),
                Style::Container => {
                    format!("task {:?} failed: exit code {}", spec.id, status.code())
                }
            }),
        };
        let message = match (spec.restart, &error) {
            #[cfg(test)]
            (RestartPolicy::Once, None) => return Ok(()),
            #[cfg(test)]
            (RestartPolicy::Once, Some(e)) => return Err(format!("error running service: {e}")),
            #[cfg(test)]
            (RestartPolicy::UntilSuccess, None) => return Ok(()),
            #[cfg(test)]
            (RestartPolicy::UntilSuccess, Some(e)) => {
                format!("Error running {describe}, going to restart until it succeeds: {e}")
            }
            (RestartPolicy::Forever, None) => {
                format!("Runner {describe} exited without error, going to restart it")
            }
            (RestartPolicy::Forever, Some(e)) => {
                format!("Error running {describe}, going to restart forever: {e}")
            }
        };
        if started.elapsed() >= spec.back_off.reset_after {
            short_runs = 0;
        }
        short_runs = short_runs.saturating_add(1);
        let delay = spec.back_off.delay(short_runs);
        inner.update(svc, State::Waiting, &message);
        tokio::select! {
            _ = stopped(stop) => {
                inner.update(svc, State::Stopping, "Aborting restart sequence");
                return Ok(());
            }
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Creates the service's cgroup and applies its limits; never fails (cgroups are optional).
fn prepare_cgroup(inner: &Inner, id: &str, process: &ProcessSpec) -> Option<Cgroup> {
    let spec = process.cgroup.as_ref()?;
    let Some(root) = inner.options.cgroup_root.as_ref() else {
        tracing::debug!(
            service = id,
            "no cgroup root configured; not using cgroup {}",
            spec.name
        );
        return None;
    };
    match Cgroup::create(root, &spec.name) {
        Ok(group) => {
            if let Some(bytes) = spec.memory_max {
                group.set_memory_max(bytes);
            }
            if let Some(weight) = spec.cpu_weight {
                group.set_cpu_weight(weight);
            }
            Some(group)
        }
        Err(e) => {
            tracing::warn!(
                service = id,
                "cannot create cgroup {}: {}; running without it",
                spec.name,
                chain(&e)
            );
            None
        }
    }
}

/// Builds the command: argv, a clean environment, one pipe for stdout and stderr.
fn build(process: &ProcessSpec, cgroup: Option<&Cgroup>) -> Result<(Command, OwnedFd), String> {
    let mut command = Command::new(&process.exe);
    if let Some(argv0) = &process.argv0 {
        std::os::unix::process::CommandExt::arg0(&mut command, argv0);
    }
    command.args(&process.args);
    command.env_clear().env("PATH", SERVICE_PATH);
    for (k, v) in &process.env {
        command.env(k, v);
    }
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| format!("error building command: pipe: {e}"))?;
    let write2 = write
        .try_clone()
        .map_err(|e| format!("error building command: pipe: {e}"))?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(write))
        .stderr(Stdio::from(write2));
    let mut options = process.spawn.clone();
    if let Some(group) = cgroup {
        options.cgroup = Some(group.path());
    }
    options
        .apply(&mut command)
        .map_err(|e| format!("error building command: {e}"))?;
    Ok((command, read))
}

/// Starts the process as PID 1 of its own PID namespace (not possible through `Command`).
fn spawn_pid_namespace(
    inner: &Inner,
    process: &ProcessSpec,
    cgroup: Option<&Cgroup>,
) -> Result<(i32, tokio::sync::oneshot::Receiver<ExitStatus>, OwnedFd), String> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| format!("error building command: pipe: {e}"))?;
    let mut env = vec![("PATH".to_string(), SERVICE_PATH.to_string())];
    env.extend(process.env.iter().cloned());
    let exec = talos::sys::spawn::ExecSpec {
        exe: process.exe.clone(),
        argv: process.argv(),
        env,
    };
    let mut options = process.spawn.clone();
    if let Some(group) = cgroup {
        options.cgroup = Some(group.path());
    }
    let spawned = inner
        .reaper
        .spawn_with(|| talos::sys::spawn::spawn_in_pid_namespace(&exec, &options, &write, &write));
    // Close our write end: EOF then means every writer is gone.
    drop(write);
    let (pid, exit) = spawned.map_err(|e| start_error(&process.exe, &e))?;
    Ok((pid, exit, read))
}

/// Copies the process's output into the service's log buffer until every writer is gone.
fn pump_output(inner: &Inner, id: &str, read: OwnedFd) {
    let buffer = inner.logs.buffer(id);
    let receiver = match tokio::net::unix::pipe::Receiver::from_owned_fd(read) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(service = id, "cannot read the service output: {e}");
            return;
        }
    };
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt as _;
        let mut receiver = receiver;
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            match receiver.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buffer.append(&chunk[..n]),
            }
        }
    });
}

fn signal(pid: i32, sig: Signal) {
    // The process may be gone already: nothing to do then.
    let _ = kill(Pid::from_raw(pid), sig);
}

/// Runs the process once: until it exits, or until a stop (SIGTERM, then SIGKILL).
async fn run_once(
    inner: &Arc<Inner>,
    svc: &Arc<Service>,
    process: &ProcessSpec,
    cgroup: Option<&Cgroup>,
    stop: &mut watch::Receiver<bool>,
) -> Result<RunEnd, String> {
    let id = &svc.spec.id;
    let (pid, exit, read) = if process.spawn.namespaces.pid {
        spawn_pid_namespace(inner, process, cgroup)?
    } else {
        let (mut command, read) = build(process, cgroup)?;
        let spawned = inner.reaper.spawn(&mut command);
        // Close our copies of the pipe's write end: EOF then means every writer is gone.
        drop(command);
        let (child, exit) = spawned.map_err(|e| start_error(&process.exe, &e))?;
        let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
        (pid, exit, read)
    };
    inner.set_pid(svc, Some(pid));
    pump_output(inner, id, read);
    if svc.spec.health.is_some() {
        // A new process: its health is unknown until checked (so "up" is never stale after a
        // restart, and the next successful check is recorded again).
        inner.reset_health(svc);
    }
    let started = match process.style {
        Style::Process => format!("Process {} started with PID {pid}", process.describe()),
        Style::Container => format!("Started task {id} (PID {pid}) for container {id}"),
    };
    inner.update(svc, State::Running, &started);

    let mut exit = exit;
    let end = tokio::select! {
        status = &mut exit => RunEnd::Exited(status.map_err(|_| format!("lost track of process {pid}"))?),
        _ = stopped(stop) => {
            let what = match process.style {
                Style::Process => process.describe(),
                Style::Container => format!("task {id} (PID {pid}, container {id})"),
            };
            inner.update(svc, State::Stopping, &format!("Sending SIGTERM to {what}"));
            signal(pid, Signal::SIGTERM);
            if tokio::time::timeout(process.stop_timeout, &mut exit).await.is_err() {
                inner.update(svc, State::Stopping, &format!("Sending SIGKILL to {what}"));
                signal(pid, Signal::SIGKILL);
                let _ = exit.await;
            }
            RunEnd::Stopped
        }
    };
    inner.set_pid(svc, None);
    if let Some(group) = cgroup {
        // Leftover children of the service die with it.
        match group.kill_all(10) {
            Ok(pids) if !pids.is_empty() => {
                tracing::info!(service = %id, "killed {} leftover process(es) in {}", pids.len(), group.name());
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(service = %id, "cleaning cgroup {}: {}", group.name(), chain(&e))
            }
        }
    }
    Ok(end)
}
