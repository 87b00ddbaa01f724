//! End to end on loopback: our talosctl → apid (mTLS, RBAC) → machined, a worker whose apid
//! certificate comes from trustd, fan-out across both nodes, and an independent client built
//! from Talos's own protos (the PyPI `talos-linux-api-v1-6-0` stubs) through apid.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use base64::Engine as _;

mod common_api;
use common_api::{start_apid, start_apid_in, start_machined, Identity, Proc, TestPki, LOCALHOST};

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Writes a talosconfig with one context for `endpoint` (also its default node) and identity `id`.
fn talosconfig(dir: &Path, name: &str, endpoint: &str, ca: &[u8], id: &Identity) -> PathBuf {
    let path = dir.join(name);
    let text = format!(
        "context: e2e\ncontexts:\n    e2e:\n        endpoints:\n            - {endpoint}\n        nodes:\n            - {endpoint}\n        ca: {}\n        crt: {}\n        key: {}\n",
        b64(ca),
        b64(&id.crt),
        b64(&id.key)
    );
    std::fs::write(&path, text).expect("talosconfig");
    path
}

fn talosctl(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_talos"))
        .arg("talosctl")
        .arg("--talosconfig")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run talosctl")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "talosctl failed: {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(o),
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(o)
}

#[test]
fn talosctl_through_apid_to_machined() {
    let pki = TestPki::new();
    let machined = start_machined("container");
    let apid = start_apid(&pki, true, &machined.socket, &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = talosconfig(
        dir.path(),
        "admin",
        &apid.target(),
        &pki.ca_pem(),
        &pki.client(&["os:admin"]),
    );
    let reader = talosconfig(
        dir.path(),
        "reader",
        &apid.target(),
        &pki.ca_pem(),
        &pki.client(&["os:reader"]),
    );

    let v = ok(&talosctl(&admin, &["version"]));
    assert!(v.contains("Server:") && v.contains("v1.7.0"), "{v}");
    let mem = ok(&talosctl(&admin, &["memory"]));
    assert!(mem.contains("TOTAL"), "{mem}");
    let svc = ok(&talosctl(&admin, &["services"]));
    assert!(svc.contains("machined") && svc.contains("Running"), "{svc}");
    let logs = ok(&talosctl(&admin, &["logs", "machined", "--tail", "5"]));
    assert!(logs.contains("api call"), "{logs}");
    let ls = ok(&talosctl(&admin, &["ls", "/proc/self"]));
    assert!(ls.contains("status"), "{ls}");
    let read = ok(&talosctl(&admin, &["read", "/proc/loadavg"]));
    assert!(read.split_whitespace().count() >= 5, "{read}");

    // os:reader may read state but not files, and never apply configs.
    ok(&talosctl(&reader, &["version"]));
    let denied = talosctl(&reader, &["read", "/proc/loadavg"]);
    assert!(!denied.status.success());
    let err = String::from_utf8_lossy(&denied.stderr);
    assert!(
        err.contains("PermissionDenied") || err.contains("not authorized"),
        "{err}"
    );
}

/// Starts trustd on 127.0.0.1 and returns it with its endpoint.
fn start_trustd(pki: &TestPki, dir: &Path, token: &str) -> (Proc, String) {
    let pki_dir = dir.join("trustd");
    std::fs::create_dir_all(&pki_dir).expect("trustd dir");
    let server = pki.server();
    std::fs::write(pki_dir.join("ca.crt"), pki.ca_pem()).expect("ca.crt");
    std::fs::write(pki_dir.join("ca.key"), pki.ca.key.to_pem().expect("ca key")).expect("ca.key");
    std::fs::write(pki_dir.join("server.crt"), &server.crt).expect("server.crt");
    std::fs::write(pki_dir.join("server.key"), &server.key).expect("server.key");
    let token_file = dir.join("token");
    std::fs::write(&token_file, token).expect("token");
    let mut child = Command::new(env!("CARGO_BIN_EXE_talos"))
        .args(["trustd", "--listen", "127.0.0.1:0", "--pki-dir"])
        .arg(&pki_dir)
        .arg("--token-file")
        .arg(&token_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn trustd");
    let stderr = child.stderr.take().expect("stderr");
    let proc = Proc { child: Some(child) };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("listening on ").nth(1) {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("trustd reported its address");
    (proc, addr)
}

#[test]
fn worker_gets_its_apid_certificate_from_trustd_and_is_reachable_through_the_control_plane() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let token = "abcdef.0123456789abcdef";
    let (_trustd, trustd_addr) = start_trustd(&pki, dir.path(), token);

    // The worker asks trustd for its apid server certificate with the machine token.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let issued = rt
        .block_on(talos::client::trustd::request_certificate(
            &[trustd_addr],
            token,
            &pki.ca_pem(),
            &talos::client::trustd::CertificateSubject {
                common_name: Some("worker-1".into()),
                ips: vec![LOCALHOST],
                dns_names: vec!["localhost".into()],
            },
        ))
        .expect("certificate from trustd");
    // A wrong token is refused.
    let refused = rt.block_on(talos::client::trustd::request_certificate(
        std::slice::from_ref(&issued.endpoint),
        "wrong0.0000000000000000",
        &pki.ca_pem(),
        &talos::client::trustd::CertificateSubject::default(),
    ));
    assert!(refused.is_err());

    // Worker: its own machined and an apid with the
    // trustd-issued certificate and no client certificate (workers cannot forward).
    let worker_machined = start_machined("metal");
    let wdir = tempfile::tempdir().expect("tempdir");
    let wpki = wdir.path().join("pki");
    std::fs::create_dir_all(&wpki).expect("worker pki");
    std::fs::write(wpki.join("ca.crt"), &issued.ca_pem).expect("ca.crt");
    std::fs::write(wpki.join("server.crt"), &issued.crt_pem).expect("server.crt");
    std::fs::write(wpki.join("server.key"), &issued.key_pem).expect("server.key");
    let worker = start_apid_in(wdir, wpki, &worker_machined.socket, &[]);

    // Control plane: machined ("container") and a forwarding apid.
    let cp_machined = start_machined("container");
    let cp = start_apid(&pki, true, &cp_machined.socket, &[]);
    let config = talosconfig(
        dir.path(),
        "admin",
        &cp.target(),
        &pki.ca_pem(),
        &pki.client(&["os:admin"]),
    );

    // One node through the control plane's apid: the worker answers.
    let v = ok(&talosctl(&config, &["-n", &worker.target(), "version"]));
    assert!(v.contains(&worker.target()), "worker should answer: {v}");
    assert!(!v.contains(&cp.target()), "{v}");

    // Fan-out to both nodes: one reply each, tagged with the node.
    let both = format!("{},{}", cp.target(), worker.target());
    let v = ok(&talosctl(&config, &["-n", &both, "version"]));
    assert!(
        v.contains(&cp.target()) && v.contains(&worker.target()),
        "{v}"
    );

    // Calling the worker directly with the talosconfig works too (its cert chains to the OS CA).
    let direct = talosconfig(
        dir.path(),
        "direct",
        &worker.target(),
        &pki.ca_pem(),
        &pki.client(&["os:reader"]),
    );
    ok(&talosctl(&direct, &["version"]));
}

#[test]
fn talos_python_stubs_talk_to_apid() {
    let have_stubs = Command::new("python3")
        .args(["-c", "import talos_linux_api.v1_6_0, grpclib, betterproto"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !have_stubs {
        eprintln!("SKIPPED: talos_python_stubs_talk_to_apid: python3 with talos-linux-api-v1-6-0 not installed (ci/setup installs it)");
        return;
    }
    let pki = TestPki::new();
    let machined = start_machined("container");
    let apid = start_apid(&pki, true, &machined.socket, &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = pki.client(&["os:admin"]);
    let ca = dir.path().join("ca.crt");
    let crt = dir.path().join("admin.crt");
    let key = dir.path().join("admin.key");
    std::fs::write(&ca, pki.ca_pem()).expect("ca");
    std::fs::write(&crt, &admin.crt).expect("crt");
    std::fs::write(&key, &admin.key).expect("key");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/talos_api_client.py");
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .arg(apid.addr.ip().to_string())
        .arg(apid.addr.port().to_string())
        .args([&ca, &crt, &key]);
    // Dmesg reads /dev/kmsg, which needs root.
    if nix::unistd::Uid::effective().is_root() {
        cmd.arg("--dmesg");
    }
    let out = cmd.output().expect("run python client");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python client failed:\n{text}\n{}\napid log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        apid.log()
    );
    for call in ["Version", "Hostname", "Memory", "ServiceList", "Logs"] {
        assert!(
            text.contains(&format!("\"call\": \"{call}\"")),
            "{call} missing:\n{text}"
        );
    }
}
