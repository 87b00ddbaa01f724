//! The client configuration file, talosconfig: contexts of endpoints, nodes and credentials,
//! in Talos 1.7's YAML format, found and saved the way talosctl does.
//!
//! Lookup order when no path is given: `$TALOSCONFIG`, `~/.talos/config`, then the read-only
//! `/var/run/secrets/talos.dev/config` (mounted into pods by Talos's Kubernetes integration).
//! The first existing file wins; when none exists, an empty config is created at the first
//! writable candidate. An explicitly given path is created empty when missing.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::fsutil::{write_atomic, WriteError, WriteOptions};
use crate::secrets::Bundle;

/// Environment variable naming the talosconfig file.
pub const TALOSCONFIG_ENV: &str = "TALOSCONFIG";
/// Directory under `$HOME` holding the default talosconfig.
pub const TALOS_DIR: &str = ".talos";
/// File name of the talosconfig in [`TALOS_DIR`] and in
/// [`SERVICE_ACCOUNT_MOUNT_PATH`](crate::constants::SERVICE_ACCOUNT_MOUNT_PATH).
pub const TALOSCONFIG_FILENAME: &str = "config";

/// Errors of talosconfig handling.
#[derive(Debug, thiserror::Error)]
pub enum TalosConfigError {
    /// The file could not be read.
    #[error("cannot read talosconfig {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid talosconfig.
    #[error("cannot parse talosconfig {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The YAML error.
        #[source]
        source: serde_yaml::Error,
    },
    /// The admin client certificate of a generated talosconfig could not be made.
    #[error("cannot create the talosconfig client certificate")]
    ClientCert(#[source] crate::secrets::PkiError),
    /// The config could not be encoded.
    #[error("cannot encode talosconfig")]
    Encode(#[source] crate::yaml::YamlError),
    /// The file could not be written.
    #[error("cannot save talosconfig")]
    Write(#[source] WriteError),
    /// `$HOME` is not set, so the default location is unknown.
    #[error("cannot find the talosconfig: $HOME is not defined")]
    NoHome,
    /// None of the candidate paths exists and none may be written.
    #[error("no valid config paths found")]
    NoValidPath,
    /// The config came from a read-only location.
    #[error("not allowed to write to config: {}", .0.display())]
    NotWritable(PathBuf),
    /// No current context is set.
    #[error("no context is set")]
    NoContext,
    /// The named context does not exist.
    #[error("context {0:?} is not defined")]
    UnknownContext(String),
    /// The context's `crt` is not valid base64.
    #[error("client certificate is not valid base64")]
    CertBase64(#[source] base64::DecodeError),
    /// The context's `crt` has no PEM block.
    #[error("error decoding PEM")]
    CertPem,
    /// The context's `crt` is not a valid X.509 certificate.
    #[error("client certificate is invalid: {0}")]
    CertParse(String),
}

/// What talosctl shows about a context's client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertInfo {
    /// Roles from the subject's Organization values: trimmed, non-empty, sorted, unique.
    pub roles: Vec<String>,
    /// End of validity.
    pub not_after: time::OffsetDateTime,
}

/// Decodes a context's `crt` (base64 of PEM) and reads its roles and expiry.
pub fn client_cert_info(crt: &str) -> Result<ClientCertInfo, TalosConfigError> {
    use base64::Engine as _;

    let pem_bytes = base64::engine::general_purpose::STANDARD
        .decode(crt.trim())
        .map_err(TalosConfigError::CertBase64)?;
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(&pem_bytes).map_err(|_| TalosConfigError::CertPem)?;
    let cert = pem
        .parse_x509()
        .map_err(|e| TalosConfigError::CertParse(e.to_string()))?;
    let mut roles: Vec<String> = cert
        .subject()
        .iter_organization()
        .filter_map(|attr| attr.as_str().ok())
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .collect();
    roles.sort();
    roles.dedup();
    Ok(ClientCertInfo {
        roles,
        not_after: cert.validity().not_after.to_datetime(),
    })
}

/// A talosconfig file: the current context and all contexts by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TalosConfig {
    /// Name of the current context.
    #[serde(default)]
    pub context: String,
    /// Contexts by name (written sorted by name, as Go's YAML encoder does).
    #[serde(default, deserialize_with = "nullable_contexts")]
    pub contexts: BTreeMap<String, Context>,
}

fn nullable_contexts<'de, D: Deserializer<'de>>(
    de: D,
) -> Result<BTreeMap<String, Context>, D::Error> {
    let raw: Option<BTreeMap<String, Option<Context>>> = Option::deserialize(de)?;
    Ok(raw
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

fn nullable_list<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(de)?.unwrap_or_default())
}

fn nullable_string<'de, D: Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(de)?.unwrap_or_default())
}

