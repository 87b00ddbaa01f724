//! Thin wrappers over syscalls and kernel interfaces; the only place for `unsafe`.
//!
//! Every reader takes the root it reads from (`/proc`, `/sys`, ...) so tests can point it at
//! fixture trees; the parsers take text and are tested against fixture strings.
//!
//! | module | reads |
//! |---|---|
//! | [`procfs`] | `/proc/meminfo`, `/proc/loadavg`, `/proc/cpuinfo`, `/proc/stat`, `/proc/diskstats`, `/proc/net/dev`, `/proc/mounts` |
//! | [`process`] | `/proc/<pid>/{stat,comm,cmdline,exe}` (the process table) |
//! | [`kmsg`] | `/dev/kmsg` records (the kernel log) |
//! | [`blockdev`] | `/sys/block` (disk inventory) |
//! | [`fs`] | `statfs(2)`, `uname(2)` host name, Go-compatible file mode bits |
//! | [`kmod`] | `modules.dep`; loads kernel modules (`finit_module(2)`) |
//! | [`loopdev`] | `/dev/loop-control`; attaches image files to loop devices |
//! | [`switch_root`] | leaves the initramfs for the real root |
//! | [`reaper`] | `waitpid(2)`: the one reaper of child processes |
//! | [`spawn`] | `pre_exec` hooks: session, namespaces, cgroup, credentials, capabilities |
//! | [`cgroup`] | cgroup v2 groups, limits, membership |
//! | [`mount`] | `mount(2)`, `/proc/self/mountinfo`, the pseudo-filesystem table |
//! | [`power`] | `reboot(2)`, Ctrl-Alt-Del |

pub mod blockdev;
pub mod cgroup;
pub mod fs;
pub mod kmod;
pub mod kmsg;
pub mod loopdev;
pub mod mount;
pub mod ns;
pub mod power;
pub mod process;
pub mod procfs;
pub mod reaper;
pub mod spawn;
pub mod switch_root;

use std::path::{Path, PathBuf};

/// What was being done to a file when the kernel said no: names the operation in
/// [`SysError::Io`]'s message (`writing /sys/fs/cgroup/system/cgroup.procs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoOp {
    /// Reading a file (or a directory's entries, a link's target).
    Read,
    /// Writing a file.
    Write,
    /// Opening a file or device.
    Open,
    /// Creating a file exclusively.
    Create,
    /// Creating a directory (and its parents).
    CreateDir,
    /// Listing a directory.
    List,
    /// Reading a file's metadata (`stat`).
    Stat,
    /// Reading a symbolic link.
    ReadLink,
    /// Removing a file or directory.
    Remove,
    /// Seeking in an open file.
    Seek,
    /// Waiting for a file to become readable.
    Poll,
}

impl IoOp {
    /// The operation as the start of a message: `reading`, `creating directory`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            IoOp::Read => "reading",
            IoOp::Write => "writing",
            IoOp::Open => "opening",
            IoOp::Create => "creating",
            IoOp::CreateDir => "creating directory",
            IoOp::List => "listing",
            IoOp::Stat => "examining",
            IoOp::ReadLink => "reading link",
            IoOp::Remove => "removing",
            IoOp::Seek => "seeking in",
            IoOp::Poll => "waiting for",
        }
    }
}

impl std::fmt::Display for IoOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error using a kernel interface: the operation and the file or call it failed on; the
/// cause is the `source()` (print it with [`crate::errors::chain`]).
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    /// A file operation failed.
    #[error("{op} {path}")]
    Io {
        /// What was being done.
        op: IoOp,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file did not have the expected format.
    #[error("parsing {path}: {what}")]
    Parse {
        /// The file (or a description of the text).
        path: PathBuf,
        /// What was wrong, and what was expected.
        what: String,
    },
    /// A system call failed.
    #[error("{call}")]
    Syscall {
        /// The call and its argument, e.g. `statfs /var`.
        call: String,
        /// The errno.
        source: nix::Error,
    },
}

impl SysError {
    pub(crate) fn parse(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        SysError::Parse {
            path: path.into(),
            what: what.into(),
        }
    }

    /// `op` on `path` failed with `source`.
    pub fn io(op: IoOp, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SysError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// The error maker for `.map_err`: `op` on `path`.
    pub fn at(op: IoOp, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| SysError::Io { op, path, source }
    }
}

impl crate::errors::GrpcCode for SysError {
    fn code(&self) -> tonic::Code {
        match self {
            SysError::Io { source, .. } => crate::errors::io_code(source.kind()),
            SysError::Parse { .. } => tonic::Code::Internal,
            SysError::Syscall { source, .. } => {
                crate::errors::io_code(std::io::Error::from(*source).kind())
            }
        }
    }
}

/// Reads a whole text file, with the path in the error.
pub(crate) fn read_text(path: &Path) -> Result<String, SysError> {
    std::fs::read_to_string(path).map_err(SysError::at(IoOp::Read, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_io_error_names_the_operation_and_path_and_keeps_the_cause_as_source() {
        let cause = std::io::Error::from_raw_os_error(nix::libc::EACCES);
        let err = SysError::io(IoOp::CreateDir, "/run/netns", cause);
        assert_eq!(err.to_string(), "creating directory /run/netns");
        assert_eq!(
            crate::errors::chain(&err).to_string(),
            "creating directory /run/netns: Permission denied (os error 13)"
        );
        assert_eq!(
            crate::errors::GrpcCode::code(&err),
            tonic::Code::PermissionDenied
        );
        let err = SysError::Syscall {
            call: "mount /var".into(),
            source: nix::Error::ENOENT,
        };
        assert_eq!(err.to_string(), "mount /var");
        assert_eq!(
            crate::errors::chain(&err).to_string(),
            "mount /var: ENOENT: No such file or directory"
        );
        assert_eq!(crate::errors::GrpcCode::code(&err), tonic::Code::NotFound);
        let missing = std::fs::read_to_string("/nonexistent/file")
            .map_err(SysError::at(IoOp::Read, "/nonexistent/file"))
            .expect_err("missing");
        assert!(
            crate::errors::chain(&missing)
                .to_string()
                .starts_with("reading /nonexistent/file: "),
            "{missing}"
        );
    }
}
