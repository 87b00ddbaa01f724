//! Channels to the Talos API (apid on port 50000), as talosctl opens them.
//!
//! A [`Client`] holds one tonic [`Channel`] over our own TLS connector: every time the channel
//! needs a connection, the connector tries the endpoints in a fresh random order (client-side load
//! balancing, like Talos's round-robin resolver) and takes the first one that accepts TCP and
//! completes the TLS handshake. Only when every endpoint failed does it give up, listing each
//! endpoint with its failure.
//!
//! Two kinds of credentials exist:
//! - [`Credentials::from_context`]: mutual TLS with the CA, certificate and key of a talosconfig
//!   context (each base64 of PEM), the server verified against that CA;
//! - [`Credentials::insecure`]: the maintenance API (`--insecure`), TLS without chain verification,
//!   optionally pinned to SPKI fingerprints (`--cert-fingerprint`).
//!
//! Requests are routed to nodes through gRPC metadata: [`with_nodes`] (key `nodes`, one value per
//! node; apid fans out and tags each reply with the node) and [`with_node`] (key `node`, a
//! transparent one-to-one proxy, required by the COSI methods).

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use base64::Engine as _;
use hyper_util::rt::TokioIo;
use rand::seq::SliceRandom as _;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::transport::{Channel, Endpoint, Uri};

use super::talosconfig::Context;
use crate::api::cosi::resource::state_client::StateClient;
use crate::api::machine::machine_service_client::MachineServiceClient;
use crate::api::storage::storage_service_client::StorageServiceClient;
use crate::api::time::time_service_client::TimeServiceClient;
use crate::auth::tls::{self, TlsError};
use crate::constants::APID_PORT;

/// Largest gRPC message sent or accepted (Talos's limit).
pub const MAX_MESSAGE_SIZE: usize = 32 * 1024 * 1024;
/// How long one endpoint may take to accept TCP and finish the TLS handshake.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Metadata key of one-to-many routing (several values).
pub const NODES_KEY: &str = "nodes";
/// Metadata key of one-to-one routing (a single value).
pub const NODE_KEY: &str = "node";

/// Errors of building credentials or connecting.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A context field is not base64.
    #[error("talosconfig context: {field} is not valid base64")]
    Base64 {
        /// `ca`, `crt` or `key`.
        field: &'static str,
        /// The decoder's error.
        #[source]
        source: base64::DecodeError,
    },
    /// The context lacks a field needed for mutual TLS.
    #[error("talosconfig context has no {0}: regenerate the talosconfig (`talosctl gen config`) or add credentials with `talosctl config add --ca --crt --key`")]
    MissingField(&'static str),
    /// The TLS configuration could not be built from the credentials.
    #[error("invalid TLS credentials")]
    Tls(#[source] TlsError),
    /// No endpoint to dial.
    #[error("no endpoints configured: use the --endpoints flag, or set them in the talosconfig with `talosctl config endpoint <ip>...`")]
    NoEndpoints,
    /// An endpoint that cannot be parsed.
    #[error(
        "invalid endpoint {0:?}: expected host, host:port, [ipv6]:port or https://host[:port]"
    )]
    BadEndpoint(String),
    /// Every endpoint failed.
    #[error("{0}")]
    Unavailable(DialFailures),
    /// The gRPC channel could not be set up (a failure not tied to one endpoint).
    #[error("cannot connect to the Talos API: {0}")]
    Channel(String),
}

/// One endpoint to dial: host (name or IP, without brackets) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// DNS name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl Target {
    /// Parses an endpoint as talosconfig or `--endpoints` give it: `host`, `host:port`, `ipv6`,
    /// `[ipv6]`, `[ipv6]:port`, or a URL `scheme://host[:port][/...]` (`https` defaults to 443).
    pub fn parse(endpoint: &str) -> Result<Target, ConnectError> {
        let bad = || ConnectError::BadEndpoint(endpoint.to_string());
        let s = endpoint.trim();
        if s.is_empty() {
            return Err(bad());
        }
        let (rest, scheme_port) = match s.split_once("://") {
            Some((scheme, rest)) => {
                let rest = rest.split('/').next().unwrap_or_default();
                let default = if scheme.eq_ignore_ascii_case("https") {
                    443
                } else {
                    APID_PORT
                };
                (rest, default)
            }
            None => (s, APID_PORT),
        };
        if rest.is_empty() {
            return Err(bad());
        }
        // A bare IPv6 address (several colons, no brackets) has no port.
        if rest.parse::<IpAddr>().is_ok() {
            return Ok(Target {
                host: rest.to_string(),
                port: scheme_port,
            });
        }
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (host, after) = inner.split_once(']').ok_or_else(bad)?;
            let port = match after {
                "" => scheme_port,
                p => p
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(bad)?,
            };
            (host, port)
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) => (host, port.parse().map_err(|_| bad())?),
                None => (rest, scheme_port),
            }
        };
        if host.is_empty() || host.contains(['/', ' ', '[', ']']) {
            return Err(bad());
        }
        Ok(Target {
            host: host.to_string(),
            port,
        })
    }
}

