//! Linux namespaces: named network namespaces, entering a namespace from a thread, and starting a
//! program in fresh namespaces (`clone(2)` + `execve(2)`).
//!
//! Everything here is a thin wrapper; the policy (which namespaces, which mounts) lives in
//! `crate::provision`.

use std::ffi::CString;
use std::fs::{self, File};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::unistd::Pid;

use super::{IoOp, SysError};

/// Where named network namespaces are bind-mounted, as `ip netns` expects.
pub const NETNS_RUN_DIR: &str = "/run/netns";

fn syscall(call: impl Into<String>) -> impl FnOnce(nix::Error) -> SysError {
    let call = call.into();
    move |source| SysError::Syscall { call, source }
}

/// The path of the named network namespace `name` (`/run/netns/NAME`).
pub fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_RUN_DIR).join(name)
}

/// Creates a new, empty network namespace and bind-mounts it on `/run/netns/NAME` so it outlives
/// this process and `ip netns` lists it. Fails if the name is taken.
pub fn create_named_netns(name: &str) -> Result<PathBuf, SysError> {
    let path = netns_path(name);
    fs::create_dir_all(NETNS_RUN_DIR).map_err(SysError::at(IoOp::CreateDir, NETNS_RUN_DIR))?;
    // The bind-mount target: an empty file, created exclusively so two clusters cannot share it.
    File::options()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(SysError::at(IoOp::Create, path.clone()))?;
    let target = path.clone();
    // unshare(CLONE_NEWNET) changes only the calling thread, so do it in a throwaway thread.
    let res = std::thread::spawn(move || -> Result<(), SysError> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(syscall("unshare(CLONE_NEWNET)"))?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(syscall(format!("bind-mount netns on {}", target.display())))
    })
    .join()
    .unwrap_or_else(|_| {
        Err(SysError::Syscall {
            call: "netns thread panicked".into(),
            source: nix::Error::EIO,
        })
    });
    if res.is_err() {
        let _ = fs::remove_file(&path);
    }
    res.map(|()| path)
}

/// Removes the named network namespace (unmount + unlink). Missing is not an error.
pub fn delete_named_netns(name: &str) -> Result<(), SysError> {
    let path = netns_path(name);
    if !path.exists() {
        return Ok(());
    }
    match umount2(&path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(syscall(format!("umount {}", path.display()))(e)),
    }
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(SysError::io(IoOp::Remove, path, source)),
    }
}

/// Moves the calling thread into the network namespace at `path` (`/run/netns/NAME` or
/// `/proc/PID/ns/net`). Sockets created afterwards by this thread live in that namespace.
pub fn enter_netns(path: &Path) -> Result<(), SysError> {
    let f = File::open(path).map_err(SysError::at(IoOp::Open, path.to_path_buf()))?;
    setns(f.as_fd(), CloneFlags::CLONE_NEWNET).map_err(syscall(format!("setns {}", path.display())))
}

/// Runs `f` on a new thread that first enters the network namespace at `path`; returns its result.
pub fn in_netns<T, F>(path: &Path, f: F) -> Result<T, SysError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let path = path.to_path_buf();
    std::thread::spawn(move || -> Result<T, SysError> {
        enter_netns(&path)?;
        Ok(f())
    })
    .join()
    .unwrap_or_else(|_| {
        Err(SysError::Syscall {
            call: "netns worker thread panicked".into(),
            source: nix::Error::EIO,
        })
    })
}

/// What [`spawn_in_new_namespaces`] starts.
pub struct Exec<'a> {
    /// The program (an absolute path).
    pub program: &'a Path,
    /// argv, including argv[0].
    pub args: &'a [String],
    /// The complete environment (`KEY=VALUE`).
    pub env: &'a [String],
    /// Becomes the child's stdout and stderr. Other descriptors follow their own close-on-exec
    /// flag (see [`clear_cloexec`]).
    pub output: BorrowedFd<'a>,
}

fn cstring(s: &str, what: &str) -> Result<CString, SysError> {
    CString::new(s).map_err(|_| SysError::Parse {
        path: PathBuf::from(what),
        what: format!("{s:?} contains a NUL byte"),
    })
}

