//! The real talosctl binary against an in-test Talos API server on 127.0.0.1 with mutual TLS
//! (certificates from `talos::secrets`, Ed25519). The fake server behaves like apid for the
//! `nodes` metadata: one reply per node tagged with its hostname, and an error reply for any
//! node whose name starts with `bad`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

mod talosctl_common;

use std::io::Write as _;

use talos::api::common::{self, Metadata};
use talos::api::machine as pb;
use talos::api::machine::machine_service_server::{MachineService, MachineServiceServer};
use talos::api::storage as spb;
use talos::api::storage::storage_service_server::{StorageService, StorageServiceServer};
use talosctl_common::*;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

#[derive(Clone, Default)]
struct FakeMachine {
    rec: Recorder,
}

/// One metadata per target: `None` without `nodes`, an error for `bad*` nodes.
fn targets(rec: &Recorded) -> Vec<Option<Metadata>> {
    if rec.nodes.is_empty() {
        return vec![None];
    }
    rec.nodes
        .iter()
        .map(|n| {
            Some(Metadata {
                hostname: n.clone(),
                error: if n.starts_with("bad") {
                    "rpc error: code = Unavailable desc = connection refused".into()
                } else {
                    String::new()
                },
                status: None,
            })
        })
        .collect()
}

fn failed(md: &Option<Metadata>) -> bool {
    md.as_ref().is_some_and(|m| !m.error.is_empty())
}

fn stream<T: Send + 'static>(items: Vec<T>) -> Response<BoxStream<T>> {
    Response::new(Box::pin(tokio_stream::iter(items.into_iter().map(Ok))))
}

fn data(md: Option<Metadata>, bytes: &[u8]) -> common::Data {
    common::Data {
        metadata: md,
        bytes: bytes.to_vec(),
    }
}

fn tar_gz() -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    b.append_data(&mut h, "etc/", &[][..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o600);
    h.set_size(6);
    b.append_data(&mut h, "etc/hosts", &b"hosts\n"[..]).unwrap();
    b.into_inner().unwrap().finish().unwrap()
}

#[tonic::async_trait]
impl MachineService for FakeMachine {
    async fn version(&self, req: Request<()>) -> Result<Response<pb::VersionResponse>, Status> {
        let rec = self.rec.record("Version", &req);
        Ok(Response::new(pb::VersionResponse {
            messages: targets(&rec)
                .into_iter()
                .map(|md| pb::Version {
                    version: (!failed(&md)).then(|| pb::VersionInfo {
                        tag: "v1.7.0".into(),
                        sha: "abc".into(),
                        built: String::new(),
                        go_version: "go1.22".into(),
                        os: "linux".into(),
                        arch: "amd64".into(),
                    }),
                    platform: None,
                    features: Some(pb::FeaturesInfo { rbac: true }),
                    metadata: md,
                })
                .collect(),
        }))
    }

    async fn memory(&self, req: Request<()>) -> Result<Response<pb::MemoryResponse>, Status> {
        let rec = self.rec.record("Memory", &req);
        Ok(Response::new(pb::MemoryResponse {
            messages: targets(&rec)
                .into_iter()
                .map(|md| pb::Memory {
                    metadata: md,
                    meminfo: Some(pb::MemInfo {
                        memtotal: 2048 * 1024,
                        memfree: 1024 * 1024,
                        cached: 256 * 1024,
                        buffers: 128 * 1024,
                        memavailable: 1500 * 1024,
                        shmem: 10 * 1024,
                        ..Default::default()
                    }),
                })
                .collect(),
        }))
    }

    async fn mounts(&self, req: Request<()>) -> Result<Response<pb::MountsResponse>, Status> {
        let rec = self.rec.record("Mounts", &req);
        Ok(Response::new(pb::MountsResponse {
            messages: targets(&rec)
                .into_iter()
                .map(|md| pb::Mounts {
                    metadata: md,
                    stats: vec![pb::MountStat {
                        filesystem: "/dev/sda1".into(),
                        size: 10_000_000_000,
                        available: 7_500_000_000,
                        mounted_on: "/var".into(),
                    }],
                })
                .collect(),
        }))
    }

