//! What a service is: how to run it, what it waits for, how its health is checked and what
//! happens when it exits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use talos::sys::spawn::SpawnOptions;

use crate::init::runtime::BoxFuture;

/// An async check: `Ok` or an error message.
pub type CheckFn = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Talos's service states (`events.ServiceState`), with Talos's numbering (the
/// `machine.ServiceStateEvent.Action` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Registered, never started.
    Initialized,
    /// Running its pre step or creating its runner.
    Preparing,
    /// Waiting for dependencies/conditions, or for a restart.
    Waiting,
    /// Its process (or task) runs.
    Running,
    /// Being stopped.
    Stopping,
    /// Ended successfully (also after a stop).
    Finished,
    /// Ended with an error.
    Failed,
    /// The start was requested.
    Starting,
}

impl State {
    /// The name `talosctl services` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Initialized => "Initialized",
            State::Preparing => "Preparing",
            State::Waiting => "Waiting",
            State::Running => "Running",
            State::Stopping => "Stopping",
            State::Finished => "Finished",
            State::Failed => "Failed",
            State::Starting => "Starting",
        }
    }

    /// The `machine.ServiceStateEvent.Action` value.
    pub fn action(self) -> talos::api::machine::service_state_event::Action {
        use talos::api::machine::service_state_event::Action;
        match self {
            State::Initialized => Action::Initialized,
            State::Preparing => Action::Preparing,
            State::Waiting => Action::Waiting,
            State::Running => Action::Running,
            State::Stopping => Action::Stopping,
            State::Finished => Action::Finished,
            State::Failed => Action::Failed,
            State::Starting => Action::Starting,
        }
    }

    /// A terminal state: Failed or Finished (Talos's "down"; Talos also counts Skipped, which
    /// no service here can reach).
    #[cfg(test)]
    pub fn is_down(self) -> bool {
        matches!(self, State::Failed | State::Finished)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something a service waits for before it starts (besides its dependencies).
#[derive(Clone)]
pub enum Condition {
    /// A file exists.
    FileExists(PathBuf),
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description())
    }
}

impl Condition {
    /// Talos's wording: `file "/x" to exist`.
    pub fn description(&self) -> String {
        match self {
            Condition::FileExists(path) => {
                format!("file {:?} to exist", path.display().to_string())
            }
        }
    }

    /// Whether the condition holds now.
    pub async fn holds(&self) -> bool {
        match self {
            Condition::FileExists(path) => path.exists(),
        }
    }
}

/// How health is probed.
#[derive(Clone)]
pub enum Probe {
    /// A TCP connection can be made.
    Tcp(SocketAddr),
    /// A unix socket accepts a connection.
    Unix(PathBuf),
    /// A custom check.
    Custom(CheckFn),
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Probe::Tcp(a) => write!(f, "Tcp({a})"),
            Probe::Unix(p) => write!(f, "Unix({})", p.display()),
            Probe::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// Go's wording for a failed dial: `dial tcp 127.0.0.1:50000: connect: connection refused`.
fn dial_error(network: &str, target: &str, e: &std::io::Error) -> String {
    let reason = match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_lowercase(),
        None => e.to_string(),
    };
    format!("dial {network} {target}: connect: {reason}")
}

impl Probe {
    /// Runs the probe once.
    pub async fn run(&self) -> Result<(), String> {
        match self {
            Probe::Tcp(addr) => tokio::net::TcpStream::connect(addr)
                .await
                .map(drop)
                .map_err(|e| dial_error("tcp", &addr.to_string(), &e)),
            Probe::Unix(path) => tokio::net::UnixStream::connect(path)
                .await
                .map(drop)
                .map_err(|e| dial_error("unix", &path.display().to_string(), &e)),
            Probe::Custom(check) => check().await,
        }
    }
}

/// A health check and its timing (Talos's defaults: 1 s initial delay, every 5 s, 500 ms
/// timeout).
#[derive(Debug, Clone)]
pub struct HealthCheck {
    /// What is probed.
    pub probe: Probe,
    /// Wait this long after the start before the first probe.
    pub initial_delay: Duration,
    /// Probe this often.
    pub period: Duration,
    /// A probe taking longer fails.
    pub timeout: Duration,
}

