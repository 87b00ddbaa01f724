//! Filesystem and host facts: `statfs(2)` sizes, the host name from `uname(2)`, and file mode
//! bits in the encoding the Talos API uses on the wire.

use std::path::Path;

use super::SysError;

/// Size and free space of a mounted filesystem, bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsSize {
    /// Total size (`f_bsize * f_blocks`).
    pub size: u64,
    /// Available to unprivileged users (`f_bsize * f_bavail`).
    pub available: u64,
}

/// `statfs(2)` of the filesystem holding `path`.
#[allow(clippy::unnecessary_cast)] // the field types differ between architectures
pub fn statfs(path: &Path) -> Result<FsSize, SysError> {
    let st = nix::sys::statfs::statfs(path).map_err(|source| SysError::Syscall {
        call: format!("statfs {}", path.display()),
        source,
    })?;
    let bsize = st.block_size() as u64;
    Ok(FsSize {
        size: bsize.saturating_mul(st.blocks() as u64),
        available: bsize.saturating_mul(st.blocks_available() as u64),
    })
}

/// The host name (`uname(2)` node name).
pub fn hostname() -> Result<String, SysError> {
    let uts = nix::sys::utsname::uname().map_err(|source| SysError::Syscall {
        call: "uname".into(),
        source,
    })?;
    Ok(uts.nodename().to_string_lossy().into_owned())
}

/// Go's `os.FileMode` bits, which the Talos API (`FileInfo.mode`) carries instead of the Unix
/// `st_mode`.
pub mod go_mode {
    /// Directory.
    pub const DIR: u32 = 1 << 31;
    /// Symbolic link.
    pub const SYMLINK: u32 = 1 << 27;
    /// Device file.
    pub const DEVICE: u32 = 1 << 26;
    /// Named pipe.
    pub const NAMED_PIPE: u32 = 1 << 25;
    /// Unix socket.
    pub const SOCKET: u32 = 1 << 24;
    /// Set-user-id.
    pub const SETUID: u32 = 1 << 23;
    /// Set-group-id.
    pub const SETGID: u32 = 1 << 22;
    /// Character device (with [`DEVICE`]).
    pub const CHAR_DEVICE: u32 = 1 << 21;
    /// Sticky bit.
    pub const STICKY: u32 = 1 << 20;
    /// Permission bits.
    pub const PERM: u32 = 0o777;
}

/// Converts a Unix `st_mode` to Go's `os.FileMode` encoding (type bits high, permissions low).
pub fn go_file_mode(st_mode: u32) -> u32 {
    const S_IFMT: u32 = 0o170_000;
    let mut mode = st_mode & go_mode::PERM;
    mode |= match st_mode & S_IFMT {
        0o040_000 => go_mode::DIR,
        0o120_000 => go_mode::SYMLINK,
        0o060_000 => go_mode::DEVICE,
        0o020_000 => go_mode::DEVICE | go_mode::CHAR_DEVICE,
        0o010_000 => go_mode::NAMED_PIPE,
        0o140_000 => go_mode::SOCKET,
        _ => 0,
    };
    if st_mode & 0o4000 != 0 {
        mode |= go_mode::SETUID;
    }
    if st_mode & 0o2000 != 0 {
        mode |= go_mode::SETGID;
    }
    if st_mode & 0o1000 != 0 {
        mode |= go_mode::STICKY;
    }
    mode
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_modes_match_go_encoding() {
        assert_eq!(go_file_mode(0o100_644), 0o644);
        assert_eq!(go_file_mode(0o040_755), (1 << 31) | 0o755);
        assert_eq!(go_file_mode(0o120_777), (1 << 27) | 0o777);
        assert_eq!(go_file_mode(0o020_620), (1 << 26) | (1 << 21) | 0o620);
        assert_eq!(go_file_mode(0o041_777), (1 << 31) | (1 << 20) | 0o777);
        assert_eq!(go_file_mode(0o104_755), (1 << 23) | 0o755);
    }

    #[test]
    fn statfs_and_hostname_work_here() {
        let s = statfs(Path::new("/")).expect("statfs /");
        assert!(s.size >= s.available);
        assert!(statfs(Path::new("/nonexistent/path")).is_err());
        assert!(!hostname().expect("uname").is_empty());
    }
}
