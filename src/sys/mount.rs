//! Mounting: `mount(2)`/`umount2(2)` wrappers, mount-point detection from
//! `/proc/self/mountinfo`, and the table of pseudo filesystems PID 1 sets up.
//!
//! Every mount in [`PSEUDO_FILESYSTEMS`] is skipped when its target is already a mount point
//! (the container provisioner mounts some of them before init starts), and the optional ones
//! (cgroup2, securityfs, bpf) are skipped when the kernel does not know the filesystem type or
//! refuses the mount: a node must come up on a hybrid-cgroup host too.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use super::{IoOp, SysError};

/// One line of `/proc/<pid>/mountinfo`, the fields PID 1 needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// Where it is mounted (octal escapes such as `\040` decoded).
    pub mount_point: PathBuf,
    /// Filesystem type (`proc`, `tmpfs`, `cgroup2`, ...).
    pub fstype: String,
    /// Mount source (`proc`, `/dev/vda1`, `none`, ...).
    pub source: String,
    /// Per-mount options (`rw,nosuid,...`).
    pub options: String,
}

/// Decodes the `\ooo` octal escapes the kernel uses for spaces, tabs, newlines and backslashes.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let v = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `mountinfo` text (`ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS...] - FSTYPE SOURCE
/// SUPEROPTS`). Malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            Some(MountInfo {
                mount_point: PathBuf::from(unescape(left.get(4)?)),
                options: left.get(5)?.to_string(),
                fstype: unescape(right.first()?),
                source: unescape(right.get(1)?),
            })
        })
        .collect()
}

/// The mounts of this process (`/proc/self/mountinfo`).
pub fn mounts() -> Result<Vec<MountInfo>, SysError> {
    mounts_from(Path::new("/proc/self/mountinfo"))
}

/// The mounts listed in a mountinfo file (tests read `/proc/thread-self/mountinfo`).
pub fn mounts_from(mountinfo: &Path) -> Result<Vec<MountInfo>, SysError> {
    Ok(parse_mountinfo(&super::read_text(mountinfo)?))
}

/// Whether `path` is listed as a mount point in `mounts`.
pub fn is_mount_point_in(mounts: &[MountInfo], path: &Path) -> bool {
    mounts.iter().any(|m| m.mount_point == path)
}

/// Whether `path` is a mount point. Reads `/proc/self/mountinfo`; before `/proc` is mounted it
/// falls back to comparing the device of `path` and its parent (which misses bind mounts of
/// the same filesystem, good enough for the very first mounts).
pub fn is_mount_point(path: &Path) -> Result<bool, SysError> {
    let mountinfo = Path::new("/proc/self/mountinfo");
    if mountinfo.exists() {
        return Ok(is_mount_point_in(&mounts_from(mountinfo)?, path));
    }
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path).map_err(SysError::at(IoOp::Stat, path.to_path_buf()))?;
    let parent = path.parent().unwrap_or(Path::new("/"));
    if parent == path {
        return Ok(true);
    }
    let parent_meta =
        std::fs::metadata(parent).map_err(SysError::at(IoOp::Stat, parent.to_path_buf()))?;
    Ok(meta.dev() != parent_meta.dev() || meta.ino() == parent_meta.ino())
}

fn syscall_error(call: String, source: nix::Error) -> SysError {
    SysError::Syscall { call, source }
}

/// `mount(2)`.
pub fn mount(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), SysError> {
    nix::mount::mount(Some(source), target, Some(fstype), flags, data).map_err(|e| {
        syscall_error(
            format!("mount {source} on {} (type {fstype})", target.display()),
            e,
        )
    })
}

/// A bind mount of `source` on `target` (`recursive`: `MS_REC`).
pub fn bind(source: &Path, target: &Path, recursive: bool) -> Result<(), SysError> {
    let mut flags = MsFlags::MS_BIND;
    if recursive {
        flags |= MsFlags::MS_REC;
    }
    nix::mount::mount(Some(source), target, None::<&str>, flags, None::<&str>).map_err(|e| {
        syscall_error(
            format!("bind mount {} on {}", source.display(), target.display()),
            e,
        )
    })
}

/// Changes the flags of an existing mount (`MS_REMOUNT`), e.g. to make it read-only.
pub fn remount(target: &Path, flags: MsFlags, data: Option<&str>) -> Result<(), SysError> {
    nix::mount::mount(
        None::<&str>,
        target,
        None::<&str>,
        flags | MsFlags::MS_REMOUNT,
        data,
    )
    .map_err(|e| syscall_error(format!("remount {}", target.display()), e))
}

/// Makes every mount below `target` private (`MS_REC | MS_PRIVATE`), so mounts made here do not
/// propagate back to the parent namespace.
pub fn make_private(target: &Path) -> Result<(), SysError> {
    nix::mount::mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| syscall_error(format!("make {} private", target.display()), e))
}

