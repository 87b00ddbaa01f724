//! The machine config on the node's disk: the one place that knows where it lives
//! (`/system/state/config.yaml`), how it is written (atomically, 0600) and that only a parsed
//! and validated config is ever written there.
//!
//! ```text
//! bytes ──accept(mode)──▶ ValidConfig ──persist──▶ STATE/config.yaml
//!                             │                         │
//!                             └── Arc<Config> ◀──load(mode)
//! ```
//!
//! [`ConfigStore::accept`] parses and validates bytes from any source (the platform, an
//! ApplyConfiguration call) without touching the disk; the [`ValidConfig`] it returns carries
//! the typed config, its warnings and the exact bytes, and is the only thing
//! [`ConfigStore::persist`] takes. [`ConfigStore::load`] reads the persisted file back at boot.
//! A persisted file that no longer parses or validates is reported as an error and left in
//! place (the caller decides what comes next; a later persist replaces it).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Config, ConfigError, Mode, ValidationErrors, Warning};
use crate::fsutil::{write_atomic, WriteError, WriteOptions};

/// The state directory below the node's root.
const STATE_DIR: &str = "system/state";
/// The machine config file inside the state directory.
const CONFIG_FILE: &str = "config.yaml";

/// Why the store refused or failed. Parse and validation errors print as the config's own
/// errors (they name the source, document and key).
#[derive(Debug, thiserror::Error)]
pub enum ConfigStoreError {
    /// The persisted config could not be read.
    #[error("cannot read the machine config {path:?}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The bytes are not a machine config.
    #[error(transparent)]
    Parse(#[from] ConfigError),
    /// The config parses but is not valid for the platform.
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// Writing the config failed (the previous one is unchanged).
    #[error(transparent)]
    Persist(#[from] WriteError),
}

/// A config that parsed and validated: the typed config, its validation warnings, and the bytes
/// it came from (what [`ConfigStore::persist`] writes). Only [`ConfigStore`] makes one.
#[derive(Debug, Clone)]
pub struct ValidConfig {
    config: Arc<Config>,
    warnings: Vec<Warning>,
    bytes: Arc<[u8]>,
}

impl ValidConfig {
    /// The typed config, shared.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// What validation warned about.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The bytes as submitted.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The machine config file of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigStore {
    dir: PathBuf,
}

impl ConfigStore {
    /// The store of the node whose root file system is at `root` (`/` on a node; a temp dir in
    /// tests): `ROOT/system/state/config.yaml`.
    pub fn under_root(root: &Path) -> ConfigStore {
        ConfigStore::in_dir(root.join(STATE_DIR))
    }

    /// A store in the state directory `dir` (`--state-dir`): `DIR/config.yaml`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> ConfigStore {
        ConfigStore { dir: dir.into() }
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The config file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    /// Parses and validates `bytes` for `mode`; `source` names them in errors (`the applied
    /// configuration`, `platform metal`). Nothing is written.
    pub fn accept(
        &self,
        bytes: &[u8],
        source: &str,
        mode: Mode,
    ) -> Result<ValidConfig, ConfigStoreError> {
        let config = parse(bytes, source)?;
        let warnings = config.validate(mode, false)?;
        Ok(ValidConfig {
            config: Arc::new(config),
            warnings,
            bytes: Arc::from(bytes),
        })
    }

    /// Writes a validated config atomically (0600), replacing the previous one. Returns the
    /// file written.
    pub fn persist(&self, config: &ValidConfig) -> Result<PathBuf, ConfigStoreError> {
        let path = self.path();
        write_atomic(&path, &config.bytes, WriteOptions::PRIVATE.overwrite(true))?;
        Ok(path)
    }

    /// The persisted config, parsed and validated for `mode`; `None` when there is none.
    pub fn load(&self, mode: Mode) -> Result<Option<ValidConfig>, ConfigStoreError> {
        match self.read()? {
            Some(bytes) => self
                .accept(&bytes, &self.path().display().to_string(), mode)
                .map(Some),
            None => Ok(None),
        }
    }

    /// The persisted config, parsed but not validated (`machined --api-only`, a development
    /// mode that serves whatever config it is given); `None` when there is none.
    pub fn load_unvalidated(&self) -> Result<Option<Arc<Config>>, ConfigStoreError> {
        match self.read()? {
            Some(bytes) => {
                let config = parse(&bytes, &self.path().display().to_string())?;
                Ok(Some(Arc::new(config)))
            }
            None => Ok(None),
        }
    }

    fn read(&self) -> Result<Option<Vec<u8>>, ConfigStoreError> {
        let path = self.path();
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ConfigStoreError::Read { path, source }),
        }
    }
}

