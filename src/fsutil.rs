//! File output the way every command writes it: atomically, never clobbering by accident.
//!
//! [`write_atomic`] writes the data to a temporary file in the target's directory, syncs it, and
//! moves it into place, so a reader sees either the old file or the complete new one, and a failed
//! write leaves nothing behind. Commands producing several files call [`check_writable`] for all
//! of them first, so a refused command writes nothing at all.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How [`write_atomic`] writes a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// Permission bits of the new file (exactly these, whatever the umask).
    pub mode: u32,
    /// Whether an existing file at the target may be replaced (`--force`).
    pub overwrite: bool,
}

impl WriteOptions {
    /// A private file (0600) that must not exist yet: secrets, keys, talosconfigs.
    pub const PRIVATE: Self = Self {
        mode: 0o600,
        overwrite: false,
    };

    /// A file with permissions `mode` that must not exist yet.
    pub const fn mode(mode: u32) -> Self {
        Self {
            mode,
            overwrite: false,
        }
    }

    /// The same options, replacing an existing file when `overwrite` is true.
    pub const fn overwrite(self, overwrite: bool) -> Self {
        Self { overwrite, ..self }
    }
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self::PRIVATE
    }
}

/// Errors while writing output files; each names the path concerned.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The file exists and overwriting was not allowed.
    #[error("file {path:?} already exists, use --force to overwrite")]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// A missing parent directory could not be created.
    #[error("cannot create directory {path:?}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Writing, syncing or renaming the file failed.
    #[error("cannot write {path:?}")]
    Write {
        /// The target file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl WriteError {
    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Exists { path } | Self::CreateDir { path, .. } | Self::Write { path, .. } => path,
        }
    }
}

/// Fails with [`WriteError::Exists`] if any of `paths` exists (a dangling symlink counts) and
/// `overwrite` is false.
pub fn check_writable(paths: &[&Path], overwrite: bool) -> Result<(), WriteError> {
    if overwrite {
        return Ok(());
    }
    match paths.iter().find(|p| p.symlink_metadata().is_ok()) {
        Some(p) => Err(WriteError::Exists {
            path: p.to_path_buf(),
        }),
        None => Ok(()),
    }
}

/// Writes `data` to `path` atomically with permissions `opts.mode`.
///
/// Missing parent directories are created (0700 for a file private to its owner, 0755
/// otherwise). The data goes to a temporary file in the target's directory, which is synced and
/// then moved over the target; the directory is synced afterwards so the rename survives a crash
/// (best effort: the file is already in place by then). Without `opts.overwrite` an existing
/// target is refused, also one that appears while writing. On error the target is unchanged and
/// no temporary file is left.
pub fn write_atomic(path: &Path, data: &[u8], opts: WriteOptions) -> Result<(), WriteError> {
    check_writable(&[path], opts.overwrite)?;
    let write_err = |source| WriteError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(if opts.mode & 0o077 == 0 { 0o700 } else { 0o755 })
            .create(&dir)
            .map_err(|source| WriteError::CreateDir {
                path: dir.clone(),
                source,
            })?;
    }
    let name = path
        .file_name()
        .ok_or_else(|| write_err(io::Error::other("the path does not name a file")))?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{:016x}", rand::random::<u64>()));

    let result = write_temp(&tmp, data, opts.mode).and_then(|()| {
        if opts.overwrite {
            fs::rename(&tmp, path)
        } else {
            move_no_clobber(&tmp, path)
        }
    });
    if let Err(source) = result {
        let _ = fs::remove_file(&tmp);
        return Err(if source.kind() == io::ErrorKind::AlreadyExists {
            WriteError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            write_err(source)
        });
    }
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Creates `tmp` (which must not exist), writes `data` with permissions `mode` and syncs it.
fn write_temp(tmp: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(tmp)?;
    file.write_all(data)?;
    // The umask may have narrowed the mode given at creation.
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.sync_all()
}

/// Moves `tmp` to `path` unless `path` exists (`AlreadyExists` then). A hard link refuses an
/// existing target atomically; where links are unsupported, falls back to check-then-rename.
fn move_no_clobber(tmp: &Path, path: &Path) -> io::Result<()> {
    match fs::hard_link(tmp, path) {
        Ok(()) => fs::remove_file(tmp),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) if path.symlink_metadata().is_ok() => Err(io::ErrorKind::AlreadyExists.into()),
        Err(_) => fs::rename(tmp, path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn entries(dir: &Path) -> usize {
        fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn writes_then_refuses_then_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.yaml");
        write_atomic(&p, b"one", WriteOptions::PRIVATE).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert_eq!(mode_of(&p), 0o600);
        let err = write_atomic(&p, b"two", WriteOptions::PRIVATE).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("file {p:?} already exists, use --force to overwrite")
        );
        assert!(matches!(err, WriteError::Exists { .. }));
        assert_eq!(fs::read(&p).unwrap(), b"one");
        write_atomic(&p, b"two", WriteOptions::PRIVATE.overwrite(true)).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(entries(dir.path()), 1, "no temp files left");
    }

    #[test]
    fn creates_parents_and_applies_mode() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("a/b/file");
        write_atomic(&private, b"one", WriteOptions::PRIVATE).unwrap();
        write_atomic(&private, b"two", WriteOptions::PRIVATE.overwrite(true)).unwrap();
        assert_eq!(fs::read(&private).unwrap(), b"two");
        assert_eq!(mode_of(&private), 0o600);
        assert_eq!(mode_of(&dir.path().join("a/b")), 0o700);
        assert_eq!(entries(private.parent().unwrap()), 1);

        let public = dir.path().join("c/out.yaml");
        write_atomic(&public, b"x", WriteOptions::mode(0o644)).unwrap();
        assert_eq!(mode_of(&public), 0o644);
        assert_eq!(mode_of(&dir.path().join("c")), 0o755);
    }

    #[test]
    fn final_move_does_not_clobber_a_file_that_appeared_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join(".t.tmp");
        let target = dir.path().join("t");
        fs::write(&tmp, b"new").unwrap();
        fs::write(&target, b"old").unwrap();
        let err = move_no_clobber(&tmp, &target).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&target).unwrap(), b"old");
        fs::remove_file(&target).unwrap();
        move_no_clobber(&tmp, &target).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert!(!tmp.exists());
    }

    #[test]
    fn dangling_symlink_counts_as_existing() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
        let err = check_writable(&[dir.path().join("free").as_path(), &link], false).unwrap_err();
        assert_eq!(err.path(), link);
        check_writable(&[&link], true).unwrap();
        assert!(write_atomic(&link, b"x", WriteOptions::PRIVATE).is_err());
        assert!(!dir.path().join("nowhere").exists());
    }

    #[test]
    fn unusable_directory_is_an_error_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        fs::write(&file, b"").unwrap();
        // A regular file where a parent directory should be.
        let target = file.join("sub/x");
        let err = write_atomic(&target, b"", WriteOptions::PRIVATE).unwrap_err();
        assert!(matches!(err, WriteError::CreateDir { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&file.display().to_string()),
            "{err}"
        );
        // A directory where the file should be.
        let err = write_atomic(dir.path(), b"", WriteOptions::PRIVATE.overwrite(true)).unwrap_err();
        assert!(
            err.to_string().contains(&dir.path().display().to_string()),
            "{err}"
        );
        assert_eq!(entries(dir.path()), 1, "no temp files left");
    }
}
