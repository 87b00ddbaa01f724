//! In-process tests: the API server on a temporary unix socket, called through the generated
//! tonic clients.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use talos::api::machine::{self as pb, machine_service_client::MachineServiceClient};
use talos::api::storage::storage_service_client::StorageServiceClient;
use talos::api::time::time_service_client::TimeServiceClient;
use talos::events::EventBus;
use talos::logbuf::LogBuffers;
use tokio::sync::watch;
use tonic::transport::{Channel, Endpoint, Uri};

use super::{bind, serve, shutting_down, Machined, Platform};
use crate::init::services::ApiOnlyServices;

/// A running in-process server.
struct Server {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    state: Arc<Machined>,
    shutdown: watch::Sender<bool>,
    channel: Channel,
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
        .expect("connect over the unix socket")
}

async fn start() -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("run/machine.sock");
    let listener = bind(&socket).expect("bind");
    let (shutdown, rx) = watch::channel(false);
    let logs = Arc::new(LogBuffers::default());
    logs.buffer("machined").append(b"first line\nsecond line\n");
    let state = Arc::new(Machined::new(
        logs,
        Arc::new(EventBus::default()),
        Arc::new(ApiOnlyServices::new()),
        Platform {
            name: "container".into(),
            mode: "container".into(),
        },
        rx.clone(),
    ));
    tokio::spawn(serve(listener, Arc::clone(&state), shutting_down(rx)));
    let channel = connect(&socket).await;
    Server {
        _dir: dir,
        socket,
        state,
        shutdown,
        channel,
    }
}

impl Server {
    fn machine(&self) -> MachineServiceClient<Channel> {
        MachineServiceClient::new(self.channel.clone())
    }
}

async fn collect<T>(mut s: tonic::Streaming<T>) -> Vec<T> {
    let mut out = Vec::new();
    while let Some(item) = s.message().await.expect("stream item") {
        out.push(item);
    }
    out
}

#[tokio::test]
async fn socket_is_private_and_stale_socket_is_replaced() {
    use std::os::unix::fs::PermissionsExt as _;
    let s = start().await;
    let mode = std::fs::metadata(&s.socket)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // A second bind replaces the (now stale from its point of view) socket.
    drop(bind(&s.socket).expect("rebind"));
    // A regular file in the way is not removed.
    let file = s.socket.with_file_name("not-a-socket");
    std::fs::write(&file, "x").expect("write");
    let err = bind(&file).expect_err("refused");
    assert!(err.to_string().contains("not a socket"), "{err}");
}

#[tokio::test]
async fn unary_facts() {
    let s = start().await;
    let mut c = s.machine();

    let v = c.version(()).await.expect("Version").into_inner();
    assert_eq!(v.messages.len(), 1);
    let m = &v.messages[0];
    assert!(m.metadata.is_none(), "metadata is apid's job");
    assert_eq!(m.version.as_ref().expect("version").tag, "v1.7.0");
    let platform = m.platform.as_ref().expect("platform");
    assert_eq!(
        (platform.name.as_str(), platform.mode.as_str()),
        ("container", "container")
    );

    let h = c.hostname(()).await.expect("Hostname").into_inner();
    assert_eq!(
        h.messages[0].hostname,
        talos::sys::fs::hostname().expect("uname")
    );

    let mem = c.memory(()).await.expect("Memory").into_inner();
    let info = mem.messages[0].meminfo.as_ref().expect("meminfo");
    assert!(info.memtotal > 0 && info.memtotal >= info.memfree);

    let l = c.load_avg(()).await.expect("LoadAvg").into_inner();
    assert!(l.messages[0].load1 >= 0.0);

    let cpu = c.cpu_info(()).await.expect("CPUInfo").into_inner();
    assert!(!cpu.messages[0].cpu_info.is_empty());

    let st = c.system_stat(()).await.expect("SystemStat").into_inner();
    assert!(st.messages[0].boot_time > 0);
    assert!(st.messages[0].cpu_total.is_some());

    let ps = c.processes(()).await.expect("Processes").into_inner();
    let me = std::process::id() as i32;
    let mine = ps.messages[0]
        .processes
        .iter()
        .find(|p| p.pid == me)
        .expect("own process listed");
    assert!(mine.resident_memory > 0);

    let mounts = c.mounts(()).await.expect("Mounts").into_inner();
    assert!(mounts.messages[0].stats.iter().any(|m| m.mounted_on == "/"));

    let net = c
        .network_device_stats(())
        .await
        .expect("NetworkDeviceStats")
        .into_inner();
    assert!(net.messages[0].devices.iter().any(|d| d.name == "lo"));
    assert!(net.messages[0].total.is_some());

    c.disk_stats(()).await.expect("DiskStats");

    let services = c.service_list(()).await.expect("ServiceList").into_inner();
    let list = &services.messages[0].services;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, "machined");
    assert_eq!(list[0].state, "Running");
    assert!(list[0].health.as_ref().expect("health").healthy);

    let containers = c
        .logs_containers(())
        .await
        .expect("LogsContainers")
        .into_inner();
    assert_eq!(containers.messages[0].ids, ["machined"]);

    let mut storage = StorageServiceClient::new(s.channel.clone());
    storage.disks(()).await.expect("Disks");

    let mut time = TimeServiceClient::new(s.channel.clone());
    let t = time.time(()).await.expect("Time").into_inner();
    assert!(t.messages[0].localtime.is_some());
}

