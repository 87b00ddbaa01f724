//! apid's network side: handshaken TLS connections (client certificates required, from
//! [`crate::auth::serve`]) served over HTTP/2 by the proxy.

use std::convert::Infallible;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_stream::StreamExt as _;

use super::server::{PeerInfo, Proxy};
use crate::auth::serve::{incoming, ServerTls, TlsConn};
use crate::auth::tls::peer_cert_organizations;

/// Accepts connections on `listener` until `shutdown` turns true, then stops accepting, asks
/// every connection to finish (HTTP/2 GOAWAY) and waits for them. The caller bounds that wait.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerTls>,
    proxy: Arc<Proxy>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut accepted = Box::pin(incoming(listener, move || tls.current()));
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => break,
            next = accepted.next() => match next {
                Some(Ok(conn)) => {
                    conns.spawn(connection(conn, Arc::clone(&proxy), shutdown.clone()));
                }
                Some(Err(e)) => tracing::warn!("accepting a connection: {e}"),
                None => break,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    // Dropping the stream stops the accept loop and closes the listener.
    drop(accepted);
    while conns.join_next().await.is_some() {}
}

async fn connection(conn: TlsConn, proxy: Arc<Proxy>, mut shutdown: watch::Receiver<bool>) {
    let info = conn.info().clone();
    let addr = info.remote_addr;
    let organizations = info
        .peer_certificate
        .as_deref()
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
    let conn = builder.serve_connection(TokioIo::new(conn), service);
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
