//! The node root filesystem skeleton (`rootfs/` in the source tree), embedded in the binary.
//!
//! `rootfs/MANIFEST` lists the directories and symbolic links of a node root (`dir PATH MODE`,
//! `symlink PATH TARGET`, `#` comments); the plain files beside it (`etc/os-release`, ...) are
//! copied verbatim. [`materialize`] writes the whole skeleton into a directory and installs the
//! `talos` binary as `/sbin/init` (copied, hard-linked, or left as an empty file for the container
//! provisioner, which bind-mounts the binary over it inside the node's mount namespace).

use std::fs;
use std::io;
use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// The manifest text, as committed in `rootfs/MANIFEST`.
pub const MANIFEST: &str = include_str!("../rootfs/MANIFEST");

/// Every plain file of the skeleton: path inside the root, contents, mode.
pub const FILES: &[(&str, &str, u32)] = &[
    (
        "/etc/os-release",
        include_str!("../rootfs/etc/os-release"),
        0o644,
    ),
    ("/etc/hosts", include_str!("../rootfs/etc/hosts"), 0o644),
    (
        "/etc/containerd/config.toml",
        include_str!("../rootfs/etc/containerd/config.toml"),
        0o644,
    ),
    (
        "/etc/resolv.conf",
        include_str!("../rootfs/etc/resolv.conf"),
        0o644,
    ),
    (
        "/etc/nsswitch.conf",
        include_str!("../rootfs/etc/nsswitch.conf"),
        0o644,
    ),
    (
        "/etc/machine-id",
        include_str!("../rootfs/etc/machine-id"),
        0o444,
    ),
];

/// Where the `talos` binary lives inside a node root.
pub const INIT_PATH: &str = "/sbin/init";

/// One line of the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A directory with its permission bits.
    Dir {
        /// Absolute path inside the root.
        path: String,
        /// Permission bits (may include sticky, e.g. 0o1777).
        mode: u32,
    },
    /// A symbolic link.
    Symlink {
        /// Absolute path inside the root.
        path: String,
        /// The link target, verbatim.
        target: String,
    },
}

/// Errors reading the manifest or writing a root.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A manifest line could not be parsed.
    #[error("rootfs/MANIFEST line {line}: {what}")]
    Manifest {
        /// 1-based line number.
        line: usize,
        /// What was wrong and what was expected.
        what: String,
    },
    /// Writing into the target directory failed.
    #[error("materializing rootfs at {path}")]
    Io {
        /// The path being written.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RootfsError + '_ {
    move |source| RootfsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks that `p` is absolute and has no `..`, `.` or empty components.
fn valid_path(p: &str) -> bool {
    p.starts_with('/')
        && p.len() > 1
        && Path::new(p)
            .components()
            .skip(1)
            .all(|c| matches!(c, Component::Normal(_)))
}

/// Parses manifest text.
pub fn parse_manifest(text: &str) -> Result<Vec<Entry>, RootfsError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |what: String| RootfsError::Manifest { line: i + 1, what };
        let fields: Vec<&str> = line.split_whitespace().collect();
        let entry = match fields.as_slice() {
            ["dir", path, mode] => {
                let mode = u32::from_str_radix(mode, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| err(format!("mode {mode:?} is not an octal mode")))?;
                Entry::Dir {
                    path: path.to_string(),
                    mode,
                }
            }
            ["symlink", path, target] => Entry::Symlink {
                path: path.to_string(),
                target: target.to_string(),
            },
            _ => {
                return Err(err(format!(
                    "expected `dir PATH MODE` or `symlink PATH TARGET`, got {line:?}"
                )))
            }
        };
        let path = match &entry {
            Entry::Dir { path, .. } | Entry::Symlink { path, .. } => path,
        };
        if !valid_path(path) {
            return Err(err(format!(
                "path {path:?} must be absolute and normalized"
            )));
        }
        out.push(entry);
    }
    Ok(out)
}

/// The embedded manifest, parsed.
pub fn manifest() -> Result<Vec<Entry>, RootfsError> {
    parse_manifest(MANIFEST)
}