    async fn processes(&self, req: Request<()>) -> Result<Response<pb::ProcessesResponse>, Status> {
        let rec = self.rec.record("Processes", &req);
        let p = |pid, rss, cpu: f64, exe: &str, args: &str| pb::ProcessInfo {
            pid,
            state: "S".into(),
            threads: 1,
            cpu_time: cpu,
            virtual_memory: rss * 2,
            resident_memory: rss,
            command: exe.rsplit('/').next().unwrap_or_default().into(),
            executable: exe.into(),
            args: args.into(),
            ..Default::default()
        };
        Ok(Response::new(pb::ProcessesResponse {
            messages: targets(&rec)
                .into_iter()
                .map(|md| pb::Process {
                    metadata: md,
                    processes: vec![
                        p(1, 1_000_000, 9.5, "/sbin/init", "init"),
                        p(42, 5_000_000, 1.25, "/sbin/apid", "apid --x"),
                    ],
                })
                .collect(),
        }))
    }

    async fn service_list(
        &self,
        req: Request<()>,
    ) -> Result<Response<pb::ServiceListResponse>, Status> {
        let rec = self.rec.record("ServiceList", &req);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        Ok(Response::new(pb::ServiceListResponse {
            messages: targets(&rec)
                .into_iter()
                .map(|md| pb::ServiceList {
                    metadata: md,
                    services: vec![pb::ServiceInfo {
                        id: "apid".into(),
                        state: "Running".into(),
                        events: Some(pb::ServiceEvents {
                            events: vec![
                                pb::ServiceEvent {
                                    msg: "Starting".into(),
                                    state: "Preparing".into(),
                                    ts: Some(prost_types::Timestamp {
                                        seconds: now - 100,
                                        nanos: 0,
                                    }),
                                },
                                pb::ServiceEvent {
                                    msg: "Health check successful".into(),
                                    state: "Running".into(),
                                    ts: Some(prost_types::Timestamp {
                                        seconds: now - 60,
                                        nanos: 0,
                                    }),
                                },
                            ],
                        }),
                        health: Some(pb::ServiceHealth {
                            unknown: false,
                            healthy: true,
                            last_message: String::new(),
                            last_change: None,
                        }),
                    }],
                })
                .collect(),
        }))
    }

    async fn service_restart(
        &self,
        req: Request<pb::ServiceRestartRequest>,
    ) -> Result<Response<pb::ServiceRestartResponse>, Status> {
        let rec = self.rec.record("ServiceRestart", &req);
        let id = req.into_inner().id;
        Ok(Response::new(pb::ServiceRestartResponse {
            messages: targets(&rec)
                .into_iter()
                .map(|md| pb::ServiceRestart {
                    metadata: md,
                    resp: format!("Service {id:?} restarted"),
                })
                .collect(),
        }))
    }

    async fn list(
        &self,
        req: Request<pb::ListRequest>,
    ) -> Result<Response<BoxStream<pb::FileInfo>>, Status> {
        let rec = self.rec.record("List", &req);
        let root = req.into_inner().root;
        let mut items = Vec::new();
        for md in targets(&rec) {
            if failed(&md) {
                items.push(pb::FileInfo {
                    metadata: md,
                    ..Default::default()
                });
                continue;
            }
            for (name, mode, size) in [(".", 0o755 | 1 << 31, 0), ("hosts", 0o644, 12)] {
                items.push(pb::FileInfo {
                    metadata: md.clone(),
                    name: format!("{root}/{name}"),
                    relative_name: name.into(),
                    size,
                    mode,
                    modified: time::OffsetDateTime::now_utc().unix_timestamp() - 3600,
                    ..Default::default()
                });
            }
        }
        Ok(stream(items))
    }

    async fn read(
        &self,
        req: Request<pb::ReadRequest>,
    ) -> Result<Response<BoxStream<common::Data>>, Status> {
        self.rec.record("Read", &req);
        let path = req.into_inner().path;
        if path == "/missing" {
            return Err(Status::not_found(
                "open /missing: no such file or directory",
            ));
        }
        Ok(stream(vec![
            data(None, b"first chunk, "),
            data(None, format!("of {path}\n").as_bytes()),
        ]))
    }

    async fn copy(
        &self,
        req: Request<pb::CopyRequest>,
    ) -> Result<Response<BoxStream<common::Data>>, Status> {
        self.rec.record("Copy", &req);
        let gz = tar_gz();
        let (a, b) = gz.split_at(gz.len() / 2);
        Ok(stream(vec![data(None, a), data(None, b)]))
    }

