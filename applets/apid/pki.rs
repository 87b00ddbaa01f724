//! apid's certificates: loaded from the PKI directory ([`talos::auth::pki_dir`]), reloaded
//! when the files change.
//!
//! `ca.crt` (the CAs whose client certificates are accepted) also verifies other nodes when
//! forwarding; `server.crt`/`server.key` are refreshed by machined (or by apid itself,
//! [`super::issue`]) before they expire; `client.crt`/`client.key`, when present, are the
//! `os:impersonator` identity for forwarding to other nodes (control planes only).

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use rustls::{ClientConfig, ServerConfig};
use talos::auth::pki_dir::{PkiDir, CA_CRT, CLIENT_CRT, CLIENT_KEY, SERVER_CRT, SERVER_KEY};
use talos::auth::tls;

/// The files whose changes apid follows.
const FILES: [&str; 5] = [CA_CRT, SERVER_CRT, SERVER_KEY, CLIENT_CRT, CLIENT_KEY];

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
    dir: PkiDir,
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
    pub fn new(dir: PkiDir, check_ext_key_usage: bool) -> Self {
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
                std::fs::metadata(self.dir.file(name))
                    .ok()
                    .map(|m| (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
            })
            .collect()
    }

    /// Reads the files and builds both TLS configurations.
    pub fn load(&self) -> anyhow::Result<Loaded> {
        // Stamp first: a change during the read is seen by the next poll.
        let stamp = self.stamp();
        let ca = read(&self.dir.ca_crt())?;
        let server_crt = read(&self.dir.server_crt())?;
        let server_key = read(&self.dir.server_key())?;
        let server = tls::server_mtls(&[&ca], &server_crt, &server_key, self.check_ext_key_usage)
            .with_context(|| {
            format!(
                "building the server TLS configuration from {}, {} and {} in {}",
                CA_CRT,
                SERVER_CRT,
                SERVER_KEY,
                self.dir.root().display()
            )
        })?;
        let client = match (
            read_optional(&self.dir.client_crt())?,
            read_optional(&self.dir.client_key())?,
        ) {
            (Some(crt), Some(key)) => Some(Arc::new(tls::client_mtls(&ca, &crt, &key).with_context(
                || {
                    format!(
                        "building the forwarding TLS configuration from {} and {} in {}",
                        CLIENT_CRT,
                        CLIENT_KEY,
                        self.dir.root().display()
                    )
                },
            )?)),
            (None, None) => None,
            (Some(_), None) => anyhow::bail!(
                "{} has {CLIENT_CRT} but no {CLIENT_KEY}: give both (forwarding) or neither (no forwarding)",
                self.dir.root().display()
            ),
            (None, Some(_)) => anyhow::bail!(
                "{} has {CLIENT_KEY} but no {CLIENT_CRT}: give both (forwarding) or neither (no forwarding)",
                self.dir.root().display()
            ),
        };
        Ok(Loaded {
            server: Arc::new(server),
            client,
            stamp,
        })
    }
}
