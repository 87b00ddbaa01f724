//! Supervisor tests: a real supervisor in this test process (a child subreaper), running
//! simple processes and the real `talos` binary's apid.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use talos::events::{EventBus, WatchOptions};
use talos::logbuf::LogBuffers;

use super::spec::{BackOff, Condition, HealthCheck, Probe, ProcessSpec, RestartPolicy, Style};
use super::*;

fn supervisor() -> (Supervisor, Arc<LogBuffers>, Arc<EventBus>) {
    Reaper::become_subreaper().expect("subreaper");
    let logs = Arc::new(LogBuffers::default());
    let events = Arc::new(EventBus::default());
    let sup = Supervisor::new(
        Arc::clone(&logs),
        Arc::clone(&events),
        SupervisorOptions {
            cgroup_root: None,
            condition_poll: Duration::from_millis(50),
        },
    )
    .expect("supervisor");
    (sup, logs, events)
}

fn sh(id: &str, script: &str) -> ServiceSpec {
    let mut process = ProcessSpec::new("/bin/sh", &["-c", script]);
    // Dies with the test thread, even when a test fails before stopping it.
    process.spawn.parent_death_signal = Some(libc::SIGKILL);
    let mut spec = ServiceSpec::new(id, Runner::Process(process));
    spec.back_off = BackOff {
        initial: Duration::from_millis(200),
        max: Duration::from_secs(1),
        reset_after: Duration::from_secs(10),
    };
    spec
}

fn fast_health(probe: Probe) -> HealthCheck {
    HealthCheck {
        probe,
        initial_delay: Duration::from_millis(20),
        period: Duration::from_millis(100),
        timeout: Duration::from_millis(500),
    }
}

fn ok_probe() -> Probe {
    Probe::Custom(Arc::new(|| Box::pin(async { Ok(()) })))
}

/// Polls `f` until it is true (10 s at most).
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn messages(sup: &Supervisor, id: &str) -> Vec<String> {
    sup.events(id)
        .iter()
        .map(|e| format!("{}: {}", e.state, e.message))
        .collect()
}

