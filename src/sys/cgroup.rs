//! cgroup v2 helpers: groups under a root, controllers, limits, membership, kill.
//!
//! The root is either a pure cgroup2 mount (`/sys/fs/cgroup`, controllers available) or the
//! cgroup2 part of a hybrid host (`/sys/fs/cgroup/unified`, no controllers at all). Nothing
//! here fails because a controller or an interface file is missing: limits are applied where
//! the kernel offers them and skipped with a log line otherwise. Only creating the group,
//! moving a pid and listing pids are hard errors.
//!
//! Talos's groups (`pkg/machinery/constants`): `/init`, `/system`, `/system/runtime`,
//! `/podruntime/runtime`, `/podruntime/kubelet`; system services run in `/system/<id>`.

use std::path::{Path, PathBuf};

use super::{IoOp, SysError};

/// Talos's cgroup of machined itself.
pub const INIT: &str = "/init";
/// Talos's cgroup of system services.
pub const SYSTEM: &str = "/system";
/// Talos's cgroup of the system containerd.
pub const SYSTEM_RUNTIME: &str = "/system/runtime";
/// Talos's cgroup of the CRI containerd.
pub const POD_RUNTIME: &str = "/podruntime/runtime";
/// Talos's cgroup of the kubelet.
pub const KUBELET: &str = "/podruntime/kubelet";
/// Hard memory protection (`memory.min`) of `/init` (Talos: 96 MiB; `memory.low` twice that).
pub const INIT_RESERVED_MEMORY: u64 = 96 << 20;
/// Hard memory protection of `/system`.
pub const SYSTEM_RESERVED_MEMORY: u64 = 96 << 20;
/// Hard memory protection of `/podruntime/runtime`.
pub const POD_RUNTIME_RESERVED_MEMORY: u64 = 128 << 20;
/// Hard memory protection of `/podruntime/kubelet`.
pub const KUBELET_RESERVED_MEMORY: u64 = 64 << 20;
/// trustd's memory limit in Talos (512 MB).
pub const TRUSTD_MEMORY_MAX: u64 = 512_000_000;

/// The cgroup of a system service.
pub fn service_path(id: &str) -> String {
    format!("{SYSTEM}/{id}")
}

/// Controllers we try to enable for child groups.
pub const WANTED_CONTROLLERS: &[&str] = &["cpu", "memory", "pids", "io"];

/// Finds the cgroup2 root below `sys_fs_cgroup` (normally `/sys/fs/cgroup`): the directory
/// itself when it is a cgroup2 mount, else its `unified` subdirectory (hybrid hosts).
pub fn detect_root(sys_fs_cgroup: &Path) -> Option<PathBuf> {
    if sys_fs_cgroup.join("cgroup.procs").exists()
        && sys_fs_cgroup.join("cgroup.controllers").exists()
    {
        return Some(sys_fs_cgroup.to_path_buf());
    }
    let unified = sys_fs_cgroup.join("unified");
    if unified.join("cgroup.procs").exists() {
        return Some(unified);
    }
    None
}

/// One cgroup (a directory of a cgroup2 hierarchy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    root: PathBuf,
    name: String,
}

fn read(path: &Path) -> Result<String, SysError> {
    super::read_text(path)
}

fn write(path: &Path, value: &str) -> Result<(), SysError> {
    std::fs::write(path, value).map_err(SysError::at(IoOp::Write, path.to_path_buf()))
}

impl Cgroup {
    /// The group `name` (e.g. `/system/apid`) under `root`; nothing is created.
    pub fn new(root: impl Into<PathBuf>, name: &str) -> Self {
        Cgroup {
            root: root.into(),
            name: format!("/{}", name.trim_matches('/')),
        }
    }

