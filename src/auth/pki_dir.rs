//! The PKI directory machined hands to apid and trustd: which file holds what.
//!
//! machined writes it (control planes from the machine config, workers with a certificate from
//! trustd); apid and trustd read it and reload it when it changes. Both sides name the files
//! through [`PkiDir`], so the layout is written down once:
//!
//! | file | apid (`/system/secrets/apid`) | trustd (`/system/secrets/trustd`) |
//! |---|---|---|
//! | `ca.crt` | the CAs whose client certificates are accepted (OS CA first, then `machine.acceptedCAs`) | the OS CA that signs, then the accepted CAs |
//! | `ca.key` | the OS CA key, control planes only: apid issues its own certificates | the OS CA key |
//! | `server.crt`, `server.key` | apid's server certificate | trustd's server certificate |
//! | `client.crt`, `client.key` | optional `os:impersonator` identity for forwarding to other nodes | — |
//! | `token` | — | the machine token (`machine.token`) |

use std::path::{Path, PathBuf};

use crate::constants::{APID_SECRETS_PATH, TRUSTD_SECRETS_PATH};

/// The CA bundle.
pub const CA_CRT: &str = "ca.crt";
/// The OS CA key.
pub const CA_KEY: &str = "ca.key";
/// The server certificate.
pub const SERVER_CRT: &str = "server.crt";
/// The server key.
pub const SERVER_KEY: &str = "server.key";
/// The forwarding client certificate (apid).
pub const CLIENT_CRT: &str = "client.crt";
/// The forwarding client key (apid).
pub const CLIENT_KEY: &str = "client.key";
/// The machine token (trustd).
pub const TOKEN: &str = "token";

/// A PKI directory: `root` and the files in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiDir {
    root: PathBuf,
}

impl PkiDir {
    /// The PKI directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        PkiDir { root: root.into() }
    }

    /// apid's directory on a node.
    pub fn apid() -> Self {
        PkiDir::new(APID_SECRETS_PATH)
    }

    /// trustd's directory on a node.
    pub fn trustd() -> Self {
        PkiDir::new(TRUSTD_SECRETS_PATH)
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file `name` (one of this module's constants) in the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// `ca.crt`: the CA bundle.
    pub fn ca_crt(&self) -> PathBuf {
        self.file(CA_CRT)
    }

    /// `ca.key`: the OS CA key (control planes).
    pub fn ca_key(&self) -> PathBuf {
        self.file(CA_KEY)
    }

    /// `server.crt`.
    pub fn server_crt(&self) -> PathBuf {
        self.file(SERVER_CRT)
    }

    /// `server.key`.
    pub fn server_key(&self) -> PathBuf {
        self.file(SERVER_KEY)
    }

    /// `client.crt`: apid's forwarding certificate.
    pub fn client_crt(&self) -> PathBuf {
        self.file(CLIENT_CRT)
    }

    /// `client.key`: apid's forwarding key.
    pub fn client_key(&self) -> PathBuf {
        self.file(CLIENT_KEY)
    }

    /// `token`: trustd's machine token.
    pub fn token(&self) -> PathBuf {
        self.file(TOKEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_named_as_machined_writes_them() {
        let apid = PkiDir::apid();
        assert_eq!(apid.root(), Path::new("/system/secrets/apid"));
        assert_eq!(apid.ca_crt(), Path::new("/system/secrets/apid/ca.crt"));
        assert_eq!(apid.ca_key(), Path::new("/system/secrets/apid/ca.key"));
        assert_eq!(
            apid.server_crt(),
            Path::new("/system/secrets/apid/server.crt")
        );
        assert_eq!(
            apid.server_key(),
            Path::new("/system/secrets/apid/server.key")
        );
        assert_eq!(
            apid.client_crt(),
            Path::new("/system/secrets/apid/client.crt")
        );
        assert_eq!(
            apid.client_key(),
            Path::new("/system/secrets/apid/client.key")
        );
        let trustd = PkiDir::trustd();
        assert_eq!(trustd.token(), Path::new("/system/secrets/trustd/token"));
        assert_eq!(
            PkiDir::new("/tmp/x").server_crt(),
            Path::new("/tmp/x/server.crt")
        );
    }
}
