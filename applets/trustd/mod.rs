//! The `trustd` applet: signs apid server certificates for worker nodes.
//!
//! ```text
//! talos trustd [--listen ADDR] --pki-dir DIR [--token-file FILE]
//! ```
//!
//! Serves `securityapi.SecurityService/Certificate` over TLS (no client certificate) on
//! `--listen` (default `0.0.0.0:50001`). The PKI directory ([`talos::auth::pki_dir`]) holds
//! `ca.crt` (the OS CA certificate that signs, optionally followed by further accepted CAs),
//! `ca.key` (the OS CA key) and `server.crt`/`server.key` (trustd's own TLS certificate,
//! signed by the OS CA).
//!
//! The machine token comes from `--token-file` or the `TRUSTD_TOKEN` environment variable,
//! never from the command line (where every user could read it in `ps`). A request is signed
//! only when its `token` metadata equals the token; the certificate is a ServerAuth-only leaf
//! valid for 24 h with the CSR's subject minus any Organization (so it can never carry roles)
//! and the CSR's SANs. Files are re-read when they change; a broken update is logged and the
//! previous material stays in use.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use clap::Parser;
use talos::api::securityapi::{
    self as pb, security_service_server::SecurityService,
    security_service_server::SecurityServiceServer,
};
use talos::auth::rules::{check_trustd_token, TRUSTD_TOKEN_KEY};
use talos::auth::serve::TlsConnectInfo;
use talos::auth::PkiDir;
use talos::constants::TRUSTD_LISTEN_ADDRESS;
use talos::errors::chain;
use talos::secrets::{
    CertParams, Certificate, CertificateAuthority, CertificateRequest, ExtKeyUsage, KeyUsage,
    PEM_CERTIFICATE,
};
use tonic::{Request, Response, Status};

use crate::edge::{self, Errors};

/// Environment variable holding the machine token when no `--token-file` is given.
pub const TOKEN_ENV: &str = "TRUSTD_TOKEN";

/// Validity of the certificates trustd signs (siderolabs/crypto's default, 24 h).
pub const SIGNED_VALIDITY: time::Duration = time::Duration::hours(24);

/// How often the PKI files and the token file are checked for changes.
const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// How long a graceful shutdown may take.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// trustd: certificate signing for worker nodes.
#[derive(Debug, Parser)]
#[command(name = "trustd", version = talos::version::TALOS_VERSION)]
pub struct Cli {
    /// Address to listen on (use port 0 for any free port; the bound address is printed).
    #[arg(long, value_name = "ADDR", default_value_t = TRUSTD_LISTEN_ADDRESS)]
    pub listen: SocketAddr,

    /// Directory with ca.crt, ca.key (the OS CA) and server.crt, server.key (trustd's TLS
    /// certificate).
    #[arg(long, value_name = "DIR")]
    pub pki_dir: PathBuf,

    /// File holding the machine token (machine.token); else the TRUSTD_TOKEN environment
    /// variable is used.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// Entry point of the `trustd` applet.
pub fn main(args: Vec<OsString>) -> ExitCode {
    edge::main(args, Errors::Named("trustd"), edge::stderr_logging, run)
}

/// Where the token comes from.
#[derive(Debug, Clone)]
enum TokenSource {
    File(PathBuf),
    Env(String),
}

/// Everything loaded from disk; replaced as a whole on reload.
struct Material {
    ca: CertificateAuthority,
    /// The accepted CAs, PEM, as sent back to workers.
    accepted_cas: Vec<u8>,
    tls: Arc<rustls::ServerConfig>,
    token: String,
}

/// Files and their modification times at the last (successful or failed) load.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp(Vec<Option<SystemTime>>);

struct Loader {
    pki_dir: PkiDir,
    token: TokenSource,
}

impl Loader {
    fn files(&self) -> Vec<PathBuf> {
        let dir = &self.pki_dir;
        let mut files = vec![
            dir.ca_crt(),
            dir.ca_key(),
            dir.server_crt(),
            dir.server_key(),
        ];
        if let TokenSource::File(f) = &self.token {
            files.push(f.clone());
        }
        files
    }

    fn stamp(&self) -> Stamp {
        Stamp(
            self.files()
                .iter()
                .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
                .collect(),
        )
    }

