//! Helpers for the apid tests: an OS CA with server and client certificates (Ed25519, made
//! with `talos::secrets`), real `talos machined --api-only` and `talos apid` processes on
//! 127.0.0.1 (killed on drop), and tonic channels over mutual TLS.

#![allow(
    dead_code,
    reason = "shared by several integration test crates, each of which uses only some helpers"
)]

use std::io::{BufRead as _, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use talos::secrets::{CertParams, CertificateAuthority, ExtKeyUsage, KeyAlgorithm, KeyUsage};
use time::OffsetDateTime;
use tonic::transport::{Channel, Endpoint, Uri};

pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A certificate and its key, PEM.
#[derive(Clone)]
pub struct Identity {
    pub crt: Vec<u8>,
    pub key: Vec<u8>,
}

/// An OS CA.
pub struct TestPki {
    pub ca: CertificateAuthority,
}

fn params() -> CertParams {
    CertParams::new(
        OffsetDateTime::now_utc() - time::Duration::hours(1),
        time::Duration::days(365),
    )
}

impl TestPki {
    pub fn new() -> TestPki {
        let ca = CertificateAuthority::generate(
            KeyAlgorithm::Ed25519,
            &CertParams::new(
                OffsetDateTime::now_utc() - time::Duration::hours(1),
                time::Duration::days(3650),
            )
            .organizations(["talos"]),
        )
        .expect("CA");
        TestPki { ca }
    }

    pub fn ca_pem(&self) -> Vec<u8> {
        self.ca.cert.to_pem()
    }

    pub fn issue(&self, params: &CertParams) -> Identity {
        let (crt, key) = self.ca.issue(params).expect("issue");
        Identity {
            crt: crt.to_pem(),
            key: key.to_pem().expect("key pem"),
        }
    }

    /// apid's server certificate for 127.0.0.1.
    pub fn server(&self) -> Identity {
        self.issue(
            &params()
                .ip_addresses([LOCALHOST])
                .dns_names(["localhost"])
                .ext_key_usage([ExtKeyUsage::ServerAuth]),
        )
    }

    /// A talosconfig-style client certificate: O = roles, ClientAuth only.
    pub fn client(&self, roles: &[&str]) -> Identity {
        self.issue(
            &params()
                .organizations(roles.iter().copied())
                .key_usage(KeyUsage::DIGITAL_SIGNATURE)
                .ext_key_usage([ExtKeyUsage::ClientAuth]),
        )
    }

    /// apid's forwarding identity.
    pub fn impersonator(&self) -> Identity {
        self.client(&["os:impersonator"])
    }

    /// Writes an apid PKI directory; `forwarding` adds the impersonator client certificate.
    pub fn write_apid_dir(&self, dir: &Path, forwarding: bool) {
        std::fs::create_dir_all(dir).expect("pki dir");
        let server = self.server();
        std::fs::write(dir.join("ca.crt"), self.ca_pem()).expect("ca.crt");
        std::fs::write(dir.join("server.crt"), &server.crt).expect("server.crt");
        std::fs::write(dir.join("server.key"), &server.key).expect("server.key");
        if forwarding {
            let client = self.impersonator();
            std::fs::write(dir.join("client.crt"), &client.crt).expect("client.crt");
            std::fs::write(dir.join("client.key"), &client.key).expect("client.key");
        }
    }
}

/// A child process killed (and reaped) on drop.
pub struct Proc {
    pub child: Option<Child>,
}

impl Proc {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits up to `within` for the exit; returns whether it exited cleanly.
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `talos machined --api-only` on a socket in a temp dir.
pub struct Machined {
    pub proc: Proc,
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
}

pub fn start_machined(platform: &str) -> Machined {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("machine.sock");
    let child = Command::new(env!("CARGO_BIN_EXE_talos"))
        .args(["machined", "--api-only", "--platform", platform, "--socket"])
        .arg(&socket)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn talos machined");
    let m = Machined {
        proc: Proc { child: Some(child) },
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

/// `talos apid` on 127.0.0.1 (port chosen by the kernel).
pub struct Apid {
    pub proc: Proc,
    pub addr: SocketAddr,
    pub pki_dir: PathBuf,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Apid {
    /// The target string that names this apid.
    pub fn target(&self) -> String {
        self.addr.to_string()
    }

    /// apid's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Starts apid with a PKI directory written from `pki` (with the forwarding identity when
/// `forwarding`), in front of `machined_socket`, with `extra` flags.
pub fn start_apid(pki: &TestPki, forwarding: bool, machined_socket: &Path, extra: &[&str]) -> Apid {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki_dir = dir.path().join("pki");
    pki.write_apid_dir(&pki_dir, forwarding);
    start_apid_in(dir, pki_dir, machined_socket, extra)
}

/// Starts apid on an existing PKI directory inside `dir`.
pub fn start_apid_in(
    dir: tempfile::TempDir,
    pki_dir: PathBuf,
    machined_socket: &Path,
    extra: &[&str],
) -> Apid {
    let log = dir.path().join("apid.log");
    let log_file = std::fs::File::create(&log).expect("log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_talos"))
        .args(["apid", "--listen", "127.0.0.1:0", "--pki-dir"])
        .arg(&pki_dir)
        .arg("--machined-socket")
        .arg(machined_socket)
        .args(extra)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .spawn()
        .expect("spawn talos apid");
    let stdout = child.stdout.take().expect("stdout");
    let mut proc = Proc { child: Some(child) };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(line) => line,
        Err(_) => {
            proc.kill();
            panic!(
                "apid did not report its address; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
    };
    let addr = match line.trim().strip_prefix("listening on ") {
        Some(a) => a.parse().expect("address"),
        None => {
            proc.kill();
            panic!(
                "unexpected apid output {line:?}; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
    };
    Apid {
        proc,
        addr,
        pki_dir,
        log,
        _dir: dir,
    }
}

/// A gRPC channel to `addr` over mutual TLS with `id`, verifying the server against `ca_pem`.
/// Fails when the TLS or HTTP/2 handshake fails.
pub async fn connect(addr: SocketAddr, ca_pem: &[u8], id: &Identity) -> Result<Channel, String> {
    let config =
        talos::auth::tls::client_mtls(ca_pem, &id.crt, &id.key).map_err(|e| e.to_string())?;
    connect_tls(addr, Arc::new(config)).await
}

/// A gRPC channel to `addr` over TLS with any client `config` (mutual, CA-verified, or
/// fingerprint-pinned). The error carries the whole source chain.
pub async fn connect_tls(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> Result<Channel, String> {
    let connector = tokio_rustls::TlsConnector::from(config);
    Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let connector = connector.clone();
            async move {
                let tcp = tokio::net::TcpStream::connect(addr).await?;
                let tls = connector
                    .connect(ServerName::IpAddress(addr.ip().into()), tcp)
                    .await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        }))
        .await
        .map_err(|e| talos::errors::chain(&e).to_string())
}

/// A request with `pairs` as metadata.
pub fn request<T>(message: T, pairs: &[(&'static str, &str)]) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    for (k, v) in pairs {
        req.metadata_mut()
            .append(*k, v.parse().expect("metadata value"));
    }
    req
}

/// Every message of a stream, or the first error.
pub async fn collect<T>(mut s: tonic::Streaming<T>) -> Result<Vec<T>, tonic::Status> {
    let mut out = Vec::new();
    while let Some(item) = s.message().await? {
        out.push(item);
    }
    Ok(out)
}