    async fn dmesg(
        &self,
        req: Request<pb::DmesgRequest>,
    ) -> Result<Response<BoxStream<common::Data>>, Status> {
        let rec = self.rec.record("Dmesg", &req);
        Ok(stream(
            targets(&rec)
                .into_iter()
                .map(|md| {
                    if failed(&md) {
                        data(md, b"")
                    } else {
                        data(md, b"kernel: hello\n")
                    }
                })
                .collect(),
        ))
    }

    async fn logs(
        &self,
        req: Request<pb::LogsRequest>,
    ) -> Result<Response<BoxStream<common::Data>>, Status> {
        let rec = self.rec.record("Logs", &req);
        let r = req.into_inner();
        let mut items = Vec::new();
        for md in targets(&rec) {
            if failed(&md) {
                items.push(data(md, b""));
                continue;
            }
            // Lines split across chunks: the client must reassemble them per node.
            items.push(data(
                md.clone(),
                format!("{} line one\n{} line", r.id, r.namespace).as_bytes(),
            ));
            items.push(data(md, format!(" two tail={}\n", r.tail_lines).as_bytes()));
        }
        Ok(stream(items))
    }

    async fn events(
        &self,
        req: Request<pb::EventsRequest>,
    ) -> Result<Response<BoxStream<pb::Event>>, Status> {
        use prost::Message as _;
        let rec = self.rec.record("Events", &req);
        let r = req.into_inner();
        let payload = pb::ServiceStateEvent {
            service: "apid".into(),
            action: pb::service_state_event::Action::Running as i32,
            message: format!("tail={} since={}", r.tail_events, r.tail_seconds),
            health: None,
        };
        Ok(stream(
            targets(&rec)
                .into_iter()
                .map(|md| pb::Event {
                    metadata: md,
                    data: Some(prost_types::Any {
                        type_url: "talos/runtime/machine.ServiceStateEvent".into(),
                        value: payload.encode_to_vec(),
                    }),
                    id: "evt1".into(),
                    actor_id: "actor".into(),
                })
                .collect(),
        ))
    }

    async fn apply_configuration(
        &self,
        req: Request<pb::ApplyConfigurationRequest>,
    ) -> Result<Response<pb::ApplyConfigurationResponse>, Status> {
        let rec = self.rec.record("ApplyConfiguration", &req);
        let r = req.into_inner();
        let text = String::from_utf8_lossy(&r.data).into_owned();
        Ok(Response::new(pb::ApplyConfigurationResponse {
            messages: targets(&rec)
                .into_iter()
                .map(|md| pb::ApplyConfiguration {
                    metadata: md,
                    warnings: vec!["something to know".into()],
                    mode: r.mode,
                    mode_details: format!(
                        "Applied configuration (mode {}, dry-run {}, {} bytes, patched {})",
                        r.mode,
                        r.dry_run,
                        r.data.len(),
                        text.contains("patched.example")
                    ),
                })
                .collect(),
        }))
    }
}

#[derive(Clone, Default)]
struct FakeStorage {
    rec: Recorder,
}

#[tonic::async_trait]
impl StorageService for FakeStorage {
    async fn disks(&self, req: Request<()>) -> Result<Response<spb::DisksResponse>, Status> {
        let rec = self.rec.record("Disks", &req);
        Ok(Response::new(spb::DisksResponse {
            messages: targets(&rec)
                .into_iter()
                .map(|md| spb::Disks {
                    metadata: md,
                    disks: vec![spb::Disk {
                        size: 10_737_418_240,
                        model: "QEMU HARDDISK".into(),
                        device_name: "/dev/sda".into(),
                        r#type: spb::disk::DiskType::Hdd as i32,
                        system_disk: true,
                        ..Default::default()
                    }],
                })
                .collect(),
        }))
    }
}

struct Cluster {
    server: TestServer,
    rec: Recorder,
    pki: Pki,
}

fn cluster() -> Cluster {
    let pki = Pki::new(&["os:admin"]);
    let rec = Recorder::default();
    let machine = FakeMachine { rec: rec.clone() };
    let storage = FakeStorage { rec: rec.clone() };
    let server = TestServer::start(pki.server_config(), move || {
        tonic::transport::Server::builder()
            .add_service(MachineServiceServer::new(machine))
            .add_service(StorageServiceServer::new(storage))
    });
    Cluster { server, rec, pki }
}

