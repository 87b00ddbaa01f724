//! Starting one node: the launcher clones a helper into fresh namespaces ([`spawn_node`]); the
//! helper ([`enter_node`], the hidden `talosctl container-node`) waits until the launcher has put
//! it into its cgroups and wired `eth0`, then builds the node's mount namespace, pivots into the
//! node root, sets the host name and execs `/sbin/init` as PID 1.
//!
//! Mount namespace of a node (what init finds):
//! - `/`: the cluster's materialized root, bind-mounted read-only; `/sbin/init` is the host's
//!   `talos` binary bind-mounted read-only over an empty file;
//! - tmpfs on `/run`, `/system`, `/tmp`; the node directory's `state/` on `/system/state` and
//!   `var/` on `/var` (both writable, kept across restarts), and its `overlays/` on Talos's
//!   overlay paths (`/etc/kubernetes`, `/etc/cni`, `/usr/libexec/kubernetes`);
//! - `/dev`: a tmpfs with null, zero, full, random, urandom, tty, kmsg bound from the host,
//!   a private devpts on `/dev/pts` (`/dev/ptmx` links to it) and a tmpfs on `/dev/shm`.
//!
//! `/proc`, `/sys` and cgroups are left for init to mount. When the `talos` binary is dynamically
//! linked (a development build rather than the static release binary), the host's library
//! directories (`/lib`, `/lib64`, `/usr/lib`, `/usr/lib64`) are bound read-only as well so it can
//! run.

use std::convert::Infallible;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{chdir, pivot_root, sethostname, Pid};
use serde::{Deserialize, Serialize};

use super::net::{attach_node, NodeLink};
use super::state::{ClusterState, NodeState};
use super::{cgroup, ProvisionError};
use crate::sys::ns::{clear_cloexec, spawn_in_new_namespaces, take_inherited_fd, Exec};
use crate::sys::SysError;

/// Environment variable carrying the [`NodeSpec`] (JSON) to the helper.
pub const SPEC_ENV: &str = "TALOS_CONTAINER_NODE_SPEC";

/// Device nodes bound from the host into a node's `/dev`.
pub const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty", "kmsg"];

/// Everything the in-namespace helper needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeSpec {
    /// Host name.
    pub hostname: String,
    /// The materialized root (host path).
    pub rootfs: PathBuf,
    /// The binary bound on `/sbin/init` (host path).
    pub init_binary: PathBuf,
    /// The node directory (host path) with `state/` and `var/`.
    pub node_dir: PathBuf,
    /// argv to exec inside the root.
    pub command: Vec<String>,
    /// Environment of the node's init (`KEY=VALUE`).
    pub env: Vec<String>,
    /// Descriptor the helper reads one byte from before it proceeds.
    pub sync_fd: i32,
}

fn sys(call: impl Into<String>) -> impl FnOnce(nix::Error) -> ProvisionError {
    let call = call.into();
    move |source| ProvisionError::Sys(SysError::Syscall { call, source })
}

fn bind(src: &Path, dst: &Path, flags: MsFlags) -> Result<(), ProvisionError> {
    mount(
        Some(src),
        dst,
        None::<&str>,
        MsFlags::MS_BIND | flags,
        None::<&str>,
    )
    .map_err(sys(format!("bind {} on {}", src.display(), dst.display())))
}

