//! The proxy: authorizes a call, routes it, and relays or merges the replies.
//!
//! Every call is handled as a bidirectional stream of opaque messages ([`BytesCodec`]), whatever
//! the method: the gRPC wire format is the same for unary and streaming calls. Only when several
//! nodes answer does the method's shape ([`methods::kind`]) matter:
//!
//! - unary: each node's `XResponse` gets its elements tagged with the node's hostname, and the
//!   replies are concatenated into one `XResponse` (a failed node contributes one error element);
//! - server-streaming: the nodes' streams are interleaved, each message tagged; a failed node
//!   sends one message carrying the error.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::uri::PathAndQuery;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_stream::Stream;
use tonic::codegen::BoxStream;
use tonic::metadata::MetadataMap;
use tonic::server::StreamingService;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status, Streaming};

use super::backend::Backends;
use super::codec::BytesCodec;
use super::methods;
use super::route::{self, LocalAddresses, Route};
use super::splice;
use crate::auth::role::{RoleSet, METADATA_KEY as ROLE_KEY};
use crate::auth::rules::{self, InjectMode};

/// Talos's limit on one gRPC message, both ways: 32 MiB.
pub const MAX_MESSAGE_SIZE: usize = 32 << 20;

/// Default deadline for one node's answer in a one-to-many call.
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_secs(30);

/// Messages buffered per stream between the proxy's two sides.
const DEPTH: usize = 16;

/// Settings of the proxy.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Roles come from client certificates (true) or every caller has all roles (false,
    /// `machine.features.rbac: false`).
    pub rbac: bool,
    /// One-to-many: how long each node may take to answer a unary call, or to start answering
    /// a streamed one. A node that misses it contributes a `DeadlineExceeded` error entry.
    pub node_timeout: Duration,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            rbac: true,
            node_timeout: DEFAULT_NODE_TIMEOUT,
        }
    }
}

/// What the TLS layer learned about a connection.
#[derive(Debug, Clone, Default)]
pub struct PeerInfo {
    /// Organizations of the verified client certificate.
    pub organizations: Vec<String>,
    /// Remote address.
    pub addr: Option<SocketAddr>,
}

/// The apid proxy.
#[derive(Debug)]
pub struct Proxy {
    backends: Backends,
    local: RwLock<Arc<LocalAddresses>>,
    config: ProxyConfig,
}

impl Proxy {
    /// A proxy over `backends`, where `local` names this node.
    pub fn new(backends: Backends, local: LocalAddresses, config: ProxyConfig) -> Self {
        Proxy {
            backends,
            local: RwLock::new(Arc::new(local)),
            config,
        }
    }

    /// The backends (to switch the forwarding identity when the PKI changes).
    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    /// Replaces the set of addresses that mean this node.
    pub fn set_local_addresses(&self, local: LocalAddresses) {
        if let Ok(mut l) = self.local.write() {
            *l = Arc::new(local);
        }
    }

    fn local_addresses(&self) -> Arc<LocalAddresses> {
        self.local
            .read()
            .map(|l| Arc::clone(&l))
            .unwrap_or_default()
    }

    /// Serves one HTTP/2 request (a gRPC call to any method) from a peer.
    pub async fn handle(
        self: Arc<Self>,
        peer: Arc<PeerInfo>,
        req: http::Request<hyper::body::Incoming>,
    ) -> http::Response<tonic::body::Body> {
        let call = Call {
            proxy: self,
            peer,
            path: req.uri().path().to_owned(),
            authority: req.uri().authority().map(|a| a.as_str().to_owned()),
        };
        let mut grpc = tonic::server::Grpc::new(BytesCodec)
            .apply_max_message_size_config(Some(MAX_MESSAGE_SIZE), Some(MAX_MESSAGE_SIZE));
        grpc.streaming(call, req).await
    }

    /// The roles of a call, and whether it may go on.
    fn authorize(&self, peer: &PeerInfo, path: &str, md: &MetadataMap) -> Result<RoleSet, Status> {
        let metadata_roles: Vec<String> = md
            .get_all(ROLE_KEY)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect();
        let mode = if self.config.rbac {
            InjectMode::Enabled
        } else {
            InjectMode::Disabled
        };
        let roles = rules::inject_roles(
            mode,
            &rules::Peer {
                cert_organizations: &peer.organizations,
                metadata_roles: &metadata_roles,
                addr: peer.addr.map(|a| a.ip()),
            },
        );
        rules::allowed(path, &roles).map_err(|denied| {
            tracing::info!(
                method = path,
                peer = ?peer.addr,
                roles = %roles,
                "call refused: {denied}"
            );
            Status::new(Code::from_i32(denied.grpc_code()), denied.to_string())
        })?;
        Ok(roles)
    }
}

