//! Atomic, no-clobber file output.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Errors while writing output files.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The file exists and overwriting was not allowed.
    #[error("file {0:?} already exists, use --force to overwrite")]
    Exists(PathBuf),
    /// An I/O failure on a path.
    #[error("cannot write {path:?}")]
    Io {
        /// The path being written.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Fails if any of `paths` exists and `overwrite` is false. Call it for every output of a command
/// before writing the first one, so a refused command writes nothing.
pub fn check_writable(paths: &[&Path], overwrite: bool) -> Result<(), WriteError> {
    if overwrite {
        return Ok(());
    }
    for p in paths {
        if p.symlink_metadata().is_ok() {
            return Err(WriteError::Exists(p.to_path_buf()));
        }
    }
    Ok(())
}

/// Writes `data` to `path` atomically with mode 0600: a temporary file in the same directory is
/// written, synced and renamed over the target. Refuses an existing target unless `overwrite`.
pub fn write_atomic(path: &Path, data: &[u8], overwrite: bool) -> Result<(), WriteError> {
    use std::os::unix::fs::OpenOptionsExt;
    check_writable(&[path], overwrite)?;
    let io = |source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut suffix = [0u8; 6];
    super::random::fill(&mut suffix).map_err(|e| io(std::io::Error::other(e.to_string())))?;
    let tmp = dir.join(format!(".{name}.tmp-{}", hex::encode(suffix)));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // Make the rename durable; failure to sync a directory is not worth failing over.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_then_refuses_then_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.yaml");
        write_atomic(&p, b"one", false).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let err = write_atomic(&p, b"two", false).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        write_atomic(&p, b"two", true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp files left"
        );
    }

    #[test]
    fn missing_directory_is_an_io_error_with_the_path() {
        let err = write_atomic(Path::new("/nonexistent-dir/x"), b"", false).unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/x"), "{err}");
    }
}
