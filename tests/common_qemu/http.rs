//! A tiny HTTP/1.1 server for the boot tests: the node downloads its `talos.config=` URL from it
//! (the guest reaches the host's loopback as `10.0.2.2` under QEMU user networking).
//!
//! It binds 127.0.0.1 only, answers requests one at a time on one thread per server, serves fixed bodies at fixed paths (`404` for anything else), closes each
//! connection after the answer and records every request line. Routes can be added while it runs
//! (a URL that answers 404 first, then the config), and it can be started on a port chosen
//! earlier (a URL that is unreachable first). It stops when dropped.
//!
//! ```ignore
//! let server = HttpServer::serving("/config.yaml", config)?;
//! let url = format!("http://10.0.2.2:{}/config.yaml", server.port());
//! ```

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One request the server saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The request target (path and query).
    pub path: String,
    /// The status the server answered.
    pub status: u16,
    /// Where it came from (QEMU's user networking: 127.0.0.1).
    pub peer: SocketAddr,
}

#[derive(Default)]
struct Shared {
    routes: Mutex<BTreeMap<String, Vec<u8>>>,
    requests: Mutex<Vec<Request>>,
    stop: AtomicBool,
}

/// A running server; stopped (and its thread joined) on drop.
pub struct HttpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// A server on a free 127.0.0.1 port with no routes (everything answers 404).
    pub fn start() -> Result<HttpServer, String> {
        Self::start_on(0)
    }

    /// A server on 127.0.0.1:`port` (0: any free port) with no routes.
    pub fn start_on(port: u16) -> Result<HttpServer, String> {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .map_err(|e| format!("binding 127.0.0.1:{port}: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("non-blocking listener: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("listener address: {e}"))?;
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("http-{}", addr.port()))
                .spawn(move || serve(listener, &shared))
                .map_err(|e| format!("server thread: {e}"))?
        };
        Ok(HttpServer {
            addr,
            shared,
            thread: Some(thread),
        })
    }

    /// A server on a free port serving `body` at `path`.
    pub fn serving(path: &str, body: impl Into<Vec<u8>>) -> Result<HttpServer, String> {
        let s = Self::start()?;
        s.route(path, body);
        Ok(s)
    }

    /// Serves `body` at `path` from now on (replacing an earlier body).
    pub fn route(&self, path: &str, body: impl Into<Vec<u8>>) {
        lock(&self.shared.routes).insert(path.to_string(), body.into());
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The URL of `path` as a QEMU guest with user networking sees it.
    pub fn guest_url(&self, path: &str) -> String {
        format!("http://10.0.2.2:{}{path}", self.port())
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.requests).clone()
    }

    /// How many requests asked for `path` (any status).
    pub fn hits(&self, path: &str) -> usize {
        lock(&self.shared.requests)
            .iter()
            .filter(|r| r.path == path)
            .count()
    }

    /// Waits until `path` was requested at least `n` times.
    pub fn wait_hits(&self, path: &str, n: usize, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let hits = self.hits(path);
            if hits >= n {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{path} requested {hits} times after {timeout:?}, expected {n}: {:?}",
                    self.requests()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Locks a mutex even if a panicking test thread poisoned it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn serve(listener: TcpListener, shared: &Shared) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => answer(stream, peer, shared),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Reads one request (headers only), records it, answers it and closes the connection.
fn answer(stream: TcpStream, peer: SocketAddr, shared: &Shared) {
    let _ = try_answer(stream, peer, shared);
}

fn try_answer(mut stream: TcpStream, peer: SocketAddr, shared: &Shared) -> Option<()> {
    // The accepted socket may inherit non-blocking mode on some systems.
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .ok()?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let line = text.lines().next().unwrap_or_default();
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let body = if method == "GET" || method == "HEAD" {
        lock(&shared.routes).get(&path).cloned()
    } else {
        None
    };
    let (status, reason, body) = match body {
        Some(b) => (200, "OK", b),
        None => (404, "Not Found", b"404 page not found\n".to_vec()),
    };
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        response.extend_from_slice(&body);
    }
    // Recorded before the answer, so a client that has its answer finds its request listed.
    lock(&shared.requests).push(Request {
        method,
        path,
        status,
        peer,
    });
    let _ = stream.write_all(&response);
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(port: u16, path: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 10.0.2.2:{port}\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out
    }

    #[test]
    fn serves_its_route_404_otherwise_and_records_requests() {
        let server = HttpServer::serving("/config.yaml", "version: v1alpha1\n").expect("start");
        let ok = get(server.port(), "/config.yaml");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Length: 18\r\n"), "{ok}");
        assert!(ok.ends_with("\r\n\r\nversion: v1alpha1\n"), "{ok}");
        let missing = get(server.port(), "/other");
        assert!(
            missing.starts_with("HTTP/1.1 404 Not Found\r\n"),
            "{missing}"
        );
        let reqs = server.requests();
        assert_eq!(reqs.len(), 2, "{reqs:?}");
        assert_eq!(
            (reqs[0].path.as_str(), reqs[0].status),
            ("/config.yaml", 200)
        );
        assert_eq!((reqs[1].path.as_str(), reqs[1].status), ("/other", 404));
        assert_eq!(server.hits("/config.yaml"), 1);
        server
            .wait_hits("/config.yaml", 1, Duration::from_secs(1))
            .expect("hits");
        assert!(server
            .wait_hits("/config.yaml", 2, Duration::from_millis(100))
            .is_err());
        assert_eq!(
            server.guest_url("/config.yaml"),
            format!("http://10.0.2.2:{}/config.yaml", server.port())
        );
    }

    #[test]
    fn routes_added_later_and_a_port_chosen_earlier() {
        let port = super::super::free_port();
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
        let server = HttpServer::start_on(port).expect("start");
        assert_eq!(server.port(), port);
        assert!(get(port, "/c").starts_with("HTTP/1.1 404 "));
        server.route("/c", "body");
        assert!(get(port, "/c").ends_with("\r\n\r\nbody"));
        drop(server);
        // Stopped: nothing listens any more.
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}
