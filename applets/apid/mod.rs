//! The `apid` applet: the Talos API gateway on :50000.
//!
//! ```text
//! talos apid [--listen 0.0.0.0:50000] [--machined-socket PATH] [--pki-dir DIR]
//!            [--local-address ADDR]... [--rbac=true|false] [--check-ext-key-usage=true|false]
//!            [--node-timeout 30s] [--pki-poll-interval 5s] [--cert-ttl 24h] [--cert-san NAME]...
//! ```
//!
//! apid terminates mutual TLS (client certificates from the CAs in `ca.crt`), takes the
//! caller's roles from its certificate, checks them against the method, and proxies the call
//! with [`talos::proxy`]: to machined over its unix socket, or to other nodes' apid. It polls
//! the PKI directory ([`pki`]) and uses changed certificates for new connections. SIGTERM or
//! SIGINT stops accepting, lets calls in flight finish for a few seconds, and exits 0.
//!
//! On control planes the PKI directory also holds the OS CA key `ca.key`: apid then issues its
//! own server and forwarding certificates ([`issue`]) and renews them at half their lifetime.
//!
//! Once listening it prints `listening on ADDR` on stdout (with the real port when asked for
//! port 0).

pub mod issue;
pub mod pki;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{ArgAction, Parser};
use talos::auth::serve::ServerTls;
use talos::auth::PkiDir;
use talos::constants::{APID_LISTEN_ADDRESS, APID_SECRETS_PATH, MACHINE_SOCKET_PATH};
use talos::duration::parse_duration_or_seconds;
use talos::errors::chain;
use talos::proxy::{self, Backends, LocalAddresses, Proxy, ProxyConfig};

use crate::edge::{self, Errors};

/// How long calls in flight may take to finish after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// apid: the Talos API gateway.
#[derive(Debug, Parser)]
#[command(name = "apid", version = talos::version::TALOS_VERSION)]
pub struct Cli {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value_t = APID_LISTEN_ADDRESS)]
    pub listen: SocketAddr,

    /// machined's API socket.
    #[arg(long, value_name = "PATH", default_value = MACHINE_SOCKET_PATH)]
    pub machined_socket: PathBuf,

    /// Directory with ca.crt, server.crt, server.key and optionally client.crt, client.key.
    #[arg(long, value_name = "DIR", default_value = APID_SECRETS_PATH)]
    pub pki_dir: PathBuf,

    /// An address or name that means this node (besides its interface addresses and
    /// hostname): a `node`/`nodes` target equal to it is served locally. Repeatable.
    #[arg(long, value_name = "ADDR")]
    pub local_address: Vec<String>,

    /// Take roles from client certificates (false: every caller has every role, like
    /// `machine.features.rbac: false`).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = ArgAction::Set)]
    pub rbac: bool,

    /// Accept only client certificates whose extended key usage is exactly ClientAuth
    /// (`machine.features.apidCheckExtKeyUsage`).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = ArgAction::Set)]
    pub check_ext_key_usage: bool,

    /// One-to-many calls: how long each node may take (e.g. 30s, 500ms, 1m).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration_or_seconds)]
    pub node_timeout: Duration,

    /// How often to check the PKI directory and the interface addresses for changes.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration_or_seconds)]
    pub pki_poll_interval: Duration,

    /// Lifetime of the certificates apid issues itself when the PKI directory has `ca.key`.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration_or_seconds)]
    pub cert_ttl: Duration,

    /// An extra name or IP address for the self-issued server certificate
    /// (`machine.certSANs`). Repeatable.
    #[arg(long, value_name = "NAME_OR_IP")]
    pub cert_san: Vec<String>,
}

/// Entry point of the `apid` applet.
pub fn main(args: Vec<OsString>) -> ExitCode {
    edge::main(args, Errors::Named("apid"), edge::stderr_logging, run)
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(serve(cli));
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// The node's hostname, if it has one.
fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// The names of this node: the configured ones, the interface addresses, the hostname.
fn node_names(configured: &[String]) -> Vec<String> {
    let mut names = configured.to_vec();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for ifa in addrs {
            let Some(addr) = ifa.address else { continue };
            if let Some(v4) = addr.as_sockaddr_in() {
                names.push(v4.ip().to_string());
            } else if let Some(v6) = addr.as_sockaddr_in6() {
                names.push(v6.ip().to_string());
            }
        }
    }
    names.extend(hostname());
    names
}