#[tokio::test]
async fn unimplemented_rpcs_name_their_method() {
    let s = start().await;
    let mut c = s.machine();
    let err = c
        .reboot(pb::RebootRequest::default())
        .await
        .expect_err("unimplemented");
    assert_eq!(err.code(), tonic::Code::Unimplemented);
    assert!(
        err.message().contains("machine.MachineService/Reboot"),
        "{}",
        err.message()
    );
    let err = c
        .etcd_remove_member_by_id(pb::EtcdRemoveMemberByIdRequest::default())
        .await
        .expect_err("unimplemented");
    assert!(
        err.message().contains("EtcdRemoveMemberByID"),
        "{}",
        err.message()
    );
    let mut time = TimeServiceClient::new(s.channel.clone());
    let err = time
        .time_check(talos::api::time::TimeRequest::default())
        .await
        .expect_err("unimplemented");
    assert_eq!(err.code(), tonic::Code::Unimplemented);
}

/// root/
///   a.txt ("hello")
///   link -> a.txt
///   sub/
///     b.txt (1000 bytes)
///     deeper/
///       c.txt ("c")
fn tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().expect("tempdir");
    let r = t.path();
    std::fs::write(r.join("a.txt"), "hello").expect("a");
    std::os::unix::fs::symlink("a.txt", r.join("link")).expect("link");
    std::fs::create_dir_all(r.join("sub/deeper")).expect("mkdir");
    std::fs::write(r.join("sub/b.txt"), vec![b'b'; 1000]).expect("b");
    std::fs::write(r.join("sub/deeper/c.txt"), "c").expect("c");
    t
}

fn rel_names(items: &[pb::FileInfo]) -> Vec<&str> {
    items.iter().map(|i| i.relative_name.as_str()).collect()
}