/// How [`materialize`] installs `/sbin/init`.
#[derive(Debug, Clone, Copy)]
pub enum Init<'a> {
    /// Copy this binary (mode 0755).
    Copy(&'a Path),
    /// Hard-link this binary when on the same file system, else copy it.
    Link(&'a Path),
    /// Create an empty file, to be used as a bind-mount target for the binary.
    MountPoint,
}

/// Joins an absolute in-root path onto `root`.
fn in_root(root: &Path, p: &str) -> PathBuf {
    root.join(p.trim_start_matches('/'))
}

/// Writes the skeleton into `root` (created if missing; existing entries are kept or replaced)
/// and installs `/sbin/init` as `init` says.
pub fn materialize(root: &Path, init: Init<'_>) -> Result<(), RootfsError> {
    let entries = manifest()?;
    fs::create_dir_all(root).map_err(io_err(root))?;
    // Directories first (the manifest may list a symlink before its target directory).
    for e in &entries {
        if let Entry::Dir { path, .. } = e {
            let p = in_root(root, path);
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(&p)
                .map_err(io_err(&p))?;
        }
    }
    for e in &entries {
        match e {
            Entry::Dir { path, mode } => {
                let p = in_root(root, path);
                fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).map_err(io_err(&p))?;
            }
            Entry::Symlink { path, target } => {
                let p = in_root(root, path);
                if fs::symlink_metadata(&p).is_ok() {
                    fs::remove_file(&p).map_err(io_err(&p))?;
                }
                symlink(target, &p).map_err(io_err(&p))?;
            }
        }
    }
    for (path, contents, mode) in FILES {
        let p = in_root(root, path);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        if fs::symlink_metadata(&p).is_ok() {
            fs::remove_file(&p).map_err(io_err(&p))?;
        }
        fs::write(&p, contents).map_err(io_err(&p))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).map_err(io_err(&p))?;
    }
    install_init(root, init)
}

fn install_init(root: &Path, init: Init<'_>) -> Result<(), RootfsError> {
    let dest = in_root(root, INIT_PATH);
    if fs::symlink_metadata(&dest).is_ok() {
        fs::remove_file(&dest).map_err(io_err(&dest))?;
    }
    let copy = |src: &Path| -> Result<(), RootfsError> {
        fs::copy(src, &dest).map_err(io_err(src))?;
        Ok(())
    };
    match init {
        Init::Copy(src) => copy(src)?,
        Init::Link(src) => {
            if fs::hard_link(src, &dest).is_err() {
                copy(src)?;
            }
        }
        Init::MountPoint => {
            fs::write(&dest, b"").map_err(io_err(&dest))?;
        }
    }
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o755)).map_err(io_err(&dest))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_manifest_parses_and_has_the_mount_points() {
        let entries = manifest().unwrap();
        let dirs: Vec<&str> = entries
            .iter()
            .filter_map(|e| match e {
                Entry::Dir { path, .. } => Some(path.as_str()),
                _ => None,
            })
            .collect();
        for d in [
            "/dev", "/proc", "/sys", "/run", "/tmp", "/system", "/var", "/etc", "/sbin", "/opt",
            "/usr/bin",
        ] {
            assert!(dirs.contains(&d), "{d} missing from MANIFEST");
        }
        for applet in [
            "machined",
            "apid",
            "trustd",
            "networkd",
            "installer",
            "talosctl",
        ] {
            let want = Entry::Symlink {
                path: format!("/sbin/{applet}"),
                target: "init".into(),
            };
            assert!(entries.contains(&want), "/sbin/{applet} symlink missing");
        }
    }

    #[test]
    fn parse_errors_name_the_line() {
        let e = parse_manifest("# c\n\ndir /x 0755\nfile /y\n").unwrap_err();
        assert!(e.to_string().contains("line 4"), "{e}");
        let e = parse_manifest("dir /x 999\n").unwrap_err();
        assert!(e.to_string().contains("octal"), "{e}");
        let e = parse_manifest("dir relative 0755\n").unwrap_err();
        assert!(e.to_string().contains("absolute"), "{e}");
        let e = parse_manifest("symlink /a/../b x\n").unwrap_err();
        assert!(e.to_string().contains("normalized"), "{e}");
        assert_eq!(
            parse_manifest("dir /tmp 1777\n").unwrap(),
            vec![Entry::Dir {
                path: "/tmp".into(),
                mode: 0o1777
            }]
        );
    }

    #[test]
    fn materialize_writes_dirs_links_files_and_init() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let bin = tmp.path().join("talos-bin");
        fs::write(&bin, b"#!binary").unwrap();
        materialize(&root, Init::Copy(&bin)).unwrap();

        let tmpdir = fs::metadata(root.join("tmp")).unwrap();
        assert_eq!(tmpdir.permissions().mode() & 0o7777, 0o1777);
        assert!(root.join("system").is_dir() && root.join("var").is_dir());
        assert_eq!(
            fs::read_link(root.join("sbin/apid")).unwrap(),
            Path::new("init")
        );
        assert!(fs::read_to_string(root.join("etc/os-release"))
            .unwrap()
            .contains("ID=talos"));
        let init = root.join("sbin/init");
        assert_eq!(fs::read(&init).unwrap(), b"#!binary");
        assert_eq!(
            fs::metadata(&init).unwrap().permissions().mode() & 0o777,
            0o755
        );
        // The symlink resolves to the binary.
        assert_eq!(fs::read(root.join("sbin/talosctl")).unwrap(), b"#!binary");

        // Idempotent; a mount point replaces the copy.
        materialize(&root, Init::MountPoint).unwrap();
        assert_eq!(fs::read(&init).unwrap(), b"");
        materialize(&root, Init::Link(&bin)).unwrap();
        assert_eq!(fs::read(&init).unwrap(), b"#!binary");
    }
}
