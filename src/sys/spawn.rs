//! How a service process is started: the `pre_exec` hooks that run in the child between
//! `fork` and `exec` (new session, namespaces, cgroup, credentials, capabilities,
//! `no_new_privs`, parent-death signal).
//!
//! Everything the hooks need (file descriptors, C strings, numbers) is prepared before the
//! fork, so the code that runs in the child only makes system calls: it must not allocate or
//! take locks (the parent may be multi-threaded).
//!
//! A new PID namespace cannot be had through `std::process::Command` (`unshare(CLONE_NEWPID)`
//! only moves the caller's *children*), so [`spawn_in_pid_namespace`] forks with
//! `clone(CLONE_NEWPID)` itself: the service is PID 1 of its namespace, and its host pid is the
//! one the supervisor tracks and the reaper reports.

use std::ffi::CString;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use super::{IoOp, SysError};

/// Namespaces a service gets of its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Namespaces {
    /// A private mount namespace (mounts made inside do not leak out; host mounts still
    /// propagate in: `/` is made a recursive slave).
    pub mount: bool,
    /// A private IPC namespace.
    pub ipc: bool,
    /// A private UTS namespace (host name).
    pub uts: bool,
    /// A private PID namespace (the service is its PID 1; with `mount`, `/proc` is remounted
    /// so it shows that namespace). Only [`spawn_in_pid_namespace`] honours it.
    pub pid: bool,
}

impl Namespaces {
    fn flags(&self) -> libc::c_int {
        let mut flags = 0;
        if self.mount {
            flags |= libc::CLONE_NEWNS;
        }
        if self.ipc {
            flags |= libc::CLONE_NEWIPC;
        }
        if self.uts {
            flags |= libc::CLONE_NEWUTS;
        }
        flags
    }
}

/// Linux capability numbers Talos grants by name (the ones services here may keep).
pub mod cap {
    /// `CAP_CHOWN`.
    pub const CHOWN: u32 = 0;
    /// `CAP_DAC_OVERRIDE`.
    pub const DAC_OVERRIDE: u32 = 1;
    /// `CAP_KILL`.
    pub const KILL: u32 = 5;
    /// `CAP_SETGID`.
    pub const SETGID: u32 = 6;
    /// `CAP_SETUID`.
    pub const SETUID: u32 = 7;
    /// `CAP_NET_BIND_SERVICE`.
    pub const NET_BIND_SERVICE: u32 = 10;
    /// `CAP_NET_ADMIN`.
    pub const NET_ADMIN: u32 = 12;
    /// `CAP_NET_RAW`.
    pub const NET_RAW: u32 = 13;
    /// `CAP_SYS_MODULE`.
    pub const SYS_MODULE: u32 = 16;
    /// `CAP_SYS_ADMIN`.
    pub const SYS_ADMIN: u32 = 21;
    /// `CAP_SYS_BOOT`.
    pub const SYS_BOOT: u32 = 22;
    /// `CAP_SYS_RESOURCE`.
    pub const SYS_RESOURCE: u32 = 24;
}

/// What the child does to itself before `exec`.
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    /// Start a new session (`setsid`): no controlling terminal, own process group.
    pub setsid: bool,
    /// Private namespaces.
    pub namespaces: Namespaces,
    /// Join this cgroup (its directory; the child writes itself into `cgroup.procs`).
    pub cgroup: Option<PathBuf>,
    /// Run as this user id (with `gid`, and no supplementary groups).
    pub uid: Option<u32>,
    /// Run with this group id.
    pub gid: Option<u32>,
    /// Keep only these capabilities (bounding, permitted, effective, inheritable and ambient
    /// sets); `None` leaves capabilities alone.
    pub capabilities: Option<Vec<u32>>,
    /// Set `no_new_privs` (setuid binaries and file capabilities no longer raise privileges).
    pub no_new_privs: bool,
    /// Signal the child receives when its parent dies (`PR_SET_PDEATHSIG`).
    pub parent_death_signal: Option<i32>,
    /// `/proc/self/oom_score_adj` (lowering it needs CAP_SYS_RESOURCE; failures are ignored).
    pub oom_score_adj: Option<i32>,
    /// Bind mounts made in the child's private mount namespace (needs `namespaces.mount`;
    /// the targets must exist).
    pub bind_mounts: Vec<BindMount>,
}

/// A bind mount of a service (the kubelet's `extraMounts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// Host path.
    pub source: PathBuf,
    /// Path seen by the service.
    pub target: PathBuf,
    /// Remounted read-only.
    pub read_only: bool,
}