impl Cluster {
    fn workspace(&self, nodes: &[&str]) -> Workspace {
        Workspace::new(&self.pki, &[self.server.endpoint()], nodes)
    }

    fn last(&self, method: &str) -> Recorded {
        self.rec
            .all()
            .into_iter()
            .rev()
            .find(|r| r.method == method)
            .unwrap_or_else(|| panic!("no {method} call recorded"))
    }
}

#[test]
fn version_per_node_with_mtls() {
    let c = cluster();
    let ws = c.workspace(&["10.5.0.2"]);
    let run = ws.talosctl(&["version"]);
    run.ok();
    assert!(
        run.stdout.starts_with("Client:\n\tTag:         v1.7.0\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "Server:\n\tNODE:        10.5.0.2\n\tTag:         v1.7.0\n\tSHA:         abc\n"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("\tEnabled:     RBAC\n"),
        "{}",
        run.stdout
    );
    let rec = c.last("Version");
    // Talos sends even a single node as `nodes` (apid then tags the reply with it).
    assert_eq!(rec.nodes, ["10.5.0.2"]);
    assert_eq!(rec.node, None);
    assert_eq!(
        rec.organizations,
        ["os:admin"],
        "client certificate presented"
    );

    let short = ws.talosctl(&["version", "--client", "--short"]);
    short.ok();
    assert_eq!(short.stdout, "Client:\nTalos v1.7.0\n");
}

#[test]
fn memory_table_nodes_flag_and_node_errors() {
    let c = cluster();
    let ws = c.workspace(&["10.5.0.2"]);
    let run = ws.talosctl(&["memory"]);
    run.ok();
    assert_eq!(
        run.stdout,
        "NODE       TOTAL   USED   FREE   SHARED   BUFFERS   CACHE   AVAILABLE\n\
         10.5.0.2   2048    640    1024   10       128       256     1500\n"
    );

    // -n overrides the context's nodes; a failing node gives an error line and exit 1,
    // the good nodes are still printed.
    let run = ws.talosctl(&["-n", "10.5.0.3,bad-node,10.5.0.4", "free"]);
    run.failed();
    assert_eq!(c.last("Memory").nodes, ["10.5.0.3", "bad-node", "10.5.0.4"]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert!(lines[1].starts_with("10.5.0.3 "));
    assert!(lines[2].starts_with("10.5.0.4 "));
    assert_eq!(
        run.stderr,
        "error: bad-node: rpc error: code = Unavailable desc = connection refused\n"
    );

    let verbose = ws.talosctl(&["memory", "-v"]);
    verbose.ok();
    assert!(
        verbose
            .stdout
            .starts_with("NODE: 10.5.0.2\nMemTotal: 2097152 kB\nMemFree: 1048576 kB\n"),
        "{}",
        verbose.stdout
    );
    assert!(verbose.stdout.contains("\nHugePagesTotal: 0\n"));
}

#[test]
fn failover_to_the_live_endpoint() {
    let c = cluster();
    let dead = format!("127.0.0.1:{}", dead_port());
    let ws = Workspace::new(&c.pki, &[dead.clone(), c.server.endpoint()], &["n1"]);
    // Random order: whichever is tried first, the live one answers.
    for _ in 0..3 {
        ws.talosctl(&["memory"]).ok();
    }
    // -e overrides the context's endpoints; all dead → every endpoint named in the error.
    let dead2 = format!("127.0.0.1:{}", dead_port());
    let run = ws.talosctl(&["-e", &format!("{dead},{dead2}"), "memory"]);
    run.failed();
    assert!(
        run.stderr.contains(&dead) && run.stderr.contains(&dead2),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("cannot connect to any endpoint"),
        "{}",
        run.stderr
    );
}

#[test]
fn untrusted_server_is_refused() {
    let c = cluster();
    // A talosconfig with another CA: the server certificate does not verify.
    let other = Pki::new(&["os:admin"]);
    let ws = Workspace::new(&other, &[c.server.endpoint()], &["n1"]);
    let run = ws.talosctl(&["memory"]);
    run.failed();
    assert!(
        run.stderr.contains("TLS handshake failed"),
        "{}",
        run.stderr
    );
}

#[test]
fn mounts_processes_disks() {
    let c = cluster();
    let ws = c.workspace(&["n1"]);
    let run = ws.talosctl(&["mounts"]);
    run.ok();
    assert_eq!(
        run.stdout,
        "NODE   FILESYSTEM   SIZE(GB)   USED(GB)   AVAILABLE(GB)   PERCENT USED   MOUNTED ON\n\
         n1     /dev/sda1    10.00      2.50       7.50            25.00%         /var\n"
    );

    let run = ws.talosctl(&["ps", "-s", "cpu"]);
    run.ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "NODE  PID  STATE  THREADS  CPU-TIME  VIRTMEM  RESMEM  COMMAND"
    );
    assert_eq!(
        lines[1],
        "n1    1    S      1        9.50      2.0 MB   1.0 MB  /sbin/init"
    );
    assert_eq!(
        lines[2],
        "n1    42   S      1        1.25      10 MB    5.0 MB  /sbin/apid --x"
    );
    let run = ws.talosctl(&["processes"]);
    assert!(
        run.ok()
            .stdout
            .lines()
            .nth(1)
            .unwrap()
            .contains("/sbin/apid"),
        "sorted by rss"
    );

    let run = ws.talosctl(&["disks"]);
    run.ok();
    assert_eq!(
        run.stdout,
        "NODE   DEV        MODEL           SERIAL   TYPE   UUID   WWID   MODALIAS   NAME   SIZE    BUS_PATH   SUBSYSTEM   READ_ONLY   SYSTEM_DISK\n\
         n1     /dev/sda   QEMU HARDDISK   -        HDD    -      -      -          -      11 GB   -          -                       *\n"
    );
}

#[test]
fn services_and_restart() {
    let c = cluster();
    let ws = c.workspace(&["n1", "n2"]);
    let run = ws.talosctl(&["services"]);
    run.ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "NODE   SERVICE   STATE     HEALTH   LAST CHANGE   LAST EVENT"
    );
    assert!(
        lines[1].starts_with("n1     apid      Running   OK       1m0s ago")
            || lines[1].starts_with("n1     apid      Running   OK       1m1s ago"),
        "{}",
        lines[1]
    );
    assert!(lines[1].ends_with("Health check successful"));
    assert!(lines[2].starts_with("n2 "));

    let run = ws.talosctl(&["-n", "n1", "service", "apid"]);
    run.ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], "NODE     n1");
    assert_eq!(lines[1], "ID       apid");
    assert_eq!(lines[2], "STATE    Running");
    assert_eq!(lines[3], "HEALTH   OK");
    assert!(
        lines[4].starts_with("EVENTS   [Running]: Health check successful (1m"),
        "{}",
        lines[4]
    );
    assert!(
        lines[5].starts_with("         [Preparing]: Starting (1m4"),
        "{}",
        lines[5]
    );

    let run = ws.talosctl(&["-n", "n1", "service", "nope"]);
    run.failed();
    assert!(run
        .stderr
        .contains("service \"nope\" is not registered on any nodes"));

    let run = ws.talosctl(&["service", "apid", "restart"]);
    run.ok();
    assert_eq!(
        run.stdout,
        "NODE   RESPONSE\nn1     Service \"apid\" restarted\nn2     Service \"apid\" restarted\n"
    );
    let run = ws.talosctl(&["service", "apid", "explode"]);
    run.failed();
    assert!(run.stderr.contains("unsupported service action"));
}