fn log_text(logs: &LogBuffers, id: &str) -> String {
    logs.get(id)
        .map(|b| {
            b.tail(None)
                .iter()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn normal_start_walks_talos_states_and_logs_output() {
    let (sup, logs, events) = supervisor();
    let mut sub = events.subscribe(WatchOptions::default());
    let mut changes = sup.subscribe();
    let mut spec = sh("hello", "echo hello from $0; echo oops >&2; exec sleep 30");
    spec.health = Some(fast_health(ok_probe()));
    assert!(sup.register(spec.clone()));
    assert!(!sup.register(spec), "a second registration is ignored");
    assert_eq!(sup.state("hello"), Some((State::Initialized, None)));

    sup.start("hello").await.expect("start");
    sup.wait_up(&["hello".into()], Duration::from_secs(10))
        .await
        .expect("up");
    let got = messages(&sup, "hello");
    let pid = sup.pid("hello").expect("pid");
    assert_eq!(
        got,
        [
            "Starting: Starting service".to_string(),
            "Preparing: Running pre state".to_string(),
            "Preparing: Creating service runner".to_string(),
            format!(
                r#"Running: Process Process(["/bin/sh" "-c" "echo hello from $0; echo oops >&2; exec sleep 30"]) started with PID {pid}"#
            ),
            "Running: Health check successful".to_string(),
        ]
    );
    eventually("output in the log buffer", || {
        let text = log_text(&logs, "hello");
        text.contains("hello from /bin/sh\n") && text.contains("oops\n")
    })
    .await;
    assert!(log_text(&logs, "hello").contains("service[hello](Running): Health check successful"));

    // The table `talosctl services` shows.
    let list = ServiceSource::list(&sup);
    let info = list.iter().find(|s| s.id == "hello").expect("listed");
    assert_eq!(info.state, "Running");
    let health = info.health.as_ref().expect("health");
    assert!(health.healthy && !health.unknown);
    assert_eq!(info.events.as_ref().expect("events").events.len(), 5);

    // Every transition was on the bus and on the broadcast.
    let mut actions = Vec::new();
    while let Some(event) = sub.try_next() {
        assert_eq!(event.type_url, "talos/runtime/machine.ServiceStateEvent");
        let msg = pb::ServiceStateEvent::decode(event.payload.as_slice()).expect("decode");
        assert_eq!(msg.service, "hello");
        actions.push(msg.action);
    }
    assert_eq!(actions, [8, 1, 1, 3, 3]);
    let first = changes.try_recv().expect("change");
    assert_eq!(first.state, State::Starting);

    let resp = ServiceControl::stop(&sup, "hello").await.expect("stop");
    assert_eq!(resp, r#"Service "hello" stopped"#);
    let got = messages(&sup, "hello");
    assert!(
        got.iter()
            .any(|m| m.starts_with("Stopping: Sending SIGTERM to Process([")),
        "{got:?}"
    );
    assert_eq!(
        got.last().map(String::as_str),
        Some("Finished: Service finished successfully")
    );
    assert_eq!(sup.pid("hello"), None);
}

#[tokio::test]
async fn dependencies_wait_until_up() {
    let (sup, _logs, _events) = supervisor();
    let dir = tempfile::tempdir().expect("tempdir");
    let flag = dir.path().join("ready");
    let mut base = sh("base", "exec sleep 30");
    base.conditions = vec![Condition::FileExists(flag.clone())];
    let mut top = sh("top", "exec sleep 30");
    top.depends_on = vec!["base".into(), "ghost".into()];
    sup.register(base);
    sup.register(top);
    sup.start("top").await.expect("start top");
    sup.start("base").await.expect("start base");
    eventually("top waiting", || {
        sup.state("top").map(|s| s.0) == Some(State::Waiting)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sup.state("base").map(|s| s.0), Some(State::Waiting));
    assert!(messages(&sup, "base").contains(&format!(
        "Waiting: Waiting for file {:?} to exist",
        flag.display().to_string()
    )));
    assert!(
        messages(&sup, "top").contains(
            &r#"Waiting: Waiting for service "base" to be "up", service "ghost" to be registered"#
                .to_string()
        ),
        "{:?}",
        messages(&sup, "top")
    );
    sup.register(sh("ghost", "exit 0"));
    let mut ghost = sh("ghost2", "exit 0");
    ghost.restart = RestartPolicy::Once;
    sup.register(ghost);
    std::fs::write(&flag, "").expect("flag");
    eventually("base up", || sup.is_up("base")).await;
    // `ghost` is registered but never started: top keeps waiting for it only.
    eventually("top waits for ghost only", || {
        messages(&sup, "top").last().map(String::as_str)
            == Some(r#"Waiting: Waiting for service "ghost" to be "up""#)
    })
    .await;
    assert_eq!(sup.state("top").map(|s| s.0), Some(State::Waiting));
    sup.stop("top").await.expect("stop");
    assert_eq!(
        messages(&sup, "top").last().map(String::as_str),
        Some("Failed: Condition failed: context canceled")
    );
    sup.stop_all().await;
}

#[tokio::test]
async fn failing_health_check_keeps_the_service_down() {
    let (sup, _logs, _events) = supervisor();
    // A port nobody listens on.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let mut spec = sh("sick", "exec sleep 30");
    spec.health = Some(fast_health(Probe::Tcp(addr)));
    sup.register(spec);
    sup.start("sick").await.expect("start");
    eventually("health failure", || {
        sup.state("sick") == Some((State::Running, Some(false)))
    })
    .await;
    let want =
        format!("Running: Health check failed: dial tcp {addr}: connect: connection refused");
    assert!(
        messages(&sup, "sick").contains(&want),
        "{:?}",
        messages(&sup, "sick")
    );
    assert!(!sup.is_up("sick"));
    let err = sup
        .wait_up(&["sick".into()], Duration::from_millis(300))
        .await
        .expect_err("not up");
    assert!(err.to_string().contains("sick (Running)"), "{err}");
    let unknown = sup
        .wait_up(&["nope".into()], Duration::from_millis(10))
        .await;
    assert!(matches!(unknown, Err(ControlError::NotFound(_))));
    sup.stop_all().await;
}

// machined's runtime is multi-threaded: run like it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_service_is_restarted_with_back_off_and_logs_survive() {
    let (sup, logs, events) = supervisor();
    let mut spec = sh("victim", "echo run $$; exec sleep 30");
    if let Runner::Process(p) = &mut spec.runner {
        p.style = Style::Container;
    }
    sup.register(spec);
    sup.start("victim").await.expect("start");
    eventually("running", || sup.pid("victim").is_some()).await;
    let first = sup.pid("victim").expect("pid");
    eventually("first output", || {
        log_text(&logs, "victim").contains(&format!("run {first}\n"))
    })
    .await;
    let mut sub = events.subscribe(WatchOptions::default());
    let started = std::time::Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    eventually("restarted", || {
        sup.pid("victim").is_some_and(|p| p != first)
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "restarted without back-off"
    );
    let second = sup.pid("victim").expect("pid");
    let want = r#"Error running Containerd(victim), going to restart forever: task "victim" failed: exit code 137"#;
    assert!(messages(&sup, "victim").contains(&format!("Waiting: {want}")));
    assert!(messages(&sup, "victim").contains(&format!(
        "Running: Started task victim (PID {second}) for container victim"
    )));
    // The log buffer has both runs and the supervisor's line about the restart.
    eventually("second output", || {
        log_text(&logs, "victim").contains(&format!("run {second}\n"))
    })
    .await;
    let text = log_text(&logs, "victim");
    assert!(text.contains(&format!("run {first}\n")), "{text}");
    assert!(
        text.contains(&format!("service[victim](Waiting): {want}")),
        "{text}"
    );
    // And a ServiceStateEvent records it.
    let mut waiting = false;
    while let Some(event) = sub.try_next() {
        let msg = pb::ServiceStateEvent::decode(event.payload.as_slice()).expect("decode");
        waiting |= msg.action == 2 && msg.message == want;
    }
    assert!(waiting, "no Waiting event for the restart");
    sup.stop_all().await;
}

#[tokio::test]
async fn restart_policies_once_and_until_success() {
    let (sup, _logs, _events) = supervisor();
    let mut once = sh("once", "exit 3");
    once.restart = RestartPolicy::Once;
    let mut done = sh("done", "exit 0");
    done.restart = RestartPolicy::Once;
    let dir = tempfile::tempdir().expect("tempdir");
    let counter = dir.path().join("n");
    let mut until = sh(
        "until",
        &format!("echo x >> {0}; [ $(wc -l < {0}) -ge 3 ]", counter.display()),
    );
    until.restart = RestartPolicy::UntilSuccess;
    until.back_off.initial = Duration::from_millis(20);
    for s in [once, done, until] {
        sup.register(s);
    }
    for id in ["once", "done", "until"] {
        sup.start(id).await.expect("start");
    }
    eventually("all down", || {
        ["once", "done", "until"]
            .iter()
            .all(|id| sup.state(id).is_some_and(|s| s.0.is_down()))
    })
    .await;
    assert_eq!(
        messages(&sup, "once").last().map(String::as_str),
        Some("Failed: Failed running service: error running service: exit status 3")
    );
    assert_eq!(sup.state("done").map(|s| s.0), Some(State::Finished));
    assert!(sup.is_up("done"), "Finished counts as up");
    assert_eq!(sup.state("until").map(|s| s.0), Some(State::Finished));
    assert_eq!(
        std::fs::read_to_string(&counter)
            .expect("n")
            .lines()
            .count(),
        3
    );
}

#[tokio::test]
async fn missing_binary_fails_clearly_and_the_supervisor_goes_on() {
    let (sup, _logs, _events) = supervisor();
    sup.register(ServiceSpec::new(
        "ghostd",
        Runner::Process(ProcessSpec::new("/nonexistent/ghostd", &[])),
    ));
    sup.register(sh("fine", "exec sleep 30"));
    sup.start("ghostd").await.expect("start");
    eventually("failed", || {
        sup.state("ghostd").map(|s| s.0) == Some(State::Failed)
    })
    .await;
    assert_eq!(
        messages(&sup, "ghostd").last().map(String::as_str),
        Some("Failed: Failed running service: error starting process: fork/exec /nonexistent/ghostd: no such file or directory")
    );
    sup.start("fine").await.expect("start");
    sup.wait_up(&["fine".into()], Duration::from_secs(10))
        .await
        .expect("fine is up");
    sup.stop_all().await;
}

// machined's runtime is multi-threaded: run like it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_all_stops_dependents_first() {
    let (sup, _logs, _events) = supervisor();
    let mut changes = sup.subscribe();
    let mut a = sh("a", "exec sleep 30");
    a.health = Some(fast_health(ok_probe()));
    let mut b = sh("b", "exec sleep 30");
    b.depends_on = vec!["a".into()];
    // c ignores SIGTERM for a moment: b and a must still wait for it.
    let mut c = sh(
        "c",
        "trap 'sleep 0.3; exit 0' TERM; while :; do sleep 0.05; done",
    );
    c.depends_on = vec!["b".into()];
    for s in [a, b, c] {
        let id = s.id.clone();
        sup.register(s);
        sup.start(&id).await.expect("start");
    }
    sup.wait_up(
        &["a".into(), "b".into(), "c".into()],
        Duration::from_secs(10),
    )
    .await
    .expect("up");
    sup.stop_all().await;
    let mut finished = Vec::new();
    while let Ok(change) = changes.try_recv() {
        if change.state == State::Finished {
            finished.push(change.id);
        }
    }
    assert_eq!(finished, ["c", "b", "a"]);
    // No new starts while terminating.
    assert!(matches!(
        sup.start("a").await,
        Err(ControlError::FailedPrecondition(_))
    ));
}

#[tokio::test]
async fn api_policy_and_unknown_services() {
    let (sup, _logs, _events) = supervisor();
    let params = super::node::NodeParams::new("/nonexistent/talos");
    sup.register(super::node::machined(&params));
    let mut locked = sh("locked", "exec sleep 30");
    locked.api = ApiPolicy::default();
    sup.register(locked);
    let api = sup.api_control();
    let err = api.start("locked").await.expect_err("refused");
    assert_eq!(
        err.to_string(),
        r#"service "locked" doesn't support start operation via API"#
    );
    assert!(matches!(
        api.start("nope").await,
        Err(ControlError::NotFound(_))
    ));
    // The sequencer's (unrestricted) control starts it; the API cannot stop it.
    ServiceControl::start(&sup, "locked").await.expect("start");
    ServiceControl::start(&sup, "machined")
        .await
        .expect("start");
    eventually("machined running", || {
        sup.state("machined").map(|s| s.0) == Some(State::Running)
    })
    .await;
    assert!(
        messages(&sup, "machined").contains(&"Running: Service started as goroutine".to_string())
    );
    let err = api.stop("machined").await.expect_err("refused");
    assert!(err.to_string().contains("doesn't support stop"), "{err}");
    sup.stop_all().await;
}

/// The `talos` binary next to this test binary (target/debug/talos), if built.
fn talos_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("talos");
    bin.is_file().then_some(bin)
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

struct Pki {
    ca: Vec<u8>,
    client: (Vec<u8>, Vec<u8>),
}

fn write_pki(dir: &Path) -> Pki {
    use talos::secrets::{CertParams, CertificateAuthority, ExtKeyUsage, KeyAlgorithm, KeyUsage};
    let now = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let ca = CertificateAuthority::generate(
        KeyAlgorithm::Ed25519,
        &CertParams::new(now, time::Duration::days(10)).organizations(["talos"]),
    )
    .expect("CA");
    let issue = |params: &CertParams| {
        let (crt, key) = ca.issue(params).expect("issue");
        (crt.to_pem(), key.to_pem().expect("pem"))
    };
    let server = issue(
        &CertParams::new(now, time::Duration::days(10))
            .ip_addresses([std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)])
            .ext_key_usage([ExtKeyUsage::ServerAuth]),
    );
    let client = issue(
        &CertParams::new(now, time::Duration::days(10))
            .organizations(["os:admin"])
            .key_usage(KeyUsage::DIGITAL_SIGNATURE)
            .ext_key_usage([ExtKeyUsage::ClientAuth]),
    );
    std::fs::create_dir_all(dir).expect("pki dir");
    let ca_pem = ca.cert.to_pem();
    std::fs::write(dir.join("server.crt"), &server.0).expect("crt");
    std::fs::write(dir.join("server.key"), &server.1).expect("key");
    // ca.crt last: it is the condition apid waits for.
    std::fs::write(dir.join("ca.crt"), &ca_pem).expect("ca");
    Pki { ca: ca_pem, client }
}

async fn version_via_apid(pki: &Pki, port: u16) -> Result<String, String> {
    use talos::client::connect::{Client, Credentials, Target};
    let creds =
        Credentials::mtls(&pki.ca, &pki.client.0, &pki.client.1).map_err(|e| e.to_string())?;
    let target = Target::parse(&format!("127.0.0.1:{port}")).map_err(|e| e.to_string())?;
    let client = Client::connect(vec![target], &creds)
        .await
        .map_err(|e| e.to_string())?;
    let resp = client
        .machine()
        .version(())
        .await
        .map_err(|e| e.to_string())?;
    let tag = resp
        .into_inner()
        .messages
        .first()
        .and_then(|m| m.version.as_ref())
        .map(|v| v.tag.clone())
        .unwrap_or_default();
    Ok(tag)
}

// machined's runtime is multi-threaded: run like it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_apid_is_supervised_and_answers_again_after_kill_9() {
    let Some(bin) = talos_binary() else {
        println!("SKIPPED (talos binary not built; run `cargo build` first): real_apid");
        return;
    };
    let (sup, logs, _events) = supervisor();
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("machine.sock");
    let port = free_port();
    let mut params = super::node::NodeParams::new(&bin);
    params.machined_socket = socket.clone();
    params.apid_pki_dir = dir.path().join("apid");
    params.apid_listen = format!("127.0.0.1:{port}").parse().expect("addr");
    // machined's API as a process (the real machined is the supervisor's own process).
    let mut machined = ServiceSpec::new(
        "machined",
        Runner::Process(ProcessSpec::new(
            &bin,
            &[
                "machined",
                "--api-only",
                "--socket",
                &socket.display().to_string(),
            ],
        )),
    );
    machined.health = Some(fast_health(Probe::Unix(socket.clone())));
    if let Runner::Process(p) = &mut machined.runner {
        // Dies with the test thread, even when the test fails before stop_all.
        p.spawn.parent_death_signal = Some(libc::SIGKILL);
    }
    let mut apid = super::node::apid(&params);
    apid.depends_on = vec!["machined".into()];
    apid.back_off.initial = Duration::from_millis(300);
    apid.health = Some(HealthCheck {
        probe: apid.health.as_ref().expect("health").probe.clone(),
        ..fast_health(ok_probe())
    });
    sup.register(machined);
    sup.register(apid);
    sup.start("machined").await.expect("start");
    sup.start("apid").await.expect("start");
    eventually("apid waiting for its PKI", || {
        messages(&sup, "apid")
            .iter()
            .any(|m| m.contains("ca.crt\\\" to exist") || m.contains("ca.crt\" to exist"))
    })
    .await;
    let pki = write_pki(&params.apid_pki_dir);
    sup.wait_up(&["machined".into(), "apid".into()], Duration::from_secs(30))
        .await
        .expect("apid up");
    assert_eq!(
        version_via_apid(&pki, port).await.expect("version"),
        talos::version::TALOS_VERSION
    );
    eventually("apid log", || {
        log_text(&logs, "apid").contains("listening on")
    })
    .await;

    let first = sup.pid("apid").expect("pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    eventually("apid restarted", || {
        sup.pid("apid").is_some_and(|p| p != first)
    })
    .await;
    sup.wait_up(&["apid".into()], Duration::from_secs(30))
        .await
        .expect("up again");
    let mut answered = Err(String::new());
    for _ in 0..50 {
        answered = version_via_apid(&pki, port).await;
        if answered.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    answered.expect("the API answers again");
    assert!(messages(&sup, "apid").contains(
        &r#"Waiting: Error running Containerd(apid), going to restart forever: task "apid" failed: exit code 137"#
            .to_string()
    ));
    sup.stop_all().await;
    assert_eq!(sup.state("apid").map(|s| s.0), Some(State::Finished));
}

#[tokio::test]
async fn stop_escalates_to_sigkill_after_the_timeout() {
    let (sup, _logs, _events) = supervisor();
    let mut spec = sh(
        "stubborn",
        "trap '' TERM; echo ready; while :; do sleep 0.05; done",
    );
    if let Runner::Process(p) = &mut spec.runner {
        p.stop_timeout = Duration::from_millis(300);
    }
    sup.register(spec);
    sup.start("stubborn").await.expect("start");
    eventually("running", || sup.pid("stubborn").is_some()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let resp = ServiceControl::restart(&sup, "stubborn")
        .await
        .expect("restart");
    assert_eq!(resp, r#"Service "stubborn" restarted"#);
    let got = messages(&sup, "stubborn");
    assert!(
        got.iter()
            .any(|m| m.starts_with("Stopping: Sending SIGKILL to Process([")),
        "{got:?}"
    );
    // Restarted: a second Starting after the first Finished.
    let finished = got
        .iter()
        .position(|m| m == "Finished: Service finished successfully");
    let restarted = got.iter().rposition(|m| m == "Starting: Starting service");
    assert!(finished.is_some() && restarted > finished, "{got:?}");
    sup.stop_all().await;
}

/// A cgroup for one test, killed and removed on drop.
struct TestCgroup(talos::sys::cgroup::Cgroup);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = self.0.kill_all(20);
        std::thread::sleep(Duration::from_millis(50));
        let _ = self.0.remove();
    }
}

#[tokio::test]
async fn root_apid_runs_unprivileged_in_its_cgroup_and_namespaces() {
    use std::os::unix::fs::PermissionsExt as _;
    if !nix::unistd::geteuid().is_root() {
        println!("SKIPPED (needs root): root_apid_runs_unprivileged_in_its_cgroup_and_namespaces");
        return;
    }
    let Some(bin) = talos_binary() else {
        println!("SKIPPED (talos binary not built; run `cargo build` first): root_apid");
        return;
    };
    let Some(root) = talos::sys::cgroup::detect_root(Path::new("/sys/fs/cgroup")) else {
        println!("SKIPPED (no cgroup2 hierarchy): root_apid");
        return;
    };
    let group = TestCgroup(
        talos::sys::cgroup::Cgroup::create(
            &root,
            &format!("talos-sup-test-{}", std::process::id()),
        )
        .expect("test cgroup"),
    );
    Reaper::become_subreaper().expect("subreaper");
    let logs = Arc::new(LogBuffers::default());
    let sup = Supervisor::new(
        Arc::clone(&logs),
        Arc::new(EventBus::default()),
        SupervisorOptions {
            cgroup_root: Some(group.0.path()),
            condition_poll: Duration::from_millis(50),
        },
    )
    .expect("supervisor");
    let dir = tempfile::tempdir().expect("tempdir");
    // uid 50 must be able to reach the PKI and the socket inside the temp dir.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let socket = dir.path().join("run/machine.sock");
    let port = free_port();
    let mut params = super::node::NodeParams::new(&bin);
    params.machined_socket = socket.clone();
    params.apid_pki_dir = dir.path().join("apid");
    params.apid_listen = format!("127.0.0.1:{port}").parse().expect("addr");
    params.unprivileged = true;
    params.namespaces = true;
    params.cgroups = true;
    let pki = write_pki(&params.apid_pki_dir);
    let mut machined = ServiceSpec::new(
        "machined",
        Runner::Process(ProcessSpec::new(
            &bin,
            &[
                "machined",
                "--api-only",
                "--socket",
                &socket.display().to_string(),
            ],
        )),
    );
    machined.health = Some(fast_health(Probe::Unix(socket.clone())));
    if let Runner::Process(p) = &mut machined.runner {
        // Dies with the test thread, even when the test fails before stop_all.
        p.spawn.parent_death_signal = Some(libc::SIGKILL);
    }
    let mut apid = super::node::apid(&params);
    apid.depends_on = vec!["machined".into()];
    apid.health = Some(HealthCheck {
        probe: apid.health.as_ref().expect("health").probe.clone(),
        ..fast_health(ok_probe())
    });
    sup.register(machined);
    sup.register(apid);
    sup.start("machined").await.expect("start");
    sup.start("apid").await.expect("start");
    if let Err(e) = sup.wait_up(&["apid".into()], Duration::from_secs(30)).await {
        panic!(
            "{e}\n{:?}\n{}",
            messages(&sup, "apid"),
            log_text(&logs, "apid")
        );
    }
    let pid = sup.pid("apid").expect("pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    assert!(status.contains("\nUid:\t50\t50\t50\t50\n"), "{status}");
    assert!(status.contains("\nGid:\t50\t50\t50\t50\n"), "{status}");
    assert!(status.contains("\nNoNewPrivs:\t1\n"), "{status}");
    assert!(status.contains("\nCapBnd:\t0000000000000000\n"), "{status}");
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    assert!(
        cgroup.contains(&format!("0::{}/system/apid\n", group.0.name())),
        "{cgroup}"
    );
    let own_mnt = std::fs::read_link("/proc/self/ns/mnt").expect("ns");
    let apid_mnt = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).expect("ns");
    assert_ne!(own_mnt, apid_mnt);
    // PID 1 of its own PID namespace, like a Talos container.
    let nspid = status
        .lines()
        .find(|l| l.starts_with("NSpid:"))
        .expect("NSpid");
    assert!(nspid.ends_with("\t1"), "{nspid}");
    // Lowering the OOM score needs CAP_SYS_RESOURCE, which some sandboxes withhold even
    // from root (the supervisor then goes on without it).
    let own = std::fs::read_to_string("/proc/self/status").expect("status");
    let own_caps = talos::sys::spawn::read_capabilities(&own);
    if own_caps.get("CapEff").is_some_and(|m| m & (1 << 24) != 0) {
        assert_eq!(
            std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
                .expect("oom")
                .trim(),
            "-998"
        );
    }
    let mut answered = Err(String::new());
    for _ in 0..50 {
        answered = version_via_apid(&pki, port).await;
        if answered.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    answered.expect("apid (uid 50) proxies to machined");
    sup.stop_all().await;
}

/// etcd before `talosctl bootstrap`: its pre step waits (Preparing, health unknown, never
/// run), after containerd; shutdown's stop_all ends the wait.
#[tokio::test]
async fn etcd_waits_for_bootstrap_in_its_pre_step_until_stopped() {
    let (sup, _logs, _events) = supervisor();
    let params = super::node::NodeParams::new("/nonexistent/talos");
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    let mut etcd = super::node::etcd(
        &params,
        Arc::new(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            vec!["10.0.2.15".to_string()]
        }),
    );
    // The real binary never runs: the pre step does not end.
    if let Runner::Process(p) = &mut etcd.runner {
        p.exe = PathBuf::from("/nonexistent/etcd");
    }
    let containerd = sh("containerd", "exec sleep 30");
    assert!(sup.register(containerd));
    assert!(sup.register(etcd));
    sup.start("etcd").await.expect("start etcd");
    eventually("etcd waits for containerd", || {
        messages(&sup, "etcd")
            .iter()
            .any(|m| m == "Waiting: Waiting for service \"containerd\" to be \"up\"")
    })
    .await;
    sup.start("containerd").await.expect("start containerd");
    eventually("etcd in its pre step", || {
        asked.load(std::sync::atomic::Ordering::SeqCst) > 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        messages(&sup, "etcd").last().map(String::as_str),
        Some("Preparing: Running pre state")
    );
    let list = ServiceSource::list(&sup);
    let info = list.iter().find(|s| s.id == "etcd").expect("listed");
    assert_eq!(info.state, "Preparing");
    assert!(info.health.as_ref().is_none_or(|h| h.unknown));
    assert_eq!(sup.pid("etcd"), None, "etcd never ran");

    tokio::time::timeout(Duration::from_secs(20), sup.stop_all())
        .await
        .expect("stop_all ends the wait");
    assert_eq!(
        messages(&sup, "etcd").last().map(String::as_str),
        Some("Failed: Failed to run pre stage: context canceled")
    );
}

/// The kubelet service with the kubelet spec of `args` and `mounts` in a fresh state, looking
/// for the kubelet at `paths`.
fn kubelet_service(
    paths: Vec<PathBuf>,
    args: &[&str],
    mounts: Vec<talos::resources::specs::Mount>,
) -> ServiceSpec {
    let st = talos::resources::State::new();
    st.put(
        talos::resources::Resource::from_typed(
            talos::resources::specs::KUBELET_ID,
            &talos::resources::specs::KubeletSpecSpec {
                image: "ghcr.io/siderolabs/kubelet:v1.30.0".into(),
                args: args.iter().map(|a| a.to_string()).collect(),
                extra_mounts: mounts,
                ..Default::default()
            },
        ),
        "k8s.KubeletSpecController",
    )
    .expect("kubelet spec");
    let mut params = super::node::NodeParams::new("/sbin/init");
    params.kubelet_paths = paths;
    super::kubelet::kubelet(&params, st, false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_without_a_kubelet_fails_saying_what_is_missing() {
    let (sup, _logs, _events) = supervisor();
    sup.register(kubelet_service(
        vec![PathBuf::from("/nonexistent/kubelet")],
        &[],
        Vec::new(),
    ));
    sup.start("kubelet").await.expect("start");
    eventually("kubelet failed", || {
        sup.state("kubelet").map(|s| s.0) == Some(State::Failed)
    })
    .await;
    let last = messages(&sup, "kubelet")
        .last()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        last,
        "Failed: Failed to create runner: no kubelet is available on this node: image \"ghcr.io/siderolabs/kubelet:v1.30.0\" cannot be run (no CRI containerd at /run/containerd/containerd.sock) and no extension provides /nonexistent/kubelet; Kubernetes does not run on this node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_runs_a_test_double_with_the_rendered_args_and_mounts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("argv");
    let root = nix::unistd::geteuid().is_root();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    std::fs::create_dir_all(&src).expect("src");
    std::fs::write(src.join("marker"), "mounted").expect("marker");
    // A test double, not a kubelet: it records its argv and what it sees at the mount target.
    let double = dir.path().join("test-double-kubelet");
    std::fs::write(
        &double,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > {out}.tmp\ncat {dst}/marker >> {out}.tmp 2>/dev/null\nmv {out}.tmp {out}\nexec sleep 30\n",
            out = out.display(),
            dst = dst.display()
        ),
    )
    .expect("double");
    std::fs::set_permissions(&double, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let mounts = if root {
        vec![talos::resources::specs::Mount {
            destination: dst.display().to_string(),
            mount_type: "bind".into(),
            source: src.display().to_string(),
            options: vec!["bind".into(), "ro".into()],
        }]
    } else {
        Vec::new()
    };
    let (sup, _logs, _events) = supervisor();
    sup.register(kubelet_service(
        vec![PathBuf::from("/nonexistent/kubelet"), double.clone()],
        &[
            "--config=/etc/kubernetes/kubelet.yaml",
            "--node-ip=10.5.0.2",
        ],
        mounts,
    ));
    sup.start("kubelet").await.expect("start");
    eventually("the test double ran", || out.exists()).await;
    let seen = std::fs::read_to_string(&out).expect("argv");
    sup.stop("kubelet").await.expect("stop");
    let mut want = "--config=/etc/kubernetes/kubelet.yaml\n--node-ip=10.5.0.2\n".to_string();
    if root {
        want.push_str("mounted");
    } else {
        println!("SKIPPED (needs root): the kubelet's bind mount in its mount namespace");
    }
    assert_eq!(seen, want);
    // The mount stayed inside the service's mount namespace.
    assert!(!dst.join("marker").exists());
}