    fn load(&self) -> anyhow::Result<Material> {
        let read = |path: &Path| {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))
        };
        let dir = &self.pki_dir;
        let ca_crt = read(&dir.ca_crt())?;
        let ca_key = read(&dir.ca_key())?;
        let ca = CertificateAuthority::from_pem(&ca_crt, &ca_key).with_context(|| {
            format!(
                "loading the OS CA from {} and {}",
                dir.ca_crt().display(),
                dir.ca_key().display()
            )
        })?;
        let accepted_cas = normalize_cas(&ca_crt)
            .with_context(|| format!("reading {}", dir.ca_crt().display()))?;
        let server_crt = read(&dir.server_crt())?;
        let server_key = read(&dir.server_key())?;
        let tls =
            talos::auth::tls::server_tls_only(&server_crt, &server_key).with_context(|| {
                format!(
                    "loading trustd's TLS certificate from {} and {}",
                    dir.server_crt().display(),
                    dir.server_key().display()
                )
            })?;
        let token = match &self.token {
            TokenSource::File(path) => std::fs::read_to_string(path)
                .with_context(|| format!("reading the token file {}", path.display()))?
                .trim()
                .to_string(),
            TokenSource::Env(token) => token.clone(),
        };
        if token.is_empty() {
            match &self.token {
                TokenSource::File(path) => {
                    anyhow::bail!("the token file {} is empty", path.display())
                }
                TokenSource::Env(_) => anyhow::bail!("{TOKEN_ENV} is empty"),
            }
        }
        Ok(Material {
            ca,
            accepted_cas,
            tls: Arc::new(tls),
            token,
        })
    }
}

/// The CERTIFICATE blocks of a PEM bundle, re-encoded without anything between them.
fn normalize_cas(pem_bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let blocks = pem::parse_many(pem_bytes).context("not valid PEM")?;
    let mut out = Vec::new();
    for block in blocks.iter().filter(|b| b.tag() == PEM_CERTIFICATE) {
        out.extend(talos::secrets::pem_encode(
            PEM_CERTIFICATE,
            block.contents(),
        ));
    }
    anyhow::ensure!(!out.is_empty(), "no CERTIFICATE block found");
    Ok(out)
}

type Shared = Arc<RwLock<Arc<Material>>>;

fn current(shared: &Shared) -> Arc<Material> {
    match shared.read() {
        Ok(guard) => Arc::clone(&guard),
        Err(poisoned) => Arc::clone(&poisoned.into_inner()),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let token = match &cli.token_file {
        Some(path) => TokenSource::File(path.clone()),
        None => match std::env::var(TOKEN_ENV) {
            Ok(token) => TokenSource::Env(token.trim().to_string()),
            Err(_) => anyhow::bail!(
                "no machine token: give --token-file FILE or set {TOKEN_ENV} (the token is never \
                 taken from the command line)"
            ),
        },
    };
    let loader = Loader {
        pki_dir: PkiDir::new(&cli.pki_dir),
        token,
    };
    let stamp = loader.stamp();
    let material = loader.load()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(cli.listen, loader, stamp, material))
}

async fn serve(
    listen: SocketAddr,
    loader: Loader,
    mut stamp: Stamp,
    material: Material,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;

    let shared: Shared = Arc::new(RwLock::new(Arc::new(material)));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    tracing::info!(address = %bound, "trustd listening");
    eprintln!("trustd: listening on {bound}");

    let tls_source = Arc::clone(&shared);
    let incoming = talos::auth::serve::incoming(listener, move || current(&tls_source).tls.clone());
    let service = SecurityServiceServer::new(Trustd {
        shared: Arc::clone(&shared),
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stop_rx.await;
            }),
    );

    let mut ticker = tokio::time::interval(RELOAD_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = sigterm.recv() => { tracing::info!("SIGTERM received, shutting down"); break; }
            _ = sigint.recv() => { tracing::info!("SIGINT received, shutting down"); break; }
            _ = ticker.tick() => {
                let now = loader.stamp();
                if now != stamp {
                    stamp = now;
                    match loader.load() {
                        Ok(m) => {
                            if let Ok(mut guard) = shared.write() {
                                *guard = Arc::new(m);
                            }
                            tracing::info!(pki_dir = %loader.pki_dir.root().display(), "reloaded PKI and token");
                        }
                        Err(e) => tracing::warn!("keeping the previous PKI and token: {}", chain(e.as_ref())),
                    }
                }
            }
        }
    }
    let _ = stop_tx.send(());
    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(Ok(result)) => result.context("serving trustd"),
        Ok(Err(e)) => Err(anyhow::anyhow!("server task failed: {e}")),
        Err(_) => {
            tracing::warn!("server did not stop within {SHUTDOWN_GRACE:?}; exiting anyway");
            Ok(())
        }
    }
}

/// The SecurityService implementation.
struct Trustd {
    shared: Shared,
}