/// The highest capability this kernel knows (`/proc/sys/kernel/cap_last_cap`; 40, Linux 5.9's
/// CAP_CHECKPOINT_RESTORE, when it cannot be read).
pub fn last_capability() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|&n: &u32| n < 64)
        .unwrap_or(40)
}

/// Every capability this kernel knows except `dropped` (for [`SpawnOptions::capabilities`]:
/// a root service that keeps all but a few, as Talos's containerd drops `CAP_SYS_BOOT` and
/// `CAP_SYS_MODULE`).
pub fn all_capabilities_except(dropped: &[u32]) -> Vec<u32> {
    (0..=last_capability())
        .filter(|c| !dropped.contains(c))
        .collect()
}

/// Everything the child-side hook needs, prepared before the fork.
struct Prepared {
    setsid: bool,
    remount_proc: bool,
    proc_path: CString,
    proc_fstype: CString,
    unshare_flags: libc::c_int,
    mount_ns: bool,
    cgroup_procs: Option<OwnedFd>,
    uid: Option<libc::uid_t>,
    gid: Option<libc::gid_t>,
    /// Capability bit mask to keep (bits 0..64).
    keep_caps: Option<u64>,
    no_new_privs: bool,
    parent_death_signal: Option<libc::c_int>,
    oom_path: CString,
    oom_value: Option<Vec<u8>>,
    root: CString,
    binds: Vec<(CString, CString, bool)>,
}

/// A bind mount from the child hook: raw calls on prepared C strings only.
fn bind_mount(source: &CString, target: &CString, read_only: bool) -> std::io::Result<()> {
    // SAFETY: valid C strings; null fstype and data are allowed for a bind mount.
    check(unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        )
    })?;
    if read_only {
        // SAFETY: as above; a remount changes only the flags of the bind mount.
        check(unsafe {
            libc::mount(
                std::ptr::null(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                std::ptr::null(),
            )
        })?;
    }
    Ok(())
}

/// Opens `<cgroup>/cgroup.procs` for writing (before the fork).
fn open_cgroup_procs(dir: &Path) -> Result<OwnedFd, SysError> {
    let path = dir.join("cgroup.procs");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map(OwnedFd::from)
        .map_err(SysError::at(IoOp::Open, path))
}

impl SpawnOptions {
    fn prepare(&self) -> Result<Prepared, SysError> {
        // A capability the caller does not hold cannot be kept (capset would refuse the
        // whole set): keep what is asked for and held.
        let held = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| read_capabilities(&status).get("CapPrm").copied())
            .unwrap_or(u64::MAX);
        let keep_caps = self.capabilities.as_ref().map(|caps| {
            caps.iter()
                .filter(|&&c| c < 64)
                .fold(0u64, |mask, &c| mask | (1u64 << c))
                & held
        });
        let cgroup_procs = self.cgroup.as_deref().map(open_cgroup_procs).transpose()?;
        let c_path = |p: &Path| {
            CString::new(p.as_os_str().as_encoded_bytes())
                .map_err(|_| SysError::parse(p, "a mount path may not contain NUL"))
        };
        let binds = self
            .bind_mounts
            .iter()
            .map(|b| Ok((c_path(&b.source)?, c_path(&b.target)?, b.read_only)))
            .collect::<Result<Vec<_>, SysError>>()?;
        Ok(Prepared {
            setsid: self.setsid,
            remount_proc: self.namespaces.pid && self.namespaces.mount,
            proc_path: c"/proc".to_owned(),
            proc_fstype: c"proc".to_owned(),
            unshare_flags: self.namespaces.flags(),
            mount_ns: self.namespaces.mount,
            cgroup_procs,
            uid: self.uid,
            gid: self.gid,
            keep_caps,
            no_new_privs: self.no_new_privs,
            parent_death_signal: self.parent_death_signal,
            oom_path: c"/proc/self/oom_score_adj".to_owned(),
            oom_value: self.oom_score_adj.map(|v| v.to_string().into_bytes()),
            root: c"/".to_owned(),
            binds,
        })
    }

    /// Installs the hooks on `command`. Fails (before any fork) when the cgroup cannot be
    /// opened.
    pub fn apply(&self, command: &mut Command) -> Result<(), SysError> {
        let prepared = Arc::new(self.prepare()?);
        // SAFETY: the hook runs in the forked child before exec. `in_child` only issues raw
        // system calls on data prepared above (no allocation, no locks), which is what
        // `pre_exec` requires.
        unsafe {
            command.pre_exec(move || in_child(&prepared));
        }
        Ok(())
    }
}