fn remount_ro(dst: &Path) -> Result<(), ProvisionError> {
    mount(
        None::<&str>,
        dst,
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(sys(format!("remount {} read-only", dst.display())))
}

fn tmpfs(dst: &Path, flags: MsFlags, data: &str) -> Result<(), ProvisionError> {
    mount(Some("tmpfs"), dst, Some("tmpfs"), flags, Some(data))
        .map_err(sys(format!("mount tmpfs on {}", dst.display())))
}

fn mkdir(p: &Path) -> Result<(), ProvisionError> {
    fs::create_dir_all(p).map_err(ProvisionError::io(format!("creating {}", p.display())))
}

/// Directories of the read-only root that a node writes (Talos mounts overlays there), with
/// the subdirectories the image has in them.
const WRITABLE_OVERLAYS: &[(&str, &[&str])] = &[
    ("/etc/kubernetes", &["manifests"]),
    ("/etc/cni", &["net.d"]),
    ("/usr/libexec/kubernetes", &[]),
];

/// Builds the node's mount tree under `spec.rootfs` (in a private mount namespace).
fn prepare_mounts(spec: &NodeSpec) -> Result<(), ProvisionError> {
    let root = &spec.rootfs;
    let nosuid_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(sys("make / private"))?;
    bind(root, root, MsFlags::MS_REC)?;
    let init = root.join("sbin/init");
    bind(&spec.init_binary, &init, MsFlags::empty())?;
    remount_ro(&init)?;
    tmpfs(&root.join("run"), nosuid_nodev, "mode=755")?;
    tmpfs(&root.join("system"), nosuid_nodev, "mode=755")?;
    tmpfs(&root.join("tmp"), nosuid_nodev, "mode=1777")?;
    let state_src = spec.node_dir.join("state");
    let var_src = spec.node_dir.join("var");
    mkdir(&state_src)?;
    mkdir(&var_src)?;
    let state_dst = crate::constants::below(root, crate::constants::STATE_MOUNT_POINT);
    mkdir(&state_dst)?;
    bind(&state_src, &state_dst, MsFlags::empty())?;
    bind(
        &var_src,
        &crate::constants::below(root, crate::constants::EPHEMERAL_MOUNT_POINT),
        MsFlags::empty(),
    )?;
    // Talos's overlay paths are writable on a node (its docker nodes get volumes there): the
    // kubelet's and the CNI's configuration.
    for (path, subdirs) in WRITABLE_OVERLAYS {
        let src = spec
            .node_dir
            .join("overlays")
            .join(path.trim_start_matches('/').replace('/', "-"));
        for sub in *subdirs {
            mkdir(&src.join(sub))?;
        }
        mkdir(&src)?;
        let dst = crate::constants::below(root, path);
        mkdir(&dst)?;
        bind(&src, &dst, MsFlags::empty())?;
    }

    let dev = root.join("dev");
    tmpfs(&dev, MsFlags::MS_NOSUID, "mode=755")?;
    for d in DEVICES {
        let host = Path::new("/dev").join(d);
        if !host.exists() {
            continue;
        }
        let target = dev.join(d);
        File::create(&target)
            .map_err(ProvisionError::io(format!("creating {}", target.display())))?;
        bind(&host, &target, MsFlags::empty())?;
    }
    let pts = dev.join("pts");
    mkdir(&pts)?;
    mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .map_err(sys(format!("mount devpts on {}", pts.display())))?;
    let shm = dev.join("shm");
    mkdir(&shm)?;
    tmpfs(&shm, nosuid_nodev, "mode=1777")?;
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let p = dev.join(link);
        symlink(target, &p).map_err(ProvisionError::io(format!("creating {}", p.display())))?;
    }
    if needs_interpreter(&spec.init_binary) {
        for lib in ["/lib", "/lib64", "/usr/lib", "/usr/lib64"] {
            let host = Path::new(lib);
            if !host.exists() {
                continue;
            }
            let target = root.join(lib.trim_start_matches('/'));
            mkdir(&target)?;
            bind(host, &target, MsFlags::MS_REC)?;
            remount_ro(&target)?;
        }
    }
    remount_ro(root)?;
    Ok(())
}

/// Whether the ELF file at `path` names a program interpreter (is dynamically linked).
pub fn needs_interpreter(path: &Path) -> bool {
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    let mut head = vec![0u8; 4096];
    let Ok(n) = f.read(&mut head) else {
        return false;
    };
    elf_has_interp(&head[..n])
}

/// Looks for a PT_INTERP program header in the start of a 64-bit little-endian ELF file.
fn elf_has_interp(head: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    if head.len() < 64 || &head[..4] != b"\x7fELF" || head[4] != 2 || head[5] != 1 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([head[o], head[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(head[0x20..0x28].try_into().unwrap_or([0; 8])) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        head.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) == PT_INTERP)
            .unwrap_or(false)
    })
}

/// Makes `root` the root directory of this mount namespace and drops the old one.
fn enter_root(root: &Path) -> Result<(), ProvisionError> {
    chdir(root).map_err(sys(format!("chdir {}", root.display())))?;
    pivot_root(".", ".").map_err(sys(format!("pivot_root {}", root.display())))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(sys("detach the old root"))?;
    chdir("/").map_err(sys("chdir /"))?;
    Ok(())
}