/// One call in progress.
struct Call {
    proxy: Arc<Proxy>,
    peer: Arc<PeerInfo>,
    path: String,
    authority: Option<String>,
}

type CallFuture = Pin<Box<dyn Future<Output = Result<Response<BoxStream<Bytes>>, Status>> + Send>>;

impl StreamingService<Bytes> for Call {
    type Response = Bytes;
    type ResponseStream = BoxStream<Bytes>;
    type Future = CallFuture;

    fn call(&mut self, request: Request<Streaming<Bytes>>) -> Self::Future {
        let call = Call {
            proxy: Arc::clone(&self.proxy),
            peer: Arc::clone(&self.peer),
            path: self.path.clone(),
            authority: self.authority.clone(),
        };
        Box::pin(call.run(request))
    }
}

/// Where one target's call goes and with which metadata.
struct Leg {
    hostname: String,
    channel: Channel,
    metadata: MetadataMap,
}

impl Call {
    async fn run(
        self,
        request: Request<Streaming<Bytes>>,
    ) -> Result<Response<BoxStream<Bytes>>, Status> {
        let proxy = &self.proxy;
        let roles = proxy.authorize(&self.peer, &self.path, request.metadata())?;
        let local = proxy.local_addresses();
        let route = route::route(
            &self.path,
            request.metadata(),
            proxy.backends.can_forward(),
            &local,
        )?;
        let path = PathAndQuery::try_from(self.path.as_str()).map_err(|_| {
            Status::invalid_argument(format!("invalid method path {:?}", self.path))
        })?;
        tracing::debug!(method = %self.path, peer = ?self.peer.addr, ?route, "call");
        let (md, _, incoming) = request.into_parts();
        match route {
            Route::Local => {
                let md = route::local_metadata(&md, &roles);
                pass_through(proxy.backends.local(), path, md, incoming).await
            }
            Route::One(target) => {
                let channel = proxy.backends.remote(&target)?;
                let md = route::forward_metadata(&md, &roles, self.authority.as_deref());
                pass_through(channel, path, md, incoming).await
            }
            Route::Many(targets) => {
                let legs: Vec<Result<Leg, (String, Status)>> = targets
                    .into_iter()
                    .map(|target| self.leg(&local, &md, &roles, target))
                    .collect();
                let timeout = proxy.config.node_timeout;
                if methods::kind(&self.path).server_streaming {
                    Ok(many_streaming(legs, path, incoming, timeout))
                } else {
                    many_unary(legs, path, incoming, timeout).await
                }
            }
        }
    }

    fn leg(
        &self,
        local: &LocalAddresses,
        md: &MetadataMap,
        roles: &RoleSet,
        target: String,
    ) -> Result<Leg, (String, Status)> {
        if local.is_local(&target) {
            return Ok(Leg {
                channel: self.proxy.backends.local(),
                metadata: route::local_metadata(md, roles),
                hostname: target,
            });
        }
        match self.proxy.backends.remote(&target) {
            Ok(channel) => Ok(Leg {
                channel,
                metadata: route::forward_metadata(md, roles, self.authority.as_deref()),
                hostname: target,
            }),
            Err(status) => Err((target, status)),
        }
    }
}

/// Headers the proxy never passes on: it sends and accepts uncompressed messages only.
const HOP_HEADERS: [&str; 2] = ["grpc-encoding", "grpc-accept-encoding"];

fn client(channel: Channel) -> tonic::client::Grpc<Channel> {
    tonic::client::Grpc::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE)
}

/// Starts the call on a backend: resolves once the backend has sent its response headers.
async fn start(
    channel: Channel,
    path: PathAndQuery,
    mut md: MetadataMap,
    messages: RequestStream,
) -> Result<Response<Streaming<Bytes>>, Status> {
    for h in HOP_HEADERS {
        md.remove(h);
    }
    let mut request = Request::new(messages);
    *request.metadata_mut() = md;
    let mut grpc = client(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("backend not ready: {e}")))?;
    grpc.streaming(request, path, BytesCodec).await
}

/// The request messages as one backend sees them.
type RequestStream = tokio_stream::wrappers::ReceiverStream<Bytes>;

/// A failure reading the caller's messages (e.g. one over 32 MiB), shared by every leg.
type Abort = watch::Receiver<Option<Status>>;

