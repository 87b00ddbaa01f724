//! The real binary: `talos machined --api-only --socket PATH` serves the machined API on a unix
//! socket; a tonic client calls it over that socket; SIGTERM stops it and removes the socket.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use talos::api::common;
use talos::api::machine::{self as pb, machine_service_client::MachineServiceClient};
use tonic::transport::{Channel, Endpoint, Uri};

/// Kills the child on drop, so a failing test leaves no process behind.
struct Machined {
    child: Option<Child>,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Machined {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Machined {
    fn start(extra: &[&str]) -> Machined {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("run/machined/machine.sock");
        let state = dir.path().join("state");
        let child = Command::new(env!("CARGO_BIN_EXE_talos"))
            .args(["machined", "--api-only", "--socket"])
            .arg(&socket)
            .arg("--state-dir")
            .arg(&state)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn talos machined");
        let m = Machined {
            child: Some(child),
            socket,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !m.socket.exists() {
            assert!(Instant::now() < deadline, "socket did not appear");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(state.is_dir(), "state dir created");
        m
    }

    /// Sends SIGTERM and waits for a clean exit; returns stderr.
    fn stop(mut self) -> String {
        let mut child = self.child.take().expect("running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("machined did not exit after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        assert!(status.success(), "exit {status:?}; stderr:\n{stderr}");
        assert!(!self.socket.exists(), "socket removed on exit");
        stderr
    }
}

async fn connect(socket: &Path) -> Channel {
    let socket = socket.to_path_buf();
    Endpoint::try_from("http://machined.invalid")
        .expect("endpoint")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(
                    tokio::net::UnixStream::connect(socket).await?,
                ))
            }
        }))
        .await
        .expect("connect")
}

async fn collect<T>(mut s: tonic::Streaming<T>) -> Vec<T> {
    let mut out = Vec::new();
    while let Some(item) = s.message().await.expect("stream item") {
        out.push(item);
    }
    out
}