/// The helper's body, run as PID 1 of the node's namespaces: waits for the launcher, prepares
/// the mounts, pivots, sets the host name and execs the node command. Returns only on error.
pub fn enter_node(spec: &NodeSpec) -> Result<Infallible, ProvisionError> {
    let sync = take_inherited_fd(spec.sync_fd)?;
    let mut byte = [0u8; 1];
    let mut f = File::from(sync);
    match f.read(&mut byte) {
        Ok(1) => {}
        _ => {
            return Err(ProvisionError::Invalid(
                "the launcher did not finish preparing this node".into(),
            ))
        }
    }
    drop(f);
    // The launcher has moved us into the node's cgroups: root our cgroup namespace there.
    unshare(CloneFlags::CLONE_NEWCGROUP).map_err(sys("unshare(CLONE_NEWCGROUP)"))?;
    prepare_mounts(spec)?;
    enter_root(&spec.rootfs)?;
    sethostname(&spec.hostname).map_err(sys(format!("sethostname {}", spec.hostname)))?;
    let Some(program) = spec.command.first() else {
        return Err(ProvisionError::Invalid("empty node command".into()));
    };
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(program);
    cmd.args(&spec.command[1..]).env_clear();
    for kv in &spec.env {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let err = cmd.exec();
    Err(ProvisionError::io(format!("exec {program}"))(err))
}

/// The environment of a node's init, as Talos's container platform expects it.
pub fn node_env(userdata_b64: &str, cpus: f64, memory_mib: u64) -> Vec<String> {
    vec![
        "PATH=/sbin:/bin:/usr/sbin:/usr/bin".to_string(),
        "PLATFORM=container".to_string(),
        format!("TALOSSKU={}CPU-{}RAM", cpus.floor() as u64, memory_mib),
        format!("USERDATA={userdata_b64}"),
    ]
}

/// Starts `node` of `cluster`: clones the helper (`talos` = `helper_exe`) into new namespaces,
/// joins its cgroups, wires eth0, then lets it proceed. Output goes to `<state>/<node>.log`.
/// Returns the node's host pid.
pub fn spawn_node(
    cluster: &ClusterState,
    node: &NodeState,
    helper_exe: &Path,
) -> Result<Pid, ProvisionError> {
    let userdata = fs::read(&node.config).map_err(ProvisionError::io(format!(
        "reading machine config {}",
        node.config.display()
    )))?;
    use base64::Engine as _;
    let userdata = base64::engine::general_purpose::STANDARD.encode(userdata);
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;
    clear_cloexec(rd.as_fd())?;
    let command = if cluster.node_command.is_empty() {
        vec![crate::rootfs::INIT_PATH.to_string()]
    } else {
        cluster.node_command.clone()
    };
    let spec = NodeSpec {
        hostname: node.name.clone(),
        rootfs: cluster.rootfs.clone(),
        init_binary: cluster.init_binary.clone(),
        node_dir: node.dir.clone(),
        command,
        env: node_env(&userdata, node.cpus, node.memory_mib),
        sync_fd: std::os::fd::AsRawFd::as_raw_fd(&rd),
    };
    let spec_json = serde_json::to_string(&spec)
        .map_err(|e| ProvisionError::Invalid(format!("encoding node spec: {e}")))?;
    let log_path = cluster.state_dir.join(format!("{}.log", node.name));
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(ProvisionError::io(format!(
            "opening {}",
            log_path.display()
        )))?;
    let args = vec!["talosctl".to_string(), "container-node".to_string()];
    let env = vec![format!("{SPEC_ENV}={spec_json}")];
    let pid = spawn_in_new_namespaces(&Exec {
        program: helper_exe,
        args: &args,
        env: &env,
        output: log.as_fd(),
    })?;
    drop(rd);
    let wire = || -> Result<(), ProvisionError> {
        cgroup::join(&node.cgroups, pid.as_raw())?;
        attach_node(
            &cluster.network,
            &NodeLink {
                veth: node.veth.clone(),
                ip: node.ip,
                prefix: cluster.network.prefix,
                gateway: cluster.network.gateway,
                mtu: cluster.network.mtu,
            },
            pid.as_raw(),
        )?;
        let mut w = File::from(wr);
        w.write_all(b"1")
            .map_err(ProvisionError::io("releasing the node helper"))?;
        Ok(())
    };
    if let Err(e) = wire() {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
        return Err(e);
    }
    Ok(pid)
}

/// Whether `pid` is alive and belongs to `node` (its cgroup path names the node).
fn pid_is_node(pid: i32, node: &NodeState) -> bool {
    let Ok(cg) = fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return false;
    };
    let leaf = format!("/{}", node.name);
    let inner = format!("/{}/", node.name);
    cg.lines().any(|l| l.ends_with(&leaf) || l.contains(&inner))
}

/// Kills every process of `node` (by cgroup, and by recorded pid when it still is the node).
pub fn kill_node(node: &NodeState) -> Result<(), ProvisionError> {
    if let Some(pid) = node.pid {
        if pid_is_node(pid, node) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    cgroup::kill_all(&node.cgroups, Duration::from_secs(10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpreter_detection() {
        // This test binary is dynamically linked (the default target); /dev/null is not ELF.
        let me = std::env::current_exe().unwrap();
        assert!(needs_interpreter(&me));
        assert!(!needs_interpreter(Path::new("/dev/null")));
        let mut fake = vec![0u8; 200];
        fake[..4].copy_from_slice(b"\x7fELF");
        fake[4] = 2;
        fake[5] = 1;
        fake[0x20] = 64; // phoff
        fake[0x36] = 56; // phentsize
        fake[0x38] = 1; // phnum
        fake[64] = 1; // PT_LOAD only
        assert!(!elf_has_interp(&fake));
        fake[64] = 3;
        assert!(elf_has_interp(&fake));
    }

    #[test]
    fn env_matches_talos_container_platform() {
        let env = node_env("Zm9v", 2.0, 2048);
        assert!(env.contains(&"PLATFORM=container".to_string()));
        assert!(env.contains(&"TALOSSKU=2CPU-2048RAM".to_string()));
        assert!(env.contains(&"USERDATA=Zm9v".to_string()));
    }
}
