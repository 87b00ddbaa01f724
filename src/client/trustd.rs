//! Worker side of trustd: obtaining apid's server certificate from the control plane.
//!
//! A worker node holds the OS CA certificate and the machine token, but not the CA key. It
//! makes a fresh Ed25519 key, a CSR naming its addresses, and asks trustd (TCP 50001 on the
//! control-plane nodes) to sign it: `securityapi.SecurityService/Certificate` with the token in
//! the `token` metadata. The connection is TLS verified against the OS CA; no client
//! certificate is presented. Endpoints are tried in order and the first signed certificate wins.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tonic::transport::{Endpoint, Uri};

use crate::api::securityapi::security_service_client::SecurityServiceClient;
use crate::api::securityapi::CertificateRequest as CertificateRequestPb;
use crate::auth::rules::TRUSTD_TOKEN_KEY;
use crate::auth::tls::{client_tls, TlsError};
use crate::constants::TRUSTD_PORT;
use crate::secrets::{CertParams, Certificate, CertificateRequest, PkiError, PrivateKey};

/// How long one endpoint may take (connect, handshake and call), as Talos's per-attempt limit.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The names the certificate is requested for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateSubject {
    /// Subject CommonName (Talos uses the node's FQDN).
    pub common_name: Option<String>,
    /// IP subject alternative names (the node's addresses).
    pub ips: Vec<IpAddr>,
    /// DNS subject alternative names (hostname, FQDN, `machine.certSANs` names).
    pub dns_names: Vec<String>,
}

/// What trustd returned, with the key the certificate belongs to.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    /// PEM of the signed server certificate.
    pub crt_pem: Vec<u8>,
    /// PEM of the new private key (`ED25519 PRIVATE KEY`).
    pub key_pem: Vec<u8>,
    /// PEM of the CAs the control plane accepts (the OS CA first).
    pub ca_pem: Vec<u8>,
    /// The endpoint that signed it.
    pub endpoint: String,
}

impl fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// One endpoint that did not sign, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointFailure {
    /// The endpoint as given.
    pub endpoint: String,
    /// What went wrong there.
    pub reason: String,
}