    /// Creates the group (and its parents) and enables what controllers it can on the way.
    pub fn create(root: impl Into<PathBuf>, name: &str) -> Result<Self, SysError> {
        let group = Cgroup::new(root, name);
        // Walk from the root down so each level can delegate controllers to the next.
        let mut dir = group.root.clone();
        let parts: Vec<&str> = group.name.split('/').filter(|p| !p.is_empty()).collect();
        for part in parts {
            enable_controllers(&dir);
            dir.push(part);
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(source) => return Err(SysError::io(IoOp::CreateDir, dir, source)),
            }
        }
        Ok(group)
    }

    /// The directory of the group.
    pub fn path(&self) -> PathBuf {
        self.root.join(self.name.trim_start_matches('/'))
    }

    /// The group's name, `/system/apid`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Writes `value` to interface file `file` if the file exists; returns whether it did.
    /// A missing file (controller not available) or a refused write is logged, not an error.
    pub fn set(&self, file: &str, value: &str) -> bool {
        let path = self.path().join(file);
        if !path.exists() {
            tracing::info!(cgroup = %self.name, file, "cgroup interface not available; skipping");
            return false;
        }
        match write(&path, value) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(cgroup = %self.name, file, value, "cgroup setting refused: {}", crate::errors::chain(&e));
                false
            }
        }
    }

    /// `memory.max` (a hard limit), where the memory controller is available.
    pub fn set_memory_max(&self, bytes: u64) -> bool {
        self.set("memory.max", &bytes.to_string())
    }

    /// `memory.min` and `memory.low` (Talos's reservations: low = 2 × min).
    pub fn set_memory_reservation(&self, min: u64) -> bool {
        let a = self.set("memory.min", &min.to_string());
        let b = self.set("memory.low", &min.saturating_mul(2).to_string());
        a && b
    }

    /// `cpu.weight` (1..=10000, default 100), where the cpu controller is available.
    pub fn set_cpu_weight(&self, weight: u32) -> bool {
        self.set("cpu.weight", &weight.clamp(1, 10_000).to_string())
    }

    /// Moves process `pid` into the group.
    pub fn add_pid(&self, pid: i32) -> Result<(), SysError> {
        write(&self.path().join("cgroup.procs"), &pid.to_string())
    }

    /// The pids in the group itself (not its children).
    pub fn pids(&self) -> Result<Vec<i32>, SysError> {
        let path = self.path().join("cgroup.procs");
        let text = read(&path)?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                l.trim()
                    .parse()
                    .map_err(|_| SysError::parse(&path, format!("expected a pid, got {l:?}")))
            })
            .collect()
    }

    /// The pids in the group and all groups below it.
    pub fn pids_recursive(&self) -> Result<Vec<i32>, SysError> {
        let mut pids = self.pids()?;
        if let Ok(entries) = std::fs::read_dir(self.path()) {
            for entry in entries.flatten() {
                if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    let name = format!("{}/{}", self.name, entry.file_name().to_string_lossy());
                    pids.extend(Cgroup::new(&self.root, &name).pids_recursive()?);
                }
            }
        }
        Ok(pids)
    }

    /// Sends SIGKILL to every process of the group and its children: `cgroup.kill` where the
    /// kernel has it (5.14+), else one `kill` per pid, repeated until the group is empty or
    /// `rounds` rounds passed (processes may fork while being killed). Returns the pids that
    /// were signalled.
    pub fn kill_all(&self, rounds: usize) -> Result<Vec<i32>, SysError> {
        let mut killed = Vec::new();
        let kill_file = self.path().join("cgroup.kill");
        let first = self.pids_recursive()?;
        if kill_file.exists() && write(&kill_file, "1").is_ok() {
            return Ok(first);
        }
        let mut pids = first;
        for _ in 0..rounds.max(1) {
            if pids.is_empty() {
                break;
            }
            for &pid in &pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                killed.push(pid);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            pids = self.pids_recursive()?;
        }
        killed.sort_unstable();
        killed.dedup();
        Ok(killed)
    }

    /// Removes the (empty) group and the groups below it.
    pub fn remove(&self) -> Result<(), SysError> {
        let path = self.path();
        if let Ok(entries) = std::fs::read_dir(&path) {
            for entry in entries.flatten() {
                if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    let name = format!("{}/{}", self.name, entry.file_name().to_string_lossy());
                    Cgroup::new(&self.root, &name).remove()?;
                }
            }
        }
        match std::fs::remove_dir(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(SysError::io(IoOp::Remove, path, source)),
        }
    }
}

