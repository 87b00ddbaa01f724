//! The real binary as PID 1 (root only): `talos init` in fresh pid, mount, uts, ipc and net
//! namespaces (util-linux `unshare`), inside a private root built from read-only binds of the
//! host's `/usr`, a bind of the test's `/system` and `/var` directories and the binary, with
//! `PLATFORM=container` and `USERDATA` = the fixture control-plane config.
//!
//! Checks: init mounts `/proc` itself, machined's socket answers `Version`, the sequencer's
//! `phase …`/`task …` lines are logged, apid and trustd get their PKI and are started, and
//! SIGTERM to PID 1 ends in a clean exit 0. Everything (the whole pid namespace) is killed on
//! failure; the mount namespace dies with it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hyper_util::rt::TokioIo;
use talos::api::machine::machine_service_client::MachineServiceClient;
use tonic::transport::{Endpoint, Uri};

/// Kills the node's PID 1 (and so its whole pid namespace) and `unshare` on drop.
struct Node {
    unshare: Option<Child>,
    log: Arc<Mutex<String>>,
}

impl Node {
    /// The host pid of the namespace's PID 1 (the child of `unshare`).
    fn init_pid(&self) -> Option<i32> {
        let pid = self.unshare.as_ref()?.id();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    }

    fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn wait_for_log(&self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(pid) = self.init_pid() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if let Some(mut child) = self.unshare.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

const SETUP: &str = r#"
set -eu
mount --make-rprivate /
mount -t tmpfs -o mode=0755 tmpfs "$NEWROOT"
for d in bin sbin lib lib32 lib64 libx32; do
    if [ -L "/$d" ]; then cp -a "/$d" "$NEWROOT/"
    elif [ -d "/$d" ]; then mkdir "$NEWROOT/$d"; mount --rbind "/$d" "$NEWROOT/$d"
    fi
done
for d in usr etc; do
    mkdir "$NEWROOT/$d"; mount --rbind "/$d" "$NEWROOT/$d"; mount -o remount,bind,ro "$NEWROOT/$d"
done
mkdir -p "$NEWROOT/system" "$NEWROOT/var" "$NEWROOT/dev" "$NEWROOT/proc" "$NEWROOT/sys" "$NEWROOT/tmp" "$NEWROOT/run" "$NEWROOT/talos"
mount --bind "$SYSTEM" "$NEWROOT/system"
mount --bind "$VARDIR" "$NEWROOT/var"
mount --rbind /dev "$NEWROOT/dev"
mount --bind "$BINDIR" "$NEWROOT/talos"
ip link set lo up
exec chroot "$NEWROOT" /talos/talos init
"#;

async fn version(socket: PathBuf) -> Result<String, String> {
    let channel = Endpoint::try_from("http://machined.invalid")
        .map_err(|e| e.to_string())?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(
                    tokio::net::UnixStream::connect(socket).await?,
                ))
            }
        }))
        .await
        .map_err(|e| e.to_string())?;
    let reply = MachineServiceClient::new(channel)
        .version(())
        .await
        .map_err(|e| e.to_string())?
        .into_inner();
    let platform = reply
        .messages
        .first()
        .and_then(|m| m.platform.clone())
        .ok_or("no platform")?;
    Ok(platform.name)
}

fn which(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn skip(name: &str) -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED (needs root): {name}");
        return true;
    }
    if !which("unshare") || !which("ip") || !which("chroot") {
        eprintln!("SKIPPED (needs unshare, ip and chroot): {name}");
        return true;
    }
    false
}

fn fixture() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/pid1/controlplane.yaml"
    ))
    .expect("fixture")
}

/// Starts `talos init` as PID 1 with `USERDATA` = `config`; `/system` and `/var` are
/// `dir/system` and `dir/var`.
fn start(dir: &Path, config: &[u8]) -> Node {
    let (newroot, system, var) = (dir.join("root"), dir.join("system"), dir.join("var"));
    // A node's /system is a 0755 tmpfs; the services that drop root traverse it.
    for d in [&system, &var] {
        std::fs::create_dir_all(d).expect("mkdir");
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
    }
    for d in [&newroot, &system, &var] {
        std::fs::create_dir_all(d).expect("dir");
    }
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_talos"));
    let bindir = bin.parent().expect("bin dir").to_path_buf();
    assert_eq!(bin.file_name().and_then(|n| n.to_str()), Some("talos"));
    let mut child = Command::new("unshare")
        .args([
            "--pid", "--fork", "--mount", "--uts", "--ipc", "--net", "sh", "-c", SETUP,
        ])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("NEWROOT", &newroot)
        .env("SYSTEM", &system)
        .env("VARDIR", &var)
        .env("BINDIR", &bindir)
        .env("PLATFORM", "container")
        .env(
            "USERDATA",
            base64::engine::general_purpose::STANDARD.encode(config),
        )
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn unshare");
    let log = Arc::new(Mutex::new(String::new()));
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if let Ok(mut l) = log.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
    }
    Node {
        unshare: Some(child),
        log,
    }
}