/// `umount2(2)`; `lazy` detaches now and cleans up when the mount is no longer busy.
pub fn umount(target: &Path, lazy: bool) -> Result<(), SysError> {
    let flags = if lazy {
        MntFlags::MNT_DETACH
    } else {
        MntFlags::empty()
    };
    nix::mount::umount2(target, flags)
        .map_err(|e| syscall_error(format!("umount {}", target.display()), e))
}

/// One entry of the pseudo-filesystem table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PseudoMount {
    /// Mount source.
    pub source: &'static str,
    /// Absolute target path.
    pub target: &'static str,
    /// Filesystem type.
    pub fstype: &'static str,
    /// Mount flags.
    pub flags: MsFlags,
    /// Filesystem options.
    pub data: Option<&'static str>,
    /// Skipped when the kernel lacks the type, and a failure is not fatal.
    pub optional: bool,
    /// Mounted before anything else (needed for logging and reading the kernel command line).
    pub early: bool,
}

const NOSUID_NODEV_NOEXEC: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// The pseudo filesystems PID 1 mounts, in order (parents first).
pub const PSEUDO_FILESYSTEMS: &[PseudoMount] = &[
    PseudoMount {
        source: "proc",
        target: "/proc",
        fstype: "proc",
        flags: NOSUID_NODEV_NOEXEC,
        data: None,
        optional: false,
        early: true,
    },
    PseudoMount {
        source: "sysfs",
        target: "/sys",
        fstype: "sysfs",
        flags: NOSUID_NODEV_NOEXEC,
        data: None,
        optional: false,
        early: true,
    },
    PseudoMount {
        source: "devtmpfs",
        target: "/dev",
        fstype: "devtmpfs",
        flags: MsFlags::MS_NOSUID,
        data: Some("mode=0755"),
        optional: false,
        early: true,
    },
    PseudoMount {
        source: "devpts",
        target: "/dev/pts",
        fstype: "devpts",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NOEXEC),
        data: Some("ptmxmode=000,mode=620,gid=5"),
        optional: false,
        early: false,
    },
    PseudoMount {
        source: "shm",
        target: "/dev/shm",
        fstype: "tmpfs",
        flags: NOSUID_NODEV_NOEXEC,
        data: Some("mode=1777"),
        optional: false,
        early: false,
    },
    PseudoMount {
        source: "tmpfs",
        target: "/run",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID
            .union(MsFlags::MS_NODEV)
            .union(MsFlags::MS_NOEXEC)
            .union(MsFlags::MS_RELATIME),
        data: Some("mode=0755"),
        optional: false,
        early: false,
    },
    PseudoMount {
        source: "tmpfs",
        target: "/tmp",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        data: Some("mode=1777"),
        optional: false,
        early: false,
    },
    PseudoMount {
        source: "cgroup",
        target: "/sys/fs/cgroup",
        fstype: "cgroup2",
        flags: NOSUID_NODEV_NOEXEC.union(MsFlags::MS_RELATIME),
        data: Some("nsdelegate,memory_recursiveprot"),
        optional: true,
        early: false,
    },
    PseudoMount {
        source: "securityfs",
        target: "/sys/kernel/security",
        fstype: "securityfs",
        flags: NOSUID_NODEV_NOEXEC.union(MsFlags::MS_RELATIME),
        data: None,
        optional: true,
        early: false,
    },
    PseudoMount {
        source: "bpf",
        target: "/sys/fs/bpf",
        fstype: "bpf",
        flags: NOSUID_NODEV_NOEXEC.union(MsFlags::MS_RELATIME),
        data: None,
        optional: true,
        early: false,
    },
];

/// What happened to one pseudo filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOutcome {
    /// Mounted now.
    Mounted,
    /// Already a mount point: left alone.
    AlreadyMounted,
    /// Optional and the kernel does not know the type, or the target is missing.
    Unsupported,
    /// Optional and the mount failed (the error text).
    Failed(String),
}

/// The filesystem types the kernel knows (`/proc/filesystems`); `None` if unreadable.
pub fn known_filesystems(proc_filesystems: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(proc_filesystems).ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.split_whitespace().last().map(str::to_string))
            .collect(),
    )
}

/// Mounts the entries of `table` (relative to `root`, `/` on a node), skipping what is already
/// mounted. A failing required mount is an error; optional ones are reported in the outcome.
pub fn mount_table(
    root: &Path,
    table: &[PseudoMount],
) -> Result<Vec<(&'static str, MountOutcome)>, SysError> {
    let mut out = Vec::with_capacity(table.len());
    for entry in table {
        let target = root.join(entry.target.trim_start_matches('/'));
        let outcome = mount_one(root, &target, entry)?;
        out.push((entry.target, outcome));
    }
    Ok(out)
}