#[test]
fn list_read_copy() {
    let c = cluster();
    let ws = c.workspace(&["n1"]);
    let run = ws.talosctl(&["ls", "/etc"]);
    run.ok();
    assert_eq!(run.stdout, "NODE   NAME\nn1     .\nn1     hosts\n");
    let run = ws.talosctl(&["list", "-l", "/etc"]);
    run.ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "NODE   MODE         UID   GID   SIZE(B)   LASTMOD           NAME"
    );
    assert!(
        lines[1].starts_with("n1     drwxr-xr-x   0     0     0         "),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("n1     -rw-r--r--   0     0     12        "),
        "{}",
        lines[2]
    );
    assert!(lines[2].ends_with(" hosts"));
    let run = ws.talosctl(&["list", "-lH", "/etc"]);
    assert!(run.ok().stdout.contains("1 hour ago"), "{}", run.stdout);
    let run = ws.talosctl(&["list", "-r", "-d", "3"]);
    run.failed();
    assert!(run
        .stderr
        .contains("only one of flags --recurse and --depth"));

    let run = ws.talosctl(&["-n", "n1,bad1", "ls"]);
    run.failed();
    assert!(
        run.stderr.contains("error: bad1: rpc error"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("n1     hosts"));

    let run = ws.talosctl(&["cat", "/etc/hosts"]);
    run.ok();
    assert_eq!(run.stdout, "first chunk, of /etc/hosts\n");
    let run = ws.talosctl(&["read", "/missing"]);
    run.failed();
    assert!(
        run.stderr.contains("NotFound") && run.stderr.contains("no such file"),
        "{}",
        run.stderr
    );
    let run = ws.talosctl(&["-n", "a,b", "read", "/etc/hosts"]);
    run.failed();
    assert!(run.stderr.contains("not supported with multiple nodes"));

    // copy to stdout: the tar.gz as sent.
    let run = ws.talosctl(&["cp", "/etc", "-"]);
    run.ok();
    assert_eq!(run.raw_stdout, tar_gz());
    // copy into a new local directory: extracted.
    let dest = ws.path().join("out");
    let run = ws.talosctl(&["copy", "/etc", dest.to_str().unwrap()]);
    run.ok();
    assert_eq!(
        std::fs::read_to_string(dest.join("etc/hosts")).unwrap(),
        "hosts\n"
    );
    // a file as destination is refused.
    let file = ws.path().join("file");
    std::fs::File::create(&file)
        .unwrap()
        .write_all(b"x")
        .unwrap();
    let run = ws.talosctl(&["copy", "/etc", file.to_str().unwrap()]);
    run.failed();
    assert!(run.stderr.contains("should be a directory"));
}