fn bytes(chunks: Vec<common::Data>) -> Vec<u8> {
    assert!(
        chunks.iter().all(|d| d.metadata.is_none()),
        "no error metadata"
    );
    chunks.into_iter().flat_map(|d| d.bytes).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_only_machined_over_a_unix_socket() {
    let m = Machined::start(&["--platform", "metal"]);
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&m.socket)
            .expect("socket")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let mut c = MachineServiceClient::new(connect(&m.socket).await);

    let v = c.version(()).await.expect("Version").into_inner();
    let v = &v.messages[0];
    assert_eq!(v.version.as_ref().expect("version").tag, "v1.7.0");
    assert_eq!(v.platform.as_ref().expect("platform").name, "metal");

    let h = c.hostname(()).await.expect("Hostname").into_inner();
    assert!(!h.messages[0].hostname.is_empty());

    let mem = c.memory(()).await.expect("Memory").into_inner();
    assert!(mem.messages[0].meminfo.as_ref().expect("meminfo").memtotal > 0);

    let ps = c.processes(()).await.expect("Processes").into_inner();
    assert!(ps.messages[0]
        .processes
        .iter()
        .any(|p| p.args.contains("--api-only")));

    // Files: a fixture tree listed, read and copied.
    let tree = tempfile::tempdir().expect("tree");
    std::fs::write(tree.path().join("hello.txt"), "hello, machined\n").expect("write");
    std::fs::create_dir(tree.path().join("dir")).expect("mkdir");
    std::fs::write(tree.path().join("dir/inner"), "inner").expect("write");
    let root = tree.path().to_string_lossy().into_owned();

    let list = collect(
        c.list(pb::ListRequest {
            root: root.clone(),
            recurse: true,
            ..Default::default()
        })
        .await
        .expect("List")
        .into_inner(),
    )
    .await;
    let names: Vec<&str> = list.iter().map(|f| f.relative_name.as_str()).collect();
    assert_eq!(names, [".", "dir", "dir/inner", "hello.txt"]);

    let read = bytes(
        collect(
            c.read(pb::ReadRequest {
                path: format!("{root}/hello.txt"),
            })
            .await
            .expect("Read")
            .into_inner(),
        )
        .await,
    );
    assert_eq!(read, b"hello, machined\n");

    let archive = bytes(
        collect(
            c.copy(pb::CopyRequest {
                root_path: root.clone(),
            })
            .await
            .expect("Copy")
            .into_inner(),
        )
        .await,
    );
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive.as_slice()));
    let mut entries = Vec::new();
    for e in tar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let name = e.path().expect("path").to_string_lossy().into_owned();
        let mut body = String::new();
        e.read_to_string(&mut body).expect("body");
        entries.push((name, body));
    }
    assert_eq!(
        entries,
        [
            ("dir/".to_string(), String::new()),
            ("dir/inner".to_string(), "inner".to_string()),
            ("hello.txt".to_string(), "hello, machined\n".to_string()),
        ]
    );

    // Logs: machined's own lines, then a followed line caused by another call.
    let logs = bytes(
        collect(
            c.logs(pb::LogsRequest {
                namespace: "system".into(),
                id: "machined".into(),
                tail_lines: -1,
                ..Default::default()
            })
            .await
            .expect("Logs")
            .into_inner(),
        )
        .await,
    );
    let logs = String::from_utf8_lossy(&logs);
    assert!(logs.contains("machined API listening"), "{logs}");
    assert!(logs.contains("method=\"Version\""), "{logs}");

    let mut follow = c
        .logs(pb::LogsRequest {
            namespace: "system".into(),
            id: "machined".into(),
            follow: true,
            tail_lines: 0,
            ..Default::default()
        })
        .await
        .expect("Logs follow")
        .into_inner();
    let mut other = c.clone();
    other.load_avg(()).await.expect("LoadAvg");
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains("method=\"LoadAvg\"") {
        assert!(Instant::now() < deadline, "followed line missing: {seen}");
        let chunk = tokio::time::timeout(Duration::from_secs(10), follow.message())
            .await
            .expect("in time")
            .expect("chunk")
            .expect("data");
        seen.push_str(&String::from_utf8_lossy(&chunk.bytes));
    }

    let missing = c
        .logs(pb::LogsRequest {
            id: "kubelet".into(),
            ..Default::default()
        })
        .await
        .expect_err("unregistered");
    assert_eq!(missing.code(), tonic::Code::NotFound);

    // Events: the hello, then machined's own Running event.
    let mut events = c
        .events(pb::EventsRequest {
            tail_events: 5,
            ..Default::default()
        })
        .await
        .expect("Events")
        .into_inner();
    let hello = events.message().await.expect("hello").expect("hello");
    assert_eq!(hello.data.expect("data").type_url, "");
    let running = events.message().await.expect("event").expect("event");
    assert_eq!(
        running.data.expect("data").type_url,
        "talos/runtime/machine.ServiceStateEvent"
    );

    let services = c.service_list(()).await.expect("ServiceList").into_inner();
    let services = &services.messages[0].services;
    assert_eq!(services.len(), 1);
    assert_eq!(
        (services[0].id.as_str(), services[0].state.as_str()),
        ("machined", "Running")
    );

    drop(follow);
    drop(events);
    let stderr = m.stop();
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_alias_and_usage_errors() {
    // `talos init --api-only` is the same applet.
    let m = Machined::start(&[]);
    let mut c = MachineServiceClient::new(connect(&m.socket).await);
    let v = c.version(()).await.expect("Version").into_inner();
    assert_eq!(
        v.messages[0].platform.as_ref().expect("platform").name,
        "container"
    );
    m.stop();

    let out = Command::new(env!("CARGO_BIN_EXE_talos"))
        .args(["init", "--api-only", "--platform", "cloud"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));

    let out = Command::new(env!("CARGO_BIN_EXE_talos"))
        .args(["init"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--api-only"));
}