#[tokio::test]
async fn list_walks_like_talos() {
    let s = start().await;
    let t = tree();
    let root = t.path().to_string_lossy().into_owned();
    let mut c = s.machine();

    let flat = collect(
        c.list(pb::ListRequest {
            root: format!("{root}/"),
            ..Default::default()
        })
        .await
        .expect("List")
        .into_inner(),
    )
    .await;
    assert_eq!(rel_names(&flat), [".", "a.txt", "link", "sub"]);
    assert_eq!(flat[0].name, root);
    let a = &flat[1];
    assert_eq!(a.size, 5);
    assert_eq!(a.mode & !0o7777, 0, "regular file: no Go type bits");
    assert!(!a.is_dir);
    assert_eq!(flat[2].link, "a.txt");
    assert_ne!(flat[2].mode & (1 << 27), 0, "Go symlink bit");
    assert!(flat[3].is_dir);
    assert_ne!(flat[3].mode & (1 << 31), 0, "Go dir bit");

    let all = collect(
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
    assert_eq!(
        rel_names(&all),
        [
            ".",
            "a.txt",
            "link",
            "sub",
            "sub/b.txt",
            "sub/deeper",
            "sub/deeper/c.txt"
        ]
    );

    let depth1 = collect(
        c.list(pb::ListRequest {
            root: root.clone(),
            recurse: true,
            recursion_depth: 2,
            types: vec![pb::list_request::Type::Regular as i32],
        })
        .await
        .expect("List")
        .into_inner(),
    )
    .await;
    assert_eq!(rel_names(&depth1), ["a.txt", "sub/b.txt"]);

    let missing = c
        .list(pb::ListRequest {
            root: format!("{root}/nope"),
            ..Default::default()
        })
        .await
        .expect_err("missing root");
    assert_eq!(missing.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn read_streams_regular_files_only() {
    let s = start().await;
    let t = tree();
    let mut c = s.machine();
    let big = t.path().join("big");
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&big, &content).expect("write");
    let chunks = collect(
        c.read(pb::ReadRequest {
            path: big.to_string_lossy().into_owned(),
        })
        .await
        .expect("Read")
        .into_inner(),
    )
    .await;
    assert!(chunks.len() > 1);
    let got: Vec<u8> = chunks.into_iter().flat_map(|d| d.bytes).collect();
    assert_eq!(got, content);

    let dir = c
        .read(pb::ReadRequest {
            path: t.path().to_string_lossy().into_owned(),
        })
        .await
        .expect_err("directory");
    assert_eq!(dir.code(), tonic::Code::InvalidArgument);
    let missing = c
        .read(pb::ReadRequest {
            path: "/nonexistent/file".into(),
        })
        .await
        .expect_err("missing");
    assert_eq!(missing.code(), tonic::Code::NotFound);
}

/// Unpacks a Copy stream into (name, kind, contents) triples.
pub fn untar(data: &[u8]) -> Vec<(String, tar::EntryType, Vec<u8>)> {
    let gz = flate2::read::GzDecoder::new(data);
    let mut archive = tar::Archive::new(gz);
    archive
        .entries()
        .expect("entries")
        .map(|e| {
            let mut e = e.expect("entry");
            let name = e.path().expect("path").to_string_lossy().into_owned();
            let kind = e.header().entry_type();
            let mut body = Vec::new();
            e.read_to_end(&mut body).expect("body");
            (name, kind, body)
        })
        .collect()
}

#[tokio::test]
async fn copy_streams_a_tar_gz() {
    let s = start().await;
    let t = tree();
    let mut c = s.machine();
    let chunks = collect(
        c.copy(pb::CopyRequest {
            root_path: t.path().to_string_lossy().into_owned(),
        })
        .await
        .expect("Copy")
        .into_inner(),
    )
    .await;
    assert!(chunks.iter().all(|d| d.metadata.is_none()), "no errors");
    let data: Vec<u8> = chunks.into_iter().flat_map(|d| d.bytes).collect();
    let entries = untar(&data);
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "a.txt",
            "link",
            "sub/",
            "sub/b.txt",
            "sub/deeper/",
            "sub/deeper/c.txt"
        ]
    );
    assert_eq!(entries[0].2, b"hello");
    assert_eq!(entries[1].1, tar::EntryType::Symlink);
    assert_eq!(entries[3].2.len(), 1000);

    // One file: an archive with that file under its base name. /proc files report size 0.
    let single = collect(
        c.copy(pb::CopyRequest {
            root_path: "/proc/self/status".into(),
        })
        .await
        .expect("Copy")
        .into_inner(),
    )
    .await;
    let data: Vec<u8> = single.into_iter().flat_map(|d| d.bytes).collect();
    let entries = untar(&data);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, "status");
    assert!(String::from_utf8_lossy(&entries[0].2).contains("Pid:"));

    let err = c
        .copy(pb::CopyRequest {
            root_path: "relative/path".into(),
        })
        .await
        .expect_err("relative");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn disk_usage_sums_directories() {
    let s = start().await;
    let t = tree();
    let root = t.path().to_string_lossy().into_owned();
    let mut c = s.machine();
    let items = collect(
        c.disk_usage(pb::DiskUsageRequest {
            paths: vec![root.clone(), format!("{root}/missing")],
            all: true,
            ..Default::default()
        })
        .await
        .expect("DiskUsage")
        .into_inner(),
    )
    .await;
    let find = |rel: &str| {
        items
            .iter()
            .find(|i| i.relative_name == rel)
            .unwrap_or_else(|| panic!("{rel} in {items:?}"))
    };
    assert_eq!(find("a.txt").size, 5);
    assert_eq!(find("sub/b.txt").size, 1000);
    let dir_size = |p: &Path| std::fs::symlink_metadata(p).expect("stat").len() as i64;
    let deeper = find("sub/deeper");
    assert_eq!(deeper.size, dir_size(&t.path().join("sub/deeper")) + 1);
    let sub = find("sub");
    assert_eq!(
        sub.size,
        dir_size(&t.path().join("sub")) + 1000 + deeper.size
    );
    let top = find(".");
    assert_eq!(
        items
            .iter()
            .position(|i| i.relative_name == ".")
            .expect("root"),
        6,
        "root last"
    );
    let link_len = std::fs::symlink_metadata(t.path().join("link"))
        .expect("lstat")
        .len() as i64;
    assert_eq!(top.size, dir_size(t.path()) + 5 + link_len + sub.size);
    let missing = items.last().expect("missing entry");
    assert!(!missing.error.is_empty());

    // Directories only, one level.
    let dirs = collect(
        c.disk_usage(pb::DiskUsageRequest {
            paths: vec![root],
            recursion_depth: 2,
            ..Default::default()
        })
        .await
        .expect("DiskUsage")
        .into_inner(),
    )
    .await;
    let names: Vec<&str> = dirs.iter().map(|i| i.relative_name.as_str()).collect();
    assert_eq!(names, ["sub", "."]);
}