/// Parses the bytes the store is given or reads (accept, load).
fn parse(bytes: &[u8], source: &str) -> Result<Config, ConfigStoreError> {
    Ok(Config::from_yaml(bytes, source)?)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn fixture() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/pid1/controlplane.yaml"
        ))
        .expect("fixture config")
    }

    /// Every file in `dir`, with its contents.
    fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .map(|e| {
                    let e = e.expect("entry");
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read(e.path()).expect("read"),
                    )
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        out.sort();
        out
    }

    #[test]
    fn the_file_lives_in_the_state_directory_under_the_root() {
        let store = ConfigStore::under_root(Path::new("/"));
        assert_eq!(store.path(), Path::new("/system/state/config.yaml"));
        assert_eq!(store.dir(), Path::new("/system/state"));
        let store = ConfigStore::in_dir("/tmp/x");
        assert_eq!(store.path(), Path::new("/tmp/x/config.yaml"));
    }

    #[test]
    fn invalid_bytes_change_nothing_on_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ConfigStore::under_root(dir.path());
        let good = store
            .accept(&fixture(), "fixture", Mode::Container)
            .expect("valid");
        store.persist(&good).expect("persist");
        let before = files(store.dir());

        let err = store
            .accept(b"not: [valid", "the applied configuration", Mode::Container)
            .expect_err("does not parse");
        assert!(matches!(err, ConfigStoreError::Parse(_)), "{err}");
        assert!(
            err.to_string().starts_with("the applied configuration:"),
            "{err}"
        );
        let wrong_type = String::from_utf8(fixture())
            .expect("utf8")
            .replace("type: controlplane", "type: bogus");
        let err = store
            .accept(wrong_type.as_bytes(), "x", Mode::Container)
            .expect_err("does not validate");
        assert!(matches!(err, ConfigStoreError::Invalid(_)), "{err}");
        assert!(err.to_string().contains("machine.type"), "{err}");

        assert_eq!(files(store.dir()), before);
    }

    #[test]
    fn a_valid_config_is_persisted_atomically_0600_and_handed_over_typed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ConfigStore::under_root(dir.path());
        let valid = store
            .accept(&fixture(), "fixture", Mode::Container)
            .expect("valid");
        // Typed: the same config a parse gives, no file involved yet.
        assert_eq!(
            **valid.config(),
            Config::from_yaml(&fixture(), "fixture").expect("parse")
        );
        assert_eq!(valid.bytes(), fixture());
        assert!(!store.path().exists());

        let path = store.persist(&valid).expect("persist");
        assert_eq!(path, store.path());
        assert_eq!(std::fs::read(&path).expect("read"), fixture());
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Atomic: only the file itself is left (no temporary beside it).
        let names: Vec<String> = files(store.dir()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["config.yaml"]);

        // Replacing it keeps the mode and leaves nothing else behind.
        let worker = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/pid1/worker.yaml"
        ))
        .expect("worker");
        let next = store
            .accept(&worker, "worker", Mode::Container)
            .expect("valid");
        store.persist(&next).expect("replace");
        assert_eq!(std::fs::read(&path).expect("read"), worker);
        assert_eq!(files(store.dir()).len(), 1);
    }

    #[test]
    fn load_of_a_missing_file_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ConfigStore::under_root(dir.path());
        assert!(store.load(Mode::Container).expect("load").is_none());
        assert!(store.load_unvalidated().expect("load").is_none());
    }

    #[test]
    fn load_reads_back_what_was_persisted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ConfigStore::under_root(dir.path());
        let valid = store
            .accept(&fixture(), "fixture", Mode::Container)
            .expect("valid");
        store.persist(&valid).expect("persist");
        let loaded = store.load(Mode::Container).expect("load").expect("some");
        assert_eq!(loaded.config(), valid.config());
        assert_eq!(loaded.bytes(), fixture());
    }

    #[test]
    fn a_corrupt_file_is_reported_and_left_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ConfigStore::under_root(dir.path());
        std::fs::create_dir_all(store.dir()).expect("dir");
        std::fs::write(store.path(), b"version: v1alpha1\nmachine: 7\n").expect("write");
        let err = store.load(Mode::Container).expect_err("corrupt");
        assert!(matches!(err, ConfigStoreError::Parse(_)), "{err}");
        // The error names the file.
        assert!(
            err.to_string()
                .contains(&store.path().display().to_string()),
            "{err}"
        );
        assert!(store.load_unvalidated().is_err());
        assert_eq!(
            std::fs::read(store.path()).expect("still there"),
            b"version: v1alpha1\nmachine: 7\n"
        );

        // Parses, but does not validate: reported as invalid, also left in place.
        std::fs::write(
            store.path(),
            b"version: v1alpha1\nmachine:\n  type: bogus\n",
        )
        .expect("write");
        let err = store.load(Mode::Container).expect_err("invalid");
        assert!(matches!(err, ConfigStoreError::Invalid(_)), "{err}");
        assert!(store.load_unvalidated().expect("parses").is_some());
        assert!(store.path().exists());
    }

    #[test]
    fn an_unreadable_file_is_a_read_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ConfigStore::under_root(dir.path());
        // A directory where the file should be.
        std::fs::create_dir_all(store.path()).expect("dir");
        let err = store.load(Mode::Container).expect_err("unreadable");
        assert!(matches!(err, ConfigStoreError::Read { .. }), "{err}");
        assert!(err.to_string().contains("config.yaml"), "{err}");
    }
}