/// Errors requesting a certificate from trustd.
#[derive(Debug, thiserror::Error)]
pub enum TrustdError {
    /// The endpoint list is empty.
    #[error("no trustd endpoints given: at least one control-plane address is required")]
    NoEndpoints,
    /// The machine token is empty.
    #[error("the machine token (machine.token) is empty")]
    NoToken,
    /// An endpoint that is not `host`, `host:port`, `ipv6` or `[ipv6]:port`.
    #[error(
        "invalid trustd endpoint {0:?}: expected host, host:port, an IPv6 address or [ipv6]:port"
    )]
    BadEndpoint(String),
    /// The OS CA is unusable for TLS verification.
    #[error("trustd client TLS configuration")]
    Tls(#[source] TlsError),
    /// Making the key or the CSR failed.
    #[error("cannot create the certificate request")]
    Csr(#[source] PkiError),
    /// Every endpoint failed.
    #[error("no trustd endpoint signed the certificate request: {}", join_failures(.0))]
    AllFailed(Vec<EndpointFailure>),
}

fn join_failures(failures: &[EndpointFailure]) -> String {
    failures
        .iter()
        .map(|f| format!("{}: {}", f.endpoint, f.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A parsed endpoint: host (without brackets) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// Parses `host`, `host:port`, a bare IPv6 address, `[ipv6]` or `[ipv6]:port`; the port
/// defaults to `default_port`.
pub fn parse_endpoint(endpoint: &str, default_port: u16) -> Result<HostPort, TrustdError> {
    let bad = || TrustdError::BadEndpoint(endpoint.to_string());
    let s = endpoint.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(HostPort {
            host: ip.to_string(),
            port: default_port,
        });
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        host.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() || host.contains(['/', ' ', '[', ']']) {
        return Err(bad());
    }
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?,
        None => default_port,
    };
    Ok(HostPort {
        host: host.to_string(),
        port,
    })
}

/// Asks trustd on `endpoints` (in order) to sign a server certificate for `subject`, using the
/// machine `token` and verifying trustd's TLS certificate against `ca_pem` (the OS CA).
/// Returns the first signed certificate, or every endpoint's failure.
pub async fn request_certificate(
    endpoints: &[String],
    token: &str,
    ca_pem: &[u8],
    subject: &CertificateSubject,
) -> Result<IssuedCertificate, TrustdError> {
    if endpoints.is_empty() {
        return Err(TrustdError::NoEndpoints);
    }
    if token.is_empty() {
        return Err(TrustdError::NoToken);
    }
    let targets = endpoints
        .iter()
        .map(|e| parse_endpoint(e, TRUSTD_PORT))
        .collect::<Result<Vec<_>, _>>()?;
    let tls = Arc::new(client_tls(ca_pem).map_err(TrustdError::Tls)?);

    let key = PrivateKey::generate_ed25519().map_err(TrustdError::Csr)?;
    let mut params = CertParams::new(time::OffsetDateTime::now_utc(), time::Duration::hours(24))
        .ip_addresses(subject.ips.iter().copied())
        .dns_names(subject.dns_names.iter().cloned());
    params.common_name = subject.common_name.clone();
    let csr = CertificateRequest::new(&key, &params).map_err(TrustdError::Csr)?;
    let csr_pem = csr.to_pem();
    let key_pem = key.to_pem().map_err(TrustdError::Csr)?;
    let spki = key.public_key_info().map_err(TrustdError::Csr)?;

    let mut failures = Vec::new();
    for (endpoint, target) in endpoints.iter().zip(targets) {
        let attempt = call_certificate(&target, Arc::clone(&tls), token, csr_pem.clone());
        let outcome = match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {ATTEMPT_TIMEOUT:?}")),
        };
        match outcome.and_then(|(ca, crt)| check_issued(&crt, &spki).map(|()| (ca, crt))) {
            Ok((ca_pem, crt_pem)) => {
                tracing::debug!(endpoint, "trustd signed the certificate request");
                return Ok(IssuedCertificate {
                    crt_pem,
                    key_pem,
                    ca_pem,
                    endpoint: endpoint.clone(),
                });
            }
            Err(reason) => {
                tracing::warn!(endpoint, "trustd request failed: {reason}");
                failures.push(EndpointFailure {
                    endpoint: endpoint.clone(),
                    reason,
                });
            }
        }
    }
    Err(TrustdError::AllFailed(failures))
}

/// The returned certificate must parse and be for our key.
fn check_issued(crt_pem: &[u8], spki: &[u8]) -> Result<(), String> {
    let cert = Certificate::from_pem(crt_pem)
        .map_err(|e| format!("trustd returned an unusable certificate: {e}"))?;
    match cert.public_key_info() {
        Ok(k) if k == spki => Ok(()),
        Ok(_) => Err("trustd returned a certificate for another key".to_string()),
        Err(e) => Err(format!("trustd returned an unusable certificate: {e}")),
    }
}

/// Opens a SecurityService client to one trustd endpoint (`host[:port]`, default port 50001),
/// verifying its TLS certificate against `ca_pem`. For callers that build requests themselves;
/// [`request_certificate`] is the normal entry point.
pub async fn connect(
    endpoint: &str,
    ca_pem: &[u8],
) -> Result<SecurityServiceClient<tonic::transport::Channel>, TrustdError> {
    let target = parse_endpoint(endpoint, TRUSTD_PORT)?;
    let tls = Arc::new(client_tls(ca_pem).map_err(TrustdError::Tls)?);
    open_channel(&target, tls).await.map_err(|reason| {
        TrustdError::AllFailed(vec![EndpointFailure {
            endpoint: endpoint.to_string(),
            reason,
        }])
    })
}

async fn open_channel(
    target: &HostPort,
    tls: Arc<rustls::ClientConfig>,
) -> Result<SecurityServiceClient<tonic::transport::Channel>, String> {
    let server_name = match target.host.parse::<IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(target.host.clone())
            .map_err(|e| format!("invalid server name {:?}: {e}", target.host))?,
    };
    let authority = match target.host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]:{}", target.port),
        _ => format!("{}:{}", target.host, target.port),
    };
    let connector = TlsConnector {
        tls,
        host: target.host.clone(),
        port: target.port,
        server_name,
    };
    let channel = Endpoint::from_shared(format!("http://{authority}"))
        .map_err(|e| format!("invalid address {authority}: {e}"))?
        .connect_timeout(ATTEMPT_TIMEOUT)
        .connect_with_connector(connector)
        .await
        .map_err(|e| format!("cannot connect: {}", crate::errors::chain(&e)))?;
    Ok(SecurityServiceClient::new(channel))
}