/// Resolves with the error once the caller's request stream fails; never if it ends normally.
fn aborted(mut abort: Abort) -> Pin<Box<dyn Future<Output = Status> + Send>> {
    Box::pin(async move {
        loop {
            if let Some(status) = abort.borrow_and_update().clone() {
                return status;
            }
            if abort.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    })
}

/// Copies the caller's messages to `n` backends. Reading stops when the caller ends its
/// stream, when every backend has gone, or on a read error, which goes to [`Abort`].
fn fan_in(mut incoming: Streaming<Bytes>, n: usize) -> (Vec<RequestStream>, Abort) {
    let (abort_tx, abort_rx) = watch::channel(None);
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| mpsc::channel::<Bytes>(DEPTH)).unzip();
    tokio::spawn(async move {
        loop {
            let any_open = txs.iter().any(|tx| !tx.is_closed());
            if !any_open {
                return;
            }
            let next = tokio::select! {
                m = incoming.message() => m,
                _ = all_closed(&txs) => return,
            };
            match next {
                Ok(Some(message)) => {
                    for tx in &txs {
                        // A backend that has gone simply stops receiving.
                        let _ = tx.send(message.clone()).await;
                    }
                }
                Ok(None) => return,
                Err(status) => {
                    let _ = abort_tx.send(Some(incoming_error(status)));
                    // Keep the backends' request streams open (not ended) until the call
                    // is torn down, so none of them mistakes the failure for a short request.
                    all_closed(&txs).await;
                    return;
                }
            }
        }
    });
    let streams = rxs
        .into_iter()
        .map(tokio_stream::wrappers::ReceiverStream::new)
        .collect();
    (streams, abort_rx)
}

async fn all_closed(txs: &[mpsc::Sender<Bytes>]) {
    for tx in txs {
        tx.closed().await;
    }
}

/// gRPC's code for an over-long message is ResourceExhausted (tonic says OutOfRange).
fn incoming_error(status: Status) -> Status {
    if status.code() == Code::OutOfRange && status.message().contains("too large") {
        // tonic: "... found N bytes, the limit is: M bytes"; Go: "... (N vs. M)".
        let numbers: Vec<&str> = status
            .message()
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .collect();
        let detail = match numbers.as_slice() {
            [found, limit] => format!(" ({found} vs. {limit})"),
            _ => String::new(),
        };
        return Status::resource_exhausted(format!(
            "grpc: received message larger than max{detail}"
        ));
    }
    status
}

/// A backend's reply stream that ends with the caller's error if the request stream fails.
struct Guarded {
    inner: Streaming<Bytes>,
    abort: Pin<Box<dyn Future<Output = Status> + Send>>,
    done: bool,
}

impl Stream for Guarded {
    type Item = Result<Bytes, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(status) = self.abort.as_mut().poll(cx) {
            self.done = true;
            return Poll::Ready(Some(Err(status)));
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Err(status))) => {
                self.done = true;
                Poll::Ready(Some(Err(status)))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            other => other,
        }
    }
}

/// One backend, replies relayed unchanged (headers, messages, final status).
async fn pass_through(
    channel: Channel,
    path: PathAndQuery,
    md: MetadataMap,
    incoming: Streaming<Bytes>,
) -> Result<Response<BoxStream<Bytes>>, Status> {
    let (mut streams, abort) = fan_in(incoming, 1);
    let messages = streams
        .pop()
        .ok_or_else(|| Status::internal("no request stream"))?;
    let response = tokio::select! {
        biased;
        status = aborted(abort.clone()) => return Err(status),
        r = start(channel, path, md, messages) => r?,
    };
    let (mut md, inner, _) = response.into_parts();
    for h in HOP_HEADERS {
        md.remove(h);
    }
    let stream: BoxStream<Bytes> = Box::pin(Guarded {
        inner,
        abort: aborted(abort),
        done: false,
    });
    Ok(Response::from_parts(
        md,
        stream,
        tonic::Extensions::default(),
    ))
}

fn deadline_exceeded() -> Status {
    Status::deadline_exceeded("context deadline exceeded")
}