/// Parses a list of endpoints; an empty list is [`ConnectError::NoEndpoints`].
pub fn parse_endpoints<S: AsRef<str>>(endpoints: &[S]) -> Result<Vec<Target>, ConnectError> {
    let targets = endpoints
        .iter()
        .map(|e| Target::parse(e.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    if targets.is_empty() {
        return Err(ConnectError::NoEndpoints);
    }
    Ok(targets)
}

/// The TLS side of a connection.
#[derive(Clone)]
pub struct Credentials {
    config: Arc<rustls::ClientConfig>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").finish_non_exhaustive()
    }
}

fn decode_field(field: &'static str, value: &str) -> Result<Vec<u8>, ConnectError> {
    if value.trim().is_empty() {
        return Err(ConnectError::MissingField(field));
    }
    base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|source| ConnectError::Base64 { field, source })
}

impl Credentials {
    /// Mutual TLS from a talosconfig context (`ca`, `crt`, `key`, each base64 of PEM).
    pub fn from_context(context: &Context) -> Result<Credentials, ConnectError> {
        let ca = decode_field("ca", &context.ca)?;
        let crt = decode_field("crt", &context.crt)?;
        let key = decode_field("key", &context.key)?;
        Credentials::mtls(&ca, &crt, &key)
    }

    /// Mutual TLS from PEM inputs.
    pub fn mtls(
        ca_pem: &[u8],
        crt_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<Credentials, ConnectError> {
        let config = tls::client_mtls(ca_pem, crt_pem, key_pem).map_err(ConnectError::Tls)?;
        Ok(Credentials {
            config: Arc::new(config),
        })
    }

    /// TLS without verifying the server's chain (maintenance mode); with fingerprints, the
    /// server's public key must match one of them.
    pub fn insecure(fingerprints: &[String]) -> Result<Credentials, ConnectError> {
        let pins = if fingerprints.is_empty() {
            None
        } else {
            Some(fingerprints.to_vec())
        };
        let config = tls::client_insecure(pins).map_err(ConnectError::Tls)?;
        Ok(Credentials {
            config: Arc::new(config),
        })
    }

    /// Wraps a ready rustls configuration (it must offer ALPN `h2`).
    pub fn from_config(config: rustls::ClientConfig) -> Credentials {
        Credentials {
            config: Arc::new(config),
        }
    }
}

/// The failure of one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialFailure {
    /// The endpoint, `host:port`.
    pub endpoint: String,
    /// What went wrong.
    pub reason: String,
}

/// Every endpoint failed: one entry per endpoint, in the order tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialFailures(pub Vec<DialFailure>);

impl fmt::Display for DialFailures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot connect to any endpoint")?;
        for failure in &self.0 {
            write!(f, "; {}: {}", failure.endpoint, failure.reason)?;
        }
        Ok(())
    }
}

impl std::error::Error for DialFailures {}

/// Tries endpoints in random order until one connects (TCP + TLS).
#[derive(Clone)]
struct FailoverConnector {
    targets: Arc<Vec<Target>>,
    tls: TlsConnector,
    timeout: Duration,
    peer: Arc<Mutex<Option<String>>>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

fn io_reason(e: &std::io::Error) -> String {
    // rustls puts its reason into the io::Error; show it without the "io error" wrapper.
    match e.get_ref() {
        Some(inner) => inner.to_string(),
        None => e.to_string(),
    }
}

impl FailoverConnector {
    async fn dial_one(&self, target: &Target) -> Result<TlsStream<TcpStream>, String> {
        let server_name = ServerName::try_from(target.host.clone())
            .map_err(|_| format!("{:?} is not a valid server name", target.host))?;
        let attempt = async {
            let tcp = TcpStream::connect((target.host.as_str(), target.port))
                .await
                .map_err(|e| io_reason(&e))?;
            let _ = tcp.set_nodelay(true);
            let peer = tcp.peer_addr().ok();
            let stream = self
                .tls
                .connect(server_name, tcp)
                .await
                .map_err(|e| format!("TLS handshake failed: {}", io_reason(&e)))?;
            if let (Some(addr), Ok(mut slot)) = (peer, self.peer.lock()) {
                *slot = Some(addr.ip().to_string());
            }
            Ok(stream)
        };
        tokio::time::timeout(self.timeout, attempt)
            .await
            .map_err(|_| format!("timed out after {}s", self.timeout.as_secs()))?
    }