fn mount_one(root: &Path, target: &Path, entry: &PseudoMount) -> Result<MountOutcome, SysError> {
    if entry.optional {
        let known = known_filesystems(&root.join("proc/filesystems"));
        if known.is_some_and(|k| !k.iter().any(|t| t == entry.fstype)) {
            return Ok(MountOutcome::Unsupported);
        }
    }
    if target.exists() && is_mount_point(target)? {
        return Ok(MountOutcome::AlreadyMounted);
    }
    if !target.exists() {
        if let Err(source) = std::fs::create_dir_all(target) {
            if entry.optional {
                return Ok(MountOutcome::Unsupported);
            }
            return Err(SysError::io(IoOp::CreateDir, target.to_path_buf(), source));
        }
    }
    match mount(entry.source, target, entry.fstype, entry.flags, entry.data) {
        Ok(()) => Ok(MountOutcome::Mounted),
        Err(e) if entry.optional => Ok(MountOutcome::Failed(crate::errors::chain(&e).to_string())),
        // devtmpfs may be missing from the kernel (containers): a tmpfs /dev still works.
        Err(e) if entry.fstype == "devtmpfs" => {
            match mount("tmpfs", target, "tmpfs", entry.flags, entry.data) {
                Ok(()) => Ok(MountOutcome::Mounted),
                Err(_) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:5 - proc proc rw
23 1 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:6 - sysfs sysfs rw
30 23 0:26 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
41 1 0:40 / /mnt/with\\040space rw - tmpfs my\\134src rw
garbage line
";

    #[test]
    fn parses_mountinfo_with_escapes() {
        let m = parse_mountinfo(SAMPLE);
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].mount_point, PathBuf::from("/proc"));
        assert_eq!(m[0].fstype, "proc");
        assert_eq!(m[2].fstype, "cgroup2");
        assert_eq!(m[3].mount_point, PathBuf::from("/mnt/with space"));
        assert_eq!(m[3].source, "my\\src");
        assert!(is_mount_point_in(&m, Path::new("/sys/fs/cgroup/unified")));
        assert!(!is_mount_point_in(&m, Path::new("/sys/fs/cgroup")));
    }

    #[test]
    fn real_mount_points() {
        assert!(is_mount_point(Path::new("/proc")).expect("mountinfo"));
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(!is_mount_point(dir.path()).expect("mountinfo"));
    }

    #[test]
    fn table_is_ordered_parents_first_and_early_entries_lead() {
        for (i, entry) in PSEUDO_FILESYSTEMS.iter().enumerate() {
            for later in &PSEUDO_FILESYSTEMS[i + 1..] {
                assert!(
                    !Path::new(entry.target).starts_with(later.target),
                    "{} must come after {}",
                    entry.target,
                    later.target
                );
            }
        }
        let early: Vec<_> = PSEUDO_FILESYSTEMS.iter().filter(|e| e.early).collect();
        assert!(PSEUDO_FILESYSTEMS[..early.len()].iter().all(|e| e.early));
        assert!(PSEUDO_FILESYSTEMS
            .iter()
            .any(|e| e.fstype == "cgroup2" && e.optional));
    }

    #[test]
    fn known_filesystems_reads_proc() {
        let known = known_filesystems(Path::new("/proc/filesystems")).expect("readable");
        assert!(known.iter().any(|t| t == "proc"));
        assert!(known_filesystems(Path::new("/nonexistent")).is_none());
    }

    /// Mounts in a private mount namespace of a dedicated thread, so nothing leaks to the host.
    #[test]
    fn mounts_tmpfs_in_a_private_namespace() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED (needs root): mounts_tmpfs_in_a_private_namespace");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        let result = std::thread::spawn(move || -> Result<(), String> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(|e| e.to_string())?;
            make_private(Path::new("/")).map_err(|e| e.to_string())?;
            let info = Path::new("/proc/thread-self/mountinfo");
            let before = mounts_from(info).map_err(|e| e.to_string())?;
            if is_mount_point_in(&before, &path) {
                return Err("mounted before".into());
            }
            mount("tmpfs", &path, "tmpfs", MsFlags::MS_NOSUID, Some("size=1m"))
                .map_err(|e| e.to_string())?;
            let during = mounts_from(info).map_err(|e| e.to_string())?;
            if !is_mount_point_in(&during, &path) {
                return Err("not mounted".into());
            }
            remount(&path, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID, None)
                .map_err(|e| e.to_string())?;
            if std::fs::write(path.join("x"), b"x").is_ok() {
                return Err("read-only remount did not take".into());
            }
            umount(&path, false).map_err(|e| e.to_string())?;
            let after = mounts_from(info).map_err(|e| e.to_string())?;
            if is_mount_point_in(&after, &path) {
                return Err("still mounted".into());
            }
            Ok(())
        })
        .join()
        .expect("thread");
        assert_eq!(result, Ok(()));
    }
}
