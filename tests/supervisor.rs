//! The supervisor's system pieces from the outside: the child reaper (as a subreaper), the
//! spawn hooks (uid/gid, capabilities, no_new_privs, namespaces, cgroup) and the cgroup v2
//! helpers on the real hierarchy. The supervisor itself is tested in
//! `applets/init/supervisor/tests.rs` (it lives in the binary crate).
//!
//! Root-only tests print `SKIPPED (needs root): NAME` and pass when not root.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use talos::sys::cgroup::{self, Cgroup};
use talos::sys::reaper::{ExitStatus, Reaper};
use talos::sys::spawn::{cap, read_capabilities, Namespaces, SpawnOptions};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

macro_rules! needs_root {
    ($name:expr) => {
        if !is_root() {
            println!("SKIPPED (needs root): {}", $name);
            return;
        }
    };
}

fn reaper() -> Reaper {
    Reaper::become_subreaper().expect("subreaper");
    Reaper::global().expect("reaper")
}

/// Runs `script` with `options`, returns its stdout and exit status.
async fn run(script: &str, options: &SpawnOptions) -> (String, ExitStatus) {
    let mut command = Command::new("/bin/sh");
    command
        .args(["-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    options.apply(&mut command).expect("apply");
    let (mut child, exit) = reaper().spawn(&mut command).expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let out = tokio::task::spawn_blocking(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    })
    .await
    .expect("reader");
    let status = tokio::time::timeout(Duration::from_secs(10), exit)
        .await
        .expect("exit in time")
        .expect("status");
    (out, status)
}

fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).map(str::trim))
        .unwrap_or_else(|| panic!("{key} missing in\n{status}"))
}

#[tokio::test]
async fn orphans_are_reaped_and_claimable() {
    let reaper = reaper();
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("pid");
    // The shell leaves a background child behind: it is re-parented to us.
    let script = format!("sleep 0.2 & echo $! > {}; exit 0", pidfile.display());
    let (_child, exit) = reaper
        .spawn(Command::new("/bin/sh").args(["-c", &script]))
        .expect("spawn");
    assert_eq!(exit.await.expect("status"), ExitStatus::Exited(0));
    let orphan: i32 = std::fs::read_to_string(&pidfile)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    let status = tokio::time::timeout(Duration::from_secs(10), reaper.claim(orphan))
        .await
        .expect("orphan reaped in time")
        .expect("status");
    assert_eq!(status, ExitStatus::Exited(0));
}

#[tokio::test]
async fn exec_failure_is_reported_and_nothing_is_stolen() {
    let reaper = reaper();
    for _ in 0..20 {
        let err = reaper
            .spawn(&mut Command::new("/nonexistent/binary"))
            .expect_err("no such binary");
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }
    let status = reaper
        .status(Command::new("/bin/sh").args(["-c", "kill -9 $$"]))
        .await
        .expect("status");
    assert_eq!(status.to_string(), "signal: killed");
    assert_eq!(status.code(), 137);
}

#[tokio::test]
async fn uid_gid_capabilities_and_no_new_privs_are_dropped() {
    needs_root!("uid_gid_capabilities_and_no_new_privs_are_dropped");
    // apid's Talos profile: uid/gid 50, no capabilities, no_new_privs.
    let options = SpawnOptions {
        setsid: true,
        uid: Some(50),
        gid: Some(50),
        capabilities: Some(vec![]),
        no_new_privs: true,
        parent_death_signal: Some(libc::SIGKILL),
        oom_score_adj: Some(-998),
        ..SpawnOptions::default()
    };
    let (out, status) = run("cat /proc/self/status", &options).await;
    assert!(status.success(), "{status}: {out}");
    assert!(
        status_field(&out, "Uid:").starts_with("50\t50\t50"),
        "{out}"
    );
    assert!(
        status_field(&out, "Gid:").starts_with("50\t50\t50"),
        "{out}"
    );
    assert_eq!(status_field(&out, "Groups:"), "50");
    assert_eq!(status_field(&out, "NoNewPrivs:"), "1");
    let caps = read_capabilities(&out);
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(caps.get(set), Some(&0), "{set} in\n{out}");
    }

    // Keeping one capability as a non-root user: it survives exec through the ambient set.
    let keep = SpawnOptions {
        uid: Some(50),
        gid: Some(50),
        capabilities: Some(vec![cap::NET_BIND_SERVICE]),
        ..SpawnOptions::default()
    };
    let (out, status) = run("cat /proc/self/status", &keep).await;
    assert!(status.success(), "{status}: {out}");
    let caps = read_capabilities(&out);
    let bit = 1u64 << cap::NET_BIND_SERVICE;
    for set in ["CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(caps.get(set), Some(&bit), "{set} in\n{out}");
    }
}

