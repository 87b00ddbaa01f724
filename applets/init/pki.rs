//! The PKI machined hands to apid and trustd at boot.
//!
//! Control planes ([`write_control_plane`]):
//!
//! | file | content |
//! |---|---|
//! | apid's `ca.crt` | the OS CA (`machine.ca.crt`) followed by `machine.acceptedCAs` |
//! | apid's `ca.key` | the OS CA key: apid issues its own server certificate |
//! | trustd's `ca.crt`, `ca.key` | the same |
//! | trustd's `server.crt`, `server.key` | trustd's TLS certificate, signed by the OS CA, for the node's addresses, hostname, `machine.certSANs` and the control-plane endpoint host |
//! | trustd's `token` | `machine.token` (0600) |
//!
//! (The directories and file names: [`talos::auth::pki_dir`].)
//!
//! Workers ([`write_worker`]) hold no CA key: they ask trustd on the control plane
//! (`<cluster.controlPlane.endpoint host>:50001`) for a server certificate with the machine
//! token, retrying with back-off, and write `server.crt`, `server.key` and `ca.crt` (the CAs
//! the control plane accepts) for apid.
//!
//! Keys and the token are 0600, certificates 0644, directories 0700; when running as root the
//! directories and files are handed to the service's user ([`Owner`]).

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use base64::Engine as _;
use talos::auth::PkiDir;
use talos::client::trustd::{request_certificate, CertificateSubject};
use talos::config::{Config, MachineConfig};
use talos::constants::{APID_USER_ID, TRUSTD_PORT, TRUSTD_USER_ID};
use talos::errors::chain;
use talos::fsutil::{write_atomic, WriteOptions};
use talos::secrets::{CertParams, CertificateAuthority, ExtKeyUsage};

/// The user and group a service runs as (Talos: apid 50, trustd 51).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// apid's user in Talos.
pub const APID_OWNER: Owner = Owner {
    uid: APID_USER_ID,
    gid: APID_USER_ID,
};
/// trustd's user in Talos.
pub const TRUSTD_OWNER: Owner = Owner {
    uid: TRUSTD_USER_ID,
    gid: TRUSTD_USER_ID,
};

/// How long trustd's own certificate is valid.
const TRUSTD_CERT_TTL: time::Duration = time::Duration::days(365);

/// The names this node is known by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeIdentity {
    /// Host name.
    pub hostname: String,
    /// Interface addresses (no loopback, no IPv6 link-local).
    pub addresses: Vec<IpAddr>,
}

impl NodeIdentity {
    /// Reads the host name and the interface addresses.
    pub fn current() -> NodeIdentity {
        let hostname = talos::sys::fs::hostname().unwrap_or_default();
        let mut addresses = Vec::new();
        if let Ok(ifaddrs) = nix::ifaddrs::getifaddrs() {
            for ifa in ifaddrs {
                let Some(addr) = ifa.address else { continue };
                let ip = if let Some(v4) = addr.as_sockaddr_in() {
                    IpAddr::V4(v4.ip())
                } else if let Some(v6) = addr.as_sockaddr_in6() {
                    IpAddr::V6(v6.ip())
                } else {
                    continue;
                };
                let link_local_v6 =
                    matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
                if ip.is_loopback() || link_local_v6 || addresses.contains(&ip) {
                    continue;
                }
                addresses.push(ip);
            }
        }
        NodeIdentity {
            hostname,
            addresses,
        }
    }
}

fn decode_b64_pem(value: &str, key: &str) -> anyhow::Result<Vec<u8>> {
    if value.trim().is_empty() {
        bail!("{key} is empty");
    }
    base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .with_context(|| format!("{key} is not valid base64"))
}

fn machine(config: &Config) -> anyhow::Result<&MachineConfig> {
    config
        .v1alpha1()
        .and_then(|c| c.machine.as_ref())
        .context("the machine config has no v1alpha1 `machine` section")
}

/// The OS CA certificate followed by the accepted CAs (PEM).
pub fn ca_bundle(machine: &MachineConfig) -> anyhow::Result<Vec<u8>> {
    let ca = machine.ca.as_ref().context("machine.ca is missing")?;
    let mut bundle = decode_b64_pem(&ca.crt, "machine.ca.crt")?;
    for (i, accepted) in machine.accepted_cas.iter().enumerate() {
        if !bundle.ends_with(b"\n") {
            bundle.push(b'\n');
        }
        bundle.extend(decode_b64_pem(
            &accepted.crt,
            &format!("machine.acceptedCAs[{i}].crt"),
        )?);
    }
    Ok(bundle)
}

