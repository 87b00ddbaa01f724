//! Shared harness of the talosctl API tests: a PKI made with `talos::secrets` (Ed25519), an
//! in-process tonic server behind rustls on 127.0.0.1 (mutual TLS like apid, or server-only TLS
//! like maintenance mode), a talosconfig pointing at it, and a runner for the real binary.
#![allow(
    dead_code,
    reason = "shared by several integration test crates, each of which uses only some helpers"
)]

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use talos::secrets::{CertParams, CertificateAuthority, ExtKeyUsage, KeyAlgorithm};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Certificates of one test cluster (PEM).
pub struct Pki {
    pub ca_pem: Vec<u8>,
    pub server_crt: Vec<u8>,
    pub server_key: Vec<u8>,
    pub client_crt: Vec<u8>,
    pub client_key: Vec<u8>,
}

impl Pki {
    pub fn new(roles: &[&str]) -> Pki {
        let now = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
        let ca = CertificateAuthority::generate(
            KeyAlgorithm::Ed25519,
            &CertParams::new(now, time::Duration::days(10)).organizations(["talos"]),
        )
        .expect("CA");
        let (server, server_key) = ca
            .issue(
                &CertParams::new(now, time::Duration::days(1))
                    .ip_addresses([IpAddr::V4(Ipv4Addr::LOCALHOST)])
                    .ext_key_usage([ExtKeyUsage::ServerAuth]),
            )
            .expect("server cert");
        let (client, client_key) = ca
            .issue(
                &CertParams::new(now, time::Duration::days(1))
                    .organizations(roles.iter().copied())
                    .ext_key_usage([ExtKeyUsage::ClientAuth]),
            )
            .expect("client cert");
        Pki {
            ca_pem: ca.cert.to_pem(),
            server_crt: server.to_pem(),
            server_key: server_key.to_pem().expect("key pem"),
            client_crt: client.to_pem(),
            client_key: client_key.to_pem().expect("key pem"),
        }
    }

    pub fn server_config(&self) -> rustls::ServerConfig {
        talos::auth::tls::server_mtls(&[&self.ca_pem], &self.server_crt, &self.server_key, true)
            .expect("server config")
    }
}

/// What the server learnt about the client of a connection.
#[derive(Clone, Debug, Default)]
pub struct PeerInfo {
    pub organizations: Vec<String>,
}

/// A TLS stream tonic can serve.
pub struct Conn(pub TlsStream<TcpStream>);

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        let (_, conn) = self.0.get_ref();
        let organizations = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|leaf| talos::auth::tls::peer_cert_organizations(leaf).ok())
            .unwrap_or_default();
        PeerInfo { organizations }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// A server running on its own thread and runtime; stopped on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl TestServer {
    /// Serves the router built by `make` over TLS with `config` on 127.0.0.1:0.
    pub fn start<F>(config: rustls::ServerConfig, make: F) -> TestServer
    where
        F: FnOnce() -> tonic::transport::server::Router + Send + 'static,
    {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                let (conn_tx, conn_rx) = tokio::sync::mpsc::channel::<Result<Conn, io::Error>>(16);
                tokio::spawn(async move {
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else {
                            break;
                        };
                        let acceptor = acceptor.clone();
                        let conn_tx = conn_tx.clone();
                        tokio::spawn(async move {
                            // Handshake failures (wrong CA, no client cert) just drop the socket.
                            if let Ok(tls) = acceptor.accept(tcp).await {
                                let _ = conn_tx.send(Ok(Conn(tls))).await;
                            }
                        });
                    }
                });
                let incoming = tokio_stream::wrappers::ReceiverStream::new(conn_rx);
                let _ = make()
                    .serve_with_incoming_shutdown(incoming, async {
                        let _ = stop_rx.await;
                    })
                    .await;
            });
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server address");
        TestServer {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.addr.port())
    }
}

/// A port on 127.0.0.1 where nothing listens.
pub fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A temp dir with a talosconfig for `pki`, context `test`.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub talosconfig: PathBuf,
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

impl Workspace {
    pub fn new(pki: &Pki, endpoints: &[String], nodes: &[&str]) -> Workspace {
        let dir = tempfile::tempdir().expect("tempdir");
        let talosconfig = dir.path().join("talosconfig");
        let list = |items: Vec<String>| {
            if items.is_empty() {
                "[]".to_string()
            } else {
                format!(
                    "\n{}",
                    items
                        .iter()
                        .map(|i| format!("      - {i}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            }
        };
        let text = format!(
            "context: test\ncontexts:\n  test:\n    endpoints: {}\n    nodes: {}\n    ca: {}\n    crt: {}\n    key: {}\n",
            list(endpoints.to_vec()),
            list(nodes.iter().map(|s| s.to_string()).collect()),
            b64(&pki.ca_pem),
            b64(&pki.client_crt),
            b64(&pki.client_key),
        );
        std::fs::write(&talosconfig, text).expect("write talosconfig");
        Workspace { dir, talosconfig }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `talos talosctl --talosconfig <ws> ARGS...`.
    pub fn talosctl(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_talos"));
        cmd.arg("talosctl")
            .arg("--talosconfig")
            .arg(&self.talosconfig)
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("TALOSCONFIG")
            .stdin(Stdio::null());
        Run::from(run_with_timeout(cmd))
    }
}

/// Runs a command, killing it after 60 s.
pub fn run_with_timeout(mut cmd: Command) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn talos");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("talosctl did not finish within 60 s");
        }
    }
}

/// The result of one run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub raw_stdout: Vec<u8>,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            raw_stdout: o.stdout,
        }
    }
}

impl Run {
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "exit {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    pub fn failed(&self) -> &Self {
        assert_ne!(self.code, 0, "unexpected success\nstdout:\n{}", self.stdout);
        self
    }
}

/// Records the routing metadata of each request.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Vec<Recorded>>>);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    pub nodes: Vec<String>,
    pub node: Option<String>,
    pub organizations: Vec<String>,
}

impl Recorder {
    pub fn record<T>(&self, method: &str, req: &tonic::Request<T>) -> Recorded {
        let md = req.metadata();
        let rec = Recorded {
            method: method.to_string(),
            nodes: md
                .get_all("nodes")
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_string))
                .collect(),
            node: md
                .get("node")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            organizations: req
                .extensions()
                .get::<PeerInfo>()
                .map(|p| p.organizations.clone())
                .unwrap_or_default(),
        };
        if let Ok(mut all) = self.0.lock() {
            all.push(rec.clone());
        }
        rec
    }

    pub fn all(&self) -> Vec<Recorded> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}