/// One context: where to connect and with which credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// Deprecated single endpoint; moved into `endpoints` on load.
    #[serde(
        default,
        rename = "target",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable_string"
    )]
    pub deprecated_target: String,
    /// API endpoints (`host` or `host:port`, default port 50000). Always written.
    #[serde(default, deserialize_with = "nullable_list")]
    pub endpoints: Vec<String>,
    /// Default target nodes.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "nullable_list"
    )]
    pub nodes: Vec<String>,
    /// Base64 of the PEM CA certificate of the Talos API.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable_string"
    )]
    pub ca: String,
    /// Base64 of the PEM client certificate.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable_string"
    )]
    pub crt: String,
    /// Base64 of the PEM client private key.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable_string"
    )]
    pub key: String,
    /// Other authentication methods.
    #[serde(default, skip_serializing_if = "Auth::is_empty")]
    pub auth: Auth,
    /// Cluster name, for proxy endpoints such as Omni.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable_string"
    )]
    pub cluster: String,
}

/// Credentials for authentication methods other than client certificates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auth {
    /// HTTP basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic: Option<Basic>,
    /// SideroV1 signature authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub siderov1: Option<SideroV1>,
}

impl Auth {
    /// True when no method is configured (the `auth` key is then omitted).
    pub fn is_empty(&self) -> bool {
        self.basic.is_none() && self.siderov1.is_none()
    }
}

/// Basic authentication credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Basic {
    /// User name.
    #[serde(default, deserialize_with = "nullable_string")]
    pub username: String,
    /// Password.
    #[serde(default, deserialize_with = "nullable_string")]
    pub password: String,
}

/// SideroV1 signature authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideroV1 {
    /// The identity (e-mail) whose key signs requests.
    #[serde(default, deserialize_with = "nullable_string")]
    pub identity: String,
}

/// A context renamed by [`TalosConfig::merge`] because its name was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    /// Name in the merged-in config.
    pub from: String,
    /// Name it got.
    pub to: String,
}

impl std::fmt::Display for Rename {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} -> {:?}", self.from, self.to)
    }
}

/// A candidate location of the talosconfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigPath {
    /// The file.
    pub path: PathBuf,
    /// Whether talosctl may write it (the service-account location is read only).
    pub write_allowed: bool,
}

impl Context {
    /// Moves the deprecated `target` into `endpoints`.
    fn upgrade(&mut self) {
        if !self.deprecated_target.is_empty() {
            let target = std::mem::take(&mut self.deprecated_target);
            self.endpoints.push(target);
        }
    }
}

impl TalosConfig {
    /// A config with one context, as `gen config` writes it.
    pub fn new(name: &str, context: Context) -> Self {
        TalosConfig {
            context: name.to_string(),
            contexts: BTreeMap::from([(name.to_string(), context)]),
        }
    }

    /// The talosconfig `gen config` writes: one context named `cluster_name` with `endpoints`,
    /// the OS CA of `secrets` and an admin client certificate it signs (valid one year).
    pub fn generate(
        cluster_name: &str,
        endpoints: &[String],
        secrets: &Bundle,
    ) -> Result<Self, TalosConfigError> {
        let (crt, key) = secrets
            .admin_client_cert(
                &[crate::secrets::DEFAULT_ADMIN_ROLE],
                crate::secrets::CLIENT_CERT_VALIDITY,
            )
            .map_err(TalosConfigError::ClientCert)?;
        let b64 = |pem: &[u8]| base64::engine::general_purpose::STANDARD.encode(pem);
        let context = Context {
            endpoints: endpoints.to_vec(),
            ca: b64(&secrets.certs.os.crt),
            crt: b64(&crt),
            key: b64(&key),
            ..Context::default()
        };
        Ok(TalosConfig::new(cluster_name, context))
    }

    /// Parses talosconfig YAML, upgrading deprecated fields.
    pub fn from_yaml(text: &str) -> Result<Self, serde_yaml::Error> {
        // An empty file decodes as an empty config (Go's decoder reports EOF, which the
        // config loader treats as an empty document).
        let mut config: TalosConfig = if text.trim().is_empty() {
            TalosConfig::default()
        } else {
            serde_yaml::from_str::<Option<TalosConfig>>(text)?.unwrap_or_default()
        };
        for ctx in config.contexts.values_mut() {
            ctx.upgrade();
        }
        Ok(config)
    }