#[tonic::async_trait]
impl SecurityService for Trustd {
    async fn certificate(
        &self,
        request: Request<pb::CertificateRequest>,
    ) -> Result<Response<pb::CertificateResponse>, Status> {
        let material = current(&self.shared);
        let peer = request
            .extensions()
            .get::<TlsConnectInfo>()
            .map(|i| i.remote_addr.to_string())
            .unwrap_or_else(|| "unknown".to_string());
        let tokens: Vec<&str> = request
            .metadata()
            .get_all(TRUSTD_TOKEN_KEY)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if let Err(denied) = check_trustd_token(&tokens, &material.token) {
            tracing::warn!(
                peer,
                "refused a certificate request: missing or wrong token"
            );
            return Err(Status::new(
                tonic::Code::from(denied.grpc_code()),
                denied.to_string(),
            ));
        }
        let crt = sign(&material.ca, &request.get_ref().csr, &peer)?;
        Ok(Response::new(pb::CertificateResponse {
            ca: material.accepted_cas.clone(),
            crt: crt.to_pem(),
        }))
    }
}

/// Signs a worker's CSR: ServerAuth only, no Organization, 24 h.
fn sign(ca: &CertificateAuthority, csr_pem: &[u8], peer: &str) -> Result<Certificate, Status> {
    let block =
        pem::parse(csr_pem).map_err(|_| Status::invalid_argument("failed to decode CSR"))?;
    let csr = CertificateRequest::from_der(block.into_contents())
        .map_err(|e| Status::invalid_argument(format!("failed to parse CSR: {e}")))?;
    let info = csr
        .info()
        .map_err(|e| Status::invalid_argument(format!("failed to parse CSR: {e}")))?;
    tracing::info!(
        peer,
        common_name = info.common_name.as_deref().unwrap_or(""),
        organizations = ?info.organizations,
        dns_names = ?info.dns_names,
        addresses = ?info.ip_addresses,
        "received a CSR signing request"
    );
    let params = CertParams::new(time::OffsetDateTime::now_utc(), SIGNED_VALIDITY)
        .key_usage(KeyUsage::DIGITAL_SIGNATURE)
        .ext_key_usage([ExtKeyUsage::ServerAuth]);
    // A certificate with an Organization could act as a client certificate with roles: drop
    // it (without failing, so old workers still get a usable server certificate).
    let no_orgs: Vec<String> = Vec::new();
    let subject = if info.organizations.is_empty() {
        None
    } else {
        tracing::info!(organizations = ?info.organizations, "removing the Organization from the CSR subject");
        Some((no_orgs.as_slice(), info.common_name.as_deref()))
    };
    ca.sign_csr(&csr, &params, subject)
        .map_err(|e| Status::internal(format!("failed to sign CSR: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use talos::secrets::{KeyAlgorithm, PrivateKey};

    fn ca() -> CertificateAuthority {
        let params = CertParams::new(time::OffsetDateTime::now_utc(), time::Duration::hours(1))
            .organizations(["talos"]);
        CertificateAuthority::generate(KeyAlgorithm::Ed25519, &params).unwrap()
    }

    #[test]
    fn signs_server_auth_only_without_organization() {
        let ca = ca();
        let key = PrivateKey::generate_ed25519().unwrap();
        let mut params = CertParams::new(time::OffsetDateTime::now_utc(), time::Duration::hours(1))
            .organizations(["os:admin"])
            .ip_addresses(["10.5.0.3".parse().unwrap()])
            .dns_names(["worker-1"]);
        params.common_name = Some("worker-1.local".into());
        let csr = CertificateRequest::new(&key, &params).unwrap();
        let crt = sign(&ca, &csr.to_pem(), "test").unwrap();
        assert!(crt.organizations().unwrap().is_empty());
        let parsed = crt.parsed().unwrap();
        let eku = parsed.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        let cn: Vec<_> = parsed
            .subject()
            .iter_common_name()
            .filter_map(|a| a.as_str().ok())
            .collect();
        assert_eq!(cn, ["worker-1.local"]);
        let v = parsed.validity();
        assert_eq!(
            v.not_after.timestamp() - v.not_before.timestamp(),
            24 * 3600
        );
    }

    #[test]
    fn bad_csr_input_is_invalid_argument() {
        let ca = ca();
        let status = sign(&ca, b"not pem", "test").unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "failed to decode CSR");
        let junk = talos::secrets::pem_encode("CERTIFICATE REQUEST", b"\x30\x00");
        let status = sign(&ca, &junk, "test").unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().starts_with("failed to parse CSR"));
    }

    #[test]
    fn ca_bundle_is_normalized() {
        let ca = ca();
        let mut text = b"# comment\n".to_vec();
        text.extend(ca.cert.to_pem());
        text.extend(b"\n\n");
        text.extend(ca.cert.to_pem());
        let out = normalize_cas(&text).unwrap();
        let mut twice = ca.cert.to_pem();
        twice.extend(ca.cert.to_pem());
        assert_eq!(out, twice);
        assert!(normalize_cas(b"").is_err());
    }
}
