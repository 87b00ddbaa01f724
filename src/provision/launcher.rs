//! The per-cluster launcher (hidden `talosctl container-launch`): a detached process that owns
//! the node processes and publishes the control planes' API ports on 127.0.0.1.
//!
//! - Listeners are opened on 127.0.0.1 (random free ports) first, in the host network
//!   namespace; then the launcher's main thread enters the cluster namespace, so the connections
//!   it makes to node addresses go over the cluster bridge.
//! - Node exit codes: `0` = powered off, stays down; `10` = reboot, started again at once;
//!   anything else = crash, started again after 1, 2, 4, 8, 16 s, at most 5 times in a row
//!   (a run longer than a minute resets the count).
//! - SIGTERM/SIGINT: every node gets SIGTERM, SIGKILL (whole cgroup) after the grace period,
//!   then the launcher exits.
//!
//! The launcher records its pid, the node pids and the published ports in the state file; it
//! is the only writer of that file while it runs.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use super::state::{ClusterState, NodeType};
use super::{cgroup, net, node, ProvisionError};
use crate::constants::APID_PORT;
use crate::errors::chain;
use crate::sys::ns;

/// Exit code of a node's init asking to be started again (reboot).
pub const EXIT_REBOOT: i32 = 10;
/// Restarts of a crashing node in a row before it is left down.
pub const MAX_CRASH_RESTARTS: u32 = 5;
/// The Kubernetes API port on control planes.
pub const KUBERNETES_PORT: u16 = 6443;
/// The line the launcher prints on stdout once every node has been started.
pub const READY_LINE: &str = "ready";

fn log(msg: &str) {
    let now = time::OffsetDateTime::now_utc();
    eprintln!(
        "{:02}:{:02}:{:02} launcher: {msg}",
        now.hour(),
        now.minute(),
        now.second()
    );
}

struct Slot {
    name: String,
    pid: Option<Pid>,
    crashes: u32,
    started: Instant,
}

/// Runs the launcher for the cluster in `state_dir` until SIGTERM. `helper_exe` is the `talos`
/// binary used for the node helper; `ready` receives [`READY_LINE`] once the nodes run (or
/// `error: ...` when they could not be started).
pub fn run(
    state_dir: &Path,
    helper_exe: &Path,
    grace: Duration,
    ready: &mut dyn Write,
) -> Result<(), ProvisionError> {
    let res = run_inner(state_dir, helper_exe, grace, ready);
    if let Err(e) = &res {
        let e = chain(e);
        let _ = writeln!(ready, "error: {e}");
        let _ = ready.flush();
        log(&format!("error: {e}"));
    }
    res
}

fn run_inner(
    state_dir: &Path,
    helper_exe: &Path,
    grace: Duration,
    ready: &mut dyn Write,
) -> Result<(), ProvisionError> {
    let mut state = ClusterState::load(state_dir)?;
    state.launcher_pid = Some(std::process::id() as i32);

    // 1. Listeners, in the host network namespace.
    let mut forwards: Vec<(TcpListener, SocketAddr)> = Vec::new();
    for n in state.nodes.iter_mut() {
        if n.node_type != NodeType::Controlplane {
            continue;
        }
        let mut ports = [0u16; 2];
        for (i, target) in [APID_PORT, KUBERNETES_PORT].into_iter().enumerate() {
            let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .map_err(ProvisionError::io("binding a port on 127.0.0.1"))?;
            l.set_nonblocking(true)
                .map_err(ProvisionError::io("configuring a listener"))?;
            ports[i] = l
                .local_addr()
                .map_err(ProvisionError::io("reading a listener address"))?
                .port();
            forwards.push((l, SocketAddr::V4(SocketAddrV4::new(n.ip, target))));
        }
        n.ports.apid = Some(ports[0]);
        n.ports.kubernetes = Some(ports[1]);
    }
    state.save()?;

    // 2. From here on this thread's sockets live in the cluster namespace.
    ns::enter_netns(&net::netns_path(&state.network))?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ProvisionError::io("starting the launcher runtime"))?;
    rt.block_on(supervise(state, forwards, helper_exe, grace, ready))
}

async fn forward(listener: tokio::net::TcpListener, target: SocketAddr) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        tokio::spawn(async move {
            match tokio::net::TcpStream::connect(target).await {
                Ok(mut out) => {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
                Err(e) => log(&format!("forwarding to {target}: {e}")),
            }
        });
    }
}

async fn start(state: &ClusterState, name: &str, helper: &Path) -> Result<Pid, ProvisionError> {
    let Some(n) = state.nodes.iter().find(|n| n.name == name).cloned() else {
        return Err(ProvisionError::Invalid(format!("unknown node {name}")));
    };
    let st = state.clone();
    let helper = helper.to_path_buf();
    tokio::task::spawn_blocking(move || node::spawn_node(&st, &n, &helper))
        .await
        .map_err(|e| ProvisionError::Invalid(format!("node start task: {e}")))?
}

