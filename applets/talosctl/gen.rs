//! `talosctl gen`: secrets, CAs, keys, CSRs, certificates, and machine configs.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use talos::fsutil::{self, WriteOptions};
use talos::secrets::{
    Bundle, CertParams, Certificate, CertificateAuthority, CertificateRequest, ExtKeyUsage,
    KeyAlgorithm, KeyUsage, PrivateKey, VersionContract,
};
use time::{Duration, OffsetDateTime};

use super::gen_config;

/// Roles Talos knows (`pkg/machinery/role`); `gen csr` refuses others.
const KNOWN_ROLES: &[&str] = &[
    "os:admin",
    "os:operator",
    "os:reader",
    "os:etcd:backup",
    "os:impersonator",
];

/// Validity of `gen keypair` certificates (siderolabs/crypto's default, 24 h).
const KEYPAIR_VALIDITY: Duration = Duration::hours(24);

/// `--force`, which Talos declares once on `gen` for all subcommands.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ForceFlag {
    /// will overwrite existing files
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// `talosctl gen` subcommands.
#[derive(Debug, Subcommand)]
pub enum GenCmd {
    /// Generates a self-signed X.509 certificate authority
    Ca(CaArgs),
    /// Generates a set of configuration files for Talos cluster.
    Config(Box<gen_config::GenConfigArgs>),
    /// Generates an X.509 Ed25519 certificate
    Crt(CrtArgs),
    /// Generates a CSR using an Ed25519 private key
    Csr(CsrArgs),
    /// Generates an Ed25519 private key
    Key(KeyArgs),
    /// Generates an X.509 Ed25519 key pair
    Keypair(KeypairArgs),
    /// Generates a secrets bundle file which can later be used to generate a config
    Secrets(SecretsArgs),
}

/// Flags of `gen ca`.
#[derive(Debug, clap::Args)]
pub struct CaArgs {
    /// X.509 distinguished name for the Organization
    #[arg(long, required = true)]
    pub organization: String,
    /// the hours from now on which the certificate validity period ends
    #[arg(long, default_value_t = 87600)]
    pub hours: i64,
    /// generate in RSA format
    #[arg(long)]
    pub rsa: bool,
    #[command(flatten)]
    force: ForceFlag,
}

/// Flags of `gen crt`.
#[derive(Debug, clap::Args)]
pub struct CrtArgs {
    /// path to the PEM encoded CERTIFICATE (basename: `<ca>.crt` and `<ca>.key` are read)
    #[arg(long, required = true)]
    pub ca: String,
    /// path to the PEM encoded CERTIFICATE REQUEST
    #[arg(long, required = true)]
    pub csr: PathBuf,
    /// the basename of the generated file
    #[arg(long, required = true)]
    pub name: String,
    /// the hours from now on which the certificate validity period ends
    #[arg(long, default_value_t = 24)]
    pub hours: i64,
    #[command(flatten)]
    force: ForceFlag,
}

/// Flags of `gen csr`.
#[derive(Debug, clap::Args)]
pub struct CsrArgs {
    /// path to the PEM encoded EC or RSA PRIVATE KEY
    #[arg(long, required = true)]
    pub key: PathBuf,
    /// generate the certificate for this IP address
    #[arg(long, required = true)]
    pub ip: String,
    /// roles
    #[arg(long, value_delimiter = ',', default_value = "os:admin")]
    pub roles: Vec<String>,
    #[command(flatten)]
    force: ForceFlag,
}

/// Flags of `gen key`.
#[derive(Debug, clap::Args)]
pub struct KeyArgs {
    /// the basename of the generated file
    #[arg(long, required = true)]
    pub name: String,
    #[command(flatten)]
    force: ForceFlag,
}

/// Flags of `gen keypair`.
#[derive(Debug, clap::Args)]
pub struct KeypairArgs {
    /// generate the certificate for this IP address
    #[arg(long)]
    pub ip: Option<String>,
    /// X.509 distinguished name for the Organization
    #[arg(long, required = true)]
    pub organization: String,
    #[command(flatten)]
    force: ForceFlag,
}