#[test]
fn dmesg_logs_events() {
    let c = cluster();
    let ws = c.workspace(&["n1", "n2"]);
    let run = ws.talosctl(&["dmesg"]);
    run.ok();
    assert_eq!(run.stdout, "n1: kernel: hello\nn2: kernel: hello\n");
    let rec = c.last("Dmesg");
    assert_eq!(rec.nodes, ["n1", "n2"]);

    let run = ws.talosctl(&["-n", "n1,bad", "logs", "apid", "--tail", "5"]);
    run.failed();
    assert_eq!(
        run.stdout,
        "n1: apid line one\nn1: system line two tail=5\n"
    );
    assert!(run.stderr.contains("error: bad: "), "{}", run.stderr);
    let run = ws.talosctl(&["-n", "n1", "logs", "-k", "kube-proxy"]);
    run.ok();
    assert_eq!(
        run.stdout,
        "n1: kube-proxy line one\nn1: k8s.io line two tail=-1\n"
    );

    let run = ws.talosctl(&["-n", "n1", "events", "--tail", "3", "--duration", "1m"]);
    run.ok();
    assert_eq!(
        run.stdout,
        "NODE    ID     EVENT   ACTOR   SOURCE   MESSAGE\n\
         n1      evt1   talos/runtime/machine.ServiceStateEvent\n\
         actor   apid   RUNNING: tail=3 since=60\n"
    );
}

#[test]
fn time_and_usage_are_answered_or_reported() {
    // The fake implements neither TimeService nor DiskUsage: the RPC error is reported.
    let c = cluster();
    let ws = c.workspace(&["n1"]);
    let run = ws.talosctl(&["time"]);
    run.failed();
    assert!(
        run.stderr
            .contains("error fetching time: rpc error: code = Unimplemented"),
        "{}",
        run.stderr
    );
    let run = ws.talosctl(&["usage", "/var"]);
    run.failed();
    assert!(run.stderr.contains("Unimplemented"), "{}", run.stderr);
}

