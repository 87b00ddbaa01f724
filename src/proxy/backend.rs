//! Connections to the places a call can go: this node's machined over its unix socket, and other
//! nodes' apid over mutual TLS.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::Status;

use super::route::split_target;
use crate::constants::APID_PORT;

/// How long connecting to another node (TCP and TLS handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// The backends of one apid.
pub struct Backends {
    local: Channel,
    client_tls: RwLock<Option<Arc<ClientConfig>>>,
    remote: Mutex<HashMap<String, Channel>>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends")
            .field("forwarding", &self.can_forward())
            .finish_non_exhaustive()
    }
}

fn io_error(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// A channel to machined at `socket` (connected on first use, reconnected when lost).
pub fn local_channel(socket: &Path) -> Channel {
    let socket: PathBuf = socket.to_path_buf();
    Endpoint::from_static("http://machined").connect_with_connector_lazy(tower::service_fn(
        move |_: Uri| {
            let socket = socket.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(socket).await?)) }
        },
    ))
}

/// A channel to the apid at `target` (`host` → port 50000, or `host:port`), verified and
/// authenticated with `tls`.
pub fn remote_channel(target: &str, tls: Arc<ClientConfig>) -> Result<Channel, Status> {
    let (host, port) = split_target(target)
        .ok_or_else(|| Status::internal(format!("invalid target {target:?}")))?;
    let port = port.unwrap_or(APID_PORT);
    let host = host.to_owned();
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let server_name = ServerName::try_from(host.clone())
        .map_err(|_| Status::internal(format!("invalid target {target:?}")))?
        .to_owned();
    let endpoint = Endpoint::from_shared(format!("http://{authority}"))
        .map_err(|e| Status::internal(format!("invalid target {target:?}: {e}")))?
        .initial_stream_window_size(65535 * 32)
        .initial_connection_window_size(65535 * 16);
    let connector = TlsConnector::from(tls);
    Ok(
        endpoint.connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
            let host = host.clone();
            let server_name = server_name.clone();
            let connector = connector.clone();
            async move {
                let connect = async {
                    let tcp = TcpStream::connect((host.as_str(), port)).await?;
                    tcp.set_nodelay(true)?;
                    let tls = connector.connect(server_name, tcp).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(tls))
                };
                tokio::time::timeout(CONNECT_TIMEOUT, connect)
                    .await
                    .map_err(|_| io_error("connection timed out"))?
            }
        })),
    )
}

impl Backends {
    /// Backends for an apid whose machined listens on `machined_socket`; `client_tls` is the
    /// forwarding identity (`None` on workers: no forwarding).
    pub fn new(machined_socket: &Path, client_tls: Option<Arc<ClientConfig>>) -> Self {
        Backends {
            local: local_channel(machined_socket),
            client_tls: RwLock::new(client_tls),
            remote: Mutex::new(HashMap::new()),
        }
    }

    /// The channel to machined.
    pub fn local(&self) -> Channel {
        self.local.clone()
    }

    /// Whether this apid may forward calls to other nodes (it has a client certificate).
    pub fn can_forward(&self) -> bool {
        self.client_tls.read().map(|t| t.is_some()).unwrap_or(false)
    }

    /// The (cached) channel to `target`'s apid.
    pub fn remote(&self, target: &str) -> Result<Channel, Status> {
        let tls = self
            .client_tls
            .read()
            .map_err(|_| Status::internal("client TLS state poisoned"))?
            .clone()
            .ok_or_else(|| Status::permission_denied("no request forwarding"))?;
        let mut cache = self
            .remote
            .lock()
            .map_err(|_| Status::internal("backend cache poisoned"))?;
        if let Some(ch) = cache.get(target) {
            return Ok(ch.clone());
        }
        let ch = remote_channel(target, tls)?;
        cache.insert(target.to_owned(), ch.clone());
        Ok(ch)
    }

    /// Switches to a new forwarding identity (or none): cached connections are dropped, so the
    /// next call to each node connects with the new certificate. Calls in flight finish on
    /// their old connections.
    pub fn set_client_tls(&self, tls: Option<Arc<ClientConfig>>) {
        if let Ok(mut t) = self.client_tls.write() {
            *t = tls;
        }
        if let Ok(mut cache) = self.remote.lock() {
            cache.clear();
        }
    }
}
