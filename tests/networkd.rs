//! networkd against a DHCP server test double, in two network namespaces of the test's own
//! joined by a veth pair (root only; the host's interfaces are never touched).
//!
//! The server namespace holds the DHCP server (a thread of this test that entered the namespace)
//! on `10.213.X.1/24`; networkd runs in the client namespace (`ip netns exec … unshare --uts`, so
//! not even the host name can leak) with `--interface <veth> --no-publish`. Checked: the leased
//! address, the default route with metric 1024, resolv.conf, a renewal with a short lease, and a
//! clean exit on SIGTERM that leaves the address in place. Namespaces, the server thread and
//! networkd are cleaned up by Drop guards even when an assertion fails.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an integration test crate is test code: a panic is a failed test"
)]

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode, UnknownOption};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};
use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn sh(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{args:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A network namespace deleted (with its links) on drop.
struct Netns(String);

impl Netns {
    fn new(name: String) -> Self {
        let _ = sh(&["ip", "netns", "del", &name]);
        sh(&["ip", "netns", "add", &name]).expect("ip netns add");
        Netns(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = sh(&["ip", "netns", "del", &self.0]);
    }
}

/// A child process terminated (SIGTERM, then SIGKILL) on drop.
struct Proc(Option<Child>);

impl Proc {
    /// Sends SIGTERM and waits up to `timeout` for the exit status.
    fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.0.take()?;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).ok()?);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.terminate(Duration::from_secs(3));
    }
}

/// What the server double has seen.
#[derive(Default)]
struct Counters {
    discovers: AtomicUsize,
    requests: AtomicUsize,
    renewals: AtomicUsize,
    naks: AtomicUsize,
    ignored: AtomicUsize,
}

/// The DHCP server thread, stopped and joined on drop.
struct Server {
    stop: Arc<AtomicBool>,
    /// Answer renewals with NAK.
    nak: Arc<AtomicBool>,
    /// Answer nothing at all.
    silent: Arc<AtomicBool>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct ServerConfig {
    netns: String,
    link: String,
    server: Ipv4Addr,
    offer: Ipv4Addr,
    dns: Ipv4Addr,
    lease_secs: u32,
    /// Option 12 to hand out.
    hostname: Option<String>,
}

fn start_server(cfg: ServerConfig) -> Server {
    let stop = Arc::new(AtomicBool::new(false));
    let nak = Arc::new(AtomicBool::new(false));
    let silent = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let thread = {
        let stop = stop.clone();
        let nak = nak.clone();
        let silent = silent.clone();
        let counters = counters.clone();
        std::thread::spawn(move || {
            let sock = match server_socket(&cfg) {
                Ok(s) => {
                    let _ = ready_tx.send(Ok(()));
                    s
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            serve(&sock, &cfg, &stop, [&nak, &silent], &counters);
        })
    };
    match ready_rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("DHCP server double: {e}"),
        Err(e) => panic!("DHCP server double did not start: {e}"),
    }
    Server {
        stop,
        nak,
        silent,
        counters,
        thread: Some(thread),
    }
}

/// Enters the server namespace (this thread only) and opens 0.0.0.0:67 on the server link.
fn server_socket(cfg: &ServerConfig) -> Result<UdpSocket, String> {
    let ns = File::open(Path::new("/var/run/netns").join(&cfg.netns)).map_err(|e| e.to_string())?;
    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| e.to_string())?;
    let fd = socket::socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| e.to_string())?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(|e| e.to_string())?;
    socket::setsockopt(&fd, sockopt::Broadcast, &true).map_err(|e| e.to_string())?;
    socket::setsockopt(
        &fd,
        sockopt::BindToDevice,
        &std::ffi::OsString::from(&cfg.link),
    )
    .map_err(|e| e.to_string())?;
    socket::bind(
        fd.as_raw_fd(),
        &SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 67)),
    )
    .map_err(|e| e.to_string())?;
    let sock = UdpSocket::from(fd);
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| e.to_string())?;
    Ok(sock)
}