/// Issues apid's certificates when the node holds the OS CA key and they are due.
fn refresh_certificates(issuer: &issue::SelfIssuer, names: &[String]) -> anyhow::Result<()> {
    if issuer.refresh(names, hostname().as_deref())? {
        tracing::info!("issued new server and client certificates from the OS CA");
    }
    Ok(())
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;

    let pki_dir = PkiDir::new(&cli.pki_dir);
    let issuer = issue::SelfIssuer::new(pki_dir.clone(), cli.cert_ttl, cli.cert_san.clone());
    refresh_certificates(&issuer, &node_names(&cli.local_address))?;
    let pki = pki::Pki::new(pki_dir, cli.check_ext_key_usage);
    let loaded = pki.load()?;
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("listening on {}", cli.listen))?;
    let bound = listener
        .local_addr()
        .context("reading the listening address")?;

    let forwarding = loaded.client.is_some();
    let backends = Backends::new(&cli.machined_socket, loaded.client);
    let proxy = Arc::new(Proxy::new(
        backends,
        LocalAddresses::new(node_names(&cli.local_address), bound.port()),
        ProxyConfig {
            rbac: cli.rbac,
            node_timeout: cli.node_timeout,
        },
    ));
    let tls = Arc::new(ServerTls::new(loaded.server));
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);

    tracing::info!(
        address = %bound,
        machined = %cli.machined_socket.display(),
        pki = %cli.pki_dir.display(),
        rbac = cli.rbac,
        check_ext_key_usage = cli.check_ext_key_usage,
        forwarding,
        "apid listening"
    );
    println!("listening on {bound}");

    let watcher = tokio::spawn(watch_changes(
        pki,
        issuer,
        loaded.stamp,
        cli.pki_poll_interval,
        cli.local_address.clone(),
        bound.port(),
        Arc::clone(&tls),
        Arc::clone(&proxy),
        shutdown_rx.clone(),
    ));
    let server = tokio::spawn(proxy::serve(listener, tls, proxy, shutdown_rx));

    tokio::select! {
        _ = sigterm.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = sigint.recv() => tracing::info!("SIGINT received, shutting down"),
    }
    let _ = shutdown_tx.send(true);
    if tokio::time::timeout(SHUTDOWN_GRACE, server).await.is_err() {
        tracing::warn!("calls still running after {SHUTDOWN_GRACE:?}; exiting anyway");
    }
    watcher.abort();
    Ok(())
}

/// Polls the PKI files and the node's addresses; applies changes.
#[allow(clippy::too_many_arguments)]
async fn watch_changes(
    pki: pki::Pki,
    issuer: issue::SelfIssuer,
    mut stamp: pki::Stamp,
    interval: Duration,
    configured: Vec<String>,
    port: u16,
    tls: Arc<ServerTls>,
    proxy: Arc<Proxy>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut failed: Option<pki::Stamp> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let names = node_names(&configured);
        if let Err(e) = refresh_certificates(&issuer, &names) {
            tracing::warn!(
                "cannot issue new certificates (keeping the old ones): {}",
                chain(e.as_ref())
            );
        }
        proxy.set_local_addresses(LocalAddresses::new(names, port));
        let now = pki.stamp();
        if now == stamp || failed.as_ref() == Some(&now) {
            continue;
        }
        match pki.load() {
            Ok(loaded) => {
                tls.set(loaded.server);
                let forwarding = loaded.client.is_some();
                proxy.backends().set_client_tls(loaded.client);
                stamp = loaded.stamp;
                failed = None;
                tracing::info!(forwarding, "certificates reloaded");
            }
            Err(e) => {
                // Possibly caught mid-update: keep the old certificates, retry on the next change.
                tracing::warn!(
                    "certificates changed but cannot be loaded (keeping the old ones): {}",
                    chain(e.as_ref())
                );
                failed = Some(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration_or_seconds("30s"),
            Ok(Duration::from_secs(30))
        );
        assert_eq!(
            parse_duration_or_seconds("500ms"),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(
            parse_duration_or_seconds("1m30s"),
            Ok(Duration::from_secs(90))
        );
        assert_eq!(
            parse_duration_or_seconds("2h"),
            Ok(Duration::from_secs(7200))
        );
        assert_eq!(parse_duration_or_seconds("7"), Ok(Duration::from_secs(7)));
        assert_eq!(
            parse_duration_or_seconds("1.5s"),
            Ok(Duration::from_millis(1500))
        );
        assert!(parse_duration_or_seconds("").is_err());
        assert!(parse_duration_or_seconds("5x").is_err());
        assert!(parse_duration_or_seconds("s").is_err());
        assert!(parse_duration_or_seconds("10").is_ok());
    }

    #[test]
    fn flags() {
        let cli = Cli::try_parse_from(["apid"]).unwrap();
        assert_eq!(cli.listen, "0.0.0.0:50000".parse().unwrap());
        assert!(cli.rbac);
        assert!(cli.check_ext_key_usage);
        assert_eq!(cli.node_timeout, Duration::from_secs(30));
        assert_eq!(cli.machined_socket, PathBuf::from(MACHINE_SOCKET_PATH));
        assert_eq!(cli.cert_ttl, Duration::from_secs(24 * 3600));
        assert!(cli.cert_san.is_empty());
        let cli = Cli::try_parse_from([
            "apid",
            "--rbac=false",
            "--check-ext-key-usage",
            "false",
            "--local-address",
            "10.5.0.2",
            "--local-address=node-1",
            "--node-timeout=2s",
            "--cert-ttl=4s",
            "--cert-san",
            "api.example.org",
            "--cert-san=10.0.0.9",
        ])
        .unwrap();
        assert!(!cli.rbac);
        assert!(!cli.check_ext_key_usage);
        assert_eq!(cli.local_address, ["10.5.0.2", "node-1"]);
        assert_eq!(cli.node_timeout, Duration::from_secs(2));
        assert_eq!(cli.cert_ttl, Duration::from_secs(4));
        assert_eq!(cli.cert_san, ["api.example.org", "10.0.0.9"]);
    }
}