/// One-to-many, unary reply: every node's `XResponse`, tagged, concatenated in target order.
async fn many_unary(
    legs: Vec<Result<Leg, (String, Status)>>,
    path: PathAndQuery,
    incoming: Streaming<Bytes>,
    timeout: Duration,
) -> Result<Response<BoxStream<Bytes>>, Status> {
    let (streams, abort) = fan_in(incoming, legs.len());
    let count = legs.len();
    let mut tasks = JoinSet::new();
    for (index, (leg, messages)) in legs.into_iter().zip(streams).enumerate() {
        let path = path.clone();
        tasks.spawn(async move {
            let reply = match leg {
                Ok(leg) => unary_leg(leg, path, messages, timeout).await,
                Err((hostname, status)) => splice::error_unary_reply(&hostname, &status),
            };
            (index, reply)
        });
    }
    let gather = async {
        let mut replies: Vec<Bytes> = vec![Bytes::new(); count];
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok((index, reply)) => replies[index] = reply,
                Err(e) => return Err(Status::internal(format!("node task failed: {e}"))),
            }
        }
        let mut merged = BytesMut::with_capacity(replies.iter().map(Bytes::len).sum());
        for reply in replies {
            merged.extend_from_slice(&reply);
        }
        Ok(merged.freeze())
    };
    let merged = tokio::select! {
        biased;
        status = aborted(abort) => return Err(status),
        merged = gather => merged?,
    };
    let stream: BoxStream<Bytes> = Box::pin(tokio_stream::once(Ok(merged)));
    Ok(Response::new(stream))
}

async fn unary_leg(
    leg: Leg,
    path: PathAndQuery,
    messages: RequestStream,
    timeout: Duration,
) -> Bytes {
    let hostname = leg.hostname;
    let call = async {
        let mut replies = start(leg.channel, path, leg.metadata, messages)
            .await?
            .into_inner();
        let mut out = BytesMut::new();
        while let Some(reply) = replies.message().await? {
            let tagged = splice::tag_unary_reply(&reply, &hostname)
                .map_err(|e| Status::internal(e.to_string()))?;
            out.extend_from_slice(&tagged);
        }
        Ok::<_, Status>(out.freeze())
    };
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(status)) => splice::error_unary_reply(&hostname, &status),
        Err(_) => splice::error_unary_reply(&hostname, &deadline_exceeded()),
    }
}

/// The merged stream of a one-to-many streamed call. Dropping it (the caller went away) stops
/// every node's call.
struct Merged {
    rx: mpsc::Receiver<Bytes>,
    abort: Pin<Box<dyn Future<Output = Status> + Send>>,
    _tasks: JoinSet<()>,
    done: bool,
}

impl Stream for Merged {
    type Item = Result<Bytes, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(status) = self.abort.as_mut().poll(cx) {
            self.done = true;
            return Poll::Ready(Some(Err(status)));
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(m)) => Poll::Ready(Some(Ok(m))),
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// One-to-many, streamed reply: the nodes' messages interleaved as they come, each tagged.
fn many_streaming(
    legs: Vec<Result<Leg, (String, Status)>>,
    path: PathAndQuery,
    incoming: Streaming<Bytes>,
    timeout: Duration,
) -> Response<BoxStream<Bytes>> {
    let (streams, abort) = fan_in(incoming, legs.len());
    let (tx, rx) = mpsc::channel(DEPTH);
    let mut tasks = JoinSet::new();
    for (leg, messages) in legs.into_iter().zip(streams) {
        let tx = tx.clone();
        let path = path.clone();
        tasks.spawn(async move {
            match leg {
                Ok(leg) => stream_leg(leg, path, messages, timeout, tx).await,
                Err((hostname, status)) => {
                    let _ = tx
                        .send(splice::error_stream_message(&hostname, &status))
                        .await;
                }
            }
        });
    }
    drop(tx);
    let stream: BoxStream<Bytes> = Box::pin(Merged {
        rx,
        abort: aborted(abort),
        _tasks: tasks,
        done: false,
    });
    Response::new(stream)
}

async fn stream_leg(
    leg: Leg,
    path: PathAndQuery,
    messages: RequestStream,
    timeout: Duration,
    tx: mpsc::Sender<Bytes>,
) {
    let hostname = leg.hostname;
    let started = tokio::time::timeout(timeout, start(leg.channel, path, leg.metadata, messages));
    let mut replies = match started.await {
        Ok(Ok(response)) => response.into_inner(),
        Ok(Err(status)) => {
            let _ = tx
                .send(splice::error_stream_message(&hostname, &status))
                .await;
            return;
        }
        Err(_) => {
            let _ = tx
                .send(splice::error_stream_message(
                    &hostname,
                    &deadline_exceeded(),
                ))
                .await;
            return;
        }
    };
    loop {
        let next = tokio::select! {
            _ = tx.closed() => return,
            next = replies.message() => next,
        };
        let out = match next {
            Ok(Some(message)) => splice::tag_stream_message(&message, &hostname),
            Ok(None) => return,
            Err(status) => {
                let _ = tx
                    .send(splice::error_stream_message(&hostname, &status))
                    .await;
                return;
            }
        };
        if tx.send(out).await.is_err() {
            return;
        }
    }
}