fn check(ret: libc::c_int) -> std::io::Result<()> {
    if ret < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// [`check`] for `syscall(2)`'s long return value.
fn check_long(ret: libc::c_long) -> std::io::Result<()> {
    if ret < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The capability header/data layout of `capget`/`capset` (version 3: two 32-bit words).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Runs in the child between fork and exec: system calls only.
fn in_child(p: &Prepared) -> std::io::Result<()> {
    if p.setsid {
        // SAFETY: setsid has no memory arguments.
        check(unsafe { libc::setsid() })?;
    }
    if let Some(fd) = &p.cgroup_procs {
        // Writing 0 moves the writing process itself.
        // SAFETY: the buffer is a valid 1-byte static slice; fd is an open descriptor.
        let n = unsafe { libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    if let Some(value) = &p.oom_value {
        // SAFETY: path is a valid C string; buffer and length come from the same Vec.
        unsafe {
            let fd = libc::open(p.oom_path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd >= 0 {
                // Best effort: lowering the score needs privileges we may not have.
                let _ = libc::write(fd, value.as_ptr().cast(), value.len());
                libc::close(fd);
            }
        }
    }
    if p.unshare_flags != 0 {
        // SAFETY: unshare takes only flags.
        check(unsafe { libc::unshare(p.unshare_flags) })?;
        if p.mount_ns {
            // SAFETY: the C strings are valid; null source/fstype/data are allowed for a
            // propagation change.
            check(unsafe {
                libc::mount(
                    std::ptr::null(),
                    p.root.as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_SLAVE,
                    std::ptr::null(),
                )
            })?;
            for (source, target, read_only) in &p.binds {
                bind_mount(source, target, *read_only)?;
            }
        }
    }
    if p.remount_proc {
        // A /proc that shows the new PID namespace (in the private mount namespace only).
        // SAFETY: valid C strings; null data is allowed.
        check(unsafe {
            libc::mount(
                p.proc_fstype.as_ptr(),
                p.proc_path.as_ptr(),
                p.proc_fstype.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            )
        })?;
    }
    if let Some(keep) = p.keep_caps {
        for cap in 0..64u32 {
            if keep & (1u64 << cap) == 0 {
                // SAFETY: prctl with integer arguments only.
                let ret = unsafe {
                    libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0)
                };
                if ret < 0 {
                    let err = std::io::Error::last_os_error();
                    // EINVAL: the kernel does not know this capability (past cap_last_cap).
                    if err.raw_os_error() != Some(libc::EINVAL) {
                        return Err(err);
                    }
                }
            }
        }
        if p.uid.is_some() && keep != 0 {
            // Keep the permitted set across the uid change; it is trimmed below.
            // SAFETY: prctl with integer arguments only.
            check(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) })?;
        }
    }
    if let Some(gid) = p.gid {
        let groups = [gid];
        // Raw system calls, not libc's wrappers: those broadcast the change to every thread
        // libc believes exists (glibc and musl signal them), and after a raw clone the
        // parent's threads are gone, so the wrapper would wait for them forever. The child is
        // single-threaded, so the per-thread system call is exactly what we need.
        // SAFETY: the pointer and length describe a live one-element array.
        check_long(unsafe { libc::syscall(libc::SYS_setgroups, 1usize, groups.as_ptr()) })?;
        // SAFETY: integer arguments only.
        check_long(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) })?;
    }
    if let Some(uid) = p.uid {
        // SAFETY: integer arguments only (raw system call, see above).
        check_long(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) })?;
    }
    if let Some(keep) = p.keep_caps {
        let header = CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let low = (keep & 0xffff_ffff) as u32;
        let high = (keep >> 32) as u32;
        let data = [
            CapData {
                effective: low,
                permitted: low,
                inheritable: low,
            },
            CapData {
                effective: high,
                permitted: high,
                inheritable: high,
            },
        ];
        // SAFETY: header and data have the kernel's v3 layout and live for the call.
        check(unsafe {
            libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr())
                as libc::c_int
        })?;
        // Ambient capabilities survive exec of an ordinary binary by a non-root user.
        // SAFETY: prctl with integer arguments only.
        check(unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            )
        })?;
        for cap in 0..64u32 {
            if keep & (1u64 << cap) != 0 {
                // SAFETY: prctl with integer arguments only.
                check(unsafe {
                    libc::prctl(
                        libc::PR_CAP_AMBIENT,
                        libc::PR_CAP_AMBIENT_RAISE,
                        libc::c_ulong::from(cap),
                        0,
                        0,
                    )
                })?;
            }
        }
    }
    if p.no_new_privs {
        // SAFETY: prctl with integer arguments only.
        check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    }
    if let Some(signal) = p.parent_death_signal {
        // Set last: a credential change clears it.
        // SAFETY: prctl with integer arguments only.
        check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal, 0, 0, 0) })?;
    }
    Ok(())
}