async fn text_of(stream: tonic::Streaming<talos::api::common::Data>) -> String {
    collect(stream)
        .await
        .into_iter()
        .map(|d| String::from_utf8_lossy(&d.bytes).into_owned())
        .collect()
}

#[tokio::test]
async fn logs_tail_follow_and_unknown_ids() {
    let s = start().await;
    let mut c = s.machine();
    let req = |follow, tail_lines| pb::LogsRequest {
        namespace: "system".into(),
        id: "machined".into(),
        follow,
        tail_lines,
        ..Default::default()
    };
    let all = text_of(c.logs(req(false, -1)).await.expect("Logs").into_inner()).await;
    assert_eq!(all, "first line\nsecond line\n");
    let last = text_of(c.logs(req(false, 1)).await.expect("Logs").into_inner()).await;
    assert_eq!(last, "second line\n");

    let mut follow = c.logs(req(true, 1)).await.expect("Logs").into_inner();
    let first = follow.message().await.expect("chunk").expect("data");
    assert_eq!(first.bytes, b"second line\n");
    // A restart-surviving buffer: appending via the registry reaches the follower.
    s.state.logs.buffer("machined").append(b"third line\n");
    let next = tokio::time::timeout(Duration::from_secs(5), follow.message())
        .await
        .expect("in time")
        .expect("chunk")
        .expect("data");
    assert_eq!(next.bytes, b"third line\n");

    let err = c
        .logs(pb::LogsRequest {
            id: "nope".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown id");
    assert_eq!(err.code(), tonic::Code::NotFound);

    // Shutting down ends the follow stream.
    s.shutdown.send(true).expect("shutdown");
    let end = tokio::time::timeout(Duration::from_secs(5), follow.message())
        .await
        .expect("ends in time");
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
}

#[tokio::test]
async fn events_send_hello_then_history_and_new_events() {
    let s = start().await;
    let mut c = s.machine();
    super::machine::publish_service_state(
        &s.state.events,
        "machined",
        pb::service_state_event::Action::Running,
        "up",
        true,
    );
    let mut stream = c
        .events(pb::EventsRequest {
            tail_events: -1,
            ..Default::default()
        })
        .await
        .expect("Events")
        .into_inner();
    let hello = stream.message().await.expect("hello").expect("event");
    assert_eq!(hello.data.as_ref().expect("data").type_url, "");
    assert_eq!(hello.id.len(), 20);
    let first = stream.message().await.expect("event").expect("event");
    let any = first.data.expect("data");
    assert_eq!(any.type_url, "talos/runtime/machine.ServiceStateEvent");
    let payload =
        <pb::ServiceStateEvent as prost::Message>::decode(any.value.as_slice()).expect("decode");
    assert_eq!(payload.service, "machined");
    assert_eq!(
        payload.action,
        pb::service_state_event::Action::Running as i32
    );

    let since = first.id.clone();
    let new_id = s.state.events.publish("talos/runtime/x", vec![1], "actor");
    let next = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("in time")
        .expect("event")
        .expect("event");
    assert_eq!(next.id, new_id.to_string());
    assert_eq!(next.actor_id, "actor");

    // --since: only the newer event.
    let mut since_stream = c
        .events(pb::EventsRequest {
            tail_id: since,
            ..Default::default()
        })
        .await
        .expect("Events")
        .into_inner();
    since_stream.message().await.expect("hello").expect("hello");
    let e = since_stream.message().await.expect("event").expect("event");
    assert_eq!(e.id, new_id.to_string());

    let bad = c
        .events(pb::EventsRequest {
            tail_id: "not-an-id".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad id");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn roles_from_apid_are_accepted_without_rbac() {
    let s = start().await;
    let mut c = s.machine();
    let mut req = tonic::Request::new(());
    req.metadata_mut()
        .insert("talos-role", "os:reader".parse().expect("value"));
    c.hostname(req).await.expect("no RBAC in machined");
}

#[tokio::test]
async fn dmesg_reads_the_kernel_log_as_root() {
    let s = start().await;
    let mut c = s.machine();
    let result = c.dmesg(pb::DmesgRequest::default()).await;
    if !nix::unistd::Uid::effective().is_root() {
        let err = result.expect_err("needs root");
        assert!(err.message().contains("root"), "{}", err.message());
        return;
    }
    let text = text_of(result.expect("Dmesg").into_inner()).await;
    let first = text.lines().next().expect("a kernel log line");
    assert!(first.contains(": [") && first.contains("]: "), "{first}");
}