/// Starts `exec` as the first process of new pid, mount, uts, ipc and net namespaces (it is PID 1
/// there) and returns its pid as seen from here. The child gets SIGCHLD semantics like a forked
/// process, with stdin on /dev/null.
pub fn spawn_in_new_namespaces(exec: &Exec<'_>) -> Result<Pid, SysError> {
    // Everything the child touches is prepared here: between clone and execve only async-signal-
    // safe calls (dup2, execve, _exit) are made, since the parent may have other threads.
    let program = cstring(&exec.program.to_string_lossy(), "program")?;
    let args: Vec<CString> = exec
        .args
        .iter()
        .map(|a| cstring(a, "argv"))
        .collect::<Result<_, _>>()?;
    let env: Vec<CString> = exec
        .env
        .iter()
        .map(|e| cstring(e, "environment"))
        .collect::<Result<_, _>>()?;
    let mut argv: Vec<*const nix::libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const nix::libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    let devnull = File::open("/dev/null").map_err(SysError::at(IoOp::Open, "/dev/null"))?;
    let null_fd = devnull.as_raw_fd();
    let out_fd = exec.output.as_raw_fd();

    let flags = CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNET;
    let clone_flags = flags.bits() as nix::libc::c_ulong | nix::libc::SIGCHLD as nix::libc::c_ulong;
    // SAFETY: the raw clone syscall without CLONE_VM and with a null stack behaves like fork(2):
    // the child runs on a copy of this address space. The child only calls dup2, execve and _exit
    // (async-signal-safe) on memory prepared above, which stays valid in its copy.
    let ret = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_clone,
            clone_flags,
            std::ptr::null_mut::<nix::libc::c_void>(),
            std::ptr::null_mut::<nix::libc::c_int>(),
            std::ptr::null_mut::<nix::libc::c_int>(),
            0 as nix::libc::c_ulong,
        )
    };
    if ret == 0 {
        // SAFETY: child side of the clone above; see there. Pointers come from live CStrings.
        unsafe {
            nix::libc::dup2(null_fd, 0);
            nix::libc::dup2(out_fd, 1);
            nix::libc::dup2(out_fd, 2);
            nix::libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr());
            nix::libc::_exit(127);
        }
    }
    if ret < 0 {
        return Err(SysError::Syscall {
            call: format!("clone {}", exec.program.display()),
            source: nix::Error::last(),
        });
    }
    drop(devnull);
    Ok(Pid::from_raw(ret as i32))
}

/// Clears the close-on-exec flag of `fd` so a child started by [`spawn_in_new_namespaces`]
/// inherits it.
pub fn clear_cloexec(fd: BorrowedFd<'_>) -> Result<(), SysError> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))
        .map(|_| ())
        .map_err(syscall("fcntl(F_SETFD)"))
}

/// Takes ownership of descriptor `fd`, inherited from the parent for this process alone (its
/// number came on the command line or in the environment). Fails if it is not open or is stdio.
pub fn take_inherited_fd(fd: i32) -> Result<std::os::fd::OwnedFd, SysError> {
    use nix::fcntl::{fcntl, FcntlArg};
    use std::os::fd::FromRawFd;
    let not_open = |source| SysError::Syscall {
        call: format!("inherited descriptor {fd}"),
        source,
    };
    if fd < 3 {
        return Err(not_open(nix::Error::EBADF));
    }
    // SAFETY: the borrow is used only for the F_GETFD probe and does not outlive this statement.
    fcntl(unsafe { BorrowedFd::borrow_raw(fd) }, FcntlArg::F_GETFD).map_err(not_open)?;
    // SAFETY: the descriptor is open (checked above) and was handed to this process for it
    // alone; nothing else in this process owns or closes it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Makes the calling process a session leader in the child of a `std::process::Command`
/// (so a detached daemon survives its terminal); for use with `CommandExt::pre_exec`.
pub fn detach_session(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec in the child and only calls setsid(2),
    // which is async-signal-safe and touches no shared state.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netns_path_is_under_run_netns() {
        assert_eq!(netns_path("a"), Path::new("/run/netns/a"));
    }

    #[test]
    fn closed_inherited_fd_is_an_error() {
        let e = take_inherited_fd(987).unwrap_err().to_string();
        assert!(e.contains("987"), "{e}");
        assert!(take_inherited_fd(1).is_err());
    }

    #[test]
    fn nul_bytes_are_rejected_before_cloning() {
        let devnull = File::open("/dev/null").unwrap();
        let e = spawn_in_new_namespaces(&Exec {
            program: Path::new("/bin/true"),
            args: &["a\0b".to_string()],
            env: &[],
            output: devnull.as_fd(),
        })
        .unwrap_err();
        assert!(e.to_string().contains("NUL"), "{e}");
    }
}
