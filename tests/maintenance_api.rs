//! The real `talos machined --maintenance` on 127.0.0.1:0, called like `talosctl --insecure`
//! does: TLS without verifying the chain, pinning the fingerprint printed on stderr.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

mod common_api;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use talos::api::cosi::resource::state_client::StateClient;
use talos::api::machine::{
    self as pb, apply_configuration_request::Mode as ApplyMode,
    machine_service_client::MachineServiceClient,
};
use talos::api::storage::storage_service_client::StorageServiceClient;
use talos::config::generate::{GenerateOptions, Generator, MachineType};
use tonic::transport::Channel;

const BUNDLE: &str = "testdata/secrets/bundle.yaml";

/// A running maintenance-mode machined; killed on drop.
struct Node {
    child: Option<Child>,
    addr: SocketAddr,
    fingerprint: String,
    banner: Vec<String>,
    lines: mpsc::Receiver<String>,
    dir: tempfile::TempDir,
    /// Channels live on this runtime; every call runs on it too.
    rt: tokio::runtime::Runtime,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Node {
    fn start(platform: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_talos"))
            .args(["machined", "--maintenance", "--listen", "127.0.0.1:0"])
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(["--platform", platform])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn talos machined --maintenance");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut node = Node {
            child: Some(child),
            addr: "127.0.0.1:0".parse().unwrap(),
            fingerprint: String::new(),
            banner: Vec::new(),
            lines,
            dir,
            rt: runtime(),
        };
        let listening = node.wait_for("maintenance: listening on ");
        node.addr = listening
            .trim_start_matches("maintenance: listening on ")
            .parse()
            .expect("bound address");
        let fp = node.wait_for("maintenance: server certificate fingerprint: ");
        node.fingerprint = fp
            .trim_start_matches("maintenance: server certificate fingerprint: ")
            .to_string();
        node.wait_for("--cert-fingerprint");
        node
    }

    /// Waits for a stderr line containing `needle`; keeps every line in `banner`.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    self.banner.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!(
            "no stderr line with {needle:?}; saw:\n{}",
            self.banner.join("\n")
        );
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "process did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    fn channel(&self, fingerprints: Option<Vec<String>>) -> Result<Channel, String> {
        self.rt.block_on(channel(self.addr, fingerprints))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn channel(addr: SocketAddr, fingerprints: Option<Vec<String>>) -> Result<Channel, String> {
    let tls = Arc::new(talos::auth::tls::client_insecure(fingerprints).map_err(|e| e.to_string())?);
    common_api::connect_tls(addr, tls).await
}

fn generated(kind: MachineType) -> Vec<u8> {
    let bundle = talos::secrets::Bundle::load(Path::new(BUNDLE)).expect("bundle");
    let opts = GenerateOptions::new("maint", "https://10.5.0.2:6443");
    let config = Generator::new(&opts, &bundle)
        .config(kind)
        .expect("generate");
    config.to_yaml().expect("yaml").into_bytes()
}

fn apply(
    node: &Node,
    channel: &Channel,
    data: &[u8],
    mode: ApplyMode,
    dry_run: bool,
) -> Result<pb::ApplyConfigurationResponse, tonic::Status> {
    let mut client = MachineServiceClient::new(channel.clone());
    node.rt
        .block_on(client.apply_configuration(pb::ApplyConfigurationRequest {
            data: data.to_vec(),
            mode: mode as i32,
            dry_run,
            try_mode_timeout: None,
        }))
        .map(tonic::Response::into_inner)
}

#[test]
fn banner_shows_fingerprint_and_hint() {
    let node = Node::start("container");
    let text = node.banner.join("\n");
    assert!(
        text.contains("talosctl apply-config --insecure --nodes 127.0.0.1 --file <config.yaml>"),
        "{text}"
    );
    assert!(text.contains("this machine is reachable at:"), "{text}");
    assert_eq!(node.fingerprint.len(), 44, "base64 of a SHA-256");
    assert!(text.contains(&format!("--cert-fingerprint '{}'", node.fingerprint)));
}