async fn supervise(
    mut state: ClusterState,
    forwards: Vec<(TcpListener, SocketAddr)>,
    helper: &Path,
    grace: Duration,
    ready: &mut dyn Write,
) -> Result<(), ProvisionError> {
    let mut sigterm = signal(SignalKind::terminate()).map_err(ProvisionError::io("SIGTERM"))?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(ProvisionError::io("SIGINT"))?;
    let mut sigchld = signal(SignalKind::child()).map_err(ProvisionError::io("SIGCHLD"))?;
    for (l, target) in forwards {
        let l = tokio::net::TcpListener::from_std(l)
            .map_err(ProvisionError::io("registering a listener"))?;
        tokio::spawn(forward(l, target));
    }

    let mut slots: Vec<Slot> = state
        .nodes
        .iter()
        .map(|n| Slot {
            name: n.name.clone(),
            pid: None,
            crashes: 0,
            started: Instant::now(),
        })
        .collect();
    for i in 0..slots.len() {
        match start(&state, &slots[i].name, helper).await {
            Ok(pid) => {
                log(&format!("started {} (pid {pid})", slots[i].name));
                slots[i].pid = Some(pid);
                slots[i].started = Instant::now();
                if let Some(n) = state.node_mut(&slots[i].name) {
                    n.pid = Some(pid.as_raw());
                    n.last_exit = None;
                }
            }
            Err(e) => {
                stop_all(&mut state, &mut slots, grace).await;
                return Err(ProvisionError::Invalid(format!(
                    "starting node {}: {}",
                    slots[i].name,
                    chain(&e)
                )));
            }
        }
    }
    state.save()?;
    let _ = writeln!(ready, "{READY_LINE}");
    let _ = ready.flush();

    let (restart_tx, mut restart_rx) = mpsc::unbounded_channel::<String>();
    loop {
        tokio::select! {
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = sigchld.recv() => {
                for (pid, how, code) in reap() {
                    let Some(slot) = slots.iter_mut().find(|s| s.pid == Some(pid)) else { continue };
                    slot.pid = None;
                    if let Some(n) = state.node_mut(&slot.name) {
                        n.pid = None;
                        n.last_exit = Some(how.clone());
                    }
                    log(&format!("{} (pid {pid}) exited: {how}", slot.name));
                    let delay = restart_delay(code, &mut slot.crashes, slot.started.elapsed());
                    if delay.is_none() && code != Some(0) {
                        log(&format!("{} crashed {} times in a row, leaving it down", slot.name, slot.crashes));
                    }
                    if let Some(d) = delay {
                        let tx = restart_tx.clone();
                        let name = slot.name.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(d).await;
                            let _ = tx.send(name);
                        });
                    }
                }
                if let Err(e) = state.save() { log(&chain(&e).to_string()); }
            }
            Some(name) = restart_rx.recv() => {
                let Some(i) = slots.iter().position(|s| s.name == name) else { continue };
                if slots[i].pid.is_some() { continue; }
                match start(&state, &name, helper).await {
                    Ok(pid) => {
                        log(&format!("restarted {name} (pid {pid})"));
                        slots[i].pid = Some(pid);
                        slots[i].started = Instant::now();
                        if let Some(n) = state.node_mut(&name) { n.pid = Some(pid.as_raw()); }
                    }
                    Err(e) => {
                        let e = chain(&e);
                        log(&format!("restarting {name}: {e}"));
                        if let Some(n) = state.node_mut(&name) { n.last_exit = Some(format!("start failed: {e}")); }
                    }
                }
                if let Err(e) = state.save() { log(&chain(&e).to_string()); }
            }
        }
    }
    log("stopping nodes");
    stop_all(&mut state, &mut slots, grace).await;
    state.launcher_pid = None;
    state.save()?;
    log("stopped");
    Ok(())
}

/// What to do after a node exited with `code` (`None`: killed by a signal) having run for
/// `ran_for`: `None` = leave it down, `Some(d)` = start it again after `d`. `crashes` counts
/// crashes in a row and is updated.
pub fn restart_delay(code: Option<i32>, crashes: &mut u32, ran_for: Duration) -> Option<Duration> {
    match code {
        Some(0) => None,
        Some(EXIT_REBOOT) => {
            *crashes = 0;
            Some(Duration::ZERO)
        }
        _ => {
            if ran_for > Duration::from_secs(60) {
                *crashes = 0;
            }
            if *crashes >= MAX_CRASH_RESTARTS {
                None
            } else {
                *crashes += 1;
                Some(Duration::from_secs(1 << (*crashes - 1)))
            }
        }
    }
}

/// Reaps every exited child: `(pid, description, exit code if it exited)`.
fn reap() -> Vec<(Pid, String, Option<i32>)> {
    let mut out = Vec::new();
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => {
                out.push((pid, format!("exit code {code}"), Some(code)))
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) => out.push((pid, format!("signal {sig}"), None)),
            Ok(WaitStatus::StillAlive) | Err(_) => break,
            Ok(_) => continue,
        }
    }
    out
}

