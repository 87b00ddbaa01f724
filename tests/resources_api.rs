//! Resources end to end: the real `talos machined --api-only` (with a machine config in its
//! state directory) behind the real `talos apid` on 127.0.0.1, driven by our `talosctl get`
//! with `os:reader` and `os:admin` client certificates, and by a local writer on machined's
//! unix socket (as networkd publishes its status resources).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

mod common_api;
mod talosctl_common;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use talos::api::cosi::resource as cosi;
use talos::api::cosi::resource::state_client::StateClient;
use tonic::transport::{Channel, Endpoint, Uri};

const CONFIG: &str = include_str!("../testdata/resources/config.yaml");

/// machined (with `config.yaml` in its state dir) and apid in front of it.
struct Node {
    machined: common_api::Proc,
    apid: common_api::Apid,
    pki: common_api::TestPki,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

fn start_node() -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).expect("state dir");
    std::fs::write(state.join("config.yaml"), CONFIG).expect("config");
    let socket = dir.path().join("machine.sock");
    let child = Command::new(env!("CARGO_BIN_EXE_talos"))
        .args([
            "machined",
            "--api-only",
            "--platform",
            "container",
            "--socket",
        ])
        .arg(&socket)
        .arg("--state-dir")
        .arg(&state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn machined");
    let machined = common_api::Proc { child: Some(child) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "machined socket did not appear");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pki = common_api::TestPki::new();
    let apid = common_api::start_apid(&pki, false, &socket, &[]);
    Node {
        machined,
        apid,
        pki,
        socket,
        _dir: dir,
    }
}

impl Node {
    /// A talosconfig workspace for a client with `roles`, targeting this node as 127.0.0.1.
    fn client(&self, roles: &[&str]) -> talosctl_common::Workspace {
        let id = self.pki.client(roles);
        let pki = talosctl_common::Pki {
            ca_pem: self.pki.ca_pem(),
            server_crt: Vec::new(),
            server_key: Vec::new(),
            client_crt: id.crt,
            client_key: id.key,
        };
        talosctl_common::Workspace::new(&pki, &[self.apid.target()], &["127.0.0.1"])
    }

