//! TLS connections for tonic servers on TCP (trustd on :50001, the maintenance API on :50000).
//!
//! [`incoming`] accepts TCP connections, runs each TLS handshake in its own task (a slow or
//! hostile client cannot stall the accept loop) and yields the finished [`TlsConn`]s as a stream
//! for `tonic::transport::Server::serve_with_incoming*`. The rustls configuration is asked for
//! each connection, so a server can swap certificates at run time without restarting.
//!
//! Every request served over a [`TlsConn`] carries a [`TlsConnectInfo`] in its extensions: the
//! peer's address and, with mutual TLS, its verified leaf certificate.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
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
/// Failed handshakes are logged (debug) and dropped; accept errors (e.g. out of file
/// descriptors) are logged and retried after a short pause. The stream ends when the
/// receiving side is dropped. Must be called inside a tokio runtime (it spawns the accept loop).
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
                            tracing::debug!(peer = %remote_addr, "TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(peer = %remote_addr, "TLS handshake timed out");
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