/// Flags of `gen secrets`.
#[derive(Debug, clap::Args)]
pub struct SecretsArgs {
    /// path of the output file
    #[arg(short = 'o', long, default_value = "secrets.yaml")]
    pub output_file: PathBuf,
    /// the desired Talos version to generate secrets bundle for (backwards compatibility, e.g. v0.8)
    #[arg(long)]
    pub talos_version: Option<String>,
    /// use the provided controlplane Talos machine configuration as input
    #[arg(long)]
    pub from_controlplane_config: Option<PathBuf>,
    /// use a Kubernetes PKI directory (e.g. /etc/kubernetes/pki) as input
    #[arg(short = 'p', long)]
    pub from_kubernetes_pki: Option<PathBuf>,
    /// use the provided bootstrap token as input
    #[arg(short = 't', long)]
    pub kubernetes_bootstrap_token: Option<String>,
    #[command(flatten)]
    force: ForceFlag,
}

/// Runs a `gen` subcommand.
pub fn run(cmd: GenCmd, global: &super::Global) -> anyhow::Result<()> {
    match cmd {
        GenCmd::Ca(a) => gen_ca(&a),
        GenCmd::Config(args) => gen_config::run(*args, global),
        GenCmd::Crt(a) => gen_crt(&a),
        GenCmd::Csr(a) => gen_csr(&a),
        GenCmd::Key(a) => gen_key(&a),
        GenCmd::Keypair(a) => gen_keypair(&a),
        GenCmd::Secrets(a) => gen_secrets(&a),
    }
}

fn hours(h: i64) -> anyhow::Result<Duration> {
    if h <= 0 {
        bail!("--hours must be positive, got {h}");
    }
    Ok(Duration::hours(h))
}

fn parse_ip(s: &str) -> anyhow::Result<IpAddr> {
    s.parse().with_context(|| format!("invalid IP: {s}"))
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("error reading {what} {}", path.display()))
}

/// Checks every output first, then writes them one by one (each atomically).
fn write_all(outputs: &[(PathBuf, Vec<u8>)], force: bool) -> anyhow::Result<()> {
    let paths: Vec<&Path> = outputs.iter().map(|(p, _)| p.as_path()).collect();
    fsutil::check_writable(&paths, force)?;
    for (path, data) in outputs {
        fsutil::write_atomic(path, data, WriteOptions::PRIVATE.overwrite(force))?;
    }
    Ok(())
}

fn gen_ca(a: &CaArgs) -> anyhow::Result<()> {
    let params = CertParams::new(OffsetDateTime::now_utc(), hours(a.hours)?).organizations(
        [a.organization.as_str()]
            .into_iter()
            .filter(|o| !o.is_empty()),
    );
    let base = &a.organization;
    let outputs = [
        format!("{base}.crt"),
        format!("{base}.sha256"),
        format!("{base}.key"),
    ];
    let paths: Vec<&Path> = outputs.iter().map(Path::new).collect();
    // Refuse before the (possibly slow) key generation.
    fsutil::check_writable(&paths, a.force.force)?;
    let alg = if a.rsa {
        KeyAlgorithm::Rsa
    } else {
        KeyAlgorithm::Ed25519
    };
    let ca = CertificateAuthority::generate(alg, &params).context("error generating CA")?;
    write_all(
        &[
            (PathBuf::from(&outputs[0]), ca.cert.to_pem()),
            (
                PathBuf::from(&outputs[1]),
                ca.cert.spki_hash()?.into_bytes(),
            ),
            (PathBuf::from(&outputs[2]), ca.key.to_pem()?),
        ],
        a.force.force,
    )
}

fn gen_key(a: &KeyArgs) -> anyhow::Result<()> {
    let key = PrivateKey::generate_ed25519().context("error generating key")?;
    write_all(
        &[(PathBuf::from(format!("{}.key", a.name)), key.to_pem()?)],
        a.force.force,
    )
}