async fn call_certificate(
    target: &HostPort,
    tls: Arc<rustls::ClientConfig>,
    token: &str,
    csr_pem: Vec<u8>,
) -> Result<(Vec<u8>, Vec<u8>), String> {
    let mut client = open_channel(target, tls).await?;
    let mut request = tonic::Request::new(CertificateRequestPb { csr: csr_pem });
    let value = token
        .parse()
        .map_err(|_| "the machine token contains characters not allowed in gRPC metadata")?;
    request.metadata_mut().insert(TRUSTD_TOKEN_KEY, value);
    let response = client
        .certificate(request)
        .await
        .map_err(|status| format!("trustd refused: {} ({:?})", status.message(), status.code()))?;
    let response = response.into_inner();
    Ok((response.ca, response.crt))
}

/// Connects TCP, then TLS with the OS CA, for a tonic channel.
#[derive(Clone)]
struct TlsConnector {
    tls: Arc<rustls::ClientConfig>,
    host: String,
    port: u16,
    server_name: ServerName<'static>,
}

type TlsIo = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;

impl tonic::codegen::Service<Uri> for TlsConnector {
    type Response = TlsIo;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<TlsIo, io::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let tcp = TcpStream::connect((this.host.as_str(), this.port)).await?;
            let _ = tcp.set_nodelay(true);
            let tls = tokio_rustls::TlsConnector::from(this.tls)
                .connect(this.server_name, tcp)
                .await?;
            Ok(TokioIo::new(tls))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_with_default_port() {
        let p = |s| parse_endpoint(s, TRUSTD_PORT);
        assert_eq!(
            p("10.5.0.2").unwrap(),
            HostPort {
                host: "10.5.0.2".into(),
                port: 50001
            }
        );
        assert_eq!(p("cp.example.org:1234").unwrap().port, 1234);
        assert_eq!(p("cp.example.org").unwrap().host, "cp.example.org");
        assert_eq!(p("fd00::1").unwrap().host, "fd00::1");
        assert_eq!(p("[fd00::1]:7").unwrap().port, 7);
        assert_eq!(p("[fd00::1]").unwrap().port, 50001);
        for bad in [
            "",
            "host:",
            "host:0",
            "host:99999",
            "[fd00::1",
            "[x]:1",
            "a b:1",
        ] {
            assert!(
                matches!(p(bad), Err(TrustdError::BadEndpoint(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn failures_are_listed() {
        let e = TrustdError::AllFailed(vec![
            EndpointFailure {
                endpoint: "a".into(),
                reason: "down".into(),
            },
            EndpointFailure {
                endpoint: "b".into(),
                reason: "refused".into(),
            },
        ]);
        assert_eq!(
            e.to_string(),
            "no trustd endpoint signed the certificate request: a: down; b: refused"
        );
    }

    #[tokio::test]
    async fn empty_inputs_are_refused() {
        let s = CertificateSubject::default();
        assert!(matches!(
            request_certificate(&[], "t", b"", &s).await,
            Err(TrustdError::NoEndpoints)
        ));
        assert!(matches!(
            request_certificate(&["127.0.0.1".into()], "", b"", &s).await,
            Err(TrustdError::NoToken)
        ));
        assert!(matches!(
            request_certificate(&["127.0.0.1".into()], "t", b"junk", &s).await,
            Err(TrustdError::Tls(_))
        ));
    }
}
