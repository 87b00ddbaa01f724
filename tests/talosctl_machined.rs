//! talosctl against the real `talos machined --api-only`, through an in-test mutual-TLS proxy
//! on 127.0.0.1 that pipes each TLS connection's bytes to machined's unix socket (HTTP/2
//! passes through unchanged). machined answers without node metadata, so talosctl names the
//! node by the endpoint address.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

mod talosctl_common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

fn start_machined() -> Machined {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("machine.sock");
    let child = Command::new(env!("CARGO_BIN_EXE_talos"))
        .args(["machined", "--api-only", "--socket"])
        .arg(&socket)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .args(["--platform", "metal"])
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

/// TLS on 127.0.0.1:0 → machined's unix socket; stopped when dropped.
struct Proxy {
    addr: std::net::SocketAddr,
    _rt: tokio::runtime::Runtime,
}

fn start_proxy(config: rustls::ServerConfig, socket: &Path) -> Proxy {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
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

#[test]
fn talosctl_against_real_machined() {
    let m = start_machined();
    let pki = Pki::new(&["os:admin"]);
    let proxy = start_proxy(pki.server_config(), &m.socket);
    let endpoint = format!("127.0.0.1:{}", proxy.addr.port());
    let ws = Workspace::new(&pki, &[endpoint], &["127.0.0.1"]);

    let run = ws.talosctl(&["version"]);
    run.ok();
    assert!(
        run.stdout
            .contains("Server:\n\tNODE:        127.0.0.1\n\tTag:         v1.7.0\n"),
        "{}",
        run.stdout
    );

    let run = ws.talosctl(&["memory"]);
    run.ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("NODE        TOTAL"), "{}", run.stdout);
    assert!(lines[1].starts_with("127.0.0.1   "), "{}", run.stdout);

    let run = ws.talosctl(&["processes"]);
    run.ok();
    assert!(run.stdout.starts_with("NODE "), "{}", run.stdout);
    assert!(run.stdout.lines().count() > 1);

    let run = ws.talosctl(&["mounts"]);
    run.ok();
    assert!(
        run.stdout.contains(" /\n") || run.stdout.contains(" / "),
        "{}",
        run.stdout
    );

    // A directory we control.
    let dir = ws.path().join("tree");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/file.txt"), "hello from the node\n").unwrap();
    let dir_s = dir.to_str().unwrap();

    // No node metadata in replies: bare names, like talosctl on a direct connection.
    let run = ws.talosctl(&["ls", "-r", dir_s]);
    run.ok();
    let names: Vec<&str> = run.stdout.lines().collect();
    assert!(
        names.contains(&"sub") && names.contains(&"sub/file.txt"),
        "{}",
        run.stdout
    );

    let run = ws.talosctl(&["read", &format!("{dir_s}/sub/file.txt")]);
    run.ok();
    assert_eq!(run.stdout, "hello from the node\n");

    let out = ws.path().join("copied");
    let run = ws.talosctl(&["copy", dir_s, out.to_str().unwrap()]);
    run.ok();
    let listing: Vec<String> = walk(&out);
    assert_eq!(
        std::fs::read_to_string(out.join("sub/file.txt"))
            .unwrap_or_else(|e| panic!("{e}: extracted {listing:?}")),
        "hello from the node\n"
    );

    let run = ws.talosctl(&["usage", dir_s]);
    run.ok();
    assert!(run.stdout.starts_with("SIZE"), "{}", run.stdout);

    let run = ws.talosctl(&["services"]);
    run.ok();
    assert!(
        run.stdout.starts_with("NODE   SERVICE") || run.stdout.starts_with("NODE"),
        "{}",
        run.stdout
    );

    let run = ws.talosctl(&["time"]);
    run.ok();
    assert!(run.stdout.starts_with("NODE"), "{}", run.stdout);
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            out.push(e.path().display().to_string());
            out.extend(walk(&e.path()));
        }
    }
    out
}