impl HealthCheck {
    /// `probe` with Talos's default timing.
    pub fn new(probe: Probe) -> Self {
        HealthCheck {
            probe,
            initial_delay: Duration::from_secs(1),
            period: Duration::from_secs(5),
            timeout: Duration::from_millis(500),
        }
    }

    /// A TCP dial check with Talos's default timing.
    pub fn tcp(addr: SocketAddr) -> Self {
        HealthCheck::new(Probe::Tcp(addr))
    }

    /// Runs the probe once within the timeout.
    pub async fn check(&self) -> Result<(), String> {
        match tokio::time::timeout(self.timeout, self.probe.run()).await {
            Ok(result) => result,
            Err(_) => Err(match &self.probe {
                Probe::Tcp(a) => format!("dial tcp {a}: i/o timeout"),
                Probe::Unix(p) => format!("dial unix {}: i/o timeout", p.display()),
                Probe::Custom(_) => "context deadline exceeded".into(),
            }),
        }
    }
}

/// Talos's restart policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Restart whenever it exits.
    Forever,
    /// Run once; its exit ends the service (Finished or Failed). No node service runs once
    /// yet (extension services will); the supervisor's tests use it for short-lived services.
    #[cfg(test)]
    Once,
    /// Restart until it exits 0 (no node service uses it yet; tested).
    #[cfg(test)]
    UntilSuccess,
}

/// Delay before a restart: `initial`, doubled after each run that lasted less than
/// `reset_after`, at most `max`; a run that lasted `reset_after` or longer starts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackOff {
    /// The first delay (Talos restarts every 5 s).
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// A run this long counts as healthy and resets the delay.
    pub reset_after: Duration,
}

impl Default for BackOff {
    fn default() -> Self {
        BackOff {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(60),
            reset_after: Duration::from_secs(60),
        }
    }
}

impl BackOff {
    /// The delay after `short_runs` consecutive short runs (1 = the first failure).
    pub fn delay(&self, short_runs: u32) -> Duration {
        let exp = short_runs.saturating_sub(1).min(16);
        self.initial
            .saturating_mul(1u32 << exp)
            .min(self.max.max(self.initial))
    }
}

/// How the runner describes itself in events: Talos runs some services as processes and
/// others as containerd tasks, and the messages differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `Process Process(["/bin/containerd" ...]) started with PID 12`.
    Process,
    /// `Started task apid (PID 12) for container apid`.
    Container,
}

/// A cgroup for the service and its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupSpec {
    /// e.g. `/system/apid`, under the supervisor's cgroup root.
    pub name: String,
    /// `memory.max`.
    pub memory_max: Option<u64>,
    /// `cpu.weight`.
    pub cpu_weight: Option<u32>,
}

/// A service that is a process.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// The executable.
    pub exe: PathBuf,
    /// `argv[0]` (default: the executable path).
    pub argv0: Option<String>,
    /// Arguments after `argv[0]`.
    pub args: Vec<String>,
    /// Environment (on top of `PATH`); nothing else is inherited.
    pub env: Vec<(String, String)>,
    /// Session, namespaces, credentials, capabilities.
    pub spawn: SpawnOptions,
    /// Its cgroup.
    pub cgroup: Option<CgroupSpec>,
    /// How events describe it.
    pub style: Style,
    /// SIGTERM, then SIGKILL after this long (Talos: 10 s).
    pub stop_timeout: Duration,
}

impl ProcessSpec {
    /// `exe args...` with defaults: no special spawn options, no cgroup, process style.
    pub fn new(exe: impl Into<PathBuf>, args: &[&str]) -> Self {
        ProcessSpec {
            exe: exe.into(),
            argv0: None,
            args: args.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
            spawn: SpawnOptions::default(),
            cgroup: None,
            style: Style::Process,
            stop_timeout: Duration::from_secs(10),
        }
    }

    /// The full argv as Talos lists it.
    pub fn argv(&self) -> Vec<String> {
        let mut argv = vec![self
            .argv0
            .clone()
            .unwrap_or_else(|| self.exe.display().to_string())];
        argv.extend(self.args.iter().cloned());
        argv
    }

    /// Go's `Process(%q)` of the argv: `Process(["/apid" "--x"])`.
    pub fn describe(&self) -> String {
        let quoted: Vec<String> = self.argv().iter().map(|a| format!("{a:?}")).collect();
        format!("Process([{}])", quoted.join(" "))
    }
}