#[test]
fn pinned_fingerprint_is_checked() {
    let node = Node::start("container");
    // The right fingerprint, and no pinning at all, both connect.
    let channel = node
        .channel(Some(vec![node.fingerprint.clone()]))
        .expect("connects with the printed fingerprint");
    let mut storage = StorageServiceClient::new(channel);
    node.rt
        .block_on(storage.disks(()))
        .expect("Disks is served to readers");
    node.channel(None).expect("connects without pinning");

    // A different fingerprint is refused during the handshake.
    let wrong = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_string();
    let err = node.channel(Some(vec![wrong])).unwrap_err();
    assert!(err.contains("fingerprint"), "{err}");
}

#[test]
fn invalid_config_is_refused_and_nothing_is_stored() {
    let mut node = Node::start("metal");
    let channel = node.channel(Some(vec![node.fingerprint.clone()])).unwrap();

    // Parses, but misses almost everything a machine config needs.
    let status = apply(
        &node,
        &channel,
        b"version: v1alpha1\nmachine:\n    type: worker\n",
        ApplyMode::Auto,
        false,
    )
    .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status
            .message()
            .starts_with("configuration validation failed:"),
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("errors occurred"),
        "{}",
        status.message()
    );

    // A generated config without an install disk fails validation on metal, with the path.
    let text = String::from_utf8(generated(MachineType::Worker)).unwrap();
    let without_disk = text.replace("disk: /dev/sda", "disk: \"\"");
    assert_ne!(
        text, without_disk,
        "the generated config has an install disk"
    );
    let status = apply(
        &node,
        &channel,
        without_disk.as_bytes(),
        ApplyMode::Reboot,
        false,
    )
    .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("install"), "{}", status.message());

    // Only a non-v1alpha1 document: machine instructions are required.
    let status = apply(
        &node,
        &channel,
        b"apiVersion: v1alpha1\nkind: WatchdogTimerConfig\ndevice: /dev/watchdog0\ntimeout: 2m\n",
        ApplyMode::Auto,
        false,
    )
    .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("v1alpha1"),
        "{}",
        status.message()
    );

    // Not YAML at all.
    let status = apply(&node, &channel, b"{{{ not yaml", ApplyMode::Auto, false).unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unknown);
    assert!(
        status.message().starts_with("failed to parse config:"),
        "{}",
        status.message()
    );

    // Modes maintenance mode does not support.
    for (mode, name) in [
        (ApplyMode::NoReboot, "no-reboot"),
        (ApplyMode::Staged, "staged"),
    ] {
        let status = apply(
            &node,
            &channel,
            &generated(MachineType::Worker),
            mode,
            false,
        )
        .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unimplemented);
        assert_eq!(
            status.message(),
            format!("apply configuration --mode='{name}' is not supported in maintenance mode")
        );
    }

    // A valid config as a dry run: a summary, nothing stored, still in maintenance mode.
    let reply = apply(
        &node,
        &channel,
        &generated(MachineType::Worker),
        ApplyMode::Auto,
        true,
    )
    .expect("dry run");
    assert!(
        reply.messages[0]
            .mode_details
            .starts_with("Dry run summary:"),
        "{:?}",
        reply.messages[0]
    );

    assert!(
        std::fs::read_dir(node.state_dir())
            .unwrap()
            .next()
            .is_none(),
        "nothing written to the state dir"
    );
    assert!(node.is_running(), "still in maintenance mode");
}