/// Enables the wanted controllers that `dir` offers for its children (best effort).
pub fn enable_controllers(dir: &Path) {
    let available = match read(&dir.join("cgroup.controllers")) {
        Ok(text) => text,
        Err(_) => return,
    };
    let offered: Vec<&str> = available.split_whitespace().collect();
    let enabled = read(&dir.join("cgroup.subtree_control")).unwrap_or_default();
    let enabled: Vec<&str> = enabled.split_whitespace().collect();
    for controller in WANTED_CONTROLLERS {
        if offered.contains(controller) && !enabled.contains(controller) {
            if let Err(e) = write(
                &dir.join("cgroup.subtree_control"),
                &format!("+{controller}"),
            ) {
                tracing::info!(dir = %dir.display(), controller, "cannot enable cgroup controller: {}", crate::errors::chain(&e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake hierarchy (plain files) standing in for a controller-less cgroup2 mount.
    fn fake_root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("cgroup.procs"), "").expect("procs");
        dir
    }

    #[test]
    fn create_nested_and_paths() {
        let root = fake_root();
        let g = Cgroup::create(root.path(), "system/apid").expect("create");
        assert_eq!(g.name(), "/system/apid");
        assert!(root.path().join("system/apid").is_dir());
        assert_eq!(service_path("apid"), "/system/apid");
        // Creating again is fine.
        Cgroup::create(root.path(), "/system/apid/").expect("again");
    }

    /// A failed write says it was writing (and where), not reading; a failed mkdir says so.
    #[test]
    fn errors_name_the_operation_and_the_file() {
        let root = fake_root();
        let g = Cgroup::new(root.path(), "/missing");
        let err = g.add_pid(1).expect_err("no such group");
        assert!(
            matches!(
                err,
                SysError::Io {
                    op: IoOp::Write,
                    ..
                }
            ),
            "{err:?}"
        );
        let text = crate::errors::chain(&err).to_string();
        let procs = root.path().join("missing/cgroup.procs");
        assert!(
            text.starts_with(&format!("writing {}: ", procs.display())),
            "{text}"
        );
        std::fs::write(root.path().join("file"), "").expect("file");
        let err = Cgroup::create(root.path(), "/file/sub").expect_err("parent is a file");
        assert!(
            matches!(
                err,
                SysError::Io {
                    op: IoOp::CreateDir,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("creating directory "), "{err}");
    }

    #[test]
    fn missing_controllers_are_skipped_not_fatal() {
        let root = fake_root();
        let g = Cgroup::create(root.path(), "/system/trustd").expect("create");
        assert!(!g.set_memory_max(TRUSTD_MEMORY_MAX));
        assert!(!g.set_cpu_weight(50));
        std::fs::write(g.path().join("memory.max"), "max").expect("file");
        assert!(g.set_memory_max(TRUSTD_MEMORY_MAX));
        assert_eq!(
            std::fs::read_to_string(g.path().join("memory.max")).expect("read"),
            "512000000"
        );
    }

    #[test]
    fn controllers_are_enabled_where_offered() {
        let root = fake_root();
        std::fs::write(
            root.path().join("cgroup.controllers"),
            "cpu memory hugetlb\n",
        )
        .expect("c");
        std::fs::write(root.path().join("cgroup.subtree_control"), "").expect("s");
        enable_controllers(root.path());
        // A plain file keeps only the last write; a real one accumulates.
        let got = std::fs::read_to_string(root.path().join("cgroup.subtree_control")).expect("r");
        assert_eq!(got, "+memory");
    }

    #[test]
    fn pids_are_parsed() {
        let root = fake_root();
        let g = Cgroup::create(root.path(), "/x").expect("create");
        std::fs::write(g.path().join("cgroup.procs"), "12\n34\n").expect("procs");
        assert_eq!(g.pids().expect("pids"), [12, 34]);
        std::fs::write(g.path().join("cgroup.procs"), "nope\n").expect("procs");
        assert!(g.pids().is_err());
    }

    #[test]
    fn detect_root_prefers_pure_v2() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(detect_root(dir.path()), None);
        std::fs::create_dir(dir.path().join("unified")).expect("unified");
        std::fs::write(dir.path().join("unified/cgroup.procs"), "").expect("procs");
        assert_eq!(detect_root(dir.path()), Some(dir.path().join("unified")));
        std::fs::write(dir.path().join("cgroup.procs"), "").expect("procs");
        std::fs::write(dir.path().join("cgroup.controllers"), "").expect("controllers");
        assert_eq!(detect_root(dir.path()), Some(dir.path().to_path_buf()));
    }
}