/// What runs.
/// Builds a process runner when the service starts (Talos's `Runner()`, called at "Creating
/// service runner"): `Err` names what is missing.
pub type RunnerFn = Arc<dyn Fn() -> BoxFuture<'static, Result<ProcessSpec, String>> + Send + Sync>;

#[derive(Clone)]
#[allow(clippy::large_enum_variant)] // a handful per node, built once
pub enum Runner {
    /// A child process.
    Process(ProcessSpec),
    /// A child process whose command is decided at each start (the kubelet: its flags come
    /// from the `KubeletSpecs` resource, its executable from what the node provides).
    Dynamic(RunnerFn),
    /// Part of machined itself (machined): running as long as machined runs.
    Internal,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Runner::Process(p) => f.debug_tuple("Process").field(p).finish(),
            Runner::Dynamic(_) => f.write_str("Dynamic"),
            Runner::Internal => f.write_str("Internal"),
        }
    }
}

/// Which `talosctl service ID start|stop|restart` requests the API accepts for a service
/// (Talos allows them only for a few services; machined's own sequencer is not limited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApiPolicy {
    /// `start` allowed.
    pub start: bool,
    /// `stop` allowed.
    pub stop: bool,
    /// `restart` allowed.
    pub restart: bool,
}

impl ApiPolicy {
    /// Everything allowed.
    pub const ALL: ApiPolicy = ApiPolicy {
        start: true,
        stop: true,
        restart: true,
    };
}

/// A service.
#[derive(Clone)]
pub struct ServiceSpec {
    /// Talos's service id (`apid`, `trustd`, ...).
    pub id: String,
    /// What runs.
    pub runner: Runner,
    /// Services that must be up first.
    pub depends_on: Vec<String>,
    /// Other things to wait for.
    pub conditions: Vec<Condition>,
    /// Runs after the wait, before the runner ("Running pre state").
    pub pre: Option<CheckFn>,
    /// Health check.
    pub health: Option<HealthCheck>,
    /// What an exit means.
    pub restart: RestartPolicy,
    /// Restart delays.
    pub back_off: BackOff,
    /// What the API may do with it.
    pub api: ApiPolicy,
}

impl std::fmt::Debug for ServiceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceSpec")
            .field("id", &self.id)
            .field("runner", &self.runner)
            .field("depends_on", &self.depends_on)
            .field("conditions", &self.conditions)
            .field("pre", &self.pre.is_some())
            .field("health", &self.health)
            .field("restart", &self.restart)
            .field("back_off", &self.back_off)
            .field("api", &self.api)
            .finish()
    }
}

impl ServiceSpec {
    /// A service with defaults: no dependencies, no conditions, no health check, restarted
    /// forever, API control allowed.
    pub fn new(id: impl Into<String>, runner: Runner) -> Self {
        ServiceSpec {
            id: id.into(),
            runner,
            depends_on: Vec::new(),
            conditions: Vec::new(),
            pre: None,
            health: None,
            restart: RestartPolicy::Forever,
            back_off: BackOff::default(),
            api: ApiPolicy::ALL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_max() {
        let b = BackOff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(350),
            reset_after: Duration::from_secs(1),
        };
        assert_eq!(b.delay(1), Duration::from_millis(100));
        assert_eq!(b.delay(2), Duration::from_millis(200));
        assert_eq!(b.delay(3), Duration::from_millis(350));
        assert_eq!(b.delay(40), Duration::from_millis(350));
    }

    #[test]
    fn descriptions_match_talos() {
        let p = ProcessSpec::new("/bin/containerd", &["--address", "/run/c.sock"]);
        assert_eq!(
            p.describe(),
            r#"Process(["/bin/containerd" "--address" "/run/c.sock"])"#
        );
        assert_eq!(
            Condition::FileExists("/system/secrets/apid/ca.crt".into()).description(),
            r#"file "/system/secrets/apid/ca.crt" to exist"#
        );
        assert_eq!(State::Running.action() as i32, 3);
        assert_eq!(State::Starting.action() as i32, 8);
    }

    #[tokio::test]
    async fn tcp_probe_reports_like_go() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        HealthCheck::tcp(addr).check().await.expect("healthy");
        drop(listener);
        // A port that was listened on but never connected to (no reset races).
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("closed port");
        let err = HealthCheck::tcp(addr).check().await.expect_err("refused");
        assert_eq!(err, format!("dial tcp {addr}: connect: connection refused"));
    }
}