fn gen_csr(a: &CsrArgs) -> anyhow::Result<()> {
    let key = PrivateKey::from_pem(&read(&a.key, "key")?)
        .with_context(|| format!("error parsing key {}", a.key.display()))?;
    let ip = parse_ip(&a.ip)?;
    let mut roles: Vec<String> = a
        .roles
        .iter()
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .collect();
    let unknown: Vec<&str> = roles
        .iter()
        .map(String::as_str)
        .filter(|r| !KNOWN_ROLES.contains(r))
        .collect();
    if !unknown.is_empty() {
        bail!("unknown roles: {}", unknown.join(", "));
    }
    roles.sort();
    roles.dedup();
    let params = CertParams::new(OffsetDateTime::now_utc(), Duration::hours(24))
        .organizations(roles)
        .ip_addresses([ip]);
    let csr = CertificateRequest::new(&key, &params).context("error generating CSR")?;
    write_all(
        &[(a.key.with_extension("csr"), csr.to_pem())],
        a.force.force,
    )
}

fn gen_crt(a: &CrtArgs) -> anyhow::Result<()> {
    let ca_crt = PathBuf::from(format!("{}.crt", a.ca));
    let ca_key = PathBuf::from(format!("{}.key", a.ca));
    let ca = CertificateAuthority::from_pem(&read(&ca_crt, "CA cert")?, &read(&ca_key, "CA key")?)
        .with_context(|| {
            format!(
                "error loading CA {} / {}",
                ca_crt.display(),
                ca_key.display()
            )
        })?;
    let csr = CertificateRequest::from_pem(&read(&a.csr, "CSR")?)
        .with_context(|| format!("error parsing CSR {}", a.csr.display()))?;
    let params = CertParams::new(OffsetDateTime::now_utc(), hours(a.hours)?)
        .key_usage(KeyUsage::DIGITAL_SIGNATURE)
        .ext_key_usage([ExtKeyUsage::ClientAuth]);
    let crt: Certificate = ca
        .sign_csr(&csr, &params, None)
        .context("error signing certificate")?;
    write_all(
        &[(PathBuf::from(format!("{}.crt", a.name)), crt.to_pem())],
        a.force.force,
    )
}

fn gen_keypair(a: &KeypairArgs) -> anyhow::Result<()> {
    let mut params = CertParams::new(OffsetDateTime::now_utc(), KEYPAIR_VALIDITY).organizations(
        [a.organization.as_str()]
            .into_iter()
            .filter(|o| !o.is_empty()),
    );
    if let Some(ip) = &a.ip {
        params = params.ip_addresses([parse_ip(ip)?]);
    }
    let ca = CertificateAuthority::generate(KeyAlgorithm::Ed25519, &params)
        .context("error generating CA")?;
    let base = &a.organization;
    write_all(
        &[
            (PathBuf::from(format!("{base}.crt")), ca.cert.to_pem()),
            (PathBuf::from(format!("{base}.key")), ca.key.to_pem()?),
        ],
        a.force.force,
    )
}

fn gen_secrets(a: &SecretsArgs) -> anyhow::Result<()> {
    let contract = match &a.talos_version {
        Some(v) => VersionContract::parse(v).context("invalid talos-version")?,
        None => VersionContract::CURRENT,
    };
    // Refuse before generating anything (an RSA-4096 key takes a while).
    fsutil::check_writable(&[a.output_file.as_path()], a.force.force)?;
    let now = OffsetDateTime::now_utc();
    let bundle = if let Some(dir) = &a.from_kubernetes_pki {
        Bundle::from_kubernetes_pki(dir, a.kubernetes_bootstrap_token.as_deref(), contract, now)
    } else if let Some(path) = &a.from_controlplane_config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to load controlplane config {}", path.display()))?;
        Bundle::from_controlplane_config(&text, &path.display().to_string())
    } else {
        Bundle::generate_at(contract, now)
    }
    .context("failed to create secrets bundle")?;
    bundle.save(&a.output_file, a.force.force)?;
    Ok(())
}
