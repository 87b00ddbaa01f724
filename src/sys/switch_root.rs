//! Leaving the initramfs: `switch_root`.
//!
//! The initramfs is a `ramfs`/`tmpfs` that cannot be unmounted, so switching to the real root
//! means: move the API file systems (`/dev`, `/proc`, `/sys`, `/run`) under the new root, free the
//! initramfs's memory by deleting its files (never crossing into another file system), move the
//! new root's mount onto `/`, `chroot` into it and `chdir("/")`. The caller then `exec`s the
//! real init.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::mount::{mount, MsFlags};

use super::{IoOp, SysError};

/// `statfs` magic numbers of the file systems an initramfs can be.
const RAMFS_MAGIC: i64 = 0x8584_58f6;
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// The API file systems moved into the new root when they are mounted.
pub const MOVED_MOUNTS: [&str; 4] = ["/dev", "/proc", "/sys", "/run"];

fn syscall(call: String) -> impl FnOnce(nix::Error) -> SysError {
    move |source| SysError::Syscall { call, source }
}

fn metadata(path: &Path) -> Result<std::fs::Metadata, SysError> {
    std::fs::symlink_metadata(path).map_err(SysError::at(IoOp::Stat, path.to_path_buf()))
}

/// Whether `path` is a mount point: it is on another device than its parent (or it is `/`).
pub fn is_mount_point(path: &Path) -> Result<bool, SysError> {
    let meta = metadata(path)?;
    let parent = path.join("..");
    let pmeta = metadata(&parent)?;
    Ok(meta.dev() != pmeta.dev() || meta.ino() == pmeta.ino())
}

/// Deletes everything under `dir` that lives on the file system `dev`, depth first, except
/// `keep` (the new root) and anything on another file system (mount points are left alone, with
/// their contents). Errors on single entries are counted, not fatal: memory freed is a bonus.
pub fn remove_tree_on_device(dir: &Path, dev: u64, keep: &Path) -> usize {
    let mut failures = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 1;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path == keep {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            failures += 1;
            continue;
        };
        if meta.dev() != dev {
            continue;
        }
        if meta.is_dir() {
            failures += remove_tree_on_device(&path, dev, keep);
            if std::fs::remove_dir(&path).is_err() {
                failures += 1;
            }
        } else if std::fs::remove_file(&path).is_err() {
            failures += 1;
        }
    }
    failures
}

/// Switches the root to `new_root` (a mount point). Refuses unless `/` is a ramfs or tmpfs,
/// so that it can never delete a real disk's files. Returns how many initramfs entries could
/// not be deleted (informational).
pub fn switch_root(new_root: &Path) -> Result<usize, SysError> {
    let root_fs = nix::sys::statfs::statfs("/").map_err(syscall("statfs /".into()))?;
    let magic = root_fs.filesystem_type().0 as i64;
    if magic != RAMFS_MAGIC && magic != TMPFS_MAGIC {
        return Err(SysError::parse(
            "/",
            format!(
                "switch_root: / is not an initramfs (ramfs or tmpfs), file system magic {magic:#x}"
            ),
        ));
    }
    if !is_mount_point(new_root)? {
        return Err(SysError::parse(
            new_root,
            "switch_root: the new root is not a mount point",
        ));
    }
    for api in MOVED_MOUNTS {
        let src = Path::new(api);
        let dst = new_root.join(api.trim_start_matches('/'));
        if !src.exists() || !is_mount_point(src)? {
            continue;
        }
        if !dst.is_dir() {
            // The new root has nowhere to put it: unmount it lazily rather than leak it.
            let _ = nix::mount::umount2(src, nix::mount::MntFlags::MNT_DETACH);
            continue;
        }
        mount(
            Some(src),
            &dst,
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .map_err(syscall(format!(
            "moving mount {} to {}",
            src.display(),
            dst.display()
        )))?;
    }
    let root_dev = metadata(Path::new("/"))?.dev();
    let failures = remove_tree_on_device(Path::new("/"), root_dev, new_root);
    nix::unistd::chdir(new_root).map_err(syscall(format!("chdir {}", new_root.display())))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(syscall(format!("moving mount {} to /", new_root.display())))?;
    nix::unistd::chroot(".").map_err(syscall("chroot .".into()))?;
    nix::unistd::chdir("/").map_err(syscall("chdir /".into()))?;
    Ok(failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_files_but_keeps_the_new_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::create_dir_all(root.join("a/b/c")).unwrap();
        std::fs::write(root.join("a/b/c/f"), "x").unwrap();
        std::fs::write(root.join("init"), "x").unwrap();
        std::os::unix::fs::symlink("/nonexistent", root.join("link")).unwrap();
        std::fs::create_dir_all(root.join("root/sbin")).unwrap();
        std::fs::write(root.join("root/sbin/init"), "x").unwrap();
        let dev = std::fs::metadata(root).unwrap().dev();
        let failures = remove_tree_on_device(root, dev, &root.join("root"));
        assert_eq!(failures, 0);
        let left: Vec<_> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["root"]);
        assert!(root.join("root/sbin/init").exists());
    }

    #[test]
    fn other_devices_are_not_entered() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), "x").unwrap();
        // A device number that is not this file system's: nothing matches, nothing is removed.
        let dev = std::fs::metadata(t.path()).unwrap().dev() + 1;
        assert_eq!(remove_tree_on_device(t.path(), dev, Path::new("/none")), 0);
        assert!(t.path().join("f").exists());
    }

    #[test]
    fn mount_points() {
        assert!(is_mount_point(Path::new("/")).unwrap());
        assert!(is_mount_point(Path::new("/proc")).unwrap());
        let t = tempfile::tempdir().unwrap();
        assert!(!is_mount_point(t.path()).unwrap());
    }

    #[test]
    fn refuses_outside_an_initramfs() {
        // The test host's root is not a ramfs/tmpfs (and if it were, the new root below is not
        // a mount point): switch_root must refuse before touching anything.
        let t = tempfile::tempdir().unwrap();
        let e = switch_root(t.path()).unwrap_err().to_string();
        assert!(
            e.contains("not an initramfs") || e.contains("not a mount point"),
            "{e}"
        );
    }
}