#[test]
fn valid_config_is_stored_and_maintenance_ends() {
    // (Generated configs are valid for metal; container mode also wants hostDNS forwarding.)
    let mut node = Node::start("metal");
    let channel = node.channel(Some(vec![node.fingerprint.clone()])).unwrap();
    let config = generated(MachineType::ControlPlane);
    let reply = apply(&node, &channel, &config, ApplyMode::Auto, false).expect("applied");
    assert_eq!(reply.messages.len(), 1);
    assert_eq!(reply.messages[0].mode, ApplyMode::Auto as i32);
    assert!(!reply.messages[0].mode_details.is_empty());

    let status = node.wait_exit();
    assert!(status.success(), "exit status {status:?}");

    let path = node.state_dir().join("config.yaml");
    assert_eq!(std::fs::read(&path).unwrap(), config, "stored exactly");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // No temporary files left behind.
    let names: Vec<_> = std::fs::read_dir(node.state_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["config.yaml"]);
    node.wait_for("configuration stored in");
}

#[test]
fn try_mode_is_accepted() {
    let mut node = Node::start("metal");
    let channel = node.channel(Some(vec![node.fingerprint.clone()])).unwrap();
    let config = generated(MachineType::Worker);
    apply(&node, &channel, &config, ApplyMode::Try, false).expect("applied");
    assert!(node.wait_exit().success());
    assert_eq!(
        std::fs::read(node.state_dir().join("config.yaml")).unwrap(),
        config
    );
}

#[test]
fn readers_are_refused_what_maintenance_mode_does_not_serve() {
    let mut node = Node::start("container");
    let channel = node.channel(Some(vec![node.fingerprint.clone()])).unwrap();
    let rt = &node.rt;
    let mut machine = MachineServiceClient::new(channel.clone());

    // Version is for admins only; claiming a role in the metadata changes nothing.
    let mut req = tonic::Request::new(());
    req.metadata_mut()
        .insert("talos-role", "os:admin".parse().unwrap());
    let status = rt.block_on(machine.version(req)).unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    assert_eq!(
        status.message(),
        "API is not implemented in maintenance mode"
    );

    let status = rt
        .block_on(machine.reboot(pb::RebootRequest { mode: 0 }))
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    assert_eq!(status.message(), "method Reboot not implemented");

    let status = rt
        .block_on(machine.read(pb::ReadRequest {
            path: "/etc/hostname".into(),
        }))
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    assert_eq!(status.message(), "method Read not implemented");

    let status = rt
        .block_on(
            machine
                .generate_client_configuration(pb::GenerateClientConfigurationRequest::default()),
        )
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);

    let status = rt
        .block_on(
            machine.generate_configuration(pb::GenerateConfigurationRequest {
                machine_config: Some(pb::MachineConfig {
                    r#type: pb::machine_config::MachineType::TypeWorker as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
        )
        .unwrap_err();
    assert_eq!(
        status.message(),
        "join config can't be generated in the maintenance mode"
    );

    // COSI: writes are refused; readers read non-sensitive resources only.
    let mut cosi = StateClient::new(channel);
    let status = rt
        .block_on(cosi.destroy(talos::api::cosi::resource::DestroyRequest::default()))
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert_eq!(status.message(), "write access is not allowed");
    let status = rt
        .block_on(cosi.get(talos::api::cosi::resource::GetRequest::default()))
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    let rd = rt
        .block_on(cosi.get(talos::api::cosi::resource::GetRequest {
            namespace: "meta".into(),
            r#type: "ResourceDefinitions.meta.cosi.dev".into(),
            id: "machinestatuses.runtime.talos.dev".into(),
            options: None,
        }))
        .unwrap();
    assert!(rd.into_inner().resource.is_some());
    let status = rt
        .block_on(cosi.get(talos::api::cosi::resource::GetRequest {
            namespace: "config".into(),
            r#type: "MachineConfigs.config.talos.dev".into(),
            id: "v1alpha1".into(),
            options: None,
        }))
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);

    assert!(node.is_running());
    assert!(std::fs::read_dir(node.state_dir())
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn state_dir_is_required() {
    let out = Command::new(env!("CARGO_BIN_EXE_talos"))
        .args(["machined", "--maintenance", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--state-dir"), "{stderr}");
}