    async fn dial(self) -> Result<TokioIo<TlsStream<TcpStream>>, DialFailures> {
        let mut order: Vec<Target> = self.targets.as_ref().clone();
        order.shuffle(&mut rand::thread_rng());
        let mut failures = Vec::new();
        for target in &order {
            match self.dial_one(target).await {
                Ok(stream) => return Ok(TokioIo::new(stream)),
                Err(reason) => {
                    tracing::debug!(endpoint = %target, %reason, "endpoint failed");
                    failures.push(DialFailure {
                        endpoint: target.to_string(),
                        reason,
                    });
                }
            }
        }
        Err(DialFailures(failures))
    }
}

impl tonic::codegen::Service<Uri> for FailoverConnector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = DialFailures;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        Box::pin(self.clone().dial())
    }
}

/// A connected client: the channel plus the address of the endpoint last connected to.
#[derive(Clone)]
pub struct Client {
    channel: Channel,
    peer: Arc<Mutex<Option<String>>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("peer", &self.peer_host())
            .finish_non_exhaustive()
    }
}

fn find_dial_failures(err: &(dyn std::error::Error + 'static)) -> Option<DialFailures> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(f) = e.downcast_ref::<DialFailures>() {
            return Some(f.clone());
        }
        current = e.source();
    }
    None
}

impl Client {
    /// Connects to one of `targets` (tried in random order) with `credentials`; fails only when
    /// none of them can be reached, reporting each one's failure.
    pub async fn connect(
        targets: Vec<Target>,
        credentials: &Credentials,
    ) -> Result<Client, ConnectError> {
        Client::connect_with_timeout(targets, credentials, DIAL_TIMEOUT).await
    }

    /// [`Client::connect`] with a per-endpoint dial timeout.
    pub async fn connect_with_timeout(
        targets: Vec<Target>,
        credentials: &Credentials,
        timeout: Duration,
    ) -> Result<Client, ConnectError> {
        let first = targets.first().ok_or(ConnectError::NoEndpoints)?;
        // The authority the requests carry (apid records it as `proxyfrom` when forwarding).
        let uri = format!("http://{first}");
        let endpoint = Endpoint::from_shared(uri)
            .or_else(|_| Endpoint::from_shared("http://talos".to_string()))
            .map_err(|e| ConnectError::Channel(e.to_string()))?
            .initial_stream_window_size(65535 * 32)
            .initial_connection_window_size(65535 * 16)
            .tcp_nodelay(true);
        let peer = Arc::new(Mutex::new(None));
        let connector = FailoverConnector {
            targets: Arc::new(targets),
            tls: TlsConnector::from(credentials.config.clone()),
            timeout,
            peer: peer.clone(),
        };
        let channel = endpoint
            .connect_with_connector(connector)
            .await
            .map_err(|e| match find_dial_failures(&e) {
                Some(failures) => ConnectError::Unavailable(failures),
                None => ConnectError::Channel(crate::errors::chain(&e).to_string()),
            })?;
        Ok(Client { channel, peer })
    }

    /// The underlying channel.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The IP address of the endpoint last connected to: the node a reply without metadata
    /// came from. `"unknown"` before any connection.
    pub fn peer_host(&self) -> String {
        self.peer
            .lock()
            .ok()
            .and_then(|p| p.clone())
            .unwrap_or_else(|| "unknown".to_string())
    }

    /// `machine.MachineService` with Talos's message size limits.
    pub fn machine(&self) -> MachineServiceClient<Channel> {
        MachineServiceClient::new(self.channel())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }

    /// `storage.StorageService`.
    pub fn storage(&self) -> StorageServiceClient<Channel> {
        StorageServiceClient::new(self.channel())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }

    /// `time.TimeService`.
    pub fn time(&self) -> TimeServiceClient<Channel> {
        TimeServiceClient::new(self.channel())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }

    /// `cosi.resource.State` (resources).
    pub fn cosi(&self) -> StateClient<Channel> {
        StateClient::new(self.channel())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }
}

/// Errors of routing metadata.
#[derive(Debug, thiserror::Error)]
#[error("invalid node {0:?}: node names must be printable ASCII")]
pub struct BadNode(pub String);

