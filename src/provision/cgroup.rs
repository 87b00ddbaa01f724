//! Per-node cgroups. Each node gets `talos-rs-<cluster>/<node>` under this process's own cgroup in
//! every hierarchy that matters (cgroup2, and on hybrid hosts the v1 `memory`, `cpu` and `pids`
//! controllers), so its memory/CPU limits apply, its cgroup namespace is rooted there, and every
//! process of the node can be found (and killed) by cgroup even after the launcher is gone.
//! Limits are best effort: a host without the controller (cgroup2 at /sys/fs/cgroup/unified with
//! no controllers) still runs the node, just unlimited.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::state::ClusterState;
use super::ProvisionError;

/// v1 controllers used when the host is hybrid.
const V1_HIERARCHIES: &[&str] = &["memory", "cpu", "pids"];

/// One hierarchy this process is in: `(mount directory, our path inside it, is cgroup2)`.
fn own_hierarchies(root: &Path, self_cgroup: &str) -> Vec<(PathBuf, String, bool)> {
    let mut out = Vec::new();
    let pure_v2 = root.join("cgroup.controllers").exists();
    for line in self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if ctrls.is_empty() {
            let mount = if pure_v2 {
                root.to_path_buf()
            } else {
                root.join("unified")
            };
            if mount.join("cgroup.procs").exists() {
                out.push((mount, path.to_string(), true));
            }
        } else if !pure_v2 {
            for c in ctrls.split(',') {
                if V1_HIERARCHIES.contains(&c) && root.join(c).join("cgroup.procs").exists() {
                    out.push((root.join(c), path.to_string(), false));
                }
            }
        }
    }
    out
}

/// Creates the node's cgroups and applies the limits it can; returns the directories.
pub fn create_node_cgroups(
    cluster: &str,
    node: &str,
    cpus: f64,
    memory_mib: u64,
) -> Result<Vec<PathBuf>, ProvisionError> {
    let root = Path::new(crate::constants::CGROUP_MOUNT_PATH);
    let own = fs::read_to_string("/proc/self/cgroup")
        .map_err(ProvisionError::io("reading /proc/self/cgroup"))?;
    let mut dirs = Vec::new();
    for (mount, path, v2) in own_hierarchies(root, &own) {
        let dir = mount
            .join(path.trim_start_matches('/'))
            .join(format!("talos-rs-{cluster}"))
            .join(node);
        fs::create_dir_all(&dir).map_err(ProvisionError::io(format!(
            "creating cgroup {}",
            dir.display()
        )))?;
        let quota = (cpus * 100_000.0).round() as u64;
        let mem = memory_mib.saturating_mul(1024 * 1024);
        let writes: Vec<(&str, String)> = if v2 {
            vec![
                ("memory.max", mem.to_string()),
                ("cpu.max", format!("{quota} 100000")),
            ]
        } else {
            match mount.file_name().and_then(|n| n.to_str()) {
                Some("memory") => vec![("memory.limit_in_bytes", mem.to_string())],
                Some("cpu") => vec![
                    ("cpu.cfs_period_us", "100000".to_string()),
                    ("cpu.cfs_quota_us", quota.to_string()),
                ],
                _ => vec![],
            }
        };
        for (file, value) in writes {
            let p = dir.join(file);
            if p.exists() && memory_mib > 0 {
                if let Err(e) = fs::write(&p, &value) {
                    tracing::warn!("cgroup limit {} = {value}: {e}", p.display());
                }
            }
        }
        dirs.push(dir);
    }
    Ok(dirs)
}

/// Moves `pid` into every one of `dirs`.
pub fn join(dirs: &[PathBuf], pid: i32) -> Result<(), ProvisionError> {
    for d in dirs {
        let p = d.join("cgroup.procs");
        fs::write(&p, pid.to_string()).map_err(ProvisionError::io(format!(
            "moving pid {pid} into {}",
            p.display()
        )))?;
    }
    Ok(())
}

/// Every pid in the cgroup tree at `dir`.
pub fn pids_in_tree(dir: &Path) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.extend(pids_in_tree(&e.path()));
            }
        }
    }
    out
}

/// Kills every process in the cgroup trees `dirs` and waits (up to `timeout`) until they are empty.
pub fn kill_all(dirs: &[PathBuf], timeout: Duration) -> Result<(), ProvisionError> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut any = false;
        for d in dirs {
            let killfile = d.join("cgroup.kill");
            if killfile.exists() {
                let _ = fs::write(&killfile, "1");
            }
            for pid in pids_in_tree(d) {
                any = true;
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        if !any {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(ProvisionError::Invalid(format!(
                "processes still alive in cgroups {:?} after SIGKILL",
                dirs
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Removes the cgroup at `dir` and every cgroup below it (they must be empty). Missing is fine.
pub fn remove_tree(dir: &Path) -> Result<(), ProvisionError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ProvisionError::io(format!("reading {}", dir.display()))(e)),
    };
    for e in entries.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&e.path())?;
        }
    }
    // A cgroup can take a moment to become removable after its last process exited.
    let mut last = None;
    for _ in 0..50 {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    match last {
        Some(e) => Err(ProvisionError::io(format!(
            "removing cgroup {}",
            dir.display()
        ))(e)),
        None => Ok(()),
    }
}

/// The per-cluster parent cgroups (`.../talos-rs-<cluster>`) of the nodes' cgroups.
pub fn cluster_parents(state: &ClusterState) -> Option<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = state
        .nodes
        .iter()
        .flat_map(|n| n.cgroups.iter())
        .filter_map(|d| d.parent().map(Path::to_path_buf))
        .collect();
    out.sort();
    out.dedup();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_hierarchies_are_found() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for h in ["unified", "memory", "cpu", "pids", "blkio"] {
            fs::create_dir_all(root.join(h)).unwrap();
            fs::write(root.join(h).join("cgroup.procs"), "").unwrap();
        }
        let own = "9:name=systemd:/\n8:pids:/\n7:blkio:/\n4:memory:/sandbox/x\n1:cpu:/\n0::/\n";
        let got = own_hierarchies(root, own);
        let names: Vec<(String, String, bool)> = got
            .iter()
            .map(|(m, p, v2)| {
                (
                    m.file_name().unwrap().to_string_lossy().into_owned(),
                    p.clone(),
                    *v2,
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                ("pids".to_string(), "/".to_string(), false),
                ("memory".to_string(), "/sandbox/x".to_string(), false),
                ("cpu".to_string(), "/".to_string(), false),
                ("unified".to_string(), "/".to_string(), true),
            ]
        );
    }

    #[test]
    fn pure_v2_uses_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::write(root.join("cgroup.controllers"), "memory cpu").unwrap();
        fs::write(root.join("cgroup.procs"), "").unwrap();
        let got = own_hierarchies(root, "0::/user.slice\n");
        assert_eq!(
            got,
            vec![(root.to_path_buf(), "/user.slice".to_string(), true)]
        );
    }
}