    /// Reads and parses a talosconfig file.
    pub fn read(path: &Path) -> Result<Self, TalosConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| TalosConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml(&text).map_err(|source| TalosConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Encodes the config as YAML.
    pub fn to_yaml(&self) -> Result<String, TalosConfigError> {
        crate::yaml::to_string(self).map_err(TalosConfigError::Encode)
    }

    /// Writes the config to `path` atomically (mode 0600, parent directories created 0700).
    pub fn save(&self, path: &Path) -> Result<(), TalosConfigError> {
        let text = self.to_yaml()?;
        write_atomic(path, text.as_bytes(), WriteOptions::PRIVATE.overwrite(true))
            .map_err(TalosConfigError::Write)
    }

    /// Saves to where the config was opened from, refusing read-only locations.
    pub fn save_to(&self, location: &ConfigPath) -> Result<(), TalosConfigError> {
        if !location.write_allowed {
            return Err(TalosConfigError::NotWritable(location.path.clone()));
        }
        self.save(&location.path)
    }

    /// Merges the contexts of `other` into this config. A context whose name is taken gets the
    /// first free name among `name-1`, `name-2`, ...; the current context becomes `other`'s
    /// (under its new name) when `other` has one. Returns the renames.
    pub fn merge(&mut self, other: TalosConfig) -> Vec<Rename> {
        let mut renames = Vec::new();
        let mut mapped = BTreeMap::new();
        for (name, ctx) in other.contexts {
            let mut merged = name.clone();
            if self.contexts.contains_key(&merged) {
                merged = (1u64..)
                    .map(|i| format!("{name}-{i}"))
                    .find(|candidate| !self.contexts.contains_key(candidate))
                    .unwrap_or_else(|| name.clone());
            }
            if merged != name {
                renames.push(Rename {
                    from: name.clone(),
                    to: merged.clone(),
                });
            }
            mapped.insert(name, merged.clone());
            self.contexts.insert(merged, ctx);
        }
        if !other.context.is_empty() {
            self.context = mapped.remove(&other.context).unwrap_or_default();
        }
        renames
    }

    /// The context to use: `name` if given, else the current one.
    pub fn context_data(&self, name: Option<&str>) -> Result<&Context, TalosConfigError> {
        let name = name.filter(|n| !n.is_empty()).unwrap_or(&self.context);
        self.contexts
            .get(name)
            .ok_or_else(|| TalosConfigError::UnknownContext(name.to_string()))
    }

    /// Mutable access to the context `name`, else the current one.
    pub fn context_data_mut(
        &mut self,
        name: Option<&str>,
    ) -> Result<&mut Context, TalosConfigError> {
        let name = name
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| self.context.clone());
        self.contexts
            .get_mut(&name)
            .ok_or(TalosConfigError::UnknownContext(name))
    }

    /// Checks that `name` (or, when empty, the current context) is set and defined.
    pub fn require_context(&self, name: &str) -> Result<(), TalosConfigError> {
        let name = if name.is_empty() { &self.context } else { name };
        if name.is_empty() {
            return Err(TalosConfigError::NoContext);
        }
        if !self.contexts.contains_key(name) {
            return Err(TalosConfigError::UnknownContext(name.to_string()));
        }
        Ok(())
    }
}

/// The candidate locations in priority order, given `$TALOSCONFIG` and `$HOME`.
pub fn default_paths(
    env: Option<&OsStr>,
    home: Option<&Path>,
) -> Result<Vec<ConfigPath>, TalosConfigError> {
    let home = home
        .filter(|h| !h.as_os_str().is_empty())
        .ok_or(TalosConfigError::NoHome)?;
    let mut paths = Vec::with_capacity(3);
    if let Some(env) = env {
        paths.push(ConfigPath {
            path: PathBuf::from(env),
            write_allowed: true,
        });
    }
    paths.push(ConfigPath {
        path: home.join(TALOS_DIR).join(TALOSCONFIG_FILENAME),
        write_allowed: true,
    });
    paths.push(ConfigPath {
        path: Path::new(crate::constants::SERVICE_ACCOUNT_MOUNT_PATH).join(TALOSCONFIG_FILENAME),
        write_allowed: false,
    });
    Ok(paths)
}

/// Finds the talosconfig to use. An explicit path is used as is; otherwise the first existing
/// candidate of [`default_paths`]. A missing file is created as an empty config.
pub fn locate(
    explicit: Option<&Path>,
    env: Option<&OsStr>,
    home: Option<&Path>,
) -> Result<ConfigPath, TalosConfigError> {
    let location = match explicit.filter(|p| !p.as_os_str().is_empty()) {
        Some(path) => ConfigPath {
            path: path.to_path_buf(),
            write_allowed: true,
        },
        None => {
            let candidates = default_paths(env, home)?;
            match candidates.iter().find(|c| c.path.exists()) {
                Some(found) => return Ok(found.clone()),
                None => candidates
                    .into_iter()
                    .find(|c| c.write_allowed)
                    .ok_or(TalosConfigError::NoValidPath)?,
            }
        }
    };
    if !location.path.exists() {
        TalosConfig::default().save(&location.path)?;
    }
    Ok(location)
}

/// Opens the talosconfig (see [`locate`]) using the process environment for `$TALOSCONFIG`
/// and `$HOME`.
pub fn open(explicit: Option<&Path>) -> Result<(TalosConfig, ConfigPath), TalosConfigError> {
    let env = std::env::var_os(TALOSCONFIG_ENV);
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let location = locate(explicit, env.as_deref(), home.as_deref())?;
    let config = TalosConfig::read(&location.path)?;
    Ok((config, location))
}

#[cfg(test)]
mod tests;