fn metadata_value(node: &str) -> Result<AsciiMetadataValue, BadNode> {
    node.parse().map_err(|_| BadNode(node.to_string()))
}

/// Routes a request to several nodes (one-to-many through apid): replaces any `node`/`nodes`
/// entries by one `nodes` value per node. With no nodes the request goes to the endpoint itself.
pub fn with_nodes<T>(
    mut request: tonic::Request<T>,
    nodes: &[String],
) -> Result<tonic::Request<T>, BadNode> {
    set_nodes(request.metadata_mut(), nodes)?;
    Ok(request)
}

/// [`with_nodes`] on a metadata map.
pub fn set_nodes(md: &mut MetadataMap, nodes: &[String]) -> Result<(), BadNode> {
    md.remove(NODE_KEY);
    while md.remove(NODES_KEY).is_some() {}
    for node in nodes {
        md.append(NODES_KEY, metadata_value(node)?);
    }
    Ok(())
}

/// Routes a request to exactly one node (one-to-one proxy through apid, no reply metadata).
pub fn with_node<T>(
    mut request: tonic::Request<T>,
    node: &str,
) -> Result<tonic::Request<T>, BadNode> {
    let md = request.metadata_mut();
    while md.remove(NODES_KEY).is_some() {}
    md.insert(NODE_KEY, metadata_value(node)?);
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(host: &str, port: u16) -> Target {
        Target {
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn endpoint_forms() {
        assert_eq!(Target::parse("10.5.0.2").unwrap(), t("10.5.0.2", 50000));
        assert_eq!(Target::parse("10.5.0.2:123").unwrap(), t("10.5.0.2", 123));
        assert_eq!(
            Target::parse("node.example").unwrap(),
            t("node.example", 50000)
        );
        assert_eq!(Target::parse("fd00::1").unwrap(), t("fd00::1", 50000));
        assert_eq!(Target::parse("[fd00::1]").unwrap(), t("fd00::1", 50000));
        assert_eq!(Target::parse("[fd00::1]:7").unwrap(), t("fd00::1", 7));
        assert_eq!(
            Target::parse("https://omni.example").unwrap(),
            t("omni.example", 443)
        );
        assert_eq!(Target::parse("https://a.b:8443/x").unwrap(), t("a.b", 8443));
        assert_eq!(Target::parse("grpc://a.b").unwrap(), t("a.b", 50000));
        for bad in ["", "a:b", "[::1", "[::1]x", "https://", "a b"] {
            assert!(Target::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(t("fd00::1", 1).to_string(), "[fd00::1]:1");
        assert!(matches!(
            parse_endpoints::<&str>(&[]),
            Err(ConnectError::NoEndpoints)
        ));
    }

    #[test]
    fn node_metadata() {
        let req = with_node(tonic::Request::new(()), "10.0.0.9").unwrap();
        let req = with_nodes(req, &["a".into(), "b".into()]).unwrap();
        let vals: Vec<_> = req
            .metadata()
            .get_all(NODES_KEY)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        assert_eq!(vals, ["a", "b"]);
        assert!(req.metadata().get(NODE_KEY).is_none());
        let req = with_node(req, "c").unwrap();
        assert!(req.metadata().get(NODES_KEY).is_none());
        assert_eq!(req.metadata().get(NODE_KEY).unwrap(), "c");
        assert!(with_node(tonic::Request::new(()), "bad\nnode").is_err());
    }

    #[test]
    fn context_credentials_errors() {
        let ctx = Context::default();
        let err = Credentials::from_context(&ctx).unwrap_err();
        assert!(matches!(err, ConnectError::MissingField("ca")), "{err}");
        let ctx = Context {
            ca: "!!!".into(),
            ..Context::default()
        };
        let err = Credentials::from_context(&ctx).unwrap_err();
        assert!(matches!(err, ConnectError::Base64 { field: "ca", .. }));
    }

    #[tokio::test]
    async fn all_endpoints_fail() {
        // Two closed ports on loopback: both refusals are reported.
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (pa, pb) = (
            a.local_addr().unwrap().port(),
            b.local_addr().unwrap().port(),
        );
        drop((a, b));
        let creds = Credentials::insecure(&[]).unwrap();
        let err = Client::connect(vec![t("127.0.0.1", pa), t("127.0.0.1", pb)], &creds)
            .await
            .unwrap_err();
        let ConnectError::Unavailable(DialFailures(failures)) = &err else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(failures.len(), 2);
        let text = err.to_string();
        assert!(text.contains(&format!("127.0.0.1:{pa}")), "{text}");
        assert!(text.contains(&format!("127.0.0.1:{pb}")), "{text}");
    }
}
