//! apid's certificates: loaded from the PKI directory, reloaded when the files change.
//!
//! | file | what |
//! |---|---|
//! | `ca.crt` | PEM bundle of the CAs whose client certificates are accepted (OS CA + accepted CAs); also verifies other nodes when forwarding |
//! | `server.crt`, `server.key` | this node's server certificate (refreshed by machined before it expires) |
//! | `client.crt`, `client.key` | optional `os:impersonator` identity for forwarding to other nodes (control planes only) |

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use rustls::{ClientConfig, ServerConfig};
use talos::auth::tls;

/// File names inside the PKI directory.
pub const CA: &str = "ca.crt";
/// Server certificate.
pub const SERVER_CRT: &str = "server.crt";
/// Server key.
pub const SERVER_KEY: &str = "server.key";
/// Forwarding client certificate.
pub const CLIENT_CRT: &str = "client.crt";
/// Forwarding client key.
pub const CLIENT_KEY: &str = "client.key";

const FILES: [&str; 5] = [CA, SERVER_CRT, SERVER_KEY, CLIENT_CRT, CLIENT_KEY];

/// What identifies a version of the files: per file, (device, inode, size, mtime) or absent.
pub type Stamp = Vec<Option<(u64, u64, u64, i64, i64)>>;

/// TLS configurations built from one version of the files.
pub struct Loaded {
    /// apid's server configuration.
    pub server: Arc<ServerConfig>,
    /// The forwarding identity, if the directory has one.
    pub client: Option<Arc<ClientConfig>>,
    /// The files' stamp when they were read.
    pub stamp: Stamp,
}

/// The PKI directory.
#[derive(Debug, Clone)]
pub struct Pki {
    dir: PathBuf,
    check_ext_key_usage: bool,
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn read_optional(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(data) => Ok(Some(data)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

impl Pki {
    /// The directory `dir`; `check_ext_key_usage` makes apid accept only client certificates
    /// whose extended key usage is exactly ClientAuth.
    pub fn new(dir: PathBuf, check_ext_key_usage: bool) -> Self {
        Pki {
            dir,
            check_ext_key_usage,
        }
    }

    /// The current stamp of the files.
    pub fn stamp(&self) -> Stamp {
        FILES
            .iter()
            .map(|name| {
                std::fs::metadata(self.dir.join(name))
                    .ok()
                    .map(|m| (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
            })
            .collect()
    }

    /// Reads the files and builds both TLS configurations.
    pub fn load(&self) -> anyhow::Result<Loaded> {
        // Stamp first: a change during the read is seen by the next poll.
        let stamp = self.stamp();
        let path = |name: &str| self.dir.join(name);
        let ca = read(&path(CA))?;
        let server_crt = read(&path(SERVER_CRT))?;
        let server_key = read(&path(SERVER_KEY))?;
        let server = tls::server_mtls(&[&ca], &server_crt, &server_key, self.check_ext_key_usage)
            .with_context(|| {
            format!(
                "building the server TLS configuration from {}, {} and {} in {}",
                CA,
                SERVER_CRT,
                SERVER_KEY,
                self.dir.display()
            )
        })?;
        let client = match (
            read_optional(&path(CLIENT_CRT))?,
            read_optional(&path(CLIENT_KEY))?,
        ) {
            (Some(crt), Some(key)) => Some(Arc::new(tls::client_mtls(&ca, &crt, &key).with_context(
                || {
                    format!(
                        "building the forwarding TLS configuration from {} and {} in {}",
                        CLIENT_CRT,
                        CLIENT_KEY,
                        self.dir.display()
                    )
                },
            )?)),
            (None, None) => None,
            (Some(_), None) => anyhow::bail!(
                "{} has {CLIENT_CRT} but no {CLIENT_KEY}: give both (forwarding) or neither (no forwarding)",
                self.dir.display()
            ),
            (None, Some(_)) => anyhow::bail!(
                "{} has {CLIENT_KEY} but no {CLIENT_CRT}: give both (forwarding) or neither (no forwarding)",
                self.dir.display()
            ),
        };
        Ok(Loaded {
            server: Arc::new(server),
            client,
            stamp,
        })
    }
}