async fn stop_all(state: &mut ClusterState, slots: &mut [Slot], grace: Duration) {
    for s in slots.iter() {
        if let Some(pid) = s.pid {
            let _ = kill(pid, Signal::SIGTERM);
        }
    }
    let deadline = Instant::now() + grace;
    while slots.iter().any(|s| s.pid.is_some()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for (pid, how, _) in reap() {
            if let Some(s) = slots.iter_mut().find(|s| s.pid == Some(pid)) {
                log(&format!("{} stopped: {how}", s.name));
                s.pid = None;
            }
        }
    }
    for s in slots.iter_mut() {
        if let Some(n) = state.node_mut(&s.name) {
            if s.pid.is_some() {
                log(&format!("{} did not stop in {grace:?}, killing it", s.name));
            }
            let cgroups = n.cgroups.clone();
            if let Some(pid) = s.pid.take() {
                let _ = kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, None);
            }
            if let Err(e) = cgroup::kill_all(&cgroups, Duration::from_secs(10)) {
                log(&chain(&e).to_string());
            }
            n.pid = None;
        }
    }
    let _ = reap();
}

/// Whether `pid` is a live launcher of the cluster in `state_dir`.
pub fn is_launcher(pid: i32, state_dir: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    alive(pid)
        && args.iter().any(|a| a == "container-launch")
        && args.iter().any(|a| Path::new(a) == state_dir)
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .map(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Sends SIGTERM to `pid` and waits up to `timeout` for it to go, then SIGKILLs it.
pub fn terminate(pid: i32, timeout: Duration) {
    let p = Pid::from_raw(pid);
    let _ = kill(p, Signal::SIGTERM);
    let deadline = Instant::now() + timeout;
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if alive(pid) {
        let _ = kill(p, Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Starts the launcher for the cluster in `state_dir` as a detached process (own session,
/// stderr to `launcher.log`) and waits up to `timeout` for it to report that the nodes run.
/// Returns its pid.
pub fn start_launcher(
    exe: &Path,
    state_dir: &Path,
    timeout: Duration,
) -> Result<i32, ProvisionError> {
    let log_path = state_dir.join("launcher.log");
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(ProvisionError::io(format!(
            "opening {}",
            log_path.display()
        )))?;
    let mut cmd = Command::new(exe);
    cmd.args(["talosctl", "container-launch", "--state-dir"])
        .arg(state_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file);
    ns::detach_session(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(ProvisionError::io(format!("starting {}", exe.display())))?;
    let pid = child.id() as i32;
    let Some(stdout) = child.stdout.take() else {
        return Err(ProvisionError::Invalid("launcher stdout missing".into()));
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(timeout).unwrap_or_default();
    let line = line.trim();
    if line == READY_LINE {
        // The launcher lives on (dropping the handle neither kills nor waits for it).
        drop(child);
        return Ok(pid);
    }
    let tail = std::fs::read_to_string(&log_path)
        .map(|t| {
            t.lines()
                .rev()
                .take(10)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    terminate(pid, Duration::from_secs(30));
    let _ = child.wait();
    let why = if line.is_empty() {
        "it exited or timed out without reporting".to_string()
    } else {
        line.to_string()
    };
    Err(ProvisionError::Invalid(format!(
        "the cluster launcher failed: {why}\n{}:\n{tail}",
        log_path.display()
    )))
}

/// The published loopback endpoint (`127.0.0.1:PORT`) of each control plane's apid, in order.
pub fn apid_endpoints(state: &ClusterState) -> Vec<String> {
    state
        .nodes
        .iter()
        .filter_map(|n| n.ports.apid.map(|p| format!("127.0.0.1:{p}")))
        .collect()
}

/// The state directory's launcher log path.
pub fn log_path(state_dir: &Path) -> PathBuf {
    state_dir.join("launcher.log")
}

/// Pids of the node processes by node name, from the state file.
pub fn node_pids(state: &ClusterState) -> HashMap<String, i32> {
    state
        .nodes
        .iter()
        .filter_map(|n| n.pid.map(|p| (n.name.clone(), p)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policy_follows_exit_codes() {
        let short = Duration::from_secs(1);
        let mut crashes = 0;
        assert_eq!(restart_delay(Some(0), &mut crashes, short), None);
        assert_eq!(
            restart_delay(Some(EXIT_REBOOT), &mut crashes, short),
            Some(Duration::ZERO)
        );
        let delays: Vec<Option<Duration>> = (0..6)
            .map(|_| restart_delay(Some(2), &mut crashes, short))
            .collect();
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(
            delays,
            vec![secs(1), secs(2), secs(4), secs(8), secs(16), None]
        );
        // A signal is a crash too; a long run resets the count; a reboot resets it as well.
        assert_eq!(restart_delay(None, &mut crashes, short), None);
        assert_eq!(
            restart_delay(None, &mut crashes, Duration::from_secs(120)),
            secs(1)
        );
        crashes = 4;
        assert_eq!(
            restart_delay(Some(EXIT_REBOOT), &mut crashes, short),
            Some(Duration::ZERO)
        );
        assert_eq!(crashes, 0);
    }

    #[test]
    fn liveness_of_pids() {
        assert!(alive(std::process::id() as i32));
        assert!(!alive(i32::MAX));
        assert!(!is_launcher(std::process::id() as i32, Path::new("/nope")));
    }
}