fn serve(
    sock: &UdpSocket,
    cfg: &ServerConfig,
    stop: &AtomicBool,
    [nak, silent]: [&AtomicBool; 2],
    counters: &Counters,
) {
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::SeqCst) {
        let Ok((n, _from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let Ok(req) = Message::decode(&mut Decoder::new(&buf[..n])) else {
            continue;
        };
        if req.opcode() != Opcode::BootRequest {
            continue;
        }
        if silent.load(Ordering::SeqCst) {
            counters.ignored.fetch_add(1, Ordering::SeqCst);
            continue;
        }
        let kind = match req.opts().msg_type() {
            Some(MessageType::Discover) => {
                counters.discovers.fetch_add(1, Ordering::SeqCst);
                MessageType::Offer
            }
            Some(MessageType::Request) => {
                counters.requests.fetch_add(1, Ordering::SeqCst);
                if req.ciaddr() == cfg.offer {
                    if nak.load(Ordering::SeqCst) {
                        counters.naks.fetch_add(1, Ordering::SeqCst);
                        MessageType::Nak
                    } else {
                        counters.renewals.fetch_add(1, Ordering::SeqCst);
                        MessageType::Ack
                    }
                } else {
                    MessageType::Ack
                }
            }
            _ => continue,
        };
        let yiaddr = if kind == MessageType::Nak {
            Ipv4Addr::UNSPECIFIED
        } else {
            cfg.offer
        };
        let mut reply = Message::new_with_id(
            req.xid(),
            Ipv4Addr::UNSPECIFIED,
            yiaddr,
            cfg.server,
            Ipv4Addr::UNSPECIFIED,
            &req.chaddr()[..usize::from(req.hlen()).min(16)],
        );
        reply.set_opcode(Opcode::BootReply);
        reply.set_flags(req.flags());
        let o = reply.opts_mut();
        o.insert(DhcpOption::MessageType(kind));
        o.insert(DhcpOption::ServerIdentifier(cfg.server));
        o.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
        o.insert(DhcpOption::Router(vec![cfg.server]));
        o.insert(DhcpOption::DomainNameServer(vec![cfg.dns]));
        o.insert(DhcpOption::DomainName("test.internal".into()));
        if let Some(h) = &cfg.hostname {
            o.insert(DhcpOption::Hostname(h.clone()));
        }
        o.insert(DhcpOption::AddressLeaseTime(cfg.lease_secs));
        o.insert(DhcpOption::InterfaceMtu(1400));
        // Option 121 (RFC 3442): 0.0.0.0/0 and 10.214.0.0/16, both via the server.
        let gw = cfg.server.octets();
        let mut routes = vec![0u8];
        routes.extend_from_slice(&gw);
        routes.extend_from_slice(&[16, 10, 214]);
        routes.extend_from_slice(&gw);
        o.insert(DhcpOption::Unknown(UnknownOption::new(
            OptionCode::ClasslessStaticRoute,
            routes,
        )));
        let mut out = Vec::new();
        if reply.encode(&mut Encoder::new(&mut out)).is_err() {
            continue;
        }
        let _ = sock.send_to(&out, SocketAddrV4::new(Ipv4Addr::BROADCAST, 68));
    }
}

/// A COSI State server double on a unix socket: an in-memory store that checks versions the
/// way an optimistic-concurrency store does (Update must carry the current version).
mod fake_cosi {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex};

    use talos::api::cosi::resource::state_server::{State, StateServer};
    use talos::api::cosi::resource::{
        CreateRequest, CreateResponse, DestroyRequest, DestroyResponse, GetRequest, GetResponse,
        Resource, UpdateRequest, UpdateResponse,
    };
    use tonic::{Request, Response, Status};

    /// (namespace, type, id) → resource.
    pub type Store = Arc<Mutex<BTreeMap<(String, String, String), Resource>>>;

    #[derive(Default, Clone)]
    pub struct Fake {
        pub store: Store,
        pub calls: Arc<Mutex<Vec<String>>>,
    }

    fn key(r: &Resource) -> Result<(String, String, String), Status> {
        let m = r
            .metadata
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("no metadata"))?;
        Ok((m.namespace.clone(), m.r#type.clone(), m.id.clone()))
    }

    #[tonic::async_trait]
    impl State for Fake {
        async fn get(&self, req: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
            let r = req.into_inner();
            let store = self.store.lock().expect("lock");
            match store.get(&(r.namespace, r.r#type, r.id)) {
                Some(res) => Ok(Response::new(GetResponse {
                    resource: Some(res.clone()),
                })),
                None => Err(Status::not_found("no such resource")),
            }
        }

        async fn create(
            &self,
            req: Request<CreateRequest>,
        ) -> Result<Response<CreateResponse>, Status> {
            let r = req.into_inner();
            let mut res = r
                .resource
                .ok_or_else(|| Status::invalid_argument("no resource"))?;
            let k = key(&res)?;
            self.calls
                .lock()
                .expect("lock")
                .push(format!("create {} {}", k.1, k.2));
            let mut store = self.store.lock().expect("lock");
            if store.contains_key(&k) {
                return Err(Status::already_exists("exists"));
            }
            if let Some(m) = res.metadata.as_mut() {
                m.version = "1".into();
            }
            store.insert(k, res.clone());
            Ok(Response::new(CreateResponse {
                resource: Some(res),
            }))
        }

        async fn update(
            &self,
            req: Request<UpdateRequest>,
        ) -> Result<Response<UpdateResponse>, Status> {
            let r = req.into_inner();
            let mut res = r
                .new_resource
                .ok_or_else(|| Status::invalid_argument("no resource"))?;
            let k = key(&res)?;
            self.calls
                .lock()
                .expect("lock")
                .push(format!("update {} {}", k.1, k.2));
            let mut store = self.store.lock().expect("lock");
            let cur = store
                .get(&k)
                .ok_or_else(|| Status::not_found("no such resource"))?;
            let cur_version: u64 = cur
                .metadata
                .as_ref()
                .and_then(|m| m.version.parse().ok())
                .unwrap_or(0);
            let sent = res
                .metadata
                .as_ref()
                .map(|m| m.version.clone())
                .unwrap_or_default();
            if sent != cur_version.to_string() {
                return Err(Status::failed_precondition(format!(
                    "version conflict: have {cur_version}, got {sent}"
                )));
            }
            if let Some(m) = res.metadata.as_mut() {
                m.version = (cur_version + 1).to_string();
            }
            store.insert(k, res.clone());
            Ok(Response::new(UpdateResponse {
                resource: Some(res),
            }))
        }

        async fn destroy(
            &self,
            req: Request<DestroyRequest>,
        ) -> Result<Response<DestroyResponse>, Status> {
            let r = req.into_inner();
            self.calls
                .lock()
                .expect("lock")
                .push(format!("destroy {} {}", r.r#type, r.id));
            let mut store = self.store.lock().expect("lock");
            match store.remove(&(r.namespace, r.r#type, r.id)) {
                Some(_) => Ok(Response::new(DestroyResponse {})),
                None => Err(Status::not_found("no such resource")),
            }
        }
    }

    /// The server, on its own thread and runtime; stopped on drop.
    pub struct Running {
        pub fake: Fake,
        pub socket: PathBuf,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl Running {
        pub fn start(socket: &Path) -> Self {
            let fake = Fake::default();
            let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let svc = StateServer::new(fake.clone());
            let path = socket.to_path_buf();
            let thread = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let listener = tokio::net::UnixListener::bind(&path).expect("bind");
                    let _ = ready_tx.send(());
                    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
                    let _ = tonic::transport::Server::builder()
                        .add_service(svc)
                        .serve_with_incoming_shutdown(incoming, async {
                            let _ = stop_rx.await;
                        })
                        .await;
                });
            });
            ready_rx.recv().expect("fake machined ready");
            Running {
                fake,
                socket: socket.to_path_buf(),
                stop: Some(stop),
                thread: Some(thread),
            }
        }

        /// yaml_spec of (type, id) in namespace `network`, if present.
        pub fn spec(&self, kind: &str, id: &str) -> Option<String> {
            let store = self.fake.store.lock().expect("lock");
            store
                .get(&("network".into(), kind.into(), id.into()))
                .and_then(|r| r.spec.as_ref().map(|s| s.yaml_spec.clone()))
        }

        pub fn version(&self, kind: &str, id: &str) -> Option<String> {
            let store = self.fake.store.lock().expect("lock");
            store
                .get(&("network".into(), kind.into(), id.into()))
                .and_then(|r| r.metadata.as_ref().map(|m| m.version.clone()))
        }
    }

    impl Drop for Running {
        fn drop(&mut self) {
            if let Some(s) = self.stop.take() {
                let _ = s.send(());
            }
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

#[test]
fn cosi_publisher_creates_updates_destroys() {
    use talos::net::publish::{CosiPublisher, Publisher as _};
    use talos::net::status;
    use talos::resources::specs::{HostnameStatusSpec, ResolverStatusSpec};
    use talos::resources::{Resource, ResourceSpec as _};

    let dir = tempfile::tempdir().expect("tempdir");
    let server = fake_cosi::Running::start(&dir.path().join("machine.sock"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut p = CosiPublisher::new(server.socket.clone(), "network.DHCPController");
        let resolvers = |ips: &[Ipv4Addr]| status::resolver_status(ips);
        let host: Resource = status::hostname_status("node1");
        p.sync(&[resolvers(&[Ipv4Addr::new(1, 1, 1, 1)]), host.clone()])
            .await
            .expect("first sync");
        assert_eq!(
            server
                .version(ResolverStatusSpec::TYPE, "resolvers")
                .as_deref(),
            Some("1")
        );
        // Unchanged: no calls. Changed: an update with the current version.
        p.sync(&[resolvers(&[Ipv4Addr::new(1, 1, 1, 1)]), host.clone()])
            .await
            .expect("same again");
        p.sync(&[resolvers(&[Ipv4Addr::new(10, 0, 0, 53)]), host.clone()])
            .await
            .expect("changed");
        let yaml = server
            .spec(ResolverStatusSpec::TYPE, "resolvers")
            .expect("resolvers published");
        assert!(yaml.contains("10.0.0.53"), "{yaml}");
        assert_eq!(
            server
                .version(ResolverStatusSpec::TYPE, "resolvers")
                .as_deref(),
            Some("2")
        );
        // Gone: destroyed.
        p.sync(std::slice::from_ref(&host)).await.expect("removal");
        assert!(server.spec(ResolverStatusSpec::TYPE, "resolvers").is_none());
        assert!(server.spec(HostnameStatusSpec::TYPE, "hostname").is_some());
    });
    let calls = server.fake.calls.lock().expect("lock").clone();
    assert_eq!(
        calls,
        vec![
            "create ResolverStatuses.net.talos.dev resolvers",
            "create HostnameStatuses.net.talos.dev hostname",
            "update ResolverStatuses.net.talos.dev resolvers",
            "destroy ResolverStatuses.net.talos.dev resolvers",
        ]
    );
}

fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool, log: &Path) {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "timed out waiting for {what}; networkd log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Two namespaces joined by a veth pair, with the DHCP server double in the server one.
/// Field order is drop order: the server thread stops before the namespaces go.
struct Fixture {
    server: Server,
    c: Netns,
    _s: Netns,
    veth_c: String,
    server_ip: Ipv4Addr,
    offer: Ipv4Addr,
    dns: Ipv4Addr,
}

fn fixture(tag: char, subnet_base: u32, hostname: Option<&str>) -> Fixture {
    let id = std::process::id() % 100_000;
    let sub = u8::try_from(id % 100 + subnet_base).expect("subnet octet");
    let (ns_s, ns_c) = (format!("tnd{tag}-s-{id}"), format!("tnd{tag}-c-{id}"));
    let (veth_s, veth_c) = (format!("tnd{tag}s{id}"), format!("tnd{tag}c{id}"));
    let server_ip = Ipv4Addr::new(10, 213, sub, 1);
    let offer = Ipv4Addr::new(10, 213, sub, 50);
    let dns = Ipv4Addr::new(10, 213, sub, 53);

    let s = Netns::new(ns_s);
    let c = Netns::new(ns_c);
    sh(&[
        "ip", "link", "add", &veth_s, "netns", &s.0, "type", "veth", "peer", "name", &veth_c,
        "netns", &c.0,
    ])
    .expect("veth pair");
    let cidr = format!("{server_ip}/24");
    sh(&["ip", "-n", &s.0, "addr", "add", &cidr, "dev", &veth_s]).expect("server address");
    sh(&["ip", "-n", &s.0, "link", "set", &veth_s, "up"]).expect("server link up");
    sh(&["ip", "-n", &s.0, "link", "set", "lo", "up"]).expect("server lo up");

    let server = start_server(ServerConfig {
        netns: s.0.clone(),
        link: veth_s,
        server: server_ip,
        offer,
        dns,
        lease_secs: 8,
        hostname: hostname.map(str::to_string),
    });
    Fixture {
        server,
        c,
        _s: s,
        veth_c,
        server_ip,
        offer,
        dns,
    }
}

#[test]
fn networkd_dhcp_in_namespaces() {
    if !is_root() {
        eprintln!("SKIPPED (needs root): networkd_dhcp_in_namespaces");
        return;
    }
    let fx = fixture('a', 20, None);
    let Fixture {
        server,
        c,
        veth_c,
        server_ip,
        offer,
        dns,
        ..
    } = &fx;
    let (server_ip, offer, dns) = (*server_ip, *offer, *dns);
    let ns_c = c.0.clone();

    let dir = tempfile::tempdir().expect("tempdir");
    let machined = fake_cosi::Running::start(&dir.path().join("machine.sock"));
    let resolv = dir.path().join("resolv.conf");
    let log: PathBuf = dir.path().join("networkd.log");

    // A link that does not exist is a usage error, reported before anything is changed.
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &c.0,
            env!("CARGO_BIN_EXE_talos"),
            "networkd",
        ])
        .args(["--interface", "nosuch0", "--no-publish", "--resolv-conf"])
        .arg(&resolv)
        .output()
        .expect("run networkd");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--interface nosuch0: no such link"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!resolv.exists(), "resolv.conf written on a usage error");

    let child = Command::new("ip")
        .args(["netns", "exec", &c.0, "unshare", "--uts"])
        .arg(env!("CARGO_BIN_EXE_talos"))
        .args(["networkd", "--interface", veth_c, "--machined-socket"])
        .arg(&machined.socket)
        .args(["--hostname", "testnode", "--resolv-conf"])
        .arg(&resolv)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&log).expect("log file"))
        .spawn()
        .expect("start networkd");
    let mut networkd = Proc(Some(child));

    let cidr = format!("{offer}/24");
    wait_for(
        "the leased address",
        Duration::from_secs(30),
        || {
            sh(&["ip", "-n", &c.0, "-4", "addr", "show", "dev", veth_c])
                .map(|o| o.contains(&cidr))
                .unwrap_or(false)
        },
        &log,
    );
    wait_for(
        "the default route",
        Duration::from_secs(10),
        || {
            sh(&["ip", "-n", &c.0, "-4", "route", "show", "default"])
                .map(|o| o.contains(&format!("via {server_ip}")) && o.contains("metric 1024"))
                .unwrap_or(false)
        },
        &log,
    );
    wait_for(
        "resolv.conf",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&resolv)
                .map(|t| {
                    t.contains(&format!("nameserver {dns}")) && t.contains("search test.internal")
                })
                .unwrap_or(false)
        },
        &log,
    );
    let static_route =
        sh(&["ip", "-n", &c.0, "-4", "route", "show", "10.214.0.0/16"]).expect("route");
    assert!(
        static_route.contains(&format!("via {server_ip}")) && static_route.contains("metric 1024"),
        "option 121 route missing: {static_route:?}"
    );
    let link = sh(&["ip", "-n", &c.0, "link", "show", veth_c]).expect("link");
    assert!(
        link.contains("mtu 1400"),
        "MTU from option 26 not applied: {link}"
    );
    let lo = sh(&["ip", "-n", &c.0, "link", "show", "lo"]).expect("lo");
    assert!(lo.contains("UP"), "loopback not up: {lo}");
    let addr = sh(&["ip", "-n", &c.0, "-4", "addr", "show", "dev", veth_c]).expect("addr");
    assert!(
        addr.contains("valid_lft") && !addr.contains("valid_lft forever"),
        "address without lifetime: {addr}"
    );

    // Lease 8 s: T1 at 4 s, so a unicast renewal comes soon and is applied.
    wait_for(
        "a lease renewal",
        Duration::from_secs(20),
        || {
            server.counters.renewals.load(Ordering::SeqCst) >= 1
                && std::fs::read_to_string(&log)
                    .map(|l| l.contains("(renewed)"))
                    .unwrap_or(false)
        },
        &log,
    );
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains(&format!("DHCP ACK on {veth_c}: {offer}/24 gw {server_ip}")),
        "{text}"
    );
    assert!(server.counters.discovers.load(Ordering::SeqCst) >= 1);

    // The statuses reach machined over the COSI State API.
    wait_for(
        "published statuses",
        Duration::from_secs(20),
        || {
            let addr = machined.spec(
                "AddressStatuses.net.talos.dev",
                &format!("{veth_c}/{offer}/24"),
            );
            let route = machined.spec(
                "RouteStatuses.net.talos.dev",
                &format!("inet4/{server_ip}//1024"),
            );
            let link = machined.spec("LinkStatuses.net.talos.dev", veth_c);
            let res = machined.spec("ResolverStatuses.net.talos.dev", "resolvers");
            let host = machined.spec("HostnameStatuses.net.talos.dev", "hostname");
            addr.is_some_and(|y| y.contains(&format!("linkName: {veth_c}")))
                && route.is_some_and(|y| y.contains("protocol: boot"))
                && link.is_some_and(|y| y.contains("kind: veth"))
                && res.is_some_and(|y| y.contains(&dns.to_string()))
                && host.is_some_and(|y| y.contains("hostname: testnode"))
        },
        &log,
    );

    // NAK on renewal: the lease is dropped and acquired again from scratch.
    server.nak.store(true, Ordering::SeqCst);
    let fresh_ack = format!("DHCP ACK on {veth_c}: {offer}/24 gw {server_ip}\n");
    wait_for(
        "a NAK, then a new lease",
        Duration::from_secs(30),
        || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            server.counters.naks.load(Ordering::SeqCst) >= 1
                && text.contains("lost: NAK")
                && text.matches(&fresh_ack).count() >= 2
                && sh(&["ip", "-n", &c.0, "-4", "addr", "show", "dev", veth_c])
                    .map(|o| o.contains(&cidr))
                    .unwrap_or(false)
        },
        &log,
    );
    server.nak.store(false, Ordering::SeqCst);
    assert!(server.counters.discovers.load(Ordering::SeqCst) >= 2);

    // SIGTERM: a clean exit; the address stays.
    let status = networkd
        .terminate(Duration::from_secs(10))
        .expect("networkd exits on SIGTERM");
    assert!(
        status.success(),
        "networkd exit status {status}; log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let addr = sh(&["ip", "-n", &c.0, "-4", "addr", "show", "dev", veth_c]).expect("addr");
    assert!(addr.contains(&cidr), "address removed on exit: {addr}");

    eprintln!(
        "networkd log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    drop(fx);
    assert!(!sh(&["ip", "netns", "list"])
        .expect("netns list")
        .contains(&ns_c));
}

#[test]
fn networkd_takes_the_hostname_from_the_lease() {
    if !is_root() {
        eprintln!("SKIPPED (needs root): networkd_takes_the_hostname_from_the_lease");
        return;
    }
    let fx = fixture('b', 130, Some("leasehost"));
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("machine.sock");
    let log: PathBuf = dir.path().join("networkd.log");
    // unshare --uts: the host name networkd sets stays in its own UTS namespace.
    // machined is not up yet: publishing fails, is logged, and is retried.
    let child = Command::new("ip")
        .args(["netns", "exec", &fx.c.0, "unshare", "--uts"])
        .arg(env!("CARGO_BIN_EXE_talos"))
        .args(["networkd", "--interface", &fx.veth_c, "--machined-socket"])
        .arg(&socket)
        .arg("--resolv-conf")
        .arg(dir.path().join("resolv.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&log).expect("log file"))
        .spawn()
        .expect("start networkd");
    let pid = child.id().to_string();
    let mut networkd = Proc(Some(child));
    wait_for(
        "a logged publishing failure",
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(&log)
                .map(|l| l.contains("publishing network status") && l.contains("will retry"))
                .unwrap_or(false)
        },
        &log,
    );
    let machined = fake_cosi::Running::start(&socket);
    wait_for(
        "the lease's host name",
        Duration::from_secs(30),
        || {
            let published = machined
                .spec("HostnameStatuses.net.talos.dev", "hostname")
                .is_some_and(|y| {
                    y.contains("hostname: leasehost") && y.contains("domainname: test.internal")
                });
            let kernel = sh(&["nsenter", "-t", &pid, "-u", "hostname"]).unwrap_or_default();
            published && kernel.trim() == "leasehost"
        },
        &log,
    );
    // The server goes silent: renewing (unicast) and rebinding (broadcast) go unanswered, the
    // lease expires after 8 s and its address and routes go; when the server is back, a new
    // lease follows.
    fx.server.silent.store(true, Ordering::SeqCst);
    let cidr = format!("{}/24", fx.offer);
    wait_for(
        "the lease to expire",
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(&log)
                .map(|l| l.contains("lost: expired"))
                .unwrap_or(false)
                && !sh(&["ip", "-n", &fx.c.0, "-4", "addr", "show", "dev", &fx.veth_c])
                    .map(|o| o.contains(&cidr))
                    .unwrap_or(true)
        },
        &log,
    );
    assert!(
        fx.server.counters.ignored.load(Ordering::SeqCst) >= 2,
        "no renew and rebind attempts seen"
    );
    let routes = sh(&["ip", "-n", &fx.c.0, "-4", "route", "show", "default"]).expect("routes");
    assert!(
        routes.trim().is_empty(),
        "default route left after expiry: {routes}"
    );
    fx.server.silent.store(false, Ordering::SeqCst);
    wait_for(
        "a new lease",
        Duration::from_secs(40),
        || {
            sh(&["ip", "-n", &fx.c.0, "-4", "addr", "show", "dev", &fx.veth_c])
                .map(|o| o.contains(&cidr))
                .unwrap_or(false)
        },
        &log,
    );

    let own = nix::unistd::gethostname().expect("hostname");
    assert_ne!(
        own.to_string_lossy(),
        "leasehost",
        "host name leaked to the test's namespace"
    );
    let status = networkd
        .terminate(Duration::from_secs(10))
        .expect("exit on SIGTERM");
    assert!(status.success(), "exit status {status}");
}
