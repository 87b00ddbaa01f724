//! apid's network side: TLS connections (client certificates required) served over HTTP/2.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::server::{PeerInfo, Proxy};
use crate::auth::tls::peer_cert_organizations;

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server TLS configuration in use; replaced when the certificates change. Each new
/// connection takes the configuration current at its accept.
#[derive(Debug)]
pub struct ServerTls(RwLock<Arc<ServerConfig>>);

impl ServerTls {
    /// Starts with `config`.
    pub fn new(config: Arc<ServerConfig>) -> Self {
        ServerTls(RwLock::new(config))
    }

    /// The current configuration.
    pub fn current(&self) -> Arc<ServerConfig> {
        match self.0.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Switches to `config` for new connections.
    pub fn set(&self, config: Arc<ServerConfig>) {
        match self.0.write() {
            Ok(mut c) => *c = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
    }
}

/// Accepts connections on `listener` until `shutdown` turns true, then stops accepting, asks
/// every connection to finish (HTTP/2 GOAWAY) and waits for them. The caller bounds that wait.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerTls>,
    proxy: Arc<Proxy>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, addr)) => {
                    conns.spawn(connection(
                        tcp,
                        addr,
                        tls.current(),
                        Arc::clone(&proxy),
                        shutdown.clone(),
                    ));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

async fn connection(
    tcp: TcpStream,
    addr: SocketAddr,
    tls: Arc<ServerConfig>,
    proxy: Arc<Proxy>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let stream =
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsAcceptor::from(tls).accept(tcp)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::info!(peer = %addr, "TLS handshake failed: {e}");
                return;
            }
            Err(_) => {
                tracing::info!(peer = %addr, "TLS handshake timed out");
                return;
            }
        };
    let organizations = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|leaf| peer_cert_organizations(leaf).ok())
        .unwrap_or_default();
    let peer = Arc::new(PeerInfo {
        organizations,
        addr: Some(addr),
    });
    let service = hyper::service::service_fn(move |req| {
        let proxy = Arc::clone(&proxy);
        let peer = Arc::clone(&peer);
        async move { Ok::<_, Infallible>(proxy.handle(peer, req).await) }
    });
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .initial_stream_window_size(65535 * 32)
        .initial_connection_window_size(65535 * 16)
        .max_send_buf_size(1 << 20);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(peer = %addr, "connection ended: {e}");
            }
        }
        _ = stopped(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Resolves when `shutdown` is true (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