#[tokio::test]
async fn private_mount_and_ipc_namespaces() {
    needs_root!("private_mount_and_ipc_namespaces");
    let options = SpawnOptions {
        namespaces: Namespaces {
            mount: true,
            ipc: true,
            uts: true,
            pid: false,
        },
        ..SpawnOptions::default()
    };
    let (out, status) = run(
        "readlink /proc/self/ns/mnt /proc/self/ns/ipc /proc/self/ns/uts",
        &options,
    )
    .await;
    assert!(status.success(), "{status}: {out}");
    let ours: Vec<String> = ["mnt", "ipc", "uts"]
        .iter()
        .map(|ns| {
            std::fs::read_link(format!("/proc/self/ns/{ns}"))
                .expect("ns")
                .display()
                .to_string()
        })
        .collect();
    let theirs: Vec<&str> = out.lines().collect();
    assert_eq!(theirs.len(), 3, "{out}");
    for (a, b) in ours.iter().zip(theirs) {
        assert_ne!(a, b, "namespace not private");
    }
}

/// A test cgroup under the real root, removed (with its processes killed) on drop.
struct TestGroup(Cgroup);

impl Drop for TestGroup {
    fn drop(&mut self) {
        let _ = self.0.kill_all(20);
        std::thread::sleep(Duration::from_millis(50));
        let _ = self.0.remove();
    }
}

#[tokio::test]
async fn cgroup_membership_limits_and_kill() {
    needs_root!("cgroup_membership_limits_and_kill");
    let Some(root) = cgroup::detect_root(&PathBuf::from("/sys/fs/cgroup")) else {
        println!("SKIPPED (no cgroup2 hierarchy): cgroup_membership_limits_and_kill");
        return;
    };
    let top = TestGroup(
        Cgroup::create(&root, &format!("talos-test-{}", std::process::id())).expect("create"),
    );
    let name = format!("{}{}", top.0.name(), cgroup::service_path("sleeper"));
    let group = Cgroup::create(&root, &name).expect("create nested");
    // Limits: applied where the controller exists, skipped (not fatal) where it does not.
    let has_memory = group.path().join("memory.max").exists();
    assert_eq!(group.set_memory_max(64 << 20), has_memory);
    let has_cpu = group.path().join("cpu.weight").exists();
    assert_eq!(group.set_cpu_weight(50), has_cpu);

    let options = SpawnOptions {
        cgroup: Some(group.path()),
        ..SpawnOptions::default()
    };
    let mut command = Command::new("/bin/sh");
    command.args(["-c", "sleep 30 & exec sleep 30"]);
    options.apply(&mut command).expect("apply");
    let (child, exit) = reaper().spawn(&mut command).expect("spawn");
    let pid = i32::try_from(child.id()).expect("pid");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let pids = group.pids().expect("pids");
        if pids.contains(&pid) && pids.len() == 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "pids {pids:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    assert!(own.contains(&format!("0::{name}")), "{own}");
    assert_eq!(top.0.pids_recursive().expect("pids").len(), 2);

    let killed = group.kill_all(20).expect("kill");
    assert!(killed.contains(&pid), "{killed:?}");
    let status = tokio::time::timeout(Duration::from_secs(10), exit)
        .await
        .expect("killed in time")
        .expect("status");
    assert_eq!(status.to_string(), "signal: killed");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !group.pids().expect("pids").is_empty() {
        assert!(std::time::Instant::now() < deadline, "group not empty");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn pid_namespace_makes_the_service_pid_1() {
    needs_root!("pid_namespace_makes_the_service_pid_1");
    use talos::sys::spawn::{spawn_in_pid_namespace, ExecSpec};
    let reaper = reaper();
    let options = SpawnOptions {
        namespaces: Namespaces {
            mount: true,
            pid: true,
            ..Namespaces::default()
        },
        setsid: true,
        ..SpawnOptions::default()
    };
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
    let exec = ExecSpec {
        exe: "/bin/sh".into(),
        argv: vec![
            "sh".into(),
            "-c".into(),
            "echo pid=$$; ls /proc | grep -c '^[0-9]'; echo env=$MARK".into(),
        ],
        env: vec![
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("MARK".into(), "yes".into()),
        ],
    };
    let (pid, exit) = reaper
        .spawn_with(|| spawn_in_pid_namespace(&exec, &options, &write, &write))
        .expect("spawn");
    drop(write);
    let mut out = String::new();
    std::fs::File::from(read)
        .read_to_string(&mut out)
        .expect("output");
    let status = tokio::time::timeout(Duration::from_secs(10), exit)
        .await
        .expect("exit in time")
        .expect("status");
    assert!(status.success(), "{status}: {out}");
    assert!(pid > 1);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"pid=1"), "{out}");
    // Its own /proc: only the shell and its children.
    let count: usize = lines
        .get(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("count");
    assert!(count <= 3, "{out}");
    assert_eq!(lines.get(2), Some(&"env=yes"), "{out}");

    // exec failures come back as errors.
    let missing = ExecSpec {
        exe: "/nonexistent/binary".into(),
        argv: vec!["x".into()],
        env: vec![],
    };
    let (_r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
    let err = reaper
        .spawn_with(|| spawn_in_pid_namespace(&missing, &options, &w, &w))
        .expect_err("missing binary");
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}