#[test]
fn apply_config_with_patch() {
    let c = cluster();
    let ws = c.workspace(&["n1"]);
    let cfg = ws.path().join("config.yaml");
    std::fs::write(
        &cfg,
        "version: v1alpha1\nmachine:\n    type: worker\n    token: abc\ncluster:\n    clusterName: c\n",
    )
    .unwrap();
    let patch = ws.path().join("patch.yaml");
    std::fs::write(
        &patch,
        "machine:\n    network:\n        hostname: patched.example\n",
    )
    .unwrap();
    let run = ws.talosctl(&[
        "apply-config",
        "-f",
        cfg.to_str().unwrap(),
        "-m",
        "no-reboot",
        "--dry-run",
        "-p",
        &format!("@{}", patch.display()),
    ]);
    run.ok();
    assert!(
        run.stderr.contains("WARNING: something to know\n"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("mode 2, dry-run true"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("patched true"), "{}", run.stderr);

    let run = ws.talosctl(&["apply", "-f", cfg.to_str().unwrap(), "-m", "sideways"]);
    run.failed();
    assert!(run.stderr.contains("possible options are"));
    let run = ws.talosctl(&["apply-config"]);
    run.failed();
    assert!(run.stderr.contains("no filename supplied"));
}

#[test]
fn configuration_errors_are_actionable() {
    let c = cluster();
    // No talosconfig at all: an empty one is created (as talosctl does) and has no context.
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_talos"));
    cmd.args(["talosctl", "memory"])
        .env("HOME", dir.path())
        .env_remove("TALOSCONFIG");
    let run = Run::from(run_with_timeout(cmd));
    run.failed();
    assert!(run.stderr.contains("no context is set"), "{}", run.stderr);
    assert!(run.stderr.contains("talosctl gen config"), "{}", run.stderr);

    // A context without endpoints.
    let ws = Workspace::new(&c.pki, &[], &["n1"]);
    let run = ws.talosctl(&["memory"]);
    run.failed();
    assert!(
        run.stderr.contains("no endpoints set for context \"test\""),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--endpoints"), "{}", run.stderr);

    // No nodes.
    let ws = c.workspace(&[]);
    let run = ws.talosctl(&["memory"]);
    run.failed();
    assert!(
        run.stderr.contains("nodes are not set for the command"),
        "{}",
        run.stderr
    );

    // Unknown context.
    let ws = c.workspace(&["n1"]);
    let run = ws.talosctl(&["--context", "nope", "memory"]);
    run.failed();
    assert!(
        run.stderr.contains("context \"nope\" is not defined"),
        "{}",
        run.stderr
    );
}

/// Maintenance mode: server-only TLS with a self-signed certificate; `-i` dials the nodes.
#[test]
fn insecure_mode_with_fingerprints() {
    let certs =
        talos::auth::tls::generate_self_signed_maintenance(&["127.0.0.1".parse().unwrap()], &[])
            .unwrap();
    let config =
        talos::auth::tls::server_tls_only(certs.cert_pem.as_bytes(), certs.key_pem.as_bytes())
            .unwrap();
    let rec = Recorder::default();
    let machine = FakeMachine { rec: rec.clone() };
    let storage = FakeStorage { rec: rec.clone() };
    let server = TestServer::start(config, move || {
        tonic::transport::Server::builder()
            .add_service(MachineServiceServer::new(machine))
            .add_service(StorageServiceServer::new(storage))
    });
    // No talosconfig needed.
    let dir = tempfile::tempdir().unwrap();
    let talosctl = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_talos"));
        cmd.arg("talosctl")
            .args(args)
            .env("HOME", dir.path())
            .env_remove("TALOSCONFIG");
        Run::from(run_with_timeout(cmd))
    };
    let node = server.endpoint();

    let run = talosctl(&["-n", &node, "disks", "-i"]);
    run.ok();
    // No node metadata: the table has no NODE column.
    assert!(run.stdout.starts_with("DEV        MODEL"), "{}", run.stdout);
    let last = rec.all().pop().unwrap();
    assert!(last.nodes.is_empty() && last.node.is_none(), "{last:?}");

    let run = talosctl(&["-n", &node, "version", "--insecure"]);
    run.ok();
    assert!(
        run.stdout.contains("\tNODE:        127.0.0.1\n"),
        "peer address as node: {}",
        run.stdout
    );

    let cfg = dir.path().join("c.yaml");
    std::fs::write(&cfg, "version: v1alpha1\n").unwrap();
    let run = talosctl(&[
        "-n",
        &node,
        "apply-config",
        "-i",
        "-f",
        cfg.to_str().unwrap(),
        "--cert-fingerprint",
        &certs.fingerprint,
    ]);
    run.ok();
    assert!(
        run.stderr.contains("Applied configuration (mode 1"),
        "{}",
        run.stderr
    );

    let wrong = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let run = talosctl(&[
        "-n",
        &node,
        "apply-config",
        "-i",
        "-f",
        cfg.to_str().unwrap(),
        "--cert-fingerprint",
        wrong,
    ]);
    run.failed();
    assert!(
        run.stderr.contains("TLS handshake failed"),
        "{}",
        run.stderr
    );

    let run = talosctl(&["disks", "-i"]);
    run.failed();
    assert!(run.stderr.contains("--nodes"), "{}", run.stderr);
}