/// The host of `cluster.controlPlane.endpoint` (`https://HOST:6443`).
pub fn control_plane_host(config: &Config) -> anyhow::Result<String> {
    let endpoint = config
        .v1alpha1()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.control_plane.as_ref())
        .and_then(|c| c.endpoint.clone())
        .context("cluster.controlPlane.endpoint is missing")?;
    let rest = endpoint
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(&endpoint);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default().to_string()
    } else {
        authority
            .rsplit_once(':')
            .map_or(authority, |(h, _)| h)
            .to_string()
    };
    if host.is_empty() {
        bail!("cluster.controlPlane.endpoint {endpoint:?} has no host");
    }
    Ok(host)
}

/// trustd's endpoint for workers: `<control-plane host>:50001`.
pub fn trustd_endpoint(config: &Config) -> anyhow::Result<String> {
    let host = control_plane_host(config)?;
    Ok(if host.contains(':') {
        format!("[{host}]:{TRUSTD_PORT}")
    } else {
        format!("{host}:{TRUSTD_PORT}")
    })
}

fn prepare_dir(dir: &Path, owner: Option<Owner>) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("setting the mode of {}", dir.display()))?;
    chown(dir, owner)
}

fn chown(path: &Path, owner: Option<Owner>) -> anyhow::Result<()> {
    let Some(owner) = owner else { return Ok(()) };
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    std::os::unix::fs::chown(path, Some(owner.uid), Some(owner.gid))
        .with_context(|| format!("handing {} to uid {}", path.display(), owner.uid))
}

fn write(path: &Path, data: &[u8], mode: u32, owner: Option<Owner>) -> anyhow::Result<()> {
    write_atomic(path, data, WriteOptions::mode(mode).overwrite(true))
        .with_context(|| format!("writing {}", path.display()))?;
    chown(path, owner)
}

/// Writes the control-plane PKI for apid (`apid_dir`) and trustd (`trustd_dir`).
pub fn write_control_plane(
    config: &Config,
    apid_dir: &PkiDir,
    trustd_dir: &PkiDir,
    node: &NodeIdentity,
    owners: Option<(Owner, Owner)>,
) -> anyhow::Result<()> {
    let machine = machine(config)?;
    let ca = machine.ca.as_ref().context("machine.ca is missing")?;
    let ca_crt = decode_b64_pem(&ca.crt, "machine.ca.crt")?;
    let ca_key = decode_b64_pem(&ca.key, "machine.ca.key")
        .context("a control plane needs the OS CA key (machine.ca.key)")?;
    let authority = CertificateAuthority::from_pem(&ca_crt, &ca_key)
        .context("machine.ca: the certificate and key do not form a usable CA")?;
    let bundle = ca_bundle(machine)?;
    if machine.token.is_empty() {
        bail!("machine.token is empty: trustd needs it to authenticate workers");
    }
    let (apid_owner, trustd_owner) = owners.unzip();

    prepare_dir(apid_dir.root(), apid_owner)?;
    write(&apid_dir.ca_crt(), &bundle, 0o644, apid_owner)?;
    write(&apid_dir.ca_key(), &ca_key, 0o600, apid_owner)?;

    let mut dns: Vec<String> = Vec::new();
    let mut ips: Vec<IpAddr> = node.addresses.clone();
    let mut add = |name: &str| match name.parse::<IpAddr>() {
        Ok(ip) => {
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
        Err(_) if !name.is_empty() => {
            let name = name.to_ascii_lowercase();
            if !dns.contains(&name) {
                dns.push(name);
            }
        }
        Err(_) => {}
    };
    add(&node.hostname);
    for san in &machine.cert_sans {
        add(san);
    }
    if let Ok(host) = control_plane_host(config) {
        add(&host);
    }
    add("127.0.0.1");
    add("::1");
    add("localhost");
    let mut params = CertParams::new(
        time::OffsetDateTime::now_utc() - time::Duration::minutes(5),
        TRUSTD_CERT_TTL,
    )
    .ip_addresses(ips)
    .dns_names(dns)
    .ext_key_usage([ExtKeyUsage::ServerAuth]);
    params.common_name = Some(node.hostname.clone()).filter(|h| !h.is_empty());
    let (cert, key) = authority
        .issue(&params)
        .context("issuing trustd's server certificate")?;

    prepare_dir(trustd_dir.root(), trustd_owner)?;
    write(&trustd_dir.ca_crt(), &bundle, 0o644, trustd_owner)?;
    write(&trustd_dir.ca_key(), &ca_key, 0o600, trustd_owner)?;
    write(
        &trustd_dir.server_crt(),
        &cert.to_pem(),
        0o644,
        trustd_owner,
    )?;
    write(
        &trustd_dir.server_key(),
        &key.to_pem().context("encoding trustd's key")?,
        0o600,
        trustd_owner,
    )?;
    write(
        &trustd_dir.token(),
        machine.token.as_bytes(),
        0o600,
        trustd_owner,
    )?;
    Ok(())
}

/// How a worker retries trustd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerRetry {
    /// First wait.
    pub initial_delay: Duration,
    /// Longest wait.
    pub max_delay: Duration,
    /// Give up after this long (Talos's boot timeout is 70 min).
    pub total: Duration,
}

