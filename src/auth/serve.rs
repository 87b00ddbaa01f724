//! The TLS accept loop of every TCP server: apid on :50000 (mutual TLS, served by the proxy's
//! HTTP/2 connections), trustd on :50001 and the maintenance API on :50000 (tonic servers).
//!
//! [`incoming`] accepts TCP connections, runs each TLS handshake in its own task with a time
//! limit (a slow or hostile client cannot stall the accept loop) and yields the finished
//! [`TlsConn`]s as a stream: tonic takes it in `Server::serve_with_incoming*`, apid's proxy
//! reads it itself. The rustls configuration is asked for each connection, so a server can
//! swap certificates at run time without restarting ([`ServerTls`] holds a swappable one).
//!
//! Every connection carries a [`TlsConnectInfo`] (in each tonic request's extensions): the
//! peer's address and, with mutual TLS, its verified leaf certificate, from which the caller's
//! roles are read.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::Stream;
use tonic::transport::server::Connected;

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshaken connections waiting for the server to pick them up.
const QUEUE: usize = 64;

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

/// What a handler can learn about the connection a request came in on.
#[derive(Debug, Clone)]
pub struct TlsConnectInfo {
    /// The client's address.
    pub remote_addr: SocketAddr,
    /// The server's own address of the connection.
    pub local_addr: Option<SocketAddr>,
    /// DER of the client's verified leaf certificate (mutual TLS only).
    pub peer_certificate: Option<Vec<u8>>,
}

/// One accepted, handshaken TLS connection.
pub struct TlsConn {
    stream: tokio_rustls::server::TlsStream<TcpStream>,
    info: TlsConnectInfo,
}

impl TlsConn {
    /// Connection details (also in every request's extensions).
    pub fn info(&self) -> &TlsConnectInfo {
        &self.info
    }
}

impl Connected for TlsConn {
    type ConnectInfo = TlsConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The stream of handshaken connections on `listener`. `config` is called once per
/// connection, so returning a new configuration switches certificates for new clients.
/// Failed and timed-out handshakes are logged with the peer's address and dropped; accept
/// errors (e.g. out of file descriptors) are logged and retried after a short pause. Dropping
/// the stream stops the loop and closes the listener. Must be called inside a tokio runtime
/// (it spawns the accept loop).
pub fn incoming<F>(
    listener: TcpListener,
    config: F,
) -> impl Stream<Item = Result<TlsConn, io::Error>> + Send + 'static
where
    F: Fn() -> Arc<ServerConfig> + Send + Sync + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<TlsConn, io::Error>>(QUEUE);
    tokio::spawn(async move {
        loop {
            let (tcp, remote_addr) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!("accepting a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = tx.closed() => return,
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(config());
            let tx = tx.clone();
            tokio::spawn(async move {
                let local_addr = tcp.local_addr().ok();
                let _ = tcp.set_nodelay(true);
                let stream =
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::info!(peer = %remote_addr, "TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::info!(peer = %remote_addr, "TLS handshake timed out");
                            return;
                        }
                    };
                let peer_certificate = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|certs| certs.first())
                    .map(|c| c.as_ref().to_vec());
                let conn = TlsConn {
                    stream,
                    info: TlsConnectInfo {
                        remote_addr,
                        local_addr,
                        peer_certificate,
                    },
                };
                let _ = tx.send(Ok(conn)).await;
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio_stream::StreamExt as _;

    fn server_config() -> Arc<ServerConfig> {
        let certs = crate::auth::tls::generate_self_signed_maintenance(
            &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
            &[],
        )
        .expect("certificate");
        Arc::new(
            crate::auth::tls::server_tls_only(certs.cert_pem.as_bytes(), certs.key_pem.as_bytes())
                .expect("server config"),
        )
    }

    async fn tls_client(addr: SocketAddr) -> tokio_rustls::client::TlsStream<TcpStream> {
        let config = crate::auth::tls::client_insecure(None).expect("client config");
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
        connector.connect(name, tcp).await.expect("handshake")
    }

    #[tokio::test]
    async fn a_stalled_handshake_does_not_block_the_next_client() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let config = server_config();
        let mut conns = std::pin::pin!(incoming(listener, move || Arc::clone(&config)));

        // Connects and never says hello.
        let _stalled = TcpStream::connect(addr).await.expect("connect");
        let mut client = tls_client(addr).await;
        let mut conn = tokio::time::timeout(Duration::from_secs(5), conns.next())
            .await
            .expect("a connection in time")
            .expect("stream open")
            .expect("handshaken");
        let info = conn.info().clone();
        assert_eq!(info.local_addr, Some(addr));
        assert_eq!(info.remote_addr.ip(), addr.ip());
        assert_eq!(
            info.peer_certificate, None,
            "no client certificate was sent"
        );
        assert_eq!(conn.connect_info().remote_addr, info.remote_addr);

        // Bytes flow both ways through the connection.
        client.write_all(b"ping").await.expect("write");
        let mut buf = [0u8; 4];
        conn.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"ping");
    }

    #[tokio::test]
    async fn dropping_the_stream_closes_the_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let config = server_config();
        drop(incoming(listener, move || Arc::clone(&config)));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(addr).await.is_ok() {
            assert!(std::time::Instant::now() < deadline, "still accepting");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[test]
    fn server_tls_switches_for_new_connections() {
        let (a, b) = (server_config(), server_config());
        let tls = ServerTls::new(Arc::clone(&a));
        assert!(Arc::ptr_eq(&tls.current(), &a));
        tls.set(Arc::clone(&b));
        assert!(Arc::ptr_eq(&tls.current(), &b));
    }
}