/// Waits until machined's socket answers `Version`; returns the platform name.
fn wait_version(node: &Node, socket: &Path) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if socket.exists() {
            if let Ok(name) = rt.block_on(version(socket.to_path_buf())) {
                return name;
            }
        }
        assert!(
            Instant::now() < deadline,
            "machined did not answer Version; log:\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGTERM to PID 1; returns its exit code and the log.
fn terminate(node: &mut Node) -> (Option<i32>, String) {
    let pid = node.init_pid().expect("init pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    let mut unshare = node.unshare.take().expect("unshare");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = unshare.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            node.unshare = Some(unshare);
            panic!("init did not exit after SIGTERM; log:\n{}", node.log());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = node.log();
    if std::env::var_os("PID1_TEST_LOG").is_some() {
        eprintln!("{log}");
    }
    (status.code(), log)
}

#[test]
fn container_node_as_pid1_boots_answers_and_stops_on_sigterm() {
    if skip("container_node_as_pid1_boots_answers_and_stops_on_sigterm") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (system, var) = (dir.path().join("system"), dir.path().join("var"));
    let spawned = Instant::now();
    let mut node = start(dir.path(), &fixture());
    let socket = system.join("run/machined/machine.sock");
    assert_eq!(wait_version(&node, &socket), "container");
    eprintln!(
        "machined answered Version {:?} after start",
        spawned.elapsed()
    );

    assert!(
        node.wait_for_log("boot sequence: done", Duration::from_secs(60)),
        "boot did not finish; log:\n{}",
        node.log()
    );
    eprintln!("boot sequence done {:?} after start", spawned.elapsed());
    let log = node.log();
    for needle in [
        "/proc: Mounted",
        "phase systemRequirements (1/3): 2 tasks(s)",
        "task loadConfig (1/1): starting",
        "task loadConfig (1/1): done, ",
        "phase startEverything (4/4): done, ",
        "all services up: apid, trustd",
    ] {
        assert!(log.contains(needle), "{needle:?} missing; log:\n{log}");
    }
    assert!(system.join("state/config.yaml").is_file());
    assert!(system.join("secrets/trustd/server.crt").is_file());
    assert!(var.join("log/pods").is_dir());

    let (code, log) = terminate(&mut node);
    assert_eq!(code, Some(0), "log:\n{log}");
    assert!(
        log.contains("SIGTERM received: running the shutdown sequence"),
        "{log}"
    );
    assert!(log.contains("task stopAllServices (1/1): done"), "{log}");
    assert!(!socket.exists(), "socket removed");
    assert!(
        !dir.path().join("root/talos/talos").exists(),
        "private mounts gone"
    );
}

#[test]
fn invalid_userdata_keeps_the_node_in_maintenance_and_persists_nothing() {
    if skip("invalid_userdata_keeps_the_node_in_maintenance_and_persists_nothing") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let system = dir.path().join("system");
    let bad = String::from_utf8(fixture())
        .expect("utf8")
        .replace("type: controlplane", "type: bogus");
    let mut node = start(dir.path(), bad.as_bytes());
    let socket = system.join("run/machined/machine.sock");
    // The API is up while the node waits for a config.
    assert_eq!(wait_version(&node, &socket), "container");
    assert!(
        node.wait_for_log("maintenance API listening", Duration::from_secs(60)),
        "no maintenance mode; log:\n{}",
        node.log()
    );
    let log = node.log();
    assert!(log.contains("config validation failed"), "{log}");
    assert!(log.contains("machine.type"), "{log}");
    assert!(
        !system.join("state/config.yaml").exists(),
        "nothing persisted"
    );

    let (code, log) = terminate(&mut node);
    assert_eq!(code, Some(0), "log:\n{log}");
    assert!(
        !system.join("state/config.yaml").exists(),
        "nothing persisted"
    );
}