/// What [`spawn_in_pid_namespace`] runs.
#[derive(Debug, Clone)]
pub struct ExecSpec {
    /// The executable.
    pub exe: PathBuf,
    /// The whole argv, `argv[0]` included.
    pub argv: Vec<String>,
    /// The whole environment.
    pub env: Vec<(String, String)>,
}

fn cstring(what: &str, s: &[u8]) -> std::io::Result<CString> {
    CString::new(s).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte"),
        )
    })
}

/// Forks `exec` as PID 1 of a new PID namespace (plus the other namespaces and hooks of
/// `options`), with `stdout`/`stderr` as its output and /dev/null as its input. Returns the
/// child's pid as seen here, once `exec` succeeded; an `exec` failure is returned as the
/// error (the failed child is collected by the reaper and kept as an unclaimed exit until it
/// expires). Call it through [`super::reaper::Reaper::spawn_with`].
pub fn spawn_in_pid_namespace(
    exec: &ExecSpec,
    options: &SpawnOptions,
    stdout: &OwnedFd,
    stderr: &OwnedFd,
) -> std::io::Result<i32> {
    use std::os::unix::ffi::OsStrExt as _;
    let prepared = options
        .prepare()
        .map_err(|e| std::io::Error::other(crate::errors::chain(&e).to_string()))?;
    let exe = cstring("executable path", exec.exe.as_os_str().as_bytes())?;
    let argv: Vec<CString> = exec
        .argv
        .iter()
        .map(|a| cstring("argument", a.as_bytes()))
        .collect::<Result<_, _>>()?;
    let envp: Vec<CString> = exec
        .env
        .iter()
        .map(|(k, v)| cstring("environment", format!("{k}={v}").as_bytes()))
        .collect::<Result<_, _>>()?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    let devnull = std::fs::File::open("/dev/null")?;
    let (err_read, err_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
    let flags = (libc::CLONE_NEWPID | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: a clone without CLONE_VM and with a null stack behaves like fork: the child
    // gets a copy of this address space and runs only `child_after_clone`, which makes
    // system calls on data prepared above and never returns.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid == 0 {
        child_after_clone(
            &prepared,
            &exe,
            &argv_ptrs,
            &envp_ptrs,
            [devnull.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd()],
            err_write.as_raw_fd(),
        );
    }
    drop(err_write);
    let pid = i32::try_from(pid).map_err(|_| std::io::Error::other("pid out of range"))?;
    // The child closes its copy of the pipe on a successful exec (CLOEXEC) or writes errno.
    let mut errno = [0u8; 4];
    let mut file = std::fs::File::from(err_read);
    let mut got = 0;
    while got < errno.len() {
        match std::io::Read::read(&mut file, &mut errno[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if got == errno.len() {
        return Err(std::io::Error::from_raw_os_error(i32::from_ne_bytes(errno)));
    }
    Ok(pid)
}

/// The child side of [`spawn_in_pid_namespace`]: hooks, stdio, exec; reports errno and
/// exits on any failure.
fn child_after_clone(
    p: &Prepared,
    exe: &CString,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    stdio: [libc::c_int; 3],
    err_fd: libc::c_int,
) -> ! {
    let fail = |err: std::io::Error| -> ! {
        let code = err.raw_os_error().unwrap_or(libc::EINVAL).to_ne_bytes();
        // SAFETY: writes 4 bytes from a live array, then exits without running destructors.
        unsafe {
            libc::write(err_fd, code.as_ptr().cast(), code.len());
            libc::_exit(127)
        }
    };
    // SAFETY: resetting signal state inherited from the parent (Rust ignores SIGPIPE) with
    // plain system calls on a zeroed sigset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    for (target, fd) in stdio.into_iter().enumerate() {
        // dup2 clears CLOEXEC on the copy.
        // SAFETY: both are open descriptors (target is 0, 1 or 2).
        if unsafe { libc::dup2(fd, target as libc::c_int) } < 0 {
            fail(std::io::Error::last_os_error());
        }
    }
    if let Err(e) = in_child(p) {
        fail(e);
    }
    // SAFETY: exe, argv and envp are NUL-terminated strings and null-terminated arrays that
    // live until exec replaces the process.
    unsafe {
        libc::execve(exe.as_ptr(), argv.as_ptr(), envp.as_ptr());
    }
    fail(std::io::Error::last_os_error())
}

/// Reads the capability sets of `/proc/<pid>/status` (`CapBnd`, `CapEff`, ...) as masks.
pub fn read_capabilities(status: &str) -> std::collections::BTreeMap<String, u64> {
    status
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            if !key.starts_with("Cap") {
                return None;
            }
            let mask = u64::from_str_radix(value.trim(), 16).ok()?;
            Some((key.to_string(), mask))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_flags() {
        assert_eq!(Namespaces::default().flags(), 0);
        let all = Namespaces {
            mount: true,
            ipc: true,
            uts: true,
            pid: true,
        };
        assert_eq!(
            all.flags(),
            libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS
        );
    }

    #[test]
    fn capability_masks() {
        let opts = SpawnOptions {
            capabilities: Some(vec![cap::NET_BIND_SERVICE, cap::SYS_ADMIN]),
            ..SpawnOptions::default()
        };
        let p = opts.prepare().expect("prepare");
        let held =
            read_capabilities(&std::fs::read_to_string("/proc/self/status").expect("status"))
                .get("CapPrm")
                .copied()
                .unwrap_or_default();
        assert_eq!(p.keep_caps, Some(((1 << 10) | (1 << 21)) & held));
        let parsed = read_capabilities("Name:\tx\nCapEff:\t0000000000000400\nCapBnd:\t0\n");
        assert_eq!(parsed.get("CapEff"), Some(&0x400));
        assert_eq!(parsed.get("CapBnd"), Some(&0));
    }

    #[test]
    fn all_but_some_capabilities() {
        let caps = all_capabilities_except(&[cap::SYS_BOOT, cap::SYS_MODULE]);
        assert!(!caps.contains(&cap::SYS_BOOT) && !caps.contains(&cap::SYS_MODULE));
        assert!(caps.contains(&cap::SYS_ADMIN) && caps.contains(&cap::CHOWN));
        assert_eq!(caps.len() as u32, last_capability() + 1 - 2);
    }

    /// As root: a child keeping all but SYS_BOOT and SYS_MODULE has exactly those two bits
    /// missing from its bounding and effective sets.
    #[test]
    fn dropping_two_capabilities_leaves_the_rest() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("SKIPPED (needs root): dropping_two_capabilities_leaves_the_rest");
            return;
        }
        let opts = SpawnOptions {
            capabilities: Some(all_capabilities_except(&[cap::SYS_BOOT, cap::SYS_MODULE])),
            ..SpawnOptions::default()
        };
        let mut command = Command::new("/bin/cat");
        command
            .arg("/proc/self/status")
            .stdout(std::process::Stdio::piped());
        opts.apply(&mut command).expect("apply");
        // Through the process-wide reaper: other tests in this process run it, and it would
        // otherwise collect the child before `Command::output` could (ECHILD).
        let reaper = crate::sys::reaper::Reaper::global().expect("reaper");
        let (mut child, exited) = reaper.spawn(&mut command).expect("cat");
        let mut stdout = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut stdout)
            .expect("read");
        let status = exited.blocking_recv().expect("exit status");
        assert!(status.success(), "{status:?}");
        let caps = read_capabilities(&stdout);
        let before =
            read_capabilities(&std::fs::read_to_string("/proc/self/status").expect("own status"));
        let dropped = (1u64 << cap::SYS_BOOT) | (1u64 << cap::SYS_MODULE);
        for set in ["CapBnd", "CapEff"] {
            let had = before.get(set).copied().unwrap_or_default();
            assert_eq!(caps.get(set).copied(), Some(had & !dropped), "{set}");
        }
    }

    #[test]
    fn missing_cgroup_fails_before_fork() {
        let opts = SpawnOptions {
            cgroup: Some(PathBuf::from("/nonexistent/cgroup")),
            ..SpawnOptions::default()
        };
        let err = opts
            .apply(&mut Command::new("/bin/true"))
            .expect_err("error");
        assert!(
            err.to_string().contains("/nonexistent/cgroup/cgroup.procs"),
            "{err}"
        );
    }
}