    /// `talosctl ARGS` as `ws`, retried until `done` accepts the run (controllers publish
    /// asynchronously) or 10 s pass.
    fn until<F: Fn(&talosctl_common::Run) -> bool>(
        &self,
        ws: &talosctl_common::Workspace,
        args: &[&str],
        done: F,
    ) -> talosctl_common::Run {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let run = ws.talosctl(args);
            if done(&run) || Instant::now() > deadline {
                return run;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Splits table output into rows of columns (runs of 2+ spaces or tabs separate columns).
fn table(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect()
        })
        .collect()
}

#[test]
fn talosctl_get_through_apid() {
    let node = start_node();
    let admin = node.client(&["os:admin"]);
    let reader = node.client(&["os:reader"]);

    // Resource definitions: Talos's columns, ids and derived aliases.
    let run = reader.talosctl(&["get", "rd"]);
    run.ok();
    let rows = table(&run.stdout);
    assert_eq!(
        rows[0],
        ["NODE", "NAMESPACE", "TYPE", "ID", "VERSION", "ALIASES"]
    );
    let ms = rows
        .iter()
        .find(|r| r.get(3).map(String::as_str) == Some("machinestatuses.runtime.talos.dev"))
        .unwrap_or_else(|| panic!("no MachineStatuses definition:\n{}", run.stdout));
    assert_eq!(
        ms[..5],
        [
            "127.0.0.1",
            "meta",
            "ResourceDefinition",
            "machinestatuses.runtime.talos.dev",
            "1"
        ]
    );
    assert!(
        ms[5].contains("machinestatus") && ms[5].contains("ms"),
        "{ms:?}"
    );
    assert!(rows.len() > 120, "{} definitions", rows.len() - 1);

    // The hostname from the config, as YAML in Talos's layout.
    let run = node.until(&reader, &["get", "hostname", "-o", "yaml"], |r| {
        r.stdout.contains("rs-node-1")
    });
    run.ok();
    assert!(run.stdout.starts_with("node: 127.0.0.1\nmetadata:\n    namespace: network\n    type: HostnameStatuses.net.talos.dev\n    id: hostname\n    version: 1\n    owner: network.HostnameStatusController\n    phase: running\n    created: "), "{}", run.stdout);
    // Times are plain, as COSI writes them.
    assert!(run.stdout.contains("\n    created: 20"), "{}", run.stdout);
    assert!(
        run.stdout
            .ends_with("spec:\n    hostname: rs-node-1\n    domainname: \"\"\n"),
        "{}",
        run.stdout
    );

    // Machine status columns.
    let run = reader.talosctl(&["get", "machinestatus"]);
    run.ok();
    let rows = table(&run.stdout);
    assert_eq!(
        rows[0],
        [
            "NODE",
            "NAMESPACE",
            "TYPE",
            "ID",
            "VERSION",
            "STAGE",
            "READY"
        ]
    );
    assert_eq!(
        rows[1][..4],
        ["127.0.0.1", "runtime", "MachineStatus", "machine"]
    );
    assert_eq!(rows[1][5..], ["running", "true"]);

    // The machine config is sensitive: readers are refused, admins get it.
    let run = reader.talosctl(&["get", "mc"]);
    run.failed();
    assert!(run.stderr.contains("not authorized"), "{}", run.stderr);
    assert!(run.stderr.contains("os:admin"), "{}", run.stderr);
    let run = admin.talosctl(&["get", "mc", "v1alpha1", "-o", "yaml"]);
    run.ok();
    assert!(
        run.stdout.contains("type: MachineConfigs.config.talos.dev"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("hostname: rs-node-1"), "{}", run.stdout);
    let run = admin.talosctl(&["get", "machinetype"]);
    run.ok();
    let rows = table(&run.stdout);
    assert_eq!(rows[0][5], "TYPE");
    assert_eq!(rows[1][3..], ["machine-type", "1", "controlplane"]);

    // Kernel parameters: Talos's defaults plus machine.sysctls.
    let run = node.until(&reader, &["get", "kernelparamstatus"], |r| {
        r.stdout.contains("proc.sys.vm.swappiness")
    });
    run.ok();
    let rows = table(&run.stdout);
    assert_eq!(
        rows[0],
        [
            "NODE",
            "NAMESPACE",
            "TYPE",
            "ID",
            "VERSION",
            "CURRENT",
            "DEFAULT",
            "UNSUPPORTED"
        ]
    );
    assert!(rows
        .iter()
        .any(|r| r.get(3).map(String::as_str) == Some("proc.sys.net.ipv4.ip_forward")));
    assert!(rows.iter().skip(1).all(|r| r[2] == "KernelParamStatus"));

    // Node name, member, time, services.
    let run = node.until(&reader, &["get", "nodename"], |r| {
        r.stdout.contains("rs-node-1")
    });
    run.ok();
    let run = node.until(&reader, &["get", "members"], |r| {
        r.stdout.contains("rs-node-1")
    });
    run.ok();
    let rows = table(&run.stdout);
    assert_eq!(
        rows[0],
        [
            "NODE",
            "NAMESPACE",
            "TYPE",
            "ID",
            "VERSION",
            "HOSTNAME",
            "MACHINE TYPE",
            "OS",
            "ADDRESSES"
        ]
    );
    assert_eq!(rows[1][1..3], ["cluster", "Member"]);
    assert!(run.stdout.contains("Talos (v1.7.0)"), "{}", run.stdout);
    let run = reader.talosctl(&["get", "members", "-o", "yaml"]);
    assert!(
        run.stdout.contains("controlPlane:\n        port: 7443\n"),
        "{}",
        run.stdout
    );
    let run = node.until(&reader, &["get", "timestatus"], |r| {
        r.stdout.contains("node")
    });
    run.ok();
    let rows = table(&run.stdout);
    assert_eq!(rows[1][1..], ["runtime", "TimeStatus", "node", "1", "true"]);
    let run = reader.talosctl(&["get", "svc"]);
    run.ok();
    let rows = table(&run.stdout);
    assert_eq!(
        rows[0],
        [
            "NODE",
            "NAMESPACE",
            "TYPE",
            "ID",
            "VERSION",
            "RUNNING",
            "HEALTHY",
            "HEALTH UNKNOWN"
        ]
    );
    assert_eq!(
        rows[1][1..],
        ["runtime", "Service", "machined", "1", "true", "true", "false"]
    );
    let run = reader.talosctl(&["get", "mountstatus"]);
    run.ok();
    assert_eq!(
        table(&run.stdout)[0],
        [
            "NODE",
            "NAMESPACE",
            "TYPE",
            "ID",
            "VERSION",
            "SOURCE",
            "TARGET",
            "FILESYSTEM TYPE"
        ]
    );
    let run = reader.talosctl(&["get", "namespaces"]);
    run.ok();
    assert!(run.stdout.contains("network-config"), "{}", run.stdout);
    // As in Talos 1.7, `ns` is also the initials of NetworkStatuses and NodeStatuses.
    let run = reader.talosctl(&["get", "ns"]);
    run.failed();
    assert!(run.stderr.contains("ambiguous"), "{}", run.stderr);

    // Unknown types are the client's error; missing ids are NotFound.
    let run = reader.talosctl(&["get", "machinestatus", "nope"]);
    run.failed();
    assert!(run.stderr.contains("doesn't exist"), "{}", run.stderr);
}

async fn unix_channel(socket: &Path) -> Channel {
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

fn link(id: &str, version: &str, yaml: &str) -> cosi::Resource {
    cosi::Resource {
        metadata: Some(cosi::Metadata {
            namespace: "network".into(),
            r#type: "LinkStatuses.net.talos.dev".into(),
            id: id.into(),
            version: version.into(),
            phase: "running".into(),
            ..Default::default()
        }),
        spec: Some(cosi::Spec {
            proto_spec: Vec::new(),
            yaml_spec: yaml.into(),
        }),
    }
}

/// Reads `child`'s stdout lines on a thread.
fn lines_of(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_line(rx: &std::sync::mpsc::Receiver<String>, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if pred(&line) {
                return line;
            }
            seen.push(line);
        }
    }
    panic!("line not seen; got:\n{}", seen.join("\n"));
}

#[test]
fn local_writers_and_watch() {
    let node = start_node();
    let reader = node.client(&["os:reader"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut state = rt.block_on(async { StateClient::new(unix_channel(&node.socket).await) });

    // Watch the links through apid while a local writer (networkd's role) publishes.
    let mut watch = Command::new(env!("CARGO_BIN_EXE_talos"))
        .arg("talosctl")
        .arg("--talosconfig")
        .arg(&reader.talosconfig)
        .args(["get", "links", "--watch"])
        .env("HOME", reader.path())
        .env_remove("TALOSCONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn watch");
    let mut watch_guard = common_api::Proc { child: None };
    let rx = lines_of(&mut watch);
    watch_guard.child = Some(watch);
    let header = wait_line(&rx, |l| l.starts_with("NODE"));
    assert_eq!(
        table(&header)[0],
        [
            "NODE",
            "*",
            "NAMESPACE",
            "TYPE",
            "ID",
            "VERSION",
            "TYPE",
            "KIND",
            "HW ADDR",
            "OPER STATE",
            "LINK STATE"
        ]
    );

    let created = rt
        .block_on(state.create(cosi::CreateRequest {
            resource: Some(link("eth0", "undefined", "type: ether\nkind: \"\"\nhardwareAddr: 02:00:00:00:00:01\noperationalState: up\nlinkState: true\n")),
            options: Some(cosi::CreateOptions {
                owner: "network.LinkStatusController".into(),
            }),
        }))
        .expect("create")
        .into_inner()
        .resource
        .expect("resource");
    let md = created.metadata.expect("metadata");
    assert_eq!(
        (md.version.as_str(), md.owner.as_str()),
        ("1", "network.LinkStatusController")
    );
    let line = wait_line(&rx, |l| l.contains("eth0"));
    let cols = table(&line)[0].clone();
    assert_eq!(
        cols,
        [
            "127.0.0.1",
            "+",
            "network",
            "LinkStatus",
            "eth0",
            "1",
            "ether",
            "02:00:00:00:00:01",
            "up",
            "true"
        ]
    );

    // Updates need the owner and the current version.
    let wrong_owner = rt
        .block_on(state.update(cosi::UpdateRequest {
            new_resource: Some(link("eth0", "1", "type: ether\n")),
            options: Some(cosi::UpdateOptions {
                owner: "someone.Else".into(),
                expected_phase: None,
            }),
        }))
        .expect_err("owner conflict");
    assert_eq!(wrong_owner.code(), tonic::Code::PermissionDenied);
    let stale = rt
        .block_on(state.update(cosi::UpdateRequest {
            new_resource: Some(link("eth0", "7", "type: ether\n")),
            options: Some(cosi::UpdateOptions {
                owner: "network.LinkStatusController".into(),
                expected_phase: None,
            }),
        }))
        .expect_err("version conflict");
    assert_eq!(stale.code(), tonic::Code::FailedPrecondition);
    rt.block_on(state.update(cosi::UpdateRequest {
        new_resource: Some(link("eth0", "1", "type: ether\noperationalState: down\n")),
        options: Some(cosi::UpdateOptions {
            owner: "network.LinkStatusController".into(),
            expected_phase: None,
        }),
    }))
    .expect("update");
    let line = wait_line(&rx, |l| l.contains("eth0") && l.contains("down"));
    // Updates have a blank `*` column.
    assert_eq!(
        table(&line)[0][1..5],
        ["network", "LinkStatus", "eth0", "2"]
    );
    rt.block_on(state.destroy(cosi::DestroyRequest {
        namespace: "network".into(),
        r#type: "LinkStatuses.net.talos.dev".into(),
        id: "eth0".into(),
        options: Some(cosi::DestroyOptions {
            owner: "network.LinkStatusController".into(),
        }),
    }))
    .expect("destroy");
    let line = wait_line(&rx, |l| {
        l.contains("eth0") && table(l)[0].get(1).map(String::as_str) == Some("-")
    });
    assert!(line.starts_with("127.0.0.1"), "{line}");
    drop(watch_guard);

    // Unregistered types cannot be written even locally.
    let mut bad = link("x", "undefined", "");
    if let Some(md) = bad.metadata.as_mut() {
        md.r#type = "Nope.example.dev".into();
    }
    let e = rt
        .block_on(state.create(cosi::CreateRequest {
            resource: Some(bad),
            options: None,
        }))
        .expect_err("unregistered");
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert!(e.message().contains("is not supported"), "{}", e.message());

    // Through apid, writes are refused for everyone (as Talos).
    let admin_id = node.pki.client(&["os:admin"]);
    let e = rt.block_on(async {
        let ch = common_api::connect(node.apid.addr, &node.pki.ca_pem(), &admin_id)
            .await
            .expect("mtls");
        StateClient::new(ch)
            .create(cosi::CreateRequest {
                resource: Some(link("eth1", "undefined", "")),
                options: None,
            })
            .await
            .expect_err("write through apid")
    });
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert!(
        e.message().contains("write access is not allowed"),
        "{}",
        e.message()
    );

    // A role passed in metadata is trusted on the socket: readers cannot read secrets.
    let e = rt
        .block_on(state.get(common_api::request(
            cosi::GetRequest {
                namespace: "config".into(),
                r#type: "MachineConfigs.config.talos.dev".into(),
                id: "v1alpha1".into(),
                options: None,
            },
            &[("talos-role", "os:reader")],
        )))
        .expect_err("sensitive");
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    let _ = &node.machined;
}

#[test]
fn watch_protocol_over_the_socket() {
    let node = start_node();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut state = StateClient::new(unix_channel(&node.socket).await);
        let mut stream = state
            .watch(cosi::WatchRequest {
                namespace: "runtime".into(),
                r#type: "Services.v1alpha1.talos.dev".into(),
                id: None,
                options: Some(cosi::WatchOptions {
                    bootstrap_contents: true,
                    ..Default::default()
                }),
                api_version: 1,
            })
            .await
            .expect("watch")
            .into_inner();
        // An empty message first, then the contents, then the bootstrapped marker.
        let first = stream.message().await.expect("recv").expect("message");
        assert!(first.event.is_empty());
        let e = stream.message().await.expect("recv").expect("message");
        assert_eq!(e.event[0].event_type, cosi::EventType::Created as i32);
        let r = e.event[0].resource.as_ref().expect("resource");
        assert_eq!(r.metadata.as_ref().expect("md").id, "machined");
        let e = stream.message().await.expect("recv").expect("message");
        assert_eq!(e.event[0].event_type, cosi::EventType::Bootstrapped as i32);

        // Single-id watches cannot bootstrap (COSI answers Unimplemented).
        let err = state
            .watch(cosi::WatchRequest {
                namespace: "runtime".into(),
                r#type: "Services.v1alpha1.talos.dev".into(),
                id: Some("machined".into()),
                options: Some(cosi::WatchOptions {
                    bootstrap_contents: true,
                    ..Default::default()
                }),
                api_version: 1,
            })
            .await
            .expect_err("unimplemented");
        assert_eq!(err.code(), tonic::Code::Unimplemented);

        // The resource definitions carry the protobuf spec too (Talos's talosctl decodes it).
        let rd = state
            .get(cosi::GetRequest {
                namespace: "meta".into(),
                r#type: "ResourceDefinitions.meta.cosi.dev".into(),
                id: "machineconfigs.config.talos.dev".into(),
                options: None,
            })
            .await
            .expect("get rd")
            .into_inner()
            .resource
            .expect("resource");
        let spec = rd.spec.expect("spec");
        let proto =
            <talos::api::cosi::resource::meta::ResourceDefinitionSpec as prost::Message>::decode(
                &spec.proto_spec[..],
            )
            .expect("proto spec");
        assert_eq!(proto.display_type, "MachineConfig");
        assert_eq!(proto.sensitivity, 1);
        assert!(spec.yaml_spec.contains("sensitivity: sensitive"));
    });
}