impl Default for WorkerRetry {
    fn default() -> Self {
        WorkerRetry {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15),
            total: Duration::from_secs(70 * 60),
        }
    }
}

/// Gets apid's certificate from trustd and writes apid's PKI directory (worker nodes).
/// `endpoints` overrides the endpoint derived from the config (tests).
pub async fn write_worker(
    config: &Config,
    apid_dir: &PkiDir,
    node: &NodeIdentity,
    endpoints: Option<Vec<String>>,
    retry: WorkerRetry,
    owner: Option<Owner>,
) -> anyhow::Result<()> {
    let machine = machine(config)?;
    let ca_crt = decode_b64_pem(
        &machine.ca.as_ref().context("machine.ca is missing")?.crt,
        "machine.ca.crt",
    )?;
    let endpoints = match endpoints {
        Some(e) => e,
        None => vec![trustd_endpoint(config)?],
    };
    let mut dns_names = Vec::new();
    if !node.hostname.is_empty() {
        dns_names.push(node.hostname.clone());
    }
    let mut ips = node.addresses.clone();
    for san in &machine.cert_sans {
        match san.parse::<IpAddr>() {
            Ok(ip) if !ips.contains(&ip) => ips.push(ip),
            Ok(_) => {}
            Err(_) if !dns_names.contains(san) => dns_names.push(san.clone()),
            Err(_) => {}
        }
    }
    let subject = CertificateSubject {
        common_name: Some(node.hostname.clone()).filter(|h| !h.is_empty()),
        ips,
        dns_names,
    };
    let started = Instant::now();
    let mut delay = retry.initial_delay;
    let mut attempt = 0u32;
    let issued = loop {
        attempt += 1;
        match request_certificate(&endpoints, &machine.token, &ca_crt, &subject).await {
            Ok(issued) => break issued,
            Err(e) => {
                if started.elapsed() + delay > retry.total {
                    return Err(e).with_context(|| {
                        format!(
                            "requesting apid's certificate from trustd at {} ({attempt} attempts)",
                            endpoints.join(", ")
                        )
                    });
                }
                tracing::warn!(
                    "requesting apid's certificate from trustd at {} failed (attempt {attempt}): {}; retrying in {delay:?}",
                    endpoints.join(", "),
                    chain(&e)
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(retry.max_delay);
            }
        }
    };
    tracing::info!(
        endpoint = issued.endpoint,
        "apid's certificate issued by trustd"
    );
    prepare_dir(apid_dir.root(), owner)?;
    // A worker must never hold the OS CA key (left over from a former control-plane config).
    let _ = std::fs::remove_file(apid_dir.ca_key());
    let ca = if issued.ca_pem.is_empty() {
        ca_crt
    } else {
        issued.ca_pem.clone()
    };
    // The key first: apid must never see a certificate without its key.
    write(&apid_dir.server_key(), &issued.key_pem, 0o600, owner)?;
    write(&apid_dir.server_crt(), &issued.crt_pem, 0o644, owner)?;
    write(&apid_dir.ca_crt(), &ca, 0o644, owner)?;
    Ok(())
}

#[cfg(test)]
mod tests;
