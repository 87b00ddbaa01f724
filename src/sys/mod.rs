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

/// An error reading a kernel interface.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
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
    #[error("{call}: {source}")]
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
}

/// Reads a whole text file, with the path in the error.
pub(crate) fn read_text(path: &Path) -> Result<String, SysError> {
    std::fs::read_to_string(path).map_err(|source| SysError::Read {
        path: path.to_path_buf(),
        source,
    })
}
